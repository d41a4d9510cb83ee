//! Identifiers: [`SocketId`] and [`Room`].

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Length in characters of a [`SocketId`]: 15 random bytes in unpadded base64url.
pub const SOCKET_ID_LEN: usize = 20;

/// The id of one Socket.IO socket: 20 base64url characters from 15 random bytes, distinct from
/// the Engine.IO session id (protocol v5). `Copy`, hashes and compares as its text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId([u8; SOCKET_ID_LEN]);

impl SocketId {
    /// A fresh random id from the thread-local cryptographic generator.
    pub fn random() -> Self {
        let raw: [u8; 15] = rand::random();
        let mut id = [0u8; SOCKET_ID_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut id)
            .expect("invariant: 15 bytes encode to exactly 20 base64 characters");
        debug_assert_eq!(written, SOCKET_ID_LEN);
        Self(id)
    }

    /// Parses an id as [`SocketId::as_str`] prints it; `None` unless `text` is 20 base64url
    /// characters.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; SOCKET_ID_LEN] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .then_some(Self(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("invariant: a socket id is ASCII")
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketId({})", self.as_str())
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SocketId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("not a socket id"))
    }
}

impl serde::Serialize for SocketId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The name of a room. Any string is a valid room name at this layer (as in the reference
/// server); applications add their own rules. Cloning is a reference-count bump.
///
/// Every socket is implicitly in the room named by its [`SocketId`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Room(Arc<str>);

impl Room {
    /// A room with this name.
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    /// The room's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The socket whose own room this is, if the name is a socket id.
    pub fn socket_id(&self) -> Option<SocketId> {
        SocketId::parse(&self.0)
    }
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Room({:?})", &*self.0)
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Room {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Room {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Room {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for Room {
    fn from(name: String) -> Self {
        Self(Arc::from(name))
    }
}

impl From<&String> for Room {
    fn from(name: &String) -> Self {
        Self::new(name)
    }
}

impl From<SocketId> for Room {
    fn from(id: SocketId) -> Self {
        Self::new(id.as_str())
    }
}

impl From<&Self> for Room {
    fn from(room: &Self) -> Self {
        room.clone()
    }
}

impl<'de> serde::Deserialize<'de> for Room {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::new(&text))
    }
}

impl serde::Serialize for Room {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Anything that names one or several rooms: a `&str`, `String`, [`Room`], [`SocketId`], or an
/// array, `Vec` or slice of those.
pub trait IntoRooms {
    /// Appends the rooms to `out`.
    fn into_rooms(self, out: &mut Vec<Room>);
}

impl<T: Into<Room>> IntoRooms for T {
    fn into_rooms(self, out: &mut Vec<Room>) {
        out.push(self.into());
    }
}

impl<T: Into<Room>> IntoRooms for Vec<T> {
    fn into_rooms(self, out: &mut Vec<Room>) {
        out.extend(self.into_iter().map(Into::into));
    }
}

impl<T: Into<Room>, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self, out: &mut Vec<Room>) {
        out.extend(self.into_iter().map(Into::into));
    }
}

impl<T: Into<Room> + Clone> IntoRooms for &[T] {
    fn into_rooms(self, out: &mut Vec<Room>) {
        out.extend(self.iter().cloned().map(Into::into));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_ids_are_distinct_and_parse_back() {
        let a = SocketId::random();
        let b = SocketId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), SOCKET_ID_LEN);
        assert_eq!(SocketId::parse(a.as_str()), Some(a));
        assert_eq!(Room::from(a).socket_id(), Some(a));
        assert_eq!(SocketId::parse("short"), None);
        assert_eq!(SocketId::parse("aaaaaaaaaaaaaaaaaaa!"), None);
    }

    #[test]
    fn into_rooms_accepts_common_shapes() {
        let mut out = Vec::new();
        "a".into_rooms(&mut out);
        ["b", "c"].into_rooms(&mut out);
        vec![String::from("d")].into_rooms(&mut out);
        let names: Vec<&str> = out.iter().map(Room::as_str).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }
}
