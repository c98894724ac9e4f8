//! Bad flags and a bad start get one line that says what to do, and a non-zero exit.
//! (What the models serve is tested through the server's own harness: tests/models.rs and
//! the `for_each_model!` lists beside the backends' tests, at the workspace's root.)

use std::net::TcpListener;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_c10k-models");

/// (exit code, stderr) of `c10k-models ARGS`, which must exit by itself.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().expect("run c10k-models");
    (out.status.code().expect("an exit code"), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_unknown_model_lists_the_models() {
    let (code, err) = run(&["--model", "threads"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'threads' for '--model <MODEL>'"), "{err}");
    for model in ["iterative", "fork", "thread", "coroutine", "busy-poll", "select", "poll", "epoll", "uring"] {
        assert!(err.contains(model), "{model} not listed: {err}");
    }
    let (code, err) = run(&["--model", "fork", "--max-procs", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--max-procs"), "{err}");
}

#[test]
fn a_missing_root_or_a_taken_address_is_one_line_and_exit_1() {
    let (code, err) = run(&["--model", "poll", "--root", "/nonexistent/c10k", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("c10k-models: --root /nonexistent/c10k: "), "{err}");
    assert!(err.contains("pass --root with a directory to serve"), "{err}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let root = env!("CARGO_MANIFEST_DIR");
    let (code, err) = run(&["--model", "poll", "--root", root, "--listen", &addr]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with(&format!("c10k-models: cannot listen on {addr}: ")), "{err}");
    assert!(err.contains("pass --listen with a free ADDR:PORT"), "{err}");
}
