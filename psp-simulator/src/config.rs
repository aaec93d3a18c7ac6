//! [`SimConfig`]: every knob of the simulator, its default, and validation.
//!
//! Defaults reproduce a well-behaved PSP: no random faults, no webhooks.
//! Fault *tokens* (`pm_card_sim_*`, `billing_sim_*`) work with any
//! configuration; the fault *rates* only add chaos on top of normal tokens.

use std::fmt;

/// Default for [`SimConfig::idempotency_keys_max`].
pub const IDEMPOTENCY_KEYS_MAX_DEFAULT: usize = 1_000_000;
/// Default for [`SimConfig::rate_limit_retry_after_secs`].
pub const RATE_LIMIT_RETRY_AFTER_SECS_DEFAULT: u64 = 2;
/// Default for [`SimConfig::slow_response_ms`]: long enough to trip a
/// typical 10–20 s client timeout.
pub const SLOW_RESPONSE_MS_DEFAULT: u64 = 25_000;
/// Default for [`SimConfig::stripe_webhook_secret`].
pub const STRIPE_WEBHOOK_SECRET_DEFAULT: &str = "whsec_test_secret";
/// Default for [`SimConfig::toss_webhook_secret`].
pub const TOSS_WEBHOOK_SECRET_DEFAULT: &str = "toss_webhook_test_secret";
/// Default for [`SimConfig::webhook_attempts_max`].
pub const WEBHOOK_ATTEMPTS_MAX_DEFAULT: u32 = 6;
/// Default for [`SimConfig::webhook_initial_backoff_ms`].
pub const WEBHOOK_INITIAL_BACKOFF_MS_DEFAULT: u64 = 200;
/// Default for [`SimConfig::payment_session_ttl_ms`]: Toss's 10 minutes
/// between the buyer's authentication and the merchant's confirm.
pub const PAYMENT_SESSION_TTL_MS_DEFAULT: u64 = 600_000;
/// Default for [`SimConfig::stripe_idempotency_key_ttl_ms`]: Stripe removes
/// keys once they are at least 24 hours old.
pub const STRIPE_IDEMPOTENCY_KEY_TTL_MS_DEFAULT: u64 = 24 * 60 * 60 * 1_000;
/// Default for [`SimConfig::toss_idempotency_key_ttl_ms`]: Toss keeps keys
/// for 15 days.
pub const TOSS_IDEMPOTENCY_KEY_TTL_MS_DEFAULT: u64 = 15 * 24 * 60 * 60 * 1_000;
/// Default for [`SimConfig::stripe_search_lag_ms`]: none, so tests that do
/// not study the lag can search right after writing.
pub const STRIPE_SEARCH_LAG_MS_DEFAULT: u64 = 0;
/// Default for [`SimConfig::toss_security_key`]: a fixed test key (64 hex characters, 32
/// bytes), published here so tests and local configuration can encrypt Toss payout requests.
pub const TOSS_SECURITY_KEY_TEST: &str = "7a3f2c9e1b8d4f6a0c5e7b9d2f4a6c8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a";
/// Default for [`SimConfig::payout_step_ms`]: none, so a payout is paid right after it is
/// created.
pub const PAYOUT_STEP_MS_DEFAULT: u64 = 0;
/// Default for [`SimConfig::payout_kyc_delay_ms`]: none, so a seller is payable at once.
pub const PAYOUT_KYC_DELAY_MS_DEFAULT: u64 = 0;
/// Base URL used in links when neither configured nor derivable from `run`.
pub const PUBLIC_BASE_URL_FALLBACK: &str = "http://127.0.0.1:8090";

/// Runtime configuration of the simulator.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimConfig {
    /// Maximum number of idempotency keys remembered at once, on top of
    /// their TTLs. When the limit is reached the oldest key is forgotten
    /// before its TTL (a later request reusing it executes again). Keys
    /// whose request is still executing are never evicted.
    pub idempotency_keys_max: usize,
    /// How long a Stripe idempotency key is remembered after its first use,
    /// in milliseconds (at least 1). Afterwards it counts as absent: a
    /// request reusing it executes as with a brand-new key.
    pub stripe_idempotency_key_ttl_ms: u64,
    /// The same for Toss idempotency keys (at least 1).
    pub toss_idempotency_key_ttl_ms: u64,
    /// How long after its creation a PaymentIntent starts to appear in
    /// `GET /v1/payment_intents/search`, in milliseconds. Stripe's search
    /// is eventually consistent (normally under a minute, longer during
    /// outages); retrieving by id always sees the intent at once.
    pub stripe_search_lag_ms: u64,
    /// Base URL of this simulator as browsers and clients reach it, used in
    /// links such as 3-D Secure challenge pages. `None`: derived from the
    /// bound address in [`crate::run`], else [`PUBLIC_BASE_URL_FALLBACK`].
    pub public_base_url: Option<String>,
    /// `Retry-After` (seconds) sent with simulated 429 responses.
    pub rate_limit_retry_after_secs: u64,
    /// How long a "slow" response is held back after the work is done.
    pub slow_response_ms: u64,
    /// If set, payments in manual review are approved automatically after
    /// this long; otherwise they wait for `POST /_sim/review/{id}`.
    pub review_auto_resolve_ms: Option<u64>,
    /// Probability in `[0, 1]` that a first attempt with a normal success
    /// token answers 500 without executing.
    pub server_error_rate: f64,
    /// Probability in `[0, 1]` that such an attempt answers 429.
    pub rate_limit_rate: f64,
    /// Probability in `[0, 1]` that such an attempt executes but answers
    /// only after [`Self::slow_response_ms`].
    pub slow_rate: f64,
    /// Probability in `[0, 1]` that such an attempt executes and then loses
    /// its response (the connection is closed without a status line).
    pub lost_response_rate: f64,
    /// Seed of the random generator behind the fault rates, so a chaos run
    /// with the same request sequence injects the same faults.
    pub fault_seed: u64,
    /// Where Stripe-format events are POSTed; `None` disables them.
    pub stripe_webhook_url: Option<String>,
    /// Secret signing the `Stripe-Signature` header.
    pub stripe_webhook_secret: String,
    /// Where Toss-format events are POSTed; `None` disables them.
    pub toss_webhook_url: Option<String>,
    /// Secret signing Toss payout events (`tosspayments-webhook-signature`).
    pub toss_webhook_secret: String,
    /// Delivery attempts per event before giving up (at least one).
    pub webhook_attempts_max: u32,
    /// Delay before the second delivery attempt; doubles for each next one.
    pub webhook_initial_backoff_ms: u64,
    /// How long an authenticated Toss payment (hosted payment window or
    /// `/_sim/toss/payment-sessions`) waits for `POST /v1/payments/confirm`
    /// before it becomes `EXPIRED` (at least 1).
    pub payment_session_ttl_ms: u64,
    /// Toss's security key (64 hexadecimal characters): payout requests and answers are JWEs
    /// under it (`alg: dir`, `enc: A256GCM`).
    pub toss_security_key: String,
    /// Time between two steps of a payout's life (Toss `IN_PROGRESS` → `COMPLETED`, Stripe
    /// `pending` → `in_transit` → `paid`, and paid → failed in the "paid then failed"
    /// scenario), in milliseconds.
    pub payout_step_ms: u64,
    /// How long a newly registered seller waits for identification (Toss
    /// `APPROVAL_REQUIRED`, Stripe `payouts_enabled: false`) before becoming payable, in
    /// milliseconds; 0 makes it payable at once. A seller's scenario may override it.
    pub payout_kyc_delay_ms: u64,
}

impl SimConfig {
    /// Configuration with the defaults documented on each field.
    pub fn new() -> Self {
        Self {
            idempotency_keys_max: IDEMPOTENCY_KEYS_MAX_DEFAULT,
            stripe_idempotency_key_ttl_ms: STRIPE_IDEMPOTENCY_KEY_TTL_MS_DEFAULT,
            toss_idempotency_key_ttl_ms: TOSS_IDEMPOTENCY_KEY_TTL_MS_DEFAULT,
            stripe_search_lag_ms: STRIPE_SEARCH_LAG_MS_DEFAULT,
            public_base_url: None,
            rate_limit_retry_after_secs: RATE_LIMIT_RETRY_AFTER_SECS_DEFAULT,
            slow_response_ms: SLOW_RESPONSE_MS_DEFAULT,
            review_auto_resolve_ms: None,
            server_error_rate: 0.0,
            rate_limit_rate: 0.0,
            slow_rate: 0.0,
            lost_response_rate: 0.0,
            fault_seed: 0,
            stripe_webhook_url: None,
            stripe_webhook_secret: STRIPE_WEBHOOK_SECRET_DEFAULT.to_owned(),
            toss_webhook_url: None,
            toss_webhook_secret: TOSS_WEBHOOK_SECRET_DEFAULT.to_owned(),
            webhook_attempts_max: WEBHOOK_ATTEMPTS_MAX_DEFAULT,
            webhook_initial_backoff_ms: WEBHOOK_INITIAL_BACKOFF_MS_DEFAULT,
            payment_session_ttl_ms: PAYMENT_SESSION_TTL_MS_DEFAULT,
            toss_security_key: TOSS_SECURITY_KEY_TEST.to_owned(),
            payout_step_ms: PAYOUT_STEP_MS_DEFAULT,
            payout_kyc_delay_ms: PAYOUT_KYC_DELAY_MS_DEFAULT,
        }
    }

    /// Checks that every rate is a probability and that together they do not
    /// exceed 1 (they partition one random draw), and that the counts and
    /// durations that must be positive are.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rates = [
            ("server_error_rate", self.server_error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("slow_rate", self.slow_rate),
            ("lost_response_rate", self.lost_response_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError(format!("{name} must be in [0, 1], got {rate}")));
            }
        }
        let total: f64 = rates.iter().map(|(_, rate)| rate).sum();
        if total > 1.0 {
            return Err(ConfigError(format!("fault rates must add up to at most 1, got {total}")));
        }
        if self.webhook_attempts_max == 0 {
            return Err(ConfigError("webhook_attempts_max must be at least 1".to_owned()));
        }
        let durations_ms = [
            ("payment_session_ttl_ms", self.payment_session_ttl_ms),
            ("stripe_idempotency_key_ttl_ms", self.stripe_idempotency_key_ttl_ms),
            ("toss_idempotency_key_ttl_ms", self.toss_idempotency_key_ttl_ms),
        ];
        for (name, duration_ms) in durations_ms {
            if duration_ms == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        let key = self.toss_security_key.trim();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError("toss_security_key must be 64 hexadecimal characters".to_owned()));
        }
        Ok(())
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A configuration value out of its allowed range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defaults are valid; out-of-range and over-committed rates are not.
    #[test]
    fn validates_rates() {
        let mut config = SimConfig::new();
        assert_eq!(config.validate(), Ok(()));
        config.slow_rate = 1.5;
        assert!(config.validate().is_err());
        config.slow_rate = f64::NAN;
        assert!(config.validate().is_err());
        config.slow_rate = 0.6;
        config.lost_response_rate = 0.6;
        assert!(config.validate().is_err());
        config.lost_response_rate = 0.4;
        assert_eq!(config.validate(), Ok(()));
        config.payment_session_ttl_ms = 0;
        assert!(config.validate().is_err());
    }

    /// The Toss security key must be 64 hexadecimal characters; the default is the test key.
    #[test]
    fn validates_toss_security_key() {
        let mut config = SimConfig::new();
        assert_eq!(config.toss_security_key, TOSS_SECURITY_KEY_TEST);
        config.toss_security_key = "abc".to_owned();
        assert!(config.validate().is_err());
        config.toss_security_key = "g".repeat(64);
        assert!(config.validate().is_err());
        config.toss_security_key = "AB".repeat(32);
        assert_eq!(config.validate(), Ok(()));
    }

    /// Idempotency-key TTLs default to the PSPs' own and must be positive.
    #[test]
    fn validates_idempotency_key_ttls() {
        let config = SimConfig::new();
        assert_eq!(config.stripe_idempotency_key_ttl_ms, 86_400_000);
        assert_eq!(config.toss_idempotency_key_ttl_ms, 1_296_000_000);
        for zero in [
            |config: &mut SimConfig| config.stripe_idempotency_key_ttl_ms = 0,
            |config: &mut SimConfig| config.toss_idempotency_key_ttl_ms = 0,
        ] {
            let mut config = SimConfig::new();
            zero(&mut config);
            let error = config.validate().unwrap_err();
            assert!(error.0.contains("idempotency_key_ttl_ms"), "{error}");
        }
    }
}
