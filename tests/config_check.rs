//! The configuration file's errors, `--check-config`, the examples in deploy/, and SIGHUP
//! re-reading the file: a changed header rule, an added host and an added listener under
//! a client that sees no error; an invalid file keeps the old behaviour.

mod common;

use common::{Server, TempDir};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_c10k-server");

/// `c10k-server --config FILE --check-config` on `toml`: exit code, stdout, stderr.
fn check(toml: &str) -> (i32, String, String) {
    let dir = TempDir::new("config-check");
    let site = dir.write("site/index.html", "x\n");
    let toml = toml.replace("SITE", &site.parent().unwrap().display().to_string());
    let file = dir.write("c10k.toml", toml);
    let out = Command::new(BIN).args(["--config", &file.display().to_string(), "--check-config"]).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn each_kind_of_error_names_the_line_column_and_key() {
    for (toml, place, key, why) in [
        ("root = \"SITE\"\nshardz = 2\n", ":2:1:", "shardz", "unknown field"),
        ("root = \"SITE\"\nshards = \"two\"\n", ":2:10:", "shards", "whole number"),
        ("root = \"SITE\"\nkeepalive_timeout = [1]\n", ":2:21:", "keepalive_timeout", "a number or a string"),
        ("root = \"SITE\"\nfallback = 3\n", ":2:12:", "fallback", "invalid type"),
        ("root = \"SITE\"\nroot = \"x\"\n", ":2:1:", "root", "duplicate key"),
        ("[[listen]]\naddress = \"1.2.3.4\"\n", ":2:11:", "address", "ADDR:PORT"),
        ("[[listen]]\naddress = \"127.0.0.1:0\"\nproxy_protocol = true\n", ":2:11:", "proxy_from", "proxy_from"),
        ("[[headers]]\npath = \"/a/**\"\nset = { \"Bad Name\" = \"1\" }\n", ":3:22:", "Bad Name", "header name"),
        ("[[headers]]\npath = \"/a{\"\n", ":2:8:", "path", "{"),
        ("[[redirects]]\nfrom = \"/a/*\"\nto = \"/b/$2\"\n", ":3:6:", "redirects", "$2"),
        ("[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 303\n", ":4:10:", "redirects", "308"),
        ("error_pages = { 404 = \"/../etc/passwd\" }\n", ":1:23:", "404", "leaves the root"),
        ("error_pages = { 200 = \"/x.html\" }\n", ":1:23:", "200", "4xx or 5xx"),
        ("trailing_slash = \"maybe\"\n", ":1:18:", "trailing_slash", "add, remove or off"),
        ("[[host]]\nnames = [\"a b\"]\n", ":2:10:", "names", "not a host name"),
        ("[[host]]\nnames = []\n", ":2:9:", "names", "at least one name"),
        ("listing = 3\n", ":1:11:", "listing", "true, false or a list"),
        ("index = [\"a/b.html\"]\n", ":1:10:", "index", "file name"),
        ("shards = \"2\n", ":1:12:", "shards", "expected"),
    ] {
        let (code, _, stderr) = check(toml);
        assert_eq!(code, 1, "{toml:?}: {stderr}");
        let line = stderr.lines().next().unwrap_or_default();
        assert!(line.contains(&format!("c10k.toml{place} {key}:")) && line.contains(why), "{toml:?}: {line}");
    }
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let toml = "root = \"SITE\"\nshards = 3\nfallback = \"/index.html\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n\
                [[host]]\nnames = [\"a.test\"]\n";
    let (code, stdout, stderr) = check(toml);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("is valid"), "{stderr}");
    for line in
        ["shards = 3", "fallback = \"/index.html\"", "[[listen]]", "address = \"127.0.0.1:0\"", "names = [\"a.test\"]"]
    {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in {stdout}");
    }
    // A root that does not exist is what a start would refuse: so does the check.
    let (code, _, stderr) = check("root = \"/nonexistent-c10k-root\"\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("/nonexistent-c10k-root"), "{stderr}");
}

/// The examples the README points to are valid and serve.
fn the_deploy_examples_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    for name in ["static-site.toml", "spa.toml"] {
        let path = format!("{dir}/{name}");
        let out = Command::new(BIN).args(["--config", &path, "--check-config"]).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Its roots and certificates where a test can make them; `user` is root here.
    let tmp = TempDir::new("config-deploy");
    for site in ["default", "example.com", "files"] {
        tmp.write(&format!("www/{site}/index.html"), "x\n");
    }
    for pair in ["default", "example.com", "files"] {
        common::tls::certs().localhost.write(&tmp, pair);
    }
    let example = std::fs::read_to_string(format!("{dir}/two-hosts-tls.toml")).unwrap();
    let t = tmp.path().display().to_string();
    let example = example.replace("/srv/www", &format!("{t}/www")).replace("/etc/c10k-server", &t);
    let example = example.replace("\"www-data\"", "\"root\"").replace("/run/c10k-server.pid", &format!("{t}/pid"));
    let file = tmp.write("two-hosts-tls.toml", example);
    let out = Command::new(BIN).args(["--config", &file.display().to_string(), "--check-config"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "two-hosts-tls.toml: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("redirect_to_https = true  # to port 443"), "{stdout}");
    let path = format!("{dir}/static-site.toml");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("html");
    let server = Server::start(&root, &["--config", &path, "--listen", "127.0.0.1:0", "--root", "html"]);
    let css = server.get("GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("cache-control"), Some("public, max-age=86400"));
}

/// SIGHUP under a client requesting without pause: a changed header rule, a new host and a
/// new listener take effect, and not one request fails; then an invalid file is refused
/// and the old behaviour stays.
fn a_reload_rereads_the_file_under_a_client_that_sees_no_error() {
    let root = TempDir::new("config-reload");
    root.write("index.html", "home\n");
    let other = TempDir::new("config-reload-other");
    other.write("index.html", "other\n");
    let dir = TempDir::new("config-reload-file");
    let base = format!("root = {:?}\n[[listen]]\naddress = \"127.0.0.1:0\"\n", root.path().display().to_string());
    let rule = |value: &str| format!("[[headers]]\npath = \"/**\"\nset = {{ X-Rule = \"{value}\" }}\n");
    let file = dir.write("c.toml", format!("{base}{}", rule("one")));
    let server = Server::start(root.path(), &["--config", &file.display().to_string(), "--shards", "2"]);
    let addr = server.addr;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Keep-alive, as a browser: a drain closes idle connections (as nginx's does), so
        // a client reconnects when told `Connection: close`, and never otherwise.
        let client = s.spawn(|| {
            let open = || {
                let s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                (s.try_clone().unwrap(), common::Reader::new(s))
            };
            let (mut conn, mut served) = (open(), 0);
            while !stop.load(Ordering::Relaxed) {
                std::io::Write::write_all(&mut conn.0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let r = conn.1.response(false).expect("an answer to every request");
                assert_eq!((r.status, r.body.as_slice()), (200, &b"home\n"[..]));
                served += 1;
                if r.header("connection") == Some("close") {
                    conn = open();
                }
            }
            served
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let more = format!(
            "{base}[[listen]]\naddress = \"127.0.0.1:{port}\"\n{}[[host]]\nnames = [\"other.test\"]\nroot = {:?}\n",
            rule("two"),
            other.path().display().to_string()
        );
        dir.write("c.toml", &more);
        common::tls::reload(&server, &server.shard_pids());
        let new_port: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert_eq!(get(addr, "x").header("x-rule"), Some("two"));
        assert_eq!(get(new_port, "other.test").body, b"other\n");
        // Invalid: refused, with the line; the running generation keeps the rules it has.
        dir.write("c.toml", format!("{more}bogus = 1\n"));
        common::signal(server.pid(), nix::sys::signal::Signal::SIGHUP);
        let refused = server.wait_line(Duration::from_secs(10), |l| l.text.starts_with("reload refused:"));
        assert!(refused.text.contains("c.toml:") && refused.text.contains("bogus"), "{refused:?}");
        assert_eq!(get(addr, "x").header("x-rule"), Some("two"));
        assert_eq!(get(new_port, "other.test").body, b"other\n");
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        assert!(client.join().unwrap() > 0);
    });
}

/// One request for `/` on a new connection to `addr`, with `host`.
fn get(addr: std::net::SocketAddr, host: &str) -> common::Response {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = common::Reader::new(s.try_clone().unwrap());
    std::io::Write::write_all(&mut &s, format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).unwrap();
    r.response(false).expect("an answer")
}

for_each_backend!(a_reload_rereads_the_file_under_a_client_that_sees_no_error, the_deploy_examples_are_valid);
