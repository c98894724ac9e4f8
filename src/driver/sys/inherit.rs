//! What a worker inherits from the master across exec: its shard's listeners, the pipe it
//! says "serving" on, the shared counters' memfd and, with TLS, a sealed memfd of the
//! session-ticket keys, each named by descriptor number in the worker's environment. Owning a descriptor by its number is unsound in general
//! (something else may own that number), so the unsafe claims stay private here and the
//! one public entry point, `take_inherited`, makes them once per process, only for the
//! numbers the master wrote into the environment, and only after checking that each is
//! open, inherited (not close-on-exec) and of the kind it should be.

use super::memfd::{map_stats, read_sealed};
use crate::stats::ShardStats;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{self, SockType, sockopt};
use nix::sys::stat::{SFlag, fstat};
use std::io::{self, ErrorKind};
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment through which the master names a worker's descriptors: its listeners,
/// comma-separated, in the order of their listener numbers (`Config::listeners`).
pub const LISTEN_FD_ENV: &str = "C10K_LISTEN_FD";
/// The pipe a worker writes its pid to, as a line, once it serves.
pub const READY_FD_ENV: &str = "C10K_READY_FD";
/// The shared counters (a memfd of one `ShardStats` per shard) and how many blocks it holds.
pub const STATS_FD_ENV: &str = "C10K_STATS_FD";
pub const STATS_BLOCKS_ENV: &str = "C10K_STATS_BLOCKS";
/// The session-ticket keys (`tls::TicketKeys::encode`), in a memfd sealed against writes
/// (`sealed_memfd`): in memory only the master and the worker share, never in the
/// environment or a file another process could read.
pub const TICKETS_FD_ENV: &str = "C10K_TICKETS_FD";

/// Whether this process may hold this descriptor across exec.
pub fn set_inheritable(fd: &impl AsFd, inheritable: bool) -> io::Result<()> {
    let flags = if inheritable { FdFlag::empty() } else { FdFlag::FD_CLOEXEC };
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flags))?;
    Ok(())
}

/// What a worker inherited, owned: the listeners non-blocking, and all of it close-on-exec
/// again so a later exec passes none of it on.
pub struct Inherited {
    /// By listener number.
    pub listeners: Vec<TcpListener>,
    pub ready: std::fs::File,
    /// The counters of every shard, when the master shares them.
    pub stats: Option<&'static [ShardStats]>,
    /// The session-ticket keys' bytes, when the master hands them (a TLS listener).
    pub tickets: Option<Vec<u8>>,
}

/// Set once the environment's descriptors were taken: the numbers stay in the environment
/// but may be closed and reused by then.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Take what the master passed this worker. `None` when the environment names no
/// listener and pipe (the process was not started by a master); an error when it names
/// descriptors that are not what they should be, or when they were taken already.
pub fn take_inherited() -> io::Result<Option<Inherited>> {
    let var = |name| std::env::var(name).ok().and_then(|v| v.parse::<RawFd>().ok());
    let (Some(listen_fds), Some(ready_fd)) = (std::env::var(LISTEN_FD_ENV).ok(), var(READY_FD_ENV)) else {
        return Ok(None);
    };
    let listen_fds: Vec<RawFd> = match listen_fds.split(',').map(str::parse).collect() {
        Ok(fds) => fds,
        Err(_) => {
            let why = format!("{LISTEN_FD_ENV}={listen_fds:?}: not a comma-separated list of descriptor numbers");
            return Err(io::Error::new(ErrorKind::InvalidInput, why));
        }
    };
    let stats_fd = var(STATS_FD_ENV);
    let tickets_fd = var(TICKETS_FD_ENV);
    let blocks = std::env::var(STATS_BLOCKS_ENV).ok().and_then(|n| n.parse::<usize>().ok());
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other("the inherited descriptors were taken already"));
    }
    // SAFETY: these numbers come from the environment the master gave this process at
    // exec, naming descriptors it made inheritable for this process alone; only unsafe code
    // can change the environment since (Rust 2024), and `TAKEN` makes this the one time
    // the process claims them, so nothing else here owns them. `claim` refuses any that
    // is closed, close-on-exec (opened here, not inherited) or of the wrong kind.
    let (listeners, ready, stats, tickets) = unsafe {
        let listeners = listen_fds.into_iter().map(|fd| inherited_listener(fd)).collect::<io::Result<Vec<_>>>()?;
        let ready = inherited_pipe(ready_fd)?;
        let stats = match (stats_fd, blocks) {
            (Some(fd), Some(blocks)) => Some(inherited_stats(fd, blocks)?),
            _ => None,
        };
        let tickets = tickets_fd.map(|fd| inherited_tickets(fd)).transpose()?;
        (listeners, ready, stats, tickets)
    };
    Ok(Some(Inherited { listeners, ready, stats, tickets }))
}

/// The listener inherited as descriptor `fd`, non-blocking.
///
/// # Safety
/// As `claim`.
unsafe fn inherited_listener(fd: RawFd) -> io::Result<TcpListener> {
    // SAFETY: the caller's promise, passed on.
    let listener = TcpListener::from(unsafe { claim(fd, Kind::Listener) }?);
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The pipe inherited as descriptor `fd`.
///
/// # Safety
/// As `claim`.
unsafe fn inherited_pipe(fd: RawFd) -> io::Result<std::fs::File> {
    // SAFETY: the caller's promise, passed on.
    Ok(std::fs::File::from(unsafe { claim(fd, Kind::Pipe) }?))
}

/// The stats memfd inherited as descriptor `fd`, mapped; the descriptor is closed (the
/// mapping stays).
///
/// # Safety
/// As `claim`.
unsafe fn inherited_stats(fd: RawFd, blocks: usize) -> io::Result<&'static [ShardStats]> {
    // SAFETY: the caller's promise, passed on.
    map_stats(unsafe { claim(fd, Kind::Stats) }?, blocks)
}

/// The ticket keys' memfd inherited as descriptor `fd`, read; the descriptor is closed.
///
/// # Safety
/// As `claim`.
unsafe fn inherited_tickets(fd: RawFd) -> io::Result<Vec<u8>> {
    // SAFETY: the caller's promise, passed on.
    read_sealed(unsafe { claim(fd, Kind::Tickets) }?)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Listener,
    Pipe,
    Stats,
    Tickets,
}

/// Held from a claim's checks until it marks the descriptor claimed, so two threads
/// cannot both find the same one unclaimed.
static CLAIMING: Mutex<()> = Mutex::new(());

/// Own `fd`, a descriptor inherited across exec, once checked to be of `kind`; it is made
/// close-on-exec again.
///
/// A claimed descriptor is marked by its close-on-exec flag rather than in a set of
/// numbers: the kernel keeps the flag with the open descriptor, so a second claim of it is
/// refused, while a number closed and reused later (the stats memfd is closed right after
/// mapping) is a new descriptor, opened close-on-exec like everything this process opens,
/// and refused as such, never taken for the old one.
///
/// # Safety
/// If `fd` is open and not close-on-exec, it was put in this process for the caller
/// alone: nothing else in the process owns it or closes it by number. The checks catch a
/// wrong number or kind; they cannot tell whether something else owns it.
unsafe fn claim(fd: RawFd, kind: Kind) -> io::Result<OwnedFd> {
    let refuse = |why: &str| io::Error::new(ErrorKind::InvalidInput, format!("fd {fd} ({kind:?}): {why}"));
    if fd <= 2 {
        return Err(refuse("a standard stream, not an inherited descriptor"));
    }
    let _claiming = CLAIMING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: F_GETFD reads only the descriptor table; it fails with EBADF if `fd` is not
    // open.
    let flags = unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) };
    if flags == -1 {
        return Err(refuse("not open"));
    }
    if flags & nix::libc::FD_CLOEXEC != 0 {
        return Err(refuse("close-on-exec: opened or claimed by this process, not inherited"));
    }
    // SAFETY: open (checked above), and by the caller's promise nothing closes it while
    // this borrow lives.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    check_kind(borrowed, kind).map_err(|why| refuse(&why))?;
    set_inheritable(&borrowed, false)?;
    // SAFETY: by the caller's promise nothing else owns it, and it was unclaimed (not
    // close-on-exec) until the line above, under `CLAIMING`: this is its one owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `fd` is what a worker inherits as `kind`; why not if not.
fn check_kind(fd: BorrowedFd<'_>, kind: Kind) -> Result<(), String> {
    let st = fstat(fd).map_err(|e| format!("fstat: {e}"))?;
    let file_type = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    match kind {
        Kind::Listener => {
            if file_type != SFlag::S_IFSOCK {
                return Err("not a socket".to_string());
            }
            if socket::getsockopt(&fd, sockopt::SockType).map_err(|e| format!("SO_TYPE: {e}"))? != SockType::Stream {
                return Err("not a stream socket".to_string());
            }
            if !socket::getsockopt(&fd, sockopt::AcceptConn).map_err(|e| format!("SO_ACCEPTCONN: {e}"))? {
                return Err("a socket that is not listening".to_string());
            }
        }
        Kind::Pipe if file_type != SFlag::S_IFIFO => return Err("not a pipe".to_string()),
        // A memfd is a regular file; `map_stats` checks its size.
        Kind::Stats if file_type != SFlag::S_IFREG => return Err("not a memfd".to_string()),
        // Sealed: what the master wrote is what is read (`read_sealed` checks the seals).
        Kind::Tickets if file_type != SFlag::S_IFREG => return Err("not a memfd".to_string()),
        Kind::Pipe | Kind::Stats | Kind::Tickets => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    /// `fd`, given up by its owner and made inheritable, as an inherited descriptor is.
    fn as_inherited(fd: OwnedFd) -> RawFd {
        set_inheritable(&fd, true).unwrap();
        fd.into_raw_fd()
    }

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD reads only the descriptor table.
        unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) != -1 }
    }

    #[test]
    fn a_listener_is_claimed_once() {
        let fd = as_inherited(OwnedFd::from(TcpListener::bind("127.0.0.1:0").unwrap()));
        // SAFETY: `fd` was given up by its owner above; nothing else owns it.
        let listener = unsafe { inherited_listener(fd) }.unwrap();
        assert!(listener.local_addr().is_ok());
        // Non-blocking and close-on-exec.
        assert!(matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock));
        // SAFETY: close-on-exec since the claim above, so `claim` asks nothing of it.
        let again = unsafe { inherited_listener(fd) }.expect_err("claimed twice");
        assert!(again.to_string().contains("close-on-exec"), "{again}");
        assert!(listener.local_addr().is_ok() && listener.as_raw_fd() == fd);
    }

    /// What is refused stays open and its owner's: the checks come before owning.
    #[test]
    fn descriptors_of_the_wrong_kind_are_refused_and_left_open() {
        let (reader, _writer) = std::io::pipe().unwrap();
        let unbound = socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            SockType::Stream,
            nix::sys::socket::SockFlag::empty(),
            None,
        )
        .unwrap();
        let listener = OwnedFd::from(TcpListener::bind("127.0.0.1:0").unwrap());
        let cases: [(OwnedFd, Kind, &str); 4] = [
            (OwnedFd::from(reader), Kind::Listener, "not a socket"),
            (unbound, Kind::Listener, "not listening"),
            (listener.try_clone().unwrap(), Kind::Pipe, "not a pipe"),
            (listener, Kind::Stats, "not a memfd"),
        ];
        for (owned, kind, why) in cases {
            let fd = as_inherited(owned);
            // SAFETY: `fd` was given up by its owner above; nothing else owns it.
            let refused = unsafe { claim(fd, kind) }.expect_err("claimed the wrong kind");
            assert!(refused.to_string().contains(why), "{kind:?}: {refused}");
            assert!(is_open(fd), "{kind:?}: closed by a refused claim");
            // SAFETY: the claim was refused, so `fd` is still ours alone; owned again to close.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        // Opened by this process (close-on-exec), so not inherited, whatever its kind.
        let (reader, _writer) = std::io::pipe().unwrap();
        // SAFETY: close-on-exec, so `claim` asks nothing of it.
        let refused = unsafe { claim(reader.as_raw_fd(), Kind::Pipe) }.expect_err("claimed a close-on-exec pipe");
        assert!(refused.to_string().contains("close-on-exec"), "{refused}");
        // SAFETY: a standard stream, refused before anything else is looked at.
        assert!(unsafe { claim(2, Kind::Pipe) }.is_err());
    }

    /// The ticket keys come in a sealed memfd; the stats memfd (not sealed) is refused.
    #[test]
    fn inherited_ticket_keys_are_read_from_a_sealed_memfd() {
        let fd = as_inherited(super::super::sealed_memfd(c"test", b"keys").unwrap());
        // SAFETY: `fd` was given up by its owner above; nothing else owns it.
        assert_eq!(unsafe { inherited_tickets(fd) }.unwrap(), b"keys");
        assert!(!is_open(fd), "the descriptor is closed once read");
        let fd = as_inherited(super::super::stats_memfd(1).unwrap());
        // SAFETY: as above.
        let refused = unsafe { inherited_tickets(fd) }.expect_err("took the counters for the keys");
        assert!(refused.to_string().contains("not sealed"), "{refused}");
    }

    #[test]
    fn an_inherited_memfd_maps_its_blocks() {
        let fd = as_inherited(super::super::stats_memfd(3).unwrap());
        // SAFETY: `fd` was given up by its owner above; nothing else owns it.
        let stats = unsafe { inherited_stats(fd, 3) }.unwrap();
        assert_eq!(stats.len(), 3);
        let fd = as_inherited(super::super::stats_memfd(1).unwrap());
        // SAFETY: as above.
        let small = unsafe { inherited_stats(fd, 4) }.map(<[_]>::len).expect_err("mapped past the end");
        assert!(small.to_string().contains("smaller"), "{small}");
    }
}
