//! Rooms and broadcasts: selection, exactly one copy, `to(socket id)`, except, flags, selector
//! operations, fetch, lifecycle events.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::{Arc, Mutex};

use sockeye_broker::{Broker, RoomEvent, SocketId, SocketRef};
use support::{Client, Mode};

fn broker() -> Broker {
    Broker::builder().namespace("/", |ns| ns).build()
}

/// `n` clients connected to `/`, with their socket handles.
fn clients(broker: &Broker, n: usize) -> Vec<(Client, SocketRef)> {
    let ns = broker.namespace("/").unwrap();
    (0..n)
        .map(|_| {
            let mut client = Client::open(broker);
            let id = client.connect("/");
            let socket = ns.socket(id).unwrap();
            (client, socket)
        })
        .collect()
}

fn received(clients: &[(Client, SocketRef)]) -> Vec<usize> {
    clients
        .iter()
        .map(|(c, _)| c.transport.take().len())
        .collect()
}

#[tokio::test]
async fn a_socket_in_several_target_rooms_gets_one_copy() {
    let broker = broker();
    let all = clients(&broker, 4);
    all[0].1.join(["a", "b", "c"]);
    all[1].1.join("a");
    all[2].1.join(["b", "c"]);
    let ns = broker.namespace("/").unwrap();
    ns.to(["a", "b"]).to("c").emit("x", &1).await.unwrap();
    assert_eq!(received(&all), [1, 1, 1, 0]);
}

#[tokio::test]
async fn to_socket_id_reaches_that_socket() {
    let broker = broker();
    let all = clients(&broker, 3);
    let ns = broker.namespace("/").unwrap();
    ns.to(all[1].1.id()).emit("direct", &"hi").await.unwrap();
    assert_eq!(received(&all), [0, 1, 0]);
    // From another socket, as the reference's `socket.to(id)`.
    all[0]
        .1
        .to(all[2].1.id())
        .emit("direct", &"hi")
        .await
        .unwrap();
    assert_eq!(received(&all), [0, 0, 1]);
    // A room and a socket id together: still one copy.
    all[2].1.join("r");
    ns.to(["r", all[2].1.id().as_str()])
        .emit("x", &0)
        .await
        .unwrap();
    assert_eq!(received(&all), [0, 0, 1]);
    assert_eq!(ns.room_size(all[2].1.id().as_str()), 1);
}

#[tokio::test]
async fn except_and_broadcast_from_a_socket() {
    let broker = broker();
    let all = clients(&broker, 4);
    all[0].1.join("r");
    all[1].1.join(["r", "muted"]);
    all[2].1.join("r");
    let ns = broker.namespace("/").unwrap();
    ns.to("r").except("muted").emit("x", &1).await.unwrap();
    assert_eq!(received(&all), [1, 0, 1, 0]);
    all[0].1.broadcast().emit("x", &1).await.unwrap();
    assert_eq!(received(&all), [0, 1, 1, 1], "everyone but the sender");
    all[0].1.to("r").emit("x", &1).await.unwrap();
    assert_eq!(received(&all), [0, 1, 1, 0], "the room but the sender");
    all[0].1.within("r").emit("x", &1).await.unwrap();
    assert_eq!(received(&all), [1, 1, 1, 0], "the room, sender included");
    ns.except(all[3].1.id()).emit("x", &1).await.unwrap();
    assert_eq!(received(&all), [1, 1, 1, 0]);
}

#[tokio::test]
async fn join_leave_and_rooms() {
    let broker = broker();
    let all = clients(&broker, 2);
    let s = &all[0].1;
    s.join(["b", "a"]);
    assert_eq!(
        s.rooms()
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect::<Vec<_>>(),
        [s.id().as_str(), "a", "b"]
    );
    assert!(s.in_room("a"));
    assert!(s.in_room(s.id().as_str()));
    s.leave("a");
    s.leave("never-joined");
    s.leave(s.id());
    assert!(!s.in_room("a"));
    assert!(
        s.in_room(s.id().as_str()),
        "a socket cannot leave its own room"
    );
    s.leave_all();
    assert_eq!(s.rooms().len(), 1);
    assert_eq!(broker.namespace("/").unwrap().room_count(), 0);
}

#[tokio::test]
async fn flags_reach_the_transport() {
    let broker = broker();
    let all = clients(&broker, 2);
    all[1].0.transport.set_mode(Mode::Busy);
    let ns = broker.namespace("/").unwrap();
    ns.broadcast()
        .volatile()
        .compress(false)
        .emit("x", &1)
        .await
        .unwrap();
    let sent = all[0].0.transport.take_with_flags();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.volatile);
    assert!(!sent[0].1.compress);
    assert_eq!(
        all[1].0.transport.sent_count(),
        0,
        "volatile dropped on a busy transport"
    );
    ns.broadcast().emit("x", &1).await.unwrap();
    assert_eq!(
        all[1].0.transport.sent_count(),
        1,
        "reliable messages are queued"
    );
    // A full queue never blocks the broadcast; the other recipients still get it.
    all[1].0.transport.set_mode(Mode::Full);
    ns.local().emit("x", &1).await.unwrap();
    assert_eq!(all[0].0.transport.take().len(), 2);
}

#[tokio::test]
async fn selector_operations_and_fetch_sockets() {
    let broker = broker();
    let all = clients(&broker, 3);
    all[0].1.join("a");
    all[1].1.join("a");
    all[0]
        .1
        .set_data(&serde_json::json!({"user": "ada"}))
        .unwrap();
    let ns = broker.namespace("/").unwrap();
    ns.to("a").join(["b", "c"]).await.unwrap();
    assert!(all[1].1.in_room("c"));
    ns.to("c").except(all[0].1.id()).leave("b").await.unwrap();
    assert!(all[0].1.in_room("b"));
    assert!(!all[1].1.in_room("b"));

    let fetched = ns.to("a").fetch_sockets().await.unwrap();
    assert_eq!(fetched.missing_nodes, 0);
    let mut ids: Vec<SocketId> = fetched.value.iter().map(|s| s.id).collect();
    ids.sort();
    let mut want = vec![all[0].1.id(), all[1].1.id()];
    want.sort();
    assert_eq!(ids, want);
    let info = fetched
        .value
        .iter()
        .find(|s| s.id == all[0].1.id())
        .unwrap();
    assert_eq!(info.data, serde_json::json!({ "user": "ada" }));
    assert_eq!(info.rooms.len(), 4);
    let local = info.local.as_ref().unwrap();
    assert_eq!(local.handshake().engine_sid(), "engine-sid");
    assert_eq!(info.handshake, local.handshake().to_data());
    assert_eq!(
        all[0].1.data::<serde_json::Value>().unwrap().unwrap()["user"],
        "ada"
    );

    ns.to("a").disconnect(false).await.unwrap();
    assert_eq!(ns.socket_count(), 1);
    assert_eq!(all[0].0.transport.texts(), ["41"]);
    ns.broadcast().disconnect(true).await.unwrap();
    assert_eq!(ns.socket_count(), 0);
    assert!(all[2].0.transport.closed().is_some());
    assert_eq!(ns.server_count().await.unwrap(), 1);
}

#[tokio::test]
async fn room_lifecycle_events_and_disconnecting_sees_rooms() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let rooms_at_disconnecting = Arc::new(Mutex::new(Vec::new()));
    let rooms_at_disconnect = Arc::new(Mutex::new(Vec::new()));
    let (e, before, after) = (
        events.clone(),
        rooms_at_disconnecting.clone(),
        rooms_at_disconnect.clone(),
    );
    let broker = Broker::builder()
        .namespace("/", move |ns| {
            ns.on_room_event(move |ns, event| {
                e.lock().unwrap().push((ns.to_owned(), event.clone()))
            })
            .on_disconnecting(
                move |socket: SocketRef, sockeye_broker::Rooms(rooms): sockeye_broker::Rooms| {
                    before.lock().unwrap().push(socket.rooms().len());
                    let before = before.clone();
                    async move {
                        tokio::task::yield_now().await;
                        // After the first await the socket has left, but the snapshot stays.
                        before.lock().unwrap().push(rooms.len());
                    }
                },
            )
            .on_disconnect(move |socket: SocketRef| {
                after.lock().unwrap().push(socket.rooms().len());
                std::future::ready(())
            })
        })
        .build();
    let mut client = Client::open(&broker);
    let id = client.connect("/");
    let socket = broker.namespace("/").unwrap().socket(id).unwrap();
    socket.join("r");
    client.text("1").unwrap();
    let events = events.lock().unwrap().clone();
    let kinds: Vec<RoomEvent> = events.iter().map(|(_, e)| e.clone()).collect();
    let r = sockeye_broker::Room::new("r");
    assert_eq!(
        kinds,
        [
            RoomEvent::Created(r.clone()),
            RoomEvent::Joined(r.clone(), id),
            RoomEvent::Left(r.clone(), id),
            RoomEvent::Deleted(r)
        ]
    );
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    assert_eq!(*rooms_at_disconnecting.lock().unwrap(), [2, 2]);
    assert_eq!(*rooms_at_disconnect.lock().unwrap(), [0]);
}
