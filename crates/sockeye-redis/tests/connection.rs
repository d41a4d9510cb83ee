//! The connection layer on a real `redis-server`: subscriptions confirmed and delivered,
//! NUMSUB, the byte-bounded queue, and a Redis restart (SIGKILL, restarted on the same port):
//! resubscribed exactly once, publishing resumes, the reconnect is counted.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sockeye_redis::{Message, RedisConfig, RedisConnection, Subscription};
use support::redis::RedisServer;
use tokio::sync::mpsc;

/// A `redis-server` restarted on a given port (after the first one was killed), stopped by PID.
struct Restarted(Child);

impl Restarted {
    fn start(port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sockeye-redis-restart-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server cannot run; install the redis-server package");
        let restarted = Self(child);
        for _ in 0..500 {
            if answers_ping(port) {
                return restarted;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not restart on port {port}");
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok()
        && matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

fn config(server_url: &str) -> RedisConfig {
    RedisConfig::new(server_url)
        .ping_interval(Duration::from_millis(200))
        .max_reconnect_delay(Duration::from_millis(200))
}

fn forwarder() -> (
    Arc<dyn Fn(Message) + Send + Sync>,
    mpsc::UnboundedReceiver<Message>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(move |m| drop(tx.send(m))), rx)
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_deliver_and_count_once() {
    let server = RedisServer::start();
    let a = RedisConnection::connect(config(&server.url()))
        .await
        .unwrap();
    let b = RedisConnection::connect(config(&server.url()))
        .await
        .unwrap();
    let (handler, mut rx) = forwarder();
    a.subscribe(Subscription::Channel("req#/#".into()), handler.clone());
    a.subscribe(Subscription::Pattern("bc#/#*".into()), handler.clone());
    // Registering the same subscription again must not make a second subscriber.
    a.subscribe(Subscription::Channel("req#/#".into()), handler);
    until("ready", async || a.is_ready()).await;
    assert_eq!(b.numsub("req#/#").await.unwrap(), 1);
    b.publish("req#/#".into(), b"one".to_vec()).unwrap();
    b.publish("bc#/#room#".into(), b"two".to_vec()).unwrap();
    let first = rx.recv().await.unwrap();
    assert_eq!(
        (first.channel.as_str(), &first.payload[..]),
        ("req#/#", &b"one"[..])
    );
    let second = rx.recv().await.unwrap();
    assert_eq!(
        (second.channel.as_str(), &second.payload[..]),
        ("bc#/#room#", &b"two"[..])
    );
    a.unsubscribe(&Subscription::Channel("req#/#".into()));
    until("unsubscribed", async || {
        b.numsub("req#/#").await.unwrap() == 0
    })
    .await;
    let metrics = b.metrics();
    assert_eq!(metrics.published, 2);
    assert_eq!(a.metrics().received, 2);
    a.close();
    b.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outgoing_queue_is_bounded_and_drops_are_counted() {
    let mut server = RedisServer::start();
    let connection = RedisConnection::connect(config(&server.url()).max_queued_bytes(1000))
        .await
        .unwrap();
    server.stop();
    until("publisher down", async || !connection.is_ready()).await;
    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..50 {
        match connection.publish("ch".into(), vec![0; 98]) {
            Ok(()) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    // 100 bytes each against a 1000-byte bound.
    assert!(accepted <= 10, "{accepted}");
    assert!(refused >= 40);
    let metrics = connection.metrics();
    assert!(metrics.queued_bytes <= 1000);
    assert!(metrics.dropped >= 40);
    assert!(metrics.dropped_bytes >= 4000);
    connection.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_resubscribes_exactly_once() {
    let mut server = RedisServer::start();
    let port = server.port();
    let url = server.url();
    let node = RedisConnection::connect(config(&url)).await.unwrap();
    let (handler, mut rx) = forwarder();
    node.subscribe(
        Subscription::Channel("socket.io-request#/#".into()),
        handler.clone(),
    );
    node.subscribe(
        Subscription::Pattern("socket.io#/#*".into()),
        handler.clone(),
    );
    node.subscribe(Subscription::Shard("socket.io#/#shard#".into()), handler);
    until("ready", async || node.is_ready()).await;
    assert_eq!(node.numsub("socket.io-request#/#").await.unwrap(), 1);

    server.stop(); // SIGKILL
    until("not ready", async || !node.is_ready()).await;
    let _restarted = Restarted::start(port);
    until("ready again", async || node.is_ready()).await;
    assert_eq!(node.numsub("socket.io-request#/#").await.unwrap(), 1);
    assert_eq!(node.shard_numsub("socket.io#/#shard#").await.unwrap(), 1);
    assert!(node.metrics().reconnects >= 2, "{:?}", node.metrics());

    node.publish("socket.io#/#r#".into(), b"after".to_vec())
        .unwrap();
    node.spublish("socket.io#/#shard#".into(), b"sharded".to_vec())
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a message after the restart")
            .unwrap();
        got.push(message.payload.to_vec());
    }
    got.sort();
    assert_eq!(got, vec![b"after".to_vec(), b"sharded".to_vec()]);
    // Each message exactly once: nothing else arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    node.close();
}
