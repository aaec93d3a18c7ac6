//! Rate limits (the seeds' rule: too many requests are answered 429 with `Retry-After`):
//! per API key on every guarded call, per client IP on every request (public routes too), and
//! per checkout on Toss's unsigned status hints (anyone can forge them; each one costs a PSP
//! lookup). GCRA limiters from `governor`, kept in memory per gateway: with N gateways a
//! client gets up to N times the rate, which is what per-instance limits mean.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// How often idle limiter entries are dropped.
pub const LIMITER_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Requests per second allowed (bursts up to twice that); 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Per API key.
    pub per_key: u32,
    /// Per client IP.
    pub per_ip: u32,
    /// Unsigned Toss hints per checkout, per minute.
    pub hints_per_checkout_per_min: u32,
}

/// One keyed limiter.
#[derive(Clone)]
pub struct Limiter<K: std::hash::Hash + Eq + Clone> {
    inner: Option<Arc<DefaultKeyedRateLimiter<K>>>,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    fn new(quota: Option<Quota>) -> Self {
        Limiter { inner: quota.map(|q| Arc::new(DefaultKeyedRateLimiter::keyed(q))) }
    }

    /// `Ok` when `key` may go on; otherwise how long to wait.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        match &self.inner {
            None => Ok(()),
            Some(limiter) => {
                limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
            }
        }
    }

    fn sweep(&self) {
        if let Some(limiter) = &self.inner {
            limiter.retain_recent();
        }
    }
}

/// The gateway's limiters.
#[derive(Clone)]
pub struct Limits {
    /// Per API key id.
    pub per_key: Limiter<String>,
    /// Per client IP.
    pub per_ip: Limiter<IpAddr>,
    /// Unsigned Toss hints per checkout id.
    pub hints: Limiter<String>,
}

fn per_second(rate: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    Some(Quota::per_second(rate).allow_burst(rate.saturating_mul(NonZeroU32::MIN.saturating_add(1))))
}

impl Limits {
    /// Limiters for `rates`.
    pub fn new(rates: Rates) -> Self {
        Limits {
            per_key: Limiter::new(per_second(rates.per_key)),
            per_ip: Limiter::new(per_second(rates.per_ip)),
            hints: Limiter::new(NonZeroU32::new(rates.hints_per_checkout_per_min).map(Quota::per_minute)),
        }
    }

    /// Refuses a client address over its rate (429).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.per_ip.check(&ip).map_err(|wait| too_many("requests from this address", wait))
    }

    /// Drops idle entries every [`LIMITER_SWEEP_INTERVAL`] until `stop`.
    pub async fn sweep_loop(self, stop: impl std::future::Future<Output = ()>) {
        crate::idempotency::every(LIMITER_SWEEP_INTERVAL, stop, || {
            self.per_key.sweep();
            self.per_ip.sweep();
            self.hints.sweep();
            std::future::ready(())
        })
        .await;
    }
}

/// The 429 of a limit, with `Retry-After` in whole seconds (at least 1).
pub fn too_many(what: &str, wait: Duration) -> ApiError {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    ApiError::RateLimited { what: what.to_owned(), retry_after_secs: secs }
}

/// Axum middleware: the per-IP limit, on every REST request.
pub async fn per_ip(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(e) = limits.check_ip(peer.ip())
    {
        return e.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of twice the rate passes, the next is refused with a wait under a second; other
    /// keys are unaffected; 0 turns a limit off.
    #[test]
    fn keyed_limits() {
        let limits = Limits::new(Rates { per_key: 2, per_ip: 0, hints_per_checkout_per_min: 1 });
        for _ in 0..4 {
            assert!(limits.per_key.check(&"a".to_owned()).is_ok());
        }
        let wait = limits.per_key.check(&"a".to_owned()).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limits.per_key.check(&"b".to_owned()).is_ok());
        for _ in 0..1000 {
            assert!(limits.per_ip.check(&IpAddr::from([127, 0, 0, 1])).is_ok());
        }
        assert!(limits.hints.check(&"chk".to_owned()).is_ok());
        assert!(limits.hints.check(&"chk".to_owned()).unwrap_err() > Duration::from_secs(30));
        assert_eq!(too_many("x", Duration::from_millis(10)).to_string(), "rate limited: x; retry after 1 s");
    }
}
