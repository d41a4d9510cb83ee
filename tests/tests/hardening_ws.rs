//! Hardening, issue 14, categories F-H: the WebSocket handshake, framing and Engine.IO over
//! WebSocket, probed with raw bytes. Each probe sends hostile bytes, checks the exact answer
//! (an HTTP status, or a close frame with its code followed by a clean FIN, never a reset),
//! then checks that another client is still served.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

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
#[allow(dead_code)]
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
