//! What both official protocol suites expect, on one port.
//!
//! `cargo run --release -p sockeye-server --example conformance` listens on 127.0.0.1:3000
//! (`PORT` overrides) with pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000 and
//! CORS `*`:
//!
//! - `/engine.io/`: an Engine.IO echo (`socketio/engine.io-protocol`): every message comes back
//!   unchanged, text as text, binary as binary;
//! - `/socket.io/`: a `sockeye_server::Server` with namespaces `/` and `/custom`
//!   (`socketio/socket.io-protocol`): on connect, emit `auth` with the CONNECT payload; `message`
//!   -> `message-back` with the same arguments (binary kept); `message-with-ack` -> an ack with
//!   the same arguments; a session that joins no namespace within 1 s is closed.
//!
//! Run both suites against it with the conformance runner (`run-suites.sh all --server
//! 'exec target/release/examples/conformance'`): 24/24 Engine.IO and 32/32 Socket.IO tests
//! pass.

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use sockeye_broker::{AckSender, Broker, BrokerConfig, NamespaceBuilder, RawArgs, SocketRef};
use sockeye_codec::{Outgoing, Utf8Bytes};
use sockeye_engine::server::{Cors, RemoteAddr};
use sockeye_engine::{CloseReason, Engine, EngineConfig, Handler, HandshakeInfo, SessionHandle};
use sockeye_server::Server;
use sockeye_server::config::CorsOrigins;

/// The Engine.IO echo.
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

/// The handlers of both Socket.IO namespaces.
fn handlers(ns: NamespaceBuilder) -> NamespaceBuilder {
    // The CONNECT payload comes back byte for byte (`{}` when there was none).
    ns.on_connect(async |socket: SocketRef, RawArgs(auth): RawArgs| {
        let _ = socket.emit_args("auth", auth);
    })
    .on(
        "message",
        async |socket: SocketRef, RawArgs(args): RawArgs| {
            let _ = socket.emit_args("message-back", args);
        },
    )
    .on(
        "message-with-ack",
        async |RawArgs(args): RawArgs, ack: AckSender| {
            let _ = ack.send_args(args);
        },
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let ping_interval = Duration::from_millis(300);
    let ping_timeout = Duration::from_millis(200);
    let max_payload = NonZeroUsize::new(1_000_000).expect("non-zero");

    let echo = Engine::new(
        EngineConfig::default()
            .path("/engine.io/")
            .ping_interval(ping_interval)
            .ping_timeout(ping_timeout)
            .max_payload(max_payload)
            .cors(Cors::any()),
        Echo,
    );
    let broker = Broker::builder()
        .config(BrokerConfig::default().connect_timeout(Duration::from_secs(1)))
        .namespace("/", handlers)
        .namespace("/custom", handlers)
        .build();
    let server = Server::builder()
        .broker(broker)
        .ping_interval(ping_interval)
        .ping_timeout(ping_timeout)
        .max_payload(max_payload)
        .cors(CorsOrigins::Any)
        .max_connections_per_ip(None)
        .build()
        .map_err(std::io::Error::other)?;
    server.start();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("conformance: /engine.io/ (echo) and /socket.io/ on http://127.0.0.1:{port}");
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut ctrl_c => break,
        };
        let _ = stream.set_nodelay(true);
        let (echo, server) = (echo.clone(), server.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(RemoteAddr(addr));
                let (echo, server) = (echo.clone(), server.clone());
                async move {
                    let response = if request.uri().path().starts_with("/engine.io") {
                        echo.handle(request).await
                    } else {
                        server.handle(request).await
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let _ = connection.await;
        });
    }
    server.shutdown().await;
    echo.shutdown().await;
    Ok(())
}
