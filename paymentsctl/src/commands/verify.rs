//! `paymentsctl verify`: runs the store's consistency checks (every ledger transaction and
//! the whole ledger balance per currency; every seller wallet equals its ledger account; every
//! seller's open payouts equal their payouts-in-transit account) and
//! exits non-zero when anything is off.

use crate::cli::Globals;
use anyhow::{Context, bail};
use clap::Args;
use payments_domain::{Currency, Money};
use payments_store::{Store, VerifyReport, redact_url};

/// The last line printed when everything checks out.
pub const CONSISTENT_LINE: &str = "ledger balanced per currency; every wallet equals its ledger account";

/// Arguments of `verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `minor` units of `currency` in major units (`2500 USD` -> `25.00 USD`); raw minor units
/// when the currency is unknown.
pub fn format_minor(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => Money::from_minor(minor, c).to_string(),
        Err(_) => format!("{minor} minor units of {currency}"),
    }
}

/// The report as text, one finding a line, ending with the verdict.
pub fn render(report: &VerifyReport) -> String {
    let mut out = format!(
        "transactions: {}\nentries: {}\nwallets checked: {}\n",
        report.transactions, report.entries, report.wallets
    );
    if report.orphan_entries != 0 {
        out.push_str(&format!("orphan entries (no sealed transaction): {}\n", report.orphan_entries));
    }
    for i in &report.imbalances {
        let scope = if i.transaction_id == "*" {
            "ledger total".to_owned()
        } else {
            format!("transaction {}", i.transaction_id)
        };
        out.push_str(&format!(
            "imbalance: {scope} {}: debits - credits = {}\n",
            i.currency,
            format_minor(i.difference_minor, &i.currency)
        ));
    }
    for m in &report.wallet_mismatches {
        out.push_str(&format!(
            "wallet mismatch: {} {}: wallet {} != ledger {}\n",
            m.seller_account,
            m.currency,
            format_minor(m.wallet_minor, &m.currency),
            format_minor(m.ledger_minor, &m.currency)
        ));
    }
    for m in &report.payout_mismatches {
        out.push_str(&format!(
            "payout mismatch: {} {}: open payouts {} != in transit {}\n",
            m.seller_account,
            m.currency,
            format_minor(m.payouts_open_minor, &m.currency),
            format_minor(m.ledger_minor, &m.currency)
        ));
    }
    if report.is_consistent() {
        out.push_str(CONSISTENT_LINE);
        out.push('\n');
    }
    out
}

/// Runs `verify`.
pub async fn run(globals: &Globals, args: VerifyArgs) -> anyhow::Result<()> {
    let store = Store::connect(&globals.database_url)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&globals.database_url)))?;
    let report = store.verify().await.context("verifying the ledger")?;
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if !report.is_consistent() {
        bail!(
            "inconsistent: {} imbalance(s), {} wallet mismatch(es), {} payout mismatch(es), {} orphan entr(y/ies)",
            report.imbalances.len(),
            report.wallet_mismatches.len(),
            report.payout_mismatches.len(),
            report.orphan_entries
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use payments_store::{Imbalance, WalletMismatch};

    fn report() -> VerifyReport {
        VerifyReport {
            transactions: 4,
            entries: 8,
            orphan_entries: 0,
            wallets: 2,
            imbalances: vec![],
            wallet_mismatches: vec![],
            payout_mismatches: vec![],
        }
    }

    #[test]
    fn consistent_report_ends_with_the_verdict() {
        let text = render(&report());
        assert!(text.starts_with("transactions: 4\nentries: 8\nwallets checked: 2\n"));
        assert_eq!(text.lines().last(), Some(CONSISTENT_LINE));
    }

    #[test]
    fn findings_are_listed_in_major_units() {
        let mut r = report();
        r.imbalances.push(Imbalance { transaction_id: "*".into(), currency: "USD".into(), difference_minor: -2500 });
        r.wallet_mismatches.push(WalletMismatch {
            seller_account: "seller-bob".into(),
            currency: "KRW".into(),
            wallet_minor: 0,
            ledger_minor: 32000,
        });
        let text = render(&r);
        assert!(text.contains("imbalance: ledger total USD: debits - credits = -25.00 USD"));
        assert!(text.contains("wallet mismatch: seller-bob KRW: wallet 0 KRW != ledger 32000 KRW"));
        assert!(!text.contains(CONSISTENT_LINE));
        assert_eq!(format_minor(5, "XYZ"), "5 minor units of XYZ");
    }
}
