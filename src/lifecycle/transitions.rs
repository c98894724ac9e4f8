//! The transitions: an event changes a connection's state (`apply`), the state says what
//! comes next (`decide`), and the deadline follows from the state (`settle`). Timers
//! (`expire`) and admission at the cap (`admit`) are the other two ways a connection's
//! life changes.

use super::timer::{NOT_FILED, tick_at_or_after};
use super::{ANSWER_COST, Core, DRAIN_IDLE, Event, Flags, Next, Phase, TURN_BUDGET, Timer};
use crate::conn::Conn;
use crate::stats;
use crate::transport::{Inbound, Transport};

impl<C, T: Transport> Core<C, T> {
    pub(super) fn apply(&mut self, key: usize, event: Event<'_>) {
        let turn = self.turn;
        let slot = &mut self.slots[key];
        if slot.turn != turn {
            slot.turn = turn;
            slot.spent = 0;
        }
        match event {
            Event::Resume => {}
            Event::Received(data) => {
                slot.spent = slot.spent.saturating_add(data.len().min(TURN_BUDGET as usize) as u32);
                if !slot.conn.mid_request() && slot.conn.out.is_none() && !slot.flags.has(Flags::UNPARSED) {
                    // The first byte of what is answered next.
                    slot.began = self.now_us;
                }
                if slot.phase != Phase::Open || slot.conn.closing || slot.flags.has(Flags::PEER_EOF) || data.is_empty()
                {
                    // Lingering, or a last answer is queued: input is only drained.
                    return;
                }
                let mut shared = std::mem::take(&mut self.shared);
                match slot.transport.inbound(data, &mut shared) {
                    Inbound::Data([]) => {}
                    Inbound::Data(data) if slot.conn.out.is_some() || slot.spent >= TURN_BUDGET => {
                        slot.conn.hold(data);
                        slot.flags.set(Flags::UNPARSED, true);
                    }
                    Inbound::Data(data) => self.feed(key, data),
                    Inbound::Closed => slot.flags.set(Flags::PEER_EOF, true),
                    Inbound::Failed => {
                        // Nothing more is read; what the transport queued to say why goes out,
                        // then the connection ends.
                        slot.conn.closing = true;
                        slot.flags.set(Flags::UNPARSED, false);
                    }
                }
                self.shared = shared;
            }
            Event::Sent(n) => {
                slot.spent = slot.spent.saturating_add(n.min(TURN_BUDGET as usize) as u32);
                stats::add(&self.ctx.stats.bytes_sent, n as u64);
                let done = slot.transport.sent(n, slot.conn.out.as_deref_mut(), &mut self.shared);
                if let Some(log) = &mut self.access {
                    log.sent(key, done as u64, self.now_us);
                }
                if n > 0 && slot.timer == Timer::Send {
                    // Progress: the send deadline starts again (see `settle`).
                    slot.timer = Timer::None;
                }
                self.sent_all(key);
            }
            Event::SendFailed => {
                slot.transport.sent(0, slot.conn.out.as_deref_mut(), &mut self.shared);
                self.close(key, false);
            }
            Event::PeerClosed if slot.phase == Phase::Open => slot.flags.set(Flags::PEER_EOF, true),
            Event::PeerClosed | Event::Failed => self.close(key, false),
            Event::Shut if slot.phase == Phase::Open => {
                slot.phase = Phase::Lingering;
                slot.conn = Conn::default();
                slot.flags.set(Flags::UNPARSED, false);
                // Linger from our FIN.
                slot.timer = Timer::None;
            }
            Event::Shut => {}
        }
    }

    /// Once the connection's output has all gone (the transport's too), time its answers
    /// and let the queue go.
    fn sent_all(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        if slot.conn.out.as_ref().is_some_and(|out| out.is_empty())
            && !slot.transport.pending()
            && let Some(out) = slot.conn.out.take()
        {
            // Every answer in it has gone: their response time is now known.
            let ms = self.now_us.saturating_sub(slot.began) / 1000;
            self.ctx.stats.latency(ms, u64::from(out.responses()));
            self.recycle(out);
        }
    }

    /// Answer what can be answered now, and say what the driver does next.
    pub(super) fn decide(&mut self, key: usize) -> Next {
        loop {
            let slot = &mut self.slots[key];
            match slot.phase {
                Phase::Closed if slot.flags.has(Flags::RESET) => return Next::Abort,
                Phase::Closed => return Next::Close,
                Phase::Lingering => return Next::Drain,
                Phase::Open => {}
            }
            if slot.conn.out.is_some() || slot.transport.pending() {
                let prepared = slot.transport.prepare(slot.conn.out.as_deref_mut(), &mut self.shared);
                if prepared.is_err() {
                    self.close(key, true);
                    continue;
                }
                if slot.transport.ready(slot.conn.out.as_deref_mut()) {
                    return Next::Send;
                }
                if slot.conn.out.as_ref().is_some_and(|out| !out.is_empty()) {
                    // Output the transport can neither send nor drop: end it rather than spin.
                    self.close(key, true);
                } else {
                    // The transport took all of it and has sent it (or dropped it, failed).
                    self.sent_all(key);
                }
                continue;
            }
            if slot.conn.closing {
                if slot.transport.close_notify() {
                    continue;
                }
                return Next::Shutdown;
            }
            let spent = slot.spent >= TURN_BUDGET;
            if slot.flags.has(Flags::UNPARSED) {
                if spent {
                    return Next::Yield;
                }
                self.feed(key, &[]);
                continue;
            }
            if slot.flags.has(Flags::PEER_EOF) {
                // Everything the client sent is answered; nothing more will come.
                self.close(key, false);
                continue;
            }
            return if spent { Next::Yield } else { Next::Receive };
        }
    }

    /// Parse the input `conn` holds followed by `data`, answering complete requests into a
    /// pooled outbox (within the turn's budget); `Conn::receive` keeps the unparsed tail.
    fn feed(&mut self, key: usize, data: &[u8]) {
        let slot = &mut self.slots[key];
        let answered = slot.conn.responses;
        let max_answers = (TURN_BUDGET - slot.spent.min(TURN_BUDGET)).div_ceil(ANSWER_COST);
        if self.ctx.site.is_some() {
            let via = &mut self.ctx.via;
            via.listener = usize::from(slot.conn.listener);
            via.tls = slot.transport.describe().is_some();
            via.sni.clear();
            via.sni.extend(slot.transport.server_name().unwrap_or_default().bytes().map(|b| b.to_ascii_lowercase()));
        }
        let tail = slot.conn.receive(data, &mut self.ctx, &mut self.scratch, max_answers);
        let answers = slot.conn.responses.wrapping_sub(answered);
        slot.spent = slot.spent.saturating_add(answers.saturating_mul(ANSWER_COST));
        // Stopped with input left for a reason other than an incomplete request: what is
        // left may hold whole requests, for after the output has gone.
        let unparsed = tail > 0 && (answers >= max_answers || self.scratch.is_full());
        slot.flags.set(Flags::UNPARSED, unparsed);
        if answers > 0 {
            // A request ended: whatever follows gets its own deadline.
            slot.timer = Timer::None;
        }
        self.log_records(key);
        if !self.scratch.is_empty() {
            let mut out = self.pool.pop().unwrap_or_default();
            out.fill_from(&mut self.scratch);
            // Fed only while no output waits, so these are the answers it holds.
            out.set_responses(answers);
            self.slots[key].conn.out = Some(out);
        }
    }

    /// Hand the access log what the protocol recorded of the answers it just queued.
    pub(super) fn log_records(&mut self, key: usize) {
        if let (Some(log), Some(records)) = (&mut self.access, &mut self.ctx.records) {
            let slot = &self.slots[key];
            if !records.is_empty()
                && let Some(tls) = slot.transport.describe()
            {
                log.secure(key, tls);
            }
            for record in records.drain(..) {
                log.queued(key, record, slot.began, self.ctx.now);
            }
        }
    }

    /// Set the deadline for the state `key` is in, if the state changed since it was set
    /// (a slot keeps its deadline across events of the same state: trickling bytes does not
    /// extend a request), and keep the idle list in step.
    pub(super) fn settle(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        let timer = match slot.phase {
            Phase::Closed => Timer::None,
            Phase::Lingering => Timer::Linger,
            Phase::Open if slot.conn.out.is_some() || slot.transport.pending() => Timer::Send,
            // A last answer went out; the driver shuts our side at once.
            Phase::Open if slot.conn.closing => Timer::Linger,
            Phase::Open if slot.conn.mid_request() => Timer::Request,
            Phase::Open => Timer::Idle,
        };
        // Only a keep-alive connection between requests is evictable: a new one may have
        // its first request in the socket, unread yet.
        let idle = timer == Timer::Idle && slot.conn.responses > 0;
        if idle != slot.flags.has(Flags::IDLE) {
            if idle { self.idle_push(key) } else { self.idle_unlink(key) }
        }
        let slot = &mut self.slots[key];
        if timer == slot.timer {
            return;
        }
        slot.timer = timer;
        let mut after = match timer {
            Timer::None => return,
            // A new connection waits for its first request as long as a request may take.
            Timer::Idle if slot.conn.responses == 0 => self.timeouts.request,
            Timer::Idle => self.timeouts.keepalive,
            Timer::Request => self.timeouts.request,
            Timer::Send => self.timeouts.send,
            Timer::Linger => self.timeouts.linger,
        };
        if self.ctx.draining && matches!(timer, Timer::Idle | Timer::Linger) {
            after = after.min(DRAIN_IDLE);
        }
        let tick = tick_at_or_after(self.now + after);
        slot.deadline = tick;
        // Filed at an earlier tick already: it is refiled when that tick comes due. The
        // filed tick only ever moves earlier, so a connection has an entry or two in the
        // wheel, however many requests it makes.
        if slot.filed == NOT_FILED || tick < slot.filed {
            let token = self.token(key);
            self.slots[key].filed = self.wheel.schedule(token, tick);
        }
    }

    pub(super) fn close(&mut self, key: usize, reset: bool) {
        let slot = &mut self.slots[key];
        self.closing += usize::from(slot.phase != Phase::Closed);
        slot.phase = Phase::Closed;
        if reset {
            slot.flags.set(Flags::RESET, true);
        }
        slot.flags.set(Flags::UNPARSED, false);
        self.idle_unlink(key);
    }
}
