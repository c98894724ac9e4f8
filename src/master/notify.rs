//! systemd's notify protocol, without libsystemd.

use crate::log;

/// systemd's readiness protocol: one datagram per state to `$NOTIFY_SOCKET` (a path, or
/// `@name` in the abstract namespace), when it is set.
pub(super) struct Notify(Option<(std::os::unix::net::UnixDatagram, std::os::unix::net::SocketAddr)>);

impl Notify {
    pub(super) fn from_env() -> Notify {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Notify(None) };
        let path = path.to_string_lossy().into_owned();
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name),
            None => SocketAddr::from_pathname(&path),
        };
        match (UnixDatagram::unbound(), addr) {
            (Ok(socket), Ok(addr)) => Notify(Some((socket, addr))),
            (Err(e), _) | (_, Err(e)) => {
                log::warn(format_args!("NOTIFY_SOCKET={path}: {e}; systemd will not hear from this server"));
                Notify(None)
            }
        }
    }

    pub(super) fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.0
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            log::warn(format_args!("cannot tell systemd {state}: {e}"));
        }
    }
}
