//! Sockets: one client's connection to one namespace.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sockeye_codec::socketio::{AckId, Packet, RESERVED_EVENTS};
use sockeye_codec::{Outgoing, Utf8Bytes};

use crate::args::{AckResponse, Args, ack_data, event_data};
use crate::broadcast::BroadcastOperator;
use crate::connection::ConnShared;
use crate::error::{AckError, EmitError};
use crate::handler::{EventContext, Payload, TypeMap, run_now_or_spawn};
use crate::handshake::Handshake;
use crate::id::{IntoRooms, Room, SocketId};
use crate::local::AckWaiter;
use crate::namespace::Namespace;
use crate::transport::{DisconnectReason, SendError, SendFlags, Transport};

/// A handle to a socket: cheap to clone (`Arc` inside). Handlers receive it as an extractor.
#[derive(Clone)]
pub struct SocketRef {
    pub(crate) inner: Arc<SocketInner>,
}

pub(crate) struct SocketInner {
    pub(crate) id: SocketId,
    pub(crate) ns: Namespace,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) conn: Arc<ConnShared>,
    handshake: Handshake,
    state: AtomicU8,
    /// Everything mutable, behind one small lock (one lock per socket keeps memory down).
    parts: Mutex<SocketParts>,
}

#[derive(Default)]
struct SocketParts {
    /// Typed values, allocated on first use.
    extensions: Option<Box<TypeMap>>,
    /// The serializable data (`socket.data` in the reference).
    data: Option<Utf8Bytes>,
    /// Ack ids this socket still waits for (so a disconnect clears them without scanning the
    /// namespace's table).
    pending_acks: Vec<AckId>,
}

/// In its connect middleware: not in the index, not reachable.
const CONNECTING: u8 = 0;
/// In the index, CONNECT reply not queued yet: broadcasts skip it, so the reply comes first.
const ACCEPTED: u8 = 4;
const CONNECTED: u8 = 1;
const DISCONNECTING: u8 = 2;
const DISCONNECTED: u8 = 3;

impl fmt::Debug for SocketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketRef")
            .field("id", &self.inner.id)
            .field("namespace", &self.inner.ns.name())
            .finish_non_exhaustive()
    }
}

impl PartialEq for SocketRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for SocketRef {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SocketRef {
    pub(crate) fn new(
        ns: Namespace,
        conn: Arc<ConnShared>,
        transport: Arc<dyn Transport>,
        handshake: Handshake,
    ) -> Self {
        Self {
            inner: Arc::new(SocketInner {
                id: SocketId::random(),
                ns,
                transport,
                conn,
                handshake,
                state: AtomicU8::new(CONNECTING),
                parts: Mutex::new(SocketParts::default()),
            }),
        }
    }

    /// The socket id (distinct from the Engine.IO session id).
    pub fn id(&self) -> SocketId {
        self.inner.id
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.ns
    }

    /// The handshake: request headers, query, address, auth payload, time.
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    /// Whether the socket is connected (not yet disconnecting).
    pub fn connected(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) == CONNECTED
    }

    // ----- emitting ------------------------------------------------------------------------

    /// Emits an event with one argument.
    ///
    /// # Errors
    /// [`EmitError::ReservedEvent`], [`EmitError::Serialize`], or the transport's refusal.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emitter().emit(event, data)
    }

    /// Emits an event with any arguments; binary ones are sent as attachments.
    ///
    /// # Errors
    /// See [`SocketRef::emit`].
    pub fn emit_args(&self, event: &str, args: Args) -> Result<(), EmitError> {
        self.emitter().emit_args(event, args)
    }

    /// Emits an event with one argument and waits for the client's acknowledgement (default
    /// timeout 5 s; see [`SocketRef::timeout`]).
    ///
    /// # Errors
    /// See [`SocketRef::emit`]; the returned future fails with [`AckError`].
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<AckFuture, EmitError> {
        self.emitter().emit_with_ack(event, data)
    }

    /// Options for the next emit: an ack timeout.
    pub fn timeout(&self, timeout: Duration) -> SocketEmitter<'_> {
        self.emitter().timeout(timeout)
    }

    /// Options for the next emit: drop it if the transport is not writable.
    pub fn volatile(&self) -> SocketEmitter<'_> {
        self.emitter().volatile()
    }

    /// Options for the next emit: whether it may be compressed.
    pub fn compress(&self, compress: bool) -> SocketEmitter<'_> {
        self.emitter().compress(compress)
    }

    fn emitter(&self) -> SocketEmitter<'_> {
        SocketEmitter {
            socket: self,
            flags: SendFlags::DEFAULT,
            timeout: None,
        }
    }

    // ----- broadcasting from this socket ------------------------------------------------------

    /// A broadcast to these rooms, without this socket (the reference's `socket.to`).
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// A broadcast to every socket of the namespace but this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.ns.clone()).except(self.inner.id)
    }

    /// A broadcast to these rooms, this socket included if it is in one of them.
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.ns.clone()).to(rooms)
    }

    // ----- rooms -------------------------------------------------------------------------------

    /// Joins one or several rooms.
    pub fn join(&self, rooms: impl IntoRooms) {
        let mut list = Vec::new();
        rooms.into_rooms(&mut list);
        self.inner.ns.core().join(self.inner.id, &list);
    }

    /// Leaves one or several rooms (leaving a room the socket is not in does nothing).
    pub fn leave(&self, rooms: impl IntoRooms) {
        let mut list = Vec::new();
        rooms.into_rooms(&mut list);
        self.inner.ns.core().leave(self.inner.id, &list);
    }

    /// Leaves every room but its own.
    pub fn leave_all(&self) {
        let mut events = Vec::new();
        self.inner
            .ns
            .core()
            .lock_index()
            .leave_all(self.inner.id, &mut events);
        self.inner.ns.core().report(&events);
    }

    /// The rooms the socket is in, its own first; empty once disconnected.
    pub fn rooms(&self) -> Vec<Room> {
        self.inner
            .ns
            .core()
            .lock_index()
            .rooms_of(self.inner.id)
            .unwrap_or_default()
    }

    /// Whether the socket is in the room.
    pub fn in_room(&self, room: &str) -> bool {
        self.inner
            .ns
            .core()
            .lock_index()
            .is_member(self.inner.id, room)
    }

    // ----- data --------------------------------------------------------------------------------

    /// Stores a typed value on the socket (replacing the previous value of that type).
    pub fn insert_extension<T: Send + Sync + 'static>(&self, value: T) -> Option<T> {
        lock(&self.inner.parts)
            .extensions
            .get_or_insert_with(Box::default)
            .insert(value)
    }

    /// A clone of the socket's value of type `T`.
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.inner.parts)
            .extensions
            .as_ref()
            .and_then(|e| e.get::<T>().cloned())
    }

    /// Removes the socket's value of type `T`.
    pub fn remove_extension<T: Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.inner.parts)
            .extensions
            .as_mut()
            .and_then(|e| e.remove::<T>())
    }

    /// Sets the socket's serializable data (the reference's `socket.data`), which
    /// [`fetch_sockets`](BroadcastOperator::fetch_sockets) returns, also from other nodes.
    ///
    /// # Errors
    /// [`EmitError::Serialize`] when the value does not serialize.
    pub fn set_data<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        let json = serde_json::to_string(data).map_err(|_| EmitError::Serialize)?;
        lock(&self.inner.parts).data = Some(Utf8Bytes::from(json));
        Ok(())
    }

    /// The socket's data, deserialized; `None` when unset.
    ///
    /// # Errors
    /// The JSON error when the data does not have `T`'s shape.
    pub fn data<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        let raw = lock(&self.inner.parts).data.clone();
        raw.map(|raw| serde_json::from_str(raw.as_str()))
            .transpose()
    }

    /// The socket's data as raw JSON, `None` when unset.
    pub(crate) fn raw_data(&self) -> Option<Utf8Bytes> {
        lock(&self.inner.parts).data.clone()
    }

    // ----- disconnecting ----------------------------------------------------------------------

    /// Disconnects the socket from its namespace (the client sees `io server disconnect`); the
    /// Engine.IO session and the client's other namespaces stay.
    pub fn disconnect(&self) {
        self.close(DisconnectReason::ServerNamespaceDisconnect, true);
    }

    /// Closes the whole Engine.IO session: every socket of this client, in every namespace.
    pub fn disconnect_all(&self) {
        self.inner.conn.disconnect_all();
    }

    // ----- internals ---------------------------------------------------------------------------

    /// CONNECTING -> ACCEPTED, when the socket enters the index.
    pub(crate) fn set_accepted(&self) -> bool {
        self.inner
            .state
            .compare_exchange(CONNECTING, ACCEPTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// ACCEPTED -> CONNECTED, once the CONNECT reply is queued. Fails if it was closed since.
    pub(crate) fn set_connected(&self) -> bool {
        self.inner
            .state
            .compare_exchange(ACCEPTED, CONNECTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether broadcasts may reach the socket (its CONNECT reply is queued).
    pub(crate) fn is_announced(&self) -> bool {
        matches!(
            self.inner.state.load(Ordering::Acquire),
            CONNECTED | DISCONNECTING
        )
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) == DISCONNECTED
    }

    /// Sends an encoded message to this socket only.
    pub(crate) fn send(&self, message: Outgoing, flags: SendFlags) -> Result<(), EmitError> {
        self.inner
            .transport
            .send(message, flags)
            .map_err(|e| match e {
                SendError::Full => EmitError::QueueFull,
                SendError::Dropped => EmitError::Dropped,
                _ => EmitError::Disconnected,
            })
    }

    pub(crate) fn notify_outgoing(&self, event: &str, message: &Outgoing) {
        for listener in &self.inner.ns.core().any_outgoing {
            listener(self, event, message);
        }
    }

    pub(crate) fn send_ack(&self, id: AckId, args: Args) -> Result<(), EmitError> {
        if self.is_disconnected() {
            return Err(EmitError::Disconnected);
        }
        let (json, attachments) = args.into_parts();
        let packet = Packet::ack(self.inner.ns.core().name.clone(), id, ack_data(&json))
            .with_attachments(attachments.len());
        self.send(Outgoing::socketio(&packet, attachments), SendFlags::DEFAULT)
    }

    pub(crate) fn track_ack(&self, id: AckId) {
        lock(&self.inner.parts).pending_acks.push(id);
    }

    pub(crate) fn forget_ack(&self, id: AckId) {
        let pending = &mut lock(&self.inner.parts).pending_acks;
        if let Some(i) = pending.iter().position(|a| *a == id) {
            pending.swap_remove(i);
        }
    }

    /// An ACK arrived from the client.
    pub(crate) fn on_ack(&self, id: AckId, data: Utf8Bytes, attachments: Vec<Bytes>) {
        let waiter = self
            .inner
            .ns
            .core()
            .lock_acks()
            .remove(&(self.inner.id, id));
        match waiter {
            Some(waiter) => {
                self.forget_ack(id);
                waiter.deliver(self.inner.id, Ok(AckResponse { data, attachments }));
            }
            None => tracing::debug!(socket = %self.inner.id, %id, "unknown or expired ack id"),
        }
    }

    /// An EVENT arrived from the client: catch-all listeners, then middleware, then the handler.
    pub(crate) fn on_event(
        &self,
        name: Box<str>,
        data: Utf8Bytes,
        args: Utf8Bytes,
        attachments: Vec<Bytes>,
        ack_id: Option<AckId>,
    ) {
        let config = self.inner.ns.config().clone();
        let handler = config
            .events
            .get(&*name)
            .or(config.fallback.as_ref())
            .cloned();
        let ctx = EventContext {
            socket: self.clone(),
            payload: Payload::Event { data, name, args },
            attachments,
            ack_id,
            reason: None,
            rooms: None,
        };
        for listener in &config.any_incoming {
            run_now_or_spawn(listener.call(&ctx));
        }
        let Some(handler) = handler else {
            tracing::debug!(socket = %self.inner.id, "no handler for event");
            return;
        };
        if config.event_middlewares.is_empty() {
            run_now_or_spawn(handler.call(&ctx));
            return;
        }
        run_now_or_spawn(Box::pin(async move {
            for middleware in &config.event_middlewares {
                if let Err(rejected) = middleware.call(&ctx).await {
                    tracing::debug!(%rejected, "event dropped by middleware");
                    return;
                }
            }
            if ctx.socket.connected() {
                handler.call(&ctx).await;
            }
        }));
    }

    /// Disconnects the socket: `disconnecting` handlers (rooms still known), leave every room,
    /// fail pending acks, `disconnect` handlers. Runs once; later calls do nothing.
    pub(crate) fn close(&self, reason: DisconnectReason, send_packet: bool) {
        let mut state = self.inner.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                CONNECTED | ACCEPTED => DISCONNECTING,
                // Still in its connect middleware: mark it so the connect does not finish.
                CONNECTING => DISCONNECTED,
                _ => return,
            };
            match self.inner.state.compare_exchange(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) if next == DISCONNECTED => return,
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        let ns = self.inner.ns.clone();
        if send_packet {
            let packet = Packet::disconnect(ns.core().name.clone());
            let _ = self.send(Outgoing::socketio(&packet, Vec::new()), SendFlags::DEFAULT);
        }
        let config = ns.config().clone();
        if !config.on_disconnecting.is_empty() {
            let mut ctx = self.reason_ctx(reason);
            ctx.rooms = Some(self.rooms());
            for handler in &config.on_disconnecting {
                run_now_or_spawn(handler.call(&ctx));
            }
        }
        let mut events = Vec::new();
        let removed = ns.core().lock_index().remove(self.inner.id, &mut events);
        ns.core().report(&events);
        if removed.is_some() {
            ns.core().socket_removed(self.inner.id);
        }
        let pending = std::mem::take(&mut lock(&self.inner.parts).pending_acks);
        if !pending.is_empty() {
            let waiters: Vec<_> = {
                let mut acks = ns.core().lock_acks();
                pending
                    .iter()
                    .filter_map(|id| acks.remove(&(self.inner.id, *id)))
                    .collect()
            };
            for waiter in waiters {
                waiter.deliver(self.inner.id, Err(AckError::Disconnected));
            }
        }
        self.inner.conn.remove_socket(ns.name(), self);
        self.inner.state.store(DISCONNECTED, Ordering::Release);
        for handler in &config.on_disconnect {
            run_now_or_spawn(handler.call(&self.reason_ctx(reason)));
        }
        ns.cleanup_if_empty();
    }

    fn reason_ctx(&self, reason: DisconnectReason) -> EventContext {
        EventContext {
            socket: self.clone(),
            payload: Payload::None,
            attachments: Vec::new(),
            ack_id: None,
            reason: Some(reason),
            rooms: None,
        }
    }
}

/// Encodes an EVENT once, as the Engine.IO message every recipient receives.
pub(crate) fn encode_event(
    namespace: &Utf8Bytes,
    event: &str,
    args: Args,
    ack: Option<AckId>,
) -> Result<Outgoing, EmitError> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(EmitError::ReservedEvent);
    }
    let (json, attachments) = args.into_parts();
    let mut packet = Packet::event(namespace.clone(), event_data(event, &json)?)
        .with_attachments(attachments.len());
    packet.ack_id = ack;
    #[cfg(test)]
    ENCODES.with(|c| c.set(c.get() + 1));
    Ok(Outgoing::socketio(&packet, attachments))
}

#[cfg(test)]
thread_local! {
    /// How many events this thread encoded (tests prove broadcasts encode once).
    pub(crate) static ENCODES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Options for one emit from a socket: volatile, compress, ack timeout.
#[derive(Debug)]
pub struct SocketEmitter<'a> {
    socket: &'a SocketRef,
    flags: SendFlags,
    timeout: Option<Duration>,
}

impl SocketEmitter<'_> {
    /// Sets the ack timeout of [`emit_with_ack`](Self::emit_with_ack).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Drops the message if the transport is not writable right now.
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.flags.volatile = true;
        self
    }

    /// Whether the message may be compressed.
    #[must_use]
    pub fn compress(mut self, compress: bool) -> Self {
        self.flags.compress = compress;
        self
    }

    /// Emits an event with one argument.
    ///
    /// # Errors
    /// See [`SocketRef::emit`].
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_args(event, Args::one(data)?)
    }

    /// Emits an event with any arguments.
    ///
    /// # Errors
    /// See [`SocketRef::emit`].
    pub fn emit_args(self, event: &str, args: Args) -> Result<(), EmitError> {
        if self.socket.is_disconnected() {
            return Err(EmitError::Disconnected);
        }
        let message = encode_event(&self.socket.inner.ns.core().name, event, args, None)?;
        self.socket.notify_outgoing(event, &message);
        self.socket.send(message, self.flags)
    }

    /// Emits an event with one argument and returns a future for the acknowledgement.
    ///
    /// # Errors
    /// See [`SocketRef::emit`].
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<AckFuture, EmitError> {
        self.emit_args_with_ack(event, Args::one(data)?)
    }

    /// Emits an event with any arguments and returns a future for the acknowledgement.
    ///
    /// # Errors
    /// See [`SocketRef::emit`].
    pub fn emit_args_with_ack(self, event: &str, args: Args) -> Result<AckFuture, EmitError> {
        let socket = self.socket;
        if socket.is_disconnected() {
            return Err(EmitError::Disconnected);
        }
        let ns = &socket.inner.ns;
        let local = ns.core();
        let id = local.next_ack_id();
        let message = encode_event(&ns.core().name, event, args, Some(id))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let timeout = self.timeout.unwrap_or(ns.shared().config.ack_timeout);
        let deadline = tokio::time::Instant::now().into_std() + timeout;
        socket.track_ack(id);
        local.insert_acks(deadline, [((socket.inner.id, id), AckWaiter::One(tx))]);
        socket.notify_outgoing(event, &message);
        if let Err(error) = socket.send(message, self.flags) {
            if let Some(waiter) = local.lock_acks().remove(&(socket.inner.id, id)) {
                drop(waiter);
            }
            socket.forget_ack(id);
            return Err(error);
        }
        Ok(AckFuture { rx })
    }
}

/// The acknowledgement of one emit: resolves with the client's answer, or [`AckError::Timeout`]
/// / [`AckError::Disconnected`].
#[derive(Debug)]
pub struct AckFuture {
    rx: tokio::sync::oneshot::Receiver<Result<AckResponse, AckError>>,
}

impl Future for AckFuture {
    type Output = Result<AckResponse, AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(AckError::Disconnected)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory per connection matters: a socket's own state stays small (handlers live once per
    /// namespace, the engine request info once per session).
    #[test]
    fn socket_state_is_small() {
        let size = size_of::<SocketInner>();
        assert!(size <= 192, "SocketInner is {size} bytes");
        eprintln!("SocketInner: {size} bytes");
    }
}
