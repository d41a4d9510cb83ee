//! cargo-fuzz target; the body is `sockeye_fuzz::engineio_packet`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::engineio_packet(data));
