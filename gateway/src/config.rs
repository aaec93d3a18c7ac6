//! Gateway configuration: command-line flags, each overridable by an environment variable.

use clap::Parser;
use payments_worker::config::SharedConfig;
use payments_workflows::messages::WaitLimits;

/// Gateway configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "payments-gateway", about = "REST and gRPC API: stores checkouts and starts their workflows")]
pub struct GatewayConfig {
    /// REST listen address.
    #[arg(long, env = "GATEWAY_REST_LISTEN", default_value = "127.0.0.1:8080")]
    pub rest_listen: String,
    /// gRPC listen address.
    #[arg(long, env = "GATEWAY_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    pub grpc_listen: String,
    /// Public base URL of this gateway, for the hosted page's success and fail URLs.
    #[arg(long, env = "GATEWAY_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    /// The PSP's browser SDK for the hosted page (Toss: `https://js.tosspayments.com/v1/payment`).
    #[arg(long, env = "TOSS_JS_URL", default_value = "http://127.0.0.1:8090/js/v1/tosspayments.js")]
    pub toss_js_url: String,
    /// Toss client key for the hosted page (public by design; `test_ck_...` / `live_ck_...`).
    #[arg(long, env = "TOSS_CLIENT_KEY", default_value = "test_ck_local")]
    pub toss_client_key: String,
    /// Stripe webhook signing secret (`whsec_...`). Never logged.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", default_value = "whsec_test_secret", hide_env_values = true)]
    pub stripe_webhook_secret: String,
    /// Toss payout webhook security key. Never logged.
    #[arg(long, env = "TOSS_WEBHOOK_SECRET", default_value = "toss_webhook_test_secret", hide_env_values = true)]
    pub toss_webhook_secret: String,
    /// Seconds a checkout waits for a pending PSP payment (3-D Secure, PSP review).
    #[arg(long, env = "WAIT_PSP_PENDING_SECS", default_value_t = WaitLimits::DEFAULT.psp_pending_secs)]
    pub wait_psp_pending_secs: u64,
    /// Seconds a checkout held for review waits for an operator.
    #[arg(long, env = "WAIT_REVIEW_SECS", default_value_t = WaitLimits::DEFAULT.review_secs)]
    pub wait_review_secs: u64,
    /// Seconds a hosted checkout waits for the buyer to pay.
    #[arg(long, env = "WAIT_HOSTED_PAYMENT_SECS", default_value_t = WaitLimits::DEFAULT.hosted_payment_secs)]
    pub wait_hosted_payment_secs: u64,
    /// Temporal and database, as the worker's.
    #[command(flatten)]
    pub shared: SharedConfig,
}

impl GatewayConfig {
    /// The wait limits given to every new checkout.
    pub fn waits(&self) -> WaitLimits {
        WaitLimits {
            psp_pending_secs: self.wait_psp_pending_secs,
            review_secs: self.wait_review_secs,
            hosted_payment_secs: self.wait_hosted_payment_secs,
        }
    }

    /// Defaults, as if no flag or variable were given.
    pub fn defaults() -> Self {
        GatewayConfig::parse_from(["payments-gateway"])
    }
}
