//! Every command in the README's `sh` blocks works as written on a fresh clone, as far as a
//! test can run it without serving for real: each `make` target exists and its recipe
//! parses (`make -n`), each script is there and executable, each flag given to one of our
//! binaries is one it takes, and each URL path on the demo site is a file or directory of
//! `./html`. (The demo site's answers themselves are checked by tests/demo_site.rs.)

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The command lines of the README's ```sh blocks, without comments, `sudo` or prompts.
fn commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let mut lines = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        match line.trim() {
            "```sh" => inside = true,
            "```" => inside = false,
            l if inside => {
                let command = l.split(" #").next().unwrap().trim();
                let command = command.strip_prefix("sudo ").unwrap_or(command);
                if !command.is_empty() && !command.starts_with('#') {
                    lines.push(command.to_string());
                }
            }
            _ => {}
        }
    }
    lines
}

/// `--help` of one of the workspace's binaries, built beside this test's.
fn help(binary: &str) -> String {
    let dir = Path::new(env!("CARGO_BIN_EXE_c10k-server")).parent().unwrap();
    let out = Command::new(dir.join(binary)).arg("--help").output().unwrap_or_else(|e| panic!("{binary}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_readme_command_can_run_as_written() {
    let commands = commands();
    assert!(commands.len() >= 15, "only {} commands found: the scan is broken", commands.len());
    let mut checked = 0;
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words[0] {
            "make" => {
                // A dry run: the target exists and its variables parse; nothing is built.
                let vars: Vec<String> = shell_words(&words[1..]);
                let out = Command::new("make").args(["-n", "-C", ROOT]).args(&vars).output().unwrap();
                assert!(out.status.success(), "`{command}`: {}", String::from_utf8_lossy(&out.stderr));
            }
            "c10k-server" | "c10k-load" | "c10k-models" | "./target/release/c10k-server" => {
                let binary = words[0].rsplit('/').next().unwrap();
                let help = help(binary);
                for flag in words.iter().filter(|w| w.starts_with("--")) {
                    let flag = flag.split('=').next().unwrap();
                    assert!(help.contains(flag), "`{command}`: {binary} takes no {flag}");
                }
            }
            script if script.contains('/') && script.ends_with(".sh") => {
                let path = Path::new(ROOT).join(script);
                let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("`{command}`: {script}: {e}"));
                let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
                assert!(mode & 0o111 != 0, "`{command}`: {script} is not executable");
            }
            "curl" => {
                let url = words.iter().find(|w| w.starts_with("http://127.0.0.1:8080/"));
                if let Some(url) = url {
                    let rel = url.trim_start_matches("http://127.0.0.1:8080/");
                    assert!(Path::new(ROOT).join("html").join(rel).exists(), "`{command}`: html/{rel} is missing");
                }
            }
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} commands checked");
}

/// Words as a shell passes them to make: `ARGS="--a b"` is one word without its quotes.
fn shell_words(words: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for w in words {
        if open {
            let last = out.last_mut().unwrap();
            last.push(' ');
            last.push_str(w.trim_end_matches('"'));
            open = !w.ends_with('"');
        } else {
            open = w.contains("=\"") && !w.ends_with('"');
            out.push(w.replace('"', ""));
        }
    }
    out
}
