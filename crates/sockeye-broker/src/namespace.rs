//! Namespaces: their handlers (shared by all sockets and by every child of a dynamic
//! namespace), their local sockets and rooms, and their pending acknowledgements.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use sockeye_codec::socketio::AckId;
use sockeye_codec::{Outgoing, Utf8Bytes};
use tokio::sync::Notify;

use crate::ack::AckTable;
use crate::adapter::{Adapter, BroadcastOptions, LocalNamespace};
use crate::args::{AckResponse, Args};
use crate::broadcast::BroadcastOperator;
use crate::broker::BrokerShared;
use crate::error::{AckError, ConnectError, Rejected};
use crate::handler::{DynHandler, Handler, erase};
use crate::id::{IntoRooms, Room, SocketId};
use crate::rooms::{RoomEvent, RoomIndex};
use crate::socket::SocketRef;

/// A room lifecycle listener: `(namespace, event)`.
pub(crate) type RoomListener = Arc<dyn Fn(&str, &RoomEvent) + Send + Sync>;

/// An outgoing-event listener: `(socket, event name, encoded message)`.
pub(crate) type OutgoingListener = Arc<dyn Fn(&SocketRef, &str, &Outgoing) + Send + Sync>;

/// A server-side event listener: answers with an optional value.
pub(crate) type ServerListener =
    Arc<dyn Fn(&crate::adapter::ServerEvent) -> Option<serde_json::Value> + Send + Sync>;

/// The handlers of a namespace, registered once and shared by all of its sockets (and by all
/// children of a dynamic namespace).
#[derive(Default)]
pub(crate) struct NsConfig {
    pub(crate) connect_middlewares: Vec<DynHandler<Result<(), ConnectError>>>,
    pub(crate) on_connect: Vec<DynHandler<()>>,
    pub(crate) events: HashMap<Box<str>, DynHandler<()>>,
    pub(crate) fallback: Option<DynHandler<()>>,
    pub(crate) any_incoming: Vec<DynHandler<()>>,
    pub(crate) any_outgoing: Vec<OutgoingListener>,
    pub(crate) event_middlewares: Vec<DynHandler<Result<(), Rejected>>>,
    pub(crate) on_disconnecting: Vec<DynHandler<()>>,
    pub(crate) on_disconnect: Vec<DynHandler<()>>,
    pub(crate) on_room_event: Vec<RoomListener>,
    pub(crate) server_events: Arc<HashMap<Box<str>, ServerListener>>,
}

impl fmt::Debug for NsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NsConfig")
            .field("connect_middlewares", &self.connect_middlewares.len())
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Registers a namespace's handlers. Handlers are async functions taking extractors (see
/// [`handler`](crate::handler)).
#[derive(Debug, Default)]
pub struct NamespaceBuilder {
    config: NsConfig,
}

impl NamespaceBuilder {
    /// A namespace with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connect middleware. They run in order on each CONNECT, before the socket is
    /// connected, and see its handshake (headers, query, address, auth payload, time) through
    /// [`SocketRef::handshake`]. The first `Err` refuses the connection with a CONNECT_ERROR
    /// carrying its `message` and `data`. A middleware may store values in the socket's
    /// extensions for later handlers.
    #[must_use]
    pub fn connect_middleware<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, Result<(), ConnectError>>,
        T: 'static,
    {
        self.config.connect_middlewares.push(erase(handler));
        self
    }

    /// Adds a handler run when a socket has connected (after the CONNECT reply is queued).
    /// `Data<T>` there is the auth payload.
    #[must_use]
    pub fn on_connect<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        self.config.on_connect.push(erase(handler));
        self
    }

    /// Sets the handler of one event (replacing an earlier one for the same name).
    #[must_use]
    pub fn on<H, T>(mut self, event: &str, handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        self.config.events.insert(Box::from(event), erase(handler));
        self
    }

    /// Sets the handler of events that have no handler of their own.
    #[must_use]
    pub fn on_fallback<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        self.config.fallback = Some(erase(handler));
        self
    }

    /// Adds a catch-all listener for incoming events, called before the middleware and the
    /// event's handler (as the reference's `onAny`). [`Event`](crate::Event) gives the name.
    #[must_use]
    pub fn on_any<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        self.config.any_incoming.push(erase(handler));
        self
    }

    /// Adds a catch-all listener for outgoing events (emits and broadcasts, per recipient), as
    /// the reference's `onAnyOutgoing`. It runs synchronously on the emitting thread.
    #[must_use]
    pub fn on_any_outgoing(
        mut self,
        listener: impl Fn(&SocketRef, &str, &Outgoing) + Send + Sync + 'static,
    ) -> Self {
        self.config.any_outgoing.push(Arc::new(listener));
        self
    }

    /// Adds a per-event middleware (the reference's `socket.use`): it runs before each incoming
    /// event's handler; an `Err` drops the event.
    #[must_use]
    pub fn event_middleware<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, Result<(), Rejected>>,
        T: 'static,
    {
        self.config.event_middlewares.push(erase(handler));
        self
    }

    /// Adds a handler run when a socket starts disconnecting, while its rooms are still known
    /// (read them before the handler's first `.await`).
    /// [`DisconnectReason`](crate::DisconnectReason) is an extractor there.
    #[must_use]
    pub fn on_disconnecting<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        self.config.on_disconnecting.push(erase(handler));
        self
    }

    /// Adds a handler run when a socket has disconnected (it has left its rooms).
    /// [`DisconnectReason`](crate::DisconnectReason) is an extractor there.
    #[must_use]
    pub fn on_disconnect<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        self.config.on_disconnect.push(erase(handler));
        self
    }

    /// Adds a room lifecycle listener (created, deleted, joined, left), for metrics. It runs
    /// synchronously, after the index lock is released.
    #[must_use]
    pub fn on_room_event(
        mut self,
        listener: impl Fn(&str, &RoomEvent) + Send + Sync + 'static,
    ) -> Self {
        self.config.on_room_event.push(Arc::new(listener));
        self
    }

    /// Sets the listener of one server-side event: an event another server node sent with
    /// [`Namespace::server_side_emit`], delivered by a remote adapter. Its return value is the
    /// node's answer.
    #[must_use]
    pub fn on_server_event(
        mut self,
        event: &str,
        listener: impl Fn(&crate::adapter::ServerEvent) -> Option<serde_json::Value>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.config.server_events).insert(Box::from(event), Arc::new(listener));
        self
    }

    pub(crate) fn into_config(self) -> NsConfig {
        self.config
    }
}

/// A namespace handle: cheap to clone (`Arc` inside). Emit to its sockets, select them by room,
/// or look one up.
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NsInner>,
}

pub(crate) struct NsInner {
    pub(crate) config: Arc<NsConfig>,
    pub(crate) shared: Arc<BrokerShared>,
    pub(crate) local: Arc<LocalCore>,
    pub(crate) adapter: Arc<dyn Adapter>,
    /// For a dynamic namespace: the registry it is removed from once empty.
    registry: Option<Weak<Registry>>,
    /// CONNECTs resolved to this namespace and not finished yet (they keep it alive).
    pending_connects: AtomicUsize,
}

/// The dynamic namespaces created so far, by name.
pub(crate) type Registry = RwLock<HashMap<Box<str>, Namespace>>;

/// What one node knows about a namespace: its sockets, rooms and pending acks.
pub(crate) struct LocalCore {
    pub(crate) name: Utf8Bytes,
    pub(crate) index: Mutex<RoomIndex<SocketRef>>,
    pub(crate) acks: Mutex<AckTable<(SocketId, AckId), AckWaiter>>,
    ack_notify: Arc<Notify>,
    /// Whether the ack-timeout task runs; read and written with the `acks` lock held.
    ack_driver_running: AtomicBool,
    next_ack: AtomicU64,
    pub(crate) room_listeners: Vec<RoomListener>,
    pub(crate) any_outgoing: Vec<OutgoingListener>,
    pub(crate) server_events: Arc<HashMap<Box<str>, ServerListener>>,
}

/// Who waits for an acknowledgement.
#[derive(Debug)]
pub(crate) enum AckWaiter {
    /// One emit with ack.
    One(tokio::sync::oneshot::Sender<Result<AckResponse, AckError>>),
    /// A broadcast with ack: every recipient's answer goes to the same sink.
    Many(AckSink),
}

impl AckWaiter {
    pub(crate) fn deliver(self, from: SocketId, result: Result<AckResponse, AckError>) {
        match self {
            Self::One(tx) => {
                let _ = tx.send(result);
            }
            Self::Many(sink) => sink.deliver(from, result),
        }
    }
}

/// The receiving end of an [`AckSink`].
pub type AckReceiver =
    tokio::sync::mpsc::UnboundedReceiver<(SocketId, Result<AckResponse, AckError>)>;

/// Where the answers to one broadcast with ack go. Adapters that reach other nodes clone it and
/// [`deliver`](AckSink::deliver) the answers they relay.
#[derive(Clone, Debug)]
pub struct AckSink {
    tx: tokio::sync::mpsc::UnboundedSender<(SocketId, Result<AckResponse, AckError>)>,
}

impl AckSink {
    /// A sink and the receiver of what is delivered into it (remote adapters relaying answers
    /// from their recipients to the emitting node use one per request).
    pub fn channel() -> (Self, AckReceiver) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Hands over one recipient's answer (or its failure).
    pub fn deliver(&self, from: SocketId, result: Result<AckResponse, AckError>) {
        let _ = self.tx.send((from, result));
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl Namespace {
    pub(crate) fn new(
        name: Utf8Bytes,
        config: Arc<NsConfig>,
        shared: Arc<BrokerShared>,
        registry: Option<Weak<Registry>>,
    ) -> Self {
        let local = Arc::new(LocalCore {
            name,
            index: Mutex::new(RoomIndex::new()),
            acks: Mutex::new(AckTable::new()),
            ack_notify: Arc::new(Notify::new()),
            ack_driver_running: AtomicBool::new(false),
            next_ack: AtomicU64::new(0),
            room_listeners: config.on_room_event.clone(),
            any_outgoing: config.any_outgoing.clone(),
            server_events: config.server_events.clone(),
        });
        let adapter = (shared.adapter_factory)(LocalNamespace::new(local.clone()));
        Self {
            inner: Arc::new(NsInner {
                config,
                shared,
                local,
                adapter,
                registry,
                pending_connects: AtomicUsize::new(0),
            }),
        }
    }

    /// A CONNECT resolved to this namespace (called with the registry lock held).
    pub(crate) fn begin_connect(&self) -> ConnectGuard {
        self.inner.pending_connects.fetch_add(1, Ordering::AcqRel);
        ConnectGuard(self.clone())
    }

    /// Removes an empty dynamic namespace from the registry, so names a client invents do not
    /// pile up. A namespace with sockets or CONNECTs in progress stays.
    pub(crate) fn cleanup_if_empty(&self) {
        let Some(registry) = self.inner.registry.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        let busy = || {
            self.inner.pending_connects.load(Ordering::Acquire) > 0
                || self.inner.local.lock_index().socket_count() > 0
        };
        if busy() {
            return;
        }
        // CONNECTs register under the registry lock, so holding it for writing settles it.
        let mut map = registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if busy() {
            return;
        }
        let name = self.name();
        if map
            .get(name)
            .is_some_and(|ns| Arc::ptr_eq(&ns.inner, &self.inner))
        {
            map.remove(name);
            drop(map);
            tracing::debug!(namespace = name, "empty dynamic namespace removed");
            self.inner.adapter.close();
        }
    }

    /// The namespace's name, `/` for the main one.
    pub fn name(&self) -> &str {
        self.inner.local.name.as_str()
    }

    /// A broadcast to the sockets in these rooms (every socket in at least one of them gets
    /// exactly one copy).
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        BroadcastOperator::new(self.clone()).to(rooms)
    }

    /// Same as [`Namespace::to`].
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every socket except those in these rooms.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        BroadcastOperator::new(self.clone()).except(rooms)
    }

    /// A broadcast to every socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// A broadcast that stays on this node (remote adapters do not forward it).
    pub fn local(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone()).local()
    }

    /// Emits to every socket of the namespace.
    ///
    /// # Errors
    /// See [`BroadcastOperator::emit`].
    pub async fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), crate::EmitError> {
        self.broadcast().emit(event, data).await
    }

    /// Every socket of the namespace, on every node that answered in time.
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn fetch_sockets(
        &self,
    ) -> Result<crate::adapter::Partial<Vec<crate::adapter::SocketInfo>>, crate::AdapterError> {
        self.broadcast().fetch_sockets().await
    }

    /// Disconnects every socket of the namespace (`close`: their whole Engine.IO sessions).
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), crate::AdapterError> {
        self.broadcast().disconnect(close).await
    }

    /// Sends an event to the other server nodes (not to clients) and collects their answers
    /// until the ack timeout. With the in-memory adapter there is no other node: the answer
    /// list is empty.
    ///
    /// # Errors
    /// [`EmitError::Serialize`](crate::EmitError::Serialize) or the adapter's error.
    pub async fn server_side_emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<crate::adapter::Partial<Vec<serde_json::Value>>, crate::EmitError> {
        let args = Args::one(data)?;
        let event = crate::adapter::ServerEvent {
            event: event.to_owned(),
            args: args.json().to_owned(),
        };
        let timeout = self.inner.shared.config.ack_timeout;
        self.inner
            .adapter
            .server_side_emit(event, timeout)
            .await
            .map_err(crate::EmitError::Adapter)
    }

    /// The local socket with this id, if it is connected to this namespace on this node.
    pub fn socket(&self, id: SocketId) -> Option<SocketRef> {
        self.inner.local.lock_index().value(id).cloned()
    }

    /// How many sockets are connected to this namespace on this node.
    pub fn socket_count(&self) -> usize {
        self.inner.local.lock_index().socket_count()
    }

    /// How many rooms exist on this node (not counting the per-socket rooms).
    pub fn room_count(&self) -> usize {
        self.inner.local.lock_index().room_count()
    }

    /// How many sockets are in a room on this node.
    pub fn room_size(&self, room: &str) -> usize {
        self.inner.local.lock_index().room_size(room)
    }

    /// How many acknowledgements are pending on this node (for tests and metrics).
    pub fn pending_acks(&self) -> usize {
        self.inner.local.lock_acks().len()
    }

    /// How many server nodes the adapter reaches (1 for the in-memory adapter).
    ///
    /// # Errors
    /// The adapter's error when other nodes cannot be asked.
    pub async fn server_count(&self) -> Result<usize, crate::AdapterError> {
        self.inner.adapter.server_count().await
    }

    /// This node's part of the namespace, as adapters see it.
    pub fn local_namespace(&self) -> LocalNamespace {
        LocalNamespace::new(self.inner.local.clone())
    }

    /// The adapter.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.inner.adapter
    }

    /// The application state of type `S` given to the builder.
    pub fn state<S: Clone + Send + Sync + 'static>(&self) -> Option<S> {
        self.inner.shared.state.get::<S>().cloned()
    }

    pub(crate) fn core(&self) -> &Arc<LocalCore> {
        &self.inner.local
    }

    pub(crate) fn config(&self) -> &Arc<NsConfig> {
        &self.inner.config
    }

    pub(crate) fn shared(&self) -> &Arc<BrokerShared> {
        &self.inner.shared
    }

    pub(crate) fn encode_args(
        &self,
        event: &str,
        args: Args,
        ack: Option<AckId>,
    ) -> Result<Outgoing, crate::EmitError> {
        crate::socket::encode_event(&self.inner.local.name, event, args, ack)
    }

    pub(crate) fn options(&self) -> BroadcastOptions {
        BroadcastOptions::default()
    }
}

impl LocalCore {
    pub(crate) fn lock_index(&self) -> MutexGuard<'_, RoomIndex<SocketRef>> {
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn lock_acks(&self) -> MutexGuard<'_, AckTable<(SocketId, AckId), AckWaiter>> {
        self.acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next ack id: one counter per namespace, shared by emits and broadcasts, so a
    /// broadcast with ack is encoded once for all recipients.
    pub(crate) fn next_ack_id(&self) -> AckId {
        AckId(self.next_ack.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers pending acks, all with the same deadline, and wakes the timer task if the
    /// earliest deadline moved (or starts it: it runs only while acks are pending).
    pub(crate) fn insert_acks(
        self: &Arc<Self>,
        deadline: Instant,
        entries: impl IntoIterator<Item = ((SocketId, AckId), AckWaiter)>,
    ) {
        let (moved, start) = {
            let mut acks = self.lock_acks();
            let before = acks.poll_timeout();
            for (key, waiter) in entries {
                if let Some(old) = acks.insert(key, deadline, waiter) {
                    old.deliver(key.0, Err(AckError::Timeout));
                }
            }
            let start = !self.ack_driver_running.swap(true, Ordering::AcqRel);
            (before.is_none_or(|b| deadline < b), start)
        };
        if start {
            let weak: Weak<Self> = Arc::downgrade(self);
            let notify = self.ack_notify.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(ack_driver(weak, notify));
                }
                Err(_) => tracing::error!("acks used outside a tokio runtime: no timeouts"),
            }
        } else if moved {
            self.ack_notify.notify_one();
        }
    }

    /// Takes the pending acks whose deadline passed and fails them with a timeout. Returns the
    /// next deadline; `None` means the table is empty and the timer task must stop (it is
    /// marked stopped under the same lock an insert takes, so no deadline is missed).
    pub(crate) fn expire_acks(&self, now: Instant) -> Option<Instant> {
        let mut expired = Vec::new();
        let next = {
            let mut acks = self.lock_acks();
            acks.handle_timeout(now, &mut expired);
            let next = acks.poll_timeout();
            if acks.is_empty() {
                self.ack_driver_running.store(false, Ordering::Release);
                None
            } else {
                next
            }
        };
        for ((socket, ack), waiter) in expired {
            if let Some(s) = self.lock_index().value(socket).cloned() {
                s.forget_ack(ack);
            }
            waiter.deliver(socket, Err(AckError::Timeout));
        }
        next
    }

    /// Reports room events to the listeners (call with no lock held).
    pub(crate) fn report(&self, events: &[RoomEvent]) {
        if self.room_listeners.is_empty() {
            return;
        }
        for event in events {
            for listener in &self.room_listeners {
                listener(self.name.as_str(), event);
            }
        }
    }

    pub(crate) fn join(&self, id: SocketId, rooms: &[Room]) {
        let mut events = Vec::new();
        {
            let mut index = self.lock_index();
            for room in rooms {
                index.join(id, room, &mut events);
            }
        }
        self.report(&events);
    }

    pub(crate) fn leave(&self, id: SocketId, rooms: &[Room]) {
        let mut events = Vec::new();
        {
            let mut index = self.lock_index();
            for room in rooms {
                index.leave(id, room, &mut events);
            }
        }
        self.report(&events);
    }
}

/// The ack-timeout task of one namespace: sleeps until the earliest deadline, expires what is
/// due, repeats; woken early when an earlier deadline is inserted. Runs only while acks are
/// pending (the next insert starts it again) and ends with the namespace.
async fn ack_driver(local: Weak<LocalCore>, notify: Arc<Notify>) {
    loop {
        let next = {
            let Some(local) = local.upgrade() else { return };
            let now = tokio::time::Instant::now().into_std();
            local.expire_acks(now)
        };
        let Some(deadline) = next else { return };
        let deadline = tokio::time::Instant::from_std(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = notify.notified() => {}
        }
    }
}

/// Keeps a namespace from being cleaned up while a CONNECT to it is in progress.
pub(crate) struct ConnectGuard(Namespace);

impl Drop for ConnectGuard {
    fn drop(&mut self) {
        self.0.inner.pending_connects.fetch_sub(1, Ordering::AcqRel);
        self.0.cleanup_if_empty();
    }
}

/// The default timeout of an emit with ack when none is given.
pub(crate) const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
