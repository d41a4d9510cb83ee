//! [`MemoryAdapter`]: the default adapter, one node. Written against the public adapter API
//! only ([`LocalNamespace`] and the [`Adapter`] trait), as an adapter in another crate is.

use std::future::ready;
use std::sync::Arc;
use std::time::Duration;

use crate::adapter::{
    AckSink, Adapter, AdapterFactory, BroadcastOptions, BroadcastPacket, LocalNamespace, Partial,
    ServerAcks, ServerEvent, SocketInfo,
};
use crate::error::AdapterError;
use crate::handler::BoxFuture;
use crate::id::Room;

/// The default adapter: one node, every operation local, every future ready at once.
#[derive(Clone, Debug)]
pub struct MemoryAdapter {
    local: LocalNamespace,
}

impl MemoryAdapter {
    /// The adapter of one namespace.
    pub fn new(local: LocalNamespace) -> Self {
        Self { local }
    }

    /// The factory to give [`BrokerBuilder::adapter`](crate::BrokerBuilder::adapter).
    pub fn factory() -> AdapterFactory {
        Arc::new(|local| Arc::new(Self::new(local)) as Arc<dyn Adapter>)
    }
}

impl Adapter for MemoryAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.broadcast(&packet, &opts);
        Box::pin(ready(Ok(())))
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        sink: AckSink,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.broadcast_with_ack(&packet, &opts, &sink);
        Box::pin(ready(Ok(())))
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.add_sockets(&opts, &rooms);
        Box::pin(ready(Ok(())))
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets(&opts, &rooms);
        Box::pin(ready(Ok(())))
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.disconnect_sockets(&opts, close);
        Box::pin(ready(Ok(())))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>> {
        let sockets = self.local.fetch_sockets(&opts);
        Box::pin(ready(Ok(Partial::complete(sockets))))
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Partial<Vec<Room>>, AdapterError>> {
        Box::pin(ready(Ok(Partial::complete(self.local.all_rooms()))))
    }

    fn server_side_emit(&self, _event: ServerEvent) -> BoxFuture<'_, Result<(), AdapterError>> {
        // No other node to tell (and a server-side event never reaches its own node).
        Box::pin(ready(Ok(())))
    }

    fn server_side_emit_with_ack(
        &self,
        _event: ServerEvent,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<ServerAcks, AdapterError>> {
        Box::pin(ready(Ok(ServerAcks::new(Vec::new(), 0))))
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(ready(Ok(1)))
    }
}
