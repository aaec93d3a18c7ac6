//! Driving a page: navigation, finding and clicking elements, typing, reading, bounded waits
//! and screenshots. Every wait polls with a bound and names what it waited for.

use super::{Browser, ELEMENT_KEY, POLL_INTERVAL_MS, clip, is_webdriver_error, string};
use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use std::time::{Duration, Instant};

impl Browser {
    /// Navigates to `url` and waits for the page to load (up to [`PAGE_LOAD_TIMEOUT_MS`]).
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("goto({url})"))?;
        Ok(())
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        let v = self.command(reqwest::Method::GET, "/url", None).await.context("current_url()")?;
        string(v).context("current_url()")
    }

    /// The title of the current page.
    pub async fn title(&self) -> anyhow::Result<String> {
        let v = self.command(reqwest::Method::GET, "/title", None).await.context("title()")?;
        string(v).context("title()")
    }

    /// The current DOM, serialized as HTML.
    pub async fn page_source(&self) -> anyhow::Result<String> {
        let v = self.command(reqwest::Method::GET, "/source", None).await.context("page_source()")?;
        string(v).context("page_source()")
    }

    /// The WebDriver id of the first element matching the CSS selector `css`, right now (no
    /// waiting; see [`Browser::wait_for`]).
    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        self.find_once(css).await.with_context(|| format!("find({css:?})"))
    }

    pub(super) async fn find_once(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .command(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css })))
            .await?;
        v[ELEMENT_KEY].as_str().map(str::to_owned).ok_or_else(|| anyhow!("no element reference in {v}"))
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        async {
            let id = self.find_once(css).await?;
            self.command(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await
        }
        .await
        .with_context(|| format!("click({css:?})"))?;
        Ok(())
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        async {
            let id = self.find_once(css).await?;
            string(self.command(reqwest::Method::GET, &format!("/element/{id}/text"), None).await?)
        }
        .await
        .with_context(|| format!("text({css:?})"))
    }

    /// Types `text` into the first element matching `css` (appending to what it holds).
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        async {
            let id = self.find_once(css).await?;
            self.command(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({ "text": text }))).await
        }
        .await
        .with_context(|| format!("type_into({css:?})"))?;
        Ok(())
    }

    /// Waits until an element matches `css`; returns its id. Fails at once on errors other
    /// than "no such element", and after `timeout` with the selector and the current URL.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find_once(css).await {
                Ok(id) => return Ok(id),
                Err(e) if is_webdriver_error(&e, "no such element") => {}
                Err(e) => return Err(e.context(format!("wait_for({css:?})"))),
            }
            if Instant::now() > deadline {
                bail!("wait_for({css:?}): no element after {timeout:?} (page {})", self.describe_page().await);
            }
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
        }
    }

    /// Waits until the page source contains `needle`.
    pub async fn wait_for_text(&self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let source = self.page_source().await.with_context(|| format!("wait_for_text({needle:?})"))?;
            if source.contains(needle) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "wait_for_text({needle:?}): not in the page after {timeout:?} (page {}); \
                     source starts: {}",
                    self.describe_page().await,
                    clip(&source)
                );
            }
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
        }
    }

    /// Waits until the current URL satisfies `pred`; returns it.
    pub async fn wait_for_url(&self, mut pred: impl FnMut(&str) -> bool, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await.context("wait_for_url")?;
            if pred(&url) {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!("wait_for_url: the URL is still {url} after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
        }
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot_png(&self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine as _;
        let v = self.command(reqwest::Method::GET, "/screenshot", None).await.context("screenshot_png()")?;
        let b64 = string(v).context("screenshot_png()")?;
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).context("screenshot_png(): decoding base64")
    }

    /// Ends the session (Chromium closes), then stops chromedriver. Stops chromedriver even
    /// when ending the session fails.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        let result = if self.session_url.is_empty() {
            Ok(())
        } else {
            self.command(reqwest::Method::DELETE, "", None).await.map(drop).context("quit(): deleting the session")
        };
        self.shutdown();
        result
    }

    /// "`<url>` titled `<title>`", for error messages; never fails.
    pub(super) async fn describe_page(&self) -> String {
        let url = self.current_url().await.unwrap_or_else(|e| format!("<{e:#}>"));
        let title = self.title().await.unwrap_or_default();
        format!("{url} titled {title:?}")
    }
}
