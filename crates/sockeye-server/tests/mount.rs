//! `Server` mounted in an axum application: axum's own routes and sockeye's, one listener.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sockeye_server::Server;
use sockeye_server::config::JwtSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response
}

#[tokio::test]
async fn mounts_as_an_axum_fallback_service() {
    let server = Server::builder()
        .jwt(JwtSettings {
            secret: Some("sockeye-mount-test-secret-0123456789abcdef".to_owned()),
            ..JwtSettings::default()
        })
        .build()
        .unwrap();
    server.start();
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(async || "hello from axum"))
        .fallback_service(server);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let hello = get(addr, "/hello").await;
    assert!(hello.ends_with("hello from axum"), "{hello}");
    let health = get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let open = get(addr, "/socket.io/?EIO=4&transport=polling").await;
    assert!(open.starts_with("HTTP/1.1 200"), "{open}");
    assert!(open.contains(r#"0{"sid":""#), "{open}");
    assert!(open.contains(r#""upgrades":["websocket"]"#), "{open}");
}
