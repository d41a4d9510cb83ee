//! Engine.IO protocol v4: packets, the handshake, and HTTP long-polling payloads.
//!
//! A packet in text form is one type digit followed by its data: `4hello` is a message,
//! `2probe` a ping with the upgrade probe. Over WebSocket every frame is one packet (binary
//! messages are binary frames). Over HTTP long-polling a body holds several packets separated by
//! the record separator `0x1e`, and binary messages are written as `b` followed by base64.
//!
//! ```
//! use sockeye_codec::engineio::{split_payload, Limits, Packet, Payload};
//! use sockeye_codec::Utf8Bytes;
//!
//! let body = Utf8Bytes::from_static("4hello\x1ebAQID\x1e2");
//! let packets: Result<Vec<_>, _> = split_payload(body, &Limits::default()).collect();
//! assert_eq!(
//!     packets.unwrap(),
//!     [
//!         Packet::Message(Payload::Text(Utf8Bytes::from_static("hello"))),
//!         Packet::Message(Payload::Binary(bytes::Bytes::from_static(&[1, 2, 3]))),
//!         Packet::Ping(None),
//!     ]
//! );
//! ```

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::Utf8Bytes;
use crate::outgoing::{Frame, Outgoing};
use crate::utf8::TextSink;

/// Decodes standard base64 with or without padding: the reference server decodes with Node's
/// `Buffer.from(data, "base64")`, which does not insist on the padding.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The record separator between packets of a long-polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The Engine.IO protocol version this module speaks (`EIO=4`).
pub const PROTOCOL_VERSION: u8 = 4;

/// Engine.IO packet types, in protocol order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)] // complete by definition: protocol v4 has exactly these types
pub enum PacketType {
    /// `0`: the handshake, sent by the server.
    Open,
    /// `1`: close the session.
    Close,
    /// `2`: heartbeat ping (server to client), or the upgrade probe (client to server).
    Ping,
    /// `3`: heartbeat pong.
    Pong,
    /// `4`: an application message.
    Message,
    /// `5`: completes an upgrade to WebSocket.
    Upgrade,
    /// `6`: no operation, used to release a pending poll.
    Noop,
}

impl PacketType {
    /// The type's digit on the wire.
    pub const fn as_char(self) -> u8 {
        match self {
            Self::Open => b'0',
            Self::Close => b'1',
            Self::Ping => b'2',
            Self::Pong => b'3',
            Self::Message => b'4',
            Self::Upgrade => b'5',
            Self::Noop => b'6',
        }
    }

    /// The type for a digit on the wire.
    pub const fn from_char(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }
}

/// The data of a message packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)] // complete by definition: a message is text or binary
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Payload {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(#[cfg_attr(feature = "arbitrary", arbitrary(with = arbitrary_bytes))] Bytes),
}

/// The handshake that opens a session: the JSON data of the open packet.
///
/// It serializes with exactly the keys of the reference server, in its order:
/// `sid`, `upgrades`, `pingInterval`, `pingTimeout`, `maxPayload`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Handshake {
    /// The session id.
    pub sid: String,
    /// The transports the client may upgrade to (`["websocket"]` on polling, `[]` on WebSocket).
    pub upgrades: Vec<String>,
    /// Milliseconds between two pings of the server.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// The largest payload, in bytes, the server accepts.
    pub max_payload: u64,
}

impl Handshake {
    /// A handshake with the given values.
    pub fn new(
        sid: impl Into<String>,
        upgrades: Vec<String>,
        ping_interval: u64,
        ping_timeout: u64,
        max_payload: u64,
    ) -> Self {
        Self {
            sid: sid.into(),
            upgrades,
            ping_interval,
            ping_timeout,
            max_payload,
        }
    }
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)] // complete by definition: one variant per packet type
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Packet {
    /// `0{json}`: the handshake.
    Open(Handshake),
    /// `1`: close.
    Close,
    /// `2` or `2probe`.
    Ping(Option<Utf8Bytes>),
    /// `3` or `3probe`.
    Pong(Option<Utf8Bytes>),
    /// `4...` (text) or a binary frame / `b` + base64.
    Message(Payload),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

/// Why a packet or payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty frame or an empty record in a payload.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// `b` followed by something that is not base64.
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,
    /// The open packet's data is not the handshake JSON.
    #[error("invalid handshake data")]
    InvalidHandshake,
    /// A payload larger than allowed.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A payload with more packets than allowed.
    #[error("payload has more than {max} packets")]
    TooManyPackets {
        /// The limit.
        max: usize,
    },
}

/// Limits applied while decoding, with the reference server's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_payload: usize,
    max_packets: usize,
}

impl Limits {
    /// `maxPayload`: the largest body or frame accepted, in bytes (default 1,000,000).
    #[must_use]
    pub const fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The most packets one polling payload may hold (default 16,384).
    #[must_use]
    pub const fn max_packets(mut self, count: usize) -> Self {
        self.max_packets = count;
        self
    }

    /// The configured `maxPayload`.
    pub const fn payload_limit(&self) -> usize {
        self.max_payload
    }

    /// The configured packet count limit.
    pub const fn packet_limit(&self) -> usize {
        self.max_packets
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload: 1_000_000,
            max_packets: 16_384,
        }
    }
}

impl Packet {
    /// The packet's type.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Open(_) => PacketType::Open,
            Self::Close => PacketType::Close,
            Self::Ping(_) => PacketType::Ping,
            Self::Pong(_) => PacketType::Pong,
            Self::Message(_) => PacketType::Message,
            Self::Upgrade => PacketType::Upgrade,
            Self::Noop => PacketType::Noop,
        }
    }

    /// Decodes one packet in text form: a WebSocket text frame or one record of a polling
    /// payload. A record starting with `b` is a base64 binary message, as the reference parser
    /// accepts it on both transports. Text fields point into `frame`; nothing is copied.
    ///
    /// # Errors
    /// [`DecodeError::Empty`], [`DecodeError::UnknownType`], [`DecodeError::InvalidBase64`] or
    /// [`DecodeError::InvalidHandshake`].
    #[allow(clippy::needless_pass_by_value)] // takes the frame: decoded fields are slices of it
    pub fn decode_text(frame: Utf8Bytes) -> Result<Self, DecodeError> {
        let Some(&first) = frame.as_bytes().first() else {
            return Err(DecodeError::Empty);
        };
        if first == b'b' {
            let data = BASE64_LENIENT
                .decode(frame.as_bytes().get(1..).unwrap_or_default())
                .map_err(|_| DecodeError::InvalidBase64)?;
            return Ok(Self::Message(Payload::Binary(Bytes::from(data))));
        }
        let kind = PacketType::from_char(first).ok_or(DecodeError::UnknownType(first))?;
        // The type is one ASCII byte, so byte 1 is a char boundary.
        let rest = frame.slice_from(1).unwrap_or_default();
        let optional = |rest: Utf8Bytes| (!rest.is_empty()).then_some(rest);
        Ok(match kind {
            PacketType::Open => Self::Open(
                serde_json::from_str(rest.as_str()).map_err(|_| DecodeError::InvalidHandshake)?,
            ),
            PacketType::Close => Self::Close,
            PacketType::Ping => Self::Ping(optional(rest)),
            PacketType::Pong => Self::Pong(optional(rest)),
            PacketType::Message => Self::Message(Payload::Text(rest)),
            PacketType::Upgrade => Self::Upgrade,
            PacketType::Noop => Self::Noop,
        })
    }

    /// Decodes a WebSocket binary frame: always a binary message.
    pub fn decode_binary(frame: Bytes) -> Self {
        Self::Message(Payload::Binary(frame))
    }

    /// The length of [`Packet::encode_text`]'s output.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Open(handshake) => 1 + handshake_json_len(handshake),
            Self::Close | Self::Upgrade | Self::Noop => 1,
            Self::Ping(data) | Self::Pong(data) => 1 + data.as_ref().map_or(0, Utf8Bytes::len),
            Self::Message(Payload::Text(text)) => 1 + text.len(),
            Self::Message(Payload::Binary(data)) => 1 + base64_len(data.len()),
        }
    }

    /// Appends the packet's text form to `dst`: the WebSocket text frame or the polling record.
    /// A binary message becomes `b` followed by base64 (its polling form; over WebSocket send
    /// binary messages as binary frames instead).
    pub fn encode_text(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        self.encode_to(dst);
    }

    /// The packet's text form as a new [`Utf8Bytes`].
    pub fn to_text(&self) -> Utf8Bytes {
        // Exact capacity: the `String` becomes the `Bytes` without a copy or a reallocation.
        let mut dst = String::with_capacity(self.encoded_len());
        self.encode_to(&mut dst);
        Utf8Bytes::from(dst)
    }

    fn encode_to<S: TextSink>(&self, dst: &mut S) {
        match self {
            Self::Open(handshake) => {
                dst.put_ascii(b'0');
                // Serializing a struct of strings and integers cannot fail.
                let json = serde_json::to_string(handshake)
                    .expect("invariant: the handshake serializes to JSON");
                dst.put_text(&json);
            }
            Self::Close | Self::Upgrade | Self::Noop | Self::Ping(None) | Self::Pong(None) => {
                dst.put_ascii(self.packet_type().as_char());
            }
            Self::Ping(Some(data)) | Self::Pong(Some(data)) => {
                dst.put_ascii(self.packet_type().as_char());
                dst.put_text(data);
            }
            Self::Message(Payload::Text(text)) => {
                dst.put_ascii(b'4');
                dst.put_text(text);
            }
            Self::Message(Payload::Binary(data)) => {
                dst.put_ascii(b'b');
                dst.put_base64(data);
            }
        }
    }
}

/// The packets of a long-polling request body, in order; see [`split_payload`].
///
/// After the first error the iterator ends.
#[derive(Debug, Clone)]
pub struct Segments {
    body: Utf8Bytes,
    position: usize,
    count: usize,
    max_packets: usize,
    error: Option<DecodeError>,
    done: bool,
}

/// Splits a long-polling request body into packets.
///
/// Each record (between `0x1e` separators) is decoded with [`Packet::decode_text`]. A body longer
/// than `limits`' `maxPayload` yields one [`DecodeError::PayloadTooLarge`]; more records than the
/// packet limit yield [`DecodeError::TooManyPackets`]; an empty record (including an empty body)
/// is [`DecodeError::Empty`].
pub fn split_payload(body: Utf8Bytes, limits: &Limits) -> Segments {
    let error = (body.len() > limits.max_payload).then_some(DecodeError::PayloadTooLarge {
        len: body.len(),
        max: limits.max_payload,
    });
    Segments {
        body,
        position: 0,
        count: 0,
        max_packets: limits.max_packets,
        error,
        done: false,
    }
}

impl Iterator for Segments {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(error) = self.error.take() {
            self.done = true;
            return Some(Err(error));
        }
        if self.count == self.max_packets {
            self.done = true;
            return Some(Err(DecodeError::TooManyPackets {
                max: self.max_packets,
            }));
        }
        let rest = self
            .body
            .as_bytes()
            .get(self.position..)
            .unwrap_or_default();
        let (len, last) = match memchr::memchr(RECORD_SEPARATOR, rest) {
            Some(index) => (index, false),
            None => (rest.len(), true),
        };
        let start = self.position;
        let end = start + len;
        // 0x1e is ASCII, so positions next to it are char boundaries.
        let record = self
            .body
            .as_str()
            .get(start..end)
            .and_then(|text| self.body.slice_ref(text))
            .unwrap_or_default();
        self.position = end + 1;
        self.count += 1;
        if last {
            self.done = true;
        }
        let packet = Packet::decode_text(record);
        if packet.is_err() {
            self.done = true;
        }
        Some(packet)
    }
}

impl std::iter::FusedIterator for Segments {}

/// Builds a long-polling response body from packets and [`Outgoing`] messages, never longer than
/// a limit (the session's `maxPayload`).
///
/// Each `try_push_*` either appends the whole item (with the separators it needs) and returns
/// `true`, or leaves the body as it is and returns `false`, so the caller keeps the item for the
/// next poll. The one exception keeps a session from stalling: the first item of an empty body
/// is always taken, even when it alone is over the limit.
///
/// ```
/// use sockeye_codec::engineio::{Packet, PayloadBuilder};
/// use sockeye_codec::Outgoing;
///
/// let mut body = PayloadBuilder::new(1_000_000);
/// assert!(body.try_push_packet(&Packet::Ping(None)));
/// assert!(body.try_push_outgoing(&Outgoing::message_text("hi")));
/// assert_eq!(&body.finish()[..], b"2\x1e4hi");
/// ```
#[derive(Debug)]
pub struct PayloadBuilder {
    body: BytesMut,
    limit: usize,
    packets: usize,
}

impl PayloadBuilder {
    /// An empty body that will not grow past `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            body: BytesMut::new(),
            limit,
            packets: 0,
        }
    }

    /// Appends a packet if it fits.
    pub fn try_push_packet(&mut self, packet: &Packet) -> bool {
        if !self.fits(packet.encoded_len()) {
            return false;
        }
        self.separate();
        packet.encode_text(&mut self.body);
        self.packets += 1;
        true
    }

    /// Appends every frame of `message` (its text and each binary attachment as `b` + base64)
    /// if all of them fit.
    pub fn try_push_outgoing(&mut self, message: &Outgoing) -> bool {
        if !self.fits(message.polling_len()) {
            return false;
        }
        for frame in message.frames() {
            self.separate();
            match frame {
                Frame::Text(text) => self.body.put_slice(text.as_bytes()),
                Frame::Binary(data) => {
                    self.body.put_u8(b'b');
                    put_base64(&mut self.body, data);
                }
            }
            self.packets += 1;
        }
        true
    }

    /// Whether nothing has been pushed.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// The body's current length in bytes.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// The finished body.
    pub fn finish(self) -> Bytes {
        self.body.freeze()
    }

    fn fits(&self, encoded_len: usize) -> bool {
        let separator = usize::from(self.packets > 0);
        self.packets == 0
            || self
                .body
                .len()
                .saturating_add(separator)
                .saturating_add(encoded_len)
                <= self.limit
    }

    fn separate(&mut self) {
        if self.packets > 0 {
            self.body.put_u8(RECORD_SEPARATOR);
        }
    }
}

/// The length of standard, padded base64 for `len` bytes.
pub(crate) const fn base64_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

pub(crate) fn put_base64(dst: &mut BytesMut, data: &[u8]) {
    let start = dst.len();
    let len = base64_len(data.len());
    dst.resize(start + len, 0);
    if let Some(out) = dst.get_mut(start..) {
        // The slice is exactly `base64_len` long, which is what padded encoding writes.
        let written = BASE64
            .encode_slice(data, out)
            .expect("invariant: the buffer was sized with base64_len");
        debug_assert_eq!(written, len);
    }
}

fn handshake_json_len(handshake: &Handshake) -> usize {
    let mut counter = LenCounter(0);
    // Serializing to a counting writer cannot fail.
    serde_json::to_writer(&mut counter, handshake)
        .expect("invariant: the handshake serializes to JSON");
    counter.0
}

struct LenCounter(usize);

impl std::io::Write for LenCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "arbitrary")]
fn arbitrary_bytes(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Bytes> {
    Ok(Bytes::from(<Vec<u8> as arbitrary::Arbitrary>::arbitrary(
        u,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &'static str) -> Result<Packet, DecodeError> {
        Packet::decode_text(Utf8Bytes::from_static(text))
    }

    fn split(text: &'static str) -> Vec<Result<Packet, DecodeError>> {
        split_payload(Utf8Bytes::from_static(text), &Limits::default()).collect()
    }

    #[test]
    fn decodes_every_packet_type() {
        assert_eq!(decode("1"), Ok(Packet::Close));
        assert_eq!(decode("2"), Ok(Packet::Ping(None)));
        assert_eq!(
            decode("2probe"),
            Ok(Packet::Ping(Some(Utf8Bytes::from_static("probe"))))
        );
        assert_eq!(
            decode("3probe"),
            Ok(Packet::Pong(Some(Utf8Bytes::from_static("probe"))))
        );
        assert_eq!(
            decode("4"),
            Ok(Packet::Message(Payload::Text(Utf8Bytes::default())))
        );
        assert_eq!(decode("5"), Ok(Packet::Upgrade));
        assert_eq!(decode("6"), Ok(Packet::Noop));
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("7"), Err(DecodeError::UnknownType(b'7')));
        assert_eq!(decode("abc"), Err(DecodeError::UnknownType(b'a')));
        assert_eq!(decode("b!!"), Err(DecodeError::InvalidBase64));
        assert_eq!(decode("0{}"), Err(DecodeError::InvalidHandshake));
    }

    #[test]
    fn open_packet_has_the_reference_keys_in_order() {
        let open = Packet::Open(Handshake::new(
            "lv_VI97HAXpY6yYWAAAC",
            vec!["websocket".into()],
            25000,
            20000,
            1_000_000,
        ));
        let text = open.to_text();
        assert_eq!(
            text,
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(open.encoded_len(), text.len());
        assert_eq!(Packet::decode_text(text), Ok(open));
    }

    #[test]
    fn binary_in_text_form_is_base64() {
        let packet = Packet::Message(Payload::Binary(Bytes::from_static(&[1, 2, 3, 4])));
        assert_eq!(packet.to_text(), "bAQIDBA==");
        assert_eq!(packet.encoded_len(), "bAQIDBA==".len());
        assert_eq!(decode("bAQIDBA=="), Ok(packet));
    }

    #[test]
    fn splits_payloads_like_the_protocol_examples() {
        assert_eq!(
            split("4hello\x1e4€\x1ebAQIDBA=="),
            [
                Ok(Packet::Message(Payload::Text(Utf8Bytes::from_static(
                    "hello"
                )))),
                Ok(Packet::Message(Payload::Text(Utf8Bytes::from_static("€")))),
                Ok(Packet::Message(Payload::Binary(Bytes::from_static(&[
                    1, 2, 3, 4
                ])))),
            ]
        );
        assert_eq!(split(""), [Err(DecodeError::Empty)]);
        assert_eq!(
            split("4a\x1e"),
            [
                Ok(Packet::Message(Payload::Text("a".into()))),
                Err(DecodeError::Empty)
            ]
        );
        assert_eq!(split("abc"), [Err(DecodeError::UnknownType(b'a'))]);
        assert_eq!(
            split("4a\x1ex\x1e4b").len(),
            2,
            "stops after the first error"
        );
    }

    #[test]
    fn payload_limits_apply() {
        let limits = Limits::default().max_payload(4).max_packets(2);
        let too_big: Vec<_> = split_payload(Utf8Bytes::from_static("4hello"), &limits).collect();
        assert_eq!(
            too_big,
            [Err(DecodeError::PayloadTooLarge { len: 6, max: 4 })]
        );
        let limits = limits.max_payload(100);
        let too_many: Vec<_> =
            split_payload(Utf8Bytes::from_static("2\x1e2\x1e2"), &limits).collect();
        assert_eq!(
            too_many,
            [
                Ok(Packet::Ping(None)),
                Ok(Packet::Ping(None)),
                Err(DecodeError::TooManyPackets { max: 2 })
            ]
        );
    }

    #[test]
    fn payload_builder_respects_the_limit() {
        let mut body = PayloadBuilder::new(8);
        assert!(body.try_push_outgoing(&Outgoing::message_text("abc")));
        assert!(
            !body.try_push_outgoing(&Outgoing::message_text("abcd")),
            "4 + 1 + 5 > 8"
        );
        assert!(body.try_push_packet(&Packet::Ping(None)));
        assert_eq!(&body.finish()[..], b"4abc\x1e2");

        let mut alone = PayloadBuilder::new(2);
        assert!(
            alone.try_push_outgoing(&Outgoing::message_text("too long")),
            "first item always fits"
        );
        assert!(!alone.try_push_packet(&Packet::Noop));
    }

    #[test]
    fn payload_builder_writes_attachments_as_base64_records() {
        let message = Outgoing::from_encoded(
            Utf8Bytes::from_static("451-[\"x\",{\"_placeholder\":true,\"num\":0}]"),
            vec![Bytes::from_static(&[1, 2, 3])],
        )
        .unwrap();
        let mut body = PayloadBuilder::new(1000);
        assert!(body.try_push_outgoing(&message));
        assert_eq!(message.polling_len(), body.len());
        assert_eq!(
            &body.finish()[..],
            b"451-[\"x\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"
        );
    }
}
