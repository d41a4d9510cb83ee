//! WebSocket sessions: echo, invalid input, limits, frames, close handshake.
#![allow(clippy::unwrap_used)]

use std::num::NonZeroUsize;

use sockeye_codec::Outgoing;
use sockeye_engine::{CloseReason, EngineConfig, Transport};
use sockeye_tests::eio::{Mode, RawWs, Seen, TestServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn echo_text_and_binary() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (mut ws, open) = server.websocket().await;
    ws.send_text("4hello").await;
    assert_eq!(ws.recv_text().await, "4hello");
    ws.send_binary(&[1, 2, 3, 4]).await;
    match ws.recv().await {
        Some(Message::Binary(data)) => assert_eq!(&data[..], &[1, 2, 3, 4]),
        other => panic!("{other:?}"),
    }
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.session(sid).transport(), Transport::WebSocket);
}

#[tokio::test]
async fn a_large_message_crosses_intact() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (mut ws, _) = server.websocket().await;
    let big = format!("4{}", "z".repeat(500_000));
    ws.send_text(&big).await;
    assert_eq!(ws.recv_text().await, big);
}

#[tokio::test]
async fn invalid_packet_closes_the_session() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (mut ws, open) = server.websocket().await;
    ws.send_text("abc").await;
    assert!(ws.closed().await.is_some());
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::ParseError);
}

#[tokio::test]
async fn close_packet_closes_the_socket() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (mut ws, open) = server.websocket().await;
    ws.send_text("1").await;
    assert_eq!(ws.closed().await, Some(1000));
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::TransportClose);
}

#[tokio::test]
async fn client_close_frame_is_answered() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (mut ws, open) = server.websocket().await;
    ws.ws.close(None).await.unwrap();
    assert!(ws.recv().await.is_none() || ws.recv().await.is_none());
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::TransportClose);
}

#[tokio::test]
async fn dropped_connection_closes_the_session() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let (ws, open) = server.websocket().await;
    drop(ws);
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::TransportClose);
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let config = EngineConfig::default().max_payload(NonZeroUsize::new(1000).unwrap());
    let server = TestServer::spawn(config).await;
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    let (_, open) = raw.read_frame().await.unwrap();
    let open: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
    raw.send_frame(0x1, true, format!("4{}", "x".repeat(2000)).as_bytes())
        .await;
    assert_eq!(raw.close_code().await, Some(1009));
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::PayloadTooLarge);

    // Fragments add up to the same limit.
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    raw.read_frame().await.unwrap();
    raw.send_frame(0x1, false, "4".repeat(600).as_bytes()).await;
    raw.send_frame(0x0, true, "4".repeat(600).as_bytes()).await;
    assert_eq!(raw.close_code().await, Some(1009));
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    raw.read_frame().await.unwrap();
    raw.send_frame(0x1, true, b"4\xff\xfe").await;
    assert_eq!(raw.close_code().await, Some(1007));
}

#[tokio::test]
async fn fragments_with_a_ping_in_between() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    raw.read_frame().await.unwrap();
    raw.send_frame(0x1, false, b"4hel").await;
    raw.send_frame(0x9, true, b"are you there").await;
    raw.send_frame(0x0, true, b"lo").await;
    assert_eq!(
        raw.read_frame().await.unwrap(),
        (0xA, b"are you there".to_vec())
    );
    assert_eq!(raw.read_frame().await.unwrap(), (0x1, b"4hello".to_vec()));
}

#[tokio::test]
async fn protocol_violations_close_with_1002() {
    let server = TestServer::spawn(EngineConfig::default()).await;
    // An unmasked client frame.
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    raw.read_frame().await.unwrap();
    raw.send_raw(&[0x81, 0x02, b'4', b'x']).await;
    assert_eq!(raw.close_code().await, Some(1002));
    // An oversized control frame.
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    raw.read_frame().await.unwrap();
    raw.send_frame(0x9, true, &[0u8; 126]).await;
    assert_eq!(raw.close_code().await, Some(1002));
    // A continuation with nothing to continue.
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    raw.read_frame().await.unwrap();
    raw.send_frame(0x0, true, b"x").await;
    assert_eq!(raw.close_code().await, Some(1002));
}

#[tokio::test]
async fn one_message_many_recipients_same_bytes() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(server.websocket().await);
    }
    let message = Outgoing::message_text(r#"2["news","shared"]"#);
    for (_, open) in &clients {
        server
            .session(open["sid"].as_str().unwrap())
            .send(message.clone())
            .unwrap();
    }
    for (ws, _) in &mut clients {
        assert_eq!(ws.recv_text().await, r#"42["news","shared"]"#);
    }
}

#[tokio::test]
async fn binary_attachments_follow_their_text_frame() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let (mut ws, open) = server.websocket().await;
    let text =
        sockeye_codec::Utf8Bytes::from_static(r#"451-["file",{"_placeholder":true,"num":0}]"#);
    let message =
        Outgoing::from_encoded(text, vec![bytes::Bytes::from_static(&[9, 8, 7])]).unwrap();
    server
        .session(open["sid"].as_str().unwrap())
        .send(message)
        .unwrap();
    assert_eq!(
        ws.recv_text().await,
        r#"451-["file",{"_placeholder":true,"num":0}]"#
    );
    match ws.recv().await {
        Some(Message::Binary(data)) => assert_eq!(&data[..], &[9, 8, 7]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_side_close_sends_a_close_frame() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let (mut ws, open) = server.websocket().await;
    let sid = open["sid"].as_str().unwrap();
    let handle = server.session(sid);
    handle.send(Outgoing::message_text("bye")).unwrap();
    handle.close(CloseReason::ForcedClose);
    assert_eq!(ws.recv_text().await, "4bye");
    assert_eq!(ws.closed().await, Some(1000));
    assert!(
        server
            .seen()
            .contains(&Seen::Close(sid.to_owned(), CloseReason::ForcedClose))
    );
}

#[tokio::test]
async fn messages_reach_the_handler_in_order() {
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let (mut ws, open) = server.websocket().await;
    for i in 0..100 {
        ws.send_text(&format!("4m{i}")).await;
    }
    let sid = open["sid"].as_str().unwrap().to_owned();
    server
        .wait_for(
            "100 messages",
            |s| matches!(s, Seen::Message(_, m) if m == "m99"),
        )
        .await;
    let got: Vec<String> = server
        .seen()
        .into_iter()
        .filter_map(|s| match s {
            Seen::Message(id, m) if id == sid => Some(m),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected);
    let _ = WsClient::connect;
}

#[tokio::test]
async fn echoes_of_a_burst_come_back_in_order_with_pings_answered_on_the_way() {
    // Frames sent back to back arrive in few reads: the echoes made while handling one read
    // are written at its end, in one batch, behind the pongs of that read.
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Echo)
        .spawn()
        .await;
    let mut raw = RawWs::connect(server.addr, "EIO=4&transport=websocket").await;
    raw.read_frame().await.unwrap();
    for i in 0..300 {
        raw.send_frame(0x1, true, format!("4burst-{i}").as_bytes())
            .await;
        if i % 100 == 50 {
            raw.send_frame(0x9, true, b"still there?").await;
        }
    }
    let mut texts = Vec::new();
    // How many echoes had arrived when each pong did.
    let mut pongs = Vec::new();
    while texts.len() < 300 || pongs.len() < 3 {
        match raw.read_frame().await.unwrap() {
            (0x1, payload) => texts.push(String::from_utf8(payload).unwrap()),
            (0xA, payload) => {
                assert_eq!(payload, b"still there?");
                pongs.push(texts.len());
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let expected: Vec<String> = (0..300).map(|i| format!("4burst-{i}")).collect();
    assert_eq!(texts, expected);
    // Every pong went out before the echoes of the frames that followed its ping.
    assert_eq!(pongs.len(), 3);
    for (pong, ping_after) in pongs.iter().zip([50, 150, 250]) {
        assert!(
            *pong <= ping_after + 1,
            "pong after {pong} echoes: {pongs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_vanishing_mid_broadcast_harm_nobody_else() {
    // Direct writes meet reset and half-closed sockets while a broadcast runs: those sessions
    // end, the others get every message, in order.
    let server = TestServer::builder(EngineConfig::default())
        .mode(Mode::Record)
        .spawn()
        .await;
    let mut stay = Vec::new();
    let mut leave = Vec::new();
    for i in 0..40 {
        let (ws, open) = server.websocket().await;
        let sid = open["sid"].as_str().unwrap().to_owned();
        if i % 2 == 0 {
            stay.push((ws, sid));
        } else {
            leave.push((ws, sid));
        }
    }
    let handles: Vec<_> = stay
        .iter()
        .chain(leave.iter())
        .map(|(_, sid)| server.session(sid))
        .collect();
    let leaving: Vec<String> = leave.iter().map(|(_, sid)| sid.clone()).collect();
    let broadcaster = tokio::spawn(async move {
        for n in 0..200 {
            let message = Outgoing::message_text(&format!("{n:03}"));
            for handle in &handles {
                // A vanished client's session refuses (closed) or is still finding out: fine.
                let _ = handle.send(message.clone());
            }
            if n % 20 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    // Half of the clients go away without a close frame while messages flow.
    for (ws, _) in leave {
        drop(ws);
        tokio::task::yield_now().await;
    }
    broadcaster.await.unwrap();
    for (ws, _) in &mut stay {
        for n in 0..200 {
            assert_eq!(ws.recv_text().await, format!("4{n:03}"));
        }
    }
    for sid in &leaving {
        let reason = server.closed(sid).await;
        assert!(
            matches!(
                reason,
                CloseReason::TransportClose | CloseReason::TransportError
            ),
            "{sid}: {reason:?}"
        );
    }
    for (_, sid) in &stay {
        assert!(!server.session(sid).is_closed());
    }
}
