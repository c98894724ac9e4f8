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
