//! A directory as a listing page, HTML or JSON. It reads only the directory it is handed:
//! entries from that descriptor and metadata relative to it, never a path from the root,
//! so a listing reaches no further than the caller's safe open beneath the root did.
//!
//! The output is a function of the directory's state and the request's sort alone (no
//! clock, no readdir order), so a listing can be cached and compared.

use crate::http::date::{self, Civil};
use crate::http::fields::qvalue;
use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};
use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Write};

/// The most entries one listing shows; past it the listing says it was cut.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListingFormat {
    Html,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Size,
    Modified,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// JSON when the query says `format=json` or the Accept field ranks application/json above
/// text/html; HTML otherwise. `format=html` in the query wins over Accept too: a link a
/// person follows should show what it names, whatever the browser sends.
pub fn format_for(accept: Option<&[u8]>, query: Option<&[u8]>) -> ListingFormat {
    match query_value(query, b"format") {
        Some(b"json") => return ListingFormat::Json,
        Some(b"html") => return ListingFormat::Html,
        _ => {}
    }
    match accept {
        Some(a) if quality(a, b"application", b"json") > quality(a, b"text", b"html") => ListingFormat::Json,
        _ => ListingFormat::Html,
    }
}

/// `sort=name|size|modified` and `order=asc|desc`; each unknown or missing value falls
/// back on its own to name and ascending.
pub fn sort_from_query(query: Option<&[u8]>) -> Sort {
    let key = match query_value(query, b"sort") {
        Some(b"size") => SortKey::Size,
        Some(b"modified") => SortKey::Modified,
        _ => SortKey::Name,
    };
    Sort { key, descending: query_value(query, b"order") == Some(b"desc") }
}

/// Append the listing of `dir` (opened beneath the root) to `out`. `url_path` is its
/// decoded, normalised path without leading or trailing slash, empty for the root.
/// Entries whose name starts with `.` or for which `hide` says yes are left out, and so
/// is anything neither a regular file nor a directory (a symbolic link may point out of
/// the root). Returns the number of entries listed, at most `MAX_ENTRIES`.
pub fn render(
    dir: &File,
    url_path: &[u8],
    sort: Sort,
    format: ListingFormat,
    hide: &dyn Fn(&[u8]) -> bool,
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    render_capped(dir, url_path, sort, format, hide, MAX_ENTRIES, out)
}

fn render_capped(
    dir: &File,
    url_path: &[u8],
    sort: Sort,
    format: ListingFormat,
    hide: &dyn Fn(&[u8]) -> bool,
    cap: usize,
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    let (entries, truncated) = read_entries(dir, sort, hide, cap)?;
    let listing = Listing { url_path, sort, entries: &entries, truncated, cap };
    match format {
        ListingFormat::Html => listing.html(out),
        ListingFormat::Json => listing.json(out),
    }
    Ok(entries.len())
}

struct Entry {
    name: Vec<u8>,
    is_dir: bool,
    /// Zero for a directory: its st_size says nothing a reader wants and differs between
    /// filesystems, so directories sorted by size fall back on their names.
    size: u64,
    modified: u64,
}

/// The first `cap` entries in display order, and whether there were more. Memory stays
/// within twice the cap however large the directory: whenever the kept entries reach
/// that, only the first `cap` of them are kept. Every entry is still read and looked at,
/// so the ones shown are the first in the chosen order, not the first the kernel gave.
fn read_entries(dir: &File, sort: Sort, hide: &dyn Fn(&[u8]) -> bool, cap: usize) -> io::Result<(Vec<Entry>, bool)> {
    // A descriptor of our own on the same directory ("." is never a link): reading entries
    // moves the offset, which the caller's descriptor keeps where it was.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut reader = Dir::openat(dir, ".", flags, Mode::empty())?;
    let order = |a: &Entry, b: &Entry| compare(a, b, sort);
    let keep = |entries: &mut Vec<Entry>| {
        if entries.len() > cap {
            entries.select_nth_unstable_by(cap, order);
            entries.truncate(cap);
        }
    };
    let mut entries = Vec::new();
    let mut truncated = false;
    for item in reader.iter() {
        let item = item?;
        let name = item.file_name();
        let bytes = name.to_bytes();
        if bytes.first() == Some(&b'.') || hide(bytes) {
            continue;
        }
        // Gone since readdir named it, or not ours to see: not listed, not an error.
        let Ok(stat) = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) else { continue };
        let kind = stat.st_mode & SFlag::S_IFMT.bits();
        let is_dir = if kind == SFlag::S_IFDIR.bits() {
            true
        } else if kind == SFlag::S_IFREG.bits() {
            false
        } else {
            continue;
        };
        let size = if is_dir { 0 } else { stat.st_size.max(0) as u64 };
        let modified = (stat.st_mtime.max(0) as u64).min(date::MAX);
        entries.push(Entry { name: bytes.to_vec(), is_dir, size, modified });
        if entries.len() >= cap.saturating_mul(2).max(cap + 1) {
            truncated = true;
            keep(&mut entries);
        }
    }
    truncated |= entries.len() > cap;
    keep(&mut entries);
    entries.sort_unstable_by(order);
    Ok((entries, truncated))
}

/// Directories first, then the key in the asked order, ties by name (bytewise, ascending).
fn compare(a: &Entry, b: &Entry, sort: Sort) -> Ordering {
    let by_key = match sort.key {
        SortKey::Name => a.name.cmp(&b.name),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Modified => a.modified.cmp(&b.modified),
    };
    let by_key = if sort.descending { by_key.reverse() } else { by_key };
    b.is_dir.cmp(&a.is_dir).then(by_key).then_with(|| a.name.cmp(&b.name))
}

struct Listing<'a> {
    url_path: &'a [u8],
    sort: Sort,
    entries: &'a [Entry],
    truncated: bool,
    cap: usize,
}

const COLUMNS: [(SortKey, &str, &str); 3] =
    [(SortKey::Name, "name", "Name"), (SortKey::Size, "size", "Size"), (SortKey::Modified, "modified", "Modified")];

impl Listing<'_> {
    /// `/docs/` for `docs`, `/` for the root, lossy where the path is not UTF-8.
    fn display_path(&self) -> String {
        let path = String::from_utf8_lossy(self.url_path);
        if path.is_empty() { "/".to_string() } else { format!("/{path}/") }
    }

    fn html(&self, out: &mut Vec<u8>) {
        let path = self.display_path();
        out.extend_from_slice(b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.extend_from_slice(
            b"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Index of ",
        );
        html_escape(&path, out);
        out.extend_from_slice(b"</title>\n<style>body{font-family:sans-serif}td,th{padding:0 1em 0 0;text-align:left}");
        out.extend_from_slice(b"td.size{text-align:right}</style>\n</head>\n<body>\n<h1>Index of ");
        html_escape(&path, out);
        out.extend_from_slice(b"</h1>\n<table>\n<thead><tr>");
        for (key, param, label) in COLUMNS {
            let active = key == self.sort.key;
            let order = if active && !self.sort.descending { "desc" } else { "asc" };
            let arrow = match (active, self.sort.descending) {
                (false, _) => "",
                (true, false) => " &uarr;",
                (true, true) => " &darr;",
            };
            write_all(out, format_args!("<th><a href=\"?sort={param}&amp;order={order}\">{label}</a>{arrow}</th>"));
        }
        out.extend_from_slice(b"</tr></thead>\n<tbody>\n");
        if !self.url_path.is_empty() {
            out.extend_from_slice(b"<tr><td><a href=\"../\">../</a></td><td class=\"size\">-</td><td></td></tr>\n");
        }
        for entry in self.entries {
            out.extend_from_slice(b"<tr><td><a href=\"");
            percent_encode(&entry.name, out);
            if entry.is_dir {
                out.push(b'/');
            }
            out.extend_from_slice(b"\">");
            html_escape(&String::from_utf8_lossy(&entry.name), out);
            if entry.is_dir {
                out.extend_from_slice(b"/</a></td><td class=\"size\">-</td>");
            } else {
                write_all(out, format_args!("</a></td><td class=\"size\" title=\"{} bytes\">", entry.size));
                human_size(entry.size, out);
                out.extend_from_slice(b"</td>");
            }
            let t = Civil::of(entry.modified);
            let (y, mo, d, h, mi) = (t.year, t.month, t.day, t.hour, t.minute);
            write_all(out, format_args!("<td>{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}</td></tr>\n"));
        }
        out.extend_from_slice(b"</tbody>\n</table>\n");
        if self.truncated {
            write_all(out, format_args!("<p>Listing cut: only the first {} entries are shown.</p>\n", self.cap));
        }
        out.extend_from_slice(b"</body>\n</html>\n");
    }

    /// `{"path":"/docs/","entries":[{"name","type":"file"|"dir","size":n|null,
    /// "modified":"…Z"}…],"truncated":bool}`, always this shape.
    fn json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"path\":");
        json_string(&self.display_path(), out);
        out.extend_from_slice(b",\"entries\":[");
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            json_string(&String::from_utf8_lossy(&entry.name), out);
            if entry.is_dir {
                out.extend_from_slice(b",\"type\":\"dir\",\"size\":null");
            } else {
                write_all(out, format_args!(",\"type\":\"file\",\"size\":{}", entry.size));
            }
            let t = Civil::of(entry.modified);
            let (y, mo, d, h, mi, s) = (t.year, t.month, t.day, t.hour, t.minute, t.second);
            write_all(out, format_args!(",\"modified\":\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z\"}}"));
        }
        write_all(out, format_args!("],\"truncated\":{}}}", self.truncated));
    }
}

fn write_all(out: &mut Vec<u8>, args: std::fmt::Arguments) {
    // Writing into a Vec cannot fail.
    let _ = out.write_fmt(args);
}

/// `1.2 KiB`: binary units, one decimal, rounded down so it never reads `1024.0 KiB`.
fn human_size(size: u64, out: &mut Vec<u8>) {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if size < 1024 {
        return write_all(out, format_args!("{size} B"));
    }
    let (mut unit, mut scale) = (0, 1u64);
    while size / scale >= 1024 && unit < UNITS.len() - 1 {
        scale *= 1024;
        unit += 1;
    }
    let tenths = u128::from(size) * 10 / u128::from(scale);
    write_all(out, format_args!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit]));
}

fn html_escape(text: &str, out: &mut Vec<u8>) {
    for &b in text.as_bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            _ => out.push(b),
        }
    }
}

/// Every byte but the unreserved ones and `/`, so the exact name (UTF-8 or not) comes back
/// to the server, and no name reads as a scheme (`a:b`), query or fragment.
fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// A JSON string (RFC 8259 §7): quote and backslash escaped, control characters as \u00XX.
fn json_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in text.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..0x20 => write_all(out, format_args!("\\u{b:04X}")),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The value of the last `key=value` pair in the query, taken as it is (not decoded).
fn query_value<'q>(query: Option<&'q [u8]>, key: &[u8]) -> Option<&'q [u8]> {
    query?.split(|&b| b == b'&').filter_map(|pair| pair.strip_prefix(key)?.strip_prefix(b"=")).next_back()
}

/// The quality, in thousandths, the Accept field gives `kind/subtype`: that of the most
/// specific range matching it (RFC 9110 §12.5.1), zero when none does. A range whose `q`
/// cannot be read is skipped rather than guessed at.
fn quality(accept: &[u8], kind: &[u8], subtype: &[u8]) -> u16 {
    let mut best: Option<(u8, u16)> = None;
    for range in accept.split(|&b| b == b',') {
        let mut parts = range.split(|&b| b == b';');
        let media = parts.next().unwrap_or_default().trim_ascii();
        let Some(slash) = media.iter().position(|&b| b == b'/') else { continue };
        let (t, s) = (&media[..slash], &media[slash + 1..]);
        let specificity = if t == b"*" && s == b"*" {
            0
        } else if t.eq_ignore_ascii_case(kind) && s == b"*" {
            1
        } else if t.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) {
            2
        } else {
            continue;
        };
        let q = parts.find_map(|p| {
            let (name, value) = p.split_at(p.iter().position(|&b| b == b'=')?);
            name.trim_ascii().eq_ignore_ascii_case(b"q").then(|| qvalue(value[1..].trim_ascii()))
        });
        let Some(q) = q.unwrap_or(Some(1000)) else { continue };
        if best.is_none_or(|(spec, _)| specificity > spec) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0, |(_, q)| q)
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
