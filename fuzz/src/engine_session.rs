//! The `engine_session` target: a sequence of inputs, commands and polls against one sans-IO
//! [`Session`], on a virtual clock, with the session's documented properties checked after
//! every step.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use sockeye_codec::engineio::{self, Packet, Payload};
use sockeye_codec::{Outgoing, Utf8Bytes};
use sockeye_engine::proto::{
    CloseReason, Event, ProtocolError, SendError, Session, SessionConfig, Sid, Transmit, Transport,
};

/// The session's settings, small so the limits are reached. Input format: a byte (bit 0 set:
/// the session opens on polling), then five little-endian `u16`s in the field order.
#[derive(Debug)]
struct Config {
    polling: bool,
    ping_interval_ms: u16,
    ping_timeout_ms: u16,
    upgrade_timeout_ms: u16,
    max_payload: u16,
    max_queued_bytes: u16,
}

/// One step. `ws` selects the WebSocket (the active one, or the upgrade socket of a polling
/// session), otherwise polling.
///
/// Input format (simple, so seeds can be written by hand): a tag byte modulo 23 picks the
/// variant in declaration order, then its arguments: a `bool` is one byte (bit 0), a `u8` one
/// byte, a `u16` two bytes little-endian, a `String` a length byte and that many bytes (UTF-8,
/// lossily), a packet whatever `arbitrary` makes of the bytes, `Send` a flags byte (bit 0
/// binary, bit 1 volatile) and a `u16`.
#[derive(Debug)]
enum Op {
    /// The virtual clock moves on by this many milliseconds.
    Advance(u16),
    /// The clock jumps to the armed timer (plus a few ms) and the timer fires.
    FireTimer(u8),
    /// The timer fires at the current time.
    Timeout,
    /// A decoded packet.
    Packet(bool, engineio::Packet),
    /// `2probe` on the upgrade socket.
    Probe,
    /// `5` on the upgrade socket.
    Upgrade,
    /// `3` on the active transport.
    Pong,
    /// A text frame as the driver would decode it.
    TextFrame(bool, String),
    TransportError(bool, u8),
    TransportClosed(bool, bool),
    Get,
    GetAborted,
    PostStart,
    PostBody(String),
    PostDone,
    PostTooLarge,
    UpgradeStart,
    /// A message of `pad` extra bytes; binary or text; volatile or not.
    Send {
        binary: bool,
        volatile: bool,
        pad: u16,
    },
    Close(u8),
    PollTransmit,
    /// What a direct writer takes: everything up to (not including) the close.
    PollTransmitBeforeClose,
    PollGet,
}

fn flag(u: &mut Unstructured<'_>) -> arbitrary::Result<bool> {
    Ok(u8::arbitrary(u)? & 1 == 1)
}

fn le16(u: &mut Unstructured<'_>) -> arbitrary::Result<u16> {
    Ok(u16::from_le_bytes([u8::arbitrary(u)?, u8::arbitrary(u)?]))
}

fn text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let len = usize::from(u8::arbitrary(u)?).min(u.len());
    Ok(String::from_utf8_lossy(u.bytes(len)?).into_owned())
}

impl<'a> Arbitrary<'a> for Config {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self {
            polling: flag(u)?,
            ping_interval_ms: le16(u)?,
            ping_timeout_ms: le16(u)?,
            upgrade_timeout_ms: le16(u)?,
            max_payload: le16(u)?,
            max_queued_bytes: le16(u)?,
        })
    }
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u8::arbitrary(u)? % 23 {
            0 => Self::Advance(le16(u)?),
            1 => Self::FireTimer(u8::arbitrary(u)?),
            2 => Self::Timeout,
            3 => Self::Packet(flag(u)?, engineio::Packet::arbitrary(u)?),
            4 => Self::Probe,
            5 => Self::Upgrade,
            6 => Self::Pong,
            7 => Self::TextFrame(flag(u)?, text(u)?),
            8 => Self::TransportError(flag(u)?, u8::arbitrary(u)?),
            9 => Self::TransportClosed(flag(u)?, flag(u)?),
            10 => Self::Get,
            11 => Self::GetAborted,
            12 => Self::PostStart,
            13 => Self::PostBody(text(u)?),
            14 => Self::PostDone,
            15 => Self::PostTooLarge,
            16 => Self::UpgradeStart,
            17 => {
                let flags = u8::arbitrary(u)?;
                Self::Send {
                    binary: flags & 1 == 1,
                    volatile: flags & 2 == 2,
                    pad: le16(u)?,
                }
            }
            18 => Self::Close(u8::arbitrary(u)?),
            19 => Self::PollTransmit,
            20 => Self::PollGet,
            21 => Self::PostDone,
            _ => Self::PollTransmitBeforeClose,
        })
    }
}

const REASONS: [CloseReason; 8] = [
    CloseReason::TransportClose,
    CloseReason::TransportError,
    CloseReason::PingTimeout,
    CloseReason::ParseError,
    CloseReason::ForcedClose,
    CloseReason::ServerShuttingDown,
    CloseReason::SlowConsumer,
    CloseReason::PayloadTooLarge,
];

fn reason(index: u8) -> CloseReason {
    REASONS[usize::from(index) % REASONS.len()]
}

fn transport(ws: bool) -> Transport {
    if ws {
        Transport::WebSocket
    } else {
        Transport::Polling
    }
}

/// The harness's view of the session.
struct Harness {
    session: Session,
    max_queued_bytes: usize,
    max_payload: usize,
    now: Instant,
    next_id: u32,
    /// Messages accepted by `send` and not yet seen on a transport: id and `wire_len`.
    queued: VecDeque<(u32, usize)>,
    closed_event: Option<CloseReason>,
    /// The current WebSocket has been given its close frame.
    ws_closed: bool,
}

/// A sequence of steps against one session.
pub fn engine_session(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(config) = Config::arbitrary(&mut u) else {
        return;
    };
    let max_payload = usize::from(config.max_payload).max(1);
    let max_queued_bytes = usize::from(config.max_queued_bytes).max(1);
    let session_config = Arc::new(
        SessionConfig::default()
            .ping_interval(Duration::from_millis(config.ping_interval_ms.into()))
            .ping_timeout(Duration::from_millis(config.ping_timeout_ms.into()))
            .upgrade_timeout(Duration::from_millis(config.upgrade_timeout_ms.into()))
            .max_payload(NonZeroUsize::new(max_payload).unwrap())
            .max_queued_bytes(NonZeroUsize::new(max_queued_bytes).unwrap()),
    );
    let now = Instant::now();
    let initial = transport(!config.polling);
    let session = Session::open(
        Sid::from_random_bytes([7; 16]),
        Arc::clone(&session_config),
        initial,
        now,
    );
    assert_eq!(session.transport(), initial);
    assert_eq!(
        session.poll_timeout(),
        Some(now + Duration::from_millis(config.ping_interval_ms.into()))
    );
    assert_eq!(
        session.handshake().ping_interval,
        u64::from(config.ping_interval_ms)
    );
    let mut h = Harness {
        session,
        max_queued_bytes,
        max_payload,
        now,
        next_id: 0,
        queued: VecDeque::new(),
        closed_event: None,
        ws_closed: false,
    };
    let mut steps = 0;
    while !u.is_empty() && steps < 256 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        h.step(op);
        steps += 1;
    }
    // Drain: a session that is told to close gives up its queue and ends.
    h.step(Op::Close(4));
    for _ in 0..1024 {
        if h.session.poll_transmit(Transport::WebSocket).is_none() {
            break;
        }
    }
    h.drain_events();
    assert!(h.closed_event.is_some(), "close() always ends with Closed");
}

impl Harness {
    fn step(&mut self, op: Op) {
        let was_closed = self.session.is_closed();
        let mut fired_timer = false;
        let mut took_now = true;
        match op {
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms.into());
                took_now = false;
            }
            Op::FireTimer(extra) => {
                if let Some(at) = self.session.poll_timeout() {
                    self.now = self.now.max(at) + Duration::from_millis(extra.into());
                }
                self.session.handle_timeout(self.now);
                fired_timer = true;
            }
            Op::Timeout => {
                self.session.handle_timeout(self.now);
                fired_timer = true;
            }
            Op::Packet(ws, packet) => self.packet(transport(ws), packet),
            Op::Probe => self.packet(
                Transport::WebSocket,
                Packet::Ping(Some(Utf8Bytes::from_static("probe"))),
            ),
            Op::Upgrade => self.packet(Transport::WebSocket, Packet::Upgrade),
            Op::Pong => {
                let active = self.session.transport();
                self.packet(active, Packet::Pong(None));
            }
            Op::TextFrame(ws, text) => {
                match Packet::decode_text(Utf8Bytes::from(text.as_str())) {
                    Ok(packet) => self.packet(transport(ws), packet),
                    Err(error) => {
                        let error = self.session.handle_decode_error(transport(ws), error);
                        assert!(matches!(error, ProtocolError::Decode(_)));
                    }
                }
                took_now = false;
            }
            Op::TransportError(ws, index) => {
                self.session
                    .handle_transport_error(transport(ws), reason(index));
                took_now = false;
            }
            Op::TransportClosed(ws, error) => {
                self.session.handle_transport_closed(transport(ws), error);
                took_now = false;
            }
            Op::Get => {
                let result = self.session.handle_get(self.now);
                if was_closed && result.is_ok() {
                    // Only the final poll of a closed session is served.
                    assert_eq!(self.session.transport(), Transport::Polling);
                }
                if result == Err(ProtocolError::PollOverlap) {
                    assert!(self.session.is_closed());
                }
            }
            Op::GetAborted => {
                self.session.handle_get_aborted();
                took_now = false;
            }
            Op::PostStart => {
                let result = self.session.handle_post_start(self.now);
                if was_closed {
                    assert_eq!(result, Err(ProtocolError::Closed));
                }
            }
            Op::PostBody(body) => {
                let polling = self.session.transport() == Transport::Polling;
                let result = self
                    .session
                    .handle_post_body(self.now, Utf8Bytes::from(body.as_str()));
                if was_closed {
                    assert!(result.is_err());
                }
                // A body that fails to decode before its first packet never reads the clock:
                // the timer may stay in the past (the driver fires it at once; harmless).
                took_now = false;
                if result.is_err() && polling {
                    assert!(
                        self.session.is_closed(),
                        "a bad POST body closes the session"
                    );
                }
            }
            Op::PostDone => {
                self.session.handle_post_done();
                took_now = false;
            }
            Op::PostTooLarge => {
                self.session.handle_post_too_large();
                took_now = false;
                if !was_closed && self.session.transport() == Transport::Polling {
                    assert_eq!(
                        self.session.close_reason(),
                        Some(CloseReason::PayloadTooLarge)
                    );
                }
            }
            Op::UpgradeStart => {
                let polling = self.session.transport() == Transport::Polling;
                let upgrading = self.session.is_upgrading();
                // An abandoned upgrade socket that still owes its close frame also refuses a
                // new one (the session's `Upgrade::Aborted` until `poll_transmit`).
                let old_socket = polling && self.session.has_ws_transmit();
                match self.session.handle_upgrade_start(self.now) {
                    Ok(()) => {
                        assert!(!was_closed && polling);
                        // A new upgrade socket.
                        self.ws_closed = false;
                    }
                    Err(ProtocolError::UpgradeRefused) => {
                        assert!(!polling || upgrading || old_socket || self.session.is_closed());
                    }
                    Err(ProtocolError::Closed) => assert!(self.session.is_closed()),
                    Err(other) => panic!("handle_upgrade_start: {other:?}"),
                }
            }
            Op::Send {
                binary,
                volatile,
                pad,
            } => {
                self.send(binary, volatile, pad);
                took_now = false;
            }
            Op::Close(index) => {
                let reason = reason(index);
                self.session.close(reason);
                assert!(self.session.is_closed());
                if !was_closed {
                    assert_eq!(self.session.close_reason(), Some(reason));
                }
                took_now = false;
            }
            Op::PollTransmit => {
                self.poll_transmit();
                took_now = false;
            }
            Op::PollTransmitBeforeClose => {
                self.poll_transmit_before_close();
                took_now = false;
            }
            Op::PollGet => {
                self.poll_get();
                took_now = false;
            }
        }
        self.check(was_closed, took_now, fired_timer);
    }

    fn packet(&mut self, on: Transport, packet: Packet) {
        let was_closed = self.session.is_closed();
        let result = self.session.handle_packet(self.now, on, packet);
        if was_closed {
            assert_eq!(result, Err(ProtocolError::Closed));
        }
        if let Err(error) = &result
            && on == self.session.transport()
            && error.close_reason().is_some()
        {
            assert!(
                self.session.is_closed(),
                "{error:?} on the active transport"
            );
        }
    }

    fn send(&mut self, binary: bool, volatile: bool, pad: u16) {
        let id = self.next_id;
        self.next_id += 1;
        let pad = usize::from(pad % 2048);
        let message = if binary {
            let mut data = id.to_le_bytes().to_vec();
            data.resize(4 + pad, 0xa5);
            Outgoing::binary(Bytes::from(data))
        } else {
            let mut text = format!("{id};");
            text.extend(std::iter::repeat_n('x', pad));
            Outgoing::message_text(&text)
        };
        let len = message.wire_len();
        let was_closed = self.session.is_closed();
        let before = self.session.queued_bytes();
        let result = if volatile {
            self.session.send_volatile(message)
        } else {
            self.session.send(message)
        };
        match result {
            Ok(()) => {
                assert!(!was_closed);
                self.queued.push_back((id, len));
            }
            Err(SendError::Closed) => assert!(was_closed),
            Err(SendError::TooLarge { len: l, max }) => {
                assert!(!was_closed);
                assert_eq!((l, max), (len, self.max_payload));
                assert!(len > self.max_payload);
            }
            Err(SendError::Dropped) => {
                assert!(volatile && !self.session.is_closed());
                assert!(before + len > self.max_queued_bytes);
                assert_eq!(self.session.queued_bytes(), before);
            }
            Err(SendError::SlowConsumer) => {
                assert!(!volatile && !was_closed);
                assert!(before + len > self.max_queued_bytes);
                assert_eq!(self.session.close_reason(), Some(CloseReason::SlowConsumer));
            }
            Err(other) => panic!("send: {other:?}"),
        }
    }

    /// A message id seen on a transport: it must be the oldest one queued.
    fn delivered(&mut self, id: u32, len: usize) {
        assert_eq!(
            self.queued.pop_front(),
            Some((id, len)),
            "messages leave in the order they were queued, each once"
        );
    }

    fn poll_transmit(&mut self) {
        let has = self.session.has_ws_transmit();
        let item = self.session.poll_transmit(Transport::WebSocket);
        assert_eq!(
            has,
            item.is_some(),
            "has_ws_transmit agrees with poll_transmit"
        );
        assert!(self.session.poll_transmit(Transport::Polling).is_none());
        if let Some(item) = item {
            self.took(item);
        }
    }

    /// Checks and records one item taken for the WebSocket.
    fn took(&mut self, item: Transmit) {
        assert!(!self.ws_closed, "nothing after the close frame: {item:?}");
        match item {
            Transmit::Message(message) => {
                let (id, len) = message_id(&message);
                self.delivered(id, len);
            }
            Transmit::Close(_) => self.ws_closed = true,
            Transmit::ProbePong => {
                assert_eq!(self.session.transport(), Transport::Polling);
            }
            Transmit::Ping | Transmit::Noop => {}
            other => panic!("unknown transmit {other:?}"),
        }
    }

    fn poll_transmit_before_close(&mut self) {
        assert!(
            self.session
                .poll_transmit_before_close(Transport::Polling)
                .is_none()
        );
        let Some(item) = self
            .session
            .poll_transmit_before_close(Transport::WebSocket)
        else {
            // Nothing queued, or the close is next: then `poll_transmit` still has it.
            return;
        };
        assert!(
            !matches!(item, Transmit::Close(_)),
            "a direct writer must not get the close"
        );
        self.took(item);
    }

    fn poll_get(&mut self) {
        let has = self.session.has_get_response();
        let body = self.session.poll_get_response();
        assert_eq!(
            has,
            body.is_some(),
            "has_get_response agrees with poll_get_response"
        );
        let body = match body {
            None => return,
            Some(Ok(body)) => body,
            Some(Err(error)) => {
                // Only a GET held during an upgrade that then completed is refused.
                assert_eq!(error, ProtocolError::TransportMismatch);
                assert_eq!(self.session.transport(), Transport::WebSocket);
                assert!(!self.session.has_get_response(), "one answer per GET");
                return;
            }
        };
        assert!(!self.session.has_get_response(), "one answer per GET");
        let body = Utf8Bytes::try_from_bytes(body).expect("a polling body is UTF-8");
        let len = body.len();
        let unlimited = engineio::Limits::default()
            .max_payload(usize::MAX)
            .max_packets(usize::MAX);
        let packets: Vec<Packet> = engineio::split_payload(body, &unlimited)
            .collect::<Result<_, _>>()
            .expect("a polling body splits into packets");
        assert!(!packets.is_empty());
        assert!(
            len <= self.max_payload || packets.len() == 1,
            "{len} bytes over {} in {} packets",
            self.max_payload,
            packets.len()
        );
        for packet in packets {
            match packet {
                Packet::Message(Payload::Text(text)) => {
                    let (id, rest) = text.as_str().split_once(';').expect("our message");
                    self.delivered(id.parse().unwrap(), 1 + id.len() + 1 + rest.len());
                }
                Packet::Message(Payload::Binary(data)) => {
                    let id = u32::from_le_bytes(data.get(..4).unwrap().try_into().unwrap());
                    self.delivered(id, data.len());
                }
                Packet::Ping(None) | Packet::Noop | Packet::Close => {}
                other => panic!("unexpected packet in a GET response: {other:?}"),
            }
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            assert!(
                self.closed_event.is_none(),
                "{event:?} after Closed({:?})",
                self.closed_event
            );
            match event {
                Event::Closed(reason) => {
                    assert_eq!(self.session.close_reason(), Some(reason));
                    self.closed_event = Some(reason);
                }
                Event::Upgraded => assert_eq!(self.session.transport(), Transport::WebSocket),
                Event::Message(_) | Event::Binary(_) => {}
                other => panic!("unknown event {other:?}"),
            }
        }
    }

    fn check(&mut self, was_closed: bool, took_now: bool, fired_timer: bool) {
        self.drain_events();
        let session = &self.session;
        assert!(
            !was_closed || session.is_closed(),
            "a closed session stays closed"
        );
        assert_eq!(
            session.is_closed(),
            self.closed_event.is_some(),
            "Closed is reported once the session is closed"
        );
        assert!(session.queued_bytes() <= self.max_queued_bytes);
        if session.is_closed() && session.queued_bytes() == 0 {
            // Delivered, or discarded by the close.
            self.queued.clear();
        }
        assert_eq!(
            session.queued_bytes(),
            self.queued.iter().map(|(_, len)| len).sum::<usize>(),
            "queued_bytes counts the messages not yet written"
        );
        match session.poll_timeout() {
            None => assert!(session.is_closed(), "an open session always has a timer"),
            Some(at) => {
                assert!(!session.is_closed());
                if fired_timer {
                    assert!(at > self.now, "the timer is re-armed in the future");
                } else if took_now {
                    assert!(
                        at >= self.now,
                        "an input at `now` leaves no timer in the past"
                    );
                }
            }
        }
    }
}

/// The id and `wire_len` of one of the harness's messages.
fn message_id(message: &Outgoing) -> (u32, usize) {
    let len = message.wire_len();
    if let Some(text) = message.text() {
        let text = text.as_str().strip_prefix('4').unwrap();
        let (id, _) = text.split_once(';').unwrap();
        (id.parse().unwrap(), len)
    } else {
        let data = message.binaries().first().unwrap();
        (
            u32::from_le_bytes(data.get(..4).unwrap().try_into().unwrap()),
            len,
        )
    }
}
