use super::*;
use proptest::prelude::*;

fn glob(pattern: &str) -> Glob {
    Glob::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
}

/// The captured bytes, as strings, or None when the path does not match.
fn captured(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut ranges = Vec::new();
    let matched = glob(pattern).captures(path.as_bytes(), &mut ranges);
    assert_eq!(matched, glob(pattern).matches(path.as_bytes()), "{pattern} on {path}");
    matched.then(|| ranges.into_iter().map(|r| path[r].to_string()).collect())
}

fn assert_matches(pattern: &str, yes: &[&str], no: &[&str]) {
    for path in yes {
        assert!(glob(pattern).matches(path.as_bytes()), "{pattern} should match {path}");
    }
    for path in no {
        assert!(!glob(pattern).matches(path.as_bytes()), "{pattern} should not match {path}");
    }
}

#[test]
fn literal_patterns_match_exactly() {
    assert_matches("/about", &["/about"], &["/about/x", "/abou", "/aboutx", "/", "/About"]);
    assert_matches("/", &["/"], &["/a"]);
    assert_eq!(captured("/about", "/about"), Some(vec![]));
}

#[test]
fn a_star_stays_within_a_segment() {
    assert_matches("/*", &["/", "/a", "/index.html"], &["/a/b"]);
    assert_matches("/old/*", &["/old/", "/old/x.html"], &["/old", "/old/a/b", "/older/x"]);
    assert_matches("/a*b", &["/ab", "/axxb"], &["/a/b", "/axb/b"]);
    assert_eq!(captured("/old/*", "/old/x.html"), Some(vec!["x.html".into()]));
}

#[test]
fn a_double_star_crosses_segments() {
    assert_matches("/assets/**", &["/assets/a", "/assets/a/b/c"], &["/assets", "/assetsx/a", "/x/assets/a"]);
    assert_matches("/**", &["/", "/a", "/a/b"], &[]);
    assert_eq!(captured("/assets/**", "/assets/a/b"), Some(vec!["a/b".into()]));
}

#[test]
fn a_double_star_segment_may_stand_for_no_directory() {
    assert_matches("/**/a", &["/a", "/x/a", "/x/y/a"], &["/xa", "/a/x", "/x/ya"]);
    assert_matches("/x/**/*.js", &["/x/a.js", "/x/y/z/a.js"], &["/x.js", "/y/a.js"]);
    assert_eq!(captured("/**/a", "/a"), Some(vec!["".into()]));
    assert_eq!(captured("/**/a", "/x/y/a"), Some(vec!["x/y".into()]));
    assert_eq!(captured("/x/**/*.js", "/x/y/z/a.js"), Some(vec!["y/z".into(), "a".into()]));
}

#[test]
fn a_question_mark_is_one_byte_but_a_slash() {
    assert_matches("/?.txt", &["/a.txt", "/..txt"], &["/.txt", "/ab.txt", "/é.txt"]);
    assert_matches("/a?b", &["/axb"], &["/a/b", "/ab"]);
    assert_eq!(captured("/v?/x", "/v2/x"), Some(vec!["2".into()]));
}

#[test]
fn braces_match_one_alternative() {
    assert_matches("/{a,bc}.js", &["/a.js", "/bc.js"], &["/b.js", "/abc.js", "/.js"]);
    assert_matches("/index{.html,}", &["/index", "/index.html"], &["/index.htm"]);
    assert_eq!(captured("/{img,css}/*", "/css/site.css"), Some(vec!["css".into(), "site.css".into()]));
}

#[test]
fn patterns_without_a_slash_match_the_last_segment() {
    assert_matches("*.woff2", &["/a.woff2", "/fonts/x/a.woff2", "/.woff2"], &["/a.woff2/x", "/a.woff", "/"]);
    assert_matches("*", &["/", "/a", "/a/b"], &[]);
    let mut ranges = Vec::new();
    assert!(glob("*.woff2").captures(b"/fonts/a.woff2", &mut ranges));
    assert_eq!(ranges, vec![7..8]);
}

#[test]
fn the_leftmost_wildcard_takes_the_longest_match() {
    assert_eq!(captured("/*-*", "/a-b-c"), Some(vec!["a-b".into(), "c".into()]));
    assert_eq!(captured("/**/*", "/a/b/c"), Some(vec!["a/b".into(), "c".into()]));
    assert_eq!(captured("/**/**", "/a/b"), Some(vec!["a".into(), "b".into()]));
    assert_eq!(captured("/*?", "/abc"), Some(vec!["ab".into(), "c".into()]));
    // The first alternative written wins, even where a later one would be longer.
    assert_eq!(captured("/{a,ab}*", "/abc"), Some(vec!["a".into(), "bc".into()]));
}

#[test]
fn counts_and_source() {
    let g = glob("/a/**/{x,y}?*.js");
    assert_eq!(g.wildcards(), 4);
    assert_eq!(g.as_str(), "/a/**/{x,y}?*.js");
    assert_eq!(glob("/about").wildcards(), 0);
}

#[test]
fn bad_patterns_say_what_and_where() {
    for (pattern, error) in [
        ("", "empty pattern"),
        ("/a/{b,c", "unclosed { at byte 3"),
        ("/a}", "unmatched } at byte 2"),
        ("/{a,{b}}", "nested { at byte 4"),
        ("/{a,b/c}", "/ inside {..} at byte 5"),
        ("/{a*}", "* inside {..} at byte 3"),
        ("/{a?}", "? inside {..} at byte 3"),
        ("/a/***", "*** at byte 3"),
        ("/a**", "** at byte 2 is not a whole segment (write /a/**/b or /a/**)"),
        ("/**a", "** at byte 1 is not a whole segment (write /a/**/b or /a/**)"),
        ("/a\0", "NUL at byte 2"),
        ("/a\\b", "backslash at byte 2"),
        ("a/*.js", "/ at byte 1 in a pattern that does not start with / (it matches the last segment only)"),
    ] {
        assert_eq!(Glob::parse(pattern).err().as_deref(), Some(error), "{pattern:?}");
    }
}

/// A hostile 8 KiB path against a pattern a backtracking matcher would try every split of
/// (`reference` below, given it, did not come back in a minute): it must come back, right.
#[test]
fn a_hostile_path_is_matched_in_linear_time() {
    let g = glob("/**/**/a*b*c*d");
    let mut path = b"/".to_vec();
    path.extend_from_slice(&b"a/".repeat(1000));
    path.extend_from_slice(&b"abc".repeat(2000));
    let mut ranges = Vec::new();
    assert!(!g.matches(&path));
    assert!(!g.captures(&path, &mut ranges));
    path.push(b'd');
    assert!(g.matches(&path));
    assert!(g.captures(&path, &mut ranges));
    let captured: Vec<&[u8]> = ranges.iter().map(|r| &path[r.clone()]).collect();
    // The first `**` takes every directory, the second none; each `*` as much as it can.
    assert_eq!(captured[0], &b"a/".repeat(1000)[..1999]);
    let middle = b"abc".repeat(2000);
    assert_eq!(captured[1..], [&b""[..], &middle[1..middle.len() - 2], b"", b""]);
}

/// The documented semantics written directly on the pattern's text, trying every way
/// (longest first) and so exponential: a reference for short inputs.
fn reference(pattern: &[u8], path: &[u8], at: usize) -> Option<Vec<Range<usize>>> {
    let then = |capture: Range<usize>, rest: &[u8], end: usize| {
        reference(rest, path, end).map(|mut c| {
            c.insert(0, capture);
            c
        })
    };
    match pattern {
        [] => (at == path.len()).then(Vec::new),
        [b'*', b'*', b'/', rest @ ..] => (at + 1..=path.len())
            .rev()
            .filter(|&e| path[e - 1] == b'/')
            .find_map(|e| then(at..e - 1, rest, e))
            .or_else(|| then(at..at, rest, at)),
        [b'*', b'*', rest @ ..] => (at..=path.len()).rev().find_map(|e| then(at..e, rest, e)),
        [b'*', rest @ ..] => {
            let run = (at..path.len()).find(|&i| path[i] == b'/').unwrap_or(path.len());
            (at..=run).rev().find_map(|e| then(at..e, rest, e))
        }
        [b'?', rest @ ..] => path.get(at).filter(|&&b| b != b'/').and_then(|_| then(at..at + 1, rest, at + 1)),
        [b'{', inner @ ..] => {
            let close = inner.iter().position(|&b| b == b'}').unwrap();
            inner[..close]
                .split(|&b| b == b',')
                .filter(|alt| path[at..].starts_with(alt))
                .find_map(|alt| then(at..at + alt.len(), &inner[close + 1..], at + alt.len()))
        }
        [b, rest @ ..] => (path.get(at) == Some(b)).then(|| reference(rest, path, at + 1)).flatten(),
    }
}

fn pattern() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec!["a", "b", ".", "/", "*", "?", "**", "{a,b}", "{b,}", "ab"]);
    (any::<bool>(), prop::collection::vec(piece, 0..6))
        .prop_map(|(anchored, pieces)| format!("{}{}", if anchored { "/" } else { "" }, pieces.concat()))
        .prop_filter("a valid pattern", |p| Glob::parse(p).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
    /// The table and the greedy walk over it agree with the exhaustive reference, on
    /// whether a path matches and on what each wildcard captures.
    #[test]
    fn matching_agrees_with_the_exhaustive_reference(pattern in pattern(), path in "/[ab./]{0,10}") {
        let g = Glob::parse(&pattern).unwrap();
        let offset = if pattern.starts_with('/') { 0 } else { path.rfind('/').unwrap() + 1 };
        let expected = reference(pattern.as_bytes(), &path.as_bytes()[offset..], 0)
            .map(|c| c.into_iter().map(|r| r.start + offset..r.end + offset).collect::<Vec<_>>());
        let mut ranges = Vec::new();
        let matched = g.captures(path.as_bytes(), &mut ranges);
        prop_assert_eq!(g.matches(path.as_bytes()), expected.is_some());
        prop_assert_eq!(matched.then_some(ranges), expected);
    }
}
