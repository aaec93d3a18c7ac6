//! `psp-simulator` binary: parses configuration, binds, and serves until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use psp_simulator::{
    IDEMPOTENCY_KEYS_MAX_DEFAULT, PAYMENT_SESSION_TTL_MS_DEFAULT, RATE_LIMIT_RETRY_AFTER_SECS_DEFAULT,
    SLOW_RESPONSE_MS_DEFAULT, STRIPE_IDEMPOTENCY_KEY_TTL_MS_DEFAULT, STRIPE_SEARCH_LAG_MS_DEFAULT,
    STRIPE_WEBHOOK_SECRET_DEFAULT, SimConfig, TOSS_IDEMPOTENCY_KEY_TTL_MS_DEFAULT, TOSS_WEBHOOK_SECRET_DEFAULT,
    WEBHOOK_ATTEMPTS_MAX_DEFAULT, WEBHOOK_INITIAL_BACKOFF_MS_DEFAULT,
};
use tracing_subscriber::EnvFilter;

/// Local PSP simulator speaking Stripe's and Toss Payments' wire formats.
#[derive(Debug, Parser)]
#[command(name = "psp-simulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PSP_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,

    /// Most idempotency keys remembered at once (oldest forgotten first).
    #[arg(long, env = "PSP_SIM_IDEMPOTENCY_KEYS_MAX", default_value_t = IDEMPOTENCY_KEYS_MAX_DEFAULT)]
    idempotency_keys_max: usize,

    /// Milliseconds a Stripe idempotency key is remembered after its first
    /// use (Stripe: 24 hours); afterwards a resend executes anew.
    #[arg(long, env = "PSP_SIM_STRIPE_IDEMPOTENCY_KEY_TTL_MS", default_value_t = STRIPE_IDEMPOTENCY_KEY_TTL_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    stripe_idempotency_key_ttl_ms: u64,

    /// Milliseconds a Toss idempotency key is remembered after its first
    /// use (Toss: 15 days); afterwards a resend executes anew.
    #[arg(long, env = "PSP_SIM_TOSS_IDEMPOTENCY_KEY_TTL_MS", default_value_t = TOSS_IDEMPOTENCY_KEY_TTL_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    toss_idempotency_key_ttl_ms: u64,

    /// Milliseconds before a new PaymentIntent appears in Stripe search
    /// results (Stripe: normally under a minute); lookups by id are exact.
    #[arg(long, env = "PSP_SIM_STRIPE_SEARCH_LAG_MS", default_value_t = STRIPE_SEARCH_LAG_MS_DEFAULT)]
    stripe_search_lag_ms: u64,

    /// Base URL clients and browsers use to reach the simulator (links in
    /// 3-D Secure redirects); default: derived from --listen.
    #[arg(long, env = "PSP_SIM_PUBLIC_BASE_URL")]
    public_base_url: Option<String>,

    /// `Retry-After` seconds of simulated 429 responses.
    #[arg(long, env = "PSP_SIM_RATE_LIMIT_RETRY_AFTER_SECS", default_value_t = RATE_LIMIT_RETRY_AFTER_SECS_DEFAULT)]
    rate_limit_retry_after_secs: u64,

    /// How long slow responses are held back, in milliseconds.
    #[arg(long, env = "PSP_SIM_SLOW_RESPONSE_MS", default_value_t = SLOW_RESPONSE_MS_DEFAULT)]
    slow_response_ms: u64,

    /// Approve payments in manual review automatically after this many ms.
    #[arg(long, env = "PSP_SIM_REVIEW_AUTO_RESOLVE_MS")]
    review_auto_resolve_ms: Option<u64>,

    /// Probability [0, 1] that a first attempt answers 500 without executing.
    #[arg(long, env = "PSP_SIM_FAULT_SERVER_ERROR_RATE", default_value_t = 0.0, value_parser = probability)]
    fault_server_error_rate: f64,

    /// Probability [0, 1] that a first attempt answers 429.
    #[arg(long, env = "PSP_SIM_FAULT_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = probability)]
    fault_rate_limit_rate: f64,

    /// Probability [0, 1] that a first attempt executes but answers late.
    #[arg(long, env = "PSP_SIM_FAULT_SLOW_RATE", default_value_t = 0.0, value_parser = probability)]
    fault_slow_rate: f64,

    /// Probability [0, 1] that a first attempt executes and loses its response.
    #[arg(long, env = "PSP_SIM_FAULT_LOST_RESPONSE_RATE", default_value_t = 0.0, value_parser = probability)]
    fault_lost_response_rate: f64,

    /// Seed of the fault-rate random generator.
    #[arg(long, env = "PSP_SIM_FAULT_SEED", default_value_t = 0)]
    fault_seed: u64,

    /// Where Stripe-format events are POSTed (none: no Stripe webhooks).
    #[arg(long, env = "PSP_SIM_STRIPE_WEBHOOK_URL")]
    stripe_webhook_url: Option<String>,

    /// Secret signing `Stripe-Signature`.
    #[arg(long, env = "PSP_SIM_STRIPE_WEBHOOK_SECRET", default_value = STRIPE_WEBHOOK_SECRET_DEFAULT)]
    stripe_webhook_secret: String,

    /// Where Toss-format events are POSTed (none: no Toss webhooks).
    #[arg(long, env = "PSP_SIM_TOSS_WEBHOOK_URL")]
    toss_webhook_url: Option<String>,

    /// Secret signing Toss payout events.
    #[arg(long, env = "PSP_SIM_TOSS_WEBHOOK_SECRET", default_value = TOSS_WEBHOOK_SECRET_DEFAULT)]
    toss_webhook_secret: String,

    /// Delivery attempts per webhook event.
    #[arg(long, env = "PSP_SIM_WEBHOOK_ATTEMPTS_MAX", default_value_t = WEBHOOK_ATTEMPTS_MAX_DEFAULT)]
    webhook_attempts_max: u32,

    /// Delay before the second delivery attempt, doubling after each.
    #[arg(long, env = "PSP_SIM_WEBHOOK_INITIAL_BACKOFF_MS", default_value_t = WEBHOOK_INITIAL_BACKOFF_MS_DEFAULT)]
    webhook_initial_backoff_ms: u64,

    /// Milliseconds an authenticated Toss payment waits for its confirm
    /// before it becomes EXPIRED (Toss: 10 minutes).
    #[arg(long, env = "PSP_SIM_PAYMENT_SESSION_TTL_MS", default_value_t = PAYMENT_SESSION_TTL_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    payment_session_ttl_ms: u64,
}

/// Parses a probability in [0, 1].
fn probability(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|error| format!("{error}"))?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(format!("{value} is not in [0, 1]")) }
}

impl Args {
    /// The simulator configuration these arguments describe.
    fn config(self) -> SimConfig {
        let mut config = SimConfig::new();
        config.idempotency_keys_max = self.idempotency_keys_max;
        config.stripe_idempotency_key_ttl_ms = self.stripe_idempotency_key_ttl_ms;
        config.toss_idempotency_key_ttl_ms = self.toss_idempotency_key_ttl_ms;
        config.stripe_search_lag_ms = self.stripe_search_lag_ms;
        config.public_base_url = self.public_base_url;
        config.rate_limit_retry_after_secs = self.rate_limit_retry_after_secs;
        config.slow_response_ms = self.slow_response_ms;
        config.review_auto_resolve_ms = self.review_auto_resolve_ms;
        config.server_error_rate = self.fault_server_error_rate;
        config.rate_limit_rate = self.fault_rate_limit_rate;
        config.slow_rate = self.fault_slow_rate;
        config.lost_response_rate = self.fault_lost_response_rate;
        config.fault_seed = self.fault_seed;
        config.stripe_webhook_url = self.stripe_webhook_url;
        config.stripe_webhook_secret = self.stripe_webhook_secret;
        config.toss_webhook_url = self.toss_webhook_url;
        config.toss_webhook_secret = self.toss_webhook_secret;
        config.webhook_attempts_max = self.webhook_attempts_max;
        config.webhook_initial_backoff_ms = self.webhook_initial_backoff_ms;
        config.payment_session_ttl_ms = self.payment_session_ttl_ms;
        config
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let args = Args::parse();
    let listen = args.listen;
    let config = args.config();
    if let Err(error) = config.validate() {
        eprintln!("psp-simulator: invalid configuration: {error}");
        std::process::exit(2);
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    psp_simulator::run(listener, config, shutdown_signal()).await
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
