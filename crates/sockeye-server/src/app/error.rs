//! The `error` objects of the contract and the acknowledgement shapes.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value, json};

/// The `code` of an `error` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Something went wrong inside the server.
    Internal,
    /// The room is not one the socket is in.
    NotInRoom,
    /// The socket may not do that (join another socket's id room).
    Forbidden,
    /// The event was dropped by the rate limit.
    RateLimited,
    /// The socket's token expired.
    TokenExpired,
    /// A token was refused.
    Unauthorized,
    /// The event name is not one the application knows.
    UnknownEvent,
    /// The payload has the wrong shape or values.
    Validation,
}

impl ErrorCode {
    /// Every code, for metrics.
    pub const ALL: [Self; 8] = [
        Self::Internal,
        Self::NotInRoom,
        Self::Forbidden,
        Self::RateLimited,
        Self::TokenExpired,
        Self::Unauthorized,
        Self::UnknownEvent,
        Self::Validation,
    ];

    /// The code as clients see it (`VALIDATION`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "INTERNAL",
            Self::NotInRoom => "NOT_IN_ROOM",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::UnknownEvent => "UNKNOWN_EVENT",
            Self::Validation => "VALIDATION",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One application error: `{ code, message, event?, reason? }` on the wire.
///
/// `message` is a fixed or server-composed text: never a client's token, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    code: ErrorCode,
    message: Cow<'static, str>,
    event: Option<String>,
    reason: Option<&'static str>,
}

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            event: None,
            reason: None,
        }
    }

    /// `VALIDATION` with a message.
    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }

    /// `UNAUTHORIZED` for a refused token: the reason is the contract's word
    /// ([`sockeye_auth::Rejection::reason`]).
    pub fn unauthorized(rejection: &sockeye_auth::Rejection) -> Self {
        let mut e = Self::new(ErrorCode::Unauthorized, rejection.to_string());
        e.reason = Some(rejection.reason());
        e
    }

    /// Names the client event that caused the error.
    #[must_use]
    pub fn for_event(mut self, event: &str) -> Self {
        self.event = Some(event.to_owned());
        self
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The client event, when one caused it.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The auth rejection reason, for `UNAUTHORIZED`.
    pub fn reason(&self) -> Option<&'static str> {
        self.reason
    }

    /// The `error` object.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("code".to_owned(), Value::from(self.code.as_str()));
        map.insert("message".to_owned(), Value::from(self.message.as_ref()));
        if let Some(event) = &self.event {
            map.insert("event".to_owned(), Value::from(event.as_str()));
        }
        if let Some(reason) = self.reason {
            map.insert("reason".to_owned(), Value::from(reason));
        }
        Value::Object(map)
    }

    /// The acknowledgement of a failed event: `{ ok: false, error }`.
    pub fn to_ack(&self) -> Value {
        json!({ "ok": false, "error": self.to_json() })
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AppError {}

/// The acknowledgements of successful events.
pub mod ack {
    use serde_json::{Value, json};

    /// `message`: `{ ok: true, id }`.
    pub fn message(id: &str) -> Value {
        json!({ "ok": true, "id": id })
    }

    /// `join`: `{ ok: true, room, size }`.
    pub fn join(room: &str, size: usize) -> Value {
        json!({ "ok": true, "room": room, "size": size })
    }

    /// `leave`: `{ ok: true, room }`.
    pub fn leave(room: &str) -> Value {
        json!({ "ok": true, "room": room })
    }

    /// `auth`: `{ ok: true, exp }`.
    pub fn auth(exp: u64) -> Value {
        json!({ "ok": true, "exp": exp })
    }
}

/// The CONNECT_ERROR data of a refused handshake:
/// `{ message: "unauthorized", data: { code: "UNAUTHORIZED", reason } }` (the `message` is the
/// CONNECT_ERROR's own; this is the `data`).
pub fn connect_error_data(rejection: &sockeye_auth::Rejection) -> Value {
    json!({ "code": ErrorCode::Unauthorized.as_str(), "reason": rejection.reason() })
}

#[cfg(test)]
mod tests {
    use sockeye_auth::Rejection;

    use super::*;

    #[test]
    fn shapes() {
        let e = AppError::validation("content must be a string").for_event("message");
        assert_eq!(
            e.to_json(),
            json!({ "code": "VALIDATION", "message": "content must be a string", "event": "message" })
        );
        assert_eq!(
            e.to_ack(),
            json!({ "ok": false, "error": { "code": "VALIDATION", "message": "content must be a string", "event": "message" } })
        );
        let e = AppError::new(ErrorCode::TokenExpired, "token expired");
        assert_eq!(
            e.to_json(),
            json!({ "code": "TOKEN_EXPIRED", "message": "token expired" })
        );
        let e = AppError::unauthorized(&Rejection::SubMismatch).for_event("auth");
        assert_eq!(e.to_json()["reason"], "sub_mismatch");
        assert_eq!(e.to_json()["code"], "UNAUTHORIZED");
        assert_eq!(
            ack::join("r", 2),
            json!({ "ok": true, "room": "r", "size": 2 })
        );
        assert_eq!(ack::leave("r"), json!({ "ok": true, "room": "r" }));
        assert_eq!(ack::auth(5), json!({ "ok": true, "exp": 5 }));
        assert_eq!(ack::message("a-1"), json!({ "ok": true, "id": "a-1" }));
        assert_eq!(
            connect_error_data(&Rejection::Expired),
            json!({ "code": "UNAUTHORIZED", "reason": "expired" })
        );
    }

    #[test]
    fn codes_are_upper_snake() {
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{s}"
            );
        }
    }
}
