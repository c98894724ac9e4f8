//! The status listener's own thread. The master's loop (signals, reaping, restarts) must
//! never wait on a status client, and a client can always be slow: it may connect and send
//! nothing, or send a byte at a time. So the listener is served here, on a thread of its
//! own, as the shards serve theirs: non-blocking sockets in one poll loop, each client held
//! to deadlines, at most `MAX_CLIENTS` at once. The thread reads what the master publishes
//! (`Published`: its state and reload count) and the shards' shared counters, and writes
//! nothing anyone else reads. It is never joined: it dies with the process when the master
//! returns from `run`, which it does only once every shard has exited.
//!
//! A second thread is sound in the master because the master never forks without exec:
//! workers start through `std::process::Command`, whose child runs only async-signal-safe
//! code before its exec, and every socket accepted here is close-on-exec (`accept4`), so no
//! worker inherits a status client.

use super::status::{Server, answer, head_ended};
use super::status_history::History;
use super::unix_now;
use crate::log;
use crate::stats::{self, ShardStats};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use std::io::{self, ErrorKind, Read as _, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Status clients held at once. At the cap, a new client takes the place of the oldest one
/// still sending its head, as nginx, out of connections, closes its oldest idle ones to
/// accept new ones. Waiting in the backlog instead would let a few hundred silent clients
/// keep a load balancer's health check out for seconds, each holding its place until its
/// deadline; a real client (a `curl`, a Prometheus scrape, a health check) sends its
/// whole head in its first packet and is answered within a turn of this loop, so only
/// clients that hold a place without using it lose it (first those answered already and
/// lingering). Clients being answered are never dropped for a new one; when all are, new
/// ones wait in the backlog.
const MAX_CLIENTS: usize = 64;
/// From accept to a whole head; then the client is closed unanswered (as nginx does at
/// `client_header_timeout`): a client that is this slow is not reading either.
const HEAD_TIME: Duration = Duration::from_secs(1);
/// From a ready answer to its last byte taken by the kernel.
const ANSWER_TIME: Duration = Duration::from_secs(1);
/// After the answer, how long what the client still sends is read and dropped (nginx's
/// lingering close): closed with unread input, the socket would send a reset, which can
/// destroy the answer before the client reads it, above all the 400 to a client still
/// sending garbage.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// Past this, a head still unended is refused; the parser refuses a head over its 16 KiB
/// limit before it.
const MAX_HEAD: usize = 17 << 10;
/// How long to stop accepting after an error other than "none waiting" (out of
/// descriptors, mostly), rather than spin on a listener that stays readable.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What `/healthz` and `/status` say the server is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum State {
    Starting = 0,
    Serving = 1,
    Reloading = 2,
    Stopping = 3,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Serving => "serving",
            State::Reloading => "reloading",
            State::Stopping => "stopping",
        }
    }

    fn from_u8(n: u8) -> State {
        [State::Starting, State::Serving, State::Reloading, State::Stopping]
            .get(usize::from(n))
            .copied()
            .unwrap_or(State::Starting)
    }
}

/// What the master publishes for the status thread: written by the master at each change
/// (`Master::publish`), read at each answer. Each figure stands alone, so relaxed atomics
/// do.
#[derive(Default)]
pub(super) struct Published {
    state: AtomicU8,
    reloads: AtomicU64,
    /// Shards serving now, and why the others are not (empty when all serve).
    serving_shards: AtomicU64,
    down: std::sync::Mutex<String>,
    /// Each shard's state: serving, starting, its backoff, a generation draining.
    shard_states: std::sync::Mutex<Vec<String>>,
}

impl Published {
    pub(super) fn set(&self, state: State, reloads: u64) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.reloads.store(reloads, Ordering::Relaxed);
    }

    pub(super) fn set_shard_states(&self, states: Vec<String>) {
        *self.shard_states.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = states;
    }

    /// `serving` shards serve; `down` says which do not and why ("" when all do).
    pub(super) fn set_shards(&self, serving: u64, down: String) {
        self.serving_shards.store(serving, Ordering::Relaxed);
        *self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = down;
    }
}

/// What does not change over the server's life.
pub(super) struct Facts {
    pub backend: &'static str,
    /// Unix seconds.
    pub started: u64,
    pub capacity: u64,
    pub shards: usize,
    /// Every block of the shared counters: `stats::blocks(shards)` of them.
    pub stats: &'static [ShardStats],
}

/// Serve `listener` (non-blocking) on a thread of its own for the rest of the process.
pub(super) fn spawn(listener: TcpListener, published: Arc<Published>, facts: Facts) -> io::Result<()> {
    std::thread::Builder::new().name("status".to_string()).spawn(move || serve(&listener, &published, &facts))?;
    Ok(())
}

struct Client {
    stream: TcpStream,
    phase: Phase,
    /// When it is closed, whatever it is doing.
    deadline: Instant,
    /// Answered and closed by the client, or gone.
    finished: bool,
}

enum Phase {
    /// Its head, so far.
    Reading(Vec<u8>),
    /// The answer, and how much of it the kernel took.
    Answering(Vec<u8>, usize),
    /// Answered; what it still sends is dropped until it closes.
    Lingering,
}

impl Client {
    /// Whether a new client may take its place at the cap.
    fn idle(&self) -> bool {
        !matches!(self.phase, Phase::Answering(..))
    }
}

fn serve(listener: &TcpListener, published: &Published, facts: &Facts) {
    // Signals to the process go to the master's thread, whose poll they cut short.
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
    // In accept order, so the first one still reading is the oldest.
    let mut clients: Vec<Client> = Vec::with_capacity(MAX_CLIENTS);
    let mut accept_paused_until: Option<Instant> = None;
    let mut history = History::default();
    loop {
        let now = Instant::now();
        if history.due().is_none_or(|t| t <= now) {
            history.sample(&merged_shards(facts), now);
        }
        let accepting = accept_paused_until.is_none_or(|t| t <= now) && room(&clients);
        let mut wake = clients.iter().map(|c| c.deadline).chain(history.due()).min();
        if !accepting && let Some(t) = accept_paused_until {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
        let mut fds = Vec::with_capacity(clients.len() + 1);
        let listen_events = if accepting { PollFlags::POLLIN } else { PollFlags::empty() };
        fds.push(PollFd::new(listener.as_fd(), listen_events));
        for c in &clients {
            let events = if c.idle() { PollFlags::POLLIN } else { PollFlags::POLLOUT };
            fds.push(PollFd::new(c.stream.as_fd(), events));
        }
        // Rounded up: woken before a deadline, the loop would only go round again.
        let timeout = wake.map_or(PollTimeout::NONE, |t| {
            let ms = t.saturating_duration_since(now).as_millis() + 1;
            PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
        });
        if let Err(e) = poll(&mut fds, timeout)
            && e != nix::errno::Errno::EINTR
        {
            log::error(format_args!("status listener: poll: {e}; no longer serving status"));
            return;
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let now = Instant::now();
        for (client, _) in clients.iter_mut().zip(&ready[1..]).filter(|(_, ready)| **ready) {
            client.progress(published, facts, &history, now);
        }
        clients.retain(|c| !c.finished && c.deadline > now);
        if ready[0] {
            accept_paused_until = accept_waiting(listener, &mut clients, now).err().map(|_| now + ACCEPT_PAUSE);
        }
    }
}

/// Whether a new client can be taken: below the cap, or one at the cap may give way.
fn room(clients: &[Client]) -> bool {
    clients.len() < MAX_CLIENTS || clients.iter().any(Client::idle)
}

/// Accept what waits, making room at the cap; `Err` on an error other than none waiting.
fn accept_waiting(listener: &TcpListener, clients: &mut Vec<Client>, now: Instant) -> io::Result<()> {
    while room(clients) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::ConnectionAborted => continue,
            Err(e) => return Err(e),
        };
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        if clients.len() >= MAX_CLIENTS {
            // One answered already loses least.
            let answered = clients.iter().position(|c| matches!(c.phase, Phase::Lingering));
            if let Some(oldest) = answered.or_else(|| clients.iter().position(Client::idle)) {
                clients.remove(oldest);
            }
        }
        let deadline = now + HEAD_TIME;
        clients.push(Client { stream, phase: Phase::Reading(Vec::new()), deadline, finished: false });
    }
    Ok(())
}

impl Client {
    /// Read what arrived; once the head has ended, answer; send what the kernel takes;
    /// then drop what the client still sends until it closes.
    fn progress(&mut self, published: &Published, facts: &Facts, history: &History, now: Instant) {
        if let Phase::Reading(head) = &mut self.phase {
            let ended = match read_some(&self.stream, |bytes| {
                head.extend_from_slice(bytes);
                head.len() > MAX_HEAD || head_ended(head)
            }) {
                // A client that gave up is answered only if it sent something.
                Read::Closed => !head.is_empty(),
                Read::Done => true,
                Read::WouldBlock => return,
                Read::Failed => false,
            };
            if !ended {
                self.finished = true;
                return;
            }
            self.phase = Phase::Answering(respond(head, published, facts, history), 0);
            self.deadline = now + ANSWER_TIME;
        }
        if let Phase::Answering(answer, sent) = &mut self.phase {
            while *sent < answer.len() {
                match (&self.stream).write(&answer[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.finished = true;
                        return;
                    }
                }
            }
            let _ = self.stream.shutdown(Shutdown::Write);
            self.phase = Phase::Lingering;
            self.deadline = now + LINGER_TIME;
        }
        // A little a turn, so a client that floods cannot keep the others waiting.
        let mut budget = 64 << 10;
        let take = |bytes: &[u8]| {
            budget -= bytes.len().min(budget);
            budget == 0
        };
        if matches!(read_some(&self.stream, take), Read::Closed | Read::Failed) {
            self.finished = true;
        }
    }
}

/// How reading a client ended.
enum Read {
    /// `take` said it has all it wants.
    Done,
    WouldBlock,
    Closed,
    Failed,
}

/// Read what `stream` has, handing each piece to `take` until it says it has enough.
fn read_some(mut stream: &TcpStream, mut take: impl FnMut(&[u8]) -> bool) -> Read {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Read::Closed,
            Ok(n) if take(&buf[..n]) => return Read::Done,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Read::WouldBlock,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Read::Failed,
        }
    }
}

/// The answer to `head`, from the shards' counters and what the master published.
/// Each shard index's figures, summed over its blocks.
fn merged_shards(facts: &Facts) -> Vec<ShardStats> {
    (0..facts.shards)
        .map(|index| ShardStats::merged(stats::blocks_of(index, facts.shards).map(|b| &facts.stats[b])))
        .collect()
}

fn respond(head: &[u8], published: &Published, facts: &Facts, history: &History) -> Vec<u8> {
    let shards = merged_shards(facts);
    let now = unix_now();
    let down = published.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let shard_states = published.shard_states.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let state = State::from_u8(published.state.load(Ordering::Relaxed));
    let (interval, shard_intervals) = history.last().unzip();
    let series = history.series();
    let server = Server {
        version: env!("CARGO_PKG_VERSION"),
        backend: facts.backend,
        started: facts.started,
        now,
        capacity: facts.capacity,
        reloads: published.reloads.load(Ordering::Relaxed),
        // Serving with a shard down still serves: degraded, not failing.
        state: if state == State::Serving && !down.is_empty() { "degraded" } else { state.name() },
        down: &down,
        serving_shards: published.serving_shards.load(Ordering::Relaxed),
        shards: &shards,
        shard_states: &shard_states,
        interval: interval.as_ref(),
        shard_intervals: shard_intervals.as_deref().unwrap_or_default(),
        history: &series,
    };
    answer(head, &server, &crate::http::date::format(now))
}
