//! [`Utf8Bytes`]: a cheaply cloneable byte buffer that is known to hold valid UTF-8.
//!
//! This is the crate's one module with `unsafe` code: [`Utf8Bytes::as_str`] skips the UTF-8 check
//! because every constructor performs it, starts from a `str`, or freezes the crate-internal
//! `Utf8BytesMut`, which only accepts `str`s and ASCII. The fields are private, so no code
//! outside this module can break the invariant.
#![allow(unsafe_code)]

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::{BufMut, Bytes, BytesMut};

/// A [`Bytes`] that holds valid UTF-8. Cloning it is a reference-count bump.
///
/// Decoded packets hand out text fields as `Utf8Bytes` that point into the frame they came from,
/// so decoding copies nothing.
///
/// ```
/// use sockeye_codec::Utf8Bytes;
/// let text = Utf8Bytes::from_static("hello");
/// assert_eq!(text.as_str(), "hello");
/// assert!(Utf8Bytes::try_from_bytes(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
///
/// It hashes, compares and orders exactly as its `str` does, so a `HashMap<Utf8Bytes, _>` can be
/// queried with a `&str` (the [`Borrow<str>`] contract).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps a static string without copying.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// Checks that `bytes` is UTF-8 and wraps it without copying.
    ///
    /// # Errors
    /// Returns the [`Utf8Error`] when `bytes` is not valid UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor of `Utf8Bytes` either checks the bytes with
        // `std::str::from_utf8`, starts from a `&str`/`String`, or is `Utf8BytesMut::freeze`,
        // whose buffer only ever received `&str`s, ASCII bytes and base64 (ASCII). The slicing
        // methods below only cut at `char` boundaries of that text (they take a `&str` that is a
        // sub-slice of `self.as_str()`). The fields are private to this module, so the bytes are
        // valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Gives back the underlying [`Bytes`].
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A zero-copy `Utf8Bytes` for `part`, which must be a sub-slice of `self.as_str()`.
    ///
    /// Returns `None` when `part` does not point inside `self`.
    pub fn slice_ref(&self, part: &str) -> Option<Self> {
        let whole = self.as_str();
        let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        if end > whole.len() {
            return None;
        }
        // `part` is a `&str` inside `whole`, so `start` and `end` are char boundaries.
        Some(Self(self.0.slice(start..end)))
    }

    /// A zero-copy `Utf8Bytes` for the byte range `start..`, or `None` when `start` is out of
    /// range or not on a `char` boundary.
    pub fn slice_from(&self, start: usize) -> Option<Self> {
        let part = self.as_str().get(start..)?;
        self.slice_ref(part)
    }
}

impl Hash for Utf8Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // `Borrow<str>` requires the hash of the `str`, which differs from the hash of `[u8]`.
        self.as_str().hash(state);
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Utf8Error;

    fn try_from(bytes: Bytes) -> Result<Self, Utf8Error> {
        Self::try_from_bytes(bytes)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = Utf8Error;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Utf8Error> {
        Self::try_from_bytes(Bytes::from(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A growable buffer that only ever holds UTF-8, so freezing it needs no check: the encoders
/// write into it, and a message encoded once is not validated again.
#[derive(Debug, Default)]
pub(crate) struct Utf8BytesMut(BytesMut);

impl Utf8BytesMut {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(BytesMut::with_capacity(capacity))
    }

    pub(crate) fn push_str(&mut self, text: &str) {
        self.0.put_slice(text.as_bytes());
    }

    /// Appends one ASCII byte; a byte outside ASCII is written as U+FFFD so the buffer stays
    /// UTF-8 (callers only pass digits and punctuation).
    pub(crate) fn push_ascii(&mut self, byte: u8) {
        if byte.is_ascii() {
            self.0.put_u8(byte);
        } else {
            debug_assert!(false, "push_ascii called with {byte:#04x}");
            self.push_str("\u{FFFD}");
        }
    }

    /// Appends `data` as padded standard base64 (ASCII).
    pub(crate) fn push_base64(&mut self, data: &[u8]) {
        crate::engineio::put_base64(&mut self.0, data);
    }

    pub(crate) fn freeze(self) -> Utf8Bytes {
        // Only `push_str` (a `&str`), `push_ascii` (an ASCII byte) and `push_base64` (ASCII)
        // write into the buffer, so it holds UTF-8.
        Utf8Bytes(self.0.freeze())
    }
}

/// Where the encoders write text: a caller's [`BytesMut`] or an internal [`Utf8BytesMut`].
pub(crate) trait TextSink {
    fn put_text(&mut self, text: &str);
    fn put_ascii(&mut self, byte: u8);
    fn put_base64(&mut self, data: &[u8]);
}

impl TextSink for BytesMut {
    fn put_text(&mut self, text: &str) {
        self.put_slice(text.as_bytes());
    }

    fn put_ascii(&mut self, byte: u8) {
        self.put_u8(byte);
    }

    fn put_base64(&mut self, data: &[u8]) {
        crate::engineio::put_base64(self, data);
    }
}

impl TextSink for Utf8BytesMut {
    fn put_text(&mut self, text: &str) {
        self.push_str(text);
    }

    fn put_ascii(&mut self, byte: u8) {
        self.push_ascii(byte);
    }

    fn put_base64(&mut self, data: &[u8]) {
        self.push_base64(data);
    }
}

/// `to_text` builds a `String` of the exact length and hands it to `Utf8Bytes` without a copy:
/// less bookkeeping than a `BytesMut` for a one-shot encode.
impl TextSink for String {
    fn put_text(&mut self, text: &str) {
        self.push_str(text);
    }

    fn put_ascii(&mut self, byte: u8) {
        self.push(char::from(byte));
    }

    fn put_base64(&mut self, data: &[u8]) {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode_string(data, self);
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Utf8Bytes {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self::from(String::arbitrary(u)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_utf8() {
        assert!(Utf8Bytes::try_from_bytes(Bytes::from_static(b"ok\xc3")).is_err());
        assert_eq!(
            Utf8Bytes::try_from_bytes(Bytes::from_static("é".as_bytes()))
                .unwrap()
                .as_str(),
            "é"
        );
    }

    #[test]
    fn slice_ref_checks_bounds() {
        let text = Utf8Bytes::from("hello world");
        let world = text.slice_ref(&text.as_str()[6..]).unwrap();
        assert_eq!(world, "world");
        assert!(text.slice_ref("elsewhere").is_none());
        assert!(Utf8Bytes::from("é").slice_from(1).is_none());
        assert_eq!(text.slice_from(11).unwrap(), "");
        assert!(text.slice_from(12).is_none());
    }

    #[test]
    fn hashes_like_its_str() {
        use std::collections::HashMap;
        let mut map = HashMap::new();
        map.insert(Utf8Bytes::from("/chat"), 1);
        assert_eq!(map.get("/chat"), Some(&1));
    }

    #[test]
    fn builder_freezes_what_was_pushed() {
        let mut buf = Utf8BytesMut::with_capacity(4);
        buf.push_ascii(b'4');
        buf.push_str("é");
        assert_eq!(buf.freeze(), "4é");
    }
}
