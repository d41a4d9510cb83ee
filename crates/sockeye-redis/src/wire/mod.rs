//! The wire format of Node's `@socket.io/redis-adapter` 8.3, sans-IO: pure functions from
//! values to bytes and back, no Redis client, no tokio.
//!
//! - [`notepack`]: msgpack in the exact dialect of `notepack.io` (the adapter's codec);
//! - [`ids`]: node and request ids in Node's shapes;
//! - [`channels`]: the classic mode's channel names;
//! - [`classic`]: the classic mode's messages (broadcasts, requests, answers).
//!
//! Decision 0006 explains the dialect's traps and the decode limits.

pub mod channels;
pub mod classic;
pub mod ids;
pub mod notepack;

/// Why a message could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are not msgpack as notepack.io writes it (truncated, reserved marker,
    /// trailing bytes).
    #[error("invalid msgpack: {0}")]
    Msgpack(&'static str),
    /// JSON text that does not parse, or a value that does not serialize.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Well-formed, but not the message shape expected (a missing field, a wrong type).
    #[error("unexpected message shape: {0}")]
    Shape(&'static str),
    /// Nested deeper than [`notepack::MAX_DEPTH`], or a length that cannot be encoded.
    #[error("message too large or too deeply nested")]
    TooLarge,
}
