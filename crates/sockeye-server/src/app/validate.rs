//! Payload validation of the client events: "parse, don't validate". Each event's payload
//! becomes a typed request or an [`AppError`] with code `VALIDATION`.

use std::fmt;
use std::num::NonZeroUsize;

use serde_json::Value;

use super::error::AppError;

/// The longest room name, in bytes (= characters: room names are ASCII).
pub const MAX_ROOM_LEN: usize = 128;

/// A room name: 1 to 128 ASCII letters, digits and `_ - . :`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

impl RoomName {
    /// Checks a room name.
    ///
    /// # Errors
    ///
    /// `VALIDATION` for an empty, too long or ill-charactered name.
    pub fn parse(name: &str) -> Result<Self, AppError> {
        if name.is_empty() {
            return Err(AppError::validation("room must not be empty"));
        }
        if name.len() > MAX_ROOM_LEN {
            return Err(AppError::validation(
                "room must be at most 128 characters long",
            ));
        }
        if !name.bytes().all(is_room_byte) {
            return Err(AppError::validation(
                "room may only contain ASCII letters, digits and _ - . :",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const fn is_room_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
}

/// The limits of the validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_content: Option<NonZeroUsize>,
    max_rooms: usize,
}

/// The default of [`Limits::max_rooms_per_socket`].
pub const MAX_ROOMS_PER_SOCKET: usize = 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_content: NonZeroUsize::new(crate::config::defaults::MAX_CONTENT_LENGTH),
            max_rooms: MAX_ROOMS_PER_SOCKET,
        }
    }
}

impl Limits {
    /// The longest `content` in Unicode code points; `None` for no cap (default 4096).
    #[must_use]
    pub fn max_content(mut self, max: Option<NonZeroUsize>) -> Self {
        self.max_content = max;
        self
    }

    /// The cap on `content`, if any.
    pub fn max_content_len(&self) -> Option<NonZeroUsize> {
        self.max_content
    }

    /// The most rooms one socket may be in through `join`, its own id room included (default
    /// [`MAX_ROOMS_PER_SOCKET`]); a `join` past it is `FORBIDDEN`, so a client cannot make the
    /// server hold an unbounded room index for it. The reference has no such cap.
    #[must_use]
    pub fn max_rooms_per_socket(mut self, max: usize) -> Self {
        self.max_rooms = max;
        self
    }

    /// The cap on rooms per socket.
    pub fn max_rooms(&self) -> usize {
        self.max_rooms
    }
}

/// A `message` event: `{ content, room? }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRequest {
    /// The text.
    pub content: String,
    /// The room, when the message goes to one.
    pub room: Option<RoomName>,
}

impl MessageRequest {
    /// Checks the first argument of a `message` event (`None` when there was none).
    ///
    /// # Errors
    ///
    /// `VALIDATION` for any other shape, a `content` that is not a string of 1 to the limit of
    /// code points, or a bad room name. Keys other than `content` and `room` are ignored; a
    /// `room` of `null` counts as absent.
    pub fn parse(payload: Option<&Value>, limits: &Limits) -> Result<Self, AppError> {
        let Some(Value::Object(map)) = payload else {
            return Err(AppError::validation(
                "message payload must be an object { content, room? }",
            ));
        };
        let Some(Value::String(content)) = map.get("content") else {
            return Err(AppError::validation("content must be a string"));
        };
        if content.is_empty() {
            return Err(AppError::validation("content must not be empty"));
        }
        if let Some(max) = limits.max_content {
            // Bytes bound code points from above: count only when it can matter.
            if content.len() > max.get() && content.chars().count() > max.get() {
                return Err(AppError::validation(format!(
                    "content must be at most {max} characters long"
                )));
            }
        }
        let room = match map.get("room") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(RoomName::parse(name)?),
            Some(_) => return Err(AppError::validation("room must be a string")),
        };
        Ok(Self {
            content: content.clone(),
            room,
        })
    }
}

/// The payload of `join` and `leave`: a room name, or `{ room }`.
///
/// # Errors
///
/// `VALIDATION` for any other shape or a bad name.
pub fn parse_room_payload(payload: Option<&Value>) -> Result<RoomName, AppError> {
    match payload {
        Some(Value::String(name)) => RoomName::parse(name),
        Some(Value::Object(map)) => match map.get("room") {
            Some(Value::String(name)) => RoomName::parse(name),
            _ => Err(AppError::validation("room must be a string")),
        },
        _ => Err(AppError::validation(
            "payload must be a room name or { room }",
        )),
    }
}

/// The payload of `auth`: `{ token }`. Returns the object, for
/// [`sockeye_auth::extract_token`].
///
/// # Errors
///
/// `VALIDATION` when the payload is not an object.
pub fn parse_auth_payload(payload: Option<&Value>) -> Result<&Value, AppError> {
    match payload {
        Some(object @ Value::Object(_)) => Ok(object),
        _ => Err(AppError::validation(
            "auth payload must be an object { token }",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::app::error::ErrorCode;

    fn msg(v: &Value) -> Result<MessageRequest, AppError> {
        MessageRequest::parse(Some(v), &Limits::default())
    }

    #[test]
    fn room_names() {
        for ok in ["x", "Az09_-.:", &"r".repeat(128), "chat:lobby"] {
            assert_eq!(RoomName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            &"r".repeat(129),
            "two words",
            "a/b",
            "café",
            "room😀",
            "a\nb",
        ] {
            assert_eq!(
                RoomName::parse(bad).unwrap_err().code(),
                ErrorCode::Validation,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn message_shapes() {
        let m = msg(&json!({ "content": "hi", "from": "forged", "id": 1 })).unwrap();
        assert_eq!(m.content, "hi");
        assert_eq!(m.room, None);
        let m = msg(&json!({ "content": "hi", "room": "lobby" })).unwrap();
        assert_eq!(m.room.unwrap().as_str(), "lobby");
        assert_eq!(
            msg(&json!({ "content": "hi", "room": null })).unwrap().room,
            None
        );
        for bad in [
            json!("hello"),
            json!(42),
            json!(null),
            json!([{ "content": "x" }]),
            json!({}),
            json!({ "content": 5 }),
            json!({ "content": null }),
            json!({ "content": { "text": "x" } }),
            json!({ "content": "" }),
            json!({ "content": "x", "room": 5 }),
            json!({ "content": "x", "room": "" }),
            json!({ "content": "x", "room": "two words" }),
            json!({ "content": "x", "room": "r".repeat(129) }),
        ] {
            assert_eq!(
                msg(&bad).unwrap_err().code(),
                ErrorCode::Validation,
                "{bad}"
            );
        }
        assert!(MessageRequest::parse(None, &Limits::default()).is_err());
    }

    #[test]
    fn content_counts_code_points() {
        assert!(msg(&json!({ "content": "a".repeat(4096) })).is_ok());
        assert!(msg(&json!({ "content": "😀".repeat(4096) })).is_ok());
        assert!(msg(&json!({ "content": "a".repeat(4097) })).is_err());
        assert!(msg(&json!({ "content": "😀".repeat(4097) })).is_err());
        let small = Limits::default().max_content(NonZeroUsize::new(16));
        let p = json!({ "content": "é".repeat(16) });
        assert!(MessageRequest::parse(Some(&p), &small).is_ok());
        let p = json!({ "content": "é".repeat(17) });
        assert!(MessageRequest::parse(Some(&p), &small).is_err());
        let off = Limits::default().max_content(None);
        let p = json!({ "content": "a".repeat(100_000) });
        assert!(MessageRequest::parse(Some(&p), &off).is_ok());
    }

    #[test]
    fn room_payloads() {
        assert_eq!(
            parse_room_payload(Some(&json!("lobby"))).unwrap().as_str(),
            "lobby"
        );
        assert_eq!(
            parse_room_payload(Some(&json!({ "room": "lobby", "x": 1 })))
                .unwrap()
                .as_str(),
            "lobby"
        );
        for bad in [
            json!(42),
            json!(null),
            json!(["lobby"]),
            json!({}),
            json!({ "room": 42 }),
            json!({ "room": "bad room" }),
        ] {
            assert!(parse_room_payload(Some(&bad)).is_err(), "{bad}");
        }
        assert!(parse_room_payload(None).is_err());
    }

    #[test]
    fn auth_payloads() {
        assert!(parse_auth_payload(Some(&json!({ "token": "a.b.c" }))).is_ok());
        assert!(parse_auth_payload(Some(&json!("just a string"))).is_err());
        assert!(parse_auth_payload(None).is_err());
    }
}
