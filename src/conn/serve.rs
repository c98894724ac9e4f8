//! Static-file semantics: method, target → file, content negotiation, conditionals and
//! ranges (RFC 9110 §9, §12, §13, §14), turned into a queued response.

use super::{Context, Outbox};
use crate::files::cache::{Content, Lookup};
use crate::files::{Entry, Rep, TargetError, normalize};
use crate::http::fields::{AcceptEncoding, ByteRange, byte_range, if_range, none_match};
use crate::http::response::{self, Persistence};
use crate::http::{Method, Request, date};

const ALLOW: (&[u8], &[u8]) = (b"Allow", b"GET, HEAD, OPTIONS");

/// Queue the response to `req`; its status.
pub fn respond(req: &Request<'_>, persistence: Persistence, ctx: &mut Context, out: &mut Outbox) -> u16 {
    let head_only = req.method == Method::Head;
    let error = |out: &mut Outbox, status, extra: &[(&[u8], &[u8])], date: &[u8]| {
        response::error(&mut out.bytes, status, date, persistence, head_only, extra);
        status
    };
    match req.method {
        Method::Options => {
            // 204 carries no Content-Length (RFC 9110 §8.6).
            response::start(&mut out.bytes, 204);
            response::field(&mut out.bytes, ALLOW.0, ALLOW.1);
            response::finish(&mut out.bytes, &ctx.date, persistence);
            return 204;
        }
        Method::Other(_) => return error(out, 405, &[ALLOW], &ctx.date),
        Method::Get | Method::Head => {}
    }
    if ctx.site.is_some() {
        return super::hosted::respond(req, persistence, ctx, out);
    }
    let target = match normalize(req.target, &mut ctx.decoded, &mut ctx.path) {
        Ok(t) => t,
        Err(TargetError::BadRequest) => return error(out, 400, &[], &ctx.date),
        Err(TargetError::Hidden) => return error(out, 404, &[], &ctx.date),
    };
    if target.trailing_slash {
        let index: &[u8] = if ctx.path.is_empty() { b"index.html" } else { b"/index.html" };
        ctx.path.extend_from_slice(index);
    }
    match ctx.cache.lookup(&ctx.root, &ctx.path, ctx.now) {
        Lookup::File(entry) => serve_file(req, entry, persistence, &ctx.date, ctx.now, out),
        Lookup::Directory if !target.trailing_slash => {
            let mut location = Vec::with_capacity(ctx.path.len() + 8);
            directory_location(&ctx.path, true, target.query, &mut location);
            error(out, 301, &[(b"Location", &location)], &ctx.date)
        }
        Lookup::Directory | Lookup::NotFound => error(out, 404, &[], &ctx.date),
        Lookup::Forbidden => error(out, 403, &[], &ctx.date),
        Lookup::Failed(_) => error(out, 500, &[], &ctx.date),
    }
}

/// `now` (Unix seconds, the time `date` shows) places a two-digit year in a date field.
pub(super) fn serve_file(
    req: &Request<'_>,
    entry: &Entry,
    persistence: Persistence,
    date: &[u8],
    now: u64,
    out: &mut Outbox,
) -> u16 {
    let head_only = req.method == Method::Head;
    let rep = if entry.has_variants() {
        let mut accept = AcceptEncoding::default();
        req.headers("accept-encoding").for_each(|v| accept.add(v));
        entry.rep(accept.choose(entry.codings()))
    } else {
        &entry.identity
    };
    if not_modified(req, rep, now) {
        response::start(&mut out.bytes, 304);
        rep.write_fields(entry.has_variants(), &mut out.bytes);
        response::field_u64(&mut out.bytes, b"Content-Length", rep.size);
        response::finish(&mut out.bytes, date, persistence);
        return 304;
    }
    let range = match req.header("range") {
        // Range applies to GET only (RFC 9110 §14.2).
        Some(r)
            if req.method == Method::Get && req.headers("if-range").all(|v| if_range(v, &rep.etag, rep.mtime, now)) =>
        {
            byte_range(r, rep.size)
        }
        _ => ByteRange::Whole,
    };
    let (status, first, len) = match range {
        ByteRange::Whole => {
            out.bytes.extend_from_slice(&rep.head_200);
            response::finish(&mut out.bytes, date, persistence);
            (200, 0, rep.size)
        }
        ByteRange::Part(first, last) => {
            let len = last - first + 1;
            response::start(&mut out.bytes, 206);
            response::field(&mut out.bytes, b"Content-Type", entry.content_type.as_bytes());
            response::field_u64(&mut out.bytes, b"Content-Length", len);
            out.bytes.extend_from_slice(b"Content-Range: bytes ");
            for (n, sep) in [(first, b'-'), (last, b'/'), (rep.size, b'\r')] {
                response::push_u64(&mut out.bytes, n);
                out.bytes.push(sep);
            }
            out.bytes.push(b'\n');
            rep.write_fields(entry.has_variants(), &mut out.bytes);
            response::finish(&mut out.bytes, date, persistence);
            (206, first, len)
        }
        ByteRange::Unsatisfiable => {
            let mut value = b"bytes */".to_vec();
            response::push_u64(&mut value, rep.size);
            response::error(&mut out.bytes, 416, date, persistence, head_only, &[(b"Content-Range", &value)]);
            return 416;
        }
    };
    if !head_only {
        match &rep.content {
            Content::Bytes(body) => out.bytes.extend_from_slice(&body[first as usize..(first + len) as usize]),
            Content::File(file) => out.push_file(file, first, len),
        }
    }
    status
}

/// `If-None-Match` when present, else `If-Modified-Since` (RFC 9110 §13.2.2).
fn not_modified(req: &Request<'_>, rep: &Rep, now: u64) -> bool {
    let mut inm = req.headers("if-none-match").peekable();
    if inm.peek().is_some() {
        return inm.any(|v| none_match(v, &rep.etag));
    }
    // an invalid date, one out of range included, is ignored (RFC 9110 §13.1.3)
    req.header("if-modified-since").and_then(|v| date::parse(v, now)).is_some_and(|since| rep.mtime <= since)
}

/// Where a redirect of directory `path` (decoded, no leading `/`) leads: with or without
/// its trailing `/`, the query kept.
pub(super) fn directory_location(path: &[u8], slash: bool, query: Option<&[u8]>, location: &mut Vec<u8>) {
    location.clear();
    location.push(b'/');
    percent_encode(path, location);
    if slash {
        location.push(b'/');
    }
    if let Some(q) = query {
        location.push(b'?');
        location.extend_from_slice(q);
    }
}

/// Percent-encode a decoded path for a `Location` field: everything outside pchar and `/`.
fn percent_encode(path: &[u8], out: &mut Vec<u8>) {
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                b"0123456789ABCDEF"[(b >> 4) as usize],
                b"0123456789ABCDEF"[(b & 15) as usize],
            ]);
        }
    }
}
