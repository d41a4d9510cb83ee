//! Hardening, issue 14, categories F-H: the WebSocket handshake, framing and Engine.IO over
//! WebSocket, probed with raw bytes. Each probe sends hostile bytes, checks the exact answer
//! (an HTTP status, or a close frame with its code followed by a clean FIN, never a reset),
//! then checks that another client is still served.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use sockeye_engine::server::Cors;
use sockeye_engine::{CloseReason, EngineConfig};
use sockeye_tests::eio::{PATH, TestServer, WAIT, WsClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ----- helpers --------------------------------------------------------------------------------

/// A close timeout long enough that a loaded machine never ends the linger early: the server
/// stops lingering at the client's close frame or FIN anyway.
fn config() -> EngineConfig {
    EngineConfig::default().ws_close_timeout(Duration::from_secs(20))
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The request head of a valid upgrade, with `changes` applied: `(name, Some(value))` replaces
/// or adds a header, `(name, None)` removes it.
fn upgrade_head(
    addr: SocketAddr,
    method: &str,
    query: &str,
    changes: &[(&str, Option<&str>)],
) -> String {
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), addr.to_string()),
        ("Upgrade".into(), "websocket".into()),
        ("Connection".into(), "Upgrade".into()),
        ("Sec-WebSocket-Key".into(), KEY.into()),
        ("Sec-WebSocket-Version".into(), "13".into()),
    ];
    for (name, value) in changes {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            headers.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    let mut head = format!("{method} {PATH}?{query} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends `head` and reads the response head: `(status, head text, stream, bytes after it)`.
async fn send_head(addr: SocketAddr, head: &str) -> (u16, String, TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let end = loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("timed out reading the response head")
            .unwrap();
        assert!(n > 0, "connection closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text, stream, buf[end..].to_vec())
}

/// A header of a response head, by name.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// One masked client frame, with the first byte given whole (FIN, RSV bits, opcode).
fn frame_b0(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// One masked client frame.
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame_b0(if fin { 0x80 } else { 0 } | opcode, payload)
}

/// A close frame with this code and reason.
fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(0x8, true, &payload)
}

/// A raw WebSocket connection on a fresh Engine.IO session, the open packet read.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// How the server's side of a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// A close frame with this code (`None`: empty close frame), then a clean FIN.
    Close(Option<u16>),
    /// A close frame, then a reset instead of a FIN.
    CloseThenReset(Option<u16>),
    /// No close frame: FIN.
    Eof,
    /// No close frame: reset.
    Reset,
}

impl Raw {
    async fn open(addr: SocketAddr) -> Self {
        let head = upgrade_head(addr, "GET", "EIO=4&transport=websocket", &[]);
        let (status, text, stream, buf) = send_head(addr, &head).await;
        assert_eq!(status, 101, "{text}");
        let mut raw = Self { stream, buf };
        match raw.next_frame().await {
            Ok(Some((0x1, payload))) => assert_eq!(payload.first(), Some(&b'0')),
            other => panic!("expected the open packet, got {other:?}"),
        }
        raw
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next server frame, `Ok(None)` at EOF, `Err` on a reset.
    async fn next_frame(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if self.buf.len() >= 2 {
                let opcode = self.buf[0] & 0x0f;
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are never masked");
                let (len, start) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= start + len {
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    return Ok(Some((opcode, payload)));
                }
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("timed out waiting for the server")?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the server's side ends, skipping data and ping frames.
    async fn ending(&mut self) -> Ending {
        let code = loop {
            match self.next_frame().await {
                Ok(Some((0x8, payload))) => {
                    break (payload.len() >= 2)
                        .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ending::Eof,
                Err(_) => return Ending::Reset,
            }
        };
        // After the close frame: nothing but the FIN.
        match self.next_frame().await {
            Ok(None) => Ending::Close(code),
            Ok(Some(frame)) => panic!("a frame after the close frame: {frame:?}"),
            Err(_) => Ending::CloseThenReset(code),
        }
    }
}

/// Another client still gets its echo.
async fn still_serves(server: &TestServer) {
    let mut ws = WsClient::connect(server.addr, "EIO=4&transport=websocket")
        .await
        .unwrap();
    assert!(ws.recv_text().await.starts_with('0'));
    ws.send_text("4still here").await;
    assert_eq!(ws.recv_text().await, "4still here");
}

/// Sends `bytes` on a fresh session; expects the close frame with `code` and a clean FIN, then
/// checks that another client is served.
async fn probe_close(server: &TestServer, bytes: &[u8], code: u16) {
    let mut raw = Raw::open(server.addr).await;
    raw.send(bytes).await;
    assert_eq!(
        raw.ending().await,
        Ending::Close(Some(code)),
        "probe {bytes:02x?}"
    );
    still_serves(server).await;
}

// ----- 1. the lingering close -------------------------------------------------------------------

/// The report of issue 14: a message over `max_payload` that the client is still sending when
/// the server refuses it. The client writes all of it before it reads anything (what a blocking
/// client like Python's `websocket-client` does): the server must read and throw it away, or
/// the client's write fails on a reset and it never sees the close frame (1006).
#[tokio::test]
async fn a_message_over_max_payload_gets_1009_while_the_client_is_still_sending_it() {
    let config = config().max_payload(NonZeroUsize::new(64 * 1024).unwrap());
    let server = TestServer::spawn(config).await;
    let mut raw = Raw::open(server.addr).await;
    let mut message = vec![b'4'];
    // More than the socket buffers of both ends hold (a few MiB on loopback): the client's
    // write completes only if the server keeps reading after its close frame.
    message.resize(12 << 20, b'x');
    raw.send(&frame(0x1, true, &message)).await;
    assert_eq!(raw.ending().await, Ending::Close(Some(1009)));
    still_serves(&server).await;

    // The same over fragments: the limit counts the whole message.
    let mut raw = Raw::open(server.addr).await;
    let mut bytes = frame(0x1, false, &message[..40_000]);
    for _ in 0..40 {
        bytes.extend(frame(0x0, false, &message[..40_000]));
    }
    raw.send(&bytes).await;
    assert_eq!(raw.ending().await, Ending::Close(Some(1009)));
    still_serves(&server).await;
}

#[tokio::test]
async fn a_message_over_max_payload_closes_the_session_with_its_reason() {
    let config = config().max_payload(NonZeroUsize::new(1000).unwrap());
    let server = TestServer::spawn(config).await;
    let mut ws = WsClient::connect(server.addr, "EIO=4&transport=websocket")
        .await
        .unwrap();
    let open = ws.recv_text().await;
    let open: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    ws.send_text(&format!("4{}", "y".repeat(5000))).await;
    assert_eq!(ws.closed().await, Some(1009));
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::PayloadTooLarge);
}

/// A server-started close on a protocol error, while the client keeps writing valid frames:
/// still a close frame and a FIN.
#[tokio::test]
async fn a_protocol_error_close_lingers_while_the_client_keeps_writing() {
    let server = TestServer::spawn(config()).await;
    let mut raw = Raw::open(server.addr).await;
    let mut bytes = frame(0x0, true, b"stray continuation");
    for _ in 0..2000 {
        bytes.extend(frame(0x1, true, &[b'4'; 1000]));
    }
    raw.send(&bytes).await;
    assert_eq!(raw.ending().await, Ending::Close(Some(1002)));
    still_serves(&server).await;
}

/// A server-started close (the Engine.IO close packet): the client answers with its close
/// frame, the server's FIN follows.
#[tokio::test]
async fn a_close_packet_gets_a_close_frame_and_a_fin() {
    let server = TestServer::spawn(config()).await;
    let mut raw = Raw::open(server.addr).await;
    raw.send(&frame(0x1, true, b"1")).await;
    let (opcode, payload) = raw.next_frame().await.unwrap().unwrap();
    assert_eq!((opcode, &payload[..]), (0x8, &1000u16.to_be_bytes()[..]));
    raw.send(&close(1000, b"")).await;
    assert_eq!(raw.next_frame().await.unwrap(), None);
    still_serves(&server).await;
}

/// A client-started close: echoed code, then the FIN.
#[tokio::test]
async fn a_client_close_is_echoed_then_the_fin_follows() {
    let server = TestServer::spawn(config()).await;
    for code in [1000u16, 1001, 1003, 1011, 1012, 1014, 3000, 4999] {
        probe_close(&server, &close(code, b"bye"), code).await;
    }
    // An empty close frame is answered with 1000.
    probe_close(&server, &frame(0x8, true, b""), 1000).await;
}

// ----- 2. the handshake (category F) ------------------------------------------------------------

/// Sends an upgrade request with `changes`; returns the status and the response head, then
/// checks that another client is served.
async fn handshake_status(
    server: &TestServer,
    method: &str,
    query: &str,
    changes: &[(&str, Option<&str>)],
) -> (u16, String) {
    let head = upgrade_head(server.addr, method, query, changes);
    let (status, text, _stream, _) = send_head(server.addr, &head).await;
    still_serves(server).await;
    (status, text)
}

const WS: &str = "EIO=4&transport=websocket";

#[tokio::test]
async fn versions_other_than_13_get_426_with_the_supported_version() {
    let server = TestServer::spawn(config()).await;
    for version in [
        Some("12"),
        Some("8"),
        Some("14"),
        Some("13, 8"),
        Some(""),
        None,
    ] {
        let (status, head) =
            handshake_status(&server, "GET", WS, &[("Sec-WebSocket-Version", version)]).await;
        assert_eq!(status, 426, "version {version:?}: {head}");
        assert_eq!(
            header(&head, "sec-websocket-version").as_deref(),
            Some("13")
        );
        assert_eq!(header(&head, "connection").as_deref(), Some("close"));
    }
    // Two version headers: ambiguous.
    let head = upgrade_head(server.addr, "GET", WS, &[])
        .replace("\r\n\r\n", "\r\nSec-WebSocket-Version: 8\r\n\r\n");
    let (status, text, _, _) = send_head(server.addr, &head).await;
    assert_eq!(status, 426, "{text}");
    still_serves(&server).await;
}

#[tokio::test]
async fn missing_or_invalid_keys_get_400() {
    let server = TestServer::spawn(config()).await;
    let bad_keys = [
        None,
        Some(""),
        Some("abc"),
        // base64 of 15 and of 17 bytes
        Some("AAAAAAAAAAAAAAAAAAAA"),
        Some("AAAAAAAAAAAAAAAAAAAAAAA="),
        // 24 characters, not base64
        Some("!!!!!!!!!!!!!!!!!!!!!!=="),
        // 16 bytes, unpadded
        Some("dGhlIHNhbXBsZSBub25jZQ"),
        Some("dGhlIHNhbXBsZSBub25jZQ==x"),
    ];
    for key in bad_keys {
        let (status, head) =
            handshake_status(&server, "GET", WS, &[("Sec-WebSocket-Key", key)]).await;
        assert_eq!(status, 400, "key {key:?}: {head}");
    }
    let head = upgrade_head(server.addr, "GET", WS, &[]).replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\r\n",
    );
    let (status, text, _, _) = send_head(server.addr, &head).await;
    assert_eq!(status, 400, "two keys: {text}");
    // Another valid key is accepted, with its own accept value.
    let (status, head) = handshake_status(
        &server,
        "GET",
        WS,
        &[("Sec-WebSocket-Key", Some("AQIDBAUGBwgJCgsMDQ4PEA=="))],
    )
    .await;
    assert_eq!(status, 101, "{head}");
    assert_eq!(
        header(&head, "sec-websocket-accept").as_deref(),
        Some(
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                b"AQIDBAUGBwgJCgsMDQ4PEA=="
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn requests_that_are_not_upgrades_get_the_engine_io_400() {
    let server = TestServer::spawn(config()).await;
    let not_upgrades: [&[(&str, Option<&str>)]; 5] = [
        &[("Upgrade", None)],
        &[("Upgrade", Some("h2c"))],
        &[("Connection", None)],
        &[("Connection", Some("keep-alive"))],
        &[("Upgrade", None), ("Connection", None)],
    ];
    for changes in not_upgrades {
        let head = upgrade_head(server.addr, "GET", WS, changes);
        let (status, text, mut stream, mut body) = send_head(server.addr, &head).await;
        assert_eq!(status, 400, "{changes:?}: {text}");
        let len: usize = header(&text, "content-length").unwrap().parse().unwrap();
        while body.len() < len {
            let mut chunk = [0u8; 256];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            body.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&body[..], br#"{"code":3,"message":"Bad request"}"#);
        still_serves(&server).await;
    }
    // HTTP/1.0 cannot upgrade.
    let head = upgrade_head(server.addr, "GET", WS, &[]).replacen("HTTP/1.1", "HTTP/1.0", 1);
    let (status, text, _, _) = send_head(server.addr, &head).await;
    assert_eq!(status, 400, "{text}");
    still_serves(&server).await;
    // Token lists and case are fine.
    for changes in [
        &[("Connection", Some("keep-alive, Upgrade"))][..],
        &[("Upgrade", Some("WebSocket"))][..],
        &[("Connection", Some("UPGRADE"))][..],
    ] {
        let (status, head) = handshake_status(&server, "GET", WS, changes).await;
        assert_eq!(status, 101, "{changes:?}: {head}");
    }
}

#[tokio::test]
async fn upgrades_are_get_only() {
    let server = TestServer::spawn(config()).await;
    // Without sid: the reference server's "Bad handshake method".
    for method in ["POST", "PUT", "DELETE"] {
        let (status, head) = handshake_status(&server, method, WS, &[]).await;
        assert_eq!(status, 400, "{method}: {head}");
    }
    // On a polling session's sid: 405, and the session is still there and still polls.
    let polling = server.polling().await;
    let query = format!("EIO=4&transport=websocket&sid={}", polling.sid);
    for method in ["POST", "PUT"] {
        let (status, head) = handshake_status(&server, method, &query, &[]).await;
        assert_eq!(status, 405, "{method}: {head}");
    }
    assert_eq!(polling.post("4after").await.status, 200);
    assert_eq!(polling.get().await.text(), "4after");
}

#[tokio::test]
async fn a_bad_origin_gets_403_when_origins_are_listed() {
    let config = config().cors(Cors::origins(["https://app.example"]));
    let server = TestServer::spawn(config).await;
    for origin in [
        "https://evil.example",
        "https://app.example.evil",
        "http://app.example",
        "null",
    ] {
        let (status, head) =
            handshake_status(&server, "GET", WS, &[("Origin", Some(origin))]).await;
        assert_eq!(status, 403, "{origin}: {head}");
    }
    let (status, head) = handshake_status(
        &server,
        "GET",
        WS,
        &[("Origin", Some("https://app.example"))],
    )
    .await;
    assert_eq!(status, 101, "{head}");
    // The same check on the upgrade of a polling session.
    let polling = server.polling().await;
    let query = format!("EIO=4&transport=websocket&sid={}", polling.sid);
    let (status, head) = handshake_status(
        &server,
        "GET",
        &query,
        &[("Origin", Some("https://evil.example"))],
    )
    .await;
    assert_eq!(status, 403, "{head}");
    assert_eq!(polling.post("4polling on").await.status, 200);
    assert_eq!(polling.get().await.text(), "4polling on");
}

#[tokio::test]
async fn without_a_list_only_same_origin_and_no_origin_are_upgraded() {
    let server = TestServer::spawn(config()).await;
    let own = format!("http://{}", server.addr);
    let (status, head) = handshake_status(&server, "GET", WS, &[("Origin", Some(&own))]).await;
    assert_eq!(status, 101, "{head}");
    let (status, head) = handshake_status(
        &server,
        "GET",
        WS,
        &[("Origin", Some("https://elsewhere.example"))],
    )
    .await;
    assert_eq!(status, 403, "{head}");
}

// ----- 3. framing (category G) ------------------------------------------------------------------

#[tokio::test]
async fn reserved_bits_without_an_extension_get_1002() {
    let server = TestServer::spawn(config()).await;
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        probe_close(&server, &frame_b0(0x80 | rsv | 0x1, b"4hi"), 1002).await;
        // On a control frame too.
        probe_close(&server, &frame_b0(0x80 | rsv | 0x9, b"p"), 1002).await;
    }
    // Even when the client offered permessage-deflate: sockeye negotiates no extension.
    let head = upgrade_head(
        server.addr,
        "GET",
        WS,
        &[("Sec-WebSocket-Extensions", Some("permessage-deflate"))],
    );
    let (status, text, stream, buf) = send_head(server.addr, &head).await;
    assert_eq!(status, 101, "{text}");
    assert_eq!(header(&text, "sec-websocket-extensions"), None);
    let mut raw = Raw { stream, buf };
    raw.next_frame().await.unwrap().unwrap();
    raw.send(&frame_b0(0xC1, b"4compressed?")).await;
    assert_eq!(raw.ending().await, Ending::Close(Some(1002)));
}

#[tokio::test]
async fn unmasked_client_frames_get_1002() {
    let server = TestServer::spawn(config()).await;
    probe_close(&server, &[0x81, 0x03, b'4', b'h', b'i'], 1002).await;
    probe_close(&server, &[0x89, 0x00], 1002).await;
    probe_close(&server, &[0x88, 0x02, 0x03, 0xe8], 1002).await;
}

#[tokio::test]
async fn oversized_and_fragmented_control_frames_get_1002() {
    let server = TestServer::spawn(config()).await;
    for opcode in [0x8, 0x9, 0xA] {
        // 126 bytes: over the 125 of RFC 6455 5.5, whether 16- or 64-bit length.
        let mut payload = vec![0x03, 0xe8];
        payload.resize(126, b'a');
        probe_close(&server, &frame(opcode, true, &payload), 1002).await;
        // Not final.
        probe_close(&server, &frame(opcode, false, &payload[..4]), 1002).await;
    }
    // A 7-bit length of 125 on a ping is fine and answered.
    let mut raw = Raw::open(server.addr).await;
    raw.send(&frame(0x9, true, &[7u8; 125])).await;
    assert_eq!(raw.next_frame().await.unwrap(), Some((0xA, vec![7u8; 125])));
}

#[tokio::test]
async fn broken_fragmentation_gets_1002() {
    let server = TestServer::spawn(config()).await;
    // A continuation with nothing to continue, final or not.
    probe_close(&server, &frame(0x0, true, b"4x"), 1002).await;
    probe_close(&server, &frame(0x0, false, b"4x"), 1002).await;
    // A new data frame inside a fragmented message (text in text, binary in text...).
    for opcode in [0x1, 0x2] {
        let mut bytes = frame(0x1, false, b"4ab");
        bytes.extend(frame(opcode, true, b"4cd"));
        probe_close(&server, &bytes, 1002).await;
    }
    // A ping between fragments is fine (then the message completes).
    let mut raw = Raw::open(server.addr).await;
    let mut bytes = frame(0x1, false, b"4ab");
    bytes.extend(frame(0x9, true, b"in between"));
    bytes.extend(frame(0x0, false, b""));
    bytes.extend(frame(0x0, true, b"cd"));
    raw.send(&bytes).await;
    assert_eq!(
        raw.next_frame().await.unwrap(),
        Some((0xA, b"in between".to_vec()))
    );
    assert_eq!(
        raw.next_frame().await.unwrap(),
        Some((0x1, b"4abcd".to_vec()))
    );
}

#[tokio::test]
async fn reserved_opcodes_get_1002() {
    let server = TestServer::spawn(config()).await;
    for opcode in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        probe_close(&server, &frame(opcode, true, b"4x"), 1002).await;
    }
}

#[tokio::test]
async fn invalid_utf8_gets_1007_in_one_frame_or_across_fragments() {
    let server = TestServer::spawn(config()).await;
    let invalid: [&[u8]; 6] = [
        b"4\xff",
        b"4\xc0\xaf",         // overlong '/'
        b"4\xed\xa0\x80",     // a UTF-16 surrogate
        b"4\xf4\x90\x80\x80", // over U+10FFFF
        b"4\xe2\x82",         // truncated at the end of the message
        b"4\xce\xbahello\x80",
    ];
    for text in invalid {
        probe_close(&server, &frame(0x1, true, text), 1007).await;
        // The same split across fragments, at every position.
        for split in 1..text.len() {
            let mut bytes = frame(0x1, false, &text[..split]);
            bytes.extend(frame(0x0, true, &text[split..]));
            probe_close(&server, &bytes, 1007).await;
        }
    }
    // Fail fast: an invalid fragment is refused before the message ends.
    let mut raw = Raw::open(server.addr).await;
    raw.send(&frame(0x1, false, b"4ok\xff")).await;
    assert_eq!(raw.ending().await, Ending::Close(Some(1007)));
    // Valid text split inside a character is fine.
    let mut raw = Raw::open(server.addr).await;
    let text = "4κόσμε 𝄞".as_bytes();
    let mut bytes = Vec::new();
    for (i, byte) in text.iter().enumerate() {
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        bytes.extend(frame(opcode, i == text.len() - 1, &[*byte]));
    }
    raw.send(&bytes).await;
    assert_eq!(raw.next_frame().await.unwrap(), Some((0x1, text.to_vec())));
    // A binary message is not text: any bytes.
    let mut raw = Raw::open(server.addr).await;
    raw.send(&frame(0x2, true, b"\xff\xfe")).await;
    assert_eq!(
        raw.next_frame().await.unwrap(),
        Some((0x2, b"\xff\xfe".to_vec()))
    );
}

#[tokio::test]
async fn malformed_close_frames_get_1002_or_1007() {
    let server = TestServer::spawn(config()).await;
    // A 1-byte payload.
    probe_close(&server, &frame(0x8, true, &[0x03]), 1002).await;
    // Codes that may not be sent.
    for code in [
        0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        probe_close(&server, &close(code, b""), 1002).await;
        probe_close(&server, &close(code, b"reason"), 1002).await;
    }
    // A reason that is not UTF-8.
    probe_close(&server, &close(1000, b"\xff\xfe"), 1007).await;
    probe_close(&server, &close(1000, b"ok\xe2\x82"), 1007).await;
    // A valid reason of the full 123 bytes is fine.
    probe_close(&server, &close(1000, &[b'r'; 123]), 1000).await;
}

#[tokio::test]
async fn payload_length_tricks() {
    let server = TestServer::spawn(config().max_payload(NonZeroUsize::new(100_000).unwrap())).await;
    // A 64-bit length with the top bit set (RFC 6455 5.2: must be 0).
    let mut bytes = vec![0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    probe_close(&server, &bytes, 1002).await;
    // A huge declared length is refused at the header, before any payload arrives.
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&(1u64 << 40).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    probe_close(&server, &bytes, 1009).await;
    let mut bytes = vec![0x82, 0x80 | 126];
    bytes.extend_from_slice(&65535u16.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    let mut raw = Raw::open(server.addr).await;
    raw.send(&bytes).await;
    // 65535 is within the limit: the server waits for the payload, and gets it.
    raw.send(&vec![0x11u8; 65535]).await;
    let (opcode, payload) = raw.next_frame().await.unwrap().unwrap();
    assert_eq!((opcode, payload.len()), (0x2, 65535));
    // A non-minimal length encoding (16 bits for 3 bytes) is accepted, like tungstenite and ws.
    let mut raw = Raw::open(server.addr).await;
    let mut bytes = vec![0x81, 0x80 | 126, 0, 3, 0, 0, 0, 0];
    bytes.extend_from_slice(b"4hi");
    raw.send(&bytes).await;
    assert_eq!(
        raw.next_frame().await.unwrap(),
        Some((0x1, b"4hi".to_vec()))
    );
    // A header that trickles in byte by byte.
    let mut raw = Raw::open(server.addr).await;
    for byte in frame(0x1, true, b"4slow") {
        raw.send(&[byte]).await;
    }
    assert_eq!(
        raw.next_frame().await.unwrap(),
        Some((0x1, b"4slow".to_vec()))
    );
    still_serves(&server).await;
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_does_not_read_is_bounded() {
    let server = TestServer::spawn(config()).await;
    let mut raw = Raw::open(server.addr).await;
    // 500 000 pings with 125-byte payloads (65 MB of frames) and the client reads nothing
    // meanwhile: one pong per ping would queue 65 MB on the server.
    let ping = frame(0x9, true, &[b'p'; 125]);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    for _ in 0..500 {
        raw.send(&batch).await;
    }
    still_serves(&server).await;
    // Then it reads: the pongs the socket buffers took before they filled, a few queued ones,
    // and the connection still works, in order.
    raw.send(&frame(0x1, true, b"4after the flood")).await;
    let mut pongs = 0usize;
    loop {
        match raw.next_frame().await.unwrap() {
            Some((0xA, payload)) => {
                assert_eq!(payload, vec![b'p'; 125]);
                pongs += 1;
            }
            Some((0x1, payload)) => {
                assert_eq!(payload, b"4after the flood");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    // Loopback socket buffers hold at most ~10 MB (80 000 pongs) of the 500 000.
    assert!(
        pongs < 250_000,
        "{pongs} pongs: the server queued one per ping"
    );
}

#[tokio::test]
async fn a_flood_of_tiny_frames_is_served_in_order() {
    let server = TestServer::spawn(config()).await;
    let mut raw = Raw::open(server.addr).await;
    // One message in 100 000 one-byte fragments, empty fragments in between.
    let mut bytes = frame(0x1, false, b"4");
    for _ in 0..100_000 {
        bytes.extend(frame(0x0, false, b"z"));
        bytes.extend(frame(0x0, false, b""));
    }
    bytes.extend(frame(0x0, true, b"!"));
    raw.send(&bytes).await;
    let expected = format!("4{}!", "z".repeat(100_000));
    assert_eq!(
        raw.next_frame().await.unwrap(),
        Some((0x1, expected.into_bytes()))
    );
    still_serves(&server).await;
}
