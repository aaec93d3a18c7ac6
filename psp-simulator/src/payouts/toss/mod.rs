//! Toss Payments payouts v2 (지급대행), behind Toss's Basic authentication:
//!
//! * `POST /v2/sellers`, `GET /v2/sellers`, `GET /v2/sellers/{id}`;
//! * `POST /v2/payouts` (an array of at most 100 items, all made or none), `GET /v2/payouts`,
//!   `GET /v2/payouts/{id}`, `POST /v2/payouts/{id}/cancel` (no body);
//! * `GET /v2/balances`.
//!
//! POSTs with a body must be encrypted (`TossPayments-api-security-mode: ENCRYPTION`, a JWE
//! under the security key, see `jwe.rs`); their answers are encrypted with the same key. A
//! missing header, a body that is not such a JWE, or one that does not decrypt is refused,
//! unencrypted, with `400 INVALID_REQUEST`. Answers use Toss's v2 envelope `{version,
//! traceId, entityType, entityBody, error}`. Lists are newest first, `limit` (1..=10000,
//! default 10) and `startingAfter` (an id of the previous page), and answer `{items, hasNext,
//! lastCursor}`.
//!
//! Choices where Toss documents nothing: a `refPayoutId` (or `refSellerId`) used before is
//! refused with `400 DUPLICATED_REF_PAYOUT_ID` (`DUPLICATED_REF_SELLER_ID`), after Toss's v1
//! `DUPLICATED_ORDER_ID`, and nothing is made; a payout not `REQUESTED` cannot be canceled
//! (`400 NOT_CANCELABLE_PAYOUT`); a payout to a seller neither `PARTIALLY_APPROVED` nor
//! `APPROVED` is `403 FORBIDDEN_SELLER_PAYOUT` (Toss's code); `EXPRESS` payouts start
//! `IN_PROGRESS` and are `COMPLETED` one step later (`REQUESTED` and held under the `hold`
//! scenario); a "paid then failed" payout turns `FAILED` with `error.code` `ACCOUNT_CLOSED`.
//! `payout.changed` is sent on `COMPLETED` and `FAILED` only (as Toss documents),
//! `seller.changed` when a seller is identified; both are signed by the shared sender with
//! `toss_webhook_secret`, which the gateway verifies with the same secret (at Toss it is the
//! security key: configure both with it). Idempotency keys work as on the v1 endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

mod wire;

pub use self::wire::TossBook;
use self::wire::*;
use super::statement::{self, StatementBreak};
use super::{AfterPaid, Book, PAYOUTS_MAX, Payouts, SELLERS_MAX, jwe, step};
use crate::clock::{KST_OFFSET_SECS, iso_kst, now_ms, today, unix_now};
use crate::execution::{Post, PostParts, Reply, run_post, with_fault};
use crate::faults::TokenKind;
use crate::idempotency::{TOSS_IDEMPOTENCY_KEY_LEN_MAX, fingerprint};
use crate::ledger::Psp;
use crate::state::{Stats, random_alnum};
use crate::toss::body::canonical_pairs;

/// The Toss payout routes, behind Basic authentication with a test key.
pub fn routes(payouts: &Arc<Payouts>) -> Router<Arc<Payouts>> {
    Router::new()
        .route("/v2/sellers", post(register_seller).get(list_sellers))
        .route("/v2/sellers/{id}", get(get_seller))
        .route("/v2/payouts", post(create_payouts).get(list_payouts))
        .route("/v2/payouts/{id}", get(get_payout))
        .route("/v2/payouts/{id}/cancel", post(cancel_payout))
        .route("/v2/balances", get(balances))
        .route_layer(middleware::from_fn_with_state(Arc::clone(payouts), authenticate))
}

async fn authenticate(State(payouts): State<Arc<Payouts>>, mut request: Request, next: Next) -> Response {
    Stats::bump(&payouts.sim.stats.requests_total);
    match secret_key(request.headers()) {
        Some(key) => {
            request.extensions_mut().insert(TossAccount(key));
            next.run(request).await
        }
        None => {
            error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.")
                .into_response()
        }
    }
}

/// The key of `Authorization: Basic base64("test_sk_...:")`.
fn secret_key(headers: &HeaderMap) -> Option<String> {
    let (scheme, encoded) = headers.get(AUTHORIZATION)?.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let key = decoded.strip_suffix(':')?;
    ["test_sk_", "test_gsk_"].iter().any(|p| key.len() > p.len() && key.starts_with(p)).then(|| key.to_owned())
}

/// Extracts a POST, checks its idempotency key and (when `encrypted`) opens its JWE body.
async fn open(
    payouts: &Payouts,
    request: Request,
    encrypted: bool,
) -> Result<(PostParts<TossAccount>, Post, Value), Response> {
    let parts = PostParts::<TossAccount>::from_request(request, &payouts.sim).await?;
    let key = match parts.headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.chars().count() <= TOSS_IDEMPOTENCY_KEY_LEN_MAX => Some(key.to_owned()),
        Some(_) => {
            return Err(error(StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY", "멱등키가 올바르지 않습니다.")
                .into_response());
        }
    };
    let body = if encrypted {
        let mode = parts.headers.get("tosspayments-api-security-mode").and_then(|v| v.to_str().ok());
        if !mode.is_some_and(|m| m.eq_ignore_ascii_case("ENCRYPTION")) {
            return Err(invalid("지급대행 요청은 ENCRYPTION 보안 모드로 암호화해야 합니다.").into_response());
        }
        let plain = jwe::decrypt_request(&payouts.security_key, &parts.body).map_err(|m| invalid(m).into_response())?;
        serde_json::from_slice(&plain).map_err(|_| invalid("요청 본문이 올바른 JSON이 아닙니다.").into_response())?
    } else {
        Value::Null
    };
    let mut wrapped = Map::new();
    wrapped.insert("body".to_owned(), body.clone());
    let post = Post {
        psp: Psp::Toss,
        account: parts.account.0.clone(),
        key,
        fingerprint: fingerprint("POST", &parts.path, &canonical_pairs(&wrapped)),
        path: parts.path.clone(),
        kill: parts.kill.clone(),
        refund: false,
    };
    Ok((parts, post, body))
}

/// `POST /v2/sellers`.
async fn register_seller(State(payouts): State<Arc<Payouts>>, request: Request) -> Response {
    let (_, post, body) = match open(&payouts, request, true).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let p = Arc::clone(&payouts);
    run_post::<TossPayoutWire>(&payouts.sim, post, move |attempt, _| {
        let fault = p.sim.faults.decide(TokenKind::NormalSuccess, attempt);
        with_fault::<TossPayoutWire>(fault, &p.sim.faults, || match register(&p, &body) {
            Ok(reply) => reply,
            Err(e) => e.reply(),
        })
    })
    .await
}

fn register(payouts: &Arc<Payouts>, body: &Value) -> Result<Reply, TossError> {
    let reference = text(body, "refSellerId", TEXT_LEN_MAX)?;
    let business_type = text(body, "businessType", TEXT_LEN_MAX)?;
    let holder = if business_type == "INDIVIDUAL" { "individual" } else { "company" };
    if !matches!(business_type.as_str(), "INDIVIDUAL" | "INDIVIDUAL_BUSINESS" | "CORPORATE") {
        return Err(invalid("businessType은 INDIVIDUAL, INDIVIDUAL_BUSINESS, CORPORATE 중 하나입니다."));
    }
    text(body.get(holder).unwrap_or(&Value::Null), "name", TEXT_LEN_MAX)?;
    let account = body.get("account").unwrap_or(&Value::Null);
    for field in ["bankCode", "accountNumber", "holderName"] {
        text(account, field, TEXT_LEN_MAX)?;
    }
    let (seller, delay) = payouts.with_book(|book| {
        if book.toss.sellers.values().any(|s| s.ref_seller_id == reference) {
            return Err(error(StatusCode::BAD_REQUEST, "DUPLICATED_REF_SELLER_ID", "이미 사용된 refSellerId 입니다."));
        }
        if book.toss.sellers.len() >= SELLERS_MAX {
            return Err(invalid("등록할 수 있는 셀러 수를 초과했습니다."));
        }
        let delay = payouts.kyc_delay_of(&book.scenario(&reference));
        // Corporations are identified by their registration; people wait for it.
        let payable_now = business_type == "CORPORATE" || delay.is_some_and(|d| d.is_zero());
        let mut stored = body.clone();
        stored["account"]["accountNumber"] = json!(mask(account["accountNumber"].as_str().unwrap_or_default()));
        let seller = Seller {
            id: format!("seller_{}", random_alnum(ID_RANDOM_LEN).to_ascii_lowercase()),
            ref_seller_id: reference.clone(),
            status: if payable_now { "PARTIALLY_APPROVED" } else { "APPROVAL_REQUIRED" },
            body: stored,
        };
        book.toss.seller_order.push(seller.id.clone());
        book.toss.sellers.insert(seller.id.clone(), seller.clone());
        Ok((seller, delay.filter(|_| !payable_now)))
    })?;
    if let Some(delay) = delay {
        let (p, id) = (Arc::clone(payouts), seller.id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let changed = p.with_book(|book| {
                let seller = book.toss.sellers.get_mut(&id).filter(|s| s.status == "APPROVAL_REQUIRED")?;
                seller.status = "PARTIALLY_APPROVED";
                Some(seller.json())
            });
            if let Some(entity) = changed {
                send_event(&p, "seller.changed", "seller", entity);
            }
        });
    }
    Ok(ok(payouts, true, "seller", seller.json()))
}

/// `GET /v2/sellers/{id}`.
async fn get_seller(State(payouts): State<Arc<Payouts>>, Path(id): Path<String>) -> Response {
    match payouts.with_book(|book| book.toss.sellers.get(&id).map(Seller::json)) {
        Some(seller) => plain(envelope(Some("seller"), seller, Value::Null)),
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND_SELLER", "존재하지 않는 셀러입니다.").into_response(),
    }
}

/// `GET /v2/sellers`.
async fn list_sellers(State(payouts): State<Arc<Payouts>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let items = payouts.with_book(|book| {
        book.toss
            .seller_order
            .iter()
            .filter_map(|id| book.toss.sellers.get(id))
            .map(|s| (s.id.clone(), s.json()))
            .collect()
    });
    match page(items, &query) {
        Ok(body) => plain(envelope(Some("seller"), body, Value::Null)),
        Err(e) => e.into_response(),
    }
}

/// `POST /v2/payouts`.
async fn create_payouts(State(payouts): State<Arc<Payouts>>, request: Request) -> Response {
    let (_, post, body) = match open(&payouts, request, true).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let p = Arc::clone(&payouts);
    run_post::<TossPayoutWire>(&payouts.sim, post, move |attempt, _| {
        // The fault scripted for the (first) destination's seller.
        let destination = body.get(0).and_then(|i| i.get("destination")).and_then(Value::as_str).unwrap_or_default();
        let kind = p.with_book(|book| {
            book.toss
                .sellers
                .get(destination)
                .map_or(TokenKind::NormalSuccess, |s| book.scenario(&s.ref_seller_id).kind())
        });
        let fault = p.sim.faults.decide(kind, attempt);
        with_fault::<TossPayoutWire>(fault, &p.sim.faults, || match make_payouts(&p, &body) {
            Ok(reply) => reply,
            Err(e) => e.reply(),
        })
    })
    .await
}

/// Validates every item, then makes them all (or none) in one critical section.
fn make_payouts(payouts: &Arc<Payouts>, body: &Value) -> Result<Reply, TossError> {
    let items = body.as_array().ok_or_else(|| invalid("요청 본문은 지급대행 요청 배열이어야 합니다."))?;
    if items.is_empty() || items.len() > ITEMS_MAX {
        return Err(invalid(format!("지급대행 요청은 1건 이상 {ITEMS_MAX}건 이하입니다.")));
    }
    let made = payouts.with_book(|book| {
        let mut made = Vec::new();
        for item in items {
            made.push(check_item(book, item, &made)?);
        }
        if book.toss.payouts.len() + made.len() > PAYOUTS_MAX {
            return Err(invalid("지급대행 요청 수를 초과했습니다."));
        }
        let mut out = Vec::new();
        for (mut payout, hold, fail) in made {
            payout.seq = book.next_seq();
            if hold {
                payout.status = "REQUESTED";
            }
            out.push((payout.json(), payout.id.clone(), hold, fail));
            book.toss.payouts.push(payout);
        }
        Ok(out)
    })?;
    let mut items = Vec::new();
    for (json, id, hold, fail) in made {
        items.push(json);
        if !hold {
            tokio::spawn(live(Arc::clone(payouts), id, fail));
        }
    }
    Ok(ok(payouts, true, "payout", json!({"items": items})))
}

/// One item as a payout to make, with its seller's `hold` and what happens after it is paid.
fn check_item(
    book: &Book,
    item: &Value,
    batch: &[(Payout, bool, AfterPaid)],
) -> Result<(Payout, bool, AfterPaid), TossError> {
    let reference = text(item, "refPayoutId", TEXT_LEN_MAX)?;
    let destination = text(item, "destination", TEXT_LEN_MAX)?;
    let description = text(item, "transactionDescription", DESCRIPTION_CHARS_MAX)?;
    if text(item, "scheduleType", TEXT_LEN_MAX)? != "EXPRESS" {
        return Err(invalid("시뮬레이터는 scheduleType EXPRESS 만 지원합니다."));
    }
    let amount = &item["amount"];
    if amount["currency"] != "KRW" {
        return Err(invalid("amount.currency는 KRW 입니다."));
    }
    let value = match &amount["value"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|v| (1..=AMOUNT_MAX).contains(v))
    .ok_or_else(|| invalid("amount.value는 0보다 큰 정수입니다."))?;
    if book.toss.payouts.iter().any(|p| p.reference == reference)
        || batch.iter().any(|(p, ..)| p.reference == reference)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "DUPLICATED_REF_PAYOUT_ID",
            format!("이미 사용된 refPayoutId 입니다. (refPayoutId: {reference})"),
        ));
    }
    let seller = book
        .toss
        .sellers
        .get(&destination)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "NOT_FOUND_SELLER", "존재하지 않는 셀러입니다."))?;
    if !matches!(seller.status, "PARTIALLY_APPROVED" | "APPROVED") {
        return Err(error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN_SELLER_PAYOUT",
            format!(
                "Payout requests can only be made for sellers with a status of PARTIALLY_APPROVED or APPROVED (refPayoutId: {reference})"
            ),
        ));
    }
    let scenario = book.scenario(&seller.ref_seller_id);
    let payout = Payout {
        id: format!("FPA_{}", random_alnum(ID_RANDOM_LEN)),
        reference,
        destination,
        amount: value,
        description,
        status: "IN_PROGRESS",
        error: None,
        requested_at: iso_kst(unix_now()),
        payout_date: today(KST_OFFSET_SECS).to_string(),
        metadata: item.get("metadata").cloned().unwrap_or(Value::Null),
        created_at_ms: now_ms(),
        seq: 0,
    };
    Ok((payout, scenario.hold, scenario.after_paid()))
}

/// The bank returned a "paid then failed" payout (the simulator's code; Toss documents none).
const ACCOUNT_CLOSED: Failure = ("ACCOUNT_CLOSED", "입금 계좌가 해지되어 지급이 반환되었습니다.");

/// `IN_PROGRESS` → `COMPLETED` (→ `FAILED` when the bank returns it), with webhooks (but the
/// return's, when it is to be lost).
async fn live(payouts: Arc<Payouts>, id: String, after_paid: AfterPaid) {
    let mut moves = vec![("IN_PROGRESS", "COMPLETED", None)];
    if after_paid != AfterPaid::Stays {
        moves.push(("COMPLETED", "FAILED", Some(ACCOUNT_CLOSED)));
    }
    for (from, to, failure) in moves {
        step(&payouts).await;
        let moved = payouts.with_book(|book| {
            let payout = book.toss.payout_mut(&id).filter(|p| p.status == from)?;
            payout.status = to;
            payout.error = failure;
            Some(payout.json())
        });
        let Some(entity) = moved else { return };
        if to == "FAILED" && after_paid == AfterPaid::ReturnedSilently {
            return;
        }
        send_event(&payouts, "payout.changed", "payout", entity);
    }
}

/// Emits a signed Toss payouts event.
fn send_event(payouts: &Payouts, event_type: &str, entity_type: &str, entity: Value) {
    let event_id = random_alnum(ID_RANDOM_LEN);
    let event = json!({
        "eventType": event_type,
        "createdAt": iso_kst(unix_now()),
        "version": VERSION,
        "eventId": event_id,
        "entityType": entity_type,
        "entityBody": entity,
    });
    payouts.sim.webhooks.send_toss_payout(event_id, event.to_string());
}

/// `GET /v2/payouts`.
async fn list_payouts(State(payouts): State<Arc<Payouts>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let items = payouts.with_book(|book| {
        let breaks = &book.statement_breaks;
        let mut items: Vec<(String, Value)> = book
            .toss
            .payouts
            .iter()
            .filter_map(|p| {
                statement::alter(breaks, Some(&p.reference), p.json(), &["amount", "value"]).map(|j| (p.id.clone(), j))
            })
            .collect();
        items.extend(breaks.iter().filter_map(foreign_payout));
        items
    });
    match page(items, &query) {
        Ok(body) => plain(envelope(Some("payout"), body, Value::Null)),
        Err(e) => e.into_response(),
    }
}

/// A foreign payout of the statement breaks, as Toss lists it (newest: after ours).
fn foreign_payout(b: &StatementBreak) -> Option<(String, Value)> {
    let StatementBreak::Foreign { provider, destination, reference, amount_minor, seed, .. } = b else { return None };
    if provider != "toss_payouts" {
        return None;
    }
    let id = format!("FPA_foreign{seed:06}");
    let payout = Payout {
        id: id.clone(),
        reference: reference.clone(),
        destination: destination.clone().unwrap_or_else(|| "seller_foreign".to_owned()),
        amount: *amount_minor,
        description: "정산".to_owned(),
        status: "COMPLETED",
        error: None,
        requested_at: iso_kst(unix_now()),
        payout_date: today(KST_OFFSET_SECS).to_string(),
        metadata: Value::Null,
        created_at_ms: now_ms(),
        seq: 0,
    };
    Some((id, payout.json()))
}

/// `GET /v2/payouts/{id}`.
async fn get_payout(State(payouts): State<Arc<Payouts>>, Path(id): Path<String>) -> Response {
    match payouts.with_book(|book| book.toss.payout_mut(&id).map(|p| p.json())) {
        Some(payout) => plain(envelope(Some("payout"), payout, Value::Null)),
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND_PAYOUT", "존재하지 않는 지급대행 요청입니다.").into_response(),
    }
}

/// `POST /v2/payouts/{id}/cancel` (no body, not encrypted).
async fn cancel_payout(State(payouts): State<Arc<Payouts>>, Path(id): Path<String>, request: Request) -> Response {
    let (_, post, _) = match open(&payouts, request, false).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let p = Arc::clone(&payouts);
    run_post::<TossPayoutWire>(&payouts.sim, post, move |attempt, _| {
        let fault = p.sim.faults.decide(TokenKind::NormalSuccess, attempt);
        with_fault::<TossPayoutWire>(fault, &p.sim.faults, || {
            let canceled = p.with_book(|book| {
                let payout = book.toss.payout_mut(&id).ok_or_else(|| {
                    error(StatusCode::NOT_FOUND, "NOT_FOUND_PAYOUT", "존재하지 않는 지급대행 요청입니다.")
                })?;
                if payout.status != "REQUESTED" {
                    return Err(invalid_cancel());
                }
                payout.status = "CANCELED";
                Ok(payout.json())
            });
            match canceled {
                Ok(payout) => ok(&p, false, "payout", payout),
                Err(e) => e.reply(),
            }
        })
    })
    .await
}

fn invalid_cancel() -> TossError {
    error(StatusCode::BAD_REQUEST, "NOT_CANCELABLE_PAYOUT", "취소할 수 없는 지급대행 요청입니다.")
}

/// `GET /v2/balances`: won captured through Toss, less refunds and payouts not failed or
/// canceled (floored at zero), all available.
async fn balances(State(payouts): State<Arc<Payouts>>) -> Response {
    let (captured, refunded) = payouts.sim.with_ledger(|ledger| {
        let krw = |psp: Psp, currency: &str| psp == Psp::Toss && currency.eq_ignore_ascii_case("KRW");
        let captured: u64 = ledger.captures(None).iter().filter(|c| krw(c.psp, &c.currency)).map(|c| c.amount).sum();
        let refunded: u64 = ledger.refunds(None).iter().filter(|r| krw(r.psp, &r.currency)).map(|r| r.amount).sum();
        (captured, refunded)
    });
    let paid: u64 = payouts.with_book(|book| {
        book.toss.payouts.iter().filter(|p| !matches!(p.status, "FAILED" | "CANCELED")).map(|p| p.amount).sum()
    });
    let available = captured.saturating_sub(refunded).saturating_sub(paid);
    let body = json!({
        "pendingAmount": {"currency": "KRW", "value": 0},
        "availableAmount": {"currency": "KRW", "value": available},
    });
    plain(envelope(Some("balance"), body, Value::Null))
}
