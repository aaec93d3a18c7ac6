//! The life of a PSP POST, shared by every dialect: idempotent replay,
//! attempt counting, fault injection, storing the result, and delivering
//! the answer normally, late, or not at all.
//!
//! Order of events for a request with an `Idempotency-Key`:
//! take the key's lock (a fresh record if the key is new or expired) →
//! count the attempt → replay a stored response (or reject a different
//! request reusing the key) → otherwise let the dialect execute, possibly
//! faulted → store the result if it is the idempotent one → **release the
//! lock** → deliver. Releasing before delivery is what lets
//! a replay or a lookup answer at once while a slow response is held back,
//! and what makes a dropped response replayable on the next attempt.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::clock::now_ms;
use crate::drop_conn::ConnectionKill;
use crate::faults::{Fault, FaultInjector};
use crate::idempotency::StoredResponse;
use crate::ledger::Psp;
use crate::request_log::{LoggedRequest, Outcome};
use crate::state::{SimState, Stats};

/// A response about to be sent.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// JSON body, kept as bytes so a replay is byte-for-byte identical.
    pub body: Bytes,
    /// Whether this is the idempotent result of the request (stored for
    /// replay). Only results of requests that started executing are.
    pub store: bool,
    /// Extra headers, never stored (e.g. `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Reply {
    /// A reply with no extra headers.
    pub fn new(status: StatusCode, body: Bytes, store: bool) -> Self {
        Self { status, body, store, headers: Vec::new() }
    }
}

/// How the answer reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// At once.
    Normal,
    /// After this delay (the "slow" fault).
    Delayed(Duration),
    /// Never: the connection is closed without a response.
    Dropped,
}

/// What the dialect did with a request.
#[derive(Debug)]
pub struct Executed {
    pub reply: Reply,
    pub delivery: Delivery,
}

impl Executed {
    /// A reply delivered at once.
    pub fn now(reply: Reply) -> Self {
        Self { reply, delivery: Delivery::Normal }
    }
}

/// The error shapes of one dialect that the shared flow needs.
pub trait Wire {
    /// An idempotency key reused for a different request.
    fn key_reused(key: &str) -> Reply;
    /// A simulated internal error (never stored).
    fn server_error() -> Reply;
    /// A simulated rate limit (never stored); the flow adds `Retry-After`.
    fn rate_limited() -> Reply;
}

/// Runs `execute` under `fault`: a server error (Stripe 503, Toss 500) or 429 answers without executing;
/// a slow or lost response executes and then delays or drops the answer.
pub fn with_fault<W: Wire>(fault: Option<Fault>, faults: &FaultInjector, execute: impl FnOnce() -> Reply) -> Executed {
    match fault {
        None => Executed::now(execute()),
        Some(Fault::ServerError) => Executed::now(W::server_error()),
        Some(Fault::RateLimited) => {
            let mut reply = W::rate_limited();
            if let Ok(value) = HeaderValue::from_str(&faults.retry_after_secs.to_string()) {
                reply.headers.push((header::RETRY_AFTER, value));
            }
            Executed::now(reply)
        }
        Some(Fault::Slow) => Executed { reply: execute(), delivery: Delivery::Delayed(faults.slow_response) },
        Some(Fault::LostResponse) => Executed { reply: execute(), delivery: Delivery::Dropped },
    }
}

/// What every PSP POST handler receives, extracted once: the simulator, the authenticated
/// account (`A`: the PSP's account type, put there by its authentication layer), the
/// connection's kill switch, and the request's path, headers and body. Each PSP decodes it
/// into a [`Post`] with its own idempotency-key and body rules.
pub struct PostParts<A> {
    /// The simulator.
    pub sim: Arc<SimState>,
    /// The caller's account.
    pub account: A,
    /// Closes the connection unanswered (lost-response faults).
    pub kill: Option<ConnectionKill>,
    /// The request path, as fingerprinted for idempotency.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
}

impl<A: Clone + Send + Sync + 'static> FromRequest<Arc<SimState>> for PostParts<A> {
    type Rejection = Response;

    async fn from_request(req: Request, sim: &Arc<SimState>) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let Some(account) = parts.extensions.get::<A>().cloned() else {
            let missing = "no authenticated account: the authentication layer did not run";
            return Err((StatusCode::INTERNAL_SERVER_ERROR, missing).into_response());
        };
        let kill = parts.extensions.get::<ConnectionKill>().cloned();
        let (path, headers) = (parts.uri.path().to_owned(), parts.headers.clone());
        let body =
            Bytes::from_request(Request::from_parts(parts, body), sim).await.map_err(IntoResponse::into_response)?;
        Ok(PostParts { sim: Arc::clone(sim), account, kill, path, headers, body })
    }
}

/// Identity of one POST for the shared flow.
pub struct Post {
    /// The dialect; its idempotency keys live for its TTL.
    pub psp: Psp,
    /// The caller's API key; idempotency keys are scoped to it.
    pub account: String,
    pub key: Option<String>,
    /// What "the same request" means for key reuse (see
    /// [`crate::idempotency::fingerprint`]).
    pub fingerprint: String,
    pub path: String,
    /// Present when served by [`crate::run`]; needed to drop the response.
    pub kill: Option<ConnectionKill>,
    /// Whether this is a refund, whose answers the outage switch's
    /// `refund_answers_lost` withholds (see `crate::outage`).
    pub refund: bool,
}

/// Runs one POST: replays, or executes at most once per key via
/// `execute(attempt, key)`, then delivers the answer.
pub async fn run_post<W: Wire>(
    sim: &SimState,
    post: Post,
    execute: impl FnOnce(u32, Option<&str>) -> Executed,
) -> Response {
    let received_at_ms = now_ms();
    let Some(key) = post.key.clone() else {
        let executed = execute(1, None);
        return deliver(sim, &post, received_at_ms, executed, false).await;
    };
    let mut slot = sim.idempotency.lock(post.psp, &post.account, &key).await;
    slot.attempts = slot.attempts.saturating_add(1);
    let attempt = slot.attempts;
    let executed = match slot.stored.as_ref() {
        Some(stored) if stored.fingerprint != post.fingerprint => Executed::now(W::key_reused(&key)),
        Some(stored) => {
            Stats::bump(&sim.stats.idempotent_replays_total);
            let reply = Reply::new(stored.status, stored.body.clone(), false);
            drop(slot);
            return deliver(sim, &post, received_at_ms, Executed::now(reply), true).await;
        }
        None => {
            let executed = execute(attempt, Some(&key));
            if executed.reply.store {
                slot.stored = Some(StoredResponse {
                    fingerprint: post.fingerprint.clone(),
                    status: executed.reply.status,
                    body: executed.reply.body.clone(),
                });
            }
            executed
        }
    };
    drop(slot);
    deliver(sim, &post, received_at_ms, executed, false).await
}

/// `executed`, to be dropped if it is a refund's idempotent result — fresh
/// or `replayed` — while the outage switch loses refund answers. Answers
/// that stored nothing (validation, key reuse) are not results and go out.
fn lose_refund_answer(sim: &SimState, post: &Post, mut executed: Executed, replayed: bool) -> Executed {
    let result = replayed || executed.reply.store;
    if post.refund && result && sim.outage.get().refund_answers_lost {
        executed.delivery = Delivery::Dropped;
    }
    executed
}

/// Logs the outcome and sends (or withholds) the answer.
async fn deliver(sim: &SimState, post: &Post, received_at_ms: u64, executed: Executed, replayed: bool) -> Response {
    let executed = lose_refund_answer(sim, post, executed, replayed);
    let dropped = executed.delivery == Delivery::Dropped;
    let outcome = match (replayed, dropped) {
        (_, true) if post.kill.is_some() => Outcome::Dropped,
        (true, _) => Outcome::Replayed,
        _ => Outcome::Status(executed.reply.status.as_u16()),
    };
    sim.requests.push(LoggedRequest {
        received_at_ms,
        method: "POST".to_owned(),
        path: post.path.clone(),
        outcome,
        idempotency_key: post.key.clone(),
    });
    match executed.delivery {
        Delivery::Normal => {}
        Delivery::Delayed(delay) => tokio::time::sleep(delay).await,
        Delivery::Dropped => match &post.kill {
            Some(kill) => return kill.kill_and_hang().await,
            // Embedded in someone else's server we cannot close the
            // connection; an empty 502 is the closest visible failure.
            None => {
                tracing::warn!("lost-response fault needs psp_simulator::run; answering 502");
                return StatusCode::BAD_GATEWAY.into_response();
            }
        },
    }
    respond(executed.reply, post.key.as_deref(), replayed)
}

/// The HTTP response for `reply`, with Stripe-style idempotency headers.
pub fn respond(reply: Reply, key: Option<&str>, replayed: bool) -> Response {
    let mut response = (reply.status, [(header::CONTENT_TYPE, "application/json")], reply.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        headers.insert(name, value);
    }
    if let Some(key) = key
        && let Ok(value) = HeaderValue::from_str(key)
    {
        headers.insert("idempotency-key", value);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
