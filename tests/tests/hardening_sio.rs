//! Hostile Socket.IO input (issue 14, categories I-M): raw packets in over a WebSocket, the
//! exact answer out (a CONNECT_ERROR, an ack, a dropped packet, or the session closed), then a
//! liveness check that another client is still served.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sockeye_broker::{Broker, BrokerConfig, RawArgs, SocketRef};
use sockeye_server::Server;
use sockeye_server::app::AppConfig;
use sockeye_tests::app::{AppServer, WAIT, token};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// How a raw session ended, or what it received.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A Socket.IO packet (the text after the Engine.IO `4`).
    Packet(String),
    /// The session ended: an Engine.IO close packet, a WebSocket close frame (with its code) or
    /// the end of the stream.
    Closed(Option<u16>),
}

/// A WebSocket session that speaks Engine.IO by hand: every byte the test sends is its own.
struct Raw {
    ws: WebSocketStream<TcpStream>,
}

impl Raw {
    async fn open(addr: SocketAddr) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let stream = TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        let mut raw = Self { ws };
        match raw.ws.next().await {
            Some(Ok(Message::Text(text))) => assert!(text.starts_with("0{"), "{text}"),
            other => panic!("expected the open packet, got {other:?}"),
        }
        raw
    }

    /// Opens a session and CONNECTs to `/` with a valid token.
    async fn connected(addr: SocketAddr) -> Self {
        Self::connected_with(
            addr,
            &format!("40{}", json!({ "token": token("raw", 3600) })),
        )
        .await
    }

    /// Opens a session and sends `connect` (a CONNECT frame), which must be accepted.
    async fn connected_with(addr: SocketAddr, connect: &str) -> Self {
        let mut raw = Self::open(addr).await;
        raw.text(connect).await;
        let reply = raw.packet().await;
        assert!(reply.starts_with("0{\"sid\":"), "{reply}");
        raw
    }

    /// Sends an Engine.IO text frame as is (`42[...]` is a Socket.IO EVENT).
    async fn text(&mut self, frame: &str) {
        self.ws.send(Message::text(frame)).await.unwrap();
    }

    async fn binary(&mut self, data: &[u8]) {
        self.ws.send(Message::binary(data.to_vec())).await.unwrap();
    }

    /// The next Socket.IO packet or the end of the session, answering pings.
    async fn seen(&mut self) -> Seen {
        tokio::time::timeout(WAIT * 3, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => match text.as_bytes().first() {
                        Some(b'2') => {
                            let _ = self.ws.send(Message::text("3")).await;
                        }
                        Some(b'4') => return Seen::Packet(text[1..].to_owned()),
                        Some(b'1') => return Seen::Closed(None),
                        _ => {}
                    },
                    Some(Ok(Message::Close(frame))) => {
                        return Seen::Closed(frame.map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Seen::Closed(None),
                }
            }
        })
        .await
        .expect("a packet or the end of the session in time")
    }

    async fn packet(&mut self) -> String {
        match self.seen().await {
            Seen::Packet(packet) => packet,
            Seen::Closed(code) => panic!("expected a packet, the session closed ({code:?})"),
        }
    }

    /// Asserts the session ends (without any Socket.IO packet first).
    async fn expect_closed(&mut self) {
        match self.seen().await {
            Seen::Closed(_) => {}
            Seen::Packet(packet) => panic!("expected the session to close, got {packet}"),
        }
    }

    /// Asserts that nothing arrives within `ms` milliseconds and the session stays open.
    async fn expect_silence(&mut self, ms: u64) {
        if let Ok(seen) = tokio::time::timeout(Duration::from_millis(ms), self.seen()).await {
            panic!("expected silence, got {seen:?}");
        }
    }

    /// A `message` with an ack: the session still serves (returns the ack's first argument).
    async fn message_ack(&mut self, id: u64, content: &str) -> Value {
        self.text(&format!(
            "42{id}{}",
            json!(["message", { "content": content }])
        ))
        .await;
        let prefix = format!("3{id}[");
        loop {
            let packet = self.packet().await;
            if let Some(rest) = packet.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(&format!("[{rest}")).unwrap();
                return args[0].clone();
            }
        }
    }
}

/// Another client is served normally.
async fn still_serves(server: &AppServer) {
    let mut other = Raw::connected(server.addr).await;
    let ack = other.message_ack(1, "alive").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
}

/// Each frame on its own fresh connected session must close that session; the server keeps
/// serving others.
async fn each_closes(server: &AppServer, frames: &[String]) {
    for frame in frames {
        let mut raw = Raw::connected(server.addr).await;
        raw.text(frame).await;
        let short: String = frame.chars().take(60).collect();
        match raw.seen().await {
            Seen::Closed(_) => {}
            Seen::Packet(packet) => panic!("{short}: expected a close, got {packet}"),
        }
    }
    still_serves(server).await;
}

/// The first argument of the ack `id` that `frame` (an event with ack id `id`) gets.
async fn ack_of(raw: &mut Raw, frame: &str, id: &str) -> Value {
    raw.text(frame).await;
    let prefix = format!("3{id}[");
    loop {
        let packet = raw.packet().await;
        if let Some(rest) = packet.strip_prefix(&prefix) {
            let args: Value = serde_json::from_str(&format!("[{rest}")).unwrap();
            return args[0].clone();
        }
    }
}

fn placeholder_event(count: usize, placeholder: &str) -> String {
    format!(r#"45{count}-1["message",{{"content":"bin","file":{placeholder}}}]"#)
}

// ---------------------------------------------------------------------------------------------
// I. The Socket.IO codec: packet type, attachment count, namespace, ack id.

#[tokio::test]
async fn i_malformed_type_count_namespace_and_id_close_the_session() {
    let server = AppServer::spawn().await;
    let frames: Vec<String> = [
        // unknown types
        "4abc",
        "47[]",
        "49",
        "4-1",
        "4 2[\"message\"]",
        "4\u{0}",
        // attachment counts: none, zero, not digits, signed, no dash, over the cap, overflow
        "45-[\"message\"]",
        "450-[\"message\"]",
        "45a-[\"message\"]",
        "45+1-[\"message\"]",
        "451[\"message\"]",
        "4511-[\"message\"]",
        "4599999999999999999999-[\"message\"]",
        // ack ids: not digits, negative, past 2^53 - 1, past 2^64
        "42abc[\"message\"]",
        "42-1[\"message\"]",
        "429007199254740992[\"message\"]",
        "4218446744073709551616[\"message\"]",
        "421e3[\"message\"]",
        // payload shapes
        "42{}",
        "42",
        "42[]",
        "42[\"connect\"]",
        "42[\"disconnect\"]",
        "42[null]",
        "42[\"message\"",
        "42[\"message\"]x",
        "41{}",
        "40[]",
        "40null",
        "40\"x\"",
        // a namespace with no comma swallows the data
        "42/chat[\"message\"]",
    ]
    .iter()
    .map(|f| (*f).to_owned())
    .collect();
    each_closes(&server, &frames).await;
}

#[tokio::test]
async fn i_ack_ids_up_to_2_pow_53_minus_1_and_leading_zeros_read_as_numbers() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    let content = json!(["message", { "content": "x" }]);
    let ack = ack_of(
        &mut raw,
        &format!("429007199254740991{content}"),
        "9007199254740991",
    )
    .await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    // `007` is read as 7, as the reference's `Number("007")` reads it.
    let ack = ack_of(&mut raw, &format!("42007{content}"), "7").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    // The same id twice gets two answers (the client owns its ids, as with the reference).
    let first = ack_of(&mut raw, &format!("425{content}"), "5").await;
    let second = ack_of(&mut raw, &format!("425{content}"), "5").await;
    assert_eq!(
        (first["ok"].clone(), second["ok"].clone()),
        (json!(true), json!(true))
    );
    // An ACK for an id the server never asked for is dropped; the session goes on.
    raw.text("4399[1]").await;
    let ack = raw.message_ack(6, "after").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    still_serves(&server).await;
}

#[tokio::test]
async fn i_unknown_namespaces_get_connect_error_invalid_namespace() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    for (frame, answer) in [
        ("40/nope,", r#"4/nope,{"message":"Invalid namespace"}"#),
        ("40/nope", r#"4/nope,{"message":"Invalid namespace"}"#),
        ("40//,", r#"4//,{"message":"Invalid namespace"}"#),
        ("40/a b,{}", r#"4/a b,{"message":"Invalid namespace"}"#),
        ("40/ünï,", r#"4/ünï,{"message":"Invalid namespace"}"#),
    ] {
        raw.text(frame).await;
        assert_eq!(raw.packet().await, answer, "{frame}");
    }
    // The refusals did not touch the socket on `/`.
    let ack = raw.message_ack(1, "still here").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    // A namespace past 256 bytes is not looked up: the session is closed.
    let long = format!("40/{},", "n".repeat(300));
    each_closes(&server, &[long]).await;
}

// ---------------------------------------------------------------------------------------------
// J. Binary attachments.

#[tokio::test]
async fn j_binary_frames_without_a_header_close_the_session() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    raw.binary(b"\x00\x01\x02").await;
    raw.expect_closed().await;
    // A text packet in the middle of an attachment set, too.
    let mut raw = Raw::connected(server.addr).await;
    raw.text(&placeholder_event(2, r#"{"_placeholder":true,"num":0}"#))
        .await;
    raw.binary(b"one").await;
    raw.text("42[\"message\",{\"content\":\"x\"}]").await;
    raw.expect_closed().await;
    still_serves(&server).await;
}

#[tokio::test]
async fn j_placeholder_tricks_close_the_session_before_any_attachment() {
    let server = AppServer::spawn().await;
    let frames: Vec<String> = [
        r#"{"_placeholder":true,"num":1}"#,
        r#"{"_placeholder":true,"num":-1}"#,
        r#"{"_placeholder":true,"num":0.5}"#,
        r#"{"_placeholder":true,"num":"0"}"#,
        r#"{"_placeholder":true,"num":null}"#,
        r#"{"_placeholder":true,"num":1e400}"#,
        r#"{"_placeholder":true,"num":9007199254740993}"#,
        r#"{"_placeholder":true}"#,
        r#"[{"x":{"_placeholder":true,"num":7}}]"#,
        r#"{"_placeholder":true,"num":0,"num":3}"#,
    ]
    .iter()
    .map(|p| placeholder_event(1, p))
    .collect();
    each_closes(&server, &frames).await;
}

#[tokio::test]
async fn j_valid_placeholder_forms_are_accepted_as_the_reference_accepts_them() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    for (count, placeholder) in [
        (1, r#"{"_placeholder":true,"num":0}"#),
        // any integral notation JSON.parse reads as 0 or 1
        (2, r#"{"_placeholder":true,"num":1.0}"#),
        (1, r#"{"_placeholder":true,"num":-0}"#),
        (2, r#"{"_placeholder":true,"num":1e0}"#),
        // reused, extra keys, a nested placeholder inside one (not looked at), last key wins
        (
            1,
            r#"[{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#,
        ),
        (1, r#"{"_placeholder":true,"num":0,"extra":{"deep":[1]}}"#),
        (
            1,
            r#"{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":9}}"#,
        ),
        (1, r#"{"_placeholder":true,"num":5,"num":0}"#),
        // not a placeholder at all: `_placeholder` is not `true`
        (1, r#"{"_placeholder":"true","num":99}"#),
    ] {
        raw.text(&placeholder_event(count, placeholder)).await;
        for i in 0..count {
            raw.binary(&[u8::try_from(i).unwrap(); 4]).await;
        }
        // The echo of the message and the ack, in either order.
        let (mut ack, mut echoed) = (None, false);
        while ack.is_none() || !echoed {
            let packet = raw.packet().await;
            if let Some(rest) = packet.strip_prefix("31[") {
                ack = Some(serde_json::from_str::<Value>(&format!("[{rest}")).unwrap()[0].clone());
            } else if packet.starts_with("2[\"message\"") {
                echoed = true;
            } else {
                panic!("{placeholder}: unexpected {packet}");
            }
        }
        let ack = ack.unwrap();
        assert_eq!(ack["ok"], json!(true), "{placeholder}: {ack}");
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn j_attachments_over_the_byte_bound_close_at_once() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    raw.text(&placeholder_event(2, r#"{"_placeholder":true,"num":0}"#))
        .await;
    // Two frames under maxPayload (1 MB) each, over the 1,000,000-byte bound together.
    let chunk = vec![7u8; 600_000];
    raw.binary(&chunk).await;
    raw.binary(&chunk).await;
    raw.expect_closed().await;
    still_serves(&server).await;
}

/// A server with an echo namespace and a short attachment deadline.
async fn echo_server(attachment_timeout: Duration) -> AppServer {
    let broker = Broker::builder()
        .config(BrokerConfig::default().attachment_timeout(attachment_timeout))
        .namespace("/", |ns| {
            ns.on("echo", async |socket: SocketRef, RawArgs(args): RawArgs| {
                let _ = socket.emit_args("echo", args);
            })
        })
        .build();
    AppServer::serve(Server::builder().broker(broker).build().unwrap()).await
}

#[tokio::test]
async fn j_an_incomplete_attachment_set_is_closed_at_the_deadline() {
    let server = echo_server(Duration::from_millis(300)).await;
    let mut raw = Raw::connected_with(server.addr, "40").await;
    let mut other = Raw::connected_with(server.addr, "40").await;
    raw.text(r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    raw.binary(b"only one").await;
    // The other session is served while this one waits for its second attachment.
    other.text(r#"42["echo","hi"]"#).await;
    assert_eq!(other.packet().await, r#"2["echo","hi"]"#);
    // No answer, then the close at the deadline (seen() waits far longer than 300 ms).
    raw.expect_closed().await;
    other.text(r#"42["echo","still"]"#).await;
    assert_eq!(other.packet().await, r#"2["echo","still"]"#);
    // A complete set within the deadline is echoed with its attachments.
    raw = Raw::connected_with(server.addr, "40").await;
    raw.text(r#"451-["echo",{"_placeholder":true,"num":0}]"#)
        .await;
    raw.binary(b"bytes").await;
    assert_eq!(
        raw.packet().await,
        r#"51-["echo",{"_placeholder":true,"num":0}]"#
    );
    raw.expect_silence(600).await;
}

// ---------------------------------------------------------------------------------------------
// K. JSON: depth, numbers, duplicate keys, `__proto__`.

#[tokio::test]
async fn k_depth_up_to_the_cap_is_served_and_deeper_closes() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    // 100 levels in all (the event array and 99 inside): an ordinary VALIDATION answer.
    let at_cap = format!(r#"421["message",{}{}]"#, "[".repeat(99), "]".repeat(99));
    let ack = ack_of(&mut raw, &at_cap, "1").await;
    assert_eq!(ack["error"]["code"], json!("VALIDATION"), "{ack}");
    let nested_objects = format!(
        r#"422["message",{}1{}]"#,
        "{\"a\":".repeat(99),
        "}".repeat(99)
    );
    let ack = ack_of(&mut raw, &nested_objects, "2").await;
    assert_eq!(ack["error"]["code"], json!("VALIDATION"), "{ack}");
    let frames = vec![
        format!(r#"42["message",{}{}]"#, "[".repeat(100), "]".repeat(100)),
        format!(r#"42["message",{}"#, "[".repeat(200_000)),
        format!(r#"42["message",{}"#, "{\"a\":[".repeat(100_000)),
        format!(r#"40{{"token":{}{}}}"#, "[".repeat(150), "]".repeat(150)),
    ];
    each_closes(&server, &frames).await;
}

#[tokio::test]
async fn k_numbers_are_read_as_json_parse_reads_them() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    let huge_int = format!("1{}", "0".repeat(400));
    for (id, extra) in [
        (1, "1e400"),
        (2, "-1E+400"),
        (3, huge_int.as_str()),
        (4, "-0"),
        (5, "18446744073709551616"),
        (6, "1e-400"),
        (7, "123456789012345678901234567890.5e-10"),
    ] {
        let frame = format!(r#"42{id}["message",{{"content":"n","n":{extra}}}]"#);
        let ack = ack_of(&mut raw, &frame, &id.to_string()).await;
        assert_eq!(ack["ok"], json!(true), "{extra}: {ack}");
    }
    // Where the number is the field the app reads, it is the wrong type, said as such.
    let ack = ack_of(&mut raw, r#"428["message",{"content":1e400}]"#, "8").await;
    assert_eq!(ack["error"]["code"], json!("VALIDATION"), "{ack}");
    assert_eq!(
        ack["error"]["message"],
        json!("content must be a string"),
        "{ack}"
    );
    // Malformed numbers are not JSON: the session is closed.
    let frames: Vec<String> = [
        "01", "1.", ".5", "+1", "1e", "-", "0x10", "NaN", "Infinity", "1_000",
    ]
    .iter()
    .map(|n| format!(r#"42["message",{{"content":"n","n":{n}}}]"#))
    .collect();
    each_closes(&server, &frames).await;
}

#[tokio::test]
async fn k_duplicate_keys_take_the_last_and_proto_keys_pass_untouched() {
    let server = AppServer::spawn().await;
    let mut raw = Raw::connected(server.addr).await;
    raw.text(r#"42["message",{"content":"first","content":"last"}]"#)
        .await;
    let echo = raw.packet().await;
    assert!(echo.contains(r#""content":"last""#), "{echo}");
    for (id, payload) in [
        (1, r#"{"content":"p","__proto__":{"admin":true}}"#),
        (
            2,
            r#"{"content":"p","constructor":{"prototype":{"admin":true}}}"#,
        ),
        (3, r#"{"__proto__":null,"content":"p"}"#),
    ] {
        let ack = ack_of(
            &mut raw,
            &format!(r#"42{id}["message",{payload}]"#),
            &id.to_string(),
        )
        .await;
        assert_eq!(ack["ok"], json!(true), "{payload}: {ack}");
    }
    // No prototype semantics: a `content` under `__proto__` is not the message's content.
    let ack = ack_of(
        &mut raw,
        r#"424["message",{"__proto__":{"content":"x"}}]"#,
        "4",
    )
    .await;
    assert_eq!(ack["error"]["code"], json!("VALIDATION"), "{ack}");
    still_serves(&server).await;
}

#[tokio::test]
async fn k_odd_values_beside_the_token_do_not_hide_it() {
    let server = AppServer::spawn().await;
    let token = token("odd", 3600);
    for connect in [
        format!(r#"40{{"token":"{token}","n":1e400}}"#),
        format!(r#"40{{"token":"{token}","s":"\ud800"}}"#),
        format!(r#"40{{"token":"{token}","__proto__":{{"token":"x"}}}}"#),
        format!(r#"40{{"token":"bad","token":"{token}"}}"#),
    ] {
        let mut raw = Raw::connected_with(server.addr, &connect).await;
        let ack = raw.message_ack(1, "in").await;
        assert_eq!(ack["ok"], json!(true), "{connect}: {ack}");
    }
    // The token under `__proto__` is not the token.
    let mut raw = Raw::open(server.addr).await;
    raw.text(&format!(r#"40{{"__proto__":{{"token":"{token}"}}}}"#))
        .await;
    let refusal = raw.packet().await;
    assert!(
        refusal.starts_with(r#"4{"message":"unauthorized""#),
        "{refusal}"
    );
}

// ---------------------------------------------------------------------------------------------
// L-M. Namespaces, events, acks, rooms.

#[tokio::test]
async fn l_events_before_connect_and_a_double_connect_close_the_session() {
    let server = AppServer::spawn().await;
    for frames in [
        vec![r#"42["message",{"content":"early"}]"#.to_owned()],
        vec![r#"421["message",{"content":"early"}]"#.to_owned()],
        vec!["43[]".to_owned()],
        vec![
            "41".to_owned(),
            r#"42["message",{"content":"x"}]"#.to_owned(),
        ],
    ] {
        let mut raw = Raw::open(server.addr).await;
        for frame in &frames {
            raw.text(frame).await;
        }
        raw.expect_closed().await;
    }
    // A second CONNECT for a joined namespace (the reference would open a second socket;
    // sockeye treats it as a protocol violation) and an event for an unjoined one.
    let second_connect = format!("40{}", json!({ "token": token("raw", 3600) }));
    each_closes(
        &server,
        &[
            second_connect,
            r#"42/admin,["message",{"content":"x"}]"#.to_owned(),
        ],
    )
    .await;
}

#[tokio::test]
async fn m_join_floods_stop_at_the_rooms_per_socket_cap() {
    let server = AppServer::spawn_with(|b| {
        b.app(
            AppConfig::default()
                .max_rooms_per_socket(8)
                .rate_limit(None),
        )
    })
    .await;
    let mut raw = Raw::connected(server.addr).await;
    // The socket's own id room counts: 7 more joins fit.
    for i in 0..7 {
        let frame = format!(r#"42{i}["join",{{"room":"r{i}"}}]"#);
        let ack = ack_of(&mut raw, &frame, &i.to_string()).await;
        assert_eq!(ack["ok"], json!(true), "{ack}");
    }
    let ack = ack_of(&mut raw, r#"4299["join",{"room":"one-too-many"}]"#, "99").await;
    assert_eq!(ack["error"]["code"], json!("FORBIDDEN"), "{ack}");
    // Joining a room it is already in is fine; after a leave there is room again.
    let ack = ack_of(&mut raw, r#"42100["join",{"room":"r3"}]"#, "100").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    let ack = ack_of(&mut raw, r#"42101["leave",{"room":"r3"}]"#, "101").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    let ack = ack_of(&mut raw, r#"42102["join",{"room":"new"}]"#, "102").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    still_serves(&server).await;
}

#[tokio::test]
async fn m_the_default_room_cap_is_1024() {
    assert_eq!(sockeye_server::app::validate::MAX_ROOMS_PER_SOCKET, 1024);
}
