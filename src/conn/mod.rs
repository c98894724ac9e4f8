//! The connection state machine: bytes in, responses out, no I/O. A driver feeds it what
//! arrived and sends what it queued; it says when to stop reading and when to close.
#![forbid(unsafe_code)]

mod hosted;
pub mod outbox;
mod serve;

use crate::files::{Cache, Root};
use crate::http::chunked::{ChunkedDecoder, skip_length};
use crate::http::response::{self, Persistence};
use crate::http::{BodyFraming, Limits, ParseError, Request, Status, parse};
use crate::stats::ShardStats;
pub use outbox::{Offer, Outbox, Outgoing, Segment};

/// Everything a shard serves from, shared by its connections.
pub struct Context {
    pub root: Root,
    pub cache: Cache,
    pub limits: Limits,
    /// Current `Date` value and the second it names; the shard refreshes both.
    pub date: [u8; crate::http::date::LEN],
    pub now: u64,
    /// Every answer closes its connection (`Connection: close`): the shard is draining.
    pub draining: bool,
    /// Where this shard counts what it does (`ShardStats::detached` until the master's
    /// shared block is set).
    pub stats: &'static ShardStats,
    /// With an access log: every answer queued, in order, for the core to log once its
    /// bytes have gone (`None`: no access log, nothing recorded).
    pub records: Option<Vec<LogRecord>>,
    /// With a configuration: the hosts and rules (`None`: a flag-only server, which
    /// answers as it always did).
    pub site: Option<Box<crate::site::Site>>,
    /// The connection the request being answered came on, when there is a site.
    pub via: crate::site::Via,
    decoded: Vec<u8>,
    path: Vec<u8>,
}

impl Context {
    pub fn new(root: Root, cache: Cache, limits: Limits) -> Context {
        let mut ctx = Context {
            root,
            cache,
            limits,
            date: [0; 29],
            now: 0,
            draining: false,
            stats: ShardStats::detached(),
            records: None,
            site: None,
            via: crate::site::Via::default(),
            decoded: Vec::new(),
            path: Vec::new(),
        };
        ctx.tick(0);
        ctx
    }

    /// Set the clock (seconds since the epoch); cheap when the second has not changed.
    pub fn tick(&mut self, now: u64) {
        if now != self.now || self.date[0] == 0 {
            self.now = now;
            self.date = crate::http::date::format(now);
        }
    }
}

/// What the access log needs of one answer, taken when it is queued: the request line
/// (`GET / HTTP/1.1`, or what came instead of one), `Referer` and `User-Agent`, in one
/// allocation.
#[derive(Debug)]
pub struct LogRecord {
    pub status: u16,
    /// Bytes queued for it (head and body).
    pub len: u64,
    text: Box<[u8]>,
    request_end: usize,
    referer_end: usize,
}

/// A request body being read only to be thrown away; the head waits in a copy of its own
/// (requests with bodies are rare here) and is answered once the body has ended.
struct Body {
    head: Box<[u8]>,
    framing: Discard,
}

enum Discard {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// One connection's protocol state. Idle, it owns no heap memory.
#[derive(Default)]
pub struct Conn {
    /// Input held between reads; `None` unless a request is cut off or waits unparsed.
    held: Option<Box<Held>>,
    /// What the socket would not take yet.
    pub out: Option<Box<Outgoing>>,
    /// Close once everything queued has been sent.
    pub closing: bool,
    /// Requests answered so far (wrapping): tells a shard that a new request began.
    pub responses: u32,
    /// The number of the listener it came on (fits beside `closing`, costing no byte).
    pub listener: u8,
}

/// What a connection holds of its input between reads, in one allocation that only a
/// connection mid-request (or with requests waiting behind its output) has: every
/// connection of a shard carries the pointer, so an idle one pays 8 bytes for both parts
/// instead of a `Vec`'s 24 and a pointer more. Never empty: `tidy` lets an emptied one go.
#[derive(Default)]
struct Held {
    /// The unparsed tail of the input: a partial request, or requests held back while the
    /// socket was full.
    pending: Vec<u8>,
    body: Option<Body>,
}

impl Conn {
    /// A new connection on listener number `listener` (a shard has at most 256).
    pub fn on_listener(listener: usize) -> Conn {
        Conn { listener: listener as u8, ..Conn::default() }
    }

    /// Answer the complete requests at the start of `input`, at most `max_answers` of
    /// them, queueing responses in `out`; returns how many bytes were used. Stops early
    /// when `out` is full or the connection is to close. `held` is left as it is, even if
    /// emptied, for `receive` to refill.
    fn answer_all(&mut self, input: &[u8], ctx: &mut Context, out: &mut Outbox, max_answers: u32) -> usize {
        let mut pos = 0;
        let first = self.responses;
        while !self.closing && !out.is_full() && self.responses.wrapping_sub(first) < max_answers {
            if let Some(body) = self.held.as_mut().and_then(|held| held.body.as_mut()) {
                let rest = &input[pos..];
                let discarded = match &mut body.framing {
                    Discard::Length(left) => Ok((skip_length(left, rest), *left == 0)),
                    Discard::Chunked(dec) => dec.feed(rest).map(|n| (n, dec.is_done())),
                };
                match discarded {
                    Ok((n, done)) => {
                        pos += n;
                        if !done {
                            break;
                        }
                        let body = self.take_body();
                        if let Ok(Status::Complete(req, _)) = parse(&body.head, &ctx.limits) {
                            self.answer(&req, ctx, out);
                        }
                    }
                    Err(e) => {
                        let body = self.take_body();
                        self.refuse(e, false, first_line(&body.head), ctx, out);
                    }
                }
                continue;
            }
            if pos == input.len() {
                break;
            }
            match parse(&input[pos..], &ctx.limits) {
                Ok(Status::Partial) => break,
                Err(e) => self.refuse(e, false, first_line(&input[pos..]), ctx, out),
                Ok(Status::Complete(req, n)) => {
                    let head = &input[pos..pos + n];
                    pos += n;
                    match req.body {
                        BodyFraming::None => self.answer(&req, ctx, out),
                        BodyFraming::Length(len) if len > ctx.limits.max_body => {
                            let head_only = req.method == crate::http::Method::Head;
                            self.refuse(ParseError::BodyTooLarge, head_only, req.line, ctx, out)
                        }
                        BodyFraming::Length(len) => {
                            self.held.get_or_insert_default().body =
                                Some(Body { head: head.into(), framing: Discard::Length(len) })
                        }
                        BodyFraming::Chunked => {
                            let dec = ChunkedDecoder::new(ctx.limits.max_body);
                            self.held.get_or_insert_default().body =
                                Some(Body { head: head.into(), framing: Discard::Chunked(dec) })
                        }
                    }
                }
            }
        }
        if self.closing { input.len() } else { pos }
    }

    /// `answer_all` over the input held followed by `data`: the unparsed rest is held, copied
    /// only when it must outlive `data` (and input held and used up gives its memory back:
    /// an idle connection owns none). Returns how many bytes were left unparsed.
    pub fn receive(&mut self, data: &[u8], ctx: &mut Context, out: &mut Outbox, max_answers: u32) -> usize {
        let mut pending = self.held.as_mut().map(|held| std::mem::take(&mut held.pending)).unwrap_or_default();
        let tail = if pending.is_empty() {
            let used = self.answer_all(data, ctx, out, max_answers);
            if used < data.len() {
                pending = data[used..].to_vec();
            }
            data.len() - used
        } else {
            pending.extend_from_slice(data);
            let used = self.answer_all(&pending, ctx, out, max_answers);
            pending.drain(..used);
            pending.len()
        };
        if tail > 0 {
            self.held.get_or_insert_default().pending = pending;
        }
        self.tidy();
        tail
    }

    /// Hold `data`, after the input held already, unparsed for a later `receive`.
    pub fn hold(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.held.get_or_insert_default().pending.extend_from_slice(data);
        }
    }

    /// Bytes of input held unparsed.
    pub fn held_len(&self) -> usize {
        self.held.as_ref().map_or(0, |held| held.pending.len())
    }

    /// Whether a request was cut off (input that is not yet a whole request, or a body
    /// being read) or requests wait unparsed: whether the connection holds input at all.
    pub fn mid_request(&self) -> bool {
        self.held.is_some()
    }

    fn take_body(&mut self) -> Body {
        self.held.as_mut().and_then(|held| held.body.take()).expect("body in progress")
    }

    /// Let `held` go once it holds nothing.
    fn tidy(&mut self) {
        if self.held.as_ref().is_some_and(|held| held.pending.is_empty() && held.body.is_none()) {
            self.held = None;
        }
    }

    fn answer(&mut self, req: &Request<'_>, ctx: &mut Context, out: &mut Outbox) {
        let persistence = match (req.keep_alive, req.version) {
            _ if ctx.draining => Persistence::Close,
            (false, _) => Persistence::Close,
            (true, crate::http::Version::Http10) => Persistence::KeepAlive,
            (true, crate::http::Version::Http11) => Persistence::Default,
        };
        self.closing |= persistence == Persistence::Close;
        self.responses = self.responses.wrapping_add(1);
        let queued = ctx.records.is_some().then(|| out.queued_len());
        let status = serve::respond(req, persistence, ctx, out);
        ctx.stats.response(status);
        if let (Some(records), Some(before)) = (&mut ctx.records, queued) {
            let field = |name| req.header(name).unwrap_or_default();
            let len = out.queued_len() - before;
            let record = LogRecord::new(status, len, req.line, field("referer"), field("user-agent"));
            out.note_record(record.size());
            records.push(record);
        }
    }

    /// Answer a request that cannot be read, then close: its framing is in doubt.
    /// `line` is the request line, or what came instead of one, for the access log.
    fn refuse(&mut self, e: ParseError, head_only: bool, line: &[u8], ctx: &mut Context, out: &mut Outbox) {
        self.close_with(e.status(), head_only, line, ctx, out);
    }

    /// The request in progress ran out of time: whatever it sent is dropped, and it is
    /// told 408 and closed.
    pub fn timed_out(&mut self, ctx: &mut Context, out: &mut Outbox) {
        *self = Conn::default();
        self.close_with(408, false, b"-", ctx, out);
    }

    /// Queue the error `status` with `Connection: close`, counted as a request that could
    /// not be read.
    fn close_with(&mut self, status: u16, head_only: bool, line: &[u8], ctx: &mut Context, out: &mut Outbox) {
        let before = out.queued_len();
        response::error(&mut out.bytes, status, &ctx.date, Persistence::Close, head_only, &[]);
        self.closing = true;
        ctx.stats.response(status);
        ctx.stats.parse_error(status);
        if let Some(records) = &mut ctx.records {
            let len = out.queued_len() - before;
            let record = LogRecord::without_request(status, len, line);
            out.note_record(record.size());
            records.push(record);
        }
    }
}

impl LogRecord {
    pub fn new(status: u16, len: u64, request: &[u8], referer: &[u8], user_agent: &[u8]) -> LogRecord {
        let text = [request, referer, user_agent].concat().into_boxed_slice();
        LogRecord { status, len, text, request_end: request.len(), referer_end: request.len() + referer.len() }
    }

    /// An answer to no readable request (`line` is what came instead, as far as known).
    pub fn without_request(status: u16, len: u64, line: &[u8]) -> LogRecord {
        LogRecord::new(status, len, line, b"", b"")
    }

    /// What it holds in memory, its text and itself.
    pub fn size(&self) -> usize {
        self.text.len() + size_of::<LogRecord>()
    }

    pub fn request(&self) -> &[u8] {
        &self.text[..self.request_end]
    }

    pub fn referer(&self) -> &[u8] {
        &self.text[self.request_end..self.referer_end]
    }

    pub fn user_agent(&self) -> &[u8] {
        &self.text[self.referer_end..]
    }
}

/// The first line of `input` without its ending, at most 1 KiB of it.
fn first_line(input: &[u8]) -> &[u8] {
    let line = input.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    &line[..line.len().min(1024)]
}
