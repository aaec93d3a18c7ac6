//! `GET /v1/settlements?startDate=YYYY-MM-DD&endDate=YYYY-MM-DD`: Toss's
//! settlement items (정산 조회) for captures and cancellations whose
//! `soldDate` (or `paidOutDate`, with `dateType=paidOutDate`) falls in the
//! inclusive range, oldest first, paged with `page` (1-based) and `size`.
//!
//! Fees follow `settlement/fees.rs`: one `BASE` fee of 3.2% (VAT included)
//! per capture, split into `supplyAmount` and `vat`; `payOutAmount` is the
//! amount minus the fee. Cancellations are negative with zero fee and carry
//! a `cancel` object.
//!
//! Items are the reported lines (`settlement::reported_entries`), so the
//! configured settlement breaks show here as in the CSV; `supplyAmount`,
//! `vat` and `payOutAmount` follow a changed fee or amount. A line for a
//! payment the ledger does not know (a foreign break) is `approvedAt` its
//! own time.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::TossError;
use super::payment::MID;
use crate::clock::{Date, iso_kst};
use crate::ledger::Psp;
use crate::settlement::{Entry, EntryKind, fees, reported_entries};
use crate::state::SimState;
use crate::stripe::error::{json_bytes, json_response};

/// Items per page when `size` is absent.
const PAGE_SIZE_DEFAULT: usize = 100;
/// Largest accepted `size` (Toss's limit).
const PAGE_SIZE_MAX: usize = 5_000;

/// Validated query.
struct SettlementQuery {
    start: Date,
    end: Date,
    by_paid_out_date: bool,
    page: usize,
    size: usize,
}

fn settlement_query(params: &HashMap<String, String>) -> Result<SettlementQuery, TossError> {
    let date = |name: &str| {
        params
            .get(name)
            .and_then(|value| Date::parse(value))
            .ok_or_else(|| TossError::invalid_request(&format!("{name}는 yyyy-MM-dd 형식이어야 합니다.")))
    };
    let number = |name: &str, default: usize, max: usize| match params.get(name) {
        None => Ok(default),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| TossError::invalid_request(&format!("{name} 값이 올바르지 않습니다."))),
    };
    let by_paid_out_date = match params.get("dateType").map(String::as_str) {
        None | Some("soldDate") => false,
        Some("paidOutDate") => true,
        Some(_) => {
            return Err(TossError::invalid_request("dateType은 soldDate 또는 paidOutDate 입니다."));
        }
    };
    let query = SettlementQuery {
        start: date("startDate")?,
        end: date("endDate")?,
        by_paid_out_date,
        page: number("page", 1, usize::MAX)?,
        size: number("size", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)?,
    };
    if query.start > query.end {
        return Err(TossError::invalid_request("startDate는 endDate보다 늦을 수 없습니다."));
    }
    Ok(query)
}

/// `GET /v1/settlements`
pub async fn list_settlements(
    State(sim): State<Arc<SimState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = match settlement_query(&params) {
        Ok(query) => query,
        Err(error) => return error.into_response(),
    };
    let page: Vec<Entry> = reported_entries(&sim, Psp::Toss)
        .into_iter()
        .filter(|entry| {
            let date = if query.by_paid_out_date { entry.paid_out_date } else { entry.sold_date };
            (query.start..=query.end).contains(&date)
        })
        .skip((query.page - 1).saturating_mul(query.size))
        .take(query.size)
        .collect();
    let items: Vec<Value> = sim.with_ledger(|ledger| {
        page.into_iter()
            .map(|entry| {
                let approved_at = ledger
                    .toss
                    .get(&entry.payment_reference)
                    .and_then(|payment| payment.approved_at.clone())
                    .unwrap_or_else(|| iso_kst(entry.created));
                item(entry, approved_at)
            })
            .collect()
    });
    json_response(StatusCode::OK, json_bytes(&items))
}

/// One settlement item.
fn item(entry: Entry, approved_at: String) -> Value {
    let (supply, vat) = fee_split(entry.fee_minor);
    let cancel = (entry.kind == EntryKind::Refund).then(|| {
        json!({
            "cancelAmount": entry.amount_minor.unsigned_abs(),
            "cancelReason": entry.reason,
            "canceledAt": iso_kst(entry.created),
            "transactionKey": entry.transaction_id,
        })
    });
    json!({
        "mId": MID,
        "paymentKey": entry.payment_reference,
        "transactionKey": entry.transaction_id,
        "orderId": entry.order_id,
        "currency": entry.currency,
        "method": "카드",
        "amount": entry.amount_minor,
        "interestFee": 0,
        "fees": [{ "type": "BASE", "fee": entry.fee_minor }],
        "supplyAmount": supply,
        "vat": vat,
        "payOutAmount": entry.net_minor,
        "approvedAt": approved_at,
        "soldDate": entry.sold_date.to_string(),
        "paidOutDate": entry.paid_out_date.to_string(),
        "card": null,
        "easyPay": null,
        "giftCertificate": null,
        "mobilePhone": null,
        "transfer": null,
        "virtualAccount": null,
        "cancel": cancel,
    })
}

/// `(supplyAmount, vat)` of a signed fee (negative only when a break made
/// it so; then both are negative).
fn fee_split(fee_minor: i64) -> (i64, i64) {
    let (supply, vat) = fees::toss_fee_split(fee_minor.unsigned_abs());
    let signed = |minor: u64| i64::try_from(minor).unwrap_or(i64::MAX);
    if fee_minor < 0 { (-signed(supply), -signed(vat)) } else { (signed(supply), signed(vat)) }
}
