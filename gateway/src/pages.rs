//! The hosted-payment pages (seed 003): the checkout page that opens the PSP's payment
//! window, and the success / fail URLs the PSP redirects the buyer back to. The success URL
//! checks the redirect's amount against the stored one before anything is confirmed.

use crate::auth::{Access, RouteTable};
use crate::error::ApiError;
use crate::service::{ConfirmOutcome, PaymentsService};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use base64::Engine;
use payments_domain::{CheckoutId, Money};
use payments_store::CheckoutRecord;
use payments_store::PaymentFlow;
use payments_workflows::messages::ConfirmRequest;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// What the pages need besides the service.
#[derive(Clone)]
pub struct PageConfig {
    /// This gateway's public base URL.
    pub public_url: String,
    /// The PSP's browser SDK.
    pub toss_js_url: String,
    /// The PSP's public client key.
    pub toss_client_key: String,
}

#[derive(Clone)]
struct Pages {
    service: PaymentsService,
    config: Arc<PageConfig>,
}

/// The page routes: public, the buyer has no key (a checkout id is all the page shows, and the
/// amount is the server's).
pub fn routes(table: RouteTable, service: PaymentsService, config: PageConfig) -> RouteTable {
    let headers = middleware::from_fn_with_state(sdk_origin(&config.toss_js_url), security_headers);
    let state = Pages { service, config: Arc::new(config) };
    let route = |handler: MethodRouter<Pages>| handler.layer(headers.clone()).with_state(state.clone());
    table
        .add(Method::GET, "/checkout/{checkout_id}", Access::Public, route(get(checkout_page)))
        .add(Method::GET, "/checkout/{checkout_id}/success", Access::Public, route(get(success_page)))
        .add(Method::GET, "/checkout/{checkout_id}/fail", Access::Public, route(get(fail_page)))
}

/// The nonce of a page's inline script, handed from the handler to [`security_headers`].
#[derive(Clone)]
struct ScriptNonce(String);

/// `scheme://host[:port]` of the PSP's browser SDK, allowed to run scripts on the page.
fn sdk_origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    url[..end].to_owned()
}

/// Every page answer: a Content-Security-Policy allowing only the PSP's SDK and the page's
/// own nonce-tagged script (no other inline script, no framing, no plugins, forms only to
/// us), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` (the success URL carries the
/// PSP's payment key), `nosniff` and `no-store`.
async fn security_headers(State(sdk): State<String>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let nonce = response.extensions().get::<ScriptNonce>().map(|n| format!(" 'nonce-{}'", n.0)).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src{nonce} {sdk}; connect-src {sdk} {TOSS_ORIGINS}; frame-src {sdk} {TOSS_ORIGINS}; \
         img-src 'self' data:; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp.as_str()),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Where the real Toss Payments SDK talks and opens its payment window.
const TOSS_ORIGINS: &str = "https://*.tosspayments.com";

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A JSON literal safe inside a `<script>` element.
fn js(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into()).replace('<', "\\u003c")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\
         <h1>{}</h1>{body}</body></html>",
        escape(title),
        escape(title)
    );
    (status, Html(html)).into_response()
}

fn total(record: &CheckoutRecord) -> Option<Money> {
    payments_domain::checkout::total_of(record.orders.iter().map(|o| o.amount))
}

fn orders_table(record: &CheckoutRecord) -> String {
    let rows: String = record
        .orders
        .iter()
        .map(|o| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"status\">{}</td></tr>",
                escape(o.seller_account.as_str()),
                escape(&o.amount.to_string()),
                o.status
            )
        })
        .collect();
    format!("<table id=\"orders\"><tr><th>Seller</th><th>Amount</th><th>Status</th></tr>{rows}</table>")
}

async fn load(pages: &Pages, id: String) -> Result<CheckoutRecord, Response> {
    let id = CheckoutId::parse(id)
        .map_err(|e| page(StatusCode::BAD_REQUEST, "Invalid checkout", &escape(&e.to_string())))?;
    let not_found = || page(StatusCode::NOT_FOUND, "Checkout not found", "");
    let record = pages.service.checkout(&id).await.map_err(|e| match e {
        ApiError::NotFound(_) => not_found(),
        other => other.into_response(),
    })?;
    // Only hosted checkouts have pages: a direct checkout's sellers and amounts are nobody's
    // business who merely knows its id.
    if record.flow != PaymentFlow::Hosted {
        return Err(not_found());
    }
    Ok(record)
}

async fn checkout_page(State(pages): State<Pages>, Path(id): Path<String>) -> Response {
    let record = match load(&pages, id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(total) = total(&record) else {
        return page(StatusCode::BAD_REQUEST, "Not a hosted checkout", "");
    };
    let id = record.checkout_id.as_str();
    let untouched = record.is_untouched();
    let base = pages.config.public_url.trim_end_matches('/');
    let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let pay = if untouched {
        format!(
            "<button id=\"pay-button\">Pay {amount}</button>\
             <script src=\"{sdk}\"></script><script nonce=\"{nonce}\">\
             document.getElementById('pay-button').addEventListener('click', function () {{\
               TossPayments({key}).requestPayment('카드', {{amount: {minor}, orderId: {order}, orderName: {name},\
                 successUrl: {success}, failUrl: {fail}}});\
             }});</script>",
            amount = escape(&total.to_string()),
            sdk = escape(&pages.config.toss_js_url),
            key = js(&pages.config.toss_client_key),
            minor = total.amount_minor(),
            order = js(&id),
            name = js(&format!("Checkout {id}")),
            success = js(&format!("{base}/checkout/{id}/success")),
            fail = js(&format!("{base}/checkout/{id}/fail")),
        )
    } else {
        "<p id=\"status\">This checkout is no longer awaiting payment.</p>".to_owned()
    };
    let body =
        format!("{}<p>Total: <span id=\"total\">{}</span></p>{pay}", orders_table(&record), escape(&total.to_string()));
    let mut response = page(StatusCode::OK, &format!("Checkout {id}"), &body);
    response.extensions_mut().insert(ScriptNonce(nonce));
    response
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuccessParams {
    payment_key: String,
    order_id: String,
    amount: String,
}

fn result_page(status: StatusCode, outcome: &str, detail: &str) -> Response {
    let body = format!("<p id=\"status\">{}</p><p id=\"detail\">{}</p>", escape(outcome), escape(detail));
    page(status, &format!("Payment {outcome}"), &body)
}

async fn success_page(
    State(pages): State<Pages>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let record = match load(&pages, id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let parsed = serde_json::to_value(&params).and_then(serde_json::from_value::<SuccessParams>);
    let Ok(p) = parsed else {
        return result_page(
            StatusCode::BAD_REQUEST,
            "FAILED",
            "the PSP's redirect lacks paymentKey, orderId or amount",
        );
    };
    // The redirect passed through the buyer's browser: trust nothing in it but the key.
    let expected = total(&record).map(|t| t.amount_minor());
    let amount_ok = p.amount.parse::<i64>().ok().filter(|a| Some(*a) == expected);
    if !ConfirmRequest::is_valid_payment_key(&p.payment_key) {
        tracing::warn!(checkout_id = %record.checkout_id, "hosted redirect with a malformed paymentKey; nothing confirmed");
        return result_page(
            StatusCode::BAD_REQUEST,
            "FAILED",
            "the PSP's payment key is malformed; nothing was charged",
        );
    }
    if p.order_id != record.checkout_id.as_str() || amount_ok.is_none() {
        tracing::warn!(checkout_id = %record.checkout_id, redirect_amount = %p.amount, ?expected, "hosted redirect does not match the checkout; nothing confirmed");
        return result_page(
            StatusCode::BAD_REQUEST,
            "FAILED",
            "the payment does not match this checkout (amount or order); nothing was charged",
        );
    }
    let request = ConfirmRequest { payment_key: p.payment_key, amount_minor: amount_ok.unwrap_or_default() };
    match pages.service.confirm_hosted(&record.checkout_id, request).await {
        Ok(ConfirmOutcome::Answered(r)) => {
            let detail = [r.code, r.message].into_iter().flatten().collect::<Vec<_>>().join(": ");
            let status = if r.status == "SUCCESS" || r.status == "PENDING" {
                StatusCode::OK
            } else {
                StatusCode::PAYMENT_REQUIRED
            };
            result_page(status, &r.status, &detail)
        }
        Ok(ConfirmOutcome::Refused(reason)) => result_page(StatusCode::CONFLICT, "FAILED", &reason),
        Ok(ConfirmOutcome::Finished(done)) => {
            let status = done.orders.first().map_or("UNKNOWN", |o| o.status.as_str());
            result_page(StatusCode::OK, status, "this checkout is already finished")
        }
        Err(e) => e.into_response(),
    }
}

async fn fail_page(
    State(pages): State<Pages>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let record = match load(&pages, id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let code = params.get("code").map(String::as_str).unwrap_or("UNKNOWN");
    let message = params.get("message").map(String::as_str).unwrap_or("");
    let again = format!(
        "<p><a id=\"retry\" href=\"{}/checkout/{}\">Try again</a></p>",
        escape(pages.config.public_url.trim_end_matches('/')),
        escape(record.checkout_id.as_str())
    );
    let body = format!(
        "<p id=\"status\">FAILED</p><p id=\"code\">{}</p><p id=\"detail\">{}</p>{again}",
        escape(code),
        escape(message)
    );
    page(StatusCode::OK, "Payment not completed", &body)
}
