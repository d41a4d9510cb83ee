//! Raw HTTP/1.1 over a plain TCP socket: exact bytes in, the server's exact answer out.
//!
//! The hyper client of [`eio`](crate::eio) refuses to send malformed requests; these helpers
//! send whatever bytes a test gives and parse only as much of the answer as a test checks.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::eio::WAIT;

/// One response as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked when the response was chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `(status, body)`, for compact assertions.
    pub fn pair(&self) -> (u16, String) {
        (self.status, self.text())
    }
}

/// What a connection gave back.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Every complete response, in order.
    pub responses: Vec<RawResponse>,
    /// Whether the server closed the connection (EOF or reset) before `WAIT` passed.
    pub closed: bool,
    /// Bytes after the last complete response.
    pub rest: Vec<u8>,
}

/// A connection on which a test writes raw bytes.
#[derive(Debug)]
pub struct RawConn {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Connects to `addr` from the local address `from` (e.g. `127.0.0.2`, another loopback
    /// address, to look like another client).
    pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        Self {
            stream: socket.connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Writes `bytes`; a write error (the server hung up) is ignored, the read shows it.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads the next complete response, or `None` when the connection ends first or `within`
    /// passes.
    pub async fn response_within(&mut self, within: Duration) -> Option<RawResponse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((response, used)) = parse_response(&self.buf) {
                self.buf.drain(..used);
                return Some(response);
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// As [`RawConn::response_within`] with the harness' `WAIT`, failing the test on `None`.
    pub async fn response(&mut self) -> RawResponse {
        match self.response_within(WAIT).await {
            Some(response) => response,
            None => panic!(
                "no complete response; got {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Waits until the server closes the connection (EOF or reset); `false` when `within`
    /// passes first. Data that arrives meanwhile is kept for [`RawConn::response`].
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return false,
            }
        }
    }

    /// Whatever arrived and was not yet parsed as a response.
    pub fn unparsed(&self) -> &[u8] {
        &self.buf
    }
}

/// Sends `bytes` on a new connection and reads until the server closes it or `WAIT` passes.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Exchange {
    let mut conn = RawConn::connect(addr).await;
    conn.send(bytes).await;
    let closed = conn.closed_within(WAIT).await;
    let mut responses = Vec::new();
    while let Some((response, used)) = parse_response(&conn.buf) {
        conn.buf.drain(..used);
        responses.push(response);
    }
    Exchange {
        responses,
        closed,
        rest: conn.buf,
    }
}

/// Sends one request (`Connection: close` is the caller's choice) and returns the first
/// response, failing the test when there is none.
pub async fn one(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    conn.send(bytes).await;
    conn.response().await
}

/// `METHOD target HTTP/1.1` with `Host`, `Connection: close`, the extra header lines and a
/// `Content-Length` for `body` when it is not empty or the method is POST.
pub fn request(method: &str, target: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Parses one complete response at the start of `buf`: `(response, bytes used)`.
pub fn parse_response(buf: &[u8]) -> Option<(RawResponse, usize)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let rest = &buf[head_end..];
    let no_body = status == 101 || status == 204 || status == 304 || (100..200).contains(&status);
    let (body, used) = if no_body {
        (Vec::new(), 0)
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = rest[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).ok()?, 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                if rest.len() < at + 2 {
                    return None;
                }
                break (body, at + 2);
            }
            if rest.len() < at + size + 2 {
                return None;
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
    } else {
        let len: usize = find("content-length").map_or(Some(0), |v| v.parse().ok())?;
        if rest.len() < len {
            return None;
        }
        (rest[..len].to_vec(), len)
    };
    Some((
        RawResponse {
            status,
            headers,
            body,
        },
        head_end + used,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let (r, used) =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP").unwrap();
        assert_eq!((r.status, r.text(), used), (200, "ok".to_owned(), 40));
        let chunked =
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        let (r, used) = parse_response(chunked).unwrap();
        assert_eq!((r.text(), used), ("abc".to_owned(), chunked.len()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok").is_none());
    }
}
