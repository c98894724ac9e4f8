use super::*;
use serde_json::Value;
use std::fs::{self, FileTimes};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::{Duration, UNIX_EPOCH};

/// 2026-12-07T06:51:28Z.
const WHEN: u64 = 1_796_626_288;

/// A directory under the system's temp dir, unique to the test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, AtomicOrdering::Relaxed);
        let path = std::env::temp_dir().join(format!("c10k-listing-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn file(&self, name: impl AsRef<Path>, size: usize, modified: u64) -> &TempDir {
        let path = self.0.join(name);
        fs::write(&path, vec![b'x'; size]).unwrap();
        set_modified(&path, modified);
        self
    }

    fn dir(&self, name: &str, modified: u64) -> &TempDir {
        let path = self.0.join(name);
        fs::create_dir(&path).unwrap();
        set_modified(&path, modified);
        self
    }

    fn render(&self, url_path: &str, sort: Sort, format: ListingFormat) -> String {
        self.render_with(url_path, sort, format, &|_| false, MAX_ENTRIES).0
    }

    fn render_with(
        &self,
        url_path: &str,
        sort: Sort,
        format: ListingFormat,
        hide: &dyn Fn(&[u8]) -> bool,
        cap: usize,
    ) -> (String, usize) {
        let dir = File::open(&self.0).unwrap();
        let mut out = b"kept|".to_vec();
        let n = render_capped(&dir, url_path.as_bytes(), sort, format, hide, cap, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        (text.strip_prefix("kept|").expect("render appends").to_string(), n)
    }

    fn json(&self, url_path: &str, sort: Sort) -> Value {
        serde_json::from_str(&self.render(url_path, sort, ListingFormat::Json)).unwrap()
    }

    /// The entries' names, in the order the JSON listing gives them.
    fn order(&self, key: SortKey, descending: bool) -> Vec<String> {
        let json = self.json("", Sort { key, descending });
        json["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn set_modified(path: &Path, secs: u64) {
    let times = FileTimes::new().set_modified(UNIX_EPOCH + Duration::from_secs(secs));
    File::open(path).unwrap().set_times(times).unwrap();
}

const BY_NAME: Sort = Sort { key: SortKey::Name, descending: false };

#[test]
fn names_are_escaped_in_text_and_encoded_in_hrefs() {
    let tmp = TempDir::new();
    tmp.file("<a&b>\"'.txt", 1, WHEN).file("a b.txt", 1, WHEN).dir("sub dir", WHEN);
    let html = tmp.render("docs", BY_NAME, ListingFormat::Html);
    assert!(html.contains("<a href=\"%3Ca%26b%3E%22%27.txt\">&lt;a&amp;b&gt;&quot;&#39;.txt</a>"), "{html}");
    assert!(html.contains("<a href=\"a%20b.txt\">a b.txt</a>"), "{html}");
    assert!(html.contains("<a href=\"sub%20dir/\">sub dir/</a>"), "{html}");
    assert!(!html.contains("<a&b>"), "{html}");
    assert_eq!(tmp.order(SortKey::Name, false), ["sub dir", "<a&b>\"'.txt", "a b.txt"]);
}

#[test]
fn names_not_utf8_are_lossy_in_text_and_exact_in_hrefs() {
    let tmp = TempDir::new();
    tmp.file(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"), 1, WHEN);
    let html = tmp.render("", BY_NAME, ListingFormat::Html);
    assert!(html.contains("<a href=\"caf%E9.txt\">caf\u{FFFD}.txt</a>"), "{html}");
    assert_eq!(tmp.order(SortKey::Name, false), ["caf\u{FFFD}.txt"]);
}

#[test]
fn control_characters_are_escaped_in_json() {
    let tmp = TempDir::new();
    tmp.file("tab\there\nq\"b\\.txt", 1, WHEN);
    let raw = tmp.render("", BY_NAME, ListingFormat::Json);
    assert!(raw.contains(r#""tab\u0009here\u000Aq\"b\\.txt""#), "{raw}");
    assert_eq!(tmp.order(SortKey::Name, false), ["tab\there\nq\"b\\.txt"]);
}

#[test]
fn hidden_hidden_by_caller_links_and_special_files_are_left_out() {
    let tmp = TempDir::new();
    tmp.file(".secret", 1, WHEN).dir(".git", WHEN).file("404.html", 1, WHEN).file("shown.txt", 1, WHEN);
    std::os::unix::fs::symlink("/etc/passwd", tmp.0.join("link")).unwrap();
    std::os::unix::fs::symlink("shown.txt", tmp.0.join("inner-link")).unwrap();
    std::os::unix::fs::symlink("/", tmp.0.join("dir-link")).unwrap();
    nix::unistd::mkfifo(&tmp.0.join("fifo"), Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    let hide = |name: &[u8]| name == b"404.html";
    for format in [ListingFormat::Html, ListingFormat::Json] {
        let (out, n) = tmp.render_with("", BY_NAME, format, &hide, MAX_ENTRIES);
        assert_eq!(n, 1, "{out}");
        assert!(out.contains("shown.txt"), "{out}");
        for absent in ["secret", ".git", "404", "link", "fifo"] {
            assert!(!out.contains(absent), "{absent} in {out}");
        }
    }
    let (out, n) = tmp.render_with("", BY_NAME, ListingFormat::Json, &|_| false, MAX_ENTRIES);
    assert_eq!(n, 2, "without hide, 404.html is listed: {out}");
}

/// Names, sizes and times chosen so every key orders them differently, with a tie on size
/// (`b`, `c`) broken by name, and directories whose own order differs by key too. `z` is
/// the larger directory to the filesystem, which a sort by size must not heed.
fn sorting_fixture() -> TempDir {
    let tmp = TempDir::new();
    tmp.file("a", 30, WHEN + 20).file("b", 10, WHEN + 30).file("c", 10, WHEN).file("d", 20, WHEN + 10);
    tmp.dir("y", WHEN).dir("z", WHEN + 40);
    for i in 0..40 {
        fs::write(tmp.0.join("z").join(format!("{i:0200}")), b"").unwrap();
    }
    set_modified(&tmp.0.join("z"), WHEN + 40);
    let dir_size = |name| fs::metadata(tmp.0.join(name)).unwrap().len();
    assert!(dir_size("z") > dir_size("y"), "the fixture needs z larger than y");
    tmp
}

#[test]
fn directories_first_then_each_key_in_each_order() {
    let tmp = sorting_fixture();
    assert_eq!(tmp.order(SortKey::Name, false), ["y", "z", "a", "b", "c", "d"]);
    assert_eq!(tmp.order(SortKey::Name, true), ["z", "y", "d", "c", "b", "a"]);
    assert_eq!(tmp.order(SortKey::Size, false), ["y", "z", "b", "c", "d", "a"]);
    assert_eq!(tmp.order(SortKey::Size, true), ["y", "z", "a", "d", "b", "c"]);
    assert_eq!(tmp.order(SortKey::Modified, false), ["y", "z", "c", "d", "a", "b"]);
    assert_eq!(tmp.order(SortKey::Modified, true), ["z", "y", "b", "a", "d", "c"]);
}

#[test]
fn html_rows_follow_the_sort_and_headers_toggle_it() {
    let tmp = sorting_fixture();
    let html = tmp.render("", Sort { key: SortKey::Size, descending: false }, ListingFormat::Html);
    let at = |name: &str| html.find(&format!("\">{name}</a>")).unwrap_or_else(|| panic!("{name} in {html}"));
    let rows = ["y/", "z/", "b", "c", "d", "a"].map(at);
    assert!(rows.is_sorted(), "{html}");
    assert!(html.contains("<a href=\"?sort=size&amp;order=desc\">Size</a> &uarr;"), "{html}");
    assert!(html.contains("<a href=\"?sort=name&amp;order=asc\">Name</a></th>"), "{html}");
    assert!(html.contains("<a href=\"?sort=modified&amp;order=asc\">Modified</a></th>"), "{html}");
    let html = tmp.render("", Sort { key: SortKey::Modified, descending: true }, ListingFormat::Html);
    assert!(html.contains("<a href=\"?sort=modified&amp;order=asc\">Modified</a> &darr;"), "{html}");
    assert!(html.contains("<a href=\"?sort=size&amp;order=asc\">Size</a></th>"), "{html}");
}

#[test]
fn html_page_title_parent_row_sizes_and_dates() {
    let tmp = TempDir::new();
    tmp.file("small.txt", 12, WHEN).file("big.bin", 1234, WHEN).dir("sub", WHEN);
    let html = tmp.render("docs", BY_NAME, ListingFormat::Html);
    assert!(html.starts_with("<!DOCTYPE html>\n"), "{html}");
    assert!(html.ends_with("</html>\n"), "{html}");
    assert!(html.contains("<title>Index of /docs/</title>"), "{html}");
    assert!(html.contains("<h1>Index of /docs/</h1>"), "{html}");
    assert!(html.contains("<a href=\"../\">../</a>"), "{html}");
    assert!(html.contains("title=\"12 bytes\">12 B</td><td>2026-12-07 06:51</td>"), "{html}");
    assert!(html.contains("title=\"1234 bytes\">1.2 KiB</td>"), "{html}");
    assert!(html.contains("<a href=\"sub/\">sub/</a></td><td class=\"size\">-</td>"), "{html}");
    assert!(!html.contains("cut"), "{html}");
    let root = tmp.render("", BY_NAME, ListingFormat::Html);
    assert!(root.contains("<title>Index of /</title>") && root.contains("<h1>Index of /</h1>"), "{root}");
    assert!(!root.contains("../"), "{root}");
    let odd = tmp.render("a<b>/c d", BY_NAME, ListingFormat::Html);
    assert!(odd.contains("<title>Index of /a&lt;b&gt;/c d/</title>"), "{odd}");
    assert_eq!(tmp.render("docs", BY_NAME, ListingFormat::Html), html, "the same state, the same page");
}

#[test]
fn human_sizes() {
    let human = |n: u64| {
        let mut out = Vec::new();
        human_size(n, &mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(human(0), "0 B");
    assert_eq!(human(1023), "1023 B");
    assert_eq!(human(1024), "1.0 KiB");
    assert_eq!(human(1024 * 1024 - 1), "1023.9 KiB");
    assert_eq!(human(5 * 1024 * 1024 * 1024 + 1), "5.0 GiB");
    assert_eq!(human(u64::MAX), "15.9 EiB");
}

#[test]
fn json_has_exactly_its_fields() {
    let tmp = TempDir::new();
    tmp.file("a.txt", 12, WHEN).dir("sub", WHEN + 1);
    let json = tmp.json("docs", BY_NAME);
    let expected = serde_json::json!({
        "path": "/docs/",
        "entries": [
            {"name": "sub", "type": "dir", "size": null, "modified": "2026-12-07T06:51:29Z"},
            {"name": "a.txt", "type": "file", "size": 12, "modified": "2026-12-07T06:51:28Z"},
        ],
        "truncated": false,
    });
    assert_eq!(json, expected);
    assert_eq!(tmp.json("", BY_NAME)["path"], "/");
    let empty = TempDir::new();
    assert_eq!(empty.json("", BY_NAME), serde_json::json!({"path": "/", "entries": [], "truncated": false}));
}

#[test]
fn the_cap_keeps_the_first_entries_in_order_and_says_so() {
    let tmp = sorting_fixture();
    let names = |out: &str| -> Vec<String> {
        let json: Value = serde_json::from_str(out).unwrap();
        assert_eq!(json["truncated"], true, "{out}");
        json["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    };
    let size_desc = Sort { key: SortKey::Size, descending: true };
    for (sort, cap, first) in [
        (BY_NAME, 3, vec!["y", "z", "a"]),
        (size_desc, 4, vec!["y", "z", "a", "d"]),
        (Sort { key: SortKey::Name, descending: true }, 1, vec!["z"]),
        (BY_NAME, 0, vec![]),
    ] {
        let (out, n) = tmp.render_with("", sort, ListingFormat::Json, &|_| false, cap);
        assert_eq!(n, cap, "{out}");
        assert_eq!(names(&out), first, "{sort:?} cap {cap}");
    }
    let (html, n) = tmp.render_with("", BY_NAME, ListingFormat::Html, &|_| false, 2);
    assert_eq!(n, 2);
    assert!(html.contains("<p>Listing cut: only the first 2 entries are shown.</p>"), "{html}");
    let (out, n) = tmp.render_with("", BY_NAME, ListingFormat::Json, &|_| false, 6);
    assert_eq!(n, 6);
    assert!(out.ends_with("],\"truncated\":false}"), "exactly the cap is not cut: {out}");
}

#[test]
fn render_reads_only_a_directory() {
    let tmp = TempDir::new();
    tmp.file("f", 1, WHEN);
    let file = File::open(tmp.0.join("f")).unwrap();
    let mut out = Vec::new();
    assert!(render(&file, b"f", BY_NAME, ListingFormat::Html, &|_| false, &mut out).is_err());
}

#[test]
fn format_from_query_then_accept() {
    use ListingFormat::{Html, Json};
    let f = |accept: Option<&str>, query: Option<&str>| format_for(accept.map(str::as_bytes), query.map(str::as_bytes));
    assert_eq!(f(None, None), Html);
    assert_eq!(f(None, Some("format=json")), Json);
    assert_eq!(f(None, Some("sort=size&format=json&order=desc")), Json);
    assert_eq!(f(None, Some("format=jsonx")), Html);
    assert_eq!(f(None, Some("xformat=json")), Html);
    assert_eq!(f(Some("application/json"), Some("format=html")), Html);
    assert_eq!(f(Some("application/json"), None), Json);
    assert_eq!(f(Some("Application/JSON"), None), Json);
    assert_eq!(f(Some("text/html, application/json"), None), Html);
    assert_eq!(f(Some("application/json, text/html"), None), Html);
    assert_eq!(f(Some("application/json, text/html;q=0.9"), None), Json);
    assert_eq!(f(Some("text/html;q=0.5, application/json;q=0.8"), None), Json);
    assert_eq!(f(Some("text/html;q=0.8, application/json;q=0.5"), None), Html);
    assert_eq!(f(Some("application/json;q=0"), None), Html);
    assert_eq!(f(Some("*/*"), None), Html);
    assert_eq!(f(Some("application/*, text/*;q=0.1"), None), Json);
    assert_eq!(f(Some("application/json, */*;q=0.8"), None), Json);
    assert_eq!(f(Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), None), Html);
    assert_eq!(f(Some("application/json;q=2, text/html;q=0.1"), None), Html);
}

#[test]
fn quality_values() {
    assert_eq!(quality(b"application/json", b"application", b"json"), 1000);
    assert_eq!(quality(b"*/*;q=0.2, application/*;q=0.5", b"application", b"json"), 500);
    assert_eq!(quality(b"application/*;q=0.5, application/json ; Q=0.25", b"application", b"json"), 250);
    assert_eq!(quality(b"text/plain", b"application", b"json"), 0);
    for (q, v) in [("0", Some(0)), ("0.5", Some(500)), ("0.125", Some(125)), ("1", Some(1000)), ("1.000", Some(1000))] {
        assert_eq!(crate::http::fields::qvalue(q.as_bytes()), v, "{q}");
    }
    for q in ["1.5", "2", "0.1234", "", ".5", "0.x", "-1"] {
        assert_eq!(crate::http::fields::qvalue(q.as_bytes()), None, "{q}");
    }
}

#[test]
fn sort_from_query_cases() {
    let s = |q: Option<&str>| sort_from_query(q.map(str::as_bytes));
    let sort = |key, descending| Sort { key, descending };
    assert_eq!(s(None), sort(SortKey::Name, false));
    assert_eq!(s(Some("")), sort(SortKey::Name, false));
    assert_eq!(s(Some("sort=size")), sort(SortKey::Size, false));
    assert_eq!(s(Some("sort=modified&order=desc")), sort(SortKey::Modified, true));
    assert_eq!(s(Some("order=desc&sort=name")), sort(SortKey::Name, true));
    assert_eq!(s(Some("sort=size&order=asc")), sort(SortKey::Size, false));
    assert_eq!(s(Some("sort=bogus&order=sideways")), sort(SortKey::Name, false));
    assert_eq!(s(Some("sort=SIZE&order=DESC")), sort(SortKey::Name, false));
    assert_eq!(s(Some("sort=size&sort=modified")), sort(SortKey::Modified, false));
    assert_eq!(s(Some("resort=size&border=desc")), sort(SortKey::Name, false));
}
