//! Hardening, category E (issue 14): pongs that never come, unsolicited pongs, ping floods
//! and a client that pauses in the middle of an upgrade, each followed by a liveness check.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use sockeye_engine::{CloseReason, EngineConfig};
use sockeye_tests::eio::{PollingClient, Seen, TestServer, uri};
use sockeye_tests::raw_http::{RawConn, one, request};

const UNKNOWN_SID: &str = r#"{"code":1,"message":"Session ID unknown"}"#;

fn fast() -> EngineConfig {
    EngineConfig::default()
        .ping_interval(Duration::from_millis(150))
        .ping_timeout(Duration::from_millis(150))
}

async fn assert_alive(addr: SocketAddr) {
    let client = PollingClient::open(addr).await;
    assert_eq!(client.post("4alive").await.text(), "ok");
    assert_eq!(client.get().await.text(), "4alive");
}

#[tokio::test]
async fn a_pong_that_never_comes_ends_the_session_while_a_get_is_held() {
    let server = TestServer::spawn(fast()).await;
    let client = server.polling().await;
    // The held GET delivers the ping; the next one is held until the timeout closes the
    // session and is released with the close packet.
    assert_eq!(client.get().await.text(), "2");
    let mut held = RawConn::connect(server.addr).await;
    held.send(&request("GET", &uri(&client.query()), &[], b""))
        .await;
    assert_eq!(held.response().await.pair(), (200, "1".to_owned()));
    assert_eq!(server.closed(&client.sid).await, CloseReason::PingTimeout);
    let r = one(
        server.addr,
        &request("GET", &uri(&client.query()), &[], b""),
    )
    .await;
    assert_eq!(r.pair(), (400, UNKNOWN_SID.to_owned()));
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn unsolicited_pongs_are_ignored_and_do_not_replace_the_real_one() {
    let server = TestServer::spawn(fast()).await;
    let client = server.polling().await;
    // A thousand pongs nobody asked for, in one POST: accepted, nothing else happens.
    let pongs = vec!["3"; 1000].join("\x1e");
    assert_eq!(client.post(pongs.clone()).await.text(), "ok");
    assert_eq!(client.post("4still").await.text(), "ok");
    // The heartbeat keeps its schedule: the polls bring the echo and a ping (a ping leaves
    // alone, so in two polls, in whichever order the timer put them).
    let mut polls = vec![client.get().await.text(), client.get().await.text()];
    polls.sort();
    assert_eq!(polls, ["2", "4still"]);
    // The pongs sent before the ping did not answer it: without a real pong it times out.
    assert_eq!(server.closed(&client.sid).await, CloseReason::PingTimeout);

    // Over WebSocket too.
    let (mut ws, open) = server.websocket().await;
    for _ in 0..1000 {
        ws.send_text("3").await;
    }
    ws.send_text("4ws").await;
    let mut frames = vec![ws.recv_text().await, ws.recv_text().await];
    frames.sort();
    assert_eq!(frames, ["2", "4ws"]);
    ws.send_text("3").await;
    assert_eq!(ws.recv_text().await, "2");
    let sid = open["sid"].as_str().unwrap();
    assert!(!server.session(sid).is_closed());
    // Stops answering: ends.
    assert!(ws.closed().await.is_some());
    assert_eq!(server.closed(sid).await, CloseReason::PingTimeout);
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn a_ping_flood_ends_only_the_flooding_session() {
    // Engine.IO v4: the client never pings; the first ping ends its session.
    let server = TestServer::spawn(EngineConfig::default()).await;
    let bystander = server.polling().await;
    let client = server.polling().await;
    let pings = vec!["2"; 1000].join("\x1e");
    let mut floods = Vec::new();
    for _ in 0..20 {
        let addr = server.addr;
        let query = client.query();
        let pings = pings.clone();
        floods.push(tokio::spawn(async move {
            one(addr, &request("POST", &uri(&query), &[], pings.as_bytes())).await
        }));
    }
    for flood in floods {
        let status = flood.await.unwrap().status;
        assert_eq!(status, 400, "every flooding POST is refused");
    }
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::TransportError
    );
    // Only one close was reported.
    let closes = server
        .seen()
        .into_iter()
        .filter(|s| matches!(s, Seen::Close(id, _) if *id == client.sid))
        .count();
    assert_eq!(closes, 1);
    assert_eq!(bystander.post("4ok").await.text(), "ok");
    assert_eq!(bystander.get().await.text(), "4ok");

    // Over WebSocket.
    let (mut ws, open) = server.websocket().await;
    for _ in 0..100 {
        if futures_util::SinkExt::send(&mut ws.ws, "2".into())
            .await
            .is_err()
        {
            break;
        }
    }
    assert!(ws.closed().await.is_some());
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::TransportError);
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn a_client_that_pauses_mid_upgrade_stays_on_polling() {
    // The upgrade times out long before the heartbeat could.
    let config = EngineConfig::default()
        .ping_interval(Duration::from_secs(5))
        .ping_timeout(Duration::from_secs(5))
        .upgrade_timeout(Duration::from_millis(200));
    let server = TestServer::spawn(config).await;
    let client = server.polling().await;
    let mut ws = client.upgrade_socket().await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    // No `5`, ever: the upgrade times out and its socket is closed ...
    assert!(ws.closed().await.is_some());
    // ... while the session goes on over polling.
    assert_eq!(client.post("4polling").await.text(), "ok");
    assert_eq!(client.get().await.text(), "4polling");
    assert!(!server.session(&client.sid).is_closed());
    // A fresh upgrade after the abandoned one works.
    let mut ws = client.upgrade_socket().await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    ws.send_text("5").await;
    ws.send_text("4upgraded").await;
    assert_eq!(ws.recv_text().await, "4upgraded");
    assert_alive(server.addr).await;
}
