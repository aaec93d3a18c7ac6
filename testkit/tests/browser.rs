//! Self-test of the browser harness (`payments_testkit::browser`): a real headless Chromium,
//! through chromedriver, against a tiny axum site on 127.0.0.1. These tests fail (they never
//! skip) when the browser cannot be started: run `scripts/ensure-browser.sh` first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::response::Html;
use axum::routing::{get, post};
use payments_testkit::browser::{Browser, BrowserOptions, WAIT_TIMEOUT_MS};

/// What the site received: `x` from each `/done` visit, `name` from each form post.
#[derive(Default)]
struct Received {
    done: Vec<String>,
    submitted: Vec<String>,
}

type Shared = Arc<Mutex<Received>>;

const INDEX: &str = r#"<!doctype html>
<html><head><title>Browser self-test</title></head>
<body>
  <h1>Self-test</h1>
  <button id="go" onclick="location.href='/done?x=1'">Go</button>
  <form id="form" method="post" action="/submit">
    <input id="name" name="name" type="text">
    <button id="send" type="submit">Send</button>
  </form>
</body></html>"#;

async fn done(State(rx): State<Shared>, Query(mut q): Query<HashMap<String, String>>) -> Html<&'static str> {
    rx.lock().unwrap().done.push(q.remove("x").unwrap_or_default());
    Html(
        r#"<!doctype html><html><head><title>Done</title></head>
<body><p id="result">done</p></body></html>"#,
    )
}

async fn submit(State(rx): State<Shared>, Form(mut form): Form<HashMap<String, String>>) -> Html<String> {
    let name = form.remove("name").unwrap_or_default();
    let reply = format!(
        r#"<!doctype html><html><head><title>Submitted</title></head>
<body><p id="thanks">thanks, {}</p></body></html>"#,
        name.replace('&', "&amp;").replace('<', "&lt;")
    );
    rx.lock().unwrap().submitted.push(name);
    Html(reply)
}

/// Serves the site on 127.0.0.1:0; returns its base URL and what it receives.
async fn serve() -> (String, Shared) {
    let received = Shared::default();
    let app = axum::Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/done", get(done))
        .route("/submit", post(submit))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

fn wait() -> Duration {
    Duration::from_millis(WAIT_TIMEOUT_MS)
}

/// The whole surface works against a real Chromium: navigating and reading the title, clicking
/// a button whose script navigates, waiting for the new URL and reading an element's text,
/// typing into a form and submitting it (the server receives the value), reading the page
/// source, taking a PNG screenshot, and quitting (which stops chromedriver and removes its
/// files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_a_real_page() -> anyhow::Result<()> {
    let (site, received) = serve().await;
    let browser = Browser::start().await?;

    browser.goto(&format!("{site}/")).await?;
    assert_eq!(browser.title().await?, "Browser self-test");
    browser.wait_for("#go", wait()).await?;

    browser.click("#go").await?;
    let url = browser.wait_for_url(|u| u.contains("/done"), wait()).await?;
    assert_eq!(url, format!("{site}/done?x=1"));
    assert_eq!(browser.current_url().await?, url);
    assert_eq!(browser.text("#result").await?, "done");
    assert_eq!(received.lock().unwrap().done, vec!["1".to_owned()]);

    browser.goto(&format!("{site}/")).await?;
    browser.type_into("#name", "Ada <Lovelace>").await?;
    browser.click("#send").await?;
    browser.wait_for_url(|u| u.ends_with("/submit"), wait()).await?;
    browser.wait_for_text("thanks, Ada &lt;Lovelace&gt;", wait()).await?;
    assert_eq!(browser.text("#thanks").await?, "thanks, Ada <Lovelace>");
    assert_eq!(received.lock().unwrap().submitted, vec!["Ada <Lovelace>".to_owned()]);
    assert!(browser.page_source().await?.contains(r#"id="thanks""#));

    let png = browser.screenshot_png().await?;
    assert!(
        png.len() > 100 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {} bytes starting {:?}",
        png.len(),
        &png[..png.len().min(8)]
    );

    let dir = browser.dir().to_owned();
    let driver = browser.driver_url().to_owned();
    browser.quit().await?;
    assert!(!dir.exists(), "{} left behind after quit", dir.display());
    assert!(
        reqwest::get(format!("{driver}/status")).await.is_err(),
        "chromedriver at {driver} still answers after quit"
    );
    Ok(())
}

/// Waits are bounded and their errors name what was awaited (selector, needle, URL); a
/// missing element fails `find`/`click` at once; and dropping a `Browser` without `quit`
/// still stops chromedriver and removes the profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_bounded_and_named_and_drop_cleans_up() -> anyhow::Result<()> {
    let (site, _received) = serve().await;
    let browser = Browser::start().await?;
    browser.goto(&format!("{site}/")).await?;

    let short = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = browser.wait_for("#missing", short).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("#missing") && msg.contains(&site), "{msg}");
    let err = browser.wait_for_text("no such text", short).await.unwrap_err();
    assert!(format!("{err:#}").contains("no such text"), "{err:#}");
    let err = browser.wait_for_url(|u| u.contains("/never"), short).await.unwrap_err();
    assert!(format!("{err:#}").contains(&site), "{err:#}");
    assert!(started.elapsed() < Duration::from_secs(10), "three 300 ms waits took {:?}", started.elapsed());

    let err = browser.click("#missing").await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("click(\"#missing\")") && msg.contains("no such element"), "{msg}");

    let dir = browser.dir().to_owned();
    let driver = browser.driver_url().to_owned();
    drop(browser);
    assert!(!dir.exists(), "{} left behind after drop", dir.display());
    assert!(
        reqwest::get(format!("{driver}/status")).await.is_err(),
        "chromedriver at {driver} still answers after drop"
    );
    Ok(())
}

/// Starting fails with an error naming the missing binary and the way to install it, rather
/// than hanging or skipping.
#[tokio::test]
async fn start_fails_clearly_without_the_browser() {
    let options = BrowserOptions { chromium: "/nonexistent/chromium".into(), ..BrowserOptions::from_env() };
    let err = Browser::start_with(options).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("/nonexistent/chromium") && msg.contains("ensure-browser.sh"), "{msg}");
}
