//! One module per command. Each has its clap arguments and an async `run`.

pub mod bench;
pub mod bench_payouts;
pub mod bench_recon;
pub mod checkout;
pub mod db;
pub mod demo;
pub mod dlq;
pub mod fees;
pub mod keys;
pub mod payment;
pub mod payouts;
pub mod recon;
pub mod recon_view;
pub mod refund;
pub mod review;
pub mod verify;
pub mod wallet;

use rand::Rng;
use rand::distr::Alphanumeric;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// `len` random ASCII letters and digits, lowercased (ids stay readable in the UI).
pub(crate) fn random_alnum(len: usize) -> String {
    rand::rng().sample_iter(Alphanumeric).take(len).map(|b| char::from(b).to_ascii_lowercase()).collect()
}

/// Prints `value` as indented JSON on stdout.
pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Rows under a header, each column as wide as its widest cell, two spaces between columns, no
/// trailing blanks (the tables of `dlq list` and `recon breaks`).
pub(crate) fn text_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(str::to_owned);
    let mut widths = [0usize; N];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `text` cut to `max` characters, marked with "..." when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...")
}
