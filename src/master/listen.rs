//! The master's listeners and what TLS needs of it. Every shard has one listener per
//! configured address (`Config::listeners`: the plain one first, then the TLS ones), each
//! address its own SO_REUSEPORT group, held by the master for the server's life and handed
//! to every generation. Certificates are loaded here first, at start and at each reload,
//! only to refuse what every shard would fail to load (the shards load the same files
//! themselves); the session-ticket keys are made here once and handed to every shard, so a
//! client resumes on whichever shard, and across reloads.

use super::*;
use crate::tls::{CertSources, Certificates};
use std::net::SocketAddr;

/// Bind every configured address once per shard: the listeners of shard `i` are the `i`th
/// entry, in `Config::listeners` order. Port 0 is resolved once per address; the other
/// shards join that port. The error is the line to exit with, naming the address and its
/// flag.
pub(super) fn bind_all(config: &Config, shards: usize) -> Result<Vec<Vec<TcpListener>>, String> {
    let configured = config.listeners();
    let mut by_shard: Vec<Vec<TcpListener>> = (0..shards).map(|_| Vec::with_capacity(configured.len())).collect();
    for (n, &(asked, tls)) in configured.iter().enumerate() {
        let mut addr = asked;
        let bound = (|| {
            if addr.port() != 0 {
                sys::check_port_free(addr)?;
            }
            for listeners in &mut by_shard {
                let listener = sys::reuseport_listener(addr)?;
                addr = listener.local_addr()?;
                listeners.push(listener);
            }
            Ok(())
        })();
        if let Err(e) = bound {
            return Err(refusal(asked, tls, &configured[..n], &e));
        }
    }
    Ok(by_shard)
}

/// Why `addr` (TLS or not) cannot be listened on, and what to pass instead; `earlier`: the
/// listeners bound before it, which it may overlap.
fn refusal(addr: SocketAddr, tls: bool, earlier: &[(SocketAddr, bool)], e: &io::Error) -> String {
    // `make run` passes LISTEN= as --listen: name what the person typed.
    let (name, flag) = match tls {
        true => ("--tls-listen", "--tls-listen ADDR:PORT"),
        false if std::env::var_os("MAKELEVEL").is_some() => ("LISTEN", "LISTEN=ADDR:PORT"),
        false => ("--listen", "--listen ADDR:PORT"),
    };
    // 0.0.0.0:443 and 127.0.0.1:443, both ours: not "in use" by something to stop.
    let overlap = earlier.iter().find(|(other, _)| {
        other.port() == addr.port() && other.port() != 0 && (other.ip().is_unspecified() || addr.ip().is_unspecified())
    });
    let why = match (e.kind(), overlap) {
        (io::ErrorKind::AddrInUse, Some(&(other, other_tls))) => format!(
            "it overlaps {other} ({}); give each listener a port of its own, or addresses that do not overlap",
            if other_tls { "--tls-listen" } else { "--listen" }
        ),
        (io::ErrorKind::AddrInUse, None) => format!("the address is in use; stop what holds it, or pass {flag}"),
        (io::ErrorKind::AddrNotAvailable, _) => format!("no such local address; pass {flag} with one of this host"),
        (io::ErrorKind::PermissionDenied, _) => {
            "permission denied; use a port above 1023, or run with CAP_NET_BIND_SERVICE".to_string()
        }
        _ => format!("{e}; pass {flag} with a free local address"),
    };
    format!("cannot listen on {addr} ({name}): {why}")
}

/// The start's lines, one per listener, the last when every shard serves: the HTTPS ones
/// first, then the plain one, `listening on http://ADDR (N shards, backend B)`, which
/// scripts and tests wait for; with no plain listener the last HTTPS one carries the shards
/// and backend instead.
pub(super) fn listening_lines(addrs: &[(SocketAddr, bool)], shards: usize, backend: &str) -> Vec<String> {
    let about = format!("{}, backend {backend}", log::count(shards as u64, "shard"));
    let last_tls = addrs.iter().rposition(|&(_, tls)| tls);
    let has_plain = addrs.iter().any(|&(_, tls)| !tls);
    let mut lines: Vec<String> = addrs
        .iter()
        .enumerate()
        .filter(|&(_, &(_, tls))| tls)
        .map(|(i, (addr, _))| match has_plain || Some(i) != last_tls {
            true => format!("listening on https://{addr} (TLS)"),
            false => format!("listening on https://{addr} (TLS, {about})"),
        })
        .collect();
    lines.extend(
        addrs.iter().filter(|&&(_, tls)| !tls).map(|(addr, _)| format!("listening on http://{addr} ({about})")),
    );
    lines
}

/// Load the certificates as every shard will, to refuse a start or reload that would fail
/// in all of them; say what they are, and warn of those that expire soon.
pub(super) fn check_certificates(sources: &CertSources) -> Result<(), String> {
    let certs = Certificates::load(sources)?;
    for line in certs.describe() {
        log::info(format_args!("{line}"));
    }
    for line in certs.expiring(unix_now()) {
        log::warn(format_args!("{line}"));
    }
    Ok(())
}

impl Master {
    /// The ticket keys as they are now, in a sealed memfd for one worker to inherit.
    pub(super) fn tickets_memfd(&self) -> io::Result<Option<std::os::fd::OwnedFd>> {
        self.tickets.as_ref().map(|keys| sys::sealed_memfd(c"c10k-tickets", &keys.encode())).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_comes_last_and_a_tls_only_server_ends_with_its_last_https_line() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let both = listening_lines(&[(a("127.0.0.1:80"), false), (a("127.0.0.1:443"), true)], 2, "uring");
        assert_eq!(
            both,
            ["listening on https://127.0.0.1:443 (TLS)", "listening on http://127.0.0.1:80 (2 shards, backend uring)"]
        );
        let tls = listening_lines(&[(a("127.0.0.1:443"), true), (a("[::1]:443"), true)], 1, "epoll");
        assert_eq!(
            tls,
            [
                "listening on https://127.0.0.1:443 (TLS)",
                "listening on https://[::1]:443 (TLS, 1 shard, backend epoll)"
            ]
        );
    }

    /// Port 0 is resolved once per address, and each shard has one listener per address,
    /// in the configured order.
    #[test]
    fn each_shard_gets_one_listener_per_address() {
        use clap::Parser;
        let args = ["x", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-cert-dir", "d"];
        let config = Config::try_parse_from(args).unwrap();
        let shards = bind_all(&config, 3).unwrap();
        assert_eq!(shards.len(), 3);
        let ports = |s: &Vec<TcpListener>| s.iter().map(|l| l.local_addr().unwrap().port()).collect::<Vec<_>>();
        let first = ports(&shards[0]);
        assert!(first.len() == 2 && first[0] != first[1] && !first.contains(&0), "{first:?}");
        assert!(shards.iter().all(|s| ports(s) == first));
    }

    #[test]
    fn a_refusal_names_the_address_and_its_flag() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let line = refusal(a("127.0.0.1:8443"), true, &[], &in_use);
        assert!(line.starts_with("cannot listen on 127.0.0.1:8443 (--tls-listen): the address is in use"), "{line}");
        assert!(line.ends_with("pass --tls-listen ADDR:PORT"), "{line}");
        let line = refusal(a("127.0.0.1:8443"), true, &[(a("0.0.0.0:8443"), false)], &in_use);
        assert!(line.contains("it overlaps 0.0.0.0:8443 (--listen)"), "{line}");
    }
}
