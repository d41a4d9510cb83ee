//! The Socket.IO protocol as the official suite checks it (CONTRACT.md), without sockets.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use sockeye_broker::{
    AckSender, Broker, BrokerConfig, CloseReason, ConnectError, Data, DisconnectReason, EngineInfo,
    NamespaceBuilder, NamespaceMatcher, RawArgs, SocketRef,
};
use support::Client;

/// The handlers the official suite expects (socket.io-protocol's README reference server).
fn conformance(ns: NamespaceBuilder) -> NamespaceBuilder {
    ns.on_connect(async |socket: SocketRef| {
        let auth: serde_json::Value = socket.handshake().auth().unwrap();
        socket.emit("auth", &auth).unwrap();
    })
    .on(
        "message",
        async |socket: SocketRef, RawArgs(args): RawArgs| {
            socket.emit_args("message-back", args).unwrap();
        },
    )
    .on(
        "message-with-ack",
        async |RawArgs(args): RawArgs, ack: AckSender| {
            ack.send_args(args).unwrap();
        },
    )
}

fn broker() -> Broker {
    Broker::builder()
        .config(BrokerConfig::default().connect_timeout(Duration::from_secs(1)))
        .namespace("/", conformance)
        .namespace("/custom", conformance)
        .build()
}

#[tokio::test]
async fn connect_to_main_namespace_then_auth_is_the_next_frame() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.text("0").unwrap();
    let texts = client.transport.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    let json = texts[0].strip_prefix("40").unwrap();
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(value.as_object().unwrap().len(), 1, "only sid: {json}");
    let sid = value["sid"].as_str().unwrap();
    assert_ne!(sid, "engine-sid", "the socket id is not the Engine.IO sid");
    assert_eq!(texts[1], r#"42["auth",{}]"#);
}

#[tokio::test]
async fn connect_with_payload_echoes_it() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.text(r#"0{"token":"123"}"#).unwrap();
    let texts = client.transport.texts();
    assert!(texts[0].starts_with(r#"40{"sid":""#));
    assert_eq!(texts[1], r#"42["auth",{"token":"123"}]"#);
}

#[tokio::test]
async fn connect_to_custom_namespace_with_and_without_comma() {
    for packet in ["0/custom,", "0/custom", r#"0/custom,{"token":"abc"}"#] {
        let broker = broker();
        let mut client = Client::open(&broker);
        client.text(packet).unwrap();
        let texts = client.transport.texts();
        assert!(texts[0].starts_with(r#"40/custom,{"sid":""#), "{texts:?}");
        let expected_auth = if packet.contains("token") {
            r#"42/custom,["auth",{"token":"abc"}]"#
        } else {
            r#"42/custom,["auth",{}]"#
        };
        assert_eq!(texts[1], expected_auth);
    }
}

#[tokio::test]
async fn unknown_namespace_is_refused_exactly() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.text("0/random,").unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"44/random,{"message":"Invalid namespace"}"#]
    );
    assert_eq!(client.transport.closed(), None, "the session stays open");
}

#[tokio::test]
async fn invalid_packets_close_the_connection() {
    for (connect_first, packet) in [
        (false, "4abc"),
        (true, "4abc"),
        (true, "2{}"),
        (true, r#"2abc["message"]"#),
        (false, "2[\"message\"]"),
        (true, "0"),
    ] {
        let broker = broker();
        let mut client = Client::open(&broker);
        if connect_first {
            client.connect("/");
        }
        assert!(client.text(packet).is_err(), "{packet} must be refused");
        assert_eq!(
            client.transport.closed(),
            Some(CloseReason::ProtocolViolation),
            "{packet}"
        );
        assert_eq!(broker.namespace("/").unwrap().socket_count(), 0);
    }
}

#[tokio::test]
async fn disconnect_sends_nothing_and_keeps_the_session() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.connect("/");
    client.connect("/custom");
    client.text("1/custom,").unwrap();
    assert!(
        client.transport.texts().is_empty(),
        "no reply to DISCONNECT"
    );
    assert_eq!(client.transport.closed(), None);
    client.text(r#"2["message",1]"#).unwrap();
    assert_eq!(client.transport.texts(), [r#"42["message-back",1]"#]);
    client.text("1").unwrap();
    assert!(client.transport.texts().is_empty());
    assert_eq!(
        client.transport.closed(),
        None,
        "even with no namespace left"
    );
    assert_eq!(broker.namespace("/").unwrap().socket_count(), 0);
    assert_eq!(broker.namespace("/custom").unwrap().socket_count(), 0);
}

#[tokio::test]
async fn messages_and_acks_are_echoed_byte_for_byte() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.connect("/");
    client.text(r#"2["message",1,"2",{"3":[true]}]"#).unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"42["message-back",1,"2",{"3":[true]}]"#]
    );
    client
        .text(r#"2456["message-with-ack",1,"2",{"3":[false]}]"#)
        .unwrap();
    assert_eq!(client.transport.texts(), [r#"43456[1,"2",{"3":[false]}]"#]);
}

#[tokio::test]
async fn binary_events_and_acks_both_ways() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.connect("/");
    client
        .text(r#"52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .unwrap();
    assert_eq!(
        client.transport.sent_count(),
        0,
        "waits for the attachments"
    );
    client.binary(&[1, 2, 3]).unwrap();
    client.binary(&[4, 5, 6]).unwrap();
    let sent = client.transport.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].text().unwrap(),
        r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(sent[0].binaries(), [&[1u8, 2, 3][..], &[4, 5, 6][..]]);

    client
        .text(r#"52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .unwrap();
    client.binary(&[1, 2, 3]).unwrap();
    client.binary(&[4, 5, 6]).unwrap();
    let sent = client.transport.take();
    assert_eq!(
        sent[0].text().unwrap(),
        r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(sent[0].binaries().len(), 2);
}

#[tokio::test]
async fn binary_without_pending_packet_is_a_violation() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.connect("/");
    assert!(client.binary(&[1]).is_err());
    assert_eq!(
        client.transport.closed(),
        Some(CloseReason::ProtocolViolation)
    );
}

#[tokio::test]
async fn connect_timeout_closes_a_session_that_joins_nothing() {
    let broker = broker();
    let t0 = Instant::now();
    let transport = std::sync::Arc::new(support::FakeTransport::default());
    let mut conn = broker.on_engine_open(transport.clone(), EngineInfo::new("x"), t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    conn.handle_timeout(t0 + Duration::from_millis(999));
    assert_eq!(transport.closed(), None);
    conn.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(transport.closed(), Some(CloseReason::ConnectTimeout));
    assert_eq!(conn.poll_timeout(), None);
}

#[tokio::test]
async fn connect_timeout_is_cancelled_by_a_connect() {
    let broker = broker();
    let mut client = Client::open(&broker);
    client.connect("/custom");
    let deadline = client.conn.poll_timeout().unwrap();
    client.conn.handle_timeout(deadline);
    assert_eq!(client.transport.closed(), None);
    assert_eq!(client.conn.poll_timeout(), None);
}

#[tokio::test]
async fn middleware_refuses_with_message_and_data() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.connect_middleware(async |socket: SocketRef| {
                if socket.handshake().auth_raw().contains("ok") {
                    Ok(())
                } else {
                    Err(ConnectError::new("unauthorized").with_data(
                        serde_json::json!({"code": "UNAUTHORIZED", "reason": "missing"}),
                    ))
                }
            })
        })
        .build();
    let mut client = Client::open(&broker);
    client.text("0").unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"44{"message":"unauthorized","data":{"code":"UNAUTHORIZED","reason":"missing"}}"#]
    );
    assert_eq!(broker.namespace("/").unwrap().socket_count(), 0);
    // The client may try again in the same session.
    client.text(r#"0{"t":"ok"}"#).unwrap();
    assert!(client.transport.texts()[0].starts_with("40{"));
}

#[tokio::test]
async fn async_middleware_sees_the_handshake_and_sets_extensions() {
    #[derive(Clone, Debug, PartialEq)]
    struct User(String);
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.connect_middleware(async |socket: SocketRef, Data(auth): Data<serde_json::Value>| {
                tokio::task::yield_now().await;
                let hs = socket.handshake();
                assert_eq!(hs.header("user-agent"), Some("test"));
                assert_eq!(hs.query().get("token").map(String::as_str), Some("q"));
                assert!(hs.remote_addr().is_some());
                socket.insert_extension(User(auth["name"].as_str().unwrap().to_owned()));
                Ok(())
            })
            .on("whoami", async |socket: SocketRef, sockeye_broker::Extension(user): sockeye_broker::Extension<User>| {
                socket.emit("me", &user.0).unwrap();
            })
        })
        .build();
    let info = EngineInfo::new("s")
        .header("User-Agent", "test")
        .query([(String::from("token"), String::from("q"))].into())
        .remote_addr("127.0.0.1:9".parse().unwrap());
    let mut client = Client::open_with(&broker, info);
    client.text(r#"0{"name":"ada"}"#).unwrap();
    // The middleware suspended: the connect completes on the runtime.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(client.transport.texts()[0].starts_with("40{"));
    client.text(r#"2["whoami"]"#).unwrap();
    assert_eq!(client.transport.texts(), [r#"42["me","ada"]"#]);
}

#[tokio::test]
async fn dynamic_namespaces_share_handlers_and_are_distinct() {
    let broker = Broker::builder()
        .dynamic_namespace(NamespaceMatcher::glob("/org-*"), |ns| {
            ns.on("ping", async |socket: SocketRef| {
                socket.emit("pong", socket.namespace().name()).unwrap();
            })
        })
        .build();
    let mut client = Client::open(&broker);
    client.connect("/org-a");
    client.connect("/org-b");
    client.text(r#"2/org-b,["ping"]"#).unwrap();
    assert_eq!(client.transport.texts(), [r#"42/org-b,["pong","/org-b"]"#]);
    assert_eq!(broker.namespace("/org-a").unwrap().socket_count(), 1);
    client.text("0/other,").unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"44/other,{"message":"Invalid namespace"}"#]
    );
    assert!(broker.namespace("/other").is_none());
}

#[tokio::test]
async fn engine_close_disconnects_every_socket_with_its_reason() {
    let reasons = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.on_disconnect(move |socket: SocketRef, reason: DisconnectReason| {
                assert!(!socket.connected());
                seen.lock().unwrap().push(reason);
                std::future::ready(())
            })
        })
        .namespace("/b", |ns| ns)
        .build();
    let mut client = Client::open(&broker);
    client.connect("/");
    client.connect("/b");
    client.conn.on_engine_close(DisconnectReason::PingTimeout);
    assert_eq!(*reasons.lock().unwrap(), [DisconnectReason::PingTimeout]);
    assert_eq!(broker.namespace("/b").unwrap().socket_count(), 0);
    assert_eq!(DisconnectReason::PingTimeout.as_str(), "ping timeout");
}

#[tokio::test]
async fn server_disconnect_sends_disconnect_and_disconnect_all_closes() {
    let broker = Broker::builder()
        .namespace("/", |ns| ns)
        .namespace("/b", |ns| ns)
        .build();
    let mut client = Client::open(&broker);
    let id = client.connect("/");
    client.connect("/b");
    let ns = broker.namespace("/").unwrap();
    ns.socket(id).unwrap().disconnect();
    assert_eq!(client.transport.texts(), ["41"]);
    assert_eq!(client.transport.closed(), None);
    let b = broker.namespace("/b").unwrap();
    let socket = client.conn.sockets().pop().unwrap();
    socket.disconnect_all();
    assert_eq!(client.transport.texts(), ["41/b,"]);
    assert_eq!(client.transport.closed(), Some(CloseReason::Forced));
    assert_eq!(b.socket_count(), 0);
}

#[tokio::test]
async fn reserved_events_cannot_be_emitted() {
    let broker = broker();
    let mut client = Client::open(&broker);
    let id = client.connect("/");
    let socket = broker.namespace("/").unwrap().socket(id).unwrap();
    for event in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        assert_eq!(
            socket.emit(event, &1),
            Err(sockeye_broker::EmitError::ReservedEvent)
        );
        assert!(
            broker
                .namespace("/")
                .unwrap()
                .emit(event, &1)
                .await
                .is_err()
        );
    }
    assert!(client.transport.texts().is_empty());
}

#[tokio::test]
async fn dynamic_namespace_predicate_sees_the_handshake() {
    let broker = Broker::builder()
        .dynamic_namespace(
            NamespaceMatcher::predicate(|name, handshake| {
                name.starts_with("/tenant-") && handshake.auth_raw().contains("member")
            }),
            |ns| ns,
        )
        .build();
    let mut client = Client::open(&broker);
    client.text(r#"0/tenant-1,{"role":"guest"}"#).unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"44/tenant-1,{"message":"Invalid namespace"}"#]
    );
    client.text(r#"0/tenant-1,{"role":"member"}"#).unwrap();
    assert!(client.transport.texts()[0].starts_with(r#"40/tenant-1,{"sid":"#));
}

#[tokio::test]
async fn a_second_connect_while_the_first_is_pending_is_ignored() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.connect_middleware(async || {
                tokio::task::yield_now().await;
                Ok(())
            })
        })
        .build();
    let mut client = Client::open(&broker);
    client.text("0").unwrap();
    client.text("0").unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let texts = client.transport.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(broker.namespace("/").unwrap().socket_count(), 1);
}

#[tokio::test]
async fn a_session_closed_during_the_middleware_never_joins() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.connect_middleware(async || {
                tokio::task::yield_now().await;
                Ok(())
            })
        })
        .build();
    let mut client = Client::open(&broker);
    client.text("0").unwrap();
    client
        .conn
        .on_engine_close(DisconnectReason::TransportClose);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(client.transport.texts().is_empty());
    assert_eq!(broker.namespace("/").unwrap().socket_count(), 0);
}

#[tokio::test]
async fn server_side_events_reach_listeners_through_the_adapter_seam() {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = got.clone();
    let broker = Broker::builder()
        .namespace("/", move |ns| {
            ns.on_server_event("hello", move |event, ack| {
                log.lock().unwrap().push(event.args.clone());
                if let Some(ack) = ack {
                    ack.send(serde_json::json!({ "got": event.args }));
                }
            })
        })
        .build();
    let ns = broker.namespace("/").unwrap();
    // The in-memory adapter has no other node to ask, and the event never reaches this node.
    ns.server_side_emit("hello", vec![serde_json::json!(1)])
        .await
        .unwrap();
    let answers = ns
        .server_side_emit_with_ack("hello", vec![serde_json::json!(1)], Duration::from_secs(1))
        .await
        .unwrap();
    assert!(answers.is_empty());
    assert!(got.lock().unwrap().is_empty());
    // What a remote adapter calls when another node's event arrives.
    let local = ns.local_namespace();
    let (tx, rx) = std::sync::mpsc::channel();
    let event = sockeye_broker::ServerEvent::new("hello", vec![serde_json::json!("1")]);
    assert!(local.server_event(
        &event,
        Some(sockeye_broker::ServerAck::new(move |v| tx.send(v).unwrap()))
    ));
    assert_eq!(rx.recv().unwrap()["got"][0], "1");
    assert!(!local.server_event(&sockeye_broker::ServerEvent::new("nobody", vec![]), None));
}

#[tokio::test]
async fn empty_dynamic_namespaces_are_removed_and_come_back() {
    let broker = Broker::builder()
        .dynamic_namespace(NamespaceMatcher::glob("/room-*"), |ns| ns)
        .build();
    for i in 0..1000 {
        let mut client = Client::open(&broker);
        client.connect(&format!("/room-{i}"));
        client
            .conn
            .on_engine_close(DisconnectReason::TransportClose);
    }
    assert!(broker.namespaces().is_empty(), "no invented name is kept");
    let mut a = Client::open(&broker);
    let mut b = Client::open(&broker);
    a.connect("/room-x");
    b.connect("/room-x");
    a.text("1/room-x,").unwrap();
    assert_eq!(broker.namespace("/room-x").unwrap().socket_count(), 1);
    b.text("1/room-x,").unwrap();
    assert!(broker.namespace("/room-x").is_none());
    let kept = Broker::builder()
        .config(BrokerConfig::default().cleanup_empty_dynamic_namespaces(false))
        .dynamic_namespace(NamespaceMatcher::glob("/room-*"), |ns| ns)
        .build();
    let mut c = Client::open(&kept);
    c.connect("/room-y");
    c.text("1/room-y,").unwrap();
    assert!(kept.namespace("/room-y").is_some());
}
