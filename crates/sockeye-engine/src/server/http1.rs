//! The HTTP/1.1 edge: request framing hyper accepts but a hardened server refuses, and the
//! HTTP/2 preface on an HTTP/1.1 port.
//!
//! hyper already refuses most ambiguous framing (`Content-Length` with a sign, in hex, as a
//! list or twice with different values, unknown transfer codings alone, obsolete line folding,
//! chunk sizes that overflow) with `400` and a closed connection; for `Content-Length` with
//! `Transfer-Encoding` it lets the chunked coding win and closes the connection after the
//! answer, and of a repeated identical `Content-Length` it keeps one line (both as RFC 9112
//! allows). What it lets through is refused here: `Transfer-Encoding` other than a single
//! `chunked` (`chunked` twice, or another coding with it, which this server does not decode).
//! The same check refuses `Content-Length` with `Transfer-Encoding`, and `Content-Length`
//! twice, for stacks that pass such headers on (the engine mounted behind another server).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::body::EngineBody;

/// The client connection preface of HTTP/2 (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The answer to an HTTP/2 preface on this HTTP/1.1-only port.
const HTTP2_REFUSAL: &[u8] =
    b"HTTP/1.1 505 HTTP Version Not Supported\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Checks the framing headers of a request that hyper parsed.
///
/// # Errors
/// The response to send instead of handling the request (`400` or `501`, with
/// `Connection: close` so the connection ends after it and nothing that follows on it is read
/// as another request).
#[allow(clippy::result_large_err)]
pub fn check_framing(headers: &HeaderMap) -> Result<(), Response<EngineBody>> {
    // hyper accepts repeated `Content-Length` lines with one value; llhttp does not, and a
    // proxy in front may pick a line of its own: refused.
    if headers.get_all(CONTENT_LENGTH).iter().nth(1).is_some() {
        return Err(refuse(StatusCode::BAD_REQUEST));
    }
    let mut codings = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
        .peekable();
    if codings.peek().is_none() {
        return Ok(());
    }
    if headers.contains_key(CONTENT_LENGTH) {
        return Err(refuse(StatusCode::BAD_REQUEST));
    }
    let mut chunked = 0usize;
    let mut other = false;
    for coding in codings {
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked += 1;
        } else {
            other = true;
        }
    }
    match (chunked, other) {
        (1, false) => Ok(()),
        // A coding the server does not implement (RFC 9112, section 6.1).
        (1, true) => Err(refuse(StatusCode::NOT_IMPLEMENTED)),
        _ => Err(refuse(StatusCode::BAD_REQUEST)),
    }
}

fn refuse(status: StatusCode) -> Response<EngineBody> {
    let mut response = Response::new(EngineBody::empty());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads the first bytes of a new connection: an HTTP/2 preface is answered `505 HTTP Version
/// Not Supported` and the connection closed (`None`); anything else is handed back, its first
/// bytes replayed, for hyper to serve. `None` too when nothing arrives within `timeout` or the
/// peer hangs up first.
pub async fn refuse_http2_preface<I>(mut io: I, timeout: Duration) -> Option<Replay<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut first = Vec::with_capacity(4096);
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = io.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            first.extend_from_slice(&chunk[..n]);
            let seen = first.len().min(HTTP2_PREFACE.len());
            if first[..seen] != HTTP2_PREFACE[..seen] {
                return Some(false);
            }
            if seen == HTTP2_PREFACE.len() {
                return Some(true);
            }
        }
    };
    match tokio::time::timeout(timeout, read).await.ok()?? {
        false => Some(Replay {
            first: Bytes::from(first),
            io,
        }),
        true => {
            let _ = io.write_all(HTTP2_REFUSAL).await;
            let _ = io.shutdown().await;
            None
        }
    }
}

/// A connection whose first bytes were already read: reads replay them, then go on.
#[derive(Debug)]
pub struct Replay<I> {
    first: Bytes,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Replay<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.first.has_remaining() {
            let n = this.first.len().min(buf.remaining());
            buf.put_slice(&this.first[..n]);
            this.first.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Replay<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn status(pairs: &[(&'static str, &'static str)]) -> Option<u16> {
        check_framing(&headers(pairs))
            .err()
            .map(|r| r.status().as_u16())
    }

    #[test]
    fn framing_rules() {
        assert_eq!(status(&[]), None);
        assert_eq!(status(&[("content-length", "5")]), None);
        let cl_twice = [("content-length", "5"), ("content-length", "5")];
        assert_eq!(status(&cl_twice), Some(400));
        assert_eq!(status(&[("transfer-encoding", "chunked")]), None);
        assert_eq!(status(&[("transfer-encoding", "Chunked ")]), None);
        let cl_te = [("content-length", "5"), ("transfer-encoding", "chunked")];
        assert_eq!(status(&cl_te), Some(400));
        let twice = [
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ];
        assert_eq!(status(&twice), Some(400));
        assert_eq!(
            status(&[("transfer-encoding", "chunked, chunked")]),
            Some(400)
        );
        assert_eq!(status(&[("transfer-encoding", "gzip, chunked")]), Some(501));
        assert_eq!(status(&[("transfer-encoding", "chunked, gzip")]), Some(501));
        let refusal = check_framing(&headers(&cl_te)).unwrap_err();
        assert_eq!(refusal.headers()[CONNECTION], "close");
    }

    #[tokio::test]
    async fn the_preface_is_refused_and_anything_else_replayed() {
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(HTTP2_PREFACE).await.unwrap();
        assert!(
            refuse_http2_preface(server, Duration::from_secs(5))
                .await
                .is_none()
        );
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, HTTP2_REFUSAL);

        let (mut client, server) = tokio::io::duplex(1024);
        // Split in the middle of a prefix of the preface ("P" of a PRI-less request).
        client.write_all(b"P").await.unwrap();
        let writer = tokio::spawn(async move {
            client.write_all(b"OST / HTTP/1.1\r\n\r\n").await.unwrap();
            client
        });
        let mut replay = refuse_http2_preface(server, Duration::from_secs(5))
            .await
            .unwrap();
        let _client = writer.await.unwrap();
        let mut got = vec![0u8; 19];
        replay.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"POST / HTTP/1.1\r\n\r\n");
    }
}
