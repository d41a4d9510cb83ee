//! What the server shows of a cluster adapter: `/readyz` turns 503 while the node is not
//! connected to the cluster, and `/metrics` exports the adapter's counters.
//!
//! The server knows a cluster adapter only through [`ClusterStatus`], so the HTTP side does not
//! depend on how the adapter reaches the other nodes. [`redis_config`] and the
//! [`ClusterMetrics`] conversion from [`RedisMetrics`] connect it to `sockeye-redis`.

use std::fmt;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use sockeye_redis::metrics::LATENCY_BUCKETS_MS;
use sockeye_redis::{RedisCluster, RedisConfig, RedisMetrics, RedisMode};

use crate::config::{ClusterSettings, RedisModeSetting};

/// The `sockeye-redis` configuration of the `--redis-*` settings.
///
/// ```
/// use sockeye_server::config::{NoEnv, Settings, SettingsArgs};
///
/// let mut args = SettingsArgs::default();
/// args.redis_url = Some("redis://127.0.0.1:6379".to_owned());
/// args.redis_key_prefix = Some("chat".to_owned());
/// let settings = Settings::resolve(args, &NoEnv).unwrap();
/// let config = sockeye_server::cluster::redis_config(settings.cluster.as_ref().unwrap());
/// assert_eq!(config.key_prefix, "chat");
/// assert_eq!(config.request_timeout, std::time::Duration::from_secs(5));
/// ```
pub fn redis_config(settings: &ClusterSettings) -> RedisConfig {
    let mode = match settings.mode {
        RedisModeSetting::Sharded => RedisMode::Sharded,
        _ => RedisMode::Classic,
    };
    RedisConfig::new(settings.redis_url.clone())
        .mode(mode)
        .key_prefix(settings.key_prefix.clone())
        .request_timeout(settings.request_timeout)
}

impl From<&RedisMetrics> for ClusterMetrics {
    fn from(m: &RedisMetrics) -> Self {
        let buckets = LATENCY_BUCKETS_MS
            .iter()
            .zip(m.request_latency_buckets.iter())
            .map(|(bound_ms, count)| {
                #[allow(clippy::cast_precision_loss, reason = "bounds are small integers")]
                let bound = *bound_ms as f64 / 1000.0;
                (bound, *count)
            })
            .collect();
        Self {
            published_messages: m.published,
            published_bytes: m.published_bytes,
            received_messages: m.received,
            received_bytes: m.received_bytes,
            dropped_messages: m.dropped,
            dropped_bytes: m.dropped_bytes,
            invalid_messages: m.decode_errors,
            queued_bytes: u64::try_from(m.queued_bytes).unwrap_or(u64::MAX),
            requests: m.requests,
            request_timeouts: m.request_timeouts,
            request_latency: LatencyHistogram::new(
                buckets,
                m.request_latency_sum.as_secs_f64(),
                m.request_latency_buckets.iter().sum(),
            ),
            reconnects: m.reconnects,
        }
    }
}

/// A cluster adapter's health and counters, read by `/readyz` and at every `/metrics` scrape.
///
/// ```
/// use sockeye_server::cluster::{ClusterMetrics, ClusterStatus};
///
/// struct AlwaysReady;
/// impl ClusterStatus for AlwaysReady {
///     fn is_ready(&self) -> bool { true }
///     fn metrics(&self) -> ClusterMetrics { ClusterMetrics::default() }
/// }
/// let server = sockeye_server::Server::builder()
///     .broker(sockeye_broker::Broker::builder().build())
///     .cluster(std::sync::Arc::new(AlwaysReady))
///     .build()
///     .unwrap();
/// # drop(server);
/// ```
pub trait ClusterStatus: Send + Sync + 'static {
    /// Whether this node is in the cluster: connected, and every subscription confirmed.
    /// `/readyz` answers 503 while it is not.
    fn is_ready(&self) -> bool;

    /// The adapter's counters now.
    fn metrics(&self) -> ClusterMetrics;
}

/// A snapshot of a cluster adapter's counters (all since the process started).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ClusterMetrics {
    /// Messages this node published to the other nodes.
    pub published_messages: u64,
    /// Their bytes.
    pub published_bytes: u64,
    /// Messages this node received from the cluster (Redis delivers a node's own broadcasts
    /// back to it; they are counted too).
    pub received_messages: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Outgoing messages dropped (the queue to Redis was full or Redis was gone).
    pub dropped_messages: u64,
    /// Their bytes.
    pub dropped_bytes: u64,
    /// Incoming messages that could not be decoded and were dropped.
    pub invalid_messages: u64,
    /// Bytes waiting in the outgoing queue now.
    pub queued_bytes: u64,
    /// Cluster requests this node sent (fetchSockets, allRooms, serverSideEmit with ack, ...).
    pub requests: u64,
    /// Those that ended at their timeout before every node answered.
    pub request_timeouts: u64,
    /// How long the requests took until complete (or timed out).
    pub request_latency: LatencyHistogram,
    /// Reconnections to the cluster's transport (Redis) after a lost connection.
    pub reconnects: u64,
}

/// A latency distribution: per-bucket counts, upper bounds in seconds ascending.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// `(upper bound in seconds, observations in this bucket)`; observations above the last
    /// bound are counted in `count` only (the `+Inf` bucket).
    pub buckets: Vec<(f64, u64)>,
    /// The sum of all observations, in seconds.
    pub sum_seconds: f64,
    /// How many observations.
    pub count: u64,
}

impl LatencyHistogram {
    /// A histogram of these buckets, sum and count.
    pub fn new(buckets: Vec<(f64, u64)>, sum_seconds: f64, count: u64) -> Self {
        Self {
            buckets,
            sum_seconds,
            count,
        }
    }
}

/// Where [`Metrics`](crate::metrics::Metrics) finds the cluster at scrape time; empty for a
/// node alone (no `sockeye_cluster_*` series then).
#[derive(Clone, Default)]
pub(crate) struct ClusterSlot(Arc<RwLock<Option<Arc<dyn ClusterStatus>>>>);

impl fmt::Debug for ClusterSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSlot")
            .field("set", &self.get().is_some())
            .finish()
    }
}

impl ClusterSlot {
    pub(crate) fn set(&self, status: Arc<dyn ClusterStatus>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status);
    }

    pub(crate) fn get(&self) -> Option<Arc<dyn ClusterStatus>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Collector for ClusterSlot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let Some(status) = self.get() else {
            return Ok(());
        };
        let m = status.metrics();
        let counters = [
            (
                "sockeye_cluster_published_messages",
                "Messages published to the other cluster nodes",
                m.published_messages,
            ),
            (
                "sockeye_cluster_published_bytes",
                "Bytes published to the other cluster nodes",
                m.published_bytes,
            ),
            (
                "sockeye_cluster_received_messages",
                "Messages received from the other cluster nodes",
                m.received_messages,
            ),
            (
                "sockeye_cluster_received_bytes",
                "Bytes received from the other cluster nodes",
                m.received_bytes,
            ),
            (
                "sockeye_cluster_dropped_messages",
                "Outgoing cluster messages dropped (queue full or Redis unavailable)",
                m.dropped_messages,
            ),
            (
                "sockeye_cluster_dropped_bytes",
                "Bytes of the dropped outgoing cluster messages",
                m.dropped_bytes,
            ),
            (
                "sockeye_cluster_invalid_messages",
                "Incoming cluster messages that could not be decoded (dropped)",
                m.invalid_messages,
            ),
            (
                "sockeye_cluster_requests",
                "Cluster requests sent (fetchSockets, allRooms, serverSideEmit with ack, ...)",
                m.requests,
            ),
            (
                "sockeye_cluster_request_timeouts",
                "Cluster requests that timed out before every node answered",
                m.request_timeouts,
            ),
            (
                "sockeye_cluster_reconnects",
                "Reconnections to Redis after a lost connection",
                m.reconnects,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let gauges = [
            (
                "sockeye_cluster_queued_bytes",
                "Bytes waiting in the outgoing queue to Redis",
                i64::try_from(m.queued_bytes).unwrap_or(i64::MAX),
            ),
            (
                "sockeye_cluster_ready",
                "1 while this node is connected to the cluster and subscribed, else 0",
                i64::from(status.is_ready()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        let mut buckets: Vec<(f64, u64)> = m.request_latency.buckets.clone();
        let in_buckets: u64 = buckets.iter().map(|(_, n)| n).sum();
        buckets.push((f64::MAX, m.request_latency.count.saturating_sub(in_buckets)));
        let mut metric = encoder.encode_descriptor(
            "sockeye_cluster_request_duration_seconds",
            "How long cluster requests took until every node answered or the timeout",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            m.request_latency.sum_seconds,
            m.request_latency.count,
            &buckets,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_metrics_map_onto_the_cluster_series() {
        let mut redis = RedisMetrics::default();
        redis.published = 3;
        redis.received_bytes = 10;
        redis.decode_errors = 1;
        redis.queued_bytes = 64;
        redis.request_latency_sum = std::time::Duration::from_millis(1500);
        // One request under 1 ms, one between 500 ms and 1 s, one above every bound.
        redis.request_latency_buckets[0] = 1;
        redis.request_latency_buckets[7] = 1;
        redis.request_latency_buckets[8] = 1;
        let m = ClusterMetrics::from(&redis);
        assert_eq!(m.published_messages, 3);
        assert_eq!(m.received_bytes, 10);
        assert_eq!(m.invalid_messages, 1);
        assert_eq!(m.queued_bytes, 64);
        assert_eq!(m.request_latency.count, 3);
        assert!((m.request_latency.sum_seconds - 1.5).abs() < 1e-9);
        assert_eq!(m.request_latency.buckets.len(), LATENCY_BUCKETS_MS.len());
        assert_eq!(m.request_latency.buckets[0], (0.001, 1));
        assert_eq!(m.request_latency.buckets[7], (1.0, 1));
    }
}

/// The Redis adapter's status for `/readyz` and `/metrics`.
#[derive(Clone, Debug)]
pub struct RedisStatus(pub RedisCluster);

impl ClusterStatus for RedisStatus {
    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    fn metrics(&self) -> ClusterMetrics {
        ClusterMetrics::from(&self.0.metrics())
    }
}
