//! What the layer above implements: the handshake hook and session events.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use sockeye_codec::Utf8Bytes;

use super::SessionHandle;
use crate::proto::{CloseReason, Transport};

/// The layer above the engine: sees handshakes, then each session's messages and its end.
///
/// Every method runs synchronously on the task that received the input (a connection task or
/// the timer task), never while the session is locked, so calling [`SessionHandle`] methods
/// from inside is fine. Do not block in them: hand work to a channel or a spawned task.
/// Events of one session arrive in order, except that `on_close` may come from another task
/// while a message callback of the same session is still running.
pub trait Handler: Send + Sync + 'static {
    /// Sees every handshake request before a session exists. `Err` refuses it with HTTP 403
    /// (`{"code":4,"message":...}`). Default: accept.
    ///
    /// # Errors
    /// A [`Refusal`] to refuse the handshake.
    fn on_handshake(&self, request: &HandshakeInfo) -> Result<(), Refusal> {
        let _ = request;
        Ok(())
    }

    /// A session was opened by `request`. Called before the open packet is sent, so messages
    /// sent from here follow it.
    fn on_open(&self, session: &SessionHandle, request: &HandshakeInfo);

    /// A text message (the data after the Engine.IO `4`).
    fn on_message(&self, session: &SessionHandle, text: Utf8Bytes);

    /// A binary message.
    fn on_binary(&self, session: &SessionHandle, data: Bytes);

    /// The session moved from polling to WebSocket. Default: nothing.
    fn on_upgrade(&self, session: &SessionHandle) {
        let _ = session;
    }

    /// The session is over; it will not be heard from again.
    fn on_close(&self, session: &SessionHandle, reason: CloseReason);
}

/// A refused handshake: answered with 403 and this message (or 429, see
/// [`Refusal::too_many_requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
}

impl Refusal {
    /// A refusal with a message for the client.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
        }
    }

    /// A refusal for load (too many connections, a flood): answered `429 Too Many Requests`
    /// with `Retry-After` in whole seconds (at least 1) instead of `403`, so clients and
    /// proxies back off and retry rather than give up.
    pub fn too_many_requests(message: impl Into<Cow<'static, str>>, retry_after: Duration) -> Self {
        Self {
            message: message.into(),
            retry_after: Some(retry_after),
        }
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// When set, the refusal is a `429` with this `Retry-After` (see
    /// [`Refusal::too_many_requests`]).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl Default for Refusal {
    fn default() -> Self {
        Self::new("Forbidden")
    }
}

/// The client's address, as a request extension. [`Engine::serve`](super::Engine::serve) and
/// [`Engine::serve_connection`](super::Engine::serve_connection) insert it; when mounting the
/// engine elsewhere, insert it yourself to make [`HandshakeInfo::remote_addr`] work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The request that opens a session (polling handshake or direct WebSocket).
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) transport: Transport,
}

impl HandshakeInfo {
    /// The request method (always GET for an accepted handshake).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of query parameter `name`, as sent (not percent-decoded).
    pub fn query(&self, name: &str) -> Option<&str> {
        query_param(self.uri.query(), name)
    }

    /// The client's address, when known (see [`RemoteAddr`]).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The transport of the handshake.
    pub fn transport(&self) -> Transport {
        self.transport
    }
}

pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}
