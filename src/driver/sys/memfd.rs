//! The shared counters' memory: a memfd of one `ShardStats` block per shard, made by the
//! master and mapped by it and by every shard (which inherits it across exec), so the
//! status endpoint reads what the shards count without asking them. And sealed memfds:
//! bytes the master hands one worker (the TLS ticket keys), which neither can change.

use crate::stats::ShardStats;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;

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

/// The most a sealed memfd read back may hold (the ticket keys are a few dozen bytes).
const SEALED_MAX: usize = 64 << 10;
/// Nothing may change a sealed memfd's contents or size, nor its seals.
const SEALS: SealFlag =
    SealFlag::F_SEAL_WRITE.union(SealFlag::F_SEAL_SHRINK).union(SealFlag::F_SEAL_GROW).union(SealFlag::F_SEAL_SEAL);

/// A memfd holding `bytes`, sealed so that no process holding it can change them: how the
/// master hands a worker a secret (the TLS ticket keys) in memory only the two share.
pub fn sealed_memfd(name: &std::ffi::CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    use nix::sys::memfd::MFdFlags;
    let fd = nix::sys::memfd::memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let file = std::fs::File::from(fd);
    // At an offset, not at the file position, which the worker's inherited copy shares.
    file.write_all_at(bytes, 0)?;
    fcntl(&file, FcntlArg::F_ADD_SEALS(SEALS))?;
    Ok(OwnedFd::from(file))
}

/// What a `sealed_memfd` holds; refused unless it is sealed as `sealed_memfd` seals it.
pub fn read_sealed(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let seals = SealFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GET_SEALS)?);
    if !seals.contains(SEALS) {
        return Err(io::Error::new(ErrorKind::InvalidInput, "the memfd is not sealed against writes"));
    }
    let len = nix::sys::stat::fstat(&fd)?.st_size as usize;
    if len > SEALED_MAX {
        return Err(io::Error::new(ErrorKind::InvalidInput, format!("the sealed memfd holds {len} bytes")));
    }
    let mut bytes = vec![0; len];
    std::fs::File::from(fd).read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_memfd_gives_back_its_bytes_and_nothing_can_change_them() {
        let fd = sealed_memfd(c"test", b"secret keys").unwrap();
        let file = std::fs::File::from(fd.try_clone().unwrap());
        assert!(file.write_at(b"x", 0).is_err(), "written after sealing");
        assert!(file.set_len(100).is_err(), "grown after sealing");
        assert_eq!(read_sealed(fd).unwrap(), b"secret keys");
        // The stats memfd is not sealed: not taken for the keys.
        let refused = read_sealed(stats_memfd(1).unwrap()).expect_err("read an unsealed memfd");
        assert!(refused.to_string().contains("not sealed"), "{refused}");
    }
}
