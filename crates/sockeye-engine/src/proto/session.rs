//! The Engine.IO session state machine.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sockeye_codec::engineio::{self, DecodeError, Packet, Payload};
use sockeye_codec::{Outgoing, Utf8Bytes};

use super::{SessionConfig, Sid, SlowConsumerPolicy};

/// The two Engine.IO v4 transports this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl Transport {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }

    /// Parses the `transport` query parameter.
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "polling" => Some(Self::Polling),
            "websocket" => Some(Self::WebSocket),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session ended. The first six are the reference server's reasons, with its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the connection or sent a close packet.
    TransportClose,
    /// The connection failed, or the client broke the transport's rules.
    TransportError,
    /// No pong arrived within pingTimeout after a ping.
    PingTimeout,
    /// The client sent something that is not an Engine.IO packet.
    ParseError,
    /// The application closed the session.
    ForcedClose,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The outbound queue reached its bound (slow-consumer policy).
    SlowConsumer,
    /// The client sent a body or message over maxPayload.
    PayloadTooLarge,
}

impl CloseReason {
    /// The reason as the reference server words it (`"ping timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ServerShuttingDown => "server shutting down",
            Self::SlowConsumer => "slow consumer",
            Self::PayloadTooLarge => "payload too large",
        }
    }

    /// Whether messages already queued are still delivered before the transport closes.
    pub fn flushes_queue(self) -> bool {
        matches!(self, Self::ForcedClose | Self::ServerShuttingDown)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A violation of the protocol by the client, returned by the `handle_*` inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A packet or payload could not be decoded.
    #[error("invalid packet: {0}")]
    Decode(#[from] DecodeError),
    /// The client sent a ping (the server pings in Engine.IO v4).
    #[error("invalid heartbeat direction")]
    UnexpectedPing,
    /// A second polling GET arrived while one was pending.
    #[error("overlapping polling requests")]
    PollOverlap,
    /// A second polling POST arrived while one was being read.
    #[error("overlapping polling data requests")]
    PostOverlap,
    /// A polling body or WebSocket message exceeded maxPayload.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The request does not fit the session's current transport.
    #[error("request does not match the session's transport")]
    TransportMismatch,
    /// An upgrade was requested for a session that is upgrading or already upgraded.
    #[error("session cannot be upgraded")]
    UpgradeRefused,
    /// The session is closed.
    #[error("session closed")]
    Closed,
}

impl ProtocolError {
    /// The reason the session closes with when this error occurs on its active transport, if it
    /// closes at all.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            Self::Decode(_) => Some(CloseReason::ParseError),
            Self::UnexpectedPing | Self::PollOverlap | Self::PostOverlap => {
                Some(CloseReason::TransportError)
            }
            Self::PayloadTooLarge => Some(CloseReason::PayloadTooLarge),
            Self::TransportMismatch | Self::UpgradeRefused | Self::Closed => None,
        }
    }
}

/// Why [`Session::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The queue was full; the session was closed by the slow-consumer policy.
    #[error("outbound queue full: session closed (slow consumer)")]
    SlowConsumer,
    /// The queue was full; the volatile message was dropped and the session goes on.
    #[error("outbound queue full: volatile message dropped")]
    Dropped,
    /// The message is larger than maxPayload and could never be delivered.
    #[error("message of {len} bytes exceeds maxPayload ({max})")]
    TooLarge {
        /// Encoded length of the message.
        len: usize,
        /// The configured maxPayload.
        max: usize,
    },
}

/// Something that happened, for the layer above.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A text message (the data after the `4`).
    Message(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// The session moved to WebSocket.
    Upgraded,
    /// The session is over. Always the last event.
    Closed(CloseReason),
}

/// One thing to write on a transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Transmit {
    /// An application message, shared by reference.
    Message(Outgoing),
    /// A server ping, `2`.
    Ping,
    /// The answer to the upgrade probe, `3probe` (WebSocket only).
    ProbePong,
    /// `6`: releases a waiting polling request.
    Noop,
    /// End of the transport: `1` on polling, a close frame on WebSocket.
    Close(CloseReason),
}

impl Transmit {
    /// The Engine.IO packet for a control item, `None` for a message.
    pub fn control_packet(&self) -> Option<Packet> {
        match self {
            Self::Message(_) => None,
            Self::Ping => Some(Packet::Ping(None)),
            Self::ProbePong => Some(Packet::Pong(Some(Utf8Bytes::from_static("probe")))),
            Self::Noop => Some(Packet::Noop),
            Self::Close(_) => Some(Packet::Close),
        }
    }

    /// The text of a control item as a WebSocket text frame (`"2"`, `"3probe"`, `"6"`, `"1"`).
    pub fn control_text(&self) -> Option<Utf8Bytes> {
        Some(Utf8Bytes::from_static(match self {
            Self::Message(_) => return None,
            Self::Ping => "2",
            Self::ProbePong => "3probe",
            Self::Noop => "6",
            Self::Close(_) => "1",
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heartbeat {
    /// Next ping at this instant.
    Idle(Instant),
    /// A ping was queued; the session dies at this instant without a pong.
    AwaitingPong(Instant),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    None,
    /// A WebSocket is attached for this session; waiting for `2probe`.
    Probing(Instant),
    /// `3probe` was owed or sent; waiting for `5`.
    Upgrading(Instant),
    /// The upgrade failed; the upgrade socket must be closed (session continues on polling).
    Aborted,
}

/// One Engine.IO session. See the [module docs](super) for the call protocol.
#[derive(Debug)]
pub struct Session {
    sid: Sid,
    config: Arc<SessionConfig>,
    transport: Transport,
    heartbeat: Heartbeat,
    upgrade: Upgrade,
    /// Items for the active transport, in order.
    outbox: VecDeque<Transmit>,
    /// Bytes of messages in `outbox`.
    queued_bytes: usize,
    /// `3probe` is owed on the upgrade socket.
    probe_reply: bool,
    get_pending: bool,
    post_pending: bool,
    events: VecDeque<Event>,
    closed: Option<CloseReason>,
    /// The WebSocket (active or upgrade) has been told to close.
    ws_close_sent: bool,
}

impl Session {
    /// Opens a session on `transport` at `now`. The first ping is due one pingInterval later.
    pub fn open(sid: Sid, config: Arc<SessionConfig>, transport: Transport, now: Instant) -> Self {
        let ping_at = now + config.ping_interval;
        Self {
            sid,
            config,
            transport,
            heartbeat: Heartbeat::Idle(ping_at),
            upgrade: Upgrade::None,
            outbox: VecDeque::new(),
            queued_bytes: 0,
            probe_reply: false,
            get_pending: false,
            post_pending: false,
            events: VecDeque::new(),
            closed: None,
            ws_close_sent: false,
        }
    }

    /// The open packet for this session, as sent in the handshake response.
    pub fn handshake(&self) -> engineio::Handshake {
        let upgrades: &'static [&'static str] = match self.transport {
            Transport::Polling => &["websocket"],
            Transport::WebSocket => &[],
        };
        engineio::Handshake::new(
            self.sid.as_str(),
            upgrades.iter().map(|u| (*u).to_owned()).collect(),
            duration_ms(self.config.ping_interval),
            duration_ms(self.config.ping_timeout),
            self.config.max_payload as u64,
        )
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The active transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The settings of this session.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Whether a closed polling session still has its last packet for the next GET: the noop
    /// that answers a client's close (`1` in a POST that raced ahead of the GET), or the close
    /// packet of a server-side close (forced close, shutdown). A driver keeps such a session
    /// reachable for a moment so one GET can fetch it; every other close makes the next GET
    /// fail with "unknown sid" at once, as the reference does.
    pub fn has_final_poll(&self) -> bool {
        self.closed.is_some()
            && self.transport == Transport::Polling
            && !self.get_pending
            && !self.outbox.is_empty()
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Whether an upgrade to WebSocket is under way.
    pub fn is_upgrading(&self) -> bool {
        matches!(self.upgrade, Upgrade::Probing(_) | Upgrade::Upgrading(_))
    }

    /// Bytes of application messages waiting in the outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    // ----- inputs -------------------------------------------------------------------------

    /// A decoded packet arrived on `transport` (the active one, or the WebSocket of an upgrade).
    ///
    /// # Errors
    /// A [`ProtocolError`] when the packet breaks the protocol; when the packet came on the active
    /// transport, the session is then closed with [`ProtocolError::close_reason`].
    pub fn handle_packet(
        &mut self,
        now: Instant,
        transport: Transport,
        packet: Packet,
    ) -> Result<(), ProtocolError> {
        self.handle_timeout(now);
        if self.closed.is_some() {
            return Err(ProtocolError::Closed);
        }
        if transport != self.transport {
            self.handle_upgrade_packet(packet);
            return Ok(());
        }
        match packet {
            Packet::Pong(_) => {
                if let Heartbeat::AwaitingPong(_) = self.heartbeat {
                    self.heartbeat = Heartbeat::Idle(now + self.config.ping_interval);
                }
                Ok(())
            }
            Packet::Ping(_) => self.fail(ProtocolError::UnexpectedPing),
            Packet::Message(Payload::Text(text)) => {
                self.events.push_back(Event::Message(text));
                Ok(())
            }
            Packet::Message(Payload::Binary(data)) => {
                self.events.push_back(Event::Binary(data));
                Ok(())
            }
            Packet::Close => {
                self.close_with(CloseReason::TransportClose);
                Ok(())
            }
            // The reference ignores these on the active transport.
            _ => Ok(()),
        }
    }

    /// A frame or segment on `transport` could not be decoded.
    ///
    /// On the active transport this closes the session with `parse error`; on the upgrade
    /// socket it abandons the upgrade.
    pub fn handle_decode_error(
        &mut self,
        transport: Transport,
        error: DecodeError,
    ) -> ProtocolError {
        let error = ProtocolError::Decode(error);
        if self.closed.is_none() {
            if transport == self.transport {
                self.close_with(CloseReason::ParseError);
            } else if self.is_upgrading() {
                self.upgrade = Upgrade::Aborted;
            }
        }
        error
    }

    /// The transport `transport` broke a rule below Engine.IO (a message over maxPayload, a
    /// text frame that is not UTF-8, a malformed frame): the session closes with `reason` when
    /// it is the active transport, or the upgrade is abandoned when it is the upgrade socket.
    pub fn handle_transport_error(&mut self, transport: Transport, reason: CloseReason) {
        if self.closed.is_none() {
            if transport == self.transport {
                self.close_with(reason);
            } else if self.is_upgrading() {
                self.upgrade = Upgrade::Aborted;
            }
        }
    }

    /// A polling GET arrived. Afterwards, [`Session::poll_get_response`] says when and what to
    /// answer.
    ///
    /// # Errors
    /// [`ProtocolError::Closed`] (answer "unknown sid"), [`ProtocolError::TransportMismatch`]
    /// (the session is on WebSocket: bad request), [`ProtocolError::PollOverlap`] (a GET was
    /// already pending: the session closes, the pending GET receives `1`).
    pub fn handle_get(&mut self, now: Instant) -> Result<(), ProtocolError> {
        self.handle_timeout(now);
        if self.closed.is_some() {
            if self.has_final_poll() {
                // The last word of a closed session (see `has_final_poll`).
                self.get_pending = true;
                return Ok(());
            }
            return Err(ProtocolError::Closed);
        }
        if self.transport != Transport::Polling {
            return Err(ProtocolError::TransportMismatch);
        }
        if self.get_pending {
            return self.fail(ProtocolError::PollOverlap);
        }
        self.get_pending = true;
        Ok(())
    }

    /// The pending GET went away before it was answered (client disconnected).
    pub fn handle_get_aborted(&mut self) {
        self.get_pending = false;
    }

    /// A polling POST arrived; its body is about to be read.
    ///
    /// # Errors
    /// As [`Session::handle_get`], with [`ProtocolError::PostOverlap`] for a concurrent POST.
    pub fn handle_post_start(&mut self, now: Instant) -> Result<(), ProtocolError> {
        self.handle_timeout(now);
        if self.closed.is_some() {
            return Err(ProtocolError::Closed);
        }
        if self.transport != Transport::Polling && !self.is_upgrading() {
            return Err(ProtocolError::TransportMismatch);
        }
        if self.post_pending {
            return self.fail(ProtocolError::PostOverlap);
        }
        self.post_pending = true;
        Ok(())
    }

    /// The body of the POST started with [`Session::handle_post_start`]. Every packet is handled
    /// before this returns; a waiting GET is not answered until [`Session::handle_post_done`],
    /// so the replies to all packets of one POST leave together.
    ///
    /// # Errors
    /// The first [`ProtocolError`] met; the session is then closed.
    pub fn handle_post_body(&mut self, now: Instant, body: Utf8Bytes) -> Result<(), ProtocolError> {
        let limits = engineio::Limits::default().max_payload(self.config.max_payload);
        for packet in engineio::split_payload(body, &limits) {
            match packet {
                Ok(packet) => self.handle_packet(now, Transport::Polling, packet)?,
                Err(error) => return Err(self.handle_decode_error(Transport::Polling, error)),
            }
        }
        Ok(())
    }

    /// The POST is finished (its events were delivered, their replies queued).
    pub fn handle_post_done(&mut self) {
        self.post_pending = false;
    }

    /// A POST body exceeded maxPayload: the session closes (the driver answers 413).
    pub fn handle_post_too_large(&mut self) {
        self.post_pending = false;
        self.handle_transport_error(Transport::Polling, CloseReason::PayloadTooLarge);
    }

    /// A WebSocket arrived for this (polling) session: the upgrade starts. Its socket is driven
    /// with `transport = Transport::WebSocket` while the session is still on polling.
    ///
    /// # Errors
    /// [`ProtocolError::UpgradeRefused`] when the session is not on polling or is already
    /// upgrading: accept and close that socket; the session is not affected.
    pub fn handle_upgrade_start(&mut self, now: Instant) -> Result<(), ProtocolError> {
        self.handle_timeout(now);
        if self.closed.is_some() {
            return Err(ProtocolError::Closed);
        }
        if self.transport != Transport::Polling || self.upgrade != Upgrade::None {
            return Err(ProtocolError::UpgradeRefused);
        }
        self.upgrade = Upgrade::Probing(now + self.config.upgrade_timeout);
        self.ws_close_sent = false;
        Ok(())
    }

    /// The WebSocket went away: `error` tells a failure from an orderly close.
    ///
    /// If it was the active transport the session closes; if it was the upgrade socket, the
    /// upgrade is abandoned and the session goes on over polling.
    pub fn handle_transport_closed(&mut self, transport: Transport, error: bool) {
        if self.closed.is_some() {
            return;
        }
        if transport == self.transport {
            if transport == Transport::WebSocket {
                self.close_with(if error {
                    CloseReason::TransportError
                } else {
                    CloseReason::TransportClose
                });
            }
        } else if self.upgrade != Upgrade::None {
            self.upgrade = Upgrade::None;
            self.probe_reply = false;
        }
    }

    /// The timer armed at [`Session::poll_timeout`] fired (calling it early or late is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if let Heartbeat::Idle(ping_at) = self.heartbeat
            && now >= ping_at
        {
            self.outbox.push_back(Transmit::Ping);
            // Counted from when the ping was due, so a late timer cannot stretch the timeout.
            self.heartbeat = Heartbeat::AwaitingPong(ping_at + self.config.ping_timeout);
        }
        if let Heartbeat::AwaitingPong(deadline) = self.heartbeat
            && now >= deadline
        {
            self.close_with(CloseReason::PingTimeout);
            return;
        }
        if let Upgrade::Probing(deadline) | Upgrade::Upgrading(deadline) = self.upgrade
            && now >= deadline
        {
            self.upgrade = Upgrade::Aborted;
            self.probe_reply = false;
        }
    }

    // ----- commands -----------------------------------------------------------------------

    /// Queues a message. The message is shared: this is a refcount bump, not a copy.
    ///
    /// # Errors
    /// [`SendError::Closed`], [`SendError::TooLarge`], or [`SendError::SlowConsumer`] when the
    /// queue is full (the session is then closed).
    pub fn send(&mut self, message: Outgoing) -> Result<(), SendError> {
        self.enqueue(message, false)
    }

    /// Queues a volatile message: when the queue is full it is dropped and the session goes on.
    ///
    /// # Errors
    /// [`SendError::Dropped`] when the queue is full, or as [`Session::send`].
    pub fn send_volatile(&mut self, message: Outgoing) -> Result<(), SendError> {
        self.enqueue(message, true)
    }

    /// Closes the session. [`CloseReason::ForcedClose`] and [`CloseReason::ServerShuttingDown`]
    /// still deliver what is queued; other reasons discard it.
    pub fn close(&mut self, reason: CloseReason) {
        self.close_with(reason);
    }

    // ----- outputs ------------------------------------------------------------------------

    /// The next item to write on the WebSocket `transport` (the active one or the upgrade
    /// socket). [`Transmit::Close`] is the last item: write a close frame and stop.
    pub fn poll_transmit(&mut self, transport: Transport) -> Option<Transmit> {
        if transport != Transport::WebSocket {
            return None;
        }
        if self.transport == Transport::WebSocket {
            if self.ws_close_sent {
                return None;
            }
            let item = self.pop()?;
            if let Transmit::Close(_) = item {
                self.ws_close_sent = true;
            }
            return Some(item);
        }
        // The upgrade socket of a polling session.
        if self.probe_reply {
            self.probe_reply = false;
            return Some(Transmit::ProbePong);
        }
        if self.ws_close_sent {
            return None;
        }
        if let Some(reason) = self.closed {
            self.ws_close_sent = true;
            return Some(Transmit::Close(reason));
        }
        if self.upgrade == Upgrade::Aborted {
            self.ws_close_sent = true;
            self.upgrade = Upgrade::None;
            return Some(Transmit::Close(CloseReason::TransportError));
        }
        None
    }

    /// Whether [`Session::poll_transmit`] has something for the WebSocket.
    pub fn has_ws_transmit(&self) -> bool {
        if self.transport == Transport::WebSocket {
            !self.ws_close_sent && !self.outbox.is_empty()
        } else {
            self.probe_reply
                || (!self.ws_close_sent
                    && (self.closed.is_some() || self.upgrade == Upgrade::Aborted))
        }
    }

    /// The answer to the pending polling GET, if it should be answered now: a payload of at
    /// most maxPayload bytes (a single message longer than that in base64 form still goes
    /// alone, so a session never stalls). `None`: keep waiting.
    pub fn poll_get_response(&mut self) -> Option<Bytes> {
        if !self.get_pending {
            return None;
        }
        let mut body = engineio::PayloadBuilder::new(self.config.max_payload);
        if self.transport != Transport::Polling {
            // Upgraded: release the held request.
            self.get_pending = false;
            body.try_push_packet(&Packet::Noop);
            return Some(body.finish());
        }
        if self.closed.is_none() && self.post_pending {
            return None;
        }
        if self.outbox.is_empty() {
            if self.closed.is_some() || matches!(self.upgrade, Upgrade::Upgrading(_)) {
                self.get_pending = false;
                body.try_push_packet(&Packet::Noop);
                return Some(body.finish());
            }
            return None;
        }
        while let Some(front) = self.outbox.front() {
            let taken = match front {
                Transmit::Message(m) => body.try_push_outgoing(m),
                other => match other.control_packet() {
                    Some(packet) => body.try_push_packet(&packet),
                    None => true,
                },
            };
            if !taken {
                break;
            }
            self.pop();
        }
        self.get_pending = false;
        Some(body.finish())
    }

    /// Whether a pending GET would be answered by [`Session::poll_get_response`] now.
    pub fn has_get_response(&self) -> bool {
        self.get_pending
            && (self.transport != Transport::Polling
                || self.closed.is_some()
                || (!self.post_pending
                    && (!self.outbox.is_empty() || matches!(self.upgrade, Upgrade::Upgrading(_)))))
    }

    /// When to call [`Session::handle_timeout`] next; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let heartbeat = match self.heartbeat {
            Heartbeat::Idle(at) | Heartbeat::AwaitingPong(at) => at,
        };
        match self.upgrade {
            Upgrade::Probing(at) | Upgrade::Upgrading(at) => Some(heartbeat.min(at)),
            Upgrade::None | Upgrade::Aborted => Some(heartbeat),
        }
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- internals ----------------------------------------------------------------------

    fn handle_upgrade_packet(&mut self, packet: Packet) {
        match (self.upgrade, packet) {
            (Upgrade::Probing(deadline), Packet::Ping(Some(data))) if data.as_str() == "probe" => {
                self.upgrade = Upgrade::Upgrading(deadline);
                self.probe_reply = true;
            }
            (Upgrade::Upgrading(_), Packet::Upgrade) => {
                self.upgrade = Upgrade::None;
                self.transport = Transport::WebSocket;
                self.ws_close_sent = false;
                self.events.push_back(Event::Upgraded);
            }
            (Upgrade::None, _) => {}
            _ => {
                self.upgrade = Upgrade::Aborted;
                self.probe_reply = false;
            }
        }
    }

    fn enqueue(&mut self, message: Outgoing, volatile: bool) -> Result<(), SendError> {
        if self.closed.is_some() {
            return Err(SendError::Closed);
        }
        let len = message.wire_len();
        if len > self.config.max_payload {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_payload,
            });
        }
        if self.queued_bytes + len > self.config.max_queued_bytes {
            if volatile {
                return Err(SendError::Dropped);
            }
            match self.config.slow_consumer {
                SlowConsumerPolicy::Close => {
                    self.close_with(CloseReason::SlowConsumer);
                    return Err(SendError::SlowConsumer);
                }
            }
        }
        self.queued_bytes += len;
        self.outbox.push_back(Transmit::Message(message));
        Ok(())
    }

    fn pop(&mut self) -> Option<Transmit> {
        let item = self.outbox.pop_front()?;
        if let Transmit::Message(m) = &item {
            self.queued_bytes = self.queued_bytes.saturating_sub(m.wire_len());
        }
        Some(item)
    }

    fn fail(&mut self, error: ProtocolError) -> Result<(), ProtocolError> {
        if let Some(reason) = error.close_reason() {
            self.close_with(reason);
        }
        Err(error)
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        if !reason.flushes_queue() {
            self.outbox.clear();
            self.queued_bytes = 0;
        }
        if self.transport == Transport::Polling
            && !self.get_pending
            && !matches!(
                reason,
                CloseReason::TransportClose
                    | CloseReason::ForcedClose
                    | CloseReason::ServerShuttingDown
            )
        {
            // No GET will ever fetch anything: the next one gets "unknown sid".
            self.outbox.clear();
            self.queued_bytes = 0;
            self.probe_reply = false;
            self.events.push_back(Event::Closed(reason));
            return;
        }
        // What the transport sees last: a client-initiated close releases a polling request
        // with a noop (it asked to close); everything else ends it with a close packet.
        let last = if reason == CloseReason::TransportClose && self.transport == Transport::Polling
        {
            Transmit::Noop
        } else {
            Transmit::Close(reason)
        };
        self.outbox.push_back(last);
        self.probe_reply = false;
        self.events.push_back(Event::Closed(reason));
    }
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
