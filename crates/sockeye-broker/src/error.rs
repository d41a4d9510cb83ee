//! Error types of the broker, one per operation.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// Why an emit did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The event name is reserved (`connect`, `connect_error`, `disconnect`, `disconnecting`,
    /// `newListener`, `removeListener`).
    #[error("the event name is reserved")]
    ReservedEvent,
    /// The data could not be serialized as JSON.
    #[error("the data could not be serialized as JSON")]
    Serialize,
    /// The socket is disconnected.
    #[error("the socket is disconnected")]
    Disconnected,
    /// The socket's transport queue is full (the transport applies its slow-consumer policy).
    #[error("the transport queue is full")]
    QueueFull,
    /// A volatile message was dropped because the transport was not writable.
    #[error("volatile message dropped")]
    Dropped,
    /// The adapter failed to deliver a broadcast.
    #[error("adapter error: {0}")]
    Adapter(AdapterError),
}

/// Why an acknowledgement did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The deadline passed first.
    #[error("the acknowledgement timed out")]
    Timeout,
    /// The socket disconnected first.
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    /// The emit itself failed.
    #[error("emit failed: {0}")]
    Emit(EmitError),
}

/// Why an adapter operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// Other nodes did not answer in time and the operation cannot return a partial result.
    #[error("{missing} node(s) did not answer in time")]
    Timeout {
        /// How many nodes did not answer.
        missing: usize,
    },
    /// The adapter's connection to the other nodes is down (the transport is unavailable).
    #[error("the adapter is unavailable")]
    Unavailable,
    /// The message could not be encoded for other nodes.
    #[error("the message could not be encoded for other nodes")]
    Encode,
    /// Another node's answer could not be decoded.
    #[error("another node's answer could not be decoded")]
    Decode,
    /// The adapter does not support this operation (Node's sharded adapter and `allRooms`).
    #[error("the adapter does not support this operation")]
    Unsupported,
    /// The adapter was closed (its namespace was removed).
    #[error("the adapter is closed")]
    Closed,
}

/// Why a server-side emit with ack did not return every node's answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerSideEmitError {
    /// Some nodes did not answer before the timeout: Node's error text, with the answers that
    /// came.
    #[error("timeout reached: only {} responses received out of {expected}", responses.len())]
    Timeout {
        /// The answers that came, in arrival order.
        responses: Vec<serde_json::Value>,
        /// How many were expected (the other nodes).
        expected: usize,
    },
    /// The adapter failed.
    #[error("adapter error: {0}")]
    Adapter(AdapterError),
}

/// A broadcast with ack ended at its timeout before every client answered: Node's
/// `operation has timed out`, with the answers that came.
#[derive(Clone, Debug, thiserror::Error)]
#[error("operation has timed out")]
#[non_exhaustive]
pub struct BroadcastAckTimeout {
    /// The answers that came before the timeout, in arrival order.
    pub answers: Vec<crate::broadcast::AckAnswer>,
    /// How many answers were expected from the nodes that reported their client count.
    pub expected: usize,
    /// How many nodes did not report their client count in time.
    pub missing_nodes: usize,
}

/// A refused Socket.IO connection: the CONNECT_ERROR a namespace middleware returns. The client
/// receives `{"message": <message>, "data": <data>}`; its `connect_error` handler gets an `Error`
/// with that `message` and `data`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectError {
    message: Cow<'static, str>,
    data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with this message and no data.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// Adds the `data` field.
    #[must_use]
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The data, if any.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref()
    }

    /// The CONNECT_ERROR payload as JSON: `{"message":...,"data":...}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a serde_json::Value>,
        }
        serde_json::to_string(&Body {
            message: &self.message,
            data: self.data.as_ref(),
        })
        .unwrap_or_else(|_| String::from(r#"{"message":"refused"}"#))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection refused: {}", self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Why an extractor could not build a handler argument. The handler is not called.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The payload does not deserialize as the `Data<T>` type.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// `State<S>` was asked for a type never given to the builder.
    #[error("no state of type {0} was registered")]
    MissingState(&'static str),
    /// `Extension<T>` was asked for a type the socket does not carry.
    #[error("no extension of type {0} on this socket")]
    MissingExtension(&'static str),
    /// `AckSender` was asked for but the client wants no acknowledgement.
    #[error("the client asked for no acknowledgement")]
    NoAck,
}

/// A per-event middleware's refusal: the event is not dispatched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event rejected: {0}")]
pub struct Rejected(pub Cow<'static, str>);

impl Rejected {
    /// A refusal with a reason, for the logs.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self(reason.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_json() {
        assert_eq!(
            ConnectError::new("Invalid namespace").to_json(),
            r#"{"message":"Invalid namespace"}"#
        );
        let refusal = ConnectError::new("unauthorized")
            .with_data(serde_json::json!({"code": "UNAUTHORIZED", "reason": "missing"}));
        assert_eq!(
            refusal.to_json(),
            r#"{"message":"unauthorized","data":{"code":"UNAUTHORIZED","reason":"missing"}}"#
        );
    }
}
