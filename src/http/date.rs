//! HTTP-date (RFC 9110 §5.6.7): IMF-fixdate out, all three formats in.
//!
//! A date is a number from the wire, so `parse` reads each field with an explicit digit
//! count (day 1–2, hour, minute and second 2, year 4, or 2 in RFC 850) and checks it
//! against the calendar before any arithmetic: no input overflows, wraps or panics, and
//! what it cannot read exactly it refuses, since a recipient must ignore an invalid date
//! (RFC 9110 §13.1.3) rather than act on a guess.

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const LEN: usize = 29;

/// The last second `parse` accepts and `format` writes, 9999-12-31T23:59:59Z: years have
/// four digits in IMF-fixdate and asctime. The first is the Unix epoch (1970), before
/// which no file of ours was modified, so `parse` accepts years 1970..=9999.
pub const MAX: u64 = 253_402_300_799;

/// Format seconds since the Unix epoch as an IMF-fixdate; a time past `MAX` (a file's
/// mtime can be anything) is written as `MAX` rather than with a fifth digit cut off.
pub fn format(secs: u64) -> [u8; LEN] {
    let secs = secs.min(MAX);
    let t = Civil::of(secs);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(secs / 86400 % 7) as usize]);
    two(&mut out[5..7], t.day);
    out[8..11].copy_from_slice(MONTHS[(t.month - 1) as usize]);
    two(&mut out[12..14], (t.year / 100) as u32);
    two(&mut out[14..16], (t.year % 100) as u32);
    two(&mut out[17..19], t.hour);
    two(&mut out[20..22], t.minute);
    two(&mut out[23..25], t.second);
    out
}

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A Unix second as UTC calendar fields, for every text form of a time the server writes.
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    pub fn of(secs: u64) -> Civil {
        let (year, month, day) = civil_from_days((secs / 86400) as i64);
        let rem = (secs % 86400) as u32;
        Civil { year, month, day, hour: rem / 3600, minute: rem / 60 % 60, second: rem % 60 }
    }

    pub fn month_name(&self) -> &'static str {
        std::str::from_utf8(MONTHS[(self.month - 1) as usize]).unwrap_or("???")
    }
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Parse an HTTP-date in any of the three formats, given the time `now` (seconds since
/// the epoch) to place an RFC 850 two-digit year; `None` for anything else, or for a
/// date outside 1970..=9999 or not in the calendar (31 Apr), which a recipient of
/// `If-Modified-Since` or `If-Range` must ignore. The weekday is not checked.
pub fn parse(v: &[u8], now: u64) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let mut parts = [""; 6];
    let mut it = s.split([' ', ',']).filter(|p| !p.is_empty());
    for slot in parts.iter_mut() {
        *slot = it.next().unwrap_or("");
    }
    if it.next().is_some() {
        return None;
    }
    let (day, month, year, time) = match parts {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (d, m, digits(y, 4..=4)?, t),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (a four-digit year too, as some wrote)
        [_, dmy, t, "GMT", "", ""] => {
            let mut f = dmy.split('-');
            let (d, m, y) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() {
                return None;
            }
            let year = if y.len() == 2 { two_digit_year(digits(y, 2..=2)?, now) } else { digits(y, 4..=4)? };
            (d, m, year, t)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, m, d, t, y, ""] => (d, m, digits(y, 4..=4)?, t),
        _ => return None,
    };
    let month = MONTHS.iter().position(|&n| n == month.as_bytes())? as u32 + 1;
    let day = digits(day, 1..=2)?;
    let mut hms = time.split(':').map(|p| digits(p, 2..=2));
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    // second 60 is a leap second (RFC 9110 §5.6.7); it reads as the next minute's first
    let valid = hms.next().is_none()
        && (1970..=9999).contains(&year)
        && (1..=days_in_month(year, month)).contains(&day)
        && h <= 23
        && mi <= 59
        && se <= 60;
    if !valid {
        return None;
    }
    // every factor is bounded above, so this is at most MAX + 1 (the leap second of the
    // last day), far from overflow
    let days = days_from_civil(i64::from(year), month, day) as u64;
    let secs = days * 86400 + u64::from(h * 3600 + mi * 60 + se);
    (secs <= MAX).then_some(secs)
}

/// A decimal number of as many ASCII digits as `len` allows, nothing else (no sign, no
/// space): at most four digits, so it cannot overflow.
fn digits(s: &str, len: std::ops::RangeInclusive<usize>) -> Option<u32> {
    debug_assert!(*len.end() <= 9);
    if !len.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0')))
}

/// RFC 9110 §5.6.7: a two-digit year more than 50 years ahead of `now` is the most recent
/// past year with those digits; so it is the one year with them from 49 years before
/// `now` to 50 after, whatever century that crosses.
fn two_digit_year(yy: u32, now: u64) -> u32 {
    let first = Civil::of(now.min(MAX)).year as u32 - 49;
    first + (yy + 100 - first % 100) % 100
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-05-28T20:26:40Z: where the tests stand to read two-digit years.
    const NOW: u64 = 1_780_000_000;
    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn formats_known_dates() {
        assert_eq!(&format(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format(NOV_6_1994), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&format(MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
        // past the last four-digit year: the last second, not a year cut to four digits
        assert_eq!(&format(MAX + 1), b"Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(&format(u64::MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn parses_all_three_formats() {
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
            "Sun, 6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse(s.as_bytes(), NOW), Some(NOV_6_1994), "{s}");
        }
    }

    #[test]
    fn accepts_the_edges_of_the_range() {
        let cases: &[(&str, u64)] = &[
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Fri, 31 Dec 9999 23:59:59 GMT", MAX),
            ("Fri Dec 31 23:59:59 9999", MAX),
            ("Friday, 31-Dec-9999 23:59:59 GMT", MAX),
            ("Tue, 29 Feb 2000 00:00:00 GMT", 951_782_400),
            ("Sat, 31 Dec 2016 23:59:60 GMT", 1_483_228_800),
        ];
        for &(s, want) in cases {
            assert_eq!(parse(s.as_bytes(), NOW), Some(want), "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
        ] {
            assert_eq!(parse(s.as_bytes(), NOW), None, "{s}");
        }
    }

    /// Numbers no calendar holds and numbers too long to be read: each is refused, none
    /// overflows (these wrapped to a 304 in a release build and panicked in a debug one).
    #[test]
    fn rejects_numbers_out_of_range() {
        for s in [
            // huge years, in every form
            "Sun Nov  6 08:49:37 99999999999999",
            "Sun Nov  6 08:49:37 99999999999999999999999999",
            "Sunday, 06-Nov-99999999999999 08:49:37 GMT",
            "Sunday, 06-Nov-9223372036854775807 08:49:37 GMT",
            "Sun, 06 Nov 99999999999999 08:49:37 GMT",
            "Sun Nov  6 08:49:37 10000",
            // years out of range
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Sun Nov  6 08:49:37 0000",
            "Sunday, 06-Nov-1969 08:49:37 GMT",
            // days, hours, minutes, seconds out of range, and huge
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Thu, 29 Feb 1900 00:00:00 GMT",
            "Sun, 29 Feb 1995 00:00:00 GMT",
            "Sun, 99999999999 Nov 1994 08:49:37 GMT",
            "Sun Nov 4294967302 08:49:37 1994",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 99999999999999999999:49:37 GMT",
            "Sun, 06 Nov 1994 18446744073709551617:00:00 GMT",
            "Sun, 06 Nov 1994 08:5124095576030431:37 GMT",
            "Sun, 06 Nov 1994 08:49:99999999999 GMT",
            // the leap second of the last day would be past MAX
            "Fri, 31 Dec 9999 23:59:60 GMT",
            // leading zeros, signs and spaces make a number longer than its form allows
            "Sun, 006 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 01994 08:49:37 GMT",
            "Sun, 06 Nov 1994 008:49:37 GMT",
            "Sun, 06 Nov 1994 08:049:37 GMT",
            "Sun, 06 Nov 1994 08:49:037 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun Nov  6 08:49:37 0001994",
            "Sun Nov 0000000006 08:49:37 1994",
            "Sunday, 06-Nov-094 08:49:37 GMT",
            "Sunday, 006-Nov-94 08:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 Nov -994 08:49:37 GMT",
            "Sun, 06 Nov 1994 +8:49:37 GMT",
            "Sunday, 06-Nov-+4 08:49:37 GMT",
        ] {
            assert_eq!(parse(s.as_bytes(), NOW), None, "{s}");
        }
    }

    /// RFC 850's two-digit year: the current century unless over 50 years ahead.
    #[test]
    fn two_digit_years_follow_the_fifty_year_rule() {
        let at = |y: &str, now: u64| parse(format!("Sunday, 06-Nov-{y} 08:49:37 GMT").as_bytes(), now);
        let year = |secs: Option<u64>| secs.map(|s| Civil::of(s).year);
        let cases: &[(&str, u64, Option<i64>)] = &[
            // in 2026: 2076 is exactly 50 years ahead, 2077 more
            ("94", NOW, Some(1994)),
            ("26", NOW, Some(2026)),
            ("70", NOW, Some(2070)),
            ("76", NOW, Some(2076)),
            ("77", NOW, Some(1977)),
            ("00", NOW, Some(2000)),
            // in 1970: 2020 is 50 years ahead, 1921 49 years back (and before the range)
            ("20", 0, Some(2020)),
            ("21", 0, None),
            ("70", 0, Some(1970)),
            ("94", 0, Some(1994)),
            // in 9999 the window reaches past the range, which still holds
            ("50", MAX, Some(9950)),
            ("99", MAX, Some(9999)),
            ("00", MAX, None),
            ("49", u64::MAX, None),
        ];
        for &(y, now, want) in cases {
            assert_eq!(year(at(y, now)), want, "{y} at {now}");
        }
    }

    #[test]
    fn round_trips() {
        for t in [0u64, 1, 86_399, 1_700_000_000, 4_102_444_800, MAX - 1, MAX] {
            assert_eq!(parse(&format(t), NOW), Some(t));
        }
    }
}
