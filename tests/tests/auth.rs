//! APP-CONTRACT "Authentication" over real sockets: the three token sources and their order,
//! every refusal reason as a CONNECT_ERROR, expiry while connected, the `auth` refresh, and TLS.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sockeye_auth::{Algorithm, MintClaims};
use sockeye_server::config::{JwtSettings, TlsFiles};
use sockeye_tests::app::{
    AppServer, OTHER_SECRET, Received, SECRET, assert_ack_error, assert_error, now, sign, token,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn refusal(reason: &str) -> Value {
    json!({ "message": "unauthorized", "data": { "code": "UNAUTHORIZED", "reason": reason } })
}

fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// A correctly signed HS256 token with arbitrary claims (odd types included).
fn with_claims(claims: &Value) -> String {
    // Minting once installs jsonwebtoken's crypto provider.
    let _ = token("x", 60);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).unwrap()
}

#[tokio::test]
async fn each_token_source_is_accepted() {
    let server = AppServer::spawn().await;
    let t = token("ada", 3600);
    let auth = server
        .connect(Some(json!({ "token": t })), "", &[])
        .await
        .unwrap();
    let header = format!("Bearer {t}");
    let lower = format!("bearer {t}");
    let by_header = server
        .connect(None, "", &[("authorization", &header)])
        .await
        .unwrap();
    let by_lower = server
        .connect(None, "", &[("authorization", &lower)])
        .await
        .unwrap();
    let by_query = server
        .connect(None, &format!("token={t}"), &[])
        .await
        .unwrap();
    for mut client in [auth, by_header, by_lower, by_query] {
        client.emit("message", &json!({ "content": "hi" })).await;
        assert_eq!(
            client.expect_event("message").await["from"]["sub"],
            json!("ada")
        );
    }
}

#[tokio::test]
async fn the_first_present_source_decides() {
    let server = AppServer::spawn().await;
    let good = token("ada", 3600);
    let bad = sign(OTHER_SECRET, &MintClaims::new("ada", now() + 3600));
    let good_header = format!("Bearer {good}");
    let bad_header = format!("Bearer {bad}");
    // auth.token wins over a bad header and query.
    assert!(
        server
            .connect(
                Some(json!({ "token": good })),
                &format!("token={bad}"),
                &[("authorization", &bad_header)]
            )
            .await
            .is_ok()
    );
    // An invalid auth.token is refused even with a valid header.
    assert_eq!(
        server
            .connect(
                Some(json!({ "token": bad })),
                "",
                &[("authorization", &good_header)]
            )
            .await
            .unwrap_err(),
        refusal("bad_signature")
    );
    // The header wins over a bad query; a bad header is not replaced by a good query.
    assert!(
        server
            .connect(
                None,
                &format!("token={bad}"),
                &[("authorization", &good_header)]
            )
            .await
            .is_ok()
    );
    assert_eq!(
        server
            .connect(
                None,
                &format!("token={good}"),
                &[("authorization", &bad_header)]
            )
            .await
            .unwrap_err(),
        refusal("bad_signature")
    );
    // auth.token null is absent; other schemes are ignored; an empty ?token= is no source.
    assert!(
        server
            .connect(
                Some(json!({ "token": null })),
                &format!("token={good}"),
                &[("authorization", "Basic dXNlcjpwYXNz")]
            )
            .await
            .is_ok()
    );
    assert_eq!(
        server.connect(None, "token=", &[]).await.unwrap_err(),
        refusal("missing")
    );
    // Present but empty: malformed.
    assert_eq!(
        server
            .connect(Some(json!({ "token": "" })), &format!("token={good}"), &[])
            .await
            .unwrap_err(),
        refusal("malformed")
    );
    assert_eq!(
        server
            .connect(Some(json!({ "token": 5 })), "", &[])
            .await
            .unwrap_err(),
        refusal("malformed")
    );
    assert_eq!(
        server
            .connect(None, "", &[("authorization", "Bearer")])
            .await
            .unwrap_err(),
        refusal("malformed")
    );
}

#[tokio::test]
async fn every_refusal_reason_is_a_connect_error() {
    let server = AppServer::spawn().await;
    let t = now();
    let cases: Vec<(&str, String)> = vec![
        ("missing", String::new()),
        ("malformed", "not-a-jwt".to_owned()),
        ("malformed", with_claims(&json!({ "sub": "ada" }))),
        (
            "malformed",
            with_claims(&json!({ "sub": "ada", "exp": "soon" })),
        ),
        (
            "malformed",
            with_claims(&json!({ "sub": "ada", "exp": t + 60, "nbf": "x" })),
        ),
        (
            "bad_signature",
            sign(OTHER_SECRET, &MintClaims::new("ada", t + 60)),
        ),
        ("expired", sign(SECRET, &MintClaims::new("ada", t - 1))),
        (
            "not_yet_valid",
            with_claims(&json!({ "sub": "ada", "exp": t + 600, "nbf": t + 300 })),
        ),
        (
            "bad_algorithm",
            sign(
                SECRET,
                &MintClaims::new("ada", t + 60).algorithm(Algorithm::HS512),
            ),
        ),
        (
            "bad_algorithm",
            unsigned(&json!({ "sub": "ada", "exp": t + 60 })),
        ),
    ];
    for (reason, token) in cases {
        let auth = (!token.is_empty()).then(|| json!({ "token": token }));
        let refused = server.connect(auth, "", &[]).await.unwrap_err();
        assert_eq!(refused, refusal(reason), "{reason}");
    }
    // nbf in the past is fine.
    assert!(
        server
            .connect(
                Some(json!({ "token": with_claims(&json!({ "sub": "a", "exp": t + 60, "nbf": t - 60 })) })),
                "",
                &[]
            )
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn issuer_audience_and_leeway() {
    let jwt = JwtSettings {
        secret: Some(SECRET.to_owned()),
        issuer: Some("https://issuer.test".to_owned()),
        audience: Some("sockeye".to_owned()),
        leeway: Duration::from_secs(5),
        ..JwtSettings::default()
    };
    let server = AppServer::spawn_with(|b| b.jwt(jwt)).await;
    let t = now();
    let claims = |exp: u64| {
        MintClaims::new("ada", exp)
            .issuer("https://issuer.test")
            .audience("sockeye")
    };
    let ok = sign(SECRET, &claims(t + 60));
    assert!(
        server
            .connect(Some(json!({ "token": ok })), "", &[])
            .await
            .is_ok()
    );
    let inside_leeway = sign(SECRET, &claims(t - 2));
    assert!(
        server
            .connect(Some(json!({ "token": inside_leeway })), "", &[])
            .await
            .is_ok()
    );
    let cases = [
        ("expired", sign(SECRET, &claims(t - 60))),
        (
            "bad_issuer",
            sign(
                SECRET,
                &MintClaims::new("ada", t + 60)
                    .issuer("https://other.test")
                    .audience("sockeye"),
            ),
        ),
        (
            "bad_audience",
            sign(
                SECRET,
                &MintClaims::new("ada", t + 60)
                    .issuer("https://issuer.test")
                    .audience("other"),
            ),
        ),
        (
            "malformed",
            sign(
                SECRET,
                &MintClaims::new("ada", t + 60).issuer("https://issuer.test"),
            ),
        ),
    ];
    for (reason, token) in cases {
        let refused = server
            .connect(Some(json!({ "token": token })), "", &[])
            .await
            .unwrap_err();
        assert_eq!(refused, refusal(reason), "{reason}");
    }
}

#[tokio::test]
async fn an_expiring_token_gets_token_expired_then_a_server_disconnect() {
    let server = AppServer::spawn().await;
    let short = sign(SECRET, &MintClaims::new("ada", now() + 2));
    let mut a = server
        .connect(Some(json!({ "token": short })), "", &[])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(5), a.expect_event("error"))
        .await
        .expect("TOKEN_EXPIRED in time");
    assert_error(&error, "TOKEN_EXPIRED", None);
    assert_eq!(a.next().await, Received::Disconnect);
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn a_fresh_token_moves_the_expiry_and_a_bad_one_does_not() {
    let server = AppServer::spawn().await;
    let t = now();
    let mut a = server
        .connect(
            Some(json!({ "token": sign(SECRET, &MintClaims::new("ada", t + 2)) })),
            "",
            &[],
        )
        .await
        .unwrap();
    let exp = t + 3600;
    let fresh = sign(SECRET, &MintClaims::new("ada", exp));
    assert_eq!(
        a.ack("auth", &json!({ "token": fresh })).await,
        json!({ "ok": true, "exp": exp })
    );
    a.expect_nothing(3000).await;
    assert_eq!(
        a.ack("message", &json!({ "content": "still here" })).await["ok"],
        json!(true)
    );

    // Refused refreshes keep the old expiry and the connection.
    let mut b = server
        .connect(
            Some(json!({ "token": sign(SECRET, &MintClaims::new("bob", now() + 2)) })),
            "",
            &[],
        )
        .await
        .unwrap();
    let other_sub = sign(SECRET, &MintClaims::new("eve", now() + 3600));
    let ack = b.ack("auth", &json!({ "token": other_sub })).await;
    assert_ack_error(&ack, "UNAUTHORIZED", "auth");
    assert_eq!(ack["error"]["reason"], json!("sub_mismatch"));
    assert!(!ack.to_string().contains(&other_sub), "no token echoed");
    let bad = sign(OTHER_SECRET, &MintClaims::new("bob", now() + 3600));
    let ack = b.ack("auth", &json!({ "token": bad })).await;
    assert_eq!(ack["error"]["reason"], json!("bad_signature"));
    b.emit("auth", &json!({ "token": "not-a-jwt" })).await;
    let error = b.expect_event("error").await;
    assert_error(&error, "UNAUTHORIZED", Some("auth"));
    assert_eq!(error["reason"], json!("malformed"));
    assert_ack_error(
        &b.ack("auth", &json!("just a string")).await,
        "VALIDATION",
        "auth",
    );
    // The old expiry stands.
    let error = tokio::time::timeout(Duration::from_secs(5), b.expect_event("error"))
        .await
        .expect("TOKEN_EXPIRED in time");
    assert_error(&error, "TOKEN_EXPIRED", None);
    assert_eq!(b.next().await, Received::Disconnect);
}

#[tokio::test]
async fn tls_serves_https_with_a_certificate_the_test_made() {
    let dir = std::env::temp_dir().join(format!("sockeye-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let server = AppServer::spawn_with(|b| {
        b.tls(Some(TlsFiles {
            cert: cert_path.clone(),
            key: key_path.clone(),
        }))
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("0{\"sid\":"), "{response}");

    // Plain HTTP on the TLS port gets no session.
    let plain = sockeye_tests::eio::try_http(server.addr, "GET", "/healthz", &[], "").await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status != 200));
    std::fs::remove_dir_all(&dir).unwrap();
}
