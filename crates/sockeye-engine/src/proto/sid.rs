//! Session ids.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Number of random bytes in a session id (128 bits, over the 120 the issue asks for).
const SID_RANDOM_BYTES: usize = 16;
const SID_LEN: usize = 22;

/// An Engine.IO session id: 128 random bits as 22 URL-safe base64 characters.
///
/// Stored inline (no allocation), `Copy`, compared in constant shape.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sid([u8; SID_LEN]);

/// A string that is not a session id this server could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid session id")]
pub struct InvalidSid;

impl Sid {
    /// Builds a session id from random bytes. The caller provides the randomness (a CSPRNG).
    pub fn from_random_bytes(bytes: [u8; SID_RANDOM_BYTES]) -> Self {
        let mut out = [0u8; SID_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut out)
            .expect("16 bytes always encode to 22 base64 characters");
        debug_assert_eq!(written, SID_LEN);
        Self(out)
    }

    /// Parses a session id received from a client.
    ///
    /// # Errors
    /// [`InvalidSid`] when the string has the wrong length or characters outside the URL-safe
    /// base64 alphabet.
    pub fn parse(s: &str) -> Result<Self, InvalidSid> {
        let bytes = s.as_bytes();
        let arr: [u8; SID_LEN] = bytes.try_into().map_err(|_| InvalidSid)?;
        if arr
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            Ok(Self(arr))
        } else {
            Err(InvalidSid)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a sid holds only base64 ASCII characters")
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let sid = Sid::from_random_bytes([0xfb; 16]);
        assert_eq!(sid.as_str().len(), 22);
        assert_eq!(Sid::parse(sid.as_str()), Ok(sid));
        assert!(!sid.as_str().contains(['+', '/', '=']));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Sid::parse(""), Err(InvalidSid));
        assert_eq!(Sid::parse("abc"), Err(InvalidSid));
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaaaa/"), Err(InvalidSid));
    }
}
