//! The operator's tuning scripts (`tuning/check.sh`, `tuning/apply.sh`) run with `sh`
//! against fake /proc, /sys and /etc trees built in a temporary directory, so every
//! decision is tested on hosts that do not exist here and nothing real is changed. One
//! test runs check.sh against this real host, read-only.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn tuning(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning").join(script)
}

// ---------------------------------------------------------------- fake hosts

/// A fake host under the temporary directory: `proc/`, `sys/` and `etc/`, removed on drop.
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("c10k-tuning-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for d in ["proc", "sys", "etc"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        Tree { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, content: &str) -> &Tree {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
        self
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn remove(&self, rel: &str) -> &Tree {
        let p = self.path(rel);
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap()
        } else {
            fs::remove_file(p).unwrap()
        }
        self
    }

    fn mkdir(&self, rel: &str) -> &Tree {
        fs::create_dir_all(self.path(rel)).unwrap();
        self
    }

    fn sysctl(&self, name: &str, value: &str) -> &Tree {
        self.write(&format!("proc/sys/{}", name.replace('.', "/")), &format!("{value}\n"))
    }

    fn read_sysctl(&self, name: &str) -> String {
        self.read(&format!("proc/sys/{}", name.replace('.', "/"))).trim().to_string()
    }

    /// Every file under the tree with its content, to show that a run changed nothing.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    out.insert(p.clone(), "<dir>".into());
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &mut out);
        out
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Generous everywhere: 2 CPUs, one NUMA node, eth0 with 2 rx/tx queues, RPS, RFS and XPS
/// set, its IRQs on different cores, conntrack loaded, plenty of memory.
fn good_host(name: &str) -> Tree {
    let t = Tree::new(name);
    t.sysctl("fs.file-max", "2097152")
        .sysctl("fs.file-nr", "1024\t0\t2097152")
        .sysctl("fs.nr_open", "1048576")
        .sysctl("net.core.somaxconn", "4096")
        .sysctl("net.core.netdev_max_backlog", "1000")
        .sysctl("net.core.rps_sock_flow_entries", "32768")
        .sysctl("net.ipv4.tcp_max_syn_backlog", "4096")
        .sysctl("net.ipv4.ip_local_port_range", "32768\t60999")
        .sysctl("net.ipv4.tcp_tw_reuse", "2")
        .sysctl("net.ipv4.tcp_fin_timeout", "60")
        .sysctl("net.ipv4.tcp_mem", "1000000\t1500000\t2000000")
        .sysctl("net.ipv4.tcp_rmem", "4096\t131072\t6291456")
        .sysctl("net.ipv4.tcp_wmem", "4096\t16384\t4194304")
        .sysctl("net.netfilter.nf_conntrack_max", "262144")
        .sysctl("net.netfilter.nf_conntrack_count", "120")
        .sysctl("kernel.osrelease", "6.8.0-fake")
        .sysctl("kernel.io_uring_disabled", "0")
        .write(
            "proc/meminfo",
            "MemTotal:       67108864 kB\nMemFree:        60000000 kB\nMemAvailable:   62000000 kB\n",
        )
        .write("proc/1/comm", "init\n")
        .write("proc/321/comm", "sshd\n")
        .write("proc/self/status", "Name:\tawk\nCapEff:\t0000000000000000\n")
        .write(
            "proc/interrupts",
            "           CPU0       CPU1\n  40:        100          0   PCI-MSI 524288-edge      eth0-TxRx-0\n  \
             41:          0        100   PCI-MSI 524289-edge      eth0-TxRx-1\n  42:          5          0   \
             PCI-MSI 65536-edge      nvme0q0\n LOC:       1000       1000   Local timer interrupts\n",
        )
        .write("proc/irq/40/smp_affinity_list", "0\n")
        .write("proc/irq/41/smp_affinity_list", "1\n")
        .write("sys/devices/system/cpu/online", "0-1\n")
        .mkdir("sys/devices/system/node/node0")
        .write("sys/class/net/lo/operstate", "unknown\n")
        .write("sys/class/net/lo/queues/rx-0/rps_cpus", "0\n")
        .write("sys/class/net/eth0/operstate", "up\n")
        .write(
            "etc/security/limits.conf",
            "# /etc/security/limits.conf\n#*  hard  nofile  10\n*  soft  nofile  65536\n*  hard  nofile  65536 # ok\n\
             @audio - rtprio 95\n",
        )
        .mkdir("etc/security/limits.d");
    for q in 0..2 {
        t.write(&format!("sys/class/net/eth0/queues/rx-{q}/rps_cpus"), "3\n")
            .write(&format!("sys/class/net/eth0/queues/rx-{q}/rps_flow_cnt"), "16384\n")
            .write(&format!("sys/class/net/eth0/queues/tx-{q}/xps_cpus"), &format!("{}\n", 1 << q));
    }
    t
}

/// Everything below what 100000 connections need (but present).
fn poor_host(name: &str) -> Tree {
    let t = good_host(name);
    t.sysctl("fs.file-max", "5000")
        .sysctl("fs.file-nr", "1000\t0\t5000")
        .sysctl("fs.nr_open", "1024")
        .sysctl("net.core.somaxconn", "128")
        .sysctl("net.core.netdev_max_backlog", "300")
        .sysctl("net.ipv4.tcp_max_syn_backlog", "128")
        .sysctl("net.ipv4.tcp_fin_timeout", "120")
        .sysctl("net.ipv4.tcp_tw_reuse", "0")
        .sysctl("net.netfilter.nf_conntrack_max", "1000");
    t
}

// ---------------------------------------------------------------- running the scripts

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn rows(&self) -> Vec<(String, String)> {
        self.stdout
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let (status, knob) = (w.next()?, w.next()?);
                ["OK", "WARN", "FAIL", "INFO"].contains(&status).then(|| (status.to_string(), knob.to_string()))
            })
            .collect()
    }

    /// The status of `knob`'s row.
    fn status(&self, knob: &str) -> String {
        let found: Vec<_> = self.rows().into_iter().filter(|(_, k)| k == knob).collect();
        assert_eq!(found.len(), 1, "one row for {knob} expected in:\n{}", self.stdout);
        found[0].0.clone()
    }

    /// The whole row of `knob`: the line and the indented lines below it (a value or need
    /// too wide for its column, the note).
    fn row(&self, knob: &str) -> String {
        let lines: Vec<&str> = self.stdout.lines().collect();
        let i = lines
            .iter()
            .position(|l| l.split_whitespace().nth(1) == Some(knob))
            .unwrap_or_else(|| panic!("no row for {knob} in:\n{}", self.stdout));
        let mut out = lines[i].to_string();
        for next in lines[i + 1..].iter().take_while(|l| l.starts_with(' ')) {
            out += "\n";
            out += next;
        }
        out
    }

    fn verdict(&self) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with("verdict: "))
            .unwrap_or_else(|| panic!("no verdict in:\n{}", self.stdout))
    }

    fn sysctl_commands(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.starts_with("sysctl -w ")).collect()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn run_script(script: &str, tree: Option<&Tree>, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("sh");
    cmd.arg(tuning(script)).args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for var in ["PROC_ROOT", "SYS_ROOT", "ETC_ROOT", "NOFILE_SOFT", "NOFILE_HARD", "MEMLOCK", "PAGE_SIZE"] {
        cmd.env_remove(var);
    }
    if let Some(t) = tree {
        cmd.env("PROC_ROOT", t.path("proc"))
            .env("SYS_ROOT", t.path("sys"))
            .env("ETC_ROOT", t.path("etc"))
            .env("NOFILE_SOFT", "1024")
            .env("NOFILE_HARD", "1048576")
            .env("MEMLOCK", "8192")
            .env("PAGE_SIZE", "4096");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run sh");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn check(tree: &Tree, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_script("check.sh", Some(tree), args, env)
}

fn apply(tree: &Tree, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_script("apply.sh", Some(tree), args, env)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

// ---------------------------------------------------------------- a small JSON parser

#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at byte {}", self.i)),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let Json::Str(key) = self.value()? else { return Err(format!("key expected at byte {}", self.i)) };
                    self.eat(b':')?;
                    fields.push((key, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                text.parse().map(Json::Num).map_err(|_| format!("bad number {text}"))
            }
            _ => Err(format!("unexpected input at byte {}", self.i)),
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u")?;
                            let code = u32::from_str_radix(std::str::from_utf8(hex).unwrap(), 16)
                                .map_err(|e| e.to_string())?;
                            self.i += 4;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        _ => return Err(format!("bad escape \\{}", e as char)),
                    }
                }
                0..=0x1f => return Err(format!("raw control character {c:#x} in a string at byte {}", self.i - 1)),
                _ => out.push(c),
            }
        }
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing input at byte {}", p.i));
    }
    Ok(v)
}

impl Json {
    /// The value of `key` in an object.
    fn get(&self, key: &str) -> &Json {
        let Json::Obj(fields) = self else { panic!("not an object, looking for {key}: {self:?}") };
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("no {key} in {self:?}"))
    }

    fn str(&self) -> &str {
        let Json::Str(s) = self else { panic!("not a string: {self:?}") };
        s
    }

    fn num(&self) -> f64 {
        let Json::Num(n) = self else { panic!("not a number: {self:?}") };
        *n
    }

    fn strs(&self) -> Vec<&str> {
        let Json::Arr(items) = self else { panic!("not an array: {self:?}") };
        items.iter().map(Json::str).collect()
    }
}

/// check.sh --json output, parsed, with its top-level keys checked.
fn json_report(text: &str) -> Json {
    let v = parse_json(text).unwrap_or_else(|e| panic!("{e} in:\n{text}"));
    let Json::Obj(fields) = &v else { panic!("not an object:\n{text}") };
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["target", "shards", "cpus", "descriptors_per_shard", "capacity", "verdict", "rows"]);
    v
}

/// The rows of check.sh --json as (knob, value, need, status, fix) and the note, asserting
/// the shape: objects with exactly those keys, strings, the note a string or null.
fn json_rows_and_notes(text: &str) -> Vec<([String; 5], Option<String>)> {
    let report = json_report(text);
    let Json::Arr(items) = report.get("rows") else { panic!("rows is not an array:\n{text}") };
    assert!(!items.is_empty());
    items
        .iter()
        .map(|item| {
            let Json::Obj(fields) = item else { panic!("not an object: {item:?}") };
            let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, ["knob", "value", "need", "status", "fix", "note"]);
            let strings: Vec<String> = fields[..5].iter().map(|(_, v)| v.str().to_string()).collect();
            assert!(["OK", "WARN", "FAIL", "INFO"].contains(&strings[3].as_str()), "{strings:?}");
            let note = match &fields[5].1 {
                Json::Null => None,
                Json::Str(s) => {
                    assert!(!s.is_empty(), "an empty note is null: {item:?}");
                    Some(s.clone())
                }
                other => panic!("note is neither a string nor null: {other:?}"),
            };
            (strings.try_into().unwrap(), note)
        })
        .collect()
}

fn json_rows(text: &str) -> Vec<[String; 5]> {
    json_rows_and_notes(text).into_iter().map(|(r, _)| r).collect()
}

#[test]
fn the_json_parser_rejects_what_it_should() {
    assert!(parse_json(r#"[{"a": "b\"c\\d", "n": -1.5e3, "t": [true, false, null]}]"#).is_ok());
    for bad in ["[", "[1,]", r#"{"a" 1}"#, "\"a\tb\"", r#"["\q"]"#, "[1] x", r#"{"a": "b""#] {
        assert!(parse_json(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------- the scripts themselves

#[test]
fn every_script_parses_as_posix_sh() {
    for s in ["lib.sh", "check.sh", "apply.sh"] {
        let out = Command::new("sh").arg("-n").arg(tuning(s)).output().unwrap();
        assert!(out.status.success(), "{s}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

// ---------------------------------------------------------------- check.sh

#[test]
fn a_generous_host_passes_with_nothing_to_warn_about() {
    let t = good_host("good");
    let before = t.snapshot();
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.is_empty(), "{r:?}");
    for (status, knob) in r.rows() {
        assert!(status == "OK" || status == "INFO", "{knob} is {status}: {r:?}");
    }
    for knob in [
        "nofile.hard",
        "fs.file-max",
        "fs.file-nr",
        "fs.nr_open",
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.netfilter.nf_conntrack_max",
        "net.netfilter.nf_conntrack_count",
        "net.ipv4.tcp_mem",
        "kernel.io_uring_disabled",
        "memory",
        "cpus",
    ] {
        assert_eq!(r.status(knob), "OK", "{knob}: {r:?}");
    }
    // The soft limit is below the need, but the server raises it to the hard limit itself.
    assert_eq!(r.status("nofile.soft"), "OK");
    assert!(r.row("nofile.soft").contains("raises soft to hard"), "{r:?}");
    assert!(r.row("nofile.hard").contains("no CAP_SYS_RESOURCE"), "{r:?}");
    assert_eq!(r.status("limits.conf"), "INFO");
    assert!(r.row("limits.conf").contains("limits.conf: * hard nofile 65536"), "{r:?}");
    assert!(!r.row("limits.conf").contains("nofile 10;"), "a commented-out line is not an entry: {r:?}");
    assert_eq!(r.status("systemd.LimitNOFILE"), "INFO");
    assert!(r.row("systemd.LimitNOFILE").contains("systemd not running"));
    assert_eq!(r.status("net.ipv4.ip_local_port_range"), "INFO");
    assert!(r.row("net.ipv4.ip_local_port_range").contains("distinct client (ip, port) pairs"), "{r:?}");
    assert_eq!(r.status("nic.eth0.rps"), "INFO");
    assert!(r.row("nic.eth0.queues").contains("rx 2, tx 2"), "{r:?}");
    assert!(r.row("nic.eth0.irqs").contains("40:0 41:1"), "{r:?}");
    assert!(!r.rows().iter().any(|(_, k)| k.starts_with("nic.lo.")), "lo is skipped: {r:?}");
    assert_eq!(r.row("irqbalance").split_whitespace().nth(2), Some("not"), "{r:?}");
    assert_eq!(r.verdict(), "verdict: this host can hold 10000 connections with 2 shards");
    assert_eq!(t.snapshot(), before, "check.sh changed the tree");
}

#[test]
fn shards_default_to_the_online_cpus() {
    let t = good_host("cpus");
    t.write("sys/devices/system/cpu/online", "0-3,6\n");
    let r = check(&t, &[], &[]);
    assert!(r.stdout.starts_with("c10k-server tuning check: 10000 connections, 5 shards (5 CPUs)"), "{r:?}");
    assert!(r.verdict().ends_with("with 5 shards"), "{r:?}");
}

#[test]
fn file_max_below_the_target_fails() {
    let t = good_host("filemax");
    t.sysctl("fs.file-max", "5000").sysctl("fs.file-nr", "1000\t0\t5000");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.status("fs.file-max"), "FAIL");
    assert!(r.row("fs.file-max").contains("sysctl -w fs.file-max=1048576"), "{r:?}");
    assert_eq!(r.status("fs.file-nr"), "WARN");
    assert_eq!(r.verdict(), "verdict: FAIL — 1 limit stands between this host and 10000 connections: fs.file-max");
    assert!(r.stdout.contains("bound by fs.file-max"), "{r:?}");
}

#[test]
fn few_free_file_handles_warn() {
    let t = good_host("filenr");
    t.sysctl("fs.file-max", "20000").sysctl("fs.file-nr", "15000\t0\t20000");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status("fs.file-max"), "OK");
    assert_eq!(r.status("fs.file-nr"), "WARN");
    assert_eq!(
        r.verdict(),
        "verdict: WARN — about 5000 of 10000 connections fit now (bound by fs.file-max) (1 warning)"
    );
}

#[test]
fn systemd_limits_are_read_where_systemd_runs() {
    let t = good_host("systemd");
    t.write("proc/1/comm", "systemd\n").write(
        "bin/systemctl",
        "#!/bin/sh\ncase \"$*\" in\n*DefaultLimitNOFILE*) echo DefaultLimitNOFILE=4096 ;;\n\
         *LoadState*) echo LoadState=loaded ;;\n*LimitNOFILE*) echo LimitNOFILE=2048 ;;\nesac\n",
    );
    let systemctl = t.path("bin/systemctl");
    fs::set_permissions(&systemctl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", t.path("bin").display(), std::env::var("PATH").unwrap_or_default());
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[("PATH", &path)]);
    assert_eq!(r.status("systemd.DefaultLimitNOFILE"), "INFO", "{r:?}");
    assert_eq!(r.status("systemd.c10k-server.LimitNOFILE"), "WARN", "{r:?}");
    assert!(r.row("systemd.c10k-server.LimitNOFILE").contains("LimitNOFILE=8192"), "{r:?}");
    assert!(!r.rows().iter().any(|(_, k)| k == "systemd.LimitNOFILE"), "{r:?}");
}

#[test]
fn a_hard_nofile_below_the_per_shard_need_fails_unless_it_can_be_raised() {
    let t = good_host("nofile");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[("NOFILE_HARD", "1024")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.status("nofile.hard"), "FAIL");
    let row = r.row("nofile.hard");
    assert!(row.contains(">= 5256 per shard process"), "{row}");
    assert!(row.contains("LimitNOFILE=8192"), "{row}");
    assert!(row.contains("--shards 14"), "ceil(10000 / (1024 - 256)) shards would do: {row}");
    assert!(r.verdict().starts_with("verdict: FAIL — 1 limit stands between this host and 10000 connections"));

    // With CAP_SYS_RESOURCE (bit 24 of CapEff) the server raises the hard limit itself.
    t.write("proc/self/status", "CapEff:\t000001ffffffffff\n");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[("NOFILE_HARD", "1024")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status("nofile.hard"), "WARN");
}

#[test]
fn the_per_shard_need_divides_the_target() {
    let t = good_host("pershard");
    // 100000 over 2 shards needs 50256 a process: 20000 (this dev box) is not enough...
    let r = check(&t, &["--target", "100000", "--shards", "2"], &[("NOFILE_HARD", "20000"), ("NOFILE_SOFT", "20000")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.status("nofile.hard"), "FAIL");
    assert!(r.stdout.contains("capacity: about 39488 connections with 2 shards, bound by nofile.hard"), "{r:?}");
    // ...over 6 shards 16923 is.
    let r = check(&t, &["--target", "100000", "--shards", "6"], &[("NOFILE_HARD", "20000")]);
    assert_eq!(r.status("nofile.hard"), "OK", "{r:?}");
    assert_eq!(r.status("cpus"), "WARN", "6 shards on 2 CPUs: {r:?}");
}

#[test]
fn nr_open_below_the_per_shard_need_fails() {
    let t = good_host("nropen");
    t.sysctl("fs.nr_open", "4096");
    let r = check(&t, &["--target", "10000", "--shards", "1"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.status("fs.nr_open"), "FAIL");
    assert!(r.row("fs.nr_open").contains("sysctl -w fs.nr_open=1048576"), "{r:?}");
    // limits.conf's 65536 is more than nr_open allows.
    assert_eq!(r.status("limits.conf"), "WARN");
}

#[test]
fn limits_files_below_the_need_warn() {
    let t = good_host("limits");
    t.write("etc/security/limits.d/10-low.conf", "web  hard  nofile  1000\nweb soft nofile 1000\n");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status("limits.conf"), "WARN");
    assert!(r.row("limits.conf").contains("limits.d/10-low.conf: web hard nofile 1000"), "{r:?}");
    assert!(r.row("limits.conf").contains("below the need for limits.d/10-low.conf:web"), "{r:?}");
    // No /etc/security at all: INFO.
    t.remove("etc/security");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.status("limits.conf"), "INFO");
}

#[test]
fn conntrack_smaller_than_the_target_fails_and_missing_conntrack_is_info() {
    let t = good_host("conntrack");
    t.sysctl("net.netfilter.nf_conntrack_max", "1000").sysctl("net.netfilter.nf_conntrack_count", "10");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.status("net.netfilter.nf_conntrack_max"), "FAIL");
    assert!(r.row("net.netfilter.nf_conntrack_max").contains("sysctl -w net.netfilter.nf_conntrack_max=262144"));
    assert_eq!(r.status("net.netfilter.nf_conntrack_count"), "OK");

    t.sysctl("net.netfilter.nf_conntrack_max", "262144").sysctl("net.netfilter.nf_conntrack_count", "250000");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status("net.netfilter.nf_conntrack_count"), "WARN");

    t.remove("proc/sys/net/netfilter");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status("net.netfilter.nf_conntrack_max"), "INFO");
    assert!(r.row("net.netfilter.nf_conntrack_max").contains("conntrack not loaded"), "{r:?}");
}

#[test]
fn small_backlogs_warn_but_pass() {
    let t = good_host("backlog");
    t.sysctl("net.core.somaxconn", "128")
        .sysctl("net.ipv4.tcp_max_syn_backlog", "512")
        .sysctl("net.core.netdev_max_backlog", "500");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status("net.core.somaxconn"), "WARN");
    assert!(r.row("net.core.somaxconn").contains("sysctl -w net.core.somaxconn=4096"));
    assert_eq!(r.status("net.ipv4.tcp_max_syn_backlog"), "WARN");
    assert_eq!(r.status("net.core.netdev_max_backlog"), "WARN");
    assert_eq!(r.verdict(), "verdict: this host can hold 10000 connections with 2 shards (3 warnings)");
}

#[test]
fn a_long_fin_timeout_warns() {
    let t = good_host("fin");
    t.sysctl("net.ipv4.tcp_fin_timeout", "120");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.status("net.ipv4.tcp_fin_timeout"), "WARN");
    assert!(r.row("net.ipv4.tcp_fin_timeout").contains("sysctl -w net.ipv4.tcp_fin_timeout=30"));
}

#[test]
fn io_uring_switched_off_warns_because_epoll_serves() {
    let t = good_host("uring");
    for (v, status) in [("0", "OK"), ("1", "WARN"), ("2", "WARN")] {
        t.sysctl("kernel.io_uring_disabled", v);
        let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(r.status("kernel.io_uring_disabled"), status, "{v}: {r:?}");
        if v == "2" {
            assert!(r.row("kernel.io_uring_disabled").contains("epoll"), "{r:?}");
        }
    }
    t.remove("proc/sys/kernel/io_uring_disabled");
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.status("kernel.io_uring_disabled"), "INFO");
}

#[test]
fn memlock_matters_only_before_5_12() {
    let t = good_host("memlock");
    let r = check(&t, &[], &[("MEMLOCK", "64")]);
    assert_eq!(r.status("memlock"), "INFO", "6.8 does not charge memlock: {r:?}");
    t.sysctl("kernel.osrelease", "5.10.0-28-amd64");
    let r = check(&t, &[], &[("MEMLOCK", "64")]);
    assert_eq!(r.status("memlock"), "WARN", "{r:?}");
    assert!(r.row("memlock").contains("LimitMEMLOCK=infinity"), "{r:?}");
    assert_eq!(r.status("kernel"), "INFO", "no provided buffer rings before 5.19: {r:?}");
    let r = check(&t, &[], &[("MEMLOCK", "unlimited")]);
    assert_eq!(r.status("memlock"), "OK", "{r:?}");
}

#[test]
fn memory_for_the_target() {
    let t = good_host("memory");
    // 12 GiB of memory, 7.6 GiB available; 100000 connections need 7.1 GiB at 74 KiB each
    // (10 KiB of kernel, 64 KiB a connection being served may hold): they fit, with little
    // to spare.
    t.write("proc/meminfo", "MemTotal:  12582912 kB\nMemAvailable:  8000000 kB\n")
        .sysctl("net.ipv4.tcp_mem", "20000\t30000\t40000");
    let r = check(&t, &["--target", "100000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status("memory"), "WARN", "{r:?}");
    assert_eq!(r.status("net.ipv4.tcp_mem"), "WARN", "{r:?}");
    assert!(r.row("net.ipv4.tcp_mem").contains("sysctl -w net.ipv4.tcp_mem=\"20000 30000 200000\""), "{r:?}");
    assert_eq!(r.status("net.ipv4.tcp_rmem/wmem"), "WARN", "100000 x 144 KiB exceeds 12 GiB: {r:?}");
    // 150000 connections need 10.6 GiB: more than is available.
    let r = check(&t, &["--target", "150000", "--shards", "2"], &[]);
    assert_eq!(r.status("memory"), "FAIL", "{r:?}");
    assert!(r.verdict().ends_with("150000 connections: memory"), "{r:?}");
    assert_eq!(r.code, 1);
    // 1 GiB: 200000 pages of tcp_mem would be most of it.
    t.write("proc/meminfo", "MemTotal:  1048576 kB\nMemAvailable:  1000000 kB\n");
    let r = check(&t, &["--target", "100000", "--shards", "2"], &[]);
    assert!(r.row("net.ipv4.tcp_mem").contains("add memory"), "{r:?}");
}

#[test]
fn c10m_knobs_warn_where_they_matter() {
    let t = good_host("c10m");
    t.remove("sys/class/net/eth0/queues/rx-1").remove("sys/class/net/eth0/queues/tx-1");
    t.write("sys/class/net/eth0/queues/rx-0/rps_cpus", "00000000,00000000\n")
        .write("sys/class/net/eth0/queues/rx-0/rps_flow_cnt", "0\n")
        .write("proc/irq/41/smp_affinity_list", "0\n");
    // 10000 connections, one shard: one queue without RPS is fine.
    let r = check(&t, &["--target", "10000", "--shards", "1"], &[]);
    assert_eq!(r.status("nic.eth0.queues"), "INFO", "{r:?}");
    assert_eq!(r.status("nic.eth0.rps"), "INFO", "{r:?}");
    assert_eq!(r.status("nic.eth0.irqs"), "INFO", "{r:?}");
    // Two shards on one receive queue and no RPS: one core does every shard's packets.
    let r = check(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.status("nic.eth0.queues"), "WARN", "{r:?}");
    assert_eq!(r.status("nic.eth0.rps"), "WARN", "{r:?}");
    assert!(r.row("nic.eth0.rps").contains("echo 3 > /sys/class/net/eth0/queues/rx-0/rps_cpus"), "{r:?}");
    assert_eq!(r.code, 0, "warnings only: {r:?}");
    // 100000 connections: RFS off and both IRQs on core 0 warn too.
    let r = check(&t, &["--target", "100000", "--shards", "2"], &[]);
    assert_eq!(r.status("nic.eth0.rfs"), "WARN", "{r:?}");
    assert_eq!(r.status("nic.eth0.irqs"), "WARN", "{r:?}");
    assert!(r.row("nic.eth0.irqs").contains("echo 1 > /proc/irq/41/smp_affinity_list"), "{r:?}");
    // irqbalance may undo manual pinning.
    t.write("proc/555/comm", "irqbalance\n");
    let r = check(&t, &["--target", "100000", "--shards", "2"], &[]);
    assert_eq!(r.row("irqbalance").split_whitespace().nth(2), Some("running"), "{r:?}");
    assert!(r.row("nic.eth0.irqs").contains("irqbalance runs"), "{r:?}");
}

#[test]
fn numa_nodes_and_shards() {
    let t = good_host("numa");
    t.mkdir("sys/devices/system/node/node1").write("sys/devices/system/cpu/online", "0-3\n");
    let r = check(&t, &["--shards", "3"], &[]);
    assert_eq!(r.status("numa.nodes"), "WARN", "{r:?}");
    assert!(r.row("numa.nodes").contains("--shards 4"), "{r:?}");
    let r = check(&t, &["--shards", "4"], &[]);
    assert_eq!(r.status("numa.nodes"), "INFO", "{r:?}");
}

#[test]
fn a_bare_host_is_audited_without_errors() {
    // No conntrack, no NIC but lo, no limits.d, no systemd, no NUMA, no irqbalance, no
    // meminfo: only CPUs and a kernel version.
    let t = Tree::new("bare");
    t.write("sys/devices/system/cpu/online", "0\n")
        .sysctl("kernel.osrelease", "6.1.0")
        .write("sys/class/net/lo/queues/rx-0/rps_cpus", "0\n");
    let r = check(&t, &["--target", "1000"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.is_empty(), "{r:?}");
    assert_eq!(r.status("net.netfilter.nf_conntrack_max"), "INFO");
    assert_eq!(r.status("nics"), "INFO");
    assert_eq!(r.status("numa.nodes"), "INFO");
    assert_eq!(r.status("kernel.io_uring_disabled"), "INFO");
    assert_eq!(r.verdict(), "verdict: this host can hold 1000 connections with 1 shard");
    let rows = json_rows(&check(&t, &["--target", "1000", "--json"], &[]).stdout);
    assert_eq!(rows.len(), r.rows().len());
}

#[test]
fn json_rows_match_the_text() {
    let t = poor_host("json");
    // A limits.d entry with characters JSON must escape.
    t.write("etc/security/limits.d/x.conf", "@we\"ird\\grp hard nofile 100\n");
    let args = ["--target", "100000", "--shards", "2"];
    let text = check(&t, &args, &[]);
    let json = run_script("check.sh", Some(&t), &[&args[..], &["--json"]].concat(), &[]);
    assert_eq!(json.code, text.code, "same exit code: {json:?}");
    assert_eq!(json.code, 1);
    assert!(!json.stdout.contains("STATUS"), "JSON only: {json:?}");
    let rows = json_rows(&json.stdout);
    let from_text = text.rows();
    assert_eq!(rows.len(), from_text.len());
    for (j, (status, knob)) in rows.iter().zip(&from_text) {
        assert_eq!((&j[3], &j[0]), (status, knob));
    }
    let limits = rows.iter().find(|r| r[0] == "limits.conf").unwrap();
    assert!(limits[1].contains("@we\"ird\\grp hard nofile 100"), "{limits:?}");
    let file_max = rows.iter().find(|r| r[0] == "fs.file-max").unwrap();
    assert_eq!((file_max[1].as_str(), file_max[3].as_str()), ("5000", "FAIL"));
    assert_eq!(file_max[4], "sysctl -w fs.file-max=1048576");
}

/// Every row's cells start at the header's columns, each followed by a space, however
/// long the host's values are; a value or need too wide moves to a line below its row.
#[test]
fn every_row_lines_up_with_the_header_even_with_long_values() {
    let t = good_host("columns");
    // 1 TiB of memory, buffers of up to 2 GiB, an interface with a long name and 8 queues:
    // values far wider than their columns.
    t.write("proc/meminfo", "MemTotal:  1073741824 kB\nMemAvailable:  1000000000 kB\n")
        .sysctl("net.ipv4.tcp_rmem", "4096\t131072\t2147483647")
        .sysctl("net.ipv4.tcp_wmem", "4096\t16384\t2147483647")
        .write("sys/class/net/enp129s0f1np1/operstate", "up\n");
    for q in 0..8 {
        t.write(&format!("sys/class/net/enp129s0f1np1/queues/rx-{q}/rps_cpus"), "0\n")
            .write(&format!("sys/class/net/enp129s0f1np1/queues/rx-{q}/rps_flow_cnt"), "0\n")
            .write(&format!("sys/class/net/enp129s0f1np1/queues/tx-{q}/xps_cpus"), "0\n");
    }
    for args in [&[][..], &["--target", "100000", "--shards", "2"], &["--target", "1000000", "--shards", "1"]] {
        let r = check(&t, args, &[]);
        let lines: Vec<&str> = r.stdout.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("STATUS ")).expect("header");
        let cols: Vec<usize> =
            ["KNOB", "VALUE", "NEED", "FIX"].iter().map(|h| lines[header].find(h).expect("column")).collect();
        let mut rows = 0;
        for line in &lines[header + 1..] {
            if line.starts_with("capacity: ") {
                break;
            }
            if line.starts_with(' ') {
                let rest = line.trim_start();
                assert_eq!(line.len() - rest.len(), cols[0], "indented under KNOB: {line}\n{r:?}");
                assert!(["value: ", "need:  ", "# "].iter().any(|p| rest.starts_with(p)), "{line}\n{r:?}");
                continue;
            }
            rows += 1;
            let b = line.as_bytes();
            assert!(b.len() > cols[3], "no FIX: {line}\n{r:?}");
            for (i, &c) in cols.iter().enumerate() {
                assert!(
                    b[c - 1] == b' ' && b[c] != b' ',
                    "cell {} of a row out of line:\n{line}\n{}",
                    i + 1,
                    lines[header]
                );
                // The cell before this column ends in padding: it did not run into it.
                let start = if i == 0 { 0 } else { cols[i - 1] };
                assert!(line[start..c].trim_end().len() < c - start, "cell {i} too wide:\n{line}\n{}", lines[header]);
            }
        }
        assert_eq!(rows, r.rows().len(), "{r:?}");
        // The long values are shown whole, below their rows.
        let bufs = r.row("net.ipv4.tcp_rmem/wmem");
        assert!(bufs.lines().next().unwrap().split_whitespace().nth(2) == Some("(below)"), "{r:?}");
        assert!(bufs.contains("\n       value: rmem 4096 131072 2147483647; wmem 4096 16384 2147483647\n"), "{r:?}");
        assert!(r.row("memory").contains("\n       value: total 1048576 MiB, available 976562 MiB"), "{r:?}");
        assert!(r.row("nic.enp129s0f1np1.rfs").contains("rx-7=0"), "{r:?}");
    }
}

/// --json carries what the text ends with: the run's target and shards, the capacity and
/// what bounds it, the verdict and its level, and each row's note.
#[test]
fn json_has_the_capacity_verdict_notes_target_and_shards() {
    // FAIL: three limits below 100000 connections; conntrack (1000) bounds the capacity.
    let t = poor_host("jsonverdict");
    let args = ["--target", "100000", "--shards", "2"];
    let text = check(&t, &args, &[]);
    let json = run_script("check.sh", Some(&t), &[&args[..], &["--json"]].concat(), &[]);
    assert_eq!(json.code, 1, "{json:?}");
    let j = json_report(&json.stdout);
    assert_eq!(j.get("target").num(), 100000.0);
    assert_eq!(j.get("shards").num(), 2.0);
    assert_eq!(j.get("cpus").num(), 2.0);
    assert_eq!(j.get("descriptors_per_shard").num(), 50256.0);
    assert_eq!(j.get("capacity").get("connections").num(), 1000.0);
    assert_eq!(j.get("capacity").get("bound").str(), "net.netfilter.nf_conntrack_max");
    assert!(
        text.stdout.contains("capacity: about 1000 connections with 2 shards, bound by net.netfilter.nf_conntrack_max")
    );
    let v = j.get("verdict");
    assert_eq!(v.get("level").str(), "FAIL");
    assert_eq!(format!("verdict: {}", v.get("text").str()), text.verdict());
    assert_eq!(v.get("fails").strs(), ["fs.file-max", "fs.nr_open", "net.netfilter.nf_conntrack_max"]);
    assert_eq!(
        v.get("warnings").strs(),
        [
            "limits.conf",
            "fs.file-nr",
            "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog",
            "net.core.netdev_max_backlog",
            "net.ipv4.tcp_fin_timeout"
        ]
    );
    // Each row's note is the text's "#" line, null where there is none.
    let rows = json_rows_and_notes(&json.stdout);
    for (row, note) in &rows {
        let in_text = text.row(&row[0]).lines().find_map(|l| l.strip_prefix("       # ").map(str::to_string));
        assert_eq!(note, &in_text, "{}", row[0]);
    }
    let note = |knob: &str| rows.iter().find(|(r, _)| r[0] == knob).unwrap().1.clone();
    assert_eq!(
        note("fs.file-max").as_deref(),
        Some("the whole system can open only 5000 files; every connection is one")
    );
    assert_eq!(note("cpus"), None);

    // WARN: nothing fails, but only 5000 more files can be opened.
    let t = good_host("jsonwarn");
    t.sysctl("fs.file-max", "20000").sysctl("fs.file-nr", "15000\t0\t20000");
    let j = json_report(&check(&t, &["--target", "10000", "--shards", "3", "--json"], &[]).stdout);
    assert_eq!((j.get("target").num(), j.get("shards").num()), (10000.0, 3.0));
    assert_eq!(j.get("capacity").get("connections").num(), 5000.0);
    assert_eq!(j.get("capacity").get("bound").str(), "fs.file-max");
    assert_eq!(j.get("verdict").get("level").str(), "WARN");
    assert!(j.get("verdict").get("fails").strs().is_empty());

    // OK, with warnings left: the level says the target fits; the warnings are listed.
    let t = good_host("jsonok");
    t.sysctl("net.core.somaxconn", "128");
    let r = check(&t, &["--target", "10000", "--shards", "2", "--json"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = json_report(&r.stdout);
    assert_eq!(j.get("verdict").get("level").str(), "OK");
    assert_eq!(j.get("verdict").get("text").str(), "this host can hold 10000 connections with 2 shards (1 warning)");
    assert_eq!(j.get("verdict").get("warnings").strs(), ["net.core.somaxconn"]);
    assert_eq!(j.get("capacity").get("connections").num(), 262144.0);
    assert_eq!(j.get("capacity").get("bound").str(), "net.netfilter.nf_conntrack_max");
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    let t = good_host("usage");
    for args in [&["--target", "lots"][..], &["--target"], &["--shards", "0"], &["--frobnicate"], &["--target", "-5"]] {
        for script in ["check.sh", "apply.sh"] {
            let r = run_script(script, Some(&t), args, &[]);
            assert_eq!(r.code, 2, "{script} {args:?}: {r:?}");
            assert_eq!(r.stderr.lines().count(), 1, "{script} {args:?}: {r:?}");
            assert!(r.stderr.starts_with(&format!("{script}: ")), "{r:?}");
            assert!(r.stdout.is_empty(), "{r:?}");
        }
    }
    assert_eq!(run_script("check.sh", Some(&t), &["--help"], &[]).code, 0);
}

#[test]
fn check_runs_on_this_host() {
    let r = run_script("check.sh", None, &[], &[]);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    assert!(r.verdict().starts_with("verdict: "), "{r:?}");
    // The hard limit reported is this shell's.
    let hard = Command::new("sh").args(["-c", "ulimit -Hn"]).output().unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_string();
    assert_eq!(r.row("nofile.hard").split_whitespace().nth(2), Some(hard.as_str()), "{r:?}");
    let j = run_script("check.sh", None, &["--json"], &[]);
    assert_eq!(j.code, r.code, "{j:?}");
    json_rows(&j.stdout);
}

// ---------------------------------------------------------------- apply.sh

const POOR_SYSCTLS: [&str; 7] = [
    "fs.file-max",
    "fs.nr_open",
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.core.netdev_max_backlog",
    "net.ipv4.tcp_fin_timeout",
    "net.netfilter.nf_conntrack_max",
];

#[test]
fn apply_dry_run_prints_only_the_raises_and_changes_nothing() {
    let t = good_host("dry");
    t.sysctl("fs.file-max", "5000").sysctl("fs.file-nr", "1000\t0\t5000").sysctl("net.core.somaxconn", "128");
    let before = t.snapshot();
    let r = apply(&t, &["--dry-run", "--target", "100000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.sysctl_commands(),
        ["sysctl -w fs.file-max=1048576", "sysctl -w net.core.somaxconn=4096"],
        "only the knobs below the need: {r:?}"
    );
    // Every other line is a comment: the output is the script that would run.
    assert!(r.stdout.lines().all(|l| l.starts_with("sysctl -w ") || l.starts_with('#')), "{r:?}");
    assert!(r.stdout.contains("# fs.nr_open = 1048576: enough"), "{r:?}");
    assert!(!r.stdout.contains("ip_local_port_range"), "client knobs only with --client: {r:?}");
    assert_eq!(t.snapshot(), before, "a dry run changed the tree");

    let r = apply(&t, &["--dry-run", "--target", "100000", "--client"], &[]);
    assert!(r.sysctl_commands().contains(&"sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\""), "{r:?}");
    assert!(!r.sysctl_commands().iter().any(|c| c.contains("tcp_tw_reuse")), "2 is enough: {r:?}");
}

#[test]
fn apply_persist_dry_run_prints_the_files_it_would_write() {
    let t = poor_host("persist");
    let before = t.snapshot();
    let r = apply(&t, &["--persist", "--dry-run", "--target", "100000", "--shards", "2"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let etc = t.path("etc");
    let sysctl_d = format!("cat > '{}/sysctl.d/99-c10k.conf' <<'EOF'", etc.display());
    let limits_d = format!("cat > '{}/security/limits.d/99-c10k.conf' <<'EOF'", etc.display());
    assert!(r.stdout.contains(&sysctl_d), "{r:?}");
    assert!(r.stdout.contains(&limits_d), "{r:?}");
    for line in
        ["fs.file-max = 1048576", "fs.nr_open = 1048576", "net.core.somaxconn = 4096", "net.ipv4.tcp_fin_timeout = 30"]
    {
        assert!(r.stdout.lines().any(|l| l == line), "{line}: {r:?}");
    }
    // 50256 descriptors a shard, rounded up to a power of two; never above what the shell has.
    for line in ["*     hard  nofile  1048576", "root  hard  nofile  1048576"] {
        assert!(r.stdout.lines().any(|l| l == line), "{line}: {r:?}");
    }
    let r = apply(&t, &["--persist", "--dry-run", "--target", "100000", "--shards", "2"], &[("NOFILE_HARD", "1024")]);
    assert!(r.stdout.lines().any(|l| l == "*     hard  nofile  65536"), "{r:?}");
    assert_eq!(t.snapshot(), before, "a dry run changed the tree");
}

#[test]
fn apply_needs_root_unless_dry_run() {
    let t = poor_host("root");
    let r = apply(&t, &["--target", "10000"], &[]);
    if is_root() {
        assert_eq!(r.code, 0, "{r:?}");
    } else {
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("needs root"), "{r:?}");
    }
}

/// As root, apply.sh writes into the fake tree (PROC_ROOT is not /proc, so it does not use
/// sysctl -w on the real host), after which check.sh is satisfied and a second run does
/// nothing.
#[test]
fn apply_raises_what_check_flags_and_then_has_nothing_to_do() {
    if !is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let t = poor_host("apply");
    let args = ["--target", "100000", "--shards", "2", "--persist"];
    let r = apply(&t, &args, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.sysctl_commands().len(), POOR_SYSCTLS.len(), "{r:?}");
    assert_eq!(t.read_sysctl("fs.file-max"), "1048576");
    assert_eq!(t.read_sysctl("net.ipv4.tcp_fin_timeout"), "30");
    assert_eq!(t.read_sysctl("net.netfilter.nf_conntrack_max"), "262144");
    assert!(t.read("etc/sysctl.d/99-c10k.conf").contains("\nnet.core.somaxconn = 4096\n"));
    assert!(t.read("etc/security/limits.d/99-c10k.conf").contains("*     hard  nofile  1048576\n"));
    t.sysctl("fs.file-nr", "1000\t0\t1048576");
    let c = check(&t, &["--target", "100000", "--shards", "2"], &[]);
    for k in POOR_SYSCTLS {
        assert_eq!(c.status(k), "OK", "{k}: {c:?}");
    }
    let again = apply(&t, &args, &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.sysctl_commands().is_empty(), "idempotent: {again:?}");
    assert!(again.stdout.contains("# no sysctl needs raising"), "{again:?}");
    // The persisted file is the same the second time.
    assert!(t.read("etc/sysctl.d/99-c10k.conf").contains("\nfs.file-max = 1048576\n"));
}

/// A sysctl that cannot be written is reported, the rest is still applied, and the exit
/// code is 1.
#[test]
fn apply_reports_an_unwritable_sysctl_and_goes_on() {
    let ro = Path::new("/proc/sys/kernel/cap_last_cap"); // read-only, even for root
    if !is_root() || !ro.exists() {
        eprintln!("skipped: needs root and {}", ro.display());
        return;
    }
    let t = poor_host("readonly");
    let somaxconn = t.path("proc/sys/net/core/somaxconn");
    fs::remove_file(&somaxconn).unwrap();
    std::os::unix::fs::symlink(ro, &somaxconn).unwrap();
    let r = apply(&t, &["--target", "10000", "--shards", "2"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("could not set net.core.somaxconn=4096"), "{r:?}");
    assert_eq!(t.read_sysctl("net.ipv4.tcp_max_syn_backlog"), "4096", "the rest is applied: {r:?}");
}

/// The shipped tuning/sysctl.conf says what apply.sh --client --persist writes for 100000
/// connections on a host below every recommendation.
#[test]
fn shipped_sysctl_conf_matches_what_apply_computes() {
    fn settings(text: &str) -> Vec<(String, String)> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not key = value: {l}"));
                (k.trim().to_string(), v.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .collect()
    }
    let t = poor_host("shipped");
    let r = apply(&t, &["--client", "--persist", "--dry-run", "--target", "100000", "--shards", "1"], &[]);
    let start = r.stdout.find("99-c10k.conf' <<'EOF'\n").unwrap() + "99-c10k.conf' <<'EOF'\n".len();
    let body = &r.stdout[start..start + r.stdout[start..].find("\nEOF\n").unwrap()];
    let shipped = fs::read_to_string(tuning("sysctl.conf")).unwrap();
    assert_eq!(settings(&shipped), settings(body));
    let lines: Vec<&str> = shipped.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if !l.is_empty() && !l.starts_with('#') {
            assert!(i > 0 && lines[i - 1].starts_with("# "), "no comment above {l}");
        }
    }
}

#[test]
fn shipped_limits_conf_covers_100000_connections() {
    let text = fs::read_to_string(tuning("limits.conf")).unwrap();
    let entries: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    for domain in ["*", "root"] {
        for kind in ["soft", "hard"] {
            let e = entries.iter().find(|e| e[0] == domain && e[1] == kind && e[2] == "nofile").expect("entry");
            let n: u64 = e[3].parse().unwrap();
            assert!((100_000 + 256..=1_048_576).contains(&n), "{e:?}: one shard's need, at most fs.nr_open's default");
        }
    }
}

#[test]
fn shipped_unit_has_the_settings_each_with_a_comment() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/c10k-server.service")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "ExecStart=/usr/local/bin/c10k-server --listen 0.0.0.0:80 --root /srv/www --pid-file /run/c10k-server/c10k-server.pid",
        "RuntimeDirectory=c10k-server",
        "LogsDirectory=c10k-server",
        "LimitNOFILE=1048576",
        "LimitMEMLOCK=infinity",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "Restart=on-failure",
        "RestartSec=1",
        "KillSignal=SIGTERM",
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=mixed",
    ] {
        assert!(lines.contains(&want), "{want}");
    }
    // systemd's SIGKILL must come after the server's own drain has ended.
    let stop: u64 =
        lines.iter().find_map(|l| l.strip_prefix("TimeoutStopSec=")).expect("TimeoutStopSec").parse().unwrap();
    let drain =
        <c10k_server::config::Config as clap::Parser>::try_parse_from(["c10k-server"]).unwrap().shutdown_timeout;
    assert!(stop > drain, "TimeoutStopSec={stop} is not above the default --shutdown-timeout {drain}");
    for (i, l) in lines.iter().enumerate() {
        if l.contains('=') && !l.starts_with('#') {
            assert!(i > 0 && lines[i - 1].starts_with('#'), "no comment above {l}");
            assert!(!l.contains('#'), "systemd would read an inline comment as part of the value: {l}");
        }
    }
}

/// systemd itself accepts the unit (where `systemd-analyze` exists), with the binary this
/// build made standing in for the installed one, and the pid file it names lies in the
/// runtime directory the unit has systemd make.
#[test]
fn systemd_analyze_verifies_the_shipped_unit() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/c10k-server.service")).unwrap();
    assert!(text.contains("--pid-file /run/c10k-server/") && text.contains("RuntimeDirectory=c10k-server\n"));
    let Ok(which) = std::process::Command::new("sh").args(["-c", "command -v systemd-analyze"]).output() else {
        return;
    };
    if !which.status.success() {
        eprintln!("no systemd-analyze here: the unit's syntax is not checked by systemd");
        return;
    }
    let dir = std::env::temp_dir().join(format!("c10k-unit-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("c10k-server.service");
    fs::write(&unit, text.replace("/usr/local/bin/c10k-server", env!("CARGO_BIN_EXE_c10k-server"))).unwrap();
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success() && !said.contains("c10k-server.service:"), "systemd-analyze verify: {said}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the host has: after writing what apply.sh --dry-run says into the tree,
    /// check.sh flags none of those knobs, and apply.sh has nothing more to do.
    #[test]
    fn applying_the_dry_run_satisfies_check(
        target in 1u64..2_000_000,
        shards in 1u64..64,
        file_max in 1000u64..4_000_000,
        nr_open in 1024u64..2_000_000,
        somaxconn in 1u64..10_000,
        fin in 1u64..200,
        conntrack in 100u64..1_000_000,
    ) {
        let t = good_host("prop");
        t.sysctl("fs.file-max", &file_max.to_string())
            .sysctl("fs.file-nr", &format!("{}\t0\t{file_max}", file_max / 3))
            .sysctl("fs.nr_open", &nr_open.to_string())
            .sysctl("net.core.somaxconn", &somaxconn.to_string())
            .sysctl("net.ipv4.tcp_fin_timeout", &fin.to_string())
            .sysctl("net.netfilter.nf_conntrack_max", &conntrack.to_string());
        let args = ["--target".to_string(), target.to_string(), "--shards".to_string(), shards.to_string()];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dry = apply(&t, &[&args[..], &["--dry-run"]].concat(), &[]);
        prop_assert_eq!(dry.code, 0, "{:?}", dry);
        for cmd in dry.sysctl_commands() {
            let (k, v) = cmd.trim_start_matches("sysctl -w ").split_once('=').unwrap();
            t.sysctl(k, v.trim_matches('"'));
        }
        let c = check(&t, &args, &[]);
        for k in POOR_SYSCTLS {
            let s = c.status(k);
            prop_assert!(s == "OK" || s == "INFO", "{} is {} after applying:\n{:?}\n{:?}", k, s, dry, c);
        }
        let again = apply(&t, &[&args[..], &["--dry-run"]].concat(), &[]);
        prop_assert!(again.sysctl_commands().is_empty(), "{:?}", again);
    }
}

/// `make install` puts the binaries, the unit (naming PREFIX's binary and README), the
/// logrotate file and the documentation where they belong; staged with DESTDIR, from the
/// debug build this test run made.
#[test]
fn make_install_lays_out_every_file() {
    let dest = std::env::temp_dir().join(format!("c10k-install-{}", std::process::id()));
    let bins = Path::new(env!("CARGO_BIN_EXE_c10k-server")).parent().unwrap();
    if !bins.join("c10k-load").exists() || !bins.join("c10k-models").exists() {
        eprintln!("c10k-load or c10k-models not built beside the server (make test builds them): not checked");
        return;
    }
    let out = std::process::Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["install", "CARGO=true", "PREFIX=/opt/c10k"])
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("BINARIES={}", bins.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "make install: {}", String::from_utf8_lossy(&out.stderr));
    for file in [
        "opt/c10k/bin/c10k-server",
        "opt/c10k/bin/c10k-load",
        "opt/c10k/bin/c10k-models",
        "etc/logrotate.d/c10k-server",
        "opt/c10k/share/doc/c10k-server/README.md",
        "opt/c10k/share/doc/c10k-server/LICENSE-MIT",
    ] {
        assert!(dest.join(file).is_file(), "{file} not installed");
    }
    let unit = fs::read_to_string(dest.join("etc/systemd/system/c10k-server.service")).unwrap();
    assert!(unit.contains("\nExecStart=/opt/c10k/bin/c10k-server --listen"), "{unit}");
    assert!(unit.contains("Documentation=file:///opt/c10k/share/doc/c10k-server/README.md"), "{unit}");
    let rotate = fs::read_to_string(dest.join("etc/logrotate.d/c10k-server")).unwrap();
    assert!(rotate.contains("/var/log/c10k-server/") && rotate.contains("/run/c10k-server/c10k-server.pid"));
    let help = std::process::Command::new(dest.join("opt/c10k/bin/c10k-server")).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--pid-file"));
    fs::remove_dir_all(&dest).unwrap();
}
