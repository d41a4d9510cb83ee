//! Shared harness for sockeye's integration tests: servers on loopback and raw protocol clients.
//!
//! The suites live in `tests/tests/*.rs`, one file per behaviour.
#![allow(clippy::unwrap_used)]
#![allow(missing_docs, missing_debug_implementations, clippy::exhaustive_enums)]

pub mod app;
pub mod eio;
pub mod raw_http;

/// The root `README.md`, so that its Rust examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RootReadme;
