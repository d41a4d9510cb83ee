//! In-process nodes for the Redis tests: a broker per node on its own `RedisCluster`
//! (its own Redis connections, as a separate process would have), and fake clients whose
//! transport captures what the broker sends.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sockeye_broker::{
    Broker, CloseReason, Connection, EngineInfo, SendError, SendFlags, SocketId, SocketRef,
    Transport,
};
use sockeye_codec::{Outgoing, Utf8Bytes};
use sockeye_redis::{RedisCluster, RedisConfig};

#[derive(Default)]
pub struct FakeTransport {
    sent: Mutex<Vec<Outgoing>>,
    closed: Mutex<Option<CloseReason>>,
}

impl Transport for FakeTransport {
    fn send(&self, message: Outgoing, _flags: SendFlags) -> Result<(), SendError> {
        if self.closed.lock().unwrap().is_some() {
            return Err(SendError::Closed);
        }
        self.sent.lock().unwrap().push(message);
        Ok(())
    }

    fn close(&self, reason: CloseReason) {
        self.closed.lock().unwrap().get_or_insert(reason);
    }
}

impl FakeTransport {
    /// Takes everything sent so far.
    pub fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }

    /// Takes the text frames sent so far.
    pub fn texts(&self) -> Vec<String> {
        self.take()
            .iter()
            .map(|m| m.text().map(|t| t.as_str().to_owned()).unwrap_or_default())
            .collect()
    }

    pub fn closed(&self) -> Option<CloseReason> {
        *self.closed.lock().unwrap()
    }
}

/// One client: its connection and its transport.
pub struct Client {
    pub conn: Connection,
    pub transport: Arc<FakeTransport>,
    pub id: SocketId,
    pub socket: SocketRef,
}

impl Client {
    /// Opens a connection to `broker` and CONNECTs to `/`.
    pub fn connect(broker: &Broker) -> Self {
        let transport = Arc::new(FakeTransport::default());
        let mut conn = broker.on_engine_open(
            transport.clone(),
            EngineInfo::new("engine-sid"),
            Instant::now(),
        );
        send_text(&mut conn, "0");
        let texts = transport.texts();
        let reply = texts.first().expect("a CONNECT reply");
        let json = reply.strip_prefix("40").expect("a CONNECT reply");
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let id = SocketId::parse(value["sid"].as_str().unwrap()).unwrap();
        let socket = broker.namespace("/").unwrap().socket(id).unwrap();
        Self {
            conn,
            transport,
            id,
            socket,
        }
    }

    /// Sends a Socket.IO packet in text form.
    pub fn text(&mut self, packet: &str) {
        send_text(&mut self.conn, packet);
    }

    /// Waits (up to 5 s) until `n` more messages arrived, and returns them as text.
    pub async fn next_texts(&self, n: usize) -> Vec<String> {
        let mut got: Vec<Outgoing> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while got.len() < n {
            got.extend(self.transport.take());
            if got.len() >= n {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} messages, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        got.iter()
            .map(|m| m.text().map(|t| t.as_str().to_owned()).unwrap_or_default())
            .collect()
    }
}

/// The one place that calls `Connection::on_engine_text` (its signature may gain `now`).
fn send_text(conn: &mut Connection, text: &str) {
    conn.on_engine_text(Utf8Bytes::from(text.to_owned()), Instant::now())
        .unwrap();
}

/// One node: a broker on its own Redis connections.
pub struct Node {
    pub broker: Broker,
    pub cluster: RedisCluster,
}

impl Node {
    pub async fn start(
        url: &str,
        build: impl FnOnce(sockeye_broker::BrokerBuilder) -> sockeye_broker::BrokerBuilder,
    ) -> Self {
        let cluster = RedisCluster::connect(config(url)).await.unwrap();
        let broker = build(Broker::builder().adapter(cluster.adapter_factory())).build();
        Self { broker, cluster }
    }

    pub fn ns(&self) -> sockeye_broker::Namespace {
        self.broker.namespace("/").unwrap()
    }
}

pub fn config(url: &str) -> RedisConfig {
    RedisConfig::new(url)
        .ping_interval(Duration::from_millis(200))
        .max_reconnect_delay(Duration::from_millis(200))
        .request_timeout(Duration::from_millis(1500))
}

/// Polls `check` every 10 ms for up to 5 s.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5 s");
}

/// Waits until every node's Redis link is ready (subscriptions confirmed).
pub async fn all_ready(nodes: &[&Node]) {
    until("all nodes ready", || {
        nodes.iter().all(|n| n.cluster.is_ready())
    })
    .await;
}

/// The ack id of an emitted `42<id>[...]`.
pub fn ack_id(text: &str) -> u64 {
    text[2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}
