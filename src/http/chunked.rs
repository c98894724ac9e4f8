//! Chunked transfer coding (RFC 9112 §7.1), decoded only to be discarded: a static server
//! reads request bodies to find where the next request starts, never to use them.

use super::parse::ParseError;

/// Longest chunk-size line (size, extensions) or trailer line we accept.
const MAX_LINE: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size; `digits` counts them to reject an empty size.
    Size {
        digits: u8,
    },
    /// `;ext` after the size, up to CRLF.
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Trailer lines after the last chunk; `len` is the current line's length.
    Trailer {
        len: u32,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// Incremental decoder: feed it bytes as they come, in any split.
#[derive(Clone, Copy, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being read, then bytes left in the current chunk.
    remaining: u64,
    line: u32,
    total: u64,
    limit: u64,
}

impl ChunkedDecoder {
    pub fn new(limit: u64) -> Self {
        ChunkedDecoder { state: State::Size { digits: 0 }, remaining: 0, line: 0, total: 0, limit }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume bytes of the body; returns how many were taken (fewer than `buf.len()` only
    /// when the body ended inside `buf`).
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, ParseError> {
        let mut i = 0;
        while i < buf.len() && self.state != State::Done {
            if self.state == State::Data {
                let take = self.remaining.min((buf.len() - i) as u64);
                self.remaining -= take;
                i += take as usize;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = buf[i];
            i += 1;
            self.state = self.step(b)?;
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<State, ParseError> {
        use State::*;
        Ok(match self.state {
            Size { digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                    if digits >= 15 {
                        return Err(ParseError::BadChunk);
                    }
                    self.remaining = self.remaining * 16 + d;
                    Size { digits: digits + 1 }
                }
                _ if digits == 0 => return Err(ParseError::BadChunk),
                b';' | b' ' | b'\t' => {
                    self.line = 0;
                    Ext
                }
                b'\r' => SizeLf,
                b'\n' => self.end_size()?,
                _ => return Err(ParseError::BadChunk),
            },
            Ext => match b {
                b'\r' => SizeLf,
                b'\n' => self.end_size()?,
                0..=8 | 10..=31 | 127 => return Err(ParseError::BadChunk),
                _ => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(ParseError::BadChunk);
                    }
                    Ext
                }
            },
            SizeLf if b == b'\n' => self.end_size()?,
            DataCr if b == b'\r' => DataLf,
            DataLf if b == b'\n' => Size { digits: 0 },
            Trailer { len } => match b {
                b'\r' => TrailerLf { empty: len == 0 },
                b'\n' if len == 0 => Done,
                b'\n' => Trailer { len: 0 },
                0..=8 | 10..=31 | 127 => return Err(ParseError::BadChunk),
                _ if len >= MAX_LINE => return Err(ParseError::BadChunk),
                _ => {
                    // trailers count against the body limit, so they cannot stream forever
                    self.total = self.total.saturating_add(1);
                    if self.total > self.limit {
                        return Err(ParseError::BodyTooLarge);
                    }
                    Trailer { len: len + 1 }
                }
            },
            TrailerLf { empty: true } if b == b'\n' => Done,
            TrailerLf { empty: false } if b == b'\n' => Trailer { len: 0 },
            _ => return Err(ParseError::BadChunk),
        })
    }

    fn end_size(&mut self) -> Result<State, ParseError> {
        if self.remaining == 0 {
            return Ok(State::Trailer { len: 0 });
        }
        self.total = self.total.saturating_add(self.remaining);
        if self.total > self.limit {
            return Err(ParseError::BodyTooLarge);
        }
        Ok(State::Data)
    }
}

/// Bytes of a `Content-Length` body still to skip; returns bytes taken from `buf`.
pub fn skip_length(remaining: &mut u64, buf: &[u8]) -> usize {
    let take = (*remaining).min(buf.len() as u64);
    *remaining -= take;
    take as usize
}

#[cfg(test)]
mod tests {
    //! Table-driven tests for the chunked body decoder: whole, byte by byte and cut in two,
    //! and what follows the body is left intact for the next request.

    use super::{ChunkedDecoder, ParseError};
    use crate::http::test_util::{show, whole};
    use ParseError::*;

    const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

    /// Feed `buf` whole; (bytes taken, done).
    fn feed_whole(body: &[u8], limit: u64) -> Result<(usize, bool), ParseError> {
        let mut d = ChunkedDecoder::new(limit);
        let n = d.feed(body)?;
        assert!(n <= body.len());
        Ok((n, d.is_done()))
    }

    /// Feed `buf` one byte at a time; (bytes taken, done).
    fn feed_bytewise(body: &[u8], limit: u64) -> Result<(usize, bool), ParseError> {
        let mut d = ChunkedDecoder::new(limit);
        let mut taken = 0;
        for b in body {
            if d.is_done() {
                assert_eq!(d.feed(std::slice::from_ref(b))?, 0, "a finished decoder takes nothing");
                continue;
            }
            let n = d.feed(std::slice::from_ref(b))?;
            assert_eq!(n, 1, "a running decoder takes every byte it is given");
            taken += n;
        }
        Ok((taken, d.is_done()))
    }

    #[test]
    fn chunked_valid_bodies() {
        let bodies: &[&[u8]] = &[
            b"0\r\n\r\n",
            b"00\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"5;a=b\r\nhello\r\n0\r\n\r\n",
            b"5;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\n",
            b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
            b"a\r\n0123456789\r\n0\r\n\r\n",
            b"A\r\n0123456789\r\n0\r\n\r\n",
            b"1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n",
            b"1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n",
            b"000005\r\nhello\r\n0\r\n\r\n",
            b"3\r\n\r\n\r\r\n0\r\n\r\n",
            b"0\r\nX-Trailer: 1\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: two words\r\n\r\n",
            b"4\r\n0\r\n\r\r\n0\r\n\r\n",
        ];
        for &body in bodies {
            let buf = [body, NEXT].concat();
            assert_eq!(feed_whole(&buf, 1 << 20), Ok((body.len(), true)), "{}", show(body));
            assert_eq!(feed_bytewise(&buf, 1 << 20), Ok((body.len(), true)), "{}", show(body));
            // every split in two
            for cut in 0..=buf.len() {
                let mut d = ChunkedDecoder::new(1 << 20);
                let a = d.feed(&buf[..cut]).unwrap();
                let b = if d.is_done() { 0 } else { d.feed(&buf[cut..]).unwrap() };
                assert!(d.is_done());
                assert_eq!(a + b, body.len(), "{} cut at {cut}", show(body));
            }
            // and what follows is intact
            assert_eq!(whole(&buf[body.len()..]).target, b"/next");
        }
    }

    #[test]
    fn chunked_body_not_yet_done() {
        for body in
            [&b""[..], b"5", b"5\r", b"5\r\n", b"5\r\nhel", b"5\r\nhello", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n"]
        {
            assert_eq!(feed_whole(body, 1 << 20), Ok((body.len(), false)), "{}", show(body));
            assert_eq!(feed_bytewise(body, 1 << 20), Ok((body.len(), false)), "{}", show(body));
        }
    }

    #[test]
    fn chunked_bad_bodies() {
        let bodies: &[&[u8]] = &[
            b"zz\r\n",
            b"g\r\n",
            b"\r\n",
            b"\n",
            b";a=b\r\n",
            b"-1\r\n",
            b"+1\r\n",
            b" 5\r\n",
            b"0x5\r\n",
            b"5\rX",
            b"5\r\nhelloX",
            b"5\r\nhello\n",
            b"5\r\nhello\r\r",
            b"5\r\nhello world\r\n",
            b"5\r\nhell\r\n0\r\n\r\n",
            b"5;a\x00\r\n",
            b"5;a\x7f\r\n",
            b"0\r\nX: a\x00\r\n\r\n",
            b"0\r\nX: a\r\r\n",
            b"0\r\n\rX",
            // 16 hex digits and more: no chunk is that large, and the size would overflow
            b"0000000000000000\r\n",
            b"10000000000000000\r\n",
            b"ffffffffffffffffffff\r\n",
        ];
        for &body in bodies {
            assert_eq!(feed_whole(body, u64::MAX), Err(BadChunk), "{}", show(body));
            assert_eq!(feed_bytewise(body, u64::MAX), Err(BadChunk), "{}", show(body));
            assert_eq!(BadChunk.status(), 400);
        }
        // 15 hex digits is still a size
        assert_eq!(feed_whole(b"fffffffffffffff\r\n", u64::MAX), Ok((17, false)));
    }

    #[test]
    fn chunked_body_limit() {
        // exactly the limit passes
        assert_eq!(feed_whole(b"a\r\n0123456789\r\n0\r\n\r\n", 10), Ok((20, true)));
        assert_eq!(feed_whole(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10), Ok((25, true)));
        // one more does not, and is refused at the size line, before the data is sent
        for body in [&b"b\r\n"[..], b"B;x=y\r\n", b"5\r\nhello\r\n6\r\n", b"fffffffffffffff\r\n"] {
            assert_eq!(feed_whole(body, 10), Err(BodyTooLarge), "{}", show(body));
            assert_eq!(feed_bytewise(body, 10), Err(BodyTooLarge), "{}", show(body));
        }
        assert_eq!(BodyTooLarge.status(), 413);
        // trailers count too, so they cannot stream forever
        let trailer = [&b"0\r\nX: "[..], &b"v".repeat(100), b"\r\n\r\n"].concat();
        assert_eq!(feed_whole(&trailer, 50), Err(BodyTooLarge));
        assert_eq!(feed_whole(&trailer, 1000), Ok((trailer.len(), true)));
    }
}
