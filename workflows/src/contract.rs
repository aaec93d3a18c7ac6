//! Activity contracts: one marker type per activity with its stable name and its input and
//! output types. The `activities` crate implements each with
//! `#[activity(definition = payments_workflows::contract::X)]`, which checks at compile time
//! that the implementation's types match. Names are explicit and versioned by hand: renaming a
//! Rust item never changes what running workflow histories refer to.

use payments_domain::{BuyerId, CheckoutId, Money, PaymentOrderId, PaymentOrderStatus, SellerAccount};
use serde::{Deserialize, Serialize};

macro_rules! activity_contract {
    ($(#[$doc:meta])* $marker:ident, $name:literal, $input:ty => $output:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $marker;

        impl ::temporalio_common::ActivityDefinition for $marker {
            type Input = $input;
            type Output = $output;
            fn name(&self) -> &str {
                $name
            }
        }
    };
}
pub(crate) use activity_contract;

activity_contract!(
    /// Rules-based risk check of a whole checkout (amount limits, blocklists).
    AssessRisk, "risk.assess", RiskInput => RiskDecision
);
activity_contract!(
    /// Charge one payment order at the PSP, `payment_order_id` as the idempotency key.
    ChargeOrder, "psp.charge", ChargeInput => ChargeOutcome
);
activity_contract!(
    /// Ask the PSP what became of one order's payment (after a lost or late answer).
    LookupPayment, "psp.lookup", LookupInput => PaymentLookup
);
activity_contract!(
    /// Confirm a payment the buyer approved on the PSP's hosted page (Toss confirm).
    ConfirmPayment, "psp.confirm", ConfirmInput => ChargeOutcome
);
activity_contract!(
    /// Cancel a payment still pending at the PSP (deadline passed); answers its final state.
    CancelPending, "psp.cancel_pending", LookupInput => ChargeOutcome
);
activity_contract!(
    /// Ask the PSP whether it made a refund (found by the refund's id, which travels with it):
    /// before an operator's retry or resolve of a refund whose outcome was never learned.
    FindRefund, "psp.find_refund", RefundRequest => RefundLookup
);
activity_contract!(
    /// Read the stored state of every order of a checkout (a resumed checkout decides from it).
    ReadOrders, "order.read_all", CheckoutId => Vec<StoredOrder>
);
activity_contract!(
    /// Move a payment order to a new status and append the history row.
    TransitionOrder, "order.transition", StatusChange => PaymentOrderStatus
);
activity_contract!(
    /// Credit the seller's wallet with a captured order, once (`{payment_order_id}:wallet`).
    CreditWallet, "wallet.credit", PaymentOrderId => WalletCredited
);
activity_contract!(
    /// Post the order's pay-in ledger transaction, once (`{payment_order_id}:ledger`).
    PostLedger, "ledger.post_order", PaymentOrderId => bool
);
activity_contract!(
    /// Mark the checkout done when every order is final; answers whether it is.
    CompleteCheckout, "checkout.complete", CheckoutId => bool
);
activity_contract!(
    /// Refund part or all of a captured payment at the PSP, `refund_id` as the idempotency key.
    RefundPayment, "psp.refund", RefundRequest => RefundOutcome
);
activity_contract!(
    /// Register the compensation refund (`{payment_order_id}:reversal`) of a captured order
    /// whose booking failed permanently; reserves the whole refundable amount.
    RequestReversal, "refund.request_reversal", ReversalInput => RefundRequest
);
activity_contract!(
    /// Mark a refund SUCCEEDED and book it in one transaction (ledger reversal, wallet debit; a
    /// reversal also moves its order to REVERSED). Answers the order's status afterwards.
    CompleteRefund, "refund.complete", CompleteRefundInput => PaymentOrderStatus
);
activity_contract!(
    /// Mark a refund FAILED with a code; its amount becomes refundable again.
    FailRefund, "refund.fail", FailRefundInput => ()
);
activity_contract!(
    /// Open (or re-open) a dead letter: a step failed past its retries or unclassified.
    OpenDeadLetter, "dlq.open", DeadLetterOpen => ()
);
activity_contract!(
    /// Close a dead letter: its step succeeded on retry, or an operator resolved it.
    CloseDeadLetter, "dlq.close", DeadLetterClose => ()
);

/// What the risk check looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskInput {
    /// Checkout.
    pub checkout_id: CheckoutId,
    /// Buyer.
    pub buyer_id: BuyerId,
    /// (order, seller, amount) per order.
    pub orders: Vec<RiskOrder>,
}

/// One order as the risk check sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskOrder {
    /// Order id.
    pub payment_order_id: PaymentOrderId,
    /// Seller.
    pub seller_account: SellerAccount,
    /// Amount.
    pub amount: Money,
}

/// The risk check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskDecision {
    /// Go ahead.
    Approve,
    /// Hold the checkout for an operator's decision.
    Review {
        /// Machine-readable rule that fired, e.g. `amount_review`.
        code: String,
        /// Explanation for operators.
        message: String,
    },
    /// Refuse the checkout; no money moves.
    Decline {
        /// Machine-readable rule that fired, e.g. `buyer_blocked`.
        code: String,
        /// Explanation for operators.
        message: String,
    },
}

/// A charge request for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeInput {
    /// The order; also the PSP idempotency key, so a retry never charges twice.
    pub payment_order_id: PaymentOrderId,
    /// Its checkout.
    pub checkout_id: CheckoutId,
    /// The buyer (Toss billing charges name the customer the billing key belongs to).
    pub buyer_id: BuyerId,
    /// Empty: the PSP token is sealed in the database and opened by the activity, so it never
    /// appears in a workflow history. (Histories written before sealing carry it here.)
    pub payment_token: String,
    /// Amount to capture.
    pub amount: Money,
    /// Workflow time (ms since the epoch) at or before the first request sent under this
    /// order's key whose effect is not ruled out. The activity refuses to send once the PSP
    /// may have forgotten that key (a resend would then charge again): the workflow asks the
    /// PSP instead. `None` in histories written before this field.
    #[serde(default)]
    pub first_sent_at_ms: Option<i64>,
}

/// What the PSP did. A decline is an outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeOutcome {
    /// Money captured.
    Captured {
        /// The PSP's payment id.
        psp_reference: String,
    },
    /// The PSP refused the payment.
    Declined {
        /// The PSP's decline code, e.g. `insufficient_funds`.
        code: String,
        /// The PSP's message.
        message: String,
        /// The PSP's payment id, when it created one.
        psp_reference: Option<String>,
    },
    /// Not final yet: the buyer must act (3-D Secure) or the PSP is reviewing the payment.
    /// The PSP reports the final outcome later (webhook) or on a status query.
    Pending {
        /// The PSP's payment id.
        psp_reference: String,
        /// Why it waits.
        reason: PendingReason,
    },
}

/// Why a payment is pending at the PSP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingReason {
    /// The buyer must authenticate (3-D Secure); `url` is where to send them.
    ActionRequired {
        /// Challenge page.
        url: Option<String>,
    },
    /// The PSP is processing or reviewing it.
    Processing,
}

/// A status query for one order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupInput {
    /// The order (the PSP knows it as order id / metadata / idempotency key).
    pub payment_order_id: PaymentOrderId,
    /// The PSP's payment id, when we have it.
    pub psp_reference: Option<String>,
    /// What the payment must be to count as ours: a payment the PSP finds for another order,
    /// amount or currency is [`PaymentLookup::Mismatch`], never a capture. `None` only in
    /// histories written before this field.
    #[serde(default)]
    pub expected: Option<ExpectedPayment>,
    /// See [`ChargeInput::first_sent_at_ms`]: whether re-sending under the key is still safe.
    #[serde(default)]
    pub first_sent_at_ms: Option<i64>,
    /// Workflow time at or after the last request sent under the key: a search that may lag
    /// (Stripe's) counts a miss only once the PSP's indexing delay has passed since then.
    #[serde(default)]
    pub last_sent_at_ms: Option<i64>,
}

/// The payment a lookup must find.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedPayment {
    /// Our id for the payment at the PSP: the payment order id (direct flow; Stripe
    /// `metadata[payment_order_id]`, Toss `orderId`), the checkout id (hosted flow).
    pub psp_order_id: String,
    /// Amount and currency.
    pub amount: Money,
}

/// What the PSP knows about an order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentLookup {
    /// The PSP has no payment for this order, and that answer is final: the charge never
    /// arrived, so charging again with the same idempotency key is safe.
    NotFound,
    /// The PSP's current answer.
    Found(ChargeOutcome),
    /// The PSP found a payment under the reference, but it is not ours (another order id,
    /// amount or currency): never a capture of ours. An operator looks at it.
    Mismatch {
        /// What differs.
        reason: String,
    },
    /// The PSP's search found nothing, but its index may lag behind (Stripe's Search API is
    /// eventually consistent), so that is no proof. `resend_safe`: our key is still alive at
    /// the PSP, so re-sending replays any earlier request instead of charging again.
    NotVisibleYet {
        /// Re-sending under the key is safe now.
        resend_safe: bool,
    },
}

/// A status change request for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The order.
    pub payment_order_id: PaymentOrderId,
    /// Target status.
    pub to: PaymentOrderStatus,
    /// Why, for the history.
    pub reason: String,
    /// The PSP's payment id, when known.
    pub psp_reference: Option<String>,
    /// Failure code, for FAILED.
    pub failure_code: Option<String>,
    /// Failure text, for FAILED.
    pub failure_message: Option<String>,
}

impl StatusChange {
    /// A change with only a reason.
    pub fn new(payment_order_id: PaymentOrderId, to: PaymentOrderStatus, reason: impl Into<String>) -> Self {
        StatusChange {
            payment_order_id,
            to,
            reason: reason.into(),
            psp_reference: None,
            failure_code: None,
            failure_message: None,
        }
    }
}

/// Result of a wallet credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletCredited {
    /// Balance after the credit.
    pub balance: Money,
    /// False when this was a retry of an applied credit.
    pub applied_now: bool,
}

/// A hosted payment to confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmInput {
    /// The checkout: the PSP's order id of its one hosted payment.
    pub checkout_id: CheckoutId,
    /// The PSP's payment id from the redirect.
    pub payment_key: String,
    /// Our amount (the checkout's total), never the redirect's.
    pub amount: Money,
    /// See [`ChargeInput::first_sent_at_ms`].
    #[serde(default)]
    pub first_sent_at_ms: Option<i64>,
}

/// What the PSP knows of a refund we asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundLookup {
    /// The PSP made no refund under this id: sending it (again) cannot refund twice.
    NotFound,
    /// The PSP has it: refunded, or refused.
    Found(RefundOutcome),
}

/// An order as stored, for a checkout that resumes after its earlier workflow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOrder {
    /// The order.
    pub payment_order_id: PaymentOrderId,
    /// Its status.
    pub status: PaymentOrderStatus,
    /// The PSP's payment id, when known.
    pub psp_reference: Option<String>,
    /// Credited to the seller's wallet.
    pub wallet_updated: bool,
    /// Posted to the ledger.
    pub ledger_updated: bool,
    /// When it was first marked EXECUTING (no charge was sent before that), if it was.
    pub executing_since_ms: Option<i64>,
    /// Its failure code, when FAILED.
    pub failure_code: Option<String>,
}

/// A refund (Toss: cancel) of part or all of a captured payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// Business idempotency key of this refund (`{payment_order_id}:refund:{n}`, or
    /// `{payment_order_id}:reversal` for a compensation); the PSP's Idempotency-Key.
    pub refund_id: String,
    /// The order that was charged.
    pub payment_order_id: PaymentOrderId,
    /// The PSP's payment id from the capture.
    pub psp_reference: String,
    /// Amount to give back.
    pub amount: Money,
    /// Why, for the PSP and the buyer's statement.
    pub reason: String,
}

/// What the PSP did with a refund. A refusal is an outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundOutcome {
    /// Money returned (or irrevocably on its way).
    Refunded {
        /// The PSP's refund id (Stripe `re_...`; Toss: the cancel's transaction key).
        psp_refund_reference: String,
    },
    /// Refused (e.g. more than what is left).
    Refused {
        /// The PSP's code.
        code: String,
        /// The PSP's message.
        message: String,
    },
}

/// Compensation of one captured order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalInput {
    /// The order to give back.
    pub payment_order_id: PaymentOrderId,
    /// Why (which step failed), for the refund and the order's history.
    pub reason: String,
}

/// A refund the PSP confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteRefundInput {
    /// The refund.
    pub refund_id: String,
    /// The PSP's refund id.
    pub psp_refund_reference: String,
}

/// A refund that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailRefundInput {
    /// The refund.
    pub refund_id: String,
    /// The PSP's refusal code, or ours (`resolved_by_operator`).
    pub code: String,
}

/// A step that failed past its retries, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterOpen {
    /// `{subject}:{step}`: one dead letter per failing step of one order or refund.
    pub dead_letter_id: String,
    /// The workflow parked on it (retry and resolve go there).
    pub workflow_id: String,
    /// The checkout, when the subject belongs to one.
    pub checkout_id: Option<CheckoutId>,
    /// The payment order or refund concerned.
    pub subject: String,
    /// The activity that failed, e.g. `psp.refund`.
    pub step: String,
    /// Why it is a dead letter (retries exhausted, or the unclassified error's type).
    pub reason: String,
    /// The last error's text.
    pub last_error: String,
    /// Activity attempts spent in this run of the step.
    pub attempts: u32,
}

/// How a dead letter was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterClose {
    /// The dead letter.
    pub dead_letter_id: String,
    /// `None`: its step succeeded when retried. `Some`: an operator resolved it by hand.
    pub resolved: Option<OperatorNote>,
}

/// Who did what, for the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorNote {
    /// Who.
    pub operator: String,
    /// What and why.
    pub reason: String,
}
