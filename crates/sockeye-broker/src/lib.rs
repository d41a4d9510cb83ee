#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod ack;
pub mod adapter;
mod args;
mod broadcast;
mod broker;
mod connection;
mod error;
pub mod handler;
mod handshake;
mod id;
mod local;
mod memory;
mod namespace;
mod packet;
pub mod rooms;
mod server_event;
mod socket;
mod transport;

pub use adapter::{
    AckAnswer, AckEvent, AckReceiver, AckSink, Adapter, AdapterFactory, BroadcastFlags,
    BroadcastOptions, BroadcastPacket, HandshakeData, LocalNamespace, MemoryAdapter, Partial,
    RoomChange, ServerAck, ServerAcks, ServerEvent, SocketInfo,
};
pub use args::{AckResponse, Args};
pub use broadcast::{AckStream, BroadcastOperator};
pub use broker::{
    Broker, BrokerBuilder, BrokerConfig, DEFAULT_ATTACHMENT_TIMEOUT, NamespaceMatcher,
};
pub use connection::{Connection, ProtocolViolation};
pub use error::{
    AckError, AdapterError, BroadcastAckTimeout, ConnectError, EmitError, ExtractError, Rejected,
    ServerSideEmitError,
};
pub use handler::{
    AckSender, Bin, Data, Event, Extension, FromContext, Handler, RawArgs, Rooms, State, TryData,
};
pub use handshake::Handshake;
pub use id::{IntoRooms, Room, SOCKET_ID_LEN, SocketId};
pub use namespace::{Namespace, NamespaceBuilder};
pub use rooms::{RoomEvent, Selector};
pub use socket::{AckFuture, SocketEmitter, SocketRef};
pub use transport::{CloseReason, DisconnectReason, EngineInfo, SendError, SendFlags, Transport};
