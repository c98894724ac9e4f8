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
                    self.total += 1;
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
