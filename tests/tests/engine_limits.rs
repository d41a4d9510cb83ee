//! Bounds: slow consumers, HTTP hardening, body limits, graceful shutdown.
#![allow(clippy::unwrap_used)]

use std::num::NonZeroUsize;
use std::time::Duration;

use sockeye_codec::Outgoing;
use sockeye_engine::{CloseReason, EngineConfig, SendError};
use sockeye_tests::eio::{Mode, RawWs, Seen, TestServer, http, uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const QUEUE: usize = 256 * 1024;

fn bounded() -> EngineConfig {
    EngineConfig::default().max_queued_bytes(NonZeroUsize::new(QUEUE).unwrap())
}

#[tokio::test]
async fn a_websocket_client_that_never_reads_is_closed_by_the_slow_consumer_policy() {
    let server = TestServer::builder(bounded())
        .mode(Mode::Record)
        .spawn()
        .await;
    // Connects, reads the open packet, then never reads again.
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    let (_, open) = raw.read_frame().await.unwrap();
    let open: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    let handle = server.session(&sid);
    let message = Outgoing::message_text(&"x".repeat(64 * 1024));
    let mut sent = 0usize;
    let outcome = loop {
        match handle.send(message.clone()) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        // The queue stays bounded whatever the client does.
        assert!(handle.queued_bytes() <= QUEUE);
        assert!(sent < 4096, "never hit the bound after {sent} messages");
        if sent.is_multiple_of(8) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    assert_eq!(outcome, SendError::SlowConsumer);
    assert_eq!(server.closed(&sid).await, CloseReason::SlowConsumer);
    assert_eq!(server.engine.stats().slow_consumer_closes, 1);
    assert_eq!(handle.send(message), Err(SendError::Closed));
    assert_eq!(handle.queued_bytes(), 0);
    // The connection is cut rather than left to drain.
    let mut sink = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match raw.stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok());
}

#[tokio::test]
async fn a_polling_client_that_never_polls_is_closed_too() {
    let server = TestServer::builder(bounded())
        .mode(Mode::Record)
        .spawn()
        .await;
    let client = server.polling().await;
    let handle = server.session(&client.sid);
    let message = Outgoing::message_text(&"y".repeat(10_000));
    let mut outcome = Ok(());
    for _ in 0..100 {
        outcome = handle.send(message.clone());
        assert!(handle.queued_bytes() <= QUEUE);
        if outcome.is_err() {
            break;
        }
    }
    assert_eq!(outcome, Err(SendError::SlowConsumer));
    assert_eq!(server.closed(&client.sid).await, CloseReason::SlowConsumer);
    assert_eq!(client.get().await.status, 400);
}

#[tokio::test]
async fn volatile_messages_are_dropped_not_queued() {
    let server = TestServer::builder(bounded())
        .mode(Mode::Record)
        .spawn()
        .await;
    let client = server.polling().await;
    let handle = server.session(&client.sid);
    let big = Outgoing::message_text(&"z".repeat(200 * 1024));
    handle.send(big.clone()).unwrap();
    assert_eq!(handle.send_volatile(big), Err(SendError::Dropped));
    assert!(!handle.is_closed());
    assert_eq!(server.engine.stats().volatile_dropped, 1);
    assert_eq!(server.engine.stats().slow_consumer_closes, 0);
    let body = client.get().await;
    assert_eq!(body.body.len(), 200 * 1024 + 1);
}

#[tokio::test]
async fn messages_over_max_payload_are_refused_at_send() {
    let config = EngineConfig::default().max_payload(NonZeroUsize::new(100).unwrap());
    let server = TestServer::builder(config).mode(Mode::Record).spawn().await;
    let client = server.polling().await;
    let handle = server.session(&client.sid);
    let err = handle
        .send(Outgoing::message_text(&"a".repeat(100)))
        .unwrap_err();
    assert_eq!(err, SendError::TooLarge { len: 101, max: 100 });
    assert!(!handle.is_closed());
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_refused() {
    let config = EngineConfig::default()
        .max_headers(NonZeroUsize::new(20).unwrap())
        .max_header_bytes(NonZeroUsize::new(8192).unwrap());
    let server = TestServer::spawn(config).await;
    let many: Vec<(String, String)> = (0..40).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let q = uri("EIO=4&transport=polling");
    let r = sockeye_tests::eio::try_http(server.addr, "GET", &q, &many, "").await;
    assert!(r.map(|r| r.status == 431).unwrap_or(true));
    let huge = "h".repeat(20_000);
    let r = sockeye_tests::eio::try_http(server.addr, "GET", &q, &[("x-big", &huge)], "").await;
    assert!(r.map(|r| r.status == 431).unwrap_or(true));
    assert_eq!(server.engine.session_count(), 0);
    // The server is unharmed.
    assert_eq!(http(server.addr, "GET", &q, &[], "").await.status, 200);
}

#[tokio::test]
async fn a_slow_request_head_is_cut() {
    let config = EngineConfig::default().header_read_timeout(Duration::from_millis(300));
    let server = TestServer::spawn(config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(_) | Err(_)));
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A connection that sends nothing at all is cut as well.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    // Closed (or answered with an error status) by the server, well before the 5 s guard.
    let _ = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_slow_body_is_cut_and_closes_the_session() {
    let config = EngineConfig::default().body_read_timeout(Duration::from_millis(300));
    let server = TestServer::spawn(config).await;
    let client = server.polling().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4abc",
        uri(&client.query())
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 400"));
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::TransportError
    );
}

#[tokio::test]
async fn garbage_on_a_connection_harms_nobody() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (mut ws, _) = server.websocket().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&[0xff; 4096]).await.unwrap();
    let mut buf = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap();
    ws.send_text("4still fine").await;
    assert_eq!(ws.recv_text().await, "4still fine");
}

#[tokio::test]
async fn graceful_shutdown_closes_every_session_with_its_reason() {
    let mut server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let (mut ws, open) = server.websocket().await;
    let ws_sid = open["sid"].as_str().unwrap().to_owned();
    let client = server.polling().await;
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = tokio::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ws.closed().await, Some(1001));
    assert_eq!(held.await.unwrap().text(), "1");
    let seen = server.seen();
    assert!(seen.contains(&Seen::Close(ws_sid, CloseReason::ServerShuttingDown)));
    assert!(seen.contains(&Seen::Close(
        client.sid.clone(),
        CloseReason::ServerShuttingDown
    )));
    assert_eq!(server.engine.session_count(), 0);
    // No longer accepting.
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_finishes_within_its_deadline_despite_a_stuck_client() {
    let config = bounded().shutdown_timeout(Duration::from_millis(500));
    let mut server = TestServer::builder(config).mode(Mode::Record).spawn().await;
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    let (_, open) = raw.read_frame().await.unwrap();
    let open: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
    let handle = server.session(open["sid"].as_str().unwrap());
    // Fill the socket buffers (without reaching the queue bound).
    let chunk = Outgoing::message_text(&"q".repeat(64 * 1024));
    for _ in 0..200 {
        if handle.queued_bytes() + 64 * 1024 >= QUEUE {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        handle.send(chunk.clone()).unwrap();
    }
    let started = tokio::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_pauses_gets_everything_in_order_when_it_reads_again() {
    let queue = 32 << 20;
    let config = EngineConfig::default().max_queued_bytes(NonZeroUsize::new(queue).unwrap());
    let server = TestServer::builder(config).mode(Mode::Record).spawn().await;
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    let (_, open) = raw.read_frame().await.unwrap();
    let open: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
    let handle = server.session(open["sid"].as_str().unwrap());
    // More than the socket buffers hold (so writes block and the connection's task takes
    // over), less than the queue bound (so nothing is cut).
    let count = 3000;
    let body = "y".repeat(4000);
    let mut most_queued = 0;
    for i in 0..count {
        handle
            .send(Outgoing::message_text(&format!("{i:04}{body}")))
            .unwrap();
        most_queued = most_queued.max(handle.queued_bytes());
        assert!(most_queued <= queue);
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // Messages waited in the queue: the socket was full at some point.
    assert!(most_queued > 0, "the test must overrun the socket buffers");
    for i in 0..count {
        let (opcode, payload) = raw.read_frame().await.unwrap();
        assert_eq!(opcode, 0x1);
        assert_eq!(&payload[..5], format!("4{i:04}").as_bytes(), "message {i}");
        assert_eq!(payload.len(), 4005);
    }
    assert!(!handle.is_closed());
}
