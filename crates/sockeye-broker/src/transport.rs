//! The seam to the transport: what the broker needs from an Engine.IO session.
//!
//! The broker never depends on the engine. The server implements [`Transport`] for a handle to
//! an engine session (usually its bounded, byte-counted outbox) and gives it to
//! [`Broker::on_engine_open`](crate::Broker::on_engine_open).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use sockeye_codec::Outgoing;

/// An Engine.IO session the broker can push encoded messages into.
///
/// Both methods must return promptly and never wait: a broadcast calls [`Transport::send`] for
/// every recipient in turn.
pub trait Transport: Send + Sync + 'static {
    /// Queues one message. `Outgoing` clones share their bytes, so queueing is a refcount bump.
    ///
    /// # Errors
    /// [`SendError::Full`] when the queue is over its bound (the transport applies its own
    /// slow-consumer policy, such as closing the session, before or after returning it);
    /// [`SendError::Dropped`] when a volatile message was not queued because the transport
    /// cannot write right now; [`SendError::Closed`] when the session is gone.
    fn send(&self, message: Outgoing, flags: SendFlags) -> Result<(), SendError>;

    /// Closes the whole Engine.IO session (every namespace on it).
    fn close(&self, reason: CloseReason);
}

/// Per-message options passed to [`Transport::send`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendFlags {
    /// Drop the message rather than queue it when the transport is not writable right now.
    pub volatile: bool,
    /// Whether the message may be compressed (WebSocket permessage-deflate); default `true` in
    /// the reference server, `false` means "send as is".
    pub compress: bool,
}

impl SendFlags {
    /// Reliable, compressible: the reference defaults.
    pub const DEFAULT: Self = Self {
        volatile: false,
        compress: true,
    };
}

/// Why [`Transport::send`] did not queue a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session's outbound queue is over its bound.
    #[error("the transport queue is full")]
    Full,
    /// A volatile message was discarded because the transport was not writable.
    #[error("volatile message dropped")]
    Dropped,
    /// The session is closed.
    #[error("the transport is closed")]
    Closed,
}

/// Why the broker asks the transport to close the Engine.IO session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// No namespace was joined within the connect timeout.
    ConnectTimeout,
    /// The application asked for it (`socket.disconnect(true)`, `disconnect_sockets(true)`).
    Forced,
    /// The peer broke the Socket.IO protocol (unparsable packet, invalid state).
    ProtocolViolation,
}

/// Why a socket was disconnected, with the reference server's wording ([`as_str`]).
///
/// [`as_str`]: DisconnectReason::as_str
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent DISCONNECT for the namespace.
    ClientNamespaceDisconnect,
    /// The Engine.IO session was closed on the server's side (for example `disconnect(true)`).
    ForcedClose,
    /// The server closed the Engine.IO session for this client.
    ForcedServerClose,
    /// The client sent a packet the server could not parse, or one in an invalid state.
    ParseError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The server disconnected the socket (`socket.disconnect()`).
    ServerNamespaceDisconnect,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The connection was closed (the client went away, or closed the session).
    TransportClose,
    /// The connection failed (network error, payload too large, ...).
    TransportError,
}

impl DisconnectReason {
    /// The reference server's text for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ForcedClose => "forced close",
            Self::ForcedServerClose => "forced server close",
            Self::ParseError => "parse error",
            Self::PingTimeout => "ping timeout",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::ServerShuttingDown => "server shutting down",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the HTTP request that opened the Engine.IO session carried: the part of the Socket.IO
/// handshake that comes from the transport. Given once to
/// [`Broker::on_engine_open`](crate::Broker::on_engine_open) and shared by every socket of the
/// session.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct EngineInfo {
    /// The Engine.IO session id.
    pub sid: String,
    /// Request headers, names in lowercase. Repeated headers keep the last value.
    pub headers: HashMap<String, String>,
    /// Decoded query parameters of the handshake request.
    pub query: HashMap<String, String>,
    /// The peer's address, if known (the server applies its `trust-proxy` rule first).
    pub remote_addr: Option<SocketAddr>,
    /// Whether the session was opened over TLS.
    pub secure: bool,
    /// The request URL (path and query).
    pub url: String,
    /// When the session was opened.
    pub issued: Option<SystemTime>,
}

impl EngineInfo {
    /// Info with the session id alone; fill the rest with the setters.
    pub fn new(sid: impl Into<String>) -> Self {
        Self {
            sid: sid.into(),
            issued: Some(SystemTime::now()),
            ..Self::default()
        }
    }

    /// Sets one header (name lowercased).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }

    /// Sets every header.
    pub fn headers(mut self, headers: HashMap<String, String>) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the query parameters.
    pub fn query(mut self, query: HashMap<String, String>) -> Self {
        self.query = query;
        self
    }

    /// Sets the peer address.
    pub fn remote_addr(mut self, addr: SocketAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }

    /// Sets whether the session came over TLS.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the request URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }
}
