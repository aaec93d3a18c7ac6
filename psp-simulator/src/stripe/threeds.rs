//! The 3-D Secure challenge: a tiny HTML page a browser (or a test) can
//! complete, and a JSON admin endpoint doing the same for API-only tests.
//!
//! `GET /3ds/{pi}` shows the amount and two buttons; they POST
//! `result=approve|fail` to `/3ds/{pi}`, which resolves the intent and then
//! redirects to the intent's `return_url` (with Stripe's query parameters)
//! or shows the result. `POST /_sim/3ds/{pi}` takes `{"result": ...}`.
//! A canceled intent is never captured: the page answers 400, the admin
//! call Stripe's 400 `payment_intent_unexpected_state`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use super::error::json_bytes;
use super::intent::{IntentStatus, PaymentIntent};
use super::resolve::{ResolveError, Verdict, canceled_error, resolve_3ds};
use crate::admin::admin_error;
use crate::state::SimState;

/// Routes of the challenge page and its admin twin.
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new()
        .route("/3ds/{id}", get(challenge_page).post(challenge_submit))
        .route("/_sim/3ds/{id}", post(challenge_api))
        .with_state(sim)
}

/// The challenge outcome, as posted by the page or the admin API.
#[derive(Deserialize)]
struct ChallengeResult {
    result: String,
}

fn verdict(result: &str) -> Option<Verdict> {
    match result {
        "approve" => Some(Verdict::Approve),
        "fail" => Some(Verdict::Reject),
        _ => None,
    }
}

/// `GET /3ds/{id}`: the challenge page.
async fn challenge_page(State(sim): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let Some(intent) = sim.with_ledger(|ledger| ledger.intent(&id).cloned()) else {
        return (StatusCode::NOT_FOUND, page("Unknown payment", "<p>No such payment.</p>")).into_response();
    };
    if intent.status != IntentStatus::RequiresAction {
        let body = format!("<p>This payment does not need authentication (status: {}).</p>", status_name(&intent));
        return page("3D Secure", &body).into_response();
    }
    let id = escape(&intent.id);
    let body = format!(
        "<p>Payment <code>{id}</code> of <strong>{amount} {currency}</strong> (minor units) \
         needs 3D Secure authentication.</p>\
         <form method=\"post\" action=\"/3ds/{id}\">\
         <button name=\"result\" value=\"approve\">Complete authentication</button> \
         <button name=\"result\" value=\"fail\">Fail authentication</button></form>",
        amount = intent.amount,
        currency = escape(&intent.currency.to_ascii_uppercase()),
    );
    page("3D Secure authentication", &body).into_response()
}

/// `POST /3ds/{id}` (form `result=approve|fail`).
async fn challenge_submit(
    State(sim): State<Arc<SimState>>,
    Path(id): Path<String>,
    Form(form): Form<ChallengeResult>,
) -> Response {
    let Some(verdict) = verdict(&form.result) else {
        return (StatusCode::BAD_REQUEST, page("3D Secure", "<p>Unknown result.</p>")).into_response();
    };
    match resolve_3ds(&sim, &id, verdict) {
        Ok(intent) => match return_url(&intent) {
            Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
            None => {
                let body = format!("<p>Authentication finished: {}.</p>", status_name(&intent));
                page("3D Secure", &body).into_response()
            }
        },
        Err(ResolveError::NotFound) => {
            (StatusCode::NOT_FOUND, page("Unknown payment", "<p>No such payment.</p>")).into_response()
        }
        Err(ResolveError::NotWaiting) => {
            (StatusCode::CONFLICT, page("3D Secure", "<p>This payment is not waiting for authentication.</p>"))
                .into_response()
        }
        Err(ResolveError::Canceled) => {
            (StatusCode::BAD_REQUEST, page("3D Secure", "<p>This payment was canceled.</p>")).into_response()
        }
    }
}

/// `POST /_sim/3ds/{id}` with `{"result":"approve"|"fail"}`: the intent.
async fn challenge_api(
    State(sim): State<Arc<SimState>>,
    Path(id): Path<String>,
    Json(body): Json<ChallengeResult>,
) -> Response {
    let Some(verdict) = verdict(&body.result) else {
        return admin_error(StatusCode::BAD_REQUEST, "result must be approve or fail");
    };
    match resolve_3ds(&sim, &id, verdict) {
        Ok(intent) => ([(header::CONTENT_TYPE, "application/json")], json_bytes(&intent)).into_response(),
        Err(ResolveError::NotFound) => admin_error(StatusCode::NOT_FOUND, "no such payment intent"),
        Err(ResolveError::NotWaiting) => {
            admin_error(StatusCode::CONFLICT, "payment intent is not waiting for 3D Secure")
        }
        Err(ResolveError::Canceled) => canceled_error(&sim, &id, "authentication")
            .map_or_else(|| admin_error(StatusCode::NOT_FOUND, "no such payment intent"), IntoResponse::into_response),
    }
}

/// Where to send the customer after the challenge, with the query
/// parameters Stripe appends.
fn return_url(intent: &PaymentIntent) -> Option<String> {
    let url = intent.return_url.as_deref()?;
    let separator = if url.contains('?') { '&' } else { '?' };
    let status = if intent.status == IntentStatus::Succeeded { "succeeded" } else { "failed" };
    Some(format!(
        "{url}{separator}payment_intent={}&payment_intent_client_secret={}&redirect_status={status}",
        intent.id, intent.client_secret
    ))
}

fn status_name(intent: &PaymentIntent) -> &'static str {
    intent.status.as_str()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    ))
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
