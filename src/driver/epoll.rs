//! Edge-triggered epoll: each socket is registered once, for both directions, and never
//! modified. Readiness is consumed completely (read until EAGAIN, or a short read), so no
//! edge is ever lost; one read buffer serves every connection of the shard.

use super::{Driver, Sizing, Token, sys};
use crate::shard::Core;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::io::{self, ErrorKind};
use std::net::TcpListener;
use std::os::fd::AsFd;

/// The listener's token: no connection has index `u32::MAX`.
const LISTENER: u64 = u64::MAX;
const BATCH: usize = 512;
/// One read takes at most this much from one socket.
const READ_BUF: usize = 64 * 1024;

pub struct EpollDriver {
    epoll: Epoll,
    events: Box<[EpollEvent]>,
    listener: TcpListener,
    buf: Box<[u8]>,
    /// Accepting stopped at a limit (fds, connections); retry every 100 ms.
    accept_paused: bool,
}

impl Driver for EpollDriver {
    const NAME: &'static str = "epoll";
    type ConnIo = ();

    fn new(listener: TcpListener, _sizing: &Sizing) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(listener.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, LISTENER))?;
        Ok(EpollDriver {
            epoll,
            events: vec![EpollEvent::empty(); BATCH].into_boxed_slice(),
            listener,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            accept_paused: false,
        })
    }

    fn turn(&mut self, core: &mut Core<()>) -> io::Result<()> {
        let timeout: u16 = if self.accept_paused { 100 } else { 1000 };
        let n = match self.epoll.wait(&mut self.events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        let input = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        let hangup = EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        for i in 0..n {
            let (flags, data) = (self.events[i].events(), self.events[i].data());
            if data == LISTENER {
                self.accept(core);
                continue;
            }
            let Some(key) = core.live(Token(data)) else { continue };
            let slot = &mut core.slots[key];
            slot.hangup |= flags.intersects(hangup);
            if flags.intersects(input) {
                if slot.lingering {
                    self.drain(core, key);
                } else if slot.conn.out.is_some() {
                    slot.read_paused = true;
                } else {
                    self.read(core, key);
                }
            }
            let writable = flags.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR);
            if writable && core.slots.get(key).is_some_and(|s| s.conn.out.is_some()) {
                self.settle(core, key);
            }
        }
        if self.accept_paused {
            self.accept(core);
        }
        Ok(())
    }

    fn settle(&mut self, core: &mut Core<()>, key: usize) {
        if self.flush(core, key) && self.finish_or_close(core, key) && std::mem::take(&mut core.slots[key].read_paused)
        {
            self.read(core, key);
        }
    }
}

impl EpollDriver {
    fn accept(&mut self, core: &mut Core<()>) {
        self.accept_paused = false;
        loop {
            if core.is_full() {
                self.accept_paused = true;
                return;
            }
            match sys::accept(&self.listener) {
                Ok(stream) => {
                    let token = core.accept(stream);
                    let flags =
                        EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
                    let stream = &core.slots[token.index()].stream;
                    if self.epoll.add(stream.as_fd(), EpollEvent::new(flags, token.0)).is_err() {
                        core.remove(token.index());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS: leave the rest in the backlog, retry soon.
                    if !matches!(e.raw_os_error(), Some(nix::libc::EMFILE | nix::libc::ENFILE)) {
                        eprintln!("accept: {e}");
                    }
                    self.accept_paused = true;
                    return;
                }
            }
        }
    }

    /// Read until EAGAIN (or a short read), answering as we go; stop while output waits.
    fn read(&mut self, core: &mut Core<()>, key: usize) {
        let before = core.progress(key);
        loop {
            let slot = &mut core.slots[key];
            if slot.conn.out.is_some() || slot.conn.closing || slot.doomed {
                break;
            }
            let n = match sys::read(&slot.stream, &mut self.buf) {
                Ok(0) => {
                    core.peer_closed(key);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    core.fail(key);
                    break;
                }
            };
            core.input(key, &self.buf[..n]);
            if !self.flush(core, key) {
                core.slots[key].read_paused = true;
                break;
            }
            // A short read drained the socket: any later byte brings a new edge, so the
            // read that would only say EAGAIN is skipped (one syscall per request saved)
            // unless the peer hung up, which no later edge would announce.
            if n < self.buf.len() && !core.slots[key].hangup {
                break;
            }
        }
        core.read_done(key, before);
        self.finish_or_close(core, key);
    }

    /// Send everything queued, recycling as it goes. False when the socket is full or
    /// the connection failed.
    fn flush(&mut self, core: &mut Core<()>, key: usize) -> bool {
        loop {
            let slot = &mut core.slots[key];
            let Some(out) = slot.conn.out.as_mut() else { return true };
            match sys::send(&slot.stream, out) {
                Ok(true) => core.sent(key),
                Ok(false) => {
                    core.blocked(key);
                    return false;
                }
                Err(_) => {
                    core.fail(key);
                    self.finish_or_close(core, key);
                    return false;
                }
            }
        }
    }

    /// Close a doomed slot; shut our side of one that is done. True if it stays open.
    fn finish_or_close(&mut self, core: &mut Core<()>, key: usize) -> bool {
        let Some(slot) = core.slots.get_mut(key) else { return false };
        if slot.doomed {
            // Dropping the stream closes the socket, which also removes it from epoll.
            core.remove(key);
            return false;
        }
        if slot.conn.closing && slot.conn.out.is_none() && !slot.lingering {
            if sys::shutdown_write(&slot.stream).is_err() {
                core.remove(key);
                return false;
            }
            core.linger(key);
            self.drain(core, key);
            return false;
        }
        true
    }

    /// Discard input of a lingering connection; close it at end of stream.
    fn drain(&mut self, core: &mut Core<()>, key: usize) {
        loop {
            match sys::read(&core.slots[key].stream, &mut self.buf) {
                Ok(0) => return drop(core.remove(key)),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return drop(core.remove(key)),
            }
        }
    }
}
