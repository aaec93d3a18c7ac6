//! Gateway configuration: command-line flags, each overridable by an environment variable.

use clap::Parser;
use payments_worker::config::{SecretKey, SharedConfig};
use payments_worker::production::{Problem, url_problems};
use payments_workflows::messages::WaitLimits;
use std::fmt;
use std::str::FromStr;

/// Largest `PSP_ATTEMPTS_MAX` accepted (the smallest is 1): with backoff capped at 60 s, 50
/// attempts already retry for most of an hour before the step becomes a dead letter.
pub const PSP_ATTEMPTS_MAX_LIMIT: i64 = 50;
/// Largest `STORE_ATTEMPTS_MAX` accepted.
pub const STORE_ATTEMPTS_MAX_LIMIT: i64 = 100;
/// Longest delay accepted in `JANITOR_SCHEDULE_SECS`: 30 days (the default repeats daily).
pub const JANITOR_DELAY_SECS_MAX: u64 = 30 * 24 * 3600;

/// Gateway configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "payments-gateway", about = "REST and gRPC API: stores checkouts and starts their workflows")]
pub struct GatewayConfig {
    /// Payout providers (seller registration).
    #[command(flatten)]
    pub payout_providers: payments_worker::payouts::PayoutProviderConfig,
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
    pub stripe_webhook_secret: SecretKey,
    /// Toss payout webhook security key. Never logged.
    #[arg(long, env = "TOSS_WEBHOOK_SECRET", default_value = "toss_webhook_test_secret", hide_env_values = true)]
    pub toss_webhook_secret: SecretKey,
    /// Seconds a checkout waits for a pending PSP payment (3-D Secure, PSP review).
    #[arg(long, env = "WAIT_PSP_PENDING_SECS", default_value_t = WaitLimits::DEFAULT.psp_pending_secs)]
    pub wait_psp_pending_secs: u64,
    /// Seconds a checkout held for review waits for an operator.
    #[arg(long, env = "WAIT_REVIEW_SECS", default_value_t = WaitLimits::DEFAULT.review_secs)]
    pub wait_review_secs: u64,
    /// Seconds a hosted checkout waits for the buyer to pay.
    #[arg(long, env = "WAIT_HOSTED_PAYMENT_SECS", default_value_t = WaitLimits::DEFAULT.hosted_payment_secs)]
    pub wait_hosted_payment_secs: u64,
    /// Attempts of one PSP call (charge, status query, refund) before the workflow stops
    /// retrying it: 1 to 50.
    #[arg(
        long,
        env = "PSP_ATTEMPTS_MAX",
        default_value_t = WaitLimits::DEFAULT.psp_attempts_max,
        value_parser = clap::value_parser!(u32).range(1..=PSP_ATTEMPTS_MAX_LIMIT)
    )]
    pub psp_attempts_max: u32,
    /// Attempts of one run of a database step (backoff 0.1 s to 30 s) before the workflow waits
    /// on a durable timer (1 s doubling to 5 min) and runs it again: 1 to 100. No outage ends a
    /// workflow; this only sets how the retries are spaced.
    #[arg(
        long,
        env = "STORE_ATTEMPTS_MAX",
        default_value_t = WaitLimits::DEFAULT.store_attempts_max,
        value_parser = clap::value_parser!(u32).range(1..=STORE_ATTEMPTS_MAX_LIMIT)
    )]
    pub store_attempts_max: u32,
    /// When the UNKNOWN janitor asks the PSP about an order whose outcome is unknown: three
    /// comma-separated seconds, the first delay, the second, then the one that repeats.
    #[arg(long, env = "JANITOR_SCHEDULE_SECS", default_value_t = JanitorSchedule(WaitLimits::DEFAULT.unknown_recheck_secs))]
    pub janitor_schedule_secs: JanitorSchedule,
    /// Seconds between rounds of the start sweep, which starts the workflow of every checkout
    /// and refund stored at least this long ago whose start was lost; 1 to 3600.
    #[arg(long, env = "START_SWEEP_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub start_sweep_secs: u64,
    /// Requests per second per API key (bursts of twice that); 0: no limit. Over it: 429 with
    /// `Retry-After`.
    #[arg(long, env = "RATE_LIMIT_PER_KEY", default_value_t = 500)]
    pub rate_limit_per_key: u32,
    /// Requests per second per client IP, every route (bursts of twice that); 0: no limit.
    #[arg(long, env = "RATE_LIMIT_PER_IP", default_value_t = 1000)]
    pub rate_limit_per_ip: u32,
    /// Toss's unsigned status hints passed on per checkout per minute (each costs a PSP lookup;
    /// anyone can forge them); more are answered 429, which makes Toss redeliver later.
    #[arg(long, env = "TOSS_HINTS_PER_CHECKOUT_PER_MIN", default_value_t = 6)]
    pub toss_hints_per_checkout_per_min: u32,
    /// Seconds a client has to send a request's headers (slow-loris guard).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a REST request has to be answered (then 408).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// REST requests handled at once; more are answered 503 at once.
    #[arg(long, env = "CONCURRENCY_MAX", default_value_t = 1024)]
    pub concurrency_max: usize,
    /// Days a received webhook event is kept (deduplication needs it only while the PSP may
    /// redeliver: Stripe for 3 days, Toss for less); older rows are purged hourly.
    #[arg(long, env = "WEBHOOK_RETENTION_DAYS", default_value_t = 30)]
    pub webhook_retention_days: u32,
    /// Serve gRPC server reflection (v1 and v1alpha), public, so grpcurl and Postman can list
    /// and describe the services without the proto files.
    #[arg(long, env = "GRPC_REFLECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub grpc_reflection: bool,
    /// Temporal and database, as the worker's.
    #[command(flatten)]
    pub shared: SharedConfig,
}

impl GatewayConfig {
    /// The wait limits given to every new checkout and refund.
    pub fn waits(&self) -> WaitLimits {
        WaitLimits {
            psp_pending_secs: self.wait_psp_pending_secs,
            review_secs: self.wait_review_secs,
            hosted_payment_secs: self.wait_hosted_payment_secs,
            psp_attempts_max: self.psp_attempts_max,
            unknown_recheck_secs: self.janitor_schedule_secs.0,
            store_attempts_max: self.store_attempts_max,
        }
    }

    /// Sets every wait limit from `waits` (the inverse of [`GatewayConfig::waits`]; for
    /// embedding the gateway, e.g. in tests, with limits chosen in code).
    pub fn set_waits(&mut self, waits: WaitLimits) {
        self.wait_psp_pending_secs = waits.psp_pending_secs;
        self.wait_review_secs = waits.review_secs;
        self.wait_hosted_payment_secs = waits.hosted_payment_secs;
        self.psp_attempts_max = waits.psp_attempts_max;
        self.janitor_schedule_secs = JanitorSchedule(waits.unknown_recheck_secs);
        self.store_attempts_max = waits.store_attempts_max;
    }

    /// The rate limits.
    pub fn rates(&self) -> crate::limits::Rates {
        crate::limits::Rates {
            per_key: self.rate_limit_per_key,
            per_ip: self.rate_limit_per_ip,
            hints_per_checkout_per_min: self.toss_hints_per_checkout_per_min,
        }
    }

    /// The REST server's limits.
    pub fn serve_limits(&self) -> crate::http_server::ServeLimits {
        crate::http_server::ServeLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs.max(1)),
            concurrency_max: self.concurrency_max.max(1),
        }
    }

    /// Defaults, as if no flag or variable were given.
    pub fn defaults() -> Self {
        GatewayConfig::parse_from(["payments-gateway"])
    }

    /// What `PAYMENTS_ENV=production` refuses in the gateway's settings (the shared ones
    /// included): the published webhook secrets, a Toss test client key, the simulator's
    /// browser SDK, a public URL that is not https.
    pub fn production_problems(&self) -> Vec<Problem> {
        let mut problems = self.shared.production_problems();
        self.payout_providers.production_problems(&mut problems);
        if self.stripe_webhook_secret.expose() == "whsec_test_secret" {
            problems.push(("STRIPE_WEBHOOK_SECRET", "is the published test secret".into()));
        }
        if self.toss_webhook_secret.expose() == "toss_webhook_test_secret" {
            problems.push(("TOSS_WEBHOOK_SECRET", "is the published test secret".into()));
        }
        if self.toss_client_key.starts_with("test_") {
            problems.push(("TOSS_CLIENT_KEY", "is a test-mode client key".into()));
        }
        url_problems("TOSS_JS_URL", &self.toss_js_url, &mut problems);
        if !self.public_url.starts_with("https://") {
            problems.push(("GATEWAY_PUBLIC_URL", "must be an https:// URL (buyers are sent there)".into()));
        }
        problems
    }
}

/// The UNKNOWN janitor's delays in seconds (`JANITOR_SCHEDULE_SECS`): first, second, then
/// repeating. Written and parsed as `300,3600,86400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JanitorSchedule(pub [u64; 3]);

/// Why a `JANITOR_SCHEDULE_SECS` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not exactly three comma-separated values.
    #[error("expected exactly three comma-separated delays in seconds (first, second, repeating), got {0}")]
    Count(usize),
    /// A value is not a whole number of seconds.
    #[error("{0:?} is not a whole number of seconds")]
    NotANumber(String),
    /// A value is zero or above [`JANITOR_DELAY_SECS_MAX`].
    #[error("{0} must be between 1 and {JANITOR_DELAY_SECS_MAX} seconds")]
    OutOfRange(u64),
}

impl FromStr for JanitorSchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [first, second, repeating] = parts.as_slice() else {
            return Err(ScheduleError::Count(parts.len()));
        };
        let secs = |part: &str| {
            // Digits only: no sign, no exponent, no fraction.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ScheduleError::NotANumber(part.to_owned()));
            }
            let value: u64 = part.parse().map_err(|_| ScheduleError::NotANumber(part.to_owned()))?;
            if value == 0 || value > JANITOR_DELAY_SECS_MAX {
                return Err(ScheduleError::OutOfRange(value));
            }
            Ok(value)
        };
        Ok(JanitorSchedule([secs(first)?, secs(second)?, secs(repeating)?]))
    }
}

impl fmt::Display for JanitorSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a},{b},{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<GatewayConfig, clap::Error> {
        GatewayConfig::try_parse_from(std::iter::once("payments-gateway").chain(args.iter().copied()))
    }

    /// Three positive delays parse (spaces around commas allowed); anything else is refused
    /// with a reason.
    #[test]
    fn janitor_schedule_syntax() {
        assert_eq!("300,3600,86400".parse(), Ok(JanitorSchedule([300, 3600, 86400])));
        assert_eq!(" 1, 2 ,3".parse(), Ok(JanitorSchedule([1, 2, 3])));
        assert_eq!("1,2".parse::<JanitorSchedule>(), Err(ScheduleError::Count(2)));
        assert_eq!("1,2,3,4".parse::<JanitorSchedule>(), Err(ScheduleError::Count(4)));
        assert_eq!("".parse::<JanitorSchedule>(), Err(ScheduleError::Count(1)));
        assert_eq!("1,0,3".parse::<JanitorSchedule>(), Err(ScheduleError::OutOfRange(0)));
        assert!(matches!("1,-2,3".parse::<JanitorSchedule>(), Err(ScheduleError::NotANumber(_))));
        assert!(matches!("1,+2,3".parse::<JanitorSchedule>(), Err(ScheduleError::NotANumber(_))));
        assert!(matches!("1,2.5,3".parse::<JanitorSchedule>(), Err(ScheduleError::NotANumber(_))));
        assert!(matches!("1,,3".parse::<JanitorSchedule>(), Err(ScheduleError::NotANumber(_))));
        assert!(matches!("1,2,99999999999999999999".parse::<JanitorSchedule>(), Err(ScheduleError::NotANumber(_))));
        let too_long = format!("1,2,{}", JANITOR_DELAY_SECS_MAX + 1);
        assert_eq!(too_long.parse::<JanitorSchedule>(), Err(ScheduleError::OutOfRange(JANITOR_DELAY_SECS_MAX + 1)));
        assert_eq!(JanitorSchedule([300, 3600, 86400]).to_string(), "300,3600,86400");
    }

    /// Without flags the limits are the workflows' defaults; the flags reach `waits()`; attempts
    /// outside 1..=50 and malformed schedules are refused.
    #[test]
    fn flags_feed_the_wait_limits() {
        // The environment may override the defaults; only check them when it does not.
        if std::env::var_os("PSP_ATTEMPTS_MAX").is_none() && std::env::var_os("JANITOR_SCHEDULE_SECS").is_none() {
            let waits = parse(&[]).unwrap().waits();
            assert_eq!(waits.psp_attempts_max, WaitLimits::DEFAULT.psp_attempts_max);
            assert_eq!(waits.unknown_recheck_secs, WaitLimits::DEFAULT.unknown_recheck_secs);
            assert_eq!(waits.store_attempts_max, WaitLimits::DEFAULT.store_attempts_max);
        }
        let waits = parse(&["--psp-attempts-max", "3", "--janitor-schedule-secs", "5,10,20"]).unwrap().waits();
        assert_eq!((waits.psp_attempts_max, waits.unknown_recheck_secs), (3, [5, 10, 20]));
        assert!(parse(&["--psp-attempts-max", "50"]).is_ok());
        assert!(parse(&["--psp-attempts-max", "0"]).is_err());
        assert!(parse(&["--psp-attempts-max", "51"]).is_err());
        assert!(parse(&["--janitor-schedule-secs", "5,10"]).is_err());
    }

    /// Production refuses every test default of the gateway, naming each variable; real
    /// settings pass; `Debug` shows no secret.
    #[test]
    fn production_refuses_test_defaults() {
        let vars: Vec<&str> = parse(&[]).unwrap().production_problems().iter().map(|(v, _)| *v).collect();
        for var in [
            "PAYMENT_TOKEN_KEYS",
            "STRIPE_WEBHOOK_SECRET",
            "TOSS_WEBHOOK_SECRET",
            "TOSS_CLIENT_KEY",
            "TOSS_JS_URL",
            "GATEWAY_PUBLIC_URL",
        ] {
            assert!(vars.contains(&var), "{var} not refused: {vars:?}");
        }
        let real = parse(&[
            "--stripe-webhook-secret",
            "whsec_real_one",
            "--toss-webhook-secret",
            "toss_real_one",
            "--toss-client-key",
            "live_ck_abc",
            "--toss-js-url",
            "https://js.tosspayments.com/v1/payment",
            "--public-url",
            "https://pay.example.com",
            "--payment-token-keys",
            "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
            "--database-url",
            "postgres://payments_app:s3cret-real@db/payments",
            "--payout-providers",
            "toss_payouts",
            "--toss-payouts-secret-key",
            "live_sk_real",
            "--toss-payouts-security-key",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "--toss-payouts-base-url",
            "https://api.tosspayments.com",
        ])
        .unwrap();
        assert_eq!(real.production_problems(), vec![]);
        let debug = format!("{real:?}");
        for secret in ["whsec_real_one", "toss_real_one", "s3cret-real", "c2VjcmV0c2Vj"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    /// `set_waits` is the inverse of `waits`.
    #[test]
    fn set_waits_round_trips() {
        let mut config = parse(&[]).unwrap();
        let waits =
            WaitLimits { psp_attempts_max: 2, unknown_recheck_secs: [1, 2, 3], review_secs: 7, ..WaitLimits::DEFAULT };
        config.set_waits(waits);
        assert_eq!(config.waits(), waits);
    }
}
