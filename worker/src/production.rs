//! `PAYMENTS_ENV=production`: the worker and the gateway refuse to start with any test default
//! of this repository (published secrets, test keys, the simulator, plain-HTTP public URLs,
//! default database passwords). Each problem names its variable; all of them are reported at
//! once, so one restart fixes them.

use crate::config::{PaymentsEnv, SharedConfig, WorkerConfig};

/// Database passwords of this repository's compose file and of a fresh PostgreSQL.
const DEFAULT_DB_PASSWORDS: [&str; 3] = ["payments", "postgres", "payments_owner"];

/// Prefixes of PSP secret keys that only work in the PSPs' test modes.
const TEST_KEY_PREFIXES: [&str; 3] = ["sk_test_", "test_sk_", "test_gsk_"];

/// The simulator's address in this repository's defaults and compose file.
const SIMULATOR_HOSTS: [&str; 3] = ["127.0.0.1:8090", "localhost:8090", "psp-simulator:"];

/// One refused setting: the variable and why.
pub type Problem = (&'static str, String);

/// Fails when `env` is production and there are `problems`, listing each with its variable.
pub fn refuse_test_defaults(env: PaymentsEnv, problems: Vec<Problem>) -> anyhow::Result<()> {
    if env != PaymentsEnv::Production || problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = problems.iter().map(|(var, why)| format!("  {var}: {why}")).collect();
    anyhow::bail!("PAYMENTS_ENV=production refuses to start with test defaults:\n{}", lines.join("\n"))
}

/// Whether `url` points at the PSP simulator.
pub fn is_simulator(url: &str) -> bool {
    SIMULATOR_HOSTS.iter().any(|host| url.contains(host))
}

/// Problems of an `https` URL setting: plain HTTP or the simulator.
pub fn url_problems(var: &'static str, url: &str, problems: &mut Vec<Problem>) {
    if is_simulator(url) {
        problems.push((var, "points at the PSP simulator".into()));
    } else if !url.starts_with("https://") {
        problems.push((var, "must be an https:// URL".into()));
    }
}

impl SharedConfig {
    /// What production refuses in the shared settings.
    pub fn production_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.payment_token_keys.expose().split(',').any(|k| k.trim() == payments_store::DEV_TOKEN_KEY) {
            problems.push((
                "PAYMENT_TOKEN_KEYS",
                "holds the published development key; use `openssl rand -base64 32`".into(),
            ));
        }
        if let Ok(url) = temporalio_client::Url::parse(&self.database_url)
            && let Some(password) = url.password()
            && DEFAULT_DB_PASSWORDS.contains(&password)
        {
            problems.push(("DATABASE_URL", "uses a default password of this repository".into()));
        }
        problems
    }
}

impl WorkerConfig {
    /// What production refuses in the worker's settings (the shared ones included).
    pub fn production_problems(&self) -> Vec<Problem> {
        let mut problems = self.shared.production_problems();
        let key = self.psp_secret_key.expose();
        if key == "sk_test_local" || TEST_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) {
            problems.push(("PSP_SECRET_KEY", "is a test-mode key".into()));
        }
        url_problems("PSP_BASE_URL", &self.psp_base_url, &mut problems);
        self.payout_providers.production_problems(&mut problems);
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn vars(problems: &[Problem]) -> Vec<&'static str> {
        problems.iter().map(|(v, _)| *v).collect()
    }

    /// Every test default is named; real settings pass; local mode refuses nothing.
    #[test]
    fn worker_test_defaults_are_named() {
        let config = WorkerConfig::parse_from([
            "payments-worker",
            "--database-url",
            "postgres://payments:payments@db/payments",
            "--payment-token-keys",
            payments_store::DEV_TOKEN_KEY,
            "--psp-secret-key",
            "sk_test_local",
            "--psp-base-url",
            "http://127.0.0.1:8090",
        ]);
        let problems = config.production_problems();
        assert_eq!(
            vars(&problems),
            [
                "PAYMENT_TOKEN_KEYS",
                "DATABASE_URL",
                "PSP_SECRET_KEY",
                "PSP_BASE_URL",
                "STRIPE_CONNECT_SECRET_KEY",
                "STRIPE_CONNECT_BASE_URL",
                "TOSS_PAYOUTS_SECURITY_KEY",
                "TOSS_PAYOUTS_SECRET_KEY",
                "TOSS_PAYOUTS_BASE_URL"
            ]
        );
        let err = refuse_test_defaults(PaymentsEnv::Production, problems.clone()).unwrap_err().to_string();
        for var in vars(&problems) {
            assert!(err.contains(var), "{err}");
        }
        assert!(!err.contains("sk_test_local") && !err.contains(":payments@"), "no secret in the error: {err}");
        assert!(refuse_test_defaults(PaymentsEnv::Local, problems).is_ok());

        let real = WorkerConfig::parse_from([
            "payments-worker",
            "--database-url",
            "postgres://payments_app:Zx8-not-default@db/payments",
            "--payment-token-keys",
            "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
            "--psp-secret-key",
            "sk_live_abc",
            "--psp-base-url",
            "https://api.stripe.com",
            "--payout-providers",
            "stripe_connect",
            "--stripe-connect-secret-key",
            "sk_live_abc",
            "--stripe-connect-base-url",
            "https://api.stripe.com",
        ]);
        assert_eq!(real.production_problems(), vec![]);
        let plain = WorkerConfig::parse_from(["payments-worker", "--psp-base-url", "http://psp.internal"]);
        assert!(vars(&plain.production_problems()).contains(&"PSP_BASE_URL"));
    }
}
