//! How records look on the wire: JSON for REST, messages for gRPC. Amounts are decimal
//! strings in major units; never numbers.

use crate::refunds::RefundView;
use payments_domain::PaymentOrderStatus;
use payments_proto::payments_v1 as pb;
use payments_store::{CheckoutRecord, DeadLetterRecord, OrderRecord};
use serde_json::{Value, json};

/// REST view of an order.
pub fn order_json(o: &OrderRecord) -> Value {
    json!({
        "payment_order_id": o.payment_order_id,
        "checkout_id": o.checkout_id,
        "seller_account": o.seller_account,
        "amount": o.amount.to_decimal_string(),
        "currency": o.amount.currency().code(),
        "status": o.status,
        "wallet_updated": o.wallet_updated,
        "ledger_updated": o.ledger_updated,
        "psp_reference": o.psp_reference,
        "failure_code": o.failure_code,
        "failure_message": o.failure_message,
    })
}

/// REST view of a checkout.
pub fn checkout_json(c: &CheckoutRecord) -> Value {
    json!({
        "checkout_id": c.checkout_id,
        "buyer_id": c.buyer_id,
        "is_payment_done": c.is_payment_done,
        "workflow_id": c.checkout_id.workflow_id(),
        "payment_orders": c.orders.iter().map(order_json).collect::<Vec<_>>(),
    })
}

fn status_pb(s: PaymentOrderStatus) -> pb::PaymentOrderStatus {
    match s {
        PaymentOrderStatus::NotStarted => pb::PaymentOrderStatus::NotStarted,
        PaymentOrderStatus::Executing => pb::PaymentOrderStatus::Executing,
        PaymentOrderStatus::Success => pb::PaymentOrderStatus::Success,
        PaymentOrderStatus::Failed => pb::PaymentOrderStatus::Failed,
        PaymentOrderStatus::Unknown => pb::PaymentOrderStatus::Unknown,
        PaymentOrderStatus::Reversed => pb::PaymentOrderStatus::Reversed,
    }
}

/// gRPC view of an order.
pub fn order_pb(o: &OrderRecord) -> pb::PaymentOrder {
    pb::PaymentOrder {
        payment_order_id: o.payment_order_id.to_string(),
        checkout_id: o.checkout_id.to_string(),
        seller_account: o.seller_account.to_string(),
        amount: o.amount.to_decimal_string(),
        currency: o.amount.currency().code().to_owned(),
        status: status_pb(o.status).into(),
        wallet_updated: o.wallet_updated,
        ledger_updated: o.ledger_updated,
        psp_reference: o.psp_reference.clone().unwrap_or_default(),
        failure_code: o.failure_code.clone().unwrap_or_default(),
        failure_message: o.failure_message.clone().unwrap_or_default(),
    }
}

/// gRPC view of a checkout.
pub fn checkout_pb(c: &CheckoutRecord) -> pb::Checkout {
    pb::Checkout {
        checkout_id: c.checkout_id.to_string(),
        buyer_id: c.buyer_id.to_string(),
        is_payment_done: c.is_payment_done,
        payment_orders: c.orders.iter().map(order_pb).collect(),
        workflow_id: c.checkout_id.workflow_id(),
    }
}

/// REST view of a refund.
pub fn refund_json(v: &RefundView) -> Value {
    let r = &v.record;
    json!({
        "refund_id": r.refund_id,
        "payment_order_id": r.payment_order_id,
        "amount": r.amount.to_decimal_string(),
        "currency": r.amount.currency().code(),
        "reason": r.reason,
        "status": r.status.as_str(),
        "kind": r.kind.as_str(),
        "psp_refund_reference": r.psp_refund_reference,
        "failure_code": r.failure_code,
        "workflow_id": v.workflow_id,
    })
}

/// gRPC view of a refund (absent texts as "").
pub fn refund_pb(v: &RefundView) -> pb::Refund {
    let r = &v.record;
    pb::Refund {
        refund_id: r.refund_id.to_string(),
        payment_order_id: r.payment_order_id.to_string(),
        amount: r.amount.to_decimal_string(),
        currency: r.amount.currency().code().to_owned(),
        reason: r.reason.clone(),
        status: r.status.as_str().to_owned(),
        kind: r.kind.as_str().to_owned(),
        psp_refund_reference: r.psp_refund_reference.clone().unwrap_or_default(),
        failure_code: r.failure_code.clone().unwrap_or_default(),
        workflow_id: v.workflow_id.clone(),
    }
}

/// gRPC view of a dead letter (absent texts as "", times in ms since the epoch).
pub fn dead_letter_pb(d: &DeadLetterRecord) -> pb::DeadLetter {
    pb::DeadLetter {
        dead_letter_id: d.dead_letter_id.clone(),
        workflow_id: d.workflow_id.clone(),
        checkout_id: d.checkout_id.as_ref().map(ToString::to_string).unwrap_or_default(),
        subject: d.subject.clone(),
        step: d.step.clone(),
        reason: d.reason.clone(),
        last_error: d.last_error.clone(),
        attempts: d.attempts,
        status: d.status.as_str().to_owned(),
        resolved_by: d.resolved_by.clone().unwrap_or_default(),
        resolution: d.resolution.clone().unwrap_or_default(),
        created_at_ms: d.created_at_ms,
        updated_at_ms: d.updated_at_ms,
    }
}
