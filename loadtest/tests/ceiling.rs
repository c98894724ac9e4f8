//! c10k-ceiling, the least-work responder `make loadtest` divides by: it must answer every
//! request, pipelined or split, with the whole file, or the ratios measure nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Ceiling {
    child: Child,
    addr: String,
}

impl Ceiling {
    fn start(body: &[u8], tag: &str) -> Ceiling {
        let file = std::env::temp_dir().join(format!("c10k-ceiling-{}-{tag}", std::process::id()));
        std::fs::write(&file, body).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_c10k-ceiling"))
            .args(["--listen", "127.0.0.1:0", "--threads", "1", "--file"])
            .arg(&file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("c10k-ceiling runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.split("http://").nth(1).and_then(|r| r.split(' ').next()).expect(&line).to_string();
        Ceiling { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read `n` whole responses; each must carry `body` and say its length.
fn read_responses(stream: &mut TcpStream, n: usize, body: &[u8]) {
    let mut reader = BufReader::new(stream);
    for i in 0..n {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            reader.read_exact(&mut byte).unwrap_or_else(|e| panic!("response {i}: {e}"));
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())), "{head}");
        let mut got = vec![0u8; body.len()];
        reader.read_exact(&mut got).unwrap();
        assert!(got == body, "response {i}: the body differs from the file");
    }
}

#[test]
fn pipelined_and_split_requests_each_get_the_file() {
    let body = b"<html>ceiling</html>\n";
    let ceiling = Ceiling::start(body, "small");
    let mut stream = ceiling.connect();
    let request = "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
    // 40 in one write: more than one batch of copies, answered in order.
    stream.write_all(request.repeat(40).as_bytes()).unwrap();
    read_responses(&mut stream, 40, body);
    // A terminator split across writes still counts once.
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"\n").unwrap();
    read_responses(&mut stream, 1, body);
    // Nothing more was owed.
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(stream.read(&mut [0u8; 1]).is_err(), "an answer nobody asked for");
}

#[test]
fn a_large_body_survives_a_full_socket() {
    let body: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8).collect();
    let ceiling = Ceiling::start(&body, "large");
    let mut stream = ceiling.connect();
    stream.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // The client reads nothing for a while: the socket fills and the rest waits for EPOLLOUT.
    std::thread::sleep(Duration::from_millis(200));
    read_responses(&mut stream, 2, &body);
}
