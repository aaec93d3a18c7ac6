//! The whole stack in one test process: PSP simulator, worker and gateway on port 0, with a
//! fresh database and task queue per stack. Each service runs on threads of its own
//! ([`crate::service`]): a panic or an unexpected exit in any of them fails the test while it
//! waits ([`Stack::poll_until`], [`Stack::wait_done`]) and at [`Stack::shutdown`], which also
//! checks the simulator's money against the platform's rows ([`crate::oracle`]).

use crate::keys::{http_client, issue_key};
use crate::oracle;
use crate::poll::poll_until;
use crate::proxy::{Proxy, ProxyMode};
use crate::service::{Health, Service};
use crate::temporal::{temporal_address, unique};
use payments_activities::psp::SecretKey;
use payments_gateway::GatewayConfig;
use payments_store::{ApiScope, Store};
use payments_worker::WorkerConfig;
use payments_workflows::messages::WaitLimits;
use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a test waits for a checkout to finish.
pub const CHECKOUT_TIMEOUT_SECS: u64 = 60;

/// What to start.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Database URL; a fresh SQLite file when `None`.
    pub database_url: Option<String>,
    /// Start an in-process worker (off for tests that run the worker binary themselves).
    pub worker: bool,
    /// Buyers the risk check declines.
    pub risk_blocked_buyers: String,
    /// The simulator's configuration (faults, delays, webhooks).
    pub sim: psp_simulator::SimConfig,
    /// PSP adapter of the worker: `stripe` or `toss`.
    pub psp_provider: String,
    /// The worker's PSP request timeout.
    pub psp_request_timeout_ms: u64,
    /// The worker's PSP secret key; a valid test key of the provider when `None`.
    pub psp_secret_key: Option<String>,
    /// Point the simulator's webhooks at the gateway.
    pub webhooks: bool,
    /// Wait limits given to checkouts.
    pub waits: WaitLimits,
    /// Amounts above which checkouts are held for review (`RISK_REVIEW_LIMITS`).
    pub risk_review_limits: String,
    /// The gateway's start sweep interval (`START_SWEEP_SECS`).
    pub start_sweep_secs: u64,
    /// Put a cuttable proxy between the gateway and Temporal ([`Stack::temporal_proxy`]).
    pub temporal_proxy: bool,
    /// PostgreSQL only: put a cuttable proxy between the worker and gateway and the database
    /// (the test's own [`Stack::store`] connects directly). See [`Stack::database_outage`].
    pub database_proxy: bool,
    /// The worker's `PSP_IDEMPOTENCY_KEY_TTL_SECS` (`None`: the provider's documented one).
    pub psp_key_ttl_secs: Option<u64>,
    /// The worker's `PSP_SEARCH_LAG_SECS` (`None`: the default).
    pub psp_search_lag_secs: Option<u64>,
    /// The worker's `RISK_ORDER_LIMITS` (`None`: the default, every currency).
    pub risk_order_limits: Option<String>,
    /// Changes to the gateway's configuration (rate limits, timeouts), applied last.
    pub gateway: Option<fn(&mut GatewayConfig)>,
    /// Changes to the pay-out settings of the worker and the gateway (a rolling reserve), applied
    /// after the test settings.
    pub payouts: Option<fn(&mut payments_worker::payouts::PayoutConfig)>,
    /// Changes to the worker's reconciliation settings (window, tolerance, origin), applied
    /// after the test settings.
    pub recon: Option<fn(&mut payments_worker::recon::ReconConfig)>,
}

impl StackOptions {
    /// Everything on, fresh SQLite, Stripe adapter with its production timeout.
    pub fn new() -> Self {
        StackOptions {
            database_url: None,
            worker: true,
            risk_blocked_buyers: String::new(),
            sim: psp_simulator::SimConfig::new(),
            psp_provider: "stripe".to_owned(),
            psp_request_timeout_ms: payments_worker::WorkerConfig::defaults().psp_request_timeout_ms,
            psp_secret_key: None,
            webhooks: true,
            waits: WaitLimits::DEFAULT,
            risk_review_limits: String::new(),
            start_sweep_secs: GatewayConfig::defaults().start_sweep_secs,
            temporal_proxy: false,
            database_proxy: false,
            psp_key_ttl_secs: None,
            psp_search_lag_secs: None,
            risk_order_limits: None,
            gateway: None,
            payouts: None,
            recon: None,
        }
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A running stack. Every test ends it with [`Stack::shutdown`] (dropping it otherwise, outside
/// a failing test, is itself a failure: the end-of-test checks would never run).
pub struct Stack {
    /// This stack's id (its services' threads are named `{id}/{service}`).
    pub id: String,
    /// REST base URL of the gateway.
    pub rest_url: String,
    /// gRPC address of the gateway (`http://127.0.0.1:port`).
    pub grpc_url: String,
    /// Base URL of the PSP simulator.
    pub sim_url: String,
    /// Temporal frontend address.
    pub temporal_address: String,
    /// This stack's task queue.
    pub task_queue: String,
    /// This stack's database.
    pub database_url: String,
    /// A store on the same database, for assertions on rows.
    pub store: Store,
    /// HTTP client for the tests; it sends [`Stack::payments_key`] to every URL (the
    /// gateway's public routes and the simulator ignore it).
    pub http: reqwest::Client,
    /// An API key with the `payments` scope (create, read, refund).
    pub payments_key: String,
    /// An API key with the `admin` scope (reviews, cancels, dead letters, keys).
    pub admin_key: String,
    /// The lineage of [`Stack::payments_key`], which its Idempotency-Keys are scoped to.
    pub(crate) payments_lineage: String,
    /// The proxy between the gateway and Temporal, when asked for.
    pub temporal_proxy: Option<Proxy>,
    /// The proxy between the services and PostgreSQL, when asked for.
    pub database_proxy: Option<Proxy>,
    /// The database URL the worker and gateway use (through the proxy, if any).
    services_database_url: String,
    health: Arc<Health>,
    simulator: Option<Service>,
    worker: Option<Service>,
    gateway: Option<Service>,
    /// The gateway's configuration and addresses, for a restart on the same ports.
    gateway_config: GatewayConfig,
    rest_addr: SocketAddr,
    grpc_addr: SocketAddr,
    /// Keys of PSP payments and refunds a test made itself ([`Stack::expect_foreign_money`]).
    foreign: Mutex<BTreeSet<String>>,
    payouts_change: Option<fn(&mut payments_worker::payouts::PayoutConfig)>,
    shut_down: bool,
}

/// A listener on 127.0.0.1 (port 0: any free port), ready to move to a service's runtime.
fn bind(addr: SocketAddr) -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    listener.set_nonblocking(true).expect("non-blocking listener");
    listener
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Stack {
    /// Starts the stack.
    pub async fn start(options: StackOptions) -> Stack {
        // Logs of the in-process services on request (RUST_LOG=info cargo test ...): they come
        // from background threads, which the test harness does not capture.
        if std::env::var_os("RUST_LOG").is_some() {
            payments_worker::telemetry::init();
        }
        let temporal_address = temporal_address().await;
        let database_url = options.database_url.clone().unwrap_or_else(payments_store::test_db::sqlite_url);
        let store = Store::connect(&database_url).await.expect("test database");
        let (payments_key, payments_lineage) = issue_key(&store, "testkit-payments", ApiScope::Payments).await;
        let (admin_key, _) = issue_key(&store, "testkit-admin", ApiScope::Admin).await;
        let task_queue = unique("tq");
        let id = unique("stack");
        let health = Health::register(id.clone());

        // Bound first, so the simulator can be told where the gateway's webhooks are.
        let sim = bind(any_port());
        let sim_url = format!("http://{}", sim.local_addr().expect("addr"));
        let rest = bind(any_port());
        let grpc = bind(any_port());
        let (rest_addr, grpc_addr) = (rest.local_addr().expect("addr"), grpc.local_addr().expect("addr"));
        let rest_url = format!("http://{rest_addr}");
        let mut sim_config = options.sim.clone();
        if options.webhooks {
            sim_config.stripe_webhook_url = Some(format!("{rest_url}/webhooks/stripe"));
            sim_config.toss_webhook_url = Some(format!("{rest_url}/webhooks/toss"));
        }
        let simulator = Service::start(&health, "simulator", move |stop| async move {
            let listener = TcpListener::from_std(sim)?;
            Ok(psp_simulator::run(listener, sim_config, stop).await?)
        });

        let database_proxy = match options.database_proxy && database_url.starts_with("postgres") {
            true => Some(Proxy::start(host_port(&database_url)).await),
            false => None,
        };
        let services_database_url = match &database_proxy {
            Some(proxy) => with_host_port(&database_url, &proxy.addr),
            None => database_url.clone(),
        };
        let temporal_proxy = match options.temporal_proxy {
            true => Some(Proxy::start(host_port(&temporal_address)).await),
            false => None,
        };
        let mut stack = Stack {
            id,
            grpc_url: format!("http://{grpc_addr}"),
            rest_url,
            sim_url,
            temporal_address,
            task_queue,
            database_url,
            store,
            http: http_client(Some(&payments_key)),
            payments_key,
            admin_key,
            payments_lineage,
            temporal_proxy,
            database_proxy,
            services_database_url,
            health,
            simulator: Some(simulator),
            worker: None,
            gateway: None,
            gateway_config: GatewayConfig::defaults(),
            rest_addr,
            grpc_addr,
            foreign: Mutex::new(BTreeSet::new()),
            payouts_change: options.payouts,
            shut_down: false,
        };
        if options.worker {
            stack.start_worker(&options);
        }
        stack.gateway_config = stack.gateway_config(&options);
        stack.start_gateway(rest, grpc).await;
        stack
    }

    /// The configuration an in-process or subprocess worker of this stack uses.
    pub fn worker_config(&self) -> WorkerConfig {
        let mut c = WorkerConfig::defaults();
        c.shared.temporal_address = self.temporal_address.clone();
        c.shared.task_queue = self.task_queue.clone();
        c.shared.database_url = self.services_database_url.clone();
        c.psp_base_url = self.sim_url.clone();
        c.graceful_shutdown_secs = 1;
        payout_settings(&mut c.shared.payouts, self.payouts_change);
        // Reconciliation on demand only (the nightly schedule has a test of its own); the daily
        // CSV files from this stack's simulator.
        c.recon.recon_schedule = "off".to_owned();
        c.recon.recon_csv_base_url = format!("{}/_sim/settlements", self.sim_url);
        c.payout_providers = self.payout_providers();
        // Many workers share the test process: no SDK core console logger each.
        c.core_log_filter = String::new();
        c
    }

    /// The payout providers at this stack's simulator, with its test keys.
    pub fn payout_providers(&self) -> payments_worker::payouts::PayoutProviderConfig {
        let mut c = WorkerConfig::defaults().payout_providers;
        c.stripe_connect_base_url = self.sim_url.clone();
        c.stripe_connect_secret_key = SecretKey::new(crate::simulator::STRIPE_TEST_KEY);
        c.toss_payouts_base_url = self.sim_url.clone();
        c.toss_payouts_secret_key = SecretKey::new(crate::simulator::TOSS_TEST_KEY);
        c
    }

    fn start_worker(&mut self, options: &StackOptions) {
        let mut config = self.worker_config();
        config.risk_blocked_buyers = options.risk_blocked_buyers.clone();
        config.risk_review_limits = options.risk_review_limits.clone();
        if let Some(limits) = &options.risk_order_limits {
            config.risk_order_limits = limits.clone();
        }
        config.psp_provider = options.psp_provider.clone();
        // Test keys in each PSP's own format (the simulator checks the prefix).
        config.psp_secret_key = SecretKey::new(match (&options.psp_secret_key, options.psp_provider.as_str()) {
            (Some(key), _) => key.clone(),
            (None, "toss") => crate::simulator::TOSS_TEST_KEY.to_owned(),
            (None, _) => crate::simulator::STRIPE_TEST_KEY.to_owned(),
        });
        config.psp_request_timeout_ms = options.psp_request_timeout_ms;
        config.psp_idempotency_key_ttl_secs = options.psp_key_ttl_secs;
        if let Some(lag) = options.psp_search_lag_secs {
            config.psp_search_lag_secs = lag;
        }
        if let Some(change) = options.recon {
            change(&mut config.recon);
        }
        // The SDK's worker future is not `Send` (workflow code is single-threaded): it runs on
        // its service thread, as in the worker binary.
        self.worker = Some(Service::start(&self.health, "worker", move |stop| payments_worker::run(config, stop)));
    }

    fn gateway_config(&self, options: &StackOptions) -> GatewayConfig {
        let mut config = GatewayConfig::defaults();
        config.public_url = self.rest_url.clone();
        config.toss_js_url = format!("{}/js/v1/tosspayments.js", self.sim_url);
        config.toss_client_key = "test_ck_testkit".to_owned();
        config.stripe_webhook_secret = SecretKey::new(options.sim.stripe_webhook_secret.clone());
        config.toss_webhook_secret = SecretKey::new(options.sim.toss_webhook_secret.clone());
        config.set_waits(options.waits);
        config.start_sweep_secs = options.start_sweep_secs;
        config.shared.temporal_address = match &self.temporal_proxy {
            Some(proxy) => format!("http://{}", proxy.addr),
            None => self.temporal_address.clone(),
        };
        config.shared.task_queue = self.task_queue.clone();
        config.shared.database_url = self.services_database_url.clone();
        payout_settings(&mut config.shared.payouts, self.payouts_change);
        config.payout_providers = self.payout_providers();
        if let Some(change) = options.gateway {
            change(&mut config);
        }
        config
    }

    async fn start_gateway(&mut self, rest: std::net::TcpListener, grpc: std::net::TcpListener) {
        let config = self.gateway_config.clone();
        self.gateway = Some(Service::start(&self.health, "gateway", move |stop| async move {
            let (rest, grpc) = (TcpListener::from_std(rest)?, TcpListener::from_std(grpc)?);
            payments_gateway::run(config, rest, grpc, stop).await
        }));
        let url = format!("{}/livez", self.rest_url);
        self.poll_until("gateway health", Duration::from_secs(30), || async {
            self.http.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
    }

    /// Kills the gateway at once, as a crash would: requests in flight are abandoned, their
    /// clients see the connection close. [`Stack::restart_gateway`] starts a new one.
    pub async fn kill_gateway(&mut self) {
        if let Some(mut gateway) = self.gateway.take() {
            gateway.kill().await;
        }
    }

    /// Stops the gateway, if one runs — gracefully, or at once as a crash would (`kill`:
    /// requests in flight are abandoned) — and starts a new one on the same ports and database.
    pub async fn restart_gateway(&mut self, kill: bool) {
        if let Some(mut gateway) = self.gateway.take() {
            if kill { gateway.kill().await } else { gateway.stop().await }
        }
        let (rest, grpc) = (bind(self.rest_addr), bind(self.grpc_addr));
        self.start_gateway(rest, grpc).await;
    }

    /// Declares a PSP payment or refund the test made itself, outside the platform (by our
    /// order id, or the PSP's payment id): the end-of-test money check leaves it out.
    pub fn expect_foreign_money(&self, key: &str) {
        self.foreign.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned());
    }

    /// Panics with every panic and unexpected exit recorded in this stack's services so far.
    pub fn check_health(&self) {
        let failures = self.health.failures();
        assert!(failures.is_empty(), "stack {}: {}", self.id, failures.join("; "));
    }

    /// [`poll_until`], failing at once when a service of this stack panicked or exited.
    pub async fn poll_until<T, F, Fut>(&self, what: &str, timeout: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        poll_until(what, timeout, || {
            self.check_health();
            probe()
        })
        .await
    }

    /// Takes the database away from the worker and gateway until [`DatabaseOutage::end`]:
    /// PostgreSQL through the stack's proxy (`database_proxy`: connections refused), SQLite by
    /// holding its write lock (every write waits out its busy timeout and fails).
    pub async fn database_outage(&self) -> DatabaseOutage {
        if let Some(proxy) = &self.database_proxy {
            proxy.set(ProxyMode::Refuse);
            return DatabaseOutage { lock: None };
        }
        assert!(self.database_url.starts_with("sqlite"), "a PostgreSQL outage needs `database_proxy`");
        let lock = self
            .poll_until("the SQLite write lock", Duration::from_secs(30), || async {
                let mut conn = self.store.pool().acquire().await.ok()?;
                sqlx::query("BEGIN EXCLUSIVE").execute(&mut *conn).await.ok()?;
                Some(conn)
            })
            .await;
        DatabaseOutage { lock: Some(lock) }
    }

    /// Ends the test's stack: stops the worker (while the simulator still answers: a worker's
    /// shutdown waits for its in-flight activities, and a charge against a closed port would
    /// retry for minutes), checks the simulator's captures and refunds against the platform's
    /// rows and books ([`crate::oracle`]), stops the gateway and the simulator, and fails the
    /// test with every disagreement, panic and unexpected exit found.
    pub async fn shutdown(mut self) {
        self.shut_down = true;
        if let Some(mut worker) = self.worker.take() {
            worker.stop().await;
        }
        let foreign = self.foreign.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let disagreements = oracle::disagreements(&self.http, &self.sim_url, &self.store, &foreign).await;
        for service in [self.gateway.take(), self.simulator.take()].into_iter().flatten() {
            let mut service = service;
            service.stop().await;
        }
        self.store.close().await;
        let failures = self.health.failures();
        assert!(
            failures.is_empty() && disagreements.is_empty(),
            "stack {}:\n services: {failures:#?}\n money: {disagreements:#?}",
            self.id
        );
    }
}

/// A database outage in progress ([`Stack::database_outage`]).
pub struct DatabaseOutage {
    lock: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl DatabaseOutage {
    /// Gives the database back.
    pub async fn end(self, stack: &Stack) {
        if let Some(proxy) = &stack.database_proxy {
            proxy.set(ProxyMode::Open);
        }
        if let Some(mut conn) = self.lock {
            sqlx::query("ROLLBACK").execute(&mut *conn).await.expect("release the SQLite write lock");
        }
    }
}

/// The `host:port` of a URL (`scheme://[user@]host:port[/...]`).
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// `url` with its `host:port` replaced.
fn with_host_port(url: &str, host_port_new: &str) -> String {
    url.replacen(host_port(url), host_port_new, 1)
}

impl Drop for Stack {
    /// The services are killed (see [`Service`]'s drop). A stack dropped without
    /// [`Stack::shutdown`] by a test that is not failing skipped the end-of-test checks. A test
    /// that is failing gets the panics and exits of its services printed with its own failure:
    /// an assert or a timeout can be the consequence of a crash nobody waited on.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let failures = self.health.failures();
            if !failures.is_empty() {
                eprintln!("stack {}: its services failed as well:\n{failures:#?}", self.id);
            }
        } else if !self.shut_down {
            panic!("stack {} dropped without Stack::shutdown(): the end-of-test checks did not run", self.id);
        }
    }
}

/// Pay-out settings of a test stack: no schedule (tests run cycles on demand; the schedule has
/// a test of its own), captures payable at once, and short waits: a provider is asked after
/// 2 s without news, and a paid payout settles 3 s after the provider said so.
fn payout_settings(
    c: &mut payments_worker::payouts::PayoutConfig,
    change: Option<fn(&mut payments_worker::payouts::PayoutConfig)>,
) {
    c.payout_schedule = "off".to_owned();
    c.payout_delay_days = 0;
    c.payout_status_check_secs = 2;
    c.payout_return_window_secs = 3;
    if let Some(change) = change {
        change(c);
    }
}
