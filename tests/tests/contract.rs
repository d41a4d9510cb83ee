//! APP-CONTRACT.md, event by event, over real sockets: a `sockeye_server::Server` with the
//! default application on loopback and a hand-written Socket.IO client.
#![allow(clippy::unwrap_used)]

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use serde_json::{Value, json};
use sockeye_server::app::AppConfig;
use sockeye_server::config::{CorsOrigins, RateLimit};
use sockeye_tests::app::{
    AppServer, Received, SioClient, assert_ack_error, assert_error, http, token,
};

fn assert_message(msg: &Value, content: &str, sub: &str, sid: &str, room: Option<&str>) {
    assert!(
        msg["id"].is_string() && !msg["id"].as_str().unwrap().is_empty(),
        "{msg}"
    );
    assert_eq!(msg["content"], json!(content), "{msg}");
    assert_eq!(msg["from"], json!({ "sub": sub, "sid": sid }), "{msg}");
    match room {
        Some(room) => assert_eq!(msg["room"], json!(room)),
        None => assert!(msg.get("room").is_none(), "{msg}"),
    }
    let ts = msg["ts"].as_u64().expect("ts in whole milliseconds");
    let now = sockeye_tests::app::now() * 1000;
    assert!(ts.abs_diff(now) < 60_000, "ts {ts} is the server's time");
}

#[tokio::test]
async fn message_without_room_is_echoed_to_the_sender_with_its_shape() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    let mut b = server.user("bob").await;
    a.emit(
        "message",
        &json!({ "content": "hello sockeye", "from": "forged", "id": 1 }),
    )
    .await;
    let msg = a.expect_event("message").await;
    assert_message(&msg, "hello sockeye", "ada", &a.sid, None);
    b.expect_nothing(200).await;
}

#[tokio::test]
async fn the_message_ack_carries_the_id_of_the_echo_and_ids_are_unique() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    let ack = a.ack("message", &json!({ "content": "with ack" })).await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    let msg = a.expect_event("message").await;
    assert_eq!(ack["id"], msg["id"]);
    let mut ids = vec![msg["id"].clone()];
    for i in 0..5 {
        a.emit("message", &json!({ "content": format!("m{i}") }))
            .await;
    }
    for i in 0..5 {
        let msg = a.expect_event("message").await;
        assert_eq!(msg["content"], json!(format!("m{i}")), "in order");
        assert!(!ids.contains(&msg["id"]), "unique ids");
        ids.push(msg["id"].clone());
    }
}

#[tokio::test]
async fn content_counts_code_points_up_to_the_configured_length() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    for content in ["x".to_owned(), "a".repeat(4096), "😀".repeat(4096)] {
        let ack = a.ack("message", &json!({ "content": content })).await;
        assert_eq!(
            ack["ok"],
            json!(true),
            "{} code points",
            content.chars().count()
        );
        assert_eq!(a.expect_event("message").await["content"], json!(content));
    }
    for content in [String::new(), "a".repeat(4097), "😀".repeat(4097)] {
        let ack = a.ack("message", &json!({ "content": content })).await;
        assert_ack_error(&ack, "VALIDATION", "message");
    }

    let small = AppServer::spawn_with(|b| {
        b.app(AppConfig::default().max_content_length(NonZeroUsize::new(16)))
    })
    .await;
    let mut a = small.user("ada").await;
    let ok = a
        .ack("message", &json!({ "content": "é".repeat(16) }))
        .await;
    assert_eq!(ok["ok"], json!(true));
    let _ = a.expect_event("message").await;
    let bad = a
        .ack("message", &json!({ "content": "é".repeat(17) }))
        .await;
    assert_ack_error(&bad, "VALIDATION", "message");
}

#[tokio::test]
async fn wrong_shapes_are_validation_errors_in_the_ack_or_as_error_events() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    let bad = [
        json!("hello"),
        json!(42),
        json!(null),
        json!([{ "content": "x" }]),
        json!({}),
        json!({ "content": 5 }),
        json!({ "content": { "text": "x" } }),
        json!({ "content": "x", "room": 5 }),
        json!({ "content": "x", "room": "" }),
        json!({ "content": "x", "room": "two words" }),
        json!({ "content": "x", "room": "r".repeat(129) }),
    ];
    for payload in &bad {
        let ack = a.ack("message", payload).await;
        assert_ack_error(&ack, "VALIDATION", "message");
    }
    for payload in &bad {
        a.emit("message", payload).await;
        let error = a.expect_event("error").await;
        assert_error(&error, "VALIDATION", Some("message"));
    }
    // No payload at all.
    a.send(r#"2["message"]"#).await;
    assert_error(
        &a.expect_event("error").await,
        "VALIDATION",
        Some("message"),
    );
    // A lone surrogate escape is valid JSON but no Unicode text: VALIDATION, and says why.
    a.send(r#"2900["message",{"content":"\ud800"}]"#).await;
    let ack = a.wait_ack(900).await;
    assert_ack_error(&ack, "VALIDATION", "message");
    assert!(
        ack["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("surrogate")),
        "{ack}"
    );
    // An error has no other effect, and the socket stays usable.
    a.expect_nothing(200).await;
    let ok = a.ack("message", &json!({ "content": "still here" })).await;
    assert_eq!(ok["ok"], json!(true));
}

#[tokio::test]
async fn unknown_events_are_unknown_event() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    a.emit("no-such-event", &json!({ "content": "x" })).await;
    assert_error(
        &a.expect_event("error").await,
        "UNKNOWN_EVENT",
        Some("no-such-event"),
    );
    let ack = a.ack("chat", &json!({ "content": "x" })).await;
    assert_ack_error(&ack, "UNKNOWN_EVENT", "chat");
    a.expect_nothing(200).await;
}

#[tokio::test]
async fn join_and_leave_acknowledge_with_room_and_size() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    let mut b = server.user("bob").await;
    assert_eq!(
        a.ack("join", &json!("lobby")).await,
        json!({ "ok": true, "room": "lobby", "size": 1 })
    );
    assert_eq!(
        b.ack("join", &json!({ "room": "lobby", "extra": 1 })).await,
        json!({ "ok": true, "room": "lobby", "size": 2 })
    );
    assert_eq!(
        b.ack("join", &json!("lobby")).await,
        json!({ "ok": true, "room": "lobby", "size": 2 }),
        "joining twice counts once"
    );
    assert_eq!(
        a.ack("leave", &json!("lobby")).await,
        json!({ "ok": true, "room": "lobby" })
    );
    assert_eq!(
        a.ack("leave", &json!({ "room": "never-joined" })).await,
        json!({ "ok": true, "room": "never-joined" })
    );
    b.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        a.ack("join", &json!("lobby")).await,
        json!({ "ok": true, "room": "lobby", "size": 1 }),
        "a disconnected socket has left its rooms"
    );
    for name in ["r".repeat(128), "Az09_-.:".to_owned()] {
        assert_eq!(a.ack("join", &json!(name)).await["ok"], json!(true));
    }
    for bad in [
        json!(""),
        json!("r".repeat(129)),
        json!("a/b"),
        json!("café"),
        json!(42),
        json!(null),
        json!(["lobby"]),
        json!({ "room": 42 }),
    ] {
        assert_ack_error(&a.ack("join", &bad).await, "VALIDATION", "join");
        assert_ack_error(&a.ack("leave", &bad).await, "VALIDATION", "leave");
    }
}

#[tokio::test]
async fn room_messages_reach_every_member_the_sender_too_and_nobody_else() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    let mut b = server.user("bob").await;
    let mut outsider = server.user("eve").await;
    a.ack("join", &json!("lobby")).await;
    b.ack("join", &json!("lobby")).await;
    let ack = a
        .ack(
            "message",
            &json!({ "content": "to the room", "room": "lobby" }),
        )
        .await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    let sender = a.sid.clone();
    for client in [&mut a, &mut b] {
        let msg = client.expect_event("message").await;
        assert_message(&msg, "to the room", "ada", &sender, Some("lobby"));
        assert_eq!(msg["id"], ack["id"], "one id for every member and the ack");
    }
    outsider.expect_nothing(200).await;

    // Not a member: NOT_IN_ROOM, and nobody receives it.
    let refused = outsider
        .ack(
            "message",
            &json!({ "content": "let me in", "room": "lobby" }),
        )
        .await;
    assert_ack_error(&refused, "NOT_IN_ROOM", "message");
    outsider
        .emit("message", &json!({ "content": "x", "room": "lobby" }))
        .await;
    assert_error(
        &outsider.expect_event("error").await,
        "NOT_IN_ROOM",
        Some("message"),
    );
    a.expect_nothing(200).await;
    b.expect_nothing(10).await;
}

#[tokio::test]
async fn the_socket_id_room_is_the_sockets_own() {
    let server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    let mut b = server.user("bob").await;
    let b_sid = b.sid.clone();
    assert_ack_error(&a.ack("join", &json!(b_sid)).await, "FORBIDDEN", "join");
    a.emit("join", &json!({ "room": b_sid })).await;
    assert_error(&a.expect_event("error").await, "FORBIDDEN", Some("join"));
    assert_ack_error(
        &a.ack("message", &json!({ "content": "x", "room": b_sid }))
            .await,
        "NOT_IN_ROOM",
        "message",
    );
    b.expect_nothing(100).await;

    // Its own id room: it is a member and may send there.
    let a_sid = a.sid.clone();
    let ack = a
        .ack("message", &json!({ "content": "to myself", "room": a_sid }))
        .await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    assert_eq!(a.expect_event("message").await["room"], json!(a_sid));

    // A name of the same shape that is no socket's id is an ordinary room.
    assert_eq!(
        a.ack("join", &json!("abcdefghijklmnopqrst")).await,
        json!({ "ok": true, "room": "abcdefghijklmnopqrst", "size": 1 })
    );
}

#[tokio::test]
async fn the_rate_limit_drops_with_rate_limited_and_cuts_floods() {
    let limit = RateLimit {
        per_second: NonZeroU32::new(2).unwrap(),
        burst: NonZeroU32::new(5).unwrap(),
    };
    let server = AppServer::spawn_with(|b| b.rate_limit(Some(limit))).await;
    let mut a = server.user("ada").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(a.emit_with_ack("join", &json!(format!("r{i}"))).await);
    }
    let mut ok = 0;
    for id in ids {
        let ack = a.wait_ack(id).await;
        if ack["ok"] == json!(true) {
            ok += 1;
        } else {
            assert_ack_error(&ack, "RATE_LIMITED", "join");
        }
    }
    assert!((5..=6).contains(&ok), "{ok} accepted");

    // Every event counts, unknown ones too; without an ack the error event names it.
    a.emit("whatever", &json!(1)).await;
    assert_error(
        &a.expect_event("error").await,
        "RATE_LIMITED",
        Some("whatever"),
    );

    // More than 100 drops within 10 s: the server disconnects the socket.
    let mut flood = server.user("mallory").await;
    for _ in 0..130 {
        flood.emit("message", &json!({ "content": "flood" })).await;
    }
    while let Received::Event(name, _) = flood.next().await {
        assert!(name == "message" || name == "error", "{name}");
    }
    // Another socket is not affected.
    let mut other = server.user("bob").await;
    assert_eq!(
        other.ack("message", &json!({ "content": "b" })).await["ok"],
        json!(true)
    );
}

#[tokio::test]
async fn the_rate_limit_is_off_with_none() {
    let server = AppServer::spawn_with(|b| b.rate_limit(None)).await;
    let mut a = server.user("ada").await;
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(a.emit_with_ack("message", &json!({ "content": "x" })).await);
    }
    for id in ids {
        assert_eq!(a.wait_ack(id).await["ok"], json!(true));
    }
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let server = AppServer::spawn_with(|b| b.max_connections_per_ip(NonZeroU32::new(2))).await;
    let first = server.user("a").await;
    let _second = server.user("b").await;
    let refused = SioClient::try_open(server.addr, "", &[]).await;
    assert!(refused.is_err(), "the third WebSocket session is refused");
    let polling = server.get("/socket.io/?EIO=4&transport=polling", &[]).await;
    assert_eq!(polling.status, 429, "the third polling session too");
    assert_eq!(polling.header("retry-after").as_deref(), Some("5"));
    // X-Forwarded-For is ignored without trust_proxy.
    let forwarded = server
        .get(
            "/socket.io/?EIO=4&transport=polling",
            &[("x-forwarded-for", "203.0.113.9")],
        )
        .await;
    assert_eq!(forwarded.status, 429);
    first.close().await;
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if server
            .get("/socket.io/?EIO=4&transport=polling", &[])
            .await
            .status
            == 200
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "closing a session makes room");

    // Behind a trusted proxy, the last X-Forwarded-For address counts.
    let proxied = AppServer::spawn_with(|b| {
        b.max_connections_per_ip(NonZeroU32::new(1))
            .trust_proxy(true)
    })
    .await;
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let r = proxied
            .get(
                "/socket.io/?EIO=4&transport=polling",
                &[("x-forwarded-for", ip)],
            )
            .await;
        assert_eq!(r.status, 200, "{ip}");
    }
    let again = proxied
        .get(
            "/socket.io/?EIO=4&transport=polling",
            &[("x-forwarded-for", "198.51.100.7, 203.0.113.1")],
        )
        .await;
    assert_eq!(again.status, 429);
}

#[tokio::test]
async fn cors_refuses_foreign_origins_and_allows_configured_ones() {
    let server = AppServer::spawn().await;
    let handshake = "/socket.io/?EIO=4&transport=polling";
    assert_eq!(server.get(handshake, &[]).await.status, 200);
    let foreign = server
        .get(handshake, &[("origin", "http://evil.example")])
        .await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.header("access-control-allow-origin").is_none());
    let same = format!("http://{}", server.addr);
    assert_eq!(
        server.get(handshake, &[("origin", &same)]).await.status,
        200
    );
    let ws = SioClient::try_open(server.addr, "", &[("origin", "http://evil.example")]).await;
    assert!(ws.is_err(), "a foreign WebSocket upgrade is refused");

    let listed =
        AppServer::spawn_with(|b| b.cors(CorsOrigins::List(vec!["http://app.example".to_owned()])))
            .await;
    let ok = listed
        .get(handshake, &[("origin", "http://app.example")])
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin").as_deref(),
        Some("http://app.example")
    );
    assert_eq!(
        listed
            .get(handshake, &[("origin", "http://app.example.evil")])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn http_endpoints_beside_socket_io() {
    let server = AppServer::spawn_with(|b| b.dev_token(Some("aaa.bbb.ccc".to_owned()))).await;
    assert_eq!(server.get("/healthz", &[]).await.status, 200);
    assert_eq!(server.get("/readyz", &[]).await.status, 200);
    let page = server.get("/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text();
    assert!(!html.contains("__SOCKEYE_DEV_TOKEN__"));
    assert!(html.contains(r#"value="aaa.bbb.ccc""#));
    let js = server.get("/vendor/socket.io.min.js", &[]).await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().contains("javascript"));
    assert_eq!(
        js.body.as_ref(),
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/vendor/socket.io.min.js"
        ))
        .unwrap()
    );
    assert_eq!(server.get("/nope", &[]).await.status, 404);

    // /metrics after some traffic.
    let mut a = server.user("ada").await;
    a.ack("join", &json!("metrics-room")).await;
    a.ack(
        "message",
        &json!({ "content": "count me", "room": "metrics-room" }),
    )
    .await;
    a.ack("message", &json!({ "content": "" })).await;
    let metrics = server.get("/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value(r#"sockeye_connections{transport="websocket"}"#), 1.0);
    assert_eq!(value(r#"sockeye_sockets{namespace="/"}"#), 1.0);
    assert_eq!(value("sockeye_rooms"), 1.0);
    assert_eq!(value(r#"sockeye_errors_total{code="VALIDATION"}"#), 1.0);
    assert!(value("sockeye_events_received_total") >= 3.0);
    assert!(value("sockeye_events_sent_total") >= 1.0);
    assert!(value("sockeye_bytes_received_total") > 0.0);
    assert!(value("sockeye_bytes_sent_total") > 0.0);
    assert_eq!(value("sockeye_broadcast_fanout_count"), 1.0);
}

#[tokio::test]
async fn graceful_shutdown_tells_clients_and_finishes() {
    let mut server = AppServer::spawn().await;
    let mut a = server.user("ada").await;
    let addr = server.addr;
    let shutdown = tokio::spawn(async move {
        server.shutdown().await;
        server
    });
    assert_eq!(a.next().await, Received::Closed, "the session is closed");
    let _server = shutdown.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn polling_clients_get_the_same_application() {
    let server = AppServer::spawn().await;
    let open = server.get("/socket.io/?EIO=4&transport=polling", &[]).await;
    let open: Value = serde_json::from_str(&open.text()[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let auth = json!({ "token": token("polly", 3600) });
    let post = http(server.addr, "POST", &path, &[], format!("40{auth}")).await;
    assert_eq!(post.status, 200);
    let connected = http(server.addr, "GET", &path, &[], "").await.text();
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    let event = format!("42{}", json!(["message", { "content": "over polling" }]));
    http(server.addr, "POST", &path, &[], event).await;
    let echoed = http(server.addr, "GET", &path, &[], "").await.text();
    let args: Value = serde_json::from_str(&echoed[2..]).unwrap();
    assert_eq!(args[0], json!("message"));
    assert_eq!(args[1]["content"], json!("over polling"));
    assert_eq!(args[1]["from"]["sub"], json!("polly"));
}

#[tokio::test]
async fn nothing_is_left_behind_after_many_sessions() {
    let server = AppServer::spawn_with(|b| b.max_connections_per_ip(None)).await;
    for i in 0..300 {
        let mut a = server.user(&format!("u{i}")).await;
        a.ack("join", &json!(format!("room-{}", i % 7))).await;
        if i % 3 == 0 {
            a.ack(
                "message",
                &json!({ "content": "x", "room": format!("room-{}", i % 7) }),
            )
            .await;
        }
        a.close().await;
    }
    let engine = server.server.engine().clone();
    let broker = server.server.broker().clone();
    let mut left = usize::MAX;
    for _ in 0..100 {
        let ns = broker.namespace("/").unwrap();
        left = engine.session_count() + ns.socket_count() + ns.room_count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "sessions, sockets and rooms left behind");
    let metrics = server.get("/metrics", &[]).await.text();
    assert!(
        metrics.contains("sockeye_connections{transport=\"websocket\"} 0"),
        "{metrics}"
    );
}
