//! HTTP-date (RFC 9110 §5.6.7): IMF-fixdate out, all three formats in.

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const LEN: usize = 29;

/// Format seconds since the Unix epoch as an IMF-fixdate.
pub fn format(secs: u64) -> [u8; LEN] {
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

/// Parse an HTTP-date in any of the three formats; `None` for anything else, which a
/// recipient of `If-Modified-Since` must ignore.
pub fn parse(v: &[u8]) -> Option<u64> {
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
        [_, d, m, y, t, "GMT"] if y.len() == 4 => (d, m, y.parse::<i64>().ok()?, t),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT", "", ""] => {
            let mut f = dmy.split('-');
            let (d, m, y) = (f.next()?, f.next()?, f.next()?);
            let y: i64 = y.parse().ok()?;
            // two-digit years within 50 years of now go to the recent past (§5.6.7)
            (d, m, if y < 70 { 2000 + y } else { 1900 + y }, t)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, m, d, t, y, ""] => (d, m, y.parse().ok()?, t),
        _ => return None,
    };
    let month = MONTHS.iter().position(|&n| n == month.as_bytes())? as u32 + 1;
    let day: u32 = day.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days as u64 * 86400 + h * 3600 + mi * 60 + se)
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

    #[test]
    fn formats_known_dates() {
        assert_eq!(&format(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn parses_all_three_formats() {
        for s in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse(s.as_bytes()), Some(784_111_777), "{s}");
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
        ] {
            assert_eq!(parse(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn round_trips() {
        for t in [0u64, 1, 86_399, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse(&format(t)), Some(t));
        }
    }
}
