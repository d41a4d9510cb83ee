//! The sharded adapter on a real 3-master Redis Cluster (`redis-server --cluster-enabled yes`
//! nodes created with `redis-cli --cluster create`).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

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
