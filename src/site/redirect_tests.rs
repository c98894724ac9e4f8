use super::*;
use crate::files::normalize;
use proptest::prelude::*;

fn rule(from: &str, to: &str) -> Redirect {
    Redirect::new(from, to, 301).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"))
}

/// The Location for `path` (decoded, with its leading `/`), or None.
fn location(rule: &Redirect, path: &str, query: Option<&str>) -> Option<String> {
    let (mut scratch, mut location) = (Vec::new(), Vec::new());
    rule.apply(path.as_bytes(), query.map(str::as_bytes), &mut scratch, &mut location)?;
    Some(String::from_utf8(location).unwrap())
}

#[test]
fn an_exact_rule_matches_its_path_only() {
    let r = rule("/old.html", "/new.html");
    assert_eq!(location(&r, "/old.html", None).as_deref(), Some("/new.html"));
    assert_eq!(location(&r, "/old.html/x", None), None);
    assert_eq!(location(&r, "/old.htm", None), None);
}

#[test]
fn captures_fill_the_location() {
    let r = rule("/old/*", "/new/$1");
    assert_eq!(location(&r, "/old/a.html", None).as_deref(), Some("/new/a.html"));
    assert_eq!(location(&r, "/old/a/b", None), None);
    let r = rule("/blog/**", "https://blog.example.com/$1");
    assert_eq!(location(&r, "/blog/2024/post", None).as_deref(), Some("https://blog.example.com/2024/post"));
    let r = rule("/u/*/*", "/users/$2/$1?cost=$$5");
    assert_eq!(location(&r, "/u/a/b", None).as_deref(), Some("/users/b/a?cost=$5"));
}

#[test]
fn the_query_is_carried_unless_to_has_one() {
    let r = rule("/a", "/b");
    assert_eq!(location(&r, "/a", Some("x=1&y=%20")).as_deref(), Some("/b?x=1&y=%20"));
    assert_eq!(location(&r, "/a", Some("")).as_deref(), Some("/b"));
    let r = rule("/a", "/b?lang=en");
    assert_eq!(location(&r, "/a", Some("x=1")).as_deref(), Some("/b?lang=en"));
}

#[test]
fn captured_bytes_are_percent_encoded() {
    let r = rule("/old/*", "https://example.com/$1");
    let cases = [
        ("/old/a b%c", "https://example.com/a%20b%25c"),
        ("/old/q?x#y", "https://example.com/q%3Fx%23y"),
        ("/old/é\"<>", "https://example.com/%C3%A9%22%3C%3E"),
        ("/old/-._~!$&'()*+,;=:@", "https://example.com/-._~!$&'()*+,;=:@"),
    ];
    for (path, expected) in cases {
        assert_eq!(location(&r, path, None).as_deref(), Some(expected), "{path}");
    }
}

#[test]
fn each_status_is_given() {
    for (code, status) in [
        (301, RedirectStatus::Moved),
        (302, RedirectStatus::Found),
        (307, RedirectStatus::Temporary),
        (308, RedirectStatus::Permanent),
    ] {
        let r = Redirect::new("/a", "/b", code).unwrap();
        assert_eq!(r.apply(b"/a", None, &mut Vec::new(), &mut Vec::new()), Some(status));
        assert_eq!(status.code(), code);
    }
}

#[test]
fn a_location_the_root_would_refuse_is_not_given() {
    // An empty capture would make `//x`, another host to a client.
    assert_eq!(location(&rule("/*", "/$1/x"), "/", None), None);
    assert_eq!(location(&rule("/*", "/$1/x"), "/a", None).as_deref(), Some("/a/x"));
    // Part of a segment captured becomes a whole one.
    assert_eq!(location(&rule("/x*", "/$1"), "/x..", None), None);
    assert_eq!(location(&rule("/x*", "/$1"), "/x.env", None), None);
    assert_eq!(location(&rule("/x*", "/a/$1"), "/x.", None), None);
    assert_eq!(location(&rule("/x*", "/a$1"), "/x..", None).as_deref(), Some("/a.."));
    // An absolute Location leads to another root: its path is the rule's business.
    assert_eq!(location(&rule("/x*", "https://h.example/$1"), "/x..", None).as_deref(), Some("https://h.example/.."));
}

#[test]
fn bad_rules_say_what_is_wrong() {
    for (from, to, status, error) in [
        ("/a", "/b", 303, "status 303 is not a redirect: use 301, 302, 307 or 308"),
        ("a", "/b", 301, "from \"a\" does not start with /"),
        ("*", "/b", 301, "from \"*\" does not start with /"),
        ("/a/{b", "/b", 301, "from: unclosed { at byte 3"),
        ("/a", "", 301, "to \"\" starts with none of /, http:// and https://"),
        ("/a", "ftp://h/x", 301, "to \"ftp://h/x\" starts with none of /, http:// and https://"),
        ("/a", "//evil.example/", 301, "to starts with //, which a client takes for another host"),
        ("/a", "https:///x", 301, "to has no host after ://"),
        (
            "/*",
            "https://$1.example.com/",
            301,
            "$ at byte 8 of to is in its scheme or host, which a request could then choose",
        ),
        (
            "/*",
            "https://example.com$1",
            301,
            "$ at byte 19 of to is in its scheme or host, which a request could then choose",
        ),
        ("/*", "$1", 301, "to \"$1\" starts with none of /, http:// and https://"),
        ("/*", "/$2", 301, "to names $2 but from has 1 wildcards"),
        ("/*", "/$0", 301, "$ at byte 1 of to names no capture ($1 to $9; $$ for a $)"),
        ("/*", "/$", 301, "$ at byte 1 of to names no capture ($1 to $9; $$ for a $)"),
        ("/a", "/b#top", 301, "to has a fragment (# at byte 2), which a carried query would follow"),
        ("/a", "/b c", 301, "byte 2 of to (' ') has no place in a URI: percent-encode it"),
        ("/a", "/b\\c", 301, "byte 2 of to ('\\\\') has no place in a URI: percent-encode it"),
        ("/a", "/b%zz", 301, "% at byte 2 of to is not followed by two hex digits"),
        ("/a", "/../b", 301, "to \"/../b\" names a ., .. or hidden segment, or an escaped NUL or backslash"),
        ("/a", "/.env", 301, "to \"/.env\" names a ., .. or hidden segment, or an escaped NUL or backslash"),
        ("/a", "/%2e%2E/b", 301, "to \"/%2e%2E/b\" names a ., .. or hidden segment, or an escaped NUL or backslash"),
        ("/a", "/b%5c", 301, "to \"/b%5c\" names a ., .. or hidden segment, or an escaped NUL or backslash"),
    ] {
        assert_eq!(Redirect::new(from, to, status).err().as_deref(), Some(error), "{from} -> {to}");
    }
    // Captures are free after the host, and `?` ends it too.
    assert!(Redirect::new("/*", "https://example.com?u=$1", 301).is_ok());
}

/// Scheme and authority: up to the first byte a client ends them at (a WHATWG parser
/// takes `\` for `/` in http and https).
fn origin(url: &[u8]) -> &[u8] {
    let host_at = url.windows(3).position(|w| w == b"://").expect("absolute") + 3;
    let end = url[host_at..].iter().position(|b| b"/?#\\".contains(b)).map_or(url.len(), |i| host_at + i);
    &url[..end]
}

fn target() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/", "/", "/", "old", "a", "x", ".", "..", "%2e", "%2E", "%5c", "\\", "%2f", "%00", " ", "%20", "@", ":", "é",
        "%25", "?", "#", "b",
    ]);
    (prop::sample::select(vec!["/", "http://h/", "/old/"]), prop::collection::vec(piece, 0..8))
        .prop_map(|(start, pieces)| format!("{start}{}", pieces.concat()))
}

fn rule_and_to() -> impl Strategy<Value = (Redirect, String)> {
    let from = prop::sample::select(vec![
        "/*",
        "/**",
        "/old/*",
        "/old/**",
        "/a*",
        "/*a",
        "/x*",
        "/*.*",
        "/**/a",
        "/a/**",
        "/*/*",
        "/{a,x}*",
        "/?*",
        "/**/*",
        "/*:*",
        "/*@*",
        "/*/**",
        "/*%*",
        "/{old,a}/**/*",
    ]);
    let to = prop::sample::select(vec![
        "/$1",
        "/new/$1",
        "/$1/$2",
        "/x$1",
        "/$1x",
        "/$2$1",
        "/$1?x=1",
        "/$1/$2/$3",
        "/$$$1",
        "/a/$1.$2",
        "/",
        "https://example.com/$1",
        "https://example.com/$2/$1",
        "http://h.example:8080/a$1b",
        "https://example.com?u=$1",
        "https://user@example.com/$1",
        "https://example.com",
        "http://[::1]/$1",
        // Refused by `new`: were they not, a request would choose the host.
        "https://$1.example.com/",
        "https://example.com$1",
        "//$1",
        "/$1",
    ]);
    let status = prop::sample::select(vec![301u16, 302, 307, 308]);
    (from, to, status).prop_filter_map("a valid rule", |(from, to, status)| {
        Redirect::new(from, to, status).ok().map(|r| (r, to.to_string()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]
    /// No rule sends a request out of its root or to another host: a relative Location
    /// has one leading `/` and normalises (so no `..` above the root, nothing hidden); an
    /// absolute one keeps the scheme and authority its rule wrote.
    #[test]
    fn no_location_leaves_the_root_or_the_host((rule, to) in rule_and_to(), target in target()) {
        let (mut decoded, mut path) = (Vec::new(), Vec::new());
        let Ok(t) = normalize(target.as_bytes(), &mut decoded, &mut path) else { return Ok(()) };
        let path = [b"/", &path[..]].concat();
        let (mut scratch, mut location) = (Vec::new(), Vec::new());
        if rule.apply(&path, t.query, &mut scratch, &mut location).is_none() {
            return Ok(());
        }
        if to.starts_with('/') {
            prop_assert_eq!(location[0], b'/');
            prop_assert!(!matches!(location.get(1), Some(b'/' | b'\\')), "{:?}", String::from_utf8_lossy(&location));
            let (mut decoded, mut normalized) = (Vec::new(), Vec::new());
            let followed = normalize(&location, &mut decoded, &mut normalized);
            prop_assert!(followed.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&location), followed);
            prop_assert!(normalized.split(|&b| b == b'/').all(|s| s != b".."));
        } else {
            prop_assert_eq!(origin(&location), origin(to.as_bytes()), "{:?}", String::from_utf8_lossy(&location));
        }
    }
}
