//! Bytes and file ranges waiting to go out on one connection, in order.

use std::collections::VecDeque;
use std::fs::File;
use std::rc::Rc;

/// A range of an open file to send after `at` bytes of the byte stream.
#[derive(Debug)]
pub struct FileRange {
    at: usize,
    pub file: Rc<File>,
    pub offset: u64,
    pub len: u64,
}

/// Response bytes (heads, small bodies) in one contiguous buffer, so that everything
/// between two file ranges leaves in one write; large bodies as file ranges.
#[derive(Default)]
pub struct Outbox {
    pub bytes: Vec<u8>,
    sent: usize,
    files: VecDeque<FileRange>,
    /// Requests it answers, for whoever times them once all of it has gone: kept here
    /// rather than beside every connection, since only connections with output have one.
    pub responses: u32,
}

/// The next piece to send.
#[derive(Debug)]
pub enum Segment<'a> {
    Bytes(&'a [u8]),
    File(&'a FileRange),
}

impl Outbox {
    pub fn push_file(&mut self, file: &Rc<File>, offset: u64, len: u64) {
        if len > 0 {
            self.files.push_back(FileRange { at: self.bytes.len(), file: Rc::clone(file), offset, len });
        }
    }

    /// Bytes queued and not yet sent, file ranges included.
    pub fn queued_len(&self) -> u64 {
        (self.bytes.len() - self.sent) as u64 + self.files.iter().map(|f| f.len).sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.sent == self.bytes.len() && self.files.is_empty()
    }

    /// Enough queued that parsing more pipelined requests should wait for the socket.
    pub fn is_full(&self) -> bool {
        self.bytes.len() - self.sent >= 256 * 1024 || self.files.len() >= 16
    }

    pub fn next_segment(&self) -> Option<Segment<'_>> {
        let stop = self.files.front().map_or(self.bytes.len(), |f| f.at);
        if self.sent < stop {
            Some(Segment::Bytes(&self.bytes[self.sent..stop]))
        } else {
            self.files.front().map(Segment::File)
        }
    }

    /// `n` bytes of the chunk `next_segment` gave went out.
    pub fn advance(&mut self, n: usize) {
        let stop = self.files.front().map_or(self.bytes.len(), |f| f.at);
        if self.sent < stop {
            self.sent += n;
        } else if let Some(f) = self.files.front_mut() {
            f.offset += n as u64;
            f.len -= n as u64;
            if f.len == 0 {
                self.files.pop_front();
            }
        }
        if self.is_empty() {
            // The buffer starts over; `answers` stays for whoever times them.
            self.bytes.clear();
            self.sent = 0;
        }
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.sent = 0;
        self.files.clear();
        self.responses = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(out: &mut Outbox, step: usize) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(chunk) = out.next_segment() {
            let (desc, len) = match chunk {
                Segment::Bytes(b) => (String::from_utf8_lossy(&b[..b.len().min(step)]).into_owned(), b.len().min(step)),
                Segment::File(f) => {
                    (format!("file@{}+{}", f.offset, f.len.min(step as u64)), f.len.min(step as u64) as usize)
                }
            };
            seen.push(desc);
            out.advance(len);
        }
        seen
    }

    #[test]
    fn bytes_and_files_interleave_in_order() {
        let file = Rc::new(File::open("/dev/null").unwrap());
        let mut out = Outbox::default();
        out.bytes.extend_from_slice(b"head1");
        out.push_file(&file, 10, 4);
        out.bytes.extend_from_slice(b"head2");
        assert_eq!(drain(&mut out, 3), ["hea", "d1", "file@10+3", "file@13+1", "hea", "d2"]);
        assert!(out.is_empty());
    }
}
