//! A small RFC 6455 frame reader and writer for the server side of a WebSocket.
//!
//! Why our own (see `docs/decisions/0001-sans-io-session.md`): server frames are unmasked, so a
//! message's payload bytes are the same for every recipient. The writer keeps each queued frame
//! as `[header, shared payload]` and writes everything queued with one vectored write, where
//! tungstenite would copy every payload into a per-connection buffer. The reader keeps no
//! buffer between messages beyond what is unread, which keeps idle connections small.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

/// Largest control frame payload (RFC 6455 5.5).
const MAX_CONTROL: usize = 125;

/// Close codes we send.
pub(crate) mod close_code {
    pub(crate) const NORMAL: u16 = 1000;
    pub(crate) const GOING_AWAY: u16 = 1001;
    pub(crate) const PROTOCOL: u16 = 1002;
    pub(crate) const INVALID_DATA: u16 = 1007;
    pub(crate) const POLICY: u16 = 1008;
    pub(crate) const TOO_BIG: u16 = 1009;
}

/// A frame-level event decoded from the client.
#[derive(Debug)]
pub(crate) enum Incoming {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close(Option<u16>),
}

/// Why the reader gave up; each maps to a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Malformed framing (1002).
    Protocol,
    /// A message over the size limit (1009).
    TooBig,
    /// A text message or a close reason that is not UTF-8 (1007).
    InvalidUtf8,
}

impl FrameError {
    pub(crate) fn close_code(self) -> u16 {
        match self {
            Self::Protocol => close_code::PROTOCOL,
            Self::TooBig => close_code::TOO_BIG,
            Self::InvalidUtf8 => close_code::INVALID_DATA,
        }
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 7.4, the IANA registry): 1000-1003,
/// 1007-1014 and the application range 3000-4999. 1004 is reserved, 1005, 1006 and 1015 must
/// never be on the wire, 1016-2999 are unassigned, below 1000 and from 5000 on are not codes.
pub(crate) fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Validates the text collected so far from byte `from` (a character boundary) on; returns the
/// length of its longest valid prefix. An incomplete character at the end is fine while more
/// fragments follow.
fn check_utf8(data: &[u8], from: usize, fin: bool) -> Result<usize, FrameError> {
    match std::str::from_utf8(data.get(from..).unwrap_or_default()) {
        Ok(_) => Ok(data.len()),
        Err(error) if error.error_len().is_none() && !fin => Ok(from + error.valid_up_to()),
        Err(_) => Err(FrameError::InvalidUtf8),
    }
}

/// A fragmented message being collected.
#[derive(Debug)]
struct Partial {
    /// 1 text, 2 binary.
    opcode: u8,
    data: BytesMut,
    /// Text only: how many bytes of `data` are known to be valid UTF-8.
    valid_utf8: usize,
}

/// Reassembles client frames into messages.
#[derive(Debug)]
pub(crate) struct FrameReader {
    max_message: usize,
    partial: Option<Partial>,
    /// Set by the first error: the stream is no longer in sync with frame boundaries.
    failed: bool,
}

impl FrameReader {
    pub(crate) fn new(max_message: usize) -> Self {
        Self {
            max_message,
            partial: None,
            failed: false,
        }
    }

    /// Whether a decode error happened: after one, the bytes that follow are not frames.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Decodes the next complete message or control frame from `buf`, consuming its bytes.
    /// `Ok(None)`: more bytes are needed. After an error, every call fails the same way.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, FrameError> {
        if self.failed {
            return Err(FrameError::Protocol);
        }
        let result = self.decode_inner(buf);
        if result.is_err() {
            self.failed = true;
            self.partial = None;
        }
        result
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, FrameError> {
        loop {
            let Some((header, payload_len)) = parse_header(buf)? else {
                return Ok(None);
            };
            let opcode = header.opcode;
            let is_control = opcode & 0x8 != 0;
            // Opcode and fragmentation checks before buffering anything: reserved opcodes,
            // a continuation with nothing to continue, a new message inside a fragmented one.
            match opcode {
                0x0 if self.partial.is_none() => return Err(FrameError::Protocol),
                0x1 | 0x2 if self.partial.is_some() => return Err(FrameError::Protocol),
                0x0..=0x2 | 0x8..=0xA => {}
                _ => return Err(FrameError::Protocol),
            }
            // Size checks before buffering anything.
            if is_control {
                if payload_len > MAX_CONTROL as u64 || !header.fin {
                    return Err(FrameError::Protocol);
                }
            } else {
                let already = self.partial.as_ref().map_or(0, |p| p.data.len()) as u64;
                if already + payload_len > self.max_message as u64 {
                    return Err(FrameError::TooBig);
                }
            }
            let payload_len = usize::try_from(payload_len).map_err(|_| FrameError::TooBig)?;
            let total = header.len + payload_len;
            if buf.len() < total {
                // No reservation up front: a client declaring a large frame and trickling it
                // only costs what it actually sent.
                return Ok(None);
            }
            buf.advance(header.len);
            let mut payload = buf.split_to(payload_len);
            apply_mask(&mut payload, header.mask);

            match opcode {
                0x0 => {
                    let Some(partial) = self.partial.as_mut() else {
                        return Err(FrameError::Protocol);
                    };
                    partial.data.extend_from_slice(&payload);
                    if partial.opcode == 0x1 {
                        // Fail fast: invalid text is refused at the fragment that carries it.
                        partial.valid_utf8 =
                            check_utf8(&partial.data, partial.valid_utf8, header.fin)?;
                    }
                    if header.fin {
                        let partial = self.partial.take().ok_or(FrameError::Protocol)?;
                        return Ok(Some(message(partial.opcode, partial.data.freeze())));
                    }
                }
                0x1 | 0x2 => {
                    if header.fin {
                        // A whole text message is validated where it becomes text (once).
                        return Ok(Some(message(opcode, payload.freeze())));
                    }
                    let valid_utf8 = if opcode == 0x1 {
                        check_utf8(&payload, 0, false)?
                    } else {
                        0
                    };
                    self.partial = Some(Partial {
                        opcode,
                        data: payload,
                        valid_utf8,
                    });
                }
                0x8 => {
                    let code = match payload.len() {
                        0 => None,
                        1 => return Err(FrameError::Protocol),
                        _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
                    };
                    if code.is_some_and(|c| !is_valid_close_code(c)) {
                        return Err(FrameError::Protocol);
                    }
                    if payload.len() > 2 && std::str::from_utf8(&payload[2..]).is_err() {
                        return Err(FrameError::InvalidUtf8);
                    }
                    return Ok(Some(Incoming::Close(code)));
                }
                0x9 => return Ok(Some(Incoming::Ping(payload.freeze()))),
                0xA => return Ok(Some(Incoming::Pong)),
                _ => return Err(FrameError::Protocol),
            }
        }
    }
}

fn message(opcode: u8, data: Bytes) -> Incoming {
    if opcode == 0x1 {
        Incoming::Text(data)
    } else {
        Incoming::Binary(data)
    }
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    len: usize,
}

fn parse_header(buf: &[u8]) -> Result<Option<(Header, u64)>, FrameError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        // No extension negotiated: RSV bits must be clear.
        return Err(FrameError::Protocol);
    }
    if b1 & 0x80 == 0 {
        // Client frames must be masked.
        return Err(FrameError::Protocol);
    }
    let (payload_len, mut pos) = match b1 & 0x7f {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let len = u64::from_be_bytes(a);
            if len >> 63 != 0 {
                return Err(FrameError::Protocol);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let Some(m) = buf.get(pos..pos + 4) else {
        return Ok(None);
    };
    let mask = [m[0], m[1], m[2], m[3]];
    pos += 4;
    Ok(Some((
        Header {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            mask,
            len: pos,
        },
        payload_len,
    )))
}

fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// One queued server frame: a small header and a shared payload.
#[derive(Debug)]
struct OutFrame {
    header: [u8; 10],
    header_len: u8,
    payload: Bytes,
    /// Bytes of header + payload already written.
    written: usize,
}

impl OutFrame {
    fn new(opcode: u8, payload: Bytes) -> Self {
        let mut header = [0u8; 10];
        header[0] = 0x80 | opcode;
        let len = payload.len();
        let header_len = if len < 126 {
            header[1] = len as u8;
            2
        } else if let Ok(len16) = u16::try_from(len) {
            header[1] = 126;
            header[2..4].copy_from_slice(&len16.to_be_bytes());
            4
        } else {
            header[1] = 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        Self {
            header,
            header_len,
            payload,
            written: 0,
        }
    }

    fn total(&self) -> usize {
        usize::from(self.header_len) + self.payload.len()
    }

    fn is_unstarted_pong(&self) -> bool {
        self.header[0] & 0x0f == 0xA && self.written == 0
    }
}

/// Frames waiting to be written, drained with vectored writes.
#[derive(Debug, Default)]
pub(crate) struct FrameWriter {
    queue: VecDeque<OutFrame>,
    pending_bytes: usize,
    /// Pong frames in `queue` (started or not).
    pongs: usize,
}

/// How many pong frames a writer queues at most (see [`FrameWriter::pong`]).
pub(crate) const MAX_QUEUED_PONGS: usize = 8;

/// How many slices one vectored write carries at most.
const MAX_SLICES: usize = 64;

impl FrameWriter {
    pub(crate) fn text(&mut self, payload: Bytes) {
        self.push(0x1, payload);
    }

    pub(crate) fn binary(&mut self, payload: Bytes) {
        self.push(0x2, payload);
    }

    /// Queues the answer to a ping. Past [`MAX_QUEUED_PONGS`] the oldest pong not yet started
    /// is dropped (RFC 6455 5.5.3 allows answering only the most recent ping), so a ping flood
    /// from a client that does not read costs a few queued frames, not one per ping.
    pub(crate) fn pong(&mut self, payload: Bytes) {
        self.push(0xA, payload);
        self.pongs += 1;
        self.trim_pongs();
    }

    fn trim_pongs(&mut self) {
        while self.pongs > MAX_QUEUED_PONGS {
            let Some(pos) = self.queue.iter().position(OutFrame::is_unstarted_pong) else {
                return;
            };
            if let Some(frame) = self.queue.remove(pos) {
                self.pending_bytes -= frame.total();
                self.pongs -= 1;
            }
        }
    }

    pub(crate) fn close(&mut self, code: u16) {
        self.push(0x8, Bytes::copy_from_slice(&code.to_be_bytes()));
    }

    fn push(&mut self, opcode: u8, payload: Bytes) {
        let frame = OutFrame::new(opcode, payload);
        self.pending_bytes += frame.total();
        self.queue.push_back(frame);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Moves `other`'s frames behind this writer's.
    pub(crate) fn append(&mut self, other: &mut Self) {
        self.pongs += std::mem::take(&mut other.pongs);
        self.pending_bytes += std::mem::take(&mut other.pending_bytes);
        self.queue.append(&mut other.queue);
        self.trim_pongs();
    }

    /// Releases the queue's allocation when it is empty and has grown.
    pub(crate) fn shrink(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > 16 {
            self.queue = VecDeque::new();
        }
    }

    /// Releases the queue's allocation when it is empty, however small: for a writer kept
    /// between messages (an idle connection then holds no buffer at all).
    pub(crate) fn release(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
    }

    /// Writes as much as one vectored write takes. Cancel-safe: nothing is lost if dropped.
    pub(crate) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
    ) -> Poll<std::io::Result<()>> {
        while !self.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = self.fill_slices(&mut slices);
            let written = match Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(w)) => w,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.consume(written);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes without waiting: `Ok(true)` when everything queued went out, `Ok(false)` when
    /// the socket would block with frames left (wait for writability, then call again).
    pub(crate) fn try_write(&mut self, io: &tokio::net::TcpStream) -> std::io::Result<bool> {
        while !self.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = self.fill_slices(&mut slices);
            // sendmsg(2) rather than writev(2): same bytes, fewer kernel layers per call.
            let sent = io.try_io(tokio::io::Interest::WRITABLE, || {
                socket2::SockRef::from(io).send_vectored(&slices[..n])
            });
            match sent {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(written) => self.consume(written),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Points `slices` at the unwritten bytes, in order, as far as they reach; returns how
    /// many it filled.
    fn fill_slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut n = 0;
        for frame in &self.queue {
            if n + 2 > MAX_SLICES {
                break;
            }
            let hl = usize::from(frame.header_len);
            if frame.written < hl {
                slices[n] = IoSlice::new(&frame.header[frame.written..hl]);
                n += 1;
                if !frame.payload.is_empty() {
                    slices[n] = IoSlice::new(&frame.payload);
                    n += 1;
                }
            } else {
                slices[n] = IoSlice::new(&frame.payload[frame.written - hl..]);
                n += 1;
            }
        }
        n
    }

    fn consume(&mut self, mut written: usize) {
        self.pending_bytes -= written;
        while written > 0 {
            let Some(frame) = self.queue.front_mut() else {
                return;
            };
            let left = frame.total() - frame.written;
            if written >= left {
                written -= left;
                if self
                    .queue
                    .pop_front()
                    .is_some_and(|f| f.header[0] & 0x0f == 0xA)
                {
                    self.pongs -= 1;
                }
            } else {
                frame.written += written;
                written = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else if payload.len() <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn decodes_text_in_pieces() {
        let bytes = masked(0x1, true, b"4hello world");
        let mut r = FrameReader::new(100);
        let mut buf = BytesMut::new();
        for b in &bytes[..bytes.len() - 1] {
            buf.extend_from_slice(&[*b]);
            assert!(r.decode(&mut buf).unwrap().is_none());
        }
        buf.extend_from_slice(&bytes[bytes.len() - 1..]);
        match r.decode(&mut buf).unwrap() {
            Some(Incoming::Text(t)) => assert_eq!(&t[..], b"4hello world"),
            other => panic!("{other:?}"),
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn reassembles_fragments_with_interleaved_ping() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&masked(0x2, false, &[1, 2]));
        buf.extend_from_slice(&masked(0x9, true, b"p"));
        buf.extend_from_slice(&masked(0x0, true, &[3]));
        let mut r = FrameReader::new(100);
        assert!(matches!(r.decode(&mut buf).unwrap(), Some(Incoming::Ping(p)) if &p[..] == b"p"));
        assert!(
            matches!(r.decode(&mut buf).unwrap(), Some(Incoming::Binary(b)) if b[..] == [1, 2, 3])
        );
    }

    #[test]
    fn limits() {
        let mut r = FrameReader::new(4);
        let mut buf = BytesMut::from(&masked(0x1, true, b"12345")[..]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::TooBig);
        let mut r = FrameReader::new(4);
        let mut buf = BytesMut::from(&masked(0x1, false, b"123")[..]);
        buf.extend_from_slice(&masked(0x0, true, b"45"));
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::TooBig);
        // Declared length checked before the bytes arrive.
        let mut r = FrameReader::new(1000);
        let mut buf = BytesMut::from(&masked(0x2, true, &[0u8; 70_000])[..14]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::TooBig);
        // Unmasked client frame, oversized control frame, stray continuation.
        let mut r = FrameReader::new(1000);
        assert_eq!(
            r.decode(&mut BytesMut::from(&[0x81u8, 0x00][..]))
                .unwrap_err(),
            FrameError::Protocol
        );
        let mut buf = BytesMut::from(&masked(0x9, true, &[0u8; 126])[..]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::Protocol);
        let mut buf = BytesMut::from(&masked(0x0, true, b"x")[..]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::Protocol);
    }

    #[test]
    fn close_frame() {
        let mut r = FrameReader::new(10);
        let mut buf = BytesMut::from(&masked(0x8, true, &[0x03, 0xe8])[..]);
        assert!(matches!(
            r.decode(&mut buf).unwrap(),
            Some(Incoming::Close(Some(1000)))
        ));
    }

    #[test]
    fn a_ping_flood_queues_a_few_pongs_the_newest() {
        let mut w = FrameWriter::default();
        w.text(Bytes::from_static(b"4a"));
        for i in 0..1000u32 {
            w.pong(Bytes::copy_from_slice(&i.to_be_bytes()));
        }
        let mut other = FrameWriter::default();
        other.pong(Bytes::from_static(b"last"));
        w.append(&mut other);
        assert_eq!(w.queue.len(), 1 + MAX_QUEUED_PONGS);
        assert_eq!(w.pongs, MAX_QUEUED_PONGS);
        assert_eq!(&w.queue[0].payload[..], b"4a");
        assert_eq!(&w.queue[MAX_QUEUED_PONGS].payload[..], b"last");
        assert_eq!(&w.queue[1].payload[..], &993u32.to_be_bytes());
        assert_eq!(w.pending_bytes, 4 + (MAX_QUEUED_PONGS - 1) * 6 + 6);
    }

    #[test]
    fn close_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            assert!(is_valid_close_code(code), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(code), "{code}");
            let mut r = FrameReader::new(10);
            let mut buf = BytesMut::from(&masked(0x8, true, &code.to_be_bytes())[..]);
            assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::Protocol);
            assert!(r.failed());
        }
        let mut r = FrameReader::new(10);
        let mut buf = BytesMut::from(&masked(0x8, true, &[0x03, 0xe8, 0xff])[..]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::InvalidUtf8);
    }

    #[test]
    fn text_fragments_are_validated_as_they_come() {
        // "é" split across fragments is fine.
        let mut r = FrameReader::new(100);
        let mut buf = BytesMut::from(&masked(0x1, false, b"4\xc3")[..]);
        buf.extend_from_slice(&masked(0x0, true, b"\xa9"));
        assert!(
            matches!(r.decode(&mut buf).unwrap(), Some(Incoming::Text(t)) if &t[..] == "4é".as_bytes())
        );
        // An invalid byte fails at its fragment, before the message ends.
        let mut r = FrameReader::new(100);
        let mut buf = BytesMut::from(&masked(0x1, false, b"4ok\xff")[..]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::InvalidUtf8);
        // A truncated character at the last fragment fails.
        let mut r = FrameReader::new(100);
        let mut buf = BytesMut::from(&masked(0x1, false, b"4")[..]);
        buf.extend_from_slice(&masked(0x0, true, b"\xe2\x82"));
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::InvalidUtf8);
        // A code point over U+10FFFF fails at its first two bytes.
        let mut r = FrameReader::new(100);
        let mut buf = BytesMut::from(&masked(0x1, false, b"\xf4\x90")[..]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::InvalidUtf8);
    }

    #[test]
    fn fragmentation_errors_are_caught_before_buffering() {
        // A reserved opcode, a new message inside a fragmented one: refused at the header.
        for opcode in [0x3, 0x7, 0xB, 0xF] {
            let mut r = FrameReader::new(1000);
            let mut buf = BytesMut::from(&masked(opcode, true, &[0u8; 100])[..6]);
            assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::Protocol);
        }
        let mut r = FrameReader::new(1000);
        let mut buf = BytesMut::from(&masked(0x1, false, b"4a")[..]);
        buf.extend_from_slice(&masked(0x2, true, &[0u8; 100])[..6]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::Protocol);
        // A fragmented control frame.
        let mut r = FrameReader::new(1000);
        let mut buf = BytesMut::from(&masked(0x9, false, b"p")[..]);
        assert_eq!(r.decode(&mut buf).unwrap_err(), FrameError::Protocol);
    }

    #[tokio::test]
    async fn writer_vectored_and_partial() {
        let mut w = FrameWriter::default();
        w.text(Bytes::from_static(b"4hi"));
        w.binary(Bytes::from(vec![7u8; 300]));
        w.close(1000);
        let mut out = Vec::new();
        std::future::poll_fn(|cx| w.poll_write(cx, &mut out))
            .await
            .unwrap();
        assert!(w.is_empty());
        assert_eq!(&out[..5], &[0x81, 3, b'4', b'h', b'i']);
        assert_eq!(&out[5..9], &[0x82, 126, 1, 44]);
        assert_eq!(&out[out.len() - 4..], &[0x88, 2, 0x03, 0xe8]);
        assert_eq!(out.len(), 5 + 4 + 300 + 4);
    }
}
