//! A fake transport that captures what the broker sends, and helpers to drive a connection.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sockeye_broker::{
    Broker, CloseReason, Connection, EngineInfo, SendError, SendFlags, SocketId, Transport,
};
use sockeye_codec::{Outgoing, Utf8Bytes};

/// What `send` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Queue everything.
    Open = 0,
    /// Refuse everything with `Full`.
    Full = 1,
    /// Not writable: volatile messages are dropped, others queued.
    Busy = 2,
}

#[derive(Default)]
pub struct FakeTransport {
    sent: Mutex<Vec<(Outgoing, SendFlags)>>,
    closed: Mutex<Option<CloseReason>>,
    mode: AtomicU8,
}

impl Transport for FakeTransport {
    fn send(&self, message: Outgoing, flags: SendFlags) -> Result<(), SendError> {
        if self.closed.lock().unwrap().is_some() {
            return Err(SendError::Closed);
        }
        match self.mode.load(Ordering::Relaxed) {
            1 => return Err(SendError::Full),
            2 if flags.volatile => return Err(SendError::Dropped),
            _ => {}
        }
        self.sent.lock().unwrap().push((message, flags));
        Ok(())
    }

    fn close(&self, reason: CloseReason) {
        self.closed.lock().unwrap().get_or_insert(reason);
    }
}

impl FakeTransport {
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Takes everything sent so far.
    pub fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.sent.lock().unwrap())
            .into_iter()
            .map(|(m, _)| m)
            .collect()
    }

    /// Takes everything sent so far with its flags.
    pub fn take_with_flags(&self) -> Vec<(Outgoing, SendFlags)> {
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

    pub fn sent_count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

/// One client: its connection and its transport.
pub struct Client {
    pub conn: Connection,
    pub transport: Arc<FakeTransport>,
}

impl Client {
    pub fn open(broker: &Broker) -> Self {
        Self::open_with(broker, EngineInfo::new("engine-sid"))
    }

    pub fn open_with(broker: &Broker, info: EngineInfo) -> Self {
        let transport = Arc::new(FakeTransport::default());
        let conn = broker.on_engine_open(transport.clone(), info, Instant::now());
        Self { conn, transport }
    }

    /// Sends a Socket.IO packet in text form (without the Engine.IO `4`).
    pub fn text(&mut self, packet: &str) -> Result<(), sockeye_broker::ProtocolViolation> {
        self.conn
            .on_engine_text(Utf8Bytes::from(packet), Instant::now())
    }

    pub fn binary(&mut self, data: &'static [u8]) -> Result<(), sockeye_broker::ProtocolViolation> {
        self.conn.on_engine_binary(bytes::Bytes::from_static(data))
    }

    /// CONNECTs to a namespace (`/` or `/name`) and returns the socket id from the reply.
    pub fn connect(&mut self, ns: &str) -> SocketId {
        let packet = if ns == "/" {
            String::from("0")
        } else {
            format!("0{ns},")
        };
        self.text(&packet).unwrap();
        let texts = self.transport.texts();
        let reply = texts.first().expect("a CONNECT reply");
        let prefix = if ns == "/" {
            String::from("40")
        } else {
            format!("40{ns},")
        };
        let json = reply
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("not a CONNECT reply: {reply}"));
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        SocketId::parse(value["sid"].as_str().unwrap()).unwrap()
    }
}
