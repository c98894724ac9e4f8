//! Per-path response header rules: set or remove fields of the responses to the paths a
//! glob matches. The head is edited once it is written, so a rule applies to every
//! response alike (200, 304, 206, redirects, errors); a response no rule matches is not
//! touched.

use super::glob::Glob;

/// Fields the framing or the connection depend on: a rule may neither set nor remove them.
const FRAMING: &[&str] =
    &["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "trailer", "content-range", "date"];

/// A field's name and value, as configured.
pub type Field = (Box<[u8]>, Box<[u8]>);

#[derive(Debug)]
pub struct HeaderRule {
    pub glob: Glob,
    /// Name and value, in the case given.
    pub set: Vec<Field>,
    pub remove: Vec<Box<[u8]>>,
    /// Only on TLS connections (HSTS: RFC 6797 §7.2 forbids it over plain HTTP).
    pub tls_only: bool,
}

impl HeaderRule {
    /// Checks every name (an RFC 9110 token, not a framing field) and value (visible
    /// ASCII, spaces and tabs; no CR, LF or NUL, which would split the response).
    pub fn new(glob: Glob, set: Vec<(String, String)>, remove: Vec<String>) -> Result<HeaderRule, String> {
        for (name, value) in &set {
            check_field(name, Some(value))?;
        }
        for name in &remove {
            check_field(name, None)?;
        }
        Ok(HeaderRule {
            glob,
            set: set.into_iter().map(|(n, v)| (n.into_bytes().into(), v.into_bytes().into())).collect(),
            remove: remove.into_iter().map(|n| n.into_bytes().into()).collect(),
            tls_only: false,
        })
    }

    /// `security_headers = true`: what testssl.sh and the usual audits ask of every
    /// response, HSTS on TLS connections only. Rules written after it may override any.
    pub fn security_preset() -> Vec<HeaderRule> {
        let all = || Glob::parse("/**").expect("a valid glob");
        let pairs = |fields: &[(&str, &str)]| fields.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let everywhere = HeaderRule::new(
            all(),
            pairs(&[
                ("X-Content-Type-Options", "nosniff"),
                ("X-Frame-Options", "SAMEORIGIN"),
                ("Referrer-Policy", "strict-origin-when-cross-origin"),
                ("Content-Security-Policy", "frame-ancestors 'self'"),
                ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
            ]),
            Vec::new(),
        );
        let hsts = HeaderRule::new(all(), pairs(&[("Strict-Transport-Security", "max-age=31536000")]), Vec::new());
        let mut hsts = hsts.expect("valid fields");
        hsts.tls_only = true;
        vec![everywhere.expect("valid fields"), hsts]
    }

    pub fn applies(&self, path: &[u8], tls: bool) -> bool {
        (tls || !self.tls_only) && self.glob.matches(path)
    }
}

/// A field a rule sets (with its value) or removes: why it may not, if it may not.
pub fn check_field(name: &str, value: Option<&str>) -> Result<(), String> {
    check_name(name)?;
    value.map_or(Ok(()), |v| check_value(name, v))
}

fn check_name(name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"));
    }
    if FRAMING.iter().any(|f| f.eq_ignore_ascii_case(name)) {
        return Err(format!("{name} is set by the server for the response's framing; it cannot be set or removed"));
    }
    Ok(())
}

fn check_value(name: &str, value: &str) -> Result<(), String> {
    let ok = |b: u8| b == b' ' || b == b'\t' || b.is_ascii_graphic();
    if !value.bytes().all(ok) || value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(format!(
            "the value of {name} must be visible ASCII with inner spaces only (no line breaks, no leading or \
             trailing space)"
        ));
    }
    Ok(())
}

/// Rewrite the head `head` (status line to the blank line, inclusive) under `rules`, in
/// order, into `out`: each removes the fields it names in `remove` and those it sets, then
/// adds what it sets before the blank line.
pub fn edit<'a>(head: &[u8], rules: impl IntoIterator<Item = &'a HeaderRule>, out: &mut Vec<u8>) {
    let mut current = head.strip_suffix(b"\r\n").unwrap_or(head).to_vec();
    for rule in rules {
        out.clear();
        for (i, line) in current.split_inclusive(|&b| b == b'\n').enumerate() {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let named = |n: &[u8]| n.eq_ignore_ascii_case(name);
            // Line 0 is the status line, never a field.
            if i > 0 && (rule.remove.iter().any(|n| named(n)) || rule.set.iter().any(|(n, _)| named(n))) {
                continue;
            }
            out.extend_from_slice(line);
        }
        for (name, value) in &rule.set {
            for piece in [&name[..], b": ", value, b"\r\n"] {
                out.extend_from_slice(piece);
            }
        }
        std::mem::swap(&mut current, out);
    }
    out.clear();
    out.extend_from_slice(&current);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(glob: &str, set: &[(&str, &str)], remove: &[&str]) -> HeaderRule {
        let set = set.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        HeaderRule::new(Glob::parse(glob).unwrap(), set, remove.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn rules_set_replace_and_remove_fields_in_order() {
        let head = b"HTTP/1.1 200 OK\r\nServer: c10k-server\r\nETag: \"x\"\r\nCache-Control: no-cache\r\n\r\n";
        let a = rule("/**", &[("cache-control", "max-age=60"), ("X-A", "1")], &["etag"]);
        let b = rule("/**", &[("X-A", "2")], &[]);
        let mut out = Vec::new();
        edit(head, [&a, &b], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: c10k-server\r\ncache-control: max-age=60\r\nX-A: 2\r\n\r\n"
        );
    }

    #[test]
    fn names_and_values_that_would_break_the_response_are_refused() {
        let glob = || Glob::parse("/**").unwrap();
        for (name, value, why) in [
            ("Content-Length", "1", "framing"),
            ("X A", "1", "not a header name"),
            ("", "1", "not a header name"),
            ("X-A", "a\r\nSet-Cookie: x", "visible ASCII"),
            ("X-A", " a", "visible ASCII"),
        ] {
            let e = HeaderRule::new(glob(), vec![(name.into(), value.into())], Vec::new()).unwrap_err();
            assert!(e.contains(why), "{name:?} {value:?}: {e}");
        }
        assert!(HeaderRule::new(glob(), Vec::new(), vec!["transfer-encoding".into()]).is_err());
    }

    #[test]
    fn hsts_is_for_tls_only() {
        let preset = HeaderRule::security_preset();
        let hsts = preset.iter().find(|r| r.set.iter().any(|(n, _)| &**n == b"Strict-Transport-Security")).unwrap();
        assert!(hsts.applies(b"/", true) && !hsts.applies(b"/", false));
        assert!(preset[0].applies(b"/a/b", false));
    }
}
