//! The default application of `APP-CONTRACT.md`: a JWT-authenticated chat gateway on the main
//! namespace `/` with `message`, `join`, `leave` and `auth` events, `message` and `error`
//! events from the server, a per-socket rate limit and token expiry while connected.
//!
//! The rules live in pure modules ([`validate`], [`rate`], [`expiry`], [`error`]); this module
//! wires them to the broker: a connect middleware that authenticates the handshake, one event
//! handler for every event (so the rate limit counts unknown events too) and one task for all
//! token expiries.

pub mod error;
pub mod expiry;
pub mod rate;
pub mod validate;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use sockeye_auth::{Claims, Rejection, Verifier, extract_token};
use sockeye_broker::{
    AckSender, ConnectError, Event, NamespaceBuilder, SocketId, SocketRef, State, TryData,
};

pub use self::error::{AppError, ErrorCode};
use self::rate::{RateLimiter, Verdict};
use self::validate::{Limits, MessageRequest, RoomName, parse_auth_payload, parse_room_payload};
use crate::config::RateLimit;
use crate::metrics::Metrics;
use crate::timers::{Scheduler, UnixSecs};

/// Settings of the default application.
#[derive(Debug, Clone, Copy)]
pub struct AppConfig {
    limits: Limits,
    rate_limit: Option<RateLimit>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            rate_limit: Some(RateLimit {
                per_second: std::num::NonZeroU32::new(crate::config::defaults::RATE_LIMIT)
                    .expect("invariant: the default rate is not 0"),
                burst: std::num::NonZeroU32::new(crate::config::defaults::RATE_BURST)
                    .expect("invariant: the default burst is not 0"),
            }),
        }
    }
}

impl AppConfig {
    /// The longest `content` in code points (`None`: no cap; default 4096).
    #[must_use]
    pub fn max_content_length(mut self, max: Option<NonZeroUsize>) -> Self {
        self.limits = self.limits.max_content(max);
        self
    }

    /// The most rooms a socket may be in through `join`, its own id room included (default
    /// 1024); a `join` past it is refused with `FORBIDDEN`.
    #[must_use]
    pub fn max_rooms_per_socket(mut self, max: usize) -> Self {
        self.limits = self.limits.max_rooms_per_socket(max);
        self
    }

    /// The per-socket rate limit (`None`: off; default 20/s, burst 40).
    #[must_use]
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }
}

/// The application: shared by every socket through the broker's state.
pub(crate) struct App {
    config: AppConfig,
    verifier: Arc<Verifier>,
    metrics: Metrics,
    ids: MessageIds,
    expiry: Arc<Scheduler<SocketId, UnixSecs>>,
    /// Sockets with a scheduled expiry, for the expiry task.
    sockets: Mutex<HashMap<SocketId, SocketRef>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a socket of the application carries: its claims and its rate limiter.
struct SocketState {
    claims: Mutex<Claims>,
    limiter: Option<Mutex<RateLimiter>>,
}

impl SocketState {
    fn claims(&self) -> MutexGuard<'_, Claims> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `message` event the server sends.
#[derive(Serialize)]
struct OutMessage<'a> {
    id: &'a str,
    content: &'a str,
    from: From<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    ts: u64,
}

#[derive(Serialize)]
struct From<'a> {
    sub: Option<&'a str>,
    sid: &'a str,
}

impl App {
    pub(crate) fn new(config: AppConfig, verifier: Arc<Verifier>, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            config,
            verifier,
            metrics,
            ids: MessageIds::new(),
            expiry: Arc::new(Scheduler::new()),
            sockets: Mutex::new(HashMap::new()),
        })
    }

    /// The handlers of the application's namespace.
    pub(crate) fn namespace(ns: NamespaceBuilder) -> NamespaceBuilder {
        ns.connect_middleware(authenticate)
            .on_connect(on_connect)
            .on_fallback(on_event)
            .on_disconnect(on_disconnect)
    }

    /// The expiry task: one for the whole server. Runs until the app is dropped.
    pub(crate) fn expiry_task(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let weak = Arc::downgrade(self);
        let scheduler = self.expiry.clone();
        scheduler.run(move |due| {
            if let Some(app) = weak.upgrade() {
                app.expire(due);
            }
        })
    }

    fn lock_sockets(&self) -> MutexGuard<'_, HashMap<SocketId, SocketRef>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expire(&self, due: Vec<SocketId>) {
        for id in due {
            let Some(socket) = self.lock_sockets().remove(&id) else {
                continue;
            };
            tracing::info!(socket = %id, "token expired: disconnecting");
            let error = AppError::new(ErrorCode::TokenExpired, "the token has expired");
            self.metrics.error(error.code());
            let _ = socket.emit("error", &error.to_json());
            socket.disconnect();
        }
    }

    fn schedule_expiry(&self, socket: &SocketRef, claims: &Claims) {
        let at = self.verifier.expires_at(claims);
        self.lock_sockets().insert(socket.id(), socket.clone());
        self.expiry.insert(socket.id(), UnixSecs(at));
        // A disconnect that ran before this insert (on another thread) removed nothing: undo.
        if !socket.connected() {
            self.lock_sockets().remove(&socket.id());
            self.expiry.remove(&socket.id());
        }
    }

    fn verify_handshake(&self, socket: &SocketRef) -> Result<Claims, Rejection> {
        let handshake = socket.handshake();
        // Read as the broker reads it: a field `serde_json` cannot hold (`1e400`, a lone
        // surrogate) does not hide the token.
        let auth: Option<Value> = handshake.auth().ok();
        let header = handshake.header("authorization").map(str::as_bytes);
        let query = handshake.query().get("token").map(String::as_str);
        let token = extract_token(auth.as_ref(), header, query)?;
        self.verifier.verify(&token, SystemTime::now())
    }

    fn reply(&self, socket: &SocketRef, ack: Option<AckSender>, result: Result<Value, AppError>) {
        match result {
            Ok(value) => {
                if let Some(ack) = ack {
                    let _ = ack.send(&value);
                }
            }
            Err(error) => {
                self.metrics.error(error.code());
                let sent = match ack {
                    Some(ack) => ack.send(&error.to_ack()),
                    None => socket.emit("error", &error.to_json()),
                };
                if let Err(e) = sent {
                    tracing::debug!(socket = %socket.id(), error = %e, "error reply not sent");
                }
            }
        }
    }

    async fn handle(
        &self,
        socket: &SocketRef,
        name: &str,
        payload: Option<&Value>,
        state: &SocketState,
    ) -> Result<Value, AppError> {
        match name {
            "message" => self.on_message(socket, payload, state).await,
            "join" => on_join(socket, payload, &self.config.limits),
            "leave" => on_leave(socket, payload),
            "auth" => self.on_auth(socket, payload, state),
            _ => Err(AppError::new(
                ErrorCode::UnknownEvent,
                "the server does not handle this event",
            )),
        }
    }

    async fn on_message(
        &self,
        socket: &SocketRef,
        payload: Option<&Value>,
        state: &SocketState,
    ) -> Result<Value, AppError> {
        let request = MessageRequest::parse(payload, &self.config.limits)?;
        if let Some(room) = &request.room
            && !socket.in_room(room.as_str())
        {
            return Err(AppError::new(
                ErrorCode::NotInRoom,
                "the socket is not in that room",
            ));
        }
        let id = self.ids.next();
        let sub = state.claims().sub().map(str::to_owned);
        let sid = socket.id();
        let message = OutMessage {
            id: &id,
            content: &request.content,
            from: From {
                sub: sub.as_deref(),
                sid: sid.as_str(),
            },
            room: request.room.as_ref().map(RoomName::as_str),
            ts: unix_millis(),
        };
        let internal = |e: sockeye_broker::EmitError| {
            tracing::warn!(socket = %sid, error = %e, "message not delivered");
            AppError::new(ErrorCode::Internal, "the message could not be delivered")
        };
        match &request.room {
            None => socket.emit("message", &message).map_err(internal)?,
            Some(room) => {
                self.metrics
                    .fanout(socket.namespace().room_size(room.as_str()));
                socket
                    .within(room.as_str())
                    .emit("message", &message)
                    .await
                    .map_err(internal)?;
            }
        }
        Ok(error::ack::message(&id))
    }

    fn on_auth(
        &self,
        socket: &SocketRef,
        payload: Option<&Value>,
        state: &SocketState,
    ) -> Result<Value, AppError> {
        let object = parse_auth_payload(payload)?;
        let current_sub = state.claims().sub().map(str::to_owned);
        let claims = extract_token(Some(object), None, None)
            .and_then(|token| {
                self.verifier
                    .verify_refresh(&token, SystemTime::now(), current_sub.as_deref())
            })
            .map_err(|rejection| {
                self.metrics.auth_refused(rejection.reason());
                tracing::info!(socket = %socket.id(), reason = rejection.reason(), "refresh token refused");
                AppError::unauthorized(&rejection)
            })?;
        let exp = claims.exp();
        self.schedule_expiry(socket, &claims);
        *state.claims() = claims;
        Ok(error::ack::auth(exp))
    }
}

fn on_join(
    socket: &SocketRef,
    payload: Option<&Value>,
    limits: &Limits,
) -> Result<Value, AppError> {
    let room = parse_room_payload(payload)?;
    if !socket.in_room(room.as_str()) && socket.rooms().len() >= limits.max_rooms() {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "the socket is in as many rooms as allowed: leave one first",
        ));
    }
    // The room named by a socket's id belongs to that socket alone. Other names of the
    // socket-id shape are ordinary rooms while no socket has that id.
    let owner = SocketId::parse(room.as_str())
        .filter(|id| *id != socket.id())
        .and_then(|id| socket.namespace().socket(id));
    if owner.is_some() {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "that room belongs to another socket",
        ));
    }
    socket.join(room.as_str());
    let size = socket.namespace().room_size(room.as_str());
    Ok(error::ack::join(room.as_str(), size))
}

fn on_leave(socket: &SocketRef, payload: Option<&Value>) -> Result<Value, AppError> {
    let room = parse_room_payload(payload)?;
    if room.as_str() != socket.id().as_str() {
        socket.leave(room.as_str());
    }
    Ok(error::ack::leave(room.as_str()))
}

async fn authenticate(socket: SocketRef, State(app): State<Arc<App>>) -> Result<(), ConnectError> {
    match app.verify_handshake(&socket) {
        Ok(claims) => {
            let limiter = app
                .config
                .rate_limit
                .map(|limit| Mutex::new(RateLimiter::new(limit, Instant::now())));
            socket.insert_extension(Arc::new(SocketState {
                claims: Mutex::new(claims),
                limiter,
            }));
            Ok(())
        }
        Err(rejection) => {
            app.metrics.auth_refused(rejection.reason());
            tracing::info!(
                reason = rejection.reason(),
                detail = %rejection,
                peer = ?socket.handshake().remote_addr(),
                "handshake refused"
            );
            Err(ConnectError::new("unauthorized").with_data(error::connect_error_data(&rejection)))
        }
    }
}

async fn on_connect(socket: SocketRef, State(app): State<Arc<App>>) {
    if let Some(state) = socket.extension::<Arc<SocketState>>() {
        let claims = state.claims().clone();
        tracing::debug!(socket = %socket.id(), sub = ?claims.sub(), "connected");
        app.schedule_expiry(&socket, &claims);
    }
}

async fn on_disconnect(socket: SocketRef, State(app): State<Arc<App>>) {
    app.lock_sockets().remove(&socket.id());
    app.expiry.remove(&socket.id());
}

async fn on_event(
    socket: SocketRef,
    Event(name): Event,
    TryData(payload): TryData<Value>,
    ack: Option<AckSender>,
    State(app): State<Arc<App>>,
) {
    let Some(state) = socket.extension::<Arc<SocketState>>() else {
        return;
    };
    if let Some(limiter) = &state.limiter {
        let verdict = limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(Instant::now());
        match verdict {
            Verdict::Allow => {}
            Verdict::Limit => {
                let error = AppError::new(ErrorCode::RateLimited, "too many events: slow down");
                app.reply(&socket, ack, Err(error.for_event(&name)));
                return;
            }
            _ => {
                tracing::info!(socket = %socket.id(), "too many events dropped: disconnecting");
                let error = AppError::new(ErrorCode::RateLimited, "too many events: disconnected");
                app.reply(&socket, ack, Err(error.for_event(&name)));
                socket.disconnect();
                return;
            }
        }
    }
    let payload = match payload {
        Ok(value) => Some(value),
        // Valid JSON that serde_json cannot hold: a string with a lone surrogate escape
        // (`"\ud800"`), which has no Unicode text. Say so, rather than "must be an object".
        Err(error) if is_app_event(&name) => {
            tracing::debug!(socket = %socket.id(), event = %name, %error, "unreadable payload");
            let error = AppError::validation(
                "payload is not Unicode text: lone surrogate escapes (\\ud800 to \\udfff) are refused",
            );
            app.reply(&socket, ack, Err(error.for_event(&name)));
            return;
        }
        Err(_) => None,
    };
    let result = app
        .handle(&socket, &name, payload.as_ref(), &state)
        .await
        .map_err(|e| e.for_event(&name));
    app.reply(&socket, ack, result);
}

/// The events the application answers (any other is `UNKNOWN_EVENT`, whatever its payload).
fn is_app_event(name: &str) -> bool {
    matches!(name, "message" | "join" | "leave" | "auth")
}

/// Message ids: unique per message and per server run (a random prefix and a counter).
#[derive(Debug)]
struct MessageIds {
    prefix: String,
    next: AtomicU64,
}

impl MessageIds {
    fn new() -> Self {
        Self {
            prefix: format!("{:08x}", rand::random::<u32>()),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique() {
        let ids = MessageIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert!(a.starts_with(&ids.prefix));
        let other = MessageIds::new();
        // Two runs have different prefixes (with overwhelming probability).
        assert!(other.prefix != ids.prefix || other.next() != ids.next());
    }
}
