//! cargo-fuzz target; the body is `sockeye_fuzz::socketio_assembler`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::socketio_assembler(data));
