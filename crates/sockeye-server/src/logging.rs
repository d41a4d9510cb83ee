//! `tracing` output: text or JSON lines on stderr, the level from `RUST_LOG` (default `info`).
//!
//! Tokens never reach a log line: the server logs a refusal's reason, never the token, and
//! [`sockeye_auth::Token`]'s `Debug` is `Token(<redacted>)`. The request headers of a session
//! (which may hold `Authorization: Bearer ...`) are never logged.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Does nothing when one is already installed (tests).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        _ => builder.try_init(),
    };
}
