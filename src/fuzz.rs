//! The bodies of the fuzz targets in `fuzz/`, one function per target: each takes any bytes
//! and panics only when a property of the code under test fails. They live here, behind
//! the `fuzzing` feature, so that libFuzzer (`make fuzz`) and the replay of the committed
//! corpus (`tests/fuzz_corpus.rs`, in `make test`) run the same code: an input that once
//! crashed stays a regression test.

use crate::conn::{Conn, Context, Outbox, Segment};
use crate::files::{Cache, Root, normalize};
use crate::http::chunked::ChunkedDecoder;
use crate::http::fields::{AcceptEncoding, ByteRange, Coding, byte_range, if_range, none_match};
use crate::http::{Limits, Request, Status, date, parse};
use crate::lifecycle::invariants::fixture_dir;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// The server's second for every body: answers, `Date` and two-digit years do not drift.
const NOW: u64 = 1_700_000_000;

/// Fields whose values the parser hands out; every one is looked up on a parsed head.
const FIELDS: [&str; 12] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "accept-encoding",
    "referer",
    "user-agent",
    "x-other",
];

/// Limits small enough that inputs of a few KiB reach every one of them.
const TIGHT: Limits = Limits { max_request_line: 64, max_header_bytes: 256, max_headers: 4, max_body: 1024 };

/// The request parser: a complete head took at most the input and reads the same alone;
/// every prefix of it is incomplete rather than refused (else a request cut by the network
/// would be refused); a head within tight limits reads the same under the default ones.
pub fn parser(data: &[u8]) {
    let wide = Limits::default();
    let whole = parse(data, &wide);
    if let Ok(Status::Complete(req, n)) = &whole {
        assert!(*n > 0 && *n <= data.len(), "took {n} of {}", data.len());
        match parse(&data[..*n], &wide) {
            Ok(Status::Complete(again, m)) => {
                assert_eq!(m, *n, "the head alone");
                same_request(req, &again);
            }
            other => panic!("the head alone reads as {other:?}"),
        }
        for cut in [*n - 1, *n / 2, *n / 3] {
            let prefix = parse(&data[..cut], &wide);
            assert!(matches!(prefix, Ok(Status::Partial)), "a prefix of {cut} bytes reads as {prefix:?}");
        }
        for name in FIELDS {
            for value in req.headers(name) {
                let clean = !value.iter().any(|&b| b == b'\r' || b == b'\n');
                let trimmed = !value.starts_with(b" ") && !value.ends_with(b" ") && !value.ends_with(b"\t");
                assert!(clean && trimmed, "{name}: {value:?}");
            }
        }
    }
    if let Ok(Status::Complete(tight, n)) = parse(data, &TIGHT) {
        match &whole {
            Ok(Status::Complete(req, m)) => {
                assert_eq!(n, *m, "the tight limits took another length");
                same_request(req, &tight);
            }
            other => panic!("within tight limits, yet {other:?} under the default ones"),
        }
    }
}

fn same_request(a: &Request<'_>, b: &Request<'_>) {
    assert_eq!((a.line, a.method, a.target, a.version), (b.line, b.method, b.target, b.version));
    assert_eq!((a.keep_alive, a.body), (b.keep_alive, b.body));
    for name in FIELDS {
        assert!(a.headers(name).eq(b.headers(name)), "{name}");
    }
}

/// The chunked decoder: it never takes more than it is given, stops short only once done,
/// and fed byte by byte or in two pieces it takes as much and ends (or fails) the same.
pub fn chunked(data: &[u8]) {
    for limit in [64, 1 << 20] {
        let mut dec = ChunkedDecoder::new(limit);
        let whole = dec.feed(data).map(|n| (n, dec.is_done()));
        if let Ok((n, done)) = whole {
            assert!(n <= data.len() && (n == data.len() || done), "took {n} of {}, done {done}", data.len());
        }
        let half = data.len() / 2;
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        for pieces in [&[&data[..half], &data[half..]][..], &bytewise] {
            let mut dec = ChunkedDecoder::new(limit);
            let mut taken = 0;
            let split = pieces.iter().try_for_each(|piece| {
                let n = dec.feed(piece)?;
                assert!(n <= piece.len() && (n == piece.len() || dec.is_done()), "a piece of {}", piece.len());
                taken += n;
                Ok(())
            });
            assert_eq!(split.map(|()| (taken, dec.is_done())), whole, "fed in {} pieces", pieces.len());
        }
    }
}

/// The field values: a byte range lies within the representation, an HTTP-date read back
/// is one `date::format` writes (and formats back to), entity-tag matches name the tag, and
/// the coding chosen is one offered and accepted.
pub fn fields(data: &[u8]) {
    for size in [0, 1, 100, 1 << 20, u64::MAX] {
        if let ByteRange::Part(first, last) = byte_range(data, size) {
            assert!(first <= last && last < size, "{first}-{last} of {size}");
        }
    }
    if let Some(t) = date::parse(data, NOW) {
        assert!(t <= date::MAX, "{t} past year 9999");
        assert_eq!(date::parse(&date::format(t), NOW), Some(t), "{t} formatted does not read back");
    }
    if let Some(bytes) = data.get(..8) {
        let t = u64::from_le_bytes(bytes.try_into().unwrap_or_default()) % (date::MAX + 1);
        assert_eq!(date::parse(&date::format(t), NOW), Some(t), "{t} formatted does not read back");
    }
    // An entity-tag from the input itself, so that matches are reachable.
    let etag = quoted(data).unwrap_or(b"\"x\"");
    let named = data.windows(etag.len()).any(|w| w == etag);
    if none_match(data, etag) {
        assert!(named || data.contains(&b'*'), "If-None-Match matched {etag:?} without naming it");
    }
    if if_range(data, etag, NOW, NOW) {
        assert!(named || date::parse(data, NOW) == Some(NOW), "If-Range held for neither tag nor date");
    }
    let mut accept = AcceptEncoding::default();
    for value in data.split(|&b| b == b'\n') {
        accept.add(value);
    }
    let both = accept.choose([Coding::Br, Coding::Gzip].into_iter());
    assert_eq!(accept.choose(std::iter::empty()), None);
    for c in [Coding::Br, Coding::Gzip] {
        match accept.choose(std::iter::once(c)) {
            Some(chosen) => assert!(chosen == c && both.is_some(), "{c:?} alone gives {chosen:?}, both {both:?}"),
            None => assert_ne!(both, Some(c), "{c:?} refused alone, chosen beside another"),
        }
    }
}

fn quoted(data: &[u8]) -> Option<&[u8]> {
    let open = data.iter().position(|&b| b == b'"')?;
    let close = open + 1 + data[open + 1..].iter().position(|&b| b == b'"')?;
    Some(&data[open..=close])
}

/// Paths: `normalize` yields a relative path with no empty, `.`, `..` or hidden segment,
/// NUL or backslash, stable when normalised again; what the root opens from it, through
/// links planted to lead out, is beneath the root.
pub fn paths(data: &[u8]) {
    let (mut decoded, mut path) = (Vec::new(), Vec::new());
    let Ok(target) = normalize(data, &mut decoded, &mut path) else { return };
    if !path.is_empty() {
        for segment in path.split(|&b| b == b'/') {
            assert!(!segment.is_empty() && segment[0] != b'.', "segment {segment:?} in {path:?}");
        }
    }
    assert!(!path.iter().any(|&b| b == 0 || b == b'\\'), "{path:?}");
    assert!(target.trailing_slash || !path.is_empty(), "the root without its slash");
    // Decoded once: a path with no `%`, `?` or `#` left reads as itself.
    if !path.iter().any(|&b| matches!(b, b'%' | b'?' | b'#')) {
        let again = [b"/", &path[..]].concat();
        let mut twice = Vec::new();
        assert!(normalize(&again, &mut decoded, &mut twice).is_ok() && twice == path, "{path:?} again");
    }
    let (root, dir) = site();
    if let Ok(file) = root.open_beneath(&path) {
        use std::os::fd::AsRawFd;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("its path");
        assert!(real.starts_with(dir), "{path:?} opened {real:?}, outside {dir:?}");
    }
}

/// A site of a page, a 3000-byte file (sent as a file range), and links out of the root;
/// its root, and where it is.
fn site() -> (&'static Root, &'static Path) {
    static SITE: std::sync::OnceLock<(Root, PathBuf)> = std::sync::OnceLock::new();
    let (root, dir) = SITE.get_or_init(|| {
        let dir = fixture_dir("c10k-fuzz", &[("index.html", b"<p>index</p>\n"), ("sub/a.txt", &[b'a'; 3000])]);
        for (link, to) in [("up", ".."), ("etc", "/etc"), ("in", "sub"), ("sub/back", "../..")] {
            // Made once: another process may have made it first.
            let _ = std::os::unix::fs::symlink(to, dir.join(link));
        }
        let dir = dir.canonicalize().unwrap();
        (Root::open(&dir).unwrap(), dir)
    });
    (root, dir)
}

/// The connection state machine: the same bytes fed whole and fed in the pieces the input
/// chooses (and at most as many answers a call as it chooses) give the same bytes out, the
/// same file ranges, and the same decision to close. The input is a length byte, that many
/// piece sizes (the last one the answers a call), then what the client sends.
pub fn conn(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else { return };
    let (sizes, input) = rest.split_at(usize::from(len % 8).min(rest.len()));
    let max_answers = sizes.last().map_or(u32::MAX, |&n| u32::from(n % 4) + 1);
    CONTEXT.with_borrow_mut(|ctx| {
        // Filled by the whole feed, read by the split one: answers do not depend on it.
        ctx.cache = Cache::new(64, 1 << 20);
        let whole = feed(ctx, input, &[], u32::MAX);
        assert_eq!(feed(ctx, input, sizes, max_answers), whole, "split {sizes:?}");
    });
}

thread_local! {
    /// One context for every input: each new one leaks its counters (`ShardStats::detached`).
    static CONTEXT: RefCell<Context> = RefCell::new({
        let mut ctx = Context::new(site().0.clone(), Cache::new(64, 1 << 20), TIGHT);
        ctx.tick(NOW);
        ctx
    });
}

/// Feed `input` in pieces of the given sizes (cycled; whole if none) as a shard would,
/// sending everything queued each time and feeding again while that makes progress; every
/// byte and file range sent, and whether it closes.
fn feed(ctx: &mut Context, input: &[u8], sizes: &[u8], max_answers: u32) -> (Vec<u8>, bool) {
    let mut conn = Conn::default();
    let mut out = Outbox::default();
    let mut sent = Vec::new();
    let mut sizes = sizes.iter().map(|&n| usize::from(n).max(1)).cycle();
    let mut pos = 0;
    while pos < input.len() && !conn.closing {
        let n = sizes.next().unwrap_or(input.len()).min(input.len() - pos);
        let mut piece = &input[pos..pos + n];
        pos += n;
        let mut held = usize::MAX;
        loop {
            let tail = conn.receive(piece, ctx, &mut out, max_answers);
            piece = &[];
            while let Some(segment) = out.next_segment() {
                let n = match segment {
                    Segment::Bytes(b) => {
                        sent.extend_from_slice(b);
                        b.len()
                    }
                    Segment::File(f) => {
                        sent.extend_from_slice(format!("<file {} {}>", f.offset, f.len).as_bytes());
                        f.len as usize
                    }
                };
                out.advance(n);
            }
            if tail == 0 || tail == held || conn.closing {
                break;
            }
            held = tail;
        }
    }
    (sent, conn.closing)
}

/// The lifecycle under any sequence of events, its invariants checked after each.
pub fn core(data: &[u8]) {
    crate::lifecycle::invariants::replay(data);
}
