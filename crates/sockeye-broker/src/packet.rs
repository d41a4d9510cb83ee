//! [`BroadcastPacket`]: an event as it crosses nodes, before each node encodes it.

use std::borrow::Cow;

use bytes::Bytes;
use sockeye_codec::socketio::{AckId, Packet, PayloadError, RESERVED_EVENTS};
use sockeye_codec::{Outgoing, Utf8Bytes};

use crate::args::{Args, event_data};
use crate::error::EmitError;

/// One event on its way to the sockets of one or several nodes: the Socket.IO packet's data,
/// `[event, ...args]` as JSON text with `{"_placeholder":true,"num":N}` for binary arguments,
/// and the attachments the placeholders point to. No namespace (it is the adapter's
/// [`LocalNamespace::name`](crate::LocalNamespace::name)) and no ack id (each node assigns its own).
///
/// This is what crosses nodes: a Node-compatible adapter writes `data` in its own encoding with
/// the attachments inline (msgpack `bin`), and the receiving node rebuilds it with
/// [`BroadcastPacket::new`]; [`LocalNamespace::broadcast`](crate::LocalNamespace::broadcast) then encodes it once for that
/// node's clients. Cloning shares the bytes.
///
/// ```
/// use sockeye_broker::adapter::BroadcastPacket;
/// use sockeye_codec::Utf8Bytes;
///
/// let data = Utf8Bytes::from(r#"["news",{"_placeholder":true,"num":0}]"#);
/// let packet = BroadcastPacket::new(data, vec![bytes::Bytes::from_static(b"\x01")]).unwrap();
/// assert_eq!(packet.event(), "news");
/// assert_eq!(packet.attachments().len(), 1);
/// assert!(BroadcastPacket::new(Utf8Bytes::from("{}"), vec![]).is_err());
/// assert!(BroadcastPacket::new(Utf8Bytes::from("[null]"), vec![]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastPacket {
    data: Utf8Bytes,
    attachments: Vec<Bytes>,
}

impl BroadcastPacket {
    /// A packet from its data array and attachments (what another node sent).
    ///
    /// Only the event name is checked (a string, or a number as the reference accepts); the
    /// rest of the array is sent as is, so the caller vouches that it is well-formed JSON, as a
    /// JSON encoder's output is.
    ///
    /// # Errors
    /// [`PayloadError`] when `data` is not an array whose first element is an event name.
    pub fn new(data: Utf8Bytes, attachments: Vec<Bytes>) -> Result<Self, PayloadError> {
        Packet::event("/", data.clone()).event_name()?;
        Ok(Self { data, attachments })
    }

    /// The packet of `emit(event, args)`.
    pub(crate) fn from_args(event: &str, args: Args) -> Result<Self, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::ReservedEvent);
        }
        let (json, attachments) = args.into_parts();
        Ok(Self {
            data: event_data(event, &json)?,
            attachments,
        })
    }

    /// The data array as JSON text, `["event",...args]`, binary arguments as placeholders.
    pub fn data(&self) -> &Utf8Bytes {
        &self.data
    }

    /// The binary attachments, in placeholder order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The event name (checked at construction).
    pub fn event(&self) -> String {
        Packet::event("/", self.data.clone())
            .event_name()
            .map(Cow::into_owned)
            .unwrap_or_default()
    }

    /// The data and attachments.
    pub fn into_parts(self) -> (Utf8Bytes, Vec<Bytes>) {
        (self.data, self.attachments)
    }

    /// Encodes the packet for clients of `namespace`, with an ack id or without: one EVENT, or
    /// one BINARY_EVENT when there are attachments.
    pub(crate) fn encode(&self, namespace: &Utf8Bytes, ack: Option<AckId>) -> Outgoing {
        self.clone().into_outgoing(namespace, ack)
    }

    pub(crate) fn into_outgoing(self, namespace: &Utf8Bytes, ack: Option<AckId>) -> Outgoing {
        let mut packet =
            Packet::event(namespace.clone(), self.data).with_attachments(self.attachments.len());
        packet.ack_id = ack;
        #[cfg(test)]
        ENCODES.with(|c| c.set(c.get() + 1));
        Outgoing::socketio(&packet, self.attachments)
    }
}

#[cfg(test)]
thread_local! {
    /// How many events this thread encoded (tests prove broadcasts encode once per node).
    pub(crate) static ENCODES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
