//! Server-side events: events one server node sends to the listeners of the others (Node's
//! `serverSideEmit`), never to clients.

use std::fmt;

use serde_json::Value;

/// An event from one server node to the others: a name and JSON arguments, Node's
/// `[event, ...args]` packet (server-side events carry no binary attachments here).
///
/// ```
/// use sockeye_broker::adapter::ServerEvent;
/// use serde_json::json;
///
/// let event = ServerEvent::new("hello", vec![json!(1), json!("two")]);
/// assert_eq!(event.to_packet(), json!(["hello", 1, "two"]));
/// assert_eq!(ServerEvent::from_packet(json!(["hello", 1, "two"])), Some(event));
/// assert_eq!(ServerEvent::from_packet(json!([1])), None);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerEvent {
    /// The event name.
    pub event: String,
    /// Its arguments.
    pub args: Vec<Value>,
}

impl ServerEvent {
    /// An event with these arguments.
    pub fn new(event: impl Into<String>, args: Vec<Value>) -> Self {
        Self {
            event: event.into(),
            args,
        }
    }

    /// Node's packet: `[event, ...args]`.
    pub fn to_packet(&self) -> Value {
        let mut items = Vec::with_capacity(self.args.len() + 1);
        items.push(Value::String(self.event.clone()));
        items.extend(self.args.iter().cloned());
        Value::Array(items)
    }

    /// Reads Node's packet; `None` unless it is an array starting with a string.
    pub fn from_packet(packet: Value) -> Option<Self> {
        let Value::Array(mut items) = packet else {
            return None;
        };
        if !items.first().is_some_and(Value::is_string) {
            return None;
        }
        let args = items.split_off(1);
        match items.pop() {
            Some(Value::String(event)) => Some(Self { event, args }),
            _ => None,
        }
    }
}

/// The answer callback a listener gets when the sending node waits for an answer
/// ([`Namespace::server_side_emit_with_ack`](crate::Namespace::server_side_emit_with_ack)).
/// Call [`send`](Self::send) once, now or later (from another task); dropping it unanswered
/// means this node does not answer (the sender times out for it, as in Node).
pub struct ServerAck {
    respond: Box<dyn FnOnce(Value) + Send>,
}

impl fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAck").finish_non_exhaustive()
    }
}

impl ServerAck {
    /// A callback that hands the answer to `respond` (the adapter publishes it to the sender).
    pub fn new(respond: impl FnOnce(Value) + Send + 'static) -> Self {
        Self {
            respond: Box::new(respond),
        }
    }

    /// Answers the sender with `value`.
    pub fn send(self, value: Value) {
        (self.respond)(value);
    }
}
