//! [`ServerBuilder`] and [`Server`]: the engine at `/socket.io/`, the broker behind it, the
//! default application or yours, the HTTP extras, TLS and graceful shutdown.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use sockeye_auth::Verifier;
use sockeye_broker::{AdapterFactory, Broker, BrokerConfig};
use sockeye_engine::server::{Cors, EngineBody, RemoteAddr};
use sockeye_engine::{Engine, EngineConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::{App, AppConfig};
use crate::cluster::ClusterStatus;
use crate::config::{ConfigError, CorsOrigins, JwtSettings, RateLimit, Settings, TlsFiles};
use crate::glue::Glue;
use crate::limits::ConnectionLimiter;
use crate::metrics::Metrics;
use crate::tls::ReloadableTls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The example page, with the development-token placeholder.
const PAGE: &str = include_str!("../../../examples/websocket-client.html");
/// The vendored `socket.io-client` browser bundle the page loads.
const CLIENT_JS: &[u8] = include_bytes!("../../../examples/vendor/socket.io.min.js");
/// What the page carries where the development token goes.
const TOKEN_PLACEHOLDER: &str = "__SOCKEYE_DEV_TOKEN__";

/// Time a client has to send a request head, and the longest an idle keep-alive connection
/// stays open between requests (hyper applies one timer to both).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures a [`Server`]. Defaults are the contract's (and the reference server's for
/// Engine.IO); [`ServerBuilder::from_settings`] takes everything from the command line.
///
/// Without [`broker`](Self::broker) the server runs the default application of
/// `APP-CONTRACT.md` on `/`, which needs a JWT key ([`jwt`](Self::jwt)); with it, your broker's
/// namespaces and handlers serve `/socket.io/` and no key is needed.
#[must_use]
pub struct ServerBuilder {
    jwt: JwtSettings,
    verifier: Option<Arc<Verifier>>,
    cors: CorsOrigins,
    tls: Option<TlsFiles>,
    max_payload: NonZeroUsize,
    ping_interval: Duration,
    ping_timeout: Duration,
    connect_timeout: Duration,
    app: AppConfig,
    max_connections_per_ip: Option<NonZeroU32>,
    trust_proxy_hops: u32,
    shutdown_timeout: Duration,
    broker: Option<Broker>,
    dev_token: Option<String>,
    adapter: Option<AdapterFactory>,
    cluster: Option<Arc<dyn ClusterStatus>>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("jwt", &self.jwt)
            .field("cors", &self.cors)
            .field("tls", &self.tls)
            .field("max_payload", &self.max_payload)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("app", &self.app)
            .field("custom_broker", &self.broker.is_some())
            .field("custom_adapter", &self.adapter.is_some())
            .field("cluster", &self.cluster.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::from_settings(&Settings::default())
    }
}

impl ServerBuilder {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything from resolved [`Settings`] (the listen address and the log format are the
    /// caller's business).
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            jwt: settings.jwt.clone(),
            verifier: None,
            cors: settings.cors.clone(),
            tls: settings.tls.clone(),
            max_payload: settings.max_payload,
            ping_interval: settings.ping_interval,
            ping_timeout: settings.ping_timeout,
            connect_timeout: Duration::from_secs(45),
            app: AppConfig::default()
                .max_content_length(settings.max_content_length)
                .rate_limit(settings.rate_limit),
            max_connections_per_ip: settings.max_connections_per_ip,
            trust_proxy_hops: settings.trust_proxy_hops,
            shutdown_timeout: settings.shutdown_timeout,
            broker: None,
            dev_token: None,
            adapter: None,
            cluster: None,
        }
    }

    /// JWT verification settings of the default application.
    pub fn jwt(mut self, jwt: JwtSettings) -> Self {
        self.jwt = jwt;
        self
    }

    /// A verifier built elsewhere (instead of [`jwt`](Self::jwt)).
    pub fn verifier(mut self, verifier: Arc<Verifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Cross-origin access (default: none).
    pub fn cors(mut self, cors: CorsOrigins) -> Self {
        self.cors = cors;
        self
    }

    /// Serve HTTPS/WSS from these PEM files.
    pub fn tls(mut self, tls: Option<TlsFiles>) -> Self {
        self.tls = tls;
        self
    }

    /// Engine.IO maxPayload (default 1,000,000 bytes).
    pub fn max_payload(mut self, value: NonZeroUsize) -> Self {
        self.max_payload = value;
        self
    }

    /// Engine.IO pingInterval (default 25 s).
    pub fn ping_interval(mut self, value: Duration) -> Self {
        self.ping_interval = value;
        self
    }

    /// Engine.IO pingTimeout (default 20 s).
    pub fn ping_timeout(mut self, value: Duration) -> Self {
        self.ping_timeout = value;
        self
    }

    /// How long a session may stay without joining a namespace (default 45 s). Only used for
    /// the default application; a custom broker carries its own.
    pub fn connect_timeout(mut self, value: Duration) -> Self {
        self.connect_timeout = value;
        self
    }

    /// The default application's limits.
    pub fn app(mut self, app: AppConfig) -> Self {
        self.app = app;
        self
    }

    /// The per-socket rate limit of the default application (`None`: off).
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.app = self.app.rate_limit(limit);
        self
    }

    /// Engine.IO sessions per client address (`None`: no cap; default 256).
    pub fn max_connections_per_ip(mut self, max: Option<NonZeroU32>) -> Self {
        self.max_connections_per_ip = max;
        self
    }

    /// Count clients by the last `X-Forwarded-For` address (behind one reverse proxy only);
    /// the same as `trust_proxy_hops(1)` (or `0` when `false`).
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy_hops = u32::from(trust);
        self
    }

    /// Count clients by the `hops`-th `X-Forwarded-For` address from the right: the one the
    /// outermost of `hops` trusted reverse proxies appended (0: ignore the header).
    pub fn trust_proxy_hops(mut self, hops: u32) -> Self {
        self.trust_proxy_hops = hops;
        self
    }

    /// How long a graceful shutdown may take (default 10 s).
    pub fn shutdown_timeout(mut self, value: Duration) -> Self {
        self.shutdown_timeout = value;
        self
    }

    /// Serve your own namespaces and handlers instead of the default application.
    pub fn broker(mut self, broker: Broker) -> Self {
        self.broker = Some(broker);
        self
    }

    /// The adapter of the default application's broker (default: in-memory, one node); a
    /// cluster adapter such as `sockeye-redis`'s makes several servers one. With
    /// [`broker`](Self::broker) the adapter is the one given to that broker instead.
    pub fn adapter(mut self, factory: AdapterFactory) -> Self {
        self.adapter = Some(factory);
        self
    }

    /// The cluster this server is part of: `/readyz` answers 503 while it is not ready, and
    /// `/metrics` exports its counters (`sockeye_cluster_*`).
    pub fn cluster(mut self, status: Arc<dyn ClusterStatus>) -> Self {
        self.cluster = Some(status);
        self
    }

    /// The token the example page at `GET /` is pre-filled with (development mode).
    pub fn dev_token(mut self, token: Option<String>) -> Self {
        self.dev_token = token;
        self
    }

    /// Checks the configuration as a whole and builds the server (no socket is bound yet).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting: unusable JWT keys or algorithms, no JWT key for
    /// the default application, unreadable TLS files.
    pub fn build(self) -> Result<Server, ConfigError> {
        let metrics = Metrics::new();
        if let Some(status) = &self.cluster {
            metrics.set_cluster(status.clone());
        }
        let tls = self.tls.as_ref().map(ReloadableTls::load).transpose()?;
        let parts = EngineParts {
            cors: self.cors,
            max_payload: self.max_payload,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            shutdown_timeout: self.shutdown_timeout,
            limiter: ConnectionLimiter::new(self.max_connections_per_ip),
            trust_proxy_hops: self.trust_proxy_hops,
            dev_token: self.dev_token,
        };
        let (broker, app) = match self.broker {
            Some(broker) => (broker, None),
            None => {
                let verifier = match self.verifier {
                    Some(verifier) => verifier,
                    None => Arc::new(build_verifier(&self.jwt)?),
                };
                let app = App::new(self.app, verifier, metrics.clone());
                let mut broker = Broker::builder()
                    .config(BrokerConfig::default().connect_timeout(self.connect_timeout));
                if let Some(factory) = self.adapter {
                    broker = broker.adapter(factory);
                }
                let broker = broker
                    .state(app.clone())
                    .namespace("/", App::namespace)
                    .build();
                (broker, Some(app))
            }
        };
        Self::finish(broker, app, metrics, tls, parts, self.cluster)
    }

    fn finish(
        broker: Broker,
        app: Option<Arc<App>>,
        metrics: Metrics,
        tls: Option<ReloadableTls>,
        parts: EngineParts,
        cluster: Option<Arc<dyn ClusterStatus>>,
    ) -> Result<Server, ConfigError> {
        let cors = match parts.cors {
            CorsOrigins::None => Cors::disabled(),
            CorsOrigins::Any => Cors::any(),
            CorsOrigins::List(list) => Cors::origins(list),
            #[allow(unreachable_patterns)]
            _ => Cors::disabled(),
        };
        let config = EngineConfig::default()
            .path("/socket.io/")
            .ping_interval(parts.ping_interval)
            .ping_timeout(parts.ping_timeout)
            .max_payload(parts.max_payload)
            .shutdown_timeout(parts.shutdown_timeout)
            .cors(cors);
        let glue = Glue::new(
            broker.clone(),
            metrics.clone(),
            parts.limiter,
            parts.trust_proxy_hops,
            tls.is_some(),
        );
        let engine = Engine::with_shared_handler(config, glue.clone());
        let page = PAGE.replace(
            TOKEN_PLACEHOLDER,
            &html_attr_escape(parts.dev_token.as_deref().unwrap_or("")),
        );
        Ok(Server {
            inner: Arc::new(Inner {
                engine,
                broker,
                metrics,
                glue,
                app,
                cluster,
                tls,
                page,
                shutting_down: AtomicBool::new(false),
                shutdown_timeout: parts.shutdown_timeout,
                tasks: std::sync::Mutex::new(Vec::new()),
                stop: tokio::sync::watch::Sender::new(false),
                connections: AtomicUsize::new(0),
            }),
        })
    }
}

struct EngineParts {
    cors: CorsOrigins,
    max_payload: NonZeroUsize,
    ping_interval: Duration,
    ping_timeout: Duration,
    shutdown_timeout: Duration,
    limiter: ConnectionLimiter,
    trust_proxy_hops: u32,
    dev_token: Option<String>,
}

/// Builds the verifier of `jwt`, naming the setting at fault.
///
/// # Errors
///
/// [`ConfigError::Jwt`] or [`ConfigError::Invalid`].
pub fn build_verifier(jwt: &JwtSettings) -> Result<Verifier, ConfigError> {
    use sockeye_auth::ConfigError as E;

    let mut builder = Verifier::builder().leeway(jwt.leeway);
    if let Some(secret) = &jwt.secret {
        builder = builder.hmac_secret(secret.as_bytes());
    }
    if let Some(path) = &jwt.public_key {
        let pem = std::fs::read(path).map_err(|e| {
            crate::config::invalid(
                "--jwt-public-key",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        builder = builder.public_key_pem(pem);
    }
    if let Some(path) = &jwt.jwks {
        builder = builder.jwks_file(path.clone());
    }
    if let Some(algorithms) = &jwt.algorithms {
        builder = builder.algorithms(algorithms.iter().copied());
    }
    if let Some(issuer) = &jwt.issuer {
        builder = builder.issuer(issuer.clone());
    }
    if let Some(audience) = &jwt.audience {
        builder = builder.audience(audience.clone());
    }
    builder.build().map_err(|source| {
        let setting = match &source {
            E::SecretTooShort { .. } => "--jwt-secret",
            E::NoKey => "--jwt-secret",
            E::NoAlgorithms | E::NoKeyForAlgorithm(_) => "--jwt-algorithms",
            E::InvalidPublicKey { .. } | E::WeakRsaKey { .. } => "--jwt-public-key",
            E::JwksIo { .. } | E::Jwks { .. } => "--jwt-jwks",
            _ => "--jwt-secret",
        };
        ConfigError::Jwt { setting, source }
    })
}

/// A built server: cheap to clone, `Arc` inside.
///
/// Serve it with [`Server::serve`] (accept loop, TLS when configured, graceful shutdown), or
/// mount [`Server::handle`] / the [`hyper::service::Service`] and `tower::Service`
/// implementations in another stack (axum: `Router::new().fallback_service(server)`).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    broker: Broker,
    metrics: Metrics,
    glue: Arc<Glue>,
    app: Option<Arc<App>>,
    cluster: Option<Arc<dyn ClusterStatus>>,
    tls: Option<ReloadableTls>,
    page: String,
    shutting_down: AtomicBool,
    shutdown_timeout: Duration,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Tells every HTTP connection to finish.
    stop: tokio::sync::watch::Sender<bool>,
    connections: AtomicUsize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let tasks = self
            .tasks
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("engine", &self.inner.engine)
            .field("broker", &self.inner.broker)
            .field("tls", &self.inner.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The Engine.IO engine mounted at `/socket.io/`.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The Socket.IO broker: emit to namespaces and rooms from outside a handler.
    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether TLS is configured.
    pub fn is_tls(&self) -> bool {
        self.inner.tls.is_some()
    }

    /// Reads the TLS certificate and key files again (what the binary does on SIGHUP): new
    /// connections use them, open ones keep theirs. `Ok(false)` when the server has no TLS.
    ///
    /// # Errors
    /// [`ConfigError::Tls`] when the files do not load or do not fit; the certificate in use
    /// is then kept.
    pub fn reload_tls(&self) -> Result<bool, ConfigError> {
        match &self.inner.tls {
            None => Ok(false),
            Some(tls) => tls.reload().map(|()| true),
        }
    }

    /// Reloads the TLS files ([`Server::reload_tls`]) on every SIGHUP, for certificate renewal
    /// without a restart; the binary runs it when TLS is on. A pair that does not load is
    /// logged and the certificate in use kept. Returns only when signals cannot be received.
    pub async fn reload_tls_on_sighup(self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangup = match signal(SignalKind::hangup()) {
                Ok(hangup) => hangup,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP: TLS reload disabled");
                    return;
                }
            };
            while hangup.recv().await.is_some() {
                match self.reload_tls() {
                    Ok(_) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(error) => tracing::warn!(
                        %error,
                        "SIGHUP: TLS reload failed, the certificate in use is kept"
                    ),
                }
            }
        }
    }

    /// Starts the server's timer tasks (connect timeouts, token expiry) on the current tokio
    /// runtime. [`serve`](Self::serve) calls it; call it yourself when you only mount
    /// [`handle`](Self::handle) elsewhere. Calling it again does nothing.
    pub fn start(&self) {
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !tasks.is_empty() {
            return;
        }
        tasks.push(tokio::spawn(self.inner.glue.timer_task()));
        if let Some(app) = &self.inner.app {
            tasks.push(tokio::spawn(app.expiry_task()));
        }
    }

    /// Answers one HTTP request: `/socket.io/` goes to the engine; `GET /`, `/healthz`,
    /// `/readyz`, `/metrics` and `/vendor/socket.io.min.js` are served here; anything else is
    /// 404.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<EngineBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if let Err(refusal) = sockeye_engine::server::check_framing(request.headers()) {
            return refusal;
        }
        let path = request.uri().path();
        if path == "/socket.io" || path.starts_with("/socket.io/") {
            return self.inner.engine.handle(request).await;
        }
        let is_get = matches!(*request.method(), Method::GET | Method::HEAD);
        if !is_get {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match path {
            "/" | "/index.html" => {
                let mut response = Response::new(EngineBody::full(self.inner.page.clone()));
                set_type(&mut response, "text/html; charset=utf-8");
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            "/vendor/socket.io.min.js" => {
                let mut response =
                    Response::new(EngineBody::full(bytes::Bytes::from_static(CLIENT_JS)));
                set_type(&mut response, "text/javascript; charset=utf-8");
                response.headers_mut().insert(
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                );
                response
            }
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            "/readyz" => {
                if self.inner.shutting_down.load(Ordering::Acquire) {
                    plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                } else if self
                    .inner
                    .cluster
                    .as_ref()
                    .is_some_and(|cluster| !cluster.is_ready())
                {
                    plain(StatusCode::SERVICE_UNAVAILABLE, "cluster not ready\n")
                } else {
                    plain(StatusCode::OK, "ready\n")
                }
            }
            "/metrics" => {
                let namespaces = self.inner.broker.namespaces();
                self.inner.metrics.set_broker_gauges(
                    namespaces
                        .iter()
                        .map(|ns| (ns.name(), ns.socket_count(), ns.room_count())),
                );
                let mut response = Response::new(EngineBody::full(self.inner.metrics.encode()));
                set_type(&mut response, "text/plain; version=0.0.4; charset=utf-8");
                response
            }
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Accepts connections on `listener` (TLS when configured) until `signal` completes, then
    /// shuts down gracefully: `/readyz` turns 503, no new connection is accepted, every session
    /// is closed with the reason `server shutting down` (clients reconnect elsewhere), and
    /// HTTP connections get the shutdown timeout to finish.
    ///
    /// # Errors
    ///
    /// None at present: accept errors are logged and retried.
    pub async fn serve(
        &self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.start();
        let mut signal = std::pin::pin!(signal);
        loop {
            tokio::select! {
                () = &mut signal => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        self.spawn_connection(stream, addr);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
        // The listener stays open while the sessions drain, so a polling client between two
        // polls still fetches what was queued for it and its close packet (new handshakes
        // get 503); it closes when the drain is over.
        let drain = self.shutdown();
        let mut drain = std::pin::pin!(drain);
        loop {
            tokio::select! {
                () = &mut drain => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        self.spawn_connection(stream, addr);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
        drop(listener);
        Ok(())
    }

    fn spawn_connection(&self, stream: tokio::net::TcpStream, addr: SocketAddr) {
        let server = self.clone();
        match &self.inner.tls {
            None => {
                tokio::spawn(async move { server.serve_connection(stream, Some(addr)).await });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => server.serve_connection(stream, Some(addr)).await,
                        Ok(Err(error)) => tracing::debug!(%addr, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        }
    }

    /// Serves HTTP/1.1 (with WebSocket upgrades) on one connection until it ends or the server
    /// shuts down. For your own accept loop (another TLS stack, a Unix socket).
    pub async fn serve_connection<I>(&self, io: I, remote: Option<SocketAddr>)
    where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Some(io) = sockeye_engine::server::refuse_http2_preface(io, HEADER_READ_TIMEOUT).await
        else {
            return;
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_headers(64)
            .max_buf_size(16 * 1024)
            .keep_alive(true);
        let server = self.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                if let Some(addr) = remote {
                    request.extensions_mut().insert(RemoteAddr(addr));
                }
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(request).await) }
            });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut connection = std::pin::pin!(connection);
        let mut stop = self.inner.stop.subscribe();
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection error");
                }
            }
            () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                connection.as_mut().graceful_shutdown();
                let deadline = self.inner.shutdown_timeout;
                if tokio::time::timeout(deadline, connection).await.is_err() {
                    tracing::debug!("connection cut at the shutdown deadline");
                }
            }
        }
        self.inner.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Graceful shutdown: `/readyz` answers 503, every Engine.IO session is closed with the
    /// reason `server shutting down` (queued messages are still delivered), then HTTP
    /// connections are asked to finish; returns when all is done or the shutdown timeout
    /// passed.
    pub async fn shutdown(&self) {
        if self.inner.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        let sessions = self.inner.engine.session_count();
        tracing::info!(sessions, "shutting down: closing every session");
        self.inner.engine.shutdown().await;
        self.inner.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + self.inner.shutdown_timeout;
        while self.inner.connections.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!("shutdown complete");
    }
}

impl<B> hyper::service::Service<Request<B>> for Server
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EngineBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EngineBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let server = self.clone();
        Box::pin(async move { Ok(server.handle(request).await) })
    }
}

impl<B> tower_service::Service<Request<B>> for Server
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EngineBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EngineBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let server = self.clone();
        Box::pin(async move { Ok(server.handle(request).await) })
    }
}

fn set_type(response: &mut Response<EngineBody>, value: &'static str) {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(value));
}

fn plain(status: StatusCode, text: &'static str) -> Response<EngineBody> {
    let mut response = Response::new(EngineBody::full(bytes::Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    set_type(&mut response, "text/plain; charset=utf-8");
    response
}

/// Escapes text for an HTML attribute value in double quotes.
fn html_attr_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_the_placeholder_once_and_the_client_path() {
        assert_eq!(PAGE.matches(TOKEN_PLACEHOLDER).count(), 1);
        assert!(PAGE.contains("/vendor/socket.io.min.js"));
        assert!(!CLIENT_JS.is_empty());
        assert_eq!(html_attr_escape(r#"a"<b>&'"#), "a&quot;&lt;b&gt;&amp;&#39;");
    }
}
