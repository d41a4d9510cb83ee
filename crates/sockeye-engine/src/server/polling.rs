//! HTTP long-polling: the held GET and the POST.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body;
use sockeye_codec::Utf8Bytes;

use super::body::EngineBody;
use super::engine::{EngineInner, Shared};
use super::service::{BodyError, ErrorCode, error_response, read_body, status_response};
use crate::proto::{CloseReason, ProtocolError, Transport};

pub(crate) fn text_response(body: Bytes) -> Response<EngineBody> {
    let mut response = Response::new(EngineBody::full(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

fn error_for(error: &ProtocolError) -> Response<EngineBody> {
    match error {
        ProtocolError::Closed => error_response(ErrorCode::UnknownSid),
        // The reference answers an overlapping request with a bare 400 (and closes the session).
        ProtocolError::PollOverlap | ProtocolError::PostOverlap => {
            status_response(StatusCode::BAD_REQUEST)
        }
        _ => error_response(ErrorCode::BadRequest),
    }
}

/// Releases the pending-GET mark if the request goes away unanswered.
struct PendingGet<'a> {
    shared: &'a Arc<Shared>,
    answered: bool,
}

impl Drop for PendingGet<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.shared.update(|s| s.handle_get_aborted());
        }
    }
}

/// A polling GET: answered as soon as the session has something for it, or with 400 when an
/// upgrade completes while the session holds it (see `Session::handle_get`).
pub(crate) async fn get(shared: Arc<Shared>) -> Response<EngineBody> {
    let now = super::now();
    if let Err(error) = shared.update(|s| s.handle_get(now)) {
        return error_for(&error);
    }
    let mut pending = PendingGet {
        shared: &shared,
        answered: false,
    };
    loop {
        match shared.update(|s| s.poll_get_response()) {
            Some(Ok(body)) => {
                pending.answered = true;
                if shared.inspect(|s| s.is_closed()) {
                    shared.remove_from_engine();
                }
                return text_response(body);
            }
            Some(Err(error)) => {
                pending.answered = true;
                return error_for(&error);
            }
            None => shared.get_notify.notified().await,
        }
    }
}

/// A polling POST: every packet is handled (and the handler has queued its replies) before a
/// waiting GET may answer.
pub(crate) async fn post<B>(
    inner: &Arc<EngineInner>,
    shared: Arc<Shared>,
    request: Request<B>,
) -> Response<EngineBody>
where
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let now = super::now();
    if let Err(error) = shared.update(|s| s.handle_post_start(now)) {
        return error_for(&error);
    }
    // Engine.IO v4 sends binary as base64 text: a binary body is refused and ends the
    // session, as the reference does ("invalid content").
    let binary = request.headers().get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(b"application/octet-stream")
    });
    if binary {
        shared.update(|s| {
            s.handle_post_done();
            s.handle_transport_error(Transport::Polling, CloseReason::TransportError);
        });
        return status_response(StatusCode::BAD_REQUEST);
    }
    let max = inner.session_config.max_payload;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        shared.update(|s| s.handle_post_too_large());
        return status_response(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let read = tokio::time::timeout(
        inner.config.body_read_timeout,
        read_body(request.into_body(), max),
    );
    // A session that closes meanwhile (an overlapping POST, a heartbeat timeout) stops the
    // read at once instead of holding the connection until the body timeout.
    let read = tokio::select! {
        read = read => read,
        () = session_closed(inner, &shared) => {
            shared.update(|s| s.handle_post_done());
            return error_response(ErrorCode::UnknownSid);
        }
    };
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            shared.update(|s| s.handle_post_too_large());
            return status_response(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Ok(Err(BodyError::Io)) | Err(_) => {
            shared.update(|s| {
                s.handle_post_done();
                s.handle_transport_error(Transport::Polling, CloseReason::TransportError);
            });
            return error_response(ErrorCode::BadRequest);
        }
    };
    let Ok(text) = Utf8Bytes::try_from_bytes(body) else {
        shared.update(|s| {
            s.handle_post_done();
            s.handle_transport_error(Transport::Polling, CloseReason::ParseError);
        });
        return error_response(ErrorCode::BadRequest);
    };
    // Events are delivered (and the handler's replies queued) inside this call, while the
    // POST still counts as pending, so a held GET cannot answer with only part of them.
    let result = {
        let _batch = super::direct::Batch::enter();
        shared.update(|s| s.handle_post_body(super::now(), text))
    };
    shared.update(|s| s.handle_post_done());
    match result {
        Ok(()) => {
            let mut response = Response::new(EngineBody::full(Bytes::from_static(b"ok")));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            response
        }
        Err(error) => error_for(&error),
    }
}

/// Completes once `shared` is closed.
async fn session_closed(inner: &EngineInner, shared: &Shared) {
    loop {
        let changed = inner.changed.notified();
        let mut changed = std::pin::pin!(changed);
        changed.as_mut().enable();
        if shared.inspect(crate::proto::Session::is_closed) {
            return;
        }
        changed.await;
    }
}
