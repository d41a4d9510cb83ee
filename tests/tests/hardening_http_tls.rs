//! Hardening, category A (issue 14), TLS: garbage instead of a TLS handshake, and certificate
//! reload without a restart (SIGHUP), checked with two self-signed certificates made here.
//!
//! This file is its own test process: the SIGHUP it sends itself reaches only this process.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use sockeye_server::config::TlsFiles;
use sockeye_tests::app::AppServer;
use sockeye_tests::eio::WAIT;
use sockeye_tests::raw_http::{RawConn, parse_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

struct Certs {
    dir: PathBuf,
    files: TlsFiles,
}

impl Certs {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sockeye-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        Self { dir, files }
    }

    /// Writes a fresh self-signed certificate for `localhost`; returns it (DER) for a client.
    fn write_new(&self) -> CertificateDer<'static> {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        write_atomically(&self.files.cert, &cert.cert.pem());
        write_atomically(&self.files.key, &cert.signing_key.serialize_pem());
        cert.cert.der().clone()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A TLS client that trusts only `cert`.
async fn connect_trusting(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// One keep-alive request on `tls`; the status of the answer.
async fn get_status(tls: &mut TlsStream<TcpStream>, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        if let Some((response, _)) = parse_response(&buf) {
            return response.status;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, tls.read(&mut chunk))
            .await
            .expect("answer in time")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Served over TLS with `cert`: a handshake of the Engine.IO session works.
async fn assert_alive(addr: SocketAddr, cert: &CertificateDer<'static>) {
    let mut tls = connect_trusting(addr, cert).await.unwrap();
    assert_eq!(
        get_status(&mut tls, "/socket.io/?EIO=4&transport=polling").await,
        200
    );
}

#[tokio::test]
async fn garbage_instead_of_a_tls_handshake_is_dropped() {
    let certs = Certs::new("garbage");
    let cert = certs.write_new();
    let files = certs.files.clone();
    let server = AppServer::spawn_with(|b| b.tls(Some(files))).await;
    let cases: &[&[u8]] = &[
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x16\x03\x01\x00\x05hello",
        // A record header that announces a 64 KiB record (over the TLS limit of 16 KiB + 2 KiB).
        b"\x16\x03\x01\xff\xff",
        // An alert record, then nothing.
        b"\x15\x03\x03\x00\x02\x02\x28",
        &[0u8; 64],
        &[0xffu8; 4096],
    ];
    for garbage in cases {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(garbage).await;
        assert!(
            conn.closed_within(WAIT).await,
            "{garbage:?}: connection closed"
        );
        // Nothing that looks like an HTTP answer: the TLS layer never handed it on.
        assert!(
            !conn.unparsed().starts_with(b"HTTP/"),
            "{garbage:?}: {:?}",
            conn.unparsed()
        );
        assert_alive(server.addr, &cert).await;
    }
    // A client that trusts another certificate fails its handshake; the server is unharmed.
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    assert!(
        connect_trusting(server.addr, stranger.cert.der())
            .await
            .is_err()
    );
    assert_alive(server.addr, &cert).await;
}

#[tokio::test]
async fn the_certificate_is_reloaded_on_sighup_without_a_restart() {
    let certs = Certs::new("reload");
    let first = certs.write_new();
    let files = certs.files.clone();
    let server = AppServer::spawn_with(|b| b.tls(Some(files))).await;
    tokio::spawn(server.server.clone().reload_tls_on_sighup());
    // Let the signal handler task register before the signal is sent: it is registered by
    // the time it answers a reload request; `reload_tls` itself needs no signal.
    assert!(server.server.reload_tls().unwrap(), "TLS is on");
    let mut kept = connect_trusting(server.addr, &first).await.unwrap();
    assert_eq!(get_status(&mut kept, "/healthz").await, 200);

    let second = certs.write_new();
    let pid = std::process::id().to_string();
    // The handler task may not have run yet: repeat the signal until the new certificate is
    // served (each SIGHUP only re-reads the files, so repeats are harmless).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
        if let Ok(mut tls) = connect_trusting(server.addr, &second).await {
            assert_eq!(get_status(&mut tls, "/healthz").await, 200);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New connections no longer get the first certificate ...
    assert!(connect_trusting(server.addr, &first).await.is_err());
    // ... while the connection made with it goes on.
    assert_eq!(get_status(&mut kept, "/healthz").await, 200);

    // Files that do not load (a key that does not fit) are refused; the certificate in use
    // stays.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    write_atomically(&certs.files.key, &other.signing_key.serialize_pem());
    let error = server.server.reload_tls().unwrap_err().to_string();
    assert!(error.contains("--tls-key"), "{error}");
    std::fs::write(&certs.files.cert, "not a certificate").unwrap();
    assert!(server.server.reload_tls().is_err());
    assert_alive(server.addr, &second).await;
}
