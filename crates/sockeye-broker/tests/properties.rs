//! Whatever a client sends, in whatever order: no panic, and once the session ends nothing is
//! left behind (sockets, rooms, pending acks).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use proptest::prelude::*;
use sockeye_broker::{AckSender, Broker, Data, DisconnectReason, RawArgs, SocketRef};
use support::Client;

#[derive(Clone, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    ServerBroadcast,
    Advance(u64),
}

fn packet() -> impl Strategy<Value = String> {
    let templates = prop_oneof![
        Just(String::from("0")),
        Just(String::from("0/chat,")),
        Just(String::from(r#"0/chat,{"token":"x"}"#)),
        Just(String::from("0/nope,")),
        Just(String::from("1")),
        Just(String::from("1/chat,")),
        Just(String::from(r#"2["join","r1"]"#)),
        Just(String::from(r#"2/chat,["join","r2"]"#)),
        Just(String::from(r#"2["leave","r1"]"#)),
        Just(String::from(r#"21["echo",1,{"a":[true]}]"#)),
        Just(String::from(r#"2["shout","hi"]"#)),
        Just(String::from(r#"2["ask"]"#)),
        Just(String::from(r#"30[1]"#)),
        Just(String::from(r#"31[2]"#)),
        Just(String::from(r#"51-["echo",{"_placeholder":true,"num":0}]"#)),
        Just(String::from(
            r#"52-7["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        )),
        Just(String::from(r#"61-0[{"_placeholder":true,"num":0}]"#)),
        Just(String::from("4abc")),
        Just(String::from("2{}")),
        Just(String::from(r#"2abc["x"]"#)),
    ];
    prop_oneof![
        8 => templates,
        1 => "[0-6][-/0-9a-z,\\[\\]{}\":]{0,20}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => packet().prop_map(Op::Text),
        2 => prop::collection::vec(any::<u8>(), 0..4).prop_map(Op::Binary),
        1 => Just(Op::ServerBroadcast),
        1 => (0u64..3000).prop_map(Op::Advance),
    ]
}

fn broker() -> Broker {
    fn handlers(ns: sockeye_broker::NamespaceBuilder) -> sockeye_broker::NamespaceBuilder {
        ns.on(
            "join",
            async |socket: SocketRef, Data(room): Data<String>| socket.join(room),
        )
        .on(
            "leave",
            async |socket: SocketRef, Data(room): Data<String>| socket.leave(room),
        )
        .on(
            "echo",
            async |socket: SocketRef, RawArgs(args): RawArgs, ack: Option<AckSender>| match ack {
                Some(ack) => drop(ack.send_args(args)),
                None => drop(socket.emit_args("echo", args)),
            },
        )
        .on(
            "shout",
            async |socket: SocketRef, RawArgs(args): RawArgs| {
                let _ = socket.broadcast().emit_args("shout", args).await;
            },
        )
        .on("ask", async |socket: SocketRef| {
            if let Ok(ack) = socket
                .timeout(Duration::from_secs(1))
                .emit_with_ack("q", &1)
            {
                let _ = ack.await;
            }
        })
    }
    Broker::builder()
        .namespace("/", handlers)
        .namespace("/chat", handlers)
        .build()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_leaves_nothing_behind(
        sessions in prop::collection::vec(prop::collection::vec(op(), 0..30), 1..4)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let broker = broker();
            let mut clients: Vec<Client> = sessions.iter().map(|_| Client::open(&broker)).collect();
            let longest = sessions.iter().map(Vec::len).max().unwrap_or(0);
            for step in 0..longest {
                for (client, ops) in clients.iter_mut().zip(&sessions) {
                    let Some(op) = ops.get(step) else { continue };
                    match op {
                        Op::Text(text) => { let _ = client.text(text); }
                        Op::Binary(data) => {
                            let _ = client.conn.on_engine_binary(bytes::Bytes::from(data.clone()));
                        }
                        Op::ServerBroadcast => {
                            let ns = broker.namespace("/").unwrap();
                            let _ = ns.to("r1").emit("news", &1).await;
                        }
                        Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                    }
                }
            }
            for client in &mut clients {
                client.conn.on_engine_close(DisconnectReason::TransportClose);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            for name in ["/", "/chat"] {
                let ns = broker.namespace(name).unwrap();
                assert_eq!(ns.socket_count(), 0, "{name}");
                assert_eq!(ns.room_count(), 0, "{name}");
                assert_eq!(ns.pending_acks(), 0, "{name}");
            }
        });
    }
}
