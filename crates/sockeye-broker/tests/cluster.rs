//! The adapter seam with more than one node: brokers joined by an in-process "bus" adapter
//! that does what a Redis adapter does over the network (ship the packet's data and
//! attachments, relay client counts and acks, merge fetches through their JSON descriptors,
//! answer server-side events), using only the public adapter API.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye_broker::adapter::{AckEvent, ServerAck, ServerAcks, ServerEvent};
use sockeye_broker::handler::BoxFuture;
use sockeye_broker::{
    AckSink, Adapter, AdapterError, AdapterFactory, BroadcastOptions, BroadcastPacket, Broker,
    LocalNamespace, Partial, Room, RoomChange, ServerSideEmitError, SocketInfo, SocketRef,
};
use support::Client;

/// Every node's local namespaces, by (node, namespace name): the "network".
type Bus = Arc<Mutex<HashMap<(usize, String), LocalNamespace>>>;

struct BusAdapter {
    node: usize,
    local: LocalNamespace,
    bus: Bus,
}

impl BusAdapter {
    fn factory(node: usize, bus: Bus) -> AdapterFactory {
        Arc::new(move |local: LocalNamespace| {
            bus.lock()
                .unwrap()
                .insert((node, local.name().to_owned()), local.clone());
            Arc::new(Self {
                node,
                local,
                bus: bus.clone(),
            }) as Arc<dyn Adapter>
        })
    }

    fn peers(&self) -> Vec<LocalNamespace> {
        let mut peers: Vec<(usize, LocalNamespace)> = self
            .bus
            .lock()
            .unwrap()
            .iter()
            .filter(|((node, name), _)| *node != self.node && name == self.local.name())
            .map(|((node, _), local)| (*node, local.clone()))
            .collect();
        peers.sort_by_key(|(node, _)| *node);
        peers.into_iter().map(|(_, local)| local).collect()
    }

    /// What crosses the wire: the data array and the attachments, rebuilt on the other side.
    fn ship(packet: &BroadcastPacket) -> BroadcastPacket {
        let data = sockeye_codec::Utf8Bytes::from(packet.data().as_str().to_owned());
        BroadcastPacket::new(data, packet.attachments().to_vec()).unwrap()
    }
}

impl Adapter for BusAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.broadcast(&packet, &opts);
        if !opts.flags.local {
            for peer in self.peers() {
                peer.broadcast(&Self::ship(&packet), &opts);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        sink: AckSink,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.broadcast_with_ack(&packet, &opts, &sink);
        if !opts.flags.local {
            for peer in self.peers() {
                // The remote node assigns its own ack id and relays its count and every answer
                // back, without socket ids (Node's BROADCAST_CLIENT_COUNT and BROADCAST_ACK).
                let (relay, mut rx) = AckSink::channel(sink.deadline());
                peer.broadcast_with_ack(&Self::ship(&packet), &opts, &relay);
                drop(relay);
                let origin = sink.clone();
                tokio::spawn(async move {
                    while let Some(event) = rx.recv().await {
                        match event {
                            AckEvent::ClientCount(n) => origin.client_count(n),
                            AckEvent::Answer(answer) => {
                                if let Ok(response) = answer.result {
                                    origin.remote_answer(response);
                                }
                            }
                            _ => {}
                        }
                    }
                });
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.add_sockets(&opts, &rooms);
        for peer in self.peers() {
            peer.add_sockets(&opts, &rooms);
        }
        Box::pin(async { Ok(()) })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets(&opts, &rooms);
        for peer in self.peers() {
            peer.del_sockets(&opts, &rooms);
        }
        Box::pin(async { Ok(()) })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.disconnect_sockets(&opts, close);
        for peer in self.peers() {
            peer.disconnect_sockets(&opts, close);
        }
        Box::pin(async { Ok(()) })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>> {
        let mut all = self.local.fetch_sockets(&opts);
        for peer in self.peers() {
            // Remote sockets cross as Node's JSON descriptors.
            let json = serde_json::to_string(&peer.fetch_sockets(&opts)).unwrap();
            all.extend(serde_json::from_str::<Vec<SocketInfo>>(&json).unwrap());
        }
        Box::pin(async { Ok(Partial::complete(all)) })
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Partial<Vec<Room>>, AdapterError>> {
        let mut rooms = self.local.all_rooms();
        for peer in self.peers() {
            rooms.extend(peer.all_rooms());
        }
        rooms.sort();
        rooms.dedup();
        Box::pin(async { Ok(Partial::complete(rooms)) })
    }

    fn server_side_emit(&self, event: ServerEvent) -> BoxFuture<'_, Result<(), AdapterError>> {
        for peer in self.peers() {
            peer.server_event(&event, None);
        }
        Box::pin(async { Ok(()) })
    }

    fn server_side_emit_with_ack(
        &self,
        event: ServerEvent,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ServerAcks, AdapterError>> {
        let peers = self.peers();
        let expected = peers.len();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for peer in peers {
            let tx = tx.clone();
            peer.server_event(
                &event,
                Some(ServerAck::new(move |value| {
                    let _ = tx.send(value);
                })),
            );
        }
        drop(tx);
        Box::pin(async move {
            let mut responses = Vec::new();
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            while responses.len() < expected {
                tokio::select! {
                    value = rx.recv() => match value {
                        Some(value) => responses.push(value),
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
            Ok(ServerAcks::new(responses, expected))
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        let count = self.peers().len() + 1;
        Box::pin(async move { Ok(count) })
    }
}

/// How a node's `whoami` listener answers.
#[derive(Clone, Copy)]
enum Answer {
    Now,
    Later,
    Never,
}

fn node_with(id: usize, bus: &Bus, answer: Answer) -> Broker {
    Broker::builder()
        .adapter(BusAdapter::factory(id, bus.clone()))
        .namespace("/", move |ns| {
            ns.on_server_event("whoami", move |event, ack| {
                assert_eq!(event.args, [serde_json::json!("?")]);
                let Some(ack) = ack else { return };
                match answer {
                    Answer::Now => ack.send(serde_json::json!(id)),
                    Answer::Later => {
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            ack.send(serde_json::json!(id));
                        });
                    }
                    Answer::Never => drop(ack),
                }
            })
        })
        .build()
}

fn node(id: usize, bus: &Bus) -> Broker {
    node_with(id, bus, Answer::Now)
}

fn connect(broker: &Broker) -> (Client, SocketRef) {
    let mut client = Client::open(broker);
    let id = client.connect("/");
    let socket = broker.namespace("/").unwrap().socket(id).unwrap();
    (client, socket)
}

fn ack_id_of(text: &str) -> u64 {
    text[2..].split('[').next().unwrap().parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn two_nodes_act_as_one() {
    let bus: Bus = Arc::default();
    let (a, b) = (node(0, &bus), node(1, &bus));
    let (ca, sa) = connect(&a);
    let (cb, sb) = connect(&b);
    sa.join("room");
    sb.join("room");
    let ns_a = a.namespace("/").unwrap();
    assert_eq!(ns_a.server_count().await.unwrap(), 2);

    // A broadcast from node A reaches node B's socket; each node encodes it for its clients.
    ns_a.to("room").emit("news", &1).await.unwrap();
    assert_eq!(ca.transport.texts(), [r#"42["news",1]"#]);
    assert_eq!(cb.transport.texts(), [r#"42["news",1]"#]);
    ns_a.local().emit("local-only", &1).await.unwrap();
    assert_eq!(ca.transport.take().len(), 1);
    assert!(cb.transport.take().is_empty());

    // Binary arguments cross as attachments and come out as one BINARY_EVENT on each node.
    ns_a.to("room")
        .emit_args(
            "bin",
            sockeye_broker::Args::new().binary(bytes::Bytes::from_static(b"\x01\x02")),
        )
        .await
        .unwrap();
    let (ma, mb) = (ca.transport.take(), cb.transport.take());
    assert_eq!(ma[0].text().unwrap(), mb[0].text().unwrap());
    assert!(mb[0].text().unwrap().starts_with("451-"));
    assert_eq!(mb[0].binaries(), ma[0].binaries());

    // `to(socket id)` finds a socket on the other node.
    ns_a.to(sb.id()).emit("direct", &2).await.unwrap();
    assert!(ca.transport.take().is_empty());
    assert_eq!(cb.transport.texts(), [r#"42["direct",2]"#]);

    // Fetch (remote sockets through their JSON descriptors), join and leave across nodes.
    sb.set_data(&serde_json::json!({ "user": "b" })).unwrap();
    let fetched = ns_a.to("room").fetch_sockets().await.unwrap().value;
    assert_eq!(fetched.len(), 2);
    let remote = fetched.iter().find(|s| s.id == sb.id()).unwrap();
    assert!(remote.local.is_none());
    assert_eq!(remote.data, serde_json::json!({ "user": "b" }));
    assert!(remote.in_room("room") && remote.in_room(sb.id().as_str()));
    assert_eq!(remote.handshake, sb.handshake().to_data());
    let own = fetched.iter().find(|s| s.id == sa.id()).unwrap();
    assert!(own.local.is_some());
    assert_eq!(own.data, serde_json::json!({}));
    let rooms = ns_a.all_rooms().await.unwrap().value;
    assert!(rooms.iter().any(|r| r.as_str() == "room"));
    assert!(rooms.iter().any(|r| r.as_str() == sb.id().as_str()));
    ns_a.to("room").join("second").await.unwrap();
    assert!(sb.in_room("second"));
    ns_a.to(sb.id()).disconnect(false).await.unwrap();
    assert!(!sb.connected());
    assert_eq!(b.namespace("/").unwrap().socket_count(), 0);

    // Server-side events reach the other node's listener, not this node's.
    ns_a.server_side_emit("whoami", vec![serde_json::json!("?")])
        .await
        .unwrap();
    let answers = ns_a
        .server_side_emit_with_ack(
            "whoami",
            vec![serde_json::json!("?")],
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(answers, [serde_json::json!(1)]);
}

#[tokio::test(start_paused = true)]
async fn broadcast_with_ack_aggregates_every_node_and_times_out_once() {
    let bus: Bus = Arc::default();
    let (a, b, c) = (node(0, &bus), node(1, &bus), node(2, &bus));
    let (mut ca, _sa) = connect(&a);
    let (mut cb1, _) = connect(&b);
    let (mut cb2, _) = connect(&b);
    let (mut cc, _) = connect(&c);
    let ns_a = a.namespace("/").unwrap();

    // Everybody answers: complete, one answer per client of every node.
    let stream = ns_a
        .broadcast()
        .timeout(Duration::from_secs(5))
        .emit_with_ack("vote", &"?")
        .await
        .unwrap();
    assert_eq!(stream.servers(), Some(3));
    assert_eq!(stream.expected(), 1, "this node's count is known at once");
    for client in [&mut ca, &mut cb1, &mut cb2, &mut cc] {
        let text = client.transport.texts().pop().unwrap();
        let id = ack_id_of(&text);
        client.text(&format!("3{id}[\"ok\"]")).unwrap();
    }
    let answers = stream.collect_all().await.unwrap();
    assert_eq!(answers.len(), 4);
    assert!(
        answers
            .iter()
            .all(|a| a.result.as_ref().unwrap().first::<String>().unwrap() == "ok")
    );
    assert_eq!(
        answers.iter().filter(|a| a.socket.is_some()).count(),
        1,
        "remote answers carry no socket id"
    );

    // One client of node B stays silent: one timeout for the whole broadcast, with the
    // partial answers, and no per-socket timeout item.
    let stream = ns_a
        .broadcast()
        .timeout(Duration::from_secs(2))
        .emit_with_ack("vote", &"?")
        .await
        .unwrap();
    for client in [&mut ca, &mut cb1, &mut cc] {
        let text = client.transport.texts().pop().unwrap();
        client
            .text(&format!("3{}[\"ok\"]", ack_id_of(&text)))
            .unwrap();
    }
    let started = tokio::time::Instant::now();
    let err = stream.collect_all().await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(err.to_string(), "operation has timed out");
    assert_eq!(err.answers.len(), 3);
    assert!(err.answers.iter().all(|a| a.result.is_ok()));
    assert_eq!(err.expected, 4);
    assert_eq!(err.missing_nodes, 0);
    // The silent client's ack is forgotten at the same deadline on its node.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(b.namespace("/").unwrap().pending_acks(), 0);
    drop(cb2);
}

#[tokio::test(start_paused = true)]
async fn server_side_emit_with_ack_waits_for_late_answers_and_reports_partial_ones() {
    let bus: Bus = Arc::default();
    let a = node(0, &bus);
    let _b = node_with(1, &bus, Answer::Later);
    let ns_a = a.namespace("/").unwrap();
    let answers = ns_a
        .server_side_emit_with_ack(
            "whoami",
            vec![serde_json::json!("?")],
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(
        answers,
        [serde_json::json!(1)],
        "an answer given later, from a task"
    );

    let _c = node_with(2, &bus, Answer::Never);
    let err = ns_a
        .server_side_emit_with_ack(
            "whoami",
            vec![serde_json::json!("?")],
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout reached: only 1 responses received out of 2"
    );
    let ServerSideEmitError::Timeout {
        responses,
        expected,
        ..
    } = err
    else {
        panic!("not a timeout: {err:?}");
    };
    assert_eq!((responses, expected), (vec![serde_json::json!(1)], 2));
}

#[tokio::test]
async fn the_room_lifecycle_hook_sees_first_and_last_members() {
    let changes: Arc<Mutex<Vec<RoomChange>>> = Arc::default();
    let log = changes.clone();
    let factory: AdapterFactory = Arc::new(move |local: LocalNamespace| {
        let log = log.clone();
        assert!(local.on_room_change(move |change| log.lock().unwrap().push(change.clone())));
        assert!(!local.on_room_change(|_| {}), "one hook per namespace");
        Arc::new(sockeye_broker::MemoryAdapter::new(local)) as Arc<dyn Adapter>
    });
    let broker = Broker::builder()
        .adapter(factory)
        .namespace("/", |ns| ns)
        .build();
    let (c1, s1) = connect(&broker);
    let (c2, s2) = connect(&broker);
    s1.join("r");
    s2.join("r");
    s1.leave("r");
    s2.leave("r");
    drop((c1, c2));
    let got = changes.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            RoomChange::SocketAdded(s1.id()),
            RoomChange::SocketAdded(s2.id()),
            RoomChange::Created(Room::new("r")),
            RoomChange::Deleted(Room::new("r")),
            RoomChange::SocketRemoved(s1.id()),
            RoomChange::SocketRemoved(s2.id()),
        ]
    );
}

#[tokio::test]
async fn removing_a_dynamic_namespace_closes_its_adapter() {
    struct Closing(
        sockeye_broker::MemoryAdapter,
        Arc<Mutex<Vec<String>>>,
        String,
    );
    impl Adapter for Closing {
        fn broadcast(
            &self,
            p: BroadcastPacket,
            o: BroadcastOptions,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.broadcast(p, o)
        }
        fn broadcast_with_ack(
            &self,
            p: BroadcastPacket,
            o: BroadcastOptions,
            s: AckSink,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.broadcast_with_ack(p, o, s)
        }
        fn add_sockets(
            &self,
            o: BroadcastOptions,
            r: Vec<Room>,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.add_sockets(o, r)
        }
        fn del_sockets(
            &self,
            o: BroadcastOptions,
            r: Vec<Room>,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.del_sockets(o, r)
        }
        fn disconnect_sockets(
            &self,
            o: BroadcastOptions,
            c: bool,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.disconnect_sockets(o, c)
        }
        fn fetch_sockets(
            &self,
            o: BroadcastOptions,
        ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>> {
            self.0.fetch_sockets(o)
        }
        fn all_rooms(&self) -> BoxFuture<'_, Result<Partial<Vec<Room>>, AdapterError>> {
            self.0.all_rooms()
        }
        fn server_side_emit(&self, e: ServerEvent) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.server_side_emit(e)
        }
        fn server_side_emit_with_ack(
            &self,
            e: ServerEvent,
            t: Duration,
        ) -> BoxFuture<'_, Result<ServerAcks, AdapterError>> {
            self.0.server_side_emit_with_ack(e, t)
        }
        fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
            self.0.server_count()
        }
        fn close(&self) {
            self.1.lock().unwrap().push(self.2.clone());
        }
    }
    let closed = Arc::new(Mutex::new(Vec::new()));
    let log = closed.clone();
    let factory: AdapterFactory = Arc::new(move |local: LocalNamespace| {
        let name = local.name().to_owned();
        Arc::new(Closing(
            sockeye_broker::MemoryAdapter::new(local),
            log.clone(),
            name,
        )) as Arc<dyn Adapter>
    });
    let broker = Broker::builder()
        .adapter(factory)
        .dynamic_namespace(sockeye_broker::NamespaceMatcher::glob("/d-*"), |ns| ns)
        .build();
    let mut client = Client::open(&broker);
    client.connect("/d-1");
    assert!(closed.lock().unwrap().is_empty());
    client.text("1/d-1,").unwrap();
    assert_eq!(*closed.lock().unwrap(), ["/d-1"]);
}
