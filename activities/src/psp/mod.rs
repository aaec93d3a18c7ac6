//! PSP access: one trait, [`PspClient`], with an adapter per PSP (Stripe today; Toss
//! Payments next), and the activity that charges through whichever is configured.
//!
//! Classification happens once, here: a decline is an outcome ([`ChargeOutcome::Declined`]);
//! errors are faults, retryable (timeouts, connection errors, 5xx, 429 with Retry-After) or not
//! (invalid request, bad credentials, idempotency-key misuse).

pub mod http;
pub mod stripe;
pub mod toss;

use crate::chaos;
use crate::failure::{non_retryable, retryable};
use payments_workflows::contract::{
    CancelPending, ChargeInput, ChargeOrder, ChargeOutcome, ConfirmInput, ConfirmPayment, LookupInput, LookupPayment,
    PaymentLookup, RefundPayment,
};
// The refund types are part of the activity contract (the workflows send and read them).
pub use payments_workflows::contract::{RefundOutcome, RefundRequest};
use payments_workflows::policies::failure_types;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// A PSP API key. Its `Debug` never shows the key, so it cannot leak into logs.
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
}

/// Boxed future returned by [`PspClient`] methods (object-safe async).
pub type PspFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PspError>> + Send + 'a>>;

/// A payment service provider.
pub trait PspClient: Send + Sync + 'static {
    /// Charges (authorizes and captures) one order. `input.payment_order_id` must be sent as
    /// the PSP idempotency key, so a retry can never capture twice.
    fn charge<'a>(&'a self, input: &'a ChargeInput) -> PspFuture<'a, ChargeOutcome>;

    /// What the PSP knows of the order's payment (by reference when known, else by order id).
    fn lookup<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, PaymentLookup>;

    /// Refunds part or all of a captured payment; `refund_id` is the idempotency key.
    fn refund<'a>(&'a self, request: &'a RefundRequest) -> PspFuture<'a, RefundOutcome>;

    /// Confirms a payment the buyer approved on the PSP's hosted page (hosted flow).
    fn confirm<'a>(&'a self, input: &'a ConfirmInput) -> PspFuture<'a, ChargeOutcome>;

    /// Cancels a payment that is still pending (its deadline passed) so it can never be
    /// captured later, and answers its final state (captured if it completed meanwhile).
    fn cancel_pending<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, ChargeOutcome>;
}

/// PSP activities; hold only the PSP client.
pub struct PspActivities {
    client: Arc<dyn PspClient>,
}

impl PspActivities {
    /// Activities charging through `client`.
    pub fn new(client: Arc<dyn PspClient>) -> Self {
        PspActivities { client }
    }
}

#[activities]
impl PspActivities {
    /// Charges one order at the PSP.
    #[activity(definition = ChargeOrder)]
    pub async fn charge(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ChargeInput,
    ) -> Result<ChargeOutcome, ActivityError> {
        let attempt = ctx.info().attempt;
        let result = self.client.charge(&input).await;
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

    /// Confirms a hosted payment at the PSP.
    #[activity(definition = ConfirmPayment)]
    pub async fn confirm(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ConfirmInput,
    ) -> Result<ChargeOutcome, ActivityError> {
        let result = self.client.confirm(&input).await;
        tracing::info!(checkout_id = %input.checkout_id, attempt = ctx.info().attempt, ?result, "psp confirm");
        result.map_err(PspError::into_activity_error)
    }

    /// Cancels a payment still pending past its deadline; answers its final state.
    #[activity(definition = CancelPending)]
    pub async fn cancel_pending(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: LookupInput,
    ) -> Result<ChargeOutcome, ActivityError> {
        let result = self.client.cancel_pending(&input).await;
        tracing::info!(payment_order_id = %input.payment_order_id, ?result, "psp cancel pending");
        result.map_err(PspError::into_activity_error)
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
            Ok(outcome) => Ok(outcome),
            Err(PspError::OutcomeUnknown(message)) => {
                Err(retryable("PspRefundOutcomeUnknown", format!("refund answer lost: {message}"), None))
            }
            Err(e) => Err(e.into_activity_error()),
        }
    }

    /// Asks the PSP what became of one order's payment.
    #[activity(definition = LookupPayment)]
    pub async fn lookup(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: LookupInput,
    ) -> Result<PaymentLookup, ActivityError> {
        let found = self.client.lookup(&input).await.map_err(PspError::into_activity_error)?;
        tracing::info!(payment_order_id = %input.payment_order_id, ?found, "psp lookup");
        Ok(found)
    }
}
