//! The token newtype and its extraction from the three handshake sources.

use std::fmt;

use serde_json::Value;

use crate::Rejection;

/// The largest token accepted, in bytes (8 KiB). Larger ones are [`Rejection::Malformed`].
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A compact-serialized JWT as a client sent it. Not yet verified.
///
/// Its `Debug` prints `Token(<redacted>)` and it has no `Display`, so it cannot end up in a
/// log line by accident. [`as_str`](Self::as_str) is the one way to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token after the cheap shape checks every source shares: not empty, at most
    /// [`MAX_TOKEN_LEN`] bytes, only base64url characters and `.`.
    ///
    /// # Errors
    ///
    /// [`Rejection::Malformed`] when one of those checks fails.
    pub fn new(text: &str) -> Result<Self, Rejection> {
        if text.is_empty() {
            return Err(Rejection::malformed("empty token"));
        }
        if text.len() > MAX_TOKEN_LEN {
            return Err(Rejection::malformed("token larger than 8 KiB"));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        if !text.bytes().all(allowed) {
            return Err(Rejection::malformed(
                "token has characters outside base64url and '.'",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The token text. Never log it; pass it to a client or to a verifier only.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Takes the token from the first *present* source, in the contract's order:
///
/// 1. `auth`: the Socket.IO handshake auth object (the CONNECT packet's data). Its `token`
///    is present when it is anything but `null`/absent; a non-string or empty string is
///    [`Rejection::Malformed`]. An `auth` that is not a JSON object has no `token`.
/// 2. `authorization_header`: the raw value of the `Authorization` header of the HTTP request
///    that opened the Engine.IO session. Present when its scheme is `Bearer` in any letter
///    case; `Bearer` with nothing after it is malformed; other schemes are ignored.
/// 3. `query_token`: the (already percent-decoded) value of the `token` query parameter;
///    present when not empty. [`token_from_query`] finds it in a raw query string.
///
/// The first present source decides: if its token is malformed the later sources are not
/// consulted.
///
/// # Errors
///
/// [`Rejection::Missing`] when no source is present, [`Rejection::Malformed`] when the
/// deciding source's token fails [`Token::new`]'s checks (including the 8 KiB cap).
pub fn extract_token(
    auth: Option<&Value>,
    authorization_header: Option<&[u8]>,
    query_token: Option<&str>,
) -> Result<Token, Rejection> {
    match auth.and_then(Value::as_object).and_then(|o| o.get("token")) {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => return Token::new(text),
        Some(_) => return Err(Rejection::malformed("auth.token is not a string")),
    }
    if let Some(credentials) = authorization_header.and_then(bearer_credentials) {
        let text = std::str::from_utf8(credentials)
            .map_err(|_| Rejection::malformed("bearer token is not UTF-8"))?;
        return Token::new(text);
    }
    match query_token {
        Some(text) if !text.is_empty() => Token::new(text),
        _ => Err(Rejection::Missing),
    }
}

/// The credentials after a `Bearer` scheme (trimmed, possibly empty), or `None` when the
/// header uses another scheme.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let value = value.trim_ascii();
    let scheme_end = value.iter().position(is_space).unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Finds the first `token` parameter in a raw query string (without the `?`) and
/// percent-decodes it (`+` is a space, as in forms). Returns `None` when there is none.
///
/// Invalid escapes are kept as written and invalid UTF-8 is replaced, so a mangled value
/// still reaches [`extract_token`] and is refused there as malformed rather than ignored.
pub fn token_from_query(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == "token")
        .map(|(_, value)| percent_decode(value))
}

/// Percent-decodes one component of a query string (`+` is a space, as in forms). Invalid
/// escapes are kept as written and invalid UTF-8 is replaced, never refused: the same decoding
/// [`token_from_query`] applies, so a server that parses the whole query with it hands
/// [`extract_token`] exactly what this crate would have found.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(decoded) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(decoded);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const A: &str = "aaa.bbb.ccc";

    #[test]
    fn debug_is_redacted() {
        let token = Token::new(A).unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert_eq!(format!("{token:#?}"), "Token(<redacted>)");
    }

    #[test]
    fn auth_token_types() {
        let r = |v: Value| extract_token(Some(&v), None, None);
        assert_eq!(r(json!({ "token": A })).unwrap().as_str(), A);
        assert_eq!(r(json!({ "token": null })), Err(Rejection::Missing));
        assert_eq!(r(json!({})), Err(Rejection::Missing));
        assert_eq!(r(json!("not an object")), Err(Rejection::Missing));
        for bad in [
            json!(""),
            json!(1),
            json!(true),
            json!([A]),
            json!({ "t": A }),
        ] {
            assert_eq!(
                r(json!({ "token": bad })).unwrap_err().reason(),
                "malformed"
            );
        }
    }

    #[test]
    fn bearer_header_forms() {
        let r = |h: &str| extract_token(None, Some(h.as_bytes()), Some("q.q.q"));
        for ok in [
            "Bearer aaa.bbb.ccc",
            "bearer aaa.bbb.ccc",
            "BEARER\taaa.bbb.ccc ",
            "  BeArEr   aaa.bbb.ccc",
        ] {
            assert_eq!(r(ok).unwrap().as_str(), A, "{ok}");
        }
        for empty in ["Bearer", "bearer ", "Bearer \t "] {
            assert_eq!(r(empty).unwrap_err().reason(), "malformed", "{empty}");
        }
        // Other schemes are ignored: the query token decides.
        for other in [
            "Basic dXNlcjpwYXNz",
            "Bearerx aaa.bbb.ccc",
            "",
            "Token aaa.bbb.ccc",
        ] {
            assert_eq!(r(other).unwrap().as_str(), "q.q.q", "{other}");
        }
        assert_eq!(
            extract_token(None, Some(b"Bearer \xff\xfe"), None)
                .unwrap_err()
                .reason(),
            "malformed"
        );
    }

    #[test]
    fn size_cap_and_charset() {
        let big = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(Token::new(&big).unwrap_err().reason(), "malformed");
        assert!(Token::new(&"a".repeat(MAX_TOKEN_LEN)).is_ok());
        assert_eq!(Token::new("a b.c").unwrap_err().reason(), "malformed");
        assert_eq!(Token::new("").unwrap_err().reason(), "malformed");
    }

    #[test]
    fn query_parsing() {
        assert_eq!(
            token_from_query("a=1&token=x.y.z&token=2").as_deref(),
            Some("x.y.z")
        );
        assert_eq!(token_from_query("EIO=4&transport=polling").as_deref(), None);
        assert_eq!(token_from_query("token").as_deref(), Some(""));
        assert_eq!(
            token_from_query("token=a%2Eb%2ec").as_deref(),
            Some("a.b.c")
        );
        assert_eq!(token_from_query("token=%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(token_from_query("token=a+b").as_deref(), Some("a b"));
    }
}
