mod common;

use common::{Response, Server, TempDir};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

for_each_backend!(
    origin_and_absolute_form,
    query_is_ignored,
    percent_decoding_happens_once,
    double_decoding_does_not_reach_other_file,
    bad_escape_nul_and_backslash_are_400,
    dotdot_cannot_climb_above_root,
    dotdot_inside_root_and_double_slash,
    symlinks_out_of_root_are_404_inside_are_served,
    dotfiles_are_404,
    directory_redirects_and_index,
    content_type_by_extension,
    etag_and_last_modified_shape,
    if_none_match_304,
    if_modified_since,
    if_none_match_takes_precedence_over_if_modified_since,
    single_byte_ranges,
    unsatisfiable_ranges_are_416,
    ranges_served_whole,
    head_with_range_is_200_without_body,
    if_range,
    large_file_full_and_range,
    large_file_pipelined_twice,
    precompressed_negotiation,
    precompressed_variant_has_its_own_etag,
    changed_and_deleted_files_are_noticed,
    two_shards_both_serve,
);

// The course's models serve through the same http/files/conn layers (c10k-models).
for_each_model!(if_none_match_304, single_byte_ranges, large_file_full_and_range, dotdot_cannot_climb_above_root);

// ---------------------------------------------------------------------------------------
// Helpers local to this file.
// ---------------------------------------------------------------------------------------

/// Contents of the file placed NEXT TO the root; it must never be served.
const SECRET: &[u8] = b"TOP-SECRET-7f3a9c-outside-the-root";

/// A fixture: `outer/` holds `secret.txt` and `outside/` (both outside the root) and
/// `root/`, the directory served.
struct Context {
    outer: TempDir,
    root: PathBuf,
}

impl Context {
    fn new(tag: &str) -> Context {
        let outer = TempDir::new(tag);
        outer.write("secret.txt", SECRET);
        outer.write("outside/secret2.txt", SECRET);
        let root = outer.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        Context { outer, root }
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.root.join(rel)).unwrap();
    }

    fn secret_path(&self) -> PathBuf {
        self.outer.path().join("secret.txt")
    }

    fn start(&self, extra: &[&str]) -> Server {
        Server::start(&self.root, extra)
    }
}

/// `GET target` with `Host: x` and the extra header lines (each without CRLF).
fn get(server: &Server, target: &str, headers: &[&str]) -> Response {
    server.get(&common::request("GET", target, headers))
}

fn head(server: &Server, target: &str, headers: &[&str]) -> Response {
    server.get(&common::request("HEAD", target, headers))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// 100 ASCII bytes whose value tells their position.
fn hundred() -> Vec<u8> {
    (0..100u8).map(|i| b'!' + (i % 90)).collect()
}

fn set_mtime(p: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
}

/// IMF-fixdate shape: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn is_imf_fixdate(v: &str) -> bool {
    let b = v.as_bytes();
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 29
        && DAYS.contains(&&v[0..3])
        && &v[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&v[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &v[25..] == " GMT"
}

/// A strong entity-tag: `"..."` with no inner quote, not `W/`.
fn is_strong_etag(v: &str) -> bool {
    v.len() >= 2
        && v.starts_with('"')
        && v.ends_with('"')
        && !v[1..v.len() - 1].contains('"')
        && v[1..v.len() - 1].bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
}

// ---------------------------------------------------------------------------------------
// Target → path
// ---------------------------------------------------------------------------------------

fn target_site() -> Context {
    let s = Context::new("targets");
    s.write("a.txt", "AAA\n");
    s.write("a b.txt", "SPACE\n");
    s.write("%61.txt", "LITERAL-PERCENT\n");
    s.write("sub/index.html", "<p>sub</p>\n");
    s.write("index.html", "<p>root</p>\n");
    s
}

fn origin_and_absolute_form() {
    let s = target_site();
    let server = s.start(&[]);
    let r = get(&server, "/a.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"AAA\n");
    let r = get(&server, "http://x/a.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"AAA\n");
}

fn query_is_ignored() {
    let s = target_site();
    let server = s.start(&[]);
    let r = get(&server, "/a.txt?x=1", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"AAA\n");
}

fn percent_decoding_happens_once() {
    let s = target_site();
    let server = s.start(&[]);
    let r = get(&server, "/a%20b.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"SPACE\n");
    // %25 → '%', and the result is NOT decoded again: the file is literally "%61.txt".
    let r = get(&server, "/%2561.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"LITERAL-PERCENT\n");
}

fn double_decoding_does_not_reach_other_file() {
    let s = Context::new("dbl");
    s.write("a.txt", "AAA\n");
    let server = s.start(&[]);
    // Without "%61.txt" on disk, "/%2561.txt" must be 404, not a.txt.
    let r = get(&server, "/%2561.txt", &[]);
    assert_eq!(r.status, 404);
    assert!(!contains(&r.body, b"AAA"));
}

fn bad_escape_nul_and_backslash_are_400() {
    let s = target_site();
    let server = s.start(&[]);
    for t in ["/%zz", "/%4", "/a%00b", "/a\\b", "/%5c", "/a%5Cb.txt"] {
        assert_eq!(get(&server, t, &[]).status, 400, "{t}");
    }
}

fn dotdot_cannot_climb_above_root() {
    let s = target_site();
    let server = s.start(&[]);
    for t in [
        "/../x",
        "/a/../../x",
        "/%2e%2e/x",
        "/..%2f..%2fetc/passwd",
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2fsecret.txt",
        "/..%2fsecret.txt",
        "/./../secret.txt",
        "http://x/../secret.txt",
        "/..",
    ] {
        let r = get(&server, t, &[]);
        assert!(r.status == 400 || r.status == 404, "{t}: status {}", r.status);
        assert!(!contains(&r.body, SECRET), "{t} leaked the secret");
    }
}

fn dotdot_inside_root_and_double_slash() {
    let s = target_site();
    let server = s.start(&[]);
    let r = get(&server, "/sub/../a.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"AAA\n");
    // "//a.txt" is a path, not a network-path reference to host "a.txt".
    let r = get(&server, "//a.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"AAA\n");
}

// ---------------------------------------------------------------------------------------
// Symlinks and dotfiles
// ---------------------------------------------------------------------------------------

fn symlinks_out_of_root_are_404_inside_are_served() {
    use std::os::unix::fs::symlink;
    let s = Context::new("symlinks");
    s.write("a.txt", "AAA\n");
    s.mkdir("sub");
    symlink(s.secret_path(), s.root.join("abs_link")).unwrap();
    symlink("../secret.txt", s.root.join("rel_link")).unwrap();
    symlink(s.outer.path().join("outside"), s.root.join("outdir")).unwrap();
    symlink("../outside", s.root.join("outdir_rel")).unwrap();
    symlink("a.txt", s.root.join("inside_link")).unwrap();
    symlink("../a.txt", s.root.join("sub/up_link")).unwrap();
    let server = s.start(&[]);
    for t in ["/abs_link", "/rel_link", "/outdir/secret2.txt", "/outdir_rel/secret2.txt"] {
        let r = get(&server, t, &[]);
        assert_eq!(r.status, 404, "{t}");
        assert!(!contains(&r.body, SECRET), "{t} leaked the secret");
    }
    // A directory symlink out of the root must not even redirect into it.
    for t in ["/outdir", "/outdir/"] {
        let r = get(&server, t, &[]);
        assert_eq!(r.status, 404, "{t}");
    }
    for t in ["/inside_link", "/sub/up_link"] {
        let r = get(&server, t, &[]);
        assert_eq!(r.status, 200, "{t}");
        assert_eq!(r.body, b"AAA\n", "{t}");
    }
}

fn dotfiles_are_404() {
    let s = Context::new("dotfiles");
    s.write(".env", "SECRET_ENV=1\n");
    s.write(".git/config", "[core]\n");
    s.write("sub/.hidden", "hidden\n");
    s.write("sub/visible.txt", "visible\n");
    let server = s.start(&[]);
    for t in ["/.env", "/.git/config", "/sub/.hidden", "/%2eenv", "/sub/%2Ehidden"] {
        let r = get(&server, t, &[]);
        assert_eq!(r.status, 404, "{t}");
    }
    assert_eq!(get(&server, "/sub/visible.txt", &[]).status, 200);
}

// ---------------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------------

fn directory_redirects_and_index() {
    let s = Context::new("dirs");
    s.write("index.html", "<p>root</p>\n");
    s.write("sub/index.html", "<p>sub</p>\n");
    s.write("noindex/file.txt", "f\n");
    let server = s.start(&[]);

    let r = get(&server, "/sub", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/sub/"));

    let r = get(&server, "/sub?x=1", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/sub/?x=1"));

    let r = get(&server, "//sub", &[]);
    assert_eq!(r.status, 301);
    let loc = r.header("Location").expect("Location");
    assert!(!loc.starts_with("//"), "Location {loc:?} would be a network-path reference");
    assert_eq!(loc, "/sub/");

    let r = get(&server, "/sub/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<p>sub</p>\n");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));

    let r = get(&server, "/noindex/", &[]);
    assert_eq!(r.status, 404);
    assert!(!contains(&r.body, b"file.txt"), "no directory listing");

    let r = get(&server, "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<p>root</p>\n");
}

// ---------------------------------------------------------------------------------------
// Content-Type
// ---------------------------------------------------------------------------------------

fn content_type_by_extension() {
    let s = Context::new("ctype");
    for (name, _) in CTYPES {
        s.write(name, "x");
    }
    let server = s.start(&[]);
    for (name, want) in CTYPES {
        let r = get(&server, &format!("/{name}"), &[]);
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("Content-Type"), Some(*want), "{name}");
    }
}

const CTYPES: &[(&str, &str)] = &[
    ("page.html", "text/html; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("logo.png", "image/png"),
    ("notes.txt", "text/plain; charset=utf-8"),
    ("data.zzqqx", "application/octet-stream"),
    ("noextension", "application/octet-stream"),
];

// ---------------------------------------------------------------------------------------
// Validators and conditional requests
// ---------------------------------------------------------------------------------------

/// 2020-01-01T00:00:00Z, a Wednesday.
const MTIME: u64 = 1_577_836_800;
const MTIME_STR: &str = "Wed, 01 Jan 2020 00:00:00 GMT";

fn validator_site() -> Context {
    let s = Context::new("validators");
    let p = s.write("a.txt", "hello validators\n");
    set_mtime(&p, MTIME);
    s.write("b.txt", "BBB\n");
    s
}

fn etag_and_last_modified_shape() {
    let s = validator_site();
    let server = s.start(&[]);
    let r = get(&server, "/a.txt", &[]);
    assert_eq!(r.status, 200);
    let etag = r.header("ETag").expect("ETag");
    assert!(is_strong_etag(etag), "ETag {etag:?} is not a strong quoted tag");
    let lm = r.header("Last-Modified").expect("Last-Modified");
    assert!(is_imf_fixdate(lm), "Last-Modified {lm:?} is not an IMF-fixdate");
    assert_eq!(lm, MTIME_STR);
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(r.header("Content-Length"), Some("17"));
    // Same file, same ETag on a second look.
    assert_eq!(get(&server, "/a.txt", &[]).header("ETag"), Some(etag));
}

fn if_none_match_304() {
    let s = validator_site();
    let server = s.start(&[]);
    let etag = get(&server, "/a.txt", &[]).header("ETag").unwrap().to_string();
    for inm in [etag.clone(), format!("\"x\", {etag}"), format!("W/{etag}"), "*".to_string()] {
        // Pipeline a second request behind: if the 304 carried a body, it would be
        // mistaken for the next response.
        let raw = common::request("GET", "/a.txt", &[&format!("If-None-Match: {inm}")])
            + &common::request("GET", "/b.txt", &[]);
        let (v, _) = server.exchange(raw.as_bytes(), 2, false);
        assert_eq!(v.len(), 2, "If-None-Match: {inm}");
        assert_eq!(v[0].status, 304, "If-None-Match: {inm}");
        assert_eq!(v[0].header("ETag"), Some(etag.as_str()), "If-None-Match: {inm}");
        assert_eq!(v[0].header("Content-Length"), Some("17"), "If-None-Match: {inm}");
        assert_eq!(v[1].status, 200);
        assert_eq!(v[1].body, b"BBB\n", "the 304 must have had no body");
    }
    let r = get(&server, "/a.txt", &["If-None-Match: \"some-other-tag\""]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello validators\n");
}

fn if_modified_since() {
    let s = validator_site();
    let server = s.start(&[]);
    let cases = [
        (MTIME_STR, 304),
        ("Thu, 02 Jan 2020 00:00:00 GMT", 304),
        ("Wed, 01 Jan 2020 00:00:01 GMT", 304),
        ("Tue, 31 Dec 2019 23:59:59 GMT", 200),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 200),
        ("not a date at all", 200),
        ("Wed, 32 Jan 2020 00:00:00 GMT", 200),
    ];
    for (ims, want) in cases {
        let r = get(&server, "/a.txt", &[&format!("If-Modified-Since: {ims}")]);
        assert_eq!(r.status, want, "If-Modified-Since: {ims}");
        if want == 200 {
            assert_eq!(r.body, b"hello validators\n");
        }
    }
}

fn if_none_match_takes_precedence_over_if_modified_since() {
    let s = validator_site();
    let server = s.start(&[]);
    let r = get(&server, "/a.txt", &["If-None-Match: \"nope\"", &format!("If-Modified-Since: {MTIME_STR}")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello validators\n");
}

// ---------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------

fn range_site() -> Context {
    let s = Context::new("ranges");
    s.write("h.bin", hundred());
    s.write("b.txt", "BBB\n");
    s
}

fn single_byte_ranges() {
    let s = range_site();
    let server = s.start(&[]);
    let all = hundred();
    let cases: &[(&str, usize, usize)] =
        &[("bytes=0-9", 0, 9), ("bytes=90-", 90, 99), ("bytes=-5", 95, 99), ("bytes=95-200", 95, 99)];
    for &(range, first, last) in cases {
        let r = get(&server, "/h.bin", &[&format!("Range: {range}")]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("Content-Range"), Some(format!("bytes {first}-{last}/100").as_str()), "{range}");
        assert_eq!(r.header("Content-Length"), Some((last - first + 1).to_string().as_str()), "{range}");
        assert_eq!(r.body, &all[first..=last], "{range}");
    }
}

fn unsatisfiable_ranges_are_416() {
    let s = range_site();
    let server = s.start(&[]);
    for range in ["bytes=100-", "bytes=-0", "bytes=150-200"] {
        let r = get(&server, "/h.bin", &[&format!("Range: {range}")]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("Content-Range"), Some("bytes */100"), "{range}");
        assert!(!contains(&r.body, &hundred()[..20]), "{range}: no file bytes in a 416");
    }
}

fn ranges_served_whole() {
    let s = range_site();
    let server = s.start(&[]);
    for range in ["bytes=0-1,5-6", "items=0-1"] {
        let r = get(&server, "/h.bin", &[&format!("Range: {range}")]);
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.body, hundred(), "{range}");
        assert_eq!(r.header("Content-Range"), None, "{range}");
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    }
}

fn head_with_range_is_200_without_body() {
    let s = range_site();
    let server = s.start(&[]);
    let raw = common::request("HEAD", "/h.bin", &["Range: bytes=0-9"]) + &common::request("GET", "/b.txt", &[]);
    let mut st = server.connect();
    std::io::Write::write_all(&mut st, raw.as_bytes()).unwrap();
    let mut rd = common::Reader::new(st.try_clone().unwrap());
    let h = rd.response(true).expect("HEAD response");
    assert_eq!(h.status, 200);
    assert_eq!(h.header("Content-Length"), Some("100"));
    assert_eq!(h.header("Content-Range"), None);
    let g = rd.response(false).expect("GET after HEAD");
    assert_eq!(g.status, 200);
    assert_eq!(g.body, b"BBB\n", "the HEAD response must have had no body");
    // The plain helper too.
    assert_eq!(head(&server, "/h.bin", &["Range: bytes=0-9"]).status, 200);
}

fn if_range() {
    let s = range_site();
    let server = s.start(&[]);
    let etag = get(&server, "/h.bin", &[]).header("ETag").unwrap().to_string();
    let r = get(&server, "/h.bin", &["Range: bytes=0-9", &format!("If-Range: {etag}")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &hundred()[..10]);
    let r = get(&server, "/h.bin", &["Range: bytes=0-9", "If-Range: \"another-tag\""]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, hundred());
}

const LARGE: usize = (1 << 20) + 123;

fn large_site() -> (Context, Vec<u8>) {
    let s = Context::new("large");
    let data = pseudo_random(LARGE, 0x1234_5678_9abc_def1);
    s.write("big.bin", &data);
    (s, data)
}

fn large_file_full_and_range() {
    let (s, data) = large_site();
    let server = s.start(&[]);
    let r = get(&server, "/big.bin", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some(LARGE.to_string().as_str()));
    assert!(r.body == data, "large body differs");

    let (first, last) = (500_001usize, 700_123usize);
    let r = get(&server, "/big.bin", &[&format!("Range: bytes={first}-{last}")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some(format!("bytes {first}-{last}/{LARGE}").as_str()));
    assert!(r.body == data[first..=last], "large range body differs");

    let r = get(&server, "/big.bin", &["Range: bytes=-1000"]);
    assert_eq!(r.status, 206);
    assert!(r.body == data[LARGE - 1000..], "large suffix range differs");
}

fn large_file_pipelined_twice() {
    let (s, data) = large_site();
    let server = s.start(&[]);
    let raw = common::request("GET", "/big.bin", &[]) + &common::request("GET", "/big.bin", &[]);
    let (v, _) = server.exchange(raw.as_bytes(), 2, false);
    assert_eq!(v.len(), 2);
    for r in &v {
        assert_eq!(r.status, 200);
        assert!(r.body == data, "pipelined large body differs");
    }
}

// ---------------------------------------------------------------------------------------
// Precompressed siblings
// ---------------------------------------------------------------------------------------

const CSS: &[u8] = b"body { color: red }\n";
const CSS_GZ: &[u8] = b"GZIP-VARIANT-BYTES";
const CSS_BR: &[u8] = b"BROTLI-VARIANT";

fn precompressed_site() -> Context {
    let s = Context::new("precomp");
    s.write("style.css", CSS);
    s.write("style.css.gz", CSS_GZ);
    s.write("style.css.br", CSS_BR);
    s.write("plain.css", CSS);
    s.write("only.js", "var a = 1;\n");
    s.write("only.js.gz", "GZ-ONLY");
    s
}

fn precompressed_negotiation() {
    let s = precompressed_site();
    let server = s.start(&[]);
    let cases: &[(&str, &[u8], Option<&str>)] = &[
        ("gzip", CSS_GZ, Some("gzip")),
        ("gzip, br", CSS_BR, Some("br")),
        ("br;q=0, gzip", CSS_GZ, Some("gzip")),
        ("gzip;q=0", CSS, None),
    ];
    for &(ae, body, coding) in cases {
        let r = get(&server, "/style.css", &[&format!("Accept-Encoding: {ae}")]);
        assert_eq!(r.status, 200, "{ae}");
        assert_eq!(r.body, body, "Accept-Encoding: {ae}");
        assert_eq!(r.header("Content-Encoding"), coding, "Accept-Encoding: {ae}");
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"), "Accept-Encoding: {ae}");
        assert_eq!(r.header("Content-Type"), Some("text/css; charset=utf-8"), "Accept-Encoding: {ae}");
        assert_eq!(r.header("Content-Length"), Some(body.len().to_string().as_str()));
    }
    let r = get(&server, "/style.css", &[]);
    assert_eq!(r.body, CSS);
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));

    let r = get(&server, "/plain.css", &["Accept-Encoding: gzip, br"]);
    assert_eq!(r.body, CSS);
    assert_eq!(r.header("Vary"), None);
    assert_eq!(r.header("Content-Encoding"), None);

    let r = get(&server, "/only.js", &["Accept-Encoding: br"]);
    assert_eq!(r.body, b"var a = 1;\n");
    assert_eq!(r.header("Content-Encoding"), None);
}

fn precompressed_variant_has_its_own_etag() {
    let s = precompressed_site();
    let server = s.start(&[]);
    let id = get(&server, "/style.css", &[]);
    let gz = get(&server, "/style.css", &["Accept-Encoding: gzip"]);
    let (id_tag, gz_tag) = (id.header("ETag").unwrap(), gz.header("ETag").unwrap());
    assert!(is_strong_etag(gz_tag), "{gz_tag}");
    assert_ne!(id_tag, gz_tag);
    // The identity ETag must not validate the gzip variant.
    let r = get(&server, "/style.css", &["Accept-Encoding: gzip", &format!("If-None-Match: {id_tag}")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, CSS_GZ);
    let r = get(&server, "/style.css", &["Accept-Encoding: gzip", &format!("If-None-Match: {gz_tag}")]);
    assert_eq!(r.status, 304);
    assert_eq!(r.header("ETag"), Some(gz_tag));
}

// ---------------------------------------------------------------------------------------
// Cache revalidation
// ---------------------------------------------------------------------------------------

fn changed_and_deleted_files_are_noticed() {
    let s = Context::new("reval");
    let p = s.write("v.txt", "version one\n");
    let server = s.start(&[]);
    assert_eq!(get(&server, "/v.txt", &[]).body, b"version one\n");

    std::fs::write(&p, "the second, longer version\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let r = get(&server, "/v.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"the second, longer version\n");

    std::fs::remove_file(&p).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get(&server, "/v.txt", &[]).status, 404);
}

// ---------------------------------------------------------------------------------------
// Two shards
// ---------------------------------------------------------------------------------------

fn two_shards_both_serve() {
    let s = Context::new("shards");
    s.write("a.txt", "AAA\n");
    let server = s.start(&["--shards", "2"]);
    let mut shards: Vec<_> = server.banner.iter().filter_map(|l| common::parse_shard_line(l)).collect();
    shards.sort();
    assert_eq!(shards.len(), 2, "banner: {:?}", server.banner);
    assert_eq!((shards[0].0, shards[1].0), (0, 1), "banner: {:?}", server.banner);
    assert_ne!(shards[0].1, shards[1].1, "distinct pids");
    for (_, _, backend) in &shards {
        assert_eq!(*backend, common::backend());
    }

    let mut conns = Vec::new();
    for _ in 0..32 {
        let mut c = server.connect();
        std::io::Write::write_all(&mut c, common::request("GET", "/a.txt", &[]).as_bytes()).unwrap();
        let mut rd = common::Reader::new(c.try_clone().unwrap());
        let r = rd.response(false).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"AAA\n");
        conns.push(c);
    }
    for (n, pid, _) in &shards {
        let socks = common::socket_fds(*pid);
        assert!(socks > 1, "shard {n} (pid {pid}) holds {socks} sockets: it accepted none of 32 connections");
    }
    drop(conns);
}
