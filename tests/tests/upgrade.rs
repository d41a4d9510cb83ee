//! The polling -> WebSocket upgrade: probe, noop, queue hand-over, refusals, timeouts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sockeye_codec::Outgoing;
use sockeye_engine::proto::UPGRADE_GET_HOLD;
use sockeye_engine::{CloseReason, EngineConfig, Transport};
use sockeye_tests::eio::{Mode, PollingClient, Seen, TestServer, WsClient, http, uri};
use tokio_tungstenite::tungstenite::Message;

async fn upgrade(client: &PollingClient) -> WsClient {
    let mut ws = client.upgrade_socket().await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    ws
}

#[tokio::test]
async fn successful_upgrade() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut ws = upgrade(&client).await;
    // The held GET is released with a noop, and a GET during the upgrade too.
    assert_eq!(held.await.unwrap().text(), "6");
    let during = client.get().await;
    assert_eq!((during.status, during.text().as_str()), (200, "6"));
    ws.send_text("5").await;
    ws.send_text("4hello").await;
    assert_eq!(ws.recv_text().await, "4hello");
    assert_eq!(
        server.session(&client.sid).transport(),
        Transport::WebSocket
    );
    server
        .wait_for("upgrade", |s| *s == Seen::Upgrade(client.sid.clone()))
        .await;
    // Polling is over for this session.
    let get = client.get().await;
    assert_eq!((get.status, get.error_code()), (400, 3));
    assert_eq!(client.post("4x").await.status, 400);
}

/// The official suite's "ignores HTTP requests with same sid after upgrade": `2probe` and `5`
/// leave back to back on the WebSocket and a GET follows at once on a new connection. On a
/// multi-threaded runtime the server may take the GET before the `5`; it must still answer 400,
/// as for a GET after the upgrade. The suite failed about 1 run in 20 before the GET hold;
/// without the hold, these 30 rounds on 2 worker threads hit the race in most runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_racing_the_upgrade_gets_400() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    for round in 0..30 {
        let client = server.polling().await;
        let mut ws = client.upgrade_socket().await;
        ws.send_text("2probe").await;
        ws.send_text("5").await;
        let get = client.get().await;
        assert_eq!(get.status, 400, "round {round}: {}", get.text());
        assert_eq!(get.error_code(), 3, "bad request, as after the upgrade");
        assert_eq!(ws.recv_text().await, "3probe");
        ws.send_text("4hello").await;
        assert_eq!(ws.recv_text().await, "4hello");
    }
}

/// The same race with the order forced: the GET reaches the server first, then `5`.
#[tokio::test]
async fn a_get_taken_just_before_5_is_refused() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let mut ws = upgrade(&client).await;
    let get = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    // Long enough for the server to take the GET, well inside its hold.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(!get.is_finished(), "a GET during the upgrade is held");
    ws.send_text("5").await;
    let get = get.await.unwrap();
    assert_eq!(get.status, 400, "{}", get.text());
    assert_eq!(get.error_code(), 3);
    ws.send_text("4hello").await;
    assert_eq!(ws.recv_text().await, "4hello");
    assert_eq!(
        server.session(&client.sid).transport(),
        Transport::WebSocket
    );
}

/// Without `5`, a GET during the upgrade is released with a noop once its hold is over (the
/// suite's "successfully upgrades": the client waits for that answer before sending `5`).
#[tokio::test]
async fn a_get_during_the_upgrade_without_5_gets_a_noop_after_the_hold() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let mut ws = upgrade(&client).await;
    let started = tokio::time::Instant::now();
    let during = client.get().await;
    assert_eq!((during.status, during.text().as_str()), (200, "6"));
    assert!(
        started.elapsed() >= UPGRADE_GET_HOLD,
        "{:?}",
        started.elapsed()
    );
    ws.send_text("5").await;
    ws.send_text("4hello").await;
    assert_eq!(ws.recv_text().await, "4hello");
}

#[tokio::test]
async fn messages_sent_during_the_upgrade_arrive_exactly_once_in_order() {
    const COUNT: usize = 300;
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let client = server.polling().await;
    let handle = server.session(&client.sid);
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            handle
                .send(Outgoing::message_text(&format!("m{i}")))
                .unwrap();
            if i.is_multiple_of(3) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let paused = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn({
        let client = client.clone();
        let paused = Arc::clone(&paused);
        async move {
            let mut got = Vec::new();
            while !paused.load(Ordering::SeqCst) {
                let body = client.get().await;
                assert_eq!(body.status, 200);
                got.extend(
                    body.text()
                        .split('\x1e')
                        .filter(|p| *p != "6")
                        .map(str::to_owned),
                );
            }
            got
        }
    });
    tokio::time::sleep(Duration::from_millis(40)).await;
    let mut ws = client.upgrade_socket().await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    // Pause polling as a real client does: let the last GET finish, then send "5".
    paused.store(true, Ordering::SeqCst);
    let mut got = poller.await.unwrap();
    let over_polling = got.len();
    ws.send_text("5").await;
    while got.len() < COUNT {
        got.push(ws.recv_text().await);
    }
    sender.await.unwrap();
    let expected: Vec<String> = (0..COUNT).map(|i| format!("4m{i}")).collect();
    assert_eq!(got, expected, "{over_polling} arrived over polling");
    assert!(over_polling > 0 && over_polling < COUNT, "{over_polling}");
}

#[tokio::test]
async fn a_second_websocket_after_the_upgrade_is_accepted_then_closed() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let mut ws = upgrade(&client).await;
    ws.send_text("5").await;
    let mut second = client.upgrade_socket().await;
    assert!(second.closed().await.is_some());
    ws.send_text("4still here").await;
    assert_eq!(ws.recv_text().await, "4still here");
}

#[tokio::test]
async fn a_second_websocket_during_the_upgrade_is_closed_without_harm() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let mut ws = upgrade(&client).await;
    let mut second = client.upgrade_socket().await;
    assert!(second.closed().await.is_some());
    ws.send_text("5").await;
    ws.send_text("4ok").await;
    assert_eq!(ws.recv_text().await, "4ok");
}

#[tokio::test]
async fn an_abandoned_upgrade_is_freed_and_polling_goes_on() {
    let config = EngineConfig::default().upgrade_timeout(Duration::from_millis(200));
    let server = TestServer::spawn(config).await;
    let client = server.polling().await;
    // Opens the upgrade socket and never probes.
    let mut silent = client.upgrade_socket().await;
    let started = tokio::time::Instant::now();
    assert!(silent.closed().await.is_some());
    assert!(started.elapsed() >= Duration::from_millis(150));
    // The session is still a polling session, and may upgrade again.
    assert_eq!(client.post("4after").await.status, 200);
    assert_eq!(client.get().await.text(), "4after");
    let mut ws = upgrade(&client).await;
    ws.send_text("5").await;
    ws.send_text("4upgraded").await;
    assert_eq!(ws.recv_text().await, "4upgraded");
}

#[tokio::test]
async fn an_upgrade_abandoned_after_the_probe_times_out_too() {
    let config = EngineConfig::default().upgrade_timeout(Duration::from_millis(200));
    let server = TestServer::spawn(config).await;
    let client = server.polling().await;
    let mut ws = upgrade(&client).await;
    assert!(ws.closed().await.is_some());
    assert_eq!(client.post("4back").await.status, 200);
    assert_eq!(client.get().await.text(), "4back");
}

#[tokio::test]
async fn garbage_on_the_upgrade_socket_aborts_only_the_upgrade() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let mut ws = client.upgrade_socket().await;
    ws.send_text("4not a probe").await;
    assert!(ws.closed().await.is_some());
    assert_eq!(client.post("4alive").await.status, 200);
    assert_eq!(client.get().await.text(), "4alive");
}

#[tokio::test]
async fn the_upgrade_socket_closing_leaves_polling_intact() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let ws = upgrade(&client).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(client.post("4alive").await.status, 200);
    assert_eq!(client.get().await.text(), "4alive");
    assert!(!server.seen().iter().any(|s| matches!(s, Seen::Close(..))));
}

#[tokio::test]
async fn closing_the_session_during_the_upgrade_closes_both_sides() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let client = server.polling().await;
    let mut ws = upgrade(&client).await;
    server.session(&client.sid).close(CloseReason::ForcedClose);
    assert!(ws.closed().await.is_some());
    assert_eq!(server.closed(&client.sid).await, CloseReason::ForcedClose);
    let _ = http(server.addr, "GET", &uri(&client.query()), &[], "").await;
    match ws.recv().await {
        None | Some(Message::Close(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_upgrade_socket_closing_late_cannot_hurt_the_next_upgrade() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    // Socket A breaks the upgrade and then ignores the server's close frame, so the server
    // lingers on it for a while.
    let mut a = client.upgrade_socket().await;
    a.send_text("4not a probe").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Socket B upgrades while A is still lingering.
    let mut b = upgrade(&client).await;
    b.send_text("5").await;
    b.send_text("4one").await;
    assert_eq!(b.recv_text().await, "4one");
    // A ends (server-side linger over); the session on B must not notice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.send_text("4two").await;
    assert_eq!(b.recv_text().await, "4two");
    assert!(!server.session(&client.sid).is_closed());
    drop(a);
}
