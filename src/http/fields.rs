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
    let (first, last) = (&set[..dash], &set[dash + 1..]);
    match (digits(first), digits(last)) {
        (Some(first), last) if !first.is_empty() => {
            let Some(first) = number(first) else { return ByteRange::Unsatisfiable };
            let last = match last {
                Some([]) => u64::MAX,
                Some(l) => number(l).unwrap_or(u64::MAX),
                None => return ByteRange::Whole,
            };
            if first > last {
                ByteRange::Whole
            } else if first >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part(first, last.min(size - 1))
            }
        }
        (Some([]), Some(suffix)) if !suffix.is_empty() => match number(suffix) {
            Some(0) => ByteRange::Unsatisfiable,
            _ if size == 0 => ByteRange::Unsatisfiable,
            n => ByteRange::Part(size - n.unwrap_or(u64::MAX).min(size), size - 1),
        },
        _ => ByteRange::Whole,
    }
}

fn digits(v: &[u8]) -> Option<&[u8]> {
    v.iter().all(u8::is_ascii_digit).then_some(v)
}

fn number(v: &[u8]) -> Option<u64> {
    v.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
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
/// `last_modified` (RFC 9110 §13.1.5). Otherwise the Range is ignored.
pub fn if_range(value: &[u8], etag: &[u8], last_modified: u64) -> bool {
    match value.first() {
        Some(b'"') | Some(b'W') => entity_tags(value).next().is_some_and(|(weak, tag)| !weak && tag == etag),
        _ => super::date::parse(value) == Some(last_modified),
    }
}

/// Content codings we can serve precompressed, best first when equally preferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
}

/// Quality (in thousandths) the `Accept-Encoding` values give each coding we have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcceptEncoding {
    br: Option<u16>,
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
            Coding::Gzip => self.gzip,
        };
        explicit.or(self.any).unwrap_or(0)
    }

    /// The coding to serve among those `available`, or `None` for identity.
    pub fn choose(&self, available: impl Iterator<Item = Coding>) -> Option<Coding> {
        let mut best: Option<(Coding, u16)> = None;
        for c in available {
            let q = self.quality(c);
            if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((c, q));
            }
        }
        best.map(|(c, _)| c)
    }
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
fn qvalue(v: &[u8]) -> Option<u16> {
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
        assert!(if_range(b"\"abc\"", b"\"abc\"", 0));
        assert!(!if_range(b"W/\"abc\"", b"\"abc\"", 0));
        assert!(if_range(b"Sun, 06 Nov 1994 08:49:37 GMT", b"\"abc\"", 784_111_777));
        assert!(!if_range(b"Sun, 06 Nov 1994 08:49:38 GMT", b"\"abc\"", 784_111_777));
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
        assert_eq!(pick(""), None);
    }
}
