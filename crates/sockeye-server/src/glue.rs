//! Engine sessions to broker connections: the engine's [`Handler`] and the broker's
//! [`Transport`], plus the connect-timeout timer and the per-address connection cap.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use bytes::Bytes;
use sockeye_broker::{
    Broker, CloseReason as BrokerClose, Connection, DisconnectReason, EngineInfo, SendError,
    SendFlags, Transport,
};
use sockeye_codec::{Outgoing, Utf8Bytes};
use sockeye_engine::server::Refusal;
use sockeye_engine::{
    CloseReason, Handler, HandshakeInfo, SendError as EngineSendError, SessionHandle, Sid,
    Transport as EngineTransport,
};

use crate::limits::{ConnectionLimiter, ConnectionPermit, client_ip};
use crate::metrics::{Metrics, TransportKind};
use crate::timers::Scheduler;

/// The engine's handler: one [`Connection`] per Engine.IO session.
pub(crate) struct Glue {
    broker: Broker,
    metrics: Metrics,
    limiter: ConnectionLimiter,
    trust_proxy_hops: u32,
    secure: bool,
    sessions: Sessions,
    next_key: AtomicU64,
    connect_timeouts: Arc<Scheduler<u64, Instant>>,
    /// Sessions by timer key, for the connect-timeout task.
    timer_keys: Mutex<HashMap<u64, Weak<Entry>>>,
}

/// One session's Socket.IO state.
struct Entry {
    key: u64,
    conn: Mutex<Connection>,
    /// A close that arrived while `conn` was locked (on this thread or another): whoever
    /// releases the lock applies it.
    pending_close: Mutex<Option<DisconnectReason>>,
    websocket: AtomicBool,
    _permit: Option<ConnectionPermit>,
}

impl Entry {
    fn lock_conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection, then applies a close that came in meanwhile.
    fn with_conn<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        let result = {
            let mut conn = self.lock_conn();
            f(&mut conn)
        };
        self.apply_pending_close();
        result
    }

    fn apply_pending_close(&self) {
        loop {
            let Ok(mut conn) = self.conn.try_lock() else {
                // The holder applies it when it lets go.
                return;
            };
            let Some(reason) = lock(&self.pending_close).take() else {
                return;
            };
            conn.on_engine_close(reason);
        }
    }

    fn kind(&self) -> TransportKind {
        if self.websocket.load(Ordering::Acquire) {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        }
    }
}

/// The sessions by id, in shards so that sessions on different threads rarely share a lock
/// (every message looks its session up).
struct Sessions {
    hasher: RandomState,
    shards: [Mutex<HashMap<Sid, Arc<Entry>>>; SHARDS],
}

/// The `Retry-After` of a handshake refused because its address is at the session cap.
const CONNECTION_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

const SHARDS: usize = 32;

impl Default for Sessions {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl Sessions {
    fn shard(&self, sid: Sid) -> &Mutex<HashMap<Sid, Arc<Entry>>> {
        let index = usize::try_from(self.hasher.hash_one(sid) % SHARDS as u64).unwrap_or(0);
        &self.shards[index % SHARDS]
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Glue {
    pub(crate) fn new(
        broker: Broker,
        metrics: Metrics,
        limiter: ConnectionLimiter,
        trust_proxy_hops: u32,
        secure: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            broker,
            metrics,
            limiter,
            trust_proxy_hops,
            secure,
            sessions: Sessions::default(),
            next_key: AtomicU64::new(0),
            connect_timeouts: Arc::new(Scheduler::new()),
            timer_keys: Mutex::new(HashMap::new()),
        })
    }

    /// The connect-timeout task: one for the whole server.
    pub(crate) fn timer_task(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let weak = Arc::downgrade(self);
        self.connect_timeouts.clone().run(move |due| {
            let Some(glue) = weak.upgrade() else { return };
            for key in due {
                let entry = lock(&glue.timer_keys)
                    .remove(&key)
                    .and_then(|w| w.upgrade());
                if let Some(entry) = entry {
                    let now = crate::timers_now();
                    let next = entry.with_conn(|conn| {
                        conn.handle_timeout(now);
                        conn.poll_timeout()
                    });
                    glue.schedule(&entry, next);
                }
            }
        })
    }

    fn schedule(&self, entry: &Arc<Entry>, at: Option<Instant>) {
        if let Some(at) = at {
            lock(&self.timer_keys).insert(entry.key, Arc::downgrade(entry));
            self.connect_timeouts.insert(entry.key, at);
        }
    }

    fn entry(&self, session: &SessionHandle) -> Option<Arc<Entry>> {
        lock(self.sessions.shard(session.sid()))
            .get(&session.sid())
            .cloned()
    }

    fn engine_info(&self, session: &SessionHandle, request: &HandshakeInfo) -> EngineInfo {
        let headers: HashMap<String, String> = request
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect();
        let query = parse_query(request.uri().query().unwrap_or(""));
        let peer = request.remote_addr();
        let remote = client_ip(peer, request.headers(), self.trust_proxy_hops)
            .map(|ip| SocketAddr::new(ip, peer.map_or(0, |p| p.port())));
        let mut info = EngineInfo::new(session.sid().to_string())
            .headers(headers)
            .query(query)
            .secure(self.secure)
            .url(
                request
                    .uri()
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .to_owned(),
            );
        if let Some(remote) = remote {
            info = info.remote_addr(remote);
        }
        info
    }
}

impl Handler for Glue {
    fn on_handshake(&self, request: &HandshakeInfo) -> Result<(), Refusal> {
        if let Some(ip) = client_ip(
            request.remote_addr(),
            request.headers(),
            self.trust_proxy_hops,
        ) && !self.limiter.has_room(ip)
        {
            self.metrics.connection_refused();
            tracing::info!(%ip, "connection refused: too many connections from this address");
            // 429 with Retry-After, not 403: the client may come back once a slot frees.
            return Err(Refusal::too_many_requests(
                "Too many connections from this address",
                CONNECTION_RETRY_AFTER,
            ));
        }
        Ok(())
    }

    fn on_open(&self, session: &SessionHandle, request: &HandshakeInfo) {
        let permit = match client_ip(
            request.remote_addr(),
            request.headers(),
            self.trust_proxy_hops,
        ) {
            Some(ip) => match self.limiter.try_acquire(ip) {
                Some(permit) => Some(permit),
                None => {
                    // Lost a race with another handshake from the same address.
                    self.metrics.connection_refused();
                    session.close(CloseReason::ForcedClose);
                    return;
                }
            },
            None => None,
        };
        let websocket = request.transport() == EngineTransport::WebSocket;
        let kind = if websocket {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        };
        self.metrics.session_opened(kind);
        let info = self.engine_info(session, request);
        let transport = Arc::new(SessionTransport {
            session: session.clone(),
            metrics: self.metrics.clone(),
        });
        let now = crate::timers_now();
        let conn = self.broker.on_engine_open(transport, info, now);
        let deadline = conn.poll_timeout();
        let entry = Arc::new(Entry {
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            conn: Mutex::new(conn),
            pending_close: Mutex::new(None),
            websocket: AtomicBool::new(websocket),
            _permit: permit,
        });
        lock(self.sessions.shard(session.sid())).insert(session.sid(), entry.clone());
        self.schedule(&entry, deadline);
    }

    fn on_message(&self, session: &SessionHandle, text: Utf8Bytes) {
        let is_event = matches!(text.as_str().as_bytes().first(), Some(b'2' | b'5'));
        self.metrics.received(text.len() + 1, is_event);
        if let Some(entry) = self.entry(session) {
            let now = crate::timers_now();
            let (before, after) = entry.with_conn(|conn| {
                let before = conn.poll_timeout();
                let _ = conn.on_engine_text(text, now);
                (before, conn.poll_timeout())
            });
            // A binary packet's header starts its attachment deadline.
            if after != before {
                self.schedule(&entry, after);
            }
        }
    }

    fn on_binary(&self, session: &SessionHandle, data: Bytes) {
        self.metrics.received(data.len(), false);
        if let Some(entry) = self.entry(session) {
            let _ = entry.with_conn(|conn| conn.on_engine_binary(data));
        }
    }

    fn on_upgrade(&self, session: &SessionHandle) {
        if let Some(entry) = self.entry(session)
            && !entry.websocket.swap(true, Ordering::AcqRel)
        {
            self.metrics.session_upgraded();
        }
    }

    fn on_close(&self, session: &SessionHandle, reason: CloseReason) {
        let Some(entry) = lock(self.sessions.shard(session.sid())).remove(&session.sid()) else {
            return;
        };
        self.metrics.session_closed(entry.kind());
        if reason == CloseReason::SlowConsumer {
            self.metrics.slow_consumer_close();
        }
        lock(&self.timer_keys).remove(&entry.key);
        self.connect_timeouts.remove(&entry.key);
        *lock(&entry.pending_close) = Some(disconnect_reason(reason));
        entry.apply_pending_close();
        tracing::debug!(sid = %session.sid(), %reason, "session closed");
    }
}

fn disconnect_reason(reason: CloseReason) -> DisconnectReason {
    match reason {
        CloseReason::TransportClose => DisconnectReason::TransportClose,
        CloseReason::PingTimeout => DisconnectReason::PingTimeout,
        CloseReason::ParseError => DisconnectReason::ParseError,
        CloseReason::ForcedClose => DisconnectReason::ForcedServerClose,
        CloseReason::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
        _ => DisconnectReason::TransportError,
    }
}

/// The broker's view of an engine session.
struct SessionTransport {
    session: SessionHandle,
    metrics: Metrics,
}

impl Transport for SessionTransport {
    fn send(&self, message: Outgoing, flags: SendFlags) -> Result<(), SendError> {
        let len = message.wire_len();
        let is_event = message
            .text()
            .is_some_and(|t| matches!(t.as_str().as_bytes().get(1), Some(b'2' | b'5')));
        let sent = if flags.volatile {
            self.session.send_volatile(message)
        } else {
            self.session.send(message)
        };
        match sent {
            Ok(()) => {
                self.metrics.sent(len, is_event);
                Ok(())
            }
            Err(EngineSendError::Dropped) => Err(SendError::Dropped),
            Err(EngineSendError::SlowConsumer) => Err(SendError::Full),
            Err(EngineSendError::TooLarge { len, max }) => {
                tracing::warn!(len, max, "message over maxPayload not sent");
                Err(SendError::Dropped)
            }
            Err(_) => Err(SendError::Closed),
        }
    }

    fn close(&self, reason: BrokerClose) {
        tracing::debug!(sid = %self.session.sid(), ?reason, "broker closes the session");
        self.session.close(CloseReason::ForcedClose);
    }
}

/// Decodes a query string into a map (first value wins; `+` is a space; bad escapes are kept
/// as written).
pub(crate) fn parse_query(query: &str) -> HashMap<String, String> {
    use sockeye_auth::percent_decode;
    let mut map = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        map.entry(percent_decode(key))
            .or_insert_with(|| percent_decode(value));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("EIO=4&transport=polling&token=a%2Eb.c&x=1+2&x=3&bad=%zz&empty");
        assert_eq!(q["EIO"], "4");
        assert_eq!(q["token"], "a.b.c");
        assert_eq!(q["x"], "1 2");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(q["empty"], "");
    }

    #[test]
    fn close_reasons_map() {
        assert_eq!(
            disconnect_reason(CloseReason::PingTimeout),
            DisconnectReason::PingTimeout
        );
        assert_eq!(
            disconnect_reason(CloseReason::ServerShuttingDown),
            DisconnectReason::ServerShuttingDown
        );
        assert_eq!(
            disconnect_reason(CloseReason::PayloadTooLarge),
            DisconnectReason::TransportError
        );
    }
}
