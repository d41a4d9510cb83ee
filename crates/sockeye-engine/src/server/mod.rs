//! The hyper 1 + tokio driver: routing, long-polling, WebSocket, timers and shutdown.
//!
//! # Shape
//!
//! - [`Engine`] is a cheap-to-clone hyper [`Service`](hyper::service::Service): mount it in
//!   hyper directly ([`Engine::serve`], [`Engine::serve_connection`]) or behind axum/tower.
//! - A [`Handler`] sees every handshake request first ([`Handler::on_handshake`], may refuse it
//!   with 403), then the session's life: [`Handler::on_open`], [`Handler::on_message`],
//!   [`Handler::on_binary`], [`Handler::on_close`]. Callbacks are synchronous and run on the
//!   task that received the input; they must not block (push into a channel or spawn).
//! - A [`SessionHandle`] queues [`Outgoing`](sockeye_codec::Outgoing) messages by reference
//!   ([`SessionHandle::send`]) and closes sessions.
//!
//! Each session is a [`proto::Session`](crate::proto::Session) behind a `std::sync::Mutex`,
//! locked only for synchronous state-machine calls (never across an `.await`). One task per
//! WebSocket connection reads; on plain TCP whoever queues a message also writes it, without
//! waiting (the task only writes on backpressure and at the close), behind TLS the task writes
//! everything. A held polling GET waits on the session; one timer task per engine fires every
//! session's single deadline. No task or timer per session.

mod body;
mod config;
mod cors;
mod direct;
mod engine;
mod handler;
mod http1;
mod polling;
mod serve;
mod service;
mod timers;
mod websocket;
mod ws_frame;

pub use body::EngineBody;
pub use config::{AllowedOrigins, Cors, EngineConfig};
pub use engine::{Engine, EngineStats, SessionHandle};
pub use handler::{Handler, HandshakeInfo, Refusal, RemoteAddr};
pub use http1::{Replay, check_framing, refuse_http2_preface};

/// The current time, from tokio's clock (so tests with a paused clock see virtual time).
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
