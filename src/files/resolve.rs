//! Target → path beneath the root. The path is decoded once and normalised here; the
//! kernel then resolves it beneath the root's directory fd (openat2 RESOLVE_BENEATH), so
//! neither `..` nor a symbolic link can lead out of the root, whatever races the tree.

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// Not origin- or absolute-form, a bad escape, NUL, backslash, or `..` above the root.
    BadRequest,
    /// A hidden path (a segment starting with `.`), never served.
    Hidden,
}

/// What `normalize` learnt about the target besides the path it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub trailing_slash: bool,
    /// The query, without `?`, kept only to carry it into a redirect.
    pub query: Option<&'a [u8]>,
}

/// Write the target's path, decoded and normalised, into `path` as a relative path
/// without leading or trailing slash (empty for the root). `decoded` is scratch space.
pub fn normalize<'a>(target: &'a [u8], decoded: &mut Vec<u8>, path: &mut Vec<u8>) -> Result<Target<'a>, TargetError> {
    if let Some(plain) = plain_path(target) {
        path.clear();
        path.extend_from_slice(plain);
        return Ok(Target { trailing_slash: target.ends_with(b"/"), query: None });
    }
    normalize_any(target, decoded, path)
}

/// The path of a target that needs neither decoding nor normalising, the common case
/// (`/index.html`, `/img/a-b_c.png`): origin-form, only unreserved bytes and `/`, no
/// empty segment and none that starts with `.` (so no `.`, `..` or hidden one), no query.
/// One pass, where `normalize_any` decodes, splits and rebuilds; both give the same
/// answer for such a target (a property test checks).
fn plain_path(target: &[u8]) -> Option<&[u8]> {
    let [b'/', rest @ ..] = target else { return None };
    let mut prev = b'/';
    for &b in rest {
        let plain =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || matches!(b, b'/' | b'.') && prev != b'/';
        if !plain {
            return None;
        }
        prev = b;
    }
    Some(rest.strip_suffix(b"/").unwrap_or(rest))
}

fn normalize_any<'a>(target: &'a [u8], decoded: &mut Vec<u8>, path: &mut Vec<u8>) -> Result<Target<'a>, TargetError> {
    let origin = match target {
        [b'/', ..] => target,
        _ => absolute_form_path(target).ok_or(TargetError::BadRequest)?,
    };
    let end = origin.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(origin.len());
    let query = (origin.get(end) == Some(&b'?')).then(|| {
        let q = &origin[end + 1..];
        &q[..q.iter().position(|&b| b == b'#').unwrap_or(q.len())]
    });
    decoded.clear();
    percent_decode(&origin[..end], decoded)?;
    if decoded.iter().any(|&b| b == 0 || b == b'\\') {
        return Err(TargetError::BadRequest);
    }
    path.clear();
    let mut hidden = false;
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                if path.is_empty() {
                    return Err(TargetError::BadRequest);
                }
                let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
                path.truncate(cut);
            }
            _ => {
                hidden |= segment[0] == b'.';
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(segment);
            }
        }
    }
    // Checked after `..` had its say: `/.git/../index.html` is a visible file.
    if hidden && path.split(|&b| b == b'/').any(|s| s.first() == Some(&b'.')) {
        return Err(TargetError::Hidden);
    }
    let last = decoded.split(|&b| b == b'/').rfind(|s| !s.is_empty() && *s != b".");
    let trailing_slash = decoded.ends_with(b"/") || matches!(last, Some(b".."));
    Ok(Target { trailing_slash: trailing_slash || path.is_empty(), query })
}

/// The path of an absolute-form target (`http://host/p`), `/` when it has none.
fn absolute_form_path(target: &[u8]) -> Option<&[u8]> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    let rest = target[colon + 1..].strip_prefix(b"//")?;
    let path_at = rest.iter().position(|&b| b == b'/' || b == b'?' || b == b'#');
    Some(match path_at {
        Some(i) if rest[i] == b'/' => &rest[i..],
        _ => b"/",
    })
}

fn percent_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), TargetError> {
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(src.get(i + 1)), hex(src.get(i + 2))) else {
                return Err(TargetError::BadRequest);
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(src[i]);
            i += 1;
        }
    }
    Ok(())
}

/// The document root, held open as a directory so every lookup starts from it. A clone
/// shares the descriptor (a thread per connection needs no descriptor more for its root).
#[derive(Clone)]
pub struct Root {
    dir: Arc<File>,
    path: PathBuf,
    /// openat2 is missing (ENOSYS, before Linux 5.6): canonicalise and check instead.
    fallback: bool,
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = path.canonicalize()?;
        let dir = File::open(&path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"));
        }
        let probe = openat2(&dir, ".", how());
        Ok(Root { dir: Arc::new(dir), path, fallback: probe.err() == Some(Errno::ENOSYS) })
    }

    /// Open `rel` (from `normalize`) read-only, beneath the root.
    pub fn open_beneath(&self, rel: &[u8]) -> io::Result<File> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        if self.fallback {
            let full = self.path.join(std::ffi::OsStr::from_bytes(rel)).canonicalize()?;
            if !full.starts_with(&self.path) {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            return File::open(full);
        }
        Ok(File::from(openat2(&*self.dir, rel, how())?))
    }
}

fn how() -> OpenHow {
    OpenHow::new()
        // O_NONBLOCK: opening a FIFO someone left in the root must not stall the shard.
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(t: &str) -> Result<(String, bool), TargetError> {
        let (mut d, mut p) = (Vec::new(), Vec::new());
        normalize(t.as_bytes(), &mut d, &mut p).map(|t| (String::from_utf8(p).unwrap(), t.trailing_slash))
    }

    #[test]
    fn targets() {
        let ok = |t: &str, p: &str, slash: bool| assert_eq!(norm(t), Ok((p.to_string(), slash)), "{t}");
        ok("/", "", true);
        ok("/index.html", "index.html", false);
        ok("/a/b/", "a/b", true);
        ok("//x", "x", false);
        ok("/a/./b", "a/b", false);
        ok("/a/../b", "b", false);
        ok("/a/b/..", "a", true);
        ok("/a%20b", "a b", false);
        ok("/a%2fb", "a/b", false);
        ok("/x?y=1", "x", false);
        ok("http://example.com/a/b?q", "a/b", false);
        ok("HTTP://example.com", "", true);
        ok("/.git/../index.html", "index.html", false);
        ok("/%252e%252e/x", "%2e%2e/x", false);
    }

    #[test]
    fn refusals() {
        use TargetError::*;
        for (t, e) in [
            ("/..", BadRequest),
            ("/../etc/passwd", BadRequest),
            ("/a/../../b", BadRequest),
            ("/%2e%2e/x", BadRequest),
            ("/a%00b", BadRequest),
            ("/a\\b", BadRequest),
            ("/a%5cb", BadRequest),
            ("/%zz", BadRequest),
            ("/%4", BadRequest),
            ("*", BadRequest),
            ("index.html", BadRequest),
            ("ftp://x/y", BadRequest),
            ("/.env", Hidden),
            ("/a/.git/config", Hidden),
        ] {
            assert_eq!(norm(t), Err(e), "{t}");
        }
    }

    proptest::proptest! {
        /// The one-pass path for plain targets answers as the general one does, on targets
        /// made of the bytes that decide between them.
        #[test]
        fn plain_targets_take_a_shortcut_to_the_same_answer(t in "/[a./%2e_~?-]{0,12}") {
            let (mut d1, mut p1, mut d2, mut p2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let fast = normalize(t.as_bytes(), &mut d1, &mut p1);
            let general = normalize_any(t.as_bytes(), &mut d2, &mut p2);
            proptest::prop_assert_eq!(fast, general);
            if fast.is_ok() {
                proptest::prop_assert_eq!(p1, p2);
            }
        }
    }

    #[test]
    fn plain_targets() {
        assert_eq!(plain_path(b"/a/b.c/"), Some(&b"a/b.c"[..]));
        assert_eq!(plain_path(b"/"), Some(&b""[..]));
        for t in ["/a//b", "/.env", "/a/./b", "/a/..", "/a%41", "/a?q", "x"] {
            assert_eq!(plain_path(t.as_bytes()), None, "{t}");
        }
    }
}
