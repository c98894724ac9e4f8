//! Every script the README tells people to run can be run as it is committed: a file
//! that starts with a `#!` line has the execute bit in git.

use std::process::Command;

#[test]
fn every_file_with_a_shebang_is_executable_in_git() {
    let root = env!("CARGO_MANIFEST_DIR");
    let listing = Command::new("git").args(["-C", root, "ls-files", "-s"]).output().expect("git ls-files");
    assert!(listing.status.success(), "git ls-files: {}", String::from_utf8_lossy(&listing.stderr));
    let mut scripts = 0;
    let mut not_executable = Vec::new();
    for line in String::from_utf8(listing.stdout).unwrap().lines() {
        // "<mode> <object> <stage>\t<path>"
        let (meta, path) = line.split_once('\t').unwrap();
        let Ok(head) = std::fs::read(format!("{root}/{path}")).map(|b| b.into_iter().take(3).collect::<Vec<_>>())
        else {
            continue;
        };
        // `#![` opens a Rust inner attribute, not an interpreter line.
        if head.starts_with(b"#!") && !head.starts_with(b"#![") {
            scripts += 1;
            if !meta.starts_with("100755") {
                not_executable.push(path.to_string());
            }
        }
    }
    assert!(scripts >= 3, "only {scripts} scripts found: the scan is broken");
    assert!(not_executable.is_empty(), "without the execute bit (git update-index --chmod=+x): {not_executable:?}");
}

/// `make run` takes LISTEN=, ROOT= and ARGS=, the last appended after the defaults.
#[test]
fn make_run_defaults_can_be_overridden() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dry = |vars: &[&str]| {
        let out = Command::new("make").args(["-s", "-n", "-C", root, "run"]).args(vars).output().expect("make");
        assert!(out.status.success(), "make -n run {vars:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().find(|l| l.contains("target/release/c10k-server")).expect("the run line").to_string()
    };
    assert!(dry(&[]).ends_with("c10k-server --listen 0.0.0.0:8080 --root ./html "), "{}", dry(&[]));
    let line = dry(&["LISTEN=127.0.0.1:18084", "ROOT=/srv/www", "ARGS=--shards 1"]);
    assert!(line.ends_with("c10k-server --listen 127.0.0.1:18084 --root /srv/www --shards 1"), "{line}");
}

/// `ONLY=` matching no scenario names the scenarios and exits 2 before anything runs or is
/// written (the last results stay).
#[test]
fn loadtest_only_that_matches_nothing_lists_the_scenarios() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/loadtest/run.py"))
        .env("ONLY", "typo")
        .output()
        .expect("python3 loadtest/run.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("loadtest: no scenario matches 'typo'; scenarios are: 'index c100'"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing ran: {}", String::from_utf8_lossy(&out.stdout));
}
