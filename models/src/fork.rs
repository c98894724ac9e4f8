//! Fork: a process per connection. The course forked after `accept()` (`os.fork`, with
//! SIGCHLD ignored so the kernel reaps children; socketserver's ForkingMixIn the same with
//! keep-alive through Content-Length). Here the parent polls the listener with a 100 ms
//! timeout, reaps exited children with waitpid(WNOHANG) between accepts (so it knows how
//! many live, which SIGCHLD ignored would hide) and refuses connections beyond
//! `--max-procs` with a 503. The child drops the listener, serves its one connection on a
//! copy of the parent's context (a cold cache; nothing is shared back) and exits. A child
//! dies with its parent (PR_SET_PDEATHSIG), so stopping the server stops its connections.

use crate::session::{READ_BUF, Refusals, serve_blocking};
use crate::{Docroot, Served};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use std::net::TcpListener;
use std::os::fd::AsFd;

pub fn run(listener: TcpListener, docroot: &Docroot, max_procs: u64) -> Served {
    let mut ctx = docroot.ctx(64);
    let mut children = 0u64;
    let mut refusals = Refusals::default();
    loop {
        let mut wait = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut wait, PollTimeout::from(100u8));
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            match status {
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => children -= 1,
                _ => break,
            }
        }
        // Accept from the non-blocking listener until it is empty.
        while let Ok(stream) = c10k_server::driver::sys::accept(&listener) {
            if children >= max_procs {
                refusals.refuse(stream, || format!("{children} children serve already (--max-procs {max_procs})"));
                continue;
            }
            // The parent never starts a thread, so it may fork (`fork_single_threaded` refuses
            // if one ever does, and the connection is answered 503).
            match c10k_server::driver::sys::fork_single_threaded() {
                Ok(true) => {
                    drop(listener);
                    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
                    stream.set_nonblocking(false)?;
                    let mut buf = vec![0; READ_BUF];
                    serve_blocking(&stream, &mut buf, &mut ctx);
                    std::process::exit(0);
                }
                Ok(false) => children += 1,
                Err(e) => refusals.refuse(stream, || format!("fork: {e}")),
            }
        }
    }
}
