//! Harness for the default application (`APP-CONTRACT.md`): a `sockeye_server::Server` on
//! loopback and a small Socket.IO v5 client over WebSocket (tokio-tungstenite) that speaks the
//! packets by hand, so the tests see exactly what a stock client would receive.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sockeye_auth::{MintClaims, mint};
use sockeye_server::config::JwtSettings;
use sockeye_server::{Server, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub use crate::eio::{HttpResponse, http};

/// The HS256 secret of every test server.
pub const SECRET: &str = "sockeye-rust-tests-secret-0123456789abcdef";
/// Another secret of the same length (for `bad_signature`).
pub const OTHER_SECRET: &str = "sockeye-rust-tests-other-secret-9876543210";
/// How long a helper waits before failing the test.
pub const WAIT: Duration = Duration::from_secs(5);

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token for `sub` signed with [`SECRET`], valid for `ttl` seconds.
pub fn token(sub: &str, ttl: u64) -> String {
    sign(SECRET, &MintClaims::new(sub, now() + ttl))
}

/// A token with these claims and secret.
pub fn sign(secret: &str, claims: &MintClaims) -> String {
    mint(secret.as_bytes(), claims).unwrap().as_str().to_owned()
}

/// The JWT settings of the test servers: [`SECRET`], HS256.
pub fn jwt() -> JwtSettings {
    JwtSettings {
        secret: Some(SECRET.to_owned()),
        ..JwtSettings::default()
    }
}

/// A sockeye server with the default application on `127.0.0.1:0`.
pub struct AppServer {
    pub addr: SocketAddr,
    pub server: Server,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AppServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl AppServer {
    /// The defaults of the contract with [`jwt`].
    pub async fn spawn() -> Self {
        Self::spawn_with(|b| b).await
    }

    /// The defaults with [`jwt`], changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Self {
        let server = configure(ServerBuilder::new().jwt(jwt())).build().unwrap();
        Self::serve(server).await
    }

    /// Serves a built server.
    pub async fn serve(server: Server) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let running = server.clone();
        let task = tokio::spawn(async move {
            running
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            server,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful shutdown; returns when the server has finished.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("shutdown finished in time")
                .unwrap();
        }
    }

    /// A connected client with a fresh token for `sub`.
    pub async fn user(&self, sub: &str) -> SioClient {
        self.connect(Some(json!({ "token": token(sub, 3600) })), "", &[])
            .await
            .expect("connected")
    }

    /// Opens a WebSocket session with `query` and `headers`, and CONNECTs to `/` with `auth`.
    ///
    /// # Errors
    /// The CONNECT_ERROR payload when the server refuses the CONNECT.
    pub async fn connect(
        &self,
        auth: Option<Value>,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<SioClient, Value> {
        let mut client = SioClient::open(self.addr, query, headers).await;
        let packet = match auth {
            Some(auth) => format!("0{auth}"),
            None => "0".to_owned(),
        };
        client.send(&packet).await;
        let reply = client.next_packet().await;
        if let Some(data) = reply.strip_prefix('0') {
            let data: Value = serde_json::from_str(data).unwrap();
            client.sid = data["sid"].as_str().unwrap().to_owned();
            Ok(client)
        } else if let Some(data) = reply.strip_prefix('4') {
            Err(serde_json::from_str(data).unwrap())
        } else {
            panic!("expected a CONNECT reply, got {reply}")
        }
    }

    /// `GET path` on a new connection.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http(self.addr, "GET", path, headers, "").await
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One Socket.IO client on the main namespace, over WebSocket.
pub struct SioClient {
    ws: WebSocketStream<TcpStream>,
    /// The socket id from the CONNECT reply.
    pub sid: String,
    next_ack: u64,
    /// Socket.IO packets received while waiting for something else.
    backlog: VecDeque<String>,
}

impl std::fmt::Debug for SioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SioClient").field("sid", &self.sid).finish()
    }
}

/// What [`SioClient::next`] saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An event: name and first argument.
    Event(String, Value),
    /// The server disconnected the socket (`41`): `io server disconnect`.
    Disconnect,
    /// The Engine.IO session or the WebSocket closed.
    Closed,
}

impl SioClient {
    /// Opens the WebSocket and reads the Engine.IO open packet.
    pub async fn open(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Self {
        Self::try_open(addr, query, headers).await.unwrap()
    }

    /// As [`open`](Self::open), returning the handshake error (a 403, a 400).
    ///
    /// # Errors
    /// The WebSocket handshake error.
    pub async fn try_open(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let stream = TcpStream::connect(addr).await.unwrap();
        let extra = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{extra}");
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
        let mut client = Self {
            ws,
            sid: String::new(),
            next_ack: 0,
            backlog: VecDeque::new(),
        };
        let open = client.next_engine_text().await.expect("an open packet");
        assert!(open.starts_with("0{"), "open packet: {open}");
        Ok(client)
    }

    /// Sends a Socket.IO packet (the Engine.IO `4` is added).
    pub async fn send(&mut self, packet: &str) {
        self.ws
            .send(Message::text(format!("4{packet}")))
            .await
            .unwrap();
    }

    /// Emits `event` with one argument.
    pub async fn emit(&mut self, event: &str, data: &Value) {
        self.send(&format!("2{}", json!([event, data]))).await;
    }

    /// Emits `event` with an ack id and waits for the acknowledgement's first argument.
    pub async fn ack(&mut self, event: &str, data: &Value) -> Value {
        let id = self.emit_with_ack(event, data).await;
        self.wait_ack(id).await
    }

    /// Emits `event` with an ack id; returns the id.
    pub async fn emit_with_ack(&mut self, event: &str, data: &Value) -> u64 {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(&format!("2{id}{}", json!([event, data]))).await;
        id
    }

    /// Waits for the acknowledgement `id`; other packets are kept for [`next`](Self::next).
    pub async fn wait_ack(&mut self, id: u64) -> Value {
        let prefix = format!("3{id}[");
        let mut skipped = Vec::new();
        let found = loop {
            let packet = self.read_packet().await.expect("the ack before the end");
            if let Some(rest) = packet.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(&format!("[{rest}")).unwrap();
                break args[0].clone();
            }
            skipped.push(packet);
        };
        self.backlog.extend(skipped);
        found
    }

    /// The next event, disconnect or close.
    pub async fn next(&mut self) -> Received {
        loop {
            let Some(packet) = self.next_packet_opt().await else {
                return Received::Closed;
            };
            if let Some(data) = packet.strip_prefix('2') {
                let args: Value = serde_json::from_str(data).unwrap();
                return Received::Event(
                    args[0].as_str().unwrap().to_owned(),
                    args.get(1).cloned().unwrap_or(Value::Null),
                );
            }
            if packet == "1" {
                return Received::Disconnect;
            }
        }
    }

    /// The next event, which must be `name`; returns its first argument.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        match self.next().await {
            Received::Event(n, data) if n == name => data,
            other => panic!("expected a {name} event, got {other:?}"),
        }
    }

    /// Asserts nothing arrives within `ms`.
    pub async fn expect_nothing(&mut self, ms: u64) {
        if let Some(packet) = self.backlog.pop_front() {
            panic!("unexpected packet {packet}");
        }
        if let Ok(packet) =
            tokio::time::timeout(Duration::from_millis(ms), self.read_engine_packet()).await
        {
            panic!("unexpected packet {packet:?}");
        }
    }

    /// Sends a Socket.IO DISCONNECT and closes the WebSocket.
    pub async fn close(mut self) {
        self.send("1").await;
        let _ = self.ws.close(None).await;
    }

    async fn next_packet(&mut self) -> String {
        self.next_packet_opt().await.expect("a packet")
    }

    /// The next Socket.IO packet (backlog first), with the namespace `/` implied; `None` when
    /// the session ends.
    async fn next_packet_opt(&mut self) -> Option<String> {
        if let Some(packet) = self.backlog.pop_front() {
            return Some(packet);
        }
        self.read_packet().await
    }

    async fn read_packet(&mut self) -> Option<String> {
        tokio::time::timeout(WAIT, self.read_engine_packet())
            .await
            .expect("timed out waiting for a packet")
    }

    /// Reads Engine.IO packets, answering pings, until a Socket.IO packet (the text after
    /// `4`) arrives; `None` when the session ends.
    async fn read_engine_packet(&mut self) -> Option<String> {
        loop {
            let text = self.next_engine_text().await?;
            match text.as_bytes().first() {
                Some(b'2') => self.ws.send(Message::text("3")).await.ok()?,
                Some(b'4') => return Some(text[1..].to_owned()),
                Some(b'1') => return None,
                _ => {}
            }
        }
    }

    async fn next_engine_text(&mut self) -> Option<String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Some(text.as_str().to_owned()),
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Asserts `ack` is `{ ok: false, error: { code, message, event } }`.
pub fn assert_ack_error(ack: &Value, code: &str, event: &str) {
    assert_eq!(ack["ok"], json!(false), "{ack}");
    assert_error(&ack["error"], code, Some(event));
}

/// Asserts `error` is `{ code, message, event? }`.
pub fn assert_error(error: &Value, code: &str, event: Option<&str>) {
    assert_eq!(error["code"], json!(code), "{error}");
    assert!(error["message"].is_string(), "{error}");
    match event {
        Some(event) => assert_eq!(error["event"], json!(event), "{error}"),
        None => assert!(error.get("event").is_none(), "{error}"),
    }
}
