//! select(2): one process waits until some of its sockets are ready, then serves those.
//! The course named select and poll as what event libraries wrap. The interest sets are
//! rebuilt before every wait and scanned after it, so each wake costs time in the number
//! of connections held; and an `fd_set` is a bitmap of FD_SETSIZE (1,024) bits, so a
//! connection whose descriptor is 1,024 or above cannot be waited for at all. It is
//! answered 503 and closed, with a line that says why (nix's `FdSet` would panic rather
//! than write past the bitmap; we never ask it to).

use crate::readiness::Clients;
use crate::{Docroot, Served};
use nix::errno::Errno;
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};

pub fn run(listener: TcpListener, docroot: &Docroot) -> Served {
    let mut clients = Clients::new(docroot)?;
    let mut ready = Vec::new();
    let unfit = |s: &std::net::TcpStream| {
        let fd = s.as_raw_fd();
        (fd as usize >= FD_SETSIZE).then(|| format!("descriptor {fd} is past select's FD_SETSIZE ({FD_SETSIZE})"))
    };
    loop {
        let listener_ready;
        {
            let (mut read, mut write) = (FdSet::new(), FdSet::new());
            read.insert(listener.as_fd());
            for c in &clients.list {
                if c.writing { write.insert(c.stream.as_fd()) } else { read.insert(c.stream.as_fd()) }
            }
            let mut timeout = TimeVal::milliseconds(if clients.any_yielded() { 0 } else { 1000 });
            match select(None, &mut read, &mut write, None, &mut timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            listener_ready = read.contains(listener.as_fd());
            ready.clear();
            ready.extend(
                clients.list.iter().map(|c| read.contains(c.stream.as_fd()) || write.contains(c.stream.as_fd())),
            );
        }
        clients.pump(|i| ready[i]);
        if listener_ready {
            clients.accept(&listener, unfit);
        }
    }
}
