//! The shards' sockets: SO_REUSEPORT listeners, accepting with the options every
//! connection gets, and the reads, writes, sendfile and shutdowns both backends (and the
//! models) carry out on a connection.

use crate::conn::outbox::FileRange;
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, sockopt};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

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
