//! What the three readiness loops (`busy-poll`, `select`, `poll`) share: their
//! connections, each a non-blocking socket with its session, one context and one read buffer
//! for all of them, accepting, and pumping the connections their wait found ready.

use crate::Docroot;
use crate::session::{Pumped, READ_BUF, Refusals, Session};
use c10k_server::conn::Context;
use c10k_server::driver::sys;
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};

pub struct Client {
    pub stream: TcpStream,
    session: Session,
    /// Blocked on a full send buffer: wait for writable, not readable.
    pub writing: bool,
    /// Stopped with work left: pump it again without waiting.
    pub yielded: bool,
}

pub struct Clients {
    pub list: Vec<Client>,
    ctx: Context,
    buf: Vec<u8>,
    refusals: Refusals,
}

impl Clients {
    pub fn new(docroot: &Docroot) -> io::Result<Clients> {
        Ok(Clients { list: Vec::new(), ctx: docroot.ctx(4096), buf: vec![0; READ_BUF], refusals: Refusals::default() })
    }

    /// Accept until the listener is empty. `unfit` says why a connection cannot be held
    /// (select: its descriptor is past FD_SETSIZE); such a one is answered 503 and closed.
    pub fn accept(&mut self, listener: &TcpListener, unfit: impl Fn(&TcpStream) -> Option<String>) {
        loop {
            match sys::accept(listener) {
                Ok(stream) => match unfit(&stream) {
                    Some(why) => self.refusals.refuse(stream, || why),
                    None => {
                        self.list.push(Client { stream, session: Session::default(), writing: false, yielded: true })
                    }
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => return crate::accept_failed(&e),
            }
        }
    }

    /// Whether a connection has work left that needs no wait.
    pub fn any_yielded(&self) -> bool {
        self.list.iter().any(|c| c.yielded)
    }

    /// Pump every connection `ready(i)` names (`i` its place in `list` as it was), drop
    /// those that ended.
    pub fn pump(&mut self, ready: impl Fn(usize) -> bool) {
        let (ctx, buf) = (&mut self.ctx, &mut self.buf);
        let mut i = 0;
        self.list.retain_mut(|c| {
            i += 1;
            if !c.yielded && !ready(i - 1) {
                return !c.session.linger_over();
            }
            let pumped = c.session.pump(&c.stream, buf, ctx);
            c.yielded = pumped.as_ref().is_ok_and(|p| *p == Pumped::Yielded);
            match pumped {
                Ok(Pumped::Yielded) => true,
                Ok(Pumped::Blocked { writing }) => {
                    c.writing = writing;
                    !c.session.linger_over()
                }
                Ok(Pumped::Done) | Err(_) => false,
            }
        });
    }
}
