//! [`BroadcastOperator`]: select sockets by room, then emit, collect acks, fetch, join, leave or
//! disconnect them.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use serde::Serialize;

use crate::adapter::{BroadcastOptions, Partial, SocketInfo};
use crate::args::{AckResponse, Args};
use crate::error::{AckError, AdapterError, BroadcastAckTimeout, EmitError};
use crate::id::{IntoRooms, Room, SocketId};
use crate::namespace::{DEFAULT_ACK_TIMEOUT, Namespace};
use crate::packet::BroadcastPacket;

/// The deadline used when `now + timeout` does not fit in the clock.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

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
        let packet = BroadcastPacket::from_args(event, args)?;
        self.ns
            .adapter()
            .broadcast(packet, self.opts)
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
    pub async fn emit_args_with_ack(
        mut self,
        event: &str,
        args: Args,
    ) -> Result<AckStream, EmitError> {
        let timeout = self.ack_timeout();
        self.opts.flags.timeout = Some(timeout);
        let packet = BroadcastPacket::from_args(event, args)?;
        // A timeout may come from another node (a BROADCAST request relayed from Redis): a
        // huge one must not overflow the clock; it waits "forever" (a year) instead.
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(timeout)
            .or_else(|| now.checked_add(FAR_FUTURE))
            .unwrap_or(now);
        let (sink, rx) = AckSink::channel(deadline.into_std());
        let local_only = self.opts.flags.local;
        let adapter = self.ns.adapter().clone();
        adapter
            .broadcast_with_ack(packet, self.opts, sink)
            .await
            .map_err(EmitError::Adapter)?;
        // Every node reports its client count, this one included. When the nodes cannot be
        // counted, the stream waits for the timeout (as Node does when `serverCount` fails).
        let servers = if local_only {
            Some(1)
        } else {
            adapter.server_count().await.ok().map(|n| n.max(1))
        };
        Ok(AckStream::new(rx, servers, deadline))
    }

    /// The selected sockets, from every node that answered in time.
    ///
    /// # Errors
    /// The adapter's error.
    pub async fn fetch_sockets(mut self) -> Result<Partial<Vec<SocketInfo>>, AdapterError> {
        self.opts.flags.timeout = self.timeout;
        self.ns.adapter().fetch_sockets(self.opts).await
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

/// What a node reports into an [`AckSink`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AckEvent {
    /// One node's client count: how many of its clients got the packet (each node reports
    /// once).
    ClientCount(usize),
    /// One client's answer. `socket` is set for this node's clients only (answers from other
    /// nodes carry no socket id, as in Node).
    Answer(AckAnswer),
}

/// One client's answer to a broadcast with ack.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AckAnswer {
    /// The answering socket when it is on this node; `None` for a socket on another node.
    pub socket: Option<SocketId>,
    /// Its answer, or [`AckError::Disconnected`] when a local socket left before answering.
    pub result: Result<AckResponse, AckError>,
}

/// The receiving end of an [`AckSink`].
pub type AckReceiver = tokio::sync::mpsc::UnboundedReceiver<AckEvent>;

/// Where the client counts and answers of one broadcast with ack go, from every node. The
/// broker gives one to [`Adapter::broadcast_with_ack`](crate::Adapter::broadcast_with_ack);
/// a node answering another node's request makes its own with [`AckSink::channel`] and relays
/// what comes out. Cloning shares the channel.
#[derive(Clone, Debug)]
pub struct AckSink {
    tx: tokio::sync::mpsc::UnboundedSender<AckEvent>,
    deadline: std::time::Instant,
}

impl AckSink {
    /// A sink whose answers are awaited until `deadline`, and the receiver of what is
    /// reported into it.
    pub fn channel(deadline: std::time::Instant) -> (Self, AckReceiver) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self { tx, deadline }, rx)
    }

    /// When the requester stops waiting (the broadcast's one timeout).
    pub fn deadline(&self) -> std::time::Instant {
        self.deadline
    }

    /// Reports one node's client count (call once per node).
    pub fn client_count(&self, clients: usize) {
        let _ = self.tx.send(AckEvent::ClientCount(clients));
    }

    /// Reports one answer from a client of another node.
    pub fn remote_answer(&self, response: AckResponse) {
        let _ = self.tx.send(AckEvent::Answer(AckAnswer {
            socket: None,
            result: Ok(response),
        }));
    }

    /// Reports one local client's answer (or its failure).
    pub(crate) fn deliver(&self, from: SocketId, result: Result<AckResponse, AckError>) {
        let _ = self.tx.send(AckEvent::Answer(AckAnswer {
            socket: Some(from),
            result,
        }));
    }

    /// Whether the requester stopped listening (the stream was dropped or ended).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The answers to one broadcast with ack, from every node, in arrival order (Node's
/// `emitWithAck` on a broadcast, as a stream). It ends when every node reported its client
/// count and that many answers came, or at the timeout (one timeout for the whole broadcast:
/// [`timed_out`](Self::timed_out) then says so).
#[derive(Debug)]
pub struct AckStream {
    rx: AckReceiver,
    /// How many nodes report; `None` when the adapter could not count them.
    servers: Option<usize>,
    reported: usize,
    expected: usize,
    received: usize,
    timed_out: bool,
    /// Answers taken from the channel before the stream was polled.
    ready: VecDeque<AckAnswer>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl AckStream {
    /// The stream of one request: `servers` nodes report into the sink of `rx` until
    /// `deadline`.
    pub(crate) fn new(
        rx: AckReceiver,
        servers: Option<usize>,
        deadline: tokio::time::Instant,
    ) -> Self {
        let mut stream = Self {
            rx,
            servers,
            reported: 0,
            expected: 0,
            received: 0,
            timed_out: false,
            ready: VecDeque::new(),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        };
        stream.take_ready();
        stream
    }

    /// How many answers are expected so far: the sum of the client counts the nodes reported.
    pub fn expected(&self) -> usize {
        self.expected
    }

    /// How many nodes are expected to report (the adapter's server count); `None` when the
    /// adapter could not count them (the stream then ends at the timeout).
    pub fn servers(&self) -> Option<usize> {
        self.servers
    }

    /// How many nodes have not reported their client count yet (0 when unknown).
    pub fn missing_nodes(&self) -> usize {
        self.servers
            .map_or(0, |servers| servers.saturating_sub(self.reported))
    }

    /// Whether the stream ended at the timeout before it was complete.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Takes what is already reported (this node's count at least), so
    /// [`expected`](Self::expected) is right before the first poll.
    fn take_ready(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            match event {
                AckEvent::ClientCount(n) => {
                    self.reported += 1;
                    self.expected += n;
                }
                AckEvent::Answer(answer) => self.ready.push_back(answer),
            }
        }
    }

    fn is_complete(&self) -> bool {
        self.ready.is_empty()
            && self.servers.is_some_and(|servers| self.reported >= servers)
            && self.received >= self.expected
    }

    /// Waits for every answer (Node's `await io.timeout(t).emitWithAck(..)`).
    ///
    /// # Errors
    /// [`BroadcastAckTimeout`] (`operation has timed out`) with the answers that came, when the
    /// timeout passed first.
    pub async fn collect_all(mut self) -> Result<Vec<AckAnswer>, BroadcastAckTimeout> {
        let mut out = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
            out.push(item);
        }
        if self.timed_out {
            Err(BroadcastAckTimeout {
                answers: out,
                expected: self.expected,
                missing_nodes: self.missing_nodes(),
            })
        } else {
            Ok(out)
        }
    }
}

impl Stream for AckStream {
    type Item = AckAnswer;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(answer) = self.ready.pop_front() {
            self.received += 1;
            return Poll::Ready(Some(answer));
        }
        loop {
            if self.is_complete() {
                return Poll::Ready(None);
            }
            if self.timed_out {
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(AckEvent::ClientCount(n))) => {
                    self.reported += 1;
                    self.expected += n;
                }
                Poll::Ready(Some(AckEvent::Answer(answer))) => {
                    self.received += 1;
                    return Poll::Ready(Some(answer));
                }
                Poll::Ready(None) => {
                    // Every sink is gone: nothing more can come.
                    self.timed_out = !self.is_complete();
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timed_out = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

use std::future::Future as _;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use sockeye_codec::{Outgoing, Utf8Bytes};

    use super::{AckSink, AckStream};
    use crate::packet::ENCODES;
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

    fn answer(text: &str) -> crate::AckResponse {
        crate::AckResponse {
            data: Utf8Bytes::from(text.to_owned()),
            attachments: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_sums_node_counts_and_ends_when_every_answer_came() {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let (sink, rx) = AckSink::channel(deadline.into_std());
        sink.client_count(1);
        let stream = AckStream::new(rx, Some(3), deadline);
        assert_eq!((stream.expected(), stream.missing_nodes()), (1, 2));
        // Answers may come before a node's count: the stream waits for every count.
        sink.remote_answer(answer("[1]"));
        sink.client_count(2);
        sink.remote_answer(answer("[2]"));
        sink.client_count(0);
        sink.remote_answer(answer("[3]"));
        let started = tokio::time::Instant::now();
        let answers = stream.collect_all().await.unwrap();
        assert_eq!(
            started.elapsed(),
            std::time::Duration::ZERO,
            "complete: no wait"
        );
        let firsts: Vec<u32> = answers
            .iter()
            .map(|a| a.result.as_ref().unwrap().first().unwrap())
            .collect();
        assert_eq!(firsts, [1, 2, 3]);
        assert!(answers.iter().all(|a| a.socket.is_none()));
        drop(sink);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_never_reports_ends_the_stream_at_the_one_timeout() {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        let (sink, rx) = AckSink::channel(deadline.into_std());
        let stream = AckStream::new(rx, Some(2), deadline);
        sink.client_count(1);
        sink.remote_answer(answer(r#"["a"]"#));
        let started = tokio::time::Instant::now();
        let err = stream.collect_all().await.unwrap_err();
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(2));
        assert_eq!(err.to_string(), "operation has timed out");
        assert_eq!(
            (err.answers.len(), err.expected, err.missing_nodes),
            (1, 1, 1)
        );
        assert!(sink.is_closed(), "the requester stopped listening");
    }

    #[tokio::test(start_paused = true)]
    async fn nodes_that_cannot_be_counted_are_waited_for_until_the_timeout() {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        let (sink, rx) = AckSink::channel(deadline.into_std());
        sink.client_count(0);
        let stream = AckStream::new(rx, None, deadline);
        let started = tokio::time::Instant::now();
        let err = stream.collect_all().await.unwrap_err();
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(1));
        assert!(err.answers.is_empty());
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
        assert_eq!(stream.collect_all().await.unwrap().len(), 10_000);
    }
}
