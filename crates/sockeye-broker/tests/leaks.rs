//! No socket, room, ack or connection entry is left behind after many connect/disconnect
//! cycles, whichever way the socket goes.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use sockeye_broker::{Broker, DisconnectReason, SocketRef};
use support::Client;

#[tokio::test(start_paused = true)]
async fn ten_thousand_cycles_leave_nothing_behind() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.on_connect(async |socket: SocketRef| {
                socket.join(["lobby", "all"]);
                let room = format!("own-{}", socket.id());
                socket.join(room);
                // An ack that will never be answered, with a long timeout.
                let _ = socket
                    .timeout(Duration::from_secs(600))
                    .emit_with_ack("ping", &1);
            })
        })
        .namespace("/b", |ns| ns)
        .build();
    let ns = broker.namespace("/").unwrap();
    let b = broker.namespace("/b").unwrap();
    for i in 0..10_000 {
        let mut client = Client::open(&broker);
        client.connect("/");
        if i % 2 == 0 {
            client.connect("/b");
        }
        assert!(ns.pending_acks() >= 1);
        match i % 4 {
            0 => client.text("1").unwrap(),
            1 => client
                .conn
                .on_engine_close(DisconnectReason::TransportClose),
            2 => drop(client),
            _ => {
                let _ = client.text("4abc");
            }
        }
    }
    // Let the ack timer run once: nothing may be due, nothing may be left.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(ns.socket_count(), 0);
    assert_eq!(ns.room_count(), 0);
    assert_eq!(ns.pending_acks(), 0);
    assert_eq!(b.socket_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sessions_and_broadcasts_leave_nothing_behind() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.on_connect(async |socket: SocketRef| {
                socket.join(["lobby", "all"]);
            })
            .on("ask", async |socket: SocketRef| {
                if let Ok(ack) = socket
                    .timeout(Duration::from_millis(20))
                    .emit_with_ack("q", &1)
                {
                    let _ = ack.await;
                }
            })
        })
        .build();
    let ns = broker.namespace("/").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let broadcaster = {
        let ns = ns.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = ns.to(["lobby", "all"]).emit("news", &1).await;
                if let Ok(stream) = ns
                    .to("lobby")
                    .timeout(Duration::from_millis(10))
                    .emit_with_ack("poll", &1)
                    .await
                {
                    drop(stream);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let broker = broker.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    let mut client = Client::open(&broker);
                    client.connect("/");
                    let _ = client.text(r#"2["ask"]"#);
                    tokio::task::yield_now().await;
                    match (i + w) % 3 {
                        0 => drop(client.text("1")),
                        1 => client
                            .conn
                            .on_engine_close(DisconnectReason::TransportClose),
                        _ => drop(client),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    broadcaster.await.unwrap();
    // Let every ack deadline pass.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ns.socket_count(), 0);
    assert_eq!(ns.room_count(), 0);
    assert_eq!(ns.pending_acks(), 0);
}
