//! Event arguments: [`Args`] going out, [`AckResponse`] coming back.

use std::fmt::{self, Write as _};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sockeye_codec::Utf8Bytes;
use sockeye_codec::socketio::Placeholder;

use crate::error::EmitError;

/// The arguments of an event or an acknowledgement: raw JSON values (without the surrounding
/// brackets) and the binary attachments their placeholders refer to.
///
/// ```
/// use sockeye_broker::Args;
/// let args = Args::new().arg(&1).unwrap().arg(&"two").unwrap().binary(bytes::Bytes::from_static(b"\x03"));
/// assert_eq!(args.json(), r#"1,"two",{"_placeholder":true,"num":0}"#);
/// assert_eq!(args.attachments().len(), 1);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Args {
    json: String,
    attachments: Vec<Bytes>,
}

impl Args {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// One argument.
    ///
    /// # Errors
    /// [`EmitError::Serialize`] when `value` cannot be written as JSON.
    pub fn one<T: Serialize + ?Sized>(value: &T) -> Result<Self, EmitError> {
        Self::new().arg(value)
    }

    /// Appends one argument.
    ///
    /// # Errors
    /// [`EmitError::Serialize`] when `value` cannot be written as JSON.
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, EmitError> {
        let text = serde_json::to_string(value).map_err(|_| EmitError::Serialize)?;
        if self.json.is_empty() {
            self.json = text;
        } else {
            self.json.push(',');
            self.json.push_str(&text);
        }
        Ok(self)
    }

    /// Appends a binary argument: a placeholder in the JSON and the bytes as an attachment.
    #[must_use]
    pub fn binary(mut self, data: Bytes) -> Self {
        self.separator();
        let placeholder = Placeholder(self.attachments.len());
        // A placeholder always serializes; write it by hand to skip the error path.
        let _ = write!(
            self.json,
            r#"{{"_placeholder":true,"num":{}}}"#,
            placeholder.0
        );
        self.attachments.push(data);
        self
    }

    /// Arguments from raw JSON values separated by commas (as [`RawArgs`](crate::RawArgs) or
    /// [`Packet::args`](sockeye_codec::socketio::Packet::args) give them) and the attachments
    /// their placeholders refer to, sent unchanged. The caller vouches for the JSON.
    pub fn raw(json: &str, attachments: Vec<Bytes>) -> Self {
        Self {
            json: json.to_owned(),
            attachments,
        }
    }

    /// The arguments as raw JSON values separated by commas.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }

    pub(crate) fn into_parts(self) -> (String, Vec<Bytes>) {
        (self.json, self.attachments)
    }

    fn separator(&mut self) {
        if !self.json.is_empty() {
            self.json.push(',');
        }
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args")
            .field("json", &self.json)
            .field("attachments", &self.attachments.len())
            .finish()
    }
}

/// Builds the data of an EVENT: `["<event>",<args>]`.
pub(crate) fn event_data(event: &str, args: &str) -> Result<Utf8Bytes, EmitError> {
    let mut buf = Vec::with_capacity(event.len() + args.len() + 5);
    buf.push(b'[');
    serde_json::to_writer(&mut buf, event).map_err(|_| EmitError::Serialize)?;
    if !args.is_empty() {
        buf.push(b',');
        buf.extend_from_slice(args.as_bytes());
    }
    buf.push(b']');
    Utf8Bytes::try_from(buf).map_err(|_| EmitError::Serialize)
}

/// Builds the data of an ACK: `[<args>]`.
pub(crate) fn ack_data(args: &str) -> Utf8Bytes {
    let mut text = String::with_capacity(args.len() + 2);
    text.push('[');
    text.push_str(args);
    text.push(']');
    Utf8Bytes::from(text)
}

/// What a client sent back for an acknowledgement: the arguments as raw JSON and the binary
/// attachments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckResponse {
    /// The raw JSON array of the arguments, brackets included (`[1,"2"]`).
    pub data: Utf8Bytes,
    /// The binary attachments the placeholders refer to.
    pub attachments: Vec<Bytes>,
}

impl AckResponse {
    /// Deserializes the first argument (`null` when there is none).
    ///
    /// # Errors
    /// The JSON error when the argument does not have `T`'s shape.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        nth_arg(self.data.as_str(), 0)
    }

    /// Deserializes all the arguments as one array (a tuple or a `Vec`).
    ///
    /// # Errors
    /// The JSON error when the arguments do not have `T`'s shape.
    pub fn all<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.as_str())
    }

    /// The arguments as raw JSON values separated by commas, ready to be sent on unchanged.
    pub fn args(&self) -> Args {
        let inner = self
            .data
            .as_str()
            .trim()
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or_default()
            .trim();
        Args::raw(inner, self.attachments.clone())
    }
}

/// Deserializes element `n` of a JSON array (`null` when the array is shorter), without
/// building a value tree for the other elements.
pub(crate) fn nth_arg<T: DeserializeOwned>(array: &str, n: usize) -> Result<T, serde_json::Error> {
    use serde::Deserializer as _;
    use serde::de::{IgnoredAny, SeqAccess, Visitor};

    struct Nth<T>(usize, std::marker::PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for Nth<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of arguments")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
            for _ in 0..self.0 {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(None);
                }
            }
            let value = seq.next_element::<T>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(value)
        }
    }

    let mut de = serde_json::Deserializer::from_str(array);
    let value = de.deserialize_seq(Nth::<T>(n, std::marker::PhantomData))?;
    de.end()?;
    match value {
        Some(value) => Ok(value),
        None => serde_json::from_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_event_and_ack_data() {
        let args = Args::one(&serde_json::json!({"a": [1]})).unwrap();
        assert_eq!(
            event_data("ev\"", args.json()).unwrap(),
            r#"["ev\"",{"a":[1]}]"#
        );
        assert_eq!(event_data("ev", "").unwrap(), r#"["ev"]"#);
        assert_eq!(ack_data(r#"1,"2""#), r#"[1,"2"]"#);
    }

    #[test]
    fn reads_the_nth_argument() {
        let array = r#"["ev",{"x":1},2]"#;
        assert_eq!(nth_arg::<serde_json::Value>(array, 1).unwrap()["x"], 1);
        assert_eq!(nth_arg::<u8>(array, 2).unwrap(), 2);
        assert_eq!(nth_arg::<Option<u8>>(array, 3).unwrap(), None);
        assert!(nth_arg::<u8>(array, 1).is_err());
        let response = AckResponse {
            data: Utf8Bytes::from(r#"[ 1 , "2" ]"#),
            attachments: vec![],
        };
        assert_eq!(response.first::<u8>().unwrap(), 1);
        assert_eq!(response.all::<(u8, String)>().unwrap(), (1, "2".to_owned()));
        assert_eq!(response.args().json(), r#"1 , "2""#);
    }
}
