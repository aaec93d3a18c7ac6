//! The whole stack in one test process: PSP simulator, worker and gateway on port 0, with a
//! fresh database and task queue per stack.

use crate::poll::poll_until;
use crate::proxy::{Proxy, ProxyMode};
use crate::temporal::{temporal_address, unique};
use payments_activities::psp::SecretKey;
use payments_domain::CheckoutId;
use payments_gateway::GatewayConfig;
use payments_store::{CheckoutRecord, Store};
use payments_worker::WorkerConfig;
use payments_workflows::messages::WaitLimits;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
        }
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A running stack. Dropping it stops the simulator, worker and gateway.
pub struct Stack {
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
    /// HTTP client for the tests.
    pub http: reqwest::Client,
    /// The proxy between the gateway and Temporal, when asked for.
    pub temporal_proxy: Option<Proxy>,
    /// The proxy between the services and PostgreSQL, when asked for.
    pub database_proxy: Option<Proxy>,
    /// The database URL the worker and gateway use (through the proxy, if any).
    services_database_url: String,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    worker_stop: Option<oneshot::Sender<()>>,
    worker_thread: Option<std::thread::JoinHandle<()>>,
}

fn stop_signal() -> (oneshot::Sender<()>, impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
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
        let task_queue = unique("tq");
        let (mut stops, mut tasks) = (Vec::new(), Vec::new());

        // Bound first, so the simulator can be told where the gateway's webhooks are.
        let sim = TcpListener::bind("127.0.0.1:0").await.expect("bind sim");
        let sim_url = format!("http://{}", sim.local_addr().expect("addr"));
        let rest = TcpListener::bind("127.0.0.1:0").await.expect("bind rest");
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind grpc");
        let rest_url = format!("http://{}", rest.local_addr().expect("addr"));
        let (tx, stop) = stop_signal();
        stops.push(tx);
        let mut sim_config = options.sim.clone();
        if options.webhooks {
            sim_config.stripe_webhook_url = Some(format!("{rest_url}/webhooks/stripe"));
            sim_config.toss_webhook_url = Some(format!("{rest_url}/webhooks/toss"));
        }
        tasks.push(tokio::spawn(async move {
            psp_simulator::run(sim, sim_config, stop).await.expect("simulator");
        }));

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
            grpc_url: format!("http://{}", grpc.local_addr().expect("addr")),
            rest_url,
            sim_url,
            temporal_address,
            task_queue,
            database_url,
            store,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http"),
            temporal_proxy,
            database_proxy,
            services_database_url,
            stops,
            tasks,
            worker_stop: None,
            worker_thread: None,
        };
        if options.worker {
            stack.start_worker(&options);
        }
        stack.start_gateway(&options, rest, grpc).await;
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
        // Many workers share the test process: no SDK core console logger each.
        c.core_log_filter = String::new();
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
            (None, "toss") => "test_sk_testkit".to_owned(),
            (None, _) => "sk_test_testkit".to_owned(),
        });
        config.psp_request_timeout_ms = options.psp_request_timeout_ms;
        config.psp_idempotency_key_ttl_secs = options.psp_key_ttl_secs;
        if let Some(lag) = options.psp_search_lag_secs {
            config.psp_search_lag_secs = lag;
        }
        let (tx, stop) = stop_signal();
        self.worker_stop = Some(tx);
        // The SDK's worker future is not `Send` (workflow code is single-threaded), so it gets
        // a thread and a runtime of its own, as in the worker binary.
        self.worker_thread = Some(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("worker runtime");
            rt.block_on(payments_worker::run(config, stop)).expect("worker");
        }));
    }

    async fn start_gateway(&mut self, options: &StackOptions, rest: TcpListener, grpc: TcpListener) {
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
        let (tx, stop) = stop_signal();
        self.stops.push(tx);
        self.tasks.push(tokio::spawn(async move {
            payments_gateway::run(config, rest, grpc, stop).await.expect("gateway");
        }));
        let url = format!("{}/healthz", self.rest_url);
        let http = self.http.clone();
        poll_until("gateway health", Duration::from_secs(30), || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }

    /// POSTs a raw body to `/v1/payments`; answers status and JSON body.
    pub async fn post_payment_raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/payments", self.rest_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /v1/payments");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a JSON checkout.
    pub async fn post_payment(&self, body: &Value) -> (u16, Value) {
        self.post_payment_raw(body.to_string()).await
    }

    /// GETs a path of the gateway; answers status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.rest_url)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the checkout is done: every order final and every captured one booked.
    pub async fn wait_done(&self, checkout_id: &str) -> CheckoutRecord {
        let id = CheckoutId::parse(checkout_id).expect("checkout id");
        poll_until(&format!("checkout {checkout_id} to be done"), Duration::from_secs(CHECKOUT_TIMEOUT_SECS), || {
            let (store, id) = (self.store.clone(), id.clone());
            async move { store.checkout(&id).await.ok().flatten().filter(|c| c.is_payment_done) }
        })
        .await
    }

    /// Posts a one-order checkout paid with `token`; answers the checkout id and the order id.
    pub async fn post_one_order(&self, token: &str, amount: &str, currency: &str) -> (String, String) {
        let id = unique("chk");
        let po = format!("{id}-1");
        let body = serde_json::json!({
            "checkout_id": id,
            "buyer_info": {"buyer_id": "buyer-1"},
            "credit_card_info": {"token": token},
            "payment_orders": [{"seller_account": "seller-a", "amount": amount, "currency": currency, "payment_order_id": po}],
        });
        let (status, answer) = self.post_payment(&body).await;
        assert_eq!(status, 202, "{answer}");
        (id, po)
    }

    /// The PSP's id for an order's payment (Stripe PaymentIntent via the Search API, Toss
    /// `paymentKey` via the order lookup), read from the simulator once the charge reached it.
    pub async fn psp_payment_id(&self, provider: &str, po: &str) -> String {
        poll_until("the payment to reach the PSP", Duration::from_secs(30), || async {
            let request = match provider {
                "stripe" => self
                    .http
                    .get(format!("{}/v1/payment_intents/search", self.sim_url))
                    .query(&[("query", format!("metadata['payment_order_id']:'{po}'"))])
                    .bearer_auth("sk_test_testkit"),
                _ => self
                    .http
                    .get(format!("{}/v1/payments/orders/{po}", self.sim_url))
                    .basic_auth("test_sk_testkit", Some("")),
            };
            let body: Value = request.send().await.ok()?.json().await.ok()?;
            let id = if provider == "stripe" { body["data"][0]["id"].as_str() } else { body["paymentKey"].as_str() };
            id.map(str::to_owned)
        })
        .await
    }

    /// The simulator's request log for one idempotency key (arrival times and outcomes).
    pub async fn sim_requests(&self, idempotency_key: &str) -> Vec<Value> {
        let url = format!("{}/_sim/requests?idempotency_key={idempotency_key}", self.sim_url);
        let body: Value = self.http.get(url).send().await.expect("sim requests").json().await.expect("json");
        body["requests"].as_array().cloned().unwrap_or_default()
    }

    /// The simulator's captures for one order (the "money moved" records).
    pub async fn captures(&self, payment_order_id: &str) -> Vec<Value> {
        let url = format!("{}/_sim/captures?payment_order_id={payment_order_id}", self.sim_url);
        let body: Value = self.http.get(url).send().await.expect("sim captures").json().await.expect("json");
        body["captures"].as_array().cloned().unwrap_or_default()
    }

    /// Makes the simulator forget every idempotency key now, as a real PSP does after its
    /// key lifetime (Stripe 24 h, Toss 15 days): a resend then executes anew.
    pub async fn expire_psp_keys(&self) {
        let resp = self
            .http
            .post(format!("{}/_sim/idempotency/expire", self.sim_url))
            .send()
            .await
            .expect("POST /_sim/idempotency/expire");
        assert!(resp.status().is_success(), "expire keys: {}", resp.status());
    }

    /// A Temporal client on the stack's server (directly, not through any proxy).
    pub async fn temporal(&self) -> temporalio_client::Client {
        payments_worker::temporal::connect(&self.temporal_address, "default").await.expect("temporal")
    }

    /// Deletes a workflow's execution and history, as namespace retention does after its
    /// period; waits until Temporal no longer knows it. (The server deletes asynchronously; the
    /// dev server takes up to about half a minute. The request is repeated until the execution
    /// is gone.)
    pub async fn delete_workflow(&self, workflow_id: &str) {
        use temporalio_client::tonic::IntoRequest;
        use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
        use temporalio_common::protos::temporal::api::workflowservice::v1::DeleteWorkflowExecutionRequest;
        let client = self.temporal().await;
        let handle = client.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(workflow_id.to_owned());
        poll_until(&format!("{workflow_id} to be deleted"), Duration::from_secs(90), || async {
            let request = DeleteWorkflowExecutionRequest {
                namespace: "default".to_owned(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: workflow_id.to_owned(),
                    run_id: String::new(),
                }),
            };
            let _ = client.connection().workflow_service().delete_workflow_execution(request.into_request()).await;
            // Describe reads the execution itself (visibility lags behind it).
            for _ in 0..10 {
                if handle.describe(Default::default()).await.is_err() {
                    return Some(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        })
        .await;
    }

    /// Whether Temporal has an execution with this id (describe reads the execution itself,
    /// not the lagging visibility index).
    pub async fn workflow_exists(&self, workflow_id: &str) -> bool {
        let client = self.temporal().await;
        let handle = client.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(workflow_id.to_owned());
        handle.describe(Default::default()).await.is_ok()
    }

    /// Terminates a running workflow (as an operator might by mistake).
    pub async fn terminate_workflow(&self, workflow_id: &str) {
        let client = self.temporal().await;
        let handle = client.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(workflow_id.to_owned());
        handle.terminate(Default::default()).await.expect("terminate workflow");
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
        let lock = poll_until("the SQLite write lock", Duration::from_secs(30), || async {
            let mut conn = self.store.pool().acquire().await.ok()?;
            sqlx::query("BEGIN EXCLUSIVE").execute(&mut *conn).await.ok()?;
            Some(conn)
        })
        .await;
        DatabaseOutage { lock: Some(lock) }
    }

    /// How many workflow executions (any status) Temporal has with this id.
    pub async fn workflow_count(&self, workflow_id: &str) -> usize {
        let client = payments_worker::temporal::connect(&self.temporal_address, "default").await.expect("temporal");
        client
            .count_workflows(format!("WorkflowId = '{workflow_id}'"), Default::default())
            .await
            .expect("count workflows")
            .count()
    }

    /// Stops everything and waits for it: the worker first, while the simulator still
    /// answers. (A worker's shutdown waits for its in-flight local activities; with the PSP
    /// already gone, a charge that had just started would retry against a closed port for
    /// minutes before the worker could stop.)
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.worker_stop.take() {
            let _ = tx.send(());
        }
        if let Some(worker) = self.worker_thread.take() {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        for tx in self.stops.drain(..) {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        self.store.close().await;
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
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
