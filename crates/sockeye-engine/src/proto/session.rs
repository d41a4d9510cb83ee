//! The Engine.IO session state machine.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sockeye_codec::engineio::{self, DecodeError, Packet, Payload};
use sockeye_codec::{Outgoing, Utf8Bytes};

use super::{SessionConfig, Sid, SlowConsumerPolicy};

/// How long a polling GET that arrives during an upgrade waits before a noop may release it.
///
/// A client that sends `5` on the upgrade socket and then a GET on another connection (the
/// official suite's "ignores HTTP requests with same sid after upgrade") expects 400 for the
/// GET; a multi-threaded server may see the GET first. Holding it this long lets the `5`
/// that is already on its way win: the GET is then refused as on an upgraded session. The
/// reference releases a waiting GET with a noop only on a 100 ms interval started at the
/// probe, so a client waits no longer here than there.
pub const UPGRADE_GET_HOLD: Duration = Duration::from_millis(50);

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
    /// The pending GET arrived during an upgrade: no noop releases it before this instant
    /// (see [`UPGRADE_GET_HOLD`]).
    get_hold: Option<Instant>,
    /// The upgrade completed while the pending GET was held: it is answered with
    /// [`ProtocolError::TransportMismatch`], as a GET on an upgraded session is.
    get_refused: bool,
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
            get_hold: None,
            get_refused: false,
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

    /// Whether a closed polling session still has its last packet for the next GET: the close
    /// packet of a server-side close (forced close, shutdown). A driver keeps such a session
    /// reachable for a moment so one GET can fetch it; every other close (the client's own `1`
    /// included, when no GET was pending to receive its noop) makes the next GET fail with
    /// "unknown sid" at once, as the reference does.
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
    /// A GET that arrives while an upgrade is under way (WebSocket attached, `5` not yet
    /// received) is held for [`UPGRADE_GET_HOLD`]: queued packets still leave at once, but the
    /// noop that ends a poll during an upgrade waits for the hold to end, and if `5` arrives
    /// first the GET is answered with [`ProtocolError::TransportMismatch`] instead. A GET that
    /// was pending before the upgrade started is not held: it gets its noop as soon as the
    /// probe is answered.
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
        self.get_hold = self.is_upgrading().then(|| now + UPGRADE_GET_HOLD);
        self.get_refused = false;
        Ok(())
    }

    /// The pending GET went away before it was answered (client disconnected).
    pub fn handle_get_aborted(&mut self) {
        self.get_pending = false;
        self.get_hold = None;
        self.get_refused = false;
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
        if self.get_hold.is_some_and(|until| now >= until) {
            self.get_hold = None;
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

    /// Like [`Session::poll_transmit`], but stops before [`Transmit::Close`]: `None` when
    /// nothing is queued or when the next item is the close. For a writer that may send
    /// messages but leaves ending the transport to the connection's own driver; after `None`,
    /// [`Session::has_ws_transmit`] tells whether a close is due.
    pub fn poll_transmit_before_close(&mut self, transport: Transport) -> Option<Transmit> {
        if transport != Transport::WebSocket {
            return None;
        }
        if self.transport == Transport::WebSocket {
            if self.ws_close_sent || matches!(self.outbox.front(), Some(Transmit::Close(_))) {
                return None;
            }
            return self.pop();
        }
        // The upgrade socket carries nothing but the probe answer before its close.
        if self.probe_reply {
            self.probe_reply = false;
            return Some(Transmit::ProbePong);
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
    /// alone, so a session never stalls), or the error to answer with instead. `None`: keep
    /// waiting.
    ///
    /// The error is [`ProtocolError::TransportMismatch`] when the upgrade completed while the
    /// GET was held (see [`Session::handle_get`]): answer it as a GET on an upgraded session.
    pub fn poll_get_response(&mut self) -> Option<Result<Bytes, ProtocolError>> {
        if !self.get_pending {
            return None;
        }
        if self.get_refused {
            self.answer_get();
            return Some(Err(ProtocolError::TransportMismatch));
        }
        let mut body = engineio::PayloadBuilder::new(self.config.max_payload);
        if self.transport != Transport::Polling {
            // Upgraded: release the request that was pending before the upgrade.
            self.answer_get();
            body.try_push_packet(&Packet::Noop);
            return Some(Ok(body.finish()));
        }
        if self.closed.is_none() && self.post_pending {
            return None;
        }
        if self.outbox.is_empty() {
            if self.closed.is_some() || self.upgrade_noop_due() {
                self.answer_get();
                body.try_push_packet(&Packet::Noop);
                return Some(Ok(body.finish()));
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
        self.answer_get();
        Some(Ok(body.finish()))
    }

    /// Whether a pending GET would be answered by [`Session::poll_get_response`] now.
    pub fn has_get_response(&self) -> bool {
        self.get_pending
            && (self.get_refused
                || self.transport != Transport::Polling
                || self.closed.is_some()
                || (!self.post_pending && (!self.outbox.is_empty() || self.upgrade_noop_due())))
    }

    /// When to call [`Session::handle_timeout`] next; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let heartbeat = match self.heartbeat {
            Heartbeat::Idle(at) | Heartbeat::AwaitingPong(at) => at,
        };
        let at = match self.upgrade {
            Upgrade::Probing(at) | Upgrade::Upgrading(at) => heartbeat.min(at),
            Upgrade::None | Upgrade::Aborted => heartbeat,
        };
        match self.get_hold {
            Some(until) if self.get_pending => Some(at.min(until)),
            _ => Some(at),
        }
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- internals ----------------------------------------------------------------------

    fn handle_upgrade_packet(&mut self, packet: Packet) {
        // `handle_packet` ran `handle_timeout(now)` first: a hold still set has not expired.
        match (self.upgrade, packet) {
            (Upgrade::Probing(deadline), Packet::Ping(Some(data))) if data.as_str() == "probe" => {
                self.upgrade = Upgrade::Upgrading(deadline);
                self.probe_reply = true;
            }
            (Upgrade::Upgrading(_), Packet::Upgrade) => {
                if self.get_pending && self.get_hold.is_some() {
                    // The GET lost the race to this `5`: refused as on an upgraded session.
                    self.get_refused = true;
                }
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

    /// Whether a poll with nothing queued ends with a noop: the probe was answered and the GET
    /// is not held (it was pending before the upgrade, or its hold is over).
    fn upgrade_noop_due(&self) -> bool {
        matches!(self.upgrade, Upgrade::Upgrading(_)) && self.get_hold.is_none()
    }

    /// The pending GET is answered (whatever with).
    fn answer_get(&mut self) {
        self.get_pending = false;
        self.get_hold = None;
        self.get_refused = false;
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
                CloseReason::ForcedClose | CloseReason::ServerShuttingDown
            )
        {
            // No GET will ever fetch anything: the next one gets "unknown sid". That includes
            // the client's own close (`1` with no GET pending), as the reference answers it.
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

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::time::Duration;

    use super::*;

    const INTERVAL: Duration = Duration::from_millis(300);
    const TIMEOUT: Duration = Duration::from_millis(200);

    fn config() -> SessionConfig {
        SessionConfig::default()
            .ping_interval(INTERVAL)
            .ping_timeout(TIMEOUT)
            .upgrade_timeout(Duration::from_secs(10))
    }

    fn open(transport: Transport, config: SessionConfig) -> (Session, Instant) {
        let t0 = Instant::now();
        let sid = Sid::from_random_bytes([7; 16]);
        (Session::open(sid, Arc::new(config), transport, t0), t0)
    }

    fn text(s: &'static str) -> Packet {
        Packet::Message(Payload::Text(Utf8Bytes::from_static(s)))
    }

    fn get_body(s: &mut Session, now: Instant) -> Option<String> {
        s.handle_get(now).unwrap();
        poll_get(s).map(Result::unwrap)
    }

    /// The pending GET's answer as text, or the error it is answered with.
    fn poll_get(s: &mut Session) -> Option<Result<String, ProtocolError>> {
        let has = s.has_get_response();
        let answer = s.poll_get_response();
        assert_eq!(has, answer.is_some(), "has_get_response agrees");
        answer.map(|a| a.map(|b| String::from_utf8(b.to_vec()).unwrap()))
    }

    fn ws_texts(s: &mut Session) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = s.poll_transmit(Transport::WebSocket) {
            match t {
                Transmit::Message(m) => out.push(m.text().unwrap().as_str().to_owned()),
                Transmit::Close(reason) => out.push(format!("close:{reason}")),
                other => out.push(other.control_text().unwrap().as_str().to_owned()),
            }
        }
        out
    }

    fn events(s: &mut Session) -> Vec<String> {
        std::iter::from_fn(|| s.poll_event())
            .map(|e| match e {
                Event::Message(t) => format!("msg:{t}"),
                Event::Binary(b) => format!("bin:{}", b.len()),
                Event::Upgraded => "upgraded".to_owned(),
                Event::Closed(r) => format!("closed:{r}"),
            })
            .collect()
    }

    #[test]
    fn handshake_values() {
        let (s, _) = open(Transport::Polling, config());
        let h = s.handshake();
        assert_eq!(h.upgrades, vec!["websocket".to_owned()]);
        assert_eq!(
            (h.ping_interval, h.ping_timeout, h.max_payload),
            (300, 200, 1_000_000)
        );
        let (s, _) = open(Transport::WebSocket, config());
        assert!(s.handshake().upgrades.is_empty());
    }

    #[test]
    fn heartbeat_ping_pong_and_timeout() {
        let (mut s, t0) = open(Transport::WebSocket, config());
        assert_eq!(s.poll_timeout(), Some(t0 + INTERVAL));
        s.handle_timeout(t0 + INTERVAL - Duration::from_millis(1));
        assert!(ws_texts(&mut s).is_empty());
        s.handle_timeout(t0 + INTERVAL);
        assert_eq!(ws_texts(&mut s), ["2"]);
        assert_eq!(s.poll_timeout(), Some(t0 + INTERVAL + TIMEOUT));
        // Pong: next ping one interval after the pong.
        let pong_at = t0 + INTERVAL + Duration::from_millis(50);
        s.handle_packet(pong_at, Transport::WebSocket, Packet::Pong(None))
            .unwrap();
        assert_eq!(s.poll_timeout(), Some(pong_at + INTERVAL));
        s.handle_timeout(pong_at + INTERVAL);
        assert_eq!(ws_texts(&mut s), ["2"]);
        // No pong: closed with "ping timeout" exactly at the deadline.
        s.handle_timeout(pong_at + INTERVAL + TIMEOUT - Duration::from_millis(1));
        assert!(!s.is_closed());
        s.handle_timeout(pong_at + INTERVAL + TIMEOUT);
        assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
        assert_eq!(events(&mut s), ["closed:ping timeout"]);
        assert_eq!(ws_texts(&mut s), ["close:ping timeout"]);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn late_timer_cannot_stretch_the_ping_timeout() {
        // The polling test: nobody polls, the first input comes 500 ms after open.
        let (mut s, t0) = open(Transport::Polling, config());
        assert_eq!(
            s.handle_get(t0 + INTERVAL + TIMEOUT),
            Err(ProtocolError::Closed)
        );
        assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
    }

    #[test]
    fn polling_ping_is_delivered_alone() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_get(t0).unwrap();
        assert!(s.poll_get_response().is_none());
        s.handle_timeout(t0 + INTERVAL);
        assert!(s.has_get_response());
        assert_eq!(&s.poll_get_response().unwrap().unwrap()[..], b"2");
    }

    #[test]
    fn client_ping_is_a_protocol_error() {
        let (mut s, t0) = open(Transport::WebSocket, config());
        let err = s
            .handle_packet(t0, Transport::WebSocket, Packet::Ping(None))
            .unwrap_err();
        assert_eq!(err, ProtocolError::UnexpectedPing);
        assert_eq!(s.close_reason(), Some(CloseReason::TransportError));
    }

    #[test]
    fn post_replies_leave_together() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_get(t0).unwrap();
        s.handle_post_start(t0).unwrap();
        s.handle_post_body(t0, Utf8Bytes::from_static("4a\x1e4b\x1e4c"))
            .unwrap();
        assert_eq!(events(&mut s), ["msg:a", "msg:b", "msg:c"]);
        // The handler echoes one by one; the held GET must not answer in between.
        s.send(Outgoing::message_text("a")).unwrap();
        assert!(!s.has_get_response());
        assert!(s.poll_get_response().is_none());
        s.send(Outgoing::message_text("b")).unwrap();
        s.send(Outgoing::message_text("c")).unwrap();
        s.handle_post_done();
        assert!(s.has_get_response());
        assert_eq!(
            &s.poll_get_response().unwrap().unwrap()[..],
            b"4a\x1e4b\x1e4c"
        );
    }

    #[test]
    fn responses_respect_max_payload() {
        let cfg = config().max_payload(NonZeroUsize::new(11).unwrap());
        let (mut s, t0) = open(Transport::Polling, cfg);
        for m in ["aaaa", "bbbb", "cccc"] {
            s.send(Outgoing::message_text(m)).unwrap();
        }
        assert_eq!(get_body(&mut s, t0).unwrap(), "4aaaa\x1e4bbbb");
        assert_eq!(get_body(&mut s, t0).unwrap(), "4cccc");
        assert!(matches!(
            s.send(Outgoing::message_text("01234567890")),
            Err(SendError::TooLarge { len: 12, max: 11 })
        ));
    }

    #[test]
    fn concurrent_gets_close_the_session() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_get(t0).unwrap();
        assert_eq!(s.handle_get(t0), Err(ProtocolError::PollOverlap));
        assert_eq!(&s.poll_get_response().unwrap().unwrap()[..], b"1");
        assert_eq!(s.handle_get(t0), Err(ProtocolError::Closed));
        assert_eq!(events(&mut s), ["closed:transport error"]);
    }

    #[test]
    fn invalid_post_closes_with_parse_error() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_post_start(t0).unwrap();
        let err = s
            .handle_post_body(t0, Utf8Bytes::from_static("abc"))
            .unwrap_err();
        assert!(matches!(err, ProtocolError::Decode(_)));
        assert_eq!(s.close_reason(), Some(CloseReason::ParseError));
        assert_eq!(s.handle_get(t0), Err(ProtocolError::Closed));
    }

    #[test]
    fn client_close_releases_the_held_get_with_noop() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_get(t0).unwrap();
        s.handle_post_start(t0).unwrap();
        s.handle_post_body(t0, Utf8Bytes::from_static("1")).unwrap();
        s.handle_post_done();
        assert_eq!(&s.poll_get_response().unwrap().unwrap()[..], b"6");
        assert_eq!(s.handle_get(t0), Err(ProtocolError::Closed));
    }

    #[test]
    fn client_close_before_the_get_makes_the_sid_unknown() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_post_start(t0).unwrap();
        s.handle_post_body(t0, Utf8Bytes::from_static("1")).unwrap();
        s.handle_post_done();
        assert!(!s.has_final_poll());
        assert_eq!(s.handle_get(t0), Err(ProtocolError::Closed));
    }

    #[test]
    fn forced_close_flushes_then_closes() {
        let (mut s, t0) = open(Transport::WebSocket, config());
        s.send(Outgoing::message_text("bye")).unwrap();
        s.close(CloseReason::ForcedClose);
        assert_eq!(ws_texts(&mut s), ["4bye", "close:forced close"]);
        assert_eq!(s.send(Outgoing::message_text("x")), Err(SendError::Closed));
        let _ = t0;
    }

    #[test]
    fn upgrade_moves_the_queue_without_loss_or_duplication() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.send(Outgoing::message_text("before")).unwrap();
        assert_eq!(get_body(&mut s, t0).unwrap(), "4before");
        s.handle_upgrade_start(t0).unwrap();
        // A second WebSocket while upgrading is refused without harming the session.
        assert_eq!(
            s.handle_upgrade_start(t0),
            Err(ProtocolError::UpgradeRefused)
        );
        s.handle_get(t0).unwrap();
        // The probe comes after the hold of a GET that arrived during the upgrade.
        let t1 = t0 + UPGRADE_GET_HOLD;
        s.handle_packet(
            t1,
            Transport::WebSocket,
            Packet::Ping(Some(Utf8Bytes::from_static("probe"))),
        )
        .unwrap();
        assert_eq!(ws_texts(&mut s), ["3probe"]);
        // Probe answered: the held GET is released with a noop.
        assert_eq!(&s.poll_get_response().unwrap().unwrap()[..], b"6");
        s.send(Outgoing::message_text("during")).unwrap();
        // Nothing for the upgrade socket until "5".
        assert!(ws_texts(&mut s).is_empty());
        s.handle_packet(t1, Transport::WebSocket, Packet::Upgrade)
            .unwrap();
        assert_eq!(s.transport(), Transport::WebSocket);
        s.send(Outgoing::message_text("after")).unwrap();
        assert_eq!(ws_texts(&mut s), ["4during", "4after"]);
        assert_eq!(events(&mut s), ["upgraded"]);
        assert_eq!(s.handle_get(t1), Err(ProtocolError::TransportMismatch));
        assert_eq!(
            s.handle_upgrade_start(t1),
            Err(ProtocolError::UpgradeRefused)
        );
    }

    /// A polling session with an upgrade socket that has sent `2probe` and got `3probe`.
    fn probed(config: SessionConfig) -> (Session, Instant) {
        let (mut s, t0) = open(Transport::Polling, config);
        s.handle_upgrade_start(t0).unwrap();
        s.handle_packet(t0, Transport::WebSocket, probe()).unwrap();
        assert_eq!(ws_texts(&mut s), ["3probe"]);
        (s, t0)
    }

    fn probe() -> Packet {
        Packet::Ping(Some(Utf8Bytes::from_static("probe")))
    }

    #[test]
    fn get_held_during_the_upgrade_is_refused_when_5_arrives() {
        // The suite's race: `5` is on its way over the WebSocket when the GET is handled.
        let (mut s, t0) = probed(config());
        let t1 = t0 + Duration::from_millis(5);
        s.handle_get(t1).unwrap();
        assert_eq!(poll_get(&mut s), None, "held, no noop yet");
        assert_eq!(s.poll_timeout(), Some(t1 + UPGRADE_GET_HOLD));
        let t2 = t1 + UPGRADE_GET_HOLD - Duration::from_millis(1);
        s.handle_packet(t2, Transport::WebSocket, Packet::Upgrade)
            .unwrap();
        assert_eq!(s.transport(), Transport::WebSocket);
        assert_eq!(
            poll_get(&mut s),
            Some(Err(ProtocolError::TransportMismatch))
        );
        assert_eq!(poll_get(&mut s), None, "one answer per GET");
        assert_eq!(events(&mut s), ["upgraded"]);
        // The session lives on over the WebSocket; polling stays refused.
        s.send(Outgoing::message_text("hello")).unwrap();
        assert_eq!(ws_texts(&mut s), ["4hello"]);
        assert_eq!(s.handle_get(t2), Err(ProtocolError::TransportMismatch));
        assert!(!s.is_closed());
    }

    #[test]
    fn get_held_while_probing_is_refused_when_probe_and_5_follow() {
        // The GET may even come before the driver has read `2probe`.
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_upgrade_start(t0).unwrap();
        s.handle_get(t0).unwrap();
        s.handle_packet(t0, Transport::WebSocket, probe()).unwrap();
        assert_eq!(ws_texts(&mut s), ["3probe"]);
        assert_eq!(poll_get(&mut s), None);
        s.handle_packet(t0, Transport::WebSocket, Packet::Upgrade)
            .unwrap();
        assert_eq!(
            poll_get(&mut s),
            Some(Err(ProtocolError::TransportMismatch))
        );
    }

    #[test]
    fn get_held_during_the_upgrade_without_5_ends_as_a_normal_poll() {
        let (mut s, t0) = probed(config());
        let t1 = t0 + Duration::from_millis(5);
        s.handle_get(t1).unwrap();
        s.handle_timeout(t1 + UPGRADE_GET_HOLD - Duration::from_millis(1));
        assert_eq!(poll_get(&mut s), None);
        // The timer armed for the end of the hold releases it with the upgrade's noop.
        assert_eq!(s.poll_timeout(), Some(t1 + UPGRADE_GET_HOLD));
        s.handle_timeout(t1 + UPGRADE_GET_HOLD);
        assert_eq!(poll_get(&mut s), Some(Ok("6".to_owned())));
        assert_eq!(
            s.poll_timeout(),
            Some(t0 + INTERVAL),
            "back to the heartbeat"
        );
        // A `5` after that answer completes the upgrade as usual.
        s.handle_packet(t1 + UPGRADE_GET_HOLD, Transport::WebSocket, Packet::Upgrade)
            .unwrap();
        assert_eq!(s.transport(), Transport::WebSocket);
        assert_eq!(poll_get(&mut s), None);
    }

    #[test]
    fn get_held_during_the_upgrade_still_takes_queued_packets_at_once() {
        let (mut s, t0) = probed(config());
        s.handle_get(t0).unwrap();
        assert_eq!(poll_get(&mut s), None);
        s.send(Outgoing::message_text("now")).unwrap();
        assert_eq!(poll_get(&mut s), Some(Ok("4now".to_owned())));
        // The next GET is held again; `5` within its hold refuses it.
        s.handle_get(t0).unwrap();
        s.handle_packet(t0, Transport::WebSocket, Packet::Upgrade)
            .unwrap();
        assert_eq!(
            poll_get(&mut s),
            Some(Err(ProtocolError::TransportMismatch))
        );
    }

    #[test]
    fn get_held_while_probing_gets_the_noop_at_the_probe_once_its_hold_is_over() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_upgrade_start(t0).unwrap();
        s.handle_get(t0).unwrap();
        let late = t0 + UPGRADE_GET_HOLD + Duration::from_millis(10);
        s.handle_timeout(late);
        assert_eq!(
            poll_get(&mut s),
            None,
            "no probe yet: an ordinary long poll"
        );
        s.handle_packet(late, Transport::WebSocket, probe())
            .unwrap();
        assert_eq!(poll_get(&mut s), Some(Ok("6".to_owned())));
    }

    #[test]
    fn get_pending_before_the_upgrade_gets_a_noop_not_an_error() {
        // Released at the probe, without a hold.
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_get(t0).unwrap();
        s.handle_upgrade_start(t0).unwrap();
        s.handle_packet(t0, Transport::WebSocket, probe()).unwrap();
        assert_eq!(poll_get(&mut s), Some(Ok("6".to_owned())));

        // Still pending when `5` arrives (a POST kept it from answering at the probe):
        // released with a noop by the upgrade.
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_get(t0).unwrap();
        s.handle_upgrade_start(t0).unwrap();
        s.handle_post_start(t0).unwrap();
        s.handle_packet(t0, Transport::WebSocket, probe()).unwrap();
        assert_eq!(poll_get(&mut s), None, "a POST is in progress");
        s.handle_packet(t0, Transport::WebSocket, Packet::Upgrade)
            .unwrap();
        assert_eq!(poll_get(&mut s), Some(Ok("6".to_owned())));
    }

    #[test]
    fn an_aborted_held_get_leaves_no_hold_behind() {
        let (mut s, t0) = probed(config());
        s.handle_get(t0).unwrap();
        s.handle_get_aborted();
        assert_eq!(s.poll_timeout(), Some(t0 + INTERVAL));
        s.handle_packet(t0, Transport::WebSocket, Packet::Upgrade)
            .unwrap();
        assert_eq!(poll_get(&mut s), None);
        assert_eq!(s.handle_get(t0), Err(ProtocolError::TransportMismatch));
    }

    #[test]
    fn abandoned_upgrade_times_out_and_polling_goes_on() {
        let (mut s, t0) = open(
            Transport::Polling,
            config()
                .upgrade_timeout(Duration::from_millis(100))
                .ping_interval(Duration::from_secs(60)),
        );
        s.handle_upgrade_start(t0).unwrap();
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        s.handle_timeout(t0 + Duration::from_millis(100));
        assert!(!s.is_upgrading());
        assert_eq!(ws_texts(&mut s), ["close:transport error"]);
        s.handle_transport_closed(Transport::WebSocket, false);
        assert!(!s.is_closed());
        s.send(Outgoing::message_text("still polling")).unwrap();
        assert_eq!(get_body(&mut s, t0).unwrap(), "4still polling");
        // A new upgrade may start afterwards.
        s.handle_upgrade_start(t0).unwrap();
    }

    #[test]
    fn bad_packet_on_the_upgrade_socket_aborts_only_the_upgrade() {
        let (mut s, t0) = open(Transport::Polling, config());
        s.handle_upgrade_start(t0).unwrap();
        s.handle_packet(t0, Transport::WebSocket, text("too early"))
            .unwrap();
        assert_eq!(ws_texts(&mut s), ["close:transport error"]);
        assert!(!s.is_closed());
    }

    #[test]
    fn slow_consumer_closes_and_volatile_drops() {
        let cfg = config().max_queued_bytes(NonZeroUsize::new(10).unwrap());
        let (mut s, _) = open(Transport::WebSocket, cfg);
        s.send(Outgoing::message_text("12345678")).unwrap(); // 9 bytes with the "4"
        assert_eq!(
            s.send_volatile(Outgoing::message_text("xx")),
            Err(SendError::Dropped)
        );
        assert!(!s.is_closed());
        assert_eq!(
            s.send(Outgoing::message_text("xx")),
            Err(SendError::SlowConsumer)
        );
        assert_eq!(s.close_reason(), Some(CloseReason::SlowConsumer));
        assert_eq!(ws_texts(&mut s), ["close:slow consumer"]);
        assert_eq!(s.queued_bytes(), 0);
    }

    #[test]
    fn queue_accounting_returns_to_zero() {
        let (mut s, _) = open(Transport::WebSocket, config());
        let m = Outgoing::message_text("hello");
        for _ in 0..3 {
            s.send(m.clone()).unwrap();
        }
        assert_eq!(s.queued_bytes(), 18);
        assert_eq!(ws_texts(&mut s).len(), 3);
        assert_eq!(s.queued_bytes(), 0);
    }

    #[test]
    fn client_close_on_websocket() {
        let (mut s, t0) = open(Transport::WebSocket, config());
        s.handle_packet(t0, Transport::WebSocket, Packet::Close)
            .unwrap();
        assert_eq!(ws_texts(&mut s), ["close:transport close"]);
        assert_eq!(events(&mut s), ["closed:transport close"]);
    }

    #[test]
    fn transport_loss_reasons() {
        let (mut s, _) = open(Transport::WebSocket, config());
        s.handle_transport_closed(Transport::WebSocket, true);
        assert_eq!(s.close_reason(), Some(CloseReason::TransportError));
        let (mut s, _) = open(Transport::WebSocket, config());
        s.handle_transport_error(Transport::WebSocket, CloseReason::PayloadTooLarge);
        assert_eq!(s.close_reason(), Some(CloseReason::PayloadTooLarge));
    }

    #[test]
    fn messages_become_events_in_order() {
        let (mut s, t0) = open(Transport::WebSocket, config());
        s.handle_packet(t0, Transport::WebSocket, text("one"))
            .unwrap();
        s.handle_packet(
            t0,
            Transport::WebSocket,
            Packet::decode_binary(Bytes::from_static(&[1, 2])),
        )
        .unwrap();
        assert_eq!(events(&mut s), ["msg:one", "bin:2"]);
    }
}

#[cfg(test)]
mod properties {
    //! Random operation sequences against one session on a virtual clock: the invariants hold
    //! whatever the client and the application do.

    use std::num::NonZeroUsize;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Send(usize),
        SendVolatile(usize),
        Get,
        GetAborted,
        Post(Vec<&'static str>),
        Advance(u64),
        UpgradeStart,
        Ws(&'static str),
        WsClosed(bool),
        Close,
        DrainWs,
        DrainGet,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..400).prop_map(Op::Send),
            1 => (1usize..400).prop_map(Op::SendVolatile),
            3 => Just(Op::Get),
            1 => Just(Op::GetAborted),
            2 => proptest::collection::vec(
                prop_oneof![Just("3"), Just("4hi"), Just("bAQI="), Just("1"), Just("x"), Just("2")],
                1..4,
            )
            .prop_map(Op::Post),
            3 => (0u64..400).prop_map(Op::Advance),
            1 => Just(Op::UpgradeStart),
            3 => prop_oneof![
                Just("2probe"),
                Just("5"),
                Just("3"),
                Just("4ws"),
                Just("1"),
                Just("zz"),
                Just("2")
            ]
            .prop_map(Op::Ws),
            1 => any::<bool>().prop_map(Op::WsClosed),
            1 => Just(Op::Close),
            3 => Just(Op::DrainWs),
            3 => Just(Op::DrainGet),
        ]
    }

    /// Message ids found in a polling body or WebSocket frames (`4#<id>#...`).
    fn ids_in(text: &str, out: &mut Vec<usize>) {
        for part in text.split('\x1e') {
            if let Some((id, _)) = part
                .strip_prefix("4#")
                .and_then(|rest| rest.split_once('#'))
            {
                out.push(id.parse().unwrap());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn invariants_hold(start_ws in any::<bool>(), ops in proptest::collection::vec(op(), 1..60)) {
            let config = SessionConfig::default()
                .ping_interval(Duration::from_millis(300))
                .ping_timeout(Duration::from_millis(200))
                .upgrade_timeout(Duration::from_millis(500))
                .max_payload(NonZeroUsize::new(1000).unwrap())
                .max_queued_bytes(NonZeroUsize::new(1500).unwrap());
            let max_queued = config.max_queued_bytes;
            let transport = if start_ws { Transport::WebSocket } else { Transport::Polling };
            let mut now = Instant::now();
            let mut s = Session::open(Sid::from_random_bytes([1; 16]), Arc::new(config), transport, now);
            let mut next_id = 0usize;
            let mut accepted = Vec::new();
            let mut delivered = Vec::new();
            let mut closed_events = 0;
            let mut events_after_close = 0;
            for op in ops {
                match op {
                    Op::Send(len) | Op::SendVolatile(len) => {
                        let id = next_id;
                        next_id += 1;
                        let text = format!("#{id}#{}", "p".repeat(len));
                        let message = Outgoing::message_text(&text);
                        let result = if matches!(op, Op::Send(_)) {
                            s.send(message)
                        } else {
                            s.send_volatile(message)
                        };
                        if result.is_ok() {
                            accepted.push(id);
                        }
                        if s.is_closed() {
                            prop_assert!(result.is_err() || result.is_ok());
                        }
                    }
                    Op::Get => {
                        let _ = s.handle_get(now);
                    }
                    Op::GetAborted => s.handle_get_aborted(),
                    Op::Post(parts) => {
                        if s.handle_post_start(now).is_ok() {
                            let body = parts.join("\x1e");
                            let _ = s.handle_post_body(now, Utf8Bytes::from(body));
                            s.handle_post_done();
                        }
                    }
                    Op::Advance(ms) => {
                        now += Duration::from_millis(ms);
                        s.handle_timeout(now);
                    }
                    Op::UpgradeStart => {
                        let _ = s.handle_upgrade_start(now);
                    }
                    Op::Ws(text) => match Packet::decode_text(Utf8Bytes::from_static(text)) {
                        Ok(packet) => {
                            let _ = s.handle_packet(now, Transport::WebSocket, packet);
                        }
                        Err(error) => {
                            let _ = s.handle_decode_error(Transport::WebSocket, error);
                        }
                    },
                    Op::WsClosed(error) => s.handle_transport_closed(Transport::WebSocket, error),
                    Op::Close => s.close(CloseReason::ForcedClose),
                    Op::DrainWs => {
                        while let Some(t) = s.poll_transmit(Transport::WebSocket) {
                            if let Transmit::Message(m) = t {
                                ids_in(m.text().unwrap().as_str(), &mut delivered);
                            }
                        }
                    }
                    Op::DrainGet => {
                        match s.poll_get_response() {
                            Some(Ok(body)) => {
                                prop_assert!(body.len() <= 1000);
                                ids_in(std::str::from_utf8(&body).unwrap(), &mut delivered);
                            }
                            Some(Err(error)) => {
                                // Only a GET that lost the race to the upgrade is refused.
                                prop_assert_eq!(error, ProtocolError::TransportMismatch);
                                prop_assert_eq!(s.transport(), Transport::WebSocket);
                            }
                            None => {}
                        }
                    }
                }
                // Invariants after every step.
                prop_assert!(s.queued_bytes() <= max_queued);
                let counted: usize = s
                    .outbox
                    .iter()
                    .map(|t| if let Transmit::Message(m) = t { m.wire_len() } else { 0 })
                    .sum();
                prop_assert_eq!(counted, s.queued_bytes());
                prop_assert_eq!(s.poll_timeout().is_none(), s.is_closed());
                while let Some(event) = s.poll_event() {
                    if closed_events > 0 {
                        events_after_close += 1;
                    }
                    if let Event::Closed(_) = event {
                        closed_events += 1;
                    }
                }
                if s.is_closed() {
                    prop_assert_eq!(s.send(Outgoing::message_text("late")), Err(SendError::Closed));
                }
            }
            // An open session loses nothing: drain what is left, then everything accepted
            // has been delivered.
            if !s.is_closed() {
                if s.transport() == Transport::WebSocket {
                    while let Some(t) = s.poll_transmit(Transport::WebSocket) {
                        if let Transmit::Message(m) = t {
                            ids_in(m.text().unwrap().as_str(), &mut delivered);
                        }
                    }
                } else {
                    for _ in 0..100 {
                        if s.queued_bytes() == 0 {
                            break;
                        }
                        if !s.get_pending {
                            s.handle_get(now).unwrap();
                        }
                        let body = s.poll_get_response().unwrap().unwrap();
                        ids_in(std::str::from_utf8(&body).unwrap(), &mut delivered);
                    }
                }
                prop_assert_eq!(&delivered, &accepted);
            }
            prop_assert!(closed_events <= 1);
            prop_assert_eq!(events_after_close, 0);
            prop_assert_eq!(closed_events == 1, s.is_closed());
            // Delivered messages: accepted ones, each at most once, in the order sent.
            prop_assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{:?}", delivered);
            prop_assert!(delivered.iter().all(|id| accepted.contains(id)));
        }
    }
}
