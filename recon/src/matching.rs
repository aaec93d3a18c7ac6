//! Matching one PSP payment — every line the PSP reported for it against every order and
//! refund we booked for it — into findings. Pure: the store pages through a day and calls this
//! once per payment, so a day of any size is matched in bounded memory.
//!
//! A payment is what the PSP's payment reference names (Stripe `pi_...`, Toss `paymentKey`):
//! one line may cover several of our orders (the hosted flow's one payment for several
//! sellers), and several lines one order (a capture and its partial refunds). Captures are
//! compared as sums per payment, refunds one by one (by the PSP's refund id when both sides
//! have it, else by amount), fees line by line against the PSP's contract.

use crate::breaks::BreakKind;
use crate::line::{Day, LineKind, SettlementLine};
use payments_domain::Currency;
use serde::{Deserialize, Serialize};

/// Basis points in a whole.
const BPS_WHOLE: i128 = 10_000;

/// What a PSP's contract says it charges per capture; refunds give no fee back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeContract {
    /// Percentage part, in basis points.
    pub bps: u32,
    /// Fixed part per capture, in minor units.
    pub fixed_minor: i64,
    /// Whether the fixed part applies to zero-decimal currencies (KRW, JPY). Stripe's does
    /// not: 30 won is not 30 cents.
    pub fixed_on_zero_decimal: bool,
}

impl FeeContract {
    /// The PSP's fee on a capture of `amount_minor` in `currency`: the percentage rounded half
    /// up to the minor unit (the PSPs' own rounding), plus the fixed part.
    pub fn fee_minor(&self, amount_minor: i64, currency: &str) -> i64 {
        let percentage = (i128::from(amount_minor) * i128::from(self.bps) * 2 + BPS_WHOLE) / (2 * BPS_WHOLE);
        let zero_decimal = Currency::parse(currency).is_ok_and(|c| c.minor_units() == 0);
        let fixed = if zero_decimal && !self.fixed_on_zero_decimal { 0 } else { self.fixed_minor };
        i64::try_from(percentage).unwrap_or(i64::MAX).saturating_add(fixed)
    }
}

/// How strict a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchPolicy {
    /// Days a line may come after what we booked (a capture at 23:59 is sold the next day):
    /// inside it a missing line is timing, not a break.
    pub window_days: i64,
    /// A fee difference up to this share of the amount (basis points)...
    pub fee_tolerance_bps: u32,
    /// ...or up to this many minor units, whichever is larger, is booked without a person.
    pub fee_tolerance_minor: i64,
}

impl MatchPolicy {
    /// The largest fee difference booked automatically on a capture of `amount_minor`.
    pub fn fee_tolerance(&self, amount_minor: i64) -> i64 {
        let share = i128::from(amount_minor.unsigned_abs()) * i128::from(self.fee_tolerance_bps) / BPS_WHOLE;
        i64::try_from(share).unwrap_or(i64::MAX).max(self.fee_tolerance_minor)
    }
}

/// Our order's state as reconciliation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderState {
    /// SUCCESS or REVERSED: we booked the capture (a reversal is a refund on top).
    Captured,
    /// UNKNOWN, EXECUTING or NOT_STARTED: we do not know whether the PSP captured.
    Unconfirmed,
    /// FAILED: we told the buyer it failed.
    Failed,
    /// Captured and booked under another PSP payment: this payment (found by the order id it
    /// carries) is a second capture of the same order.
    CapturedElsewhere,
}

/// One of our orders of the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurOrder {
    /// Payment order id.
    pub order_id: String,
    /// Its state.
    pub state: OrderState,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO code.
    pub currency: String,
}

/// One of our succeeded refunds (reversals included) of the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurRefund {
    /// Refund id.
    pub refund_id: String,
    /// The refunded order.
    pub order_id: String,
    /// Positive minor units.
    pub amount_minor: i64,
    /// ISO code.
    pub currency: String,
    /// The PSP's refund id, if it told us.
    pub psp_reference: Option<String>,
    /// The PSP's settlement day of when it succeeded.
    pub day: Day,
    /// A refund an approved fix made of a capture we never booked (or the PSP's second
    /// capture): it gives back what the PSP took beyond our books.
    pub of_unbooked_capture: bool,
}

/// One break found in a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is (and so its class).
    pub kind: BreakKind,
    /// What it is about, unique per kind: a transaction id, an order id, a refund id or a
    /// payment reference. Kind and subject make the break's fingerprint.
    pub subject: String,
    /// The order concerned, if one is.
    pub order_id: Option<String>,
    /// The PSP's lines concerned.
    pub transaction_ids: Vec<String>,
    /// The amount at stake, minor units (a difference, or the whole line).
    pub amount_minor: i64,
    /// Its currency.
    pub currency: String,
    /// One sentence for the operator.
    pub detail: String,
}

/// What matching one payment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentVerdict {
    /// The day's lines that matched our books exactly.
    pub matched: Vec<String>,
    /// The breaks.
    pub findings: Vec<Finding>,
}

/// One payment to match: its key, all its lines (every imported day, each movement once) and
/// our orders and succeeded refunds for it.
#[derive(Debug, Clone, Copy)]
pub struct Payment<'a> {
    /// The payment reference (or, lacking one, the order id the lines carry).
    pub key: &'a str,
    /// The PSP's lines.
    pub lines: &'a [SettlementLine],
    /// Our orders.
    pub orders: &'a [OurOrder],
    /// Our succeeded refunds.
    pub refunds: &'a [OurRefund],
}

/// Matches the lines of `payment` that count for `day`; lines of other days are context (a
/// capture yesterday, its refund today), judged by their own day's run.
pub fn match_payment(payment: Payment<'_>, day: Day, contract: &FeeContract, policy: &MatchPolicy) -> PaymentVerdict {
    let mut verdict = PaymentVerdict::default();
    for line in payment.lines.iter().filter(|l| l.sold_date == day) {
        if let LineKind::Other(name) = &line.kind {
            verdict.findings.push(line_finding(BreakKind::UnexplainedLine, line, format!("a {name:?} line")));
        }
    }
    match_charges(payment, day, contract, policy, &mut verdict);
    let (unmatched_lines, _) = pair_refunds(payment.lines, payment.refunds);
    for line in payment.lines.iter().filter(|l| l.kind == LineKind::Refund && l.sold_date == day) {
        if unmatched_lines.contains(&line.transaction_id.as_str()) {
            let detail = format!("the PSP refunded {} that we have no refund for", -line.amount_minor);
            let mut finding = line_finding(BreakKind::RefundMissingInBooks, line, detail);
            // A refund line may not name the order (Stripe's refund object has no metadata of
            // ours): the payment's order is the one refunded.
            if finding.order_id.is_none() {
                finding.order_id = payment.orders.first().map(|o| o.order_id.clone());
            }
            verdict.findings.push(finding);
        } else {
            verdict.matched.push(line.transaction_id.clone());
        }
    }
    verdict
}

fn match_charges(
    payment: Payment<'_>,
    day: Day,
    contract: &FeeContract,
    policy: &MatchPolicy,
    out: &mut PaymentVerdict,
) {
    let charges: Vec<&SettlementLine> = payment.lines.iter().filter(|l| l.kind == LineKind::Charge).collect();
    let today: Vec<&SettlementLine> = charges.iter().copied().filter(|l| l.sold_date == day).collect();
    if today.is_empty() {
        return;
    }
    let captured: Vec<&OurOrder> = payment.orders.iter().filter(|o| o.state == OrderState::Captured).collect();
    if payment.orders.is_empty() {
        for line in &today {
            let detail = format!("the PSP captured {} {} for a payment we never saw", line.amount_minor, line.currency);
            out.findings.push(line_finding(BreakKind::UnknownPayment, line, detail));
        }
        return;
    }
    let elsewhere: Vec<&OurOrder> =
        payment.orders.iter().filter(|o| o.state == OrderState::CapturedElsewhere).collect();
    if captured.is_empty() && !elsewhere.is_empty() {
        let fixed: i64 = payment.refunds.iter().filter(|r| r.of_unbooked_capture).map(|r| r.amount_minor).sum();
        let charged: i64 = charges.iter().map(|l| l.amount_minor).sum();
        if fixed > 0 && fixed == charged {
            out.matched.extend(today.iter().map(|l| l.transaction_id.clone()));
            return;
        }
        for line in &today {
            let detail = format!("a second capture of order {} under another PSP payment", elsewhere[0].order_id);
            let mut finding = line_finding(BreakKind::DuplicateCapture, line, detail);
            finding.order_id = Some(elsewhere[0].order_id.clone());
            out.findings.push(finding);
        }
        return;
    }
    if captured.is_empty() {
        // A capture the buyer was told failed, given back in full at the PSP, is settled.
        let charged: i64 = charges.iter().map(|l| l.amount_minor).sum();
        let refunded: i64 = payment.lines.iter().filter(|l| l.kind == LineKind::Refund).map(|l| -l.amount_minor).sum();
        let unconfirmed = payment.orders.iter().any(|o| o.state == OrderState::Unconfirmed);
        if !unconfirmed && refunded == charged {
            out.matched.extend(today.iter().map(|l| l.transaction_id.clone()));
        } else {
            out.findings.push(unbooked_capture(payment, &today));
        }
        return;
    }
    let currency = &captured[0].currency;
    let mut amounts_checked = true;
    for line in today.iter().filter(|l| &l.currency != currency) {
        let detail = format!("the PSP captured in {}, we booked {currency}", line.currency);
        out.findings.push(line_finding(BreakKind::CurrencyMismatch, line, detail));
        amounts_checked = false;
    }
    // A payment whose amounts disagree is a person's case already; its fees are judged once
    // the amounts are right.
    if amounts_checked && compare_amounts(payment, &charges, &captured, day, out) {
        for line in today.iter().filter(|l| &l.currency == currency) {
            check_fee(line, contract, policy, out);
        }
    }
}

/// The PSP captured; we booked no capture for any order of the payment.
fn unbooked_capture(payment: Payment<'_>, today: &[&SettlementLine]) -> Finding {
    let unconfirmed = payment.orders.iter().find(|o| o.state == OrderState::Unconfirmed);
    let order = unconfirmed.unwrap_or(&payment.orders[0]);
    let (kind, detail) = match unconfirmed {
        Some(_) => (BreakKind::CaptureUnconfirmed, "the PSP captured; we never heard back".to_owned()),
        None => (BreakKind::CapturedButFailed, "the PSP captured; we told the buyer the payment failed".to_owned()),
    };
    Finding {
        kind,
        subject: order.order_id.clone(),
        order_id: Some(order.order_id.clone()),
        transaction_ids: today.iter().map(|l| l.transaction_id.clone()).collect(),
        amount_minor: today.iter().map(|l| l.amount_minor).sum(),
        currency: today[0].currency.clone(),
        detail,
    }
}

/// Captures as sums per payment: equal is matched; one line equal to what we booked plus more
/// lines is a duplicate capture; anything else is over or under. Answers whether the amounts
/// agree (a duplicate's kept line counts as agreeing).
fn compare_amounts(
    payment: Payment<'_>,
    charges: &[&SettlementLine],
    captured: &[&OurOrder],
    day: Day,
    out: &mut PaymentVerdict,
) -> bool {
    let expected: i64 = captured.iter().map(|o| o.amount_minor).sum();
    let total: i64 = charges.iter().map(|l| l.amount_minor).sum();
    let currency = captured[0].currency.clone();
    let first_order = Some(captured[0].order_id.clone());
    if total == expected {
        out.matched.extend(charges.iter().filter(|l| l.sold_date == day).map(|l| l.transaction_id.clone()));
        return true;
    }
    // What approved fixes gave back of captures beyond our books.
    let fixed: i64 = payment.refunds.iter().filter(|r| r.of_unbooked_capture).map(|r| r.amount_minor).sum();
    if fixed > 0 && total - fixed == expected {
        out.matched.extend(charges.iter().filter(|l| l.sold_date == day).map(|l| l.transaction_id.clone()));
        return true;
    }
    if let Some(kept) = charges.iter().position(|l| l.amount_minor == expected).filter(|_| charges.len() > 1) {
        for (index, line) in charges.iter().enumerate() {
            if index == kept {
                if line.sold_date == day {
                    out.matched.push(line.transaction_id.clone());
                }
            } else if line.sold_date == day {
                let detail =
                    format!("a second capture of {} {} on a payment we booked once", line.amount_minor, line.currency);
                let mut finding = line_finding(BreakKind::DuplicateCapture, line, detail);
                finding.order_id.clone_from(&first_order);
                out.findings.push(finding);
            }
        }
        return true;
    }
    let (kind, difference) = if total > expected {
        (BreakKind::AmountOver, total - expected)
    } else {
        (BreakKind::AmountUnder, expected - total)
    };
    out.findings.push(Finding {
        kind,
        subject: payment.key.to_owned(),
        order_id: first_order,
        transaction_ids: charges.iter().map(|l| l.transaction_id.clone()).collect(),
        amount_minor: difference,
        currency,
        detail: format!("the PSP captured {total}, we booked {expected}"),
    });
    false
}

fn check_fee(line: &SettlementLine, contract: &FeeContract, policy: &MatchPolicy, out: &mut PaymentVerdict) {
    let expected = contract.fee_minor(line.amount_minor, &line.currency);
    let difference = line.fee_minor - expected;
    if difference == 0 {
        return;
    }
    let kind = if difference.abs() <= policy.fee_tolerance(line.amount_minor) {
        BreakKind::FeeWithinTolerance
    } else {
        BreakKind::FeeMismatch
    };
    let mut finding = line_finding(kind, line, format!("fee {} where the contract says {expected}", line.fee_minor));
    finding.amount_minor = difference;
    out.findings.push(finding);
}

/// Pairs the PSP's refund lines with our refunds: by the PSP's refund id first, then by
/// amount, oldest first. Answers the transaction ids of unpaired lines and the ids of our
/// unpaired refunds.
pub fn pair_refunds<'a>(lines: &'a [SettlementLine], ours: &'a [OurRefund]) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut psp: Vec<&SettlementLine> = lines.iter().filter(|l| l.kind == LineKind::Refund).collect();
    psp.sort_by_key(|l| (l.sold_date, l.line_no));
    let mut open: Vec<&OurRefund> = ours.iter().collect();
    open.sort_by_key(|r| r.day);
    let mut unpaired = Vec::new();
    let mut rest = Vec::new();
    for line in psp {
        let by_id = line
            .refund_reference
            .as_ref()
            .and_then(|id| open.iter().position(|r| r.psp_reference.as_ref() == Some(id)));
        match by_id {
            Some(index) => {
                open.remove(index);
            }
            None => rest.push(line),
        }
    }
    for line in rest {
        match open.iter().position(|r| r.amount_minor == -line.amount_minor && r.currency == line.currency) {
            Some(index) => {
                open.remove(index);
            }
            None => unpaired.push(line.transaction_id.as_str()),
        }
    }
    (unpaired, open.iter().map(|r| r.refund_id.as_str()).collect())
}

fn line_finding(kind: BreakKind, line: &SettlementLine, detail: String) -> Finding {
    Finding {
        kind,
        subject: line.transaction_id.clone(),
        order_id: line.order_id.clone(),
        transaction_ids: vec![line.transaction_id.clone()],
        amount_minor: line.amount_minor,
        currency: line.currency.clone(),
        detail,
    }
}

#[cfg(test)]
mod tests;
