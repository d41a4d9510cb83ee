//! Heartbeats through the real driver (the exact timing rules are unit-tested in the core on a
//! virtual clock; these check the wiring with short real intervals).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sockeye_engine::{CloseReason, EngineConfig};
use sockeye_tests::eio::TestServer;

fn fast() -> EngineConfig {
    EngineConfig::default()
        .ping_interval(Duration::from_millis(150))
        .ping_timeout(Duration::from_millis(100))
}

#[tokio::test]
async fn polling_ping_pong_keeps_the_session() {
    let server = TestServer::spawn(fast()).await;
    let client = server.polling().await;
    let started = tokio::time::Instant::now();
    for round in 0..4 {
        let get = client.get().await;
        assert_eq!(
            (get.status, get.text().as_str()),
            (200, "2"),
            "round {round}"
        );
        assert_eq!(client.post("3").await.status, 200);
    }
    // Four pings, each one interval after the previous pong.
    assert!(started.elapsed() >= Duration::from_millis(4 * 150 - 20));
    assert!(!server.session(&client.sid).is_closed());
}

#[tokio::test]
async fn polling_ping_timeout() {
    let server = TestServer::spawn(fast()).await;
    let client = server.polling().await;
    tokio::time::sleep(Duration::from_millis(260)).await;
    assert_eq!(client.get().await.status, 400);
    assert_eq!(server.closed(&client.sid).await, CloseReason::PingTimeout);
}

#[tokio::test]
async fn polling_ping_timeout_is_reported_without_any_request() {
    let server = TestServer::spawn(fast()).await;
    let client = server.polling().await;
    // Nobody polls: the engine's timer alone closes the session and tells the handler.
    let started = tokio::time::Instant::now();
    assert_eq!(server.closed(&client.sid).await, CloseReason::PingTimeout);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(1000),
        "{elapsed:?}"
    );
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn websocket_ping_pong_and_timeout() {
    let server = TestServer::spawn(fast()).await;
    let (mut ws, open) = server.websocket().await;
    for _ in 0..3 {
        assert_eq!(ws.recv_text().await, "2");
        ws.send_text("3").await;
    }
    // Stop answering.
    assert_eq!(ws.recv_text().await, "2");
    assert!(ws.closed().await.is_some());
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::PingTimeout);
}

#[tokio::test]
async fn a_client_ping_is_a_protocol_error() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (mut ws, open) = server.websocket().await;
    ws.send_text("2").await;
    assert!(ws.closed().await.is_some());
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::TransportError);
}

#[tokio::test]
async fn heartbeat_continues_after_the_upgrade() {
    let server = TestServer::spawn(fast()).await;
    let client = server.polling().await;
    let mut ws = client.upgrade_socket().await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    ws.send_text("5").await;
    for _ in 0..2 {
        assert_eq!(ws.recv_text().await, "2");
        ws.send_text("3").await;
    }
    assert!(!server.session(&client.sid).is_closed());
}
