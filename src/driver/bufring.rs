//! The provided-buffer ring that multishot receives pick their buffers from: registered
//! with the kernel, grown on demand, consumed incrementally where the kernel can, and
//! freed only once the kernel holds no pointer into it (`Uring`'s drop).

use super::ring::BUF_GROUP;
use io_uring::IoUring;
use io_uring::types::BufRingEntry;
use nix::libc;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// A ring of provided buffers (io_uring_register_buf_ring): the kernel picks one per
/// receive; we hand it back as soon as its bytes are consumed. Its memory is freed only by
/// `free`, never by a drop, so forgetting to free leaks rather than hands the kernel
/// freed memory.
///
/// The ring has room for `entries` buffers but starts with `FIRST_BUFFERS` of them and
/// doubles (`grow`) only when a receive found none: the kernel takes buffers in ring
/// order, so every buffer ever provided gets touched, and the buffers touched are what the
/// ring costs in resident memory. Grown on demand, that is the most a turn ever needed
/// at once, not the ring's size (256 × 4 KiB a shard, measured as 200 B per connection
/// at 10,000 idle connections on two shards).
///
/// Where the kernel has it (6.12+), the ring is registered for incremental consumption
/// (IOU_PBUF_RING_INC): a receive takes only the bytes it needs from the head buffer, so
/// one 4 KiB buffer holds the requests of dozens of connections, and a burst of small
/// requests needs a few buffers rather than one each. A completion then names its buffer
/// and says whether the kernel goes on filling it (IORING_CQE_F_BUF_MORE); the buffer's
/// bytes for a completion start where its previous completion's ended (`offsets`), and it
/// goes back only once the kernel is done with it (`release`). Without the flag no
/// completion says more, every offset stays 0, and the same code serves.
pub struct BufRing {
    ring: *mut BufRingEntry,
    layout: Layout,
    mem: *mut u8,
    mem_len: usize,
    entries: u16,
    buf_size: usize,
    tail: u16,
    /// Buffers provided so far (ids `0..provided`), at most `entries`.
    provided: u16,
    /// Per buffer, the bytes the kernel has filled and reported so far.
    offsets: Box<[u32]>,
    /// Registered for incremental consumption.
    incremental: bool,
}

/// IOU_PBUF_RING_INC (io-uring does not export the flags of a buffer ring registration).
const PBUF_RING_INC: u16 = 2;

/// Buffers a ring starts with.
pub const FIRST_BUFFERS: u16 = 16;

impl BufRing {
    pub(super) fn new(uring: &IoUring, entries: u16, buf_size: usize) -> io::Result<BufRing> {
        let layout = Layout::from_size_align(usize::from(entries) * size_of::<BufRingEntry>(), 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (entries >= 1) and a valid alignment.
        let ring = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if ring.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mem_len = usize::from(entries) * buf_size;
        let mem = Box::into_raw(vec![0u8; mem_len].into_boxed_slice()).cast::<u8>();
        let offsets = vec![0; usize::from(entries)].into_boxed_slice();
        let mut bufs =
            BufRing { ring, layout, mem, mem_len, entries, buf_size, tail: 0, provided: 0, offsets, incremental: true };
        let register = |flags| {
            // SAFETY: the ring memory is page-aligned, zeroed and sized for `entries`; it
            // and the buffers stay allocated until `free`, which runs only after
            // unregistering.
            unsafe { uring.submitter().register_buf_ring_with_flags(ring as u64, entries, BUF_GROUP, flags) }
        };
        // Kernels before 6.12 refuse the flag with EINVAL: then one buffer a receive.
        let registered = register(PBUF_RING_INC).or_else(|e| {
            bufs.incremental = false;
            if e.raw_os_error() == Some(libc::EINVAL) { register(0) } else { Err(e) }
        });
        if let Err(e) = registered {
            // SAFETY: never registered, so the kernel never saw either allocation.
            unsafe { bufs.free() };
            return Err(e);
        }
        bufs.grow();
        bufs.publish();
        Ok(bufs)
    }

    /// Provide more buffers (visible to the kernel at the next `publish`): as many again
    /// as there are, `FIRST_BUFFERS` the first time, within `entries`. False when the ring
    /// already has them all.
    pub fn grow(&mut self) -> bool {
        let more = self.provided.max(FIRST_BUFFERS).min(self.entries - self.provided);
        for bid in self.provided..self.provided + more {
            self.push(bid);
        }
        self.provided += more;
        more > 0
    }

    /// Buffers provided so far.
    #[cfg(test)]
    pub fn provided(&self) -> u16 {
        self.provided
    }

    /// The `len` bytes a completion naming buffer `bid` just handed us: from where the
    /// buffer's last completion ended. `release` must follow before the next completion.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        let offset = self.offsets[usize::from(bid)] as usize;
        let start = usize::from(bid) * self.buf_size + offset;
        let len = len.min(self.buf_size - offset);
        assert!(start + len <= self.mem_len, "buffer id {bid} out of range");
        // SAFETY: inside the allocation (checked above); the kernel wrote these bytes
        // before posting the completion that named them, and writes a buffer only past
        // what it reported, or after the buffer is pushed back.
        unsafe { std::slice::from_raw_parts(self.mem.add(start), len) }
    }

    /// A completion's `len` bytes of buffer `bid` are consumed; `more`: the kernel goes
    /// on filling the buffer (IORING_CQE_F_BUF_MORE), else it is given back.
    pub fn release(&mut self, bid: u16, len: usize, more: bool) {
        let offset = &mut self.offsets[usize::from(bid)];
        if more {
            *offset += len as u32;
        } else {
            *offset = 0;
            self.push(bid);
        }
    }

    /// Registered for incremental consumption (the kernel has IOU_PBUF_RING_INC).
    #[cfg(test)]
    pub fn incremental(&self) -> bool {
        self.incremental
    }

    /// Give buffer `bid` back (visible to the kernel at the next `publish`).
    pub fn push(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `index` < entries, inside the ring allocation; the kernel reads only
        // entries between its head and the published tail, and this one is past it.
        let entry = unsafe { &mut *self.ring.add(index) };
        // SAFETY: `bid` < entries (the kernel only names buffers we gave it), so the
        // offset stays inside the buffer allocation.
        entry.set_addr(unsafe { self.mem.add(usize::from(bid) * self.buf_size) } as u64);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    pub fn publish(&self) {
        // SAFETY: the tail field sits in the first entry of the ring we allocated; the
        // kernel reads it concurrently, hence the atomic store with release ordering, so
        // it sees the entries written before it.
        unsafe { (*BufRingEntry::tail(self.ring).cast::<AtomicU16>()).store(self.tail, Ordering::Release) };
    }

    /// Free the ring and the buffers.
    ///
    /// # Safety
    /// The kernel must hold no pointer into them: never registered, or unregistered with
    /// no operation in flight. Called at most once.
    pub(super) unsafe fn free(&mut self) {
        // SAFETY: allocated in `new` with this layout, and (by the caller's promise) no
        // longer used by the kernel.
        unsafe { dealloc(self.ring.cast(), self.layout) };
        // SAFETY: `mem` came from `Box::into_raw` of a slice of `mem_len` bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.mem, self.mem_len)) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::ring::{BUF_GROUP, Completion, Uring};
    use io_uring::opcode;
    use std::time::{Duration, Instant};

    /// The ring starts with `FIRST_BUFFERS`; a receive that finds none ends with ENOBUFS,
    /// and after `grow` the buffers past the first ones are provided and receive again.
    #[test]
    fn a_ring_that_ran_dry_grows() {
        use io_uring::types::Fd;
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (sock, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut uring = Uring::new(64, 64, 64).unwrap();
        assert_eq!(uring.bufs.provided(), FIRST_BUFFERS);
        // One more buffer's worth than provided, each buffer taking 64 bytes.
        peer.write_all(&vec![7u8; 64 * (usize::from(FIRST_BUFFERS) + 1)]).unwrap();
        let recv = || opcode::RecvMulti::new(Fd(sock.as_raw_fd()), BUF_GROUP).build().user_data(1);
        let reap_until = |uring: &mut Uring, done: &dyn Fn(&[Completion]) -> bool| {
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !done(&seen) && Instant::now() < deadline {
                uring.ring.submit_and_wait(Duration::from_millis(10)).unwrap();
                uring.ring.reap(&mut seen);
            }
            seen
        };
        // SAFETY: the receive writes only into the ring's provided buffers; the socket
        // outlives the ring's quiesce at the end.
        unsafe { uring.ring.push(recv()) };
        let seen = reap_until(&mut uring, &|seen| seen.iter().any(|c| !io_uring::cqueue::more(c.2)));
        let bids: Vec<u16> = seen.iter().filter_map(|c| io_uring::cqueue::buffer_select(c.2)).collect();
        assert_eq!(bids, (0..FIRST_BUFFERS).collect::<Vec<_>>(), "{seen:?}");
        assert_eq!(seen.last().map(|c| c.1), Some(-libc::ENOBUFS), "{seen:?}");
        assert!(uring.bufs.grow());
        assert_eq!(uring.bufs.provided(), 2 * FIRST_BUFFERS);
        uring.bufs.publish();
        // SAFETY: the receive writes only into the ring's provided buffers; the socket
        // outlives the ring's quiesce at the end.
        unsafe { uring.ring.push(recv()) };
        let seen = reap_until(&mut uring, &|seen| !seen.is_empty());
        assert_eq!(seen.first().map(|c| (c.1, io_uring::cqueue::buffer_select(c.2))), Some((64, Some(FIRST_BUFFERS))));
        while uring.bufs.grow() {}
        assert_eq!(uring.bufs.provided(), 64);
        assert!(uring.ring.quiesce());
    }

    /// Small receives share a buffer where the kernel consumes incrementally: each
    /// completion's bytes are its own (read at the buffer's running offset), and the
    /// buffer goes back only when the kernel says it is done with it.
    #[test]
    fn small_receives_share_a_buffer_and_keep_their_bytes() {
        use io_uring::types::Fd;
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (sock, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut uring = Uring::new(64, 4, 4096).unwrap();
        // SAFETY: the receive writes only into the ring's provided buffers; the socket
        // outlives the ring's quiesce at the end.
        unsafe { uring.ring.push(opcode::RecvMulti::new(Fd(sock.as_raw_fd()), BUF_GROUP).build().user_data(1)) };
        let mut got = Vec::new();
        let mut bids = Vec::new();
        for i in 0..5u8 {
            let message = vec![b'a' + i; 100 + usize::from(i)];
            peer.write_all(&message).unwrap();
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while seen.is_empty() && Instant::now() < deadline {
                uring.ring.submit_and_wait(Duration::from_millis(10)).unwrap();
                uring.ring.reap(&mut seen);
            }
            let (_, n, flags) = *seen.first().expect("a completion for each message");
            let bid = io_uring::cqueue::buffer_select(flags).expect("a buffer");
            let bytes = uring.bufs.get(bid, n as usize).to_vec();
            assert_eq!(bytes, message, "message {i}");
            assert_eq!(io_uring::cqueue::buffer_more(flags), uring.bufs.incremental(), "message {i}");
            uring.bufs.release(bid, n as usize, io_uring::cqueue::buffer_more(flags));
            uring.bufs.publish();
            got.push(bytes);
            bids.push(bid);
        }
        if uring.bufs.incremental() {
            assert_eq!(bids, [0; 5], "incremental: all in the first buffer");
        } else {
            assert_eq!(bids, [0, 1, 2, 3, 0], "one buffer a receive, in ring order");
        }
        assert!(uring.ring.quiesce());
    }
}
