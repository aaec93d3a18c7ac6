//! Outgoing webhooks: Stripe events and Toss notifications, delivered in
//! background tasks with retries, every attempt logged for `/_sim/webhooks`.
//!
//! * Stripe: an `event` envelope around a PaymentIntent or Charge, signed
//!   with `Stripe-Signature` (see `signing.rs`).
//! * Toss payments: `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt",
//!   "data":<Payment>}`, unsigned — as with Toss, receivers must re-fetch
//!   the payment to trust it.
//! * Toss payouts: `payout.changed`, signed with the two-value
//!   `tosspayments-webhook-signature` header. The first value is made with a
//!   retired secret, the second with the current one, so receivers must
//!   accept *any* matching value as Toss requires.
//!
//! One emission (a batch of events) is delivered sequentially by one task,
//! so a batch's order is the order receivers see unless retries interleave.
//! Each event is retried on connection errors and non-2xx answers, up to
//! `webhook_attempts_max` attempts, waiting `webhook_initial_backoff_ms`
//! before the second and doubling each time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde_json::{Value, json};

use crate::SimConfig;
use crate::clock::{iso_kst, now_ms, unix_now};
use crate::ledger::Psp;
use crate::signing::{stripe_signature_header, toss_payout_signature};
use crate::state::{lock, random_alnum};

/// Delivery attempts kept in the log; the oldest is forgotten first.
pub const WEBHOOK_LOG_ENTRIES_MAX: usize = 100_000;
/// `api_version` stamped on Stripe events.
pub const STRIPE_API_VERSION: &str = "2024-06-20";
/// Time allowed for one delivery attempt.
const WEBHOOK_ATTEMPT_TIMEOUT_MS: u64 = 10_000;
/// Random characters of a generated event id.
const EVENT_ID_RANDOM_LEN: usize = 24;
/// Longest backoff exponent, so doubling never overflows.
const BACKOFF_DOUBLINGS_MAX: u32 = 20;
/// Suffix turning the current Toss secret into the "retired" one whose
/// signature is sent first (see the module docs).
const RETIRED_SECRET_SUFFIX: &str = ":retired";

/// One Stripe event to deliver: its `type` and `data.object`.
#[derive(Clone, Debug)]
pub struct StripeEvent {
    pub kind: &'static str,
    pub object: Value,
}

/// One delivery attempt, as `/_sim/webhooks` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub psp: Psp,
    #[serde(rename = "type")]
    pub kind: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// The receiver's HTTP status, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why no status was received (connection error, timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the attempt finished, Unix milliseconds.
    pub at_ms: u64,
}

/// How an outgoing event is signed.
#[derive(Clone, Debug)]
enum Signing {
    Unsigned,
    Stripe(String),
    TossPayout(String),
}

/// An event ready to send.
#[derive(Clone, Debug)]
struct Outgoing {
    event_id: String,
    psp: Psp,
    kind: String,
    body: String,
    signing: Signing,
}

struct Inner {
    client: reqwest::Client,
    stripe_url: Option<String>,
    stripe_secret: String,
    toss_url: Option<String>,
    toss_secret: String,
    attempts_max: u32,
    initial_backoff: Duration,
    log: Mutex<VecDeque<DeliveryRecord>>,
}

/// Outgoing webhook deliveries.
pub struct Webhooks {
    inner: Arc<Inner>,
}

impl Webhooks {
    /// Deliveries configured by `config`.
    pub fn new(config: &SimConfig) -> Self {
        let timeout = Duration::from_millis(WEBHOOK_ATTEMPT_TIMEOUT_MS);
        let client = reqwest::Client::builder().timeout(timeout).build().unwrap_or_else(|error| {
            tracing::error!(%error, "webhook client setup failed; using defaults");
            reqwest::Client::new()
        });
        Self {
            inner: Arc::new(Inner {
                client,
                stripe_url: config.stripe_webhook_url.clone(),
                stripe_secret: config.stripe_webhook_secret.clone(),
                toss_url: config.toss_webhook_url.clone(),
                toss_secret: config.toss_webhook_secret.clone(),
                attempts_max: config.webhook_attempts_max.max(1),
                initial_backoff: Duration::from_millis(config.webhook_initial_backoff_ms),
                log: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Delivers `events` in order, in the background.
    pub fn send_stripe(&self, events: Vec<StripeEvent>) {
        let Some(url) = self.inner.stripe_url.clone() else {
            return;
        };
        let batch = events
            .into_iter()
            .map(|event| {
                let id = format!("evt_{}", random_alnum(EVENT_ID_RANDOM_LEN));
                let envelope = json!({
                    "id": id,
                    "object": "event",
                    "api_version": STRIPE_API_VERSION,
                    "created": unix_now(),
                    "data": { "object": event.object },
                    "livemode": false,
                    "pending_webhooks": 1,
                    "request": { "id": null, "idempotency_key": null },
                    "type": event.kind,
                });
                Outgoing {
                    event_id: id,
                    psp: Psp::Stripe,
                    kind: event.kind.to_owned(),
                    body: envelope.to_string(),
                    signing: Signing::Stripe(self.inner.stripe_secret.clone()),
                }
            })
            .collect();
        self.dispatch(url, batch);
    }

    /// Delivers `PAYMENT_STATUS_CHANGED` events for these Payment objects,
    /// in order, in the background.
    pub fn send_toss(&self, payments: Vec<Value>) {
        let Some(url) = self.inner.toss_url.clone() else {
            return;
        };
        let batch = payments
            .into_iter()
            .map(|payment| {
                // Toss stamps these with Korea local time, no offset.
                let created_at = iso_kst(unix_now()).replace("+09:00", ".000");
                let body = json!({
                    "eventType": "PAYMENT_STATUS_CHANGED",
                    "createdAt": created_at,
                    "data": payment,
                });
                Outgoing {
                    event_id: format!("tevt_{}", random_alnum(EVENT_ID_RANDOM_LEN)),
                    psp: Psp::Toss,
                    kind: "PAYMENT_STATUS_CHANGED".to_owned(),
                    body: body.to_string(),
                    signing: Signing::Unsigned,
                }
            })
            .collect();
        self.dispatch(url, batch);
    }

    /// Delivers one signed Toss payout event (`body` is its exact JSON).
    pub fn send_toss_payout(&self, event_id: String, body: String) {
        let Some(url) = self.inner.toss_url.clone() else {
            return;
        };
        let outgoing = Outgoing {
            event_id,
            psp: Psp::Toss,
            kind: "payout.changed".to_owned(),
            body,
            signing: Signing::TossPayout(self.inner.toss_secret.clone()),
        };
        self.dispatch(url, vec![outgoing]);
    }

    /// Every logged delivery attempt, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.inner.log).iter().cloned().collect()
    }

    fn dispatch(&self, url: String, batch: Vec<Outgoing>) {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            for outgoing in &batch {
                deliver(&inner, &url, outgoing).await;
            }
        });
    }
}

/// Delivers one event, retrying with exponential backoff.
async fn deliver(inner: &Inner, url: &str, outgoing: &Outgoing) {
    for attempt in 1..=inner.attempts_max {
        let request = signed(
            inner.client.post(url).header(CONTENT_TYPE, "application/json").body(outgoing.body.clone()),
            outgoing,
        );
        let (status_code, error) = match request.send().await {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let delivered = status_code.is_some_and(|status| (200..300).contains(&status));
        record(
            inner,
            DeliveryRecord {
                event_id: outgoing.event_id.clone(),
                psp: outgoing.psp,
                kind: outgoing.kind.clone(),
                attempt,
                status_code,
                error,
                at_ms: now_ms(),
            },
        );
        if delivered {
            return;
        }
        if attempt < inner.attempts_max {
            let doublings = (attempt - 1).min(BACKOFF_DOUBLINGS_MAX);
            tokio::time::sleep(inner.initial_backoff * 2u32.pow(doublings)).await;
        }
    }
    tracing::warn!(event_id = %outgoing.event_id, "webhook delivery gave up");
}

/// Adds the signature headers of `outgoing`, computed at send time as the
/// PSPs do (each retry is signed anew).
fn signed(request: reqwest::RequestBuilder, outgoing: &Outgoing) -> reqwest::RequestBuilder {
    match &outgoing.signing {
        Signing::Unsigned => request,
        Signing::Stripe(secret) => {
            request.header("Stripe-Signature", stripe_signature_header(secret, unix_now(), &outgoing.body))
        }
        Signing::TossPayout(secret) => {
            let time = iso_kst(unix_now());
            let retired = format!("{secret}{RETIRED_SECRET_SUFFIX}");
            let signature = format!(
                "{},{}",
                toss_payout_signature(&retired, &outgoing.body, &time),
                toss_payout_signature(secret, &outgoing.body, &time)
            );
            request
                .header("tosspayments-webhook-transmission-time", time)
                .header("tosspayments-webhook-signature", signature)
        }
    }
}

fn record(inner: &Inner, entry: DeliveryRecord) {
    let mut log = lock(&inner.log);
    if log.len() >= WEBHOOK_LOG_ENTRIES_MAX {
        log.pop_front();
    }
    log.push_back(entry);
}
