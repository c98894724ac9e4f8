//! Thread: a thread per connection, blocking I/O. The course started a `threading.Thread`
//! per accepted socket (socketserver's ThreadingMixIn the same), sharing one interpreter
//! lock; here threads run truly in parallel, each on a 128 KiB stack (only the pages it
//! touches are resident) with a context of its own (the file cache is per thread: `Rc`, no
//! lock). Beyond `--max-threads` live threads, or when the kernel refuses a thread, the
//! connection is answered 503 and closed.

use crate::session::{READ_BUF, Refusals, serve_blocking};
use crate::{Docroot, Served};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const STACK: usize = 128 << 10;

pub fn run(listener: TcpListener, docroot: Docroot, max_threads: u64) -> Served {
    let docroot = Arc::new(docroot);
    let listener = crate::blocking(listener)?;
    let live = Arc::new(AtomicU64::new(0));
    let mut refusals = Refusals::default();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                crate::accept_failed(&e);
                continue;
            }
        };
        let now = live.load(Ordering::Relaxed);
        if now >= max_threads {
            refusals.refuse(stream, || format!("{now} threads serve already (--max-threads {max_threads})"));
            continue;
        }
        live.fetch_add(1, Ordering::Relaxed);
        let (done, docroot) = (Arc::clone(&live), Arc::clone(&docroot));
        let spawned = std::thread::Builder::new().stack_size(STACK).spawn(move || {
            let mut ctx = docroot.ctx(16);
            let mut buf = vec![0; READ_BUF];
            serve_blocking(&stream, &mut buf, &mut ctx);
            done.fetch_sub(1, Ordering::Relaxed);
        });
        if let Err(e) = spawned {
            // The stream went with the closure and is closed: it cannot be answered.
            live.fetch_sub(1, Ordering::Relaxed);
            refusals.note(|| format!("cannot start a thread ({e}); connection closed"));
        }
    }
}
