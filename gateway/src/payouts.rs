//! Pay-out at the edges (issue 12): seller balances (`GET /v1/sellers/{id}/balance`, gRPC
//! `GetSellerBalance`), and the operators' AdminService calls behind `paymentsctl seller` and
//! `paymentsctl payout`: registering a seller with its payout provider, reading it, marking
//! its bank account fixed, running the payout cycle on demand, listing, reading and cancelling
//! payouts. The gateway never moves money: payouts are started, signalled and cancelled as
//! workflows; registering a seller is the one provider call made here (it moves no money).

use crate::error::ApiError;
use payments_activities::payout::{BankAccount, PayoutProviders, SellerRegistration};
use payments_domain::{Currency, Money, SellerAccount};
use payments_proto::payments_v1 as pb;
use payments_store::{PayoutHolds, PayoutRecord, PayoutSeller, PayoutSellerDraft, SellerBalance, Store};
use payments_worker::payouts::PayoutConfig;
use payments_workflows::PayoutWorkflow;
use payments_workflows::payout_contract::PayoutReport;
use payments_workflows::payout_cycle::{PayoutCycleWorkflow, PayoutInterval};
use std::sync::Arc;
use temporalio_client::{Client, WorkflowSignalOptions, WorkflowStartOptions};

/// Longest name, e-mail, bank field or reason accepted, in bytes.
pub const PAYOUT_FIELD_LEN_MAX: usize = 256;

/// What the payout calls need: the store, Temporal, the task queue, the settings and the
/// providers (for seller registration).
#[derive(Clone)]
pub struct PayoutDesk {
    store: Store,
    temporal: Client,
    task_queue: String,
    config: PayoutConfig,
    /// The delay and rolling reserve balances are read with (checked once, at start-up).
    holds: PayoutHolds,
    providers: Arc<PayoutProviders>,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid("parameter_invalid", param, message.into())
}

fn text<'a>(param: &str, value: &'a str) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.len() > PAYOUT_FIELD_LEN_MAX {
        return Err(invalid(param, format!("1 to {PAYOUT_FIELD_LEN_MAX} bytes")));
    }
    Ok(value)
}

fn seller(value: &str) -> Result<SellerAccount, ApiError> {
    SellerAccount::parse(value).map_err(|e| invalid("seller_account", e.to_string()))
}

/// `CUR:AMOUNT,...` (major units) into minor units per currency.
pub fn parse_minimums(text: &str) -> Result<Vec<(Currency, i64)>, ApiError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (code, amount) = pair.split_once(':').ok_or_else(|| invalid("minimums", "CUR:AMOUNT pairs"))?;
            let currency = Currency::parse(code.trim()).map_err(|e| invalid("minimums", e.to_string()))?;
            let amount = Money::parse(amount.trim(), currency).map_err(|e| invalid("minimums", e.to_string()))?;
            Ok((currency, amount.amount_minor()))
        })
        .collect()
}

impl PayoutDesk {
    /// A desk over these parts.
    pub fn new(
        store: Store,
        temporal: Client,
        task_queue: String,
        config: PayoutConfig,
        holds: PayoutHolds,
        providers: PayoutProviders,
    ) -> Self {
        PayoutDesk { store, temporal, task_queue, config, holds, providers: Arc::new(providers) }
    }

    /// A seller's balances, one per currency.
    pub async fn balances(&self, seller_account: &str) -> Result<pb::SellerBalances, ApiError> {
        let seller = seller(seller_account)?;
        let balances = self.store.seller_balances(&seller, &self.holds).await?;
        Ok(pb::SellerBalances {
            seller_account: seller.to_string(),
            balances: balances.iter().map(balance_pb).collect(),
        })
    }

    /// Registers the seller with its provider and stores the provider's reference.
    pub async fn register(&self, r: pb::RegisterSellerRequest) -> Result<pb::PayoutSeller, ApiError> {
        let seller_account = seller(&r.seller_account)?;
        let provider = self.providers.get(&r.provider).map_err(|_| {
            invalid("provider", format!("{:?} is not a payout provider of this deployment", r.provider))
        })?;
        let minimums = parse_minimums(&r.minimums)?;
        let registration = SellerRegistration {
            seller: seller_account.clone(),
            name: text("name", &r.name)?.to_owned(),
            email: text("email", &r.email)?.to_owned(),
            country: text("country", &r.country)?.to_ascii_uppercase(),
            bank_account: BankAccount {
                bank_code: text("bank_code", &r.bank_code)?.to_owned(),
                account_number: text("account_number", &r.account_number)?.to_owned(),
                holder_name: text("holder_name", &r.holder_name)?.to_owned(),
            },
        };
        let registered = provider.register_seller(&registration).await.map_err(|e| match e {
            payments_activities::psp::PspError::InvalidRequest(m) => {
                invalid("provider", format!("the provider refused: {m}"))
            }
            other => ApiError::Unavailable(format!("payout provider: {other}")),
        })?;
        let draft = PayoutSellerDraft {
            seller_account: seller_account.clone(),
            provider: provider.kind().as_str().to_owned(),
            provider_seller_ref: registered.provider_ref,
            masked_account: registration.bank_account.masked_number(),
            provider_status: status_str(registered.status).to_owned(),
        };
        self.store.register_payout_seller(&draft).await?;
        for (currency, minimum_minor) in minimums {
            self.store.set_payout_minimum(&seller_account, currency, minimum_minor).await?;
        }
        tracing::info!(seller = %seller_account, provider = r.provider, "seller registered for payouts");
        self.seller(&seller_account).await
    }

    /// A registered seller, its status refreshed from the provider when it can be.
    pub async fn get_seller(&self, seller_account: &str) -> Result<pb::PayoutSeller, ApiError> {
        let seller = seller(seller_account)?;
        let stored = self.stored_seller(&seller).await?;
        if let Ok(provider) = self.providers.get(&stored.provider) {
            match provider.seller(&stored.provider_seller_ref).await {
                Ok(now) if status_str(now.status) != stored.provider_status => {
                    self.store.set_payout_seller_status(&seller, status_str(now.status)).await?;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%seller, error = %e, "provider status of the seller not refreshed"),
            }
        }
        self.seller(&seller).await
    }

    /// Clears the seller's pause.
    pub async fn mark_bank_fixed(&self, seller_account: &str) -> Result<pb::PayoutSeller, ApiError> {
        let seller = seller(seller_account)?;
        self.stored_seller(&seller).await?;
        self.store.mark_bank_fixed(&seller).await?;
        tracing::info!(%seller, "seller's bank account marked fixed: payouts resume");
        self.seller(&seller).await
    }

    async fn stored_seller(&self, seller: &SellerAccount) -> Result<PayoutSeller, ApiError> {
        self.store.payout_seller(seller).await?.ok_or_else(|| ApiError::NotFound(format!("payout seller {seller}")))
    }

    async fn seller(&self, seller: &SellerAccount) -> Result<pb::PayoutSeller, ApiError> {
        Ok(seller_pb(&self.stored_seller(seller).await?))
    }

    /// Starts a payout cycle now.
    pub async fn run(&self, r: pb::RunPayoutsRequest) -> Result<pb::RunPayoutsResponse, ApiError> {
        let interval = self.config.interval().map_err(ApiError::Internal)?.unwrap_or(PayoutInterval::Monthly);
        let mut input = self.config.cycle_input(interval).map_err(ApiError::Internal)?;
        input.seller = match r.seller_account.as_str() {
            "" => None,
            s => Some(seller(s)?),
        };
        input.currency = match r.currency.as_str() {
            "" => None,
            c => Some(Currency::parse(c).map_err(|e| invalid("currency", e.to_string()))?),
        };
        input.period = match r.period.trim() {
            "" => None,
            p if p.len() <= 32 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => Some(p.to_owned()),
            _ => return Err(invalid("period", "1 to 32 of [A-Za-z0-9-]")),
        };
        let workflow_id = format!(
            "payout-cycle-manual-{}-{}",
            input.seller.as_ref().map_or("all".to_owned(), |s| s.to_string()),
            uuid_like()
        );
        let options = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id.clone()).build();
        self.temporal
            .start_workflow(PayoutCycleWorkflow::run, input, options)
            .await
            .map_err(|e| ApiError::Unavailable(format!("starting the payout cycle: {e}")))?;
        tracing::info!(workflow_id, "payout cycle started on demand");
        Ok(pb::RunPayoutsResponse { workflow_id })
    }

    /// Payouts, newest first.
    pub async fn list(&self, r: pb::ListPayoutsRequest) -> Result<pb::ListPayoutsResponse, ApiError> {
        let seller = match r.seller_account.as_str() {
            "" => None,
            s => Some(seller(s)?),
        };
        let limit = if r.limit == 0 { 100 } else { r.limit.clamp(1, 1000) };
        let payouts = self.store.payouts(seller.as_ref(), limit).await?;
        Ok(pb::ListPayoutsResponse { payouts: payouts.iter().map(payout_pb).collect() })
    }

    /// One payout.
    pub async fn get(&self, payout_id: &str) -> Result<pb::Payout, ApiError> {
        let payout =
            self.store.payout(payout_id).await?.ok_or_else(|| ApiError::NotFound(format!("payout {payout_id}")))?;
        Ok(payout_pb(&payout))
    }

    /// Asks the payout's workflow to cancel it.
    pub async fn cancel(&self, r: pb::CancelPayoutRequest) -> Result<pb::Payout, ApiError> {
        let reason = text("reason", &r.reason)?.to_owned();
        let payout = self.get(&r.payout_id).await?;
        let handle = self.temporal.get_workflow_handle::<PayoutWorkflow>(r.payout_id.clone());
        handle.signal(PayoutWorkflow::cancel_payout, reason, WorkflowSignalOptions::default()).await.map_err(|e| {
            if crate::service::is_not_running(&e) {
                ApiError::invalid("payout_ended", "payout_id", format!("payout {} has ended", r.payout_id))
            } else {
                ApiError::Unavailable(format!("payout {}: {e}", r.payout_id))
            }
        })?;
        Ok(payout)
    }

    /// Hands a provider's payout event to its workflow; `false` when it has ended.
    pub async fn signal_event(&self, report: PayoutReport) -> anyhow::Result<bool> {
        let handle = self.temporal.get_workflow_handle::<PayoutWorkflow>(report.payout_id.clone());
        match handle.signal(PayoutWorkflow::payout_event, report, WorkflowSignalOptions::default()).await {
            Ok(()) => Ok(true),
            Err(e) if crate::service::is_not_running(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a provider's new status of a seller (a `seller.changed` / `account.updated`
    /// event); `false` when no registered seller has that reference.
    pub async fn seller_changed(&self, provider: &str, provider_ref: &str, status: &str) -> anyhow::Result<bool> {
        let Some(found) = self.store.payout_seller_by_ref(provider, provider_ref).await? else {
            return Ok(false);
        };
        self.store.set_payout_seller_status(&found.seller_account, status).await?;
        Ok(true)
    }
}

/// A unique suffix for on-demand cycle ids (not a secret).
fn uuid_like() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect()
}

/// The store's name of a provider's seller status.
pub fn status_str(status: payments_activities::payout::ProviderSellerStatus) -> &'static str {
    use payments_activities::payout::ProviderSellerStatus as S;
    match status {
        S::ApprovalRequired => "APPROVAL_REQUIRED",
        S::PartiallyApproved => "PARTIALLY_APPROVED",
        S::KycRequired => "KYC_REQUIRED",
        S::Approved => "APPROVED",
    }
}

fn minor(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency).to_decimal_string()
}

/// The wire view of a balance.
pub fn balance_pb(b: &SellerBalance) -> pb::SellerBalance {
    pb::SellerBalance {
        currency: b.currency.code().to_owned(),
        total: minor(b.total_minor, b.currency),
        pending: minor(b.pending_minor, b.currency),
        reserved: minor(b.reserved_minor, b.currency),
        available: minor(b.available_minor, b.currency),
        in_transit: minor(b.in_transit_minor, b.currency),
    }
}

/// The wire view of a registered seller.
pub fn seller_pb(s: &PayoutSeller) -> pb::PayoutSeller {
    pb::PayoutSeller {
        seller_account: s.seller_account.to_string(),
        provider: s.provider.clone(),
        provider_seller_ref: s.provider_seller_ref.clone(),
        masked_account: s.masked_account.clone(),
        provider_status: s.provider_status.clone(),
        paused_reason: s.paused_reason.clone().unwrap_or_default(),
        payable: s.is_payable(),
        minimums: s
            .minimums
            .iter()
            .map(|(c, m)| format!("{}:{}", c.code(), minor(*m, *c)))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The wire view of a payout.
pub fn payout_pb(p: &PayoutRecord) -> pb::Payout {
    pb::Payout {
        payout_id: p.payout_id.clone(),
        seller_account: p.seller_account.to_string(),
        period: p.period.clone(),
        amount: p.amount.to_decimal_string(),
        currency: p.amount.currency().code().to_owned(),
        provider: p.provider.clone(),
        status: p.status.as_str().to_owned(),
        provider_payout_id: p.provider_payout_id.clone().unwrap_or_default(),
        failure_code: p.failure_code.clone().unwrap_or_default(),
        failure_message: p.failure_message.clone().unwrap_or_default(),
        created_at_ms: p.created_at_ms,
        updated_at_ms: p.updated_at_ms,
    }
}
