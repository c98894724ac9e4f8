//! The `conn` fuzz target (`make fuzz FUZZ_TARGETS=conn`): libFuzzer's entry point, nothing else.
#![no_main]
// The body and what it asserts: c10k_server::fuzz::conn.
libfuzzer_sys::fuzz_target!(|data: &[u8]| c10k_server::fuzz::conn(data));
