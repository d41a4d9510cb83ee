//! A Redis cluster adapter for sockeye, wire-compatible with Node's `@socket.io/redis-adapter`
//! 8.3 in its classic (`createAdapter`, PUBLISH/PSUBSCRIBE) and sharded
//! (`createShardedAdapter`, SPUBLISH/SSUBSCRIBE) modes, so that sockeye nodes and Node
//! `socket.io` nodes on one Redis behave as one cluster.
//!
//! - [`RedisCluster`]: one per process; its [`adapter_factory`](RedisCluster::adapter_factory)
//!   goes into `sockeye_broker::BrokerBuilder::adapter`, [`is_ready`](RedisCluster::is_ready)
//!   into `/readyz`, [`metrics`](RedisCluster::metrics) into `/metrics`.
//! - [`Emitter`]: Node's `@socket.io/redis-emitter` for programs that are not servers.
//! - [`connection`]: the process's publisher and subscriber connections (reconnect,
//!   exactly-once resubscription, a bounded byte-sized outgoing queue, readiness, NUMSUB),
//!   shared by the classic and sharded adapters.
//! - [`wire`]: the sans-IO wire format (notepack msgpack, message types, channel names).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sockeye_broker::Broker;
//! use sockeye_redis::{RedisCluster, RedisConfig};
//!
//! let cluster = RedisCluster::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
//! let broker = Broker::builder()
//!     .adapter(cluster.adapter_factory())
//!     .namespace("/", |ns| ns)
//!     .build();
//! // Every node on this Redis (sockeye or Node) receives this broadcast's "room1" clients.
//! broker.namespace("/").unwrap().to("room1").emit("news", &"hello").await?;
//! assert!(cluster.is_ready());
//! println!("{:?}", cluster.metrics());
//! cluster.close().await;
//! # Ok(()) }
//! ```

mod classic;
pub mod config;
pub mod connection;
pub mod emitter;
pub mod metrics;
mod shard_pubsub;
pub mod wire;

pub use config::{RedisConfig, RedisMode};
pub use connection::{
    Message, MessageHandler, PublishError, RedisConnection, RedisError, Subscription,
};
pub use emitter::{EMITTER_UID, Emitter, EmitterError};
pub use metrics::RedisMetrics;
pub use shard_pubsub::{ClusterPubSub, ClusterPubSubCounters, ShardHandler, ShardedPubSub};

use sockeye_broker::AdapterFactory;

/// The process's link to the cluster: the Redis connections shared by every namespace's adapter.
#[derive(Clone, Debug)]
pub struct RedisCluster {
    connection: RedisConnection,
}

impl RedisCluster {
    /// Connects to Redis.
    ///
    /// # Errors
    /// [`RedisError::InvalidUrl`], [`RedisError::Connect`] when Redis is unreachable now,
    /// [`RedisError::Unsupported`] for a configuration this build cannot serve.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisError> {
        if config.mode != RedisMode::Classic || config.cluster {
            return Err(RedisError::Unsupported(
                "only classic mode on one redis-server is built so far",
            ));
        }
        Ok(Self {
            connection: RedisConnection::connect(config).await?,
        })
    }

    /// The adapter factory for `BrokerBuilder::adapter` (one adapter per namespace, in the
    /// configured mode).
    pub fn adapter_factory(&self) -> AdapterFactory {
        classic::factory(self.connection.clone())
    }

    /// Connected to Redis and every subscription confirmed (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        self.connection.is_ready()
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> RedisMetrics {
        self.connection.metrics()
    }

    /// The shared connection layer.
    pub fn connection(&self) -> &RedisConnection {
        &self.connection
    }

    /// An [`Emitter`] on this cluster's connection.
    pub fn emitter(&self) -> Emitter {
        Emitter::new(self.connection.clone())
    }

    /// Closes the connections; the adapters stop publishing (their operations then fail with
    /// `AdapterError::Closed` for the cluster part, local delivery goes on).
    #[allow(
        clippy::unused_async,
        reason = "public API: closing may await in a later version"
    )]
    pub async fn close(self) {
        self.connection.close();
    }
}
