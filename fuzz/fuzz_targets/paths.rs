//! The `paths` fuzz target (`make fuzz FUZZ_TARGETS=paths`): libFuzzer's entry point, nothing else.
#![no_main]
// The body and what it asserts: c10k_server::fuzz::paths.
libfuzzer_sys::fuzz_target!(|data: &[u8]| c10k_server::fuzz::paths(data));
