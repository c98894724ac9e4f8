//! SIGHUP re-reads the configuration: the file (and the flags it came with) is parsed and
//! checked as at start before a new generation is started; an error refuses the reload in
//! one line and the running generation keeps serving. Listeners the new configuration
//! names and the old did not are bound first; those it no longer names are closed once the
//! reload is done (the old generation holds its own copies until it has drained).

use super::*;

/// The listeners of the generation serving, kept while a reload may still fail.
pub(super) struct Retained {
    listeners: Vec<Vec<TcpListener>>,
    configured: Vec<(SocketAddr, bool)>,
}

impl Master {
    /// The configuration as it is on disk now, checked; `None` (said in one line) when it
    /// would not start, and the reload is refused. Binds what it adds.
    pub(super) fn reconfigure(&mut self) -> bool {
        let mut argv = vec![OsString::from("c10k-server")];
        argv.extend(self.args.iter().cloned());
        let refuse = |why: &dyn std::fmt::Display| {
            log::error(format_args!("reload refused: {why}; the running generation keeps serving"));
            false
        };
        let config = match Config::from_argv(argv) {
            Ok(config) => config,
            Err(crate::config::Refusal::File(why) | crate::config::Refusal::Flags(why)) => return refuse(&why),
            Err(crate::config::Refusal::Help(e)) => return refuse(&e),
        };
        if let Err(e) = config.open_site() {
            return refuse(&e);
        }
        let cert_sources = config.has_tls().then(|| config.cert_sources());
        if let Some(sources) = &cert_sources
            && let Err(why) = listen::check_certificates(sources)
        {
            return refuse(&why);
        }
        if config.has_tls() && self.tickets.is_none() {
            match crate::tls::TicketKeys::generate() {
                Ok(keys) => self.tickets = Some(keys),
                Err(e) => return refuse(&format_args!("cannot make the TLS session-ticket keys: {e}")),
            }
        }
        let wanted = config.listeners();
        if wanted != self.configured {
            let mut by_shard: Vec<Vec<TcpListener>> = (0..self.slots.len()).map(|_| Vec::new()).collect();
            // Each kept listener once: two configured on port 0 are two listeners.
            let mut kept_already = vec![false; self.configured.len()];
            for &(addr, tls) in &wanted {
                let kept = (0..self.configured.len()).find(|&n| self.configured[n] == (addr, tls) && !kept_already[n]);
                if let Some(n) = kept {
                    kept_already[n] = true;
                }
                let taken = match kept {
                    Some(n) => self.slots.iter().map(|s| s.listeners[n].try_clone()).collect::<io::Result<Vec<_>>>(),
                    None => bind_group(addr, self.slots.len()),
                };
                match taken {
                    Ok(group) => by_shard.iter_mut().zip(group).for_each(|(shard, l)| shard.push(l)),
                    Err(e) => return refuse(&format_args!("cannot listen on {addr}: {e}")),
                }
            }
            for (n, &(addr, tls)) in wanted.iter().enumerate() {
                if !self.configured.contains(&(addr, tls)) {
                    let bound = by_shard[0][n].local_addr().unwrap_or(addr);
                    let scheme = if tls { "https" } else { "http" };
                    log::info(format_args!("reload: listening on {scheme}://{bound} too"));
                }
            }
            let old: Vec<_> =
                self.slots.iter_mut().zip(by_shard).map(|(s, new)| std::mem::replace(&mut s.listeners, new)).collect();
            let configured = std::mem::replace(&mut self.configured, wanted);
            self.retained = Some(Retained { listeners: old, configured });
        }
        self.cert_sources = cert_sources;
        true
    }

    /// The reload is done: listeners no longer configured close here (the old
    /// generation's copies close as it exits).
    pub(super) fn reconfigured(&mut self) {
        if let Some(retained) = self.retained.take() {
            for (addr, tls) in retained.configured.iter().filter(|c| !self.configured.contains(c)) {
                let scheme = if *tls { "https" } else { "http" };
                log::info(format_args!("reload: no longer listening on {scheme}://{addr}"));
            }
        }
    }

    /// The reload failed: the serving generation's listeners are the slots' again.
    pub(super) fn unconfigure(&mut self) {
        if let Some(retained) = self.retained.take() {
            for (slot, old) in self.slots.iter_mut().zip(retained.listeners) {
                slot.listeners = old;
            }
            self.configured = retained.configured;
        }
    }
}

/// One SO_REUSEPORT listener per shard on `addr` (port 0: one port chosen for all).
fn bind_group(mut addr: SocketAddr, shards: usize) -> io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        sys::check_port_free(addr)?;
    }
    let mut group = Vec::with_capacity(shards);
    for _ in 0..shards {
        let listener = sys::reuseport_listener(addr)?;
        addr = listener.local_addr()?;
        group.push(listener);
    }
    Ok(group)
}
