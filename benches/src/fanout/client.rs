//! One Socket.IO client over WebSocket: the Engine.IO handshake, the namespace CONNECT with an
//! optional auth token, and acknowledged events. Every packet is built and parsed with
//! `sockeye-codec`.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use sockeye_codec::Utf8Bytes;
use sockeye_codec::engineio::{self, Payload};
use sockeye_codec::socketio::{self, AckId, PacketKind};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::rawws::{Frame as RawFrame, FrameReader};
use super::target::Target;

/// The WebSocket of one client.
pub type Ws = WebSocketStream<TcpStream>;

/// A client connected to the default namespace.
#[derive(Debug)]
pub struct Connection {
    /// The WebSocket, positioned after the namespace CONNECT answer.
    pub ws: Ws,
    /// The Socket.IO socket id the server gave.
    pub sid: String,
    /// The server's ping interval, in milliseconds.
    pub ping_interval_ms: u64,
    next_ack: u64,
}

/// Why a client could not connect or join.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// TCP connect failed.
    Io(std::io::Error),
    /// The WebSocket handshake or a later read or write failed.
    WebSocket(tungstenite::Error),
    /// The server closed the connection during setup.
    Closed,
    /// No answer within the setup timeout.
    Timeout,
    /// The server answered with something unexpected (a short description).
    Protocol(&'static str),
    /// The namespace CONNECT was refused: the CONNECT_ERROR data.
    Refused(String),
    /// A `join` was not acknowledged with `ok: true`: the ack data.
    JoinFailed(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "tcp connect: {e}"),
            Self::WebSocket(e) => write!(f, "websocket: {e}"),
            Self::Closed => f.write_str("connection closed during setup"),
            Self::Timeout => f.write_str("setup timed out"),
            Self::Protocol(what) => write!(f, "protocol: {what}"),
            Self::Refused(data) => write!(f, "connect refused: {data}"),
            Self::JoinFailed(data) => write!(f, "join failed: {data}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<tungstenite::Error> for ClientError {
    fn from(e: tungstenite::Error) -> Self {
        Self::WebSocket(e)
    }
}

/// What one text frame from the server is, for the generator.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// An Engine.IO ping: answer with a pong.
    Ping,
    /// A Socket.IO event on the default namespace.
    Event(socketio::Packet),
    /// A Socket.IO ack on the default namespace.
    Ack(socketio::Packet),
    /// Engine.IO close or Socket.IO disconnect.
    Closed,
    /// Anything else (noop, other namespaces, packets the codec refuses).
    Other,
}

/// Decodes one WebSocket text frame with the codec.
pub fn classify(frame: tungstenite::Utf8Bytes) -> Incoming {
    match Utf8Bytes::try_from_bytes(bytes::Bytes::from(frame)) {
        Ok(text) => classify_text(text),
        Err(_) => Incoming::Other,
    }
}

/// Decodes one WebSocket text message with the codec.
pub fn classify_text(text: Utf8Bytes) -> Incoming {
    match engineio::Packet::decode_text(text) {
        Ok(engineio::Packet::Ping(_)) => Incoming::Ping,
        Ok(engineio::Packet::Close) => Incoming::Closed,
        Ok(engineio::Packet::Message(Payload::Text(data))) => {
            match socketio::Packet::decode(data, &socketio::Limits::default()) {
                Ok(p) if p.kind == PacketKind::Event => Incoming::Event(p),
                Ok(p) if p.kind == PacketKind::Ack => Incoming::Ack(p),
                Ok(p) if p.kind == PacketKind::Disconnect => Incoming::Closed,
                _ => Incoming::Other,
            }
        }
        _ => Incoming::Other,
    }
}

/// The Engine.IO pong frame.
pub fn pong_frame() -> Message {
    frame(&engineio::Packet::Pong(None))
}

/// An Engine.IO message frame carrying Socket.IO `packet`.
pub fn socketio_frame(packet: &socketio::Packet) -> Message {
    frame(&engineio::Packet::Message(Payload::Text(packet.to_text())))
}

/// A Socket.IO event on the default namespace with `data` (the JSON array `["name", ...]`),
/// asking for an acknowledgement when `ack` is set.
pub fn event_frame(data: String, ack: Option<u64>) -> Message {
    socketio_frame(&event_packet(data, ack))
}

fn event_packet(data: String, ack: Option<u64>) -> socketio::Packet {
    let packet = socketio::Packet::event("/", Utf8Bytes::from(data));
    match ack {
        Some(id) => packet.with_ack_id(AckId(id)),
        None => packet,
    }
}

/// The Engine.IO text message carrying Socket.IO `packet`.
fn socketio_text(packet: &socketio::Packet) -> Utf8Bytes {
    engineio::Packet::Message(Payload::Text(packet.to_text())).to_text()
}

/// A receiver's client: the lean [`FrameReader`] from the first byte, so that nothing the server
/// sends is ever left behind in another reader's buffer (socketioxide pings right after the
/// handshake, often in the same segment as the next answer).
#[derive(Debug)]
pub struct RawConnection {
    /// The frame reader, positioned after the `join` acknowledgement.
    pub reader: FrameReader,
    /// The Socket.IO socket id the server gave.
    pub sid: String,
}

impl RawConnection {
    /// As [`Connection::open`], then `join`s `room`; returns the connection and the room size
    /// the ack reported.
    ///
    /// # Errors
    /// [`ClientError`] for each way this can fail.
    pub async fn open_and_join(
        target: &Target,
        token: Option<&str>,
        room: &str,
        timeout: Duration,
    ) -> Result<(Self, u64), ClientError> {
        tokio::time::timeout(timeout, Self::open_inner(target, token, room))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn open_inner(
        target: &Target,
        token: Option<&str>,
        room: &str,
    ) -> Result<(Self, u64), ClientError> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let path = format!("{}?EIO=4&transport=websocket", target.path);
        let mut reader = FrameReader::handshake(stream, &target.authority, &path).await?;
        let mut stage = 0; // 0: open expected, 1: CONNECT answer expected, 2: join ack expected
        let mut sid = String::new();
        loop {
            let text = match reader.next_frame().await {
                RawFrame::Text(text) => text,
                RawFrame::Ping(payload) => {
                    let payload = payload.to_vec();
                    reader.pong(&payload).await?;
                    continue;
                }
                RawFrame::Closed => return Err(ClientError::Closed),
                _ => continue,
            };
            let text = Utf8Bytes::try_from_bytes(bytes::Bytes::copy_from_slice(text))
                .map_err(|_| ClientError::Protocol("non-UTF-8 text frame"))?;
            match engineio::Packet::decode_text(text) {
                Ok(engineio::Packet::Open(_)) if stage == 0 => {
                    let auth = token
                        .map(|t| Utf8Bytes::from(serde_json::json!({ "token": t }).to_string()));
                    let connect = socketio_text(&socketio::Packet::connect("/", auth));
                    reader.send_text(connect.as_bytes()).await?;
                    stage = 1;
                }
                Ok(engineio::Packet::Ping(_)) => reader.send_text(b"3").await?,
                Ok(engineio::Packet::Close) => return Err(ClientError::Closed),
                Ok(engineio::Packet::Message(Payload::Text(data))) if stage >= 1 => {
                    let packet = socketio::Packet::decode(data, &socketio::Limits::default())
                        .map_err(|_| ClientError::Protocol("undecodable Socket.IO packet"))?;
                    match packet.kind {
                        PacketKind::Connect if stage == 1 => {
                            sid = connect_sid(&packet)?;
                            let data = serde_json::to_string(&("join", room))
                                .expect("invariant: strings serialize");
                            let join = socketio_text(&event_packet(data, Some(0)));
                            reader.send_text(join.as_bytes()).await?;
                            stage = 2;
                        }
                        PacketKind::ConnectError => {
                            let data = packet.data.as_ref().map(Utf8Bytes::as_str).unwrap_or("");
                            return Err(ClientError::Refused(data.to_owned()));
                        }
                        PacketKind::Ack if stage == 2 && packet.ack_id == Some(AckId(0)) => {
                            let size = join_size(&packet)?;
                            return Ok((Self { reader, sid }, size));
                        }
                        PacketKind::Disconnect => return Err(ClientError::Closed),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
}

fn connect_sid(packet: &socketio::Packet) -> Result<String, ClientError> {
    let data = packet.data.as_ref().map(Utf8Bytes::as_str).unwrap_or("{}");
    let v: serde_json::Value = serde_json::from_str(data)
        .map_err(|_| ClientError::Protocol("CONNECT data is not JSON"))?;
    Ok(v.get("sid")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned())
}

fn join_size(ack: &socketio::Packet) -> Result<u64, ClientError> {
    let args = ack
        .args()
        .map_err(|_| ClientError::Protocol("join ack is not an array"))?;
    let v: serde_json::Value = serde_json::from_str(args.as_str())
        .map_err(|_| ClientError::JoinFailed(args.as_str().to_owned()))?;
    if v.get("ok") != Some(&serde_json::Value::Bool(true)) {
        return Err(ClientError::JoinFailed(args.as_str().to_owned()));
    }
    Ok(v.get("size")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0))
}

fn frame(packet: &engineio::Packet) -> Message {
    let text = packet.to_text();
    Message::Text(
        tungstenite::Utf8Bytes::try_from(text.into_bytes())
            .expect("invariant: the codec encodes UTF-8"),
    )
}

impl Connection {
    /// Opens a WebSocket Engine.IO session to `target` and connects to the default namespace,
    /// sending `{"token": token}` as the auth payload when a token is given. Gives up after
    /// `timeout`.
    ///
    /// # Errors
    /// [`ClientError`] for each way this can fail.
    pub async fn open(
        target: &Target,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        tokio::time::timeout(timeout, Self::open_inner(target, token))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn open_inner(target: &Target, token: Option<&str>) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        // Small buffers: thousands of these live at once, the frames are small, and tungstenite
        // zeroes the free part of its read buffer before every read.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(
            target.websocket_url(),
            stream,
            Some(config),
        )
        .await?;

        let open = next_text(&mut ws).await?;
        let text = Utf8Bytes::try_from_bytes(bytes::Bytes::from(open))
            .map_err(|_| ClientError::Protocol("non-UTF-8 text frame"))?;
        let Ok(engineio::Packet::Open(handshake)) = engineio::Packet::decode_text(text) else {
            return Err(ClientError::Protocol(
                "first frame is not the Engine.IO open",
            ));
        };

        let auth = token.map(|t| Utf8Bytes::from(serde_json::json!({ "token": t }).to_string()));
        ws.send(socketio_frame(&socketio::Packet::connect("/", auth)))
            .await?;
        let sid = loop {
            let text = next_text(&mut ws).await?;
            let Ok(text) = Utf8Bytes::try_from_bytes(bytes::Bytes::from(text)) else {
                continue;
            };
            let data = match engineio::Packet::decode_text(text) {
                Ok(engineio::Packet::Message(Payload::Text(data))) => data,
                // socketioxide pings right after the handshake, before the CONNECT answer.
                Ok(engineio::Packet::Ping(_)) => {
                    ws.send(pong_frame()).await?;
                    continue;
                }
                Ok(engineio::Packet::Close) => return Err(ClientError::Closed),
                _ => continue,
            };
            let packet = socketio::Packet::decode(data, &socketio::Limits::default())
                .map_err(|_| ClientError::Protocol("undecodable Socket.IO packet"))?;
            match packet.kind {
                PacketKind::Connect => {
                    let data = packet.data.as_ref().map(Utf8Bytes::as_str).unwrap_or("{}");
                    let v: serde_json::Value = serde_json::from_str(data)
                        .map_err(|_| ClientError::Protocol("CONNECT data is not JSON"))?;
                    break v
                        .get("sid")
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_owned();
                }
                PacketKind::ConnectError => {
                    let data = packet.data.as_ref().map(Utf8Bytes::as_str).unwrap_or("");
                    return Err(ClientError::Refused(data.to_owned()));
                }
                _ => {}
            }
        };
        Ok(Self {
            ws,
            sid,
            ping_interval_ms: handshake.ping_interval,
            next_ack: 0,
        })
    }

    /// Emits `join` with the room name and waits for its acknowledgement; returns the room size
    /// it reports. Answers pings meanwhile; other events are skipped.
    ///
    /// # Errors
    /// [`ClientError::JoinFailed`] when the ack is not `ok: true`, or a transport error.
    pub async fn join(&mut self, room: &str, timeout: Duration) -> Result<u64, ClientError> {
        let id = self.next_ack;
        self.next_ack += 1;
        let data = serde_json::to_string(&("join", room)).expect("invariant: strings serialize");
        self.ws.send(event_frame(data, Some(id))).await?;
        let ack = tokio::time::timeout(timeout, async {
            loop {
                let text = next_text(&mut self.ws).await?;
                match classify(text) {
                    Incoming::Ping => self.ws.send(pong_frame()).await?,
                    Incoming::Ack(p) if p.ack_id == Some(AckId(id)) => return Ok(p),
                    Incoming::Closed => return Err(ClientError::Closed),
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout)??;
        let args = ack
            .args()
            .map_err(|_| ClientError::Protocol("join ack is not an array"))?;
        let v: serde_json::Value = serde_json::from_str(args.as_str())
            .map_err(|_| ClientError::JoinFailed(args.as_str().to_owned()))?;
        if v.get("ok") != Some(&serde_json::Value::Bool(true)) {
            return Err(ClientError::JoinFailed(args.as_str().to_owned()));
        }
        Ok(v.get("size")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0))
    }

    /// The next unused ack id (the sender continues the numbering).
    pub fn next_ack_id(&self) -> u64 {
        self.next_ack
    }
}

async fn next_text(ws: &mut Ws) -> Result<tungstenite::Utf8Bytes, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_classifies_frames() {
        let Message::Text(t) = event_frame(r#"["join","r"]"#.to_owned(), Some(3)) else {
            panic!("text frame expected");
        };
        assert_eq!(t.as_str(), r#"423["join","r"]"#);
        assert!(matches!(classify("2".into()), Incoming::Ping));
        assert!(matches!(classify("1".into()), Incoming::Closed));
        assert!(matches!(classify("41".into()), Incoming::Closed));
        let Incoming::Ack(p) = classify(r#"433[{"ok":true}]"#.into()) else {
            panic!("ack expected");
        };
        assert_eq!(p.ack_id, Some(AckId(3)));
        let Incoming::Event(p) = classify(r#"42["message",{"content":"x"}]"#.into()) else {
            panic!("event expected");
        };
        assert_eq!(p.event_name().unwrap(), "message");
    }
}
