//! The bodies of sockeye's fuzz targets, as plain functions of the input bytes.
//!
//! `fuzz_targets/*.rs` wrap them for cargo-fuzz; `tests/replay.rs` calls them on every committed
//! corpus and regression file, so `cargo test` exercises them on stable without libFuzzer
//! running. Arbitrary bytes reach the codec's UTF-8 APIs only through [`std::str::from_utf8`].
//!
//! Each target checks properties, not just "no panic": decoding is total, what decodes
//! re-encodes to text of `encoded_len()` bytes that decodes to the same packet, the JSON
//! scanner agrees with `serde_json` on what is well-formed, the attachment assembler's state
//! stays consistent across any sequence of frames, the sans-IO engine session keeps its
//! documented properties across any sequence of inputs ([`engine_session`]), and token
//! extraction and verification answer with contract reasons that never echo the token
//! ([`auth_token`]).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use serde::de::IgnoredAny;
use sockeye_codec::engineio::{self, Payload, PayloadBuilder};
use sockeye_codec::socketio::{self, Assembled, Assembler, DecodeError, PacketKind};
use sockeye_codec::{Frame, Outgoing, Utf8Bytes};

mod auth_token;
mod engine_session;

pub use auth_token::{AUTH_AUDIENCE, AUTH_ISSUER, AUTH_SECRET, auth_token};
pub use engine_session::engine_session;

/// A target body: takes the raw fuzz input.
pub type Target = fn(&[u8]);

/// The targets by name, for the replay test.
pub const TARGETS: [(&str, Target); 7] = [
    ("engineio_packet", engineio_packet),
    ("engineio_payload", engineio_payload),
    ("socketio_packet", socketio_packet),
    ("socketio_assembler", socketio_assembler),
    ("roundtrip", roundtrip),
    ("engine_session", engine_session),
    ("auth_token", auth_token),
];

/// One Engine.IO frame: as a WebSocket text frame (when UTF-8) and as a binary frame.
pub fn engineio_packet(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(packet) = engineio::Packet::decode_text(Utf8Bytes::from(text))
    {
        let encoded = check_engineio_encoding(&packet);
        // The encoding is a normal form: decoding it gives the packet back.
        assert_eq!(engineio::Packet::decode_text(encoded), Ok(packet));
    }
    let binary = engineio::Packet::decode_binary(Bytes::copy_from_slice(data));
    let encoded = check_engineio_encoding(&binary);
    assert_eq!(engineio::Packet::decode_text(encoded), Ok(binary));
}

/// A long-polling request body: split, then rebuilt and split again.
pub fn engineio_payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = engineio::Limits::default().max_packets(1_000);
    let mut segments = engineio::split_payload(Utf8Bytes::from(text), &limits);
    let mut packets = Vec::new();
    let mut failed = false;
    for result in segments.by_ref() {
        assert!(!failed, "the iterator ends after an error");
        match result {
            Ok(packet) => packets.push(packet),
            Err(_) => failed = true,
        }
    }
    assert!(segments.next().is_none(), "fused");
    assert!(packets.len() <= 1_000);
    if failed || packets.is_empty() {
        return;
    }

    let mut builder = PayloadBuilder::new(usize::MAX);
    for packet in &packets {
        assert!(builder.try_push_packet(packet));
    }
    let body = Utf8Bytes::try_from_bytes(builder.finish()).unwrap();
    let unlimited = engineio::Limits::default()
        .max_payload(usize::MAX)
        .max_packets(usize::MAX);
    let again: Result<Vec<_>, _> = engineio::split_payload(body, &unlimited).collect();
    assert_eq!(again.unwrap(), packets);

    // A bounded body stays within its limit (except a lone first packet) and keeps the order.
    let limit = data.len() / 2 + 1;
    let mut bounded = PayloadBuilder::new(limit);
    let taken = packets
        .iter()
        .take_while(|packet| bounded.try_push_packet(packet))
        .count();
    assert!(taken >= 1, "the first packet is always taken");
    assert!(bounded.len() <= limit || taken == 1);
    let body = Utf8Bytes::try_from_bytes(bounded.finish()).unwrap();
    let prefix: Result<Vec<_>, _> = engineio::split_payload(body, &unlimited).collect();
    assert_eq!(prefix.unwrap(), packets.get(..taken).unwrap());
}

/// One Socket.IO packet in text form.
pub fn socketio_packet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = socketio::Limits::default();
    // Differential check of the JSON scanner: as ACK data, `[text]` is accepted exactly when
    // serde_json accepts it (unless it nests too deep, which serde_json does not check).
    let wrapped = format!("3[{text}]");
    match socketio::Packet::decode(Utf8Bytes::from(wrapped.as_str()), &limits) {
        Err(DecodeError::TooDeep { .. }) => {}
        ours => {
            let json = wrapped.get(1..).unwrap();
            let theirs = serde_json::from_str::<IgnoredAny>(json);
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "{json:?}: {ours:?} vs {theirs:?}"
            );
        }
    }

    let Ok(packet) = socketio::Packet::decode(Utf8Bytes::from(text), &limits) else {
        return;
    };
    check_decoded(&packet, &limits);
}

/// A sequence of text and binary frames fed to one [`Assembler`].
pub fn socketio_assembler(data: &[u8]) {
    let Ok(Ops(ops)) = Ops::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let limits = socketio::Limits::default()
        .max_attachments(4)
        .max_attachment_bytes(4096);
    let mut assembler = Assembler::new(limits);
    for op in ops {
        let result = match op {
            Op::Text(text) => assembler.push_text(Utf8Bytes::from(text)),
            Op::Binary(data) => assembler.push_binary(Bytes::from(data)),
        };
        match result {
            Ok(Assembled::Pending) => assert!(assembler.is_pending()),
            Ok(Assembled::Packet {
                packet,
                attachments,
            }) => {
                assert!(!assembler.is_pending());
                if packet.kind.is_binary() {
                    assert_eq!(attachments.len(), packet.attachments);
                    assert!(attachments.iter().map(Bytes::len).sum::<usize>() <= 4096);
                } else {
                    assert!(attachments.is_empty());
                }
                check_decoded(&packet, &limits);
                reassemble(&packet, attachments, limits);
            }
            Ok(other) => panic!("unknown outcome {other:?}"),
            Err(_) => assert!(!assembler.is_pending(), "an error resets the assembler"),
        }
    }
}

/// An arbitrary structured packet (or polling payload): encode, decode, compare.
pub fn roundtrip(data: &[u8]) {
    let Ok(input) = Roundtrip::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Roundtrip::Engine(packet) => {
            let text = check_engineio_encoding(&packet);
            let decoded = engineio::Packet::decode_text(text).unwrap();
            if engineio_canonical(&packet) {
                assert_eq!(decoded, packet);
            }
        }
        Roundtrip::Socket(packet, blobs) => {
            let limits = socketio::Limits::default();
            let text = packet.to_text();
            assert_eq!(text.len(), packet.encoded_len());
            let mut buffer = BytesMut::new();
            packet.encode(&mut buffer);
            assert_eq!(&buffer[..], text.as_bytes());
            let decoded = socketio::Packet::decode(text, &limits);
            // The arbitrary data nests at most 4 levels, well within the default limit.
            let within_limits = packet.namespace.len() <= 256 && packet.attachments <= 10;
            if packet.is_canonical() && within_limits {
                assert_eq!(decoded.as_ref(), Ok(&packet));
                let attachments = (0..packet.attachments)
                    .map(|index| Bytes::from(blobs.get(index).cloned().unwrap_or_default()))
                    .collect();
                reassemble(&packet, attachments, limits);
            } else if let Ok(decoded) = decoded {
                check_decoded(&decoded, &limits);
            }
        }
        Roundtrip::Payload(packets) => {
            if packets.is_empty() {
                return;
            }
            let mut builder = PayloadBuilder::new(usize::MAX);
            for packet in &packets {
                assert!(builder.try_push_packet(packet));
            }
            let body = Utf8Bytes::try_from_bytes(builder.finish()).unwrap();
            let unlimited = engineio::Limits::default()
                .max_payload(usize::MAX)
                .max_packets(usize::MAX);
            let split: Vec<_> = engineio::split_payload(body, &unlimited).collect();
            if packets
                .iter()
                .all(|packet| engineio_canonical(packet) && polling_safe(packet))
            {
                let expected: Vec<_> = packets.into_iter().map(Ok).collect();
                assert_eq!(split, expected);
            }
        }
    }
}

/// One frame for [`socketio_assembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A text message (the Socket.IO packet without the Engine.IO `4`).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// The frames of a [`socketio_assembler`] input. The format is simple so seeds can be written
/// by hand: per frame a tag byte (even: text, odd: binary), a little-endian `u16` length, and
/// that many bytes; text that is not UTF-8 is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ops(pub Vec<Op>);

impl Ops {
    /// The input bytes that decode to these frames.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for op in &self.0 {
            let (tag, bytes) = match op {
                Op::Text(text) => (0u8, text.as_bytes()),
                Op::Binary(data) => (1u8, data.as_slice()),
            };
            let len = u16::try_from(bytes.len()).unwrap();
            out.push(tag);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }
}

impl<'a> Arbitrary<'a> for Ops {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < 64 {
            let tag = u8::arbitrary(u)?;
            let len = usize::from(u16::from_le_bytes([u8::arbitrary(u)?, u8::arbitrary(u)?]));
            let bytes = u.bytes(len.min(u.len()))?;
            if tag % 2 == 1 {
                ops.push(Op::Binary(bytes.to_vec()));
            } else if let Ok(text) = std::str::from_utf8(bytes) {
                ops.push(Op::Text(text.to_owned()));
            }
        }
        Ok(Self(ops))
    }
}

#[derive(Debug, Arbitrary)]
enum Roundtrip {
    Engine(engineio::Packet),
    Socket(socketio::Packet, Vec<Vec<u8>>),
    Payload(Vec<engineio::Packet>),
}

fn check_engineio_encoding(packet: &engineio::Packet) -> Utf8Bytes {
    let text = packet.to_text();
    assert_eq!(text.len(), packet.encoded_len());
    let mut buffer = BytesMut::new();
    packet.encode_text(&mut buffer);
    assert_eq!(&buffer[..], text.as_bytes());
    text
}

/// Whether decoding the encoding gives the packet back: `2` and `2` + empty data are the same.
fn engineio_canonical(packet: &engineio::Packet) -> bool {
    !matches!(packet, engineio::Packet::Ping(Some(data)) | engineio::Packet::Pong(Some(data)) if data.is_empty())
}

/// Whether the packet's text form can sit in a polling body (no record separator inside).
fn polling_safe(packet: &engineio::Packet) -> bool {
    match packet {
        engineio::Packet::Message(Payload::Text(data))
        | engineio::Packet::Ping(Some(data))
        | engineio::Packet::Pong(Some(data)) => !data.contains('\x1e'),
        _ => true,
    }
}

/// What holds for every packet the decoder accepts.
fn check_decoded(packet: &socketio::Packet, limits: &socketio::Limits) {
    assert!(packet.is_canonical(), "{packet:?}");
    let encoded = packet.to_text();
    assert_eq!(encoded.len(), packet.encoded_len());
    assert_eq!(
        socketio::Packet::decode(encoded, limits).as_ref(),
        Ok(packet)
    );
    if let Some(data) = &packet.data {
        assert!(serde_json::from_str::<IgnoredAny>(data).is_ok(), "{data:?}");
    }
    match packet.kind {
        PacketKind::Event | PacketKind::BinaryEvent => {
            let name = packet.event_name().unwrap();
            assert!(!socketio::RESERVED_EVENTS.contains(&name.as_ref()));
            let args = packet.args().unwrap();
            let rebuilt = format!("[{args}]");
            assert!(
                serde_json::from_str::<IgnoredAny>(&rebuilt).is_ok(),
                "{rebuilt:?}"
            );
        }
        PacketKind::Ack | PacketKind::BinaryAck => {
            let args = packet.args().unwrap();
            let rebuilt = format!("[{args}]");
            assert!(
                serde_json::from_str::<IgnoredAny>(&rebuilt).is_ok(),
                "{rebuilt:?}"
            );
        }
        _ => {
            let _ = packet.event_name();
            let _ = packet.args();
        }
    }
}

/// Encodes `packet` and `attachments` once as an [`Outgoing`] and feeds its frames to a fresh
/// assembler: the same packet and attachments come out.
fn reassemble(packet: &socketio::Packet, attachments: Vec<Bytes>, limits: socketio::Limits) {
    let message = Outgoing::socketio(packet, attachments.clone());
    let mut assembler = Assembler::new(limits);
    let mut last = None;
    for frame in message.frames() {
        last = Some(match frame {
            Frame::Text(text) => assembler.push_text(text.slice_from(1).unwrap()),
            Frame::Binary(data) => assembler.push_binary(data.clone()),
        });
    }
    assert_eq!(
        last,
        Some(Ok(Assembled::Packet {
            packet: packet.clone(),
            attachments,
        }))
    );
}
