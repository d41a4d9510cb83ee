//! Socket.IO protocol v5: packets, binary attachments and their reassembly.
//!
//! A packet in text form is `<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`, for
//! example `2/chat,12["message","hi"]`. Binary packets (`5`, `6`) are followed by their
//! attachments, one binary Engine.IO message each, which the JSON refers to with placeholders
//! `{"_placeholder":true,"num":N}`.
//!
//! JSON stays raw: decoding checks that the data is well-formed JSON of the right shape for the
//! packet type, without building a value tree, and keeps it as text pointing into the frame.
//! [`Packet::event_name`] and [`Packet::args`] read it on demand.
//!
//! ```
//! use sockeye_codec::socketio::{Limits, Packet, PacketKind};
//! use sockeye_codec::Utf8Bytes;
//!
//! let packet = Packet::decode(Utf8Bytes::from_static(r#"2/chat,12["message","hi"]"#), &Limits::default()).unwrap();
//! assert_eq!(packet.kind, PacketKind::Event);
//! assert_eq!(packet.namespace, "/chat");
//! assert_eq!(packet.event_name().unwrap(), "message");
//! assert_eq!(packet.args().unwrap(), r#""hi""#);
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::de;
use serde::{Serialize, Serializer};

use crate::Utf8Bytes;
use crate::json::{self, ScanError, Top};
use crate::utf8::TextSink;

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "/";

/// Event names that the protocol reserves; a client may not send them and a server may not emit
/// them.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Socket.IO packet types, in protocol order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)] // complete by definition: protocol v5 has exactly these types
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum PacketKind {
    /// `0`: connect to a namespace (client), or the accepted connection (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event.
    Event,
    /// `3`: an acknowledgement.
    Ack,
    /// `4`: a refused connection.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl PacketKind {
    /// The type's digit on the wire.
    pub const fn as_char(self) -> u8 {
        match self {
            Self::Connect => b'0',
            Self::Disconnect => b'1',
            Self::Event => b'2',
            Self::Ack => b'3',
            Self::ConnectError => b'4',
            Self::BinaryEvent => b'5',
            Self::BinaryAck => b'6',
        }
    }

    /// The type for a digit on the wire.
    pub const fn from_char(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// Whether packets of this type carry binary attachments.
    pub const fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// The largest acknowledgement id accepted: `Number.MAX_SAFE_INTEGER` (2^53 - 1), the largest
/// integer a JavaScript peer holds exactly.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// An acknowledgement id: a non-negative integer chosen by the sender of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AckId(pub u64);

impl fmt::Display for AckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One Socket.IO packet, with its JSON data kept as raw text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Packet {
    /// The packet type.
    pub kind: PacketKind,
    /// The namespace, `/` by default.
    pub namespace: Utf8Bytes,
    /// The acknowledgement id, for events that want one and for acks.
    pub ack_id: Option<AckId>,
    /// The raw JSON data, if any.
    pub data: Option<Utf8Bytes>,
    /// How many binary attachments follow (binary types only).
    pub attachments: usize,
}

/// Why a Socket.IO packet could not be decoded, or binary frames not reassembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty packet.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// The attachment count of a binary packet is missing, not a number or not followed by `-`.
    #[error("invalid attachment count")]
    InvalidAttachments,
    /// More attachments than allowed.
    #[error("{count} attachments exceed the limit of {max}")]
    TooManyAttachments {
        /// The announced count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A namespace longer than allowed.
    #[error("namespace of {len} bytes exceeds the limit of {max}")]
    NamespaceTooLong {
        /// The namespace's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The ack id is larger than [`MAX_ACK_ID`] (2^53 - 1).
    #[error("ack id is not a valid integer")]
    InvalidAckId,
    /// The data is not well-formed JSON.
    #[error("invalid JSON data")]
    InvalidJson,
    /// The data nests arrays and objects deeper than allowed.
    #[error("JSON data nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The data has the wrong shape for the packet type (for example an event that is not an
    /// array starting with a name, or a reserved event name).
    #[error("invalid payload for packet type {0:?}")]
    InvalidPayload(PacketKind),
    /// A binary frame arrived when no binary packet was waiting for attachments.
    #[error("unexpected binary frame")]
    UnexpectedBinary,
    /// A text packet arrived while a binary packet still waited for attachments.
    #[error("text packet while {missing} attachments are still expected")]
    UnexpectedText {
        /// How many attachments were still missing.
        missing: usize,
    },
    /// The attachments of one packet add up to more bytes than allowed.
    #[error("attachments of {len} bytes exceed the limit of {max}")]
    AttachmentsTooLarge {
        /// The total so far.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A placeholder (`{"_placeholder":true,...}`) has no `num`, or one that is not an integer
    /// below the attachment count. [`Packet::decode`] checks this for binary packets.
    #[error("invalid attachment placeholder")]
    InvalidPlaceholder,
}

/// Why [`Packet::event_name`] or [`Packet::args`] found no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The packet has no data.
    #[error("packet has no data")]
    Missing,
    /// The data is not a JSON array.
    #[error("data is not an array")]
    NotAnArray,
    /// The first element is not a string or a number.
    #[error("event name is not a string")]
    InvalidEventName,
    /// The data is not well-formed JSON.
    #[error("invalid JSON data")]
    InvalidJson,
}

/// Limits applied while decoding, with the reference server's defaults where it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_attachments: usize,
    max_attachment_bytes: usize,
    max_namespace_len: usize,
    max_depth: usize,
}

impl Limits {
    /// The most attachments one packet may announce (default 10).
    #[must_use]
    pub const fn max_attachments(mut self, count: usize) -> Self {
        self.max_attachments = count;
        self
    }

    /// The most bytes the attachments of one packet may add up to (default 1,000,000, the
    /// Engine.IO `maxPayload`).
    #[must_use]
    pub const fn max_attachment_bytes(mut self, bytes: usize) -> Self {
        self.max_attachment_bytes = bytes;
        self
    }

    /// The longest namespace accepted, in bytes (default 256).
    #[must_use]
    pub const fn max_namespace_len(mut self, bytes: usize) -> Self {
        self.max_namespace_len = bytes;
        self
    }

    /// The deepest nesting of JSON arrays and objects accepted in the data (default 100: deeper
    /// than any real payload, and within the 127 levels `serde_json` reads into a value tree;
    /// the reference has no limit).
    #[must_use]
    pub const fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachments: 10,
            max_attachment_bytes: 1_000_000,
            max_namespace_len: 256,
            max_depth: 100,
        }
    }
}

impl Packet {
    /// A packet of `kind` in `namespace` with no ack id, data or attachments.
    pub fn new(kind: PacketKind, namespace: impl Into<Utf8Bytes>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            ack_id: None,
            data: None,
            attachments: 0,
        }
    }

    /// CONNECT with an optional auth object (raw JSON), as a client sends it.
    pub fn connect(namespace: impl Into<Utf8Bytes>, auth: Option<Utf8Bytes>) -> Self {
        Self {
            data: auth,
            ..Self::new(PacketKind::Connect, namespace)
        }
    }

    /// The server's CONNECT reply: `{"sid":"<socket id>"}`.
    pub fn connect_ok(namespace: impl Into<Utf8Bytes>, socket_id: &str) -> Self {
        let data = serde_json::json!({ "sid": socket_id }).to_string();
        Self {
            data: Some(data.into()),
            ..Self::new(PacketKind::Connect, namespace)
        }
    }

    /// DISCONNECT.
    pub fn disconnect(namespace: impl Into<Utf8Bytes>) -> Self {
        Self::new(PacketKind::Disconnect, namespace)
    }

    /// CONNECT_ERROR with raw JSON data (an object with `message` and optional `data`).
    pub fn connect_error(namespace: impl Into<Utf8Bytes>, data: Utf8Bytes) -> Self {
        Self {
            data: Some(data),
            ..Self::new(PacketKind::ConnectError, namespace)
        }
    }

    /// EVENT with raw JSON data: an array whose first element is the event name.
    pub fn event(namespace: impl Into<Utf8Bytes>, data: Utf8Bytes) -> Self {
        Self {
            data: Some(data),
            ..Self::new(PacketKind::Event, namespace)
        }
    }

    /// ACK for `ack_id` with raw JSON data: the array of acknowledgement arguments.
    pub fn ack(namespace: impl Into<Utf8Bytes>, ack_id: AckId, data: Utf8Bytes) -> Self {
        Self {
            ack_id: Some(ack_id),
            data: Some(data),
            ..Self::new(PacketKind::Ack, namespace)
        }
    }

    /// Sets the ack id.
    #[must_use]
    pub fn with_ack_id(mut self, ack_id: AckId) -> Self {
        self.ack_id = Some(ack_id);
        self
    }

    /// Turns an EVENT or ACK into its binary form with `count` attachments (or back, with 0).
    #[must_use]
    pub fn with_attachments(mut self, count: usize) -> Self {
        self.kind = match (self.kind, count > 0) {
            (PacketKind::Event | PacketKind::BinaryEvent, true) => PacketKind::BinaryEvent,
            (PacketKind::Event | PacketKind::BinaryEvent, false) => PacketKind::Event,
            (PacketKind::Ack | PacketKind::BinaryAck, true) => PacketKind::BinaryAck,
            (PacketKind::Ack | PacketKind::BinaryAck, false) => PacketKind::Ack,
            (kind, _) => kind,
        };
        self.attachments = if self.kind.is_binary() { count } else { 0 };
        self
    }

    /// Decodes a packet from its text form (the data of an Engine.IO text message). Fields point
    /// into `text`; nothing is copied.
    ///
    /// # Errors
    /// Any [`DecodeError`] that applies to a single packet; see the variants.
    #[allow(clippy::needless_pass_by_value)] // takes the frame: decoded fields are slices of it
    pub fn decode(text: Utf8Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        let bytes = text.as_bytes();
        let Some(&first) = bytes.first() else {
            return Err(DecodeError::Empty);
        };
        let kind = PacketKind::from_char(first).ok_or(DecodeError::UnknownType(first))?;
        let mut position = 1;

        let mut attachments = 0;
        if kind.is_binary() {
            let digits = count_digits(bytes.get(position..).unwrap_or_default());
            if digits == 0 || bytes.get(position + digits) != Some(&b'-') {
                return Err(DecodeError::InvalidAttachments);
            }
            // The reference parser (socket.io-parser 4.2.x) refuses a count of 0: a binary packet
            // without attachments would wait forever for them.
            let count = parse_u64(bytes.get(position..position + digits).unwrap_or_default())
                .and_then(|count| usize::try_from(count).ok())
                .filter(|&count| count > 0)
                .ok_or(DecodeError::InvalidAttachments)?;
            if count > limits.max_attachments {
                return Err(DecodeError::TooManyAttachments {
                    count,
                    max: limits.max_attachments,
                });
            }
            attachments = count;
            position += digits + 1;
        }

        let namespace = if bytes.get(position) == Some(&b'/') {
            let rest = bytes.get(position..).unwrap_or_default();
            let len = memchr::memchr(b',', rest).unwrap_or(rest.len());
            if len > limits.max_namespace_len {
                return Err(DecodeError::NamespaceTooLong {
                    len,
                    max: limits.max_namespace_len,
                });
            }
            let namespace = sub(&text, position, position + len);
            position += len;
            if bytes.get(position) == Some(&b',') {
                position += 1;
            }
            namespace
        } else {
            Utf8Bytes::from_static(DEFAULT_NAMESPACE)
        };

        let digits = count_digits(bytes.get(position..).unwrap_or_default());
        let ack_id = if digits > 0 {
            // Ids past 2^53 - 1 are refused: the reference reads the id with `Number()`, so a
            // JavaScript peer cannot hold such an id exactly and its ack would answer another.
            let id = parse_u64(bytes.get(position..position + digits).unwrap_or_default())
                .filter(|&id| id <= MAX_ACK_ID)
                .ok_or(DecodeError::InvalidAckId)?;
            position += digits;
            Some(AckId(id))
        } else {
            None
        };

        let data = (position < bytes.len()).then(|| sub(&text, position, bytes.len()));
        match &data {
            Some(data) => check_data(kind, data.as_str(), attachments, limits.max_depth)?,
            None if matches!(
                kind,
                PacketKind::Event
                    | PacketKind::BinaryEvent
                    | PacketKind::Ack
                    | PacketKind::BinaryAck
            ) =>
            {
                return Err(DecodeError::InvalidPayload(kind));
            }
            None => {}
        }

        Ok(Self {
            kind,
            namespace,
            ack_id,
            data,
            attachments,
        })
    }

    /// The length of [`Packet::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let mut len = 1;
        if self.kind.is_binary() {
            len += decimal_len(self.attachments as u64) + 1;
        }
        if self.namespace.as_str() != DEFAULT_NAMESPACE && !self.namespace.is_empty() {
            len += self.namespace.len() + 1;
        }
        if let Some(AckId(id)) = self.ack_id {
            len += decimal_len(id);
        }
        len + self.data.as_ref().map_or(0, Utf8Bytes::len)
    }

    /// Appends the packet's text form to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
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

    /// Writes the text form without reserving: callers size `dst` with [`Packet::encoded_len`].
    pub(crate) fn encode_to<S: TextSink>(&self, dst: &mut S) {
        dst.put_ascii(self.kind.as_char());
        if self.kind.is_binary() {
            dst.put_text(itoa::Buffer::new().format(self.attachments));
            dst.put_ascii(b'-');
        }
        if self.namespace.as_str() != DEFAULT_NAMESPACE && !self.namespace.is_empty() {
            dst.put_text(&self.namespace);
            dst.put_ascii(b',');
        }
        if let Some(AckId(id)) = self.ack_id {
            dst.put_text(itoa::Buffer::new().format(id));
        }
        if let Some(data) = &self.data {
            dst.put_text(data);
        }
    }

    /// The event name: the first element of an event's data array. A numeric name (which the
    /// reference accepts) is returned as its JSON text. Only the first element is read; the rest
    /// of the array was checked by [`Packet::decode`].
    ///
    /// # Errors
    /// [`PayloadError`] when there is no data, it is not an array, or the first element is not a
    /// string or number.
    pub fn event_name(&self) -> Result<Cow<'_, str>, PayloadError> {
        let data = self.data.as_ref().ok_or(PayloadError::Missing)?;
        let (first, _) = leading_element(data.as_str())?.ok_or(PayloadError::InvalidEventName)?;
        name_of(first).ok_or(PayloadError::InvalidEventName)
    }

    /// The arguments as raw JSON, without the surrounding brackets: for an event, the elements
    /// after the name; for an ack, all elements. `["message",1,"2"]` gives `1,"2"`, and an event
    /// with no arguments gives the empty string. The result points into the packet's data.
    ///
    /// Only the event name is parsed; the rest is cut at the closing bracket, so on data that
    /// [`Packet::decode`] did not check the result may not be valid JSON.
    ///
    /// # Errors
    /// [`PayloadError`] when there is no data or it is not an array.
    pub fn args(&self) -> Result<Utf8Bytes, PayloadError> {
        let data = self.data.as_ref().ok_or(PayloadError::Missing)?;
        let text = data.as_str();
        let inner = text
            .trim_matches(JSON_WHITESPACE)
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .ok_or(PayloadError::NotAnArray)?;
        let args = if matches!(self.kind, PacketKind::Event | PacketKind::BinaryEvent) {
            let (_, after) = leading_element(text)?.ok_or(PayloadError::InvalidEventName)?;
            match after.strip_prefix(',') {
                Some(rest) => rest
                    .trim_end_matches(JSON_WHITESPACE)
                    .strip_suffix(']')
                    .unwrap_or_default()
                    .trim_matches(JSON_WHITESPACE),
                None => "",
            }
        } else {
            inner.trim_matches(JSON_WHITESPACE)
        };
        Ok(data.slice_ref(args).unwrap_or_default())
    }
}

/// Packet data rewritten so that `serde_json` reads the numbers `JSON.parse` reads: a number
/// beyond `f64` (`1e400`, a 400-digit integer), which `JSON.parse` reads as `Infinity` and
/// `serde_json` refuses, becomes `null` (what `JSON.stringify(Infinity)` gives). Everything
/// else is untouched; borrows when nothing changes. For data [`Packet::decode`] accepted.
///
/// ```
/// use sockeye_codec::socketio::finite_numbers;
///
/// assert_eq!(finite_numbers(r#"["a",1e400,"1e400",2]"#), r#"["a",null,"1e400",2]"#);
/// ```
pub fn finite_numbers(data: &str) -> Cow<'_, str> {
    json::js_values(
        data,
        json::Rewrite {
            infinite_numbers: true,
            lone_surrogates: false,
        },
    )
}

/// As [`finite_numbers`], and escapes of unpaired UTF-16 surrogates (`"\ud800"`, valid JSON
/// that `JSON.parse` reads and `serde_json` refuses) become U+FFFD: for reading a field of an
/// object whose other fields may hold anything (a CONNECT's auth object, for its `token`).
///
/// ```
/// use sockeye_codec::socketio::lossy_json;
///
/// assert_eq!(lossy_json(r#"{"x":"\ud800","n":-1e999}"#), r#"{"x":"\ufffd","n":null}"#);
/// ```
pub fn lossy_json(data: &str) -> Cow<'_, str> {
    json::js_values(
        data,
        json::Rewrite {
            infinite_numbers: true,
            lone_surrogates: true,
        },
    )
}

/// A placeholder for binary attachment `num`: serializes as `{"_placeholder":true,"num":N}`,
/// with the keys in the reference's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholder(pub usize);

impl Serialize for Placeholder {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut object = serializer.serialize_struct("Placeholder", 2)?;
        object.serialize_field("_placeholder", &true)?;
        object.serialize_field("num", &self.0)?;
        object.end()
    }
}

/// What [`Assembler`] made of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Assembled {
    /// A complete packet, with its attachments in order (empty for non-binary packets).
    Packet {
        /// The packet.
        packet: Packet,
        /// Its attachments.
        attachments: Vec<Bytes>,
    },
    /// A binary packet is waiting for more attachments.
    Pending,
}

/// Reassembles binary packets from the Engine.IO messages of one connection: the packet's text
/// first, then one binary message per attachment.
///
/// The caller owns one `Assembler` per connection and feeds it every message in order. After an
/// error the connection should be closed; the assembler itself is reset.
///
/// ```
/// use sockeye_codec::socketio::{Assembled, Assembler, Limits};
/// use sockeye_codec::Utf8Bytes;
///
/// let mut assembler = Assembler::new(Limits::default());
/// let text = Utf8Bytes::from_static(r#"51-["upload",{"_placeholder":true,"num":0}]"#);
/// assert_eq!(assembler.push_text(text).unwrap(), Assembled::Pending);
/// let Assembled::Packet { packet, attachments } = assembler.push_binary(bytes::Bytes::from_static(b"\x01")).unwrap() else {
///     panic!("the attachment completes the packet");
/// };
/// assert_eq!(packet.event_name().unwrap(), "upload");
/// assert_eq!(attachments.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Assembler {
    limits: Limits,
    pending: Option<PendingPacket>,
}

#[derive(Debug, Clone)]
struct PendingPacket {
    packet: Packet,
    attachments: Vec<Bytes>,
    bytes: usize,
}

impl Assembler {
    /// An assembler applying `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: None,
        }
    }

    /// Whether a binary packet is waiting for attachments.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Feeds a text message (a Socket.IO packet in text form).
    ///
    /// # Errors
    /// The packet's [`DecodeError`] (including [`DecodeError::InvalidPlaceholder`], checked here
    /// before any attachment is buffered), or [`DecodeError::UnexpectedText`] while attachments
    /// are missing.
    pub fn push_text(&mut self, text: Utf8Bytes) -> Result<Assembled, DecodeError> {
        if let Some(pending) = self.pending.take() {
            return Err(DecodeError::UnexpectedText {
                missing: pending
                    .packet
                    .attachments
                    .saturating_sub(pending.attachments.len()),
            });
        }
        let packet = Packet::decode(text, &self.limits)?;
        if packet.kind.is_binary() && packet.attachments > 0 {
            self.pending = Some(PendingPacket {
                attachments: Vec::with_capacity(packet.attachments),
                packet,
                bytes: 0,
            });
            return Ok(Assembled::Pending);
        }
        Ok(Assembled::Packet {
            packet,
            attachments: Vec::new(),
        })
    }

    /// Feeds a binary message (one attachment).
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedBinary`] or [`DecodeError::AttachmentsTooLarge`].
    pub fn push_binary(&mut self, data: Bytes) -> Result<Assembled, DecodeError> {
        // Works on the pending packet in place; it only moves out when complete or on an error.
        let pending = self.pending.as_mut().ok_or(DecodeError::UnexpectedBinary)?;
        pending.bytes = pending.bytes.saturating_add(data.len());
        if pending.bytes > self.limits.max_attachment_bytes {
            let len = pending.bytes;
            self.pending = None;
            return Err(DecodeError::AttachmentsTooLarge {
                len,
                max: self.limits.max_attachment_bytes,
            });
        }
        pending.attachments.push(data);
        if pending.attachments.len() < pending.packet.attachments {
            return Ok(Assembled::Pending);
        }
        let pending = self.pending.take().ok_or(DecodeError::UnexpectedBinary)?;
        Ok(Assembled::Packet {
            packet: pending.packet,
            attachments: pending.attachments,
        })
    }
}

/// JSON's four whitespace characters (not Unicode whitespace, which JSON does not allow).
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Reads only the first element of a JSON array: its raw text and what follows it (starting at
/// the `,` or `]`), or `None` for an empty array. The rest of the array is not parsed.
fn leading_element(data: &str) -> Result<Option<(&str, &str)>, PayloadError> {
    let scan = json::scan_first(data).map_err(|_| PayloadError::InvalidJson)?;
    if scan.top != Top::Array {
        return Err(not_an_array(data));
    }
    let Some(first) = scan.first else {
        return Ok(None);
    };
    // `first` is a sub-slice of `data`: find what follows it.
    let end = (first.as_ptr() as usize)
        .checked_sub(data.as_ptr() as usize)
        .and_then(|start| start.checked_add(first.len()))
        .ok_or(PayloadError::InvalidJson)?;
    let after = data
        .get(end..)
        .ok_or(PayloadError::InvalidJson)?
        .trim_start_matches(JSON_WHITESPACE);
    Ok(Some((first, after)))
}

/// The error for data that is not an array: is it JSON at all?
fn not_an_array(data: &str) -> PayloadError {
    if json::scan(data, usize::MAX, None).is_ok() {
        PayloadError::NotAnArray
    } else {
        PayloadError::InvalidJson
    }
}

/// Checks `data` in one pass ([`json::scan`]): well-formed JSON, nested no deeper than
/// `max_depth`, of the shape `kind` requires (as the reference's `isPayloadValid`), and for
/// binary packets with placeholders below the attachment count.
fn check_data(
    kind: PacketKind,
    data: &str,
    attachments: usize,
    max_depth: usize,
) -> Result<(), DecodeError> {
    let invalid = DecodeError::InvalidPayload(kind);
    if kind == PacketKind::Disconnect {
        return Err(invalid);
    }
    let attachments = kind
        .is_binary()
        .then(|| u64::try_from(attachments).unwrap_or(u64::MAX));
    let scan = json::scan(data, max_depth, attachments).map_err(|error| match error {
        ScanError::Invalid => DecodeError::InvalidJson,
        ScanError::TooDeep => DecodeError::TooDeep { max: max_depth },
    })?;
    let shape_ok = match kind {
        PacketKind::Connect => scan.top == Top::Object,
        PacketKind::ConnectError => matches!(scan.top, Top::Object | Top::String),
        PacketKind::Ack | PacketKind::BinaryAck => scan.top == Top::Array,
        PacketKind::Event | PacketKind::BinaryEvent => scan
            .first
            .and_then(name_of)
            .is_some_and(|name| !RESERVED_EVENTS.contains(&name.as_ref())),
        PacketKind::Disconnect => false,
    };
    if !shape_ok {
        return Err(invalid);
    }
    if !scan.placeholders_ok {
        return Err(DecodeError::InvalidPlaceholder);
    }
    Ok(())
}

/// The event name in an event's first element: a string (unescaped) or a number (its text).
fn name_of(first: &str) -> Option<Cow<'_, str>> {
    match first.as_bytes().first()? {
        b'"' if !first.contains('\\') => first
            .get(1..first.len().saturating_sub(1))
            .map(Cow::Borrowed),
        b'"' => serde_json::from_str::<Cow<'_, str>>(first).ok(),
        b'-' | b'0'..=b'9' => Some(Cow::Borrowed(first)),
        _ => None,
    }
}

fn sub(text: &Utf8Bytes, start: usize, end: usize) -> Utf8Bytes {
    // Callers cut next to ASCII bytes (type digits, `-`, `,`, digits), which are char boundaries.
    text.as_str()
        .get(start..end)
        .and_then(|part| text.slice_ref(part))
        .unwrap_or_default()
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Parses ASCII digits into a `u64`, `None` on overflow or when empty.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        value
            .checked_mul(10)?
            .checked_add(u64::from(digit.checked_sub(b'0')?))
    })
}

const fn decimal_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 10 {
        value /= 10;
        len += 1;
    }
    len
}

/// Arbitrary packets for fuzzing: mostly well-formed (JSON data of the shape the type requires,
/// placeholders below the attachment count), sometimes not (raw text data, a reserved event
/// name, no attachments on a binary type), so both the round trip and the rejections get
/// exercised.
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Packet {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let kind = PacketKind::arbitrary(u)?;
        let namespace = if bool::arbitrary(u)? {
            let name: String = String::arbitrary(u)?
                .chars()
                .filter(|&c| c != ',')
                .collect();
            Utf8Bytes::from(format!("/{name}"))
        } else {
            Utf8Bytes::from_static(DEFAULT_NAMESPACE)
        };
        let ack_id = Option::<AckId>::arbitrary(u)?;
        let attachments = if kind.is_binary() {
            u.int_in_range(0..=10)?
        } else {
            0
        };
        let data = match u.int_in_range(0..=7u8)? {
            0 => None,
            1 => Option::<Utf8Bytes>::arbitrary(u)?,
            _ => arbitrary_data(u, kind, attachments)?.map(Utf8Bytes::from),
        };
        Ok(Self {
            kind,
            namespace,
            ack_id,
            data,
            attachments,
        })
    }
}

/// JSON data of the shape `kind` requires.
#[cfg(feature = "arbitrary")]
fn arbitrary_data(
    u: &mut arbitrary::Unstructured<'_>,
    kind: PacketKind,
    attachments: usize,
) -> arbitrary::Result<Option<String>> {
    use arbitrary::Arbitrary as _;
    let mut out = String::new();
    match kind {
        PacketKind::Disconnect => return Ok(None),
        PacketKind::Connect => arbitrary_object(u, 2, attachments, &mut out)?,
        PacketKind::ConnectError => {
            if bool::arbitrary(u)? {
                arbitrary_json(u, 0, attachments, &mut out)?;
            } else {
                arbitrary_object(u, 2, attachments, &mut out)?;
            }
        }
        PacketKind::Event | PacketKind::BinaryEvent => {
            out.push('[');
            if u.ratio(1, 8)? {
                out.push_str(itoa::Buffer::new().format(u32::arbitrary(u)?));
            } else if u.ratio(1, 16)? {
                out.push_str("\"disconnect\"");
            } else {
                push_json_string(&String::arbitrary(u)?, &mut out);
            }
            for _ in 0..u.int_in_range(0..=4u8)? {
                out.push(',');
                arbitrary_json(u, 3, attachments, &mut out)?;
            }
            out.push(']');
        }
        PacketKind::Ack | PacketKind::BinaryAck => {
            out.push('[');
            for index in 0..u.int_in_range(0..=4u8)? {
                if index > 0 {
                    out.push(',');
                }
                arbitrary_json(u, 3, attachments, &mut out)?;
            }
            out.push(']');
        }
    }
    Ok(Some(out))
}

#[cfg(feature = "arbitrary")]
fn arbitrary_json(
    u: &mut arbitrary::Unstructured<'_>,
    depth: u8,
    attachments: usize,
    out: &mut String,
) -> arbitrary::Result<()> {
    use arbitrary::Arbitrary as _;
    let choices = if depth == 0 { 4 } else { 7 };
    match u.choose_index(choices)? {
        0 => out.push_str(if bool::arbitrary(u)? { "true" } else { "null" }),
        1 => out.push_str(itoa::Buffer::new().format(i64::arbitrary(u)?)),
        2 => push_json_string(&String::arbitrary(u)?, out),
        3 => {
            let value = f64::arbitrary(u)?;
            match serde_json::Number::from_f64(value) {
                Some(number) => out.push_str(&number.to_string()),
                None => out.push_str("0.5"),
            }
        }
        4 => {
            out.push('[');
            for index in 0..u.int_in_range(0..=3u8)? {
                if index > 0 {
                    out.push(',');
                }
                arbitrary_json(u, depth - 1, attachments, out)?;
            }
            out.push(']');
        }
        5 if attachments > 0 => {
            let num = u.int_in_range(0..=attachments - 1)?;
            out.push_str(r#"{"_placeholder":true,"num":"#);
            out.push_str(itoa::Buffer::new().format(num));
            out.push('}');
        }
        _ => arbitrary_object(u, depth - 1, attachments, out)?,
    }
    Ok(())
}

#[cfg(feature = "arbitrary")]
fn arbitrary_object(
    u: &mut arbitrary::Unstructured<'_>,
    depth: u8,
    attachments: usize,
    out: &mut String,
) -> arbitrary::Result<()> {
    use arbitrary::Arbitrary as _;
    out.push('{');
    for index in 0..u.int_in_range(0..=3u8)? {
        if index > 0 {
            out.push(',');
        }
        push_json_string(&String::arbitrary(u)?, out);
        out.push(':');
        arbitrary_json(u, depth, attachments, out)?;
    }
    out.push('}');
    Ok(())
}

#[cfg(feature = "arbitrary")]
fn push_json_string(text: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\"")));
}

/// Validation helpers reused by the property tests and fuzzers.
impl Packet {
    /// Whether decoding this packet's encoding should give it back unchanged: the namespace
    /// starts with `/` and has no `,`; binary kinds have at least one attachment and the others
    /// none; the data (if any) does not start with a digit and is JSON of the shape the packet
    /// type requires, with valid placeholders. Every packet [`Packet::decode`] returns is
    /// canonical. The [`Limits`] are not applied here: a canonical packet with a long namespace
    /// or deep data can still be refused by a decoder with tight limits.
    pub fn is_canonical(&self) -> bool {
        let namespace_ok = self.namespace.as_str() == DEFAULT_NAMESPACE
            || (self.namespace.starts_with('/') && !self.namespace.contains(','));
        // Binary packets carry at least one attachment (the reference refuses `0-`).
        let attachments_ok = if self.kind.is_binary() {
            self.attachments > 0
        } else {
            self.attachments == 0
        };
        let data_ok = match &self.data {
            Some(data) => {
                !data.as_bytes().first().is_some_and(u8::is_ascii_digit)
                    && check_data(self.kind, data.as_str(), self.attachments, usize::MAX).is_ok()
                    && (self.ack_id.is_none() || !data.is_empty())
            }
            None => !matches!(
                self.kind,
                PacketKind::Event
                    | PacketKind::BinaryEvent
                    | PacketKind::Ack
                    | PacketKind::BinaryAck
            ),
        };
        let ack_id_ok = self.ack_id.is_none_or(|AckId(id)| id <= MAX_ACK_ID);
        namespace_ok && attachments_ok && data_ok && ack_id_ok && !self.namespace.is_empty()
    }
}

impl de::Expected for PacketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a packet of type {self:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &'static str) -> Result<Packet, DecodeError> {
        Packet::decode(Utf8Bytes::from_static(text), &Limits::default())
    }

    #[test]
    fn decodes_namespaces_with_and_without_comma() {
        assert_eq!(decode("0/custom,").unwrap().namespace, "/custom");
        assert_eq!(decode("0/custom").unwrap().namespace, "/custom");
        assert_eq!(decode("1/custom").unwrap().kind, PacketKind::Disconnect);
        assert_eq!(decode("1/custom,").unwrap().namespace, "/custom");
        let with_auth = decode(r#"0/admin,{"token":"x"}"#).unwrap();
        assert_eq!(with_auth.data.unwrap(), r#"{"token":"x"}"#);
        assert_eq!(decode("0").unwrap().namespace, "/");
        assert_eq!(decode("0").unwrap().data, None);
    }

    #[test]
    fn rejects_what_the_reference_rejects() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("abc"), Err(DecodeError::UnknownType(b'a')));
        assert_eq!(
            decode("2{}"),
            Err(DecodeError::InvalidPayload(PacketKind::Event))
        );
        assert_eq!(decode("2abc[\"a\"]"), Err(DecodeError::InvalidJson));
        assert_eq!(
            decode("2[\"connect\"]"),
            Err(DecodeError::InvalidPayload(PacketKind::Event))
        );
        assert_eq!(
            decode("2"),
            Err(DecodeError::InvalidPayload(PacketKind::Event))
        );
        assert_eq!(
            decode("1{}"),
            Err(DecodeError::InvalidPayload(PacketKind::Disconnect))
        );
        assert_eq!(
            decode("0[]"),
            Err(DecodeError::InvalidPayload(PacketKind::Connect))
        );
        assert_eq!(decode("5-[\"a\"]"), Err(DecodeError::InvalidAttachments));
        assert_eq!(decode("51[\"a\"]"), Err(DecodeError::InvalidAttachments));
        assert_eq!(
            decode("511-[\"a\"]"),
            Err(DecodeError::TooManyAttachments { count: 11, max: 10 })
        );
        assert_eq!(
            decode("2123456789012345678901[\"a\"]"),
            Err(DecodeError::InvalidAckId)
        );
        // Ack ids: up to 2^53 - 1 (what a JavaScript peer holds exactly), leading zeros read
        // as the reference's `Number()` reads them.
        assert_eq!(
            decode("29007199254740991[\"a\"]").unwrap().ack_id,
            Some(AckId(MAX_ACK_ID))
        );
        assert_eq!(
            decode("29007199254740992[\"a\"]"),
            Err(DecodeError::InvalidAckId)
        );
        assert_eq!(decode("2007[\"a\"]").unwrap().ack_id, Some(AckId(7)));
        assert_eq!(decode("2-1[\"a\"]"), Err(DecodeError::InvalidJson));
        assert_eq!(decode("2 1[\"a\"]"), Err(DecodeError::InvalidJson));
        assert_eq!(decode("21e3[\"a\"]"), Err(DecodeError::InvalidJson));
        // Attachment counts: digits then `-`, at least 1, at most the limit.
        assert_eq!(decode("501-[\"a\"]").unwrap().attachments, 1);
        assert_eq!(decode("5-1-[\"a\"]"), Err(DecodeError::InvalidAttachments));
        assert_eq!(decode("50-[\"a\"]"), Err(DecodeError::InvalidAttachments));
        assert_eq!(decode("5+1-[\"a\"]"), Err(DecodeError::InvalidAttachments));
        assert_eq!(
            decode("599999999999999999999999-[\"a\"]"),
            Err(DecodeError::InvalidAttachments)
        );
        assert_eq!(decode("7[]"), Err(DecodeError::UnknownType(b'7')));
        assert_eq!(decode("\u{0}"), Err(DecodeError::UnknownType(0)));
        assert_eq!(decode("2[\"a\""), Err(DecodeError::InvalidJson));
        assert_eq!(decode("2[\"a\"]x"), Err(DecodeError::InvalidJson));
        let deep = format!("2[\"a\",{}{}]", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            Packet::decode(Utf8Bytes::from(deep), &Limits::default()),
            Err(DecodeError::TooDeep { max: 100 })
        );
        let in_string = format!("2[\"a\",\"{}\"]", "[".repeat(200));
        assert!(Packet::decode(Utf8Bytes::from(in_string), &Limits::default()).is_ok());
    }

    #[test]
    fn event_name_and_args() {
        let packet = decode(r#"2["message",1,"2",{"3":[true]}]"#).unwrap();
        assert_eq!(packet.event_name().unwrap(), "message");
        assert_eq!(packet.args().unwrap(), r#"1,"2",{"3":[true]}"#);
        let spaced = decode(r#"2[ "a\"b" , 1 ]"#).unwrap();
        assert_eq!(spaced.event_name().unwrap(), "a\"b");
        assert_eq!(spaced.args().unwrap(), "1");
        assert_eq!(decode(r#"2["only"]"#).unwrap().args().unwrap(), "");
        assert_eq!(decode(r#"2[42,"x"]"#).unwrap().event_name().unwrap(), "42");
        assert_eq!(
            decode(r#"3456[1,"2"]"#).unwrap().args().unwrap(),
            r#"1,"2""#
        );
        assert_eq!(decode(r#"3456[1,"2"]"#).unwrap().ack_id, Some(AckId(456)));
    }

    #[test]
    fn encodes_like_the_reference() {
        let packet = Packet::event("/", Utf8Bytes::from_static(r#"["message-back",1]"#));
        assert_eq!(packet.to_text(), r#"2["message-back",1]"#);
        let binary = Packet::ack(
            "/admin",
            AckId(789),
            Utf8Bytes::from_static(r#"[{"_placeholder":true,"num":0}]"#),
        )
        .with_attachments(1);
        assert_eq!(
            binary.to_text(),
            r#"61-/admin,789[{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(binary.encoded_len(), binary.to_text().len());
        assert_eq!(
            Packet::connect_ok("/custom", "abc").to_text(),
            r#"0/custom,{"sid":"abc"}"#
        );
        assert_eq!(
            serde_json::to_string(&Placeholder(1)).unwrap(),
            r#"{"_placeholder":true,"num":1}"#
        );
    }

    #[test]
    fn assembler_checks_order_limits_and_placeholders() {
        let limits = Limits::default().max_attachment_bytes(3);
        let mut assembler = Assembler::new(limits);
        assert_eq!(
            assembler.push_binary(Bytes::from_static(b"x")),
            Err(DecodeError::UnexpectedBinary)
        );
        let header = Utf8Bytes::from_static(
            r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        );
        assert_eq!(assembler.push_text(header.clone()), Ok(Assembled::Pending));
        assert_eq!(
            assembler.push_text(Utf8Bytes::from_static("2[\"b\"]")),
            Err(DecodeError::UnexpectedText { missing: 2 })
        );
        assert_eq!(assembler.push_text(header), Ok(Assembled::Pending));
        assert_eq!(
            assembler.push_binary(Bytes::from_static(b"ab")),
            Ok(Assembled::Pending)
        );
        assert_eq!(
            assembler.push_binary(Bytes::from_static(b"cd")),
            Err(DecodeError::AttachmentsTooLarge { len: 4, max: 3 })
        );
        // A placeholder past the attachment count is refused with the header, before any
        // attachment is buffered.
        let mut assembler = Assembler::new(Limits::default());
        let bad = Utf8Bytes::from_static(r#"51-["a",{"_placeholder":true,"num":1}]"#);
        assert_eq!(
            assembler.push_text(bad),
            Err(DecodeError::InvalidPlaceholder)
        );
        assert!(!assembler.is_pending());
    }
}
