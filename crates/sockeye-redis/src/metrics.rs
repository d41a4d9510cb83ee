//! Counters of the Redis runtime, shared by the connection layer and the adapters, and the
//! snapshot [`RedisMetrics`] that `/metrics` reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (milliseconds) of the request latency histogram buckets; the last bucket is
/// everything above the last bound.
pub const LATENCY_BUCKETS_MS: [u64; 8] = [1, 2, 5, 10, 50, 100, 500, 1000];

/// The live counters (atomics; cheap to bump from any thread).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) published_bytes: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) received_bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) dropped_bytes: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) request_timeouts: AtomicU64,
    pub(crate) latency_sum_us: AtomicU64,
    pub(crate) latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    #[allow(
        dead_code,
        reason = "the classic adapter records its requests (next step)"
    )]
    /// Records one completed request (all answers in, or timed out) and its latency.
    pub(crate) fn record_request(&self, latency: Duration, timed_out: bool) {
        Self::add(&self.requests, 1);
        if timed_out {
            Self::add(&self.request_timeouts, 1);
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        let ms = us / 1000;
        let index = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms < *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        if let Some(bucket) = self.latency_buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, queued_bytes: usize) -> RedisMetrics {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RedisMetrics {
            published: load(&self.published),
            published_bytes: load(&self.published_bytes),
            received: load(&self.received),
            received_bytes: load(&self.received_bytes),
            dropped: load(&self.dropped),
            dropped_bytes: load(&self.dropped_bytes),
            decode_errors: load(&self.decode_errors),
            reconnects: load(&self.reconnects),
            requests: load(&self.requests),
            request_timeouts: load(&self.request_timeouts),
            request_latency_sum: Duration::from_micros(load(&self.latency_sum_us)),
            request_latency_buckets: std::array::from_fn(|i| {
                self.latency_buckets.get(i).map_or(0, load)
            }),
            queued_bytes,
        }
    }
}

/// A snapshot of the Redis runtime's counters (monotonic since [`crate::RedisCluster::connect`],
/// except `queued_bytes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisMetrics {
    /// Messages written to Redis (PUBLISH / SPUBLISH that Redis accepted).
    pub published: u64,
    /// Their payload bytes.
    pub published_bytes: u64,
    /// Messages received from Redis subscriptions (own echoes included).
    pub received: u64,
    /// Their payload bytes.
    pub received_bytes: u64,
    /// Outgoing messages dropped: the byte-sized queue was full (Redis slow or gone), or the
    /// connection died while they were being written.
    pub dropped: u64,
    /// Their bytes (channel name + payload).
    pub dropped_bytes: u64,
    /// Incoming messages that did not decode (logged and dropped).
    pub decode_errors: u64,
    /// Successful reconnections of the publisher or subscriber connection after a loss.
    pub reconnects: u64,
    /// Requests to other nodes that completed (fetchSockets, allRooms, serverSideEmit with ack).
    pub requests: u64,
    /// Of those, the ones that ended at their timeout without every answer.
    pub request_timeouts: u64,
    /// Sum of the requests' latencies.
    pub request_latency_sum: Duration,
    /// Request latency histogram: bucket `i` counts latencies below
    /// [`LATENCY_BUCKETS_MS`]`[i]` ms (and not below the previous bound); the last one the rest.
    pub request_latency_buckets: [u64; LATENCY_BUCKETS_MS.len() + 1],
    /// Bytes waiting in the outgoing queue now.
    pub queued_bytes: usize,
}
