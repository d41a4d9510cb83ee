//! Hostile Socket.IO input at the broker, on a virtual clock: binary packets whose attachments
//! never arrive, attachment floods, and packets in the wrong state.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sockeye_broker::{
    Broker, BrokerConfig, CloseReason, DEFAULT_ATTACHMENT_TIMEOUT, EngineInfo, ProtocolViolation,
    RawArgs, SocketRef,
};
use sockeye_codec::Utf8Bytes;
use sockeye_codec::socketio::{DecodeError, Limits};

fn broker(config: BrokerConfig) -> Broker {
    Broker::builder()
        .config(config)
        .namespace("/", |ns| {
            ns.on("echo", async |socket: SocketRef, RawArgs(args): RawArgs| {
                socket.emit_args("echo", args).unwrap();
            })
        })
        .build()
}

const HEADER: &str = r#"52-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;

#[tokio::test]
async fn missing_attachments_close_the_session_at_the_attachment_deadline() {
    let broker = broker(BrokerConfig::default().attachment_timeout(Duration::from_secs(3)));
    let t0 = Instant::now();
    let transport = Arc::new(support::FakeTransport::default());
    let mut conn = broker.on_engine_open(transport.clone(), EngineInfo::new("x"), t0);
    conn.on_engine_text(Utf8Bytes::from_static("0"), t0)
        .unwrap();
    transport.take();
    // Joined: the connect deadline is cleared at its next check.
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), None);

    let t1 = t0 + Duration::from_secs(1);
    conn.on_engine_text(Utf8Bytes::from_static(HEADER), t1)
        .unwrap();
    assert_eq!(conn.poll_timeout(), Some(t1 + Duration::from_secs(3)));
    conn.on_engine_binary(bytes::Bytes::from_static(b"one"))
        .unwrap();
    // One attachment of two: the deadline is still the header's (a trickle does not extend it).
    assert_eq!(conn.poll_timeout(), Some(t1 + Duration::from_secs(3)));
    conn.handle_timeout(t1 + Duration::from_millis(2999));
    assert_eq!(transport.closed(), None);
    conn.handle_timeout(t1 + Duration::from_secs(3));
    assert_eq!(transport.closed(), Some(CloseReason::ProtocolViolation));
    assert_eq!(conn.poll_timeout(), None);
    assert!(transport.texts().is_empty(), "nothing was emitted");
}

#[tokio::test]
async fn complete_attachments_clear_the_deadline() {
    let broker = broker(BrokerConfig::default());
    let t0 = Instant::now();
    let transport = Arc::new(support::FakeTransport::default());
    let mut conn = broker.on_engine_open(transport.clone(), EngineInfo::new("x"), t0);
    conn.on_engine_text(Utf8Bytes::from_static("0"), t0)
        .unwrap();
    conn.handle_timeout(t0);
    transport.take();
    conn.on_engine_text(Utf8Bytes::from_static(HEADER), t0)
        .unwrap();
    assert_eq!(conn.poll_timeout(), Some(t0 + DEFAULT_ATTACHMENT_TIMEOUT));
    conn.on_engine_binary(bytes::Bytes::from_static(b"a"))
        .unwrap();
    conn.on_engine_binary(bytes::Bytes::from_static(b"b"))
        .unwrap();
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(t0 + DEFAULT_ATTACHMENT_TIMEOUT * 2);
    assert_eq!(transport.closed(), None);
    let sent = transport.take();
    assert_eq!(sent.len(), 1, "the echo");
    assert_eq!(sent[0].binaries().len(), 2);
}

#[tokio::test]
async fn attachments_over_the_byte_bound_close_at_once() {
    let limits = Limits::default().max_attachment_bytes(8);
    let broker = broker(BrokerConfig::default().limits(limits));
    let t0 = Instant::now();
    let transport = Arc::new(support::FakeTransport::default());
    let mut conn = broker.on_engine_open(transport.clone(), EngineInfo::new("x"), t0);
    conn.on_engine_text(Utf8Bytes::from_static("0"), t0)
        .unwrap();
    conn.on_engine_text(Utf8Bytes::from_static(HEADER), t0)
        .unwrap();
    conn.on_engine_binary(bytes::Bytes::from_static(b"12345"))
        .unwrap();
    let error = conn
        .on_engine_binary(bytes::Bytes::from_static(b"6789"))
        .unwrap_err();
    assert_eq!(
        error,
        ProtocolViolation::Decode(DecodeError::AttachmentsTooLarge { len: 9, max: 8 })
    );
    assert_eq!(transport.closed(), Some(CloseReason::ProtocolViolation));
    assert_eq!(conn.poll_timeout(), None);
}

#[tokio::test]
async fn the_attachment_deadline_applies_before_connect_too() {
    // A header before any CONNECT: the connect timeout (45 s) is later than the attachment
    // deadline, which comes first.
    let broker = broker(BrokerConfig::default());
    let t0 = Instant::now();
    let transport = Arc::new(support::FakeTransport::default());
    let mut conn = broker.on_engine_open(transport.clone(), EngineInfo::new("x"), t0);
    conn.on_engine_text(Utf8Bytes::from_static(HEADER), t0)
        .unwrap();
    assert_eq!(conn.poll_timeout(), Some(t0 + DEFAULT_ATTACHMENT_TIMEOUT));
    conn.handle_timeout(t0 + DEFAULT_ATTACHMENT_TIMEOUT);
    assert_eq!(transport.closed(), Some(CloseReason::ProtocolViolation));
}
