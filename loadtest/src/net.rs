//! Sockets and process limits: non-blocking connects (bound to a source address first when
//! asked, with IP_BIND_ADDRESS_NO_PORT), RLIMIT_NOFILE, the ephemeral port range, and the
//! checks that turn "this cannot work" into one clear line before the run starts.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage, sockopt};

use crate::cli::{Config, share};

/// File descriptors a process needs besides its connections (stdio, epoll fds, pipes).
const FD_RESERVE: u64 = 32;

/// Start a non-blocking connect to `dst`, from `src` when given. The fd is returned while
/// the connect is still in progress; its completion shows as EPOLLOUT (or EPOLLERR).
pub fn connect(dst: SocketAddr, src: Option<IpAddr>) -> Result<OwnedFd, Errno> {
    let family = if dst.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(family, SockType::Stream, flags, None)?;
    socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    if let Some(ip) = src {
        // Without this, bind() picks the port alone and one source address runs out after
        // ~28 k connections in all; with it, the port is chosen at connect per 4-tuple.
        if ip.is_ipv4() {
            socket::setsockopt(&fd, sockopt::IpBindAddressNoPort, &true)?;
        }
        socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(SocketAddr::new(ip, 0)))?;
    }
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(dst)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(fd),
        Err(e) => Err(e),
    }
}

/// The pending error of a socket whose connect finished (`None`: connected).
pub fn socket_error(fd: &OwnedFd) -> Option<Errno> {
    match socket::getsockopt(fd, sockopt::SocketError) {
        Ok(0) => None,
        Ok(e) => Some(Errno::from_raw(e)),
        Err(e) => Some(e),
    }
}

/// Raise the soft RLIMIT_NOFILE to the hard limit; the resulting soft limit.
pub fn raise_nofile() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// Refuse a run whose processes cannot open their connections.
pub fn check_fds(cfg: &Config, limit: u64) -> Result<(), String> {
    let per_proc = (share(cfg.conns, cfg.procs, 0) + share(cfg.idle, cfg.procs, 0)) as u64;
    let need = per_proc + FD_RESERVE + cfg.threads as u64;
    if need <= limit {
        return Ok(());
    }
    let fits = limit.saturating_sub(FD_RESERVE + cfg.threads as u64).max(1);
    let procs = ((cfg.conns + cfg.idle) as u64).div_ceil(fits);
    Err(format!(
        "{per_proc} connections in one process need about {need} file descriptors, but one process may \
         open {limit} (RLIMIT_NOFILE, already raised to the hard limit), so about {fits} connections; \
         use --procs {procs} (or raise the hard limit)"
    ))
}

/// The local port range (`net.ipv4.ip_local_port_range`), when readable.
pub fn port_range() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_ascii_whitespace().map(|v| v.parse::<u32>());
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// Refuse a run that needs more ports from one source address to the server than exist.
pub fn check_ports(cfg: &Config) -> Result<(), String> {
    let Some((lo, hi)) = port_range() else { return Ok(()) };
    let ports = (hi - lo + 1) as usize;
    let total = cfg.conns + cfg.idle;
    let sources = cfg.sources.len().max(1);
    let per_source = total.div_ceil(sources);
    if per_source <= ports {
        return Ok(());
    }
    let need = total.div_ceil(ports);
    Err(format!(
        "{total} connections to {} need {per_source} local ports per source address, but \
         net.ipv4.ip_local_port_range {lo}-{hi} has {ports}; spread them with --source-ips (at least {need} \
         addresses, e.g. --source-ips 127.0.0.2-127.0.0.{})",
        cfg.addr,
        (need + 1).min(254)
    ))
}

/// Every --source-ips address must be one of this host's (bind fails with EADDRNOTAVAIL
/// otherwise, which would read like running out of ports).
pub fn check_sources(cfg: &Config) -> Result<(), String> {
    for &ip in &cfg.sources {
        let family = if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        let bound = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).and_then(|fd| {
            if ip.is_ipv4() {
                socket::setsockopt(&fd, sockopt::IpBindAddressNoPort, &true)?;
            }
            socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(SocketAddr::new(ip, 0)))
        });
        if let Err(e) = bound {
            return Err(format!("--source-ips: cannot bind {ip}: {} (is it an address of this host?)", e.desc()));
        }
    }
    Ok(())
}

/// One blocking connect before the run, so an unreachable server is one clear line.
pub fn probe(cfg: &Config) -> Result<(), String> {
    let timeout = cfg.timeout.min(Duration::from_secs(5));
    match TcpStream::connect_timeout(&cfg.addr, timeout) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot connect to {}: {e}; is the server running?", cfg.addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn connect_from_a_source_address() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = connect(l.local_addr().unwrap(), Some("127.0.0.3".parse().unwrap())).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.3");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(socket_error(&fd), None);
    }

    #[test]
    fn foreign_source_address_is_refused() {
        use clap::Parser;
        let args = ["c10k-load", "--url", "http://127.0.0.1:9/", "--source-ips", "127.0.0.2,192.0.2.1"];
        let cfg = Config::from_args(crate::cli::Args::parse_from(args)).unwrap();
        assert!(check_sources(&cfg).unwrap_err().contains("cannot bind 192.0.2.1"));
    }

    #[test]
    fn nofile_is_raised() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(raise_nofile(), hard);
    }
}
