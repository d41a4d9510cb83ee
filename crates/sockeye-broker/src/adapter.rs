//! The adapter: the seam where several server processes become one cluster.
//!
//! Every namespace talks to one [`Adapter`] for the operations that may involve other nodes:
//! broadcasts, broadcasts with acks, join/leave/disconnect by selector, fetching sockets,
//! listing rooms, server-side events and counting servers. The adapter reaches this node's
//! sockets through [`LocalNamespace`] (synchronous, no I/O, the one handle an adapter holds)
//! and other nodes however it likes.
//!
//! Everything an adapter needs is public: an adapter in another crate can do all that
//! [`MemoryAdapter`] does (which uses public items only; `tests/cluster.rs` builds a
//! multi-node adapter outside the crate). The model is the Node server's (`socket.io-adapter` and
//! `@socket.io/redis-adapter`), so a sockeye node and Node nodes can share one cluster:
//!
//! - a broadcast carries its [`BroadcastPacket`]: the `[event, ...args]` JSON and binary
//!   attachments, which a remote adapter ships in its own encoding; each node encodes the
//!   Socket.IO packet once for its own clients ([`LocalNamespace::broadcast`]);
//! - a broadcast with ack carries no ack id across nodes: each node assigns its own from its own
//!   namespace counter ([`LocalNamespace::broadcast_with_ack`]), reports how many clients it
//!   reached and relays their answers into the requester's [`AckSink`];
//! - operations waiting for other nodes return what they got before their timeout
//!   ([`Partial`], [`ServerAcks`]) rather than fail.
//!
//! `docs/adapter.md` describes how a Node-compatible Redis adapter implements the trait, and
//! which public items it uses for each message of the wire format.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::broadcast::{AckAnswer, AckEvent, AckReceiver, AckSink};
pub use crate::handshake::HandshakeData;
pub use crate::local::LocalNamespace;
pub use crate::memory::MemoryAdapter;
pub use crate::packet::BroadcastPacket;
pub use crate::server_event::{ServerAck, ServerEvent};

use crate::error::AdapterError;
use crate::handler::BoxFuture;
use crate::id::{Room, SocketId};
use crate::rooms::Selector;
use crate::socket::SocketRef;
use crate::transport::SendFlags;

/// The cluster seam of one namespace. Methods may do I/O; the in-memory adapter's futures are
/// ready at once.
///
/// Contract for every implementation:
/// - the local part of each operation goes through [`LocalNamespace`], which never waits;
/// - `opts.flags.local` means "this node only": nothing is sent to other nodes;
/// - the futures complete once the operation is handed to the other nodes (queued for
///   publishing); only [`fetch_sockets`](Self::fetch_sockets), [`all_rooms`](Self::all_rooms),
///   [`server_side_emit_with_ack`](Self::server_side_emit_with_ack) and
///   [`server_count`](Self::server_count) wait for answers, and never longer than their timeout;
/// - nothing waits on a slow socket or holds a broker lock across an `.await`.
pub trait Adapter: Send + Sync + 'static {
    /// Sends `packet` to the selected sockets of every node: this node's through
    /// [`LocalNamespace::broadcast`], the others' by shipping `packet.data()` and
    /// `packet.attachments()` (they call [`LocalNamespace::broadcast`] with the packet rebuilt by
    /// [`BroadcastPacket::new`]).
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Sends `packet` asking every recipient for an acknowledgement. This node's part is
    /// [`LocalNamespace::broadcast_with_ack`] with `sink` (it reports the local count). For the
    /// other nodes, ship the packet (without any ack id) and `opts` (`opts.flags.timeout` is
    /// set); each of them calls [`LocalNamespace::broadcast_with_ack`] with its own sink and
    /// sends back its client count and each answer; feed those into `sink` with
    /// [`AckSink::client_count`] and [`AckSink::remote_answer`] (remote answers have no socket id).
    ///
    /// Return once the request is sent: do not wait for the counts. The broker asks
    /// [`server_count`](Self::server_count) right after this future completes and ends the
    /// application's stream when every node reported and every answer arrived, or at
    /// `sink.deadline()`.
    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        sink: AckSink,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Makes the selected sockets of every node join `rooms` ([`LocalNamespace::add_sockets`]
    /// on each).
    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Makes the selected sockets of every node leave `rooms` ([`LocalNamespace::del_sockets`]
    /// on each).
    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Disconnects the selected sockets of every node (`close`: close their whole Engine.IO
    /// sessions; [`LocalNamespace::disconnect_sockets`] on each).
    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// The selected sockets of every node that answered in time: this node's from
    /// [`LocalNamespace::fetch_sockets`], the others' as [`SocketInfo`] descriptors (which
    /// serialize and deserialize in Node's shape). `opts.flags.timeout` is the caller's timeout,
    /// if it set one; otherwise the adapter's own request timeout applies.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Partial<Vec<SocketInfo>>, AdapterError>>;

    /// Every room of every node that answered in time, per-socket rooms included (Node's
    /// `allRooms`); this node's from [`LocalNamespace::all_rooms`]. An adapter that cannot ask
    /// (Node's sharded adapter) returns [`AdapterError::Unsupported`].
    fn all_rooms(&self) -> BoxFuture<'_, Result<Partial<Vec<Room>>, AdapterError>>;

    /// Sends an event to the listeners of the other server nodes (not to clients, and not to
    /// this node), fire and forget. Receiving nodes call [`LocalNamespace::server_event`] with
    /// no responder.
    fn server_side_emit(&self, event: ServerEvent) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Sends an event to the other server nodes and collects one answer per node (the value
    /// its listener acknowledges with) until `timeout`. It expects `server_count - 1` answers
    /// and returns what came ([`ServerAcks`]; the broker turns an incomplete one into Node's
    /// `timeout reached` error). Receiving nodes call [`LocalNamespace::server_event`] with a
    /// [`ServerAck`] that sends the answer back.
    fn server_side_emit_with_ack(
        &self,
        event: ServerEvent,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ServerAcks, AdapterError>>;

    /// How many server nodes serve this namespace, this one included (1 for a single node).
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>>;

    /// The namespace was removed from this node (an empty dynamic namespace): release what
    /// was set up for it (subscriptions). It is called once, with no lock held; a later CONNECT
    /// to the same name builds a new adapter. Default: nothing.
    fn close(&self) {}
}

/// Builds the adapter of each namespace from its [`LocalNamespace`]. Called when a namespace is
/// created (at build time for fixed ones, on the first CONNECT for dynamic ones), before any
/// socket joins it.
pub type AdapterFactory = Arc<dyn Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync>;

/// Which sockets an operation reaches and how a broadcast is sent: Node's `BroadcastOptions`
/// (`rooms`, `except`, `flags`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Target rooms and excluded rooms. A socket id names that socket's own room, also for a
    /// socket on another node.
    pub selector: Selector,
    /// Broadcast flags.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// Options for these target and excluded rooms, default flags.
    pub fn new(rooms: Vec<Room>, except: Vec<Room>) -> Self {
        Self {
            selector: Selector { rooms, except },
            flags: BroadcastFlags::default(),
        }
    }
}

/// Flags of a broadcast (Node's `flags` object: `local`, `volatile`, `compress`, `timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastFlags {
    /// Stay on this node: adapters must not forward.
    pub local: bool,
    /// Drop the message for recipients whose transport is not writable right now.
    pub volatile: bool,
    /// Whether the message may be compressed (default `true`).
    pub compress: bool,
    /// The operation's timeout when the caller set one: the ack timeout of a broadcast with ack
    /// (always set there), the time other nodes get to answer `fetch_sockets`.
    pub timeout: Option<Duration>,
}

impl Default for BroadcastFlags {
    fn default() -> Self {
        Self {
            local: false,
            volatile: false,
            compress: true,
            timeout: None,
        }
    }
}

impl BroadcastFlags {
    /// The per-message options for the transports of the recipients.
    pub fn send_flags(self) -> SendFlags {
        SendFlags {
            volatile: self.volatile,
            compress: self.compress,
        }
    }
}

/// A socket as [`fetch_sockets`](Adapter::fetch_sockets) reports it, from this node or another.
///
/// It serializes as the descriptor Node nodes exchange, `{"id", "handshake", "rooms", "data"}`,
/// and deserializes from one (`local` is then `None`), so a cluster adapter answers a
/// `fetchSockets` request with `serde_json::to_string(&local.fetch_sockets(..))` and reads the
/// other nodes' answers with `serde_json::from_slice::<Vec<SocketInfo>>`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SocketInfo {
    /// The socket id.
    pub id: SocketId,
    /// Its handshake, in Node's shape.
    pub handshake: HandshakeData,
    /// Its rooms, its own first.
    pub rooms: Vec<Room>,
    /// Its data ([`SocketRef::set_data`]); `{}` when never set, as Node's `socket.data`.
    pub data: Value,
    /// The socket itself when it lives on this node.
    pub local: Option<SocketRef>,
}

impl SocketInfo {
    /// A socket of this node, with its rooms (its own first).
    pub(crate) fn from_local(socket: SocketRef, rooms: Vec<Room>) -> Self {
        let data = socket
            .raw_data()
            .and_then(|raw| serde_json::from_str(raw.as_str()).ok())
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        Self {
            id: socket.id(),
            handshake: socket.handshake().to_data(),
            rooms,
            data,
            local: Some(socket),
        }
    }

    /// A socket on another node.
    pub fn remote(id: SocketId, handshake: HandshakeData, rooms: Vec<Room>, data: Value) -> Self {
        Self {
            id,
            handshake,
            rooms,
            data,
            local: None,
        }
    }

    /// The data deserialized.
    ///
    /// # Errors
    /// The JSON error when the data does not have `T`'s shape.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }

    /// Whether the socket is in the room (its own room included).
    pub fn in_room(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| r.as_str() == room)
    }
}

impl serde::Serialize for SocketInfo {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("SocketInfo", 4)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("handshake", &self.handshake)?;
        s.serialize_field("rooms", &self.rooms)?;
        s.serialize_field("data", &self.data)?;
        s.end()
    }
}

impl<'de> serde::Deserialize<'de> for SocketInfo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Descriptor {
            id: SocketId,
            #[serde(default)]
            handshake: HandshakeData,
            #[serde(default)]
            rooms: Vec<Room>,
            #[serde(default)]
            data: Option<Value>,
        }
        let d = Descriptor::deserialize(deserializer)?;
        Ok(Self::remote(
            d.id,
            d.handshake,
            d.rooms,
            d.data
                .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
        ))
    }
}

/// The result of an operation that asked other nodes: what came back, and how many nodes did not
/// answer in time (always 0 for the in-memory adapter).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Partial<T> {
    /// What this node and the nodes that answered returned, merged.
    pub value: T,
    /// How many nodes did not answer before the timeout.
    pub missing_nodes: usize,
}

impl<T> Partial<T> {
    /// A complete result.
    pub fn complete(value: T) -> Self {
        Self {
            value,
            missing_nodes: 0,
        }
    }

    /// A result missing the answers of `missing_nodes` nodes.
    pub fn incomplete(value: T, missing_nodes: usize) -> Self {
        Self {
            value,
            missing_nodes,
        }
    }

    /// Whether every node answered.
    pub fn is_complete(&self) -> bool {
        self.missing_nodes == 0
    }
}

/// The answers to a server-side emit with ack: one per other node that answered in time.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerAcks {
    /// Each answering node's value (its listener's first acknowledgement argument).
    pub responses: Vec<Value>,
    /// How many answers were expected (the other nodes: `server_count - 1`).
    pub expected: usize,
}

impl ServerAcks {
    /// The answers and how many were expected.
    pub fn new(responses: Vec<Value>, expected: usize) -> Self {
        Self {
            responses,
            expected,
        }
    }

    /// Whether every expected node answered.
    pub fn is_complete(&self) -> bool {
        self.responses.len() >= self.expected
    }
}

/// A room of this node got its first member or lost its last one: what a sharded adapter
/// subscribes and unsubscribes per-room channels by (see
/// [`LocalNamespace::on_room_change`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomChange {
    /// A room (not a socket's own room) got its first local member.
    Created(Room),
    /// A room (not a socket's own room) lost its last local member.
    Deleted(Room),
    /// A socket connected: its own room (named by its id) now exists on this node.
    SocketAdded(SocketId),
    /// A socket disconnected: its own room is gone.
    SocketRemoved(SocketId),
}

impl fmt::Display for RoomChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Created(room) => write!(f, "room {room} created"),
            Self::Deleted(room) => write!(f, "room {room} deleted"),
            Self::SocketAdded(id) => write!(f, "socket room {id} created"),
            Self::SocketRemoved(id) => write!(f, "socket room {id} deleted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_fetch_descriptor_reads_and_writes_back_in_node_shape() {
        let text = r#"[{"id":"8C7vAbCdEfGhIjKlAAAA","handshake":{"headers":{"host":"127.0.0.1:3001",
            "set-cookie":["a=1","b=2"]},"time":"Thu Nov 26 2026 22:45:00 GMT+0000 (Coordinated Universal Time)",
            "address":"::ffff:127.0.0.1","xdomain":false,"secure":false,"issued":1795733100014,
            "url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4","transport":"websocket"},
            "auth":{"name":"c0"}},"rooms":["8C7vAbCdEfGhIjKlAAAA","r1"],"data":{"name":"c0","node":"n1"}},
            {"id":"zzzzzzzzzzzzzzzzzzzz","rooms":[]}]"#;
        let sockets: Vec<SocketInfo> = serde_json::from_str(text).unwrap();
        assert_eq!(sockets.len(), 2);
        let first = &sockets[0];
        assert_eq!(first.id.as_str(), "8C7vAbCdEfGhIjKlAAAA");
        assert!(first.local.is_none());
        assert!(first.in_room("r1") && first.in_room("8C7vAbCdEfGhIjKlAAAA"));
        assert_eq!(first.data["node"], "n1");
        assert_eq!(first.handshake.header("set-cookie"), Some("a=1"));
        assert_eq!(first.handshake.issued, 1_795_733_100_014);
        assert_eq!(first.handshake.auth["name"], "c0");
        // A descriptor without data has Node's default, `{}`.
        assert_eq!(sockets[1].data, serde_json::json!({}));
        // Written back, the same keys in Node's order, and it reads back equal.
        let back = serde_json::to_value(first).unwrap();
        let keys: Vec<&str> = back
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4);
        for key in ["id", "handshake", "rooms", "data"] {
            assert!(keys.contains(&key), "{key}");
        }
        let again: SocketInfo = serde_json::from_value(back).unwrap();
        assert_eq!(again.handshake, first.handshake);
        assert_eq!(again.rooms, first.rooms);
        // An id that is not a Node/sockeye socket id is refused.
        assert!(serde_json::from_str::<SocketInfo>(r#"{"id":"short"}"#).is_err());
    }

    #[test]
    fn server_acks_report_completeness() {
        let acks = ServerAcks::new(vec![serde_json::json!(1)], 2);
        assert!(!acks.is_complete());
        assert!(ServerAcks::new(Vec::new(), 0).is_complete());
        assert!(Partial::complete(1).is_complete());
        assert!(!Partial::incomplete(1, 1).is_complete());
    }
}
