//! The connection layer: one publisher and one subscriber connection to Redis per process,
//! shared by every namespace's adapter (classic and sharded).
//!
//! - Subscriptions (pattern, channel, shard channel) are registered with a handler
//!   ([`RedisConnection::subscribe`]); a supervisor task issues them on the subscriber
//!   connection, and on every new connection after a loss issues each registered one exactly
//!   once (only one subscriber connection exists at a time, so `PUBSUB NUMSUB` never counts this
//!   node twice).
//! - Publishing ([`RedisConnection::publish`], [`RedisConnection::spublish`]) never waits: the
//!   message goes into a bounded, byte-sized queue drained by the publisher task; when the queue
//!   is full (Redis slow or gone) the message is dropped and counted.
//! - [`RedisConnection::is_ready`]: both connections up and every subscription confirmed.
//! - [`RedisConnection::numsub`] / [`RedisConnection::shard_numsub`]: `PUBSUB NUMSUB` /
//!   `SHARDNUMSUB` on the publisher connection, bounded by the response timeout.
//!
//! Handlers run on the subscriber connection's reader task: they must not block or wait (call
//! `LocalNamespace`, enqueue a publish, spawn a task).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use tokio::sync::Notify;

use crate::config::RedisConfig;
use crate::metrics::{Counters, RedisMetrics};

/// Errors of the Redis runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL does not parse as a Redis URL.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// Redis could not be reached (at start, or for a command).
    #[error("cannot reach Redis: {0}")]
    Connect(String),
    /// There is no connection right now (a reconnection is under way).
    #[error("Redis is unavailable")]
    Unavailable,
    /// Redis answered a command with an error or an unexpected reply.
    #[error("Redis command failed: {0}")]
    Command(String),
    /// The connection layer was closed.
    #[error("the Redis connection was closed")]
    Closed,
    /// The configuration asks for something this build does not serve.
    #[error("unsupported Redis configuration: {0}")]
    Unsupported(&'static str),
}

/// What to subscribe to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Subscription {
    /// `PSUBSCRIBE pattern`.
    Pattern(String),
    /// `SUBSCRIBE channel`.
    Channel(String),
    /// `SSUBSCRIBE channel` (sharded pub/sub, Redis ≥ 7).
    Shard(String),
}

impl Subscription {
    fn subscribe_command(&self) -> redis::Cmd {
        let (name, arg) = match self {
            Self::Pattern(p) => ("PSUBSCRIBE", p),
            Self::Channel(c) => ("SUBSCRIBE", c),
            Self::Shard(c) => ("SSUBSCRIBE", c),
        };
        let mut cmd = redis::cmd(name);
        cmd.arg(arg.as_str());
        cmd
    }

    fn unsubscribe_command(&self) -> redis::Cmd {
        let (name, arg) = match self {
            Self::Pattern(p) => ("PUNSUBSCRIBE", p),
            Self::Channel(c) => ("UNSUBSCRIBE", c),
            Self::Shard(c) => ("SUNSUBSCRIBE", c),
        };
        let mut cmd = redis::cmd(name);
        cmd.arg(arg.as_str());
        cmd
    }
}

/// One message received on a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The channel it was published on (for a pattern subscription, the matching channel).
    pub channel: String,
    /// The payload.
    pub payload: Bytes,
}

/// The callback of one subscription. Runs on the connection's reader task: never block.
pub type MessageHandler = Arc<dyn Fn(Message) + Send + Sync>;

/// Why a message was not queued for publishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The outgoing queue is full (its byte bound): the message was dropped and counted.
    #[error("the outgoing Redis queue is full; message dropped")]
    QueueFull,
    /// The connection layer was closed.
    #[error("the Redis connection was closed")]
    Closed,
}

struct Outgoing {
    command: &'static str,
    channel: String,
    payload: Vec<u8>,
}

impl Outgoing {
    fn size(&self) -> usize {
        self.channel.len() + self.payload.len()
    }
}

struct Registry {
    handlers: HashMap<Subscription, MessageHandler>,
}

struct Shared {
    config: RedisConfig,
    client: redis::Client,
    counters: Arc<Counters>,
    registry: Mutex<Registry>,
    /// Subscriptions confirmed on the current subscriber connection.
    confirmed: Mutex<HashSet<Subscription>>,
    registry_changed: Notify,
    queue: Mutex<VecDeque<Outgoing>>,
    queued_bytes: AtomicUsize,
    queue_changed: Notify,
    publisher: Mutex<Option<MultiplexedConnection>>,
    /// Signalled when the current publisher connection is lost.
    publisher_lost: Mutex<Arc<Notify>>,
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
    closed: AtomicBool,
    close_signal: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The process's connections to Redis. Cheap to clone; every clone is the same connections.
#[derive(Clone)]
pub struct RedisConnection {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("ready", &self.is_ready())
            .field("queued_bytes", &self.queued_bytes())
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects the publisher and the subscriber and starts their supervisor tasks (on the
    /// current tokio runtime).
    ///
    /// # Errors
    /// [`RedisError::InvalidUrl`], or [`RedisError::Connect`] when Redis cannot be reached now
    /// (later losses are reconnected in the background).
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisError> {
        Self::connect_with_counters(config, Arc::new(Counters::default())).await
    }

    pub(crate) async fn connect_with_counters(
        config: RedisConfig,
        counters: Arc<Counters>,
    ) -> Result<Self, RedisError> {
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| RedisError::InvalidUrl(e.to_string()))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let client =
            redis::Client::open(info).map_err(|e| RedisError::InvalidUrl(e.to_string()))?;
        let shared = Arc::new(Shared {
            config,
            client,
            counters,
            registry: Mutex::new(Registry {
                handlers: HashMap::new(),
            }),
            confirmed: Mutex::new(HashSet::new()),
            registry_changed: Notify::new(),
            queue: Mutex::new(VecDeque::new()),
            queued_bytes: AtomicUsize::new(0),
            queue_changed: Notify::new(),
            publisher: Mutex::new(None),
            publisher_lost: Mutex::new(Arc::new(Notify::new())),
            publisher_up: AtomicBool::new(false),
            subscriber_up: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            close_signal: Notify::new(),
        });
        // Both first connections must succeed: a node that cannot reach Redis at start fails.
        let publisher = connect_publisher(&shared).await?;
        let (subscriber, lost) = connect_subscriber(&shared).await?;
        tokio::spawn(run_publisher(shared.clone(), Some(publisher)));
        tokio::spawn(run_subscriber(shared.clone(), Some((subscriber, lost))));
        Ok(Self { shared })
    }

    /// Registers `subscription` with its handler (replacing an earlier handler of the same
    /// subscription) and has it issued on the subscriber connection. Returns at once; the
    /// subscription counts as confirmed (see [`is_ready`](Self::is_ready)) when Redis confirmed
    /// it.
    pub fn subscribe(&self, subscription: Subscription, handler: MessageHandler) {
        lock(&self.shared.registry)
            .handlers
            .insert(subscription, handler);
        self.shared.registry_changed.notify_one();
    }

    /// Removes `subscription`; it is unsubscribed on the subscriber connection.
    pub fn unsubscribe(&self, subscription: &Subscription) {
        lock(&self.shared.registry).handlers.remove(subscription);
        self.shared.registry_changed.notify_one();
    }

    /// Whether `subscription` is confirmed on the current subscriber connection.
    pub fn is_subscribed(&self, subscription: &Subscription) -> bool {
        self.shared.subscriber_up.load(Ordering::Acquire)
            && lock(&self.shared.confirmed).contains(subscription)
    }

    /// Queues `PUBLISH channel payload`. Never waits.
    ///
    /// # Errors
    /// [`PublishError::QueueFull`] (dropped and counted) or [`PublishError::Closed`].
    pub fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), PublishError> {
        self.enqueue(Outgoing {
            command: "PUBLISH",
            channel,
            payload,
        })
    }

    /// Queues `SPUBLISH channel payload` (sharded pub/sub). Never waits.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub fn spublish(&self, channel: String, payload: Vec<u8>) -> Result<(), PublishError> {
        self.enqueue(Outgoing {
            command: "SPUBLISH",
            channel,
            payload,
        })
    }

    fn enqueue(&self, message: Outgoing) -> Result<(), PublishError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(PublishError::Closed);
        }
        let size = message.size();
        let mut queue = lock(&shared.queue);
        let queued = shared.queued_bytes.load(Ordering::Relaxed);
        if queued.saturating_add(size) > shared.config.max_queued_bytes {
            drop(queue);
            Counters::add(&shared.counters.dropped, 1);
            Counters::add(&shared.counters.dropped_bytes, size as u64);
            tracing::warn!(
                channel = %message.channel,
                size,
                "outgoing Redis queue full; message dropped"
            );
            return Err(PublishError::QueueFull);
        }
        shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
        queue.push_back(message);
        drop(queue);
        shared.queue_changed.notify_one();
        Ok(())
    }

    /// `PUBSUB NUMSUB channel`: how many connections are subscribed to `channel`.
    ///
    /// # Errors
    /// [`RedisError::Unavailable`] without a publisher connection, [`RedisError::Command`].
    pub async fn numsub(&self, channel: &str) -> Result<usize, RedisError> {
        self.count_subscribers("NUMSUB", channel).await
    }

    /// `PUBSUB SHARDNUMSUB channel` (on one server; a Redis Cluster sums the masters).
    ///
    /// # Errors
    /// As [`numsub`](Self::numsub).
    pub async fn shard_numsub(&self, channel: &str) -> Result<usize, RedisError> {
        self.count_subscribers("SHARDNUMSUB", channel).await
    }

    async fn count_subscribers(&self, what: &str, channel: &str) -> Result<usize, RedisError> {
        let mut connection = self.publisher()?;
        let reply: Value = redis::cmd("PUBSUB")
            .arg(what)
            .arg(channel)
            .query_async(&mut connection)
            .await
            .map_err(|e| {
                if e.is_unrecoverable_error() || e.is_io_error() {
                    lock(&self.shared.publisher_lost).notify_one();
                }
                RedisError::Command(e.to_string())
            })?;
        subscriber_count(&reply)
            .ok_or_else(|| RedisError::Command(format!("unexpected PUBSUB {what} reply")))
    }

    /// A clone of the current publisher connection, for other commands.
    ///
    /// # Errors
    /// [`RedisError::Unavailable`] while it is reconnecting, [`RedisError::Closed`].
    pub fn publisher(&self) -> Result<MultiplexedConnection, RedisError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(RedisError::Closed);
        }
        lock(&self.shared.publisher)
            .clone()
            .ok_or(RedisError::Unavailable)
    }

    /// Both connections are up and every registered subscription is confirmed on the current
    /// subscriber connection.
    pub fn is_ready(&self) -> bool {
        let shared = &self.shared;
        if !shared.publisher_up.load(Ordering::Acquire)
            || !shared.subscriber_up.load(Ordering::Acquire)
        {
            return false;
        }
        let registry = lock(&shared.registry);
        let confirmed = lock(&shared.confirmed);
        registry.handlers.keys().all(|s| confirmed.contains(s))
    }

    /// Bytes waiting in the outgoing queue.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> RedisMetrics {
        self.shared.counters.snapshot(self.queued_bytes())
    }

    #[allow(
        dead_code,
        reason = "the classic adapter records its requests (next step)"
    )]
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.shared.counters
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &RedisConfig {
        &self.shared.config
    }

    /// Stops both supervisor tasks and drops the connections (queued messages are dropped).
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.close_signal.notify_waiters();
        self.shared.queue_changed.notify_one();
        self.shared.registry_changed.notify_one();
        *lock(&self.shared.publisher) = None;
        self.shared.publisher_up.store(false, Ordering::Release);
        self.shared.subscriber_up.store(false, Ordering::Release);
    }
}

/// The count in a `PUBSUB NUMSUB ch` / `SHARDNUMSUB ch` reply (`[ch, n]`, or a map in RESP3).
fn subscriber_count(reply: &Value) -> Option<usize> {
    let count = match reply {
        Value::Array(items) => items.get(1)?,
        Value::Map(pairs) => &pairs.first()?.1,
        _ => return None,
    };
    match count {
        Value::Int(n) => usize::try_from(*n).ok(),
        _ => None,
    }
}

fn connection_config(shared: &Shared) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(shared.config.connect_timeout))
        .set_response_timeout(Some(shared.config.request_timeout))
}

async fn connect_publisher(shared: &Arc<Shared>) -> Result<MultiplexedConnection, RedisError> {
    let lost = Arc::new(Notify::new());
    let lost_signal = lost.clone();
    let sender = move |info: PushInfo| -> Result<(), ()> {
        if info.kind == PushKind::Disconnection {
            lost_signal.notify_one();
        }
        Ok(())
    };
    let connection = shared
        .client
        .get_multiplexed_async_connection_with_config(
            &connection_config(shared).set_push_sender(sender),
        )
        .await
        .map_err(|e| RedisError::Connect(e.to_string()))?;
    *lock(&shared.publisher_lost) = lost;
    *lock(&shared.publisher) = Some(connection.clone());
    shared.publisher_up.store(true, Ordering::Release);
    Ok(connection)
}

/// The subscriber connection and the signal of its loss.
async fn connect_subscriber(
    shared: &Arc<Shared>,
) -> Result<(MultiplexedConnection, Arc<Notify>), RedisError> {
    let lost = Arc::new(Notify::new());
    let weak = Arc::downgrade(shared);
    let lost_signal = lost.clone();
    let sender = move |info: PushInfo| -> Result<(), ()> {
        if info.kind == PushKind::Disconnection {
            lost_signal.notify_one();
            return Ok(());
        }
        if let Some(shared) = weak.upgrade() {
            dispatch(&shared, info);
        }
        Ok(())
    };
    let config = connection_config(shared).set_push_sender(sender);
    let connection = shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| RedisError::Connect(e.to_string()))?;
    lock(&shared.confirmed).clear();
    shared.subscriber_up.store(true, Ordering::Release);
    Ok((connection, lost))
}

fn bulk(value: Option<Value>) -> Option<Vec<u8>> {
    match value? {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// Hands one push message to the handler of its subscription (the payload is moved, not
/// copied).
fn dispatch(shared: &Shared, info: PushInfo) {
    let PushInfo { kind, data } = info;
    let mut data = data.into_iter();
    let pattern = if kind == PushKind::PMessage {
        let Some(pattern) = bulk(data.next()) else {
            return;
        };
        Some(pattern)
    } else if kind == PushKind::Message || kind == PushKind::SMessage {
        None
    } else {
        return;
    };
    let (Some(channel), Some(payload)) = (bulk(data.next()), bulk(data.next())) else {
        return;
    };
    let channel = String::from_utf8_lossy(&channel).into_owned();
    let subscription = match pattern {
        Some(pattern) => Subscription::Pattern(String::from_utf8_lossy(&pattern).into_owned()),
        None if kind == PushKind::Message => Subscription::Channel(channel.clone()),
        None => Subscription::Shard(channel.clone()),
    };
    Counters::add(&shared.counters.received, 1);
    Counters::add(&shared.counters.received_bytes, payload.len() as u64);
    if payload.len() > shared.config.max_message_bytes {
        Counters::add(&shared.counters.decode_errors, 1);
        tracing::warn!(%channel, size = payload.len(), "Redis message too large; dropped");
        return;
    }
    let handler = lock(&shared.registry).handlers.get(&subscription).cloned();
    if let Some(handler) = handler {
        handler(Message {
            channel,
            payload: Bytes::from(payload),
        });
    }
}

fn backoff(attempt: u32, max: Duration) -> Duration {
    let ms = 50u64.saturating_mul(1u64 << attempt.min(10));
    Duration::from_millis(ms).min(max)
}

/// Waits `delay` or until the layer is closed; false when closed.
async fn pause(shared: &Shared, delay: Duration) -> bool {
    if shared.closed.load(Ordering::Acquire) {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => !shared.closed.load(Ordering::Acquire),
        () = shared.close_signal.notified() => false,
    }
}

/// The subscriber's supervisor: keeps the registered subscriptions issued, exactly once per
/// connection, and reconnects after a loss.
async fn run_subscriber(
    shared: Arc<Shared>,
    mut first: Option<(MultiplexedConnection, Arc<Notify>)>,
) {
    let mut attempt: u32 = 0;
    let mut ever_lost = false;
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let connected = match first.take() {
            Some(connected) => Ok(connected),
            None => connect_subscriber(&shared).await,
        };
        match connected {
            Ok((connection, lost)) => {
                if ever_lost {
                    Counters::add(&shared.counters.reconnects, 1);
                    tracing::info!("Redis subscriber reconnected");
                }
                attempt = 0;
                serve_subscriber(&shared, connection, &lost).await;
                shared.subscriber_up.store(false, Ordering::Release);
                lock(&shared.confirmed).clear();
                if shared.closed.load(Ordering::Acquire) {
                    return;
                }
                tracing::warn!("Redis subscriber connection lost");
                ever_lost = true;
            }
            Err(error) => {
                tracing::debug!(%error, "Redis subscriber reconnection failed");
            }
        }
        if !pause(&shared, backoff(attempt, shared.config.max_reconnect_delay)).await {
            return;
        }
        attempt = attempt.saturating_add(1);
    }
}

/// Runs one subscriber connection until it is lost (or the layer is closed).
async fn serve_subscriber(shared: &Shared, mut connection: MultiplexedConnection, lost: &Notify) {
    loop {
        // Bring the connection's subscriptions in line with the registry.
        let wanted: HashSet<Subscription> =
            lock(&shared.registry).handlers.keys().cloned().collect();
        let issued: HashSet<Subscription> = lock(&shared.confirmed).clone();
        for subscription in wanted.difference(&issued) {
            if subscription
                .subscribe_command()
                .exec_async(&mut connection)
                .await
                .is_err()
            {
                return;
            }
            lock(&shared.confirmed).insert(subscription.clone());
        }
        for subscription in issued.difference(&wanted) {
            if subscription
                .unsubscribe_command()
                .exec_async(&mut connection)
                .await
                .is_err()
            {
                return;
            }
            lock(&shared.confirmed).remove(subscription);
        }
        tokio::select! {
            () = shared.registry_changed.notified() => {}
            () = lost.notified() => return,
            () = shared.close_signal.notified() => return,
            () = tokio::time::sleep(shared.config.ping_interval) => {
                if redis::cmd("PING").exec_async(&mut connection).await.is_err() {
                    return;
                }
            }
        }
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
    }
}

/// The publisher's supervisor: drains the queue into pipelined PUBLISH/SPUBLISH and reconnects
/// after a loss.
async fn run_publisher(shared: Arc<Shared>, mut first: Option<MultiplexedConnection>) {
    let mut attempt: u32 = 0;
    let mut ever_lost = false;
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let connected = match first.take() {
            Some(connection) => Ok(connection),
            None => connect_publisher(&shared).await,
        };
        match connected {
            Ok(connection) => {
                if ever_lost {
                    Counters::add(&shared.counters.reconnects, 1);
                    tracing::info!("Redis publisher reconnected");
                }
                attempt = 0;
                serve_publisher(&shared, connection).await;
                *lock(&shared.publisher) = None;
                shared.publisher_up.store(false, Ordering::Release);
                if shared.closed.load(Ordering::Acquire) {
                    return;
                }
                tracing::warn!("Redis publisher connection lost");
                ever_lost = true;
            }
            Err(error) => {
                tracing::debug!(%error, "Redis publisher reconnection failed");
            }
        }
        if !pause(&shared, backoff(attempt, shared.config.max_reconnect_delay)).await {
            return;
        }
        attempt = attempt.saturating_add(1);
    }
}

/// Most messages written in one pipeline.
const BATCH_MESSAGES: usize = 256;
/// Most bytes written in one pipeline (a single larger message still goes alone).
const BATCH_BYTES: usize = 1024 * 1024;

async fn serve_publisher(shared: &Shared, mut connection: MultiplexedConnection) {
    let lost = lock(&shared.publisher_lost).clone();
    let mut batch: Vec<Outgoing> = Vec::new();
    loop {
        {
            let mut queue = lock(&shared.queue);
            let mut bytes = 0usize;
            while let Some(next) = queue.front() {
                let size = next.size();
                if !batch.is_empty()
                    && (batch.len() >= BATCH_MESSAGES || bytes + size > BATCH_BYTES)
                {
                    break;
                }
                bytes += size;
                if let Some(message) = queue.pop_front() {
                    batch.push(message);
                }
            }
        }
        if batch.is_empty() {
            tokio::select! {
                () = shared.queue_changed.notified() => {}
                () = lost.notified() => return,
                () = shared.close_signal.notified() => return,
                () = tokio::time::sleep(shared.config.ping_interval) => {
                    if redis::cmd("PING").exec_async(&mut connection).await.is_err() {
                        return;
                    }
                }
            }
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            continue;
        }
        let mut pipeline = redis::pipe();
        let mut bytes = 0usize;
        for message in &batch {
            bytes += message.size();
            pipeline
                .cmd(message.command)
                .arg(message.channel.as_str())
                .arg(message.payload.as_slice())
                .ignore();
        }
        let result = pipeline.exec_async(&mut connection).await;
        shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        let count = batch.len() as u64;
        let payload_bytes: u64 = batch.iter().map(|m| m.payload.len() as u64).sum();
        batch.clear();
        match result {
            Ok(()) => {
                Counters::add(&shared.counters.published, count);
                Counters::add(&shared.counters.published_bytes, payload_bytes);
            }
            Err(error) => {
                // Whether Redis got them is unknown: counted as dropped.
                Counters::add(&shared.counters.dropped, count);
                Counters::add(&shared.counters.dropped_bytes, bytes as u64);
                tracing::warn!(%error, count, "publishing to Redis failed");
                if error.is_unrecoverable_error() || error.is_io_error() || error.is_timeout() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numsub_replies_in_both_shapes() {
        let array = Value::Array(vec![Value::BulkString(b"ch".to_vec()), Value::Int(3)]);
        assert_eq!(subscriber_count(&array), Some(3));
        let map = Value::Map(vec![(Value::BulkString(b"ch".to_vec()), Value::Int(0))]);
        assert_eq!(subscriber_count(&map), Some(0));
        assert_eq!(subscriber_count(&Value::Nil), None);
        assert_eq!(
            subscriber_count(&Value::Array(vec![Value::Int(-1), Value::Int(-1)])),
            None
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(1);
        assert_eq!(backoff(0, max), Duration::from_millis(50));
        assert_eq!(backoff(1, max), Duration::from_millis(100));
        assert_eq!(backoff(30, max), max);
    }
}
