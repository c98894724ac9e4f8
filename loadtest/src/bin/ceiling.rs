//! c10k-ceiling: the least-work HTTP responder, the reference `make loadtest` divides by.
//!
//! One thread per core, pinned, each with its own SO_REUSEPORT listener and one
//! edge-triggered epoll loop. It reads, counts request terminators (`\r\n\r\n`) and writes
//! a response built once at start: a head of the same shape as c10k-server's (the same
//! fields, so the same bytes on the wire) and the bytes of `--file` as the body, whatever
//! was asked. No parsing, no file I/O, no timers, no allocation per request. Anything a
//! server does beyond this is the price of being a server; the CPU per request of a run
//! against it is the floor the real server's is compared with.
//!
//! Not a server: it answers garbage with 200, never closes an idle connection and trusts
//! the client to send whole heads. Loopback benchmarks only.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

// The listener as the server binds it: the responder differs from it only in what it does
// with a connection.
use c10k_server::driver::sys::reuseport_listener;
use clap::Parser;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{self, SockFlag};

#[derive(Parser)]
#[command(name = "c10k-ceiling", about = "Least-work HTTP responder: the reference for CPU per request")]
struct Args {
    /// Address to listen on (port 0 picks one; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The body of every response.
    #[arg(long)]
    file: PathBuf,
    /// Threads, one per core, each pinned (default: every CPU).
    #[arg(long)]
    threads: Option<usize>,
}

/// One read takes at most this much.
const READ_BUF: usize = 64 * 1024;
/// Small responses are written this many at a time (pipelined requests).
const COPIES_BYTES: usize = 64 * 1024;
const LISTENER: u64 = u64::MAX;

fn main() -> ExitCode {
    let args = Args::parse();
    let body = match std::fs::read(&args.file) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("c10k-ceiling: cannot read --file {}: {e}", args.file.display());
            return ExitCode::from(1);
        }
    };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        eprintln!("c10k-ceiling: --threads 0: give at least 1");
        return ExitCode::from(2);
    }
    let _ = raise_nofile();
    // The first listener picks the port (when 0); the rest join its group.
    let first = match reuseport_listener(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("c10k-ceiling: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let addr = first.local_addr().expect("a bound listener has an address");
    let mut listeners = vec![first];
    for _ in 1..threads {
        match reuseport_listener(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("c10k-ceiling: cannot listen on {addr}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let response = Response::new(&body);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    println!("c10k-ceiling: listening on http://{addr} ({threads} threads, {} byte responses)", response.one.len());
    let _ = io::stdout().flush();
    std::thread::scope(|s| {
        for (i, listener) in listeners.into_iter().enumerate() {
            let (response, core) = (&response, cores.get(i % cores.len().max(1)).copied());
            s.spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                if let Err(e) = serve(listener, response) {
                    eprintln!("c10k-ceiling: thread {i}: {e}");
                    std::process::exit(1);
                }
            });
        }
    });
    ExitCode::SUCCESS
}

/// The response, once, and as many copies as fit in `COPIES_BYTES` (at least one), so
/// pipelined requests are answered with one write.
struct Response {
    one: Vec<u8>,
    copies: Vec<u8>,
    per_copies: usize,
}

impl Response {
    fn new(body: &[u8]) -> Response {
        // c10k-server's fields for a cached file, in its order and of its sizes.
        let head = format!(
            "HTTP/1.1 200 OK\r\nServer: c10k-server\r\nDate: Sun, 06 Dec 2026 20:00:00 GMT\r\n\
             Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
             Last-Modified: Sun, 06 Dec 2026 20:00:00 GMT\r\nETag: \"6b0aee37-54c\"\r\n\
             Accept-Ranges: bytes\r\n\r\n",
            body.len()
        );
        let mut one = head.into_bytes();
        one.extend_from_slice(body);
        let per_copies = (COPIES_BYTES / one.len()).max(1);
        let copies = one.repeat(per_copies);
        Response { one, copies, per_copies }
    }
}

/// A connection: requests counted and not yet answered, and how far into the current
/// batch of copies the socket has taken.
struct Conn {
    stream: TcpStream,
    owed: usize,
    /// The batch being written (`batch` responses of `Response::copies`) and its bytes sent.
    batch: usize,
    sent: usize,
    /// The last bytes read, for a terminator split across reads.
    tail: u32,
}

fn serve(listener: TcpListener, response: &Response) -> io::Result<()> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(listener.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, LISTENER))?;
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut events = vec![EpollEvent::empty(); 512];
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match epoll.wait(&mut events, nix::sys::epoll::EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for event in &events[..n] {
            let key = event.data();
            if key == LISTENER {
                accept_all(&listener, &epoll, &mut conns);
                continue;
            }
            let key = key as usize;
            let Some(conn) = conns.get_mut(key) else { continue };
            let flags = event.events();
            let alive = (!flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR)
                || read_all(conn, &mut buf))
                && write_owed(conn, response);
            if !alive {
                conns.remove(key);
            }
        }
    }
}

fn accept_all(listener: &TcpListener, epoll: &Epoll, conns: &mut slab::Slab<Conn>) {
    loop {
        let fd = match socket::accept4(listener, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNABORTED) => continue,
            Err(_) => return,
        };
        let stream = TcpStream::from(fd);
        let _ = stream.set_nodelay(true);
        let entry = conns.vacant_entry();
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if epoll.add(stream.as_fd(), EpollEvent::new(flags, entry.key() as u64)).is_ok() {
            entry.insert(Conn { stream, owed: 0, batch: 0, sent: 0, tail: 0 });
        }
    }
}

/// Read until EAGAIN, counting request terminators; false when the connection is over.
fn read_all(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                for &b in &buf[..n] {
                    conn.tail = (conn.tail << 8) | u32::from(b);
                    if conn.tail == u32::from_be_bytes(*b"\r\n\r\n") {
                        conn.owed += 1;
                    }
                }
                if n < buf.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Write what is owed until the socket is full; false when the connection is over.
fn write_owed(conn: &mut Conn, response: &Response) -> bool {
    loop {
        if conn.batch == 0 {
            if conn.owed == 0 {
                return true;
            }
            conn.batch = conn.owed.min(response.per_copies);
            conn.owed -= conn.batch;
            conn.sent = 0;
        }
        let bytes = &response.copies[..conn.batch * response.one.len()];
        match conn.stream.write(&bytes[conn.sent..]) {
            Ok(n) => {
                conn.sent += n;
                if conn.sent == bytes.len() {
                    conn.batch = 0;
                } else {
                    // A short write filled the socket; EPOLLOUT brings the rest.
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn raise_nofile() -> nix::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
}
