//! Namespaces: their handlers (shared by all sockets and by every child of a dynamic
//! namespace), their local sockets and rooms, and their pending acknowledgements.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use sockeye_codec::{Outgoing, Utf8Bytes};

use crate::adapter::{Adapter, BroadcastOptions, Partial};
use crate::broadcast::BroadcastOperator;
use crate::broker::BrokerShared;
use crate::error::{AdapterError, ConnectError, Rejected, ServerSideEmitError};
use crate::handler::{DynHandler, Handler, erase};
use crate::id::{IntoRooms, Room, SocketId};
use crate::local::{LocalCore, LocalNamespace};
use crate::rooms::RoomEvent;
use crate::server_event::{ServerAck, ServerEvent};
use crate::socket::SocketRef;

/// A room lifecycle listener: `(namespace, event)`.
pub(crate) type RoomListener = Arc<dyn Fn(&str, &RoomEvent) + Send + Sync>;

/// An outgoing-event listener: `(socket, event name, encoded message)`.
pub(crate) type OutgoingListener = Arc<dyn Fn(&SocketRef, &str, &Outgoing) + Send + Sync>;

/// A server-side event listener: the event, and the answer callback when the sender waits.
pub(crate) type ServerListener = Arc<dyn Fn(&ServerEvent, Option<ServerAck>) + Send + Sync>;

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
    /// [`Namespace::server_side_emit`] or [`Namespace::server_side_emit_with_ack`], delivered
    /// by a cluster adapter (Node's `io.on(event, ...)` for server-side events). With an ack,
    /// the listener gets a [`ServerAck`] to answer with, now or later.
    #[must_use]
    pub fn on_server_event(
        mut self,
        event: &str,
        listener: impl Fn(&ServerEvent, Option<ServerAck>) + Send + Sync + 'static,
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
        let local = Arc::new(LocalCore::new(name, &config));
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
    ) -> Result<Partial<Vec<crate::adapter::SocketInfo>>, AdapterError> {
        self.broadcast().fetch_sockets().await
    }

    /// Disconnects every socket of the namespace (`close`: their whole Engine.IO sessions).
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        self.broadcast().disconnect(close).await
    }

    /// Every room of every node that answered in time, the per-socket rooms included (Node's
    /// `allRooms`).
    ///
    /// # Errors
    /// The adapter's error ([`AdapterError::Unsupported`] for adapters that cannot ask).
    pub async fn all_rooms(&self) -> Result<Partial<Vec<Room>>, AdapterError> {
        self.inner.adapter.all_rooms().await
    }

    /// Sends an event to the listeners of the other server nodes (not to clients, not to this
    /// node), fire and forget (Node's `serverSideEmit` without a callback).
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn server_side_emit(
        &self,
        event: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<(), AdapterError> {
        self.inner
            .adapter
            .server_side_emit(ServerEvent::new(event, args))
            .await
    }

    /// Sends an event to the other server nodes and waits for one answer per node, at most
    /// `timeout` (Node's `serverSideEmitWithAck`). With the in-memory adapter there is no other
    /// node: the answer list is empty at once.
    ///
    /// # Errors
    /// [`ServerSideEmitError::Timeout`] (`timeout reached: only X responses received out of
    /// Y`) with the answers that came, or the adapter's error.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Vec<serde_json::Value>,
        timeout: Duration,
    ) -> Result<Vec<serde_json::Value>, ServerSideEmitError> {
        let acks = self
            .inner
            .adapter
            .server_side_emit_with_ack(ServerEvent::new(event, args), timeout)
            .await
            .map_err(ServerSideEmitError::Adapter)?;
        if acks.is_complete() {
            Ok(acks.responses)
        } else {
            Err(ServerSideEmitError::Timeout {
                expected: acks.expected,
                responses: acks.responses,
            })
        }
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
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
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

    pub(crate) fn options(&self) -> BroadcastOptions {
        BroadcastOptions::default()
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
