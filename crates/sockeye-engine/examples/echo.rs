//! An Engine.IO echo server: the set-up the official `engine.io-protocol` test suite expects.
//!
//! `cargo run --release -p sockeye-engine --example echo` listens on 127.0.0.1:3000 (`PORT`
//! overrides) at `/engine.io/`, with pingInterval 300 ms, pingTimeout 200 ms, maxPayload
//! 1,000,000 and CORS `*`. Every message comes back unchanged: text as text, binary as binary.

use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::Bytes;
use sockeye_codec::{Outgoing, Utf8Bytes};
use sockeye_engine::server::Cors;
use sockeye_engine::{CloseReason, Engine, EngineConfig, Handler, HandshakeInfo, SessionHandle};

struct Echo;

impl Handler for Echo {
    fn on_open(&self, _session: &SessionHandle, _request: &HandshakeInfo) {}

    fn on_message(&self, session: &SessionHandle, text: Utf8Bytes) {
        let _ = session.send(Outgoing::message_text(text.as_str()));
    }

    fn on_binary(&self, session: &SessionHandle, data: Bytes) {
        let _ = session.send(Outgoing::binary(data));
    }

    fn on_close(&self, _session: &SessionHandle, _reason: CloseReason) {}
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let config = EngineConfig::default()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(NonZeroUsize::new(1_000_000).expect("non-zero"))
        .cors(Cors::any());
    let engine = Engine::new(config, Echo);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("echo: listening on http://127.0.0.1:{port}/engine.io/");
    engine
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
