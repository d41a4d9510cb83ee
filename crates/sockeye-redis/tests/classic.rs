//! The classic adapter on a real `redis-server`: three in-process nodes (each its own broker
//! and Redis connections) act as one cluster.
#![allow(clippy::unwrap_used, missing_docs)]

mod fake;
mod support;

use std::time::Duration;

use fake::{Client, Node, ack_id, all_ready, until};
use sockeye_broker::{Args, BrokerBuilder, ServerSideEmitError};
use support::redis::RedisServer;

/// Nodes whose `whoami` server-side listener answers with the node number.
fn answering(id: usize) -> impl FnOnce(BrokerBuilder) -> BrokerBuilder {
    move |builder| {
        builder.namespace("/", move |ns| {
            ns.on_server_event("whoami", move |_event, ack| {
                if let Some(ack) = ack {
                    ack.send(serde_json::json!(id));
                }
            })
        })
    }
}

async fn three_nodes(server: &RedisServer) -> (Node, Node, Node) {
    let url = server.url();
    let a = Node::start(&url, answering(0)).await;
    let b = Node::start(&url, answering(1)).await;
    let c = Node::start(&url, answering(2)).await;
    all_ready(&[&a, &b, &c]).await;
    (a, b, c)
}

/// Emits a marker from `from` to everybody and waits for it on each client: Redis keeps the
/// order of one publisher's messages, so whatever arrives before the marker is all there is.
async fn flush(from: &Node, clients: &[&Client]) -> Vec<Vec<String>> {
    from.ns().emit("marker", &0).await.unwrap();
    until_marker(clients).await
}

/// Collects each client's messages up to the `marker` event.
async fn until_marker(clients: &[&Client]) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for client in clients {
        let mut got = Vec::new();
        loop {
            let next = client.next_texts(1).await;
            let done = next.iter().any(|t| t.contains("\"marker\""));
            got.extend(next.into_iter().filter(|t| !t.contains("\"marker\"")));
            if done {
                break;
            }
        }
        all.push(got);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_broadcasts_reach_every_node_exactly_once() {
    let server = RedisServer::start();
    let (a, b, c) = three_nodes(&server).await;
    let ca = Client::connect(&a.broker);
    let cb = Client::connect(&b.broker);
    let cc = Client::connect(&c.broker);
    let cc_out = Client::connect(&c.broker);
    for client in [&ca, &cb, &cc] {
        client.socket.join("room");
    }
    cb.socket.join("second");
    assert_eq!(a.ns().server_count().await.unwrap(), 3);

    // One room: every member once, the non-member nothing.
    a.ns().to("room").emit("news", &1).await.unwrap();
    let got = flush(&a, &[&ca, &cb, &cc, &cc_out]).await;
    assert_eq!(got[0], [r#"42["news",1]"#]);
    assert_eq!(got[1], [r#"42["news",1]"#]);
    assert_eq!(got[2], [r#"42["news",1]"#]);
    assert!(got[3].is_empty(), "{:?}", got[3]);

    // Two rooms (the namespace channel): a socket in both gets one copy; except a remote
    // socket id.
    a.ns()
        .to("room")
        .to("second")
        .except(cc.id)
        .emit("multi", &2)
        .await
        .unwrap();
    let got = flush(&a, &[&ca, &cb, &cc, &cc_out]).await;
    assert_eq!(got[0], [r#"42["multi",2]"#]);
    assert_eq!(got[1], [r#"42["multi",2]"#]);
    assert!(got[2].is_empty() && got[3].is_empty());

    // To a socket id on another node; and `local` stays here.
    a.ns().to(cb.id).emit("direct", &3).await.unwrap();
    a.ns().local().emit("local-only", &4).await.unwrap();
    let got = flush(&a, &[&ca, &cb, &cc]).await;
    assert_eq!(got[0], [r#"42["local-only",4]"#]);
    assert_eq!(got[1], [r#"42["direct",3]"#]);
    assert!(got[2].is_empty());

    // Binary arguments cross as msgpack bins and come out as one BINARY_EVENT on each node.
    a.ns()
        .to("room")
        .emit_args(
            "bin",
            Args::new().binary(bytes::Bytes::from_static(b"\x01\x02\x03")),
        )
        .await
        .unwrap();
    let wait = |client: &Client| {
        let transport = client.transport.clone();
        async move {
            let mut got = Vec::new();
            for _ in 0..500 {
                got.extend(transport.take());
                if !got.is_empty() {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no binary message");
        }
    };
    let (ma, mb) = (wait(&ca).await, wait(&cb).await);
    assert_eq!(ma.len(), 1);
    assert_eq!(mb.len(), 1);
    assert_eq!(ma[0].text().unwrap(), mb[0].text().unwrap());
    assert!(
        mb[0].text().unwrap().starts_with("451-"),
        "{:?}",
        mb[0].text()
    );
    assert_eq!(mb[0].binaries(), ma[0].binaries());
    assert_eq!(&mb[0].binaries()[0][..], b"\x01\x02\x03");

    let metrics = a.cluster.metrics();
    assert!(metrics.published >= 5, "{metrics:?}");
    assert_eq!(metrics.dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_with_ack_collects_every_nodes_answers() {
    let server = RedisServer::start();
    let (a, b, c) = three_nodes(&server).await;
    let mut ca = Client::connect(&a.broker);
    let mut cb1 = Client::connect(&b.broker);
    let mut cb2 = Client::connect(&b.broker);
    let mut cc = Client::connect(&c.broker);

    let stream = a
        .ns()
        .broadcast()
        .timeout(Duration::from_secs(5))
        .emit_with_ack("vote", &"?")
        .await
        .unwrap();
    assert_eq!(stream.servers(), Some(3));
    for (n, client) in [&mut ca, &mut cb1, &mut cb2, &mut cc]
        .into_iter()
        .enumerate()
    {
        let text = client.next_texts(1).await.pop().unwrap();
        let id = ack_id(&text);
        client.text(&format!("3{id}[\"ok{n}\"]"));
    }
    let answers = stream.collect_all().await.unwrap();
    let mut values: Vec<String> = answers
        .iter()
        .map(|a| a.result.as_ref().unwrap().first::<String>().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["ok0", "ok1", "ok2", "ok3"]);
    assert_eq!(answers.iter().filter(|a| a.socket.is_some()).count(), 1);

    // One silent client: the stream ends at the one timeout with the partial answers.
    let stream = a
        .ns()
        .broadcast()
        .timeout(Duration::from_millis(800))
        .emit_with_ack("vote", &"?")
        .await
        .unwrap();
    for client in [&mut ca, &mut cb1, &mut cc] {
        let text = client.next_texts(1).await.pop().unwrap();
        client.text(&format!("3{}[\"ok\"]", ack_id(&text)));
    }
    let err = stream.collect_all().await.unwrap_err();
    assert_eq!(err.to_string(), "operation has timed out");
    assert_eq!(err.answers.len(), 3);
    assert_eq!(err.expected, 4);
    drop(cb2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_join_leave_disconnect_and_rooms_across_nodes() {
    let server = RedisServer::start();
    let (a, b, c) = three_nodes(&server).await;
    let ca = Client::connect(&a.broker);
    let cb = Client::connect(&b.broker);
    let cc = Client::connect(&c.broker);
    cb.socket.join("room");
    cc.socket.join("room");
    cb.socket
        .set_data(&serde_json::json!({ "user": "b" }))
        .unwrap();

    let fetched = a.ns().to("room").fetch_sockets().await.unwrap();
    assert!(fetched.is_complete());
    let mut ids: Vec<_> = fetched.value.iter().map(|s| s.id).collect();
    ids.sort();
    let mut expected = vec![cb.id, cc.id];
    expected.sort();
    assert_eq!(ids, expected);
    let remote = fetched.value.iter().find(|s| s.id == cb.id).unwrap();
    assert!(remote.local.is_none());
    assert_eq!(remote.data, serde_json::json!({ "user": "b" }));
    assert!(remote.in_room("room") && remote.in_room(cb.id.as_str()));
    assert_eq!(remote.handshake, cb.socket.handshake().to_data());
    assert_eq!(a.ns().fetch_sockets().await.unwrap().value.len(), 3);

    let rooms = a.ns().all_rooms().await.unwrap();
    assert!(rooms.is_complete());
    let names: Vec<&str> = rooms.value.iter().map(|r| r.as_str()).collect();
    assert!(names.contains(&"room"));
    for id in [ca.id, cb.id, cc.id] {
        assert!(names.contains(&id.as_str()), "{names:?}");
    }

    // socketsJoin / socketsLeave from A reach B's and C's sockets.
    a.ns().to("room").join("joined").await.unwrap();
    until("remote join", || {
        cb.socket.in_room("joined") && cc.socket.in_room("joined")
    })
    .await;
    assert!(!ca.socket.in_room("joined"));
    a.ns().to("joined").leave("room").await.unwrap();
    until("remote leave", || {
        !cb.socket.in_room("room") && !cc.socket.in_room("room")
    })
    .await;
    // Applied once locally, even though the request comes back from Redis.
    a.ns().broadcast().join("everyone").await.unwrap();
    assert!(ca.socket.in_room("everyone"));
    until("everyone", || cb.socket.in_room("everyone")).await;

    // disconnectSockets of a remote socket id.
    a.ns().to(cb.id).disconnect(false).await.unwrap();
    until("remote disconnect", || !cb.socket.connected()).await;
    assert!(cc.socket.connected() && ca.socket.connected());
    assert_eq!(b.ns().socket_count(), 0);
    a.ns().to(cc.id).disconnect(true).await.unwrap();
    until("remote close", || cc.transport.closed().is_some()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_reaches_other_nodes_with_answers() {
    let server = RedisServer::start();
    let (a, b, _c) = three_nodes(&server).await;
    let answers = a
        .ns()
        .server_side_emit_with_ack(
            "whoami",
            vec![serde_json::json!("?")],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    let mut answers: Vec<i64> = answers.iter().map(|v| v.as_i64().unwrap()).collect();
    answers.sort_unstable();
    assert_eq!(answers, [1, 2], "the sender's own listener is not asked");
    a.ns()
        .server_side_emit("whoami", vec![serde_json::json!("no ack")])
        .await
        .unwrap();
    let from_b = b
        .ns()
        .server_side_emit_with_ack("whoami", vec![], Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(from_b.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_times_out_and_a_closed_node_is_no_longer_counted() {
    let server = RedisServer::start();
    let url = server.url();
    let a = Node::start(&url, answering(0)).await;
    let b = Node::start(&url, answering(1)).await;
    // C is subscribed but its listener never answers.
    let c = Node::start(&url, |builder| {
        builder.namespace("/", |ns| ns.on_server_event("whoami", |_e, _ack| {}))
    })
    .await;
    all_ready(&[&a, &b, &c]).await;
    let err = a
        .ns()
        .server_side_emit_with_ack("whoami", vec![], Duration::from_millis(500))
        .await
        .unwrap_err();
    let ServerSideEmitError::Timeout { responses, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(responses, &[serde_json::json!(1)]);
    assert!(a.cluster.metrics().request_timeouts >= 1);

    // C's connection dies: the others stop counting it, requests complete among them.
    c.cluster.close().await;
    until_count(&a, 2).await;
    let answers = a
        .ns()
        .server_side_emit_with_ack("whoami", vec![], Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(answers, [serde_json::json!(1)]);
    let fetched = a.ns().fetch_sockets().await.unwrap();
    assert!(fetched.is_complete());
    drop(b);
}

async fn until_count(node: &Node, n: usize) {
    for _ in 0..500 {
        if node.ns().server_count().await.ok() == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server count did not become {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_resubscribes_once_and_broadcasts_resume() {
    let mut server = RedisServer::start();
    let port = server.port();
    let (a, b, c) = three_nodes(&server).await;
    let cb = Client::connect(&b.broker);
    let cc = Client::connect(&c.broker);
    cb.socket.join("room");
    cc.socket.join("room");
    assert_eq!(a.ns().server_count().await.unwrap(), 3);

    server.stop(); // SIGKILL: pub/sub state is gone
    until("nodes notice", || {
        !a.cluster.is_ready() && !b.cluster.is_ready()
    })
    .await;
    // Local delivery keeps working without Redis, and nothing blocks.
    let ca = Client::connect(&a.broker);
    ca.socket.join("room");
    a.ns().to("room").emit("offline", &0).await.unwrap();
    assert_eq!(ca.next_texts(1).await, [r#"42["offline",0]"#]);

    let _restarted = support_restart::Restarted::start(port);
    all_ready(&[&a, &b, &c]).await;
    assert_eq!(
        a.ns().server_count().await.unwrap(),
        3,
        "each node subscribed once"
    );
    for node in [&a, &b, &c] {
        assert!(node.cluster.metrics().reconnects >= 1);
    }
    a.ns().to("room").emit("after", &1).await.unwrap();
    let got = flush(&a, &[&cb, &cc]).await;
    // The offline broadcast may have been queued and sent after the reconnect, or dropped with
    // the dead connection; the new one arrives exactly once.
    for messages in got {
        assert_eq!(
            messages.iter().filter(|m| m.contains("\"after\"")).count(),
            1,
            "{messages:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emitter_reaches_every_node() {
    let server = RedisServer::start();
    let (a, b, _c) = three_nodes(&server).await;
    let ca = Client::connect(&a.broker);
    let cb = Client::connect(&b.broker);
    cb.socket.join("room");
    let emitter = sockeye_redis::Emitter::connect(fake::config(&server.url()))
        .await
        .unwrap();
    emitter.to("room").emit("from-emitter", &"hi").unwrap();
    emitter.emit("to-all", &1).unwrap();
    // The marker from the same publisher: it arrives after the emitter's messages.
    emitter.emit("marker", &0).unwrap();
    let got = until_marker(&[&ca, &cb]).await;
    assert_eq!(got[0], [r#"42["to-all",1]"#]);
    assert_eq!(got[1], [r#"42["from-emitter","hi"]"#, r#"42["to-all",1]"#]);
    emitter.to("room").sockets_join("vip").unwrap();
    until("emitter join", || cb.socket.in_room("vip")).await;
    assert!(!ca.socket.in_room("vip"));
    assert!(emitter.emit("disconnect", &1).is_err(), "reserved event");
    emitter.to(ca.id).disconnect_sockets(false).unwrap();
    until("emitter disconnect", || !ca.socket.connected()).await;
    // The emitter is not a server: it does not count.
    assert_eq!(a.ns().server_count().await.unwrap(), 3);
    emitter.close();
}

mod support_restart {
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    /// A `redis-server` restarted on the port of a killed one, stopped by PID.
    pub(crate) struct Restarted(Child);

    fn answers_ping(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        stream.write_all(b"PING\r\n").is_ok()
            && matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    impl Restarted {
        pub(crate) fn start(port: u16) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "sockeye-redis-restart-{}-{port}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server cannot run; install the redis-server package");
            let restarted = Self(child);
            for _ in 0..500 {
                if answers_ping(port) {
                    return restarted;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("redis-server did not restart on port {port}");
        }
    }

    impl Drop for Restarted {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_node_makes_requests_time_out_with_what_came() {
    let server = RedisServer::start();
    let url = server.url();
    let a = Node::start(&url, answering(0)).await;
    let b = Node::start(&url, answering(1)).await;
    all_ready(&[&a, &b]).await;
    let cb = Client::connect(&b.broker);
    // A "node" that is subscribed to the request channel but never answers (a stopped
    // process): a redis-cli subscriber.
    let mut stuck = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &server.port().to_string(),
            "SUBSCRIBE",
            "socket.io-request#/#",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli cannot run; install the redis-server package");
    until_count(&a, 3).await;
    let fetched = a.ns().fetch_sockets().await.unwrap();
    assert_eq!(fetched.missing_nodes, 1);
    assert_eq!(fetched.value.len(), 1);
    assert_eq!(fetched.value[0].id, cb.id);
    let rooms = a.ns().all_rooms().await.unwrap();
    assert_eq!(rooms.missing_nodes, 1);
    assert!(rooms.value.iter().any(|r| r.as_str() == cb.id.as_str()));
    let metrics = a.cluster.metrics();
    assert!(metrics.request_timeouts >= 2, "{metrics:?}");
    assert!(metrics.requests >= 2);
    stuck.kill().unwrap();
    stuck.wait().unwrap();
    until_count(&a, 2).await;
    assert!(a.ns().fetch_sockets().await.unwrap().is_complete());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_are_resubscribed_exactly_once() {
    let server = RedisServer::start();
    let (a, b, c) = three_nodes(&server).await;
    let cc = Client::connect(&c.broker);
    cc.socket.join("room");
    // Redis drops every subscriber connection (as on a failover or a network cut).
    server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    until("reconnected", || {
        [&a, &b, &c]
            .iter()
            .all(|n| n.cluster.metrics().reconnects >= 1 && n.cluster.is_ready())
    })
    .await;
    assert_eq!(a.ns().server_count().await.unwrap(), 3);
    let numsub = server.cli(&["PUBSUB", "NUMSUB", "socket.io-response#/#"]);
    assert!(numsub.trim_end().ends_with('3'), "{numsub}");
    a.ns().to("room").emit("again", &1).await.unwrap();
    let got = flush(&a, &[&cc]).await;
    assert_eq!(got[0], [r#"42["again",1]"#]);
}
