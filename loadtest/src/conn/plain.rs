//! A connection's bytes: the socket read straight into the response reader and written
//! straight from `out`; a `--tls` connection turns to [`super::tls`] at the first line of
//! each, so a plain one pays nothing for TLS but that test.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags};

use super::{Conn, Ctx};
use crate::stats::ErrorKind;

impl Ctx<'_> {
    /// Read what arrived on `c` into its response reader, then send what is due.
    // Across modules (codegen units) only what is marked inline is: as it was before it
    // moved here, so the plain path costs what it did.
    #[inline]
    pub(super) fn read(&mut self, c: &mut Conn, slot: usize, hup: bool) {
        if c.tls.is_some() {
            return self.tls_read(c, slot, hup);
        }
        loop {
            let fd = c.fd.as_ref().expect("open has an fd");
            match nix::unistd::read(fd, &mut self.buf) {
                Ok(0) => return self.eof(c, slot),
                Ok(n) => {
                    let parsed = c.reader.feed(&self.buf[..n], &mut self.responses);
                    let close = self.deliver(c);
                    if let Err(e) = parsed {
                        self.stats.error(e.into());
                        return self.end(c, slot);
                    }
                    if close {
                        return self.end(c, slot);
                    }
                    // A short read drained the socket; a later arrival is a new edge.
                    if n < self.buf.len() && !hup {
                        break;
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.stats.error(ErrorKind::Reset);
                    return self.end(c, slot);
                }
            }
        }
        self.pump(c, slot);
    }

    /// Send what `out` still holds, as far as the socket takes it.
    #[inline]
    pub(super) fn flush(&mut self, c: &mut Conn, slot: usize) {
        if c.tls.is_some() {
            return self.tls_flush(c, slot);
        }
        while c.out_pos < c.out.len() {
            let fd = c.fd.as_ref().expect("open has an fd").as_raw_fd();
            match socket::send(fd, &c.out[c.out_pos..], MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => c.out_pos += n,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.stats.error(ErrorKind::Reset);
                    return self.end(c, slot);
                }
            }
        }
        c.out.clear();
        c.out_pos = 0;
    }
}
