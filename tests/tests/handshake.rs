//! Handshakes on both transports, the reference error codes, the handshake hook and CORS.
#![allow(clippy::unwrap_used)]

use sockeye_engine::EngineConfig;
use sockeye_engine::server::{Cors, Refusal};
use sockeye_tests::eio::{PollingClient, Seen, TestServer, WsClient, http, uri};

#[tokio::test]
async fn polling_open_packet_has_exactly_the_reference_keys() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let response = http(server.addr, "GET", &uri("EIO=4&transport=polling"), &[], "").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type").unwrap(),
        "text/plain; charset=UTF-8"
    );
    let text = response.text();
    let json: serde_json::Value = serde_json::from_str(text.strip_prefix('0').unwrap()).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert_eq!(json["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(json["pingInterval"], 25000);
    assert_eq!(json["pingTimeout"], 20000);
    assert_eq!(json["maxPayload"], 1_000_000);
}

#[tokio::test]
async fn sids_are_long_url_safe_and_unique() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let mut sids = std::collections::HashSet::new();
    for _ in 0..50 {
        let client = server.polling().await;
        // 22 base64 characters = 132 bits of text for 128 random bits.
        assert_eq!(client.sid.len(), 22);
        assert!(
            client
                .sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(sids.insert(client.sid));
    }
}

#[tokio::test]
async fn websocket_open_packet_offers_no_upgrades() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (_ws, open) = server.websocket().await;
    assert_eq!(open["upgrades"], serde_json::json!([]));
    assert_eq!(open.as_object().unwrap().len(), 5);
}

#[tokio::test]
async fn reference_error_codes() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let addr = server.addr;
    let cases: &[(&str, &str, u16, i64)] = &[
        ("GET", "transport=polling", 400, 5),
        ("GET", "EIO=3&transport=polling", 400, 5),
        ("GET", "EIO=abc&transport=polling", 400, 5),
        ("GET", "EIO=4", 400, 0),
        ("GET", "EIO=4&transport=abc", 400, 0),
        ("POST", "EIO=4&transport=polling", 400, 2),
        ("PUT", "EIO=4&transport=polling", 400, 2),
        ("GET", "EIO=4&transport=polling&sid=unknown", 400, 1),
        (
            "GET",
            "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAA",
            400,
            1,
        ),
        // A WebSocket handshake that is not an upgrade request.
        ("GET", "EIO=4&transport=websocket", 400, 3),
    ];
    for (method, query, status, code) in cases {
        let response = http(addr, method, &uri(query), &[], "").await;
        assert_eq!(response.status, *status, "{method} {query}");
        assert_eq!(response.header("content-type").unwrap(), "application/json");
        assert_eq!(
            response.error_code(),
            *code,
            "{method} {query}: {}",
            response.text()
        );
    }
    let response = http(addr, "GET", "/elsewhere/?EIO=4&transport=polling", &[], "").await;
    assert_eq!(response.status, 404);
    // Without the trailing slash the path matches too.
    let response = http(addr, "GET", "/engine.io?EIO=4&transport=polling", &[], "").await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn websocket_handshake_errors() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    for query in [
        "transport=websocket",
        "EIO=abc&transport=websocket",
        "EIO=4&transport=abc",
    ] {
        let err = WsClient::connect(server.addr, query).await.unwrap_err();
        assert!(err.to_string().contains("400"), "{query}: {err}");
    }
    let err = WsClient::connect(server.addr, "EIO=4&transport=websocket&sid=nope")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn the_hook_sees_the_request_and_may_refuse_it() {
    let server = TestServer::builder(EngineConfig::default())
        .hook(|info| {
            if info.query("token") == Some("bad") {
                Err(Refusal::new("invalid \"token\""))
            } else {
                Ok(())
            }
        })
        .spawn()
        .await;
    let refused = http(
        server.addr,
        "GET",
        &uri("EIO=4&transport=polling&token=bad"),
        &[],
        "",
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error_code(), 4);
    let json: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(json["message"], "invalid \"token\"");
    assert!(
        server.seen().is_empty(),
        "no session may exist for a refused handshake"
    );
    assert_eq!(server.engine.session_count(), 0);

    let err = WsClient::connect(server.addr, "EIO=4&transport=websocket&token=bad")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");

    let accepted = http(
        server.addr,
        "GET",
        &uri("EIO=4&transport=polling&token=good"),
        &[("authorization", "Bearer abc"), ("x-custom", "1")],
        "",
    )
    .await;
    assert_eq!(accepted.status, 200);
    let infos = server.handshakes();
    let info = infos.last().unwrap();
    assert_eq!(info.method(), http::Method::GET);
    assert_eq!(info.query("token"), Some("good"));
    assert_eq!(info.headers()["authorization"], "Bearer abc");
    assert_eq!(info.remote_addr().unwrap().ip(), server.addr.ip());
    assert!(matches!(server.seen()[0], Seen::Open(_)));
}

#[tokio::test]
async fn cors_default_refuses_foreign_origins_and_adds_no_headers() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let q = uri("EIO=4&transport=polling");
    let plain = http(server.addr, "GET", &q, &[], "").await;
    assert_eq!(plain.status, 200);
    assert!(plain.header("access-control-allow-origin").is_none());
    let foreign = http(
        server.addr,
        "GET",
        &q,
        &[("origin", "https://evil.example")],
        "",
    )
    .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.error_code(), 4);
    // Same origin always works.
    let host = format!("http://{}", server.addr);
    let same = http(server.addr, "GET", &q, &[("origin", &host)], "").await;
    assert_eq!(same.status, 200);
    // The WebSocket upgrade is checked too.
    let err = WsClient::connect_with(
        server.addr,
        "EIO=4&transport=websocket",
        &[("origin", "https://evil.example")],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test]
async fn cors_allowed_origins_and_preflight() {
    let config =
        EngineConfig::default().cors(Cors::origins(["https://app.example"]).credentials(true));
    let server = TestServer::spawn(config).await;
    let q = uri("EIO=4&transport=polling");
    let origin = [("origin", "https://app.example")];
    let allowed = http(server.addr, "GET", &q, &origin, "").await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin").unwrap(),
        "https://app.example"
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials").unwrap(),
        "true"
    );
    let preflight = http(
        server.addr,
        "OPTIONS",
        &q,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-headers", "content-type"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin").unwrap(),
        "https://app.example"
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers").unwrap(),
        "content-type"
    );
    let refused = http(
        server.addr,
        "OPTIONS",
        &q,
        &[("origin", "https://other.example")],
        "",
    )
    .await;
    assert_eq!(refused.status, 403);
    // A polling session carries the headers on every request.
    let client = PollingClient::open(server.addr).await;
    let post = http(server.addr, "POST", &uri(&client.query()), &origin, "4hi").await;
    assert_eq!(post.status, 200);
    assert_eq!(
        post.header("access-control-allow-origin").unwrap(),
        "https://app.example"
    );
}

#[tokio::test]
async fn cors_any() {
    let server = TestServer::spawn(EngineConfig::default().cors(Cors::any())).await;
    let r = http(
        server.addr,
        "GET",
        &uri("EIO=4&transport=polling"),
        &[("origin", "https://anything.example")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin").unwrap(), "*");
}
