//! The shared counters' memory: a memfd of one `ShardStats` block per shard, made by the
//! master and mapped by it and by every shard (which inherits it across exec), so the
//! status endpoint reads what the shards count without asking them.

use crate::stats::ShardStats;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, OwnedFd};

/// A memfd holding `blocks` zeroed `ShardStats`: the counters the master shares with its
/// shards, which map it (`map_stats`) and inherit it across exec.
pub fn stats_memfd(blocks: usize) -> io::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(c"c10k-stats", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    nix::unistd::ftruncate(&fd, (blocks.max(1) * size_of::<ShardStats>()) as i64)?;
    Ok(fd)
}

/// Map the `blocks` counters of the stats memfd `fd` for the rest of the process's life.
pub fn map_stats(fd: impl AsFd, blocks: usize) -> io::Result<&'static [ShardStats]> {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap};
    let len = std::num::NonZeroUsize::new(blocks.max(1) * size_of::<ShardStats>()).expect("non-zero");
    if (nix::sys::stat::fstat(&fd)?.st_size as usize) < len.get() {
        return Err(io::Error::new(ErrorKind::InvalidInput, "the stats memfd is smaller than its blocks"));
    }
    // SAFETY: a shared mapping of a file at least `len` bytes long (checked above), never
    // unmapped, so 'static holds; page-aligned, so each 64-byte-aligned block is aligned;
    // all-zero bytes (ftruncate's fill) are valid `AtomicU64`s, and every process reaches
    // this memory only through those atomics.
    let ptr = unsafe { mmap(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, fd, 0)? };
    // SAFETY: as above: `blocks` initialised, aligned `ShardStats` for the process's life.
    Ok(unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast::<ShardStats>(), blocks.max(1)) })
}
