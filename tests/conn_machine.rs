//! The connection state machine without sockets: the same input split any way gives the
//! same answers, the cached small-file path allocates nothing per request, and output lent
//! to the kernel is never freed under it.

use c10k_server::conn::{Conn, Context, Offer, Outbox, Outgoing, Segment};
use c10k_server::files::{Cache, Root};
use c10k_server::http::Limits;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread: other tests run on other threads meanwhile.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Blocks of `MARKED` bytes this thread freed.
    static MARKED_FREES: Cell<usize> = const { Cell::new(0) };
}

/// A size no other allocation of these tests has, to recognise one buffer's free.
const MARKED: usize = 12_345;

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() == MARKED {
            MARKED_FREES.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn site() -> Context {
    // Written once per test process: tests on other threads read it concurrently.
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("c10k-conn-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("index.html"), "<p>index</p>\n").unwrap();
        std::fs::write(dir.join("sub/a.txt"), "a".repeat(3000)).unwrap();
        dir
    });
    let mut site = Context::new(Root::open(dir).unwrap(), Cache::new(64, 1 << 20), Limits::default());
    // A fixed clock: no revalidation, no Date change between runs.
    site.tick(1_700_000_000);
    site
}

/// Feed `input` in pieces of the given sizes, as a shard would (keeping unparsed tails),
/// and collect every byte queued.
fn run(site: &mut Context, input: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
    let mut conn = Conn::default();
    let mut out = Outbox::default();
    let mut sent = Vec::new();
    let mut pos = 0;
    let mut sizes = cuts.iter().copied().cycle();
    while pos < input.len() && !conn.closing {
        let n = sizes.next().unwrap_or(input.len()).clamp(1, input.len() - pos);
        let mut piece = &input[pos..pos + n];
        pos += n;
        // The connection keeps what it did not use; it is fed again (with nothing new) while
        // that makes progress, as a shard does once the output has gone.
        let mut held = usize::MAX;
        loop {
            let tail = conn.receive(piece, site, &mut out, u32::MAX);
            piece = &[];
            while let Some(segment) = out.next_segment() {
                let n = match segment {
                    Segment::Bytes(b) => {
                        sent.extend_from_slice(b);
                        b.len()
                    }
                    Segment::File(f) => f.len as usize,
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

const PIPELINE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
HEAD /sub/a.txt HTTP/1.1\r\nHost: x\r\n\r\n\
GET /sub/a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n\
POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
GET /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n\
OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n\
GET /sub HTTP/1.0\r\n\r\n";

proptest! {
    #[test]
    fn any_split_gives_the_same_answers(cuts in proptest::collection::vec(1usize..64, 1..8)) {
        let mut site = site();
        let whole = run(&mut site, PIPELINE, &[]);
        prop_assert_eq!(run(&mut site, PIPELINE, &cuts), whole);
    }
}

#[test]
fn pipeline_answers_in_order_then_closes() {
    let mut site = site();
    let (sent, closing) = run(&mut site, PIPELINE, &[]);
    let text = String::from_utf8_lossy(&sent);
    let statuses: Vec<&str> = text.match_indices("HTTP/1.1 ").map(|(i, _)| &text[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "200", "206", "405", "404", "204", "301"]);
    assert!(closing, "HTTP/1.0 without keep-alive closes");
}

#[test]
fn cached_small_file_path_does_not_allocate() {
    let mut site = site();
    let mut conn = Conn::default();
    let mut out = Outbox::default();
    let req = b"GET /sub/a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // Warm up: open the files, grow the shared buffers.
    for _ in 0..3 {
        assert_eq!(conn.receive(req, &mut site, &mut out, u32::MAX), 0);
        out.clear();
    }
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..1000 {
        conn.receive(req, &mut site, &mut out, u32::MAX);
        out.clear();
    }
    assert_eq!(ALLOCATIONS.with(Cell::get) - before, 0, "allocations on the cached path");
}

/// io_uring reads a send's bytes after the call that handed them out has returned: output
/// dropped while lent (a shard unwinding) must leak its buffer, never free it; given back
/// first, it is freed as any other.
#[test]
fn output_dropped_while_lent_is_leaked_not_freed() {
    let queued = |lend: bool| {
        let mut built = Outbox::default();
        built.bytes = Vec::with_capacity(MARKED);
        built.bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        let mut out = Outgoing::default();
        out.fill_from(&mut built);
        let offer = Offer::new(&mut out).expect("something to send");
        if lend {
            offer.lend();
        }
        out
    };
    let frees = || MARKED_FREES.with(Cell::get);
    let before = frees();
    drop(queued(false));
    assert_eq!(frees() - before, 1, "output not lent is freed");
    drop(queued(true));
    assert_eq!(frees() - before, 1, "output dropped while lent was freed under the kernel");
    let mut out = queued(true);
    out.give_back(0);
    drop(out);
    assert_eq!(frees() - before, 2, "output given back is freed");
}
