//! What each of the course's models (`c10k-models`) must show beyond serving like the
//! server: `select` refuses a descriptor past FD_SETSIZE cleanly, `fork` reaps its children
//! and refuses beyond `--max-procs`, `thread` beyond `--max-threads`, `iterative` serves
//! one client at a time, and on every model a client killed mid-download harms no other.
mod common;

use common::{Reader, Response, Server, TempDir, pattern};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

for_each_model!(; a_client_killed_mid_download_harms_no_other);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const INDEX: &[u8] = b"<h1>models</h1>\n";

fn site() -> TempDir {
    let root = TempDir::new("models");
    root.write("index.html", INDEX);
    root
}

fn start(model: &'static str, root: &TempDir, extra: &[&str]) -> Server {
    Server::start_model(model, root.path(), extra)
}

/// A keep-alive connection that has had one request answered.
fn held(server: &Server) -> (TcpStream, Reader) {
    let mut s = server.connect();
    s.write_all(GET).unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    let resp = r.response(false).expect("a response");
    assert_ok(&resp);
    (s, r)
}

fn assert_ok(r: &Response) {
    assert_eq!((r.status, r.body.as_slice()), (200, INDEX));
}

/// A connection the server answered with 503 and closed.
#[track_caller]
fn assert_refused(s: &mut TcpStream) {
    s.write_all(GET).unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    let resp = r.response(false).expect("a 503 before the close");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("Connection"), Some("close"));
    assert!(r.closed(), "the refused connection is closed");
}

/// The test process needs more than 1,024 descriptors of its own to reach select's wall.
fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert!(hard > 1100, "the hard RLIMIT_NOFILE ({hard}) is too low for this test");
}

#[test]
fn select_refuses_a_descriptor_past_fd_setsize_and_serves_on() {
    raise_nofile();
    let root = site();
    let server = start("select", &root, &[]);
    let mut conns = Vec::new();
    // The server holds stdio, the listener and the root (and a cached file) below its
    // connections' descriptors, so its 1,024th descriptor comes before our 1,024th.
    let refused = loop {
        assert!(conns.len() < 1100, "no refusal after {} connections", conns.len());
        let mut s = server.connect();
        s.write_all(GET).unwrap();
        let mut r = Reader::new(s.try_clone().unwrap());
        let resp = r.response(false).expect("an answer: 200, or 503 at the wall");
        if resp.status == 503 {
            assert_eq!(resp.header("Connection"), Some("close"));
            assert!(r.closed(), "the refused connection is closed");
            break conns.len();
        }
        assert_ok(&resp);
        conns.push((s, r));
    };
    assert!((1010..1021).contains(&refused), "refused after {refused} connections");
    let line = server.wait_line_raw(Duration::from_secs(5), |l| l.contains("refusing connections"));
    assert!(line.contains("descriptor 1024 is past select's FD_SETSIZE (1024)"), "{line}");
    // Everything held still works, and a descriptor freed below the wall is used again.
    for (s, r) in conns.iter_mut().step_by(100) {
        s.write_all(GET).unwrap();
        assert_ok(&r.response(false).unwrap());
    }
    conns.truncate(conns.len() - 5);
    std::thread::sleep(Duration::from_millis(200));
    let (_s, _r) = held(&server);
}

#[test]
fn fork_reaps_every_child_and_refuses_beyond_max_procs() {
    let root = site();
    let server = start("fork", &root, &["--max-procs", "3"]);
    for _ in 0..200 {
        let r = server.get("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_ok(&r);
    }
    // Each child exits once its client is gone; the parent reaps it within its 100 ms poll.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children(server.pid()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(children(server.pid()), Vec::<char>::new(), "children left (states listed; Z is a zombie)");

    let held: Vec<_> = (0..3).map(|_| held(&server)).collect();
    assert_eq!(children(server.pid()).len(), 3);
    assert_refused(&mut server.connect());
    let line = server.wait_line_raw(Duration::from_secs(5), |l| l.contains("refusing connections"));
    assert!(line.contains("3 children serve already (--max-procs 3)"), "{line}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children(server.pid()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_s, _r) = crate::held(&server);
}

#[test]
fn thread_refuses_beyond_max_threads() {
    let root = site();
    let server = start("thread", &root, &["--max-threads", "2"]);
    let held: Vec<_> = (0..2).map(|_| held(&server)).collect();
    assert_refused(&mut server.connect());
    let line = server.wait_line_raw(Duration::from_secs(5), |l| l.contains("refusing connections"));
    assert!(line.contains("2 threads serve already (--max-threads 2)"), "{line}");
    drop(held);
    // The threads see the close and end; then there is room again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = server.connect();
        s.write_all(GET).unwrap();
        let resp = Reader::new(s.try_clone().unwrap()).response(false).unwrap();
        if resp.status == 200 || Instant::now() > deadline {
            assert_ok(&resp);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn iterative_serves_a_second_client_once_the_first_closes() {
    let root = site();
    let server = start("iterative", &root, &[]);
    let first = held(&server);
    let mut second = server.connect();
    second.write_all(GET).unwrap();
    // The server is in a blocking read on the first connection: the second waits in the
    // backlog, unanswered, however long the first stays.
    second.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut byte = [0u8; 1];
    let waited = second.read(&mut byte).map(|_| ()).unwrap_err();
    assert!(matches!(waited.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{waited}");
    drop(first);
    second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_ok(&Reader::new(second).response(false).expect("served once the first closed"));
}

/// One client resets its connection in the middle of a 16 MiB download; another keeps
/// being served throughout, and the next download is whole.
fn a_client_killed_mid_download_harms_no_other() {
    let root = site();
    let big = pattern(16 << 20);
    root.write("big.bin", &big);
    let server = Server::start(root.path(), &[]);
    let (mut other, mut other_r) = held(&server);
    for _ in 0..3 {
        let mut victim = server.connect();
        victim.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut part = vec![0; 256 << 10];
        victim.read_exact(&mut part).unwrap();
        // SO_LINGER 0: the close resets the connection while the server is still sending.
        nix::sys::socket::setsockopt(
            &victim,
            nix::sys::socket::sockopt::Linger,
            &nix::libc::linger { l_onoff: 1, l_linger: 0 },
        )
        .unwrap();
        drop(victim);
        other.write_all(GET).unwrap();
        assert_ok(&other_r.response(false).expect("the other client is still served"));
    }
    let mut s = server.connect();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let r = Reader::new(s).response(false).expect("a whole download after the resets");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the download after the resets differs");
}

/// The state letter of each child of `pid` (`Z`: a zombie).
fn children(pid: u32) -> Vec<char> {
    let mut states = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `PID (COMM) STATE PPID …`; COMM may hold spaces, so read after its last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let (Some(state), Some(ppid)) = (fields.next(), fields.next()) else { continue };
        if ppid.parse() == Ok(pid) {
            states.push(state.chars().next().unwrap());
        }
    }
    states
}
