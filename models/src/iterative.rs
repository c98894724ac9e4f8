//! Iterative: accept one connection, serve it until the client closes it, then accept the
//! next. The course's first server did the same with a blocking `socket.accept()` and
//! `recv` loop; with keep-alive, one client that keeps its connection open and says
//! nothing holds the server, and every other client waits in the listen backlog.
//! Here too: there is no timeout, on purpose.

use crate::session::{READ_BUF, serve_blocking};
use crate::{Docroot, Served};
use std::net::TcpListener;

pub fn run(listener: TcpListener, docroot: &Docroot) -> Served {
    let listener = crate::blocking(listener)?;
    let mut ctx = docroot.ctx(64);
    let mut buf = vec![0; READ_BUF];
    loop {
        match listener.accept() {
            Ok((stream, _)) => serve_blocking(&stream, &mut buf, &mut ctx),
            Err(e) => crate::accept_failed(&e),
        }
    }
}
