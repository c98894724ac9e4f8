//! poll(2), level-triggered: no FD_SETSIZE wall (the interest list is an array of any
//! length), but the array is rebuilt and handed to the kernel on every wait, and every
//! entry is scanned after it, so each wake costs time in the number of connections held
//! however few are ready. That scan is what epoll removed.

use crate::readiness::Clients;
use crate::{Docroot, Served};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::net::TcpListener;
use std::os::fd::AsFd;

pub fn run(listener: TcpListener, docroot: &Docroot) -> Served {
    let mut clients = Clients::new(docroot)?;
    let mut ready = Vec::new();
    loop {
        let listener_ready;
        {
            let interest = |writing| if writing { PollFlags::POLLOUT } else { PollFlags::POLLIN };
            let mut fds = Vec::with_capacity(clients.list.len() + 1);
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            fds.extend(clients.list.iter().map(|c| PollFd::new(c.stream.as_fd(), interest(c.writing))));
            let timeout = PollTimeout::from(if clients.any_yielded() { 0u16 } else { 1000 });
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            listener_ready = woke(&fds[0]);
            ready.clear();
            ready.extend(fds[1..].iter().map(woke));
        }
        clients.pump(|i| ready[i]);
        if listener_ready {
            clients.accept(&listener, |_| None);
        }
    }
}

/// Readable, writable, or an error or hang-up to find out about by reading.
fn woke(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|r| !r.is_empty())
}
