//! Properties of the request parser, the chunked decoder and path resolution, checked on
//! generated inputs: nothing panics, nothing reads past what it was given, a parsed head
//! does not depend on the bytes after it, and no target opens a file outside the root.

use c10k_server::files::{Root, normalize};
use c10k_server::http::chunked::ChunkedDecoder;
use c10k_server::http::{BodyFraming, Limits, Method, ParseError, Request, Status, Version, parse};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::FileFailurePersistence;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `cases` cases; a failing case is kept beside this file (`properties.proptest-regressions`)
/// and tried first next time.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Request parser
// ---------------------------------------------------------------------------------------

/// What a parsed head says, in a form that compares.
type Summary<'a> = (Method<'a>, &'a [u8], Version, bool, BodyFraming, Vec<(&'a str, Vec<&'a [u8]>)>);

fn summary<'a>(r: &Request<'a>) -> Summary<'a> {
    let names = ["host", "content-length", "transfer-encoding", "connection", "x-a", "x-b"];
    let fields = names.iter().map(|&n| (n, r.headers(n).collect())).collect();
    (r.method, r.target, r.version, r.keep_alive, r.body, fields)
}

/// Pieces requests are made of, valid and not, so that generated buffers often parse.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"GET",
        b"HEAD",
        b"OPTIONS",
        b"POST",
        b"get",
        b" ",
        b"  ",
        b"/",
        b"/a?b=c",
        b"*",
        b"http://h/x",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"HTTP/1.10",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.0\r\n",
        b"\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b":",
        b": ",
        b"\t",
        b",",
        b"\x00",
        b"\x7f",
        b"\xff",
        b"Host: a\r\n",
        b"Host: a b\r\n",
        b"Host",
        b"Content-Length: 5\r\n",
        b"Content-Length: 0\r\n",
        b"Content-Length: 6\r\n",
        b"Content-Length: -1\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Connection: close\r\n",
        b"Connection: keep-alive\r\n",
        b"X-A: b\r\n",
        b"x-b:  c \r\n",
        b" folded\r\n",
    ];
    prop_oneof![
        8 => select(pieces).prop_map(|p| p.to_vec()),
        1 => vec(any::<u8>(), 0..6),
    ]
}

fn fragments() -> impl Strategy<Value = Vec<u8>> {
    vec(fragment(), 0..24).prop_map(|v| v.concat())
}

/// Mostly one of `good`, now and then one of `bad`.
fn pick(good: Vec<&'static [u8]>, bad: Vec<&'static [u8]>) -> BoxedStrategy<&'static [u8]> {
    prop_oneof![12 => select(good), 1 => select(bad)].boxed()
}

/// A request head put together from mostly valid parts, then some fragments: most of
/// these parse whole, the others fail at one rule or another.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    let eol = || pick(vec![b"\r\n", b"\r\n", b"\n"], vec![b"\r", b"", b"\r\r\n"]);
    let sp = || pick(vec![b" "], vec![b"  ", b"\t", b""]);
    let method = pick(vec![b"GET", b"HEAD", b"OPTIONS", b"POST", b"get"], vec![b"", b"G T", b"G\x00", b"G:"]);
    let target = pick(vec![b"/", b"/a?b", b"*", b"http://h/x"], vec![b"", b"/\x7f", b"/\xff", b"/\x00"]);
    let version = pick(
        vec![b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.7"],
        vec![b"HTTP/2.0", b"HTTP/1.10", b"http/1.1", b""],
    );
    let host = pick(vec![b"Host: a", b"host:a.example:80 "], vec![b"Host: a b", b"Host: a\r\nHost: a", b""]);
    let line = pick(
        vec![
            b"Content-Length: 5",
            b"Content-Length: 0",
            b"Transfer-Encoding: chunked",
            b"Connection: close",
            b"Connection: keep-alive",
            b"X-A: b",
            b"x-a:c",
            b"X-B:  c \t",
            b"X-B:",
        ],
        vec![
            b"Content-Length: 6",
            b"Content-Length: 5, 6",
            b"Transfer-Encoding: gzip",
            b" folded",
            b"X-A : b",
            b"X-A b",
            b"X-A: \x00",
            b"X-A: a\rb",
            b"Host: b",
        ],
    );
    (
        vec(eol(), 0..3),
        (method, sp(), target, sp(), version, eol()),
        (host, eol(), vec((line, eol()), 0..5)),
        eol(),
        fragments(),
    )
        .prop_map(|(leading, (m, s1, t, s2, v, e), (host, he, fields), end, tail)| {
            let mut out = leading.concat();
            out.extend_from_slice(&[m, s1, t, s2, v, e, host, he].concat());
            for (l, e) in fields {
                out.extend_from_slice(l);
                out.extend_from_slice(e);
            }
            out.extend_from_slice(end);
            out.extend_from_slice(&tail);
            out
        })
}

/// Limits small enough that generated inputs run into them.
fn small_limits() -> impl Strategy<Value = Limits> {
    (1usize..128, 1usize..256, 0usize..8, any::<u64>()).prop_map(|(line, bytes, count, body)| Limits {
        max_request_line: line,
        max_header_bytes: bytes,
        max_headers: count,
        max_body: body,
    })
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![2 => Just(Limits::default()), 1 => small_limits()]
}

fn tchars(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    vec(select(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".to_vec()), len)
        .prop_map(|v| String::from_utf8(v).unwrap())
}

/// A well-formed request head, with what it should parse to: (bytes, method, target,
/// version, fields of the `X-` kind as (name, trimmed value)).
#[derive(Clone, Debug)]
struct Valid {
    bytes: Vec<u8>,
    method: String,
    target: String,
    http10: bool,
    fields: Vec<(String, String)>,
}

fn valid_request() -> impl Strategy<Value = Valid> {
    let target = vec(select(b"abcXYZ019-._~!$&'()*+,;=:@/?%".to_vec()), 0..40)
        .prop_map(|v| format!("/{}", String::from_utf8(v).unwrap()));
    let value = (select(vec!["", " ", "\t", "  "]), "[!-~]([ -~]{0,20}[!-~])?", select(vec!["", " ", "\t "]))
        .prop_map(|(pre, v, post)| (format!("{pre}{v}{post}"), v));
    let field = (tchars(1..12), value).prop_map(|(n, (raw, trimmed))| (format!("X-{n}"), raw, trimmed));
    (
        prop_oneof![Just("GET".to_string()), Just("HEAD".to_string()), tchars(1..10)],
        target,
        any::<bool>(),
        vec(field, 0..10),
        vec(any::<bool>(), 16),
        0usize..3,
    )
        .prop_map(|(method, target, http10, fields, crlf, leading)| {
            let mut eol = crlf.into_iter().cycle();
            let mut eol = move || if eol.next().unwrap() { "\r\n" } else { "\n" };
            let mut s = String::new();
            for _ in 0..leading {
                s.push_str(eol());
            }
            let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
            s += &format!("{method} {target} {version}{}", eol());
            if !http10 {
                s += &format!("Host: example.com{}", eol());
            }
            for (name, raw, _) in &fields {
                s += &format!("{name}:{raw}{}", eol());
            }
            s.push_str(eol());
            Valid {
                bytes: s.into_bytes(),
                method,
                target,
                http10,
                fields: fields.into_iter().map(|(n, _, t)| (n, t)).collect(),
            }
        })
}

/// The invariants every answer of the parser must keep, whatever the input.
fn check_parse(buf: &[u8], limits: &Limits, suffix: &[u8]) -> Result<(), TestCaseError> {
    // An error is final: once a prefix is refused (early, before its line is complete),
    // nothing that follows turns it into a request.
    if let Some(k) = (0..=buf.len()).find(|&k| parse(&buf[..k], limits).is_err()) {
        for tail in [&buf[k..], suffix, b" / HTTP/1.1\r\nHost: x\r\n\r\n"] {
            let longer = [&buf[..k], tail].concat();
            prop_assert!(parse(&longer, limits).is_err(), "{:?} refused, {:?} accepted", &buf[..k], longer);
        }
    }
    let Ok(Status::Complete(req, n)) = parse(buf, limits) else {
        return Ok(());
    };
    prop_assert!(n > 0 && n <= buf.len(), "consumed {n} of {}", buf.len());
    // Only the head decides: the same head followed by anything parses the same.
    let want = summary(&req);
    for tail in [&buf[n..], suffix, b"", b"\r\n", b"GET / HTTP/1.1\r\n\r\n"] {
        let other = [&buf[..n], tail].concat();
        match parse(&other, limits) {
            Ok(Status::Complete(r, m)) => {
                prop_assert_eq!(m, n);
                prop_assert_eq!(summary(&r), want.clone());
            }
            res => prop_assert!(false, "head + {:?}: {:?}", tail, res),
        }
    }
    // And until the whole head is in, the parser asks for more.
    for k in 0..n {
        let res = parse(&buf[..k], limits);
        prop_assert!(matches!(res, Ok(Status::Partial)), "prefix of {k}/{n} bytes: {:?}", res);
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Mutation {
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Duplicate(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![3 => any::<u8>(), 1 => select(b"\r\n\t :,\x00".to_vec())];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::Duplicate(i, j)),
    ]
}

fn mutate(buf: &mut Vec<u8>, m: &Mutation) {
    match *m {
        _ if buf.is_empty() => {}
        Mutation::Replace(ref i, b) => {
            let i = i.index(buf.len());
            buf[i] = b;
        }
        Mutation::Insert(ref i, b) => buf.insert(i.index(buf.len() + 1), b),
        Mutation::Delete(ref i) => {
            buf.remove(i.index(buf.len()));
        }
        Mutation::Duplicate(ref i, ref j) => {
            let (a, b) = (i.index(buf.len()), j.index(buf.len()));
            let piece = buf[a.min(b)..=a.max(b)].to_vec();
            buf.splice(a..a, piece);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(buf in vec(any::<u8>(), 0..600), l in limits(), suffix in vec(any::<u8>(), 0..16)) {
        check_parse(&buf, &l, &suffix)?;
    }

    #[test]
    fn parse_never_panics_on_fragments(buf in fragments(), l in limits(), suffix in fragments()) {
        check_parse(&buf, &l, &suffix)?;
    }

    #[test]
    fn parse_never_panics_on_request_like_bytes(buf in request_like(), l in limits(), suffix in fragments()) {
        check_parse(&buf, &l, &suffix)?;
    }

    #[test]
    fn parse_never_panics_on_mutated_requests(v in valid_request(), ms in vec(mutation(), 1..6), l in limits(), suffix in fragments()) {
        let mut buf = v.bytes;
        for m in &ms {
            mutate(&mut buf, m);
        }
        check_parse(&buf, &l, &suffix)?;
    }

    #[test]
    fn well_formed_requests_parse_whole(v in valid_request(), suffix in fragments()) {
        let limits = Limits::default();
        let buf = [&v.bytes[..], &suffix].concat();
        let Ok(Status::Complete(req, n)) = parse(&buf, &limits) else {
            return Err(TestCaseError::fail(format!("{:?}", parse(&buf, &limits))));
        };
        prop_assert_eq!(n, v.bytes.len());
        let method = match v.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            m => Method::Other(m.as_bytes()),
        };
        prop_assert_eq!(req.method, method);
        prop_assert_eq!(req.target, v.target.as_bytes());
        prop_assert_eq!(req.version, if v.http10 { Version::Http10 } else { Version::Http11 });
        prop_assert_eq!(req.keep_alive, !v.http10);
        prop_assert_eq!(req.body, BodyFraming::None);
        for (name, value) in &v.fields {
            let want: Vec<&[u8]> = v
                .fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
                .collect();
            prop_assert_eq!(req.headers(name).collect::<Vec<_>>(), want);
            prop_assert!(req.header(&name.to_ascii_uppercase()).is_some(), "{} = {:?}", name, value);
        }
        check_parse(&buf, &limits, &suffix)?;
    }
}

// ---------------------------------------------------------------------------------------
// Chunked decoder
// ---------------------------------------------------------------------------------------

/// Feed `buf` in the pieces `cuts` makes of it. Returns bytes taken and whether the body
/// ended, or the error; checks on the way that no feed takes more than it is given.
fn feed_in_pieces(limit: u64, buf: &[u8], cuts: &[Index]) -> Result<(usize, bool), ParseError> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(buf.len() + 1)).collect();
    points.push(0);
    points.push(buf.len());
    points.sort_unstable();
    let mut d = ChunkedDecoder::new(limit);
    let mut taken = 0;
    for w in points.windows(2) {
        let piece = &buf[w[0]..w[1]];
        let n = d.feed(piece)?;
        assert!(n <= piece.len(), "took {n} of {}", piece.len());
        taken += n;
        if n < piece.len() {
            assert!(d.is_done(), "took {n} of {} without finishing", piece.len());
        }
        if d.is_done() {
            assert_eq!(d.feed(&buf[w[0] + n..])?, 0, "a finished decoder takes nothing");
            break;
        }
    }
    Ok((taken, d.is_done()))
}

/// A chunked body: chunks of data (with a size in either case, maybe an extension), the
/// last chunk, trailers. Returns the encoding and the data size.
fn chunked_body() -> impl Strategy<Value = (Vec<u8>, u64)> {
    let chunk = (vec(any::<u8>(), 1..40), any::<bool>(), select(vec!["", ";a=b", ";x", " ;q=\"1 2\""]));
    let trailer = "[A-Za-z-]{1,8}: [ -~]{0,12}";
    (vec(chunk, 0..6), select(vec!["", ";end"]), vec(trailer, 0..3)).prop_map(|(chunks, last_ext, trailers)| {
        let mut out = Vec::new();
        let mut size = 0;
        for (data, upper, ext) in chunks {
            let hex = if upper { format!("{:X}", data.len()) } else { format!("{:x}", data.len()) };
            out.extend_from_slice(format!("{hex}{ext}\r\n").as_bytes());
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
            size += data.len() as u64;
        }
        out.extend_from_slice(format!("0{last_ext}\r\n").as_bytes());
        for t in trailers {
            out.extend_from_slice(format!("{t}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        (out, size)
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn chunked_never_panics_nor_overreads(buf in vec(any::<u8>(), 0..300), cuts in vec(any::<Index>(), 0..8), limit in any::<u64>()) {
        let whole = feed_in_pieces(limit, &buf, &[]);
        if let Ok((n, _)) = whole {
            prop_assert!(n <= buf.len());
        }
        // however the bytes are split, the outcome is the same
        prop_assert_eq!(feed_in_pieces(limit, &buf, &cuts), whole);
    }

    #[test]
    fn chunked_valid_bodies_end_exactly(
        (body, size) in chunked_body(),
        next in vec(any::<u8>(), 0..40),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let buf = [&body[..], &next].concat();
        let limit = size + 1000;
        prop_assert_eq!(feed_in_pieces(limit, &buf, &[]), Ok((body.len(), true)));
        prop_assert_eq!(feed_in_pieces(limit, &buf, &cuts), Ok((body.len(), true)));
        // a limit below the data is refused
        if size > 0 {
            prop_assert_eq!(feed_in_pieces(size - 1, &buf, &cuts), Err(ParseError::BodyTooLarge));
        }
    }

    #[test]
    fn chunked_mutated_bodies(
        (body, _) in chunked_body(),
        ms in vec(mutation(), 1..4),
        cuts in vec(any::<Index>(), 0..8),
        limit in prop_oneof![Just(u64::MAX), 0u64..300],
    ) {
        let mut buf = body;
        for m in &ms {
            mutate(&mut buf, m);
        }
        let whole = feed_in_pieces(limit, &buf, &[]);
        if let Ok((n, _)) = whole {
            prop_assert!(n <= buf.len());
        }
        prop_assert_eq!(feed_in_pieces(limit, &buf, &cuts), whole);
    }
}

// ---------------------------------------------------------------------------------------
// Paths beneath the root
// ---------------------------------------------------------------------------------------

/// ```text
/// <base>/
///   outside/secret.txt
///   root/
///     index.html  a.txt  .hidden
///     sub/b.txt
///     sub/up   -> ..             (back to the root: inside)
///     sub/up2  -> ../..          (the base: outside)
///     in-link  -> sub            (relative, inside)
///     in-file  -> sub/b.txt      (relative, inside)
///     out-link -> ../outside     (relative, outside)
///     out-abs  -> /etc           (absolute, outside)
///     out-file -> ../outside/secret.txt
/// ```
/// Removed on drop (symbolic links themselves, never what they point at).
struct Fixture {
    base: PathBuf,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "c10k-properties-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let root = base.join("root");
        let fx = Fixture { base, root };
        std::fs::create_dir_all(fx.root.join("sub")).unwrap();
        std::fs::create_dir_all(fx.base.join("outside")).unwrap();
        std::fs::write(fx.base.join("outside/secret.txt"), b"secret").unwrap();
        std::fs::write(fx.root.join("index.html"), b"index").unwrap();
        std::fs::write(fx.root.join("a.txt"), b"a").unwrap();
        std::fs::write(fx.root.join(".hidden"), b"hidden").unwrap();
        std::fs::write(fx.root.join("sub/b.txt"), b"b").unwrap();
        let link = |to: &str, at: &str| std::os::unix::fs::symlink(to, fx.root.join(at)).unwrap();
        link("..", "sub/up");
        link("../..", "sub/up2");
        link("sub", "in-link");
        link("sub/b.txt", "in-file");
        link("../outside", "out-link");
        link("/etc", "out-abs");
        link("../outside/secret.txt", "out-file");
        fx
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The real path of an open file.
fn real_path(file: &std::fs::File) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap()
}

/// Normalise `target` and open it beneath `root`: `None` when either refuses.
fn resolve(root: &Root, target: &[u8]) -> Option<std::fs::File> {
    let (mut decoded, mut path) = (Vec::new(), Vec::new());
    normalize(target, &mut decoded, &mut path).ok()?;
    root.open_beneath(&path).ok()
}

fn contents(mut f: std::fs::File) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn symlinks_inside_work_outside_do_not() {
    let fx = Fixture::new();
    let root = Root::open(&fx.root).unwrap();
    let canon = fx.root.canonicalize().unwrap();
    let inside: &[(&str, &[u8])] = &[
        ("/a.txt", b"a"),
        ("/index.html", b"index"),
        ("/sub/b.txt", b"b"),
        ("/in-link/b.txt", b"b"),
        ("/in-file", b"b"),
        ("/sub/up/a.txt", b"a"),
        ("/sub/up/in-link/b.txt", b"b"),
        ("/in-link/../a.txt", b"a"),
        ("/%69n-link%2fb.txt", b"b"),
    ];
    for &(t, want) in inside {
        let f = resolve(&root, t.as_bytes()).unwrap_or_else(|| panic!("{t} should open"));
        assert!(real_path(&f).starts_with(&canon), "{t}: {:?}", real_path(&f));
        assert_eq!(contents(f), want, "{t}");
    }
    for dir in ["/", "/sub", "/in-link", "/sub/up"] {
        let f = resolve(&root, dir.as_bytes()).unwrap_or_else(|| panic!("{dir} should open"));
        assert!(real_path(&f).starts_with(&canon), "{dir}");
    }
    for t in [
        "/out-link/secret.txt",
        "/out-link",
        "/out-abs/passwd",
        "/out-abs",
        "/out-abs/hostname",
        "/out-file",
        "/sub/up2/outside/secret.txt",
        "/sub/up2",
        "/sub/up/../outside/secret.txt",
        "/../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/a.txt%00",
        "/.hidden",
        "/sub/%2e%2e/.hidden",
        "/in-link\\..\\..\\outside\\secret.txt",
    ] {
        if let Some(f) = resolve(&root, t.as_bytes()) {
            panic!("{t} opened {:?}", real_path(&f));
        }
    }
    // The links to the outside do resolve outside, so the refusal is the root's doing.
    assert!(fx.root.join("out-link/secret.txt").exists());
    assert!(fx.root.join("out-abs").exists());
}

fn hostile_target() -> impl Strategy<Value = Vec<u8>> {
    let segment = prop_oneof![
        4 => select(vec!["out-link", "out-abs", "out-file", "up", "up2", "in-link", "in-file", "sub"]),
        3 => select(vec!["secret.txt", "passwd", "hostname", "a.txt", "b.txt", "index.html", "outside", "root", "etc"]),
        2 => select(vec!["..", ".", "%2e%2e", "%2E%2e", ".%2e", "%2e", "%2f", "%2F"]),
        1 => select(vec![".hidden", "/", "//", "%00", "\\", "%5c", "", "?q", "#f"]),
    ];
    let sep = prop_oneof![6 => Just("/"), 1 => select(vec!["", "//", "%2f", "/./", "/%2e/"])];
    let prefix = prop_oneof![6 => Just("/"), 1 => select(vec!["", "http://h", "http://h/", "//", "/%2e%2e/"])];
    (prefix, vec((segment, sep), 0..8))
        .prop_map(|(p, segs)| segs.into_iter().fold(p.to_string(), |s, (seg, sep)| s + seg + sep).into_bytes())
}

#[test]
fn resolved_paths_never_leave_the_root() {
    let fx = Fixture::new();
    let root = Root::open(&fx.root).unwrap();
    let canon = fx.root.canonicalize().unwrap();
    let opened = std::cell::Cell::new(0u32);
    let naive_escapes = std::cell::Cell::new(0u32);
    proptest!(config(1024), |(target in hostile_target())| {
        let (mut decoded, mut path) = (Vec::new(), Vec::new());
        if normalize(&target, &mut decoded, &mut path).is_ok() {
            prop_assert!(!path.starts_with(b"/"), "{:?} gave an absolute path", String::from_utf8_lossy(&target));
            // Control: does a plain walk of root/path pass outside on the way? The generator
            // must produce such paths, or the property below holds for want of trying.
            let mut walk = fx.root.clone();
            for part in path.split(|&b| b == b'/') {
                walk.push(std::ffi::OsStr::from_bytes(part));
                match walk.canonicalize() {
                    Ok(real) if !real.starts_with(&canon) => {
                        naive_escapes.set(naive_escapes.get() + 1);
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            if let Ok(file) = root.open_beneath(&path) {
                opened.set(opened.get() + 1);
                let real = real_path(&file);
                prop_assert!(
                    real.starts_with(&canon),
                    "{:?} -> {:?} opened {:?}, outside {:?}",
                    String::from_utf8_lossy(&target),
                    String::from_utf8_lossy(&path),
                    real,
                    canon
                );
            }
        }
    });
    // the generator does reach files, or the property says little
    assert!(opened.get() > 50, "only {} targets opened anything", opened.get());
    assert!(naive_escapes.get() > 50, "only {} targets lead outside through a link", naive_escapes.get());
    assert!(Path::new(&fx.base).exists());
}
