//! Refunds of captured payment orders: validating a request (shared by REST and gRPC), storing
//! it (which reserves its amount against the order) and starting its `refund` workflow, plus
//! the REST routes `POST|GET /v1/payments/{payment_order_id}/refunds` and
//! `GET /v1/refunds/{refund_id}`. The POST honours `Idempotency-Key` like the other POSTs.

use crate::auth::{Caller, RouteTable};
use crate::error::{ApiError, refuse_card_number};
use crate::idempotency;
use crate::rest::{PAYMENTS, json_post};
use crate::service::PaymentsService;
use crate::views::refund_json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json};
use payments_domain::{CheckoutId, Currency, Money, PaymentOrderId};
use payments_store::{OrderRecord, RefundId, RefundKind, RefundRecord, RefundStatus, StoreError};
use payments_workflows::contract::RefundRequest;
use payments_workflows::messages::{CHECKOUT_ID_ATTRIBUTE, PAYMENT_STATUS_ATTRIBUTE};
use payments_workflows::{RefundInput, RefundWorkflow};
use serde_json::{Map, Value, json};
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{WorkflowIdReusePolicy, WorkflowStartOptions};
use temporalio_common::search_attributes::SearchAttributes;

/// Longest refund reason accepted, in characters (it goes to the PSP and the buyer's statement).
pub const REFUND_REASON_CHARS_MAX: usize = 500;

/// A refund request as received (REST body or gRPC message), before validation. An empty
/// amount counts as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDraft {
    /// The order to refund.
    pub payment_order_id: String,
    /// Decimal amount in major units of the order's currency; `None` = everything still
    /// refundable.
    pub amount: Option<String>,
    /// Why (required).
    pub reason: String,
}

/// A refund and the Temporal workflow that carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    /// The stored refund.
    pub record: RefundRecord,
    /// `refund-{refund_id}`, or the checkout's workflow for the saga's reversal.
    pub workflow_id: String,
}

/// The workflow id of a customer refund.
pub fn refund_workflow_id(refund_id: &RefundId) -> String {
    format!("refund-{refund_id}")
}

/// The workflow carrying out `record`: a customer refund has its own; a reversal is the
/// compensation inside its checkout's workflow.
pub fn workflow_of(record: &RefundRecord, checkout_id: &CheckoutId) -> String {
    match record.kind {
        RefundKind::Refund => refund_workflow_id(&record.refund_id),
        RefundKind::Reversal => checkout_id.workflow_id(),
    }
}

/// A payment order id from a path or message, refused with `param` `payment_order_id`.
pub fn parse_order_id(id: String) -> Result<PaymentOrderId, ApiError> {
    PaymentOrderId::parse(id).map_err(|e| ApiError::invalid("parameter_invalid", "payment_order_id", e.to_string()))
}

/// The reason, trimmed: required, at most [`REFUND_REASON_CHARS_MAX`] characters, no card
/// number in it (it goes to the PSP and the order's records).
pub fn validate_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("parameter_invalid", "reason", "is required"));
    }
    refuse_card_number("reason", reason)?;
    if reason.chars().count() > REFUND_REASON_CHARS_MAX {
        return Err(ApiError::invalid(
            "parameter_invalid",
            "reason",
            format!("must be at most {REFUND_REASON_CHARS_MAX} characters"),
        ));
    }
    Ok(reason.to_owned())
}

/// The amount asked for, in the order's currency (`None` = everything still refundable),
/// parsed like an order's amount: a positive plain decimal string that fits the currency.
pub fn parse_amount(amount: Option<&str>, currency: Currency) -> Result<Option<Money>, ApiError> {
    amount
        .filter(|a| !a.is_empty())
        .map(|text| Money::parse(text, currency))
        .transpose()
        .map_err(|e| ApiError::invalid("parameter_invalid", "amount", e.to_string()))
}

/// Reads the REST body `{"amount"?, "reason"}`: strings only (an amount never
/// passes through a float), no unknown fields.
pub fn draft_from_json(payment_order_id: String, body: &[u8]) -> Result<RefundDraft, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body_malformed", "body", format!("is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::invalid("parameter_invalid", "body", "must be a JSON object"));
    };
    if let Some(unknown) = obj.keys().find(|k| !["amount", "reason"].contains(&k.as_str())) {
        return Err(ApiError::invalid("parameter_invalid", unknown.as_str(), "is not a known field"));
    }
    Ok(RefundDraft {
        payment_order_id,
        amount: optional_string(&obj, "amount")?,
        reason: optional_string(&obj, "reason")?.unwrap_or_default(),
    })
}

fn optional_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid("parameter_invalid", field, "must be a string")),
    }
}

/// Store errors of a refund request: an order that cannot be refunded (not captured and
/// booked, already reversed) is the caller's problem, not ours. Only here does a
/// [`StoreError::Precondition`] mean 400; elsewhere it stays an internal error.
fn refund_store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Precondition(why) => not_refundable(why),
        other => other.into(),
    }
}

fn not_refundable(why: String) -> ApiError {
    ApiError::invalid("payment_not_refundable", "payment_order_id", why)
}

impl PaymentsService {
    /// Validates and stores a refund (REQUESTED, its amount reserved against the order), then
    /// starts its workflow `refund-{refund_id}`. With an Idempotency-Key (`client_key`) the key
    /// is stored with the refund and bound to it: the same request again under the key answers
    /// that refund (and starts its workflow if that was lost), whatever became of the first
    /// answer -- a 5xx, a dropped connection, a claim taken over after it went stale. Without
    /// a key every call stores a new refund. Once stored, the refund is answered whether or not
    /// its start succeeded: the start sweep (`start_sweep.rs`) repeats a lost start.
    pub async fn create_refund(&self, draft: RefundDraft, client_key: Option<&str>) -> Result<RefundView, ApiError> {
        let order_id = parse_order_id(draft.payment_order_id)?;
        let reason = validate_reason(&draft.reason)?;
        let order = self.order(&order_id).await?;
        let amount = parse_amount(draft.amount.as_deref(), order.amount.currency())?;
        if order.psp_reference.is_none() {
            return Err(not_refundable(format!(
                "payment order {order_id} ({}) has no PSP payment to refund",
                order.status
            )));
        }
        // The store checks again under the order's lock (status, bookings, refundable amount).
        let (record, _stored_now) = self
            .store()
            .request_next_refund(&order_id, amount, &reason, client_key)
            .await
            .map_err(refund_store_error)?;
        let workflow_id = refund_workflow_id(&record.refund_id);
        if let Err(e) = self.ensure_refund_started(&record, &order).await {
            tracing::warn!(refund_id = %record.refund_id, error = format!("{e:#}"), "refund stored; its workflow start failed (the start sweep repeats it)");
        }
        Ok(RefundView { record, workflow_id })
    }

    /// Starts the `refund` workflow of a stored customer refund unless it is known to exist
    /// (`refund-{refund_id}`, id reuse rejected: a refund's workflow runs at most once;
    /// "already started" is success), and records the start.
    pub(crate) async fn ensure_refund_started(&self, record: &RefundRecord, order: &OrderRecord) -> anyhow::Result<()> {
        if record.workflow_started || record.kind != RefundKind::Refund {
            return Ok(());
        }
        if record.status == RefundStatus::Requested {
            self.start_refund_workflow(record, order).await?;
        }
        self.store().mark_refund_started(&record.refund_id).await?;
        Ok(())
    }

    /// Starts the `refund` workflow of a stored REQUESTED customer refund (`refund-{refund_id}`,
    /// id reuse rejected: a refund's workflow runs at most once; "already started" is success).
    async fn start_refund_workflow(&self, record: &RefundRecord, order: &OrderRecord) -> anyhow::Result<()> {
        // request_refund only reserves refunds of captured (SUCCESS) orders, which have one.
        let Some(psp_reference) = order.psp_reference.clone() else {
            anyhow::bail!("refund {}: payment order {} has no PSP payment", record.refund_id, order.payment_order_id);
        };
        let input = RefundInput {
            refund: RefundRequest {
                refund_id: record.refund_id.to_string(),
                payment_order_id: record.payment_order_id.clone(),
                psp_reference,
                amount: record.amount,
                reason: record.reason.clone(),
            },
            checkout_id: order.checkout_id.clone(),
            limits: self.waits(),
        };
        // Operators find refunds by checkout, and parked ones by `PaymentStatus = DEAD_LETTER`.
        let attributes = SearchAttributes::new([
            CHECKOUT_ID_ATTRIBUTE.value_set(order.checkout_id.to_string()),
            PAYMENT_STATUS_ATTRIBUTE.value_set(payments_workflows::refund::REFUNDING_STATUS.to_owned()),
        ]);
        let options = WorkflowStartOptions::new(self.task_queue().to_owned(), refund_workflow_id(&record.refund_id))
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .search_attributes(attributes)
            .build();
        match self.temporal().start_workflow(RefundWorkflow::run, input, options).await {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every refund of an order, oldest first; NotFound for an unknown order.
    pub async fn refunds(&self, order_id: &PaymentOrderId) -> Result<Vec<RefundView>, ApiError> {
        let order = self.order(order_id).await?;
        let records = self.store().refunds(order_id).await?;
        Ok(records
            .into_iter()
            .map(|record| RefundView { workflow_id: workflow_of(&record, &order.checkout_id), record })
            .collect())
    }

    /// One refund; NotFound when there is none.
    pub async fn refund(&self, refund_id: &RefundId) -> Result<RefundView, ApiError> {
        let record =
            self.store().refund(refund_id).await?.ok_or_else(|| ApiError::NotFound(format!("refund {refund_id}")))?;
        let order = self.order(&record.payment_order_id).await?;
        Ok(RefundView { workflow_id: workflow_of(&record, &order.checkout_id), record })
    }
}

/// The refund routes, all in the `payments` scope.
pub fn routes(table: RouteTable, service: PaymentsService) -> RouteTable {
    table
        .add(
            Method::POST,
            "/v1/payments/{payment_order_id}/refunds",
            PAYMENTS,
            json_post(post(create_refund), service.store()).with_state(service.clone()),
        )
        .add(
            Method::GET,
            "/v1/payments/{payment_order_id}/refunds",
            PAYMENTS,
            get(list_refunds).with_state(service.clone()),
        )
        // Refund ids contain ':' (`{order}:refund:{n}`); a path segment may hold it as is.
        .add(Method::GET, "/v1/refunds/{refund_id}", PAYMENTS, get(get_refund).with_state(service))
}

/// `POST /v1/payments/{payment_order_id}/refunds`: 202 with the refund, REQUESTED.
async fn create_refund(
    State(service): State<PaymentsService>,
    Extension(caller): Extension<Caller>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = idempotency::key_of(&headers, &caller)?;
    let view = service.create_refund(draft_from_json(order_id, &body)?, key.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(refund_json(&view))))
}

/// `GET /v1/payments/{payment_order_id}/refunds`: `{"refunds": [...]}`.
async fn list_refunds(
    State(service): State<PaymentsService>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let views = service.refunds(&parse_order_id(order_id)?).await?;
    Ok(Json(json!({"refunds": views.iter().map(refund_json).collect::<Vec<_>>()})))
}

/// `GET /v1/refunds/{refund_id}`.
async fn get_refund(State(service): State<PaymentsService>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = RefundId::parse(id).map_err(|e| ApiError::invalid("parameter_invalid", "refund_id", e.to_string()))?;
    Ok(Json(refund_json(&service.refund(&id).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(e: ApiError) -> (String, String) {
        match e {
            ApiError::InvalidRequest { code, param, .. } => (code.to_owned(), param),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    /// Amounts parse like an order's, in the order's currency; empty or absent means "all";
    /// everything else is refused naming `amount`.
    #[test]
    fn amounts() {
        assert_eq!(parse_amount(Some("12.50"), usd()).unwrap().unwrap().amount_minor(), 1250);
        assert_eq!(parse_amount(None, usd()).unwrap(), None);
        assert_eq!(parse_amount(Some(""), usd()).unwrap(), None);
        for bad in ["10.005", "0", "-1", "1e3", "NaN", " 10", "abc"] {
            assert_eq!(
                param(parse_amount(Some(bad), usd()).unwrap_err()),
                ("parameter_invalid".into(), "amount".into()),
                "{bad}"
            );
        }
        assert_eq!(param(parse_amount(Some("1.5"), Currency::parse("KRW").unwrap()).unwrap_err()).1, "amount");
        assert_eq!(param(parse_amount(Some("1.0005"), Currency::parse("KWD").unwrap()).unwrap_err()).1, "amount");
    }

    /// A reason is required, trimmed and at most 500 characters (not bytes).
    #[test]
    fn reasons() {
        assert_eq!(validate_reason("  duplicate order ").unwrap(), "duplicate order");
        assert_eq!(param(validate_reason("   ").unwrap_err()), ("parameter_invalid".into(), "reason".into()));
        assert!(validate_reason(&"é".repeat(REFUND_REASON_CHARS_MAX)).is_ok());
        assert_eq!(param(validate_reason(&"a".repeat(REFUND_REASON_CHARS_MAX + 1)).unwrap_err()).1, "reason");
    }

    /// The body is a JSON object of strings without unknown fields.
    #[test]
    fn bodies() {
        let d = draft_from_json("po-1".into(), br#"{"amount":"1.00","reason":"r"}"#).unwrap();
        assert_eq!((d.amount.as_deref(), d.reason.as_str()), (Some("1.00"), "r"));
        let d = draft_from_json("po-1".into(), br#"{"reason":"r","amount":null}"#).unwrap();
        assert_eq!(d.amount, None);
        assert_eq!(param(draft_from_json("p".into(), br#"{"amount":1.5,"reason":"r"}"#).unwrap_err()).1, "amount");
        assert_eq!(
            param(draft_from_json("p".into(), br#"{"reason":"r","currency":"USD"}"#).unwrap_err()).1,
            "currency"
        );
        assert_eq!(param(draft_from_json("p".into(), b"[]").unwrap_err()).1, "body");
        assert_eq!(param(draft_from_json("p".into(), b"{").unwrap_err()).0, "body_malformed");
    }

    /// Only a refund store precondition becomes `payment_not_refundable`; the rest keep the
    /// common mapping (RefundTooLarge -> `refund_too_large` stating the refundable amount).
    #[test]
    fn store_errors() {
        let e = refund_store_error(StoreError::Precondition("order FAILED".into()));
        assert_eq!(param(e), ("payment_not_refundable".into(), "payment_order_id".into()));
        let refundable = Money::parse("7.25", usd()).unwrap();
        match refund_store_error(StoreError::RefundTooLarge { refundable }) {
            ApiError::InvalidRequest { code, param, message } => {
                assert_eq!((code, param.as_str()), ("refund_too_large", "amount"));
                assert!(message.contains("7.25 USD"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(refund_store_error(StoreError::NotFound("x".into())), ApiError::NotFound(_)));
    }

    /// Customer refunds have their own workflow; a reversal runs in its checkout's.
    #[test]
    fn workflow_ids() {
        let id = RefundId::parse("po-1:refund:2").unwrap();
        assert_eq!(refund_workflow_id(&id), "refund-po-1:refund:2");
    }
}
