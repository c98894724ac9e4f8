//! `c10k-models`: the server models of the course this project grew from, each serving a
//! docroot through the server's own sans-I/O layers (`http` parses and encodes, `files`
//! resolves and caches, `conn` answers), so that only the I/O around them differs, and
//! measured side by side by `make models` (models/sweep.py).
//!
//!     c10k-models --model M --listen ADDR:PORT --root DIR
//!
//! One file per model; each says what the course's version did and what this one does
//! differently. None has timeouts but the production shards (`epoll`, `uring`), which run
//! unchanged: an idle client holds what it holds for as long as it likes, as in the course.
#![forbid(unsafe_code)]

mod busy_poll;
mod coroutine;
mod fork;
mod iterative;
mod poll;
mod readiness;
mod select;
mod session;
mod shard;
mod sys;
mod thread;

use c10k_server::conn::Context;
use c10k_server::files::{Cache, Root};
use c10k_server::http::Limits;
use clap::{Parser, ValueEnum};
use std::fmt::Arguments;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    /// One connection at a time: accept, serve it until it closes, accept the next.
    Iterative,
    /// A process per connection (fork), up to --max-procs.
    Fork,
    /// A thread per connection with blocking I/O, up to --max-threads.
    Thread,
    /// A task per connection on tokio, one current-thread runtime per core.
    Coroutine,
    /// One process trying every non-blocking socket in turn, forever.
    BusyPoll,
    /// A select(2) readiness loop (FD_SETSIZE descriptors at most).
    Select,
    /// A level-triggered poll(2) readiness loop.
    Poll,
    /// The production shard on edge-triggered epoll.
    Epoll,
    /// The production shard on io_uring.
    Uring,
}

/// The course's server models, on c10k-server's own HTTP and file layers.
#[derive(Parser, Debug)]
#[command(name = "c10k-models", version)]
struct Args {
    /// The model to serve with
    #[arg(long, value_enum)]
    model: Model,
    /// Address to listen on (port 0: any free port; the line `listening on` names it)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory to serve
    #[arg(long, value_name = "DIR", default_value = "./html")]
    root: PathBuf,
    /// fork: child processes at most; connections beyond are answered 503 and closed
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    max_procs: u64,
    /// thread: threads at most; connections beyond are answered 503 and closed
    #[arg(long, value_name = "N", default_value_t = 20000, value_parser = clap::value_parser!(u64).range(1..))]
    max_threads: u64,
    /// coroutine: runtimes, each a thread of its own (default: one per core)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    runtimes: Option<u64>,
}

/// What every model serves from: the root, opened once.
pub struct Docroot {
    pub root: Root,
}

impl Docroot {
    /// A context of its own (a cache of at most `entries` files, on the same root
    /// descriptor) for one thread, process or loop to serve from.
    pub fn ctx(&self, entries: usize) -> Context {
        Context::new(self.root.clone(), Cache::new(entries, 64 << 20), Limits::default())
    }
}

fn main() {
    let args = Args::parse();
    let name = args.model.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string());
    let _ = WHO.set(name);
    let fail = |what: Arguments<'_>| -> ! {
        eprintln!("c10k-models: {what}");
        std::process::exit(1)
    };
    let root = Root::open(&args.root).unwrap_or_else(|e| {
        fail(format_args!("--root {}: {e}; pass --root with a directory to serve", args.root.display()))
    });
    let docroot = Docroot { root };
    // As many descriptors as the host allows: the point is to see where each model stops.
    if let Err(e) = sys::raise_nofile() {
        warn(format_args!("cannot raise RLIMIT_NOFILE: {e}"));
    }
    let listener = c10k_server::driver::sys::reuseport_listener(args.listen).unwrap_or_else(|e| {
        fail(format_args!("cannot listen on {}: {e}; pass --listen with a free ADDR:PORT", args.listen))
    });
    let addr = listener.local_addr().unwrap_or(args.listen);
    info(format_args!("listening on http://{addr}"));
    let result = match args.model {
        Model::Iterative => iterative::run(listener, &docroot),
        Model::Fork => fork::run(listener, &docroot, args.max_procs),
        Model::Thread => thread::run(listener, docroot, args.max_threads),
        Model::Coroutine => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
            coroutine::run(listener, docroot, args.runtimes.unwrap_or(cores))
        }
        Model::BusyPoll => busy_poll::run(listener, &docroot),
        Model::Select => select::run(listener, &docroot),
        Model::Poll => poll::run(listener, &docroot),
        Model::Epoll => shard::run::<c10k_server::driver::epoll::EpollDriver>(listener, &docroot),
        Model::Uring => shard::run::<c10k_server::driver::uring::UringDriver>(listener, &docroot),
    };
    if let Err(e) = result {
        fail(format_args!("{e}"));
    }
}

/// `Ok` never comes from the loops that serve forever; a start-up error does.
pub type Served = std::io::Result<()>;

static WHO: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A line on stdout: `c10k-models[PID] MODEL: TEXT`.
pub fn info(text: Arguments<'_>) {
    println!("c10k-models[{}] {}: {text}", std::process::id(), WHO.get().map_or("", String::as_str));
}

/// A line on stderr, marked `warning:`.
pub fn warn(text: Arguments<'_>) {
    eprintln!("c10k-models[{}] {}: warning: {text}", std::process::id(), WHO.get().map_or("", String::as_str));
}

/// A listener the blocking models accept on with accept(2) blocking (the shared one is
/// non-blocking, as the shards need it).
fn blocking(listener: TcpListener) -> std::io::Result<TcpListener> {
    listener.set_nonblocking(false)?;
    Ok(listener)
}

/// After a failed accept: out of descriptors (EMFILE, ENFILE) or memory, the connection
/// waits in the backlog; a short pause keeps a loop from spinning on it.
fn accept_failed(e: &std::io::Error) {
    warn(format_args!("accept: {e}"));
    std::thread::sleep(std::time::Duration::from_millis(10));
}
