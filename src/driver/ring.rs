//! The io_uring ring, owned soundly: every submission reaches the kernel (none is dropped
//! when the submission queue is full), operations are counted until their last completion
//! is reaped, and the provided receive buffers (`bufring`) are freed only after every
//! operation was cancelled and reaped and the buffers unregistered.

use super::bufring::BufRing;
pub use super::probe::probe;
use io_uring::types::{CancelBuilder, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use nix::libc;
use std::io;
use std::time::{Duration, Instant};

/// user_data of cancellations, whose completions carry nothing a driver needs; the top
/// byte of user_data is the driver's, for tagging operations.
pub const OP_CANCEL: u64 = 5 << 56;
/// The provided-buffer group every receive picks from.
pub const BUF_GROUP: u16 = 0;
/// How long a teardown waits for cancelled operations to complete.
const QUIESCE: Duration = Duration::from_secs(2);

/// user_data, result, flags.
pub type Completion = (u64, i32, u32);

/// The ring: one shard, one issuer; defer task work to our own waits when the kernel can.
pub(super) fn build_ring(entries: u32) -> io::Result<IoUring> {
    let cq = entries * 8;
    let einval = |r: &io::Result<IoUring>| matches!(r, Err(e) if e.raw_os_error() == Some(libc::EINVAL));
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

/// The submission side: every entry pushed reaches the kernel (none is dropped when the
/// queue is full), and operations are counted until their last completion is reaped.
pub struct Ring {
    uring: IoUring,
    ops: usize,
    /// Completions reaped while the submission queue was full, for the next dispatch.
    backlog: Vec<Completion>,
    /// Submitting failed for good; the shard ends at its next wait.
    failed: Option<io::Error>,
}

impl Ring {
    /// Completions are waiting from a full submission queue: the next wait must not block.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Why submitting failed for good, once.
    pub fn take_failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// Hand `entry` to the kernel (now, or at the next submit).
    ///
    /// # Safety
    /// Every buffer and descriptor the entry names must stay valid (allocated, put, and not
    /// written by us where the kernel reads, nor read where it writes) until the entry's
    /// last completion is reaped, or the ring is quiesced. Each call site says why.
    pub unsafe fn push(&mut self, entry: squeue::Entry) {
        self.ops += 1;
        loop {
            // SAFETY: our caller's promise, for as long as the kernel may use the entry.
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                return;
            }
            // Full: hand the queue to the kernel and try again. While the completion queue
            // is full the kernel refuses (EBUSY) until completions are reaped.
            match self.uring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => {
                    let mut backlog = std::mem::take(&mut self.backlog);
                    self.reap_queue(&mut backlog);
                    self.backlog = backlog;
                }
                Err(e) => {
                    self.ops -= 1;
                    self.failed = Some(e);
                    return;
                }
            }
        }
    }

    /// Hand what is queued to the kernel now, without waiting for anything.
    pub fn submit(&mut self) -> io::Result<()> {
        match self.uring.submit() {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submit, then wait for a completion or `timeout` (zero: only collect what is done).
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        let ts = Timespec::from(timeout);
        match self.uring.submitter().submit_with_args(1, &SubmitArgs::new().timespec(&ts)) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every completion not yet handled, oldest first.
    pub fn reap(&mut self, into: &mut Vec<Completion>) {
        into.append(&mut self.backlog);
        self.reap_queue(into);
    }

    fn reap_queue(&mut self, into: &mut Vec<Completion>) {
        for cqe in self.uring.completion() {
            if !cqueue::more(cqe.flags()) {
                self.ops -= 1;
            }
            into.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
    }

    /// Cancel every operation in flight and reap until none is left (or `QUIESCE`
    /// passed). True when the kernel holds nothing of ours any more.
    pub fn quiesce(&mut self) -> bool {
        // SAFETY: a cancellation points at no memory.
        unsafe { self.push(opcode::AsyncCancel2::new(CancelBuilder::any()).build().user_data(OP_CANCEL)) };
        let deadline = Instant::now() + QUIESCE;
        let mut sink = Vec::new();
        while self.ops > 0 && self.failed.is_none() && Instant::now() < deadline {
            if self.submit_and_wait(Duration::from_millis(10)).is_err() {
                break;
            }
            sink.clear();
            self.reap(&mut sink);
        }
        self.ops == 0
    }
}

/// The ring and the receive buffers the kernel writes into. Dropped, it cancels every
/// operation and reaps the completions, unregisters the buffers, and only then frees
/// them; if the kernel would not let go, they are leaked. Sound whatever the order of
/// fields or of drops around it.
pub struct Uring {
    pub ring: Ring,
    pub bufs: BufRing,
}

impl Uring {
    pub fn new(entries: u32, buffers: u16, buf_size: usize) -> io::Result<Uring> {
        let uring = build_ring(entries)?;
        let bufs = BufRing::new(&uring, buffers, buf_size)?;
        Ok(Uring { ring: Ring { uring, ops: 0, backlog: Vec::new(), failed: None }, bufs })
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        if self.ring.quiesce() && self.ring.uring.submitter().unregister_buf_ring(BUF_GROUP).is_ok() {
            // SAFETY: nothing is in flight and the buffer ring is unregistered: the kernel
            // holds no pointer into the ring or the buffers any more.
            unsafe { self.bufs.free() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far more entries than the submission queue (4) and the completion queue (32) hold:
    /// every one is submitted and completes exactly once.
    #[test]
    fn a_full_queue_loses_no_submission() {
        let mut uring = Uring::new(4, 1, 64).unwrap();
        for i in 0..500 {
            // SAFETY: a no-op points at nothing.
            unsafe { uring.ring.push(opcode::Nop::new().build().user_data(i)) };
        }
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while uring.ring.ops > 0 && Instant::now() < deadline {
            uring.ring.submit_and_wait(Duration::from_millis(10)).unwrap();
            uring.ring.reap(&mut seen);
        }
        let mut ids: Vec<u64> = seen.iter().map(|c| c.0).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..500).collect::<Vec<_>>());
        assert_eq!(uring.ring.ops, 0);
    }

    /// Operations that would never complete by themselves (a receive and a poll on a
    /// socket nobody writes to) are cancelled and reaped, so the buffers may go.
    #[test]
    fn quiesce_cancels_and_reaps_what_is_in_flight() {
        use io_uring::types::Fd;
        use std::os::fd::AsRawFd;
        let (quiet, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut uring = Uring::new(8, 4, 64).unwrap();
        let fd = Fd(quiet.as_raw_fd());
        // SAFETY: the receive writes only into the ring's provided buffers and the poll
        // points at nothing; the socket outlives the ring's quiesce below.
        unsafe { uring.ring.push(opcode::RecvMulti::new(fd, BUF_GROUP).build().user_data(1)) };
        // SAFETY: as above.
        unsafe { uring.ring.push(opcode::PollAdd::new(fd, libc::POLLIN as u32).build().user_data(2)) };
        uring.ring.submit_and_wait(Duration::from_millis(50)).unwrap();
        let mut seen = Vec::new();
        uring.ring.reap(&mut seen);
        assert!(seen.is_empty() && uring.ring.ops == 2, "nothing should have completed: {seen:?}");
        assert!(uring.ring.quiesce(), "{} operations still in flight", uring.ring.ops);
    }
}
