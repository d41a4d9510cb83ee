//! The adapter: the seam where several server processes become one cluster.
//!
//! Every namespace talks to one [`Adapter`] for the operations that may involve other nodes:
//! broadcasts, broadcasts with acks, join/leave/disconnect by selector, fetching sockets,
//! server-side events and counting servers. The adapter reaches this node's sockets through
//! [`LocalNamespace`] (synchronous, no I/O) and other nodes however it likes.
//!
//! [`MemoryAdapter`], the default, is a single node: every operation is the local one.
//! `docs/adapter.md` describes how a remote adapter (Redis pub/sub) implements the trait:
//! request ids, timeouts, partial results.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sockeye_codec::Outgoing;
use sockeye_codec::socketio::AckId;

use crate::error::AdapterError;
use crate::handler::BoxFuture;
use crate::handshake::Handshake;
use crate::id::{Room, SocketId};
use crate::namespace::{AckSink, AckWaiter, LocalCore};
use crate::rooms::Selector;
use crate::socket::SocketRef;
use crate::transport::{DisconnectReason, SendFlags};

/// Which sockets an operation reaches and how a broadcast is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Target rooms and excluded rooms.
    pub selector: Selector,
    /// Broadcast flags.
    pub flags: BroadcastFlags,
}

/// Flags of a broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// Stay on this node: remote adapters must not forward.
    pub local: bool,
    /// Drop the message for recipients whose transport is not writable right now.
    pub volatile: bool,
    /// Whether the message may be compressed (default `true`).
    pub compress: bool,
}

impl Default for BroadcastFlags {
    fn default() -> Self {
        Self {
            local: false,
            volatile: false,
            compress: true,
        }
    }
}

impl BroadcastFlags {
    pub(crate) fn send_flags(self) -> SendFlags {
        SendFlags {
            volatile: self.volatile,
            compress: self.compress,
        }
    }
}

/// A socket as [`fetch_sockets`](Adapter::fetch_sockets) reports it, from this node or another.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    /// The socket id.
    pub id: SocketId,
    /// Its handshake.
    pub handshake: Handshake,
    /// Its rooms, its own first.
    pub rooms: Vec<Room>,
    /// Its data ([`SocketRef::set_data`]) as raw JSON, if set.
    pub data: Option<sockeye_codec::Utf8Bytes>,
    /// The socket itself when it lives on this node.
    pub local: Option<SocketRef>,
}

/// The result of an operation that asked other nodes: what came back, and how many nodes did not
/// answer in time (always 0 for the in-memory adapter).
#[derive(Clone, Debug)]
pub struct Partial<T> {
    /// What the nodes that answered returned, merged.
    pub value: T,
    /// How many nodes did not answer before the timeout.
    pub missing_nodes: usize,
}

impl<T> Partial<T> {
    /// A complete result.
    pub fn complete(value: T) -> Self {
        Self {
            value,
            missing_nodes: 0,
        }
    }
}

/// An event sent from one server node to the others (the reference's `serverSideEmit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerEvent {
    /// The event name.
    pub event: String,
    /// Its arguments as raw JSON values separated by commas.
    pub args: String,
}

/// The cluster seam of one namespace. All methods may do I/O; the in-memory adapter's futures
/// are ready at once.
///
/// Contract for every implementation:
/// - the local part of each operation goes through [`LocalNamespace`], which never waits;
/// - broadcasts carry an already encoded [`Outgoing`]; a remote adapter ships its frames as
///   bytes so other nodes fan them out without re-encoding;
/// - a broadcast with ack carries the ack id chosen by the emitting node; other nodes register
///   that same id for their recipients and relay every answer into the [`AckSink`];
/// - operations waiting for other nodes respect `timeout` and return what they have
///   ([`Partial`]) rather than fail.
pub trait Adapter: Send + Sync + 'static {
    /// Sends `message` to the selected sockets of every node (this node only when
    /// `opts.flags.local`).
    fn broadcast(
        &self,
        message: Outgoing,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Sends `message` (which asks for ack `ack_id`) to the selected sockets, routes each
    /// answer into `sink` and returns how many answers to expect, counted over every node that
    /// answered before `timeout`.
    fn broadcast_with_ack(
        &self,
        message: Outgoing,
        ack_id: AckId,
        opts: BroadcastOptions,
        timeout: Duration,
        sink: AckSink,
    ) -> BoxFuture<'_, Result<Partial<usize>, AdapterError>>;

    /// Makes the selected sockets join `rooms`.
    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Makes the selected sockets leave `rooms`.
    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Disconnects the selected sockets (`close`: close their whole Engine.IO sessions).
    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// The selected sockets of every node that answered before `timeout`.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>>;

    /// Sends an event to the other server nodes (not to clients) and collects one answer per
    /// node until `timeout`. Receiving nodes call [`LocalNamespace::server_event`].
    fn server_side_emit(
        &self,
        event: ServerEvent,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Partial<Vec<serde_json::Value>>, AdapterError>>;

    /// How many server nodes share this namespace (1 for a single node).
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>>;

    /// The namespace was removed from this node (an empty dynamic namespace): release what
    /// was set up for it (subscriptions). It is called once, with no lock held; a later CONNECT
    /// to the same name builds a new adapter. Default: nothing.
    fn close(&self) {}
}

/// Builds the adapter of each namespace from its [`LocalNamespace`].
pub type AdapterFactory = Arc<dyn Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync>;

/// This node's part of a namespace, as adapters see it: synchronous operations on the local
/// sockets, none of which waits on a socket.
#[derive(Clone)]
pub struct LocalNamespace {
    core: Arc<LocalCore>,
}

impl fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.core.name)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// Reused recipient buffer: selecting recipients allocates nothing in the steady state.
    static RECIPIENTS: std::cell::RefCell<Vec<SocketRef>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl LocalNamespace {
    pub(crate) fn new(core: Arc<LocalCore>) -> Self {
        Self { core }
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        self.core.name.as_str()
    }

    /// Runs `f` on the selected local sockets. The index lock is held only while the recipients
    /// are copied out (one refcount bump each), never during `f`, which may drain the list.
    pub fn with_selected<R>(
        &self,
        selector: &Selector,
        f: impl FnOnce(&mut Vec<SocketRef>) -> R,
    ) -> R {
        let mut recipients = RECIPIENTS.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        self.core.lock_index().collect(selector, &mut recipients);
        let result = f(&mut recipients);
        recipients.clear();
        RECIPIENTS.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.capacity() < recipients.capacity() {
                *slot = recipients;
            }
        });
        result
    }

    /// Sends an encoded message to the selected local sockets; returns how many were reached.
    /// Never waits: a full queue is the transport's business (its slow-consumer policy), a
    /// volatile message to a busy transport is dropped.
    pub fn broadcast(&self, message: &Outgoing, opts: &BroadcastOptions) -> usize {
        let flags = opts.flags.send_flags();
        let event = self.outgoing_event_name(message);
        self.with_selected(&opts.selector, |recipients| {
            let mut reached = 0;
            // Draining drops each handle right after its send, while it is still in cache.
            for socket in recipients.drain(..) {
                if !socket.is_announced() {
                    continue; // its CONNECT reply is not queued yet: it joins after this message
                }
                if let Some(event) = &event {
                    socket.notify_outgoing(event, message);
                }
                if socket.send(message.clone(), flags).is_ok() {
                    reached += 1;
                }
            }
            reached
        })
    }

    /// Sends an encoded message asking for ack `ack_id` to the selected local sockets,
    /// registers each recipient's pending ack (answers and timeouts go to `sink`), and returns
    /// how many answers to expect.
    pub fn broadcast_with_ack(
        &self,
        message: &Outgoing,
        ack_id: AckId,
        opts: &BroadcastOptions,
        deadline: Instant,
        sink: &AckSink,
    ) -> usize {
        let flags = opts.flags.send_flags();
        let event = self.outgoing_event_name(message);
        self.with_selected(&opts.selector, |recipients| {
            recipients.retain(SocketRef::is_announced);
            for socket in recipients.iter() {
                socket.track_ack(ack_id);
            }
            self.core.insert_acks(
                deadline,
                recipients
                    .iter()
                    .map(|s| ((s.id(), ack_id), AckWaiter::Many(sink.clone()))),
            );
            let mut expected = 0;
            for socket in recipients.iter() {
                if let Some(event) = &event {
                    socket.notify_outgoing(event, message);
                }
                match socket.send(message.clone(), flags) {
                    Ok(()) => expected += 1,
                    Err(_) => {
                        socket.forget_ack(ack_id);
                        self.core.lock_acks().remove(&(socket.id(), ack_id));
                    }
                }
            }
            expected
        })
    }

    /// Makes the selected local sockets join `rooms`.
    pub fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let mut events = Vec::new();
        {
            let mut index = self.core.lock_index();
            for id in index.select_ids(&opts.selector) {
                for room in rooms {
                    index.join(id, room, &mut events);
                }
            }
        }
        self.core.report(&events);
    }

    /// Makes the selected local sockets leave `rooms`.
    pub fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let mut events = Vec::new();
        {
            let mut index = self.core.lock_index();
            for id in index.select_ids(&opts.selector) {
                for room in rooms {
                    index.leave(id, room, &mut events);
                }
            }
        }
        self.core.report(&events);
    }

    /// Disconnects the selected local sockets.
    pub fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        let sockets = self.with_selected(&opts.selector, std::mem::take);
        for socket in sockets {
            if close {
                socket.disconnect_all();
            } else {
                socket.close(DisconnectReason::ServerNamespaceDisconnect, true);
            }
        }
    }

    /// The selected local sockets.
    pub fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let index = self.core.lock_index();
        let mut out = Vec::new();
        index.select(&opts.selector, |id, socket| {
            out.push(SocketInfo {
                id,
                handshake: socket.handshake().clone(),
                rooms: index.rooms_of(id).unwrap_or_default(),
                data: socket.raw_data(),
                local: Some(socket.clone()),
            });
        });
        out
    }

    /// Delivers a server-side event from another node to this namespace's listener
    /// ([`NamespaceBuilder::on_server_event`](crate::NamespaceBuilder::on_server_event)); returns
    /// its answer, if any.
    pub fn server_event(&self, event: &ServerEvent) -> Option<serde_json::Value> {
        let listener = self.core.server_events.get(event.event.as_str())?;
        listener(event)
    }

    /// The local socket with this id.
    pub fn socket(&self, id: SocketId) -> Option<SocketRef> {
        self.core.lock_index().value(id).cloned()
    }

    /// How many sockets are connected locally.
    pub fn socket_count(&self) -> usize {
        self.core.lock_index().socket_count()
    }

    /// The local rooms (not counting per-socket rooms).
    pub fn rooms(&self) -> Vec<Room> {
        self.core.lock_index().rooms().cloned().collect()
    }

    fn outgoing_event_name(&self, message: &Outgoing) -> Option<String> {
        if self.core.any_outgoing.is_empty() {
            return None;
        }
        let text = message.text()?;
        let packet = sockeye_codec::socketio::Packet::decode(
            text.slice_from(1)?,
            &sockeye_codec::socketio::Limits::default(),
        )
        .ok()?;
        packet.event_name().ok().map(|name| name.into_owned())
    }
}

/// The default adapter: one node, every operation local.
#[derive(Clone, Debug)]
pub struct MemoryAdapter {
    local: LocalNamespace,
}

impl MemoryAdapter {
    /// The adapter of one namespace.
    pub fn new(local: LocalNamespace) -> Self {
        Self { local }
    }

    /// The factory to give [`BrokerBuilder::adapter`](crate::BrokerBuilder::adapter).
    pub fn factory() -> AdapterFactory {
        Arc::new(|local| Arc::new(Self::new(local)) as Arc<dyn Adapter>)
    }
}

impl Adapter for MemoryAdapter {
    fn broadcast(
        &self,
        message: Outgoing,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.broadcast(&message, &opts);
        Box::pin(std::future::ready(Ok(())))
    }

    fn broadcast_with_ack(
        &self,
        message: Outgoing,
        ack_id: AckId,
        opts: BroadcastOptions,
        timeout: Duration,
        sink: AckSink,
    ) -> BoxFuture<'_, Result<Partial<usize>, AdapterError>> {
        let deadline = tokio::time::Instant::now().into_std() + timeout;
        let expected = self
            .local
            .broadcast_with_ack(&message, ack_id, &opts, deadline, &sink);
        Box::pin(std::future::ready(Ok(Partial::complete(expected))))
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.add_sockets(&opts, &rooms);
        Box::pin(std::future::ready(Ok(())))
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets(&opts, &rooms);
        Box::pin(std::future::ready(Ok(())))
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.disconnect_sockets(&opts, close);
        Box::pin(std::future::ready(Ok(())))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>> {
        let sockets = self.local.fetch_sockets(&opts);
        Box::pin(std::future::ready(Ok(Partial::complete(sockets))))
    }

    fn server_side_emit(
        &self,
        _event: ServerEvent,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<Partial<Vec<serde_json::Value>>, AdapterError>> {
        // No other node to tell.
        Box::pin(std::future::ready(Ok(Partial::complete(Vec::new()))))
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(1)))
    }
}

/// Request ids for remote adapters: unique per node (random prefix) and per request (counter),
/// so answers can be matched to the request that asked.
#[derive(Debug)]
pub struct RequestIds {
    node: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestIds {
    /// A generator with a random node prefix.
    pub fn new() -> Self {
        Self {
            node: rand::random(),
            next: AtomicU64::new(0),
        }
    }

    /// This node's id.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// The next request id: `(node, sequence)`.
    pub fn next(&self) -> (u64, u64) {
        (self.node, self.next.fetch_add(1, Ordering::Relaxed))
    }
}
