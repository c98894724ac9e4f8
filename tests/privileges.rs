//! Shards running as another user (`--user`, `--group`), through the real binary on every
//! backend: each shard drops every id (real, effective, saved, filesystem) and its
//! supplementary groups, the master stays root, the shards of a reload drop too, a dropped
//! shard still drains when its master dies, and a bad `--user` or `--group` fails the start
//! naming it. Dropping needs root: as anyone else the tests that drop say so and pass.
mod common;

use common::{Server, TempDir, signal, within};
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

for_each_backend!(
    every_shard_runs_as_the_user_and_group_and_serves,
    the_shards_of_a_reload_run_as_the_user_too,
    a_dropped_shard_whose_master_dies_drains_and_exits,
    an_unknown_user_fails_the_start_naming_it,
    a_group_without_a_user_fails_the_start,
);

const BODY: &[u8] = b"served by nobody\n";
const GET: &str = "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// The user the shards run as, and the group passed with `--group` (none where this host has
/// no `nogroup`: the user's primary group then).
struct Target {
    uid: u32,
    gid: u32,
    group_flag: Option<&'static str>,
}

/// `nobody`, with `nogroup` where it exists; none unless the tests run as root.
fn target() -> Option<Target> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: dropping to another user needs the tests to run as root");
        return None;
    }
    let passwd = id_field("/etc/passwd", "nobody", 2).expect("a user nobody in /etc/passwd");
    let primary = id_field("/etc/passwd", "nobody", 3).unwrap();
    Some(match id_field("/etc/group", "nogroup", 2) {
        Some(gid) => Target { uid: passwd, gid, group_flag: Some("nogroup") },
        None => Target { uid: passwd, gid: primary, group_flag: None },
    })
}

/// Field `n` (from 0) of the line for `name` in a colon-separated database, as a number.
fn id_field(file: &str, name: &str, n: usize) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
    line.split(':').nth(n)?.parse().ok()
}

/// A site `nobody` may read, every mode set explicitly so the umask decides nothing: the
/// directory (removed on drop) and the root in it.
fn site() -> (TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("privileges");
    let file = dir.write("site/hello.txt", BODY);
    let root = dir.path().join("site");
    for (path, mode) in [(dir.path(), 0o755), (root.as_path(), 0o755), (file.as_path(), 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    (dir, root)
}

fn start(root: &std::path::Path, target: &Target, extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "2", "--user", "nobody"];
    if let Some(group) = target.group_flag {
        args.extend(["--group", group]);
    }
    args.extend(extra);
    Server::start(root, &args)
}

/// The ids of /proc/PID/status's line `field` (`Uid:`, `Gid:`, `Groups:`).
fn ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
    line[field.len()..].split_whitespace().map(|id| id.parse().unwrap()).collect()
}

/// Each of `pids` runs as `target` in every column: real, effective, saved and filesystem
/// ids, and no supplementary group but its own.
#[track_caller]
fn assert_dropped(pids: &[u32], target: &Target, when: &str) {
    for &pid in pids {
        assert_eq!(ids(pid, "Uid:"), [target.uid; 4], "{when}: shard pid {pid}'s uids");
        assert_eq!(ids(pid, "Gid:"), [target.gid; 4], "{when}: shard pid {pid}'s gids");
        assert_eq!(ids(pid, "Groups:"), [target.gid], "{when}: shard pid {pid}'s supplementary groups");
    }
}

/// Requests on new connections (`SO_REUSEPORT` spreads them over the shards) get the file:
/// the user can read the site.
#[track_caller]
fn assert_serves(server: &Server, when: &str) {
    for _ in 0..8 {
        let response = server.get(GET);
        assert_eq!((response.status, response.body.as_slice()), (200, BODY), "{when}");
    }
}

fn every_shard_runs_as_the_user_and_group_and_serves() {
    let Some(target) = target() else { return };
    let (dir, root) = site();
    // The master creates it, owned by root and closed to others' writes: only a log the
    // shards opened before they dropped is written.
    let log = dir.path().join("access.log");
    let server = start(&root, &target, &["--access-log", log.to_str().unwrap()]);
    let pids = server.shard_pids();
    assert_eq!(pids.len(), 2);
    for &pid in &pids {
        let said = server
            .banner
            .iter()
            .filter_map(|l| common::parse_log(l))
            .find(|l| l.pid == pid && l.text.starts_with("running as "));
        let said = said.unwrap_or_else(|| panic!("no `running as` line from shard pid {pid}: {:#?}", server.banner));
        let (user, group) = (format!("running as user nobody ({}), group ", target.uid), format!(" ({})", target.gid));
        assert!(said.text.starts_with(&user) && said.text.ends_with(&group), "{said:?}");
    }
    assert_dropped(&pids, &target, "at the start");
    assert_eq!(ids(server.pid(), "Uid:"), [0; 4], "the master stays root");
    assert_serves(&server, "at the start");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&log).unwrap();
    assert!(meta.uid() == 0 && meta.mode() & 0o002 == 0, "the access log: uid {}, mode {:o}", meta.uid(), meta.mode());
    let lines = || std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(within(Duration::from_secs(5), || lines() >= 8), "the access log has {} lines, not 8", lines());
}

fn the_shards_of_a_reload_run_as_the_user_too() {
    let Some(target) = target() else { return };
    let (_dir, root) = site();
    let server = start(&root, &target, &[]);
    let old = server.shard_pids();
    let new = common::tls::reload(&server, &old);
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|pid| !old.contains(pid)), "old {old:?}, new {new:?}");
    assert_dropped(&new, &target, "after a reload");
    assert_eq!(ids(server.pid(), "Uid:"), [0; 4], "the master stays root");
    assert_serves(&server, "after a reload");
}

/// A change of ids clears the parent-death signal, which is what drains an orphaned shard.
fn a_dropped_shard_whose_master_dies_drains_and_exits() {
    let Some(target) = target() else { return };
    let (_dir, root) = site();
    let server = start(&root, &target, &[]);
    let pids = server.shard_pids();
    assert_dropped(&pids, &target, "at the start");
    signal(server.pid(), Signal::SIGKILL);
    let gone = |pid: u32| match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status.lines().any(|l| l.starts_with("State:") && l.contains("zombie")),
        Err(_) => true,
    };
    let all_gone = within(Duration::from_secs(10), || pids.iter().all(|&pid| gone(pid)));
    if !all_gone {
        for &pid in &pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    assert!(all_gone, "shards {pids:?} still run 10 s after their master was killed");
}

/// The binary's exit code and output, run with `args` (10 s at most).
fn run(root: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(common::BIN)
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--backend", &common::backend(), "--root"])
        .arg(root)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = within(Duration::from_secs(10), || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(exited, "still running after 10 s: {text}");
    (out.status.code(), text)
}

fn an_unknown_user_fails_the_start_naming_it() {
    let (_dir, root) = site();
    let (code, out) = run(&root, &["--user", "no-such-user-xyz"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("--user no-such-user-xyz: no such user"), "{out}");
}

fn a_group_without_a_user_fails_the_start() {
    let (_dir, root) = site();
    let (code, out) = run(&root, &["--group", "nogroup"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("--group needs --user"), "{out}");
}
