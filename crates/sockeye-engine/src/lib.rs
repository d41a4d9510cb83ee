#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod proto;
#[cfg(feature = "server")]
pub mod server;

pub use proto::{CloseReason, SendError, Sid, Transport};
#[cfg(feature = "server")]
pub use server::{Engine, EngineConfig, Handler, HandshakeInfo, SessionHandle};
