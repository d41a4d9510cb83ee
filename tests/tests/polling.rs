//! HTTP long-polling: held GETs, POST batches, binary, overlap, limits, close.
#![allow(clippy::unwrap_used)]

use std::num::NonZeroUsize;
use std::time::Duration;

use sockeye_codec::Outgoing;
use sockeye_engine::{CloseReason, EngineConfig};
use sockeye_tests::eio::{Mode, Seen, TestServer, http, try_http, uri};

#[tokio::test]
async fn echo_one_packet() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let post = client.post("4hello").await;
    assert_eq!(post.status, 200);
    assert_eq!(post.text(), "ok");
    assert_eq!(post.header("content-type").unwrap(), "text/html");
    let get = client.get().await;
    assert_eq!(get.status, 200);
    assert_eq!(get.text(), "4hello");
}

#[tokio::test]
async fn all_packets_of_one_post_come_back_together_in_order() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    // A GET already waiting must not answer after the first echo.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(client.post("4test1\x1e4test2\x1e4test3").await.text(), "ok");
    assert_eq!(waiting.await.unwrap().text(), "4test1\x1e4test2\x1e4test3");
}

#[tokio::test]
async fn text_and_binary_packets() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    client.post("4hello\x1ebAQIDBA==").await;
    assert_eq!(client.get().await.text(), "4hello\x1ebAQIDBA==");
    let seen = server.seen();
    assert!(seen.contains(&Seen::Binary(client.sid.clone(), vec![1, 2, 3, 4])));
}

#[tokio::test]
async fn a_held_get_is_answered_when_the_application_sends() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let client = server.polling().await;
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished());
    let handle = server.session(&client.sid);
    handle.send(Outgoing::message_text("pushed")).unwrap();
    assert_eq!(waiting.await.unwrap().text(), "4pushed");
}

#[tokio::test]
async fn invalid_payload_closes_the_session() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let post = client.post("abc").await;
    assert_eq!(post.status, 400);
    assert_eq!(client.get().await.status, 400);
    assert_eq!(server.closed(&client.sid).await, CloseReason::ParseError);
}

#[tokio::test]
async fn concurrent_gets_close_the_session() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let second = client.get().await;
    assert_eq!(second.status, 400);
    let first = first.await.unwrap();
    assert_eq!((first.status, first.text().as_str()), (200, "1"));
    assert_eq!(client.get().await.status, 400);
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::TransportError
    );
}

#[tokio::test]
async fn oversized_post_gets_413_and_closes_the_session() {
    let config = EngineConfig::default().max_payload(NonZeroUsize::new(100).unwrap());
    let server = TestServer::spawn(config).await;
    let client = server.polling().await;
    let body = format!("4{}", "x".repeat(200));
    let response = client.post(body).await;
    assert_eq!(response.status, 413);
    assert_eq!(client.get().await.status, 400);
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::PayloadTooLarge
    );

    // Chunked (no Content-Length): the limit applies while reading.
    let client = server.polling().await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        uri(&client.query())
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..5 {
        stream.write_all(b"32\r\n").await.unwrap();
        stream.write_all(&[b'4'; 50]).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    let mut response = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 413"));
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::PayloadTooLarge
    );
}

#[tokio::test]
async fn responses_never_exceed_max_payload() {
    let config = EngineConfig::default().max_payload(NonZeroUsize::new(1000).unwrap());
    let server = TestServer::builder(config).mode(Mode::Record).spawn().await;
    let client = server.polling().await;
    let handle = server.session(&client.sid);
    let message = Outgoing::message_text(&"m".repeat(99)); // 100 bytes with the "4"
    for _ in 0..25 {
        handle.send(message.clone()).unwrap();
    }
    let mut received = 0;
    while received < 25 {
        let body = client.get().await;
        assert!(body.body.len() <= 1000, "{} bytes", body.body.len());
        received += body.text().split('\x1e').count();
    }
    assert_eq!(received, 25);
}

#[tokio::test]
async fn client_close_releases_a_held_get_with_noop() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(client.post("1").await.status, 200);
    assert_eq!(waiting.await.unwrap().text(), "6");
    assert_eq!(client.get().await.status, 400);
    assert_eq!(
        server.closed(&client.sid).await,
        CloseReason::TransportClose
    );
}

#[tokio::test]
async fn client_close_with_no_get_pending_makes_the_sid_unknown() {
    // As the reference: the close packet ends the session at once; with no GET pending there
    // is nobody to hand a noop to, and the next request is for an unknown sid.
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    assert_eq!(client.post("1").await.status, 200);
    let get = client.get().await;
    assert_eq!((get.status, get.error_code()), (400, 1));
    assert_eq!(client.get().await.status, 400);
}

#[tokio::test]
async fn forced_close_delivers_queued_messages_then_close_packet() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let client = server.polling().await;
    let handle = server.session(&client.sid);
    handle.send(Outgoing::message_text("last words")).unwrap();
    handle.close(CloseReason::ForcedClose);
    assert!(handle.is_closed());
    assert_eq!(client.get().await.text(), "4last words\x1e1");
    assert_eq!(client.get().await.status, 400);
    assert_eq!(server.closed(&client.sid).await, CloseReason::ForcedClose);
}

#[tokio::test]
async fn an_abandoned_get_does_not_block_the_next_one() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let client = server.polling().await;
    // A GET whose client goes away before the answer.
    let request = format!("GET {} HTTP/1.1\r\nhost: x\r\n\r\n", uri(&client.query()));
    {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let handle = server.session(&client.sid);
    let next = tokio::spawn({
        let client = client.clone();
        async move { client.get().await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    handle.send(Outgoing::message_text("x")).unwrap();
    let next = next.await.unwrap();
    assert_eq!((next.status, next.text().as_str()), (200, "4x"));
}

#[tokio::test]
async fn wrong_method_with_sid_is_a_bare_500() {
    // The reference's polling transport answers methods other than GET and POST with 500.
    let server = TestServer::spawn(EngineConfig::default()).await;
    let client = server.polling().await;
    let r = http(server.addr, "PUT", &uri(&client.query()), &[], "").await;
    assert_eq!((r.status, r.body.len()), (500, 0));
    let _ = try_http(server.addr, "DELETE", &uri(&client.query()), &[], "")
        .await
        .unwrap();
}
