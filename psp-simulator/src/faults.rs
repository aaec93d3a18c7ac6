//! Fault injection: which request fails, and how.
//!
//! Two sources, one policy. *Fault tokens* (`pm_card_sim_*`,
//! `billing_sim_*`) fail deterministically by attempt number — the n-th
//! request carrying the same idempotency key — so a test can script "fail
//! twice, then succeed". *Fault rates* ([`crate::SimConfig`]) add seeded
//! random faults for chaos and load runs, but only to the first attempt of a
//! key whose token is a normal success token: a retry always gets a fair
//! chance, and declines stay declines.
//!
//! Without an idempotency key every request is attempt 1 (there is nothing
//! to count by), so e.g. a server-error-twice token then always fails.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::SimConfig;
use crate::state::lock;

/// Attempts of a server-error-twice token that fail.
pub const SERVER_ERROR_ATTEMPTS_MAX: u32 = 2;

/// The scripted behaviour of a fault token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFault {
    /// Attempts 1 and 2 answer a server error (Stripe 503, Toss 500) without executing; attempt 3 succeeds.
    ServerErrorTwice,
    /// Attempt 1 answers 429 with `Retry-After`; later attempts succeed.
    RateLimited,
    /// Every executing attempt succeeds, but its answer is held back.
    Slow,
    /// Attempt 1 succeeds and its connection is dropped unanswered.
    LostResponse,
}

/// How the token being charged relates to faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A plain success token: subject to the configured fault rates.
    NormalSuccess,
    /// A fault token: behaves as scripted, then succeeds.
    Fault(TokenFault),
    /// Anything else (declines, 3-D Secure, review): never faulted.
    Other,
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer a server error (Stripe 503, Toss 500) without executing or storing anything.
    ServerError,
    /// Answer 429 with `Retry-After` without executing or storing anything.
    RateLimited,
    /// Execute and store, then wait before answering.
    Slow,
    /// Execute and store, then close the connection without answering.
    LostResponse,
}

/// Decides faults according to the configuration.
pub struct FaultInjector {
    server_error_rate: f64,
    rate_limit_rate: f64,
    slow_rate: f64,
    lost_response_rate: f64,
    rng: Mutex<StdRng>,
    /// `Retry-After` of simulated 429s, in seconds.
    pub retry_after_secs: u64,
    /// Hold-back of slow responses.
    pub slow_response: Duration,
}

impl FaultInjector {
    /// An injector for `config`. Rates outside `[0, 1]` (or NaN) are
    /// treated as 0 here; [`SimConfig::validate`] reports them.
    pub fn new(config: &SimConfig) -> Self {
        let rate = |value: f64| {
            if (0.0..=1.0).contains(&value) { value } else { 0.0 }
        };
        Self {
            server_error_rate: rate(config.server_error_rate),
            rate_limit_rate: rate(config.rate_limit_rate),
            slow_rate: rate(config.slow_rate),
            lost_response_rate: rate(config.lost_response_rate),
            rng: Mutex::new(StdRng::seed_from_u64(config.fault_seed)),
            retry_after_secs: config.rate_limit_retry_after_secs,
            slow_response: Duration::from_millis(config.slow_response_ms),
        }
    }

    /// The fault for attempt number `attempt` (1-based) charging a token of
    /// `kind`, if any.
    pub fn decide(&self, kind: TokenKind, attempt: u32) -> Option<Fault> {
        match kind {
            TokenKind::Fault(TokenFault::ServerErrorTwice) => {
                (attempt <= SERVER_ERROR_ATTEMPTS_MAX).then_some(Fault::ServerError)
            }
            TokenKind::Fault(TokenFault::RateLimited) => (attempt == 1).then_some(Fault::RateLimited),
            TokenKind::Fault(TokenFault::Slow) => Some(Fault::Slow),
            TokenKind::Fault(TokenFault::LostResponse) => (attempt == 1).then_some(Fault::LostResponse),
            TokenKind::NormalSuccess if attempt == 1 => self.roll(),
            TokenKind::NormalSuccess | TokenKind::Other => None,
        }
    }

    /// One draw partitioned by the configured rates.
    fn roll(&self) -> Option<Fault> {
        let total = self.server_error_rate + self.rate_limit_rate + self.slow_rate + self.lost_response_rate;
        if total <= 0.0 {
            // Keep the generator untouched so enabling chaos later does not
            // depend on how many requests ran before.
            return None;
        }
        let draw: f64 = lock(&self.rng).random();
        let bands = [
            (self.server_error_rate, Fault::ServerError),
            (self.rate_limit_rate, Fault::RateLimited),
            (self.slow_rate, Fault::Slow),
            (self.lost_response_rate, Fault::LostResponse),
        ];
        let mut upper = 0.0;
        for (rate, fault) in bands {
            upper += rate;
            if draw < upper {
                return Some(fault);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(configure: impl FnOnce(&mut SimConfig)) -> FaultInjector {
        let mut config = SimConfig::new();
        configure(&mut config);
        FaultInjector::new(&config)
    }

    /// Fault tokens follow their script by attempt number.
    #[test]
    fn tokens_follow_their_script() {
        let faults = injector(|_| {});
        let kind = |fault| TokenKind::Fault(fault);
        let server = kind(TokenFault::ServerErrorTwice);
        assert_eq!(faults.decide(server, 1), Some(Fault::ServerError));
        assert_eq!(faults.decide(server, 2), Some(Fault::ServerError));
        assert_eq!(faults.decide(server, 3), None);
        let limited = kind(TokenFault::RateLimited);
        assert_eq!(faults.decide(limited, 1), Some(Fault::RateLimited));
        assert_eq!(faults.decide(limited, 2), None);
        let lost = kind(TokenFault::LostResponse);
        assert_eq!(faults.decide(lost, 1), Some(Fault::LostResponse));
        assert_eq!(faults.decide(lost, 2), None);
        assert_eq!(faults.decide(kind(TokenFault::Slow), 5), Some(Fault::Slow));
        assert_eq!(faults.decide(TokenKind::NormalSuccess, 1), None);
    }

    /// Rates apply to first attempts of normal tokens only, and a rate of 1
    /// always fires.
    #[test]
    fn rates_apply_to_first_attempts_of_normal_tokens() {
        let faults = injector(|config| config.lost_response_rate = 1.0);
        assert_eq!(faults.decide(TokenKind::NormalSuccess, 1), Some(Fault::LostResponse));
        assert_eq!(faults.decide(TokenKind::NormalSuccess, 2), None);
        assert_eq!(faults.decide(TokenKind::Other, 1), None);
    }

    /// The same seed gives the same fault sequence.
    #[test]
    fn seeded_draws_repeat() {
        let sequence = || {
            let faults = injector(|config| {
                config.server_error_rate = 0.3;
                config.slow_rate = 0.3;
                config.fault_seed = 7;
            });
            (0..50).map(|_| faults.decide(TokenKind::NormalSuccess, 1)).collect::<Vec<_>>()
        };
        let first = sequence();
        assert_eq!(first, sequence());
        assert!(first.contains(&Some(Fault::ServerError)));
        assert!(first.contains(&None));
    }
}
