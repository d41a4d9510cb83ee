//! Handlers in the axum style: async functions whose arguments are extractors.
//!
//! A handler is any `Fn(A1, .., An) -> impl Future` (up to eight arguments) whose arguments all
//! implement [`FromContext`]. Handlers are registered once per namespace and shared by all its
//! sockets; a socket costs no memory per handler.
//!
//! ```
//! use sockeye_broker::{AckSender, Data, SocketRef};
//!
//! #[derive(serde::Deserialize)]
//! struct Message { content: String }
//!
//! async fn on_message(socket: SocketRef, Data(msg): Data<Message>, ack: Option<AckSender>) {
//!     let _ = socket.emit("echo", &msg.content);
//!     if let Some(ack) = ack {
//!         let _ = ack.send(&serde_json::json!({ "ok": true }));
//!     }
//! }
//! # let _ = sockeye_broker::Broker::builder().namespace("/", |ns| ns.on("message", on_message));
//! ```
//!
//! Extraction order does not matter: every extractor reads the event context without consuming
//! it. When an extractor fails (a payload of the wrong shape for `Data<T>`, a missing state), the
//! handler is not called and the failure is logged; use `TryData<T>` or `Option<E>` to handle
//! it yourself.

use std::any::{Any, TypeId, type_name};
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use sockeye_codec::Utf8Bytes;
use sockeye_codec::socketio::{AckId, finite_numbers};

use crate::args::{Args, nth_arg};
use crate::error::{ConnectError, EmitError, ExtractError, Rejected};
use crate::id::Room;
use crate::socket::SocketRef;
use crate::transport::DisconnectReason;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a handler runs on: the socket, and for an event its payload, attachments and ack id.
#[derive(Debug)]
pub struct EventContext {
    pub(crate) socket: SocketRef,
    pub(crate) payload: Payload,
    pub(crate) attachments: Vec<Bytes>,
    pub(crate) ack_id: Option<AckId>,
    pub(crate) reason: Option<DisconnectReason>,
    /// The rooms at the start of a disconnect, for `disconnecting` handlers.
    pub(crate) rooms: Option<Vec<Room>>,
}

#[derive(Debug)]
pub(crate) enum Payload {
    /// An event: the data array (name first) and the arguments without brackets.
    Event {
        data: Utf8Bytes,
        name: Box<str>,
        args: Utf8Bytes,
    },
    /// A CONNECT: the auth object, if any.
    Connect(Option<Utf8Bytes>),
    /// Nothing (disconnect handlers).
    None,
}

impl EventContext {
    /// The socket.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The event name, for event handlers and middleware.
    pub fn event(&self) -> Option<&str> {
        match &self.payload {
            Payload::Event { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The arguments as raw JSON values separated by commas (events), or the auth object
    /// (connect).
    pub fn raw_args(&self) -> &str {
        match &self.payload {
            Payload::Event { args, .. } => args.as_str(),
            Payload::Connect(auth) => auth.as_ref().map_or("{}", Utf8Bytes::as_str),
            Payload::None => "",
        }
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The ack id, when the client wants an acknowledgement.
    pub fn ack_id(&self) -> Option<AckId> {
        self.ack_id
    }
}

/// A handler argument built from the [`EventContext`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a handler argument",
    label = "not an extractor",
    note = "extractors: SocketRef, Data<T>, TryData<T>, RawArgs, Bin, AckSender, State<S>, \
            Extension<T>, Event, Rooms, DisconnectReason, and Option<E> of any of them"
)]
pub trait FromContext: Sized {
    /// Builds the argument.
    ///
    /// # Errors
    /// [`ExtractError`] when the context lacks what the extractor needs; the handler is then not
    /// called.
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError>;
}

impl<T: FromContext> FromContext for Option<T> {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(T::from_context(ctx).ok())
    }
}

impl FromContext for SocketRef {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(ctx.socket.clone())
    }
}

impl FromContext for DisconnectReason {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        ctx.reason.ok_or_else(|| {
            ExtractError::InvalidPayload(String::from(
                "no disconnect reason outside disconnect handlers",
            ))
        })
    }
}

/// The socket's rooms, its own first. In a `disconnecting` handler: the rooms it was in when
/// the disconnect began, even after the handler's first `.await` (when the socket has already
/// left them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rooms(pub Vec<Room>);

impl FromContext for Rooms {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(Self(
            ctx.rooms.clone().unwrap_or_else(|| ctx.socket.rooms()),
        ))
    }
}

/// The first argument of an event (`null` when there is none) or the auth payload of a CONNECT
/// (`{}` when there is none), deserialized. Binary arguments appear as their placeholders; take
/// the bytes with [`Bin`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromContext for Data<T> {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        deserialize_payload(ctx)
            .map(Data)
            .map_err(|e| ExtractError::InvalidPayload(e.to_string()))
    }
}

/// Like [`Data`], but hands the deserialization result to the handler, so it can answer a
/// payload of the wrong shape.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, serde_json::Error>);

impl<T: DeserializeOwned> FromContext for TryData<T> {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(Self(deserialize_payload(ctx)))
    }
}

/// Numbers beyond `f64` (`1e400`, which `JSON.parse` reads as `Infinity`) are read as `null`,
/// what the reference's `JSON.stringify` would make of them, rather than failing the whole
/// payload; the auth object also reads lone surrogate escapes as U+FFFD
/// ([`crate::Handshake::auth`]).
fn deserialize_payload<T: DeserializeOwned>(ctx: &EventContext) -> Result<T, serde_json::Error> {
    match &ctx.payload {
        Payload::Event { data, .. } => {
            nth_arg(data.as_str(), 1).or_else(|error| match finite_numbers(data.as_str()) {
                Cow::Owned(rewritten) => nth_arg(&rewritten, 1),
                Cow::Borrowed(_) => Err(error),
            })
        }
        Payload::Connect(auth) => {
            crate::handshake::auth_value(auth.as_ref().map_or("{}", Utf8Bytes::as_str))
        }
        Payload::None => serde_json::from_str("null"),
    }
}

/// Every argument of the event as raw JSON with its attachments, ready to be emitted or
/// acknowledged unchanged (placeholders keep pointing at the same attachments). In connect
/// handlers and middleware: the auth object (`{}` when none) as one argument, byte for byte.
#[derive(Clone, Debug)]
pub struct RawArgs(pub Args);

impl FromContext for RawArgs {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(Self(Args::raw(ctx.raw_args(), ctx.attachments.clone())))
    }
}

/// The binary attachments of the event, in placeholder order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bin(pub Vec<Bytes>);

impl FromContext for Bin {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(Self(ctx.attachments.clone()))
    }
}

/// The event name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event(pub String);

impl FromContext for Event {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        ctx.event()
            .map(|e| Self(e.to_owned()))
            .ok_or_else(|| ExtractError::InvalidPayload(String::from("not an event")))
    }
}

/// Shared application state given to [`BrokerBuilder::state`](crate::BrokerBuilder::state),
/// cloned out for each call.
#[derive(Clone, Debug)]
pub struct State<S>(pub S);

impl<S: Clone + Send + Sync + 'static> FromContext for State<S> {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        ctx.socket
            .namespace()
            .state::<S>()
            .map(State)
            .ok_or_else(|| ExtractError::MissingState(type_name::<S>()))
    }
}

/// A typed value the socket carries in its extensions (for example the claims a connect
/// middleware verified), cloned out.
#[derive(Clone, Debug)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromContext for Extension<T> {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        ctx.socket
            .extension::<T>()
            .map(Extension)
            .ok_or_else(|| ExtractError::MissingExtension(type_name::<T>()))
    }
}

/// Sends the acknowledgement the client asked for. Extracting it fails when the client asked
/// for none; take `Option<AckSender>` when acks are optional.
#[derive(Debug)]
pub struct AckSender {
    socket: SocketRef,
    id: AckId,
}

impl FromContext for AckSender {
    fn from_context(ctx: &EventContext) -> Result<Self, ExtractError> {
        let id = ctx.ack_id.ok_or(ExtractError::NoAck)?;
        Ok(Self {
            socket: ctx.socket.clone(),
            id,
        })
    }
}

impl AckSender {
    /// Acknowledges with one argument.
    ///
    /// # Errors
    /// [`EmitError`] when the value does not serialize or the socket is gone.
    pub fn send<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<(), EmitError> {
        self.send_args(Args::one(value)?)
    }

    /// Acknowledges with any arguments (binary ones become a BINARY_ACK).
    ///
    /// # Errors
    /// [`EmitError`] when the socket is gone or its queue is full.
    pub fn send_args(self, args: Args) -> Result<(), EmitError> {
        self.socket.send_ack(self.id, args)
    }

    /// The ack id.
    pub fn id(&self) -> AckId {
        self.id
    }
}

/// What a handler's future resolves to. Event handlers return `()`, connect middleware
/// `Result<(), ConnectError>`, event middleware `Result<(), Rejected>`.
pub trait HandlerOutput: Send + 'static {
    /// The value used when an argument could not be extracted.
    fn extraction_failed(error: &ExtractError) -> Self;
}

impl HandlerOutput for () {
    fn extraction_failed(error: &ExtractError) -> Self {
        tracing::debug!(%error, "handler not called");
    }
}

impl HandlerOutput for Result<(), ConnectError> {
    fn extraction_failed(error: &ExtractError) -> Self {
        tracing::debug!(%error, "connect middleware refused the handshake");
        Err(ConnectError::new("invalid handshake"))
    }
}

impl HandlerOutput for Result<(), Rejected> {
    fn extraction_failed(error: &ExtractError) -> Self {
        Err(Rejected::new(error.to_string()))
    }
}

/// An async function usable as a handler: `Fn(A1, .., An) -> impl Future<Output = R>` with
/// every `Ai: FromContext`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid handler",
    label = "not a handler",
    note = "a handler is an async fn (or closure returning a future) whose arguments are \
            extractors (SocketRef, Data<T>, RawArgs, Bin, AckSender, State<S>, ...), at most 8, \
            returning the output this registration expects (`()` for events)"
)]
pub trait Handler<T, R>: Clone + Send + Sync + 'static {
    /// Extracts the arguments and starts the call.
    fn call(&self, ctx: &EventContext) -> BoxFuture<'static, R>;
}

macro_rules! impl_handler {
    ($($ty:ident),*) => {
        impl<F, Fut, R, $($ty,)*> Handler<($($ty,)*), R> for F
        where
            F: Fn($($ty),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: HandlerOutput,
            $($ty: FromContext + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, ctx: &EventContext) -> BoxFuture<'static, R> {
                $(
                    let $ty = match $ty::from_context(ctx) {
                        Ok(value) => value,
                        Err(error) => {
                            let out = R::extraction_failed(&error);
                            return Box::pin(std::future::ready(out));
                        }
                    };
                )*
                Box::pin((self)($($ty),*))
            }
        }
    };
}

impl_handler!();
impl_handler!(T1);
impl_handler!(T1, T2);
impl_handler!(T1, T2, T3);
impl_handler!(T1, T2, T3, T4);
impl_handler!(T1, T2, T3, T4, T5);
impl_handler!(T1, T2, T3, T4, T5, T6);
impl_handler!(T1, T2, T3, T4, T5, T6, T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A handler with its argument types erased, stored once per namespace.
pub(crate) trait ErasedHandler<R>: Send + Sync + 'static {
    fn call(&self, ctx: &EventContext) -> BoxFuture<'static, R>;
}

struct Erased<H, T>(H, PhantomData<fn() -> T>);

impl<H, T, R> ErasedHandler<R> for Erased<H, T>
where
    H: Handler<T, R>,
    T: 'static,
    R: HandlerOutput,
{
    fn call(&self, ctx: &EventContext) -> BoxFuture<'static, R> {
        self.0.call(ctx)
    }
}

pub(crate) type DynHandler<R> = Arc<dyn ErasedHandler<R>>;

pub(crate) fn erase<H, T, R>(handler: H) -> DynHandler<R>
where
    H: Handler<T, R>,
    T: 'static,
    R: HandlerOutput,
{
    Arc::new(Erased(handler, PhantomData))
}

/// Runs a future until its first suspension on the caller's thread, and spawns it on the tokio
/// runtime only if it suspends. A panic during that first poll is caught and logged. Handlers that finish without waiting (most of them) cost no
/// task, and their effects happen in the order the packets arrived.
pub(crate) fn run_now_or_spawn(future: BoxFuture<'static, ()>) {
    let mut future = future;
    let waker = futures_util::task::noop_waker_ref();
    let mut cx = std::task::Context::from_waker(waker);
    // A panicking handler must not unwind into the transport's task (which holds the
    // connection): contain it here, as tokio contains it for a spawned task.
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        future.as_mut().poll(&mut cx)
    }));
    let pending = match polled {
        Ok(poll) => poll.is_pending(),
        Err(_) => {
            tracing::error!("a handler panicked; the event is dropped");
            false
        }
    };
    if pending {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(future);
            }
            Err(_) => tracing::error!("a handler suspended outside a tokio runtime; dropped"),
        }
    }
}

/// A map from type to one value of that type: the broker's state and a socket's extensions.
#[derive(Default)]
pub(crate) struct TypeMap(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl TypeMap {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.0
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }

    pub(crate) fn get<T: 'static>(&self) -> Option<&T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref())
    }

    pub(crate) fn remove<T: 'static>(&mut self) -> Option<T> {
        self.0
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }
}

impl std::fmt::Debug for TypeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TypeMap({} entries)", self.0.len())
    }
}
