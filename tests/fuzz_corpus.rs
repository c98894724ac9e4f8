//! Every input of the fuzz corpus (`fuzz/corpus/<target>/`: the seeds, and any crash found
//! once) replayed through its target's body, without libFuzzer: fast and deterministic, so
//! `make test` keeps each crash fixed. Needs the `fuzzing` feature (`make test` sets it);
//! without it there is nothing to test.
#![cfg(feature = "fuzzing")]

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{}: no corpus", dir.display());
    // Each panic prints its own message as it happens; the inputs that caused them are
    // named together at the end.
    let failed: Vec<String> = inputs
        .iter()
        .filter(|input| {
            let data = std::fs::read(input).expect("a corpus file");
            std::panic::catch_unwind(|| body(&data)).is_err()
        })
        .map(|input| input.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target} fails on {failed:?} (alone: make fuzz-build; fuzz/target/*/release/{target} FILE)"
    );
}

macro_rules! targets {
    ($($name:ident)*) => {
        $(#[test] fn $name() { replay(stringify!($name), c10k_server::fuzz::$name) })*
    };
}

targets!(parser chunked fields paths conn core);
