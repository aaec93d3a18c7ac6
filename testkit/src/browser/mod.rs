//! A headless Chromium for browser tests, driven over the W3C WebDriver protocol through
//! `chromedriver` (Debian's `chromium` and `chromium-driver`; `scripts/ensure-browser.sh`
//! installs them).
//!
//! The client is written by hand, on `reqwest` and `serde_json`, which the test kit already
//! uses: the tests need a dozen commands (navigate, find, click, type, read, screenshot), each a
//! single JSON request, while the WebDriver crates bring their own HTTP stacks and dependency
//! trees, and their own waiting and retry policies. Here every wait is a bounded poll and every
//! error names the selector or URL it was about.
//!
//! Process lifetime: `chromedriver` (and the Chromium it starts) run under `sh` in their own
//! process group. The shell holds our end of a pipe on its stdin; when the [`Browser`] is
//! dropped, or the test process exits for any reason, the pipe closes and the shell stops the
//! whole group and removes the browser profile and temp files. Nothing leaks. The chromedriver
//! log is kept when starting fails, and (its path printed) when a test panics with the browser
//! open.
//!
//! Layout: this file (starting chromedriver and Chromium, sessions, the WebDriver transport,
//! shutdown), `page.rs` (driving a page).

mod page;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

/// Environment variable overriding the Chromium binary (default [`DEFAULT_CHROMIUM`]).
pub const CHROMIUM_ENV: &str = "PAYMENTS_TEST_CHROMIUM";
/// Environment variable overriding the chromedriver binary (default [`DEFAULT_CHROMEDRIVER`]).
pub const CHROMEDRIVER_ENV: &str = "PAYMENTS_TEST_CHROMEDRIVER";
/// Debian's `chromium` package.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver` package.
pub const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver may take to listen and report itself ready.
pub const STARTUP_TIMEOUT_MS: u64 = 20_000;
/// How long one `GET /status` probe may take during startup.
pub const STATUS_TIMEOUT_MS: u64 = 2_000;
/// How long creating a session (starting Chromium) may take.
pub const SESSION_TIMEOUT_MS: u64 = 30_000;
/// How long a page may take to load (the session's `pageLoad` timeout).
pub const PAGE_LOAD_TIMEOUT_MS: u64 = 20_000;
/// Upper bound on any single WebDriver request (above [`PAGE_LOAD_TIMEOUT_MS`], so a slow page
/// is reported by chromedriver as a timeout rather than cut off here).
pub const COMMAND_TIMEOUT_MS: u64 = 30_000;
/// A reasonable timeout for the `wait_for*` methods, for tests that have no better bound.
pub const WAIT_TIMEOUT_MS: u64 = 10_000;
/// Pause between attempts while waiting.
pub const POLL_INTERVAL_MS: u64 = 50;
/// How long stopping chromedriver and Chromium may take before the shell is killed.
pub const SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

/// The W3C key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The flags Chromium needs on this kind of machine: headless, no sandbox (root in a
/// container), no GPU, and no background traffic (the network beyond localhost is closed, and
/// without these Chromium keeps retrying it); and a fixed window size, so layouts and
/// screenshots do not depend on defaults.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// What to start: the binaries, and extra Chromium flags.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// The chromedriver binary (its major version must match Chromium's).
    pub chromedriver: PathBuf,
    /// Flags added after [`CHROMIUM_ARGS`] and the fresh `--user-data-dir`.
    pub extra_args: Vec<String>,
}

impl BrowserOptions {
    /// The defaults, with [`CHROMIUM_ENV`] and [`CHROMEDRIVER_ENV`] applied.
    pub fn from_env() -> Self {
        let path = |var: &str, default: &str| {
            std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default))
        };
        BrowserOptions {
            chromium: path(CHROMIUM_ENV, DEFAULT_CHROMIUM),
            chromedriver: path(CHROMEDRIVER_ENV, DEFAULT_CHROMEDRIVER),
            extra_args: Vec::new(),
        }
    }
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self::from_env()
    }
}

/// An error reported by chromedriver: the W3C error code (`no such element`, `timeout`, ...)
/// and its message.
#[derive(Debug, Clone)]
pub struct WebDriverError {
    /// HTTP status of the response.
    pub status: u16,
    /// W3C error code, e.g. `no such element`.
    pub error: String,
    /// chromedriver's message (first line; the session info and stack trace are dropped).
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebDriver error `{}` (HTTP {}): {}", self.error, self.status, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// Whether `err` is WebDriver's `code` (e.g. `no such element`).
fn is_webdriver_error(err: &anyhow::Error, code: &str) -> bool {
    err.downcast_ref::<WebDriverError>().is_some_and(|e| e.error == code)
}

/// One headless Chromium session, with its own chromedriver and its own fresh profile.
///
/// Methods take `&self`; [`Browser::quit`] ends the session cleanly, and dropping the
/// `Browser` without it still stops chromedriver and Chromium.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    driver_url: String,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session_url: String,
    /// `sh`, in its own process group with chromedriver and Chromium; its stdin is our pipe.
    guard: Option<Child>,
    /// Holds `chromedriver.log`, `profile/` and `tmp/`.
    dir: PathBuf,
    /// Keep `dir` (the log) on shutdown: set until the session has started, so a start
    /// error can point at the log.
    keep_log: bool,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("session_url", &self.session_url).field("dir", &self.dir).finish()
    }
}

/// The supervising shell; `$1` is chromedriver, `$2` the browser's directory (holding
/// `chromedriver.log`, `profile/` and `tmp/`, which is chromedriver's and Chromium's `TMPDIR`,
/// `XDG_CONFIG_HOME` and `XDG_CACHE_HOME`, so that nothing is written outside).
///
/// chromedriver picks a free port itself (`--port=0`) and logs it, so no port can be taken in
/// between. `read _` returns when our end of the pipe closes; then the shell terminates its own
/// process group, which holds chromedriver and every Chromium process (Chromium does not leave
/// it), waits (bounded) until no other process is left in the group, and removes the profile
/// and temp files (Chromium stopped by a signal leaves both behind). The shell is started as
/// the leader of a new process group (`process_group(0)`) and checks that before signalling
/// the group (`kill 0`), so it can never signal the test runner's own group.
const SUPERVISOR: &str = r#"
driver=$1; dir=$2
{ TMPDIR="$dir/tmp" XDG_CONFIG_HOME="$dir/tmp" XDG_CACHE_HOME="$dir/tmp" "$driver" --port=0; echo "payments-testkit: chromedriver exited with status $?"; } \
    >"$dir/chromedriver.log" 2>&1 </dev/null &
read _ || true
read -r _ _ _ _ pgid _ </proc/$$/stat
trap '' TERM
if [ "$pgid" = "$$" ]; then kill -TERM 0; else kill -TERM $!; fi
wait
others() {
    for f in /proc/[0-9]*/stat; do
        read -r p _ state _ g _ 2>/dev/null <"$f" || continue
        if [ "$g" = "$$" ] && [ "$p" != "$$" ] && [ "$state" != Z ]; then return 0; fi
    done
    return 1
}
i=0
while others && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
rm -rf "$dir/profile" "$dir/tmp"
"#;

/// What chromedriver logs when the port it picked is taken on the other address family.
const PORT_CLASH: &str = "port not available";

/// Starts of chromedriver tried when its port clashes (see [`Browser::start_with`]).
const PORT_CLASH_ATTEMPTS: u32 = 3;

/// Marker the supervisor writes to the log when chromedriver exits on its own.
const EXITED_MARKER: &str = "payments-testkit: chromedriver exited";

impl Browser {
    /// Starts chromedriver and a headless Chromium session with the binaries from
    /// [`BrowserOptions::from_env`]. Fails (never skips) when either cannot be started.
    pub async fn start() -> anyhow::Result<Browser> {
        Self::start_with(BrowserOptions::from_env()).await
    }

    /// Starts chromedriver and a headless Chromium session with the given options.
    ///
    /// chromedriver given `--port=0` takes a free port on one address family and then exits
    /// when another process holds the same port on the other ("IPv4 port not available"); that
    /// start is retried with a new chromedriver (at most [`PORT_CLASH_ATTEMPTS`] times). Every
    /// other failure is returned at once.
    pub async fn start_with(options: BrowserOptions) -> anyhow::Result<Browser> {
        let mut attempt = 1;
        loop {
            match Self::start_once(&options).await {
                Err(e) if attempt < PORT_CLASH_ATTEMPTS && format!("{e:#}").contains(PORT_CLASH) => attempt += 1,
                other => return other,
            }
        }
    }

    async fn start_once(options: &BrowserOptions) -> anyhow::Result<Browser> {
        for (what, path, var) in
            [("chromedriver", &options.chromedriver, CHROMEDRIVER_ENV), ("Chromium", &options.chromium, CHROMIUM_ENV)]
        {
            if !path.is_file() {
                bail!("{what} not found at {} (run scripts/ensure-browser.sh, or set {var})", path.display());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("payments-browser-")
            .tempdir()
            .context("creating a temp dir for the browser")?
            .keep();
        let profile = dir.join("profile");
        for sub in [&profile, &dir.join("tmp")] {
            std::fs::create_dir(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        let log = dir.join("chromedriver.log");

        use std::os::unix::process::CommandExt as _;
        let guard = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&options.chromedriver)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting `sh` to supervise chromedriver")?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(COMMAND_TIMEOUT_MS))
            .build()
            .context("building the HTTP client")?;
        // From here on, dropping `browser` stops chromedriver.
        let mut browser = Browser {
            http,
            driver_url: String::new(),
            session_url: String::new(),
            guard: Some(guard),
            dir,
            keep_log: true,
        };

        let base =
            browser.wait_driver_ready(&log).await.with_context(|| format!("chromedriver log: {}", log.display()))?;
        let session_id = browser.new_session(&base, options, &profile).await.with_context(|| {
            format!(
                "starting {} through {} (chromedriver log: {})",
                options.chromium.display(),
                options.chromedriver.display(),
                log.display()
            )
        })?;
        browser.session_url = format!("{base}/session/{session_id}");
        browser.driver_url = base;
        browser.keep_log = false;
        Ok(browser)
    }

    /// Waits until chromedriver has logged its port and answers `GET /status` with
    /// `ready: true`; returns its base URL.
    async fn wait_driver_ready(&self, log: &Path) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_millis(STARTUP_TIMEOUT_MS);
        let mut base = None;
        let mut last = String::from("no port in the log yet");
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if base.is_none() {
                base = parse_port(&text).map(|port| format!("http://127.0.0.1:{port}"));
            }
            if let Some(base) = &base {
                match self.status(base).await {
                    Ok(true) => return Ok(base.clone()),
                    Ok(false) => last = format!("{base}/status answers not ready"),
                    Err(e) => last = format!("{base}/status: {e:#}"),
                }
            }
            if text.contains(EXITED_MARKER) {
                bail!("chromedriver exited during startup:\n{}", tail(&text, 20));
            }
            if Instant::now() > deadline {
                bail!("chromedriver not ready after {STARTUP_TIMEOUT_MS} ms ({last}); log:\n{}", tail(&text, 20));
            }
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
        }
    }

    async fn status(&self, base: &str) -> anyhow::Result<bool> {
        let body: Value = self
            .http
            .get(format!("{base}/status"))
            .timeout(Duration::from_millis(STATUS_TIMEOUT_MS))
            .send()
            .await?
            .json()
            .await?;
        Ok(body["value"]["ready"].as_bool().unwrap_or(false))
    }

    async fn new_session(&self, base: &str, options: &BrowserOptions, profile: &Path) -> anyhow::Result<String> {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(options.extra_args.iter().cloned());
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "pageLoad": PAGE_LOAD_TIMEOUT_MS, "implicit": 0 },
                    "goog:chromeOptions": {
                        "binary": options.chromium,
                        "args": args,
                        // Open about:blank at startup, not the new-tab page: without a network
                        // its first load sometimes stalls ~5 s, and chromedriver waits for it
                        // before the first navigation.
                        "prefs": {
                            "session.restore_on_startup": 4,
                            "session.startup_urls": ["about:blank"],
                        },
                    },
                }
            }
        });
        let value = self
            .request(
                reqwest::Method::POST,
                &format!("{base}/session"),
                Some(caps),
                Duration::from_millis(SESSION_TIMEOUT_MS),
            )
            .await?;
        value["sessionId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("POST /session answered without a sessionId: {value}"))
    }

    /// Sends one WebDriver request and returns the response's `value`, or a
    /// [`WebDriverError`].
    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), url).timeout(timeout);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| format!("{method} {url}: reading the response"))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{method} {url}: HTTP {status}, not JSON: {}", clip(&text)))?;
        let value = json.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() || value.get("error").is_some_and(Value::is_string) {
            let message = value["message"].as_str().unwrap_or("");
            return Err(WebDriverError {
                status: status.as_u16(),
                error: value["error"].as_str().unwrap_or("unknown error").to_owned(),
                message: message.lines().next().unwrap_or("").trim().to_owned(),
            }
            .into());
        }
        Ok(value)
    }

    /// A command on this session: `path` is relative to `/session/{id}`.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.session_url);
        self.request(method, &url, body, Duration::from_millis(COMMAND_TIMEOUT_MS)).await
    }

    /// chromedriver's base URL, `http://127.0.0.1:<port>`.
    pub fn driver_url(&self) -> &str {
        &self.driver_url
    }

    /// The directory holding `chromedriver.log` (and, while running, the Chromium profile).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Closes the pipe (the shell stops chromedriver and Chromium and removes the profile) and
    /// waits, bounded, for the shell. Idempotent.
    fn shutdown(&mut self) {
        let Some(mut child) = self.guard.take() else {
            return;
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_TIMEOUT_MS);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        if std::thread::panicking() {
            eprintln!("browser: chromedriver log kept at {}", self.dir.join("chromedriver.log").display());
        } else if !self.keep_log {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The port from chromedriver's "ChromeDriver was started successfully on port N." line.
fn parse_port(log: &str) -> Option<u16> {
    let rest = log.split("started successfully on port ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&p| p != 0)
}

fn string(v: Value) -> anyhow::Result<String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(anyhow!("expected a string, got {}", clip(&other.to_string()))),
    }
}

/// At most 300 characters of `s`, for error messages.
fn clip(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// The last `n` lines of `s`.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_port_from_the_startup_line() {
        let log = "Starting ChromeDriver 156.0 on port 0\nOnly local connections are allowed.\n\
                   ChromeDriver was started successfully on port 40257.\n";
        assert_eq!(parse_port(log), Some(40257));
        assert_eq!(parse_port("Starting ChromeDriver on port 0\n"), None);
    }
}
