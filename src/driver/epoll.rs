//! Edge-triggered epoll: each socket is registered once, for both directions, and never
//! modified; the shard drains until EAGAIN, so no readiness is ever left unconsumed.

use super::{Driver, Event, Token};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::io;
use std::os::fd::BorrowedFd;

pub struct EpollDriver {
    epoll: Epoll,
    buf: Box<[EpollEvent]>,
}

const BATCH: usize = 512;

impl Driver for EpollDriver {
    const NAME: &'static str = "epoll";

    fn new(listener: BorrowedFd<'_>) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(listener, EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, Token::LISTENER.0))?;
        Ok(EpollDriver { epoll, buf: vec![EpollEvent::empty(); BATCH].into_boxed_slice() })
    }

    fn watch(&mut self, socket: BorrowedFd<'_>, token: Token) -> io::Result<()> {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        Ok(self.epoll.add(socket, EpollEvent::new(flags, token.0))?)
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout_ms: u16) -> io::Result<()> {
        events.clear();
        let n = match self.epoll.wait(&mut self.buf, timeout_ms) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        let input = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        events.extend(self.buf[..n].iter().map(|e| {
            let flags = e.events();
            Event {
                token: Token(e.data()),
                readable: flags.intersects(input),
                writable: flags.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR),
                hangup: flags.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR),
            }
        }));
        Ok(())
    }
}
