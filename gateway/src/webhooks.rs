//! The PSP webhook-to-signal bridge: `POST /webhooks/{psp}`.
//!
//! Stripe events are verified (`Stripe-Signature`, HMAC-SHA256 over `"{t}.{body}"`, any of
//! several `v1` values, constant-time compare, 300 s tolerance); Toss `PAYMENT_STATUS_CHANGED`
//! events are unsigned and Toss payout events are signed (`tosspayments-webhook-signature`).
//! Either way an event is only a hint: the workflow asks the PSP for the payment's state, so a
//! duplicated, reordered or forged-but-valid event cannot move a final state. Each event is
//! recorded once (durably) before 2xx; a redelivery of a recorded event that the workflow has
//! not yet been told about tries the signal again.

use crate::auth::{Access, RouteTable};
use crate::limits::Limiter;
use crate::service::PaymentsService;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, Mac};
use payments_activities::payout::ProviderEvent;
use payments_activities::payout::activities::store_status;
use payments_domain::{CheckoutId, PaymentOrderId};
use payments_store::{WEBHOOK_PAYLOAD_BYTES_MAX, WebhookEvent, WebhookRecord};
use payments_worker::config::SecretKey;
use payments_workflows::messages::{CheckoutPhase, PspEventHint};
use payments_workflows::payout_contract::PayoutReport;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// Oldest (or furthest in the future) Stripe signature timestamp accepted, as Stripe's
/// libraries do: replayed old events are refused.
pub const STRIPE_TOLERANCE_SECS: i64 = 300;

/// Secrets of the webhook bridge. Never logged.
#[derive(Clone)]
pub struct WebhookSecrets {
    /// Stripe endpoint signing secret (`whsec_...`).
    pub stripe: SecretKey,
    /// Toss payout webhook security key.
    pub toss_payout: SecretKey,
}

#[derive(Clone)]
struct Bridge {
    service: PaymentsService,
    secrets: Arc<WebhookSecrets>,
    /// Unsigned hints passed on, per checkout.
    hints: Limiter<String>,
}

/// The webhook route: public (PSPs hold no key of ours; each event is checked by its PSP's own
/// rules: a signature, or, for unsigned hints, a lookup at the PSP). Bodies over
/// [`WEBHOOK_PAYLOAD_BYTES_MAX`] are answered 413, so a PSP stops redelivering them.
pub fn routes(
    table: RouteTable,
    service: PaymentsService,
    secrets: WebhookSecrets,
    hints: Limiter<String>,
) -> RouteTable {
    let state = Bridge { service, secrets: Arc::new(secrets), hints };
    // Refused from the declared Content-Length before anything is read, else while reading.
    let route = post(receive)
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(WEBHOOK_PAYLOAD_BYTES_MAX))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(WEBHOOK_PAYLOAD_BYTES_MAX));
    table.add(Method::POST, "/webhooks/{psp}", Access::Public, route.with_state(state))
}

/// What the bridge learned from one event.
struct Parsed {
    /// Unsigned events can be forged: they are rate limited per checkout.
    unsigned: bool,
    /// Payout events concern no checkout.
    payout: bool,
    /// A payout provider's event, parsed (Toss `payout.changed` / `seller.changed`, Stripe
    /// `payout.*` / `account.updated` of connected accounts): delivered to the payout's
    /// workflow or recorded on the seller.
    provider_event: Option<(&'static str, ProviderEvent)>,
    event_id: String,
    event_type: String,
    payment_order_id: Option<String>,
    checkout_id: Option<String>,
    psp_reference: Option<String>,
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn receive(State(bridge): State<Bridge>, Path(psp): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return answer(StatusCode::BAD_REQUEST, json!({"error": "body is not UTF-8"}));
    };
    let parsed = match psp.as_str() {
        "stripe" => stripe_event(bridge.secrets.stripe.expose(), &headers, text),
        "toss" => toss_event(bridge.secrets.toss_payout.expose(), &headers, text),
        _ => return answer(StatusCode::NOT_FOUND, json!({"error": format!("no webhook endpoint for {psp}")})),
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err((status, message)) => {
            tracing::warn!(psp, %status, message, "webhook refused");
            return answer(status, json!({"error": message}));
        }
    };
    handle(&bridge, &psp, parsed, text).await
}

/// Fields of PSP event objects that hold credentials: Stripe's `payment_method` (with our
/// secret key, it charges the buyer again) and `client_secret`, Toss's `billingKey` and the
/// virtual-account `secret`. Blanked before an event is stored.
const SECRET_FIELDS: [&str; 4] = ["payment_method", "client_secret", "billingKey", "secret"];
/// Stands in for a blanked field.
const REDACTED: &str = "[redacted]";

/// The payload as stored: as received, unless it holds a credential field or a string with a
/// card number (an unsigned Toss event can hold anything): then those are blanked. A payload
/// that is not JSON is not kept.
pub fn stored_payload(payload: &str) -> String {
    /// Blanks what must not be stored; answers whether it blanked anything.
    fn scrub(value: &mut Value) -> bool {
        match value {
            Value::Object(map) => {
                let mut changed = false;
                for (key, v) in map.iter_mut() {
                    if SECRET_FIELDS.contains(&key.as_str()) && !v.is_null() {
                        *v = Value::String(REDACTED.to_owned());
                        changed = true;
                    } else {
                        changed |= scrub(v);
                    }
                }
                changed
            }
            Value::Array(items) => items.iter_mut().fold(false, |changed, v| scrub(v) | changed),
            Value::String(s) if payments_domain::card::contains_card_number(s) => {
                *s = REDACTED.to_owned();
                true
            }
            _ => false,
        }
    }
    match serde_json::from_str::<Value>(payload) {
        Ok(mut value) => {
            if scrub(&mut value) {
                value.to_string()
            } else {
                payload.to_owned()
            }
        }
        Err(_) => "(not JSON; not stored)".to_owned(),
    }
}

async fn handle(bridge: &Bridge, psp: &str, parsed: Parsed, payload: &str) -> Response {
    let service = &bridge.service;
    let checkout_id = find_checkout(service, &parsed).await;
    // Anyone can send an unsigned hint, and each one costs a PSP lookup: a few per checkout
    // per minute; beyond that 429 (Toss redelivers later; a forger is slowed down).
    if parsed.unsigned
        && let Some(id) = &checkout_id
        && let Err(wait) = bridge.hints.check(&id.to_string())
    {
        tracing::warn!(psp, checkout_id = %id, "unsigned hints over the per-checkout rate");
        return crate::limits::too_many("unsigned status events for this checkout", wait).into_response();
    }
    let stored = stored_payload(payload);
    let event = WebhookEvent {
        psp,
        event_id: &parsed.event_id,
        event_type: &parsed.event_type,
        checkout_id: checkout_id.as_ref().map(|c| c.as_str()),
        payload: &stored,
    };
    match service.store().record_webhook(&event).await {
        // Recorded and handled before: never signalled again, signed or not (a forged unsigned
        // copy of a real event only costs the real one its wake-up; the wait asks the PSP on
        // its own schedule anyway).
        Ok(WebhookRecord::Done) => {
            return answer(StatusCode::OK, json!({"received": true, "duplicate": true}));
        }
        Ok(WebhookRecord::New | WebhookRecord::Pending) => {}
        Err(e) => {
            tracing::error!(psp, event_id = %parsed.event_id, error = %e, "webhook not recorded; the PSP will retry");
            return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "not recorded, retry later"}));
        }
    }
    let outcome = match &checkout_id {
        None if parsed.payout => match deliver_provider_event(service, &parsed).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(psp, event_id = %parsed.event_id, error = format!("{e:#}"), "payout event not delivered; asking for redelivery");
                return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "not delivered, retry later"}));
            }
        },
        None => "unknown_checkout",
        // Only a checkout waiting for the PSP needs waking. Signalling one that is busy (its
        // charge answered synchronously) can land in its last workflow task and force it to
        // run again; a pending wait checks the PSP on entry and at its deadline anyway.
        Some(id) => match ensure_workflow(service, id).await.map(|()| id) {
            Err(e) => {
                // Recorded but the checkout has no workflow to tell yet: the redelivery tries again.
                tracing::warn!(psp, event_id = %parsed.event_id, error = format!("{e:#}"), "workflow not started; asking for redelivery");
                return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "not delivered, retry later"}));
            }
            Ok(id) => match awaits_psp(service, id).await {
                Awaits::Finished => "workflow_finished",
                Awaits::No => "not_awaiting_psp",
                Awaits::Yes => match signal(service, id, &parsed).await {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        // Recorded but not delivered: a non-2xx makes the PSP redeliver, and the
                        // redelivery finds the record pending and signals again.
                        tracing::warn!(psp, event_id = %parsed.event_id, error = %e, "signal failed; asking for redelivery");
                        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "not delivered, retry later"}));
                    }
                },
            },
        },
    };
    if let Err(e) = service.store().finish_webhook(psp, &parsed.event_id, outcome).await {
        tracing::warn!(psp, event_id = %parsed.event_id, error = %e, "webhook outcome not saved (a redelivery is harmless)");
    }
    tracing::info!(psp, event_id = %parsed.event_id, event_type = %parsed.event_type, outcome, "webhook");
    answer(StatusCode::OK, json!({"received": true, "outcome": outcome}))
}

/// A payout provider's event: a payout's change goes to its workflow as a `payout_event`
/// signal (the workflow records it; the gateway moves no money); a seller's change is recorded
/// on the seller.
async fn deliver_provider_event(service: &PaymentsService, parsed: &Parsed) -> anyhow::Result<&'static str> {
    let Some((provider, event)) = &parsed.provider_event else {
        return Ok("recorded");
    };
    let desk = service.payouts().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(match event {
        ProviderEvent::Payout(payout) => {
            let report = PayoutReport {
                payout_id: payout.reference.clone(),
                status: store_status(payout.status).as_str().to_owned(),
                provider_payout_id: Some(payout.provider_payout_id.clone()),
                failure_code: payout.failure_code.clone(),
                failure_message: payout.failure_message.clone(),
            };
            if desk.signal_event(report).await? { "payout_signalled" } else { "payout_finished" }
        }
        ProviderEvent::Seller(seller) => {
            let status = crate::payouts::status_str(seller.status);
            if desk.seller_changed(provider, &seller.provider_ref, status).await? {
                "seller_updated"
            } else {
                "unknown_seller"
            }
        }
        ProviderEvent::Other { .. } => "recorded",
    })
}

/// An event can arrive before its checkout's workflow exists: the checkout is stored first and
/// its start may have been lost (the start sweep would repair it later) or be under way. The
/// workflow is started here as the sweep would start it (idempotent: "already started" is
/// fine), so the event is delivered to it instead of being filed as "workflow_finished".
async fn ensure_workflow(service: &PaymentsService, id: &CheckoutId) -> anyhow::Result<()> {
    match service.store().checkout(id).await? {
        Some(record) if !record.workflow_started => service.ensure_started(&record).await,
        _ => Ok(()),
    }
}

/// Whether a checkout's workflow needs a PSP hint.
enum Awaits {
    /// Waiting for the PSP (or it could not be asked: the hint is passed on anyway).
    Yes,
    /// Busy with something else.
    No,
    /// Done.
    Finished,
}

async fn awaits_psp(service: &PaymentsService, id: &CheckoutId) -> Awaits {
    if let Ok(Some(c)) = service.store().checkout(id).await
        && c.is_payment_done
    {
        return Awaits::Finished;
    }
    match service.phase(id).await {
        // UNKNOWN: the janitor asks the PSP at once when told something changed.
        Some(CheckoutPhase::AwaitingPsp | CheckoutPhase::Unknown) | None => Awaits::Yes,
        Some(CheckoutPhase::Done) => Awaits::Finished,
        Some(_) => Awaits::No,
    }
}

async fn signal(
    service: &PaymentsService,
    id: &CheckoutId,
    parsed: &Parsed,
) -> Result<&'static str, temporalio_client::errors::WorkflowInteractionError> {
    let hint = PspEventHint {
        event_id: parsed.event_id.clone(),
        payment_order_id: parsed.payment_order_id.as_deref().and_then(|p| PaymentOrderId::parse(p).ok()),
        psp_reference: parsed.psp_reference.clone(),
    };
    Ok(if service.signal_psp_event(id, hint).await? { "signaled" } else { "workflow_finished" })
}

/// The checkout an event concerns: named in the event, or found through its order.
async fn find_checkout(service: &PaymentsService, parsed: &Parsed) -> Option<CheckoutId> {
    if let Some(id) = parsed.checkout_id.as_deref().and_then(|c| CheckoutId::parse(c).ok())
        && service.store().checkout(&id).await.ok().flatten().is_some()
    {
        return Some(id);
    }
    let order_id = PaymentOrderId::parse(parsed.payment_order_id.clone()?).ok()?;
    if let Ok(Some(order)) = service.store().order(&order_id).await {
        return Some(order.checkout_id);
    }
    // Hosted checkouts are one PSP payment whose order id is the checkout id.
    let as_checkout = CheckoutId::parse(order_id.as_str()).ok()?;
    service.store().checkout(&as_checkout).await.ok().flatten().map(|c| c.checkout_id)
}

type Refusal = (StatusCode, String);

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn hmac_sha256(secret: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies a `Stripe-Signature` header (`t=<unix>,v1=<hex>[,v1=<hex>...]`) over `body`.
pub fn verify_stripe_signature(secret: &str, header: &str, body: &str, now_secs: i64) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => {}
        }
    }
    let t = timestamp.ok_or("no timestamp in Stripe-Signature")?;
    if signatures.is_empty() {
        return Err("no v1 signature in Stripe-Signature".into());
    }
    if (now_secs - t).abs() > STRIPE_TOLERANCE_SECS {
        return Err(format!("timestamp outside the {STRIPE_TOLERANCE_SECS} s tolerance"));
    }
    let expected = hex(&hmac_sha256(secret, format!("{t}.{body}").as_bytes()));
    let matches =
        signatures.iter().any(|s| s.len() == expected.len() && bool::from(s.as_bytes().ct_eq(expected.as_bytes())));
    if matches { Ok(()) } else { Err("no v1 signature matches".into()) }
}

fn stripe_event(secret: &str, headers: &HeaderMap, body: &str) -> Result<Parsed, Refusal> {
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    verify_stripe_signature(secret, header, body, now_secs()).map_err(|e| (StatusCode::UNAUTHORIZED, e))?;
    let event: Value = serde_json::from_str(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let object = &event["data"]["object"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    // A PaymentIntent names itself; a Charge (charge.refunded) names its intent.
    let psp_reference = match object["object"].as_str() {
        Some("payment_intent") => text(&object["id"]),
        _ => text(&object["payment_intent"]),
    };
    let event_type = text(&event["type"]).unwrap_or_default();
    let provider_event = if event_type.starts_with("payout.") || event_type == "account.updated" {
        match payments_activities::payout::stripe::parse_event(body) {
            Ok(parsed) => Some(("stripe_connect", parsed)),
            Err(e) => {
                tracing::warn!(event_type, error = e, "stripe payout event not understood; recorded only");
                None
            }
        }
    } else {
        None
    };
    Ok(Parsed {
        unsigned: false,
        payout: provider_event.is_some(),
        provider_event,
        event_id: text(&event["id"]).ok_or((StatusCode::BAD_REQUEST, "event without id".into()))?,
        event_type,
        payment_order_id: text(&object["metadata"]["payment_order_id"]),
        checkout_id: text(&object["metadata"]["checkout_id"]),
        psp_reference,
    })
}

/// Verifies `tosspayments-webhook-signature` (`v1:<base64>[,v1:<base64>]`): HMAC-SHA256 of
/// `"{body}:{transmission time}"` with the payout security key; any value may match.
pub fn verify_toss_signature(secret: &str, header: &str, body: &str, transmission_time: &str) -> Result<(), String> {
    let expected = hmac_sha256(secret, format!("{body}:{transmission_time}").as_bytes());
    let matches = header
        .split(',')
        .filter_map(|v| v.trim().strip_prefix("v1:"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .any(|sig| sig.len() == expected.len() && bool::from(sig.ct_eq(&expected)));
    if matches { Ok(()) } else { Err("no v1 signature matches".into()) }
}

fn toss_event(secret: &str, headers: &HeaderMap, body: &str) -> Result<Parsed, Refusal> {
    let event: Value = serde_json::from_str(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let event_type = text(&event["eventType"]).unwrap_or_default();
    if let Some(signature) = headers.get("tosspayments-webhook-signature").and_then(|v| v.to_str().ok()) {
        let time =
            headers.get("tosspayments-webhook-transmission-time").and_then(|v| v.to_str().ok()).unwrap_or_default();
        verify_toss_signature(secret, signature, body, time).map_err(|e| (StatusCode::UNAUTHORIZED, e))?;
        // Payout events: recorded; no checkout to tell. Toss names each event (`eventId`).
        let id = text(&event["eventId"])
            .or_else(|| text(&event["entityBody"]["payoutId"]).map(|p| format!("{event_type}:{p}:{time}")))
            .ok_or((StatusCode::BAD_REQUEST, "payout event without eventId".to_owned()))?;
        // An event we cannot read is recorded all the same (a 4xx would only make Toss redeliver
        // it for days); the payout's workflow asks the provider at its deadline anyway.
        let provider_event = match payments_activities::payout::toss::parse_webhook(body) {
            Ok(event) => Some(("toss_payouts", event)),
            Err(e) => {
                tracing::warn!(event_type, error = e, "toss payout event not understood; recorded only");
                None
            }
        };
        return Ok(Parsed {
            unsigned: false,
            payout: true,
            provider_event,
            event_id: id,
            event_type,
            payment_order_id: None,
            checkout_id: None,
            psp_reference: None,
        });
    }
    if event_type.starts_with("payout") || event_type.starts_with("seller") {
        return Err((StatusCode::UNAUTHORIZED, "payout events must be signed".into()));
    }
    // PAYMENT_STATUS_CHANGED is unsigned and has no event id: the payment's key, status and
    // time identify it. It is a hint only; the workflow re-fetches the payment.
    let data = &event["data"];
    let key = text(&data["paymentKey"]).ok_or((StatusCode::BAD_REQUEST, "event without data.paymentKey".into()))?;
    Ok(Parsed {
        unsigned: true,
        payout: false,
        provider_event: None,
        event_id: format!(
            "{key}:{}:{}",
            data["status"].as_str().unwrap_or_default(),
            text(&event["createdAt"]).or_else(|| text(&data["approvedAt"])).unwrap_or_default()
        ),
        event_type,
        payment_order_id: text(&data["orderId"]),
        checkout_id: None,
        psp_reference: Some(key),
    })
}

/// Deletes webhook events older than `retention_days` at start and hourly until `stop`.
pub async fn purge_loop(
    store: payments_store::Store,
    retention_days: u32,
    stop: impl std::future::Future<Output = ()>,
) {
    let retention_ms = i64::from(retention_days) * 24 * 3600 * 1000;
    let interval = std::time::Duration::from_secs(crate::idempotency::IDEMPOTENCY_PURGE_INTERVAL_SECS);
    crate::idempotency::every(interval, stop, || async {
        match store.purge_webhook_events(crate::idempotency::now_ms() - retention_ms).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, retention_days, "old webhook events purged"),
            Err(e) => tracing::warn!(error = %e, "purging webhook events failed; the next round retries"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    /// Credentials and card numbers are blanked; a payload without any is kept byte for byte.
    #[test]
    fn stored_payloads_hold_no_credentials() {
        let event = r#"{"data":{"object":{"id":"pi_1","payment_method":"pm_card_visa","client_secret":"pi_1_secret_x","metadata":{"note":"4111 1111 1111 1111"}}}}"#;
        let stored = super::stored_payload(event);
        for secret in ["pm_card_visa", "pi_1_secret_x", "4111 1111 1111 1111"] {
            assert!(!stored.contains(secret), "{stored}");
        }
        assert!(stored.contains("pi_1"));
        let plain = r#"{"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": "pk_1"}}"#;
        assert_eq!(super::stored_payload(plain), plain);
        assert_eq!(super::stored_payload("{not json"), "(not JSON; not stored)");
    }

    use super::*;

    fn sign(secret: &str, t: i64, body: &str) -> String {
        format!("t={t},v1={}", hex(&hmac_sha256(secret, format!("{t}.{body}").as_bytes())))
    }

    #[test]
    fn stripe_signatures() {
        let body = r#"{"id":"evt_1"}"#;
        let now = 1_700_000_000;
        assert!(verify_stripe_signature("whsec_a", &sign("whsec_a", now, body), body, now).is_ok());
        // Any of several v1 values (secret rotation).
        let two = format!("{},v1=deadbeef", sign("whsec_a", now, body));
        assert!(verify_stripe_signature("whsec_a", &two, body, now + 10).is_ok());
        assert!(verify_stripe_signature("whsec_b", &sign("whsec_a", now, body), body, now).is_err());
        assert!(verify_stripe_signature("whsec_a", &sign("whsec_a", now, body), "{}", now).is_err());
        assert!(verify_stripe_signature("whsec_a", &sign("whsec_a", now - 301, body), body, now).is_err(), "stale");
        assert!(verify_stripe_signature("whsec_a", "v1=abc", body, now).is_err());
    }

    #[test]
    fn toss_payout_signatures() {
        let body = r#"{"eventType":"payout.changed"}"#;
        let sig = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256("k", format!("{body}:2024-01-01T00:00:00").as_bytes()));
        let header = format!("v1:AAAA,v1:{sig}");
        assert!(verify_toss_signature("k", &header, body, "2024-01-01T00:00:00").is_ok());
        assert!(verify_toss_signature("k", &header, body, "2024-01-01T00:00:01").is_err());
        assert!(verify_toss_signature("other", &header, body, "2024-01-01T00:00:00").is_err());
    }
}
