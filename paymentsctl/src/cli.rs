//! The command line: global flags (each with an environment override) and the command tree.

use crate::admin::AdminTarget;
use crate::commands::{
    bench, checkout, db, demo, dlq, fees, keys, payment, payouts, recon, refund, review, verify, wallet,
};
use crate::gateway::Gateway;
use clap::{Args, Parser, Subcommand};
use payments_worker::config::SecretKey;

/// `paymentsctl` and its flags.
#[derive(Debug, Parser)]
#[command(name = "paymentsctl", version, about = "Operate and exercise the payment platform")]
pub struct Cli {
    /// Where the services are.
    #[command(flatten)]
    pub globals: Globals,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Globals {
    /// Base URL of the gateway's REST API.
    #[arg(long, global = true, env = "PAYMENTS_GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Address of the gateway's gRPC API (`payments.v1.AdminService`), for `review`, `dlq`,
    /// `checkout cancel`, `keys`, `fees`, `seller`, `payout` and `recon`.
    #[arg(long, global = true, env = "PAYMENTS_GATEWAY_GRPC", default_value = "http://127.0.0.1:50051")]
    pub gateway_grpc: String,
    /// Database of the platform (`sqlite://...` or `postgres://...`), for `verify`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://payments.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,
    /// API key for the REST API (`payments` scope: payments, checkouts, refunds, demo, bench).
    /// Falls back to the admin key. `scripts/run.sh` prints the local keys.
    #[arg(long, global = true, env = "PAYMENTS_API_KEY", hide_env_values = true)]
    pub api_key: Option<SecretKey>,
    /// API key for the AdminService (`admin` scope: review, dlq, checkout cancel, keys). Falls
    /// back to the API key.
    #[arg(long, global = true, env = "PAYMENTS_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<SecretKey>,
    /// Temporal frontend address.
    #[arg(long, global = true, env = "TEMPORAL_ADDRESS", default_value = "http://127.0.0.1:7233")]
    pub temporal_address: String,
    /// Temporal namespace the workflows run in.
    #[arg(long, global = true, env = "TEMPORAL_NAMESPACE", default_value = "default")]
    pub temporal_namespace: String,
    /// TLS and API key for a secured Temporal (`TEMPORAL_TLS*`, `TEMPORAL_API_KEY`).
    #[command(flatten)]
    pub temporal_security: payments_worker::temporal::TemporalSecurity,
    /// Base URL of the Temporal web UI, for links to workflows.
    #[arg(long, global = true, env = "TEMPORAL_UI_URL", default_value = "http://127.0.0.1:8233")]
    pub temporal_ui: String,
}

impl Globals {
    /// The REST client of the gateway, with the API key.
    pub fn gateway_client(&self) -> anyhow::Result<Gateway> {
        let key = self.api_key.as_ref().or(self.admin_key.as_ref()).ok_or_else(|| {
            anyhow::anyhow!("no API key: set PAYMENTS_API_KEY (or --api-key); scripts/run.sh prints the local keys")
        })?;
        Gateway::new(&self.gateway, Some(key.expose()))
    }

    /// The gateway's AdminService, with the admin key.
    pub fn admin(&self) -> anyhow::Result<AdminTarget> {
        let key = self.admin_key.as_ref().or(self.api_key.as_ref()).ok_or_else(|| {
            anyhow::anyhow!(
                "no admin key: set PAYMENTS_ADMIN_KEY (or --admin-key); scripts/run.sh prints the local keys"
            )
        })?;
        Ok(AdminTarget::new(&self.gateway_grpc, key.expose()))
    }

    /// The Temporal UI page of the workflow of `checkout_id`.
    pub fn workflow_link(&self, checkout_id: &str) -> String {
        self.workflow_id_link(&format!("checkout-{checkout_id}"))
    }

    /// The Temporal UI page of the workflow `workflow_id` (ids are visible ASCII without `/`).
    pub fn workflow_id_link(&self, workflow_id: &str) -> String {
        format!(
            "{}/namespaces/{}/workflows/{}",
            self.temporal_ui.trim_end_matches('/'),
            self.temporal_namespace,
            workflow_id
        )
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pay a two-seller checkout through the gateway and wait for the outcome.
    Demo(demo::DemoArgs),
    /// Inspect checkouts (REST) or cancel one (gRPC AdminService).
    #[command(subcommand)]
    Checkout(checkout::CheckoutCommand),
    /// Inspect payment orders.
    #[command(subcommand)]
    Payment(payment::PaymentCommand),
    /// Check that the ledger balances and every wallet equals its ledger account.
    Verify(verify::VerifyArgs),
    /// Measure checkout throughput and latency (gateway + Temporal + worker).
    Bench(bench::BenchArgs),
    /// A payout cycle over many sellers: payouts/s and balance queries/s (needs the whole
    /// system; `scripts/bench-payouts.sh`).
    BenchPayouts(crate::commands::bench_payouts::BenchPayoutsArgs),
    /// Reconciliation of one large settlement day against the database (import, matching,
    /// breaks, settlement): lines/s and peak memory per phase (`--database-url` only).
    BenchRecon(crate::commands::bench_recon::BenchReconArgs),
    /// Approve or reject a checkout held for review (gRPC AdminService).
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// Dead letters: list, show, retry or resolve saga steps parked for an operator (gRPC
    /// AdminService).
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Refund captured payment orders and list their refunds (REST).
    #[command(subcommand)]
    Refund(refund::RefundCommand),
    /// Block or unblock a seller's wallet (captures for a blocked seller are given back).
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// API keys: bootstrap the first admin key (database), then create, list, revoke and roll
    /// keys (gRPC AdminService, admin key).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The database: apply migrations as the schema owner and grant the services' role.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The platform's fee rates (gRPC AdminService, admin key): set, list.
    #[command(subcommand)]
    Fees(fees::FeesCommand),
    /// A seller's balances (REST, payments key): show.
    #[command(subcommand)]
    Balance(payouts::BalanceCommand),
    /// Sellers' payout destinations (gRPC AdminService, admin key): register, show,
    /// mark-bank-fixed.
    #[command(subcommand)]
    Seller(payouts::SellerCommand),
    /// Payouts (gRPC AdminService, admin key): run, list, show, cancel, retry.
    #[command(subcommand)]
    Payout(payouts::PayoutCommand),
    /// Reconciliation (gRPC AdminService, admin key): import a settlement file, run a PSP's day
    /// and print its report, list and show breaks, resolve, accept or approve one.
    #[command(subcommand)]
    Recon(recon::ReconCommand),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_link_is_built() {
        let cli = Cli::try_parse_from([
            "paymentsctl",
            "checkout",
            "show",
            "c-1",
            "--temporal-ui",
            "http://ui:8233/",
            "--temporal-namespace",
            "payments",
        ])
        .expect("parses");
        assert_eq!(cli.globals.workflow_link("c-1"), "http://ui:8233/namespaces/payments/workflows/checkout-c-1");
        assert!(matches!(cli.command, Command::Checkout(_)));
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
