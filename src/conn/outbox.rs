//! Bytes and file ranges waiting to go out on one connection, in order: built in an
//! `Outbox`, then queued on the connection as `Outgoing`, which is lent to the driver while
//! a send of its bytes is in flight.

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
    /// Bytes of access-log records kept for its answers until their last byte goes: part
    /// of what the connection holds, so they count toward `OUTPUT_BOUND`.
    records: usize,
}

/// Responses queued on one connection, and their access-log records, past which no more
/// pipelined requests are answered until the socket takes some: part of a connection's
/// memory budget (see `lifecycle::INPUT_HELD`). 28 KiB holds seventeen answers of the
/// demo's index.html, so the 16 a `make loadtest` pipelining client sends at once still go
/// out in one write.
pub const OUTPUT_BOUND: usize = 28 * 1024;

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

    /// Replace the bytes `range` (queued, not sent) with `with`; file ranges queued after
    /// them move with them.
    pub fn splice(&mut self, range: std::ops::Range<usize>, with: &[u8]) {
        let end = range.end;
        let grown = with.len() as isize - range.len() as isize;
        self.bytes.splice(range, with.iter().copied());
        for file in self.files.iter_mut().filter(|f| f.at >= end) {
            file.at = file.at.wrapping_add_signed(grown);
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
        self.bytes.len() - self.sent + self.records >= OUTPUT_BOUND || self.files.len() >= 16
    }

    /// An access-log record of `len` bytes is kept for an answer queued here.
    pub fn note_record(&mut self, len: usize) {
        self.records += len;
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
            // The buffer starts over, and every record went with its answer; `responses`
            // stays for whoever times them.
            self.bytes.clear();
            self.sent = 0;
            self.records = 0;
        }
    }

    /// Bytes the buffer has room for without growing.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.sent = 0;
        self.files.clear();
        self.responses = 0;
        self.records = 0;
    }
}

/// A connection's queued output. A driver whose kernel reads the bytes after the call that
/// handed them out has returned (io_uring) takes them on loan (`Offer::lend`), and until
/// `give_back` they are the kernel's: nothing here changes or frees them meanwhile. Every
/// way to change one checks that it is not lent (a panic, in every build, is the answer
/// to a broken contract; quietly reusing the memory would be worse), and one dropped while
/// lent, as when a shard unwinds, leaks its bytes rather than free them under the kernel.
#[derive(Default)]
pub struct Outgoing {
    out: Outbox,
    lent: bool,
}

/// What a send may take from a connection's output: its next segment, sent at once
/// (`segment`), or lent to the kernel until the send completes (`lend`).
pub struct Offer<'a>(&'a mut Outgoing);

impl std::fmt::Debug for Offer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Offer").field(&self.segment()).finish()
    }
}

impl<'a> Offer<'a> {
    /// An offer of what `out` holds, unless it holds nothing.
    pub fn new(out: &'a mut Outgoing) -> Option<Offer<'a>> {
        (!out.out.is_empty()).then_some(Offer(out))
    }

    /// The next segment, for a send made before the driver returns to the core.
    pub fn segment(&self) -> Segment<'_> {
        self.0.out.next_segment().expect("an offer holds a segment")
    }

    /// The next segment, lent until the send's outcome is reported (`Outgoing::give_back`
    /// through the core): the bytes stay put and unchanged while the kernel reads them.
    pub fn lend(self) -> Segment<'a> {
        self.0.lent = true;
        self.0.out.next_segment().expect("an offer holds a segment")
    }
}

impl Outgoing {
    /// Queue what `built` holds, leaving `built` with this one's old (empty) buffers for
    /// the next answers, so the bytes stay put and nothing is copied.
    pub fn fill_from(&mut self, built: &mut Outbox) {
        assert!(!self.lent, "output filled while lent to the kernel");
        std::mem::swap(&mut self.out, built);
    }

    /// A send ended (and its loan, if it was lent): `sent` bytes of the segment went out (0
    /// when the send failed).
    pub fn give_back(&mut self, sent: usize) {
        self.lent = false;
        self.out.advance(sent);
    }

    pub fn is_lent(&self) -> bool {
        self.lent
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// At `OUTPUT_BOUND`: the client is not taking what it asked for.
    pub fn is_full(&self) -> bool {
        self.out.is_full()
    }

    /// What it holds against the connection's budget: bytes unsent and log records.
    pub fn held_bytes(&self) -> usize {
        self.out.bytes.len() - self.out.sent + self.out.records
    }

    /// Responses it holds (see `Outbox::responses`).
    pub fn responses(&self) -> u32 {
        self.out.responses
    }

    pub fn set_responses(&mut self, responses: u32) {
        assert!(!self.lent, "output changed while lent to the kernel");
        self.out.responses = responses;
    }

    /// Empty it for reuse; how much its byte buffer holds (for a pool to judge).
    pub fn clear(&mut self) -> usize {
        assert!(!self.lent, "output recycled while lent to the kernel");
        self.out.clear();
        self.out.capacity()
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        if self.lent {
            std::mem::forget(std::mem::take(&mut self.out.bytes));
        }
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

    fn lent_with(bytes: &[u8]) -> Outgoing {
        let mut built = Outbox::default();
        built.bytes.extend_from_slice(bytes);
        let mut out = Outgoing::default();
        out.fill_from(&mut built);
        assert!(matches!(Offer::new(&mut out).map(Offer::lend), Some(Segment::Bytes(b)) if b == bytes));
        out
    }

    #[test]
    #[should_panic(expected = "filled while lent")]
    fn lent_output_cannot_be_refilled() {
        lent_with(b"HTTP/1.1 200 OK\r\n").fill_from(&mut Outbox::default());
    }

    #[test]
    #[should_panic(expected = "recycled while lent")]
    fn lent_output_cannot_be_recycled() {
        lent_with(b"HTTP/1.1 200 OK\r\n").clear();
    }

    #[test]
    fn a_loan_lasts_until_given_back_and_a_segment_sent_at_once_is_none() {
        let mut out = lent_with(b"abc");
        out.give_back(1);
        assert!(!out.is_lent());
        assert!(matches!(Offer::new(&mut out).unwrap().segment(), Segment::Bytes(b"bc")));
        assert!(!out.is_lent(), "a segment sent at once is no loan");
        out.give_back(2);
        assert!(Offer::new(&mut out).is_none());
        assert!(out.is_empty());
        assert!(out.clear() >= 3, "the buffer is kept for reuse");
    }
}
