#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod app;
pub mod cluster;
pub mod config;
mod glue;
pub mod limits;
pub mod logging;
pub mod metrics;
mod server;
mod timers;
pub mod tls;

pub use config::{ConfigError, Settings};
pub use server::{Server, ServerBuilder, build_verifier};

/// The current time from tokio's clock (a paused test clock is honoured).
pub(crate) fn timers_now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
