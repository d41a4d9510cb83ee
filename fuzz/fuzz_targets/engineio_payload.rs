//! cargo-fuzz target; the body is `sockeye_fuzz::engineio_payload`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::engineio_payload(data));
