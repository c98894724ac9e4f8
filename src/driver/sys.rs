//! Socket, file and process calls, each a thin wrapper that returns `io::Result`.

use crate::conn::outbox::FileRange;
use crate::stats::ShardStats;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, sockopt};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking SO_REUSEPORT listener bound to `addr`. Every shard has its own, and the
/// kernel spreads new connections across them.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let fd = stream_socket(addr)?;
    socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    // -1: as deep as net.core.somaxconn allows.
    socket::listen(&fd, Backlog::MAXALLOWABLE)?;
    Ok(TcpListener::from(fd))
}

/// Fail with EADDRINUSE if something already listens on `addr`: a SO_REUSEPORT bind
/// alone would quietly join another server's group of the same user.
pub fn check_port_free(addr: SocketAddr) -> io::Result<()> {
    let fd = stream_socket(addr)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(())
}

fn stream_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)?;
    // Rebinding over TIME_WAIT leftovers of a previous run is fine; over a listener is not.
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    Ok(fd)
}

/// Accept one connection, non-blocking and close-on-exec in the same call.
pub fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    let fd = socket::accept4(listener, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC)?;
    let stream = TcpStream::from(fd);
    prepare_accepted(&stream)?;
    Ok(stream)
}

/// Unsent bytes a connection's socket holds at most before it refuses more (and, past
/// half of it drained, says it has room again): TCP_NOTSENT_LOWAT.
///
/// Without it a sendfile of a large file hands the kernel up to the whole send buffer
/// (autotuned to 4 MiB), of which only what the window allows is transmitted in our call;
/// the rest is transmitted later, from the ACK processing in the *client's* receive calls.
/// On one host that moves the TCP work of our responses onto the client's CPU: with 10
/// connections fetching 1 MiB, wrk's one thread at 95 % and the shards mostly idle, 1,880
/// (epoll) and 2,400 (uring) responses/s against lighttpd's 3,900. With 32 KiB left
/// unsent at most, the shard transmits in its own sendfile calls: 3,300 and 3,360. 16 KiB
/// woke the shard twice as often for no more throughput; 64 KiB and up gave back part of
/// the gain (loadtest `1MiB c10` and `1MiB c100`, both backends, two rounds).
/// Small responses are not touched: a write into an empty socket always goes in whole.
pub const SEND_LOWAT: u32 = 32 << 10;

/// Socket options of every accepted connection, whichever backend accepted it.
pub fn prepare_accepted(stream: &TcpStream) -> io::Result<()> {
    // Responses are coalesced before they are written; Nagle would only delay the last one.
    stream.set_nodelay(true)?;
    set_notsent_lowat(stream, SEND_LOWAT)
}

/// TCP_NOTSENT_LOWAT, which nix does not name.
fn set_notsent_lowat(stream: &TcpStream, bytes: u32) -> io::Result<()> {
    let value = bytes as nix::libc::c_int;
    // SAFETY: `value` outlives the call, and the length passed is its size.
    let rc = unsafe {
        nix::libc::setsockopt(
            stream.as_raw_fd(),
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_NOTSENT_LOWAT,
            (&raw const value).cast(),
            size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

pub fn read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    (&*stream).read(buf)
}

pub fn write(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    (&*stream).write(bytes)
}

/// sendfile(2) from a file range of an outbox: page cache to socket, no copy through us.
/// It asks for `send_file_len(range)` bytes.
pub fn send_file(stream: &impl AsFd, range: &FileRange) -> io::Result<usize> {
    let mut offset = range.offset as i64;
    Ok(nix::sys::sendfile::sendfile64(stream.as_fd(), range.file.as_fd(), Some(&mut offset), send_file_len(range))?)
}

/// How much of `range` one `send_file` asks for.
pub fn send_file_len(range: &FileRange) -> usize {
    range.len.min(1 << 30) as usize
}

/// Have the coming close reset the connection (SO_LINGER with a zero timeout): unsent
/// output is dropped at once instead of being held by the kernel for a client that
/// stopped reading.
pub fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    socket::setsockopt(stream, sockopt::Linger, &nix::libc::linger { l_onoff: 1, l_linger: 0 })?;
    Ok(())
}

/// Send FIN after the last response, so the peer sees the end while we drain its input.
pub fn shutdown_write(stream: &impl AsFd) -> io::Result<()> {
    Ok(socket::shutdown(stream.as_fd().as_raw_fd(), socket::Shutdown::Write)?)
}

/// Whether this process may hold this descriptor across exec.
pub fn set_inheritable(fd: &impl AsFd, inheritable: bool) -> io::Result<()> {
    let flags = if inheritable { FdFlag::empty() } else { FdFlag::FD_CLOEXEC };
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flags))?;
    Ok(())
}

/// The listener a worker inherited from the master as descriptor `fd`.
pub fn inherited_listener(fd: RawFd) -> io::Result<TcpListener> {
    // Check before owning it: it must be an open socket, or the master passed nonsense.
    socket::getsockname::<SockaddrStorage>(fd).map_err(|e| match e {
        Errno::EBADF | Errno::ENOTSOCK => io::Error::new(ErrorKind::InvalidInput, format!("fd {fd} is not a socket")),
        e => e.into(),
    })?;
    // SAFETY: the master put this listener at `fd` for this process alone, and nothing
    // else in this process has claimed it (checked open above).
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    set_inheritable(&listener, false)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The pipe a worker inherited from the master as descriptor `fd`, to say it serves.
pub fn inherited_pipe(fd: RawFd) -> io::Result<std::fs::File> {
    let pipe = std::fs::File::from(claim(fd)?);
    set_inheritable(&pipe, false)?;
    Ok(pipe)
}

/// fork(2), for `c10k-models --model fork` (the server itself never forks: it execs).
/// `true` in the child. Call it only while the process has one thread.
pub fn fork_single_threaded() -> io::Result<bool> {
    // SAFETY: the caller's process is single-threaded, so the child's copy holds no lock
    // that another thread held, and the child may run any code, allocation included.
    Ok(matches!(unsafe { nix::unistd::fork() }?, nix::unistd::ForkResult::Child))
}

/// Own `fd`, a descriptor the master put in this process for it alone.
fn claim(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD reads only the descriptor table; it fails with EBADF if `fd` is not
    // open.
    if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } == -1 {
        return Err(io::Error::new(ErrorKind::InvalidInput, format!("fd {fd} is not open")));
    }
    // SAFETY: the master put this descriptor at `fd` for this process alone, and nothing
    // else in this process has claimed it (checked open above).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

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

/// The stats memfd a worker inherited from the master as descriptor `fd`, mapped; the
/// descriptor is closed (the mapping stays).
pub fn inherited_stats(fd: RawFd, blocks: usize) -> io::Result<&'static [ShardStats]> {
    map_stats(claim(fd)?, blocks)
}

/// The master's status listener: non-blocking, polled beside the shards' reports.
pub fn status_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A request head from `stream`, read blocking for at most `limit` in all (and 16 KiB);
/// what arrived by then, whole or not.
pub fn read_request_head(stream: &TcpStream, limit: std::time::Duration) -> Vec<u8> {
    let deadline = std::time::Instant::now() + limit;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = stream.set_nonblocking(false);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&*stream).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// Write all of `bytes`, blocking for at most `limit` per write.
pub fn write_all_blocking(stream: &TcpStream, bytes: &[u8], limit: std::time::Duration) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(limit))?;
    (&*stream).write_all(bytes)
}

/// The access log's file: appended to (O_APPEND, so lines of several shards never mix),
/// or stdout for `-`; reopened by path on request (after logrotate moved it).
pub struct LogFile {
    path: Option<std::path::PathBuf>,
    file: std::fs::File,
}

impl LogFile {
    pub fn open(target: &str) -> io::Result<LogFile> {
        if target == "-" {
            let file = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
            return Ok(LogFile { path: None, file });
        }
        let path = std::path::PathBuf::from(target);
        Ok(LogFile { file: open_append(&path)?, path: Some(path) })
    }

    /// Write `lines` (whole lines) in one write where the kernel takes them whole.
    pub fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        self.file.write_all(lines)
    }

    /// Open the path again: what is written from now on goes to the file there now.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let Some(path) = &self.path {
            self.file = open_append(path)?;
        }
        Ok(())
    }
}

fn open_append(path: &std::path::Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().append(true).create(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notsent_lowat(stream: &TcpStream) -> u32 {
        let mut value: nix::libc::c_int = -1;
        let mut len = size_of::<nix::libc::c_int>() as nix::libc::socklen_t;
        // SAFETY: `value` and `len` outlive the call, and `len` is `value`'s size.
        let rc = unsafe {
            nix::libc::getsockopt(
                stream.as_raw_fd(),
                nix::libc::IPPROTO_TCP,
                nix::libc::TCP_NOTSENT_LOWAT,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt TCP_NOTSENT_LOWAT: {}", io::Error::last_os_error());
        value as u32
    }

    /// Every accepted socket (epoll's `accept`; io_uring's accepts call `prepare_accepted`)
    /// keeps at most `SEND_LOWAT` unsent, and has Nagle off.
    #[test]
    fn accepted_sockets_hold_little_unsent() {
        let listener = reuseport_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted = loop {
            match accept(&listener) {
                Ok(stream) => break stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert_eq!(notsent_lowat(&accepted), SEND_LOWAT);
        assert!(accepted.nodelay().unwrap());
        // The default is "no limit" (u32::MAX on Linux): the check above can tell.
        assert_ne!(notsent_lowat(&TcpStream::connect(listener.local_addr().unwrap()).unwrap()), SEND_LOWAT);
    }
}
