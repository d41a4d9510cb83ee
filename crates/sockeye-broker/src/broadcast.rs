//! [`BroadcastOperator`]: select sockets by room, then emit, collect acks, fetch, join, leave or
//! disconnect them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use serde::Serialize;

use crate::adapter::{BroadcastOptions, Partial, SocketInfo};
use crate::args::{AckResponse, Args};
use crate::error::{AckError, AdapterError, EmitError};
use crate::id::{IntoRooms, Room, SocketId};
use crate::namespace::{AckReceiver, AckSink, DEFAULT_ACK_TIMEOUT, Namespace};

/// A broadcast being built: `ns.to("a").to("b").except("c").volatile().emit(..)`.
///
/// The event is encoded once into a shared [`Outgoing`](sockeye_codec::Outgoing) and every
/// recipient gets a refcount clone of it; recipients are selected under the room index lock,
/// and the sends happen after it is released.
#[derive(Clone, Debug)]
#[must_use = "a broadcast operator does nothing until emit, fetch_sockets, join, leave or disconnect"]
pub struct BroadcastOperator {
    ns: Namespace,
    opts: BroadcastOptions,
    timeout: Option<Duration>,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Namespace) -> Self {
        let opts = ns.options();
        Self {
            ns,
            opts,
            timeout: None,
        }
    }

    /// Adds target rooms (a socket in several of them gets one copy).
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        rooms.into_rooms(&mut self.opts.selector.rooms);
        self
    }

    /// Same as [`BroadcastOperator::to`].
    pub fn within(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Excludes the sockets in these rooms (a socket id names that socket).
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        rooms.into_rooms(&mut self.opts.selector.except);
        self
    }

    /// Stays on this node.
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Drops the message for recipients whose transport is not writable right now.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Whether the message may be compressed.
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.flags.compress = compress;
        self
    }

    /// The ack timeout of [`emit_with_ack`](Self::emit_with_ack) (default: the broker's), and
    /// the time other nodes get to answer [`fetch_sockets`](Self::fetch_sockets).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The selection and flags.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits an event with one argument to every selected socket.
    ///
    /// # Errors
    /// [`EmitError::ReservedEvent`], [`EmitError::Serialize`], or [`EmitError::Adapter`].
    pub async fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        let args = Args::one(data)?;
        self.emit_args(event, args).await
    }

    /// Emits an event with any arguments to every selected socket.
    ///
    /// # Errors
    /// See [`BroadcastOperator::emit`].
    pub async fn emit_args(self, event: &str, args: Args) -> Result<(), EmitError> {
        let message = self.ns.encode_args(event, args, None)?;
        self.ns
            .adapter()
            .broadcast(message, self.opts)
            .await
            .map_err(EmitError::Adapter)
    }

    /// Emits an event asking every recipient for an acknowledgement. The packet carries one
    /// namespace-wide ack id, so it is encoded once for all recipients. The stream yields each
    /// recipient's answer (or its timeout / disconnect) and ends when all have answered or the
    /// timeout passed.
    ///
    /// # Errors
    /// See [`BroadcastOperator::emit`].
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<AckStream, EmitError> {
        let args = Args::one(data)?;
        self.emit_args_with_ack(event, args).await
    }

    /// [`emit_with_ack`](Self::emit_with_ack) with any arguments.
    ///
    /// # Errors
    /// See [`BroadcastOperator::emit`].
    pub async fn emit_args_with_ack(self, event: &str, args: Args) -> Result<AckStream, EmitError> {
        let timeout = self.ack_timeout();
        let ack_id = self.ns.core().next_ack_id();
        let message = self.ns.encode_args(event, args, Some(ack_id))?;
        let (sink, rx) = AckSink::channel();
        let expected = self
            .ns
            .adapter()
            .broadcast_with_ack(message, ack_id, self.opts, timeout, sink)
            .await
            .map_err(EmitError::Adapter)?;
        // A grace period past the per-socket deadline lets the timeouts themselves arrive.
        let deadline = tokio::time::Instant::now() + timeout + Duration::from_millis(50);
        Ok(AckStream {
            rx,
            expected: expected.value,
            missing_nodes: expected.missing_nodes,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        })
    }

    /// The selected sockets, from every node that answered in time.
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn fetch_sockets(self) -> Result<Partial<Vec<SocketInfo>>, AdapterError> {
        let timeout = self.ack_timeout();
        self.ns.adapter().fetch_sockets(self.opts, timeout).await
    }

    /// Makes the selected sockets join `rooms`.
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn join(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        let mut list: Vec<Room> = Vec::new();
        rooms.into_rooms(&mut list);
        self.ns.adapter().add_sockets(self.opts, list).await
    }

    /// Makes the selected sockets leave `rooms`.
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn leave(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        let mut list: Vec<Room> = Vec::new();
        rooms.into_rooms(&mut list);
        self.ns.adapter().del_sockets(self.opts, list).await
    }

    /// Disconnects the selected sockets (`close`: their whole Engine.IO sessions).
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn disconnect(self, close: bool) -> Result<(), AdapterError> {
        self.ns.adapter().disconnect_sockets(self.opts, close).await
    }

    fn ack_timeout(&self) -> Duration {
        self.timeout.unwrap_or_else(|| {
            let configured = self.ns.shared().config.ack_timeout;
            if configured.is_zero() {
                DEFAULT_ACK_TIMEOUT
            } else {
                configured
            }
        })
    }
}

/// The answers to one broadcast with ack: one item per recipient, in arrival order. Ends when
/// every expected answer came (a timed-out or disconnected recipient counts as one, with its
/// error), or at the deadline.
#[derive(Debug)]
pub struct AckStream {
    rx: AckReceiver,
    expected: usize,
    missing_nodes: usize,
    received: usize,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl AckStream {
    /// How many answers the broadcast expects (the recipients reached).
    pub fn expected(&self) -> usize {
        self.expected
    }

    /// How many nodes did not report their recipients in time (remote adapters).
    pub fn missing_nodes(&self) -> usize {
        self.missing_nodes
    }

    /// Waits for every answer and returns them.
    pub async fn collect_all(mut self) -> Vec<(SocketId, Result<AckResponse, AckError>)> {
        let mut out = Vec::with_capacity(self.expected);
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
            out.push(item);
        }
        out
    }
}

impl Stream for AckStream {
    type Item = (SocketId, Result<AckResponse, AckError>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.received >= self.expected {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                self.received += 1;
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.expected.saturating_sub(self.received)))
    }
}

use std::future::Future as _;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use sockeye_codec::{Outgoing, Utf8Bytes};

    use crate::socket::ENCODES;
    use crate::{Broker, CloseReason, EngineInfo, SendError, SendFlags, Transport};

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Transport for Count {
        fn send(&self, _message: Outgoing, _flags: SendFlags) -> Result<(), SendError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }

        fn close(&self, _reason: CloseReason) {}
    }

    #[tokio::test]
    async fn a_broadcast_to_10_000_sockets_encodes_exactly_once() {
        let broker = Broker::builder().namespace("/", |ns| ns).build();
        let transport = Arc::new(Count::default());
        let mut conns = Vec::new();
        for _ in 0..10_000 {
            let mut conn =
                broker.on_engine_open(transport.clone(), EngineInfo::new("s"), Instant::now());
            conn.on_engine_text(Utf8Bytes::from_static("0")).unwrap();
            conns.push(conn);
        }
        let ns = broker.namespace("/").unwrap();
        let sent_before = transport.0.load(Ordering::Relaxed);
        let encodes_before = ENCODES.with(std::cell::Cell::get);
        ns.broadcast().emit("news", &"hello").await.unwrap();
        assert_eq!(ENCODES.with(std::cell::Cell::get) - encodes_before, 1);
        assert_eq!(transport.0.load(Ordering::Relaxed) - sent_before, 10_000);

        // With acks too: one shared ack id, one encode.
        let encodes_before = ENCODES.with(std::cell::Cell::get);
        let stream = ns.broadcast().emit_with_ack("vote", &1).await.unwrap();
        assert_eq!(ENCODES.with(std::cell::Cell::get) - encodes_before, 1);
        assert_eq!(stream.expected(), 10_000);
        assert_eq!(ns.pending_acks(), 10_000);
        drop(conns);
        assert_eq!(ns.pending_acks(), 0);
        assert_eq!(stream.collect_all().await.len(), 10_000);
    }
}
