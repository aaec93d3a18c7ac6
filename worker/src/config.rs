//! Worker configuration: command-line flags, each overridable by an environment variable.

use clap::Parser;
use payments_activities::RiskConfig;
pub use payments_activities::psp::SecretKey;
use payments_activities::risk;
use std::time::Duration;

/// Where a deployment runs: `local` (development, CI, demos: test defaults allowed, `sk_test_`
/// API keys) or `production` (`sk_live_` keys; see `production_problems` for what it refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PaymentsEnv {
    /// Development, CI and demos.
    Local,
    /// Real money.
    Production,
}

impl PaymentsEnv {
    /// The mode of the API keys a gateway in this environment accepts.
    pub fn api_key_mode(self) -> payments_store::ApiKeyMode {
        match self {
            PaymentsEnv::Local => payments_store::ApiKeyMode::Test,
            PaymentsEnv::Production => payments_store::ApiKeyMode::Live,
        }
    }
}

/// Where Temporal and the payments database are: shared by the worker and the gateway, which
/// must agree on all of it.
#[derive(Clone, clap::Args)]
pub struct SharedConfig {
    /// `local` or `production`.
    #[arg(long = "payments-env", env = "PAYMENTS_ENV", value_enum, default_value = "local")]
    pub env: PaymentsEnv,
    /// Temporal frontend address.
    #[arg(long, env = "TEMPORAL_ADDRESS", default_value = "http://127.0.0.1:7233")]
    pub temporal_address: String,
    /// Temporal namespace.
    #[arg(long, env = "TEMPORAL_NAMESPACE", default_value = "default")]
    pub temporal_namespace: String,
    /// Task queue of the checkout workflows (the gateway starts them there, the worker polls it).
    #[arg(long, env = "PAYMENTS_TASK_QUEUE", default_value = "checkout")]
    pub task_queue: String,
    /// Payments database: `sqlite://payments.db?mode=rwc` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://payments.db?mode=rwc")]
    pub database_url: String,
    /// Keys sealing payment tokens at rest (AES-256-GCM): comma-separated base64 of 32 random
    /// bytes each (`openssl rand -base64 32`), the sealing key first, retired keys after it
    /// (they still open older rows). The default is a published development key: set this in
    /// production. Never logged.
    #[arg(long, env = "PAYMENT_TOKEN_KEYS", default_value = payments_store::DEV_TOKEN_KEY, hide_env_values = true)]
    pub payment_token_keys: SecretKey,
    /// TLS and API key for a secured Temporal cluster or Temporal Cloud.
    #[command(flatten)]
    pub temporal_security: crate::temporal::TemporalSecurity,
    /// Pay-out settings (delay, schedule, waits).
    #[command(flatten)]
    pub payouts: crate::payouts::PayoutConfig,
}

impl std::fmt::Debug for SharedConfig {
    /// The database password is shown as `***`, the keys as `<redacted>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConfig")
            .field("env", &self.env)
            .field("temporal_address", &self.temporal_address)
            .field("temporal_namespace", &self.temporal_namespace)
            .field("task_queue", &self.task_queue)
            .field("database_url", &payments_store::redact_url(&self.database_url))
            .field("payment_token_keys", &self.payment_token_keys)
            .field("temporal_security", &self.temporal_security)
            .finish()
    }
}

impl SharedConfig {
    /// A Temporal client with the configured address, namespace and security.
    pub async fn temporal(&self) -> anyhow::Result<temporalio_client::Client> {
        crate::temporal::connect_secured(&self.temporal_address, &self.temporal_namespace, &self.temporal_security)
            .await
    }

    /// Connects to the payments database (migrating it) with the configured token keys.
    pub async fn store(&self) -> anyhow::Result<payments_store::Store> {
        use anyhow::Context;
        let vault =
            payments_store::TokenVault::from_config(self.payment_token_keys.expose()).context("PAYMENT_TOKEN_KEYS")?;
        if vault.is_dev() {
            tracing::warn!("PAYMENT_TOKEN_KEYS is the published development key: set your own outside development");
        }
        let store = payments_store::Store::connect(&self.database_url)
            .await
            .with_context(|| format!("database {}", payments_store::redact_url(&self.database_url)))?;
        Ok(store.with_token_vault(vault))
    }
}

/// Worker configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "payments-worker", about = "Runs the checkout workflow and its activities")]
pub struct WorkerConfig {
    /// Temporal and database (shared with the gateway).
    #[command(flatten)]
    pub shared: SharedConfig,
    /// PSP adapter: `stripe` or `toss`.
    #[arg(long, env = "PSP_PROVIDER", default_value = "stripe")]
    pub psp_provider: String,
    /// PSP API base URL (the simulator locally, `https://api.stripe.com` in production).
    #[arg(long, env = "PSP_BASE_URL", default_value = "http://127.0.0.1:8090")]
    pub psp_base_url: String,
    /// PSP secret key. Taken from the environment; never logged.
    #[arg(long, env = "PSP_SECRET_KEY", default_value = "sk_test_local", hide_env_values = true)]
    pub psp_secret_key: SecretKey,
    /// Per-request timeout of PSP calls, in ms. A charge that times out is not failed: its
    /// outcome is asked from the PSP.
    #[arg(long, env = "PSP_REQUEST_TIMEOUT_MS", default_value_t = payments_activities::psp::http::REQUEST_TIMEOUT_MS_DEFAULT)]
    pub psp_request_timeout_ms: u64,
    /// How long the PSP keeps an idempotency key, in seconds (default: the provider's
    /// documented lifetime, Stripe 24 h, Toss 15 days). A payment request is never re-sent
    /// once its key may be gone: the PSP is asked first.
    #[arg(long, env = "PSP_IDEMPOTENCY_KEY_TTL_SECS")]
    pub psp_idempotency_key_ttl_secs: Option<u64>,
    /// How far the PSP's search may lag behind a write, in seconds (Stripe's Search API): a
    /// search that finds nothing counts as "no such payment" only this long after our last
    /// request.
    #[arg(long, env = "PSP_SEARCH_LAG_SECS", default_value_t = payments_activities::psp::rules::STRIPE_SEARCH_LAG_SECS)]
    pub psp_search_lag_secs: u64,
    /// Per-order amount limits, `CUR:AMOUNT,...` in major units. Fails closed: an order in a
    /// currency missing here is declined (`currency_not_configured`).
    #[arg(long, env = risk::ORDER_LIMITS_ENV, default_value = risk::DEFAULT_ORDER_LIMITS)]
    pub risk_order_limits: String,
    /// Per-checkout limits on the sum of a checkout's orders in each currency, `CUR:AMOUNT,...`
    /// in major units. Fails closed like the order limits.
    #[arg(long, env = risk::CHECKOUT_LIMITS_ENV, default_value = risk::DEFAULT_CHECKOUT_LIMITS)]
    pub risk_checkout_limits: String,
    /// Comma-separated buyer ids to decline.
    #[arg(long, env = "RISK_BLOCKED_BUYERS", default_value = "")]
    pub risk_blocked_buyers: String,
    /// Comma-separated seller accounts to decline.
    #[arg(long, env = "RISK_BLOCKED_SELLERS", default_value = "")]
    pub risk_blocked_sellers: String,
    /// Amounts above which an operator reviews the checkout, per order and per currency total
    /// of the checkout, `CUR:AMOUNT,...` (major units; empty: no amount review).
    #[arg(long, env = "RISK_REVIEW_LIMITS", default_value = "")]
    pub risk_review_limits: String,
    /// Comma-separated buyer ids whose checkouts are always reviewed.
    #[arg(long, env = "RISK_REVIEW_BUYERS", default_value = "")]
    pub risk_review_buyers: String,
    /// Log filter of the Temporal SDK core (workflow task failures, poll errors).
    #[arg(long, env = "TEMPORAL_CORE_LOG", default_value = "temporalio_sdk_core=warn,temporalio_sdk=warn")]
    pub core_log_filter: String,
    /// Payout providers (Stripe Connect, Toss payouts v2).
    #[command(flatten)]
    pub payout_providers: crate::payouts::PayoutProviderConfig,
    /// Reconciliation (PSPs, contracts, tolerances, schedule).
    #[command(flatten)]
    pub recon: crate::recon::ReconConfig,
    /// Seconds in-flight tasks get to finish on shutdown.
    #[arg(long, env = "WORKER_GRACEFUL_SHUTDOWN_SECS", default_value_t = 10)]
    pub graceful_shutdown_secs: u64,
}

impl WorkerConfig {
    /// Defaults, as if no flag or variable were given (for tests and embedding).
    pub fn defaults() -> Self {
        WorkerConfig::parse_from(["payments-worker"])
    }

    /// The risk rules' configuration strings.
    pub fn risk_config(&self) -> RiskConfig<'_> {
        RiskConfig {
            order_limits: &self.risk_order_limits,
            checkout_limits: &self.risk_checkout_limits,
            blocked_buyers: &self.risk_blocked_buyers,
            blocked_sellers: &self.risk_blocked_sellers,
            review_limits: &self.risk_review_limits,
            review_buyers: &self.risk_review_buyers,
        }
    }

    /// The PSP's idempotency-key lifetime and search lag.
    pub fn psp_key_rules(&self) -> payments_activities::psp::KeyRules {
        use payments_activities::psp::rules::{STRIPE_KEY_TTL_SECS, TOSS_KEY_TTL_SECS};
        let documented = if self.psp_provider == "toss" { TOSS_KEY_TTL_SECS } else { STRIPE_KEY_TTL_SECS };
        payments_activities::psp::KeyRules {
            key_ttl: Duration::from_secs(self.psp_idempotency_key_ttl_secs.unwrap_or(documented)),
            search_lag: Duration::from_secs(self.psp_search_lag_secs),
        }
    }

    /// The graceful shutdown period.
    pub fn graceful_shutdown(&self) -> Duration {
        Duration::from_secs(self.graceful_shutdown_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_psp_key_never_shows_in_debug_output() {
        let config = WorkerConfig::parse_from([
            "payments-worker",
            "--psp-secret-key",
            "sk_live_very_secret",
            "--payment-token-keys",
            "token_keys_very_secret",
            "--database-url",
            "postgres://app:very_secret_password@db/payments",
            "--temporal-api-key",
            "very_secret_temporal",
        ]);
        assert_eq!(config.psp_secret_key.expose(), "sk_live_very_secret");
        assert!(!format!("{config:?}").contains("very_secret"));
    }

    /// Key lifetimes default to each provider's documented one.
    #[test]
    fn key_rules_follow_the_provider() {
        let stripe = WorkerConfig::parse_from(["payments-worker", "--psp-provider", "stripe"]);
        let toss = WorkerConfig::parse_from(["payments-worker", "--psp-provider", "toss"]);
        if std::env::var_os("PSP_IDEMPOTENCY_KEY_TTL_SECS").is_none() {
            assert_eq!(stripe.psp_key_rules().key_ttl.as_secs(), 24 * 3600);
            assert_eq!(toss.psp_key_rules().key_ttl.as_secs(), 15 * 24 * 3600);
        }
        let short = WorkerConfig::parse_from(["payments-worker", "--psp-idempotency-key-ttl-secs", "5"]);
        assert_eq!(short.psp_key_rules().key_ttl.as_secs(), 5);
    }

    /// The default risk rules parse, and the checkout limits have a flag of their own.
    #[test]
    fn risk_limits_default_and_parse() {
        let config = WorkerConfig::parse_from(["payments-worker"]);
        assert_eq!(config.risk_order_limits, risk::DEFAULT_ORDER_LIMITS);
        assert_eq!(config.risk_checkout_limits, risk::DEFAULT_CHECKOUT_LIMITS);
        assert!(payments_activities::RiskRules::parse(&config.risk_config()).is_ok());
        let config = WorkerConfig::parse_from(["payments-worker", "--risk-checkout-limits", "USD:1000"]);
        assert_eq!(config.risk_checkout_limits, "USD:1000");
        let config = WorkerConfig::parse_from(["payments-worker", "--risk-checkout-limits", "USD=1000"]);
        assert!(payments_activities::RiskRules::parse(&config.risk_config()).is_err());
    }
}
