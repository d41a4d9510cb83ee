//! [`Outgoing`]: an Engine.IO message encoded once and shared by every recipient.

use std::sync::Arc;

use bytes::Bytes;

use crate::Utf8Bytes;
use crate::engineio::base64_len;
use crate::socketio;
use crate::utf8::Utf8BytesMut;

/// One Engine.IO message ready to send: its text packet (`4` followed by the data, usually a
/// Socket.IO packet) and the binary frames that follow it. A broadcast encodes it once and hands
/// every recipient a clone, which is a reference-count bump; nothing is copied per recipient.
///
/// The frames are the same on both transports: over WebSocket the text is one text frame and each
/// binary part one binary frame; over long-polling they are records of the body, binary parts
/// written as `b` + base64 (see [`PayloadBuilder`](crate::engineio::PayloadBuilder)).
///
/// ```
/// use sockeye_codec::{Outgoing, Utf8Bytes};
/// use sockeye_codec::socketio::Packet;
///
/// let packet = Packet::event("/", Utf8Bytes::from_static(r#"["message","hi"]"#));
/// let message = Outgoing::socketio(&packet, Vec::new());
/// let copy = message.clone(); // no re-encoding, no copy of the bytes
/// assert_eq!(copy.text().unwrap(), r#"42["message","hi"]"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Outgoing(Arc<Parts>);

/// One pointer per clone keeps send queues small: a queued message is 8 bytes, not the 48 of
/// its parts, which matters when a broadcast touches thousands of queues.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Parts {
    text: Option<Utf8Bytes>,
    binaries: Box<[Bytes]>,
    /// Text plus binary bytes, computed once.
    wire_len: usize,
}

/// One frame of an [`Outgoing`] message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // complete by definition: Engine.IO frames are text or binary
pub enum Frame<'a> {
    /// The Engine.IO text packet, starting with `4`.
    Text(&'a Utf8Bytes),
    /// A binary message (raw bytes: no prefix on WebSocket, `b` + base64 on polling).
    Binary(&'a Bytes),
}

impl Outgoing {
    /// A text message: `4` followed by `text`.
    pub fn message_text(text: &str) -> Self {
        let mut dst = Utf8BytesMut::with_capacity(1 + text.len());
        dst.push_ascii(b'4');
        dst.push_str(text);
        Self::from_text(dst.freeze())
    }

    /// A binary message.
    pub fn binary(data: Bytes) -> Self {
        Self::from_parts(None, Box::from([data]))
    }

    /// A Socket.IO packet and its binary attachments, encoded once.
    ///
    /// `attachments` must match `packet.attachments` for binary packet kinds; this is the
    /// caller's invariant (the broker builds both from the same arguments).
    pub fn socketio(packet: &socketio::Packet, attachments: Vec<Bytes>) -> Self {
        // One allocation of the exact size, no second copy for the `4`, and no UTF-8 check of
        // the result: the buffer only ever receives `str`s and ASCII.
        let mut dst = Utf8BytesMut::with_capacity(1 + packet.encoded_len());
        dst.push_ascii(b'4');
        packet.encode_to(&mut dst);
        Self::from_parts(Some(dst.freeze()), attachments.into_boxed_slice())
    }

    /// A message from an already encoded Engine.IO text packet (`text` must start with `4`) and
    /// binary frames. Returns `None` when `text` is not a message packet.
    pub fn from_encoded(text: Utf8Bytes, attachments: Vec<Bytes>) -> Option<Self> {
        if text.as_bytes().first() != Some(&b'4') {
            return None;
        }
        Some(Self::from_parts(Some(text), attachments.into_boxed_slice()))
    }

    /// The Engine.IO text packet (`4...`), absent for a bare binary message.
    pub fn text(&self) -> Option<&Utf8Bytes> {
        self.0.text.as_ref()
    }

    /// The binary frames.
    pub fn binaries(&self) -> &[Bytes] {
        &self.0.binaries
    }

    /// The frames in the order they go on the wire.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = Frame<'_>> + '_ {
        let text = self.0.text.as_ref().map(Frame::Text);
        let count = usize::from(text.is_some()) + self.binaries().len();
        Frames {
            text,
            binaries: self.binaries().iter(),
            count,
        }
    }

    /// How many frames the message has.
    pub fn frame_count(&self) -> usize {
        usize::from(self.0.text.is_some()) + self.binaries().len()
    }

    /// The bytes the frames carry (text plus binary data, without any framing): what a send
    /// queue should count against its bound.
    pub fn wire_len(&self) -> usize {
        self.0.wire_len
    }

    /// The message's length in a long-polling body, separators between its own records
    /// included (not the separator before it).
    pub fn polling_len(&self) -> usize {
        let text = self.0.text.as_ref().map_or(0, Utf8Bytes::len);
        let binaries: usize = self
            .binaries()
            .iter()
            .map(|data| 1 + base64_len(data.len()))
            .sum();
        text + binaries + self.frame_count().saturating_sub(1)
    }

    fn from_text(text: Utf8Bytes) -> Self {
        Self::from_parts(Some(text), Box::default())
    }

    fn from_parts(text: Option<Utf8Bytes>, binaries: Box<[Bytes]>) -> Self {
        let wire_len = text.as_ref().map_or(0, Utf8Bytes::len)
            + binaries.iter().map(Bytes::len).sum::<usize>();
        Self(Arc::new(Parts {
            text,
            binaries,
            wire_len,
        }))
    }
}

struct Frames<'a> {
    text: Option<Frame<'a>>,
    binaries: std::slice::Iter<'a, Bytes>,
    count: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        let frame = self
            .text
            .take()
            .or_else(|| self.binaries.next().map(Frame::Binary))?;
        self.count = self.count.saturating_sub(1);
        Some(frame)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.count, Some(self.count))
    }
}

impl ExactSizeIterator for Frames<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_encoded_bytes() {
        let message = Outgoing::message_text("hello");
        let copy = message.clone();
        let (a, b) = (message.text().unwrap(), copy.text().unwrap());
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
    }

    #[test]
    fn frames_come_text_first() {
        let message = Outgoing::from_encoded(
            Utf8Bytes::from_static("451-[\"x\",{\"_placeholder\":true,\"num\":0}]"),
            vec![Bytes::from_static(b"\x01")],
        )
        .unwrap();
        let frames: Vec<_> = message.frames().collect();
        assert_eq!(frames.len(), 2);
        assert!(matches!(frames[0], Frame::Text(_)));
        assert_eq!(frames[1], Frame::Binary(&Bytes::from_static(b"\x01")));
        assert_eq!(message.wire_len(), message.text().unwrap().len() + 1);
        assert!(Outgoing::from_encoded(Utf8Bytes::from_static("2"), Vec::new()).is_none());
        let binary = Outgoing::binary(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(binary.frame_count(), 1);
        assert_eq!(binary.polling_len(), 5);
    }
}
