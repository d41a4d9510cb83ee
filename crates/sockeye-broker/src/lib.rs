//! Socket.IO v5 for sockeye: namespaces, sockets, rooms, broadcasts, acknowledgements and the
//! adapter seam, independent of the transport.
//!
//! The broker does not know HTTP, WebSocket or Engine.IO sessions. The server gives it each
//! Engine.IO session as a [`Transport`] (something that queues encoded [`Outgoing`] messages
//! without waiting) and feeds the returned [`Connection`] the session's messages, its clock and
//! its end. Everything here is therefore testable without sockets.
//!
//! - **Namespaces** are fixed or dynamic ([`NamespaceMatcher`]), each with connect middleware,
//!   event handlers, catch-all listeners, per-event middleware and room lifecycle listeners,
//!   registered once per namespace ([`NamespaceBuilder`]).
//! - **Handlers** are async functions taking extractors ([`SocketRef`], [`Data`], [`TryData`],
//!   [`RawArgs`], [`Bin`], [`AckSender`], [`State`], [`Extension`], [`Event`],
//!   [`DisconnectReason`]).
//! - **Broadcasts** ([`BroadcastOperator`]) encode once and hand every recipient a refcount
//!   clone; recipients come from the pure [`RoomIndex`](rooms::RoomIndex) under a lock that is
//!   released before sending.
//! - **Acks** wait in the pure [`AckTable`](ack::AckTable), one per namespace, driven by one
//!   timer task per namespace.
//! - **Adapters** ([`Adapter`]) make several nodes one cluster; [`MemoryAdapter`] is the
//!   default.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Instant;
//! use sockeye_broker::{Broker, EngineInfo, RawArgs, SocketRef, Transport, SendFlags, SendError, CloseReason};
//! use sockeye_codec::{Outgoing, Utf8Bytes};
//!
//! #[derive(Default)]
//! struct Capture(Mutex<Vec<Outgoing>>);
//! impl Transport for Capture {
//!     fn send(&self, message: Outgoing, _: SendFlags) -> Result<(), SendError> {
//!         self.0.lock().unwrap().push(message);
//!         Ok(())
//!     }
//!     fn close(&self, _: CloseReason) {}
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let broker = Broker::builder()
//!     .namespace("/", |ns| ns.on("message", async |socket: SocketRef, RawArgs(args): RawArgs| {
//!         let _ = socket.emit_args("message-back", args);
//!     }))
//!     .build();
//! let transport = Arc::new(Capture::default());
//! let mut conn = broker.on_engine_open(transport.clone(), EngineInfo::new("sid"), Instant::now());
//! conn.on_engine_text(Utf8Bytes::from_static("0")).unwrap();
//! conn.on_engine_text(Utf8Bytes::from_static(r#"2["message",1,"2"]"#)).unwrap();
//! let sent = transport.0.lock().unwrap();
//! assert!(sent[0].text().unwrap().as_str().starts_with(r#"40{"sid":""#));
//! assert_eq!(sent[1].text().unwrap(), r#"42["message-back",1,"2"]"#);
//! # });
//! ```
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
    AckSender, Bin, Data, Event, Extension, FromContext, Handler, RawArgs, State, TryData,
};
pub use handshake::Handshake;
pub use id::{IntoRooms, Room, SOCKET_ID_LEN, SocketId};
pub use namespace::{AckReceiver, AckSink, Namespace, NamespaceBuilder};
pub use rooms::{RoomEvent, Selector};
pub use socket::{AckFuture, SocketEmitter, SocketRef};
pub use transport::{CloseReason, DisconnectReason, EngineInfo, SendError, SendFlags, Transport};
