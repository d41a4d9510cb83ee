//! Hardening, category N (issue 14): connection floods per address answered with 429 and
//! `Retry-After`, trusted-proxy chains of several hops, and file descriptors and sessions back
//! to where they started after a flood.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use sockeye_engine::EngineConfig;
use sockeye_tests::app::AppServer;
use sockeye_tests::eio::{PollingClient, TestServer, WAIT, uri};
use sockeye_tests::raw_http::{RawConn, RawResponse, request};

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

async fn handshake_from(addr: SocketAddr, from: IpAddr, headers: &[&str]) -> RawResponse {
    let mut conn = RawConn::connect_from(addr, from).await;
    conn.send(&request("GET", HANDSHAKE, headers, b"")).await;
    conn.response().await
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn assert_too_many(r: &RawResponse) {
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("5"), "{r:?}");
    assert_eq!(
        r.text(),
        r#"{"code":4,"message":"Too many connections from this address"}"#
    );
}

#[tokio::test]
async fn a_flood_from_one_address_gets_429_with_retry_after_and_others_are_served() {
    let server = AppServer::spawn_with(|b| b.max_connections_per_ip(NonZeroU32::new(3))).await;
    let flooder = ip("127.0.0.3");
    for _ in 0..3 {
        assert_eq!(handshake_from(server.addr, flooder, &[]).await.status, 200);
    }
    for _ in 0..20 {
        assert_too_many(&handshake_from(server.addr, flooder, &[]).await);
    }
    // The WebSocket handshake is refused the same way, before the upgrade.
    let mut ws = RawConn::connect_from(server.addr, flooder).await;
    ws.send(&request(
        "GET",
        "/socket.io/?EIO=4&transport=websocket",
        &[
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ],
        b"",
    ))
    .await;
    assert_too_many(&ws.response().await);
    // Another address is served while the flooder is held back.
    assert_eq!(
        handshake_from(server.addr, ip("127.0.0.4"), &[])
            .await
            .status,
        200
    );
    assert_eq!(server.server.engine().session_count(), 4);
}

#[tokio::test]
async fn trusted_proxy_hops_pick_the_nth_forwarded_address_from_the_right() {
    let server = AppServer::spawn_with(|b| {
        b.max_connections_per_ip(NonZeroU32::new(1))
            .trust_proxy_hops(2)
    })
    .await;
    let local = ip("127.0.0.1");
    // Client 203.0.113.1 behind two proxies (the CDN appended it, the balancer appended the
    // CDN); whatever the client put in front is ignored.
    let chain = "X-Forwarded-For: 6.6.6.6, 203.0.113.1, 10.1.0.1";
    assert_eq!(
        handshake_from(server.addr, local, &[chain]).await.status,
        200
    );
    let forged = "X-Forwarded-For: 7.7.7.7, 203.0.113.1, 10.1.0.2";
    assert_too_many(&handshake_from(server.addr, local, &[forged]).await);
    // The same chain over two header lines.
    let split = ["X-Forwarded-For: 203.0.113.1", "X-Forwarded-For: 10.1.0.3"];
    assert_too_many(&handshake_from(server.addr, local, &split).await);
    // Another client behind the same proxies is another address.
    let other = "X-Forwarded-For: 203.0.113.2, 10.1.0.1";
    assert_eq!(
        handshake_from(server.addr, local, &[other]).await.status,
        200
    );
    // A chain shorter than two hops did not come through both proxies: the TCP peer counts
    // (127.0.0.5 here, still free) ...
    let short = "X-Forwarded-For: 198.51.100.9";
    assert_eq!(
        handshake_from(server.addr, ip("127.0.0.5"), &[short])
            .await
            .status,
        200
    );
    // ... and is then at its cap, whatever the header claims.
    let short = "X-Forwarded-For: 198.51.100.10";
    assert_too_many(&handshake_from(server.addr, ip("127.0.0.5"), &[short]).await);
    // Garbage in the counted position: the TCP peer counts too.
    let garbage = "X-Forwarded-For: 203.0.113.7, not-an-ip, 10.1.0.1";
    assert_too_many(&handshake_from(server.addr, ip("127.0.0.5"), &[garbage]).await);
}

/// Open file descriptors of this process (the server runs in it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until `done()` holds, polling (a count that has no event to await); fails after
/// `WAIT` with `what`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn descriptors_and_sessions_return_to_baseline_after_floods() {
    let config = EngineConfig::default()
        .header_read_timeout(Duration::from_millis(300))
        .ping_interval(Duration::from_millis(200))
        .ping_timeout(Duration::from_millis(200));
    let server = TestServer::spawn(config).await;
    // Warm up (the runtime's own descriptors), then take the baseline.
    PollingClient::open(server.addr).await;
    eventually("warm-up session closed", || {
        server.engine.session_count() == 0
    })
    .await;
    let baseline = open_fds();

    // 1. 200 connections that send nothing (half-open flood) ...
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(RawConn::connect(server.addr).await);
    }
    // ... do not stop a real client ...
    let client = PollingClient::open(server.addr).await;
    assert_eq!(client.post("4served").await.text(), "ok");
    assert_eq!(client.get().await.text(), "4served");
    // ... and are cut by the head timeout.
    for conn in &mut silent {
        assert!(conn.closed_within(WAIT).await);
    }
    drop(silent);

    // 2. 300 handshakes whose clients vanish: the sessions end by heartbeat timeout.
    for _ in 0..300 {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(&request("GET", &uri("EIO=4&transport=polling"), &[], b""))
            .await;
        assert_eq!(conn.response().await.status, 200);
    }
    assert!(server.engine.session_count() > 0);

    // 3. 100 held GETs whose connections are dropped mid-poll.
    let mut held = Vec::new();
    for _ in 0..100 {
        let client = PollingClient::open(server.addr).await;
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(&request("GET", &uri(&client.query()), &[], b""))
            .await;
        held.push(conn);
    }
    drop(held);

    eventually("every flooded session closed", || {
        server.engine.session_count() == 0
    })
    .await;
    eventually("descriptors back to the baseline", || {
        open_fds() <= baseline
    })
    .await;
    let stats = server.engine.stats();
    assert_eq!(stats.sessions_opened, stats.sessions_closed);
    let client = PollingClient::open(server.addr).await;
    assert_eq!(client.post("4after").await.text(), "ok");
    assert_eq!(client.get().await.text(), "4after");
}
