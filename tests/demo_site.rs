//! The demo site in `./html` (what `make run` serves) shows what the README promises: each
//! test is one of the README's `curl` commands against the real binary on the repository's
//! own `html/`, so an edit that breaks the walkthrough fails here.

mod common;

use common::{Response, Server};
use std::path::PathBuf;

for_each_backend!(
    etag_then_if_none_match_is_304,
    range_first_100_bytes_is_206,
    gzip_sibling_served_for_accept_encoding_gzip,
    br_sibling_served_for_accept_encoding_br,
    directory_without_slash_redirects,
    index_describes_the_server,
);

/// The repository's demo docroot, as `make run` serves it.
fn html() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("html")
}

fn demo_file(rel: &str) -> Vec<u8> {
    let p = html().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (the demo site needs it)", p.display()))
}

/// `GET target` as `curl -i` sends it (Host, User-Agent, Accept), with `extra` header lines.
fn curl(server: &Server, target: &str, extra: &[&str]) -> Response {
    let mut raw = format!("GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: curl/8\r\nAccept: */*\r\n", server.addr);
    for h in extra {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    server.get(&raw)
}

/// The status and header fields of `r`, for failure messages (bodies can be binary).
fn head(r: &Response) -> String {
    let fields: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    format!("{} {} [{}]", r.version, r.status, fields.join(", "))
}

/// `curl -i --etag-save F /`, then `curl -i --etag-compare F /`.
fn etag_then_if_none_match_is_304() {
    let server = Server::start(&html(), &[]);
    let r = curl(&server, "/", &[]);
    assert_eq!(r.status, 200, "{}", head(&r));
    assert!(r.body == demo_file("index.html"), "GET / is not html/index.html");
    let etag = r.header("ETag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "not a strong ETag: {etag}");

    let r = curl(&server, "/", &[&format!("If-None-Match: {etag}")]);
    assert_eq!(r.status, 304, "{}", head(&r));
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
}

/// `curl -i -r 0-99 /large.txt`.
fn range_first_100_bytes_is_206() {
    let whole = demo_file("large.txt");
    // Big enough to go out with sendfile (over 64 KiB), small enough for the repository.
    assert!((64 * 1024 + 1..=256 * 1024).contains(&whole.len()), "large.txt is {} bytes", whole.len());
    let server = Server::start(&html(), &[]);
    let r = curl(&server, "/large.txt", &["Range: bytes=0-99"]);
    assert_eq!(r.status, 206, "{}", head(&r));
    assert_eq!(r.header("Content-Range"), Some(format!("bytes 0-99/{}", whole.len()).as_str()));
    assert_eq!(r.header("Content-Length"), Some("100"));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert!(r.body == whole[..100], "not the first 100 bytes of large.txt: {:?}", String::from_utf8_lossy(&r.body));
}

/// `curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' /style.css`.
fn gzip_sibling_served_for_accept_encoding_gzip() {
    precompressed("gzip", "style.css.gz");
}

/// `curl -s -D - -o /dev/null -H 'Accept-Encoding: br' /style.css`.
fn br_sibling_served_for_accept_encoding_br() {
    precompressed("br", "style.css.br");
}

fn precompressed(coding: &str, sibling: &str) {
    let body = demo_file(sibling);
    let server = Server::start(&html(), &[]);
    let r = curl(&server, "/style.css", &[&format!("Accept-Encoding: {coding}")]);
    assert_eq!(r.status, 200, "{}", head(&r));
    assert_eq!(r.header("Content-Encoding"), Some(coding), "{}", head(&r));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert!(r.body == body, "Accept-Encoding: {coding} did not get html/{sibling}");
}

/// `curl -i /docs`.
fn directory_without_slash_redirects() {
    let server = Server::start(&html(), &[]);
    let r = curl(&server, "/docs", &[]);
    assert_eq!(r.status, 301, "{}", head(&r));
    assert_eq!(r.header("Location"), Some("/docs/"));
    let r = curl(&server, "/docs/", &[]);
    assert_eq!(r.status, 200, "{}", head(&r));
    assert!(r.body == demo_file("docs/index.html"), "GET /docs/ is not html/docs/index.html");
}

/// `curl -i /`: the start page says what serves it and links to each demo.
fn index_describes_the_server() {
    let server = Server::start(&html(), &[]);
    let r = curl(&server, "/", &[]);
    assert_eq!(r.status, 200, "{}", head(&r));
    let page = r.body_str();
    assert!(page.contains("io_uring"), "index.html does not mention io_uring");
    for link in ["href=\"/docs\"", "href=\"/style.css\"", "href=\"/large.txt\""] {
        assert!(page.contains(link), "index.html lacks {link}");
    }
}

/// The siblings are the original, compressed: the gzip trailer's CRC-32 and size (RFC 1952)
/// match style.css, and so does `brotli -d` where that tool is installed.
#[test]
fn precompressed_siblings_match_their_original() {
    let css = demo_file("style.css");
    let gz = demo_file("style.css.gz");
    assert!(gz.starts_with(&[0x1f, 0x8b, 8]), "style.css.gz is not gzip");
    let trailer = &gz[gz.len() - 8..];
    let crc = u32::from_le_bytes(trailer[..4].try_into().unwrap());
    let size = u32::from_le_bytes(trailer[4..].try_into().unwrap());
    assert_eq!((crc, size as usize), (crc32(&css), css.len()), "style.css.gz is stale: regenerate it (gzip -9 -n -k)");

    let br = std::process::Command::new("brotli").args(["-dc", "--"]).arg(html().join("style.css.br")).output();
    match br {
        Ok(out) if out.status.success() => {
            assert!(out.stdout == css, "style.css.br is stale: regenerate it (brotli -q 11 -k)")
        }
        Ok(out) => panic!("brotli -d failed on style.css.br: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => eprintln!("brotli not installed: style.css.br not checked against style.css"),
    }
}

/// CRC-32 (IEEE, reflected), as gzip's trailer holds it.
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        (0..8).fold(crc ^ u32::from(b), |c, _| if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 })
    })
}
