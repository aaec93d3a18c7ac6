//! How records look on the wire: JSON for REST, messages for gRPC. Amounts are decimal
//! strings in major units; never numbers.

use payments_domain::PaymentOrderStatus;
use payments_proto::payments_v1 as pb;
use payments_store::{CheckoutRecord, OrderRecord};
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
