//! Per-shard cache of open files: what a response needs (fd, size, validators, type,
//! the bytes and a pre-rendered head for small files), revalidated at most once a second.

use super::mime::content_type;
use super::resolve::Root;
use crate::http::date;
use crate::http::fields::Coding;
use crate::http::response;
use rustc_hash::FxHashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::rc::Rc;

/// Files up to this size are held in memory with their head.
pub const SMALL_FILE: u64 = 64 * 1024;

/// One representation of a resource: the file itself or a precompressed sibling.
pub struct Rep {
    pub content: Content,
    pub size: u64,
    pub mtime: u64,
    /// Strong ETag, quotes included.
    pub etag: Box<[u8]>,
    pub last_modified: [u8; date::LEN],
    pub coding: Option<Coding>,
    /// Status line and every 200 field but `Date` and `Connection`, ready to copy.
    pub head_200: Box<[u8]>,
    id: FileId,
}

/// Where the body comes from: small files are held in memory and keep no descriptor, so
/// the cache's share of RLIMIT_NOFILE is bounded by its large files alone.
pub enum Content {
    Bytes(Box<[u8]>),
    File(Rc<File>),
}

/// What says a file changed: a new inode, size or modification time.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Rep {
    /// The validators and representation fields every 2xx and 304 for this carries.
    pub fn write_fields(&self, vary: bool, out: &mut Vec<u8>) {
        response::field(out, b"Last-Modified", &self.last_modified);
        response::field(out, b"ETag", &self.etag);
        response::field(out, b"Accept-Ranges", b"bytes");
        if let Some(c) = self.coding {
            response::field(out, b"Content-Encoding", coding_name(c));
        }
        if vary {
            response::field(out, b"Vary", b"Accept-Encoding");
        }
    }
}

/// A file and its precompressed siblings (`FILE.br`, `FILE.zst`, `FILE.gz`, see `suffixes`).
pub struct Entry {
    pub identity: Rep,
    pub br: Option<Rep>,
    pub zstd: Option<Rep>,
    pub gzip: Option<Rep>,
    pub content_type: Box<str>,
    checked_at: u64,
}

impl Entry {
    /// The representation in `coding`, if its sibling exists. The one place a coding meets
    /// its field: everything else walks `variants` or `reps`.
    pub fn variant(&self, coding: Coding) -> Option<&Rep> {
        match coding {
            Coding::Br => self.br.as_ref(),
            Coding::Zstd => self.zstd.as_ref(),
            Coding::Gzip => self.gzip.as_ref(),
        }
    }

    /// The precompressed representations there are, in `Coding::ALL`'s order.
    fn variants(&self) -> impl Iterator<Item = (Coding, &Rep)> + '_ {
        Coding::ALL.into_iter().filter_map(|c| Some((c, self.variant(c)?)))
    }

    /// Every representation: identity, then the precompressed ones.
    fn reps(&self) -> impl Iterator<Item = &Rep> + '_ {
        std::iter::once(&self.identity).chain(self.variants().map(|(_, r)| r))
    }

    pub fn has_variants(&self) -> bool {
        self.variants().next().is_some()
    }

    pub fn codings(&self) -> impl Iterator<Item = Coding> + '_ {
        self.variants().map(|(c, _)| c)
    }

    pub fn rep(&self, coding: Option<Coding>) -> &Rep {
        coding.and_then(|c| self.variant(c)).unwrap_or(&self.identity)
    }
}

pub enum Lookup<'a> {
    File(&'a Entry),
    Directory,
    NotFound,
    Forbidden,
    Failed(io::Error),
}

pub struct Cache {
    /// Keyed by the normalised path, hashed with FxHash: SipHash's defence against chosen
    /// collisions buys nothing here, since only files that exist under the root are ever
    /// inserted (a client chooses what it looks up, not what is stored), and it cost 430
    /// of 5,800 instructions a request (two hashes a cached hit).
    map: FxHashMap<Box<[u8]>, Entry>,
    max_entries: usize,
    max_bytes: usize,
    max_fds: usize,
    bytes: usize,
    /// Descriptors held open for the cache's sake: its entries', and those of entries it
    /// let go while responses in flight still held their files (`retired`), which stay
    /// open until the last of those responses is done and so still count.
    fds: usize,
    retired: Vec<Rc<File>>,
    sibling: Vec<u8>,
}

/// Descriptors the cache may hold open at once; part of a shard's reserve (see tuning).
pub const MAX_FDS: usize = 192;

impl Cache {
    pub fn new(max_entries: usize, max_bytes: usize) -> Cache {
        Cache {
            map: FxHashMap::default(),
            max_entries,
            max_bytes,
            max_fds: MAX_FDS,
            bytes: 0,
            fds: 0,
            retired: Vec::new(),
            sibling: Vec::new(),
        }
    }

    /// The entry for `rel` (a normalised path), opening or revalidating it when the
    /// cached one was last checked before `now` (whole seconds).
    pub fn lookup(&mut self, root: &Root, rel: &[u8], now: u64) -> Lookup<'_> {
        if self.map.get(rel).is_some_and(|e| e.checked_at == now) {
            return Lookup::File(&self.map[rel]);
        }
        let probed = match probe(root, rel) {
            Ok(Probe::File(file, id)) => (file, id),
            Ok(Probe::Directory) => return self.forget(rel, Lookup::Directory),
            Ok(Probe::Other) => return self.forget(rel, Lookup::NotFound),
            Err(e) => {
                use nix::libc::{ELOOP, ENAMETOOLONG, ENOTDIR, EXDEV};
                let answer = match (e.kind(), e.raw_os_error()) {
                    (ErrorKind::PermissionDenied, _) => Lookup::Forbidden,
                    (ErrorKind::NotFound, _) => Lookup::NotFound,
                    // EXDEV: the path would leave the root.
                    (_, Some(ENOTDIR | ELOOP | EXDEV | ENAMETOOLONG)) => Lookup::NotFound,
                    _ => Lookup::Failed(e),
                };
                return self.forget(rel, answer);
            }
        };
        // In `Coding::ALL`'s order, which is `Coding`'s: `siblings[c as usize]` is c's.
        let mut siblings = Coding::ALL.map(|c| self.probe_sibling(root, rel, suffixes(c).0));
        if let Some(e) = self.map.get_mut(rel)
            && e.identity.id == probed.1
            && Coding::ALL.into_iter().zip(&siblings).all(|(c, probed)| same(e.variant(c), probed))
        {
            e.checked_at = now;
            return Lookup::File(&self.map[rel]);
        }
        self.forget(rel, ());
        let content_type = content_type(Path::new(OsStr::from_bytes(rel))).into_boxed_str();
        let vary = siblings.iter().any(Option::is_some);
        let identity = self.rep(probed.0, probed.1, None, &content_type, vary);
        let mut variant = |c: Coding| {
            let (file, id) = siblings[c as usize].take()?;
            Some(self.rep(file, id, Some(c), &content_type, vary))
        };
        let entry = Entry {
            identity,
            br: variant(Coding::Br),
            zstd: variant(Coding::Zstd),
            gzip: variant(Coding::Gzip),
            content_type,
            checked_at: now,
        };
        let (_, fds) = usage(&entry);
        self.sweep_retired();
        while self.map.len() >= self.max_entries || self.fds + fds > self.max_fds {
            let Some(victim) = self.map.keys().next().cloned() else { break };
            self.forget(&victim, ());
        }
        self.fds += fds;
        Lookup::File(self.map.entry(rel.into()).or_insert(entry))
    }

    fn forget<T>(&mut self, rel: &[u8], answer: T) -> T {
        if let Some(old) = self.map.remove(rel) {
            let (bytes, fds) = usage(&old);
            self.bytes -= bytes;
            self.fds -= fds;
            // `old` holds one reference to each file; more means a response holds it too.
            for rep in old.reps() {
                if let Content::File(file) = &rep.content
                    && Rc::strong_count(file) > 1
                {
                    self.fds += 1;
                    self.retired.push(Rc::clone(file));
                }
            }
        }
        answer
    }

    /// Let go of the retired files no response holds any more.
    fn sweep_retired(&mut self) {
        let before = self.retired.len();
        self.retired.retain(|file| Rc::strong_count(file) > 1);
        self.fds -= before - self.retired.len();
    }

    /// Descriptors the cache accounts for (its entries' and the retired ones).
    #[cfg(test)]
    pub fn open_fds(&self) -> usize {
        self.fds
    }

    fn probe_sibling(&mut self, root: &Root, rel: &[u8], suffix: &[u8]) -> Option<(File, FileId)> {
        self.sibling.clear();
        self.sibling.extend_from_slice(rel);
        self.sibling.extend_from_slice(suffix);
        match probe(root, &self.sibling) {
            Ok(Probe::File(file, id)) => Some((file, id)),
            _ => None,
        }
    }

    fn rep(&mut self, file: File, id: FileId, coding: Option<Coding>, content_type: &str, vary: bool) -> Rep {
        let mtime = u64::try_from(id.mtime_ns / 1_000_000_000).unwrap_or(0);
        let etag = format!("\"{:x}-{:x}{}\"", mtime, id.size, coding.map_or("", |c| suffixes(c).1))
            .into_bytes()
            .into_boxed_slice();
        let last_modified = date::format(mtime);
        let body = (id.size <= SMALL_FILE && self.bytes + id.size as usize <= self.max_bytes)
            .then(|| read_all(&file, id.size))
            .flatten();
        self.bytes += body.as_ref().map_or(0, |b| b.len());
        let content = match body {
            Some(bytes) => Content::Bytes(bytes),
            None => Content::File(Rc::new(file)),
        };
        let mut rep = Rep { content, size: id.size, mtime, etag, last_modified, coding, head_200: Box::default(), id };
        let mut head = Vec::with_capacity(256);
        response::start(&mut head, 200);
        response::field(&mut head, b"Content-Type", content_type.as_bytes());
        response::field_u64(&mut head, b"Content-Length", id.size);
        rep.write_fields(vary, &mut head);
        rep.head_200 = head.into();
        rep
    }
}

/// Bytes held in memory and descriptors held open by an entry.
fn usage(entry: &Entry) -> (usize, usize) {
    entry.reps().fold((0, 0), |(bytes, fds), rep| match &rep.content {
        Content::Bytes(b) => (bytes + b.len(), fds),
        Content::File(_) => (bytes, fds + 1),
    })
}

/// A coding's sibling: the suffix its file adds to the original's name, and the one its
/// strong ETag ends with (so that no validator of one representation matches another).
fn suffixes(c: Coding) -> (&'static [u8], &'static str) {
    match c {
        Coding::Br => (b".br", "-br"),
        Coding::Zstd => (b".zst", "-zst"),
        Coding::Gzip => (b".gz", "-gz"),
    }
}

pub fn coding_name(c: Coding) -> &'static [u8] {
    c.name()
}

fn same(cached: Option<&Rep>, probed: &Option<(File, FileId)>) -> bool {
    match (cached, probed) {
        (None, None) => true,
        (Some(r), Some((_, id))) => r.id == *id,
        _ => false,
    }
}

enum Probe {
    File(File, FileId),
    Directory,
    Other,
}

fn probe(root: &Root, rel: &[u8]) -> io::Result<Probe> {
    let file = root.open_beneath(rel)?;
    let meta = file.metadata()?;
    Ok(if meta.is_dir() {
        Probe::Directory
    } else if meta.is_file() {
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        Probe::File(file, FileId { dev: meta.dev(), ino: meta.ino(), size: meta.size(), mtime_ns })
    } else {
        Probe::Other
    })
}

/// The whole file, or `None` if it changed size under us (then it is sent from the fd).
fn read_all(file: &File, size: u64) -> Option<Box<[u8]>> {
    let mut buf = vec![0u8; size as usize];
    file.read_exact_at(&mut buf, 0).ok()?;
    Some(buf.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file the cache let go while a response still sends from it stays open, so it still
    /// counts against the cache's descriptors until the response is done.
    #[test]
    fn files_held_by_responses_count_until_they_are_done() {
        let dir = std::env::temp_dir().join(format!("c10k-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(dir.join(name), vec![1u8; SMALL_FILE as usize + 1]).unwrap();
        }
        let root = Root::open(&dir).unwrap();
        let mut cache = Cache { max_fds: 1, ..Cache::new(1, 0) };
        let in_flight = match cache.lookup(&root, b"a", 1) {
            Lookup::File(entry) => match &entry.identity.content {
                Content::File(file) => Rc::clone(file),
                Content::Bytes(_) => panic!("a large file is sent from its descriptor"),
            },
            _ => panic!("a is a file"),
        };
        assert_eq!(cache.open_fds(), 1);
        // b pushes a out of the cache while a response holds it: a stays open, and counts.
        assert!(matches!(cache.lookup(&root, b"b", 1), Lookup::File(_)));
        assert_eq!(cache.open_fds(), 2, "b, and a held by the response");
        drop(in_flight);
        assert!(matches!(cache.lookup(&root, b"c", 1), Lookup::File(_)));
        assert_eq!(cache.open_fds(), 1, "c only: a let go once no response held it, b closed for c");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Each sibling (`.br`, `.zst`, `.gz`) is a representation of its own: probed, held in
    /// memory or open, revalidated, and let go like the file itself.
    #[test]
    fn siblings_are_probed_counted_revalidated_and_retired() {
        let dir = std::env::temp_dir().join(format!("c10k-cache-siblings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let large = vec![2u8; SMALL_FILE as usize + 1];
        for name in ["a", "a.zst", "a.gz"] {
            std::fs::write(dir.join(name), &large).unwrap();
        }
        std::fs::write(dir.join("a.br"), b"B").unwrap();
        std::fs::write(dir.join("plain"), b"P").unwrap();
        let root = Root::open(&dir).unwrap();
        let mut cache = Cache::new(4, 1 << 20);
        let in_flight = match cache.lookup(&root, b"a", 1) {
            Lookup::File(e) => {
                assert!(e.has_variants());
                assert_eq!(e.codings().collect::<Vec<_>>(), Coding::ALL);
                let zstd = e.rep(Some(Coding::Zstd));
                assert_eq!(zstd.coding, Some(Coding::Zstd));
                assert!(zstd.etag.ends_with(b"-zst\""), "{:?}", String::from_utf8_lossy(&zstd.etag));
                assert!(zstd.head_200.windows(24).any(|w| w == b"Content-Encoding: zstd\r\n"));
                assert_eq!(e.rep(Some(Coding::Br)).size, 1);
                match &zstd.content {
                    Content::File(file) => Rc::clone(file),
                    Content::Bytes(_) => panic!("a large .zst is sent from its descriptor"),
                }
            }
            _ => panic!("a is a file"),
        };
        assert_eq!((cache.open_fds(), cache.bytes), (3, 1), "a, a.zst and a.gz open; a.br's byte in memory");

        // The .zst goes: the next second's look rebuilds the entry without it; the old one,
        // still sending, stays open and counted.
        std::fs::remove_file(dir.join("a.zst")).unwrap();
        match cache.lookup(&root, b"a", 2) {
            Lookup::File(e) => {
                assert!(e.zstd.is_none());
                assert_eq!(e.codings().collect::<Vec<_>>(), [Coding::Br, Coding::Gzip]);
                assert_eq!(e.rep(Some(Coding::Zstd)).coding, None, "no .zst: identity");
            }
            _ => panic!("a is a file"),
        }
        assert_eq!((cache.open_fds(), cache.bytes), (3, 1), "a and a.gz open, the old a.zst held by the response");
        drop(in_flight);
        std::fs::remove_file(dir.join("a.br")).unwrap();
        assert!(matches!(cache.lookup(&root, b"a", 3), Lookup::File(e) if e.codings().eq([Coding::Gzip])));
        assert_eq!((cache.open_fds(), cache.bytes), (2, 0), "a and a.gz; the old a.zst closed");
        assert!(matches!(cache.lookup(&root, b"plain", 3), Lookup::File(e) if !e.has_variants()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
