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
mod namespace;
pub mod rooms;
mod socket;
mod transport;

pub use adapter::{
    Adapter, AdapterFactory, BroadcastFlags, BroadcastOptions, LocalNamespace, MemoryAdapter,
    Partial, SocketInfo,
};
pub use args::{AckResponse, Args};
pub use broadcast::{AckStream, BroadcastOperator};
pub use broker::{Broker, BrokerBuilder, BrokerConfig, NamespaceMatcher};
pub use connection::{Connection, ProtocolViolation};
pub use error::{AckError, AdapterError, ConnectError, EmitError, ExtractError, Rejected};
pub use handler::{
    AckSender, Bin, Data, Event, Extension, FromContext, Handler, RawArgs, Rooms, State, TryData,
};
pub use handshake::Handshake;
pub use id::{IntoRooms, Room, SOCKET_ID_LEN, SocketId};
pub use namespace::{AckReceiver, AckSink, Namespace, NamespaceBuilder};
pub use rooms::{RoomEvent, Selector};
pub use socket::{AckFuture, SocketEmitter, SocketRef};
pub use transport::{CloseReason, DisconnectReason, EngineInfo, SendError, SendFlags, Transport};
