//! The classic adapter (Node's `createAdapter`): PUBLISH / PSUBSCRIBE on the channels of
//! WIRE.md §1, one per namespace, over the process's shared [`RedisConnection`].
//!
//! Per namespace: a uid, `PSUBSCRIBE {key}#{nsp}#*` (broadcasts), `SUBSCRIBE
//! {key}-request#{nsp}#` (requests; also what `PUBSUB NUMSUB` counts), `{key}-response#{nsp}#`
//! and `{key}-response#{nsp}#{uid}#` (answers). Self-echo (§1.6): own broadcasts, own
//! server-side emits and own join/leave/disconnect are dropped by uid (this node applies those
//! locally at once); own FETCH / ALL_ROOMS / SOCKETS / BROADCAST requests are not answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use sockeye_broker::handler::BoxFuture;
use sockeye_broker::{
    AckEvent, AckSink, Adapter, AdapterError, AdapterFactory, BroadcastOptions, BroadcastPacket,
    LocalNamespace, Partial, Room, Selector, ServerAck, ServerAcks, ServerEvent, SocketId,
    SocketInfo,
};
use tokio::sync::mpsc;

use crate::connection::{Message, PublishError, RedisConnection, Subscription};
use crate::metrics::Counters;
use crate::wire::channels::ClassicChannels;
use crate::wire::classic::{Broadcast, Request, Response, ResponseFrame, ResponseKind};
use crate::wire::ids;

/// A far deadline for a peer's absurd timeout (`now + timeout` would overflow).
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Most requests of one namespace waiting for answers at once (a bound on peer-driven state).
const MAX_PENDING: usize = 10_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// A request of this node waiting for other nodes' answers.
struct Pending {
    kind: ResponseKind,
    answers: mpsc::UnboundedSender<Response>,
}

struct Inner {
    local: LocalNamespace,
    connection: RedisConnection,
    uid: String,
    channels: ClassicChannels,
    request_channel: String,
    response_channel: String,
    request_timeout: Duration,
    pending: Mutex<HashMap<String, Pending>>,
    /// Own broadcasts with ack: request id -> the requester's sink.
    acks: Mutex<HashMap<String, AckSink>>,
}

/// The classic adapter of one namespace.
pub(crate) struct ClassicAdapter {
    inner: Arc<Inner>,
    subscriptions: Vec<Subscription>,
}

impl std::fmt::Debug for ClassicAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicAdapter")
            .field("nsp", &self.inner.local.name())
            .field("uid", &self.inner.uid)
            .finish_non_exhaustive()
    }
}

/// The factory of classic adapters over `connection` (one adapter per namespace).
pub(crate) fn factory(connection: RedisConnection) -> AdapterFactory {
    Arc::new(move |local: LocalNamespace| {
        Arc::new(ClassicAdapter::new(&connection, local)) as Arc<dyn Adapter>
    })
}

impl ClassicAdapter {
    fn new(connection: &RedisConnection, local: LocalNamespace) -> Self {
        let config = connection.config().clone();
        let uid = ids::classic_uid();
        let channels = ClassicChannels::new(&config.key_prefix, local.name(), &uid);
        let inner = Arc::new(Inner {
            request_channel: channels.request(),
            response_channel: channels.response(),
            channels,
            uid,
            local,
            connection: connection.clone(),
            request_timeout: config.request_timeout,
            pending: Mutex::new(HashMap::new()),
            acks: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        let on_broadcast = handler(&weak, Inner::on_broadcast);
        let on_request = handler(&weak, Inner::on_request);
        let on_response = handler(&weak, Inner::on_response);
        let subscriptions = vec![
            Subscription::Pattern(inner.channels.broadcast_pattern()),
            Subscription::Channel(inner.channels.request()),
            Subscription::Channel(inner.channels.response()),
            Subscription::Channel(inner.channels.own_response()),
        ];
        connection.subscribe(subscriptions[0].clone(), on_broadcast);
        connection.subscribe(subscriptions[1].clone(), on_request);
        connection.subscribe(subscriptions[2].clone(), on_response.clone());
        connection.subscribe(subscriptions[3].clone(), on_response);
        Self {
            inner,
            subscriptions,
        }
    }
}

fn handler(weak: &Weak<Inner>, f: fn(&Arc<Inner>, &Message)) -> crate::connection::MessageHandler {
    let weak = weak.clone();
    Arc::new(move |message: Message| {
        if let Some(inner) = weak.upgrade() {
            f(&inner, &message);
        }
    })
}

fn publish_error(error: PublishError) -> AdapterError {
    match error {
        PublishError::Closed => AdapterError::Closed,
        _ => AdapterError::Unavailable,
    }
}

impl Inner {
    fn counters(&self) -> &Counters {
        self.connection.counters()
    }

    fn decode_error(&self, what: &str, error: &dyn std::fmt::Display) {
        Counters::add(&self.counters().decode_errors, 1);
        tracing::debug!(nsp = %self.local.name(), %error, "undecodable Redis {what}; dropped");
    }

    fn publish_request(&self, request: &Request) -> Result<(), AdapterError> {
        let bytes = request.encode().map_err(|_| AdapterError::Encode)?;
        self.connection
            .publish(self.request_channel.clone(), bytes)
            .map_err(publish_error)
    }

    fn publish_response(&self, response: &Response) {
        match response.encode() {
            Ok(bytes) => {
                // Dropped answers are counted by the queue; the requester times out for us.
                let _ = self
                    .connection
                    .publish(self.response_channel.clone(), bytes);
            }
            Err(error) => tracing::warn!(%error, "cannot encode an answer for Redis"),
        }
    }

    // ---- incoming ---------------------------------------------------------------------

    fn on_broadcast(self: &Arc<Self>, message: &Message) {
        // A room channel for a room this node has no socket in: nothing to deliver (Node drops
        // it before decoding too).
        if let Some(room) = self.channels.room_of(&message.channel)
            && !room.is_empty()
            && self
                .local
                .socket_ids(&Selector {
                    rooms: vec![Room::new(room)],
                    except: Vec::new(),
                })
                .is_empty()
        {
            return;
        }
        let broadcast = match Broadcast::decode(&message.payload) {
            Ok(broadcast) => broadcast,
            Err(error) => return self.decode_error("broadcast", &error),
        };
        if broadcast.uid == self.uid || broadcast.nsp != self.local.name() {
            return;
        }
        self.local.broadcast(&broadcast.packet, &broadcast.opts);
    }

    fn on_request(self: &Arc<Self>, message: &Message) {
        let request = match Request::decode(&message.payload) {
            Ok(request) => request,
            Err(error) => return self.decode_error("request", &error),
        };
        if request.uid() == self.uid {
            // Own requests: join/leave/disconnect were applied locally already; FETCH,
            // ALL_ROOMS, SOCKETS and BROADCAST are not answered by the requester; own
            // server-side emits are dropped.
            return;
        }
        match request {
            Request::Sockets {
                request_id, rooms, ..
            } => {
                let sockets = self
                    .local
                    .socket_ids(&Selector {
                        rooms,
                        except: Vec::new(),
                    })
                    .into_iter()
                    .map(|id| id.as_str().to_owned())
                    .collect();
                self.publish_response(&Response::Sockets {
                    request_id,
                    sockets,
                });
            }
            Request::AllRooms { request_id, .. } => {
                let rooms = self.local.all_rooms();
                self.publish_response(&Response::AllRooms { request_id, rooms });
            }
            Request::RemoteJoin {
                selector, rooms, ..
            } => self.local.add_sockets(&options(selector), &rooms),
            Request::RemoteLeave {
                selector, rooms, ..
            } => self.local.del_sockets(&options(selector), &rooms),
            Request::RemoteDisconnect {
                selector, close, ..
            } => self.local.disconnect_sockets(&options(selector), close),
            Request::RemoteFetch {
                request_id,
                selector,
                ..
            } => {
                let sockets = self.local.fetch_sockets(&options(selector));
                self.publish_response(&Response::Fetch {
                    request_id,
                    sockets,
                });
            }
            Request::ServerSideEmit {
                request_id, event, ..
            } => {
                let ack = request_id.map(|request_id| {
                    let weak = Arc::downgrade(self);
                    ServerAck::new(move |data| {
                        if let Some(inner) = weak.upgrade() {
                            inner.publish_response(&Response::ServerSideEmit { request_id, data });
                        }
                    })
                });
                self.local.server_event(&event, ack);
            }
            Request::BroadcastWithAck {
                request_id,
                packet,
                opts,
                ..
            } => self.answer_broadcast_with_ack(request_id, &packet, &opts),
            Request::LegacyJoin {
                request_id,
                sid,
                room,
                ..
            } => {
                if let Some(socket) = self.local_socket(&sid) {
                    socket.join(room);
                    self.publish_response(&Response::Legacy { request_id });
                }
            }
            Request::LegacyLeave {
                request_id,
                sid,
                room,
                ..
            } => {
                if let Some(socket) = self.local_socket(&sid) {
                    socket.leave(&room);
                    self.publish_response(&Response::Legacy { request_id });
                }
            }
            Request::LegacyDisconnect {
                request_id,
                sid,
                close,
                ..
            } => {
                if let Some(id) = self.local_socket(&sid).map(|s| s.id()) {
                    self.local.disconnect_sockets(&options(single(id)), close);
                    self.publish_response(&Response::Legacy { request_id });
                }
            }
        }
    }

    fn local_socket(&self, sid: &str) -> Option<sockeye_broker::SocketRef> {
        SocketId::parse(sid).and_then(|id| self.local.socket(id))
    }

    /// Another node's BROADCAST with ack: deliver with our own ack id, report the count
    /// (also 0) and relay each answer's first argument.
    fn answer_broadcast_with_ack(
        self: &Arc<Self>,
        request_id: String,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
    ) {
        let timeout = opts.flags.timeout.unwrap_or(self.request_timeout);
        let deadline = deadline_after(Instant::now(), timeout);
        let (sink, mut rx) = AckSink::channel(deadline);
        self.local.broadcast_with_ack(packet, opts, &sink);
        drop(sink);
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let until = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            tokio::pin!(until);
            loop {
                let event = tokio::select! {
                    event = rx.recv() => event,
                    () = &mut until => None,
                };
                let Some(event) = event else { break };
                let Some(inner) = weak.upgrade() else { break };
                match event {
                    AckEvent::ClientCount(client_count) => {
                        inner.publish_response(&Response::ClientCount {
                            request_id: request_id.clone(),
                            client_count,
                        });
                    }
                    AckEvent::Answer(answer) => {
                        if let Ok(answer) = answer.result {
                            inner.publish_response(&Response::BroadcastAck {
                                request_id: request_id.clone(),
                                answer,
                            });
                        }
                    }
                    _ => {}
                }
            }
        });
    }

    fn on_response(self: &Arc<Self>, message: &Message) {
        let frame = match ResponseFrame::decode(&message.payload) {
            Ok(frame) => frame,
            Err(error) => return self.decode_error("response", &error),
        };
        let sink = {
            let mut acks = lock(&self.acks);
            match acks.get(&frame.request_id) {
                Some(sink) if sink.is_closed() => {
                    acks.remove(&frame.request_id);
                    return;
                }
                Some(sink) => Some(sink.clone()),
                None => None,
            }
        };
        if let Some(sink) = sink {
            match frame.into_response(ResponseKind::BroadcastAck) {
                Ok(Response::ClientCount { client_count, .. }) => sink.client_count(client_count),
                Ok(Response::BroadcastAck { answer, .. }) => sink.remote_answer(answer),
                Ok(_) => {}
                Err(error) => self.decode_error("broadcast ack", &error),
            }
            return;
        }
        let pending = lock(&self.pending)
            .get(&frame.request_id)
            .map(|p| (p.kind, p.answers.clone()));
        // Unknown request ids are answers meant for other nodes.
        let Some((kind, answers)) = pending else {
            return;
        };
        match frame.into_response(kind) {
            Ok(response) => drop(answers.send(response)),
            Err(error) => self.decode_error("response", &error),
        }
    }

    // ---- own requests -----------------------------------------------------------------

    async fn server_count(&self) -> Result<usize, AdapterError> {
        self.connection
            .numsub(&self.request_channel)
            .await
            .map(|n| n.max(1))
            .map_err(|_| AdapterError::Unavailable)
    }

    /// Publishes `request` (with `request_id`) and collects up to `expected` answers until
    /// `timeout`. Returns the answers.
    async fn ask(
        &self,
        request_id: String,
        request: &Request,
        kind: ResponseKind,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Response>, AdapterError> {
        let started = Instant::now();
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                return Err(AdapterError::Unavailable);
            }
            pending.insert(request_id.clone(), Pending { kind, answers: tx });
        }
        let _forget = Forget {
            pending: &self.pending,
            request_id: &request_id,
        };
        self.publish_request(request)?;
        let mut answers = Vec::with_capacity(expected);
        let until = tokio::time::sleep(timeout);
        tokio::pin!(until);
        while answers.len() < expected {
            tokio::select! {
                answer = rx.recv() => match answer {
                    Some(answer) => answers.push(answer),
                    None => break,
                },
                () = &mut until => break,
            }
        }
        self.counters()
            .record_request(started.elapsed(), answers.len() < expected);
        Ok(answers)
    }
}

/// Removes a pending request when its wait ends (also when the future is dropped).
struct Forget<'a> {
    pending: &'a Mutex<HashMap<String, Pending>>,
    request_id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(self.request_id);
    }
}

fn options(selector: Selector) -> BroadcastOptions {
    BroadcastOptions {
        selector,
        flags: Default::default(),
    }
}

fn single(id: SocketId) -> Selector {
    Selector {
        rooms: vec![Room::new(id.as_str())],
        except: Vec::new(),
    }
}

impl Adapter for ClassicAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let inner = &self.inner;
        inner.local.broadcast(&packet, &opts);
        let result = if opts.flags.local {
            Ok(())
        } else {
            let channel = inner.channels.broadcast_channel(&opts.selector.rooms);
            let message = Broadcast {
                uid: inner.uid.clone(),
                nsp: inner.local.name().to_owned(),
                packet,
                opts,
            };
            match message.encode() {
                Ok(bytes) => inner
                    .connection
                    .publish(channel, bytes)
                    .map_err(publish_error),
                Err(_) => Err(AdapterError::Encode),
            }
        };
        Box::pin(async move { result })
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        sink: AckSink,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let inner = &self.inner;
        inner.local.broadcast_with_ack(&packet, &opts, &sink);
        if opts.flags.local {
            return Box::pin(async { Ok(()) });
        }
        let request_id = ids::classic_uid();
        let deadline = sink.deadline();
        {
            let mut acks = lock(&inner.acks);
            acks.retain(|_, s| !s.is_closed());
            if acks.len() >= MAX_PENDING {
                return Box::pin(async { Err(AdapterError::Unavailable) });
            }
            acks.insert(request_id.clone(), sink);
        }
        let request = Request::BroadcastWithAck {
            uid: inner.uid.clone(),
            request_id: request_id.clone(),
            nsp: inner.local.name().to_owned(),
            packet,
            opts,
        };
        let result = inner.publish_request(&request);
        if result.is_err() {
            lock(&inner.acks).remove(&request_id);
        } else {
            // The requester forgets the request at its deadline (Node: after flags.timeout).
            let weak = Arc::downgrade(inner);
            tokio::spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
                if let Some(inner) = weak.upgrade() {
                    lock(&inner.acks).remove(&request_id);
                }
            });
        }
        Box::pin(async move { result })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let inner = &self.inner;
        inner.local.add_sockets(&opts, &rooms);
        let result = if opts.flags.local {
            Ok(())
        } else {
            inner.publish_request(&Request::RemoteJoin {
                uid: inner.uid.clone(),
                selector: opts.selector,
                rooms,
            })
        };
        Box::pin(async move { result })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let inner = &self.inner;
        inner.local.del_sockets(&opts, &rooms);
        let result = if opts.flags.local {
            Ok(())
        } else {
            inner.publish_request(&Request::RemoteLeave {
                uid: inner.uid.clone(),
                selector: opts.selector,
                rooms,
            })
        };
        Box::pin(async move { result })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let inner = &self.inner;
        inner.local.disconnect_sockets(&opts, close);
        let result = if opts.flags.local {
            Ok(())
        } else {
            inner.publish_request(&Request::RemoteDisconnect {
                uid: inner.uid.clone(),
                selector: opts.selector,
                close,
            })
        };
        Box::pin(async move { result })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut sockets = inner.local.fetch_sockets(&opts);
            if opts.flags.local {
                return Ok(Partial::complete(sockets));
            }
            let servers = inner.server_count().await?;
            if servers <= 1 {
                return Ok(Partial::complete(sockets));
            }
            let expected = servers - 1;
            let timeout = opts.flags.timeout.unwrap_or(inner.request_timeout);
            let request_id = ids::classic_uid();
            let request = Request::RemoteFetch {
                uid: inner.uid.clone(),
                request_id: request_id.clone(),
                selector: opts.selector,
            };
            let answers = inner
                .ask(request_id, &request, ResponseKind::Fetch, expected, timeout)
                .await?;
            let answered = answers.len();
            for answer in answers {
                if let Response::Fetch { sockets: more, .. } = answer {
                    sockets.extend(more);
                }
            }
            Ok(Partial::incomplete(
                sockets,
                expected.saturating_sub(answered),
            ))
        })
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Partial<Vec<Room>>, AdapterError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut rooms = inner.local.all_rooms();
            let servers = inner.server_count().await?;
            let mut missing = 0;
            if servers > 1 {
                let expected = servers - 1;
                let request_id = ids::classic_uid();
                let request = Request::AllRooms {
                    uid: inner.uid.clone(),
                    request_id: request_id.clone(),
                };
                let answers = inner
                    .ask(
                        request_id,
                        &request,
                        ResponseKind::AllRooms,
                        expected,
                        inner.request_timeout,
                    )
                    .await?;
                missing = expected.saturating_sub(answers.len());
                for answer in answers {
                    if let Response::AllRooms { rooms: more, .. } = answer {
                        rooms.extend(more);
                    }
                }
            }
            rooms.sort();
            rooms.dedup();
            Ok(Partial::incomplete(rooms, missing))
        })
    }

    fn server_side_emit(&self, event: ServerEvent) -> BoxFuture<'_, Result<(), AdapterError>> {
        let inner = &self.inner;
        let result = inner.publish_request(&Request::ServerSideEmit {
            uid: inner.uid.clone(),
            request_id: None,
            event,
        });
        Box::pin(async move { result })
    }

    fn server_side_emit_with_ack(
        &self,
        event: ServerEvent,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ServerAcks, AdapterError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let servers = inner.server_count().await?;
            let expected = servers - 1;
            if expected == 0 {
                return Ok(ServerAcks::new(Vec::new(), 0));
            }
            let request_id = ids::classic_uid();
            let request = Request::ServerSideEmit {
                uid: inner.uid.clone(),
                request_id: Some(request_id.clone()),
                event,
            };
            let answers = inner
                .ask(
                    request_id,
                    &request,
                    ResponseKind::ServerSideEmit,
                    expected,
                    timeout,
                )
                .await?;
            let responses = answers
                .into_iter()
                .filter_map(|answer| match answer {
                    Response::ServerSideEmit { data, .. } => Some(data),
                    _ => None,
                })
                .collect();
            Ok(ServerAcks::new(responses, expected))
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(self.inner.server_count())
    }

    fn close(&self) {
        for subscription in &self.subscriptions {
            self.inner.connection.unsubscribe(subscription);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_peer_timeout_does_not_overflow() {
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) > now);
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
