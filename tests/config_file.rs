//! The configuration file through the real binary: per-path headers, error pages, the SPA
//! fallback, index names, the trailing-slash policy, redirects, directory listings,
//! virtual hosts (Host and SNI), a listener's redirect to HTTPS.

mod common;

use common::{Server, TempDir};

/// A site: `index.html`, `app.html` (the fallback), `404.html`, `assets/app.js`, `docs/`
/// (no index; `a&b <c>.txt`, `.hidden`, `oops.html`: the 404 page of docs), `blog/home.htm`.
fn site() -> TempDir {
    let root = TempDir::new("config-site");
    for (path, body) in [
        ("index.html", "home\n"),
        ("app.html", "app shell\n"),
        ("404.html", "our 404\n"),
        ("50x.html", "our 50x\n"),
        ("assets/app.js", "js\n"),
        ("docs/a&b <c>.txt", "doc\n"),
        ("docs/.hidden", "secret\n"),
        ("docs/oops.html", "docs 404\n"),
        ("docs/sub/x.txt", "x\n"),
        ("blog/home.htm", "blog home\n"),
        ("blog/index.html", "not this one\n"),
    ] {
        root.write(path, body);
    }
    root
}

/// Start with `toml`, after a line naming `root` as the root, as the configuration.
fn start(root: &TempDir, toml: &str) -> (Server, TempDir) {
    let dir = TempDir::new("config-file");
    let file = dir.write("c10k.toml", format!("root = {:?}\n{toml}", root.path().display().to_string()));
    let server = Server::start(root.path(), &["--config", &file.display().to_string(), "--listen", "127.0.0.1:0"]);
    (server, dir)
}

fn get(server: &Server, target: &str, extra: &str) -> common::Response {
    server.get(&format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n"))
}

fn header_rules_set_and_remove_fields_by_path() {
    let root = site();
    let toml = r#"
security_headers = true
[[headers]]
path = "/assets/**"
set = { Cache-Control = "public, max-age=31536000, immutable" }
remove = ["ETag"]
[[headers]]
path = "*.html"
set = { X-Frame-Options = "DENY" }
"#;
    let (server, _dir) = start(&root, toml);
    let js = get(&server, "/assets/app.js", "");
    assert_eq!((js.status, js.body_str()), (200, "js\n"));
    assert_eq!(js.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(js.header("etag"), None);
    assert_eq!(js.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(js.header("x-frame-options"), Some("SAMEORIGIN"));
    let home = get(&server, "/index.html", "");
    assert!(home.header("etag").is_some() && home.header("cache-control").is_none());
    // The later rule replaces the preset's value; HSTS is for TLS only.
    assert_eq!(home.header("x-frame-options"), Some("DENY"));
    assert_eq!(home.header("strict-transport-security"), None);
    // Errors and redirects carry them too; a 304 as well.
    assert_eq!(get(&server, "/nope", "").header("x-content-type-options"), Some("nosniff"));
    let etag = home.header("etag").unwrap().to_string();
    let not_modified = get(&server, "/index.html", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((not_modified.status, not_modified.header("x-frame-options")), (304, Some("DENY")));
}

fn error_pages_and_the_spa_fallback() {
    let root = site();
    let toml = r#"
fallback = "/app.html"
error_pages = { 404 = "/404.html", 50x = "/50x.html" }
"#;
    let (server, _dir) = start(&root, toml);
    let spa = get(&server, "/some/route", "");
    assert_eq!((spa.status, spa.body_str()), (200, "app shell\n"));
    // A path with an extension is a missing file, not a route.
    let missing = get(&server, "/missing.js", "");
    assert_eq!((missing.status, missing.body_str()), (404, "our 404\n"));
    assert_eq!(missing.header("content-type"), Some("text/html; charset=utf-8"));
    let hidden = get(&server, "/.env", "");
    assert_eq!((hidden.status, hidden.body_str()), (404, "our 404\n"));
    let head = server.get("HEAD /missing.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((head.status, head.header("content-length"), head.body.len()), (404, Some("8"), 0));
    assert_eq!(get(&server, "/index.html", "").body_str(), "home\n");
}

fn index_names_and_the_trailing_slash_policy() {
    let root = site();
    let toml = r#"
index = ["home.htm", "index.html"]
trailing_slash = "remove"
"#;
    let (server, _dir) = start(&root, toml);
    let blog = get(&server, "/blog", "");
    assert_eq!((blog.status, blog.body_str()), (200, "blog home\n"));
    let slash = get(&server, "/blog/?a=1", "");
    assert_eq!((slash.status, slash.header("location")), (301, Some("/blog?a=1")));
    assert_eq!(get(&server, "/", "").body_str(), "home\n");
    // A directory with none of the names, no listing, no fallback.
    assert_eq!(get(&server, "/docs", "").status, 404);
}

fn redirects_with_captures_keep_the_query() {
    let root = site();
    let toml = r#"
[[redirects]]
from = "/old/*"
to = "/new/$1"
status = 308
[[redirects]]
from = "/blog/**"
to = "https://blog.example.com/$1"
[[redirects]]
from = "/exact"
to = "/index.html"
status = 302
"#;
    let (server, _dir) = start(&root, toml);
    let old = get(&server, "/old/a%20b?x=1", "");
    assert_eq!((old.status, old.header("location")), (308, Some("/new/a%20b?x=1")));
    let blog = get(&server, "/blog/2024/post", "");
    assert_eq!((blog.status, blog.header("location")), (301, Some("https://blog.example.com/2024/post")));
    let exact = get(&server, "/exact", "");
    assert_eq!((exact.status, exact.header("location")), (302, Some("/index.html")));
    // Only the whole path: `/exact/more` is not `/exact`.
    assert_eq!(get(&server, "/exact/more", "").status, 404);
}

fn directory_listings_in_html_and_json() {
    let root = site();
    let toml = r#"
listing = ["/docs/", "/docs/**"]
error_pages = { 404 = "/docs/oops.html" }
"#;
    let (server, _dir) = start(&root, toml);
    let html = get(&server, "/docs/", "");
    assert_eq!((html.status, html.header("content-type")), (200, Some("text/html; charset=utf-8")));
    let page = html.body_str();
    assert!(page.contains("a&amp;b &lt;c&gt;.txt") && page.contains("href=\"a%26b%20%3Cc%3E.txt\""), "{page}");
    assert!(page.contains("sub/"), "{page}");
    assert!(!page.contains("hidden") && !page.contains("oops.html"), "{page}");
    let json = get(&server, "/docs/", "Accept: application/json\r\n");
    assert_eq!(json.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    let names: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sub", "a&b <c>.txt"]);
    // Not listed where not configured: the root has its index; /blog has none of its own.
    assert_eq!(get(&server, "/", "").body_str(), "home\n");
    assert_eq!(get(&server, "/blog/", "").body_str(), "not this one\n");
}

fn virtual_hosts_by_name_exact_before_wildcard() {
    let root = site();
    let other = TempDir::new("config-other");
    other.write("index.html", "other\n");
    let exact = TempDir::new("config-exact");
    exact.write("index.html", "exact\n");
    let toml = format!(
        "[[host]]\nnames = [\"*.other.test\", \"other.test\"]\nroot = \"{}\"\n\
         [[host]]\nnames = [\"www.other.test\"]\nroot = \"{}\"\n",
        other.path().display(),
        exact.path().display()
    );
    let (server, _dir) = start(&root, &toml);
    let on = |host: &str| server.get(&format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")).body_str().to_string();
    assert_eq!(on("other.test"), "other\n");
    assert_eq!(on("A.Other.Test:8080"), "other\n");
    assert_eq!(on("www.other.test"), "exact\n");
    assert_eq!(on("unknown.test"), "home\n");
    let bad = server.get("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n");
    assert_eq!(bad.status, 400);
}

/// Host and SNI must agree: a connection whose certificate was chosen for `localhost` gets
/// 421 for a host that name does not select.
fn host_and_sni_must_agree() {
    let root = site();
    let keys = TempDir::new("config-sni-keys");
    let c = common::tls::certs();
    let (cert, key) = c.localhost.write(&keys, "localhost");
    let other = TempDir::new("config-sni-other");
    other.write("index.html", "other\n");
    let toml = format!(
        "root = {:?}\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[[listen]]\naddress = \"127.0.0.1:0\"\ntls = true\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n[[host]]\nnames = [\"other.test\"]\nroot = \"{}\"\n",
        root.path().display().to_string(),
        cert.display(),
        key.display(),
        other.path().display()
    );
    let dir = TempDir::new("config-sni");
    let file = dir.write("c.toml", toml);
    let server = Server::start(root.path(), &["--config", &file.display().to_string()]);
    let addr = common::tls::tls_addr(&server);
    let mut tls = common::tls::connect(addr, "localhost", &common::tls::client()).unwrap();
    assert_eq!(tls.get("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").body, b"home\n");
    let misdirected = tls.get("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
    assert_eq!(misdirected.status, 421);
    // On plain HTTP the Host alone decides.
    assert_eq!(server.get("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n").body_str(), "other\n");
}

fn a_plain_listener_can_redirect_everything_to_https() {
    let root = site();
    let keys = TempDir::new("config-redirect-keys");
    let (cert, key) = common::tls::certs().localhost.write(&keys, "localhost");
    // A port of its own per backend: both run at once.
    let port = if common::backend() == "epoll" { 44398 } else { 44399 };
    let toml = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n[[listen]]\naddress = \"127.0.0.1:0\"\nredirect_to_https = true\n\
         [[listen]]\naddress = \"127.0.0.1:{port}\"\ntls = true\n",
        cert.display(),
        key.display()
    );
    let dir = TempDir::new("config-redirect");
    let file = dir.write("c.toml", toml);
    let server = Server::start(root.path(), &["--config", &file.display().to_string()]);
    let r = server.get("GET /a/b?c=d HTTP/1.1\r\nHost: Example.COM:80\r\n\r\n");
    let location = format!("https://example.com:{port}/a/b?c=d");
    assert_eq!((r.status, r.header("location")), (301, Some(location.as_str())));
}

fn flags_win_over_the_file() {
    let root = site();
    let (server, _dir) = start(&root, "max_request_line = 16\nfallback = \"/app.html\"\n");
    // The file would refuse this line (414); --max-request-line given after wins.
    let dir = TempDir::new("config-flags");
    let file = dir.write("c.toml", "max_request_line = 16\n");
    let args = ["--config", &file.display().to_string(), "--listen", "127.0.0.1:0", "--max-request-line", "8k"];
    let flags = Server::start(root.path(), &args);
    assert_eq!(get(&flags, "/index.html", "").status, 200);
    assert_eq!(get(&server, "/index.html", "").status, 414);
}

for_each_backend!(
    header_rules_set_and_remove_fields_by_path,
    error_pages_and_the_spa_fallback,
    index_names_and_the_trailing_slash_policy,
    redirects_with_captures_keep_the_query,
    directory_listings_in_html_and_json,
    virtual_hosts_by_name_exact_before_wildcard,
    host_and_sni_must_agree,
    a_plain_listener_can_redirect_everything_to_https,
    flags_win_over_the_file,
);
