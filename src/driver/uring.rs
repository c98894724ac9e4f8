//! io_uring: completions, not readiness. One ring per shard (created in the shard's own
//! process), a multishot accept on the shard's listener, a multishot receive per
//! connection into a ring of provided buffers (an idle connection holds none), and one
//! send in flight per connection, over bytes that stay put in the connection's outbox
//! until it completes. File ranges go out with sendfile(2) on the non-blocking socket,
//! waiting for room with a poll operation: measured against reading each chunk through
//! the ring and sending it, it costs a quarter of the CPU (see README).
//! A slot is freed only when none of its operations is in flight.

use super::{Driver, Sizing, Token, sys};
use crate::conn::Chunk;
use crate::shard::Core;
use io_uring::types::{BufRingEntry, Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, Probe, cqueue, opcode, squeue};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU16, Ordering};

// Operation tags, in the top byte of user_data beside the connection's token.
const OP_ACCEPT: u64 = 1 << 56;
const OP_RECV: u64 = 2 << 56;
const OP_SEND: u64 = 3 << 56;
/// Waiting for a full socket to take more of a file range.
const OP_POLL: u64 = 4 << 56;
/// Cancellations: their completions carry nothing we need.
const OP_CANCEL: u64 = 5 << 56;
const OP_MASK: u64 = 0xff << 56;

/// Provided receive buffers: small, since requests are; a larger read arrives in several.
const RECV_BUF: usize = 4096;
/// Input queued behind unsent output beyond this stops the connection's receive.
const PENDING_CAP: usize = 256 * 1024;
const BUF_GROUP: u16 = 0;

#[derive(Default)]
pub struct ConnIo {
    /// Operations submitted and not yet completed for good.
    inflight: u8,
    recv_armed: bool,
    /// Receive stopped to let output drain; re-armed once it has.
    recv_paused: bool,
    /// A send (or a poll for room to send a file range) is in flight.
    sending: bool,
    cancelled: bool,
}

pub struct UringDriver {
    // Declared first so it is dropped (and its buffers unregistered) before `bufs`.
    ring: IoUring,
    bufs: BufRing,
    listener: TcpListener,
    accept_armed: bool,
    /// Turns to wait before re-arming accept after an error (EMFILE and the like).
    accept_backoff: u8,
    completions: Vec<(u64, i32, u32)>,
    /// Connections to look at once this turn's completions are in.
    touched: Vec<usize>,
    rearm: Vec<usize>,
    /// Connections accepted while every slot was taken, waiting for one.
    overflow: VecDeque<TcpStream>,
}

/// The ring: one shard, one issuer; defer task work to our own waits when the kernel can.
fn build_ring(entries: u32) -> io::Result<IoUring> {
    let cq = entries * 8;
    let einval = |r: &io::Result<IoUring>| matches!(r, Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL));
    let ring = IoUring::builder().setup_cqsize(cq).setup_single_issuer().setup_defer_taskrun().build(entries);
    if !einval(&ring) {
        return ring;
    }
    let ring = IoUring::builder().setup_cqsize(cq).setup_coop_taskrun().build(entries);
    if !einval(&ring) {
        return ring;
    }
    IoUring::builder().setup_cqsize(cq).build(entries)
}

/// Whether this host can run the uring backend; the reason if not.
pub fn probe() -> Result<(), String> {
    memlock_check()?;
    let ring = build_ring(8).map_err(|e| {
        let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok();
        match (e.raw_os_error(), disabled.as_deref().map(str::trim)) {
            (_, Some(v)) if v != "0" => format!("io_uring_setup: {e} (kernel.io_uring_disabled={v})"),
            (Some(nix::libc::EPERM), _) => format!("io_uring_setup: {e} (blocked by seccomp?)"),
            (Some(nix::libc::ENOSYS), _) => "io_uring_setup: ENOSYS (kernel built without io_uring)".to_string(),
            _ => format!("io_uring_setup: {e}"),
        }
    })?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| format!("io_uring probe: {e}"))?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "ACCEPT"),
        (opcode::RecvMulti::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("io_uring opcode {name} not supported by this kernel"));
        }
    }
    if !ring.params().is_feature_ext_arg() {
        return Err("io_uring lacks IORING_FEAT_EXT_ARG (kernel older than 5.11)".to_string());
    }
    // Multishot accept and provided-buffer rings both arrived in 5.19: registering a ring
    // is the test for both.
    BufRing::new(&ring, 1, 64)
        .map(drop)
        .map_err(|e| format!("io_uring provided buffer ring: {e} (kernel older than 5.19?)"))
}

/// Before Linux 5.12 rings and registered buffers are charged to RLIMIT_MEMLOCK, whose
/// usual default (64 KiB) is far below what a shard's ring and buffers need.
fn memlock_check() -> Result<(), String> {
    const NEED: u64 = 8 << 20;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version >= (5, 12) {
        return Ok(());
    }
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK).map_or(0, |l| l.0);
    if soft >= NEED {
        return Ok(());
    }
    Err(format!(
        "RLIMIT_MEMLOCK is {} KiB and kernel {}.{} charges io_uring memory to it; raise it to {} KiB \
         (ulimit -l, LimitMEMLOCK= in the systemd unit, or memlock in limits.conf)",
        soft >> 10,
        version.0,
        version.1,
        NEED >> 10
    ))
}

impl Driver for UringDriver {
    const NAME: &'static str = "uring";
    type ConnIo = ConnIo;

    fn new(listener: TcpListener, sizing: &Sizing) -> io::Result<Self> {
        let ring = build_ring(1024)?;
        // One 4 KiB buffer per 64 connections, within [64, 256] (at most 1 MiB a shard):
        // enough for a turn's burst of requests, nothing for connections that are idle.
        // The ring hands buffers out in order, so every one gets touched: a bigger ring
        // is resident memory (1024 buffers measured ~430 B more RSS per held connection
        // at 10,000). A burst beyond it ends receives with ENOBUFS, which re-arm next turn.
        let derived = (sizing.max_conns / 64).clamp(64, 256).next_power_of_two() as u16;
        let entries = sizing.recv_buffers.unwrap_or(derived);
        let bufs = BufRing::new(&ring, entries, RECV_BUF)?;
        Ok(UringDriver {
            ring,
            bufs,
            listener,
            accept_armed: false,
            accept_backoff: 0,
            completions: Vec::with_capacity(1024),
            touched: Vec::new(),
            rearm: Vec::new(),
            overflow: VecDeque::new(),
        })
    }

    fn turn(&mut self, core: &mut Core<ConnIo>) -> io::Result<()> {
        while !core.is_full()
            && let Some(stream) = self.overflow.pop_front()
        {
            let token = core.accept(stream);
            self.arm_recv(core, token.index());
        }
        if self.accept_backoff > 0 {
            self.accept_backoff -= 1;
        } else if !self.accept_armed && !core.is_full() && self.overflow.is_empty() {
            let accept = opcode::AcceptMulti::new(Fd(self.listener.as_raw_fd()))
                .flags(nix::libc::SOCK_CLOEXEC | nix::libc::SOCK_NONBLOCK)
                .build();
            self.push(accept.user_data(OP_ACCEPT));
            self.accept_armed = true;
        }
        for key in std::mem::take(&mut self.rearm) {
            self.arm_recv(core, key);
        }
        let waiting = !self.accept_armed;
        let ts = Timespec::new().sec(if waiting { 0 } else { 1 }).nsec(if waiting { 100_000_000 } else { 0 });
        match self.ring.submitter().submit_with_args(1, &SubmitArgs::new().timespec(&ts)) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ETIME | nix::libc::EINTR | nix::libc::EBUSY)) => {}
            Err(e) => return Err(e),
        }
        self.completions.clear();
        self.completions.extend(self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        for i in 0..self.completions.len() {
            let (user_data, result, flags) = self.completions[i];
            self.complete(core, user_data, result, flags);
        }
        self.bufs.publish();
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for &key in &touched {
            self.settle(core, key);
        }
        touched.clear();
        self.touched = touched;
        Ok(())
    }

    fn settle(&mut self, core: &mut Core<ConnIo>, key: usize) {
        loop {
            let Some(slot) = core.slots.get_mut(key) else { return };
            if slot.doomed {
                return self.close(core, key);
            }
            if slot.io.sending {
                return;
            }
            let token = core.token(key);
            let slot = &mut core.slots[key];
            let fd = Fd(slot.stream.as_raw_fd());
            if let Some(out) = slot.conn.out.as_mut() {
                let entry = match out.next_chunk() {
                    Some(Chunk::Bytes(b)) => {
                        let len = b.len().min(u32::MAX as usize) as u32;
                        opcode::Send::new(fd, b.as_ptr(), len).build().user_data(OP_SEND | token.0)
                    }
                    Some(Chunk::File(range)) => match sys::send_file(&slot.stream, range) {
                        Ok(n) if n > 0 => {
                            out.advance(n);
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            opcode::PollAdd::new(fd, nix::libc::POLLOUT as u32).build().user_data(OP_POLL | token.0)
                        }
                        // Nothing sent: the file shrank, and the response can no longer
                        // match its Content-Length.
                        _ => {
                            slot.doomed = true;
                            continue;
                        }
                    },
                    None => {
                        core.sent(key);
                        continue;
                    }
                };
                slot.io.sending = true;
                slot.io.inflight += 1;
                return self.push(entry);
            }
            if slot.conn.closing && !slot.lingering {
                if sys::shutdown_write(&slot.stream).is_err() {
                    slot.doomed = true;
                    continue;
                }
                // The receive goes on, discarding, until the client closes or time is up.
                core.linger(key);
                return;
            }
            slot.read_paused = false;
            if std::mem::take(&mut slot.io.recv_paused) {
                self.arm_recv(core, key);
            }
            return;
        }
    }
}

impl UringDriver {
    fn push(&mut self, entry: squeue::Entry) {
        // SAFETY: every buffer an entry points at (outbox bytes, the ring's provided buffers) lives in a slot or in this driver, and neither is freed while
        // the operation is in flight (`inflight` counts them; `close` waits for zero).
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            if let Err(e) = self.ring.submit() {
                eprintln!("io_uring submit: {e}");
                break;
            }
        }
    }

    fn arm_recv(&mut self, core: &mut Core<ConnIo>, key: usize) {
        let token = core.token(key);
        let Some(slot) = core.slots.get_mut(key) else { return };
        if slot.doomed || slot.io.recv_armed {
            return;
        }
        let recv = opcode::RecvMulti::new(Fd(slot.stream.as_raw_fd()), BUF_GROUP).build();
        slot.io.recv_armed = true;
        slot.io.inflight += 1;
        self.push(recv.user_data(OP_RECV | token.0));
    }

    /// Cancel what is in flight; the slot is freed when the last completion arrives.
    fn close(&mut self, core: &mut Core<ConnIo>, key: usize) {
        let token = core.token(key);
        let slot = &mut core.slots[key];
        if slot.io.inflight == 0 {
            core.remove(key);
            return;
        }
        if !std::mem::replace(&mut slot.io.cancelled, true) {
            for op in [OP_RECV, OP_SEND, OP_POLL] {
                self.push(opcode::AsyncCancel::new(op | token.0).build().user_data(OP_CANCEL));
            }
        }
    }

    fn complete(&mut self, core: &mut Core<ConnIo>, user_data: u64, result: i32, flags: u32) {
        let op = user_data & OP_MASK;
        if op == OP_ACCEPT {
            return self.accepted(core, result, flags);
        }
        if op == OP_CANCEL {
            return;
        }
        let Some(key) = core.live(Token(user_data & !OP_MASK)) else {
            // Cannot happen while slots outlive their operations; a buffer must still go back.
            if let Some(bid) = cqueue::buffer_select(flags) {
                self.bufs.push(bid);
            }
            return;
        };
        let more = cqueue::more(flags);
        let slot = &mut core.slots[key];
        if !(op == OP_RECV && more) {
            slot.io.inflight -= 1;
        }
        match op {
            OP_RECV => self.received(core, key, result, flags),
            OP_SEND => self.sent(core, key, result),
            OP_POLL => self.sent(core, key, result.min(0)),
            _ => {}
        }
        let slot = &core.slots[key];
        if slot.doomed && slot.io.inflight == 0 {
            core.remove(key);
            return;
        }
        self.touched.push(key);
    }

    fn accepted(&mut self, core: &mut Core<ConnIo>, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.accept_armed = false;
        }
        if result == -nix::libc::ECANCELED {
            return;
        }
        if result < 0 {
            if result != -nix::libc::EMFILE && result != -nix::libc::ENFILE {
                eprintln!("accept: {}", io::Error::from_raw_os_error(-result));
            }
            // Let closes free descriptors before trying again.
            self.accept_backoff = 1;
            return;
        }
        // SAFETY: the accept completion hands over a new descriptor that nothing else owns.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        if stream.set_nodelay(true).is_err() {
            return;
        }
        if core.is_full() {
            // Accepted before the cancel below took effect: it waits here for a slot.
            self.overflow.push_back(stream);
            return;
        }
        let token = core.accept(stream);
        self.arm_recv(core, token.index());
        if core.is_full() && self.accept_armed {
            // Leave further connections in the backlog until a slot frees (re-armed by
            // `turn`), rather than accepting them only to close them.
            self.push(opcode::AsyncCancel::new(OP_ACCEPT).build().user_data(OP_CANCEL));
        }
    }

    fn received(&mut self, core: &mut Core<ConnIo>, key: usize, result: i32, flags: u32) {
        let more = cqueue::more(flags);
        let slot = &mut core.slots[key];
        if !more {
            slot.io.recv_armed = false;
        }
        if result > 0 {
            let bid = cqueue::buffer_select(flags).expect("a receive into a provided buffer names it");
            let before = core.progress(key);
            core.input(key, self.bufs.get(bid, result as usize));
            self.bufs.push(bid);
            core.read_done(key, before);
            let slot = &mut core.slots[key];
            if slot.conn.pending.len() > PENDING_CAP && slot.io.recv_armed && !slot.io.recv_paused {
                slot.io.recv_paused = true;
                let token = core.token(key);
                self.push(opcode::AsyncCancel::new(OP_RECV | token.0).build().user_data(OP_CANCEL));
            } else if !more && !slot.doomed && !slot.io.recv_paused {
                self.rearm.push(key);
            }
        } else if result == 0 {
            core.peer_closed(key);
        } else if result == -nix::libc::ENOBUFS {
            // Every provided buffer was in use: they are back by the next turn.
            self.rearm.push(key);
        } else if result != -nix::libc::ECANCELED {
            core.fail(key);
        }
    }

    /// A send completed (or a poll said the socket has room: `result` 0).
    fn sent(&mut self, core: &mut Core<ConnIo>, key: usize, result: i32) {
        let slot = &mut core.slots[key];
        slot.io.sending = false;
        if result < 0 {
            return core.fail(key);
        }
        if let Some(out) = slot.conn.out.as_mut() {
            out.advance(result as usize);
        }
    }
}

/// A ring of provided buffers (io_uring_register_buf_ring): the kernel picks one per
/// receive; we hand it back as soon as its bytes are consumed.
struct BufRing {
    ring: *mut BufRingEntry,
    layout: Layout,
    mem: Box<[u8]>,
    entries: u16,
    buf_size: usize,
    tail: u16,
}

impl BufRing {
    fn new(uring: &IoUring, entries: u16, buf_size: usize) -> io::Result<BufRing> {
        let layout = Layout::from_size_align(usize::from(entries) * size_of::<BufRingEntry>(), 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (entries >= 1) and a valid alignment.
        let ring = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if ring.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut bufs = BufRing {
            ring,
            layout,
            mem: vec![0; usize::from(entries) * buf_size].into_boxed_slice(),
            entries,
            buf_size,
            tail: 0,
        };
        // SAFETY: the ring memory is page-aligned, zeroed, sized for `entries`, and lives
        // until this BufRing is dropped, which happens after the IoUring (field order).
        unsafe { uring.submitter().register_buf_ring_with_flags(ring as u64, entries, BUF_GROUP, 0)? };
        for bid in 0..entries {
            bufs.push(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    fn get(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.buf_size;
        &self.mem[start..start + len.min(self.buf_size)]
    }

    /// Give buffer `bid` back (visible to the kernel at the next `publish`).
    fn push(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `index` < entries, inside the ring allocation; the kernel reads only
        // entries between its head and the published tail, and this one is past it.
        let entry = unsafe { &mut *self.ring.add(index) };
        entry.set_addr(self.mem[usize::from(bid) * self.buf_size..].as_ptr() as u64);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field sits in the first entry of the ring we allocated; the
        // kernel reads it concurrently, hence the atomic store with release ordering, so
        // it sees the entries written before it.
        unsafe { (*BufRingEntry::tail(self.ring).cast::<AtomicU16>()).store(self.tail, Ordering::Release) };
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the ring that used it is gone.
        unsafe { dealloc(self.ring.cast(), self.layout) };
    }
}
