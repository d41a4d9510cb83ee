//! [`Connection`]: the Socket.IO state of one Engine.IO session, driven by the server.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use sockeye_codec::socketio::{Assembled, Assembler, DecodeError, Packet, PacketKind};
use sockeye_codec::{Outgoing, Utf8Bytes};

use crate::broker::Broker;
use crate::error::ConnectError;
use crate::handler::{BoxFuture, EventContext, Payload, run_now_or_spawn};
use crate::handshake::Handshake;
use crate::namespace::Namespace;
use crate::socket::SocketRef;
use crate::transport::{CloseReason, DisconnectReason, EngineInfo, SendFlags, Transport};

/// The Socket.IO side of one Engine.IO session: its binary reassembly, its sockets (one per
/// namespace joined) and its connect timeout.
///
/// Made by [`Broker::on_engine_open`] and owned by the server's per-session driver, which feeds
/// it every message and the clock, quinn style:
///
/// - [`on_engine_text`](Self::on_engine_text) / [`on_engine_binary`](Self::on_engine_binary)
///   for each Engine.IO message, in order, with the current time. An `Err` means the client broke the protocol: the
///   broker has already disconnected its sockets and asked the [`Transport`] to close; the
///   driver only has to stop;
/// - [`poll_timeout`](Self::poll_timeout) after every input, and
///   [`handle_timeout`](Self::handle_timeout) when that instant comes (the connect timeout:
///   a session that joins no namespace in time is closed; the attachment timeout: a binary
///   packet whose attachments do not all arrive in time closes the session);
/// - [`on_engine_close`](Self::on_engine_close) once, when the session ends for any reason.
///   Dropping the `Connection` without it counts as a transport close.
///
/// Handlers run on the calling thread until they first suspend, then on the tokio runtime, so
/// call these methods from within a runtime.
pub struct Connection {
    shared: Arc<ConnShared>,
    assembler: Assembler,
    broker: Broker,
    connect_deadline: Option<Instant>,
    /// When the attachments of the pending binary packet must have arrived.
    attachment_deadline: Option<Instant>,
}

/// The parts of a connection that its sockets and spawned connect handlers share.
pub(crate) struct ConnShared {
    transport: Arc<dyn Transport>,
    info: Arc<EngineInfo>,
    slots: Mutex<Slots>,
    /// Whether any namespace was ever joined (cancels the connect timeout).
    joined: AtomicBool,
}

#[derive(Default)]
struct Slots {
    closed: bool,
    list: Vec<(Utf8Bytes, Slot)>,
}

enum Slot {
    Connecting(SocketRef),
    Connected(SocketRef),
}

/// How the client broke the Socket.IO protocol. The connection is already closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A packet could not be decoded (unknown type, bad payload shape, bad ack id, ...).
    #[error("invalid packet: {0}")]
    Decode(DecodeError),
    /// The attachments of a binary packet did not all arrive within the attachment timeout.
    #[error("binary attachments did not arrive in time")]
    AttachmentTimeout,
    /// A valid packet in the wrong state: an event for a namespace the client has not joined,
    /// a second CONNECT for a joined namespace, a CONNECT_ERROR from the client.
    #[error("{0:?} packet in an invalid state")]
    InvalidState(PacketKind),
    /// The connection was already closed.
    #[error("the connection is closed")]
    Closed,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sid", &self.shared.info.sid)
            .field("sockets", &self.shared.lock().list.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        broker: Broker,
        transport: Arc<dyn Transport>,
        info: EngineInfo,
        now: Instant,
    ) -> Self {
        let config = &broker.shared().config;
        Self {
            assembler: Assembler::new(config.limits),
            connect_deadline: Some(now + config.connect_timeout),
            attachment_deadline: None,
            shared: Arc::new(ConnShared {
                transport,
                info: Arc::new(info),
                slots: Mutex::new(Slots::default()),
                joined: AtomicBool::new(false),
            }),
            broker,
        }
    }

    /// A text message from the Engine.IO session (the text after the `4`).
    ///
    /// # Errors
    /// [`ProtocolViolation`] when the client broke the protocol; the connection is then closed.
    pub fn on_engine_text(
        &mut self,
        text: Utf8Bytes,
        now: Instant,
    ) -> Result<(), ProtocolViolation> {
        let assembled = self.assembler.push_text(text);
        if self.assembler.is_pending() {
            let timeout = self.broker.shared().config.attachment_timeout;
            self.attachment_deadline = Some(now + timeout);
        } else {
            self.attachment_deadline = None;
        }
        self.on_assembled(assembled)
    }

    /// A binary message from the Engine.IO session (an attachment).
    ///
    /// # Errors
    /// [`ProtocolViolation`] when the client broke the protocol; the connection is then closed.
    pub fn on_engine_binary(&mut self, data: Bytes) -> Result<(), ProtocolViolation> {
        let assembled = self.assembler.push_binary(data);
        if !self.assembler.is_pending() {
            self.attachment_deadline = None;
        }
        self.on_assembled(assembled)
    }

    /// The session ended (client close, transport error, ping timeout, server shutdown, ...).
    /// Every socket is disconnected with `reason`.
    pub fn on_engine_close(&mut self, reason: DisconnectReason) {
        self.connect_deadline = None;
        self.attachment_deadline = None;
        self.shared.close_sockets(reason);
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.connect_deadline, self.attachment_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the timeouts due at `now`: the connect timeout (a session with no socket in any
    /// namespace is closed, as the reference does) and the attachment timeout (a binary packet
    /// still missing attachments closes the session as a protocol violation).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .attachment_deadline
            .is_some_and(|deadline| now >= deadline)
        {
            self.attachment_deadline = None;
            if self.assembler.is_pending() {
                self.assembler = Assembler::new(self.broker.shared().config.limits);
                let _ = self.violation(ProtocolViolation::AttachmentTimeout);
                return;
            }
        }
        let Some(deadline) = self.connect_deadline else {
            return;
        };
        if self.shared.joined.load(Ordering::Acquire) {
            self.connect_deadline = None;
            return;
        }
        if now < deadline {
            return;
        }
        self.connect_deadline = None;
        if self.shared.lock().list.is_empty() {
            tracing::debug!(sid = %self.shared.info.sid, "no namespace joined in time");
            self.shared
                .close_sockets(DisconnectReason::ForcedServerClose);
            self.shared.transport.close(CloseReason::ConnectTimeout);
        }
    }

    /// The sockets of this session, one per namespace joined.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.shared
            .lock()
            .list
            .iter()
            .filter_map(|(_, slot)| match slot {
                Slot::Connected(s) => Some(s.clone()),
                Slot::Connecting(_) => None,
            })
            .collect()
    }

    /// The Engine.IO session info given at open.
    pub fn info(&self) -> &EngineInfo {
        &self.shared.info
    }

    fn on_assembled(
        &mut self,
        assembled: Result<Assembled, DecodeError>,
    ) -> Result<(), ProtocolViolation> {
        match assembled {
            Ok(Assembled::Pending) => Ok(()),
            Ok(Assembled::Packet {
                packet,
                attachments,
            }) => self.on_packet(packet, attachments),
            Ok(_) => Ok(()),
            Err(error) => Err(self.violation(ProtocolViolation::Decode(error))),
        }
    }

    fn violation(&mut self, violation: ProtocolViolation) -> ProtocolViolation {
        tracing::debug!(sid = %self.shared.info.sid, %violation, "closing the connection");
        self.connect_deadline = None;
        self.attachment_deadline = None;
        self.shared.close_sockets(DisconnectReason::ParseError);
        self.shared.transport.close(CloseReason::ProtocolViolation);
        violation
    }

    fn on_packet(
        &mut self,
        packet: Packet,
        attachments: Vec<Bytes>,
    ) -> Result<(), ProtocolViolation> {
        let slot = {
            let slots = self.shared.lock();
            if slots.closed {
                return Err(ProtocolViolation::Closed);
            }
            slots
                .list
                .iter()
                .find(|(ns, _)| *ns == packet.namespace)
                .map(|(_, slot)| match slot {
                    Slot::Connecting(s) => (false, s.clone()),
                    Slot::Connected(s) => (true, s.clone()),
                })
        };
        match (packet.kind, slot) {
            (PacketKind::Connect, None) => {
                self.connect(packet);
                Ok(())
            }
            (PacketKind::Event | PacketKind::BinaryEvent, Some((true, socket))) => {
                let Some(data) = packet.data.clone() else {
                    return Err(self.violation(ProtocolViolation::InvalidState(packet.kind)));
                };
                let (Ok(name), Ok(args)) = (packet.event_name(), packet.args()) else {
                    return Err(self.violation(ProtocolViolation::InvalidState(packet.kind)));
                };
                let name: Box<str> = Box::from(&*name);
                socket.on_event(name, data, args, attachments, packet.ack_id);
                Ok(())
            }
            (PacketKind::Ack | PacketKind::BinaryAck, Some((true, socket))) => {
                match (packet.ack_id, packet.data) {
                    (Some(id), Some(data)) => {
                        socket.on_ack(id, data, attachments);
                        Ok(())
                    }
                    _ => Err(self.violation(ProtocolViolation::InvalidState(packet.kind))),
                }
            }
            (PacketKind::Disconnect, Some((true, socket))) => {
                socket.close(DisconnectReason::ClientNamespaceDisconnect, false);
                Ok(())
            }
            (PacketKind::Connect, Some((false, _))) => {
                tracing::debug!("CONNECT while the same namespace is connecting: ignored");
                Ok(())
            }
            (kind, _) => Err(self.violation(ProtocolViolation::InvalidState(kind))),
        }
    }

    /// A CONNECT to a namespace this session has no socket in.
    fn connect(&mut self, packet: Packet) {
        let handshake = Handshake::new(self.shared.info.clone(), packet.data, SystemTime::now());
        let Some((ns, guard)) = self.broker.resolve(packet.namespace.as_str(), &handshake) else {
            let refusal = ConnectError::new("Invalid namespace");
            let reply = Packet::connect_error(packet.namespace, Utf8Bytes::from(refusal.to_json()));
            let _ = self
                .shared
                .transport
                .send(Outgoing::socketio(&reply, Vec::new()), SendFlags::DEFAULT);
            return;
        };
        let socket = SocketRef::new(
            ns.clone(),
            self.shared.clone(),
            self.shared.transport.clone(),
            handshake,
        );
        self.shared
            .lock()
            .list
            .push((packet.namespace, Slot::Connecting(socket.clone())));
        let middlewares = ns.config().connect_middlewares.clone();
        if middlewares.is_empty() {
            finish_connect(&ns, &socket, Ok(()));
            drop(guard);
            return;
        }
        let future: BoxFuture<'static, ()> = Box::pin(async move {
            let _guard = guard;
            let ctx = connect_ctx(&socket);
            let mut result = Ok(());
            for middleware in &middlewares {
                result = middleware.call(&ctx).await;
                if result.is_err() {
                    break;
                }
            }
            finish_connect(&ns, &socket, result);
        });
        run_now_or_spawn(future);
    }
}

fn connect_ctx(socket: &SocketRef) -> EventContext {
    let auth = match socket.handshake().auth_raw() {
        "{}" => None,
        raw => Some(Utf8Bytes::from(raw)),
    };
    EventContext {
        socket: socket.clone(),
        payload: Payload::Connect(auth),
        attachments: Vec::new(),
        ack_id: None,
        reason: None,
        rooms: None,
    }
}

/// Completes a CONNECT after the middleware: refuse it, or add the socket to the namespace,
/// queue the CONNECT reply and run the connect handlers.
fn finish_connect(ns: &Namespace, socket: &SocketRef, result: Result<(), ConnectError>) {
    let conn = socket.inner.conn.clone();
    let name = ns.core().name.clone();
    if let Err(refusal) = result {
        conn.remove_socket(name.as_str(), socket);
        if !conn.lock().closed {
            let reply = Packet::connect_error(name, Utf8Bytes::from(refusal.to_json()));
            let _ = conn
                .transport
                .send(Outgoing::socketio(&reply, Vec::new()), SendFlags::DEFAULT);
        }
        return;
    }
    {
        // Under the connection lock, so a concurrent close either sees the socket connected (and
        // disconnects it) or happens before (and the socket never joins the index).
        let mut slots = conn.lock();
        let position = slots
            .list
            .iter()
            .position(|(_, slot)| matches!(slot, Slot::Connecting(s) if s == socket));
        let Some(position) = position else {
            return;
        };
        if slots.closed || !socket.set_accepted() {
            slots.list.remove(position);
            return;
        }
        ns.core().lock_index().insert(socket.id(), socket.clone());
        if let Some((_, slot)) = slots.list.get_mut(position) {
            *slot = Slot::Connected(socket.clone());
        }
    }
    ns.core().socket_added(socket.id());
    conn.joined.store(true, Ordering::Release);
    let reply = Packet::connect_ok(name, socket.id().as_str());
    let _ = socket.send(Outgoing::socketio(&reply, Vec::new()), SendFlags::DEFAULT);
    if !socket.set_connected() {
        return; // closed in the meantime
    }
    let config = ns.config().clone();
    if !config.on_connect.is_empty() {
        let ctx = connect_ctx(socket);
        for handler in &config.on_connect {
            run_now_or_spawn(handler.call(&ctx));
        }
    }
}

impl ConnShared {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn remove_socket(&self, _namespace: &str, socket: &SocketRef) {
        self.lock().list.retain(|(_, slot)| match slot {
            Slot::Connecting(s) | Slot::Connected(s) => s != socket,
        });
    }

    /// Marks the connection closed and disconnects every socket.
    fn close_sockets(&self, reason: DisconnectReason) {
        let list = {
            let mut slots = self.lock();
            slots.closed = true;
            std::mem::take(&mut slots.list)
        };
        for (_, slot) in list {
            match slot {
                Slot::Connected(socket) | Slot::Connecting(socket) => socket.close(reason, false),
            }
        }
    }

    /// Server-side close of the whole session: DISCONNECT to every namespace, then close.
    pub(crate) fn disconnect_all(&self) {
        let list = {
            let mut slots = self.lock();
            slots.closed = true;
            std::mem::take(&mut slots.list)
        };
        for (_, slot) in list {
            match slot {
                Slot::Connected(socket) | Slot::Connecting(socket) => {
                    socket.close(DisconnectReason::ServerNamespaceDisconnect, true);
                }
            }
        }
        self.transport.close(CloseReason::Forced);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.shared.lock().closed {
            self.shared.close_sockets(DisconnectReason::TransportClose);
        }
    }
}
