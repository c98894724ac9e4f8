//! Properties of the numbers the http core reads from field values, on generated inputs:
//! HTTP-dates, Range, If-None-Match and If-Range, Accept-Encoding. Nothing panics or
//! wraps, whatever the bytes; what comes out lies within its bounds; and where a number
//! is read, it agrees with the same reading done in u128, far from any overflow.

use c10k_server::http::date::{self, Civil, MAX};
use c10k_server::http::fields::{AcceptEncoding, ByteRange, Coding, byte_range, if_range, none_match};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;

/// `cases` cases; a failing case is kept beside this file and tried first next time.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

/// A wall clock anywhere from the epoch to past the last four-digit year.
fn now() -> impl Strategy<Value = u64> {
    prop_oneof![0..=MAX, Just(0), Just(MAX), any::<u64>()]
}

/// A run of decimal digits, short or far too long for any number it could be.
fn digit_run(max: usize) -> impl Strategy<Value = String> {
    vec(select(&b"0123456789"[..]), 0..=max).prop_map(|d| String::from_utf8(d).unwrap())
}

/// Bytes shaped like dates: names, separators and numbers of any length, in any order,
/// so that many come close to one of the three forms.
fn date_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        select(vec!["Sun", "Sunday", "Nov", "Feb", "Dec", "GMT", "UTC", " ", ", ", "  ", "-", ":", "\t"])
            .prop_map(String::from),
        digit_run(24),
        (0u32..100).prop_map(|n| format!("{n:02}")),
        (1900u32..10100).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
    ];
    vec(piece, 0..14).prop_map(|p| p.concat().into_bytes())
}

/// Bytes in one of the three forms, each field valid, out of range, or digits of any
/// length: the shape reaches every number the parser reads.
fn date_shaped() -> impl Strategy<Value = Vec<u8>> {
    // mostly in range, so that the other fields are too when one is not
    let number = |range: std::ops::Range<u64>, width: usize| {
        prop_oneof![
            6 => range.prop_map(move |n| format!("{n:0width$}")),
            1 => digit_run(24),
            1 => any::<u64>().prop_map(|n| n.to_string()),
        ]
    };
    let month = select(vec!["Jan", "Feb", "Nov", "Dec", "Dec", "nov", "Foo"]);
    let (day, year, yy) = (number(1..32, 2), number(1900..10_100, 4), number(0..100, 2));
    let time = (number(0..25, 2), number(0..61, 2), number(0..62, 2));
    (day, month, year, yy, time, 0..3u8).prop_map(|(d, m, y, yy, (h, mi, s), form)| {
        match form {
            0 => format!("Sun, {d} {m} {y} {h}:{mi}:{s} GMT"),
            1 => format!("Sunday, {d}-{m}-{yy} {h}:{mi}:{s} GMT"),
            _ => format!("Sun {m} {d} {h}:{mi}:{s} {y}"),
        }
        .into_bytes()
    })
}

/// The other two forms of `t`: RFC 850 with a two- and a four-digit year, and asctime.
fn other_forms(t: u64) -> [String; 3] {
    let c = Civil::of(t);
    let (mon, time) = (c.month_name(), format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second));
    [
        format!("Sunday, {:02}-{mon}-{:02} {time} GMT", c.day, c.year % 100),
        format!("Sunday, {:02}-{mon}-{} {time} GMT", c.day, c.year),
        format!("Sun {mon} {:2} {time} {}", c.day, c.year),
    ]
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn dates_round_trip(t in 0..=MAX, now in now()) {
        prop_assert_eq!(date::parse(&date::format(t), now), Some(t));
        let [two, four, asctime] = other_forms(t);
        prop_assert_eq!(date::parse(four.as_bytes(), now), Some(t), "{}", four);
        prop_assert_eq!(date::parse(asctime.as_bytes(), now), Some(t), "{}", asctime);
        // a two-digit year is read within 49 years back and 50 ahead of now
        let (year, this) = (Civil::of(t).year, Civil::of(now.min(MAX)).year);
        let read = date::parse(two.as_bytes(), now).map(|s| Civil::of(s).year);
        if (this - 49..=this + 50).contains(&year) {
            prop_assert_eq!(read, Some(year), "{} at {}", two, now);
        } else {
            prop_assert_ne!(read, Some(year), "{} at {}", two, now);
        }
    }

    #[test]
    fn dates_parsed_lie_in_range(v in prop_oneof![date_shaped(), date_like(), vec(any::<u8>(), 0..48)], now in now()) {
        if let Some(t) = date::parse(&v, now) {
            prop_assert!(t <= MAX, "{:?} gave {}", String::from_utf8_lossy(&v), t);
            prop_assert!((1970..=9999).contains(&Civil::of(t).year));
        }
    }

    /// Each number of a date, whatever its length: in range it is read, else refused.
    #[test]
    fn date_numbers_of_any_length(day in digit_run(12), hour in digit_run(22), year in digit_run(22), now in now()) {
        let imf = format!("Sun, {day} Nov {year} {hour}:49:37 GMT");
        let asctime = format!("Sun Nov {day} {hour}:49:37 {year}");
        let rfc850 = format!("Sunday, {day}-Nov-{year} {hour}:49:37 GMT");
        let (d, h, y) = (day.parse::<u128>().ok(), hour.parse::<u128>().ok(), year.parse::<u128>().ok());
        let fits = matches!(day.len(), 1..=2) && hour.len() == 2 && d.is_some_and(|d| (1..=30).contains(&d))
            && h.is_some_and(|h| h < 24);
        let four = year.len() == 4 && y.is_some_and(|y| (1970..=9999).contains(&y));
        prop_assert_eq!(date::parse(imf.as_bytes(), now).is_some(), fits && four, "{}", imf);
        prop_assert_eq!(date::parse(asctime.as_bytes(), now).is_some(), fits && four, "{}", asctime);
        if year.len() != 2 {
            prop_assert_eq!(date::parse(rfc850.as_bytes(), now).is_some(), fits && four, "{}", rfc850);
        }
    }
}

/// `byte_range` done in u128: positions of up to 30 digits never overflow it.
fn range_oracle(first: &str, last: &str, size: u64) -> ByteRange {
    let size = u128::from(size);
    let part = |a: u128, b: u128| ByteRange::Part(a as u64, b as u64);
    match (first.parse::<u128>().ok(), last.parse::<u128>().ok()) {
        (None, None) => ByteRange::Whole,
        (None, Some(0)) => ByteRange::Unsatisfiable,
        (None, Some(_)) if size == 0 => ByteRange::Unsatisfiable,
        (None, Some(n)) => part(size - n.min(size), size - 1),
        (Some(f), l) => match l.unwrap_or(u128::MAX) {
            l if f > l => ByteRange::Whole,
            _ if f >= size => ByteRange::Unsatisfiable,
            l => part(f, l.min(size - 1)),
        },
    }
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0..200u64, any::<u64>(), Just(u64::MAX), Just(0)]
}

/// Bytes shaped like Range values.
fn range_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        select(vec!["bytes=", "BYTES=", "items=", "-", ",", " ", "\t", "+", "x"]).prop_map(String::from),
        digit_run(30),
        any::<u64>().prop_map(|n| n.to_string()),
    ];
    vec(piece, 0..10).prop_map(|p| p.concat().into_bytes())
}

const TAG_PIECES: &[&[u8]] = &[b"\"abc\"", b"W/", b"\"", b",", b" ", b"*", b"abc", b"W/\"abc\""];

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn ranges_lie_within_the_file(v in prop_oneof![range_like(), vec(any::<u8>(), 0..40)], size in size()) {
        if let ByteRange::Part(first, last) = byte_range(&v, size) {
            prop_assert!(first <= last && last < size, "{:?} of {}", String::from_utf8_lossy(&v), size);
        }
    }

    #[test]
    fn ranges_agree_with_wide_arithmetic(first in digit_run(30), last in digit_run(30), size in size()) {
        let v = format!("bytes={first}-{last}");
        prop_assert_eq!(byte_range(v.as_bytes(), size), range_oracle(&first, &last, size), "{} of {}", v, size);
    }

    /// A match is only ever for the tag itself or `*`; nothing panics on any list.
    #[test]
    fn entity_tag_lists(v in vec(prop_oneof![
        select(TAG_PIECES).prop_map(<[u8]>::to_vec),
        vec(any::<u8>(), 0..6),
    ], 0..10).prop_map(|p| p.concat()), mtime in 0..=MAX, now in now()) {
        let etag = b"\"abc\"";
        let has = |v: &[u8], n: &[u8]| v.windows(n.len()).any(|w| w == n);
        if none_match(&v, etag) {
            prop_assert!(has(&v, etag) || v.contains(&b'*'));
        }
        if if_range(&v, etag, mtime, now) {
            prop_assert!(has(&v, etag) || date::parse(&v, now) == Some(mtime));
        }
    }

    #[test]
    fn accept_encoding_never_panics(v in vec(any::<u8>(), 0..64), w in vec(select(&b"gzipbr*;q=0.1, "[..]), 0..40)) {
        let mut ae = AcceptEncoding::default();
        ae.add(&v);
        ae.add(&w);
        prop_assert_eq!(ae.choose(std::iter::empty()), None);
        // a later element for the same coding wins, so this refuses both
        ae.add(b"br;q=0, gzip;q=0, x-gzip;q=0, *;q=0");
        prop_assert_eq!(ae.choose([Coding::Br, Coding::Gzip].into_iter()), None);
    }

    /// q-values of any length: what is a qvalue is read in thousandths, the rest refused.
    #[test]
    fn qvalues_of_any_length(bi in digit_run(6), bf in prop::option::of(digit_run(6)),
                             gi in digit_run(6), gf in prop::option::of(digit_run(6))) {
        let q = |int: &str, frac: &Option<String>| -> Option<u32> {
            let frac = frac.as_deref().unwrap_or("");
            let thousandths = format!("{frac:0<3}").parse::<u32>().ok()?;
            match int {
                _ if frac.len() > 3 => None,
                "0" => Some(thousandths),
                "1" if thousandths == 0 => Some(1000),
                _ => None,
            }
        };
        let text = |int: &str, frac: &Option<String>| match frac {
            Some(f) => format!("{int}.{f}"),
            None => int.to_string(),
        };
        let mut ae = AcceptEncoding::default();
        ae.add(format!("br;q={}, gzip;q={}", text(&bi, &bf), text(&gi, &gf)).as_bytes());
        let (br, gzip) = (q(&bi, &bf).unwrap_or(0), q(&gi, &gf).unwrap_or(0));
        let want = match (br, gzip) {
            (0, 0) => None,
            (b, g) if b >= g => Some(Coding::Br),
            _ => Some(Coding::Gzip),
        };
        prop_assert_eq!(ae.choose([Coding::Br, Coding::Gzip].into_iter()), want, "br {:?} gzip {:?}", br, gzip);
    }
}
