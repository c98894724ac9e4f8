//! The master's status endpoint I/O: its listener, polled beside the shards' reports, and
//! the short blocking reads and writes of one request and one answer, each bounded in
//! time so a slow client cannot hold the master up.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// The master's status listener: non-blocking, polled beside the shards' reports.
pub fn status_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A request head from `stream`, read blocking for at most `limit` in all (and 16 KiB);
/// what arrived by then, whole or not.
pub fn read_request_head(stream: &TcpStream, limit: std::time::Duration) -> Vec<u8> {
    let deadline = std::time::Instant::now() + limit;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = stream.set_nonblocking(false);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&*stream).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// Write all of `bytes`, blocking for at most `limit` per write.
pub fn write_all_blocking(stream: &TcpStream, bytes: &[u8], limit: std::time::Duration) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(limit))?;
    (&*stream).write_all(bytes)
}
