//! Every classic-mode message captured from Node's `@socket.io/redis-adapter` 8.3
//! (`shared/cluster/captures/classic-subscriber.txt`, a `PSUBSCRIBE *` view of two Node nodes):
//! decoded into the wire types, checked field by field, and re-encoded byte for byte.

use std::time::Duration;

use serde_json::json;
use sockeye_redis::wire::channels::ClassicChannels;
use sockeye_redis::wire::classic::{Broadcast, Request, Response, ResponseFrame, ResponseKind};

/// (channel, message hex), in capture order.
const CAPTURES: &[(&str, &str)] = &[
    (
        "socket.io#/#room1#",
        "93a654775763783383a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380",
    ),
    (
        "socket.io#/#",
        "93a654775763783383a47479706502a46461746192a568656c6c6f01a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
    ),
    (
        "socket.io#/#",
        "93a654775763783383a47479706502a46461746192a568656c6c6f81a16ecb3ff8000000000000a36e7370a12f83a5726f6f6d7392a5726f6f6d31a5726f6f6d32a665786365707491b47a6e587368707a646a585f456a50707641414142a5666c61677380",
    ),
    (
        "socket.io#/#room1#",
        "93a654775763783383a47479706502a46461746192a362696e81a362696ec403010203a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380",
    ),
    (
        "socket.io-request#/#",
        "85a3756964a6547757637833a9726571756573744964a66d5f30305a56a47479706507a67061636b657483a47479706502a46461746192a87175657374696f6ea171a36e7370a12fa46f70747383a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677381a774696d656f7574cd07d0",
    ),
    (
        "socket.io-response#/#",
        "7b2274797065223a382c22726571756573744964223a226d5f30305a56222c22636c69656e74436f756e74223a317d",
    ),
    (
        "socket.io-response#/#",
        "83a47479706509a9726571756573744964a66d5f30305a56a67061636b6574ae616e737765722d66726f6d2d6231",
    ),
    (
        "socket.io-request#/#",
        "7b22756964223a22547757637833222c22726571756573744964223a226f4a30366949222c2274797065223a352c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d7d7d",
    ),
    (
        "socket.io-response#/#",
        "7b22726571756573744964223a226f4a30366949222c22736f636b657473223a5b7b226964223a22384337767a386448524979384473376441414141222c2268616e647368616b65223a7b2268656164657273223a7b227365632d776562736f636b65742d76657273696f6e223a223133222c227365632d776562736f636b65742d6b6579223a224c766a6361564661523770314567316b58664c596d413d3d222c22636f6e6e656374696f6e223a2255706772616465222c2275706772616465223a22776562736f636b6574222c227365632d776562736f636b65742d657874656e73696f6e73223a227065726d6573736167652d6465666c6174653b20636c69656e745f6d61785f77696e646f775f62697473222c22686f7374223a223132372e302e302e313a33363332227d2c2274696d65223a22546875204e6f7620323620323032362032323a34353a303020474d542b303030302028436f6f7264696e6174656420556e6976657273616c2054696d6529222c2261646472657373223a223132372e302e302e31222c2278646f6d61696e223a66616c73652c22736563757265223a66616c73652c22697373756564223a313739353733333130303031342c2275726c223a222f736f636b65742e696f2f3f45494f3d34267472616e73706f72743d776562736f636b6574222c227175657279223a7b2245494f223a2234222c227472616e73706f7274223a22776562736f636b6574227d2c2261757468223a7b226e616d65223a226231227d7d2c22726f6f6d73223a5b22384337767a386448524979384473376441414141222c22726f6f6d31222c22726f6f6d32225d2c2264617461223a7b226e616d65223a226231222c226e6f6465223a2242227d7d5d7d",
    ),
    (
        "socket.io-request#/#",
        "7b22756964223a22547757637833222c22726571756573744964223a22513267357035222c2274797065223a317d",
    ),
    (
        "socket.io-response#/#",
        "7b22726571756573744964223a22513267357035222c22726f6f6d73223a5b22384337767a386448524979384473376441414141222c227a6e587368707a646a585f456a50707641414142222c224467492d36714e37386f584e4d68697941414143222c22726f6f6d31222c22726f6f6d32222c2276696374696d73225d7d",
    ),
    (
        "socket.io-request#/#",
        "7b22756964223a22547757637833222c2274797065223a322c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b22726f6f6d33225d7d",
    ),
    (
        "socket.io-request#/#",
        "7b22756964223a22547757637833222c2274797065223a332c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b22726f6f6d33225d7d",
    ),
    (
        "socket.io-request#/#",
        "7b22756964223a22547757637833222c2274797065223a342c226f707473223a7b22726f6f6d73223a5b2276696374696d73225d2c22657863657074223a5b5d7d2c22636c6f7365223a66616c73657d",
    ),
    (
        "socket.io-request#/#",
        "7b22756964223a22547757637833222c2274797065223a362c2264617461223a5b22636c75737465723a6e6f7465222c7b2266726f6d223a2241222c227061796c6f6164223a2270227d5d7d",
    ),
    (
        "socket.io-request#/#",
        "7b22756964223a22547757637833222c22726571756573744964223a2250587967375a222c2274797065223a362c2264617461223a5b22636c75737465723a70696e67222c7b2266726f6d223a2241227d5d7d",
    ),
    (
        "socket.io-response#/#",
        "7b2274797065223a362c22726571756573744964223a2250587967375a222c2264617461223a7b226e6f6465223a2242222c2266726f6d223a2241227d7d",
    ),
];

fn bytes(i: usize) -> Vec<u8> {
    let hex = CAPTURES[i].1;
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("capture hex"))
        .collect()
}

fn rooms(list: &[sockeye_broker::Room]) -> Vec<&str> {
    list.iter().map(sockeye_broker::Room::as_str).collect()
}

#[test]
fn captured_broadcasts_decode_and_reencode_byte_for_byte() {
    let ch = ClassicChannels::new("socket.io", "/", "me");
    // (room of the channel, packet data, rooms, except, attachments)
    type Expected<'a> = (&'a str, &'a str, Vec<&'a str>, Vec<&'a str>, usize);
    let expected: [Expected<'_>; 4] = [
        ("room1", r#"["hello","world"]"#, vec!["room1"], vec![], 0),
        ("", r#"["hello",1]"#, vec![], vec![], 0),
        (
            "",
            r#"["hello",{"n":1.5}]"#,
            vec!["room1", "room2"],
            vec!["znXshpzdjX_EjPpvAAAB"],
            0,
        ),
        (
            "room1",
            r#"["bin",{"bin":{"_placeholder":true,"num":0}}]"#,
            vec!["room1"],
            vec![],
            1,
        ),
    ];
    for (i, (room, data, to, except, attachments)) in expected.into_iter().enumerate() {
        assert_eq!(ch.room_of(CAPTURES[i].0), Some(room), "capture {i}");
        let raw = bytes(i);
        let b = Broadcast::decode(&raw).expect("decodes");
        assert_eq!(b.uid, "TwWcx3");
        assert_eq!(b.nsp, "/");
        assert_eq!(b.packet.data().as_str(), data, "capture {i}");
        assert_eq!(b.packet.attachments().len(), attachments);
        assert_eq!(rooms(&b.opts.selector.rooms), to);
        assert_eq!(rooms(&b.opts.selector.except), except);
        assert_eq!(b.opts.flags, sockeye_broker::BroadcastFlags::default());
        assert_eq!(ch.broadcast_channel(&b.opts.selector.rooms), CAPTURES[i].0);
        assert_eq!(b.encode().expect("encodes"), raw, "capture {i} re-encoded");
    }
    let b = Broadcast::decode(&bytes(3)).expect("decodes");
    assert_eq!(b.packet.attachments()[0].as_ref(), &[1, 2, 3]);
}

#[test]
fn captured_requests_decode_and_reencode_byte_for_byte() {
    for i in [4, 7, 9, 11, 12, 13, 14, 15] {
        assert_eq!(CAPTURES[i].0, "socket.io-request#/#");
        let raw = bytes(i);
        let request = Request::decode(&raw).unwrap_or_else(|e| panic!("capture {i}: {e}"));
        assert_eq!(request.uid(), "TwWcx3");
        assert_eq!(
            request.encode().expect("encodes"),
            raw,
            "capture {i} re-encoded"
        );
    }
    match Request::decode(&bytes(4)).expect("broadcast with ack") {
        Request::BroadcastWithAck {
            request_id,
            nsp,
            packet,
            opts,
            ..
        } => {
            assert_eq!(request_id, "m_00ZV");
            assert_eq!(nsp, "/");
            assert_eq!(packet.data().as_str(), r#"["question","q"]"#);
            assert_eq!(rooms(&opts.selector.rooms), ["room1"]);
            assert_eq!(opts.flags.timeout, Some(Duration::from_millis(2000)));
        }
        other => panic!("{other:?}"),
    }
    match Request::decode(&bytes(7)).expect("fetch") {
        Request::RemoteFetch {
            request_id,
            selector,
            ..
        } => {
            assert_eq!(request_id, "oJ06iI");
            assert_eq!(rooms(&selector.rooms), ["room1"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Request::decode(&bytes(9)).expect("all rooms"),
        Request::AllRooms { request_id, .. } if request_id == "Q2g5p5"
    ));
    match Request::decode(&bytes(11)).expect("join") {
        Request::RemoteJoin {
            selector, rooms: r, ..
        } => {
            assert_eq!(rooms(&selector.rooms), ["room1"]);
            assert_eq!(rooms(&r), ["room3"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Request::decode(&bytes(12)).expect("leave"),
        Request::RemoteLeave { .. }
    ));
    assert!(matches!(
        Request::decode(&bytes(13)).expect("disconnect"),
        Request::RemoteDisconnect { close: false, .. }
    ));
    match Request::decode(&bytes(14)).expect("server-side emit") {
        Request::ServerSideEmit {
            request_id, event, ..
        } => {
            assert_eq!(request_id, None);
            assert_eq!(event.event, "cluster:note");
            assert_eq!(event.args, [json!({"from": "A", "payload": "p"})]);
        }
        other => panic!("{other:?}"),
    }
    match Request::decode(&bytes(15)).expect("server-side emit with ack") {
        Request::ServerSideEmit { request_id, .. } => {
            assert_eq!(request_id.as_deref(), Some("PXyg7Z"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn captured_answers_decode_and_reencode() {
    let answer = |i: usize, kind: ResponseKind| {
        assert_eq!(CAPTURES[i].0, "socket.io-response#/#");
        let frame = ResponseFrame::decode(&bytes(i)).expect("frame");
        frame.into_response(kind).expect("answer")
    };

    let count = answer(5, ResponseKind::BroadcastAck);
    assert!(
        matches!(&count, Response::ClientCount { request_id, client_count: 1 } if request_id == "m_00ZV")
    );
    assert_eq!(count.encode().expect("encodes"), bytes(5));

    let ack = answer(6, ResponseKind::BroadcastAck);
    match &ack {
        Response::BroadcastAck { request_id, answer } => {
            assert_eq!(request_id, "m_00ZV");
            assert_eq!(answer.data.as_str(), r#"["answer-from-b1"]"#);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ack.encode().expect("encodes"), bytes(6));

    let fetch = answer(8, ResponseKind::Fetch);
    match &fetch {
        Response::Fetch {
            request_id,
            sockets,
        } => {
            assert_eq!(request_id, "oJ06iI");
            assert_eq!(sockets.len(), 1);
            let s = &sockets[0];
            assert_eq!(s.id.as_str(), "8C7vz8dHRIy8Ds7dAAAA");
            assert_eq!(rooms(&s.rooms), ["8C7vz8dHRIy8Ds7dAAAA", "room1", "room2"]);
            assert_eq!(s.data, json!({"name": "b1", "node": "B"}));
            assert_eq!(s.handshake.issued, 1_795_733_100_014);
            assert_eq!(s.handshake.url, "/socket.io/?EIO=4&transport=websocket");
            assert_eq!(s.handshake.auth, json!({"name": "b1"}));
        }
        other => panic!("{other:?}"),
    }
    // Node's fetch answer shape; header order inside `headers` is not kept, so compare as JSON.
    let ours: serde_json::Value =
        serde_json::from_slice(&fetch.encode().expect("encodes")).unwrap();
    let node: serde_json::Value = serde_json::from_slice(&bytes(8)).unwrap();
    assert_eq!(ours, node);

    let all = answer(10, ResponseKind::AllRooms);
    match &all {
        Response::AllRooms { rooms: r, .. } => assert_eq!(r.len(), 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(all.encode().expect("encodes"), bytes(10));

    let emit = answer(16, ResponseKind::ServerSideEmit);
    match &emit {
        Response::ServerSideEmit { request_id, data } => {
            assert_eq!(request_id, "PXyg7Z");
            assert_eq!(data, &json!({"node": "B", "from": "A"}));
        }
        other => panic!("{other:?}"),
    }
    // `data` goes through serde_json::Value (sorted keys): same JSON, maybe another key order.
    let ours: serde_json::Value = serde_json::from_slice(&emit.encode().expect("encodes")).unwrap();
    let node: serde_json::Value = serde_json::from_slice(&bytes(16)).unwrap();
    assert_eq!(ours, node);
}

#[test]
fn legacy_requests_and_answers_have_node_shape() {
    let join = br#"{"uid":"abc","requestId":"r1","type":2,"sid":"S","room":"R"}"#;
    let request = Request::decode(join).expect("legacy join");
    assert!(
        matches!(&request, Request::LegacyJoin { sid, room, .. } if sid == "S" && room.as_str() == "R")
    );
    assert_eq!(request.encode().unwrap(), join);
    let disconnect = br#"{"uid":"abc","requestId":"r2","type":4,"sid":"S","close":true}"#;
    let request = Request::decode(disconnect).expect("legacy disconnect");
    assert!(matches!(
        request,
        Request::LegacyDisconnect { close: true, .. }
    ));
    assert_eq!(request.encode().unwrap(), disconnect);
    let sockets = br#"{"uid":"abc","requestId":"r3","type":0,"rooms":["a"]}"#;
    assert_eq!(Request::decode(sockets).unwrap().encode().unwrap(), sockets);
    let answer = ResponseFrame::decode(br#"{"requestId":"r1"}"#).unwrap();
    let answer = answer.into_response(ResponseKind::Legacy).unwrap();
    assert_eq!(answer.encode().unwrap(), br#"{"requestId":"r1"}"#);
    assert!(Request::decode(br#"{"uid":"a","type":42}"#).is_err());
    assert!(Request::decode(b"{nope").is_err());
}
