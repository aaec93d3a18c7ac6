//! Shared harness: a simulator on an ephemeral port and a small HTTP client.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use psp_simulator::SimConfig;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A valid test-mode secret key.
pub const API_KEY: &str = "sk_test_simulatorkey0000001234";
/// A valid Toss test secret key.
pub const TOSS_SECRET_KEY: &str = "test_sk_simulatorkey0000001234";

/// `Authorization` header value for `TOSS_SECRET_KEY`.
pub fn toss_auth() -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{TOSS_SECRET_KEY}:"));
    format!("Basic {encoded}")
}

/// A running simulator; shut down when dropped.
pub struct Sim {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sim {
    /// Starts a simulator with default configuration.
    pub async fn start() -> Self {
        Self::start_with(SimConfig::new()).await
    }

    /// Starts a simulator with `config` on `127.0.0.1:0`.
    pub async fn start_with(config: SimConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(psp_simulator::run(listener, config, async {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server result");
        }
    }

    /// Form-encoded POST with the test key and an optional idempotency key.
    pub async fn post(&self, path: &str, form: &str, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_KEY)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("POST")
    }

    /// GET with the test key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).bearer_auth(API_KEY).send().await.expect("GET")
    }

    /// `GET /_sim/captures`, optionally filtered, as a list.
    pub async fn captures(&self, payment_order_id: Option<&str>) -> Vec<Value> {
        let path = match payment_order_id {
            Some(id) => format!("/_sim/captures?payment_order_id={id}"),
            None => "/_sim/captures".to_owned(),
        };
        let body = json(self.get(&path).await).await;
        body["captures"].as_array().cloned().expect("captures array")
    }

    /// `GET /_sim/stats`.
    pub async fn stats(&self) -> Value {
        json(self.get("/_sim/stats").await).await
    }

    /// `GET /_sim/refunds`, optionally filtered, as a list.
    pub async fn refunds(&self, payment_order_id: Option<&str>) -> Vec<Value> {
        let path = match payment_order_id {
            Some(id) => format!("/_sim/refunds?payment_order_id={id}"),
            None => "/_sim/refunds".to_owned(),
        };
        let body = json(self.get(&path).await).await;
        body["refunds"].as_array().cloned().expect("refunds array")
    }

    /// `GET /_sim/requests?idempotency_key=K` as a list.
    pub async fn requests(&self, idempotency_key: &str) -> Vec<Value> {
        let body = json(self.get(&format!("/_sim/requests?idempotency_key={idempotency_key}")).await).await;
        body["requests"].as_array().cloned().expect("requests array")
    }

    /// The `outcome` of every logged request with `idempotency_key`.
    pub async fn outcomes(&self, idempotency_key: &str) -> Vec<String> {
        self.requests(idempotency_key)
            .await
            .iter()
            .map(|request| request["outcome"].as_str().expect("outcome").to_owned())
            .collect()
    }

    /// JSON POST to the Toss API with the test key and an optional
    /// idempotency key.
    pub async fn toss_post(&self, path: &str, body: &Value, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut request =
            self.client.post(format!("{}{path}", self.base)).header("Authorization", toss_auth()).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("Toss POST")
    }

    /// GET on the Toss API with the test key.
    pub async fn toss_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("Authorization", toss_auth())
            .send()
            .await
            .expect("Toss GET")
    }

    /// POSTs `body` with `headers` on a fresh connection and answers every
    /// byte received until the server closed it: nothing at all when the
    /// response was lost (a client library would only report an error).
    pub async fn raw_post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut socket =
            tokio::net::TcpStream::connect(self.base.trim_start_matches("http://")).await.expect("connect");
        socket.write_all(request.as_bytes()).await.expect("send");
        let mut received = Vec::new();
        // Bounded like every wait here; generous, as it only bounds a hang.
        let timeout = Duration::from_secs(POLL_DEADLINE_SECS);
        // EOF or a reset both end the exchange; only the bytes matter.
        let read = tokio::time::timeout(timeout, socket.read_to_end(&mut received)).await;
        assert!(read.is_ok(), "the server neither answered nor closed the connection");
        received
    }

    /// JSON POST to an admin endpoint (no authentication).
    pub async fn post_admin(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.base)).json(body).send().await.expect("admin POST")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Bound on waiting for an eventual state in [`poll`]. Generous on purpose:
/// the machines running these tests are small and busy, and a state that
/// never comes fails just the same, only later.
pub const POLL_DEADLINE_SECS: u64 = 30;
/// Pause between two probes of [`poll`].
const POLL_INTERVAL_MS: u64 = 20;

/// Runs `probe` until it answers `Some`, and answers that value. Panics
/// naming `what` if [`POLL_DEADLINE_SECS`] pass first. This is how a test
/// waits for background work (webhooks, timers, a lagging index): never a
/// fixed sleep that hopes the state has arrived.
pub async fn poll<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(POLL_DEADLINE_SECS);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up after {POLL_DEADLINE_SECS} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

/// The response body as JSON.
pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

/// A create body that confirms immediately with `payment_method`.
pub fn confirmed_body(payment_method: &str, payment_order_id: &str) -> String {
    format!(
        "amount=15000&currency=krw&confirm=true&payment_method={payment_method}\
         &metadata%5Bpayment_order_id%5D={payment_order_id}"
    )
}

/// A client that does not follow redirects, to read `Location` headers the
/// way a test of the payment window needs.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("browser client")
}

/// A webhook endpoint on an ephemeral port that accepts everything and
/// keeps the JSON bodies.
pub struct Sink {
    pub url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Sink {
    /// Starts the endpoint (`POST /hook`).
    pub async fn start() -> Self {
        use axum::extract::State;
        type Bodies = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;
        async fn receive(State(bodies): State<Bodies>, body: axum::body::Bytes) {
            if let Ok(value) = serde_json::from_slice(&body) {
                bodies.lock().expect("sink lock").push(value);
            }
        }
        let bodies = Bodies::default();
        let app =
            axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(std::sync::Arc::clone(&bodies));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let url = format!("http://{}/hook", listener.local_addr().expect("sink addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, bodies }
    }

    /// Waits (bounded by [`poll`]) for a body matching `wanted`.
    pub async fn wait_for(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        poll("a matching webhook at the sink", async || {
            self.bodies.lock().expect("sink lock").iter().find(|body| wanted(body)).cloned()
        })
        .await
    }
}

/// Seconds in a day.
pub const DAY_SECS: u64 = 86_400;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's
/// days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * mp + 2) / 5 + day - 1;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of `days` since 1970-01-01 (civil_from_days).
fn civil(days: i64) -> String {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The UTC calendar date of `unix_secs`, `YYYY-MM-DD`.
pub fn utc_date(unix_secs: u64) -> String {
    civil(i64::try_from(unix_secs / DAY_SECS).expect("a sane time"))
}

/// `date` (`YYYY-MM-DD`) plus `days`.
pub fn date_plus(date: &str, days: i64) -> String {
    let part = |range: std::ops::Range<usize>| date[range].parse::<i64>().expect("YYYY-MM-DD");
    civil(days_from_civil(part(0..4), part(5..7), part(8..10)) + days)
}

/// Rows of the settlement CSV of `psp` for `day`, header excluded, each
/// split into its fields (the simulator's values hold no commas).
pub async fn csv_rows(sim: &Sim, psp: &str, day: &str) -> Vec<Vec<String>> {
    let response = sim.get(&format!("/_sim/settlements/{psp}/{day}.csv")).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{psp} {day}");
    let text = response.text().await.expect("CSV text");
    text.lines().skip(1).map(|line| line.split(',').map(str::to_owned).collect()).collect()
}
