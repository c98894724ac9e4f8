//! Coroutines: a task per connection on an async runtime. The course used gevent, whose
//! monkey patching turns blocking socket calls into switches between green threads on one
//! event loop. The Rust counterpart is a tokio task per connection: here one
//! current-thread runtime per core (no work stealing, like gevent's one loop, but one per
//! core), each accepting on its own copy of the listener, its tasks sharing the
//! runtime's context and read buffer. A task pumps its session until the socket would
//! block, then awaits readiness: the same I/O as the `epoll` model, written as straight-
//! line code, paid for with a task, a waker and the runtime's own bookkeeping.

use crate::session::{LINGER, Pumped, READ_BUF, Session, Socket};
use crate::{Docroot, Served};
use c10k_server::conn::Context;
use c10k_server::conn::outbox::FileRange;
use c10k_server::driver::sys;
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::TcpStream;

impl Socket for TcpStream {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.try_read(buf)
    }

    fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        self.try_write(bytes)
    }

    fn send_file(&self, range: &FileRange) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, || sys::send_file(self, range))
    }

    fn finish(&self) -> io::Result<()> {
        sys::shutdown_write(self)
    }
}

/// What one runtime's tasks share.
struct Shared {
    ctx: RefCell<Context>,
    buf: RefCell<Vec<u8>>,
}

pub fn run(listener: std::net::TcpListener, docroot: crate::Docroot, runtimes: u64) -> Served {
    let docroot = Arc::new(docroot);
    let mut threads = Vec::new();
    for _ in 1..runtimes {
        let (listener, docroot) = (listener.try_clone()?, Arc::clone(&docroot));
        threads.push(std::thread::spawn(move || runtime(listener, &docroot)));
    }
    let result = runtime(listener, &docroot);
    for t in threads {
        t.join().map_err(|_| io::Error::other("a runtime panicked"))??;
    }
    result
}

fn runtime(listener: std::net::TcpListener, docroot: &Docroot) -> Served {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let shared = Rc::new(Shared { ctx: RefCell::new(docroot.ctx(4096)), buf: RefCell::new(vec![0; READ_BUF]) });
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::task::spawn_local(serve(stream, Rc::clone(&shared)));
                }
                Err(e) => {
                    crate::warn(format_args!("accept: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    })
}

async fn serve(stream: TcpStream, shared: Rc<Shared>) {
    let mut session = Session::default();
    loop {
        // The borrows end before any await: another task of this runtime may run there.
        let pumped = session.pump(&stream, &mut shared.buf.borrow_mut(), &mut shared.ctx.borrow_mut());
        let ready = match pumped {
            Ok(Pumped::Yielded) => {
                tokio::task::yield_now().await;
                continue;
            }
            Ok(Pumped::Blocked { writing: true }) => stream.writable().await,
            Ok(Pumped::Blocked { writing: false }) if session.linger_over() => return,
            Ok(Pumped::Blocked { writing: false }) if session.lingering() => {
                tokio::time::timeout(LINGER, stream.readable()).await.unwrap_or(Ok(()))
            }
            Ok(Pumped::Blocked { writing: false }) => stream.readable().await,
            Ok(Pumped::Done) | Err(_) => return,
        };
        if ready.is_err() {
            return;
        }
    }
}
