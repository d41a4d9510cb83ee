//! Routing: the hyper service, handshakes, and the reference server's error responses.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Buf;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use sockeye_codec::engineio::Packet;

use super::body::EngineBody;
use super::cors::OriginCheck;
use super::engine::{Engine, EngineInner};
use super::handler::{HandshakeInfo, Refusal, RemoteAddr};
use super::{polling, websocket};
use crate::proto::{Sid, Transport};

/// The error codes of the reference server, with its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
}

impl ErrorCode {
    fn code(self) -> u8 {
        match self {
            Self::UnknownTransport => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// `{"code":N,"message":"..."}` with status 400 (403 for Forbidden).
pub(crate) fn error_response(code: ErrorCode) -> Response<EngineBody> {
    error_with_message(code, code.message())
}

pub(crate) fn error_with_message(code: ErrorCode, message: &str) -> Response<EngineBody> {
    let mut body = String::with_capacity(32 + message.len());
    body.push_str("{\"code\":");
    body.push_str(&code.code().to_string());
    body.push_str(",\"message\":");
    push_json_string(&mut body, message);
    body.push('}');
    let mut response = Response::new(EngineBody::full(body));
    *response.status_mut() = code.status();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer to a refused handshake: 403 `{"code":4,...}` as the reference, or 429 with
/// `Retry-After` for a refusal for load.
pub(crate) fn refusal_response(refusal: &Refusal) -> Response<EngineBody> {
    let mut response = error_with_message(ErrorCode::Forbidden, refusal.message());
    if let Some(after) = refusal.retry_after() {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let seconds = after.as_secs_f64().ceil().max(1.0) as u64;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

pub(crate) fn status_response(status: StatusCode) -> Response<EngineBody> {
    let mut response = Response::new(EngineBody::empty());
    *response.status_mut() = status;
    response
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> hyper::service::Service<Request<B>> for Engine
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EngineBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EngineBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let engine = self.clone();
        Box::pin(async move { Ok(engine.handle(request).await) })
    }
}

impl Engine {
    /// Answers one HTTP request (what the `Service` implementation calls).
    pub async fn handle<B>(&self, request: Request<B>) -> Response<EngineBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let inner = &self.inner;
        if let Err(refusal) = super::http1::check_framing(request.headers()) {
            return refusal;
        }
        let path = request.uri().path();
        let configured = inner.config.path.as_str();
        if path != configured && Some(path) != configured.strip_suffix('/') {
            return status_response(StatusCode::NOT_FOUND);
        }
        let cors = &inner.config.cors;
        let check = cors.check(request.headers());
        let mut response = route(inner, &check, request).await;
        cors.apply(&check, response.headers_mut());
        response
    }
}

async fn route<B>(
    inner: &Arc<EngineInner>,
    check: &OriginCheck,
    request: Request<B>,
) -> Response<EngineBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if matches!(check, OriginCheck::Refused) {
        return error_response(ErrorCode::Forbidden);
    }
    if request.method() == Method::OPTIONS {
        return if matches!(check, OriginCheck::Allowed(_)) {
            let mut response = status_response(StatusCode::NO_CONTENT);
            inner
                .config
                .cors
                .apply_preflight(request.headers(), response.headers_mut());
            response
        } else {
            error_response(ErrorCode::BadHandshakeMethod)
        };
    }
    let query = request.uri().query();
    // As the reference (`URLSearchParams` into an object): the last of repeated parameters
    // counts, values are percent-decoded, and an empty `sid` is no `sid`.
    let transport = match last_query_param(query, "transport")
        .as_deref()
        .and_then(Transport::from_query)
    {
        Some(Transport::Polling) if inner.config.polling => Transport::Polling,
        Some(Transport::WebSocket) if inner.config.websocket => Transport::WebSocket,
        _ => return error_response(ErrorCode::UnknownTransport),
    };
    let eio4 = last_query_param(query, "EIO").as_deref() == Some("4");
    if let Some(sid) = last_query_param(query, "sid").filter(|sid| !sid.is_empty()) {
        let Some(shared) = Sid::parse(&sid).ok().and_then(|sid| inner.lookup(sid)) else {
            return error_response(ErrorCode::UnknownSid);
        };
        // A request of a session on another protocol revision than the one it opened with.
        if !eio4 {
            return error_response(ErrorCode::BadRequest);
        }
        return match transport {
            Transport::WebSocket => websocket::upgrade_existing(inner, shared, request),
            _ => match *request.method() {
                Method::GET => polling::get(shared).await,
                Method::POST => polling::post(inner, shared, request).await,
                // The reference's polling transport answers other methods with a bare 500.
                _ => status_response(StatusCode::INTERNAL_SERVER_ERROR),
            },
        };
    }
    if request.method() != Method::GET {
        return error_response(ErrorCode::BadHandshakeMethod);
    }
    if transport == Transport::WebSocket
        && let Err(refusal) = websocket::check_upgrade(&request)
    {
        return refusal.response();
    }
    let info = HandshakeInfo {
        method: request.method().clone(),
        uri: request.uri().clone(),
        headers: request.headers().clone(),
        remote_addr: request.extensions().get::<RemoteAddr>().map(|r| r.0),
        transport,
    };
    if let Err(refusal) = inner.handler.on_handshake(&info) {
        return refusal_response(&refusal);
    }
    if !eio4 {
        return error_response(ErrorCode::UnsupportedProtocolVersion);
    }
    if inner.shutting_down.load(Ordering::Acquire) {
        return status_response(StatusCode::SERVICE_UNAVAILABLE);
    }
    match transport {
        Transport::WebSocket => websocket::open(inner, request, &info),
        _ => {
            let shared = inner.create_session(Transport::Polling, &info);
            let open = shared.inspect(|s| Packet::Open(s.handshake()).to_text());
            polling::text_response(open.into_bytes())
        }
    }
}

/// The last value of query parameter `name`, percent-decoded (`+` is a space), as
/// `URLSearchParams` gives it to the reference server.
pub(crate) fn last_query_param<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    query?
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then_some(v)
        })
        .next_back()
        .map(percent_decode)
}

fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex);
                let low = bytes.get(i + 2).copied().and_then(hex);
                if let (Some(high), Some(low)) = (high, low) {
                    // Two hex digits make one byte (< 256).
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Reads a request body up to `max` bytes.
pub(crate) async fn read_body<B>(body: B, max: usize) -> Result<bytes::Bytes, BodyError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;

    let mut body = std::pin::pin!(body);
    let mut first: Option<bytes::Bytes> = None;
    let mut collected = bytes::BytesMut::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Io)?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        let n = data.remaining();
        len += n;
        if len > max {
            return Err(BodyError::TooLarge);
        }
        let chunk = data.copy_to_bytes(n);
        match first.take() {
            None if collected.is_empty() => first = Some(chunk),
            previous => {
                if let Some(previous) = previous {
                    collected.extend_from_slice(&previous);
                }
                collected.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| collected.freeze()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooLarge,
    Io,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let r = error_with_message(ErrorCode::Forbidden, "no \"way\"");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = error_response(ErrorCode::UnknownSid);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\n");
        assert_eq!(s, "\"a\\\"b\\\\c\\u000a\"");
    }
}
