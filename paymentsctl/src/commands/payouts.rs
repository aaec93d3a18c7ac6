//! Pay-out for operators (issue 12): `paymentsctl balance show` (REST, payments key),
//! `paymentsctl seller register|show|mark-bank-fixed` and `paymentsctl payout
//! run|list|show|cancel|retry` (gRPC AdminService, admin key). Every answer is printed as JSON.

use crate::admin::{self, AdminTarget};
use crate::cli::Globals;
use crate::commands::print_json;
use crate::gateway::found;
use clap::{Args, Subcommand};
use payments_proto::payments_v1 as pb;
use serde_json::{Value, json};

/// `balance` subcommands.
#[derive(Debug, Subcommand)]
pub enum BalanceCommand {
    /// A seller's balances per currency: total, pending, reserved, available, in transit.
    Show {
        /// The seller.
        seller: String,
    },
}

/// `seller` subcommands.
#[derive(Debug, Subcommand)]
pub enum SellerCommand {
    /// Register where a seller is paid (the bank account goes to the provider only).
    Register(RegisterArgs),
    /// A registered seller, with the provider's current status.
    Show {
        /// The seller.
        seller: String,
    },
    /// The seller's bank account was fixed: resume its payouts.
    MarkBankFixed {
        /// The seller.
        seller: String,
    },
}

/// Arguments of `seller register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The seller.
    pub seller: String,
    /// `stripe_connect` or `toss_payouts`.
    #[arg(long)]
    pub provider: String,
    /// Legal or display name.
    #[arg(long)]
    pub name: String,
    /// Contact e-mail.
    #[arg(long)]
    pub email: String,
    /// Country of the bank account (KR, US, ...).
    #[arg(long)]
    pub country: String,
    /// Bank code (Korean bank code, or the US routing number).
    #[arg(long)]
    pub bank_code: String,
    /// Account number (sent to the provider; a masked copy is kept).
    #[arg(long)]
    pub account_number: String,
    /// Account holder.
    #[arg(long)]
    pub holder_name: String,
    /// Minimum payouts, `CUR:AMOUNT,...` in major units.
    #[arg(long, default_value = "")]
    pub minimums: String,
}

/// `payout` subcommands.
#[derive(Debug, Subcommand)]
pub enum PayoutCommand {
    /// Run the payout cycle now for the current period (or `--period`); a period already paid
    /// is never paid again.
    Run(RunArgs),
    /// Payouts, newest first.
    List {
        /// Only this seller's.
        #[arg(long)]
        seller: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One payout.
    Show {
        /// `payout-{seller}-{currency}-{period}`.
        payout_id: String,
    },
    /// Cancel a payout while the provider can still cancel it.
    Cancel {
        /// The payout.
        payout_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Pay a seller again after a failed or canceled payout (once its bank account is fixed):
    /// a new payout of the available balance for period `{period}-retry{n}`.
    Retry {
        /// The failed or canceled payout.
        payout_id: String,
    },
}

/// Arguments of `payout run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only this seller.
    #[arg(long)]
    pub seller: Option<String>,
    /// Only this currency.
    #[arg(long)]
    pub currency: Option<String>,
    /// The period to pay (default: the current one).
    #[arg(long)]
    pub period: Option<String>,
    /// With `--period`: wait up to this many seconds for every payout of the period to end
    /// (settled, failed or canceled) and print them.
    #[arg(long, requires = "period")]
    pub wait_secs: Option<u64>,
}

fn seller_json(s: &pb::PayoutSeller) -> Value {
    json!({
        "seller_account": s.seller_account, "provider": s.provider, "provider_seller_ref": s.provider_seller_ref,
        "masked_account": s.masked_account, "provider_status": s.provider_status, "payable": s.payable,
        "paused_reason": if s.paused_reason.is_empty() { Value::Null } else { json!(s.paused_reason) },
        "minimums": s.minimums,
    })
}

/// A payout as JSON.
pub fn payout_json(p: &pb::Payout) -> Value {
    let opt = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "payout_id": p.payout_id, "seller_account": p.seller_account, "period": p.period, "amount": p.amount,
        "currency": p.currency, "provider": p.provider, "status": p.status,
        "provider_payout_id": opt(&p.provider_payout_id), "failure_code": opt(&p.failure_code),
        "failure_message": opt(&p.failure_message), "created_at_ms": p.created_at_ms, "updated_at_ms": p.updated_at_ms,
    })
}

async fn call<T, F, Fut>(target: &AdminTarget, what: &str, f: F) -> anyhow::Result<T>
where
    F: FnOnce(admin::AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let client = admin::connect(target).await?;
    f(client).await.map(|r| r.into_inner()).map_err(|s| admin::refusal(&s, "the request for", what))
}

/// Waits until the cycle started its payouts for `period` and every one of them ended; prints
/// them. Fails when one failed or the time ran out.
async fn wait_period(target: &AdminTarget, period: &str, seller: Option<&str>, secs: u64) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let ended = |s: &str| matches!(s, "SETTLED" | "FAILED" | "CANCELED");
    loop {
        let request = pb::ListPayoutsRequest { seller_account: seller.unwrap_or_default().to_owned(), limit: 1000 };
        let all = call(target, "payouts", |mut c| async move { c.list_payouts(request).await }).await?;
        let mine: Vec<&pb::Payout> = all.payouts.iter().filter(|p| p.period == period).collect();
        let done = !mine.is_empty() && mine.iter().all(|p| ended(&p.status));
        if done || std::time::Instant::now() >= deadline {
            print_json(&Value::Array(mine.iter().map(|p| payout_json(p)).collect()))?;
            anyhow::ensure!(done, "payouts of period {period} not all ended after {secs} s");
            let failed: Vec<&str> =
                mine.iter().filter(|p| p.status != "SETTLED").map(|p| p.payout_id.as_str()).collect();
            anyhow::ensure!(failed.is_empty(), "payouts not settled: {failed:?}");
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Runs a `balance` subcommand.
pub async fn balance(globals: &Globals, cmd: BalanceCommand) -> anyhow::Result<()> {
    let BalanceCommand::Show { seller } = cmd;
    let gateway = globals.gateway_client()?;
    let answer = gateway.get_json(&["v1", "sellers", &seller, "balance"]).await?;
    print_json(&found(answer, &format!("seller {seller}"))?)
}

/// Runs a `seller` subcommand.
pub async fn seller(globals: &Globals, cmd: SellerCommand) -> anyhow::Result<()> {
    let target = globals.admin()?;
    let answer = match cmd {
        SellerCommand::Register(a) => {
            let request = pb::RegisterSellerRequest {
                seller_account: a.seller,
                provider: a.provider,
                name: a.name,
                email: a.email,
                country: a.country,
                bank_code: a.bank_code,
                account_number: a.account_number,
                holder_name: a.holder_name,
                minimums: a.minimums,
            };
            call(&target, "a seller registration", |mut c| async move { c.register_seller(request).await }).await?
        }
        SellerCommand::Show { seller } => {
            let request = pb::GetSellerRequest { seller_account: seller };
            call(&target, "a seller", |mut c| async move { c.get_seller(request).await }).await?
        }
        SellerCommand::MarkBankFixed { seller } => {
            let request = pb::GetSellerRequest { seller_account: seller };
            call(&target, "a seller", |mut c| async move { c.mark_bank_fixed(request).await }).await?
        }
    };
    print_json(&seller_json(&answer))
}

/// Runs a `payout` subcommand.
pub async fn payout(globals: &Globals, cmd: PayoutCommand) -> anyhow::Result<()> {
    let target = globals.admin()?;
    match cmd {
        PayoutCommand::Run(a) => {
            let period = a.period.clone().unwrap_or_default();
            let request = pb::RunPayoutsRequest {
                seller_account: a.seller.clone().unwrap_or_default(),
                currency: a.currency.unwrap_or_default(),
                period: period.clone(),
            };
            let r = call(&target, "a payout run", |mut c| async move { c.run_payouts(request).await }).await?;
            print_json(
                &json!({"workflow_id": r.workflow_id, "temporal_ui": globals.workflow_id_link(&r.workflow_id)}),
            )?;
            match a.wait_secs {
                Some(secs) => wait_period(&target, &period, a.seller.as_deref(), secs).await,
                None => Ok(()),
            }
        }
        PayoutCommand::List { seller, limit } => {
            let request = pb::ListPayoutsRequest { seller_account: seller.unwrap_or_default(), limit };
            let r = call(&target, "payouts", |mut c| async move { c.list_payouts(request).await }).await?;
            print_json(&Value::Array(r.payouts.iter().map(payout_json).collect()))
        }
        PayoutCommand::Show { payout_id } => {
            let request = pb::GetPayoutRequest { payout_id };
            print_json(&payout_json(
                &call(&target, "a payout", |mut c| async move { c.get_payout(request).await }).await?,
            ))
        }
        PayoutCommand::Cancel { payout_id, reason } => {
            let request = pb::CancelPayoutRequest { payout_id, reason };
            print_json(&payout_json(
                &call(&target, "a payout", |mut c| async move { c.cancel_payout(request).await }).await?,
            ))
        }
        PayoutCommand::Retry { payout_id } => {
            let request = pb::GetPayoutRequest { payout_id: payout_id.clone() };
            let failed = call(&target, "a payout", |mut c| async move { c.get_payout(request).await }).await?;
            anyhow::ensure!(
                failed.status == "FAILED" || failed.status == "CANCELED",
                "payout {payout_id} is {}: only a FAILED or CANCELED payout is retried",
                failed.status
            );
            let listed = pb::ListPayoutsRequest { seller_account: failed.seller_account.clone(), limit: 1000 };
            let all = call(&target, "payouts", |mut c| async move { c.list_payouts(listed).await }).await?;
            let base = failed.period.split("-retry").next().unwrap_or(&failed.period).to_owned();
            let tries = all.payouts.iter().filter(|p| p.period.starts_with(&format!("{base}-retry"))).count();
            let request = pb::RunPayoutsRequest {
                seller_account: failed.seller_account,
                currency: failed.currency,
                period: format!("{base}-retry{}", tries + 1),
            };
            let r = call(&target, "a payout run", |mut c| async move { c.run_payouts(request).await }).await?;
            print_json(&json!({"workflow_id": r.workflow_id, "temporal_ui": globals.workflow_id_link(&r.workflow_id)}))
        }
    }
}
