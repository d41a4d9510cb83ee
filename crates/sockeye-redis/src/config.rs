//! How a node reaches Redis: [`RedisConfig`].

use std::time::Duration;

/// Which protocol of `@socket.io/redis-adapter` the nodes speak (classic and sharded nodes
/// cannot share a cluster).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisMode {
    /// `createAdapter`: PUBLISH / PSUBSCRIBE, requests on a request channel (the default).
    #[default]
    Classic,
    /// `createShardedAdapter`: SPUBLISH / SSUBSCRIBE, dynamic per-room channels (Redis ≥ 7).
    Sharded,
}

/// Configuration of [`crate::RedisCluster`].
///
/// ```
/// use std::time::Duration;
/// use sockeye_redis::{RedisConfig, RedisMode};
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379")
///     .mode(RedisMode::Classic)
///     .key_prefix("socket.io")
///     .request_timeout(Duration::from_secs(5));
/// assert_eq!(config.max_queued_bytes, 64 * 1024 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Classic or sharded protocol.
    pub mode: RedisMode,
    /// Channel prefix (Node's `key` / `channelPrefix`), default `socket.io`.
    pub key_prefix: String,
    /// How long a request waits for other nodes' answers (Node's `requestsTimeout`), default 5 s.
    pub request_timeout: Duration,
    /// Bound of the outgoing queue in bytes (channel + payload); a message that does not fit is
    /// dropped and counted. Default 64 MiB.
    pub max_queued_bytes: usize,
    /// Largest incoming message accepted from Redis; larger ones are dropped and counted as
    /// decode errors. Default 16 MiB.
    pub max_message_bytes: usize,
    /// How long connecting to Redis may take before the attempt counts as failed. Default 2 s.
    pub connect_timeout: Duration,
    /// Interval of the liveness PING on an idle connection. Default 1 s.
    pub ping_interval: Duration,
    /// Longest pause between reconnection attempts (they start at 50 ms and double). Default 1 s.
    pub max_reconnect_delay: Duration,
    /// `url` names the seed nodes of a Redis Cluster (comma-separated `redis://host:port`),
    /// sharded mode only. Default `false` (one `redis-server`).
    pub cluster: bool,
}

impl RedisConfig {
    /// The defaults for Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            mode: RedisMode::Classic,
            key_prefix: "socket.io".to_owned(),
            request_timeout: Duration::from_millis(5000),
            max_queued_bytes: 64 * 1024 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            connect_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(1),
            max_reconnect_delay: Duration::from_secs(1),
            cluster: false,
        }
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: RedisMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the channel prefix.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the request timeout.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the outgoing queue bound in bytes.
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets the largest incoming message.
    #[must_use]
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets the liveness PING interval.
    #[must_use]
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Says whether `url` lists the seed nodes of a Redis Cluster (sharded mode).
    #[must_use]
    pub fn cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }

    /// Sets the longest pause between reconnection attempts.
    #[must_use]
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }
}
