//! Waiting for state with a bound instead of sleeping a guessed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// Pause between attempts.
pub const POLL_INTERVAL_MS: u64 = 50;

/// Calls `probe` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}
