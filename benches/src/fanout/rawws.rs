//! A lean WebSocket client for the receivers: the upgrade handshake, then frames parsed in place.
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
/// The handshake key (any 16 bytes in base64 will do; this is RFC 6455's example) and the
/// `Sec-WebSocket-Accept` a server must answer to it.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn invalid(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}
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

    /// Opens a WebSocket to `authority` (the `Host` header) over `stream` with a GET of `path`
    /// (path and query): sends the upgrade request and reads the `101` answer. Bytes the server
    /// sent after the answer (usually the Engine.IO open packet) stay in the reader.
    ///
    /// # Errors
    /// An I/O error, or `InvalidData` when the answer is not a valid WebSocket upgrade.
    pub async fn handshake(
        mut stream: TcpStream,
        authority: &str,
        path: &str,
    ) -> std::io::Result<Self> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let end = loop {
            if let Some(at) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > 16 * 1024 {
                return Err(invalid("upgrade answer too long"));
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = std::str::from_utf8(&buf[..end]).map_err(|_| invalid("non-UTF-8 answer"))?;
        let status_ok = head.starts_with("HTTP/1.1 101");
        let accept_ok = head.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == ACCEPT
            })
        });
        if !status_ok || !accept_ok {
            return Err(invalid("not a WebSocket upgrade"));
        }
        buf.advance(end);
        let mut reader = Self::new(stream);
        reader.buf = buf;
        Ok(reader)
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
    async fn handshake_keeps_what_follows_the_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                s.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            // The answer and the first two frames in one write, as servers often send them.
            let mut answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
            )
            .into_bytes();
            answer.extend(server_frame(true, 1, b"0{}"));
            answer.extend(server_frame(true, 1, b"2"));
            s.write_all(&answer).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut r = FrameReader::handshake(
            stream,
            "127.0.0.1:1",
            "/socket.io/?EIO=4&transport=websocket",
        )
        .await
        .unwrap();
        assert_eq!(r.next_frame().await, Frame::Text(b"0{}"));
        assert_eq!(r.next_frame().await, Frame::Text(b"2"));
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"));
        assert!(request.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
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
