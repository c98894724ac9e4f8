//! The master's status listener. The status port's thread serves it without blocking
//! (`master::status_port`); only binding it needs the kernel.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// The master's status listener: non-blocking, served by the status port's own thread.
pub fn status_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
