//! The sharded adapter on a real 3-master Redis Cluster (`redis-server --cluster-enabled yes`
//! nodes created with `redis-cli --cluster create`).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use sockeye_redis::{ClusterPubSub, ShardedPubSub};
use support::client::eventually;
use support::redis::{RedisClusterNodes, RedisServer};

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The support itself: three masters that share the 16384 slots, every one reachable, and
/// every process gone (stopped by its PID) once the cluster is dropped.
#[test]
fn a_three_master_cluster_starts_covers_every_slot_and_stops_by_pid() {
    let cluster = RedisClusterNodes::start(3);
    let pids: Vec<u32> = cluster.masters().iter().map(RedisServer::pid).collect();
    let info = cluster.masters()[0].cli(&["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    assert!(info.contains("cluster_known_nodes:3"), "{info}");
    // Channels spread over the masters: a cluster client must route them.
    let mut owners: Vec<u16> = (0..32)
        .map(|i| cluster.owner_of(&format!("socket.io#/#room{i}#")))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(
        owners.len(),
        3,
        "32 room channels should land on all 3 masters"
    );
    drop(cluster);
    for pid in pids {
        assert!(!process_exists(pid), "redis-server {pid} still runs");
    }
}

// ---- sharded pub/sub on the cluster ----

/// Shard channels on three different masters, two connections: every SSUBSCRIBE lands on the
/// owner of its channel's slot (and only there), SPUBLISH from the other connection reaches the
/// subscriber once per message, SHARDNUMSUB adds the masters up, SUNSUBSCRIBE is routed too, and
/// a full outgoing queue drops and counts instead of growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_pubsub_routes_shard_channels_to_their_owning_masters() {
    let cluster = RedisClusterNodes::start(3);
    let mut channels: Vec<(String, u16)> = Vec::new();
    for i in 0.. {
        let channel = format!("socket.io#/#room{i}#");
        let owner = cluster.owner_of(&channel);
        if channels.iter().all(|(_, o)| *o != owner) {
            channels.push((channel, owner));
        }
        if channels.len() == 3 {
            break;
        }
    }
    let seeds = cluster.urls();
    let timeout = Duration::from_secs(5);
    let p1 = ClusterPubSub::connect(&seeds[..1], 1 << 20, timeout)
        .await
        .unwrap();
    let p2 = ClusterPubSub::connect(&seeds[2..], 1 << 20, timeout)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (channel, _) in &channels {
        let tx = tx.clone();
        p1.ssubscribe(
            channel,
            Arc::new(move |ch: &str, payload: bytes::Bytes| {
                let _ = tx.send((ch.to_owned(), payload));
            }),
        );
    }
    p2.ssubscribe(&channels[0].0, Arc::new(|_: &str, _: bytes::Bytes| {}));
    eventually("both connections' subscriptions confirmed", || {
        p1.is_ready() && p2.is_ready()
    })
    .await;
    assert_eq!(p1.shard_numsub(&channels[0].0).await.unwrap(), 2);
    assert_eq!(p2.shard_numsub(&channels[1].0).await.unwrap(), 1);
    for (channel, owner) in &channels {
        for master in cluster.masters() {
            let here = master.shard_numsub(channel);
            let expected = match (master.port() == *owner, channel == &channels[0].0) {
                (false, _) => 0,
                (true, true) => 2,
                (true, false) => 1,
            };
            assert_eq!(here, expected, "{channel} on master {}", master.port());
        }
    }

    for round in 0..3 {
        for (channel, _) in &channels {
            p2.spublish(channel, format!("{channel}:{round}").into_bytes())
                .unwrap();
        }
    }
    let mut got = Vec::new();
    while got.len() < 9 {
        let (channel, payload) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("every published message arrives")
            .unwrap();
        got.push(format!("{channel}={}", String::from_utf8_lossy(&payload)));
    }
    // Per channel, in publishing order.
    for (channel, _) in &channels {
        let mine: Vec<&String> = got
            .iter()
            .filter(|g| g.starts_with(channel.as_str()))
            .collect();
        let expected: Vec<String> = (0..3).map(|r| format!("{channel}={channel}:{r}")).collect();
        assert_eq!(mine.len(), 3);
        assert!(mine.iter().zip(&expected).all(|(a, b)| *a == b), "{mine:?}");
    }
    // The counter moves when the publish command completes, which may be after delivery.
    eventually("the publisher counts its 9 messages", || {
        p2.counters().published == 9
    })
    .await;

    p1.sunsubscribe(&channels[1].0);
    eventually("the unsubscribed channel is gone from its master", || {
        cluster
            .masters()
            .iter()
            .all(|m| m.shard_numsub(&channels[1].0) == 0)
    })
    .await;
    assert_eq!(p1.shard_numsub(&channels[1].0).await.unwrap(), 0);

    let tiny = ClusterPubSub::connect(&seeds, 64, timeout).await.unwrap();
    assert!(tiny.spublish(&channels[0].0, vec![0; 100]).is_err());
    assert_eq!(tiny.counters().dropped, 1);
    assert_eq!(
        tiny.counters().dropped_bytes,
        (channels[0].0.len() + 100) as u64
    );
    for p in [p1, p2, tiny] {
        p.close();
    }
}
