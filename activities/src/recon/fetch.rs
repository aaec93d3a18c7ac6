//! Fetching a PSP's settlement report of one day: Stripe's balance transactions (paged with
//! `starting_after`, sources expanded for the payment intent and order id), Toss Payments'
//! settlements (paged with `page` / `size`), or the daily CSV file. Each is spooled to a
//! temporary file as it arrives (the CSV chunk by chunk, an API's items page by page, each page
//! checked as it comes), hashed on the way (an API report: its raw items, in order, one a
//! line), so fetching an unchanged day again is recognised as the same report and a day of any
//! size is never held in memory.

use crate::psp::SecretKey;
use crate::psp::http;
use payments_recon::parse::{parse_stripe_balance_transactions, parse_toss_settlements};
use payments_recon::{Day, LineError, Psp};
use payments_store::{ReportSpool, SpoolFormat, StoreError};
use std::time::Duration;

/// Items per page asked of the PSP (Stripe's maximum; well inside Toss's 5,000).
pub const REPORT_PAGE_SIZE: usize = 100;
/// Most pages one day's report may take (1,000,000 lines at 100 a page).
pub const REPORT_PAGES_MAX: usize = 10_000;

/// Why a report could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A transport fault, 429 or 5xx, or a CSV not published yet (404): worth retrying.
    #[error("{0}")]
    Transient(String),
    /// Our credentials were refused.
    #[error("{0}")]
    Authentication(String),
    /// The report is malformed, or the request was refused as invalid.
    #[error("{0}")]
    Invalid(String),
}

impl From<LineError> for FetchError {
    fn from(e: LineError) -> Self {
        FetchError::Invalid(format!("settlement report: {e}"))
    }
}

impl From<StoreError> for FetchError {
    fn from(e: StoreError) -> Self {
        FetchError::Transient(e.to_string())
    }
}

/// One PSP account's settlement endpoints.
#[derive(Clone)]
pub struct ReportSource {
    psp: Psp,
    http: reqwest::Client,
    base_url: reqwest::Url,
    csv_base_url: reqwest::Url,
    secret_key: SecretKey,
}

/// A fetched report.
pub struct Fetched {
    /// A name for people (the query or file).
    pub name: String,
    /// Its bytes (CSV text, or the raw items one a line), on disk.
    pub spool: ReportSpool,
    /// Its items (an API report; a CSV's lines are counted when it is read).
    pub items: u64,
}

/// Most bytes a daily CSV may have (1,000,000 lines of about 200 bytes).
pub const CSV_BYTES_MAX: u64 = 256 * 1024 * 1024;

impl ReportSource {
    /// `base_url` is the PSP's API; `csv_base_url` serves `{psp}/{YYYY-MM-DD}.csv`.
    pub fn new(
        psp: Psp,
        base_url: &str,
        csv_base_url: &str,
        secret_key: SecretKey,
        timeout: Duration,
    ) -> Result<Self, String> {
        let http = http::client(timeout).map_err(|e| e.to_string())?;
        let base_url = http::base_url(base_url).map_err(|e| e.to_string())?;
        let csv_base_url = http::base_url(csv_base_url).map_err(|e| e.to_string())?;
        Ok(ReportSource { psp, http, base_url, csv_base_url, secret_key })
    }

    /// Whose reports.
    pub fn psp(&self) -> Psp {
        self.psp
    }

    /// The daily CSV file of `day`.
    pub async fn csv(&self, day: Day) -> Result<Fetched, FetchError> {
        let file = format!("{day}.csv");
        let url = http::url(&self.csv_base_url, &[self.psp.as_str(), &file])
            .map_err(|e| FetchError::Invalid(e.to_string()))?;
        let response =
            self.http.get(url).send().await.map_err(|e| FetchError::Transient(http::transport_error(e).to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(self.refusal(status, &body));
        }
        let mut spool = ReportSpool::new(self.psp, SpoolFormat::Csv)?;
        let mut response = response;
        while let Some(chunk) =
            response.chunk().await.map_err(|e| FetchError::Transient(http::transport_error(e).to_string()))?
        {
            spool.write(&chunk)?;
            if spool.len() > CSV_BYTES_MAX {
                return Err(FetchError::Invalid(format!("{file} is larger than {CSV_BYTES_MAX} bytes")));
            }
        }
        Ok(Fetched { name: format!("{}/{file}", self.psp), spool, items: 0 })
    }

    /// The day's report from the PSP's API, every page.
    pub async fn api(&self, day: Day, mut on_page: impl FnMut(usize)) -> Result<Fetched, FetchError> {
        match self.psp {
            Psp::Stripe => self.stripe(day, &mut on_page).await,
            Psp::Toss => self.toss(day, &mut on_page).await,
        }
    }

    async fn stripe(&self, day: Day, on_page: &mut impl FnMut(usize)) -> Result<Fetched, FetchError> {
        let (from, until) = (Psp::Stripe.day_start_ms(day) / 1_000, Psp::Stripe.day_start_ms(day.plus_days(1)) / 1_000);
        let url = http::url(&self.base_url, &["v1", "balance_transactions"])
            .map_err(|e| FetchError::Invalid(e.to_string()))?;
        let (mut spool, mut items, mut after) =
            (ReportSpool::new(Psp::Stripe, SpoolFormat::ApiItems)?, 0, None::<String>);
        for page in 0..REPORT_PAGES_MAX {
            let mut query = vec![
                ("created[gte]".to_owned(), from.to_string()),
                ("created[lt]".to_owned(), until.to_string()),
                ("limit".to_owned(), REPORT_PAGE_SIZE.to_string()),
                ("expand[]".to_owned(), "data.source".to_owned()),
            ];
            if let Some(after) = &after {
                query.push(("starting_after".to_owned(), after.clone()));
            }
            let request = self.http.get(url.clone()).query(&query).bearer_auth(self.secret_key.expose());
            let body = self.get(request).await?;
            let first = u32::try_from(items + 1).unwrap_or(u32::MAX);
            let parsed = parse_stripe_balance_transactions(&body, first)?;
            for line in &parsed.lines {
                spool.push_item(&line.raw)?;
                items += 1;
            }
            on_page(page + 1);
            match (parsed.has_more, parsed.last_id) {
                (true, Some(last)) => after = Some(last),
                _ => return Ok(Fetched { name: format!("stripe balance_transactions {day}"), spool, items }),
            }
        }
        Err(FetchError::Invalid(format!("more than {REPORT_PAGES_MAX} pages of balance transactions on {day}")))
    }

    async fn toss(&self, day: Day, on_page: &mut impl FnMut(usize)) -> Result<Fetched, FetchError> {
        let url = http::url(&self.base_url, &["v1", "settlements"]).map_err(|e| FetchError::Invalid(e.to_string()))?;
        let (mut spool, mut items) = (ReportSpool::new(Psp::Toss, SpoolFormat::ApiItems)?, 0);
        for page in 1..=REPORT_PAGES_MAX {
            let query = [
                ("startDate", day.to_string()),
                ("endDate", day.to_string()),
                ("dateType", "soldDate".to_owned()),
                ("page", page.to_string()),
                ("size", REPORT_PAGE_SIZE.to_string()),
            ];
            let request = self.http.get(url.clone()).query(&query).basic_auth(self.secret_key.expose(), Some(""));
            let body = self.get(request).await?;
            let first = u32::try_from(items + 1).unwrap_or(u32::MAX);
            let parsed = parse_toss_settlements(&body, first)?;
            let count = parsed.len();
            for line in &parsed {
                spool.push_item(&line.raw)?;
                items += 1;
            }
            on_page(page);
            if count < REPORT_PAGE_SIZE {
                return Ok(Fetched { name: format!("toss settlements {day}"), spool, items });
            }
        }
        Err(FetchError::Invalid(format!("more than {REPORT_PAGES_MAX} pages of settlements on {day}")))
    }

    /// Sends a GET and answers the body of a 200, classifying everything else.
    async fn get(&self, request: reqwest::RequestBuilder) -> Result<String, FetchError> {
        let answer = http::send(request).await.map_err(|e| FetchError::Transient(e.to_string()))?;
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        Err(self.refusal(answer.status, &answer.body))
    }

    /// A non-2xx answer, classified: credentials refused, worth retrying (429, 5xx, a CSV not
    /// published yet), or invalid.
    fn refusal(&self, status: reqwest::StatusCode, body: &str) -> FetchError {
        let message = format!("{} answered {status}", self.psp);
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            FetchError::Authentication(message)
        } else if http::is_transient(status) || status == reqwest::StatusCode::NOT_FOUND {
            FetchError::Transient(message)
        } else {
            FetchError::Invalid(format!("{message}: {}", body.chars().take(200).collect::<String>()))
        }
    }
}
