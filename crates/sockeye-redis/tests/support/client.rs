//! In-process clients of a [`Broker`]: a transport that records what the broker sends and
//! lets a test await the next message (messages from other nodes arrive through Redis, later).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sockeye_broker::{
    Broker, CloseReason, Connection, EngineInfo, SendError, SendFlags, SocketId, SocketRef,
    Transport,
};
use sockeye_codec::{Outgoing, Utf8Bytes};
use tokio::sync::Notify;

/// How long a test waits for something that comes through Redis before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct RecordingTransport {
    sent: Mutex<VecDeque<Outgoing>>,
    closed: Mutex<Option<CloseReason>>,
    arrived: Notify,
}

impl Transport for RecordingTransport {
    fn send(&self, message: Outgoing, _flags: SendFlags) -> Result<(), SendError> {
        if self.closed.lock().unwrap().is_some() {
            return Err(SendError::Closed);
        }
        self.sent.lock().unwrap().push_back(message);
        self.arrived.notify_waiters();
        Ok(())
    }

    fn close(&self, reason: CloseReason) {
        self.closed.lock().unwrap().get_or_insert(reason);
        self.arrived.notify_waiters();
    }
}

impl RecordingTransport {
    /// The next message, waiting for it at most [`WAIT`].
    pub async fn next(&self) -> Outgoing {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(message) = self.sent.lock().unwrap().pop_front() {
                return message;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no message arrived within {WAIT:?}");
            }
        }
    }

    /// The next message's text frame.
    pub async fn next_text(&self) -> String {
        let message = self.next().await;
        message.text().unwrap().as_str().to_owned()
    }

    /// Everything received so far, without waiting.
    pub fn take_texts(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .drain(..)
            .map(|m| m.text().map(|t| t.as_str().to_owned()).unwrap_or_default())
            .collect()
    }

    pub fn closed(&self) -> Option<CloseReason> {
        *self.closed.lock().unwrap()
    }
}

/// One client of one node.
pub struct Client {
    pub conn: Connection,
    pub transport: Arc<RecordingTransport>,
    pub socket: SocketRef,
}

impl Client {
    /// Opens a connection to `broker` and CONNECTs to `/`.
    pub fn connect(broker: &Broker) -> Self {
        let transport = Arc::new(RecordingTransport::default());
        let mut conn = broker.on_engine_open(
            transport.clone(),
            EngineInfo::new("engine-sid"),
            Instant::now(),
        );
        conn.on_engine_text(Utf8Bytes::from("0"), Instant::now())
            .unwrap();
        let texts = transport.take_texts();
        let reply = texts.first().expect("a CONNECT reply");
        let json = reply
            .strip_prefix("40")
            .unwrap_or_else(|| panic!("not a CONNECT reply: {reply}"));
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let id = SocketId::parse(value["sid"].as_str().unwrap()).unwrap();
        let socket = broker.namespace("/").unwrap().socket(id).unwrap();
        Self {
            conn,
            transport,
            socket,
        }
    }

    pub fn id(&self) -> SocketId {
        self.socket.id()
    }

    /// Sends a Socket.IO packet in text form (an ACK, an EVENT).
    pub fn send(&mut self, packet: &str) {
        self.conn
            .on_engine_text(Utf8Bytes::from(packet), Instant::now())
            .unwrap();
    }

    /// Answers the broadcast-with-ack in `text` (`421["ev",...]` -> `31[answer]`).
    pub fn answer(&mut self, text: &str, answer: &str) {
        let id: u64 = text[2..]
            .split(['[', '-'])
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("no ack id in {text}"));
        self.send(&format!("3{id}[{answer}]"));
    }
}

/// Waits until `condition` holds (Redis-side state that cannot be awaited as an event, such as
/// a subscription becoming visible in `PUBSUB`), at most [`WAIT`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not true within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
