//! The fan-out load generator's parts (the binary is `src/bin/fanout.rs`).
//!
//! It speaks Engine.IO v4 / Socket.IO v5 over WebSocket through `sockeye-codec`, opens N
//! receivers that join one room, has a sender broadcast M messages to that room, and measures
//! what arrives. Only loopback servers are accepted ([`target::Target`]).

pub mod client;
pub mod hist;
pub mod jwt;
pub mod procfs;
pub mod rawws;
pub mod run;
pub mod summary;
pub mod target;
