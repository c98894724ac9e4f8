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
