//! Answers on a server with a configuration: the virtual host (Host and SNI must agree,
//! 421 otherwise), a listener's redirect to HTTPS, redirect rules, index names, the
//! trailing-slash policy, directory listings, the fallback, error pages and per-path
//! header rules. A flag-only server never comes here (`serve::respond`), so none of it
//! costs that server anything.

use super::serve::{directory_location, serve_file};
use super::{Context, Outbox};
use crate::files::cache::{Content, Lookup};
use crate::files::listing::{self, ListingFormat};
use crate::files::{Cache, Root, Target, TargetError, normalize};
use crate::http::response::{self, Persistence};
use crate::http::{Method, Request};
use crate::site::{HostSpec, Site, TrailingSlash, Via, headers};

/// What answering needs besides the request: the request's host, its files, the clock.
struct Answer<'a> {
    req: &'a Request<'a>,
    persistence: Persistence,
    spec: &'a HostSpec,
    root: &'a Root,
    cache: &'a mut Cache,
    date: &'a [u8],
    now: u64,
}

pub fn respond(req: &Request<'_>, persistence: Persistence, ctx: &mut Context, out: &mut Outbox) -> u16 {
    let mut site = ctx.site.take().expect("hosted answers need a site");
    let status = answer(req, persistence, ctx, &mut site, out);
    ctx.site = Some(site);
    status
}

fn answer(req: &Request<'_>, persistence: Persistence, ctx: &mut Context, site: &mut Site, out: &mut Outbox) -> u16 {
    let head_only = req.method == Method::Head;
    let Context { root, cache, decoded, path, date, now, via, .. } = ctx;
    let error = |out: &mut Outbox, status, extra: &[(&[u8], &[u8])]| {
        response::error(&mut out.bytes, status, date.as_slice(), persistence, head_only, extra);
        status
    };
    let Site { spec: site_spec, extra, listeners, scratch } = site;
    let host_field = req.header("host");
    if !host_name(host_field, &mut scratch.name) {
        return error(out, 400, &[]);
    }
    let host = match host_field {
        Some(_) => site_spec.host_for(&scratch.name),
        None => site_spec.host_for(&via.sni),
    };
    // RFC 9110 §7.4: a connection whose certificate was chosen for one name may not be used
    // for a host that name does not serve.
    if via.tls && !via.sni.is_empty() && host_field.is_some() && site_spec.host_for(&via.sni) != host {
        return error(out, 421, &[]);
    }
    if let Some(port) = listeners.get(via.listener).and_then(|l| l.redirect_to_https) {
        let location = &mut scratch.location;
        location.clear();
        location.extend_from_slice(b"https://");
        location.extend_from_slice(if scratch.name.is_empty() { b"localhost" } else { &scratch.name });
        if port != 443 {
            location.push(b':');
            response::push_u64(location, u64::from(port));
        }
        location.extend_from_slice(origin_form(req.target));
        return error(out, 301, &[(b"Location", location)]);
    }
    let spec = &site_spec.hosts[host];
    let (root, cache) = match host {
        0 => (&*root, &mut *cache),
        n => {
            let (root, cache) = &mut extra[n - 1];
            (&*root, cache)
        }
    };
    let mut a = Answer { req, persistence, spec, root, cache, date: date.as_slice(), now: *now };
    let head_start = out.bytes.len();
    let status = match normalize(req.target, decoded, path) {
        Ok(target) => {
            scratch.path.clear();
            scratch.path.push(b'/');
            scratch.path.extend_from_slice(path);
            if target.trailing_slash && !path.is_empty() {
                scratch.path.push(b'/');
            }
            serve(&mut a, &target, path, scratch, out)
        }
        Err(TargetError::BadRequest) => return error(out, 400, &[]),
        Err(TargetError::Hidden) => {
            scratch.path.clear();
            scratch.path.extend_from_slice(b"/");
            a.error_page(404, out)
        }
    };
    apply_headers(spec, via, &scratch.path, head_start, &mut scratch.head, out);
    status
}

/// Redirects, then the file, the directory or the fallback.
fn serve(
    a: &mut Answer,
    target: &Target,
    path: &mut Vec<u8>,
    scratch: &mut crate::site::Scratch,
    out: &mut Outbox,
) -> u16 {
    for rule in &a.spec.redirects {
        if let Some(status) = rule.apply(&scratch.path, target.query, &mut scratch.captures, &mut scratch.location) {
            return a.redirect(status as u16, &scratch.location, out);
        }
    }
    let is_dir = match a.cache.lookup(a.root, path, a.now) {
        Lookup::File(entry) if !target.trailing_slash || path.is_empty() => {
            return serve_file(a.req, entry, a.persistence, a.date, a.now, out);
        }
        Lookup::File(_) => false,
        Lookup::Directory => true,
        Lookup::NotFound => false,
        Lookup::Forbidden => return a.error_page(403, out),
        Lookup::Failed(_) => return a.error_page(500, out),
    };
    if is_dir && !path.is_empty() {
        let slash_wanted = match a.spec.trailing_slash {
            TrailingSlash::Add => Some(true),
            TrailingSlash::Remove => Some(false),
            TrailingSlash::Off => None,
        };
        if let Some(wanted) = slash_wanted.filter(|&w| w != target.trailing_slash) {
            directory_location(path, wanted, target.query, &mut scratch.location);
            return a.redirect(301, &scratch.location, out);
        }
    }
    if is_dir {
        let dir_len = path.len();
        for name in &a.spec.index {
            path.truncate(dir_len);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            if let Lookup::File(entry) = a.cache.lookup(a.root, path, a.now) {
                return serve_file(a.req, entry, a.persistence, a.date, a.now, out);
            }
        }
        path.truncate(dir_len);
        let dir_path = &scratch.path;
        if a.spec.listing.iter().any(|g| g.matches(dir_path)) {
            return a.listing(path, target.query, &mut scratch.body, out);
        }
    }
    if let Some(fallback) = &a.spec.fallback {
        let last = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if (a.spec.fallback_extensions || !last.contains(&b'.'))
            && let Lookup::File(entry) = a.cache.lookup(a.root, fallback, a.now)
        {
            return serve_file(a.req, entry, a.persistence, a.date, a.now, out);
        }
    }
    a.error_page(404, out)
}

impl Answer<'_> {
    fn head_only(&self) -> bool {
        self.req.method == Method::Head
    }

    fn redirect(&self, status: u16, location: &[u8], out: &mut Outbox) -> u16 {
        response::error(
            &mut out.bytes,
            status,
            self.date,
            self.persistence,
            self.head_only(),
            &[(b"Location", location)],
        );
        status
    }

    /// The host's page for `status` if it has one that exists, else the built-in one.
    fn error_page(&mut self, status: u16, out: &mut Outbox) -> u16 {
        let page = self.spec.error_pages.iter().find(|(class, _)| class.contains(status)).map(|(_, p)| p);
        let head_only = self.head_only();
        if let Some(page) = page
            && let Lookup::File(entry) = self.cache.lookup(self.root, page, self.now)
        {
            let rep = &entry.identity;
            response::start(&mut out.bytes, status);
            response::field(&mut out.bytes, b"Content-Type", entry.content_type.as_bytes());
            response::field_u64(&mut out.bytes, b"Content-Length", rep.size);
            response::finish(&mut out.bytes, self.date, self.persistence);
            if !head_only {
                match &rep.content {
                    Content::Bytes(body) => out.bytes.extend_from_slice(body),
                    Content::File(file) => out.push_file(file, 0, rep.size),
                }
            }
            return status;
        }
        response::error(&mut out.bytes, status, self.date, self.persistence, self.head_only(), &[]);
        status
    }

    /// The listing of directory `path` (no trailing slash), its error pages left out.
    fn listing(&mut self, path: &[u8], query: Option<&[u8]>, body: &mut Vec<u8>, out: &mut Outbox) -> u16 {
        let Ok(dir) = self.root.open_beneath(path) else { return self.error_page(404, out) };
        let format = listing::format_for(self.req.header("accept"), query);
        let pages = &self.spec.error_pages;
        let hide = |name: &[u8]| {
            pages.iter().any(|(_, p)| {
                p.strip_suffix(name)
                    .is_some_and(|dir| dir.is_empty() && path.is_empty() || dir.strip_suffix(b"/") == Some(path))
            })
        };
        body.clear();
        if listing::render(&dir, path, listing::sort_from_query(query), format, &hide, body).is_err() {
            return self.error_page(500, out);
        }
        let content_type: &[u8] = match format {
            ListingFormat::Html => b"text/html; charset=utf-8",
            ListingFormat::Json => b"application/json",
        };
        response::start(&mut out.bytes, 200);
        response::field(&mut out.bytes, b"Content-Type", content_type);
        response::field_u64(&mut out.bytes, b"Content-Length", body.len() as u64);
        response::field(&mut out.bytes, b"Cache-Control", b"no-cache");
        response::field(&mut out.bytes, b"Vary", b"Accept");
        response::finish(&mut out.bytes, self.date, self.persistence);
        if !self.head_only() {
            out.bytes.extend_from_slice(body);
        }
        200
    }
}

/// Apply the host's header rules that match `path` to the head queued at `head_start`.
fn apply_headers(spec: &HostSpec, via: &Via, path: &[u8], head_start: usize, edited: &mut Vec<u8>, out: &mut Outbox) {
    if spec.headers.is_empty() {
        return;
    }
    let rules = || spec.headers.iter().filter(|r| r.applies(path, via.tls));
    if rules().next().is_none() {
        return;
    }
    let Some(end) = memchr::memmem::find(&out.bytes[head_start..], b"\r\n\r\n").map(|i| head_start + i + 4) else {
        return;
    };
    headers::edit(&out.bytes[head_start..end], rules(), edited);
    out.splice(head_start..end, edited);
}

/// The Host field's name, lower case, without port or final dot, into `name`; false if it
/// is no host name (it is copied into redirects, so nothing else may pass).
fn host_name(field: Option<&[u8]>, name: &mut Vec<u8>) -> bool {
    name.clear();
    let Some(field) = field else { return true };
    let host = match field.first() {
        // An IPv6 literal: the port follows the bracket.
        Some(b'[') => field.iter().position(|&b| b == b']').map_or(field, |i| &field[..=i]),
        _ => field.iter().position(|&b| b == b':').map_or(field, |i| &field[..i]),
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    name.extend(host.iter().map(u8::to_ascii_lowercase));
    name.iter().all(|&b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
}

/// The path and query of a request target, whatever its form.
fn origin_form(target: &[u8]) -> &[u8] {
    if target.first() == Some(&b'/') {
        return target;
    }
    let after_scheme = target.windows(3).position(|w| w == b"://").map_or(0, |i| i + 3);
    let rest = &target[after_scheme..];
    rest.iter().position(|&b| b == b'/').map_or(b"/", |i| &rest[i..])
}
