//! cargo-fuzz target; the body is `sockeye_fuzz::auth_token`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::auth_token(data));
