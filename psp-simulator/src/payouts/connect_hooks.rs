//! Stripe Connect events: the `event` envelope of `webhooks.rs` plus `account` (the connected
//! account the event happened on, which Connect endpoints need to tell sellers apart), signed
//! with `Stripe-Signature` under `stripe_webhook_secret` and POSTed to `stripe_webhook_url`
//! with the same retry policy. The shared sender builds platform events only, hence this one;
//! its attempts are logged (tracing), not in `/_sim/webhooks`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::SimConfig;
use crate::clock::unix_now;
use crate::signing::stripe_signature_header;
use crate::state::random_alnum;
use crate::webhooks::STRIPE_API_VERSION;

/// Time allowed for one delivery attempt.
const ATTEMPT_TIMEOUT_MS: u64 = 10_000;
/// Random characters of an event id.
const EVENT_ID_RANDOM_LEN: usize = 24;
/// Longest backoff exponent.
const BACKOFF_DOUBLINGS_MAX: u32 = 20;

struct Inner {
    client: reqwest::Client,
    url: Option<String>,
    secret: String,
    attempts_max: u32,
    initial_backoff: Duration,
}

/// Sender of Connect events.
pub struct ConnectHooks {
    inner: Arc<Inner>,
}

impl ConnectHooks {
    /// A sender configured like the simulator's Stripe webhooks.
    pub fn new(config: &SimConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(ATTEMPT_TIMEOUT_MS))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            inner: Arc::new(Inner {
                client,
                url: config.stripe_webhook_url.clone(),
                secret: config.stripe_webhook_secret.clone(),
                attempts_max: config.webhook_attempts_max.max(1),
                initial_backoff: Duration::from_millis(config.webhook_initial_backoff_ms),
            }),
        }
    }

    /// Delivers `events` (`(type, object)`) of connected account `account`, in order, in the
    /// background.
    pub fn send(&self, account: &str, events: Vec<(&'static str, Value)>) {
        let Some(url) = self.inner.url.clone() else {
            return;
        };
        let bodies: Vec<(String, String)> = events
            .into_iter()
            .map(|(kind, object)| {
                let id = format!("evt_{}", random_alnum(EVENT_ID_RANDOM_LEN));
                let envelope = json!({
                    "id": id,
                    "object": "event",
                    "account": account,
                    "api_version": STRIPE_API_VERSION,
                    "created": unix_now(),
                    "data": { "object": object },
                    "livemode": false,
                    "pending_webhooks": 1,
                    "request": { "id": null, "idempotency_key": null },
                    "type": kind,
                });
                (id, envelope.to_string())
            })
            .collect();
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            for (id, body) in &bodies {
                deliver(&inner, &url, id, body).await;
            }
        });
    }
}

/// One event, retried with exponential backoff on errors and non-2xx answers.
async fn deliver(inner: &Inner, url: &str, id: &str, body: &str) {
    for attempt in 1..=inner.attempts_max {
        let signature = stripe_signature_header(&inner.secret, unix_now(), body);
        let sent = inner
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("Stripe-Signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::info!(event_id = id, attempt, status = %response.status(), "connect event refused")
            }
            Err(error) => tracing::info!(event_id = id, attempt, %error, "connect event not delivered"),
        }
        if attempt < inner.attempts_max {
            let doublings = (attempt - 1).min(BACKOFF_DOUBLINGS_MAX);
            tokio::time::sleep(inner.initial_backoff * 2u32.pow(doublings)).await;
        }
    }
    tracing::warn!(event_id = id, "connect event delivery gave up");
}
