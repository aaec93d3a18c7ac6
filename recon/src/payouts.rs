//! Payout statements: what a payout provider (Toss payouts v2 `GET /v2/payouts`, Stripe Connect
//! `GET /v1/payouts` of each connected account) lists, as settlement lines, and the matching of
//! one payout against ours. Pure, like [`crate::matching`].
//!
//! A provider's payout object changes status over time (Toss `IN_PROGRESS` -> `COMPLETED` ->
//! `FAILED`; Stripe `pending` -> `paid` -> `failed`), while a stored line never changes. So a
//! payout is two movements: the payout itself (kind `payout`, its provider id, amount
//! negative), and, once the provider reports it failed, returned or canceled, its return (kind
//! `payout_return`, Stripe's `failure_balance_transaction` or `{id}:return`, amount positive).
//! A statement fetched again later adds the return as a new line; the payout line is a copy.
//!
//! Rules, for one payout (our reference, every line of it, our payout row):
//! - no row of ours: `payout_missing_in_books` (class 3);
//! - amount or currency not ours: `payout_amount_mismatch` (class 2);
//! - came back at the provider while ours is still out (reserved, requested, in transit, paid):
//!   `payout_returned` (class 1: the payout's workflow is told, and books it back);
//! - came back after we settled it, or paid while we booked it back:
//!   `payout_status_mismatch` (class 2);
//! - otherwise matched. A payout still on its way at the provider while ours is further along
//!   (or the reverse) is not a break: the payout's workflow asks the provider itself.
//!
//! What we sent and the provider never lists is found by the store (`payout_missing_at_provider`).

use crate::breaks::BreakKind;
use crate::line::{Day, LineKind, SettlementLine};
use crate::matching::{Finding, PaymentVerdict};
use serde::{Deserialize, Serialize};

/// How many days back a payout statement reaches: a payout can come back up to 5 business
/// days after it was paid (Stripe), so a run re-reads the payouts of the last 10 calendar days
/// and sees each return while its payout is in the statement.
pub const PAYOUT_LOOKBACK_DAYS: i64 = 10;

/// Where a payout stands at its provider, as a statement lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatementStatus {
    /// Requested, on its way or paid: the money left the platform's balance.
    Out,
    /// Failed, or returned by the bank after it was paid: the money is back.
    Failed,
    /// Canceled before it was sent: the money is back.
    Canceled,
}

/// One payout of a provider's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementPayout {
    /// The provider's id (Toss payout id, Stripe `po_...`).
    pub provider_payout_id: String,
    /// Our reference (Toss `refPayoutId`, Stripe `metadata[payout_reference]`): the payout id.
    pub reference: String,
    /// Positive minor units.
    pub amount_minor: i64,
    /// Upper-case ISO code.
    pub currency: String,
    /// Where it stands.
    pub status: StatementStatus,
    /// The provider's id of the return's movement, when it gives one (Stripe
    /// `failure_balance_transaction`).
    pub return_id: Option<String>,
    /// The provider's day of the payout (Toss `payoutDate`; Stripe `created`, UTC).
    pub day: Day,
    /// The item exactly as the provider listed it.
    pub raw: String,
}

/// A statement's payouts as lines, numbered from 1 in order (a payout, then its return).
pub fn payout_lines(items: &[StatementPayout]) -> Vec<SettlementLine> {
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let line = |kind: LineKind, transaction_id: String, amount_minor: i64, line_no: usize| SettlementLine {
            line_no: u32::try_from(line_no).unwrap_or(u32::MAX),
            kind,
            transaction_id,
            payment_reference: None,
            order_id: Some(item.reference.clone()),
            refund_reference: None,
            amount_minor,
            fee_minor: 0,
            net_minor: amount_minor,
            currency: item.currency.clone(),
            sold_date: item.day,
            paid_out_date: None,
            raw: item.raw.clone(),
        };
        lines.push(line(LineKind::Payout, item.provider_payout_id.clone(), -item.amount_minor, lines.len() + 1));
        if item.status != StatementStatus::Out {
            let id = item.return_id.clone().unwrap_or_else(|| format!("{}:return", item.provider_payout_id));
            lines.push(line(LineKind::PayoutReturn, id, item.amount_minor, lines.len() + 1));
        }
    }
    lines
}

/// One of our payouts as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurPayout {
    /// The payout id (the provider's reference).
    pub payout_id: String,
    /// Positive minor units.
    pub amount_minor: i64,
    /// ISO code.
    pub currency: String,
    /// RESERVED, REQUESTED, IN_TRANSIT, PAID, SETTLED, FAILED or CANCELED.
    pub status: String,
}

/// Matches one payout: every line the provider listed for `reference` (all days) against our
/// payout of that id, if we have one.
pub fn match_payout(reference: &str, lines: &[SettlementLine], ours: Option<&OurPayout>) -> PaymentVerdict {
    let mut verdict = PaymentVerdict::default();
    let sent: Vec<&SettlementLine> = lines.iter().filter(|l| l.kind == LineKind::Payout).collect();
    let back: Vec<&SettlementLine> = lines.iter().filter(|l| l.kind == LineKind::PayoutReturn).collect();
    let Some(first) = sent.first().or(back.first()) else { return verdict };
    let amount: i64 = if sent.is_empty() {
        back.iter().map(|l| l.amount_minor).sum()
    } else {
        -sent.iter().map(|l| l.amount_minor).sum::<i64>()
    };
    let ids = |of: &[&SettlementLine]| of.iter().map(|l| l.transaction_id.clone()).collect::<Vec<_>>();
    let finding = |kind, transaction_ids, amount_minor, currency: &str, detail| Finding {
        kind,
        subject: reference.to_owned(),
        order_id: Some(reference.to_owned()),
        transaction_ids,
        amount_minor,
        currency: currency.to_owned(),
        detail,
    };
    let all = ids(&lines.iter().collect::<Vec<_>>());
    let Some(ours) = ours else {
        let detail =
            format!("the provider paid out {amount} {} under a reference we have no payout for", first.currency);
        verdict.findings.push(finding(BreakKind::PayoutMissingInBooks, all, amount, &first.currency, detail));
        return verdict;
    };
    if first.currency != ours.currency || amount != ours.amount_minor {
        let detail = format!(
            "the provider paid out {amount} {}, we booked {} {}",
            first.currency, ours.amount_minor, ours.currency
        );
        let difference = if first.currency == ours.currency { amount - ours.amount_minor } else { amount };
        verdict.findings.push(finding(BreakKind::PayoutAmountMismatch, all, difference, &first.currency, detail));
        return verdict;
    }
    let returned = !back.is_empty();
    let ours_back = matches!(ours.status.as_str(), "FAILED" | "CANCELED");
    if returned && !ours_back {
        let (kind, detail) = if ours.status == "SETTLED" {
            (
                BreakKind::PayoutStatusMismatch,
                "the provider reports the payout back after we settled it (its return window had closed)".to_owned(),
            )
        } else {
            (BreakKind::PayoutReturned, format!("the provider reports the payout back; ours is {}", ours.status))
        };
        verdict.findings.push(finding(kind, ids(&back), amount, &ours.currency, detail));
        return verdict;
    }
    if !returned && ours_back {
        let detail = format!("the provider reports the payout out; ours is {}", ours.status);
        verdict.findings.push(finding(BreakKind::PayoutStatusMismatch, all, amount, &ours.currency, detail));
        return verdict;
    }
    verdict.matched = all;
    verdict
}

/// What a return line says happened, read from the provider's item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedPayout {
    /// `FAILED` or `CANCELED`.
    pub status: String,
    /// The provider's payout id (`id`).
    pub provider_payout_id: Option<String>,
    /// Toss `error.code`, Stripe `failure_code`.
    pub failure_code: Option<String>,
    /// Toss `error.message`, Stripe `failure_message`.
    pub failure_message: Option<String>,
}

/// Reads a return line's item (Toss `status` and `error{code,message}`, Stripe `status`,
/// `failure_code`, `failure_message`). `None` when the item says neither failed nor canceled.
pub fn returned_status(raw: &str) -> Option<ReturnedPayout> {
    let item: serde_json::Value = serde_json::from_str(raw).ok()?;
    let status = match item.get("status")?.as_str()?.to_ascii_uppercase().as_str() {
        "FAILED" => "FAILED",
        "CANCELED" | "CANCELLED" => "CANCELED",
        _ => return None,
    };
    let text = |value: Option<&serde_json::Value>| value.and_then(|v| v.as_str()).map(str::to_owned);
    let error = item.get("error");
    Some(ReturnedPayout {
        status: status.to_owned(),
        provider_payout_id: text(item.get("id")),
        failure_code: text(item.get("failure_code")).or_else(|| text(error.and_then(|e| e.get("code")))),
        failure_message: text(item.get("failure_message")).or_else(|| text(error.and_then(|e| e.get("message")))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Day {
        Day::parse("2026-12-01").unwrap()
    }

    fn item(status: StatementStatus, amount: i64) -> StatementPayout {
        let raw = match status {
            StatementStatus::Out => r#"{"id":"FPA_1","status":"COMPLETED"}"#,
            StatementStatus::Failed => {
                r#"{"id":"FPA_1","status":"FAILED","error":{"code":"ACCOUNT_CLOSED","message":"closed"}}"#
            }
            StatementStatus::Canceled => r#"{"id":"FPA_1","status":"CANCELED"}"#,
        };
        StatementPayout {
            provider_payout_id: "FPA_1".into(),
            reference: "payout-s1-KRW-2026-12".into(),
            amount_minor: amount,
            currency: "KRW".into(),
            status,
            return_id: None,
            day: day(),
            raw: raw.into(),
        }
    }

    fn ours(status: &str, amount: i64) -> OurPayout {
        OurPayout {
            payout_id: "payout-s1-KRW-2026-12".into(),
            amount_minor: amount,
            currency: "KRW".into(),
            status: status.into(),
        }
    }

    fn kinds(status: StatementStatus, amount: i64, our: Option<OurPayout>) -> Vec<BreakKind> {
        let lines = payout_lines(&[item(status, amount)]);
        let verdict = match_payout("payout-s1-KRW-2026-12", &lines, our.as_ref());
        assert!(verdict.matched.is_empty() || verdict.findings.is_empty());
        verdict.findings.iter().map(|f| f.kind).collect()
    }

    /// A payout is one line, or two once it came back; the return is keyed apart from it.
    #[test]
    fn statement_lines() {
        let lines = payout_lines(&[item(StatementStatus::Out, 5000), item(StatementStatus::Failed, 7000)]);
        let shape: Vec<(LineKind, &str, i64, u32)> =
            lines.iter().map(|l| (l.kind.clone(), l.transaction_id.as_str(), l.amount_minor, l.line_no)).collect();
        assert_eq!(
            shape,
            vec![
                (LineKind::Payout, "FPA_1", -5000, 1),
                (LineKind::Payout, "FPA_1", -7000, 2),
                (LineKind::PayoutReturn, "FPA_1:return", 7000, 3),
            ]
        );
        assert!(lines.iter().all(|l| l.net_minor == l.amount_minor && l.fee_minor == 0));
        let mut stripe = item(StatementStatus::Failed, 100);
        stripe.return_id = Some("txn_back".into());
        assert_eq!(payout_lines(&[stripe])[1].transaction_id, "txn_back");
    }

    /// Each rule of the module's table.
    #[test]
    fn rules() {
        use BreakKind::*;
        use StatementStatus::*;
        assert_eq!(kinds(Out, 5000, None), vec![PayoutMissingInBooks]);
        assert_eq!(kinds(Out, 5000, Some(ours("PAID", 4000))), vec![PayoutAmountMismatch]);
        assert_eq!(kinds(Failed, 5000, Some(ours("PAID", 5000))), vec![PayoutReturned]);
        assert_eq!(kinds(Canceled, 5000, Some(ours("REQUESTED", 5000))), vec![PayoutReturned]);
        assert_eq!(kinds(Failed, 5000, Some(ours("SETTLED", 5000))), vec![PayoutStatusMismatch]);
        assert_eq!(kinds(Out, 5000, Some(ours("FAILED", 5000))), vec![PayoutStatusMismatch]);
        for (status, our) in
            [(Out, "PAID"), (Out, "SETTLED"), (Out, "IN_TRANSIT"), (Failed, "FAILED"), (Canceled, "CANCELED")]
        {
            assert_eq!(kinds(status, 5000, Some(ours(our, 5000))), vec![], "{status:?} against {our}");
        }
        let mut usd = ours("PAID", 5000);
        usd.currency = "USD".into();
        assert_eq!(kinds(Out, 5000, Some(usd)), vec![PayoutAmountMismatch]);
    }

    /// The amount at stake: the whole payout, or the difference.
    #[test]
    fn amounts_at_stake() {
        let lines = payout_lines(&[item(StatementStatus::Out, 5000)]);
        let found = match_payout("payout-s1-KRW-2026-12", &lines, Some(&ours("PAID", 4000)));
        assert_eq!(found.findings[0].amount_minor, 1000);
        let found = match_payout("payout-s1-KRW-2026-12", &lines, None);
        assert_eq!((found.findings[0].amount_minor, found.findings[0].transaction_ids.len()), (5000, 1));
    }

    /// The return's status and failure from either provider's item.
    #[test]
    fn returns_read_from_the_item() {
        let read = |raw: &str| {
            returned_status(raw).map(|r| (r.status, r.provider_payout_id, r.failure_code, r.failure_message))
        };
        let toss = r#"{"id":"FPA_1","status":"FAILED","error":{"code":"ACCOUNT_CLOSED","message":"closed"}}"#;
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(read(toss), Some(("FAILED".into(), some("FPA_1"), some("ACCOUNT_CLOSED"), some("closed"))));
        let stripe = r#"{"id":"po_1","status":"failed","failure_code":"account_closed","failure_message":"gone"}"#;
        assert_eq!(read(stripe), Some(("FAILED".into(), some("po_1"), some("account_closed"), some("gone"))));
        assert_eq!(read(r#"{"status":"canceled"}"#), Some(("CANCELED".into(), None, None, None)));
        assert_eq!(returned_status(r#"{"status":"paid"}"#), None);
        assert_eq!(returned_status("not json"), None);
    }
}
