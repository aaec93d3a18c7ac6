//! The REST server: hyper directly, because `axum::serve` builds its connections without a
//! timer, so hyper's header-read timeout never applies and a client sending its headers a
//! byte at a time holds a connection forever (slow-loris). Here every connection gets
//! [`ServeLimits::header_read_timeout`], every request [`ServeLimits::request_timeout`] (408),
//! and at most [`ServeLimits::concurrency_max`] requests run at once (more are shed with 503
//! at once rather than queued). Each request carries the peer's address (`ConnectInfo`) for
//! the per-IP rate limit.

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutLayer;

/// How long in-flight requests get to finish once the server is asked to stop.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's limits.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time a client has to send a request's headers (HTTP/1).
    pub header_read_timeout: Duration,
    /// Time a request has to be answered; then 408.
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered 503 with `Retry-After: 1`.
    pub concurrency_max: usize,
}

/// `app` with the request timeout and the concurrency limit.
pub fn limited(app: Router, limits: &ServeLimits) -> Router {
    let shed = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async { overloaded() }))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.concurrency_max));
    app.layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout)).layer(shed)
}

fn overloaded() -> Response {
    let body = serde_json::json!({"error": {"type": "api_error", "code": "overloaded",
        "message": "the gateway is at its concurrency limit; retry shortly"}});
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Serves `app` (already [`limited`]) on `listener` until `stop`, then drains for at most
/// [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ServeLimits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection =
            builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("connections still open after the drain timeout"),
    }
    Ok(())
}
