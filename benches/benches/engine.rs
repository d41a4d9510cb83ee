//! Engine benches on loopback: a long-polling round trip (POST a message, GET its echo) and a
//! WebSocket echo (one message at a time, and pipelined batches), through the real hyper
//! service and WebSocket driver. Throughput is in messages.
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sockeye_codec::{Outgoing, Utf8Bytes};
use sockeye_engine::{CloseReason, Engine, EngineConfig, Handler, HandshakeInfo, SessionHandle};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;

struct Echo;

impl Handler for Echo {
    fn on_open(&self, _session: &SessionHandle, _request: &HandshakeInfo) {}
    fn on_message(&self, session: &SessionHandle, text: Utf8Bytes) {
        let _ = session.send(Outgoing::message_text(text.as_str()));
    }
    fn on_binary(&self, session: &SessionHandle, data: Bytes) {
        let _ = session.send(Outgoing::binary(data));
    }
    fn on_close(&self, _session: &SessionHandle, _reason: CloseReason) {}
}

fn server(rt: &Runtime) -> SocketAddr {
    rt.block_on(async {
        let engine = Engine::new(EngineConfig::default().path("/engine.io/"), Echo);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { engine.serve(listener, std::future::pending()).await });
        addr
    })
}

async fn connection(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    uri: &str,
    body: &'static [u8],
) -> Bytes {
    sender.ready().await.unwrap();
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "bench")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap().to_bytes()
}

fn polling(c: &mut Criterion, rt: &Runtime, addr: SocketAddr) {
    let (mut post, mut get, uri) = rt.block_on(async {
        let mut get = connection(addr).await;
        let open = request(&mut get, "GET", "/engine.io/?EIO=4&transport=polling", b"").await;
        let json: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
        let uri = format!(
            "/engine.io/?EIO=4&transport=polling&sid={}",
            json["sid"].as_str().unwrap()
        );
        (connection(addr).await, get, uri)
    });
    let mut group = c.benchmark_group("engine/polling");
    group.throughput(Throughput::Elements(1));
    group.bench_function("round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let ok = request(&mut post, "POST", &uri, b"4hello").await;
                    assert_eq!(&ok[..], b"ok");
                    let mut body = request(&mut get, "GET", &uri, b"").await;
                    // A ping may share the body (default interval 25 s: rare).
                    while body.as_ref() == b"2" {
                        request(&mut post, "POST", &uri, b"3").await;
                        body = request(&mut get, "GET", &uri, b"").await;
                    }
                    assert_eq!(&body[..], b"4hello");
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn websocket(c: &mut Criterion, rt: &Runtime, addr: SocketAddr) {
    let mut ws = rt.block_on(async {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        let open = ws.next().await.unwrap().unwrap();
        assert!(open.to_text().unwrap().starts_with('0'));
        ws
    });
    let mut group = c.benchmark_group("engine/websocket");
    group.throughput(Throughput::Elements(1));
    group.bench_function("echo", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    ws.send(Message::text("4hello")).await.unwrap();
                    next_echo(&mut ws).await;
                }
                start.elapsed()
            })
        });
    });
    const BATCH: u64 = 100;
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("echo_pipelined_100", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..BATCH {
                        ws.feed(Message::text("4hello")).await.unwrap();
                    }
                    ws.flush().await.unwrap();
                    for _ in 0..BATCH {
                        next_echo(&mut ws).await;
                    }
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

async fn next_echo<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) if t.as_str() == "4hello" => return,
            Message::Text(t) if t.as_str() == "2" => ws.send(Message::text("3")).await.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = server(&rt);
    polling(c, &rt, addr);
    websocket(c, &rt, addr);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = engine
}
criterion_main!(benches);
