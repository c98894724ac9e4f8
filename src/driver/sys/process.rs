//! fork(2) for `c10k-models --model fork` (the server itself never forks: it execs a new
//! worker instead). Forking is sound only while the process has one thread, so the check
//! is made here, where the fork is, rather than promised by each caller.

use std::io;

/// fork(2): `true` in the child, `false` in the parent. Refused (an error, no fork) while
/// the process has more than one thread.
pub fn fork_single_threaded() -> io::Result<bool> {
    ensure_single_threaded()?;
    // SAFETY: the process has one thread (checked above), the one running this: no other
    // thread exists to start one between the check and the fork, so the child's copy holds
    // no lock another thread held, and it may run any code, allocation included.
    Ok(matches!(unsafe { nix::unistd::fork() }?, nix::unistd::ForkResult::Child))
}

/// Ok if this process has exactly one thread, by the kernel's count. Where that count
/// cannot be read (no /proc), the answer is no: a fork that might be unsound is refused.
fn ensure_single_threaded() -> io::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        io::Error::new(e.kind(), format!("fork refused: cannot count threads in /proc/self/status: {e}"))
    })?;
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse::<usize>().ok());
    match threads {
        Some(1) => Ok(()),
        Some(n) => Err(io::Error::other(format!(
            "fork refused: the process has {n} threads, and a forked child could deadlock on a lock another \
             thread held; fork before starting any thread"
        ))),
        None => Err(io::Error::other("fork refused: no Threads: line in /proc/self/status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a second thread alive the fork is refused. The refusal is asserted on the check
    /// first, so a broken check panics here instead of forking the test harness.
    #[test]
    fn a_multi_threaded_process_is_not_forked() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Alive until `tx` drops, after both calls below.
        let parked = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let refused = ensure_single_threaded().expect_err("two threads counted as one");
        assert!(refused.to_string().contains("threads"), "{refused}");
        let refused = fork_single_threaded().expect_err("forked with two threads");
        assert!(refused.to_string().starts_with("fork refused"), "{refused}");
        drop(tx);
        parked.join().unwrap();
    }
}
