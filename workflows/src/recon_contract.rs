//! The reconciliation activity contracts (issue 13), implemented in
//! `payments_activities::recon::ReconActivities`, and the data the reconciliation workflows,
//! the gateway and the activities exchange. Names are explicit, as in [`crate::contract`].

use crate::contract::{CompleteRefundInput, LookupInput, RefundRequest, activity_contract};
use crate::payout_contract::PayoutReport;
use payments_domain::{CheckoutId, Money, PaymentOrderId};
use payments_recon::{BreakKind, Day, FeeContract, MatchPolicy, Psp};
use serde::{Deserialize, Serialize};
use temporalio_common::search_attributes::SearchAttributeKey;

/// Search attribute with a reconciliation run's settlement day (`YYYY-MM-DD`).
pub const RECON_DATE_ATTRIBUTE: SearchAttributeKey<String> = SearchAttributeKey::keyword("ReconDate");
/// Search attribute with a run's status: `RUNNING`, then `CLEAN` (nothing open), `BREAKS`
/// (breaks waiting for a queue or the program) or `FAILED`.
pub const RECON_STATUS_ATTRIBUTE: SearchAttributeKey<String> = SearchAttributeKey::keyword("ReconStatus");

activity_contract!(
    /// The worker's reconciliation settings for a PSP (recorded in the history, so a run keeps
    /// the settings it started with).
    ReconSettingsFor, "recon.settings", Psp => ReconSettings
);
activity_contract!(
    /// Fetch the PSP's settlement report of a day (its API, paged, or the daily CSV) and store
    /// it; the same content again stores nothing.
    ImportSettlement, "recon.import", ImportInput => ImportSummary
);
activity_contract!(
    /// Match the day against our books, keep the findings as breaks (healing those no longer
    /// found), mark duplicated lines healed, and answer the class-1 fixes to send.
    MatchSettlement, "recon.match", MatchInput => MatchSummary
);
activity_contract!(
    /// Book the day's settlement (clearing to bank and fees) and heal the fee breaks it booked.
    BookSettlement, "recon.settle", SettleInput => SettleSummary
);
activity_contract!(
    /// Record that a fix was sent through the workflows (the break is HEALING until a run no
    /// longer finds it).
    MarkHealing, "recon.healing", HealingMark => ()
);
activity_contract!(
    /// Record the run's state and report (`recon_run`).
    RecordRun, "recon.record", RunRecord => ()
);

/// Where a day's report comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOrigin {
    /// The PSP's API: Toss `GET /v1/settlements`, Stripe `GET /v1/balance_transactions`.
    Api,
    /// The daily CSV file at the PSP's settlement download (`/_sim/settlements/{psp}/{day}.csv`
    /// on the simulator).
    Csv,
    /// Nothing fetched: only reports imported by hand (`paymentsctl recon import`) are matched.
    Imported,
}

/// How a PSP is reconciled: its contract, the matching's tolerances, where reports come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconSettings {
    /// The PSP's fee contract.
    pub contract: FeeContract,
    /// Settlement window and fee tolerance.
    pub policy: MatchPolicy,
    /// Where the day's report comes from.
    pub origin: ReportOrigin,
    /// Attempts of each step before the run fails (and is retried by the next run).
    pub attempts_max: u32,
}

/// Input of [`ImportSettlement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportInput {
    /// Whose report.
    pub psp: Psp,
    /// Which day.
    pub day: Day,
    /// From where.
    pub origin: ReportOrigin,
}

/// What an import stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Lines in the report fetched.
    pub lines_fetched: u64,
    /// Lines stored now (0: the same report was imported before).
    pub lines_stored: u64,
    /// Of those, copies of movements already stored.
    pub repeated: u64,
    /// The report's stored id, if one was fetched.
    pub file_id: Option<i64>,
    /// Lines of the payout provider's statement fetched (payouts and their returns).
    #[serde(default)]
    pub payout_lines_fetched: u64,
    /// Of those, stored now.
    #[serde(default)]
    pub payout_lines_stored: u64,
}

/// Input of [`MatchSettlement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchInput {
    /// Whose day.
    pub psp: Psp,
    /// Which day.
    pub day: Day,
    /// The contract.
    pub contract: FeeContract,
    /// The tolerances.
    pub policy: MatchPolicy,
}

/// Break count of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTotal {
    /// The kind.
    pub kind: BreakKind,
    /// Its class.
    pub class: i64,
    /// How many.
    pub count: u64,
    /// Sum of their amounts, per currency (`USD` -> minor units).
    pub amounts_minor: Vec<(String, i64)>,
}

/// A class-1 fix the workflow sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Heal {
    /// The PSP captured a payment whose order we hold as UNKNOWN: the checkout's janitor is
    /// signalled (`psp_event`) and asks the PSP at once.
    AskJanitor {
        /// The break.
        break_id: i64,
        /// The checkout whose workflow runs the janitor.
        checkout_id: CheckoutId,
        /// The order.
        payment_order_id: PaymentOrderId,
        /// The PSP's payment reference from the line.
        psp_reference: Option<String>,
    },
    /// The payout provider reports a payout back (failed, returned or canceled) that our books
    /// still have out: the payout's workflow is signalled (`payout_event`) with the provider's
    /// report, as its webhook would have, and books it back to the seller.
    PayoutReturned {
        /// The break.
        break_id: i64,
        /// The provider's report, for the payout's workflow (id = the payout id).
        report: PayoutReport,
    },
}

/// What matching found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchSummary {
    /// First copies of lines of the day.
    pub lines: u64,
    /// Lines that matched exactly.
    pub matched: u64,
    /// Our items inside the settlement window without a line yet (timing, not breaks).
    pub in_window: u64,
    /// The breaks found, per kind.
    pub breaks: Vec<KindTotal>,
    /// Breaks found for the first time.
    pub new: u64,
    /// Closed breaks found again.
    pub reopened: u64,
    /// Active breaks of the day no longer found (healed).
    pub healed: u64,
    /// Class-1 breaks healed in the step itself (duplicated lines ignored).
    pub healed_now: u64,
    /// Class-1 fixes to send through the workflows.
    pub heals: Vec<Heal>,
    /// Open breaks of the day after the step, per class (1, 2, 3).
    pub open_by_class: [u64; 3],
    /// Payouts the provider's statement lists (over its lookback) that agree with ours.
    #[serde(default)]
    pub payouts_matched: u64,
    /// Payouts we sent still inside the window without a statement line (timing).
    #[serde(default)]
    pub payouts_in_window: u64,
}

/// Input of [`BookSettlement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleInput {
    /// Whose day.
    pub psp: Psp,
    /// Which day.
    pub day: Day,
    /// The contract.
    pub contract: FeeContract,
}

/// One booked settlement part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledPart {
    /// Its ledger transaction.
    pub ledger_transaction_id: String,
    /// ISO code.
    pub currency: String,
    /// Captures less refunds.
    pub gross_minor: i64,
    /// The PSP's fees.
    pub fee_minor: i64,
    /// The fees its contract sets.
    pub contract_fee_minor: i64,
    /// Paid into the bank.
    pub net_minor: i64,
}

/// What the settlement booked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleSummary {
    /// Parts booked now.
    pub parts: Vec<SettledPart>,
    /// Fee breaks (within tolerance) healed by the booking.
    pub fee_breaks_healed: u64,
}

/// Input of [`MarkHealing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealingMark {
    /// The break.
    pub break_id: i64,
    /// What was sent.
    pub action: String,
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Started.
    Running,
    /// Finished (with or without breaks).
    Completed,
    /// A step failed past its attempts.
    Failed,
}

/// Input of [`RecordRun`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's workflow id (`recon-{psp}-{day}`).
    pub run_id: String,
    /// Whose day.
    pub psp: Psp,
    /// Which day.
    pub day: Day,
    /// Where it stands.
    pub status: RunStatus,
    /// The report, when completed.
    pub report: Option<ReconReport>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A run's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconReport {
    /// The import.
    pub import: ImportSummary,
    /// The matching (its fixes are listed as sent).
    pub matching: MatchSummary,
    /// Class-1 fixes sent through the workflows.
    pub heals_sent: u64,
    /// Fixes that could not be sent (the workflow had finished): left open for a person.
    pub heals_failed: u64,
    /// The settlement booked.
    pub settlement: SettleSummary,
}

/// The task queue a default deployment runs on (`PAYMENTS_TASK_QUEUE`).
pub const DEFAULT_TASK_QUEUE: &str = "checkout";

/// Workflow ids of reconciliation name the deployment when it is not the default one, so
/// deployments (or test stacks) sharing a Temporal namespace on their own task queues never
/// share a run: `base` on the default task queue, `{base}@{task_queue}` on another.
fn scoped(base: String, task_queue: &str) -> String {
    if task_queue == DEFAULT_TASK_QUEUE { base } else { format!("{base}@{task_queue}") }
}

/// The workflow id of the run of `psp`'s `day`: `recon-{psp}-{day}` (see [`scoped`]).
pub fn recon_workflow_id(psp: Psp, day: Day, task_queue: &str) -> String {
    scoped(format!("recon-{psp}-{day}"), task_queue)
}

activity_contract!(
    /// What approving a break's suggested fix does, read from the break and the PSP's lines
    /// (refused unless the break is open, or accepted, and has a suggested fix).
    PlanFix, "recon.fix_plan", FixRequest => FixPlan
);
activity_contract!(
    /// Record a refund the PSP made without us (its dashboard) against the payment's order: a
    /// refund row (idempotent per break) whose completion books it like any refund.
    RecordPspRefund, "recon.record_psp_refund", PspRefundRecord => CompleteRefundInput
);
activity_contract!(
    /// Remember a refund an approved fix made at the PSP of a capture we never booked, so
    /// later runs pair the PSP's refund line with it.
    RecordFixRefund, "recon.record_fix_refund", FixRefund => ()
);

/// An operator's approval of a break's suggested fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixRequest {
    /// The break.
    pub break_id: i64,
    /// Who approved it (the API key's name).
    pub operator: String,
}

/// What an approved fix does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FixPlan {
    /// Book the PSP's refund against one of the payment's orders.
    RecordPspRefund(PspRefundRecord),
    /// Refund a capture we never booked (or booked once while the PSP captured twice), at the
    /// PSP, with the break as the idempotency key.
    RefundCapture {
        /// The refund at the PSP (`refund_id` = `recon-break-{id}`).
        request: RefundRequest,
        /// The PSP that captured.
        psp: Psp,
    },
    /// Ask the PSP about an order it has not reported.
    LookUp(LookupInput),
}

/// Input of [`RecordPspRefund`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PspRefundRecord {
    /// The break.
    pub break_id: i64,
    /// The PSP's payment reference.
    pub payment_reference: String,
    /// What the PSP refunded.
    pub amount: Money,
    /// The PSP's id of the refund (its refund id, or the line's transaction id).
    pub psp_refund_reference: String,
}

/// Input of [`RecordFixRefund`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixRefund {
    /// The break.
    pub break_id: i64,
    /// The PSP.
    pub psp: Psp,
    /// The payment refunded.
    pub payment_reference: String,
    /// How much.
    pub amount: Money,
    /// The PSP's refund id.
    pub psp_refund_reference: String,
}

/// The workflow id of the fix of a break: `recon-fix-{break_id}` (see [`scoped`]).
pub fn recon_fix_workflow_id(break_id: i64, task_queue: &str) -> String {
    scoped(format!("recon-fix-{break_id}"), task_queue)
}
