//! Precompressed siblings through the real binary: `FILE.br`, `FILE.zst` and `FILE.gz` are
//! served as they are, with `Content-Encoding` and `Vary: Accept-Encoding`, the one chosen
//! by the request's `Accept-Encoding` q-values, ties going to br, then zstd, then gzip.
//! The sibling files hold arbitrary bytes (never decoded), so every body is compared
//! exactly with the file it must come from.
mod common;

use common::{Response, Server, TempDir};
use std::time::Duration;

for_each_backend!(
    zstd_sibling_alone,
    browsers_list_every_coding_and_br_wins,
    q_values_choose_among_three,
    head_of_a_zstd_representation,
    ranges_of_a_zstd_representation,
    ranges_of_a_large_zstd_representation,
    zstd_representation_has_its_own_validators,
    zstd_sibling_appearing_changing_and_going_is_noticed,
);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const TXT: &[u8] = b"the original text, served as identity\n";
/// Not zstd at all: the server never decodes a sibling, so any bytes show where a body
/// came from.
const TXT_ZST: &[u8] = b"ZSTD-SIBLING-0123456789-abcdefghij";
const TXT_BR: &[u8] = b"BROTLI-SIBLING";
const TXT_GZ: &[u8] = b"GZIP-SIBLING-BYTES";
const TXT_TYPE: &str = "text/plain; charset=utf-8";

fn get(server: &Server, target: &str, headers: &[&str]) -> Response {
    server.get(&common::request("GET", target, headers))
}

fn accept(value: &str) -> String {
    format!("Accept-Encoding: {value}")
}

/// A root with `a.txt` and the named siblings of it (`zst`, `br`, `gz`).
fn site(tag: &str, siblings: &[&str]) -> TempDir {
    let d = TempDir::new(tag);
    d.write("a.txt", TXT);
    for &s in siblings {
        let bytes = match s {
            "zst" => TXT_ZST,
            "br" => TXT_BR,
            "gz" => TXT_GZ,
            _ => panic!("no sibling {s}"),
        };
        d.write(&format!("a.txt.{s}"), bytes);
    }
    d
}

/// A 200 whose body is exactly `body`, in `coding` (`None`: identity), with `Vary`.
fn assert_served(r: &Response, body: &[u8], coding: Option<&str>, what: &str) {
    assert_eq!(r.status, 200, "{what}");
    assert!(r.body == body, "{what}: body {:?}, want {:?}", String::from_utf8_lossy(&r.body), body);
    assert_eq!(r.header("Content-Encoding"), coding, "{what}");
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"), "{what}");
    assert_eq!(r.header("Content-Type"), Some(TXT_TYPE), "{what}: the original's type, whatever the coding");
    assert_eq!(r.header("Content-Length"), Some(body.len().to_string().as_str()), "{what}");
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

// ---------------------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------------------

fn zstd_sibling_alone() {
    let d = site("zst-alone", &["zst"]);
    let server = Server::start(d.path(), &[]);
    let cases: &[(&str, &[u8], Option<&str>)] = &[
        ("zstd", TXT_ZST, Some("zstd")),
        ("ZStd", TXT_ZST, Some("zstd")),
        ("gzip, deflate, br, zstd", TXT_ZST, Some("zstd")),
        ("*", TXT_ZST, Some("zstd")),
        ("zstd;q=0.001", TXT_ZST, Some("zstd")),
        // refused, or not named: identity, still with Vary
        ("zstd;q=0", TXT, None),
        ("*;q=0.5, zstd;q=0", TXT, None),
        ("gzip, br", TXT, None),
        ("identity", TXT, None),
    ];
    for &(ae, body, coding) in cases {
        let r = get(&server, "/a.txt", &[&accept(ae)]);
        assert_served(&r, body, coding, &format!("Accept-Encoding: {ae}"));
    }
    assert_served(&get(&server, "/a.txt", &[]), TXT, None, "no Accept-Encoding");
}

fn browsers_list_every_coding_and_br_wins() {
    let d = site("all-three", &["zst", "br", "gz"]);
    let server = Server::start(d.path(), &[]);
    for ae in ["gzip, deflate, br, zstd", "gzip, br, zstd", "zstd, gzip, br", "*"] {
        let r = get(&server, "/a.txt", &[&accept(ae)]);
        assert_served(&r, TXT_BR, Some("br"), &format!("Accept-Encoding: {ae}"));
    }
    // without br beside it, zstd wins the tie over gzip
    let d = site("zst-gz", &["zst", "gz"]);
    let server = Server::start(d.path(), &[]);
    for ae in ["gzip, deflate, br, zstd", "gzip, zstd", "*"] {
        let r = get(&server, "/a.txt", &[&accept(ae)]);
        assert_served(&r, TXT_ZST, Some("zstd"), &format!("Accept-Encoding: {ae}"));
    }
    assert_served(&get(&server, "/a.txt", &[&accept("gzip, br")]), TXT_GZ, Some("gzip"), "gzip, br");
    assert_served(&get(&server, "/a.txt", &[]), TXT, None, "no Accept-Encoding");
}

fn q_values_choose_among_three() {
    let d = site("q-three", &["zst", "br", "gz"]);
    let server = Server::start(d.path(), &[]);
    let cases: &[(&str, &[u8], Option<&str>)] = &[
        ("br;q=0.1, zstd;q=0.9", TXT_ZST, Some("zstd")),
        ("br;q=0.5, zstd", TXT_ZST, Some("zstd")),
        ("br;q=0, zstd, gzip", TXT_ZST, Some("zstd")),
        ("*, br;q=0", TXT_ZST, Some("zstd")),
        ("zstd;q=0.5, gzip;q=0.6, br;q=0.4", TXT_GZ, Some("gzip")),
        ("br;q=0, zstd;q=0.5, gzip", TXT_GZ, Some("gzip")),
        ("zstd;q=0, gzip;q=0, br;q=0.999", TXT_BR, Some("br")),
        ("br;q=0, zstd;q=0, gzip;q=0", TXT, None),
        ("deflate, identity", TXT, None),
    ];
    for &(ae, body, coding) in cases {
        let r = get(&server, "/a.txt", &[&accept(ae)]);
        assert_served(&r, body, coding, &format!("Accept-Encoding: {ae}"));
    }
    // the values of several Accept-Encoding fields are one list
    let r = get(&server, "/a.txt", &["Accept-Encoding: br;q=0.2", "Accept-Encoding: zstd;q=0.3"]);
    assert_served(&r, TXT_ZST, Some("zstd"), "two fields");
    assert_served(&get(&server, "/a.txt", &[]), TXT, None, "no Accept-Encoding");
}

fn head_of_a_zstd_representation() {
    let d = site("zst-head", &["zst", "gz"]);
    let server = Server::start(d.path(), &[]);
    let r = server.get(&common::request("HEAD", "/a.txt", &[&accept("zstd")]));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("Content-Encoding"), Some("zstd"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("Content-Length"), Some(TXT_ZST.len().to_string().as_str()));
}

// ---------------------------------------------------------------------------------------
// Ranges: of the representation chosen, so bytes of the .zst file
// ---------------------------------------------------------------------------------------

fn ranges_of_a_zstd_representation() {
    let d = site("zst-range", &["zst", "br", "gz"]);
    let server = Server::start(d.path(), &[]);
    let n = TXT_ZST.len();
    let cases: &[(&str, usize, usize)] =
        &[("bytes=0-4", 0, 4), ("bytes=5-", 5, n - 1), ("bytes=-6", n - 6, n - 1), ("bytes=10-1000", 10, n - 1)];
    for &(range, first, last) in cases {
        let r = get(&server, "/a.txt", &[&accept("br;q=0.1, zstd;q=0.9"), &format!("Range: {range}")]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, &TXT_ZST[first..=last], "{range}");
        assert_eq!(r.header("Content-Range"), Some(format!("bytes {first}-{last}/{n}").as_str()), "{range}");
        assert_eq!(r.header("Content-Length"), Some((last - first + 1).to_string().as_str()), "{range}");
        assert_eq!(r.header("Content-Encoding"), Some("zstd"), "{range}");
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"), "{range}");
        assert_eq!(r.header("Content-Type"), Some(TXT_TYPE), "{range}");
    }
    // past the end of the .zst file (though not of a.txt): 416 with the .zst file's size
    assert!(TXT.len() > n);
    let r = get(&server, "/a.txt", &[&accept("zstd"), &format!("Range: bytes={n}-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range"), Some(format!("bytes */{n}").as_str()));

    // If-Range with the zstd representation's ETag holds; with the identity one it does not
    let zstd_tag = get(&server, "/a.txt", &[&accept("zstd")]).header("ETag").unwrap().to_string();
    let identity_tag = get(&server, "/a.txt", &[]).header("ETag").unwrap().to_string();
    let r = get(&server, "/a.txt", &[&accept("zstd"), "Range: bytes=0-3", &format!("If-Range: {zstd_tag}")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &TXT_ZST[..4]);
    let r = get(&server, "/a.txt", &[&accept("zstd"), "Range: bytes=0-3", &format!("If-Range: {identity_tag}")]);
    assert_served(&r, TXT_ZST, Some("zstd"), "If-Range with the identity ETag");
}

/// A .zst over the in-memory limit (64 KiB) goes out from its descriptor (sendfile).
fn ranges_of_a_large_zstd_representation() {
    let d = site("zst-large", &["gz"]);
    let zst = pseudo_random(200_000 + 77, 0x5a5a_1234_0fed_cba9);
    d.write("a.txt.zst", &zst);
    let server = Server::start(d.path(), &[]);
    let r = get(&server, "/a.txt", &[&accept("gzip, deflate, br, zstd")]);
    assert_eq!(r.status, 200);
    assert!(r.body == zst, "the whole large .zst");
    assert_eq!(r.header("Content-Encoding"), Some("zstd"));
    assert_eq!(r.header("Content-Length"), Some(zst.len().to_string().as_str()));
    let (first, last) = (70_001usize, 150_123usize);
    let r = get(&server, "/a.txt", &[&accept("zstd"), &format!("Range: bytes={first}-{last}")]);
    assert_eq!(r.status, 206);
    assert!(r.body == zst[first..=last], "bytes {first}-{last} of the large .zst");
    assert_eq!(r.header("Content-Range"), Some(format!("bytes {first}-{last}/{}", zst.len()).as_str()));
    assert_eq!(r.header("Content-Encoding"), Some("zstd"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
}

// ---------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------

fn zstd_representation_has_its_own_validators() {
    let d = site("zst-etag", &["zst", "br", "gz"]);
    let server = Server::start(d.path(), &[]);
    let tag = |ae: Option<&str>| {
        let r = match ae {
            Some(ae) => get(&server, "/a.txt", &[&accept(ae)]),
            None => get(&server, "/a.txt", &[]),
        };
        r.header("ETag").unwrap().to_string()
    };
    let (identity, br, zstd, gzip) = (tag(None), tag(Some("br")), tag(Some("zstd")), tag(Some("gzip")));
    assert!(zstd.starts_with('"') && zstd.ends_with("-zst\"") && !zstd.starts_with("W/"), "{zstd}");
    assert!(br.ends_with("-br\"") && gzip.ends_with("-gz\""), "{br} {gzip}");
    let mut all = [&identity, &br, &zstd, &gzip];
    all.sort();
    assert!(all.windows(2).all(|w| w[0] != w[1]), "four representations, four ETags: {all:?}");

    let r = get(&server, "/a.txt", &[&accept("zstd"), &format!("If-None-Match: {zstd}")]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("ETag"), Some(zstd.as_str()));
    assert_eq!(r.header("Content-Encoding"), Some("zstd"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    // no other representation's ETag validates the zstd one
    for other in [&identity, &br, &gzip] {
        let r = get(&server, "/a.txt", &[&accept("zstd"), &format!("If-None-Match: {other}")]);
        assert_served(&r, TXT_ZST, Some("zstd"), &format!("If-None-Match: {other}"));
    }
    // nor the zstd one another representation
    let r = get(&server, "/a.txt", &[&accept("gzip, deflate, br, zstd"), &format!("If-None-Match: {zstd}")]);
    assert_served(&r, TXT_BR, Some("br"), "the zstd ETag against br");
}

// ---------------------------------------------------------------------------------------
// Cache revalidation (at most once a second)
// ---------------------------------------------------------------------------------------

fn zstd_sibling_appearing_changing_and_going_is_noticed() {
    let d = site("zst-reval", &[]);
    let server = Server::start(d.path(), &[]);
    let r = get(&server, "/a.txt", &[&accept("zstd")]);
    assert_eq!(r.body, TXT);
    assert_eq!(r.header("Vary"), None, "no sibling yet");

    let zst = d.write("a.txt.zst", TXT_ZST);
    std::thread::sleep(Duration::from_millis(1500));
    assert_served(&get(&server, "/a.txt", &[&accept("zstd")]), TXT_ZST, Some("zstd"), "a .zst appeared");
    assert_served(&get(&server, "/a.txt", &[]), TXT, None, "identity beside a new .zst");

    std::fs::write(&zst, b"ANOTHER ZSTD SIBLING").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let r = get(&server, "/a.txt", &[&accept("zstd")]);
    assert_served(&r, b"ANOTHER ZSTD SIBLING", Some("zstd"), "the .zst changed");

    std::fs::remove_file(&zst).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let r = get(&server, "/a.txt", &[&accept("zstd")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, TXT, "the .zst went");
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.header("Vary"), None);
}
