//! The kinds of break reconciliation finds and the one class each belongs to (seed 002):
//!
//! - **class 1**, a known cause the program fixes itself, through the same workflows and
//!   activities as pay-in, refunds and pay-out (never by editing tables);
//! - **class 2**, a known cause that needs a person: finance's work queue, with the evidence
//!   and a suggested fix an operator can approve;
//! - **class 3**, nothing explains it: the priority queue.
//!
//! The class is a property of the kind, never of the amounts, so a rule reads as one line of
//! [`BreakKind::class`]; where the amount decides (a fee within tolerance or not), the
//! matcher picks between two kinds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who deals with a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BreakClass {
    /// Fixed by the program.
    Auto = 1,
    /// Finance's work queue.
    WorkQueue = 2,
    /// The priority queue.
    Priority = 3,
}

impl BreakClass {
    /// 1, 2 or 3.
    pub fn number(self) -> i64 {
        self as i64
    }
}

/// What a break is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The PSP captured a payment whose order we hold as UNKNOWN (or still executing): the
    /// capture's answer was lost. Class 1: the order's janitor is signalled, looks the payment
    /// up at the PSP and books it.
    CaptureUnconfirmed,
    /// The PSP captured a payment whose order we closed as FAILED: the buyer was told it failed
    /// and was charged. Class 2: suggest refunding the capture.
    CapturedButFailed,
    /// A line for a payment we never saw (no order by reference or order id). Class 3.
    UnknownPayment,
    /// We booked a capture the PSP has not reported by the end of the settlement window.
    /// Class 2: suggest asking the PSP and, if it never captured, reversing the booking.
    MissingAtPsp,
    /// The PSP captured more than we booked for the payment. Class 2.
    AmountOver,
    /// The PSP captured less than we booked for the payment. Class 2.
    AmountUnder,
    /// The line's currency is not the order's. Class 3: no rule turns one currency into another.
    CurrencyMismatch,
    /// The PSP's fee differs from its contract by no more than the tolerance. Class 1: the
    /// settlement books the difference to the PSP-fee adjustment account.
    FeeWithinTolerance,
    /// The PSP's fee differs from its contract by more than the tolerance. Class 2: dispute it
    /// with the PSP, or accept it.
    FeeMismatch,
    /// One movement reported twice (the same transaction id twice in one report). Class 1: the
    /// copy is ignored.
    DuplicateLine,
    /// Two captures of one payment (distinct transaction ids), while we booked one. Class 2:
    /// suggest refunding the extra capture; a person approves it.
    DuplicateCapture,
    /// A refund the PSP made that we have no record of (made in the PSP's dashboard). Class 2:
    /// suggest recording it against the order.
    RefundMissingInBooks,
    /// A refund we booked the PSP has not reported by the end of the window. Class 2.
    RefundMissingAtPsp,
    /// A payout the provider reports as failed, returned or canceled while our books still
    /// have it out (the provider's event was lost). Class 1: the payout's workflow is signalled
    /// with the provider's report and books the amount back to the seller.
    PayoutReturned,
    /// A payout the provider reports that we have no record of. Class 3.
    PayoutMissingInBooks,
    /// A payout whose amount or currency at the provider is not ours. Class 2.
    PayoutAmountMismatch,
    /// A payout whose outcome the provider and our books disagree on where no workflow can
    /// fix it: returned after we settled it (its return window had closed), or paid while we
    /// booked it back. Class 2.
    PayoutStatusMismatch,
    /// A payout we sent (the provider gave us its id) that the provider's statement does not
    /// list by the end of the settlement window. Class 3.
    PayoutMissingAtProvider,
    /// For payments whose PSP lines and our rows agree, the ledger's `psp_clearing` postings
    /// (their pay-ins and refunds) do not equal the lines, so the day's clearing would not net
    /// to zero once settled and no other break explains it. One per day and currency. Class 3.
    ClearingDrift,
    /// A line of a kind no rule covers (a dispute, an adjustment...). Class 3.
    UnexplainedLine,
}

impl BreakKind {
    /// Every kind, in a fixed order (the report lists them so).
    pub const ALL: [BreakKind; 20] = [
        BreakKind::CaptureUnconfirmed,
        BreakKind::CapturedButFailed,
        BreakKind::UnknownPayment,
        BreakKind::MissingAtPsp,
        BreakKind::AmountOver,
        BreakKind::AmountUnder,
        BreakKind::CurrencyMismatch,
        BreakKind::FeeWithinTolerance,
        BreakKind::FeeMismatch,
        BreakKind::DuplicateLine,
        BreakKind::DuplicateCapture,
        BreakKind::RefundMissingInBooks,
        BreakKind::RefundMissingAtPsp,
        BreakKind::PayoutReturned,
        BreakKind::PayoutMissingInBooks,
        BreakKind::PayoutAmountMismatch,
        BreakKind::PayoutStatusMismatch,
        BreakKind::PayoutMissingAtProvider,
        BreakKind::ClearingDrift,
        BreakKind::UnexplainedLine,
    ];

    /// The class rule: exactly one class per kind.
    pub fn class(self) -> BreakClass {
        use BreakKind::*;
        match self {
            CaptureUnconfirmed | FeeWithinTolerance | DuplicateLine | PayoutReturned => BreakClass::Auto,
            CapturedButFailed | MissingAtPsp | AmountOver | AmountUnder | FeeMismatch | DuplicateCapture
            | RefundMissingInBooks | RefundMissingAtPsp | PayoutAmountMismatch | PayoutStatusMismatch => {
                BreakClass::WorkQueue
            }
            UnknownPayment
            | CurrencyMismatch
            | PayoutMissingInBooks
            | PayoutMissingAtProvider
            | ClearingDrift
            | UnexplainedLine => BreakClass::Priority,
        }
    }

    /// What an operator is offered to approve, for the kinds that have a suggested fix.
    pub fn suggested_fix(self) -> Option<SuggestedFix> {
        match self {
            BreakKind::CapturedButFailed | BreakKind::DuplicateCapture => Some(SuggestedFix::RefundCapture),
            BreakKind::RefundMissingInBooks => Some(SuggestedFix::RecordPspRefund),
            BreakKind::MissingAtPsp => Some(SuggestedFix::AskJanitor),
            _ => None,
        }
    }

    /// Stored form (snake case).
    pub fn as_str(self) -> &'static str {
        use BreakKind::*;
        match self {
            CaptureUnconfirmed => "capture_unconfirmed",
            CapturedButFailed => "captured_but_failed",
            UnknownPayment => "unknown_payment",
            MissingAtPsp => "missing_at_psp",
            AmountOver => "amount_over",
            AmountUnder => "amount_under",
            CurrencyMismatch => "currency_mismatch",
            FeeWithinTolerance => "fee_within_tolerance",
            FeeMismatch => "fee_mismatch",
            DuplicateLine => "duplicate_line",
            DuplicateCapture => "duplicate_capture",
            RefundMissingInBooks => "refund_missing_in_books",
            RefundMissingAtPsp => "refund_missing_at_psp",
            PayoutReturned => "payout_returned",
            PayoutMissingInBooks => "payout_missing_in_books",
            PayoutAmountMismatch => "payout_amount_mismatch",
            PayoutStatusMismatch => "payout_status_mismatch",
            PayoutMissingAtProvider => "payout_missing_at_provider",
            ClearingDrift => "clearing_drift",
            UnexplainedLine => "unexplained_line",
        }
    }

    /// Reads the stored form back.
    pub fn parse(text: &str) -> Option<BreakKind> {
        BreakKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fix an operator may approve; approving runs it through the workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestedFix {
    /// Refund the capture the buyer should not have paid (a refund through the PSP).
    RefundCapture,
    /// Record the PSP's refund against the order (the money already went back).
    RecordPspRefund,
    /// Have the order's janitor look the payment up at the PSP again.
    AskJanitor,
}

impl SuggestedFix {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestedFix::RefundCapture => "refund_capture",
            SuggestedFix::RecordPspRefund => "record_psp_refund",
            SuggestedFix::AskJanitor => "ask_janitor",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class table, as the README documents it; a changed rule must change this table.
    #[test]
    fn every_kind_has_its_documented_class() {
        let table = [
            ("capture_unconfirmed", 1),
            ("captured_but_failed", 2),
            ("unknown_payment", 3),
            ("missing_at_psp", 2),
            ("amount_over", 2),
            ("amount_under", 2),
            ("currency_mismatch", 3),
            ("fee_within_tolerance", 1),
            ("fee_mismatch", 2),
            ("duplicate_line", 1),
            ("duplicate_capture", 2),
            ("refund_missing_in_books", 2),
            ("refund_missing_at_psp", 2),
            ("payout_returned", 1),
            ("payout_missing_in_books", 3),
            ("payout_amount_mismatch", 2),
            ("payout_status_mismatch", 2),
            ("payout_missing_at_provider", 3),
            ("clearing_drift", 3),
            ("unexplained_line", 3),
        ];
        assert_eq!(table.len(), BreakKind::ALL.len());
        for (name, class) in table {
            let kind = BreakKind::parse(name).unwrap_or_else(|| panic!("{name} is a kind"));
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.class().number(), class, "{name}");
        }
        // Suggested fixes only where a person decides.
        for kind in BreakKind::ALL {
            if kind.suggested_fix().is_some() {
                assert_eq!(kind.class(), BreakClass::WorkQueue, "{kind}");
            }
        }
    }
}
