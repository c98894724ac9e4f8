//! One connection's I/O around the server's own connection state machine (`conn::Conn`):
//! every model moves bytes with `Session::pump`, so parsing, static-file semantics,
//! pipelining and the answers to bad input are the production server's, and the models
//! differ only in how they wait (a blocked thread, a forked process, a task, a readiness
//! loop). A blocking socket blocks inside `pump`; a non-blocking one returns `Blocked`.

use c10k_server::conn::outbox::FileRange;
use c10k_server::conn::{Conn, Context, Outbox, Segment};
use c10k_server::driver::sys;
use c10k_server::http::date;
use c10k_server::http::response::{self, Persistence};
use std::io::{self, ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads per `pump` before it yields, so that a client pipelining without pause cannot
/// hold a loop that serves many.
const READS_PER_PUMP: usize = 16;

/// How long we read and discard a client's input after our last response before closing,
/// so that a close with input unread (a reset) does not destroy the response in flight.
pub const LINGER: Duration = Duration::from_secs(2);

/// What the read buffer of a model holds at most: one per thread or loop, not per
/// connection (only an unparsed tail is copied into the connection).
pub const READ_BUF: usize = 16 * 1024;

/// What `pump` stopped at.
#[derive(Debug, PartialEq, Eq)]
pub enum Pumped {
    /// The socket would block: come back once it is writable (`writing`) or readable.
    Blocked { writing: bool },
    /// Work may be left: come back without waiting.
    Yielded,
    /// The connection is over: the peer closed, or our last response went and the linger
    /// ended.
    Done,
}

/// The calls `pump` needs of a socket: std's (blocking or not) or tokio's.
pub trait Socket {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&self, bytes: &[u8]) -> io::Result<usize>;
    fn send_file(&self, range: &FileRange) -> io::Result<usize>;
    /// Send FIN after the last response; input is drained for at most `LINGER` from now.
    fn finish(&self) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self, buf)
    }

    fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        sys::write(self, bytes)
    }

    fn send_file(&self, range: &FileRange) -> io::Result<usize> {
        sys::send_file(self, range)
    }

    fn finish(&self) -> io::Result<()> {
        // Bounds the drain of a blocking socket; a non-blocking one ignores it (its loop
        // checks `Session::linger_over`).
        self.set_read_timeout(Some(LINGER))?;
        sys::shutdown_write(self)
    }
}

/// A connection: the protocol state and what waits to be sent.
#[derive(Default)]
pub struct Session {
    conn: Conn,
    out: Outbox,
    /// Requests are left held in `conn` because the outbox was full.
    held: bool,
    /// Our side is shut: input is drained until the peer closes or `LINGER` ends.
    lingering_since: Option<Instant>,
}

impl Session {
    /// Send what is queued, read, answer; until the socket blocks, the connection ends or
    /// the read budget is spent. An error ends the connection (the caller drops it).
    pub fn pump(&mut self, sock: &impl Socket, buf: &mut [u8], ctx: &mut Context) -> io::Result<Pumped> {
        for _ in 0..READS_PER_PUMP {
            while let Some(chunk) = self.out.next_segment() {
                let sent = match chunk {
                    Segment::Bytes(bytes) => sock.send(bytes),
                    Segment::File(range) => sock.send_file(range),
                };
                match sent {
                    Ok(0) => return Ok(Pumped::Done),
                    Ok(n) => self.out.advance(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Pumped::Blocked { writing: true }),
                    Err(e) => return Err(e),
                }
            }
            if self.conn.closing && self.lingering_since.is_none() {
                sock.finish()?;
                self.lingering_since = Some(Instant::now());
            }
            if self.held && self.lingering_since.is_none() {
                self.feed(&[], ctx);
                continue;
            }
            // Everything queued has gone. Give the response buffer back before a read that
            // may wait (or block) for long, so that what an idle connection holds is its
            // model's cost (a task, a thread, a process), not a buffer of ours.
            if self.out.bytes.capacity() > 0 {
                self.out = Outbox::default();
            }
            match sock.recv(buf) {
                Ok(0) => return Ok(Pumped::Done),
                Ok(_) if self.lingering_since.is_some() => {}
                Ok(n) => self.feed(&buf[..n], ctx),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Pumped::Blocked { writing: false }),
                Err(e) => return Err(e),
            }
        }
        Ok(Pumped::Yielded)
    }

    /// Our last response has gone; input is being drained before the close.
    pub fn lingering(&self) -> bool {
        self.lingering_since.is_some()
    }

    /// Lingering past `LINGER`: a loop that never hears from the peer again drops it.
    pub fn linger_over(&self) -> bool {
        self.lingering_since.is_some_and(|t| t.elapsed() >= LINGER)
    }

    /// Answer the input `conn` holds and then `data`, keeping the unparsed rest.
    fn feed(&mut self, data: &[u8], ctx: &mut Context) {
        ctx.tick(date::unix_ms() / 1000);
        self.conn.receive(data, ctx, &mut self.out, u32::MAX);
        // `Conn::receive` stops early only at a full outbox or a closing connection.
        self.held = self.out.is_full() && !self.conn.closing;
    }
}

/// Serve a blocking connection until it ends.
pub fn serve_blocking(stream: &TcpStream, buf: &mut [u8], ctx: &mut Context) {
    // Responses are coalesced before they are written; Nagle would only delay the last.
    let _ = stream.set_nodelay(true);
    let mut session = Session::default();
    loop {
        match session.pump(stream, buf, ctx) {
            Ok(Pumped::Yielded) => {}
            // Only the linger's read timeout makes a blocking socket say it would block.
            Ok(Pumped::Blocked { .. }) if !session.linger_over() => {}
            _ => return,
        }
    }
}

/// Connections turned away, and when that was last said: a model at its limit logs the
/// first refusal and then at most one line a second, with the count.
#[derive(Default)]
pub struct Refusals {
    count: u64,
    logged: Option<Instant>,
}

impl Refusals {
    /// Count a connection turned away, saying why (`why`) now and then.
    pub fn note(&mut self, why: impl FnOnce() -> String) {
        self.count += 1;
        if self.logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.logged = Some(Instant::now());
            crate::warn(format_args!("refusing connections ({} so far): {}", self.count, why()));
        }
    }

    /// Answer `stream` 503 and close it, saying why (`why`) now and then.
    pub fn refuse(&mut self, stream: TcpStream, why: impl FnOnce() -> String) {
        self.note(why);
        let mut answer = Vec::with_capacity(160);
        response::error(&mut answer, 503, &date::format(date::unix_ms() / 1000), Persistence::Close, false, &[]);
        // A fresh socket's send buffer takes a short answer whole; blocking or not, a
        // client that cannot take it is dropped.
        let _ = (&stream).write(&answer);
        let _ = sys::shutdown_write(&stream);
    }
}
