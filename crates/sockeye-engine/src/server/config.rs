//! Engine settings.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::proto::SessionConfig;

/// Which cross-origin requests are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// None (the default): no CORS headers; a request with a foreign `Origin` is refused (403).
    #[default]
    None,
    /// Any origin (`*`, for development).
    Any,
    /// These origins exactly (`scheme://host[:port]`, compared case-insensitively).
    List(Vec<String>),
}

/// CORS settings. Same-origin requests and requests without `Origin` are always accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub(crate) origins: AllowedOrigins,
    pub(crate) credentials: bool,
}

impl Cors {
    /// No cross-origin access (the default).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Any origin.
    pub fn any() -> Self {
        Self {
            origins: AllowedOrigins::Any,
            credentials: false,
        }
    }

    /// A list of origins.
    pub fn origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            origins: AllowedOrigins::List(origins.into_iter().map(Into::into).collect()),
            credentials: false,
        }
    }

    /// Sends `Access-Control-Allow-Credentials: true` (and echoes the origin instead of `*`).
    pub fn credentials(mut self, value: bool) -> Self {
        self.credentials = value;
        self
    }
}

/// Settings of an [`Engine`](super::Engine). Defaults equal the reference server.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub(crate) path: String,
    pub(crate) session: SessionConfig,
    pub(crate) cors: Cors,
    pub(crate) polling: bool,
    pub(crate) websocket: bool,
    pub(crate) max_headers: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) ws_close_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            path: "/engine.io/".to_owned(),
            session: SessionConfig::default(),
            cors: Cors::default(),
            polling: true,
            websocket: true,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            ws_close_timeout: Duration::from_secs(1),
        }
    }
}

impl EngineConfig {
    /// The path the engine answers on (default `/engine.io/`; the Socket.IO server uses
    /// `/socket.io/`). With or without the trailing slash, both match.
    pub fn path(mut self, path: &str) -> Self {
        let trimmed = path.trim_end_matches('/');
        let lead = if trimmed.starts_with('/') { "" } else { "/" };
        self.path = format!("{lead}{trimmed}/");
        self
    }

    /// All session settings at once.
    pub fn session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// How long a WebSocket close may take (default 1 s): writing the close frame, then the
    /// lingering close (reading and throwing away what the client still sends, until its close
    /// frame or its FIN, 16 MiB at most) before the socket is closed.
    pub fn ws_close_timeout(mut self, value: Duration) -> Self {
        self.ws_close_timeout = value;
        self
    }

    /// How often the server pings (default 25 s).
    pub fn ping_interval(mut self, value: Duration) -> Self {
        self.session = self.session.ping_interval(value);
        self
    }

    /// How long the server waits for a pong (default 20 s).
    pub fn ping_timeout(mut self, value: Duration) -> Self {
        self.session = self.session.ping_timeout(value);
        self
    }

    /// How long an upgrade may take (default 10 s).
    pub fn upgrade_timeout(mut self, value: Duration) -> Self {
        self.session = self.session.upgrade_timeout(value);
        self
    }

    /// maxPayload in bytes (default 1,000,000).
    pub fn max_payload(mut self, value: NonZeroUsize) -> Self {
        self.session = self.session.max_payload(value);
        self
    }

    /// The bound of each session's outbound queue in bytes (default 4 MiB).
    pub fn max_queued_bytes(mut self, value: NonZeroUsize) -> Self {
        self.session = self.session.max_queued_bytes(value);
        self
    }

    /// CORS (default: none).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = cors;
        self
    }

    /// Whether long-polling is offered (default true).
    pub fn polling(mut self, enabled: bool) -> Self {
        self.polling = enabled;
        self
    }

    /// Whether WebSocket is offered (default true).
    pub fn websocket(mut self, enabled: bool) -> Self {
        self.websocket = enabled;
        self
    }

    /// Most request headers accepted (default 64); more is answered 431.
    pub fn max_headers(mut self, value: NonZeroUsize) -> Self {
        self.max_headers = value.get();
        self
    }

    /// Largest request head in bytes (default 16 KiB, at least 8 KiB).
    pub fn max_header_bytes(mut self, value: NonZeroUsize) -> Self {
        self.max_header_bytes = value.get().max(8192);
        self
    }

    /// Time allowed to receive a request head (default 10 s).
    pub fn header_read_timeout(mut self, value: Duration) -> Self {
        self.header_read_timeout = value;
        self
    }

    /// Time allowed to receive a polling POST body (default 30 s).
    pub fn body_read_timeout(mut self, value: Duration) -> Self {
        self.body_read_timeout = value;
        self
    }

    /// How long a graceful shutdown may take before connections are cut (default 10 s).
    pub fn shutdown_timeout(mut self, value: Duration) -> Self {
        self.shutdown_timeout = value;
        self
    }
}
