//! [`Emitter`]: Node's `@socket.io/redis-emitter` for Rust programs that are not Socket.IO
//! servers: emit to the clients of a cluster, make sockets join or leave rooms, disconnect them,
//! send server-side events, all through Redis (classic mode, uid `emitter`).

use serde::Serialize;
use sockeye_broker::{
    Args, BroadcastFlags, BroadcastOptions, BroadcastPacket, IntoRooms, Room, Selector, ServerEvent,
};
use sockeye_codec::Utf8Bytes;

use crate::config::RedisConfig;
use crate::connection::{PublishError, RedisConnection, RedisError};
use crate::wire::channels::ClassicChannels;
use crate::wire::classic::{Broadcast, Request};

/// The uid Node's emitter puts on its messages (every node delivers them: none has it).
pub const EMITTER_UID: &str = "emitter";

/// Events a client may not be sent (Node's reserved names).
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Why an emitter operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitterError {
    /// The event name is reserved (`connect`, `disconnect`, ...).
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
    /// The arguments could not be written as JSON.
    #[error("the arguments could not be serialized")]
    Serialize,
    /// The message could not be encoded for Redis.
    #[error("the message could not be encoded for Redis")]
    Encode,
    /// The outgoing queue is full or the connection closed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Emits to a cluster's clients through Redis, as Node's `@socket.io/redis-emitter` does.
/// Cloning is cheap; [`to`](Self::to), [`except`](Self::except), [`of`](Self::of) and the flags
/// return a new emitter and leave this one as it is.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sockeye_redis::{Emitter, RedisConfig};
///
/// let emitter = Emitter::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// emitter.to("room1").emit("news", &"hello")?;
/// emitter.of("/admin").to("ops").sockets_join("alerts")?;
/// emitter.server_side_emit("reload", vec![serde_json::json!(1)])?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Emitter {
    connection: RedisConnection,
    nsp: String,
    opts: BroadcastOptions,
}

impl Emitter {
    /// Connects to Redis (classic mode) and emits on namespace `/`.
    ///
    /// # Errors
    /// As [`RedisConnection::connect`].
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisError> {
        Ok(Self::new(RedisConnection::connect(config).await?))
    }

    /// An emitter on an existing connection, namespace `/`.
    pub fn new(connection: RedisConnection) -> Self {
        Self {
            connection,
            nsp: "/".to_owned(),
            opts: BroadcastOptions::default(),
        }
    }

    /// The same emitter on namespace `nsp` (no rooms, no flags).
    #[must_use]
    pub fn of(&self, nsp: &str) -> Self {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        Self {
            connection: self.connection.clone(),
            nsp,
            opts: BroadcastOptions::default(),
        }
    }

    /// Adds target rooms.
    #[must_use]
    pub fn to(&self, rooms: impl IntoRooms) -> Self {
        let mut next = self.clone();
        rooms.into_rooms(&mut next.opts.selector.rooms);
        next
    }

    /// Excludes the sockets of these rooms.
    #[must_use]
    pub fn except(&self, rooms: impl IntoRooms) -> Self {
        let mut next = self.clone();
        rooms.into_rooms(&mut next.opts.selector.except);
        next
    }

    /// Drops the message for recipients whose transport is not writable right now.
    #[must_use]
    pub fn volatile(&self) -> Self {
        let mut next = self.clone();
        next.opts.flags.volatile = true;
        next
    }

    /// Whether the message may be compressed.
    #[must_use]
    pub fn compress(&self, compress: bool) -> Self {
        let mut next = self.clone();
        next.opts.flags.compress = compress;
        next
    }

    fn channels(&self) -> ClassicChannels {
        ClassicChannels::new(&self.connection.config().key_prefix, &self.nsp, EMITTER_UID)
    }

    /// Emits `event` with one argument to the selected clients of every node.
    ///
    /// # Errors
    /// [`EmitterError::ReservedEvent`], [`EmitterError::Serialize`], [`EmitterError::Encode`],
    /// [`EmitterError::Publish`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitterError> {
        let args = Args::one(data).map_err(|_| EmitterError::Serialize)?;
        self.emit_args(event, &args)
    }

    /// Emits `event` with any arguments (binary ones included).
    ///
    /// # Errors
    /// As [`emit`](Self::emit).
    pub fn emit_args(&self, event: &str, args: &Args) -> Result<(), EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        let mut data = serde_json::to_string(event).map_err(|_| EmitterError::Serialize)?;
        data.insert(0, '[');
        if !args.is_empty() {
            data.push(',');
            data.push_str(args.json());
        }
        data.push(']');
        let packet = BroadcastPacket::new(Utf8Bytes::from(data), args.attachments().to_vec())
            .map_err(|_| EmitterError::Serialize)?;
        let channel = self.channels().broadcast_channel(&self.opts.selector.rooms);
        let message = Broadcast {
            uid: EMITTER_UID.to_owned(),
            nsp: self.nsp.clone(),
            packet,
            opts: BroadcastOptions {
                selector: self.opts.selector.clone(),
                flags: self.opts.flags,
            },
        };
        let bytes = message.encode().map_err(|_| EmitterError::Encode)?;
        Ok(self.connection.publish(channel, bytes)?)
    }

    fn request(&self, request: &Request) -> Result<(), EmitterError> {
        let bytes = request.encode().map_err(|_| EmitterError::Encode)?;
        Ok(self.connection.publish(self.channels().request(), bytes)?)
    }

    fn selector(&self) -> Selector {
        self.opts.selector.clone()
    }

    /// Makes the selected sockets of every node join `rooms`.
    ///
    /// # Errors
    /// [`EmitterError::Encode`], [`EmitterError::Publish`].
    pub fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        let mut list: Vec<Room> = Vec::new();
        rooms.into_rooms(&mut list);
        self.request(&Request::RemoteJoin {
            uid: EMITTER_UID.to_owned(),
            selector: self.selector(),
            rooms: list,
        })
    }

    /// Makes the selected sockets of every node leave `rooms`.
    ///
    /// # Errors
    /// As [`sockets_join`](Self::sockets_join).
    pub fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        let mut list: Vec<Room> = Vec::new();
        rooms.into_rooms(&mut list);
        self.request(&Request::RemoteLeave {
            uid: EMITTER_UID.to_owned(),
            selector: self.selector(),
            rooms: list,
        })
    }

    /// Disconnects the selected sockets of every node (`close`: their whole connections).
    ///
    /// # Errors
    /// As [`sockets_join`](Self::sockets_join).
    pub fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.request(&Request::RemoteDisconnect {
            uid: EMITTER_UID.to_owned(),
            selector: self.selector(),
            close,
        })
    }

    /// Sends a server-side event to every node's listeners of this namespace (no ack: the
    /// emitter cannot receive answers, as in Node).
    ///
    /// # Errors
    /// [`EmitterError::ReservedEvent`], [`EmitterError::Encode`], [`EmitterError::Publish`].
    pub fn server_side_emit(
        &self,
        event: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<(), EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        self.request(&Request::ServerSideEmit {
            uid: EMITTER_UID.to_owned(),
            request_id: None,
            event: ServerEvent::new(event, args),
        })
    }

    /// The flags of the next emit.
    pub fn flags(&self) -> BroadcastFlags {
        self.opts.flags
    }

    /// Stops the emitter's connection (messages still queued are dropped).
    pub fn close(&self) {
        self.connection.close();
    }
}
