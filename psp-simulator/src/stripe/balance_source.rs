//! The expanded `source` of a balance transaction
//! (`GET /v1/balance_transactions?expand[]=data.source`), as real Stripe
//! answers it:
//!
//! * a charge line: `{"id": "ch_...", "object": "charge", "amount",
//!   "amount_captured", "currency", "payment_intent": "pi_...",
//!   "metadata": {...}, "status": "succeeded", "created",
//!   "balance_transaction": "txn_..."}` — `metadata` is the charge's (the
//!   intent's at capture: `payment_order_id` when it had one, `{}` when
//!   it had none);
//! * a refund line: `{"id": "re_...", "object": "refund", "amount"
//!   (positive), "currency", "payment_intent", "charge": "ch_...",
//!   "status": "succeeded", "created", "balance_transaction", "metadata":
//!   {...}}` — `metadata` is the refund's own, as given at its creation
//!   (`{}` for a dashboard refund).
//!
//! The source is the PSP's object as the ledger holds it: a settlement
//! break changes the balance transaction, not the charge or refund behind
//! it (a changed amount, currency or day shows as a disagreement between
//! the two, as it would at Stripe). Only a line the ledger does not know
//! (a foreign break) is described from the line itself, its metadata
//! `{"payment_order_id": ...}` if the break gave an order id, else `{}`,
//! and a refund's `charge` null.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::ledger::{Ledger, PAYMENT_ORDER_ID_METADATA_KEY};
use crate::settlement::{Entry, EntryKind};

/// The expanded Charge or Refund behind `entry`.
pub fn expanded_source(ledger: &Ledger, entry: &Entry) -> Value {
    match entry.kind {
        EntryKind::Charge => charge(ledger, entry),
        EntryKind::Refund => refund(ledger, entry),
    }
}

fn charge(ledger: &Ledger, entry: &Entry) -> Value {
    if let Some(charge) = ledger.charges.get(&entry.source) {
        return json!({
            "id": charge.id,
            "object": "charge",
            "amount": charge.amount,
            "amount_captured": charge.amount_captured,
            "currency": charge.currency,
            "payment_intent": charge.payment_intent,
            "metadata": charge.metadata,
            "status": charge.status,
            "created": charge.created,
            "balance_transaction": charge.balance_transaction,
        });
    }
    let metadata: BTreeMap<&str, &str> =
        entry.order_id.iter().map(|order_id| (PAYMENT_ORDER_ID_METADATA_KEY, order_id.as_str())).collect();
    json!({
        "id": entry.source,
        "object": "charge",
        "amount": entry.amount_minor,
        "amount_captured": entry.amount_minor,
        "currency": entry.currency,
        "payment_intent": entry.payment_reference,
        "metadata": metadata,
        "status": "succeeded",
        "created": entry.created,
        "balance_transaction": entry.transaction_id,
    })
}

fn refund(ledger: &Ledger, entry: &Entry) -> Value {
    if let Some(refund) = ledger.stripe_refund(&entry.source) {
        return json!({
            "id": refund.id,
            "object": "refund",
            "amount": refund.amount,
            "currency": refund.currency,
            "payment_intent": refund.payment_intent,
            "charge": refund.charge,
            "status": refund.status,
            "created": refund.created,
            "balance_transaction": refund.balance_transaction,
            "metadata": refund.metadata,
        });
    }
    json!({
        "id": entry.source,
        "object": "refund",
        // Refund objects are positive; their balance transactions negative.
        "amount": entry.amount_minor.checked_neg().unwrap_or(i64::MAX),
        "currency": entry.currency,
        "payment_intent": entry.payment_reference,
        "charge": null,
        "status": "succeeded",
        "created": entry.created,
        "balance_transaction": entry.transaction_id,
        "metadata": {},
    })
}
