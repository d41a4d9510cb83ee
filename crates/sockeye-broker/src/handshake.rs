//! [`Handshake`]: what a socket knows about how it connected.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use sockeye_codec::Utf8Bytes;

use crate::transport::EngineInfo;

/// The handshake of one socket: the Engine.IO request (shared by every socket of the session)
/// and the auth payload of this namespace's CONNECT.
#[derive(Clone, Debug)]
pub struct Handshake {
    engine: Arc<EngineInfo>,
    auth: Option<Utf8Bytes>,
    time: SystemTime,
}

impl Handshake {
    /// A handshake for a CONNECT carrying `auth` (raw JSON object) on the session `engine`.
    pub fn new(engine: Arc<EngineInfo>, auth: Option<Utf8Bytes>, time: SystemTime) -> Self {
        Self { engine, auth, time }
    }

    /// The request headers (lowercase names).
    pub fn headers(&self) -> &HashMap<String, String> {
        &self.engine.headers
    }

    /// One header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.engine.headers.get(name).map(String::as_str)
    }

    /// The query parameters of the Engine.IO handshake request.
    pub fn query(&self) -> &HashMap<String, String> {
        &self.engine.query
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.engine.remote_addr
    }

    /// Whether the session came over TLS.
    pub fn secure(&self) -> bool {
        self.engine.secure
    }

    /// The URL of the handshake request.
    pub fn url(&self) -> &str {
        &self.engine.url
    }

    /// The Engine.IO session id (not the socket id).
    pub fn engine_sid(&self) -> &str {
        &self.engine.sid
    }

    /// The Engine.IO request info.
    pub fn engine(&self) -> &Arc<EngineInfo> {
        &self.engine
    }

    /// The auth payload as raw JSON, `{}` when the client sent none.
    pub fn auth_raw(&self) -> &str {
        self.auth.as_ref().map_or("{}", Utf8Bytes::as_str)
    }

    /// The auth payload deserialized (`{}` when the client sent none).
    ///
    /// # Errors
    /// The JSON error when the payload does not have `T`'s shape.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.auth_raw())
    }

    /// When the CONNECT arrived.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// When the CONNECT arrived, in milliseconds since the Unix epoch (the reference's `issued`).
    pub fn issued_ms(&self) -> u64 {
        self.time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl serde::Serialize for Handshake {
    /// The reference's shape: `headers`, `time`, `address`, `secure`, `issued`, `url`, `query`,
    /// `auth`, so a remote adapter can ship it as is.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let auth: &serde_json::value::RawValue =
            serde_json::from_str(self.auth_raw()).map_err(serde::ser::Error::custom)?;
        let mut s = serializer.serialize_struct("Handshake", 8)?;
        s.serialize_field("headers", &self.engine.headers)?;
        s.serialize_field("time", &self.issued_ms())?;
        s.serialize_field(
            "address",
            &self.engine.remote_addr.map(|a| a.ip().to_string()),
        )?;
        s.serialize_field("secure", &self.engine.secure)?;
        s.serialize_field("issued", &self.issued_ms())?;
        s.serialize_field("url", &self.engine.url)?;
        s.serialize_field("query", &self.engine.query)?;
        s.serialize_field("auth", auth)?;
        s.end()
    }
}
