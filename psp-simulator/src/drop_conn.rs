//! Closing a request's TCP connection without answering it.
//!
//! The "lost response" fault must look, to the client, exactly like a
//! network failure after the server did the work: no status line, no bytes.
//! An axum handler cannot express that, so [`crate::run`] serves each
//! connection in its own task and gives every request a [`ConnectionKill`]
//! handle (a request extension). The handler fires it and then never
//! completes; the connection task sees the signal and drops the connection
//! (and with it the socket) before any response byte is written.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use tokio::sync::Notify;

/// Per-connection handle that closes the connection unanswered.
#[derive(Clone, Debug, Default)]
pub struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    /// A handle for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the connection task to drop the connection. The caller must not
    /// produce a response afterwards (see [`ConnectionKill::kill_and_hang`]).
    pub fn kill(&self) {
        // `notify_one` stores a permit if the task is not waiting right now,
        // so the signal cannot be missed.
        self.0.notify_one();
    }

    /// Kills the connection and never returns, so no response can race the
    /// connection task to the socket.
    pub async fn kill_and_hang(&self) -> Response {
        self.kill();
        std::future::pending().await
    }

    /// Resolves once [`ConnectionKill::kill`] was called.
    pub async fn killed(&self) {
        self.0.notified().await;
    }
}

/// The application with a [`ConnectionKill`] attached to every request of
/// one connection.
#[derive(Clone)]
pub struct WithKill {
    app: Router,
    kill: ConnectionKill,
}

impl WithKill {
    /// Wraps `app` for one connection.
    pub fn new(app: Router, kill: ConnectionKill) -> Self {
        Self { app, kill }
    }
}

impl<B> tower_service::Service<axum::http::Request<B>> for WithKill
where
    Router: tower_service::Service<Request, Response = Response, Error = Infallible>,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A Router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(self.kill.clone());
        let mut app = self.app.clone();
        Box::pin(async move { tower_service::Service::call(&mut app, request).await })
    }
}
