//! Steering new connections away from a shard that is down. The shards' listeners are one
//! SO_REUSEPORT group, held open by the master for the server's life; the kernel spreads
//! new connections over every socket of the group, a dead shard's included, where they
//! would wait until its replacement starts (a crash-loop backoff is seconds). A classic BPF
//! program attached to the group (SO_ATTACH_REUSEPORT_CBPF) picks the socket instead, at
//! random among the shards that serve; connections already queued on a dead shard's socket
//! stay there for its replacement, so none is dropped.

use nix::errno::Errno;
use nix::libc;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

/// asm-generic/socket.h (the libc crate names them for Android only).
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;
const SO_DETACH_REUSEPORT_BPF: libc::c_int = 68;

/// The program: a random number modulo the shards that serve, mapped to their places in the
/// group (the order the listeners were bound in, which is the shards' order).
fn program(up: &[u16]) -> Vec<libc::sock_filter> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    let mut prog = vec![
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32),
        op(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, 0, 0, up.len() as u32),
    ];
    for (i, &place) in up.iter().enumerate().take(up.len() - 1) {
        // Equal: the next instruction returns this shard's place; else skip it.
        prog.push(op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, i as u32));
        prog.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::from(place)));
    }
    prog.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::from(up[up.len() - 1])));
    prog
}

/// Have new connections of `listener`'s group go only to the sockets at the places `up`
/// (shard indices). With none up the program is removed, so the kernel spreads them as it
/// would without one (they wait, but they are not refused).
pub fn steer_to(listener: &TcpListener, up: &[u16]) -> io::Result<()> {
    let fd = listener.as_raw_fd();
    if up.is_empty() {
        // SAFETY: an int, no pointer in it.
        return match unsafe { set_option(fd, SO_DETACH_REUSEPORT_BPF, &0) } {
            // Nothing was attached.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other,
        };
    }
    let mut prog = program(up);
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    // SAFETY: `fprog` points at `prog`, `len` instructions long, both alive for the call;
    // the kernel copies the program before it returns.
    unsafe { set_option(fd, SO_ATTACH_REUSEPORT_CBPF, &fprog) }
}

/// setsockopt(SOL_SOCKET, `name`) with `value`, which the kernel copies.
///
/// # Safety
/// Any pointer inside `value` (a `sock_fprog`'s program) must be valid for what the kernel
/// reads through it during the call.
unsafe fn set_option<T>(fd: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live reference for the call and its size is passed; what it
    // points to is valid by the caller's promise; the kernel copies before returning.
    let rc = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, name, (value as *const T).cast(), size_of::<T>() as libc::socklen_t)
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// Two listeners of one group: steered to the second only, every new connection lands
    /// there; steered to both again, both get some; with none up, the kernel spreads them.
    #[test]
    fn new_connections_go_only_to_the_shards_that_serve() {
        let first = super::super::reuseport_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = super::super::reuseport_listener(addr).unwrap();
        let accepted = |listeners: [&TcpListener; 2]| {
            let clients: Vec<_> = (0..64).map(|_| TcpStream::connect(addr).unwrap()).collect();
            std::thread::sleep(std::time::Duration::from_millis(50));
            let counts = listeners.map(|l| std::iter::from_fn(|| l.accept().ok()).count());
            drop(clients);
            counts
        };
        steer_to(&first, &[1]).unwrap();
        assert_eq!(accepted([&first, &second]), [0, 64]);
        steer_to(&second, &[0, 1]).unwrap();
        let both = accepted([&first, &second]);
        assert!(both[0] > 0 && both[1] > 0 && both[0] + both[1] == 64, "{both:?}");
        steer_to(&first, &[0]).unwrap();
        assert_eq!(accepted([&first, &second]), [64, 0]);
        steer_to(&first, &[]).unwrap();
        let spread = accepted([&first, &second]);
        assert!(spread[0] > 0 && spread[1] > 0, "{spread:?}");
    }
}
