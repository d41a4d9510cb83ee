//! The engine, its session table, and the handle the layer above holds.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use sockeye_codec::Outgoing;
use tokio::sync::Notify;

use super::config::EngineConfig;
use super::direct::DirectOut;
use super::handler::{Handler, HandshakeInfo};
use super::timers::Timers;
use crate::proto::{CloseReason, Event, SendError, Session, SessionConfig, Sid, Transport};

/// How long a closed polling session stays reachable for its final packet.
const FINAL_POLL_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// An Engine.IO server: a cheap-to-clone hyper service (an `Arc` inside).
///
/// Serve it with [`Engine::serve`] (an accept loop with graceful shutdown), with
/// [`Engine::serve_connection`] (your own accept loop, e.g. TLS), or mount it as a
/// `hyper::service::Service` in another stack (requests outside the configured path get 404).
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.inner.config.path)
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

/// Engine-wide counters (see [`Engine::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EngineStats {
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Sessions closed, for any reason.
    pub sessions_closed: u64,
    /// Sessions closed by the slow-consumer policy.
    pub slow_consumer_closes: u64,
    /// Volatile messages dropped because a queue was full.
    pub volatile_dropped: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    opened: AtomicU64,
    closed: AtomicU64,
    slow_consumer: AtomicU64,
    volatile_dropped: AtomicU64,
}

pub(crate) struct EngineInner {
    pub(crate) config: EngineConfig,
    pub(crate) session_config: Arc<SessionConfig>,
    pub(crate) handler: Arc<dyn Handler>,
    sessions: Mutex<HashMap<Sid, Arc<Shared>>>,
    pub(crate) timers: Arc<Timers>,
    pub(crate) shutting_down: AtomicBool,
    /// Set when a shutdown ran out of time: WebSocket drivers stop at once.
    pub(crate) aborted: AtomicBool,
    pub(crate) abort: Notify,
    /// Live WebSocket driver tasks.
    pub(crate) drivers: AtomicUsize,
    /// Signalled when a session is removed or a driver ends (shutdown waits on it).
    pub(crate) changed: Notify,
    pub(crate) counters: Counters,
    pub(crate) graceful: tokio::sync::watch::Sender<bool>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.timers.stop();
    }
}

impl Engine {
    /// An engine with `config` that reports to `handler`.
    pub fn new(config: EngineConfig, handler: impl Handler) -> Self {
        Self::with_shared_handler(config, Arc::new(handler))
    }

    /// As [`Engine::new`], with a handler that is already shared.
    pub fn with_shared_handler(config: EngineConfig, handler: Arc<dyn Handler>) -> Self {
        let session_config = Arc::new(config.session.clone());
        Self {
            inner: Arc::new(EngineInner {
                config,
                session_config,
                handler,
                sessions: Mutex::new(HashMap::new()),
                timers: Arc::new(Timers::default()),
                shutting_down: AtomicBool::new(false),
                aborted: AtomicBool::new(false),
                abort: Notify::new(),
                drivers: AtomicUsize::new(0),
                changed: Notify::new(),
                counters: Counters::default(),
                graceful: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The session with this id, if it is open.
    pub fn session(&self, sid: Sid) -> Option<SessionHandle> {
        self.inner.lookup(sid).map(SessionHandle)
    }

    /// Counters since the engine started.
    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        EngineStats {
            sessions_opened: c.opened.load(Ordering::Relaxed),
            sessions_closed: c.closed.load(Ordering::Relaxed),
            slow_consumer_closes: c.slow_consumer.load(Ordering::Relaxed),
            volatile_dropped: c.volatile_dropped.load(Ordering::Relaxed),
        }
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.inner.sessions().len()
    }

    /// Closes every session with [`CloseReason::ServerShuttingDown`], refuses new handshakes
    /// (503), asks HTTP connections served by [`Engine::serve`]/[`Engine::serve_connection`]
    /// to finish, and waits until sessions and WebSocket connections are gone or the shutdown
    /// timeout passed (then remaining WebSocket connections are cut).
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::Release);
        inner.graceful.send_replace(true);
        let sessions: Vec<Arc<Shared>> = inner.sessions().values().cloned().collect();
        for session in sessions {
            session.update(|s| s.close(CloseReason::ServerShuttingDown));
        }
        let deadline = tokio::time::Instant::now() + inner.config.shutdown_timeout;
        loop {
            let changed = inner.changed.notified();
            // Closed polling sessions that linger for their final poll (the queued messages
            // and the close packet) hold the drain up until fetched or their short linger
            // passes: what was accepted before the shutdown is not dropped.
            let open = !inner.sessions().is_empty();
            if !open && inner.drivers.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        inner.aborted.store(true, Ordering::Release);
        inner.abort.notify_waiters();
    }
}

impl EngineInner {
    fn sessions(&self) -> MutexGuard<'_, HashMap<Sid, Arc<Shared>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lookup(&self, sid: Sid) -> Option<Arc<Shared>> {
        self.sessions().get(&sid).cloned()
    }

    /// Creates and registers a session, then tells the handler.
    pub(crate) fn create_session(
        self: &Arc<Self>,
        transport: Transport,
        info: &HandshakeInfo,
    ) -> Arc<Shared> {
        let now = super::now();
        let shared = loop {
            let sid = Sid::from_random_bytes(rand::random());
            let mut sessions = self.sessions();
            if sessions.contains_key(&sid) {
                continue;
            }
            let session = Session::open(sid, Arc::clone(&self.session_config), transport, now);
            let shared = Arc::new(Shared {
                sid,
                state: Mutex::new(Locked {
                    session,
                    timer_at: None,
                    direct: None,
                }),
                get_notify: Notify::new(),
                ws_notify: Notify::new(),
                engine: Arc::downgrade(self),
            });
            sessions.insert(sid, Arc::clone(&shared));
            break shared;
        };
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        self.handler
            .on_open(&SessionHandle(Arc::clone(&shared)), info);
        // Arms the first timer.
        shared.update(|_| ());
        shared
    }

    pub(crate) fn remove(&self, shared: &Arc<Shared>) {
        {
            let mut sessions = self.sessions();
            if sessions
                .get(&shared.sid)
                .is_some_and(|s| Arc::ptr_eq(s, shared))
            {
                sessions.remove(&shared.sid);
            }
        }
        self.changed.notify_waiters();
    }

    fn dispatch(&self, shared: &Arc<Shared>, events: Vec<Event>) {
        let handle = SessionHandle(Arc::clone(shared));
        for event in events {
            match event {
                Event::Message(text) => self.handler.on_message(&handle, text),
                Event::Binary(data) => self.handler.on_binary(&handle, data),
                Event::Upgraded => self.handler.on_upgrade(&handle),
                Event::Closed(reason) => {
                    if shared.inspect(Session::has_final_poll) {
                        // Reachable a moment longer, for the GET that fetches the last packet.
                        let weak = Arc::downgrade(shared);
                        let linger = FINAL_POLL_LINGER.min(self.config.session.ping_interval);
                        tokio::spawn(async move {
                            tokio::time::sleep(linger).await;
                            if let Some(shared) = weak.upgrade() {
                                shared.remove_from_engine();
                            }
                        });
                    } else {
                        self.remove(shared);
                    }
                    self.counters.closed.fetch_add(1, Ordering::Relaxed);
                    if reason == CloseReason::SlowConsumer {
                        self.counters.slow_consumer.fetch_add(1, Ordering::Relaxed);
                    }
                    self.handler.on_close(&handle, reason);
                }
            }
        }
    }
}

/// One session as the driver shares it: the state machine behind a mutex that is only held
/// for synchronous calls, and the two places a driver may wait.
pub(crate) struct Shared {
    pub(crate) sid: Sid,
    state: Mutex<Locked>,
    /// Wakes the held polling GET.
    pub(crate) get_notify: Notify,
    /// Wakes the WebSocket driver (active or upgrade socket).
    pub(crate) ws_notify: Notify,
    engine: Weak<EngineInner>,
}

struct Locked {
    session: Session,
    /// The earliest deadline with an entry in the timer heap.
    timer_at: Option<Instant>,
    /// The WebSocket written directly by senders, when it is a plain TCP socket.
    direct: Option<DirectOut>,
}

impl Shared {
    /// Runs `f` on the session, then does what its outputs ask: wakes the drivers that have
    /// something to send, arms the timer, and delivers events (outside the lock).
    pub(crate) fn update<R>(self: &Arc<Self>, f: impl FnOnce(&mut Session) -> R) -> R {
        self.update_inner(false, false, |s, _| f(s))
    }

    pub(crate) fn on_timer(self: &Arc<Self>, now: Instant) {
        self.update_inner(true, false, |s, _| s.handle_timeout(now));
    }

    /// As [`Shared::update`], for the WebSocket driver working on its direct write side: does
    /// not wake the driver (it is the caller).
    pub(crate) fn with_direct<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Session, &mut Option<DirectOut>) -> R,
    ) -> R {
        self.update_inner(false, true, f)
    }

    /// Queues a message. A directly written WebSocket takes the short way: queueing changes
    /// no deadline and answers no GET, so only the write (or its deferral) follows.
    pub(crate) fn send(
        self: &Arc<Self>,
        message: Outgoing,
        volatile: bool,
    ) -> Result<(), SendError> {
        let enqueue = |session: &mut Session, message| {
            if volatile {
                session.send_volatile(message)
            } else {
                session.send(message)
            }
        };
        let message = {
            let mut guard = self.lock();
            let Locked {
                session, direct, ..
            } = &mut *guard;
            match direct.as_mut() {
                Some(out)
                    if session.transport() == Transport::WebSocket && !session.is_closed() =>
                {
                    let result = enqueue(session, message);
                    // Closed by the slow-consumer policy: the full path delivers the event.
                    let settled = !session.is_closed();
                    let wake = settled && out.after_update(session, self);
                    drop(guard);
                    if wake {
                        self.ws_notify.notify_one();
                    }
                    if !settled {
                        self.update(|_| ());
                    }
                    return result;
                }
                _ => message,
            }
        };
        self.update(|session| enqueue(session, message))
    }

    /// Writes what a batch deferred (see `direct::Batch`).
    pub(crate) fn flush_deferred(&self) {
        let wake = {
            let mut guard = self.lock();
            let Locked {
                session, direct, ..
            } = &mut *guard;
            direct
                .as_mut()
                .is_some_and(|out| out.flush_deferred(session))
        };
        if wake {
            self.ws_notify.notify_one();
        }
    }

    /// Unregisters the session (it is closed and has nothing left for anyone).
    pub(crate) fn remove_from_engine(self: &Arc<Self>) {
        if let Some(engine) = self.engine.upgrade() {
            engine.remove(self);
        }
    }

    /// Reads the session without side effects.
    pub(crate) fn inspect<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        f(&self.lock().session)
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update_inner<R>(
        self: &Arc<Self>,
        timer_fired: bool,
        from_driver: bool,
        f: impl FnOnce(&mut Session, &mut Option<DirectOut>) -> R,
    ) -> R {
        let mut events = Vec::new();
        let (result, wake_get, wake_ws, schedule) = {
            let mut guard = self.lock();
            let Locked {
                session,
                timer_at,
                direct,
            } = &mut *guard;
            if timer_fired {
                *timer_at = None;
            }
            let result = f(session, direct);
            while let Some(event) = session.poll_event() {
                events.push(event);
            }
            let schedule = match session.poll_timeout() {
                Some(at) if timer_at.is_none_or(|t| at < t) => {
                    *timer_at = Some(at);
                    Some(at)
                }
                _ => None,
            };
            // A directly written socket is written here, by whoever queued something.
            let wake_ws = match direct.as_mut() {
                _ if from_driver => false,
                Some(out) => out.after_update(session, self),
                None => session.has_ws_transmit(),
            };
            (result, session.has_get_response(), wake_ws, schedule)
        };
        if wake_get {
            self.get_notify.notify_one();
        }
        if wake_ws {
            self.ws_notify.notify_one();
        }
        if (schedule.is_some() || !events.is_empty())
            && let Some(engine) = self.engine.upgrade()
        {
            if let Some(at) = schedule {
                engine.timers.schedule(at, Arc::downgrade(self));
            }
            if !events.is_empty() {
                engine.dispatch(self, events);
            }
        }
        result
    }
}

/// The application's handle on one session: cheap to clone (an `Arc`), usable from any task.
#[derive(Clone)]
pub struct SessionHandle(pub(crate) Arc<Shared>);

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionHandle").field(&self.0.sid).finish()
    }
}

impl PartialEq for SessionHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SessionHandle {}

impl SessionHandle {
    /// The session id.
    pub fn sid(&self) -> Sid {
        self.0.sid
    }

    /// The active transport.
    pub fn transport(&self) -> Transport {
        self.0.inspect(Session::transport)
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.0.inspect(Session::is_closed)
    }

    /// Bytes waiting in the outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.0.inspect(Session::queued_bytes)
    }

    /// Queues a message. `message` is shared, not copied: broadcast by cloning one
    /// [`Outgoing`] to every recipient.
    ///
    /// # Errors
    /// [`SendError::Closed`], [`SendError::TooLarge`] (over maxPayload), or
    /// [`SendError::SlowConsumer`]: the queue was full and the session has been closed.
    pub fn send(&self, message: Outgoing) -> Result<(), SendError> {
        self.0.send(message, false)
    }

    /// Queues a volatile message: dropped (and reported) when the queue is full.
    ///
    /// # Errors
    /// [`SendError::Dropped`], or as [`SessionHandle::send`].
    pub fn send_volatile(&self, message: Outgoing) -> Result<(), SendError> {
        let result = self.0.send(message, true);
        if result == Err(SendError::Dropped)
            && let Some(engine) = self.0.engine.upgrade()
        {
            engine
                .counters
                .volatile_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Closes the session. With [`CloseReason::ForcedClose`] (what an application normally
    /// uses) queued messages are still delivered first.
    pub fn close(&self, reason: CloseReason) {
        self.0.update(|s| s.close(reason));
    }
}
