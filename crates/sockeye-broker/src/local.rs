//! [`LocalNamespace`]: this node's part of a namespace (its sockets, rooms and pending acks),
//! and the synchronous operations an adapter runs on it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use sockeye_codec::Utf8Bytes;
use sockeye_codec::socketio::AckId;
use tokio::sync::Notify;

use crate::ack::AckTable;
use crate::adapter::{BroadcastOptions, RoomChange, SocketInfo};
use crate::args::AckResponse;
use crate::broadcast::AckSink;
use crate::error::AckError;
use crate::id::{Room, SocketId};
use crate::namespace::{NsConfig, OutgoingListener, RoomListener, ServerListener};
use crate::packet::BroadcastPacket;
use crate::rooms::{RoomEvent, RoomIndex, Selector};
use crate::server_event::{ServerAck, ServerEvent};
use crate::socket::SocketRef;
use crate::transport::DisconnectReason;

/// The adapter's room-lifecycle hook.
type RoomHook = Box<dyn Fn(&RoomChange) + Send + Sync>;

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
    /// The adapter's room-lifecycle hook ([`LocalNamespace::on_room_change`]), set at most once.
    room_hook: OnceLock<RoomHook>,
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
            // A broadcast with ack has one timeout, the requester's: per-socket timeouts only
            // clean the table and are not reported.
            Self::Many(_) if matches!(result, Err(AckError::Timeout)) => {}
            Self::Many(sink) => sink.deliver(from, result),
        }
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

    /// A namespace's local part, with the listeners its configuration registered.
    pub(crate) fn new(name: Utf8Bytes, config: &NsConfig) -> Self {
        Self {
            name,
            index: Mutex::new(RoomIndex::new()),
            acks: Mutex::new(AckTable::new()),
            ack_notify: Arc::new(Notify::new()),
            ack_driver_running: AtomicBool::new(false),
            next_ack: AtomicU64::new(0),
            room_listeners: config.on_room_event.clone(),
            any_outgoing: config.any_outgoing.clone(),
            server_events: config.server_events.clone(),
            room_hook: OnceLock::new(),
        }
    }

    /// Reports room events to the listeners and the adapter's hook (call with no lock held).
    /// Costs one branch when nobody listens.
    pub(crate) fn report(&self, events: &[RoomEvent]) {
        if events.is_empty() {
            return;
        }
        if let Some(hook) = self.room_hook.get() {
            for event in events {
                match event {
                    RoomEvent::Created(room) => hook(&RoomChange::Created(room.clone())),
                    RoomEvent::Deleted(room) => hook(&RoomChange::Deleted(room.clone())),
                    _ => {}
                }
            }
        }
        if self.room_listeners.is_empty() {
            return;
        }
        for event in events {
            for listener in &self.room_listeners {
                listener(self.name.as_str(), event);
            }
        }
    }

    /// A socket entered the index: its own room now exists on this node.
    pub(crate) fn socket_added(&self, id: SocketId) {
        if let Some(hook) = self.room_hook.get() {
            hook(&RoomChange::SocketAdded(id));
        }
    }

    /// A socket left the index: its own room is gone.
    pub(crate) fn socket_removed(&self, id: SocketId) {
        if let Some(hook) = self.room_hook.get() {
            hook(&RoomChange::SocketRemoved(id));
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

/// This node's part of a namespace, as adapters see it: synchronous operations on the local
/// sockets, none of which waits on a socket. Cheap to clone (`Arc` inside).
///
/// An adapter's factory receives it; every message an adapter receives from another node maps
/// to one method here (see `docs/adapter.md`).
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

    /// The namespace name (`/` for the main one).
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

    /// Sends `packet` to the selected local sockets, encoded once for this node; returns how
    /// many were reached. Never waits: a full queue is the transport's business (its
    /// slow-consumer policy), a volatile message to a busy transport is dropped.
    pub fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) -> usize {
        let message = packet.encode(&self.core.name, None);
        let flags = opts.flags.send_flags();
        let event = self.outgoing_event_name(packet);
        self.with_selected(&opts.selector, |recipients| {
            let mut reached = 0;
            // Draining drops each handle right after its send, while it is still in cache.
            for socket in recipients.drain(..) {
                if !socket.is_announced() {
                    continue; // its CONNECT reply is not queued yet: it joins after this message
                }
                if let Some(event) = &event {
                    socket.notify_outgoing(event, &message);
                }
                if socket.send(message.clone(), flags).is_ok() {
                    reached += 1;
                }
            }
            reached
        })
    }

    /// Sends `packet` asking for an acknowledgement to the selected local sockets: assigns
    /// this node's own ack id (from the namespace counter, so the packet is encoded once),
    /// registers each recipient's pending ack (its answer goes to `sink`, kept until
    /// `sink.deadline()`), reports the count with [`AckSink::client_count`] and returns it.
    ///
    /// A node answering another node's request calls this with its own sink and relays what
    /// comes out of it.
    pub fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        sink: &AckSink,
    ) -> usize {
        let ack_id = self.core.next_ack_id();
        let message = packet.encode(&self.core.name, Some(ack_id));
        let flags = opts.flags.send_flags();
        let event = self.outgoing_event_name(packet);
        let expected = self.with_selected(&opts.selector, |recipients| {
            recipients.retain(SocketRef::is_announced);
            for socket in recipients.iter() {
                socket.track_ack(ack_id);
            }
            self.core.insert_acks(
                sink.deadline(),
                recipients
                    .iter()
                    .map(|s| ((s.id(), ack_id), AckWaiter::Many(sink.clone()))),
            );
            let mut expected = 0;
            for socket in recipients.iter() {
                if let Some(event) = &event {
                    socket.notify_outgoing(event, &message);
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
        });
        sink.client_count(expected);
        expected
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

    /// Disconnects the selected local sockets (`close`: their whole Engine.IO sessions).
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

    /// The selected local sockets, described as Node describes them (with `local` set).
    pub fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let selected: Vec<(SocketRef, Vec<Room>)> = {
            let index = self.core.lock_index();
            let mut out = Vec::new();
            index.select(&opts.selector, |id, socket| {
                out.push((socket.clone(), index.rooms_of(id).unwrap_or_default()));
            });
            out
        };
        selected
            .into_iter()
            .map(|(socket, rooms)| SocketInfo::from_local(socket, rooms))
            .collect()
    }

    /// The ids of the selected local sockets (Node's `adapter.sockets(rooms)`).
    pub fn socket_ids(&self, selector: &Selector) -> Vec<SocketId> {
        self.core.lock_index().select_ids(selector)
    }

    /// Every local room, the per-socket rooms included (Node's `adapter.rooms` keys).
    pub fn all_rooms(&self) -> Vec<Room> {
        let index = self.core.lock_index();
        let mut rooms: Vec<Room> = index.rooms().cloned().collect();
        index.select(&Selector::all(), |id, _| rooms.push(Room::from(id)));
        rooms
    }

    /// The local rooms, not counting the per-socket rooms.
    pub fn rooms(&self) -> Vec<Room> {
        self.core.lock_index().rooms().cloned().collect()
    }

    /// Delivers a server-side event from another node to this namespace's listener
    /// ([`NamespaceBuilder::on_server_event`](crate::NamespaceBuilder::on_server_event)).
    /// `ack` is set when the sender waits for an answer: the listener may call it later, once.
    /// Returns whether a listener exists (without one, nothing answers, as in Node).
    pub fn server_event(&self, event: &ServerEvent, ack: Option<ServerAck>) -> bool {
        let Some(listener) = self.core.server_events.get(event.event.as_str()) else {
            return false;
        };
        listener(event, ack);
        true
    }

    /// The local socket with this id.
    pub fn socket(&self, id: SocketId) -> Option<SocketRef> {
        self.core.lock_index().value(id).cloned()
    }

    /// How many sockets are connected locally.
    pub fn socket_count(&self) -> usize {
        self.core.lock_index().socket_count()
    }

    /// Registers the adapter's room-lifecycle hook: called, with no lock held, when a room of
    /// this node gets its first member or loses its last, and when a socket (its own room)
    /// arrives or leaves. At most one hook per namespace: returns `false` (and keeps the first)
    /// when one is set. Register it in the factory, before any socket joins. Unused, it costs
    /// one branch per room change.
    pub fn on_room_change(&self, hook: impl Fn(&RoomChange) + Send + Sync + 'static) -> bool {
        self.core.room_hook.set(Box::new(hook)).is_ok()
    }

    fn outgoing_event_name(&self, packet: &BroadcastPacket) -> Option<String> {
        if self.core.any_outgoing.is_empty() {
            return None;
        }
        Some(packet.event())
    }
}
