//! A Redis cluster adapter for sockeye, wire-compatible with Node's `@socket.io/redis-adapter`
//! 8.3 in its classic (`createAdapter`, PUBLISH/PSUBSCRIBE) and sharded
//! (`createShardedAdapter`, SPUBLISH/SSUBSCRIBE) modes, so that sockeye nodes and Node
//! `socket.io` nodes on one Redis behave as one cluster.
//!
//! - [`connection`]: the process's publisher and subscriber connections (reconnect,
//!   exactly-once resubscription, a bounded byte-sized outgoing queue, readiness, NUMSUB).
//! - [`RedisConfig`], [`RedisMetrics`].

pub mod config;
pub mod connection;
pub mod metrics;
pub mod wire;

pub use config::{RedisConfig, RedisMode};
pub use connection::{
    Message, MessageHandler, PublishError, RedisConnection, RedisError, Subscription,
};
pub use metrics::RedisMetrics;

mod shard_pubsub;

pub use shard_pubsub::{ClusterPubSub, ClusterPubSubCounters, ShardHandler, ShardedPubSub};
