//! Whether this host can run the uring backend at all, asked of the kernel rather than
//! guessed from its version: io_uring set up, the opcodes the driver submits, the
//! extended wait argument, a provided-buffer ring, and (on old kernels) room under
//! RLIMIT_MEMLOCK. The answer says why not, for the start-up message.

use super::ring::{Uring, build_ring};
use io_uring::{Probe, opcode};
use nix::libc;

/// Whether this host can run the uring backend; the reason if not.
pub fn probe() -> Result<(), String> {
    memlock_check()?;
    let ring = build_ring(8).map_err(|e| {
        let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok();
        match (e.raw_os_error(), disabled.as_deref().map(str::trim)) {
            (_, Some(v)) if v != "0" => format!("io_uring_setup: {e} (kernel.io_uring_disabled={v})"),
            (Some(libc::EPERM), _) => format!("io_uring_setup: {e} (blocked by seccomp?)"),
            (Some(libc::ENOSYS), _) => "io_uring_setup: ENOSYS (kernel built without io_uring)".to_string(),
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
        (opcode::AsyncCancel2::CODE, "ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("io_uring opcode {name} not supported by this kernel"));
        }
    }
    if !ring.params().is_feature_ext_arg() {
        return Err("io_uring lacks IORING_FEAT_EXT_ARG (kernel older than 5.11)".to_string());
    }
    drop(ring);
    // Multishot accept, provided-buffer rings and cancelling by fd or "any" all arrived in
    // 5.19: registering a buffer ring is the test for them all.
    Uring::new(8, 1, 64).map(drop).map_err(|e| format!("io_uring provided buffer ring: {e} (kernel older than 5.19?)"))
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

/// A multishot receive of the buffer group `group` on `fd` that ends (its last completion
/// without IORING_CQE_F_MORE) once `limit` bytes came in (the receive that reaches it may
/// fill its buffer past it), so that a burst of input cannot
/// run past what the connection may hold before a cancel lands: the kernel otherwise goes
/// on receiving into every free buffer, up to 32 at a time. The limit is the SQE's
/// `optlen` (Linux 6.17+); `limit` 0 is no limit. Use it only where
/// `receive_limit_works` said yes: older kernels read those bytes as `file_index` and
/// refuse the receive with EINVAL.
pub fn limited_receive(fd: io_uring::types::Fd, group: u16, limit: u32) -> io_uring::squeue::Entry {
    let entry = opcode::RecvMulti::new(fd, group).build();
    if limit == 0 {
        return entry;
    }
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte `io_uring_sqe`
    // and plain data (no pointer it owns, no Drop); the transmutes check the size.
    let mut sqe: [u8; 64] = unsafe { std::mem::transmute(entry) };
    // `optlen` is the u32 at byte 44 of `struct io_uring_sqe` (the union with
    // `splice_fd_in` and `file_index`).
    sqe[44..48].copy_from_slice(&limit.to_ne_bytes());
    // SAFETY: as above; any bytes are a valid entry, and the kernel checks them.
    unsafe { std::mem::transmute::<[u8; 64], io_uring::squeue::Entry>(sqe) }
}

/// Whether the kernel takes a limited multishot receive (`limited_receive`): one is posted
/// on a quiet socket pair; an old kernel refuses it at once (EINVAL), a new one waits.
pub fn receive_limit_works() -> bool {
    use std::os::fd::AsRawFd;
    let Ok((quiet, _peer)) = std::os::unix::net::UnixStream::pair() else { return false };
    let Ok(mut uring) = Uring::new(8, 1, 64) else { return false };
    let fd = io_uring::types::Fd(quiet.as_raw_fd());
    // SAFETY: the receive writes only into the ring's provided buffers, which live until
    // the ring is quiesced (below, or by its drop); the socket outlives both.
    unsafe { uring.ring.push(limited_receive(fd, super::ring::BUF_GROUP, 64).user_data(1)) };
    let mut seen = Vec::new();
    if uring.ring.submit_and_wait(std::time::Duration::from_millis(20)).is_err() {
        return false;
    }
    uring.ring.reap(&mut seen);
    let refused = seen.iter().any(|c| c.1 == -libc::EINVAL);
    uring.ring.quiesce() && !refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    /// Where the kernel has them, a limited receive ends once it took the limit (within a
    /// buffer), though more waits in the socket;
    /// where it does not, the probe says so (and the driver receives unlimited).
    #[test]
    fn a_limited_receive_ends_at_its_limit() {
        if !receive_limit_works() {
            eprintln!("this kernel has no limited multishot receive (before 6.17): nothing to check");
            return;
        }
        let (sock, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut uring = Uring::new(8, 8, 64).unwrap();
        peer.write_all(&[7u8; 300]).unwrap();
        let recv = limited_receive(io_uring::types::Fd(sock.as_raw_fd()), super::super::ring::BUF_GROUP, 100);
        // SAFETY: the receive writes only into the ring's provided buffers; the socket
        // outlives the ring's quiesce at the end.
        unsafe { uring.ring.push(recv.user_data(1)) };
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !seen.iter().any(|c: &(u64, i32, u32)| !io_uring::cqueue::more(c.2)) && Instant::now() < deadline {
            uring.ring.submit_and_wait(Duration::from_millis(10)).unwrap();
            uring.ring.reap(&mut seen);
        }
        // The receive that reaches the limit may fill its buffer past it.
        let taken: i32 = seen.iter().map(|c| c.1.max(0)).sum();
        assert!((100..100 + 64).contains(&taken), "{taken} bytes taken: {seen:?}");
        assert!(!io_uring::cqueue::more(seen.last().unwrap().2), "the receive ended at its limit");
        assert!(uring.ring.quiesce());
    }
}
