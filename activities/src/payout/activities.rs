//! The payout workflow's activities: store steps (reserve, record, settle, candidates) and
//! provider steps (send, check, cancel) over whichever provider the seller is registered with.
//!
//! The rules every provider step obeys: the payout id is the provider's idempotency key and
//! reference; a send whose answer was lost is looked up at the provider and, when the provider
//! has no such payout, sent again (retryable: the same key can never pay twice); a refusal
//! (the seller is not payable) cancels the payout, which books the amount back; whatever the
//! provider says is recorded in the store, which only moves a payout forward.

use super::{PayoutOrder, PayoutProvider, PayoutProviderKind, ProviderPayout, ProviderPayoutStatus};
use crate::chaos;
use crate::failure::{from_store, non_retryable, retryable};
use crate::psp::PspError;
use payments_domain::{Currency, SellerAccount};
use payments_store::{PayoutHolds, PayoutProgress, PayoutRecord, PayoutStatus, ReserveOutcome, Store};
use payments_workflows::payout_contract::{
    CancelPayout, CandidatesInput, CheckPayout, PayoutCandidates, PayoutReport, PayoutState, RecordPayoutEvent,
    ReservePayout, ReservePayoutInput, Reserved, SendPayout, SettlePayout,
};
use payments_workflows::policies::failure_types;
use std::collections::BTreeMap;
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The text sent with a payout for the seller's bank statement (Toss allows 7 characters).
pub const PAYOUT_DESCRIPTION: &str = "PAYOUT";

/// The configured payout providers, by kind.
#[derive(Clone, Default)]
pub struct PayoutProviders {
    providers: BTreeMap<&'static str, Arc<dyn PayoutProvider>>,
}

impl PayoutProviders {
    /// No providers.
    pub fn new() -> Self {
        PayoutProviders::default()
    }

    /// Adds a provider (replacing one of the same kind).
    pub fn with(mut self, provider: Arc<dyn PayoutProvider>) -> Self {
        self.providers.insert(provider.kind().as_str(), provider);
        self
    }

    /// The provider named `name` (`toss_payouts`, `stripe_connect`).
    pub fn get(&self, name: &str) -> Result<&Arc<dyn PayoutProvider>, ActivityError> {
        self.providers.get(name).ok_or_else(|| {
            non_retryable(failure_types::PSP_AUTHENTICATION, format!("payout provider {name} is not configured"))
        })
    }

    /// The kinds configured.
    pub fn kinds(&self) -> Vec<PayoutProviderKind> {
        self.providers.values().map(|p| p.kind()).collect()
    }
}

/// Payout activities; hold the store and the providers.
pub struct PayoutActivities {
    store: Store,
    providers: PayoutProviders,
}

impl PayoutActivities {
    /// Activities over this store and these providers.
    pub fn new(store: Store, providers: PayoutProviders) -> Self {
        PayoutActivities { store, providers }
    }

    async fn record(&self, progress: PayoutProgress) -> Result<PayoutState, ActivityError> {
        let record = self.store.record_payout_progress(&progress).await.map_err(from_store)?;
        Ok(state_of(&record))
    }

    /// Records what the provider says of `state`'s payout.
    async fn record_provider(&self, state: &PayoutState, payout: ProviderPayout) -> Result<PayoutState, ActivityError> {
        if payout.reference != state.payout_id || payout.amount != state.amount {
            return Err(non_retryable(
                failure_types::PSP_PAYMENT_MISMATCH,
                format!(
                    "provider payout {} ({} {}) is not payout {} ({})",
                    payout.provider_payout_id, payout.reference, payout.amount, state.payout_id, state.amount
                ),
            ));
        }
        self.record(PayoutProgress {
            payout_id: state.payout_id.clone(),
            status: store_status(payout.status),
            provider_payout_id: Some(payout.provider_payout_id),
            failure_code: payout.failure_code,
            failure_message: payout.failure_message,
        })
        .await
    }
}

/// The store's holds for a reservation: the delay and the rolling reserve the cycle carried.
fn holds_of(input: &ReservePayoutInput) -> PayoutHolds {
    PayoutHolds {
        delay_ms: input.payout_delay_ms,
        reserve_bps: input.reserve.bps,
        reserve_window_ms: input.reserve.window_ms,
    }
}

fn order_of(state: &PayoutState) -> PayoutOrder {
    PayoutOrder {
        reference: state.payout_id.clone(),
        destination: state.destination.clone(),
        amount: state.amount,
        description: PAYOUT_DESCRIPTION.into(),
    }
}

/// The store's status for a provider's.
pub fn store_status(status: ProviderPayoutStatus) -> PayoutStatus {
    match status {
        ProviderPayoutStatus::Requested => PayoutStatus::Requested,
        ProviderPayoutStatus::InTransit => PayoutStatus::InTransit,
        ProviderPayoutStatus::Paid => PayoutStatus::Paid,
        ProviderPayoutStatus::Failed => PayoutStatus::Failed,
        ProviderPayoutStatus::Canceled => PayoutStatus::Canceled,
    }
}

/// A stored payout as the workflow sees it.
pub fn state_of(record: &PayoutRecord) -> PayoutState {
    PayoutState {
        payout_id: record.payout_id.clone(),
        seller: record.seller_account.clone(),
        amount: record.amount,
        status: record.status.as_str().to_owned(),
        provider: record.provider.clone(),
        destination: record.destination.clone(),
        provider_payout_id: record.provider_payout_id.clone(),
        failure_code: record.failure_code.clone(),
    }
}

#[activities]
impl PayoutActivities {
    /// Makes (or finds) the period's payout, booked to in transit before any provider call.
    #[activity(definition = ReservePayout)]
    pub async fn reserve(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ReservePayoutInput,
    ) -> Result<Reserved, ActivityError> {
        let outcome = self
            .store
            .reserve_payout(&input.seller, input.currency, &input.period, &holds_of(&input))
            .await
            .map_err(from_store)?;
        tracing::info!(seller = %input.seller, currency = %input.currency, period = input.period, ?outcome, "payout reserve");
        Ok(match outcome {
            ReserveOutcome::Payout(record) => Reserved::Payout(state_of(&record)),
            ReserveOutcome::Skipped(skip) => Reserved::Skipped(format!("{skip:?}")),
        })
    }

    /// Sends a RESERVED payout; answers the stored payout after the provider's answer.
    #[activity(definition = SendPayout)]
    pub async fn send(self: Arc<Self>, ctx: ActivityContext, state: PayoutState) -> Result<PayoutState, ActivityError> {
        let provider = self.providers.get(&state.provider)?;
        let order = order_of(&state);
        let attempt = ctx.info().attempt;
        // After a lost answer (an earlier attempt), ask first: the provider may have it.
        if attempt > 1 {
            match provider.find_payout(&order).await {
                Ok(Some(found)) => return self.record_provider(&state, found).await,
                Ok(None) => {}
                Err(e) => return Err(e.into_activity_error()),
            }
        }
        match provider.create_payout(&order).await {
            Ok(payout) => {
                tracing::info!(payout_id = state.payout_id, attempt, status = ?payout.status, "payout sent");
                chaos::maybe_abort_after("payout.send");
                self.record_provider(&state, payout).await
            }
            Err(PspError::InvalidRequest(message)) => {
                // Refused before any money moved (the seller is not payable, a bad destination):
                // the payout is canceled and its amount booked back.
                tracing::warn!(payout_id = state.payout_id, message, "payout refused by the provider");
                self.record(PayoutProgress {
                    payout_id: state.payout_id.clone(),
                    status: PayoutStatus::Canceled,
                    provider_payout_id: None,
                    failure_code: Some("refused".into()),
                    failure_message: Some(message),
                })
                .await
            }
            Err(PspError::OutcomeUnknown(message)) => {
                tracing::warn!(payout_id = state.payout_id, attempt, message, "payout answer lost");
                Err(retryable("PayoutOutcomeUnknown", format!("payout answer lost: {message}"), None))
            }
            Err(e) => Err(e.into_activity_error()),
        }
    }

    /// Asks the provider about a payout and records its answer.
    #[activity(definition = CheckPayout)]
    pub async fn check(
        self: Arc<Self>,
        _ctx: ActivityContext,
        state: PayoutState,
    ) -> Result<PayoutState, ActivityError> {
        let provider = self.providers.get(&state.provider)?;
        match provider.find_payout(&order_of(&state)).await.map_err(PspError::into_activity_error)? {
            Some(found) => self.record_provider(&state, found).await,
            // Sent (REQUESTED or later) but unknown to the provider: something is wrong that a
            // person must look at; RESERVED and unknown: it was never sent, send it now.
            None if state.status == "RESERVED" => {
                Err(retryable("PayoutNotSent", format!("payout {} was never sent", state.payout_id), None))
            }
            None => Err(non_retryable(
                failure_types::PSP_PAYMENT_MISMATCH,
                format!("provider has no payout {} although it accepted it", state.payout_id),
            )),
        }
    }

    /// Records a provider event.
    #[activity(definition = RecordPayoutEvent)]
    pub async fn record_event(
        self: Arc<Self>,
        _ctx: ActivityContext,
        report: PayoutReport,
    ) -> Result<PayoutState, ActivityError> {
        let status = PayoutStatus::parse(&report.status).map_err(from_store)?;
        self.record(PayoutProgress {
            payout_id: report.payout_id,
            status,
            provider_payout_id: report.provider_payout_id,
            failure_code: report.failure_code,
            failure_message: report.failure_message,
        })
        .await
    }

    /// Settles a PAID payout.
    #[activity(definition = SettlePayout)]
    pub async fn settle(
        self: Arc<Self>,
        _ctx: ActivityContext,
        payout_id: String,
    ) -> Result<PayoutState, ActivityError> {
        let record = self.store.settle_payout(&payout_id).await.map_err(from_store)?;
        tracing::info!(payout_id, "payout settled");
        Ok(state_of(&record))
    }

    /// Cancels a payout on an operator's request.
    #[activity(definition = CancelPayout)]
    pub async fn cancel(
        self: Arc<Self>,
        _ctx: ActivityContext,
        state: PayoutState,
    ) -> Result<PayoutState, ActivityError> {
        let provider = self.providers.get(&state.provider)?;
        let order = order_of(&state);
        let known = match &state.provider_payout_id {
            Some(id) => Some(id.clone()),
            None => {
                provider.find_payout(&order).await.map_err(PspError::into_activity_error)?.map(|p| p.provider_payout_id)
            }
        };
        let Some(provider_payout_id) = known else {
            // Never reached the provider: nothing to cancel there.
            return self
                .record(PayoutProgress {
                    payout_id: state.payout_id.clone(),
                    status: PayoutStatus::Canceled,
                    provider_payout_id: None,
                    failure_code: Some("canceled_by_operator".into()),
                    failure_message: None,
                })
                .await;
        };
        let after = provider.cancel_payout(&order, &provider_payout_id).await.map_err(PspError::into_activity_error)?;
        tracing::info!(payout_id = state.payout_id, status = ?after.status, "payout cancel");
        self.record_provider(&state, after).await
    }

    /// A page of (seller, currency) pairs with a positive balance.
    #[activity(definition = PayoutCandidates)]
    pub async fn candidates(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CandidatesInput,
    ) -> Result<Vec<(SellerAccount, Currency)>, ActivityError> {
        let after = input.after.as_ref().map(|(s, c)| (s, *c));
        self.store
            .payout_candidates(after, input.seller.as_ref(), input.currency, input.limit as usize)
            .await
            .map_err(from_store)
    }
}
