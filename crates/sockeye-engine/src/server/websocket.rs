//! WebSocket: the HTTP upgrade and the per-connection driver task.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{
    CONNECTION, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sockeye_codec::engineio::Packet;
use sockeye_codec::{Frame, Utf8Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::EngineBody;
use super::direct;
use super::engine::{EngineInner, Shared};
use super::handler::HandshakeInfo;
use super::service::{ErrorCode, error_response};
use super::ws_frame::{FrameError, FrameReader, FrameWriter, Incoming, close_code};
use crate::proto::{CloseReason, ProtocolError, Transmit, Transport};

/// Size of the stack buffer one read goes through. Reading through the stack (and appending
/// what arrived) means an idle connection holds no read buffer at all.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// Why a WebSocket handshake (RFC 6455 4.2.1) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpgradeRefusal {
    /// No `Upgrade: websocket` or no `Connection: upgrade`, or HTTP/1.0: not an upgrade at all.
    /// The reference server's `400 {"code":3,"message":"Bad request"}`.
    NotUpgrade,
    /// An upgrade that is not a GET: 405.
    Method,
    /// `Sec-WebSocket-Version` missing, repeated or other than 13: 426 Upgrade Required with
    /// `Sec-WebSocket-Version: 13` (RFC 6455 4.2.2; `ws` answers 400 instead).
    Version,
    /// `Sec-WebSocket-Key` missing, repeated or not the base64 of 16 bytes: 400.
    Key,
}

impl UpgradeRefusal {
    /// The HTTP answer.
    pub(crate) fn response(self) -> Response<EngineBody> {
        let (status, message) = match self {
            Self::NotUpgrade => return error_response(ErrorCode::BadRequest),
            Self::Method => (StatusCode::METHOD_NOT_ALLOWED, "Invalid HTTP method"),
            Self::Version => (
                StatusCode::UPGRADE_REQUIRED,
                "Unsupported Sec-WebSocket-Version: 13 is the only one",
            ),
            Self::Key => (
                StatusCode::BAD_REQUEST,
                "Missing or invalid Sec-WebSocket-Key header",
            ),
        };
        let mut response = Response::new(EngineBody::full(message));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        // The client may already have sent frames behind its request: do not read them as HTTP.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        if self == Self::Version {
            headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        response
    }
}

/// Checks a WebSocket handshake request (RFC 6455 4.2.1), in this order: an upgrade at all
/// (HTTP/1.1 or later, `Upgrade: websocket`, `Connection: upgrade`), GET, the version (before
/// the key: a client of an older draft has no `Sec-WebSocket-Key`, and 426 tells it what to
/// speak), the key.
pub(crate) fn check_upgrade<B>(request: &Request<B>) -> Result<(), UpgradeRefusal> {
    let headers = request.headers();
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if request.version() < Version::HTTP_11
        || !has_token(UPGRADE, "websocket")
        || !has_token(CONNECTION, "upgrade")
    {
        return Err(UpgradeRefusal::NotUpgrade);
    }
    if request.method() != Method::GET {
        return Err(UpgradeRefusal::Method);
    }
    let only = |name| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value),
            _ => None,
        }
    };
    if only(SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        return Err(UpgradeRefusal::Version);
    }
    let key_ok = only(SEC_WEBSOCKET_KEY).is_some_and(|key| {
        let key = key.as_bytes();
        // 16 bytes in base64: 22 characters and "==".
        key.len() == 24
            && base64::engine::general_purpose::STANDARD
                .decode(key)
                .is_ok_and(|nonce| nonce.len() == 16)
    });
    if !key_ok {
        return Err(UpgradeRefusal::Key);
    }
    Ok(())
}

fn switching_protocols<B>(request: &Request<B>) -> Response<EngineBody> {
    let key = request
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .map_or(&[][..], HeaderValue::as_bytes);
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
    let mut response = Response::new(EngineBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// A WebSocket handshake without sid: a new session that lives on this socket.
pub(crate) fn open<B>(
    inner: &Arc<EngineInner>,
    mut request: Request<B>,
    info: &HandshakeInfo,
) -> Response<EngineBody> {
    let on_upgrade = hyper::upgrade::on(&mut request);
    let shared = inner.create_session(Transport::WebSocket, info);
    let open = shared.inspect(|s| Packet::Open(s.handshake()).to_text());
    spawn_driver(inner, on_upgrade, shared, Some(open.into_bytes()));
    switching_protocols(&request)
}

/// A WebSocket for an existing session: the upgrade from polling, or a socket to refuse.
pub(crate) fn upgrade_existing<B>(
    inner: &Arc<EngineInner>,
    shared: Arc<Shared>,
    mut request: Request<B>,
) -> Response<EngineBody> {
    if let Err(refusal) = check_upgrade(&request) {
        return refusal.response();
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    match shared.update(|s| s.handle_upgrade_start(super::now())) {
        Ok(()) => spawn_driver(inner, on_upgrade, shared, None),
        Err(ProtocolError::Closed) => return error_response(ErrorCode::UnknownSid),
        Err(_) => {
            // Already upgraded or upgrading: accept, then close at once. (Refusing with 400
            // makes the `ws` client throw where nobody listens; see the conformance notes.)
            let linger = inner.config.ws_close_timeout;
            let max_payload = inner.session_config.max_payload;
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut writer = FrameWriter::default();
                    writer.close(close_code::POLICY);
                    let _ = tokio::time::timeout(linger, async {
                        if poll_fn(|cx| writer.poll_write(cx, &mut io)).await.is_err()
                            || io.shutdown().await.is_err()
                        {
                            return;
                        }
                        let mut reader = FrameReader::new(max_payload);
                        let mut linger = Linger::new(End::Closing, &reader);
                        let mut rbuf = BytesMut::new();
                        let mut chunk = vec![0u8; READ_CHUNK];
                        loop {
                            match io.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    let data = chunk.get(..n).unwrap_or_default();
                                    if linger.feed(&mut reader, &mut rbuf, data) {
                                        break;
                                    }
                                }
                            }
                        }
                    })
                    .await;
                }
            });
        }
    }
    switching_protocols(&request)
}

struct DriverGuard(Arc<EngineInner>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        self.0.drivers.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

fn spawn_driver(
    inner: &Arc<EngineInner>,
    on_upgrade: OnUpgrade,
    shared: Arc<Shared>,
    open: Option<Bytes>,
) {
    inner.drivers.fetch_add(1, Ordering::AcqRel);
    let guard = DriverGuard(Arc::clone(inner));
    tokio::spawn(async move {
        match on_upgrade.await {
            // A plain TCP socket is written directly by the senders (see `direct`).
            Ok(upgraded) => match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
                Ok(parts) => {
                    let stream = parts.io.into_inner();
                    direct::drive(stream, parts.read_buf, &guard.0, &shared, open).await;
                }
                Err(upgraded) => drive(TokioIo::new(upgraded), &guard.0, &shared, open).await,
            },
            Err(_) => shared.update(|s| s.handle_transport_closed(Transport::WebSocket, true)),
        }
        drop(guard);
    });
}

fn close_code_for(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::ServerShuttingDown => close_code::GOING_AWAY,
        CloseReason::PayloadTooLarge => close_code::TOO_BIG,
        CloseReason::ParseError | CloseReason::TransportError | CloseReason::SlowConsumer => {
            close_code::POLICY
        }
        _ => close_code::NORMAL,
    }
}

/// Appends `item` to the writer; returns the close code when it ends the transport.
pub(crate) fn push_transmit(writer: &mut FrameWriter, item: Transmit) -> Option<u16> {
    match item {
        Transmit::Message(message) => {
            for frame in message.frames() {
                match frame {
                    Frame::Text(text) => writer.text(text.clone().into_bytes()),
                    Frame::Binary(data) => writer.binary(data.clone()),
                }
            }
            None
        }
        Transmit::Close(reason) => {
            let code = close_code_for(reason);
            writer.close(code);
            Some(code)
        }
        other => {
            if let Some(text) = other.control_text() {
                writer.text(text.into_bytes());
            }
            None
        }
    }
}

/// How the connection loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// We sent a close frame; wait briefly for the client's.
    Closing,
    /// The client sent a close frame and we answered it.
    Answered,
    /// The connection broke or must be cut now.
    Cut,
}

/// The one task of a WebSocket connection: reads frames into the session, writes what the
/// session queues (everything queued per wake-up, in vectored writes), until either side closes.
async fn drive<S>(io: S, inner: &Arc<EngineInner>, shared: &Arc<Shared>, open: Option<Bytes>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut reader = FrameReader::new(inner.session_config.max_payload);
    let mut writer = FrameWriter::default();
    let mut rbuf = BytesMut::new();
    if let Some(open) = open {
        writer.text(open);
    }
    let mut end: Option<End> = None;
    let mut clean = false;
    // Set once the session has let go of this socket (it sent the close, or we reported the
    // socket closed): after that this driver must not touch the session's transport state,
    // which may already belong to a newer upgrade socket.
    let mut detached = false;

    while end.is_none() {
        if inner.aborted.load(Ordering::Acquire) {
            end = Some(End::Cut);
            break;
        }
        if writer.is_empty() {
            writer.shrink();
            shared.update(|s| {
                while let Some(item) = s.poll_transmit(Transport::WebSocket) {
                    if push_transmit(&mut writer, item).is_some() {
                        end = Some(End::Closing);
                        detached = true;
                        break;
                    }
                }
            });
            if end.is_some() {
                break;
            }
        } else if shared.inspect(|s| s.close_reason().is_some_and(|r| !r.flushes_queue())) {
            // Closed (slow consumer, ping timeout...) while frames are stuck: cut.
            end = Some(End::Cut);
            break;
        }
        tokio::select! {
            biased;
            result = poll_fn(|cx| writer.poll_write(cx, &mut wr)), if !writer.is_empty() => {
                if result.is_err() {
                    end = Some(End::Cut);
                }
            }
            result = poll_fn(|cx| poll_read_append(cx, &mut rd, &mut rbuf)) => match result {
                // EOF without a close frame: "transport close", as the reference reports it.
                Ok(0) => {
                    clean = true;
                    end = Some(End::Cut);
                }
                Err(_) => end = Some(End::Cut),
                Ok(_) => {
                    let _batch = direct::Batch::enter();
                    end = handle_input(&mut reader, &mut rbuf, &mut writer, shared, &mut detached);
                    if rbuf.is_empty() {
                        // Frames already taken keep their bytes; drop our handle on the rest.
                        rbuf = BytesMut::new();
                    }
                }
            },
            () = shared.ws_notify.notified() => {}
            () = inner.abort.notified() => end = Some(End::Cut),
        }
    }

    let end = end.unwrap_or(End::Cut);
    if end != End::Cut {
        // Flush the close frame, end our half, then linger (see `Linger`).
        let _ = tokio::time::timeout(inner.config.ws_close_timeout, async {
            if poll_fn(|cx| writer.poll_write(cx, &mut wr)).await.is_err() {
                return;
            }
            if wr.shutdown().await.is_err() {
                return;
            }
            let mut linger = Linger::new(end, &reader);
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                match rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if linger.feed(&mut reader, &mut rbuf, chunk.get(..n).unwrap_or_default()) {
                            break;
                        }
                    }
                }
            }
        })
        .await;
        clean = true;
    }
    let _ = wr.shutdown().await;
    if !detached {
        shared.update(|s| s.handle_transport_closed(Transport::WebSocket, !clean));
    }
}

/// Bytes a lingering close reads (and throws away) at most.
pub(crate) const LINGER_MAX_BYTES: usize = 16 << 20;

/// The lingering close. After its close frame the server ends its half of the TCP connection
/// (FIN) and keeps reading, throwing the bytes away, until the client's close frame, its FIN,
/// [`LINGER_MAX_BYTES`] or the close timeout, whichever comes first. Closing a socket with
/// unread bytes in its receive buffer makes the kernel send a reset instead of a FIN, and a
/// reset can destroy the close frame before the client reads it: the client that was still
/// sending (the rest of a message over `max_payload`, say) would see 1006 instead of 1009.
pub(crate) struct Linger {
    /// Frames are still in sync: the client's close frame ends the wait.
    until_close_frame: bool,
    read: usize,
}

impl Linger {
    pub(crate) fn new(end: End, reader: &FrameReader) -> Self {
        Self {
            until_close_frame: end == End::Closing && !reader.failed(),
            read: 0,
        }
    }

    /// Takes bytes read while lingering; `true` when the wait is over.
    pub(crate) fn feed(
        &mut self,
        reader: &mut FrameReader,
        rbuf: &mut BytesMut,
        data: &[u8],
    ) -> bool {
        self.read = self.read.saturating_add(data.len());
        if self.read > LINGER_MAX_BYTES {
            return true;
        }
        if !self.until_close_frame {
            return false;
        }
        rbuf.extend_from_slice(data);
        loop {
            match reader.decode(rbuf) {
                Ok(Some(Incoming::Close(_))) => return true,
                Ok(Some(_)) => {}
                Ok(None) => return false,
                Err(_) => {
                    // Out of sync: throw the rest away until the client's FIN.
                    self.until_close_frame = false;
                    *rbuf = BytesMut::new();
                    return false;
                }
            }
        }
    }
}

/// Reads what is available through a stack buffer and appends it to `rbuf` (which the frame
/// reader has already sized for a large frame in progress). Cancel-safe.
fn poll_read_append<R: AsyncRead + Unpin>(
    cx: &mut std::task::Context<'_>,
    rd: &mut R,
    rbuf: &mut BytesMut,
) -> std::task::Poll<std::io::Result<usize>> {
    let mut chunk = [0u8; READ_CHUNK];
    let mut read = tokio::io::ReadBuf::new(&mut chunk);
    match std::pin::Pin::new(rd).poll_read(cx, &mut read) {
        std::task::Poll::Ready(Ok(())) => {
            let filled = read.filled();
            rbuf.extend_from_slice(filled);
            std::task::Poll::Ready(Ok(filled.len()))
        }
        std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
        std::task::Poll::Pending => std::task::Poll::Pending,
    }
}

/// Decodes every complete frame in `rbuf` and feeds it to the session.
pub(crate) fn handle_input(
    reader: &mut FrameReader,
    rbuf: &mut BytesMut,
    writer: &mut FrameWriter,
    shared: &Arc<Shared>,
    detached: &mut bool,
) -> Option<End> {
    loop {
        let incoming = match reader.decode(rbuf) {
            Ok(Some(incoming)) => incoming,
            Ok(None) => return None,
            Err(error) => {
                let code = error.close_code();
                let reason = match error {
                    FrameError::TooBig => CloseReason::PayloadTooLarge,
                    FrameError::InvalidUtf8 => CloseReason::ParseError,
                    _ => CloseReason::TransportError,
                };
                shared.update(|s| s.handle_transport_error(Transport::WebSocket, reason));
                writer.close(code);
                return Some(End::Closing);
            }
        };
        match incoming {
            Incoming::Text(data) => {
                let Ok(text) = Utf8Bytes::try_from_bytes(data) else {
                    shared.update(|s| {
                        s.handle_transport_error(Transport::WebSocket, CloseReason::ParseError);
                    });
                    writer.close(close_code::INVALID_DATA);
                    return Some(End::Closing);
                };
                let now = super::now();
                match Packet::decode_text(text) {
                    Ok(packet) => {
                        let _ =
                            shared.update(|s| s.handle_packet(now, Transport::WebSocket, packet));
                    }
                    Err(error) => {
                        let _ =
                            shared.update(|s| s.handle_decode_error(Transport::WebSocket, error));
                    }
                }
            }
            Incoming::Binary(data) => {
                let packet = Packet::decode_binary(data);
                let now = super::now();
                let _ = shared.update(|s| s.handle_packet(now, Transport::WebSocket, packet));
            }
            Incoming::Ping(data) => writer.pong(data),
            Incoming::Pong => {}
            Incoming::Close(code) => {
                *detached = true;
                shared.update(|s| s.handle_transport_closed(Transport::WebSocket, false));
                // The reader let only valid codes through: echo the client's (RFC 6455 5.5.1).
                let answer = code.unwrap_or(close_code::NORMAL);
                writer.close(answer);
                return Some(End::Answered);
            }
        }
    }
}
