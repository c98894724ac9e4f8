//! The lifecycle with a fake clock and no sockets: the test plays the driver, reporting
//! events and carrying out actions by hand.

use super::*;
use crate::conn::{Context, Segment};
use crate::files::{Cache, Root};
use crate::http::Limits;

pub(super) const WALL: u64 = 1_700_000_000;
const BIG: usize = 1 << 20;
pub(super) const GET_INDEX: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_BIG: &[u8] = b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";

fn ctx() -> Context {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("c10k-core-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<p>index</p>\n").unwrap();
        std::fs::write(dir.join("big.bin"), vec![7u8; BIG]).unwrap();
        dir
    });
    Context::new(Root::open(dir).unwrap(), Cache::new(64, 1 << 20), Limits::default())
}

fn timeouts() -> Timeouts {
    Timeouts { keepalive: 7_000, request: 5_000, send: 10_000, linger: 2_000 }
}

pub(super) fn core_with(max_conns: usize) -> Core<()> {
    Core::new(ctx(), timeouts(), max_conns, 0, WALL)
}

/// The action without its borrow.
fn next(action: &Action<'_>) -> Next {
    match action {
        Action::Receive => Next::Receive,
        Action::Send(_) => Next::Send,
        Action::Shutdown => Next::Shutdown,
        Action::Drain => Next::Drain,
        Action::Yield => Next::Yield,
        Action::Close => Next::Close,
        Action::Abort => Next::Abort,
    }
}

pub(super) fn step(core: &mut Core<()>, token: Token, event: Event<'_>) -> Next {
    core.step(token, event).map(|s| next(&s.action)).expect("the connection is gone")
}

/// Report `event`, then send every chunk handed out in full (a file range as that many
/// `#`), until the action is something else; the bytes sent and that action.
pub(super) fn run(core: &mut Core<()>, token: Token, event: Event<'_>) -> (Vec<u8>, Next) {
    let mut sent = Vec::new();
    let mut event = event;
    loop {
        let step = core.step(token, event).expect("the connection is gone");
        let n = match step.action {
            Action::Send(offer) => match offer.segment() {
                Segment::Bytes(b) => {
                    sent.extend_from_slice(b);
                    b.len()
                }
                Segment::File(r) => {
                    sent.resize(sent.len() + r.len as usize, b'#');
                    r.len as usize
                }
            },
            other => return (sent, next(&other)),
        };
        event = Event::Sent(n);
    }
}

/// Move the clock to `now` and fire timers; the connections that came due.
pub(super) fn at(core: &mut Core<()>, now: Millis) -> Vec<Token> {
    core.advance(now, WALL + now / 1000);
    core.expire();
    let mut ready = Vec::new();
    core.take_ready(&mut ready);
    ready
}

/// Nothing comes due a millisecond before `ms`, and exactly `due` at `ms`.
#[track_caller]
fn fires_at(core: &mut Core<()>, ms: Millis, due: &[Token]) {
    assert!(at(core, ms - 1).is_empty(), "a deadline fired before {ms} ms");
    assert_eq!(at(core, ms), due, "due at {ms} ms");
}

fn statuses(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ").map(|(i, _)| text[i + 9..i + 12].to_string()).collect()
}

/// A connection that asked for big.bin and was sent the head; the clock reads `now`.
pub(super) fn downloading(core: &mut Core<()>, now: Millis) -> Token {
    at(core, now);
    let t = core.accept((), None).unwrap();
    let Some(s) = core.step(t, Event::Received(GET_BIG)) else { panic!("gone") };
    let Action::Send(offer) = s.action else { panic!("{:?}", s.action) };
    let Segment::Bytes(head) = offer.segment() else { panic!("{offer:?}") };
    let n = head.len();
    assert_eq!(step(core, t, Event::Sent(n)), Next::Send, "the body follows the head");
    t
}

#[test]
fn a_slow_reader_that_keeps_reading_is_never_cut() {
    let mut core = core_with(10);
    let t = downloading(&mut core, 1_000);
    // 1000 bytes every 9.9 s: far slower than any timeout, for far longer than all of
    // them, but never 10 s (the send timeout) without progress.
    let mut now = 1_000;
    let mut left = BIG;
    while left > 1_000 && now < 600_000 {
        now += 9_900;
        assert!(at(&mut core, now).is_empty(), "timed out at {now} ms with {left} bytes left");
        assert_eq!(step(&mut core, t, Event::Sent(1_000)), Next::Send);
        left -= 1_000;
    }
    assert!(now >= 600_000, "the test ran long enough to outlast every timeout");
    assert_eq!(step(&mut core, t, Event::Sent(0)), Next::Send);
    let Some(s) = core.step(t, Event::Resume) else { panic!("gone") };
    let Action::Send(offer) = s.action else { panic!("{:?}", s.action) };
    let Segment::File(r) = offer.segment() else { panic!("{offer:?}") };
    let rest = r.len as usize;
    assert_eq!(step(&mut core, t, Event::Sent(rest)), Next::Receive, "whole, and kept alive");
}

#[test]
fn a_reader_that_stops_is_dropped_exactly_at_the_send_timeout() {
    let mut core = core_with(10);
    let t = downloading(&mut core, 2_000);
    assert_eq!(step(&mut core, t, Event::Sent(5_000)), Next::Send);
    // Last progress at 2 s; the send timeout is 10 s.
    fires_at(&mut core, 12_000, &[t]);
    assert_eq!(step(&mut core, t, Event::Resume), Next::Abort, "a stalled client is reset");
    assert!(core.release(t).is_some());
    assert!(core.step(t, Event::Resume).is_none());
}

#[test]
fn a_request_gets_408_at_the_request_timeout_from_its_first_byte() {
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    at(&mut core, 3_000);
    assert_eq!(step(&mut core, t, Event::Received(b"GET /index.html HT")), Next::Receive);
    // Trickling bytes does not extend a request.
    at(&mut core, 6_000);
    assert_eq!(step(&mut core, t, Event::Received(b"TP/1.1\r\n")), Next::Receive);
    fires_at(&mut core, 8_000, &[t]);
    let (sent, next) = run(&mut core, t, Event::Resume);
    assert_eq!(statuses(&sent), ["408"]);
    assert!(String::from_utf8_lossy(&sent).contains("Connection: close\r\n"));
    assert_eq!(next, Next::Shutdown);
    assert_eq!(step(&mut core, t, Event::Shut), Next::Drain);
    assert_eq!(step(&mut core, t, Event::Received(b"late input is drained")), Next::Drain);
    assert_eq!(step(&mut core, t, Event::PeerClosed), Next::Close);
}

#[test]
fn a_new_connection_that_sends_nothing_is_closed_quietly_at_the_request_timeout() {
    let mut core = core_with(10);
    at(&mut core, 1_000);
    let t = core.accept((), None).unwrap();
    fires_at(&mut core, 6_000, &[t]);
    assert_eq!(run(&mut core, t, Event::Resume), (Vec::new(), Next::Close));
}

#[test]
fn an_idle_keepalive_connection_is_closed_at_the_keepalive_timeout() {
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    at(&mut core, 1_000);
    let (sent, next) = run(&mut core, t, Event::Received(GET_INDEX));
    assert_eq!((statuses(&sent), next), (vec!["200".to_string()], Next::Receive));
    // Idle from 1 s; keep-alive is 7 s, longer than the request timeout.
    fires_at(&mut core, 8_000, &[t]);
    assert_eq!(step(&mut core, t, Event::Resume), Next::Close);
}

#[test]
fn a_lingering_connection_is_closed_at_the_linger_timeout() {
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    let (sent, next) = run(&mut core, t, Event::Received(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert_eq!((statuses(&sent), next), (vec!["200".to_string()], Next::Shutdown));
    at(&mut core, 500);
    assert_eq!(step(&mut core, t, Event::Shut), Next::Drain);
    fires_at(&mut core, 2_500, &[t]);
    assert_eq!(step(&mut core, t, Event::Resume), Next::Close);
}

#[test]
fn the_clock_going_back_does_not_move_deadlines() {
    let mut core = core_with(10);
    at(&mut core, 10_000);
    let t = core.accept((), None).unwrap();
    assert_eq!(step(&mut core, t, Event::Received(b"GET / HT")), Next::Receive);
    // A monotonic reading behind the last one is ignored: a connection taken now counts
    // from 10 s, not 1 s. The wall clock (Date only) stepping back a day or forward a
    // year changes nothing.
    core.advance(1_000, WALL - 86_400);
    let taken_then = core.accept((), None).unwrap();
    core.expire();
    core.advance(14_000, WALL + 365 * 86_400);
    core.expire();
    assert!(!core.has_ready());
    fires_at(&mut core, 15_000, &[t, taken_then]);
}

/// A connection that asked for index.html at `now` and got it: idle, kept alive.
pub(super) fn kept_alive(core: &mut Core<()>, now: Millis) -> Token {
    at(core, now);
    let t = core.accept((), None).unwrap();
    assert_eq!(run(core, t, Event::Received(GET_INDEX)).1, Next::Receive);
    t
}

#[test]
fn a_long_pipeline_does_not_keep_another_connection_waiting() {
    let mut core = core_with(10);
    at(&mut core, 1_000);
    let greedy = core.accept((), None).unwrap();
    let other = core.accept((), None).unwrap();
    let pipeline = GET_INDEX.repeat(10_000);
    let (sent, next) = run(&mut core, greedy, Event::Received(&pipeline));
    let first_turn = statuses(&sent).len();
    assert_eq!(next, Next::Yield);
    assert!((1..10_000).contains(&first_turn), "answered {first_turn} in one turn");
    // The other connection is answered in the same turn, within its own budget.
    let (sent, next) = run(&mut core, other, Event::Received(GET_INDEX));
    assert_eq!((statuses(&sent).len(), next), (1, Next::Receive));
    // The greedy one comes back turn after turn until every request is answered.
    let mut answered = first_turn;
    let mut turns = 1;
    while answered < 10_000 {
        assert_eq!(at(&mut core, 1_000 + turns), [greedy]);
        let (sent, _) = run(&mut core, greedy, Event::Resume);
        answered += statuses(&sent).len();
        turns += 1;
    }
    assert_eq!(answered, 10_000);
    assert!(turns > 10, "{turns} turns");
    assert_eq!(step(&mut core, greedy, Event::Resume), Next::Receive);
}

#[test]
fn a_client_that_ends_its_stream_gets_every_answer_then_a_close() {
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    let two = GET_BIG.repeat(2);
    let Some(s) = core.step(t, Event::Received(&two)) else { panic!("gone") };
    assert!(matches!(s.action, Action::Send(_)));
    assert_eq!(step(&mut core, t, Event::PeerClosed), Next::Send, "answers already asked for still go out");
    let (sent, next) = run(&mut core, t, Event::Resume);
    assert_eq!((statuses(&sent), next), (vec!["200".to_string(), "200".to_string()], Next::Close));
}

/// A client that pipelines and never reads, fed as io_uring feeds it (receives of at most
/// the room the core gives, for as long as it gives any): input stops at the bound, and what the connection
/// holds stays within its budget, with the access log on and long Referer and User-Agent
/// fields too (each answer's record counts toward the output's bound).
#[test]
fn a_client_that_pipelines_and_never_reads_holds_a_bounded_amount() {
    let long = "x".repeat(7_000);
    let logged = format!("GET /index.html HTTP/1.1\r\nHost: x\r\nReferer: {long}\r\nUser-Agent: {long}\r\n\r\n");
    for (request, log) in [(GET_INDEX, false), (logged.as_bytes(), true)] {
        let mut core = core_with(10);
        if log {
            core.log_access(crate::access::AccessLog::new(crate::access::LogFormat::Json, 0));
        }
        let t = core.accept((), None).unwrap();
        let stream = request.repeat(1_200_000 / request.len());
        let (mut fed, mut room) = (0, INPUT_READ);
        while room > 0 && fed < stream.len() {
            let piece = &stream[fed..(fed + room.min(4096)).min(stream.len())];
            fed += piece.len();
            room = core.step(t, Event::Received(piece)).expect("open").room;
        }
        assert_eq!(room, 0, "log {log}: input never stopped ({fed} bytes taken)");
        let conn = &core.slots[t.index()].conn;
        let held = conn.held_len();
        let output = conn.out.as_ref().map_or(0, |out| out.held_bytes());
        assert!(held <= INPUT_HELD, "log {log}: {held} bytes of input held");
        let bound = crate::conn::outbox::OUTPUT_BOUND + 2 * request.len() + 2048;
        assert!(output <= bound, "log {log}: {output} bytes of output and records held");
    }
}

#[test]
fn a_released_slot_is_not_reached_by_its_old_token() {
    let mut core = core_with(1);
    let old = core.accept((), None).unwrap();
    assert_eq!(step(&mut core, old, Event::Failed), Next::Close);
    core.release(old);
    let new = core.accept((), None).unwrap();
    assert_eq!(new.index(), old.index());
    assert!(core.step(old, Event::Received(GET_INDEX)).is_none());
    assert!(core.release(old).is_none());
    assert_eq!(step(&mut core, new, Event::Resume), Next::Receive);
}

#[test]
fn the_wheel_holds_an_entry_per_connection_not_per_request() {
    // The defaults, where each response's send deadline (60 s) comes before the
    // keep-alive deadline (75 s) it interrupts.
    let mut core: Core<()> = Core::new(ctx(), Timeouts::default(), 10, 0, WALL);
    let t = core.accept((), None).unwrap();
    // A request every 100 ms for 200 s: past the first deadline filed, so that the
    // connection is refiled at its keep-alive deadline and each send deadline is earlier.
    for turn in 1..=2_000 {
        at(&mut core, turn * 100);
        let (sent, next) = run(&mut core, t, Event::Received(GET_INDEX));
        assert_eq!((statuses(&sent).len(), next), (1, Next::Receive));
    }
    assert!(
        core.wheel.entries() <= 2,
        "{} entries filed for one connection after 2,000 requests",
        core.wheel.entries()
    );
}

#[test]
fn the_slab_has_room_reserved_from_the_start() {
    // Grown from nothing by doubling, it would leave each smaller copy in the heap.
    let core = core_with(10_000);
    assert!(core.slots.capacity() >= 10_000, "room for {} connections", core.slots.capacity());
    let core = core_with(1 << 20);
    assert!(core.slots.capacity() >= SLAB_RESERVE);
}

/// What `t` holds beyond its slot, asserted to be nothing: it is idle between requests
/// (kept alive, on the idle list) with no buffer and no outbox left from serving.
#[track_caller]
fn owns_nothing(core: &Core<()>, t: Token, after: &str) {
    let slot = &core.slots[t.index()];
    assert!(slot.flags.has(Flags::IDLE) && slot.timer == Timer::Idle, "{after}: not idle between requests");
    // Holding no input is holding no allocation for it (`Conn::mid_request`).
    assert!(!slot.conn.mid_request(), "{after}: idle, yet holding input (a copy of a request, or a body)");
    assert!(slot.conn.out.is_none(), "{after}: an idle connection keeps an outbox");
}

/// An idle connection costs its slot and nothing else: whatever serving it needed (a copy
/// of a request that came in pieces, requests held behind output, a body being thrown
/// away, the outbox) is let go once it is idle again.
#[test]
fn idle_connection_is_small() {
    // Without a driver's part (each driver's tests add theirs): 64 bytes of the 72 the
    // slab may spend on each connection.
    let slot_size = slot_bytes::<()>();
    assert!(slot_size <= 64, "slab entry of an idle connection is {slot_size} bytes");
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    // A request in two pieces: the first is copied and kept until the rest comes.
    assert_eq!(step(&mut core, t, Event::Received(b"GET /index.html HT")), Next::Receive);
    assert!(core.slots[t.index()].conn.held_len() > 0, "the piece is held");
    let (sent, next) = run(&mut core, t, Event::Received(b"TP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!((statuses(&sent), next), (vec!["200".to_string()], Next::Receive));
    owns_nothing(&core, t, "a request in two pieces");
    // Requests pipelined behind a megabyte of output wait in a copy, then are answered.
    let Some(s) = core.step(t, Event::Received(GET_BIG)) else { panic!("gone") };
    assert!(matches!(s.action, Action::Send(_)));
    assert_eq!(step(&mut core, t, Event::Received(&GET_INDEX.repeat(3))), Next::Send);
    assert!(core.slots[t.index()].conn.held_len() > 0, "the pipelined requests are held");
    let mut answered = Vec::new();
    let mut event = Event::Sent(0);
    for turn in 1..=10 {
        let (sent, next) = run(&mut core, t, event);
        answered.extend(statuses(&sent));
        if next == Next::Receive {
            break;
        }
        assert_eq!(next, Next::Yield);
        assert_eq!(at(&mut core, turn), [t]);
        event = Event::Resume;
    }
    assert_eq!(answered, ["200"; 4], "big.bin, then the three held");
    owns_nothing(&core, t, "requests held behind output");
    // A body thrown away, arriving in pieces.
    let post = b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234";
    assert_eq!(step(&mut core, t, Event::Received(post)), Next::Receive);
    assert!(core.slots[t.index()].conn.mid_request(), "the body is being read");
    let (sent, next) = run(&mut core, t, Event::Received(b"56789"));
    assert_eq!((statuses(&sent), next), (vec!["405".to_string()], Next::Receive));
    owns_nothing(&core, t, "a discarded body");
}

#[test]
fn a_drain_lets_idle_connections_go_soon_and_closes_the_rest_after_their_answers() {
    let mut core = core_with(10);
    let idle = kept_alive(&mut core, 1_000);
    let download = downloading(&mut core, 1_000);
    let fresh = core.accept((), None).unwrap();
    let partial = core.accept((), None).unwrap();
    assert_eq!(step(&mut core, partial, Event::Received(b"GET /index.html HT")), Next::Receive);
    at(&mut core, 2_000);
    core.drain();
    assert!(at(&mut core, 2_000 + DRAIN_IDLE - 1).is_empty(), "closed before DRAIN_IDLE");
    let mut due = at(&mut core, 2_000 + DRAIN_IDLE);
    due.sort_by_key(|t| t.0);
    assert_eq!(due, [idle, fresh], "the idle and the new connection are let go, no other");
    assert_eq!(step(&mut core, idle, Event::Resume), Next::Close);
    assert_eq!(step(&mut core, fresh, Event::Resume), Next::Close);

    // A request already begun is answered, with the connection's last response.
    let (sent, next) = run(&mut core, partial, Event::Received(b"TP/1.1\r\nHost: x\r\n\r\n"));
    let text = String::from_utf8(sent).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 ") && text.contains("\r\nConnection: close\r\n"), "{text}");
    assert_eq!(next, Next::Shutdown);
    assert_eq!(step(&mut core, partial, Event::Shut), Next::Drain);

    // The download, begun as keep-alive, finishes whole; then the connection goes.
    let (sent, next) = run(&mut core, download, Event::Sent(0));
    assert_eq!((sent.len(), next), (BIG, Next::Yield), "a megabyte spends the turn's budget");
    assert_eq!(at(&mut core, 2_600), [download], "it yielded its turn");
    assert_eq!(step(&mut core, download, Event::Resume), Next::Receive);
    // Both idle (or lingering after the last answer) from 2.5 s, for DRAIN_IDLE.
    fires_at(&mut core, 2_500 + DRAIN_IDLE, &[partial, download]);
    assert_eq!(step(&mut core, partial, Event::Resume), Next::Close);
    assert_eq!(step(&mut core, download, Event::Resume), Next::Close);
}

#[test]
fn close_all_resets_only_connections_with_output_unsent() {
    let mut core = core_with(10);
    let idle = kept_alive(&mut core, 1_000);
    let download = downloading(&mut core, 1_000);
    core.close_all();
    let mut ready = Vec::new();
    core.take_ready(&mut ready);
    assert_eq!(ready, [idle, download]);
    assert_eq!(step(&mut core, idle, Event::Resume), Next::Close);
    assert_eq!(step(&mut core, download, Event::Resume), Next::Abort);
}

#[test]
fn what_happens_is_counted_once_where_it_happens() {
    use crate::stats::{TimeoutKind, get};
    let mut core = core_with(10);
    let s = core.ctx.stats;
    let t = core.accept((), None).unwrap();
    at(&mut core, 1_000);
    let pipelined = [GET_INDEX, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
    assert_eq!(step(&mut core, t, Event::Received(&pipelined)), Next::Send);
    at(&mut core, 1_003);
    run(&mut core, t, Event::Resume);
    let bytes = get(&s.bytes_sent);
    assert!(bytes > 0);
    assert_eq!((get(&s.accepted), get(&s.responses[1]), get(&s.responses[3])), (1, 1, 1));
    // Both answers left 3 ms after their first byte.
    assert_eq!((get(&s.latency[2]), get(&s.latency_sum_ms)), (2, 6));
    assert_eq!(at(&mut core, 8_100), [t]);
    assert_eq!(step(&mut core, t, Event::Resume), Next::Close);
    assert_eq!(get(&s.timeouts[TimeoutKind::Keepalive as usize]), 1);
    core.release(t);
    assert_eq!(get(&s.closed), 1);

    let slow = core.accept((), None).unwrap();
    assert_eq!(step(&mut core, slow, Event::Received(b"GET / HT")), Next::Receive);
    assert_eq!(at(&mut core, 13_100), [slow]);
    assert_eq!(get(&s.timeouts[TimeoutKind::Request as usize]), 1);
    assert_eq!((get(&s.responses[3]), get(&s.parse_errors[1])), (2, 1), "408 is a 4xx and a parse error");
}
