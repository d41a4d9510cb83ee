//! Session settings.

use std::num::NonZeroUsize;
use std::time::Duration;

/// What to do with a non-volatile message when the session's outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumerPolicy {
    /// Close the session with [`CloseReason::SlowConsumer`](super::CloseReason::SlowConsumer)
    /// (the default): the message is never dropped silently.
    #[default]
    Close,
}

/// Settings shared by every session of an engine. Defaults equal the reference server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) slow_consumer: SlowConsumerPolicy,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            max_queued_bytes: 4 * 1024 * 1024,
            slow_consumer: SlowConsumerPolicy::Close,
        }
    }
}

impl SessionConfig {
    /// How often the server pings (default 25 s).
    pub fn ping_interval(mut self, value: Duration) -> Self {
        self.ping_interval = value;
        self
    }

    /// How long the server waits for a pong after a ping (default 20 s).
    pub fn ping_timeout(mut self, value: Duration) -> Self {
        self.ping_timeout = value;
        self
    }

    /// How long an upgrade to WebSocket may take before it is abandoned (default 10 s).
    pub fn upgrade_timeout(mut self, value: Duration) -> Self {
        self.upgrade_timeout = value;
        self
    }

    /// The largest polling body, WebSocket message or outgoing message, in bytes
    /// (default 1,000,000).
    pub fn max_payload(mut self, value: NonZeroUsize) -> Self {
        self.max_payload = value.get();
        self
    }

    /// The bound of each session's outbound queue, in bytes of payload (default 4 MiB).
    pub fn max_queued_bytes(mut self, value: NonZeroUsize) -> Self {
        self.max_queued_bytes = value.get();
        self
    }

    /// What happens when the outbound queue is full (default: close the session).
    pub fn slow_consumer(mut self, value: SlowConsumerPolicy) -> Self {
        self.slow_consumer = value;
        self
    }
}
