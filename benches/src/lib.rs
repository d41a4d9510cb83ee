//! Shared helpers for sockeye's benchmarks and the fan-out load generator.
#![allow(clippy::unwrap_used)]
pub mod fanout;
