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

use super::tests::{WALL, core_with};
use super::timer::NOT_FILED;
use super::*;
use crate::conn::Segment;
use proptest::prelude::*;
use std::collections::HashMap;

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

fn op() -> impl Strategy<Value = Op> {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_events_keep_every_invariant(ops in proptest::collection::vec(op(), 1..200), cap in 1usize..6) {
        let mut core = core_with(cap);
        let mut driver = Driver::default();
        for op in &ops {
            driver.apply(&mut core, op);
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
        prop_assert!(core.is_empty(), "{} connections left after closing all", core.len());
    }
}
