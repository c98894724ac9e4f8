//! Starting a connection: its connect (from the next `--source-ips` address), and what a
//! failed one waits for before it is tried again.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{EpollEvent, EpollFlags};

use super::{Conn, Ctx, State};
use crate::net;
use crate::stats::ErrorKind;

impl Ctx<'_> {
    // Marked inline, as they may be inlined where they were before they moved here (another
    // codegen unit).
    #[inline]
    pub fn start_connect(&mut self, c: &mut Conn, slot: usize) {
        let sources = &self.cfg.sources;
        let src = (!sources.is_empty()).then(|| sources[(self.first_slot + slot) % sources.len()]);
        let fd = match net::connect(self.cfg.addr, src) {
            Ok(fd) => fd,
            Err(e) => return self.connect_failed(c, e),
        };
        c.generation = c.generation.wrapping_add(1);
        let data = (slot as u64) << 32 | u64::from(c.generation);
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if let Err(e) = self.epoll.add(&fd, EpollEvent::new(flags, data)) {
            return self.connect_failed(c, e);
        }
        c.fd = Some(fd);
        c.state = State::Connecting(self.now);
        self.connecting += 1;
    }

    /// Count a failed connect and schedule the retry.
    #[inline]
    pub fn connect_failed(&mut self, c: &mut Conn, e: Errno) {
        self.stats.error(ErrorKind::Connect);
        let starved = match e {
            Errno::EADDRNOTAVAIL => {
                self.stats.no_ports += 1;
                true
            }
            Errno::EMFILE | Errno::ENFILE => {
                self.stats.no_fds += 1;
                true
            }
            _ => false,
        };
        let backoff = Duration::from_millis(if starved { 1000 } else { 100 });
        c.state = State::Waiting(self.now + backoff);
    }

    /// A connect in progress failed (`e`) or timed out (ETIMEDOUT): close it, retry later.
    #[inline]
    pub fn abandon_connect(&mut self, c: &mut Conn, e: Errno) {
        self.connecting -= 1;
        c.fd = None;
        c.generation = c.generation.wrapping_add(1);
        self.connect_failed(c, e);
    }
}
