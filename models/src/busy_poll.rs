//! Busy polling: one process, every socket non-blocking, and a loop that tries each of
//! them in turn, forever. The course kept a list of non-blocking sockets and called
//! `recv` on each, catching the "would block" error, without ever waiting. Same here: a
//! read (or a send) per connection per pass, whether anything came or not, so the loop
//! burns a core while every client is idle, and a pass, and with it the wait of each
//! request, grows with the number of connections held.

use crate::readiness::Clients;
use crate::{Docroot, Served};
use std::net::TcpListener;

pub fn run(listener: TcpListener, docroot: &Docroot) -> Served {
    let mut clients = Clients::new(docroot)?;
    loop {
        clients.accept(&listener, |_| None);
        clients.pump(|_| true);
    }
}
