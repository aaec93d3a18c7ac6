//! PSP access: one trait, [`PspClient`], with an adapter per PSP (Stripe, Toss Payments), and
//! the activities that charge, confirm, look up, cancel and refund through whichever is
//! configured.
//!
//! Classification happens once, here: a decline is an outcome ([`ChargeOutcome::Declined`]);
//! errors are faults, retryable (timeouts, connection errors, 5xx, 429 with Retry-After) or not
//! (invalid request, bad credentials, idempotency-key misuse). What the activities add to the
//! adapters, the same for every PSP ([`rules`]): the payment token is opened from the store
//! right before the charge and never leaves the adapter (it is scrubbed from every message); a
//! charge is not re-sent once the PSP may have forgotten its idempotency key; a payment a
//! lookup finds counts only when it is ours (order id, amount, currency); a search miss counts
//! only once the PSP's search has surely caught up.

pub mod http;
pub mod rules;
pub mod stripe;
pub mod toss;

use crate::chaos;
use crate::failure::{non_retryable, retryable};
use payments_store::Store;
use payments_workflows::contract::{
    CancelPending, ChargeInput, ChargeOrder, ChargeOutcome, ConfirmInput, ConfirmPayment, FindRefund, LookupInput,
    LookupPayment, PaymentLookup, RefundLookup, RefundPayment,
};
// The refund types are part of the activity contract (the workflows send and read them).
pub use payments_workflows::contract::{RefundOutcome, RefundRequest};
use payments_workflows::policies::failure_types;
pub use rules::{KeyRules, PspLookup, PspPayment};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// A secret from configuration (a PSP API key, the payment token keys). Its `Debug` never
/// shows it, so it cannot leak into logs.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        SecretKey(key.into())
    }
    /// The key, for building the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SecretKey {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretKey(s.to_owned()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// A PSP call failed. Declines are not errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspError {
    /// Transient: connection refused or dropped, timeout, 5xx, 409 in-flight, 429.
    #[error("PSP unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The PSP's Retry-After, used as the next retry delay.
        retry_after: Option<Duration>,
    },
    /// The PSP refused the request as malformed.
    #[error("PSP rejected the request: {0}")]
    InvalidRequest(String),
    /// Our credentials were refused.
    #[error("PSP authentication failed: {0}")]
    Authentication(String),
    /// The idempotency key was reused with a different request.
    #[error("PSP idempotency key misuse: {0}")]
    IdempotencyMismatch(String),
    /// The request was sent but its answer was lost (timeout, dropped connection): the PSP may
    /// have acted on it. Ask the PSP before doing anything else.
    #[error("PSP outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl PspError {
    /// As a Temporal failure, with a type name the workflow and retry policy match on.
    pub fn into_activity_error(self) -> ActivityError {
        let msg = self.to_string();
        match self {
            PspError::Unavailable { retry_after, .. } => retryable("PspUnavailable", msg, retry_after),
            PspError::InvalidRequest(_) => non_retryable(failure_types::PSP_INVALID_REQUEST, msg),
            PspError::Authentication(_) => non_retryable(failure_types::PSP_AUTHENTICATION, msg),
            PspError::IdempotencyMismatch(_) => non_retryable(failure_types::PSP_IDEMPOTENCY, msg),
            PspError::OutcomeUnknown(_) => non_retryable(failure_types::PSP_OUTCOME_UNKNOWN, msg),
        }
    }

    /// The same error with every occurrence of `secret` replaced (see [`rules::scrub`]).
    pub fn scrubbed(self, secret: &str) -> PspError {
        let s = |m: String| rules::scrub(&m, secret);
        match self {
            PspError::Unavailable { message, retry_after } => {
                PspError::Unavailable { message: s(message), retry_after }
            }
            PspError::InvalidRequest(m) => PspError::InvalidRequest(s(m)),
            PspError::Authentication(m) => PspError::Authentication(s(m)),
            PspError::IdempotencyMismatch(m) => PspError::IdempotencyMismatch(s(m)),
            PspError::OutcomeUnknown(m) => PspError::OutcomeUnknown(s(m)),
        }
    }
}

/// Boxed future returned by [`PspClient`] methods (object-safe async).
pub type PspFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PspError>> + Send + 'a>>;

/// A payment service provider.
pub trait PspClient: Send + Sync + 'static {
    /// Charges (authorizes and captures) one order with `token` (the opened payment token).
    /// `input.payment_order_id` must be sent as the PSP idempotency key, so a retry can never
    /// capture twice.
    fn charge<'a>(&'a self, input: &'a ChargeInput, token: &'a str) -> PspFuture<'a, ChargeOutcome>;

    /// What the PSP knows of the order's payment (by reference when known, else by our order
    /// id), as the PSP describes it: the activity checks that it is ours.
    fn lookup<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, PspLookup>;

    /// Refunds part or all of a captured payment; `refund_id` is the idempotency key, and
    /// travels with the refund so that [`PspClient::find_refund`] can find it.
    fn refund<'a>(&'a self, request: &'a RefundRequest) -> PspFuture<'a, RefundOutcome>;

    /// Whether the PSP made the refund `request.refund_id` (a consistent read, not a search).
    fn find_refund<'a>(&'a self, request: &'a RefundRequest) -> PspFuture<'a, RefundLookup>;

    /// Confirms a payment the buyer approved on the PSP's hosted page (hosted flow).
    fn confirm<'a>(&'a self, input: &'a ConfirmInput) -> PspFuture<'a, ChargeOutcome>;

    /// Cancels a payment that is still pending (its deadline passed) so it can never be
    /// captured later, and answers it as the PSP describes it (captured if it completed
    /// meanwhile): the activity checks that it is ours.
    fn cancel_pending<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, PspPayment>;
}

/// PSP activities; hold the PSP client, the store (to open payment tokens) and the PSP's
/// idempotency-key and search rules.
pub struct PspActivities {
    client: Arc<dyn PspClient>,
    tokens: Store,
    rules: KeyRules,
}

impl PspActivities {
    /// Activities charging through `client`, opening tokens from `tokens`.
    pub fn new(client: Arc<dyn PspClient>, tokens: Store, rules: KeyRules) -> Self {
        PspActivities { client, tokens, rules }
    }

    /// The payment token of a charge: carried by histories written before tokens were sealed,
    /// else opened from the store. A token that cannot be opened is a refusal (nothing sent).
    async fn token(&self, input: &ChargeInput) -> Result<String, ActivityError> {
        if !input.payment_token.is_empty() {
            return Ok(input.payment_token.clone());
        }
        match self.tokens.payment_token(&input.checkout_id).await {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(non_retryable(
                failure_types::PSP_INVALID_REQUEST,
                format!("checkout {} has no payment token to charge", input.checkout_id),
            )),
            Err(e) if e.is_retryable() => Err(retryable(e.type_name(), e.to_string(), None)),
            Err(e) => Err(non_retryable(failure_types::PSP_INVALID_REQUEST, format!("payment token unusable: {e}"))),
        }
    }
}

#[activities]
impl PspActivities {
    /// Charges one order at the PSP, unless the PSP may have forgotten the order's key since
    /// it was first used (then the outcome is unknown: the workflow asks the PSP first).
    #[activity(definition = ChargeOrder)]
    pub async fn charge(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ChargeInput,
    ) -> Result<ChargeOutcome, ActivityError> {
        let attempt = ctx.info().attempt;
        if let Some(refusal) = self.rules.too_late_to_send(input.first_sent_at_ms, rules::now_ms()) {
            tracing::warn!(payment_order_id = %input.payment_order_id, %refusal, "psp charge not re-sent");
            return Err(PspError::OutcomeUnknown(refusal).into_activity_error());
        }
        let token = self.token(&input).await?;
        let result = match self.client.charge(&input, &token).await {
            Ok(outcome) => Ok(rules::scrub_outcome(outcome, &token)),
            Err(e) => Err(e.scrubbed(&token)),
        };
        match &result {
            Ok(outcome) => {
                tracing::info!(payment_order_id = %input.payment_order_id, attempt, ?outcome, "psp charge")
            }
            Err(e) => {
                tracing::warn!(payment_order_id = %input.payment_order_id, attempt, error = %e, "psp charge failed")
            }
        }
        let outcome = result.map_err(PspError::into_activity_error)?;
        if matches!(outcome, ChargeOutcome::Captured { .. }) {
            chaos::maybe_abort_after("psp.charge");
        }
        Ok(outcome)
    }

    /// Confirms a hosted payment at the PSP (same key rule as a charge).
    #[activity(definition = ConfirmPayment)]
    pub async fn confirm(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ConfirmInput,
    ) -> Result<ChargeOutcome, ActivityError> {
        if let Some(refusal) = self.rules.too_late_to_send(input.first_sent_at_ms, rules::now_ms()) {
            return Err(PspError::OutcomeUnknown(refusal).into_activity_error());
        }
        let result = self.client.confirm(&input).await;
        tracing::info!(checkout_id = %input.checkout_id, attempt = ctx.info().attempt, ?result, "psp confirm");
        let outcome = result.map_err(PspError::into_activity_error)?;
        if matches!(outcome, ChargeOutcome::Captured { .. }) {
            chaos::maybe_abort_after("psp.confirm");
        }
        Ok(outcome)
    }

    /// Cancels a payment still pending past its deadline; answers its final state.
    #[activity(definition = CancelPending)]
    pub async fn cancel_pending(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: LookupInput,
    ) -> Result<ChargeOutcome, ActivityError> {
        let payment = self.client.cancel_pending(&input).await.map_err(PspError::into_activity_error)?;
        tracing::info!(payment_order_id = %input.payment_order_id, ?payment, "psp cancel pending");
        // Only our own payment's state counts (the reference may have come from a browser).
        match self.rules.judge(&input, PspLookup::Found(payment), rules::now_ms()) {
            PaymentLookup::Found(outcome) => Ok(outcome),
            PaymentLookup::Mismatch { reason } => Err(non_retryable(failure_types::PSP_PAYMENT_MISMATCH, reason)),
            other => Err(non_retryable(failure_types::PSP_OUTCOME_UNKNOWN, format!("{other:?}"))),
        }
    }

    /// Refunds part or all of a captured payment. A refund whose answer was lost is sent again
    /// (retryable): its refund id is the idempotency key, so the PSP answers the first refund
    /// instead of making another.
    #[activity(definition = RefundPayment)]
    pub async fn refund(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: RefundRequest,
    ) -> Result<RefundOutcome, ActivityError> {
        let attempt = ctx.info().attempt;
        let result = self.client.refund(&request).await;
        tracing::info!(refund_id = %request.refund_id, attempt, ?result, "psp refund");
        match result {
            Ok(outcome) => {
                let reversal =
                    payments_store::reversal_refund_id(&request.payment_order_id).as_str() == request.refund_id;
                chaos::maybe_abort_after(if reversal { "psp.reversal" } else { "psp.refund" });
                Ok(outcome)
            }
            Err(PspError::OutcomeUnknown(message)) => {
                Err(retryable("PspRefundOutcomeUnknown", format!("refund answer lost: {message}"), None))
            }
            Err(e) => Err(e.into_activity_error()),
        }
    }

    /// Asks the PSP whether it made a refund (by the refund's id).
    #[activity(definition = FindRefund)]
    pub async fn find_refund(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: RefundRequest,
    ) -> Result<RefundLookup, ActivityError> {
        let found = self.client.find_refund(&request).await;
        tracing::info!(refund_id = %request.refund_id, ?found, "psp refund lookup");
        found.map_err(PspError::into_activity_error)
    }

    /// Asks the PSP what became of one order's payment; answers only what can be trusted.
    #[activity(definition = LookupPayment)]
    pub async fn lookup(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: LookupInput,
    ) -> Result<PaymentLookup, ActivityError> {
        let raw = self.client.lookup(&input).await.map_err(PspError::into_activity_error)?;
        let found = self.rules.judge(&input, raw, rules::now_ms());
        if let PaymentLookup::Mismatch { reason } = &found {
            tracing::error!(payment_order_id = %input.payment_order_id, reason, "psp lookup found a payment that is not ours");
        }
        tracing::info!(payment_order_id = %input.payment_order_id, ?found, "psp lookup");
        Ok(found)
    }
}
