//! Hardening, category Q (issue 14): graceful drain on SIGTERM. Every client gets an
//! Engine.IO close (never a Socket.IO `41` DISCONNECT, which stock clients take as "do not
//! reconnect"), everything queued before the signal is delivered, new handshakes are refused,
//! and the drain ends within its deadline even with clients that do not cooperate.
//!
//! This file is its own test process: the SIGTERM it sends itself reaches only this process,
//! where a handler is registered before it is sent.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sockeye_codec::Outgoing;
use sockeye_engine::EngineConfig;
use sockeye_tests::app::{AppServer, Received};
use sockeye_tests::eio::{Mode, TestServer, WAIT, uri};
use sockeye_tests::raw_http::{RawConn, request};
use tokio::signal::unix::{SignalKind, signal};
use tokio_tungstenite::tungstenite::Message;

fn sigterm_self() {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_drains_every_engine_session_without_losing_queued_messages() {
    // Registered before the signal is sent, so the signal is caught, not fatal.
    let mut term = signal(SignalKind::terminate()).unwrap();
    let config = EngineConfig::default().shutdown_timeout(Duration::from_secs(2));
    let server = TestServer::builder(config).mode(Mode::Record).spawn().await;
    let engine = server.engine.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        engine
            .serve(listener, async move {
                term.recv().await;
            })
            .await
    });

    // A WebSocket client, a polling client with a GET held, one with no GET, and one that
    // never reads its WebSocket.
    let mut ws = sockeye_tests::eio::WsClient::connect(addr, "EIO=4&transport=websocket")
        .await
        .unwrap();
    let open: serde_json::Value = serde_json::from_str(&ws.recv_text().await[1..]).unwrap();
    let ws_sid = open["sid"].as_str().unwrap().to_owned();
    let held = sockeye_tests::eio::PollingClient::open(addr).await;
    let idle = sockeye_tests::eio::PollingClient::open(addr).await;
    let mut stuck = sockeye_tests::eio::WsClient::connect(addr, "EIO=4&transport=websocket")
        .await
        .unwrap();
    let stuck_open: serde_json::Value =
        serde_json::from_str(&stuck.recv_text().await[1..]).unwrap();
    let mut get = RawConn::connect(addr).await;
    get.send(&request("GET", &uri(&held.query()), &[], b""))
        .await;
    assert!(
        get.response_within(Duration::from_millis(100))
            .await
            .is_none(),
        "held"
    );

    // Accepted before the signal: 100 messages to each session.
    for sid in [
        &ws_sid,
        &held.sid,
        &idle.sid,
        &stuck_open["sid"].as_str().unwrap().to_owned(),
    ] {
        let handle = server.session(sid);
        for i in 0..100 {
            handle
                .send(Outgoing::message_text(&format!("m{i}")))
                .unwrap();
        }
    }
    sigterm_self();

    // The WebSocket client gets all 100, then the Engine.IO close and the end of the socket.
    let mut texts = Vec::new();
    loop {
        match ws.recv().await {
            Some(Message::Text(text)) => texts.push(text.as_str().to_owned()),
            Some(Message::Close(_)) | None => break,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<String> = (0..100).map(|i| format!("4m{i}")).collect();
    assert_eq!(texts[..100], expected[..], "in order, none lost");
    assert!(
        texts[100..].iter().all(|t| t == "1" || t == "2"),
        "{:?}",
        &texts[100..]
    );
    assert!(
        !texts.iter().any(|t| t.starts_with("41")),
        "no Socket.IO disconnect"
    );

    // Both polling clients, polling on as a client does (the listener stays open while the
    // sessions drain), get all 100 in order, then the close packet.
    let first = get.response().await;
    for (client, first) in [(&held, Some(first)), (&idle, None)] {
        let mut packets: Vec<String> = Vec::new();
        let mut next = first;
        loop {
            let r = match next.take() {
                Some(r) => r,
                None => {
                    let mut conn = RawConn::connect(addr).await;
                    conn.send(&request("GET", &uri(&client.query()), &[], b""))
                        .await;
                    conn.response().await
                }
            };
            assert_eq!(r.status, 200, "{}: {}", client.sid, r.text());
            packets.extend(r.text().split('\x1e').map(str::to_owned));
            if packets.last().is_some_and(|p| p == "1") {
                break;
            }
        }
        let messages: Vec<&String> = packets.iter().filter(|p| p.starts_with('4')).collect();
        assert_eq!(messages.len(), 100, "{packets:?}");
        assert!(
            messages
                .iter()
                .zip(&expected)
                .all(|(got, want)| *got == want)
        );
        assert!(!packets.iter().any(|p| p.starts_with("41")));
    }

    // The drain ends within the deadline even with the client that never read its socket
    // and the polling client that never polled.
    let result = tokio::time::timeout(WAIT, serving)
        .await
        .expect("drain finished in time");
    result.unwrap().unwrap();
    assert_eq!(server.engine.session_count(), 0);
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_socket_io_clients_as_reconnectable_and_refuses_new_handshakes() {
    let mut server = AppServer::spawn_with(|b| b.shutdown_timeout(Duration::from_secs(2))).await;
    let mut a = server.user("ada").await;
    let mut b = server.user("bob").await;
    let engine = server.server.engine().clone();
    let app = server.server.clone();
    let addr = server.addr;
    let shutdown = tokio::spawn(async move {
        server.shutdown().await;
        server
    });
    // Each socket sees its Engine.IO session close ("transport close" for socket.io-client,
    // which then reconnects, to another instance behind the balancer), not a `41`.
    assert_eq!(a.next().await, Received::Closed);
    assert_eq!(b.next().await, Received::Closed);
    // While draining, a new handshake gets 503 (the balancer moves it elsewhere).
    let r = app
        .handle(
            http::Request::get("/socket.io/?EIO=4&transport=polling")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), 503);
    let r = app
        .handle(
            http::Request::get("/readyz")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), 503);
    let _server = tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("drain finished in time")
        .unwrap();
    assert_eq!(engine.session_count(), 0);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
