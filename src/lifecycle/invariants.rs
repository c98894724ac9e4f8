//! The lifecycle's invariants under random sequences of events: accepts below, at and past
//! the cap; requests whole, cut, pipelined and malformed; sends made at once or lent and
//! completed later (as io_uring's are, with other events in between), partly or not at
//! all; the client closing, errors, the clock passing every timeout, a drain, and closing
//! everything. The test plays a driver that keeps the contract (`driver` module), and after
//! every step checks:
//!
//! - no slot is reached after its release: a released token finds nothing, ever;
//! - every live connection has exactly one deadline: open or lingering, a timer filed in
//!   the wheel at or before it; closed, none;
//! - at most one send is lent per connection, and output is lent exactly while the driver
//!   holds a send of it;
//! - each connection is released exactly once, only with nothing of it in flight, and the
//!   slab holds exactly the connections the driver holds.
//!
//! Two sources of sequences play the same driver: proptest's strategy (`cargo test`) and
//! `replay`, which decodes any bytes into operations for the `core` fuzz target and for
//! the replay of its corpus (both built with the `fuzzing` feature, never in production).

use super::timer::NOT_FILED;
use super::*;
use crate::conn::Segment;
use crate::files::{Cache, Root};
use crate::http::Limits;
use std::cell::RefCell;
use std::collections::HashMap;

const WALL: u64 = 1_700_000_000;

thread_local! {
    /// The context of the core played last, for the next one: each new context leaks its
    /// counters (`ShardStats::detached`), and a fuzzer plays millions of cores.
    static SPARE: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// A core over a root with a small and a 1 MiB file, its timeouts those of the lifecycle's
/// tests, and an empty cache (so that a sequence plays the same whatever ran before it).
fn core_with(max_conns: usize) -> Core<()> {
    let mut ctx = SPARE.take().unwrap_or_else(|| {
        let dir = fixture_dir("c10k-invariants", &[("index.html", b"<p>index</p>\n"), ("big.bin", &[7; 1 << 20])]);
        Context::new(Root::open(&dir).unwrap(), Cache::new(64, 1 << 20), Limits::default())
    });
    ctx.cache = Cache::new(64, 1 << 20);
    ctx.draining = false;
    let timeouts = Timeouts { keepalive: 7_000, request: 5_000, send: 10_000, linger: 2_000 };
    Core::new(ctx, timeouts, max_conns, 0, WALL)
}

/// A directory of fixed files in the temporary directory, shared by every process that
/// asks for it by `name` (fuzzers run thousands, tests run at once): each file is written
/// to a name of its own and renamed into place, so none is ever seen half written.
pub fn fixture_dir(name: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(name);
    for (file, contents) in files {
        let path = dir.join(file);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == contents.len() as u64) {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("beneath the directory")).unwrap();
        let fresh = dir.join(format!(".{}.{}", file.replace('/', "_"), std::process::id()));
        std::fs::write(&fresh, contents).unwrap();
        std::fs::rename(&fresh, &path).unwrap();
    }
    dir
}

const INPUTS: [&[u8]; 7] = [
    b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /nope",
    b"GET /index.html HT",
    b"TP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"\x00\x01 garbage\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab",
];

#[derive(Clone, Debug)]
enum Op {
    /// Accept one; resume it at once (io_uring) or only once it has news (epoll).
    Accept(bool),
    /// Input for the connection picked by the index.
    Receive(usize, usize),
    /// The send in flight completes with this share (of 255) of its bytes.
    SendDone(usize, u8),
    SendFailed(usize),
    PeerClosed(usize),
    Failed(usize),
    Resume(usize),
    /// The clock moves on this many ms; timers fire, the ready list is carried out.
    Tick(u16),
    Drain,
    CloseAll,
}

/// Operations as the fuzzer writes them: a byte picks the kind with proptest's weights
/// (out of 23), the bytes after it its arguments; `None` once the input runs out.
fn decode(input: &mut &[u8]) -> Option<Op> {
    let mut byte = || -> Option<u8> {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        Some(b)
    };
    let kind = byte()? % 23;
    let mut conn = || byte().map(usize::from);
    Some(match kind {
        0..=2 => Op::Accept(kind == 0),
        3..=8 => Op::Receive(conn()?, conn()? % INPUTS.len()),
        9..=12 => Op::SendDone(conn()?, byte()?),
        13 => Op::SendFailed(conn()?),
        14 => Op::PeerClosed(conn()?),
        15 => Op::Failed(conn()?),
        16 => Op::Resume(conn()?),
        17..=19 => Op::Tick(u16::from_le_bytes([byte()?, byte()?]) % 3_000),
        20 => Op::Tick(u16::from_le_bytes([byte()?, byte()?]) % 40_000),
        21 => Op::Drain,
        _ => Op::CloseAll,
    })
}

/// Play the operations `data` encodes (its first byte picks the cap, 1 to 5), checking
/// every invariant after each; panics on the first that fails.
pub fn replay(data: &[u8]) {
    let Some((&cap, mut input)) = data.split_first() else { return };
    play(std::iter::from_fn(|| decode(&mut input)), usize::from(cap % 5) + 1);
}

fn play(ops: impl IntoIterator<Item = Op>, cap: usize) {
    let mut core = core_with(cap);
    let mut driver = Driver::default();
    for op in ops {
        driver.apply(&mut core, &op);
        check(&core, &driver);
    }
    // Whatever happened, closing everything and completing what is in flight releases
    // every connection.
    core.close_all();
    driver.ready(&mut core);
    for (t, _) in std::mem::take(&mut driver.in_flight) {
        driver.carry(&mut core, t, Event::SendFailed);
    }
    check(&core, &driver);
    assert!(core.is_empty(), "{} connections left after closing all", core.len());
    let Core { ctx, .. } = core;
    SPARE.set(Some(ctx));
}

#[cfg(test)]
fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Accept),
        6 => (any::<usize>(), 0..INPUTS.len()).prop_map(|(c, i)| Op::Receive(c, i)),
        4 => (any::<usize>(), any::<u8>()).prop_map(|(c, f)| Op::SendDone(c, f)),
        1 => any::<usize>().prop_map(Op::SendFailed),
        1 => any::<usize>().prop_map(Op::PeerClosed),
        1 => any::<usize>().prop_map(Op::Failed),
        1 => any::<usize>().prop_map(Op::Resume),
        3 => (0u16..3_000).prop_map(Op::Tick),
        1 => (0u16..40_000).prop_map(Op::Tick),
        1 => Just(Op::Drain),
        1 => Just(Op::CloseAll),
    ]
}

/// A driver that keeps the contract: it sends bytes on loan (the kernel reads them later)
/// and file ranges at once, never has two sends of a connection in flight, and releases a
/// connection once the core says close and nothing of it is in flight.
#[derive(Default)]
struct Driver {
    live: Vec<Token>,
    /// Sends in flight: the length of the segment lent.
    in_flight: HashMap<Token, usize>,
    released: Vec<Token>,
    now: Millis,
}

impl Driver {
    fn pick(&self, i: usize) -> Option<Token> {
        (!self.live.is_empty()).then(|| self.live[i % self.live.len()])
    }

    fn carry(&mut self, core: &mut Core<()>, token: Token, event: Event<'_>) {
        let mut event = event;
        loop {
            let Some(step) = core.step(token, event) else { return };
            event = match step.action {
                Action::Send(_) if self.in_flight.contains_key(&token) => return,
                Action::Send(offer) => match offer.segment() {
                    Segment::File(range) => Event::Sent(range.len.min(64 << 10) as usize),
                    Segment::Bytes(_) => {
                        let Segment::Bytes(bytes) = offer.lend() else { unreachable!() };
                        self.in_flight.insert(token, bytes.len());
                        return;
                    }
                },
                Action::Shutdown => Event::Shut,
                Action::Receive | Action::Drain | Action::Yield => return,
                Action::Close | Action::Abort => {
                    if !self.in_flight.contains_key(&token) {
                        assert!(core.release(token).is_some(), "released once");
                        assert!(core.release(token).is_none(), "and never again");
                        self.live.retain(|&t| t != token);
                        self.released.push(token);
                    }
                    return;
                }
            };
        }
    }

    fn ready(&mut self, core: &mut Core<()>) {
        let mut ready = Vec::new();
        core.take_ready(&mut ready);
        for token in ready {
            self.carry(core, token, Event::Resume);
        }
    }

    fn apply(&mut self, core: &mut Core<()>, op: &Op) {
        match *op {
            Op::Accept(resume) => {
                for _ in 0..4 {
                    match core.admit(1) {
                        Admission::Take => {
                            let token = core.accept((), None).expect("admitted");
                            self.live.push(token);
                            if resume {
                                self.carry(core, token, Event::Resume);
                            }
                            break;
                        }
                        Admission::Evict(victim) => self.carry(core, victim, Event::Resume),
                        Admission::Wait => break,
                    }
                }
            }
            Op::Receive(c, i) => {
                if let Some(t) = self.pick(c) {
                    self.carry(core, t, Event::Received(INPUTS[i]));
                }
            }
            Op::SendDone(c, share) => {
                if let Some(t) = self.pick(c)
                    && let Some(len) = self.in_flight.remove(&t)
                {
                    let n = (len * usize::from(share) / 255).max(1);
                    self.carry(core, t, Event::Sent(n));
                }
            }
            Op::SendFailed(c) => {
                if let Some(t) = self.pick(c)
                    && self.in_flight.remove(&t).is_some()
                {
                    self.carry(core, t, Event::SendFailed);
                }
            }
            Op::PeerClosed(c) | Op::Failed(c) | Op::Resume(c) => {
                let event = match op {
                    Op::PeerClosed(_) => Event::PeerClosed,
                    Op::Failed(_) => Event::Failed,
                    _ => Event::Resume,
                };
                if let Some(t) = self.pick(c) {
                    self.carry(core, t, event);
                }
            }
            Op::Tick(ms) => {
                self.now += Millis::from(ms);
                core.advance(self.now, WALL + self.now / 1000);
                core.expire();
                self.ready(core);
            }
            Op::Drain => core.drain(),
            Op::CloseAll => {
                core.close_all();
                self.ready(core);
            }
        }
        self.ready(core);
    }
}

fn check(core: &Core<()>, driver: &Driver) {
    for &t in &driver.released {
        assert!(core.live(t).is_none(), "{t:?} reached after its release");
    }
    assert_eq!(core.slots.len(), driver.live.len(), "the slab holds what the driver holds");
    let mut closed = 0;
    let mut idle = 0;
    for &t in &driver.live {
        let key = core.live(t).expect("a connection the driver holds has its slot");
        let slot = &core.slots[key];
        if slot.phase == Phase::Closed {
            closed += 1;
            assert_eq!(slot.timer, Timer::None, "{t:?}: closed, yet a deadline");
        } else {
            assert_ne!(slot.timer, Timer::None, "{t:?}: live, with no deadline");
            assert!(slot.filed != NOT_FILED && slot.filed <= slot.deadline, "{t:?}: deadline not filed in time");
            assert!(core.wheel.holds(t, slot.filed), "{t:?}: filed at {} but not in the wheel", slot.filed);
        }
        let lent = slot.conn.out.as_ref().is_some_and(|out| out.is_lent());
        assert_eq!(lent, driver.in_flight.contains_key(&t), "{t:?}: lent output and sends in flight disagree");
        idle += usize::from(slot.flags.has(Flags::IDLE));
    }
    assert_eq!(core.closing, closed, "closing count");
    let mut on_list = 0;
    let mut key = core.idle.head;
    while key != idle::NIL && on_list <= idle {
        on_list += 1;
        key = core.slots[key as usize].idle_next;
    }
    assert_eq!(on_list, idle, "the idle list holds exactly the idle connections");
}

#[cfg(test)]
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    #[test]
    fn random_events_keep_every_invariant(ops in proptest::collection::vec(op(), 1..200), cap in 1usize..6) {
        play(ops, cap);
    }
}
