//! Every example of the public protocol documents as a test vector, through the public API:
//! the Engine.IO v4 protocol README (`socketio/engine.io-protocol`) and the Socket.IO v5
//! protocol README (`socketio/socket.io-protocol`), including its sample session. Then one
//! malformed input per typed error.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use sockeye_codec::engineio::{self, Handshake, Payload, PayloadBuilder};
use sockeye_codec::socketio::{
    self, AckId, Assembled, Assembler, DecodeError, PacketKind, PayloadError,
};
use sockeye_codec::{Outgoing, Utf8Bytes};

// ---------------------------------------------------------------------------------------------
// Engine.IO

fn eio(text: &str) -> Result<engineio::Packet, engineio::DecodeError> {
    engineio::Packet::decode_text(Utf8Bytes::from(text))
}

fn eio_text(text: &str) -> engineio::Packet {
    engineio::Packet::Message(Payload::Text(Utf8Bytes::from(text)))
}

fn split(body: &str) -> Vec<Result<engineio::Packet, engineio::DecodeError>> {
    engineio::split_payload(Utf8Bytes::from(body), &engineio::Limits::default()).collect()
}

/// Encodes `packets` into one polling body.
fn join(packets: &[engineio::Packet]) -> Bytes {
    let mut body = PayloadBuilder::new(1_000_000);
    for packet in packets {
        assert!(body.try_push_packet(packet));
    }
    body.finish()
}

/// Asserts that `text` decodes to `packet` and that `packet` encodes to `text`.
fn eio_both_ways(text: &str, packet: &engineio::Packet) {
    assert_eq!(eio(text).as_ref(), Ok(packet), "decoding {text:?}");
    assert_eq!(packet.to_text(), text, "encoding {packet:?}");
    assert_eq!(packet.encoded_len(), text.len());
}

#[test]
fn eio_handshake_example() {
    // "Handshake": the open packet's JSON, keys in the reference order.
    let json = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let open = engineio::Packet::Open(Handshake::new(
        "lv_VI97HAXpY6yYWAAAC",
        vec!["websocket".to_owned()],
        25_000,
        20_000,
        1_000_000,
    ));
    eio_both_ways(&format!("0{json}"), &open);
    // The README prints it pretty; whitespace does not matter when decoding.
    let pretty = "0{\n  \"sid\": \"lv_VI97HAXpY6yYWAAAC\",\n  \"upgrades\": [\"websocket\"],\n  \"pingInterval\": 25000,\n  \"pingTimeout\": 20000,\n  \"maxPayload\": 1000000\n}";
    assert_eq!(eio(pretty), Ok(open));
}

#[test]
fn eio_packet_types_table() {
    // "Protocol": open 0, close 1, ping 2, pong 3, message 4, upgrade 5, noop 6.
    for (digit, packet_type) in [
        (b'0', engineio::PacketType::Open),
        (b'1', engineio::PacketType::Close),
        (b'2', engineio::PacketType::Ping),
        (b'3', engineio::PacketType::Pong),
        (b'4', engineio::PacketType::Message),
        (b'5', engineio::PacketType::Upgrade),
        (b'6', engineio::PacketType::Noop),
    ] {
        assert_eq!(engineio::PacketType::from_char(digit), Some(packet_type));
        assert_eq!(packet_type.as_char(), digit);
    }
    assert_eq!(engineio::PacketType::from_char(b'7'), None);
}

#[test]
fn eio_heartbeat_example() {
    // "Heartbeat": the server sends `2`, the client answers `3`.
    eio_both_ways("2", &engineio::Packet::Ping(None));
    eio_both_ways("3", &engineio::Packet::Pong(None));
}

#[test]
fn eio_upgrade_example() {
    // "Upgrade": 2probe, 3probe, 5; and a noop for the pending GET.
    let probe = Some(Utf8Bytes::from_static("probe"));
    eio_both_ways("2probe", &engineio::Packet::Ping(probe.clone()));
    eio_both_ways("3probe", &engineio::Packet::Pong(probe));
    eio_both_ways("5", &engineio::Packet::Upgrade);
    eio_both_ways("6", &engineio::Packet::Noop);
    eio_both_ways("1", &engineio::Packet::Close);
}

#[test]
fn eio_polling_payload_example() {
    // "HTTP long-polling": 4hello\x1e2\x1e4world
    let packets = [
        eio_text("hello"),
        engineio::Packet::Ping(None),
        eio_text("world"),
    ];
    assert_eq!(
        split("4hello\x1e2\x1e4world"),
        packets.clone().map(Ok).to_vec()
    );
    assert_eq!(&join(&packets)[..], b"4hello\x1e2\x1e4world");
}

#[test]
fn eio_polling_binary_example() {
    // 4hello\x1ebAQIDBA== : a binary payload as `b` + base64.
    let packets = [
        eio_text("hello"),
        engineio::Packet::Message(Payload::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
    ];
    assert_eq!(
        split("4hello\x1ebAQIDBA=="),
        packets.clone().map(Ok).to_vec()
    );
    assert_eq!(&join(&packets)[..], b"4hello\x1ebAQIDBA==");
}

#[test]
fn eio_websocket_example() {
    // "WebSocket": 4hello in a text frame; binary payloads sent as is in binary frames.
    eio_both_ways("4hello", &eio_text("hello"));
    assert_eq!(
        engineio::Packet::decode_binary(Bytes::from_static(&[1, 2, 3, 4])),
        engineio::Packet::Message(Payload::Binary(Bytes::from_static(&[1, 2, 3, 4])))
    );
}

#[test]
fn eio_record_separator_not_character_counting() {
    // "From v3 to v4": `€` is 3 bytes; records are separated, not counted.
    assert_eq!(split("4€"), [Ok(eio_text("€"))]);
    assert_eq!(split("4€\x1e4€"), [Ok(eio_text("€")), Ok(eio_text("€"))]);
    assert_eq!(eio_text("€").encoded_len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Socket.IO

fn sio(text: &str) -> Result<socketio::Packet, DecodeError> {
    socketio::Packet::decode(Utf8Bytes::from(text), &socketio::Limits::default())
}

fn data(json: &'static str) -> Utf8Bytes {
    Utf8Bytes::from_static(json)
}

/// Asserts that `text` decodes to `packet` and that `packet` encodes to `text`.
fn sio_both_ways(text: &str, packet: &socketio::Packet) {
    assert_eq!(sio(text).as_ref(), Ok(packet), "decoding {text:?}");
    assert_eq!(packet.to_text(), text, "encoding {packet:?}");
    assert_eq!(packet.encoded_len(), text.len());
    assert!(packet.is_canonical());
    let mut dst = BytesMut::new();
    packet.encode(&mut dst);
    assert_eq!(&dst[..], text.as_bytes());
}

#[test]
fn sio_packet_types_table() {
    for (digit, kind) in [
        (b'0', PacketKind::Connect),
        (b'1', PacketKind::Disconnect),
        (b'2', PacketKind::Event),
        (b'3', PacketKind::Ack),
        (b'4', PacketKind::ConnectError),
        (b'5', PacketKind::BinaryEvent),
        (b'6', PacketKind::BinaryAck),
    ] {
        assert_eq!(PacketKind::from_char(digit), Some(kind));
        assert_eq!(kind.as_char(), digit);
    }
}

#[test]
fn sio_connection_examples() {
    // { type: CONNECT, namespace: "/" } -> 0
    sio_both_ways("0", &socketio::Packet::connect("/", None));
    // { type: CONNECT, namespace: "/admin", data: { sid: "oSO0OpakMV_3jnilAAAA" } }
    sio_both_ways(
        r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
        &socketio::Packet::connect_ok("/admin", "oSO0OpakMV_3jnilAAAA"),
    );
    // "with an additional payload": { type: CONNECT, namespace: "/admin", data: { "token": "123" } }
    sio_both_ways(
        r#"0/admin,{"token":"123"}"#,
        &socketio::Packet::connect("/admin", Some(data(r#"{"token":"123"}"#))),
    );
    // The server's answers in the exchange examples.
    sio_both_ways(
        r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
        &socketio::Packet::connect_ok("/", "wZX3oN0bSVIhsaknAAAI"),
    );
    sio_both_ways(
        r#"0/admin,{"sid":"iLnRaVGHY4B75TeVAAAB"}"#,
        &socketio::Packet::connect_ok("/admin", "iLnRaVGHY4B75TeVAAAB"),
    );
    // { type: CONNECT_ERROR, namespace: "/", data: { message: "Not authorized" } }
    sio_both_ways(
        r#"4{"message":"Not authorized"}"#,
        &socketio::Packet::connect_error("/", data(r#"{"message":"Not authorized"}"#)),
    );
}

#[test]
fn sio_event_examples() {
    // { type: EVENT, namespace: "/", data: ["foo"] } -> 2["foo"]
    let foo = socketio::Packet::event("/", data(r#"["foo"]"#));
    sio_both_ways(r#"2["foo"]"#, &foo);
    assert_eq!(foo.event_name().unwrap(), "foo");
    // { type: EVENT, namespace: "/admin", data: ["bar"] } -> 2/admin,["bar"]
    sio_both_ways(
        r#"2/admin,["bar"]"#,
        &socketio::Packet::event("/admin", data(r#"["bar"]"#)),
    );
    // Wrapped in an Engine.IO message: 42["foo"]
    assert_eq!(
        Outgoing::socketio(&foo, Vec::new()).text().unwrap(),
        r#"42["foo"]"#
    );
}

#[test]
fn sio_binary_event_examples() {
    // { type: BINARY_EVENT, namespace: "/", data: ["baz", <Buffer <01 02 03 04>> ] }
    let one = socketio::Packet::event("/", data(r#"["baz",{"_placeholder":true,"num":0}]"#))
        .with_attachments(1);
    sio_both_ways(r#"51-["baz",{"_placeholder":true,"num":0}]"#, &one);
    assert_reassembles(&one, vec![Bytes::from_static(&[1, 2, 3, 4])]);

    // "with multiple attachments": namespace /admin, two buffers.
    let two = socketio::Packet::event(
        "/admin",
        data(r#"["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
    )
    .with_attachments(2);
    sio_both_ways(
        r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        &two,
    );
    assert_reassembles(
        &two,
        vec![Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])],
    );
}

#[test]
fn sio_acknowledgement_examples() {
    // { type: EVENT, namespace: "/", data: ["foo"], id: 12 } -> 212["foo"]
    sio_both_ways(
        r#"212["foo"]"#,
        &socketio::Packet::event("/", data(r#"["foo"]"#)).with_ack_id(AckId(12)),
    );
    // { type: ACK, namespace: "/", data: [], id: 12 } (exchange example)
    let empty = socketio::Packet::ack("/", AckId(12), data("[]"));
    sio_both_ways("312[]", &empty);
    assert_eq!(empty.args().unwrap(), "");
    // { type: ACK, namespace: "/admin", data: ["bar"], id: 13 } -> 3/admin,13["bar"]
    // (the README has a stray backtick after it)
    let bar = socketio::Packet::ack("/admin", AckId(13), data(r#"["bar"]"#));
    sio_both_ways(r#"3/admin,13["bar"]"#, &bar);
    assert_eq!(bar.args().unwrap(), r#""bar""#);
    // { type: EVENT, namespace: "/admin", data: ["foo"], id: 13 }
    sio_both_ways(
        r#"2/admin,13["foo"]"#,
        &socketio::Packet::event("/admin", data(r#"["foo"]"#)).with_ack_id(AckId(13)),
    );
    // { type: BINARY_EVENT, namespace: "/", data: ["foo", <buffer>], id: 14 } and its ACK.
    sio_both_ways(
        r#"51-14["foo",{"_placeholder":true,"num":0}]"#,
        &socketio::Packet::event("/", data(r#"["foo",{"_placeholder":true,"num":0}]"#))
            .with_ack_id(AckId(14))
            .with_attachments(1),
    );
    sio_both_ways(
        r#"314["bar"]"#,
        &socketio::Packet::ack("/", AckId(14), data(r#"["bar"]"#)),
    );
    // { type: BINARY_ACK, namespace: "/", data: ["bar", <Buffer <01 02 03 04>>], id: 15 }
    let binary_ack = socketio::Packet::ack(
        "/",
        AckId(15),
        data(r#"["bar",{"_placeholder":true,"num":0}]"#),
    )
    .with_attachments(1);
    sio_both_ways(r#"61-15["bar",{"_placeholder":true,"num":0}]"#, &binary_ack);
    assert_reassembles(&binary_ack, vec![Bytes::from_static(&[1, 2, 3, 4])]);
    // { type: EVENT, namespace: "/", data: ["foo"], id: 15 }
    sio_both_ways(
        r#"215["foo"]"#,
        &socketio::Packet::event("/", data(r#"["foo"]"#)).with_ack_id(AckId(15)),
    );
}

#[test]
fn sio_disconnection_examples() {
    // { type: DISCONNECT, namespace: "/" } -> 1
    sio_both_ways("1", &socketio::Packet::disconnect("/"));
    // { type: DISCONNECT, namespace: "/admin" } -> 1/admin,
    sio_both_ways("1/admin,", &socketio::Packet::disconnect("/admin"));
}

#[test]
fn sample_session() {
    // Request n°1: the open packet (pingTimeout 5000 in this example).
    let open = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#;
    let handshake = Handshake::new(
        "lv_VI97HAXpY6yYWAAAC",
        vec!["websocket".to_owned()],
        25_000,
        5_000,
        1_000_000,
    );
    eio_both_ways(open, &engineio::Packet::Open(handshake));

    // Request n°2: POST 40 (CONNECT to the main namespace).
    let split_body: [_; 1] = split("40").try_into().unwrap();
    let [Ok(engineio::Packet::Message(Payload::Text(connect)))] = split_body else {
        panic!("one text message");
    };
    assert_eq!(sio(&connect), Ok(socketio::Packet::connect("/", None)));

    // Request n°3: GET 40{"sid":"wZX3oN0bSVIhsaknAAAI"}
    let approval = Outgoing::socketio(
        &socketio::Packet::connect_ok("/", "wZX3oN0bSVIhsaknAAAI"),
        Vec::new(),
    );
    let mut body = PayloadBuilder::new(1_000_000);
    assert!(body.try_push_outgoing(&approval));
    assert_eq!(&body.finish()[..], br#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#);

    // Request n°4: GET 42["hey","Jude"]
    let hey = socketio::Packet::event("/", data(r#"["hey","Jude"]"#));
    assert_eq!(
        Outgoing::socketio(&hey, Vec::new()).text().unwrap(),
        r#"42["hey","Jude"]"#
    );

    // Request n°5: POST 42["hello"]\x1e42["world"]
    let names: Vec<String> = split("42[\"hello\"]\x1e42[\"world\"]")
        .into_iter()
        .map(|packet| {
            let engineio::Packet::Message(Payload::Text(text)) = packet.unwrap() else {
                panic!("text message");
            };
            sio(&text).unwrap().event_name().unwrap().into_owned()
        })
        .collect();
    assert_eq!(names, ["hello", "world"]);

    // Request n°6: the WebSocket frames, in order (< from the client, > from the server).
    let frames = [
        ("2probe", engineio::Packet::Ping(Some("probe".into()))),
        ("3probe", engineio::Packet::Pong(Some("probe".into()))),
        ("5", engineio::Packet::Upgrade),
        (r#"42["hello"]"#, eio_text(r#"2["hello"]"#)),
        (r#"42["world"]"#, eio_text(r#"2["world"]"#)),
        ("40/admin,", eio_text("0/admin,")),
        (
            r#"40/admin,{"sid":"-G5j-67EZFp-q59rADQM"}"#,
            eio_text(r#"0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}"#),
        ),
        (
            r#"42/admin,1["tellme"]"#,
            eio_text(r#"2/admin,1["tellme"]"#),
        ),
        (
            r#"461-/admin,1[{"_placeholder":true,"num":0}]"#,
            eio_text(r#"61-/admin,1[{"_placeholder":true,"num":0}]"#),
        ),
        ("2", engineio::Packet::Ping(None)),
        ("3", engineio::Packet::Pong(None)),
        ("1", engineio::Packet::Close),
    ];
    for (text, packet) in &frames {
        eio_both_ways(text, packet);
    }
    let tellme = sio(r#"2/admin,1["tellme"]"#).unwrap();
    assert_eq!(
        (
            tellme.namespace.as_str(),
            tellme.ack_id,
            tellme.event_name().unwrap().as_ref()
        ),
        ("/admin", Some(AckId(1)), "tellme")
    );
    // The BINARY_ACK and the binary frame after it.
    let mut assembler = Assembler::new(socketio::Limits::default());
    let header = Utf8Bytes::from_static(r#"61-/admin,1[{"_placeholder":true,"num":0}]"#);
    assert_eq!(assembler.push_text(header).unwrap(), Assembled::Pending);
    let Assembled::Packet {
        packet,
        attachments,
    } = assembler
        .push_binary(Bytes::from_static(b"<binary>"))
        .unwrap()
    else {
        panic!("complete");
    };
    assert_eq!(packet.kind, PacketKind::BinaryAck);
    assert_eq!(packet.ack_id, Some(AckId(1)));
    assert_eq!(attachments, [Bytes::from_static(b"<binary>")]);
}

/// Encodes once as an `Outgoing` and reassembles from its frames.
fn assert_reassembles(packet: &socketio::Packet, attachments: Vec<Bytes>) {
    let message = Outgoing::socketio(packet, attachments.clone());
    assert_eq!(message.frame_count(), 1 + attachments.len());
    let mut assembler = Assembler::new(socketio::Limits::default());
    let text = message.text().unwrap().slice_from(1).unwrap();
    let mut result = assembler.push_text(text);
    for data in message.binaries() {
        assert_eq!(result, Ok(Assembled::Pending));
        result = assembler.push_binary(data.clone());
    }
    assert_eq!(
        result,
        Ok(Assembled::Packet {
            packet: packet.clone(),
            attachments,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed inputs, one per typed error.

#[test]
fn eio_errors() {
    use engineio::DecodeError as E;
    assert_eq!(eio(""), Err(E::Empty));
    assert_eq!(eio("7"), Err(E::UnknownType(b'7')));
    assert_eq!(eio("x4hello"), Err(E::UnknownType(b'x')));
    assert_eq!(eio("b!!!!"), Err(E::InvalidBase64));
    assert_eq!(eio("bA"), Err(E::InvalidBase64));
    assert_eq!(eio("0"), Err(E::InvalidHandshake));
    assert_eq!(eio(r#"0{"sid":"x"}"#), Err(E::InvalidHandshake));
    // Unpadded base64 is accepted, as Node's Buffer.from(data, "base64") does.
    assert_eq!(
        eio("bAQIDBA"),
        Ok(engineio::Packet::Message(Payload::Binary(
            Bytes::from_static(&[1, 2, 3, 4])
        )))
    );

    assert_eq!(split(""), [Err(E::Empty)]);
    assert_eq!(split("4a\x1e"), [Ok(eio_text("a")), Err(E::Empty)]);
    assert_eq!(split("4a\x1e\x1e4b"), [Ok(eio_text("a")), Err(E::Empty)]);
    let limits = engineio::Limits::default().max_payload(5).max_packets(1);
    let too_large: Vec<_> =
        engineio::split_payload(Utf8Bytes::from_static("4hello"), &limits).collect();
    assert_eq!(too_large, [Err(E::PayloadTooLarge { len: 6, max: 5 })]);
    let too_many: Vec<_> =
        engineio::split_payload(Utf8Bytes::from_static("2\x1e3"), &limits).collect();
    assert_eq!(
        too_many,
        [
            Ok(engineio::Packet::Ping(None)),
            Err(E::TooManyPackets { max: 1 })
        ]
    );
}

#[test]
fn sio_errors() {
    use DecodeError as E;
    assert_eq!(sio(""), Err(E::Empty));
    assert_eq!(sio("7"), Err(E::UnknownType(b'7')));
    assert_eq!(sio("a"), Err(E::UnknownType(b'a')));
    assert_eq!(sio(r#"5["a"]"#), Err(E::InvalidAttachments));
    assert_eq!(sio(r#"5-["a"]"#), Err(E::InvalidAttachments));
    assert_eq!(sio(r#"51["a"]"#), Err(E::InvalidAttachments));
    assert_eq!(sio(r#"50-["a"]"#), Err(E::InvalidAttachments));
    assert_eq!(
        sio(r#"599999999999999999999-["a"]"#),
        Err(E::InvalidAttachments)
    );
    assert_eq!(
        sio(r#"511-["a"]"#),
        Err(E::TooManyAttachments { count: 11, max: 10 })
    );
    let long = format!("0/{},", "n".repeat(300));
    assert_eq!(sio(&long), Err(E::NamespaceTooLong { len: 301, max: 256 }));
    assert_eq!(sio(r#"218446744073709551616["a"]"#), Err(E::InvalidAckId));
    // Past Number.MAX_SAFE_INTEGER a JavaScript peer cannot hold the id: refused.
    assert_eq!(sio(r#"218446744073709551615["a"]"#), Err(E::InvalidAckId));
    assert_eq!(sio(r#"29007199254740992["a"]"#), Err(E::InvalidAckId));
    assert_eq!(
        sio(r#"29007199254740991["a"]"#).unwrap().ack_id,
        Some(AckId(socketio::MAX_ACK_ID))
    );
    assert_eq!(sio(r#"2["a",]"#), Err(E::InvalidJson));
    assert_eq!(sio(r#"2["a"] x"#), Err(E::InvalidJson));
    assert_eq!(sio("2[\"a\u{1}\"]"), Err(E::InvalidJson));
    // Depth 100 (the event's array and 99 more) is the default limit; 101 is refused.
    let at_limit = format!(r#"2["a",{}{}]"#, "[".repeat(99), "]".repeat(99));
    assert!(sio(&at_limit).is_ok());
    let deep = format!(r#"2["a",{}{}]"#, "[".repeat(100), "]".repeat(100));
    assert_eq!(sio(&deep), Err(E::TooDeep { max: 100 }));
    let bomb = format!(r#"2["a",{}"#, "[{\"a\":".repeat(500_000));
    assert_eq!(sio(&bomb), Err(E::TooDeep { max: 100 }));
    for (text, kind) in [
        ("2", PacketKind::Event),
        ("2[]", PacketKind::Event),
        (r#"2{"a":1}"#, PacketKind::Event),
        (r#"2[{"a":1}]"#, PacketKind::Event),
        (r#"2["disconnecting"]"#, PacketKind::Event),
        (r#"2["newListener",1]"#, PacketKind::Event),
        ("3", PacketKind::Ack),
        (r#"31{"a":1}"#, PacketKind::Ack),
        ("0[]", PacketKind::Connect),
        (r#"0"sid""#, PacketKind::Connect),
        ("4[]", PacketKind::ConnectError),
        ("1{}", PacketKind::Disconnect),
        (
            r#"61-1{"_placeholder":true,"num":0}"#,
            PacketKind::BinaryAck,
        ),
    ] {
        assert_eq!(sio(text), Err(E::InvalidPayload(kind)), "{text}");
    }
    assert_eq!(
        sio(r#"51-["a",{"_placeholder":true,"num":1}]"#),
        Err(E::InvalidPlaceholder)
    );
    assert_eq!(
        sio(r#"51-["a",{"_placeholder":true}]"#),
        Err(E::InvalidPlaceholder)
    );

    let limits = socketio::Limits::default().max_attachment_bytes(4);
    let mut assembler = Assembler::new(limits);
    assert_eq!(
        assembler.push_binary(Bytes::from_static(b"x")),
        Err(E::UnexpectedBinary)
    );
    let header = Utf8Bytes::from_static(
        r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    assert_eq!(assembler.push_text(header.clone()), Ok(Assembled::Pending));
    assert_eq!(
        assembler.push_text(Utf8Bytes::from_static(r#"2["b"]"#)),
        Err(E::UnexpectedText { missing: 2 })
    );
    assert_eq!(assembler.push_text(header), Ok(Assembled::Pending));
    assert_eq!(
        assembler.push_binary(Bytes::from_static(b"abc")),
        Ok(Assembled::Pending)
    );
    assert_eq!(
        assembler.push_binary(Bytes::from_static(b"de")),
        Err(E::AttachmentsTooLarge { len: 5, max: 4 })
    );
    assert!(!assembler.is_pending());
}

#[test]
fn payload_errors() {
    let no_data = socketio::Packet::connect("/", None);
    assert_eq!(no_data.event_name(), Err(PayloadError::Missing));
    assert_eq!(no_data.args(), Err(PayloadError::Missing));
    let object = socketio::Packet::connect("/", Some(data(r#"{"a":1}"#)));
    assert_eq!(object.event_name(), Err(PayloadError::NotAnArray));
    assert_eq!(object.args(), Err(PayloadError::NotAnArray));
    let not_a_name = socketio::Packet::event("/", data(r#"[{"a":1}]"#));
    assert_eq!(not_a_name.event_name(), Err(PayloadError::InvalidEventName));
    let broken = socketio::Packet::event("/", data(r#"{"a""#));
    assert_eq!(broken.event_name(), Err(PayloadError::InvalidJson));
}
