//! cargo-fuzz target; the body is `sockeye_fuzz::engine_session`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::engine_session(data));
