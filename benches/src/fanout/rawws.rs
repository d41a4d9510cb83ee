//! A receive-side WebSocket reader for the receivers, over the bare `TcpStream` that
//! tokio-tungstenite hands back after the setup (handshake, CONNECT, join).
//!
//! Receivers only read, and what they read is small unmasked server frames, so a reader that
//! parses frames in place from one reusable buffer (filled without zeroing, no allocation per
//! frame, no second UTF-8 check) costs the generator much less CPU per delivery than a general
//! WebSocket stream. The few frames a receiver writes (pongs) are built here too, masked as
//! RFC 6455 requires of clients.

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// What [`FrameReader::next_frame`] found.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// A complete text message (reassembled when fragmented).
    Text(&'a [u8]),
    /// A WebSocket ping with its payload: answer with `pong`.
    Ping(&'a [u8]),
    /// Anything else that needs no answer (binary messages, pongs).
    Other,
    /// A close frame, or the connection ended, or the peer broke the protocol.
    Closed,
}

/// Reads WebSocket frames from a TCP stream.
#[derive(Debug)]
pub struct FrameReader {
    stream: TcpStream,
    buf: BytesMut,
    /// Fragments of a message in progress.
    partial: Vec<u8>,
    /// The message returned last; dropped from `buf` on the next call.
    consumed: usize,
    /// `partial` holds the text message returned last; cleared on the next call.
    partial_done: bool,
    mask_seed: u32,
}

const READ_CHUNK: usize = 16 * 1024;
/// Larger frames are refused (the generator's messages are far smaller).
const MAX_FRAME: u64 = 16 * 1024 * 1024;

impl FrameReader {
    /// A reader over `stream`.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            partial: Vec::new(),
            consumed: 0,
            partial_done: false,
            mask_seed: 0x9e37_79b9,
        }
    }

    /// The next frame. The returned slice is valid until the next call.
    pub async fn next_frame(&mut self) -> Frame<'_> {
        self.buf.advance(self.consumed);
        self.consumed = 0;
        if self.partial_done {
            self.partial.clear();
            self.partial_done = false;
        }
        loop {
            match parse_header(&self.buf) {
                Header::Incomplete => {}
                Header::Invalid => return Frame::Closed,
                Header::Complete {
                    fin,
                    opcode,
                    start,
                    len,
                } => {
                    let end = start + len;
                    match opcode {
                        // Text or binary start, or a continuation.
                        0x0..=0x2 => {
                            if fin && opcode != 0x0 && self.partial.is_empty() {
                                self.consumed = end;
                                return if opcode == 0x1 {
                                    Frame::Text(&self.buf[start..end])
                                } else {
                                    Frame::Other
                                };
                            }
                            self.partial.extend_from_slice(&self.buf[start..end]);
                            self.buf.advance(end);
                            if fin {
                                self.partial_done = true;
                                return Frame::Text(&self.partial);
                            }
                            continue;
                        }
                        0x8 => return Frame::Closed,
                        0x9 => {
                            self.consumed = end;
                            return Frame::Ping(&self.buf[start..end]);
                        }
                        _ => {
                            self.buf.advance(end);
                            continue;
                        }
                    }
                }
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Frame::Closed,
                Ok(_) => {}
            }
        }
    }

    /// Sends a masked text frame.
    ///
    /// # Errors
    /// The write's error.
    pub async fn send_text(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let frame = self.masked(0x1, payload);
        self.stream.write_all(&frame).await
    }

    /// Answers a WebSocket ping.
    ///
    /// # Errors
    /// The write's error.
    pub async fn pong(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let frame = self.masked(0xA, payload);
        self.stream.write_all(&frame).await
    }

    fn masked(&mut self, opcode: u8, payload: &[u8]) -> Vec<u8> {
        // xorshift: masks need not be secret here, only present.
        self.mask_seed ^= self.mask_seed << 13;
        self.mask_seed ^= self.mask_seed >> 17;
        self.mask_seed ^= self.mask_seed << 5;
        encode_masked(opcode, payload, self.mask_seed.to_be_bytes())
    }
}

/// A complete client frame (FIN set) with `opcode`, masked with `mask`.
pub fn encode_masked(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[derive(Debug, PartialEq, Eq)]
enum Header {
    Incomplete,
    Invalid,
    Complete {
        fin: bool,
        opcode: u8,
        start: usize,
        len: usize,
    },
}

/// Parses the header of the frame at the start of `buf`; `Complete` only when the whole payload
/// is there too.
fn parse_header(buf: &[u8]) -> Header {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Header::Incomplete;
    };
    if b1 & 0x80 != 0 || b0 & 0x70 != 0 {
        // Servers never mask; no extension is negotiated.
        return Header::Invalid;
    }
    let (len, start) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Header::Incomplete,
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(b);
                (u64::from_be_bytes(bytes), 10)
            }
            None => return Header::Incomplete,
        },
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME {
        return Header::Invalid;
    }
    let len = len as usize;
    if buf.len() < start + len {
        return Header::Incomplete;
    }
    Header::Complete {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        start,
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn parses_headers() {
        let f = server_frame(true, 1, b"42[\"x\"]");
        assert_eq!(parse_header(&f[..1]), Header::Incomplete);
        assert_eq!(parse_header(&f[..f.len() - 1]), Header::Incomplete);
        assert_eq!(
            parse_header(&f),
            Header::Complete {
                fin: true,
                opcode: 1,
                start: 2,
                len: 7
            }
        );
        let long = server_frame(true, 1, &[b'a'; 300]);
        assert_eq!(
            parse_header(&long),
            Header::Complete {
                fin: true,
                opcode: 1,
                start: 4,
                len: 300
            }
        );
        assert_eq!(parse_header(&[0x81, 0x81, 0, 0, 0, 0, 0]), Header::Invalid);
    }

    #[test]
    fn masks_client_frames() {
        let f = encode_masked(0x1, b"3", [1, 2, 3, 4]);
        assert_eq!(f, vec![0x81, 0x81, 1, 2, 3, 4, b'3' ^ 1]);
    }

    #[tokio::test]
    async fn reads_frames_across_reads_and_fragments() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut bytes = server_frame(true, 1, b"one");
            bytes.extend(server_frame(true, 9, b"p"));
            bytes.extend(server_frame(false, 1, b"tw"));
            bytes.extend(server_frame(true, 0, b"o"));
            bytes.extend(server_frame(true, 1, &[b'x'; 200]));
            for chunk in bytes.chunks(3) {
                s.write_all(chunk).await.unwrap();
                s.flush().await.unwrap();
            }
            let mut pong = [0u8; 7];
            s.read_exact(&mut pong).await.unwrap();
            pong
        });
        let mut r = FrameReader::new(TcpStream::connect(addr).await.unwrap());
        assert_eq!(r.next_frame().await, Frame::Text(b"one"));
        assert_eq!(r.next_frame().await, Frame::Ping(b"p"));
        r.pong(b"p").await.unwrap();
        assert_eq!(r.next_frame().await, Frame::Text(b"two"));
        assert_eq!(r.next_frame().await, Frame::Text(&[b'x'; 200]));
        assert_eq!(r.next_frame().await, Frame::Closed);
        let pong = server.await.unwrap();
        assert_eq!(pong[0], 0x8a);
        assert_eq!(pong[1], 0x81);
        assert_eq!(pong[6], b'p' ^ pong[2]);
    }
}
