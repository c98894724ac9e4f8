//! Values of the request fields a static server acts on: Range, If-Range, If-None-Match,
//! Accept-Encoding. Each takes the raw field value and answers one question.

use super::parse::trim_ows;

/// How a `Range` field applies to a representation of `size` bytes (RFC 9110 §14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// Not a single byte range we serve partially (other unit, bad syntax, several
    /// ranges): answer with the whole representation.
    Whole,
    /// First and last byte, inclusive, clamped to the size.
    Part(u64, u64),
    Unsatisfiable,
}

/// Numbers are read with checked arithmetic: a position too large for a u64 lies past the
/// end of any file (a first byte: unsatisfiable; a last byte or suffix: to the end).
/// Several ranges are answered whole, so a list costs one scan for a comma.
pub fn byte_range(value: &[u8], size: u64) -> ByteRange {
    let Some(set) = strip_prefix_ci(value, b"bytes=") else {
        return ByteRange::Whole;
    };
    let set = trim_ows(set);
    if set.contains(&b',') {
        return ByteRange::Whole;
    }
    let Some(dash) = set.iter().position(|&b| b == b'-') else {
        return ByteRange::Whole;
    };
    let (Some(first), Some(last)) = (digits(&set[..dash]), digits(&set[dash + 1..])) else {
        return ByteRange::Whole;
    };
    match (first, last) {
        ([], []) => ByteRange::Whole,
        ([], suffix) => match number(suffix) {
            Some(0) => ByteRange::Unsatisfiable,
            _ if size == 0 => ByteRange::Unsatisfiable,
            n => ByteRange::Part(size - n.unwrap_or(u64::MAX).min(size), size - 1),
        },
        // compared as decimals, since either may be past u64::MAX
        (first, last) if !last.is_empty() && decimal_cmp(first, last).is_gt() => ByteRange::Whole,
        (first, last) => {
            let Some(first) = number(first) else { return ByteRange::Unsatisfiable };
            let last = if last.is_empty() { u64::MAX } else { number(last).unwrap_or(u64::MAX) };
            if first >= size { ByteRange::Unsatisfiable } else { ByteRange::Part(first, last.min(size - 1)) }
        }
    }
}

fn digits(v: &[u8]) -> Option<&[u8]> {
    v.iter().all(u8::is_ascii_digit).then_some(v)
}

fn number(v: &[u8]) -> Option<u64> {
    v.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
}

/// Order of two digit strings as numbers, however long.
fn decimal_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let significant = |v: &[u8]| {
        let zeros = v.iter().take_while(|&&d| d == b'0').count();
        v.len() - zeros
    };
    let (a, b) = (&a[a.len() - significant(a)..], &b[b.len() - significant(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_prefix_ci<'a>(v: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &v[prefix.len()..])
}

/// Entity-tags of a list field, each with its weakness: `(weak, opaque-tag with quotes)`.
/// `*` comes out as `(false, b"*")`. Stops at the first malformed element.
fn entity_tags(mut v: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    std::iter::from_fn(move || {
        while let [b' ' | b'\t' | b',', rest @ ..] = v {
            v = rest;
        }
        if let [b'*', rest @ ..] = v {
            v = rest;
            return Some((false, &b"*"[..]));
        }
        let (weak, tag) = match v {
            [b'W', b'/', rest @ ..] => (true, rest),
            _ => (false, v),
        };
        let [b'"', body @ ..] = tag else { return None };
        let end = body.iter().position(|&b| b == b'"')?;
        v = &body[end + 1..];
        Some((weak, &tag[..end + 2]))
    })
}

/// `If-None-Match` matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub fn none_match(value: &[u8], etag: &[u8]) -> bool {
    entity_tags(value).any(|(_, tag)| tag == b"*" || tag == etag)
}

/// `If-Range` holds: a strong entity-tag equal to `etag`, or a date equal to
/// `last_modified` (RFC 9110 §13.1.5). Otherwise, an invalid date included, the Range is
/// ignored. `now` places a two-digit year (`date::parse`).
pub fn if_range(value: &[u8], etag: &[u8], last_modified: u64, now: u64) -> bool {
    match value.first() {
        Some(b'"') | Some(b'W') => entity_tags(value).next().is_some_and(|(weak, tag)| !weak && tag == etag),
        _ => super::date::parse(value, now) == Some(last_modified),
    }
}

/// Content codings we can serve precompressed. The declaration order is the order that
/// breaks ties between codings the client weighs equally (`Coding::ALL`, `choose`): br
/// first, since at the high levels used to precompress it is usually the smallest for
/// text, the bulk of what is precompressed; then zstd, close in size and the fastest to
/// decode; then gzip, larger than both and slower to decode than zstd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Br,
    /// Zstandard, content-coding `zstd` (RFC 8878 §7.2).
    Zstd,
    Gzip,
}

impl Coding {
    /// Every coding, best first when equally preferred.
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The content-coding name, as `Content-Encoding` carries it and `Accept-Encoding`
    /// names it (the IANA HTTP Content Coding Registry).
    pub fn name(self) -> &'static [u8] {
        match self {
            Coding::Br => b"br",
            Coding::Zstd => b"zstd",
            Coding::Gzip => b"gzip",
        }
    }
}

/// Quality (in thousandths) the `Accept-Encoding` values give each coding we have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcceptEncoding {
    br: Option<u16>,
    zstd: Option<u16>,
    gzip: Option<u16>,
    any: Option<u16>,
}

impl AcceptEncoding {
    /// Fold in one `Accept-Encoding` field value.
    pub fn add(&mut self, value: &[u8]) {
        for element in value.split(|&b| b == b',') {
            let mut params = element.split(|&b| b == b';');
            let coding = trim_ows(params.next().unwrap_or_default());
            let q =
                params.find_map(|p| strip_prefix_ci(trim_ows(p), b"q=")).map_or(Some(1000), |q| qvalue(trim_ows(q)));
            let Some(q) = q else { continue };
            let slot = if coding.eq_ignore_ascii_case(b"br") {
                &mut self.br
            } else if coding.eq_ignore_ascii_case(b"zstd") {
                &mut self.zstd
            } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
                &mut self.gzip
            } else if coding == b"*" {
                &mut self.any
            } else {
                continue;
            };
            *slot = Some(q);
        }
    }

    fn quality(&self, c: Coding) -> u16 {
        let explicit = match c {
            Coding::Br => self.br,
            Coding::Zstd => self.zstd,
            Coding::Gzip => self.gzip,
        };
        explicit.or(self.any).unwrap_or(0)
    }

    /// The coding to serve among those `available`, or `None` for identity: the highest
    /// quality above 0, ties broken by `Coding`'s order whatever order `available` is in.
    pub fn choose(&self, available: impl Iterator<Item = Coding>) -> Option<Coding> {
        let mut best: Option<(Coding, u16)> = None;
        for c in available {
            let q = self.quality(c);
            if q > 0 && best.is_none_or(|(bc, bq)| q > bq || (q == bq && (c as u8) < (bc as u8))) {
                best = Some((c, q));
            }
        }
        best.map(|(c, _)| c)
    }
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths: three
/// digits at most, so at most 999 before the integer part is checked.
pub fn qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteRange::*;

    /// 2026-05-28: where the tests stand to read two-digit years.
    const NOW: u64 = 1_780_000_000;

    #[test]
    fn ranges() {
        let cases: &[(&str, u64, ByteRange)] = &[
            ("bytes=0-4", 10, Part(0, 4)),
            ("bytes=5-", 10, Part(5, 9)),
            ("bytes=-3", 10, Part(7, 9)),
            ("bytes=-30", 10, Part(0, 9)),
            ("bytes=2-100", 10, Part(2, 9)),
            ("BYTES=1-1", 10, Part(1, 1)),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-1", 10, Whole),
            ("bytes=0-1,3-4", 10, Whole),
            ("items=0-1", 10, Whole),
            ("bytes=a-1", 10, Whole),
            ("bytes=-", 10, Whole),
            ("bytes=1", 10, Whole),
            ("bytes=99999999999999999999-", 10, Unsatisfiable),
        ];
        for &(v, size, want) in cases {
            assert_eq!(byte_range(v.as_bytes(), size), want, "{v} of {size}");
        }
    }

    /// Positions of any length: read with checked arithmetic, never wrapped.
    #[test]
    fn ranges_with_huge_numbers() {
        let max = u64::MAX;
        let cases: &[(&str, u64, ByteRange)] = &[
            ("bytes=0-99999999999999999999999999999", 10, Part(0, 9)),
            ("bytes=5-18446744073709551616", 10, Part(5, 9)),
            ("bytes=-99999999999999999999999999999", 10, Part(0, 9)),
            ("bytes=-18446744073709551615", 10, Part(0, 9)),
            ("bytes=18446744073709551615-", 10, Unsatisfiable),
            ("bytes=18446744073709551616-18446744073709551617", 10, Unsatisfiable),
            ("bytes=18446744073709551617-18446744073709551616", 10, Whole),
            ("bytes=000018446744073709551617-18446744073709551617", 10, Unsatisfiable),
            ("bytes=18446744073709551614-", max, Part(max - 1, max - 1)),
            ("bytes=0-", max, Part(0, max - 1)),
            ("bytes=-1", max, Part(max - 1, max - 1)),
            ("bytes=00000000000000000000000000000005-000000000000000000000000000006", 10, Part(5, 6)),
            // an overflowing first position after its last, or with a bad last one, is
            // invalid, not too far
            ("bytes=99999999999999999999-x", 10, Whole),
            ("bytes=99999999999999999999-1", 10, Whole),
            ("bytes=+5-6", 10, Whole),
            ("bytes=5--6", 10, Whole),
        ];
        for &(v, size, want) in cases {
            assert_eq!(byte_range(v.as_bytes(), size), want, "{v} of {size}");
        }
        let many = format!("bytes={}0-0", "0-0,".repeat(10_000));
        assert_eq!(byte_range(many.as_bytes(), 10), Whole);
    }

    #[test]
    fn if_range_dates_out_of_range_are_ignored() {
        let etag = b"\"abc\"";
        for v in [
            "Sun Nov  6 08:49:37 99999999999999",
            "Sunday, 06-Nov-99999999999999 08:49:37 GMT",
            "Sun, 06 Nov 99999999999999 08:49:37 GMT",
            "Sun, 06 Nov 1994 99999999999999999999:49:37 GMT",
        ] {
            // whatever the wrapped value would have been, it equals no mtime
            for mtime in [0, 784_111_777, u64::MAX] {
                assert!(!if_range(v.as_bytes(), etag, mtime, NOW), "{v} against {mtime}");
            }
        }
        assert!(if_range(b"Sunday, 06-Nov-94 08:49:37 GMT", etag, 784_111_777, NOW));
    }

    #[test]
    fn if_none_match_lists() {
        let etag = b"\"abc\"";
        for v in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*", " \"x\" ,W/\"abc\""] {
            assert!(none_match(v.as_bytes(), etag), "{v}");
        }
        for v in ["\"abcd\"", "abc", "\"ab\"", ""] {
            assert!(!none_match(v.as_bytes(), etag), "{v}");
        }
    }

    #[test]
    fn if_range_is_strong() {
        assert!(if_range(b"\"abc\"", b"\"abc\"", 0, NOW));
        assert!(!if_range(b"W/\"abc\"", b"\"abc\"", 0, NOW));
        assert!(if_range(b"Sun, 06 Nov 1994 08:49:37 GMT", b"\"abc\"", 784_111_777, NOW));
        assert!(!if_range(b"Sun, 06 Nov 1994 08:49:38 GMT", b"\"abc\"", 784_111_777, NOW));
    }

    #[test]
    fn accept_encoding_choice() {
        let both = || [Coding::Br, Coding::Gzip].into_iter();
        let pick = |v: &str| {
            let mut ae = AcceptEncoding::default();
            ae.add(v.as_bytes());
            ae.choose(both())
        };
        assert_eq!(pick("gzip, deflate, br"), Some(Coding::Br));
        assert_eq!(pick("gzip"), Some(Coding::Gzip));
        assert_eq!(pick("gzip;q=0.5, br;q=0.4"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0, gzip;q=0"), None);
        assert_eq!(pick("*;q=0.1, br;q=0"), Some(Coding::Gzip));
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("gzip;q=0.000"), None);
        assert_eq!(pick("gzip;q=2"), None);
        // q-values of many digits, or leading zeros, are not qvalues: the coding is skipped
        assert_eq!(pick("gzip;q=0.0001"), None);
        assert_eq!(pick("gzip;q=00000000000000000000.5"), None);
        assert_eq!(pick("gzip;q=0.99999999999999999999999"), None);
        assert_eq!(pick("gzip;q=1.0001, br;q=0.001"), Some(Coding::Br));
        assert_eq!(pick("gzip;q=65536, br;q=1."), Some(Coding::Br));
        assert_eq!(pick("gzip;q=0.999, br;q=0.998"), Some(Coding::Gzip));
        assert_eq!(pick(""), None);
    }

    #[test]
    fn accept_encoding_with_zstd() {
        let pick_from = |v: &str, available: &[Coding]| {
            let mut ae = AcceptEncoding::default();
            ae.add(v.as_bytes());
            ae.choose(available.iter().copied())
        };
        let all = &Coding::ALL[..];
        let pick = |v: &str| pick_from(v, all);
        // what browsers send today: every coding at q=1, br wins the tie
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Coding::Br));
        assert_eq!(pick("zstd"), Some(Coding::Zstd));
        assert_eq!(pick("ZSTD"), Some(Coding::Zstd));
        assert_eq!(pick("br;q=0.5, zstd"), Some(Coding::Zstd));
        assert_eq!(pick("br;q=0.1, zstd;q=0.9"), Some(Coding::Zstd));
        assert_eq!(pick("zstd;q=0.5, gzip;q=0.6"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0, zstd, gzip"), Some(Coding::Zstd), "zstd before gzip on a tie");
        assert_eq!(pick("br;q=0, zstd;q=0, gzip;q=0"), None);
        assert_eq!(pick("*"), Some(Coding::Br));
        assert_eq!(pick("*, br;q=0"), Some(Coding::Zstd));
        assert_eq!(pick("zstd;q=0, *"), Some(Coding::Br));
        // a later element for the same coding wins
        assert_eq!(pick("zstd;q=0.2, br;q=0.5, zstd;q=0.9"), Some(Coding::Zstd));
        // only a .zst beside the file
        let zstd = &[Coding::Zstd][..];
        assert_eq!(pick_from("zstd;q=0", zstd), None);
        assert_eq!(pick_from("gzip, br", zstd), None);
        assert_eq!(pick_from("gzip, deflate, br, zstd", zstd), Some(Coding::Zstd));
        assert_eq!(pick_from("*;q=0.001", zstd), Some(Coding::Zstd));
        assert_eq!(pick_from("*;q=0.5, zstd;q=0", zstd), None);
        // ties go by Coding's order, not by the order the codings are offered in
        for offered in [[Coding::Gzip, Coding::Zstd, Coding::Br], [Coding::Zstd, Coding::Gzip, Coding::Br]] {
            assert_eq!(pick_from("gzip, zstd, br", &offered), Some(Coding::Br));
            assert_eq!(pick_from("gzip, zstd", &offered), Some(Coding::Zstd));
        }
        assert_eq!(pick_from("gzip, zstd", &[Coding::Gzip, Coding::Zstd]), Some(Coding::Zstd));
    }

    #[test]
    fn coding_names() {
        let names: Vec<&[u8]> = Coding::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, [&b"br"[..], b"zstd", b"gzip"]);
        // the declaration order is the tie order `choose` relies on
        for (i, c) in Coding::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "{c:?}");
        }
    }
}
