//! What the fake servers of several test files share.

use std::io::Read;
use std::net::TcpStream;

/// Read one request head; false at EOF.
pub fn read_head(s: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => got.push(b[0]),
            _ => return false,
        }
    }
    true
}
