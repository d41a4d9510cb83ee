//! Hardening, category A (issue 14): the HTTP/1.1 layer under the engine. Ambiguous framing,
//! header floods, slow and idle connections, request smuggling on keep-alive connections and
//! an HTTP/2 preface, each sent as raw bytes; the exact answer is checked, then that another
//! client is still served.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use sockeye_engine::{CloseReason, EngineConfig};
use sockeye_tests::eio::{PollingClient, Seen, TestServer, WAIT, uri};
use sockeye_tests::raw_http::{RawConn, exchange, one, request};

async fn assert_alive(addr: SocketAddr) {
    let client = PollingClient::open(addr).await;
    assert_eq!(client.post("4alive").await.text(), "ok");
    assert_eq!(client.get().await.text(), "4alive");
}

/// A POST of a fresh session with these extra header lines and raw body bytes, on a
/// connection that is not asked to close: the status of the answer and whether the server
/// closed the connection after it.
async fn post_raw(server: &TestServer, headers: &str, body: &[u8]) -> (Option<u16>, bool, String) {
    let client = server.polling().await;
    let mut bytes = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n",
        uri(&client.query())
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(&bytes).await;
    let status = conn.response_within(WAIT).await.map(|r| r.status);
    let closed = conn.closed_within(Duration::from_millis(500)).await;
    (status, closed, client.sid)
}

#[tokio::test]
async fn ambiguous_content_length_forms_are_refused_and_the_connection_closed() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let cases = [
        "Content-Length: +5\r\n",
        "Content-Length: 0x5\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
    ];
    for headers in cases {
        let (status, closed, sid) = post_raw(&server, headers, b"4abcd").await;
        assert_eq!(status, Some(400), "{headers:?}");
        assert!(closed, "{headers:?}: connection closed after the refusal");
        assert!(
            !server
                .seen()
                .iter()
                .any(|s| matches!(s, Seen::Message(id, _) if *id == sid)),
            "{headers:?}: nothing delivered"
        );
    }
    // Optional whitespace around the value is allowed (RFC 9110, section 5.5), and so is the
    // same value twice (RFC 9110, section 8.6: one valid length; hyper keeps one line).
    for headers in [
        "Content-Length:   5  \r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
    ] {
        let (status, closed, sid) = post_raw(&server, headers, b"4abcd").await;
        assert_eq!((status, closed), (Some(200), false), "{headers:?}");
        assert!(
            server
                .seen()
                .contains(&Seen::Message(sid, "abcd".to_owned()))
        );
    }
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn transfer_encoding_tricks_are_refused() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let chunked_body: &[u8] = b"5\r\n4abcd\r\n0\r\n\r\n";
    // CL + TE, the request-smuggling classic: hyper lets Transfer-Encoding win and closes the
    // connection after the answer (RFC 9112, section 6.3), so nothing after the chunked body
    // can be read as another request.
    for headers in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    ] {
        let (status, closed, sid) = post_raw(&server, headers, chunked_body).await;
        assert_eq!((status, closed), (Some(200), true), "{headers:?}");
        assert!(
            server
                .seen()
                .contains(&Seen::Message(sid, "abcd".to_owned()))
        );
    }
    let cases: &[(&str, u16)] = &[
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            400,
        ),
        ("Transfer-Encoding: chunked, chunked\r\n", 400),
        ("Transfer-Encoding: gzip, chunked\r\n", 501),
        // chunked not last: hyper refuses it as a framing error.
        ("Transfer-Encoding: chunked, identity\r\n", 400),
        ("Transfer-Encoding: xchunked\r\n", 400),
        ("Transfer-Encoding: gzip\r\n", 400),
        ("Transfer-Encoding : chunked\r\n", 400),
        ("Transfer-Encoding: chunked\r\n foo\r\n", 400),
    ];
    for &(headers, expected) in cases {
        let (status, closed, sid) = post_raw(&server, headers, chunked_body).await;
        assert_eq!(status, Some(expected), "{headers:?}");
        assert!(closed, "{headers:?}: connection closed after the refusal");
        assert!(
            !server
                .seen()
                .iter()
                .any(|s| matches!(s, Seen::Message(id, _) if *id == sid)),
            "{headers:?}: nothing delivered"
        );
    }
    // Plain chunked (with an extension) is fine.
    let (status, closed, sid) = post_raw(
        &server,
        "Transfer-Encoding: chunked\r\n",
        b"5;x=y\r\n4abcd\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!((status, closed), (Some(200), false));
    assert!(
        server
            .seen()
            .contains(&Seen::Message(sid, "abcd".to_owned()))
    );
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn chunk_sizes_that_overflow_or_are_not_hex_end_the_request() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    for body in [
        &b"FFFFFFFFFFFFFFFFFFFF\r\n4a\r\n0\r\n\r\n"[..],
        b"-2\r\n4a\r\n0\r\n\r\n",
        b"zz\r\n4a\r\n0\r\n\r\n",
    ] {
        let (status, closed, sid) = post_raw(&server, "Transfer-Encoding: chunked\r\n", body).await;
        assert_eq!(status, Some(400), "{body:?}");
        assert!(closed, "{body:?}");
        assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
    }
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn a_huge_declared_chunk_is_cut_at_max_payload() {
    // A chunk that announces 2^48 bytes and keeps sending: refused with 413 once maxPayload is
    // passed, not buffered.
    let config = EngineConfig::default().max_payload(NonZeroUsize::new(1000).unwrap());
    let server = TestServer::spawn(config).await;
    let client = server.polling().await;
    let mut conn = RawConn::connect(server.addr).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\n4",
        uri(&client.query())
    );
    conn.send(head.as_bytes()).await;
    conn.send(&[b'a'; 2000]).await;
    assert_eq!(conn.response().await.status, 413);
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::PayloadTooLarge
    );
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn header_floods_get_431() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let many: String = (0..100).map(|i| format!("X-{i}: a\r\n")).collect();
    let big = format!("X-Big: {}\r\n", "a".repeat(20_000));
    for extra in [many, big] {
        let bytes = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n",
            uri("EIO=4&transport=polling")
        );
        let got = exchange(server.addr, bytes.as_bytes()).await;
        assert_eq!(got.responses.len(), 1, "{:?}", got.rest);
        assert_eq!(got.responses[0].status, 431);
        assert!(got.closed);
    }
    // Exactly at the limits is fine (64 headers including Host).
    let at_limit: String = (0..63).map(|i| format!("X-{i}: a\r\n")).collect();
    let bytes = format!(
        "GET {} HTTP/1.1\r\nHost: localhost\r\n{at_limit}Connection: close\r\n\r\n",
        uri("EIO=4&transport=polling")
    );
    // 63 + Host + Connection = 65: one over.
    assert_eq!(one(server.addr, bytes.as_bytes()).await.status, 431);
    let at_limit: String = (0..62).map(|i| format!("X-{i}: a\r\n")).collect();
    let bytes = format!(
        "GET {} HTTP/1.1\r\nHost: localhost\r\n{at_limit}Connection: close\r\n\r\n",
        uri("EIO=4&transport=polling")
    );
    assert_eq!(one(server.addr, bytes.as_bytes()).await.status, 200);
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn slowloris_heads_and_idle_keep_alive_connections_are_closed() {
    let config = EngineConfig::default().header_read_timeout(Duration::from_millis(300));
    let server = TestServer::spawn(config).await;
    // A head that never completes: closed without an answer.
    let mut slow = RawConn::connect(server.addr).await;
    slow.send(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-A: ")
        .await;
    // Meanwhile another client is served.
    assert_alive(server.addr).await;
    assert!(slow.closed_within(WAIT).await, "slow head cut");
    assert!(slow.unparsed().is_empty(), "{:?}", slow.unparsed());
    // A connection that sends nothing at all.
    let mut silent = RawConn::connect(server.addr).await;
    assert!(silent.closed_within(WAIT).await, "silent connection cut");
    // A keep-alive connection idle after a complete exchange.
    let mut idle = RawConn::connect(server.addr).await;
    idle.send(
        &format!(
            "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
            uri("EIO=4&transport=polling")
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(idle.response().await.status, 200);
    assert!(idle.closed_within(WAIT).await, "idle keep-alive cut");
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn slowloris_bodies_end_at_the_body_timeout() {
    let config = EngineConfig::default().body_read_timeout(Duration::from_millis(300));
    let server = TestServer::spawn(config).await;
    let client = server.polling().await;
    let mut slow = RawConn::connect(server.addr).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n4a",
        uri(&client.query())
    );
    slow.send(head.as_bytes()).await;
    assert_alive(server.addr).await;
    let r = slow.response().await;
    assert_eq!(
        r.pair(),
        (400, r#"{"code":3,"message":"Bad request"}"#.to_owned())
    );
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::TransportError
    );
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn requests_on_one_keep_alive_connection_stay_apart() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    // A POST whose body is exactly its Content-Length, then a pipelined GET: the GET is a
    // request of its own, answered in order, and the body bytes never become a request.
    let post_uri = uri(&client.query());
    let bytes = format!(
        "POST {post_uri} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n4abcGET {post_uri} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let got = exchange(server.addr, bytes.as_bytes()).await;
    let answers: Vec<_> = got.responses.iter().map(|r| r.pair()).collect();
    assert_eq!(answers, [(200, "ok".to_owned()), (200, "4abc".to_owned())]);
    // A body that carries another request after a zero chunk, with CL + TE: the chunked body
    // (empty, so a bad payload) is answered, the connection closed, and the smuggled request
    // is never answered.
    let smuggled = format!(
        "POST {post_uri} HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {post_uri} HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let got = exchange(server.addr, smuggled.as_bytes()).await;
    assert_eq!(got.responses.len(), 1, "{:?}", got.responses);
    assert_eq!(got.responses[0].status, 400);
    assert!(got.closed);
    // A body shorter than announced followed by a request line: the line is body, not a
    // request (the POST is then invalid and the session ends).
    let client = server.polling().await;
    let post_uri = uri(&client.query());
    let tail = format!("GET {post_uri} HTTP/1.1\r\nHost: x\r\n\r\n");
    let bytes = format!(
        "POST {post_uri} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n4a{tail}",
        2 + tail.len()
    );
    let got = exchange(server.addr, bytes.as_bytes()).await;
    assert_eq!(got.responses.len(), 1, "{:?}", got.responses);
    assert_eq!(got.responses[0].status, 200);
    assert!(
        server
            .seen()
            .contains(&Seen::Message(client.sid.clone(), format!("a{tail}")))
    );
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn an_http2_preface_gets_505() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let got = exchange(
        server.addr,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    )
    .await;
    assert_eq!(got.responses.len(), 1);
    assert_eq!(got.responses[0].status, 505);
    assert!(got.closed);
    // The preface sent one byte at a time is recognised too.
    let mut conn = RawConn::connect(server.addr).await;
    for byte in b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
        conn.send(&[*byte]).await;
    }
    assert_eq!(conn.response().await.status, 505);
    // An HTTP/1.1 request starting with a prefix of the preface is served normally.
    let r = one(
        server.addr,
        &request("PRI", "/engine.io/?EIO=4&transport=polling", &[], b""),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_alive(server.addr).await;
}

#[tokio::test]
async fn garbage_instead_of_a_request_is_a_bare_400() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    for garbage in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"[..],
        b"\x00\x00\x00\x00\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\x00\n\n",
    ] {
        let got = exchange(server.addr, garbage).await;
        assert!(got.closed, "{garbage:?}");
        let statuses: Vec<u16> = got.responses.iter().map(|r| r.status).collect();
        assert!(
            statuses == [400] || statuses == [505] || statuses.is_empty(),
            "{garbage:?}: {statuses:?}"
        );
    }
    assert_alive(server.addr).await;
}
