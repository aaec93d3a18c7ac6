//! `paymentsctl fees set|list`: the platform's fee rates through the gateway's AdminService
//! (admin key). A rate is a percentage in basis points plus a fixed amount, per currency, with
//! optional per-seller overrides, each effective from a moment on; rates are a history and
//! never change retroactively. (Issue 12: the rates are stored; booking them at capture comes
//! with pay-out.)

use crate::admin::{self, AdminTarget};
use crate::cli::Globals;
use crate::commands::print_json;
use clap::{Args, Subcommand};
use payments_proto::payments_v1 as pb;
use serde_json::{Value, json};

/// `fees` subcommands.
#[derive(Debug, Subcommand)]
pub enum FeesCommand {
    /// Set a currency's rate, or a seller's override, from now (or `--from-ms`) on.
    Set(SetArgs),
    /// Every rate, by currency, seller and start.
    List,
}

/// Arguments of `fees set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The currency (e.g. USD).
    #[arg(long)]
    pub currency: String,
    /// Percentage part in basis points (290 = 2.9 %).
    #[arg(long)]
    pub bps: u32,
    /// Fixed part, a decimal string in the currency (e.g. 0.30).
    #[arg(long, default_value = "0")]
    pub fixed: String,
    /// The seller the rate overrides the currency's default for.
    #[arg(long)]
    pub seller: Option<String>,
    /// When it starts, Unix ms (default: now; never in the past).
    #[arg(long)]
    pub from_ms: Option<i64>,
}

/// Sets a rate.
pub async fn set(target: &AdminTarget, request: pb::SetFeeRateRequest) -> anyhow::Result<pb::FeeRate> {
    let mut client = admin::connect(target).await?;
    client
        .set_fee_rate(request)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| admin::refusal(&s, "the setting of", "a fee rate"))
}

/// Every rate.
pub async fn list(target: &AdminTarget) -> anyhow::Result<Vec<pb::FeeRate>> {
    let mut client = admin::connect(target).await?;
    match client.list_fee_rates(pb::ListFeeRatesRequest {}).await {
        Ok(r) => Ok(r.into_inner().fee_rates),
        Err(s) => Err(admin::refusal(&s, "the listing of", "fee rates")),
    }
}

/// A rate as JSON.
pub fn rate_json(r: &pb::FeeRate) -> Value {
    json!({
        "currency": r.currency,
        "seller_account": if r.seller_account.is_empty() { Value::Null } else { json!(r.seller_account) },
        "bps": r.bps,
        "fixed": r.fixed,
        "effective_from_ms": r.effective_from_ms,
        "created_at_ms": r.created_at_ms,
        "created_by": r.created_by,
    })
}

/// Runs a `fees` subcommand.
pub async fn run(globals: &Globals, cmd: FeesCommand) -> anyhow::Result<()> {
    let target = globals.admin()?;
    match cmd {
        FeesCommand::Set(a) => {
            let request = pb::SetFeeRateRequest {
                currency: a.currency,
                seller_account: a.seller.unwrap_or_default(),
                bps: a.bps,
                fixed: a.fixed,
                effective_from_ms: a.from_ms.unwrap_or(0),
            };
            print_json(&rate_json(&set(&target, request).await?))
        }
        FeesCommand::List => print_json(&Value::Array(list(&target).await?.iter().map(rate_json).collect())),
    }
}
