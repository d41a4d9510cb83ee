//! Property tests through the public API only (which doubles as a check that the crate is usable
//! on its own): decode(encode(p)) == p for every packet kind of both layers, split(join(ps)) ==
//! ps for polling payloads, arbitrary namespaces and ack ids, and binary attachments delivered in
//! any chunking and order of frames to the `Assembler`.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use sockeye_codec::engineio::{self, Handshake, Payload, PayloadBuilder};
use sockeye_codec::socketio::{self, AckId, Assembled, Assembler, DecodeError, PacketKind};
use sockeye_codec::{Frame, Outgoing, Utf8Bytes};

// ---------------------------------------------------------------------------------------------
// Strategies

/// Any Engine.IO packet whose text form decodes back to it (`2` + empty data is just `2`).
fn engineio_packet() -> impl Strategy<Value = engineio::Packet> {
    let data = "\\PC{1,20}".prop_map(Utf8Bytes::from);
    prop_oneof![
        (
            "[A-Za-z0-9_-]{1,20}",
            vec("[a-z]{1,10}", 0..3),
            any::<u64>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(sid, upgrades, interval, timeout, max)| {
                engineio::Packet::Open(Handshake::new(sid, upgrades, interval, timeout, max))
            }),
        Just(engineio::Packet::Close),
        proptest::option::of(data.clone()).prop_map(engineio::Packet::Ping),
        proptest::option::of(data).prop_map(engineio::Packet::Pong),
        any::<String>().prop_map(|text| engineio::Packet::Message(Payload::Text(text.into()))),
        vec(any::<u8>(), 0..64)
            .prop_map(|data| engineio::Packet::Message(Payload::Binary(Bytes::from(data)))),
        Just(engineio::Packet::Upgrade),
        Just(engineio::Packet::Noop),
    ]
}

/// Engine.IO packets that can sit in a polling body (no record separator in their text).
fn polling_packet() -> impl Strategy<Value = engineio::Packet> {
    engineio_packet().prop_filter("no record separator", |packet| {
        !packet.to_text().contains('\x1e')
    })
}

/// Namespaces: the default, or `/` and anything without a comma (up to the 256-byte limit).
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_owned()), "/[^,]{0,40}"]
}

/// JSON values nested a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |number| number.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn event_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>()
            .prop_filter("not reserved", |name| {
                !socketio::RESERVED_EVENTS.contains(&name.as_str())
            })
            .prop_map(Value::String),
        any::<u32>().prop_map(Value::from),
    ]
}

fn placeholder(num: usize) -> Value {
    serde_json::json!({ "_placeholder": true, "num": num })
}

/// A packet of every kind, with data of the shape its kind requires. Binary kinds carry 1 to 10
/// placeholders, in any order and nested anywhere in the arguments.
fn socketio_packet() -> impl Strategy<Value = socketio::Packet> {
    let kind = prop_oneof![
        Just(PacketKind::Connect),
        Just(PacketKind::Disconnect),
        Just(PacketKind::Event),
        Just(PacketKind::Ack),
        Just(PacketKind::ConnectError),
        Just(PacketKind::BinaryEvent),
        Just(PacketKind::BinaryAck),
    ];
    (
        kind,
        namespace(),
        proptest::option::of(0..=socketio::MAX_ACK_ID),
        event_name(),
        vec(json_value(), 0..4),
        proptest::option::of(json_value()),
        1..=10usize,
        any::<prop::sample::Index>(),
        any::<String>(),
    )
        .prop_map(
            |(kind, namespace, ack_id, name, mut args, object, count, spot, message)| {
                let attachments = if kind.is_binary() { count } else { 0 };
                // Placeholders in reverse order, each at some position among the arguments.
                for num in (0..attachments).rev() {
                    let at = spot.index(args.len() + 1);
                    args.insert(at, placeholder(num));
                }
                let data = match kind {
                    PacketKind::Connect => object.map(|value| serde_json::json!({ "auth": value })),
                    PacketKind::Disconnect => None,
                    PacketKind::ConnectError => Some(serde_json::json!({ "message": message })),
                    PacketKind::Event | PacketKind::BinaryEvent => {
                        args.insert(0, name);
                        Some(Value::Array(args))
                    }
                    PacketKind::Ack | PacketKind::BinaryAck => Some(Value::Array(args)),
                };
                let mut packet = socketio::Packet::new(kind, namespace);
                packet.ack_id = ack_id.map(AckId);
                packet.data = data.map(|data| Utf8Bytes::from(data.to_string()));
                packet.with_attachments(attachments)
            },
        )
}

/// A packet with its attachments (1 to 64 bytes each, or empty).
fn packet_with_attachments() -> impl Strategy<Value = (socketio::Packet, Vec<Bytes>)> {
    socketio_packet().prop_flat_map(|packet| {
        let count = packet.attachments;
        (
            Just(packet),
            vec(vec(any::<u8>(), 0..64).prop_map(Bytes::from), count..=count),
        )
    })
}

fn frames_of(message: &Outgoing) -> Vec<Result<Utf8Bytes, Bytes>> {
    message
        .frames()
        .map(|frame| match frame {
            // The Socket.IO text is the Engine.IO message without its `4`.
            Frame::Text(text) => Ok(text.slice_from(1).unwrap()),
            Frame::Binary(data) => Err(data.clone()),
        })
        .collect()
}

fn feed(
    assembler: &mut Assembler,
    frame: Result<Utf8Bytes, Bytes>,
) -> Result<Assembled, DecodeError> {
    match frame {
        Ok(text) => assembler.push_text(text),
        Err(data) => assembler.push_binary(data),
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn engineio_packets_round_trip(packet in engineio_packet()) {
        let text = packet.to_text();
        prop_assert_eq!(text.len(), packet.encoded_len());
        let canonical = !matches!(
            &packet,
            engineio::Packet::Ping(Some(data)) | engineio::Packet::Pong(Some(data)) if data.is_empty()
        );
        prop_assume!(canonical);
        prop_assert_eq!(engineio::Packet::decode_text(text), Ok(packet));
    }

    #[test]
    fn engineio_binary_frames_round_trip(data in vec(any::<u8>(), 0..256)) {
        let packet = engineio::Packet::decode_binary(Bytes::from(data.clone()));
        prop_assert_eq!(&packet, &engineio::Packet::Message(Payload::Binary(Bytes::from(data))));
        // Over polling: `b` + base64, which decodes to the same bytes.
        prop_assert_eq!(engineio::Packet::decode_text(packet.to_text()), Ok(packet));
    }

    #[test]
    fn polling_payloads_split_what_was_joined(packets in vec(polling_packet(), 1..40)) {
        let mut body = PayloadBuilder::new(usize::MAX);
        for packet in &packets {
            prop_assert!(body.try_push_packet(packet));
        }
        let body = Utf8Bytes::try_from_bytes(body.finish()).unwrap();
        let limits = engineio::Limits::default().max_payload(usize::MAX);
        let split: Result<Vec<_>, _> = engineio::split_payload(body, &limits).collect();
        prop_assert_eq!(split, Ok(packets));
    }

    #[test]
    fn bounded_bodies_keep_every_packet_in_order(
        packets in vec(polling_packet(), 1..40),
        limit in 1..400usize,
    ) {
        // Fill bodies of at most `limit` bytes, starting a new body when a packet does not fit,
        // as a long-polling transport does over successive GETs.
        let limits = engineio::Limits::default().max_payload(usize::MAX);
        let mut received = Vec::new();
        let mut pending = packets.as_slice();
        while !pending.is_empty() {
            let mut body = PayloadBuilder::new(limit);
            let taken = pending.iter().take_while(|packet| body.try_push_packet(packet)).count();
            prop_assert!(taken >= 1);
            prop_assert!(body.len() <= limit || taken == 1);
            let body = Utf8Bytes::try_from_bytes(body.finish()).unwrap();
            for packet in engineio::split_payload(body, &limits) {
                received.push(packet.unwrap());
            }
            pending = &pending[taken..];
        }
        prop_assert_eq!(received, packets);
    }

    #[test]
    fn socketio_packets_round_trip(packet in socketio_packet()) {
        prop_assert!(packet.is_canonical(), "{:?}", packet);
        let text = packet.to_text();
        prop_assert_eq!(text.len(), packet.encoded_len());
        let decoded = socketio::Packet::decode(text, &socketio::Limits::default());
        prop_assert_eq!(decoded, Ok(packet));
    }

    #[test]
    fn namespaces_and_ack_ids_survive(
        namespace in namespace(),
        ack_id in 0..=socketio::MAX_ACK_ID,
        kind in prop_oneof![Just(PacketKind::Event), Just(PacketKind::Ack)],
    ) {
        let data = Utf8Bytes::from_static(r#"["n",1]"#);
        let packet = match kind {
            PacketKind::Ack => socketio::Packet::ack(namespace.as_str(), AckId(ack_id), data),
            _ => socketio::Packet::event(namespace.as_str(), data).with_ack_id(AckId(ack_id)),
        };
        let decoded = socketio::Packet::decode(packet.to_text(), &socketio::Limits::default())
            .unwrap();
        prop_assert_eq!(decoded.namespace.as_str(), namespace.as_str());
        prop_assert_eq!(decoded.ack_id, Some(AckId(ack_id)));
        // Without the trailing comma, when nothing follows the namespace.
        let bare = format!("1{namespace}");
        let decoded = socketio::Packet::decode(bare.into(), &socketio::Limits::default()).unwrap();
        prop_assert_eq!(decoded.namespace.as_str(), namespace.as_str());
    }

    #[test]
    fn assembler_reassembles_any_sequence_of_messages(
        messages in vec(packet_with_attachments(), 1..8),
    ) {
        // Many messages back to back, attachments of any size (empty ones too), every frame in
        // protocol order: each packet comes out once, with its attachments, in order.
        let mut assembler = Assembler::new(socketio::Limits::default());
        let mut out = Vec::new();
        for (packet, attachments) in &messages {
            let message = Outgoing::socketio(packet, attachments.clone());
            for frame in frames_of(&message) {
                match feed(&mut assembler, frame).unwrap() {
                    Assembled::Pending => prop_assert!(assembler.is_pending()),
                    Assembled::Packet { packet, attachments } => {
                        prop_assert!(!assembler.is_pending());
                        out.push((packet, attachments));
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
        prop_assert_eq!(out, messages);
    }

    #[test]
    fn assembler_takes_frames_in_arrival_order_or_refuses(
        (packet, attachments) in packet_with_attachments(),
        order in any::<prop::sample::Index>(),
    ) {
        // Deliver one message's frames rotated: the text frame must come first (else the first
        // binary frame is refused); attachments are taken in the order they arrive.
        let message = Outgoing::socketio(&packet, attachments);
        let mut frames = frames_of(&message);
        let shift = order.index(frames.len());
        frames.rotate_left(shift);
        let mut assembler = Assembler::new(socketio::Limits::default());
        let mut results = frames.iter().cloned().map(|frame| feed(&mut assembler, frame));
        let first = results.next().unwrap();
        if shift == 0 {
            let rest: Vec<_> = results.collect();
            let last = rest.last().cloned().unwrap_or(first);
            let delivered: Vec<Bytes> = frames.into_iter().filter_map(Result::err).collect();
            prop_assert_eq!(last, Ok(Assembled::Packet { packet, attachments: delivered }));
        } else {
            prop_assert_eq!(first, Err(DecodeError::UnexpectedBinary));
        }
    }

    #[test]
    fn assembler_never_panics_and_resets_after_errors(
        frames in vec(
            prop_oneof![
                "[0-6][0-9-]{0,3}[\\[\\]{}\",:a-z0-9_]{0,30}".prop_map(|text| Ok(Utf8Bytes::from(text))),
                vec(any::<u8>(), 0..8).prop_map(|data| Err(Bytes::from(data))),
            ],
            0..20,
        ),
    ) {
        let mut assembler = Assembler::new(socketio::Limits::default().max_attachment_bytes(16));
        for frame in frames {
            match feed(&mut assembler, frame) {
                Ok(Assembled::Pending) => prop_assert!(assembler.is_pending()),
                Ok(_) => prop_assert!(!assembler.is_pending()),
                Err(_) => prop_assert!(!assembler.is_pending()),
            }
        }
    }

    #[test]
    fn socketio_decode_is_total(text in "\\PC{0,64}") {
        // Any text gives a packet or a typed error; a packet always re-encodes to itself.
        if let Ok(packet) = socketio::Packet::decode(text.into(), &socketio::Limits::default()) {
            prop_assert!(packet.is_canonical());
            let again = socketio::Packet::decode(packet.to_text(), &socketio::Limits::default());
            prop_assert_eq!(again, Ok(packet));
        }
    }

    #[test]
    fn outgoing_clones_share_bytes(packet in socketio_packet()) {
        let message = Outgoing::socketio(&packet, Vec::new());
        let copy = message.clone();
        prop_assert_eq!(
            message.text().unwrap().as_bytes().as_ptr(),
            copy.text().unwrap().as_bytes().as_ptr()
        );
        prop_assert_eq!(message.text().unwrap().as_str(), format!("4{}", packet.to_text()));
        let mut body = PayloadBuilder::new(usize::MAX);
        prop_assert!(body.try_push_outgoing(&message));
        prop_assert_eq!(body.len(), message.polling_len());
    }
}
