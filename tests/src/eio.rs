//! Engine.IO harness: an engine on loopback with a recording echo handler, a raw polling
//! client (one HTTP/1.1 connection per request, hyper's client) and a WebSocket client
//! (tokio-tungstenite: an independent implementation of the frames our server writes).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use sockeye_codec::{Outgoing, Utf8Bytes};
use sockeye_engine::server::Refusal;
use sockeye_engine::{CloseReason, Engine, EngineConfig, Handler, HandshakeInfo, SessionHandle};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The path every test engine answers on.
pub const PATH: &str = "/engine.io/";

/// How long a helper waits for something before failing the test.
pub const WAIT: Duration = Duration::from_secs(5);

/// Something the handler saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// `on_open`, with the session id.
    Open(String),
    /// `on_message`.
    Message(String, String),
    /// `on_binary`.
    Binary(String, Vec<u8>),
    /// `on_upgrade`.
    Upgrade(String),
    /// `on_close`.
    Close(String, CloseReason),
}

/// What the test handler does with messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Echo every message back (text as text, binary as binary).
    Echo,
    /// Only record.
    Record,
}

type HandshakeHook = dyn Fn(&HandshakeInfo) -> Result<(), Refusal> + Send + Sync;

/// The recording handler.
pub struct TestHandler {
    mode: Mode,
    seen: Arc<Mutex<Vec<Seen>>>,
    notify: Arc<Notify>,
    sessions: Arc<Mutex<Vec<SessionHandle>>>,
    hook: Option<Arc<HandshakeHook>>,
    infos: Arc<Mutex<Vec<HandshakeInfo>>>,
}

impl TestHandler {
    fn record(&self, seen: Seen) {
        self.seen.lock().unwrap().push(seen);
        self.notify.notify_waiters();
    }
}

impl Handler for TestHandler {
    fn on_handshake(&self, request: &HandshakeInfo) -> Result<(), Refusal> {
        match &self.hook {
            Some(hook) => hook(request),
            None => Ok(()),
        }
    }

    fn on_open(&self, session: &SessionHandle, request: &HandshakeInfo) {
        self.infos.lock().unwrap().push(request.clone());
        self.sessions.lock().unwrap().push(session.clone());
        self.record(Seen::Open(session.sid().to_string()));
    }

    fn on_message(&self, session: &SessionHandle, text: Utf8Bytes) {
        if self.mode == Mode::Echo {
            let _ = session.send(Outgoing::message_text(text.as_str()));
        }
        self.record(Seen::Message(
            session.sid().to_string(),
            text.as_str().to_owned(),
        ));
    }

    fn on_binary(&self, session: &SessionHandle, data: Bytes) {
        if self.mode == Mode::Echo {
            let _ = session.send(Outgoing::binary(data.clone()));
        }
        self.record(Seen::Binary(session.sid().to_string(), data.to_vec()));
    }

    fn on_upgrade(&self, session: &SessionHandle) {
        self.record(Seen::Upgrade(session.sid().to_string()));
    }

    fn on_close(&self, session: &SessionHandle, reason: CloseReason) {
        self.record(Seen::Close(session.sid().to_string(), reason));
    }
}

/// An engine serving on `127.0.0.1:0`.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine.
    pub engine: Engine,
    seen: Arc<Mutex<Vec<Seen>>>,
    notify: Arc<Notify>,
    sessions: Arc<Mutex<Vec<SessionHandle>>>,
    infos: Arc<Mutex<Vec<HandshakeInfo>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A builder for [`TestServer`].
pub struct Builder {
    config: EngineConfig,
    mode: Mode,
    hook: Option<Arc<HandshakeHook>>,
}

impl Builder {
    /// Handler mode (default echo).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// A handshake hook.
    pub fn hook(
        mut self,
        hook: impl Fn(&HandshakeInfo) -> Result<(), Refusal> + Send + Sync + 'static,
    ) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Starts the server.
    pub async fn spawn(self) -> TestServer {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(Notify::new());
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let infos = Arc::new(Mutex::new(Vec::new()));
        let handler = TestHandler {
            mode: self.mode,
            seen: Arc::clone(&seen),
            notify: Arc::clone(&notify),
            sessions: Arc::clone(&sessions),
            hook: self.hook,
            infos: Arc::clone(&infos),
        };
        let engine = Engine::new(self.config.path(PATH), handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = engine.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        TestServer {
            addr,
            engine,
            seen,
            notify,
            sessions,
            infos,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl TestServer {
    /// A server with this configuration (path forced to [`PATH`]) and an echo handler.
    pub async fn spawn(config: EngineConfig) -> Self {
        Self::builder(config).spawn().await
    }

    /// A builder, for a custom handler mode or a handshake hook.
    pub fn builder(config: EngineConfig) -> Builder {
        Builder {
            config,
            mode: Mode::Echo,
            hook: None,
        }
    }

    /// Everything the handler saw so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Handshake requests the handler saw.
    pub fn handshakes(&self) -> Vec<HandshakeInfo> {
        self.infos.lock().unwrap().clone()
    }

    /// The handle of the session `sid`, as given to `on_open`.
    pub fn session(&self, sid: &str) -> SessionHandle {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.sid().as_str() == sid)
            .cloned()
            .expect("no such session")
    }

    /// Waits until the handler saw something matching `predicate`.
    pub async fn wait_for(&self, what: &str, predicate: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.notify.notified();
            if let Some(found) = self.seen.lock().unwrap().iter().find(|s| predicate(s)) {
                return found.clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; seen: {:?}", self.seen());
            }
        }
    }

    /// Waits for the close of `sid` and returns its reason.
    pub async fn closed(&self, sid: &str) -> CloseReason {
        match self
            .wait_for("close", |s| matches!(s, Seen::Close(id, _) if id == sid))
            .await
        {
            Seen::Close(_, reason) => reason,
            _ => unreachable!(),
        }
    }

    /// Stops accepting and shuts the engine down; returns when `serve` returned.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// A polling client with a fresh session.
    pub async fn polling(&self) -> PollingClient {
        PollingClient::open(self.addr).await
    }

    /// A WebSocket client with a fresh session (the open packet already read).
    pub async fn websocket(&self) -> (WsClient, serde_json::Value) {
        let mut ws = WsClient::connect(self.addr, "EIO=4&transport=websocket")
            .await
            .unwrap();
        let open = ws.recv_text().await;
        let json: serde_json::Value =
            serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
        (ws, json)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An HTTP response, fully read.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    /// The `code` of an Engine.IO error body.
    pub fn error_code(&self) -> i64 {
        let json: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        json["code"].as_i64().unwrap()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Sends one request on a new connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> HttpResponse {
    try_http(addr, method, path_and_query, headers, body)
        .await
        .unwrap()
}

/// As [`http`](fn@http), returning errors (a connection the server cut).
pub async fn try_http(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<HttpResponse, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into()))?;
    let response = tokio::time::timeout(WAIT, sender.send_request(request)).await??;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// `PATH?query`.
pub fn uri(query: &str) -> String {
    format!("{PATH}?{query}")
}

/// A long-polling session seen from the client.
#[derive(Debug, Clone)]
pub struct PollingClient {
    /// Server address.
    pub addr: SocketAddr,
    /// Session id.
    pub sid: String,
    /// The open packet's JSON.
    pub open: serde_json::Value,
}

impl PollingClient {
    /// Performs the polling handshake.
    pub async fn open(addr: SocketAddr) -> Self {
        let response = http(addr, "GET", &uri("EIO=4&transport=polling"), &[], "").await;
        assert_eq!(response.status, 200, "{}", response.text());
        let text = response.text();
        let open: serde_json::Value =
            serde_json::from_str(text.strip_prefix('0').unwrap()).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        Self { addr, sid, open }
    }

    /// The query of this session's requests.
    pub fn query(&self) -> String {
        format!("EIO=4&transport=polling&sid={}", self.sid)
    }

    /// A GET (long-poll).
    pub async fn get(&self) -> HttpResponse {
        http(self.addr, "GET", &uri(&self.query()), &[], "").await
    }

    /// A POST with `body`.
    pub async fn post(&self, body: impl Into<Bytes>) -> HttpResponse {
        http(
            self.addr,
            "POST",
            &uri(&self.query()),
            &[("content-type", "text/plain")],
            body,
        )
        .await
    }

    /// A WebSocket for this session (the upgrade socket).
    pub async fn upgrade_socket(&self) -> WsClient {
        let query = format!("EIO=4&transport=websocket&sid={}", self.sid);
        WsClient::connect(self.addr, &query).await.unwrap()
    }
}

/// A WebSocket client.
pub struct WsClient {
    /// The stream.
    pub ws: WebSocketStream<TcpStream>,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WsClient")
    }
}

impl WsClient {
    /// Connects to `PATH?query`.
    ///
    /// # Errors
    /// The handshake error (for instance an HTTP 400 or 403).
    pub async fn connect(
        addr: SocketAddr,
        query: &str,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        Self::connect_with(addr, query, &[]).await
    }

    /// Connects with extra request headers.
    ///
    /// # Errors
    /// The handshake error.
    pub async fn connect_with(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut request = format!("ws://{addr}{PATH}?{query}").into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        Ok(Self { ws })
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws.send(Message::binary(data.to_vec())).await.unwrap();
    }

    /// The next data or close message (pings and pongs skipped); `None` at the end.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out")
            {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next message, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Some(Message::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns the close code, if any.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.recv().await {
                Some(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Some(_) => continue,
                None => return None,
            }
        }
    }
}

/// A WebSocket client that writes frames by hand, for what a well-behaved client cannot send
/// (invalid UTF-8, fragments around control frames, unmasked frames).
pub struct RawWs {
    /// The connection.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Performs the HTTP upgrade to `PATH?query`; panics unless the answer is 101.
    pub async fn connect(addr: SocketAddr, query: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {PATH}?{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let head_end = loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        buf.drain(..head_end);
        Self { stream, buf }
    }

    /// Writes one masked frame.
    pub async fn send_frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        let mask = [0x11u8, 0x22, 0x33, 0x44];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.send_raw(&frame).await;
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one server frame: `(opcode, payload)`; `None` when the connection ends.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 2 {
                let opcode = self.buf[0] & 0x0f;
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are never masked");
                let (len, start) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= start + len {
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    return Some((opcode, payload));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("timed out reading a frame")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads frames until a close frame; returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        while let Some((opcode, payload)) = self.read_frame().await {
            if opcode == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
        None
    }
}
