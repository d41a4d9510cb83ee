//! Accept loop, per-connection HTTP/1.1 settings, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use super::engine::Engine;
use super::handler::RemoteAddr;

impl Engine {
    /// Accepts connections on `listener` until `signal` completes, then shuts down gracefully
    /// ([`Engine::shutdown`]). Accept errors (such as running out of file descriptors) are
    /// logged and retried; a failing connection never affects the others.
    ///
    /// During the drain the listener stays open: a polling client between two polls can still
    /// fetch what was queued for it and its close packet (new handshakes get 503); connections
    /// accepted then serve one request each. The listener closes when the drain is over.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for binding errors of future listeners.
    pub async fn serve(
        &self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut signal = std::pin::pin!(signal);
        loop {
            tokio::select! {
                () = &mut signal => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(self.serve_connection(stream, Some(addr)));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
        let drain = self.shutdown();
        let mut drain = std::pin::pin!(drain);
        loop {
            tokio::select! {
                () = &mut drain => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(self.serve_connection(stream, Some(addr)));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
        drop(listener);
        Ok(())
    }

    /// Serves HTTP/1.1 (with WebSocket upgrades) on one connection, applying the header
    /// limits and timeouts of the configuration. Finishes gracefully on [`Engine::shutdown`].
    pub fn serve_connection<I>(
        &self,
        io: I,
        remote: Option<SocketAddr>,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let engine = self.clone();
        async move {
            let config = &engine.inner.config;
            let Some(io) = super::http1::refuse_http2_preface(io, config.header_read_timeout).await
            else {
                return;
            };
            // A connection that starts while the engine drains serves one request (a final
            // poll), then closes; it is cut when the drain's deadline passes.
            let draining = engine.inner.shutting_down.load(Ordering::Acquire);
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_read_timeout)
                .max_headers(config.max_headers)
                .max_buf_size(config.max_header_bytes)
                .keep_alive(!draining);
            let service_engine = engine.clone();
            let service = hyper::service::service_fn(move |mut request| {
                if let Some(addr) = remote {
                    request.extensions_mut().insert(RemoteAddr(addr));
                }
                let engine = service_engine.clone();
                async move { Ok::<_, std::convert::Infallible>(engine.handle(request).await) }
            });
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            if draining {
                let aborted = engine.inner.abort.notified();
                let mut aborted = std::pin::pin!(aborted);
                aborted.as_mut().enable();
                if engine.inner.aborted.load(Ordering::Acquire) {
                    return;
                }
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, "connection error during shutdown");
                        }
                    }
                    () = aborted => {}
                }
                return;
            }
            let mut graceful = engine.inner.graceful.subscribe();
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection error");
                    }
                }
                () = async { let _ = graceful.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection error during shutdown");
                    }
                }
            }
        }
    }
}
