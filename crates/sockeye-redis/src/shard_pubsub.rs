//! Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, `PUBSUB SHARDNUMSUB`): the
//! [`ShardedPubSub`] seam the sharded adapter talks to Redis through, implemented for one
//! server by the crate's [`RedisConnection`] and for a Redis Cluster by [`ClusterPubSub`].
//!
//! [`ClusterPubSub`] runs on redis-rs's `cluster_async::ClusterConnection` (decision 0008) in RESP3: one
//! multiplexed connection per master, every SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH routed to the
//! master owning the channel's hash slot (following MOVED/ASK when the slot map changes), shard
//! messages delivered through the connection's push callback, and every shard subscription
//! re-issued by redis-rs after a reconnect or a topology change.
//!
//! As on one server, nothing waits on Redis: publishing goes through a byte-bounded queue (a
//! message that does not fit is dropped and counted), (un)subscriptions through an ordered
//! command queue, both drained by background tasks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use sockeye_broker::AdapterError;
use sockeye_broker::handler::BoxFuture;
use tokio::sync::{Notify, mpsc};

use crate::connection::{Message, RedisConnection, Subscription};

/// Called with `(channel, payload)` for every message of a subscribed channel.
pub type ShardHandler = Arc<dyn Fn(&str, Bytes) + Send + Sync>;

/// What the sharded adapter needs from Redis. Implemented by the crate's connection layer;
/// every method but [`shard_numsub`](Self::shard_numsub) only queues and returns at once.
pub trait ShardedPubSub: Send + Sync + 'static {
    /// Queues `SPUBLISH channel payload`. On a Redis Cluster it goes to the master owning the
    /// channel's slot.
    ///
    /// # Errors
    /// [`AdapterError::Unavailable`] when the message cannot be queued (Redis is gone and the
    /// outgoing queue is full); the message is then dropped and counted.
    fn spublish(&self, channel: &str, payload: Vec<u8>) -> Result<(), AdapterError>;

    /// Queues `SSUBSCRIBE channel` and routes its messages to `handler` from then on, also
    /// after a reconnect (the connection layer re-subscribes every channel it holds).
    fn ssubscribe(&self, channel: &str, handler: ShardHandler);

    /// Queues `SUNSUBSCRIBE channel` and forgets its handler.
    fn sunsubscribe(&self, channel: &str);

    /// `PUBSUB SHARDNUMSUB channel`: how many connections subscribe it (summed over every
    /// master on a Redis Cluster).
    fn shard_numsub(&self, channel: &str) -> BoxFuture<'_, Result<usize, AdapterError>>;
}

/// One `redis-server` (or any server that is not a cluster): the process's shared publisher
/// and subscriber connections of [`crate::connection`].
impl ShardedPubSub for RedisConnection {
    fn spublish(&self, channel: &str, payload: Vec<u8>) -> Result<(), AdapterError> {
        Self::spublish(self, channel.to_owned(), payload).map_err(|error| {
            tracing::debug!(channel, %error, "SPUBLISH not queued");
            AdapterError::Unavailable
        })
    }

    fn ssubscribe(&self, channel: &str, handler: ShardHandler) {
        self.subscribe(
            Subscription::Shard(channel.to_owned()),
            Arc::new(move |message: Message| handler(&message.channel, message.payload)),
        );
    }

    fn sunsubscribe(&self, channel: &str) {
        self.unsubscribe(&Subscription::Shard(channel.to_owned()));
    }

    fn shard_numsub(&self, channel: &str) -> BoxFuture<'_, Result<usize, AdapterError>> {
        let channel = channel.to_owned();
        Box::pin(async move {
            Self::shard_numsub(self, &channel).await.map_err(|error| {
                tracing::debug!(%error, "PUBSUB SHARDNUMSUB failed");
                AdapterError::Unavailable
            })
        })
    }
}

/// How many queued messages one publishing round sends before awaiting their replies.
const PUBLISH_BATCH: usize = 256;

/// Pause before a failed SSUBSCRIBE is tried again (the cluster may be re-sharding).
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(100);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Command {
    Subscribe(String),
    Unsubscribe(String),
}

struct Shared {
    connection: ClusterConnection,
    handlers: Arc<Mutex<HashMap<String, ShardHandler>>>,
    /// Shard channels SSUBSCRIBE confirmed (redis-rs keeps them subscribed afterwards).
    confirmed: Mutex<HashSet<String>>,
    commands: mpsc::UnboundedSender<Command>,
    queue: Mutex<VecDeque<(String, Vec<u8>)>>,
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
    queue_changed: Notify,
    published: AtomicU64,
    dropped: AtomicU64,
    dropped_bytes: AtomicU64,
    failed: AtomicU64,
    closed: AtomicBool,
    close_signal: Notify,
}

/// The sharded pub/sub connections of one process to a Redis Cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClusterPubSub {
    shared: Arc<Shared>,
}

impl fmt::Debug for ClusterPubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterPubSub")
            .field("ready", &self.is_ready())
            .field(
                "queued_bytes",
                &self.shared.queued_bytes.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

/// Counters of a [`ClusterPubSub`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterPubSubCounters {
    /// Messages SPUBLISHed.
    pub published: u64,
    /// Messages dropped because the outgoing queue was full.
    pub dropped: u64,
    /// Their bytes (channel + payload).
    pub dropped_bytes: u64,
    /// Messages whose SPUBLISH failed (Redis unreachable or refusing).
    pub failed: u64,
}

impl ClusterPubSub {
    /// Connects to the cluster through `seeds` (`redis://host:port` of one or more of its
    /// nodes; the others are discovered) and starts the background tasks on the current tokio
    /// runtime.
    ///
    /// # Errors
    /// redis-rs's error when the URLs do not parse or no seed answers.
    pub async fn connect(
        seeds: &[String],
        max_queued_bytes: usize,
        connect_timeout: Duration,
    ) -> Result<Self, redis::RedisError> {
        let handlers: Arc<Mutex<HashMap<String, ShardHandler>>> = Arc::default();
        let dispatch = handlers.clone();
        let push = move |info: PushInfo| -> Result<(), std::convert::Infallible> {
            if info.kind == PushKind::SMessage
                && let [Value::BulkString(channel), Value::BulkString(payload), ..] =
                    info.data.as_slice()
                && let Ok(channel) = std::str::from_utf8(channel)
            {
                let handler = lock(&dispatch).get(channel).cloned();
                if let Some(handler) = handler {
                    handler(channel, Bytes::copy_from_slice(payload));
                }
            }
            Ok(())
        };
        let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(connect_timeout)
            .push_sender(push)
            .build()?;
        let connection = client.get_async_connection().await?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            connection,
            handlers,
            confirmed: Mutex::new(HashSet::new()),
            commands,
            queue: Mutex::new(VecDeque::new()),
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes,
            queue_changed: Notify::new(),
            published: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            close_signal: Notify::new(),
        });
        tokio::spawn(subscriber_task(shared.clone(), command_rx));
        tokio::spawn(publisher_task(shared.clone()));
        Ok(Self { shared })
    }

    /// Whether every registered shard channel was confirmed by its master.
    pub fn is_ready(&self) -> bool {
        let handlers = lock(&self.shared.handlers);
        let confirmed = lock(&self.shared.confirmed);
        !self.shared.closed.load(Ordering::Acquire)
            && handlers.keys().all(|channel| confirmed.contains(channel))
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> ClusterPubSubCounters {
        let s = &self.shared;
        ClusterPubSubCounters {
            published: s.published.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            dropped_bytes: s.dropped_bytes.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
        }
    }

    /// Stops the background tasks; queued messages are dropped.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.close_signal.notify_waiters();
        self.shared.queue_changed.notify_one();
    }
}

/// Runs the (un)subscriptions in the order they were asked for.
async fn subscriber_task(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut connection = shared.connection.clone();
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            () = shared.close_signal.notified() => None,
        };
        let Some(command) = command else { return };
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        match command {
            Command::Subscribe(channel) => loop {
                // Still wanted? (A quick create-then-delete of a room needs no round trip.)
                if !lock(&shared.handlers).contains_key(&channel) {
                    break;
                }
                match connection.ssubscribe(&channel).await {
                    Ok(()) => {
                        lock(&shared.confirmed).insert(channel);
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%channel, %error, "SSUBSCRIBE failed; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
                            () = shared.close_signal.notified() => return,
                        }
                    }
                }
            },
            Command::Unsubscribe(channel) => {
                // Re-subscribed meanwhile: its Subscribe command follows and keeps it.
                if lock(&shared.handlers).contains_key(&channel) {
                    continue;
                }
                lock(&shared.confirmed).remove(&channel);
                if let Err(error) = connection.sunsubscribe(&channel).await {
                    tracing::warn!(%channel, %error, "SUNSUBSCRIBE failed");
                }
            }
        }
    }
}

/// Drains the outgoing queue: SPUBLISH in batches, in queue order.
async fn publisher_task(shared: Arc<Shared>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        {
            let mut queue = lock(&shared.queue);
            while batch.len() < PUBLISH_BATCH {
                let Some(item) = queue.pop_front() else { break };
                batch.push(item);
            }
        }
        if batch.is_empty() {
            tokio::select! {
                () = shared.queue_changed.notified() => {}
                () = shared.close_signal.notified() => return,
            }
            continue;
        }
        let sends = batch.drain(..).map(|(channel, payload)| {
            let size = channel.len() + payload.len();
            let mut connection = shared.connection.clone();
            let shared = &shared;
            async move {
                let mut cmd = redis::cmd("SPUBLISH");
                cmd.arg(&channel).arg(&payload);
                let result: redis::RedisResult<Value> = cmd.query_async(&mut connection).await;
                shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                match result {
                    Ok(_) => {
                        shared.published.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%channel, %error, "SPUBLISH failed; message lost");
                    }
                }
            }
        });
        futures_util::future::join_all(sends).await;
    }
}

impl ShardedPubSub for ClusterPubSub {
    fn spublish(&self, channel: &str, payload: Vec<u8>) -> Result<(), AdapterError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(AdapterError::Closed);
        }
        let size = channel.len() + payload.len();
        let mut queue = lock(&shared.queue);
        let queued = shared.queued_bytes.load(Ordering::Relaxed);
        if queued.saturating_add(size) > shared.max_queued_bytes {
            drop(queue);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            shared
                .dropped_bytes
                .fetch_add(size as u64, Ordering::Relaxed);
            tracing::warn!(channel, size, "outgoing Redis queue full; message dropped");
            return Err(AdapterError::Unavailable);
        }
        shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
        queue.push_back((channel.to_owned(), payload));
        drop(queue);
        shared.queue_changed.notify_one();
        Ok(())
    }

    fn ssubscribe(&self, channel: &str, handler: ShardHandler) {
        lock(&self.shared.handlers).insert(channel.to_owned(), handler);
        let _ = self
            .shared
            .commands
            .send(Command::Subscribe(channel.to_owned()));
    }

    fn sunsubscribe(&self, channel: &str) {
        lock(&self.shared.handlers).remove(channel);
        let _ = self
            .shared
            .commands
            .send(Command::Unsubscribe(channel.to_owned()));
    }

    fn shard_numsub(&self, channel: &str) -> BoxFuture<'_, Result<usize, AdapterError>> {
        let mut connection = self.shared.connection.clone();
        let channel = channel.to_owned();
        Box::pin(async move {
            // redis-rs sends PUBSUB SHARDNUMSUB to every node and adds the counts up.
            let reply: Value = redis::cmd("PUBSUB")
                .arg("SHARDNUMSUB")
                .arg(&channel)
                .query_async(&mut connection)
                .await
                .map_err(|error| {
                    tracing::debug!(%error, "PUBSUB SHARDNUMSUB failed");
                    AdapterError::Unavailable
                })?;
            count_of(&reply, &channel).ok_or(AdapterError::Unavailable)
        })
    }
}

/// The count of `channel` in a `PUBSUB SHARDNUMSUB` reply (a map, or a flat array of
/// channel/count pairs).
fn count_of(reply: &Value, channel: &str) -> Option<usize> {
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    let mut total = 0usize;
    for (key, value) in pairs {
        let name = match key {
            Value::BulkString(bytes) => bytes.as_slice(),
            Value::SimpleString(text) => text.as_bytes(),
            _ => continue,
        };
        if name == channel.as_bytes()
            && let Value::Int(n) = value
        {
            total += usize::try_from(*n).ok()?;
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shardnumsub_replies_of_both_shapes_are_read() {
        let ch = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let map = Value::Map(vec![(ch("a"), Value::Int(3)), (ch("b"), Value::Int(1))]);
        assert_eq!(count_of(&map, "a"), Some(3));
        assert_eq!(count_of(&map, "c"), Some(0));
        let array = Value::Array(vec![ch("a"), Value::Int(2)]);
        assert_eq!(count_of(&array, "a"), Some(2));
        assert_eq!(count_of(&Value::Int(1), "a"), None);
        assert_eq!(
            count_of(&Value::Map(vec![(ch("a"), Value::Int(-1))]), "a"),
            None
        );
    }
}
