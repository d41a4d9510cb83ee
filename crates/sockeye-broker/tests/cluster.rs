//! The adapter seam with more than one node: two brokers joined by an in-process "bus" adapter
//! that does what a Redis adapter does over the network (ship the encoded frames, relay acks,
//! merge fetches), so the trait is exercised the way a remote implementation uses it.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye_broker::adapter::ServerEvent;
use sockeye_broker::handler::BoxFuture;
use sockeye_broker::{
    AckSink, Adapter, AdapterError, AdapterFactory, BroadcastOptions, Broker, LocalNamespace,
    Partial, Room, SocketInfo, SocketRef,
};
use sockeye_codec::Outgoing;
use sockeye_codec::socketio::AckId;
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
        self.bus
            .lock()
            .unwrap()
            .iter()
            .filter(|((node, name), _)| *node != self.node && name == self.local.name())
            .map(|(_, local)| local.clone())
            .collect()
    }

    /// What crosses the wire: the encoded text and attachments, rebuilt on the other side
    /// without re-encoding.
    fn ship(message: &Outgoing) -> Outgoing {
        let text = message.text().unwrap().clone();
        Outgoing::from_encoded(text, message.binaries().to_vec()).unwrap()
    }
}

impl Adapter for BusAdapter {
    fn broadcast(
        &self,
        message: Outgoing,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.broadcast(&message, &opts);
        if !opts.flags.local {
            for peer in self.peers() {
                peer.broadcast(&Self::ship(&message), &opts);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn broadcast_with_ack(
        &self,
        message: Outgoing,
        ack_id: AckId,
        opts: BroadcastOptions,
        timeout: Duration,
        sink: AckSink,
    ) -> BoxFuture<'_, Result<Partial<usize>, AdapterError>> {
        let deadline = tokio::time::Instant::now().into_std() + timeout;
        let mut count = self
            .local
            .broadcast_with_ack(&message, ack_id, &opts, deadline, &sink);
        for peer in self.peers() {
            // The remote node registers the same ack id and relays every answer back.
            let (relay, mut rx) = AckSink::channel();
            count +=
                peer.broadcast_with_ack(&Self::ship(&message), ack_id, &opts, deadline, &relay);
            let origin = sink.clone();
            tokio::spawn(async move {
                while let Some((socket, result)) = rx.recv().await {
                    origin.deliver(socket, result);
                }
            });
        }
        Box::pin(async move { Ok(Partial::complete(count)) })
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
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>> {
        let mut all = self.local.fetch_sockets(&opts);
        for peer in self.peers() {
            all.extend(peer.fetch_sockets(&opts).into_iter().map(|mut info| {
                info.local = None; // a remote socket has no local handle
                info
            }));
        }
        Box::pin(async { Ok(Partial::complete(all)) })
    }

    fn server_side_emit(
        &self,
        event: ServerEvent,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<Partial<Vec<serde_json::Value>>, AdapterError>> {
        let answers = self
            .peers()
            .iter()
            .filter_map(|p| p.server_event(&event))
            .collect();
        Box::pin(async { Ok(Partial::complete(answers)) })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        let count = self.peers().len() + 1;
        Box::pin(async move { Ok(count) })
    }
}

fn node(id: usize, bus: &Bus) -> Broker {
    Broker::builder()
        .adapter(BusAdapter::factory(id, bus.clone()))
        .namespace("/", move |ns| {
            ns.on_server_event("whoami", move |_| Some(serde_json::json!(id)))
        })
        .build()
}

fn connect(broker: &Broker) -> (Client, SocketRef) {
    let mut client = Client::open(broker);
    let id = client.connect("/");
    let socket = broker.namespace("/").unwrap().socket(id).unwrap();
    (client, socket)
}

#[tokio::test(start_paused = true)]
async fn two_nodes_act_as_one() {
    let bus: Bus = Arc::default();
    let (a, b) = (node(0, &bus), node(1, &bus));
    let (ca, sa) = connect(&a);
    let (mut cb, sb) = connect(&b);
    sa.join("room");
    sb.join("room");
    let ns_a = a.namespace("/").unwrap();
    assert_eq!(ns_a.server_count().await.unwrap(), 2);

    // A broadcast from node A reaches node B's socket, sharing A's encoding.
    ns_a.to("room").emit("news", &1).await.unwrap();
    let (ma, mb) = (ca.transport.take(), cb.transport.take());
    assert_eq!(ma[0].text().unwrap(), r#"42["news",1]"#);
    assert_eq!(
        ma[0].text().unwrap().as_bytes().as_ptr(),
        mb[0].text().unwrap().as_bytes().as_ptr()
    );
    ns_a.local().emit("local-only", &1).await.unwrap();
    assert_eq!(ca.transport.take().len(), 1);
    assert!(cb.transport.take().is_empty());

    // `to(socket id)` finds a socket on the other node.
    ns_a.to(sb.id()).emit("direct", &2).await.unwrap();
    assert!(ca.transport.take().is_empty());
    assert_eq!(cb.transport.texts(), [r#"42["direct",2]"#]);

    // Broadcast with ack: one id, answers relayed from node B.
    let stream = ns_a.to("room").emit_with_ack("vote", &"?").await.unwrap();
    assert_eq!(stream.expected(), 2);
    let text = cb.transport.texts().pop().unwrap();
    let id: u64 = text[2..].split('[').next().unwrap().parse().unwrap();
    cb.text(&format!("3{id}[\"from b\"]")).unwrap();
    let answers = stream.collect_all().await;
    assert_eq!(answers.len(), 2);
    let from_b = answers.iter().find(|(s, _)| *s == sb.id()).unwrap();
    assert_eq!(
        from_b.1.as_ref().unwrap().first::<String>().unwrap(),
        "from b"
    );
    let from_a = answers.iter().find(|(s, _)| *s == sa.id()).unwrap();
    assert!(from_a.1.is_err(), "A's client never answered: timeout");

    // Fetch, join and leave across nodes.
    let fetched = ns_a.to("room").fetch_sockets().await.unwrap().value;
    assert_eq!(fetched.len(), 2);
    assert!(fetched.iter().any(|s| s.id == sb.id() && s.local.is_none()));
    ns_a.to("room").join("second").await.unwrap();
    assert!(sb.in_room("second"));
    ns_a.to(sb.id()).disconnect(false).await.unwrap();
    assert!(!sb.connected());
    assert_eq!(b.namespace("/").unwrap().socket_count(), 0);

    // Server-side events reach the other node's listener.
    let answers = ns_a.server_side_emit("whoami", &()).await.unwrap();
    assert_eq!(answers.value, [serde_json::json!(1)]);
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
            m: Outgoing,
            o: BroadcastOptions,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.broadcast(m, o)
        }
        fn broadcast_with_ack(
            &self,
            m: Outgoing,
            id: AckId,
            o: BroadcastOptions,
            t: Duration,
            s: AckSink,
        ) -> BoxFuture<'_, Result<Partial<usize>, AdapterError>> {
            self.0.broadcast_with_ack(m, id, o, t, s)
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
            t: Duration,
        ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>> {
            self.0.fetch_sockets(o, t)
        }
        fn server_side_emit(
            &self,
            e: ServerEvent,
            t: Duration,
        ) -> BoxFuture<'_, Result<Partial<Vec<serde_json::Value>>, AdapterError>> {
            self.0.server_side_emit(e, t)
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
