//! Stripe Connect, behind Stripe's Bearer authentication:
//!
//! * `POST /v1/accounts` (custom accounts with a bank account as external account),
//!   `GET /v1/accounts/{id}`;
//! * `POST /v1/transfers` (platform → connected account: credits the account's balance; the
//!   platform's own balance is not modelled, so no transfer is refused for it),
//!   `GET /v1/transfers?transfer_group&destination&limit&starting_after`;
//! * with `Stripe-Account: acct_...`: `POST /v1/payouts` (from the account's balance to its
//!   bank), `GET /v1/payouts?limit&starting_after`, `GET /v1/payouts/{id}`,
//!   `POST /v1/payouts/{id}/cancel` (while `pending`; the money goes back to the balance).
//!
//! Refusals in Stripe's words: a transfer to an account without the transfers capability is
//! `insufficient_capabilities_for_transfer`, a payout from an account with payouts disabled
//! `payouts_not_allowed`, more than its balance `balance_insufficient`. Payouts go `pending` →
//! `in_transit` → `paid`, one step apart (`failed` with `account_closed` one step later under
//! "paid then failed", the money back in the balance), with Connect events
//! `payout.created|updated|paid|failed|canceled` and `account.updated` (see
//! `connect_hooks.rs`). Idempotency keys are scoped to the API key and the `Stripe-Account`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

mod wire;

pub use self::wire::ConnectBook;
use self::wire::*;
use super::statement::{self, StatementBreak};
use super::{AfterPaid, PAYOUTS_MAX, Payouts, SELLERS_MAX, step};
use crate::clock::{DAY_SECS, now_ms, unix_now};
use crate::execution::{Executed, Post, PostParts, Reply, run_post, with_fault};
use crate::faults::TokenKind;
use crate::idempotency::fingerprint;
use crate::ledger::Psp;
use crate::state::{Stats, random_alnum};
use crate::stripe::StripeWire;
use crate::stripe::params::{Params, parse_form};

/// The Connect routes, behind `Authorization: Bearer sk_test_...`.
pub fn routes(payouts: &Arc<Payouts>) -> Router<Arc<Payouts>> {
    Router::new()
        .route("/v1/accounts", post(create_account))
        .route("/v1/accounts/{id}", get(get_account))
        .route("/v1/transfers", post(create_transfer).get(list_transfers))
        .route("/v1/payouts", post(create_payout).get(list_payouts))
        .route("/v1/payouts/{id}", get(get_payout))
        .route("/v1/payouts/{id}/cancel", post(cancel_payout))
        .route_layer(middleware::from_fn_with_state(Arc::clone(payouts), authenticate))
}

async fn authenticate(State(payouts): State<Arc<Payouts>>, mut request: Request, next: Next) -> Response {
    Stats::bump(&payouts.sim.stats.requests_total);
    let key = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().split_once(' '));
    match key {
        Some((scheme, key))
            if scheme.eq_ignore_ascii_case("bearer") && key.starts_with("sk_test_") && key.len() > 8 =>
        {
            let key = ApiKey(key.trim().to_owned());
            request.extensions_mut().insert(key);
            next.run(request).await
        }
        _ => respond(refusal(StatusCode::UNAUTHORIZED, None, "Invalid API Key provided.", None)),
    }
}

fn stripe_account(headers: &HeaderMap) -> Option<String> {
    headers.get("stripe-account").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A decoded POST: its parts, the shared-flow description and its form.
async fn open(payouts: &Payouts, request: Request) -> Result<(PostParts<ApiKey>, Post, Params), Response> {
    let parts = PostParts::<ApiKey>::from_request(request, &payouts.sim).await?;
    let key = match parts.headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= crate::IDEMPOTENCY_KEY_LEN_MAX => Some(key.to_owned()),
        Some(_) => return Err(respond(refusal(StatusCode::BAD_REQUEST, None, "Invalid Idempotency-Key.", None))),
    };
    let params = parse_form(&parts.body).map_err(IntoResponse::into_response)?;
    let acting = stripe_account(&parts.headers).unwrap_or_default();
    let post = Post {
        psp: Psp::Stripe,
        account: format!("{}/{acting}", parts.account.0),
        key,
        fingerprint: fingerprint("POST", &parts.path, &params),
        path: parts.path.clone(),
        kill: parts.kill.clone(),
        refund: false,
    };
    Ok((parts, post, params))
}

/// `POST /v1/accounts`.
async fn create_account(State(payouts): State<Arc<Payouts>>, request: Request) -> Response {
    let (_, post, params) = match open(&payouts, request).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let p = Arc::clone(&payouts);
    run_post::<StripeWire>(&payouts.sim, post, move |attempt, _| {
        let fault = p.sim.faults.decide(TokenKind::NormalSuccess, attempt);
        with_fault::<StripeWire>(fault, &p.sim.faults, || new_account(&p, &params).unwrap_or_else(|reply| reply))
    })
    .await
}

fn new_account(payouts: &Arc<Payouts>, params: &Params) -> Result<Reply, Reply> {
    let allowed = ["type", "country", "email", "business_type", "capabilities[", "external_account[", "metadata["];
    let map = known(params, &allowed)?;
    if required(&map, "type")? != "custom" {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            None,
            "The simulator creates custom accounts only.",
            Some("type"),
        ));
    }
    let country = required(&map, "country")?.to_ascii_uppercase();
    let number = required(&map, "external_account[account_number]")?;
    let routing = map.get("external_account[routing_number]").cloned().unwrap_or_default();
    let last4: String = number.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    let bank = json!({
        "id": format!("ba_{}", random_alnum(ID_RANDOM_LEN)), "object": "bank_account", "last4": last4,
        "routing_number": routing, "country": map.get("external_account[country]").cloned().unwrap_or_else(|| country.clone()),
        "currency": map.get("external_account[currency]").cloned().unwrap_or_default(),
        "account_holder_name": map.get("external_account[account_holder_name]"), "status": "new",
    });
    let id = format!("acct_{}", random_alnum(ID_RANDOM_LEN));
    let seller = map.get("metadata[seller_account]").cloned().unwrap_or_default();
    let body = json!({
        "id": id, "object": "account", "type": "custom", "country": country, "email": map.get("email"),
        "charges_enabled": false, "details_submitted": true, "created": unix_now(), "metadata": metadata(&map),
        "external_accounts": {"object": "list", "data": [bank], "has_more": false, "url": format!("/v1/accounts/{id}/external_accounts")},
    });
    let (account, delay) = payouts.with_book(|book| {
        if book.stripe.accounts.len() >= SELLERS_MAX {
            return Err(refusal(StatusCode::BAD_REQUEST, None, "Too many accounts in the simulator.", None));
        }
        let delay = payouts.kyc_delay_of(&book.scenario(&seller));
        let enabled = delay.is_some_and(|d| d.is_zero());
        let account = Account { payouts_enabled: enabled, body, balance: HashMap::new() };
        book.stripe.accounts.insert(id.clone(), account.clone());
        Ok((account, delay.filter(|_| !enabled)))
    })?;
    if let Some(delay) = delay {
        let p = Arc::clone(payouts);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let updated = p.with_book(|book| {
                let account = book.stripe.accounts.get_mut(&id).filter(|a| !a.payouts_enabled)?;
                account.payouts_enabled = true;
                Some(account.json())
            });
            if let Some(object) = updated {
                p.connect_hooks.send(&id, vec![("account.updated", object)]);
            }
        });
    }
    Ok(stored(&account.json()))
}

/// `GET /v1/accounts/{id}`.
async fn get_account(State(payouts): State<Arc<Payouts>>, Path(id): Path<String>) -> Response {
    match payouts.with_book(|book| book.stripe.accounts.get(&id).map(Account::json)) {
        Some(account) => respond(stored(&account)),
        None => respond(refusal(
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            &format!("No such account: '{id}'"),
            Some("account"),
        )),
    }
}

/// `POST /v1/transfers`.
async fn create_transfer(State(payouts): State<Arc<Payouts>>, request: Request) -> Response {
    let (_, post, params) = match open(&payouts, request).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let p = Arc::clone(&payouts);
    run_post::<StripeWire>(&payouts.sim, post, move |attempt, _| {
        let fault = p.sim.faults.decide(TokenKind::NormalSuccess, attempt);
        with_fault::<StripeWire>(fault, &p.sim.faults, || new_transfer(&p, &params).unwrap_or_else(|reply| reply))
    })
    .await
}

fn new_transfer(payouts: &Payouts, params: &Params) -> Result<Reply, Reply> {
    let map = known(params, &["amount", "currency", "destination", "transfer_group", "description", "metadata["])?;
    let (amount, currency) = amount_and_currency(&map)?;
    let destination = required(&map, "destination")?.to_owned();
    payouts.with_book(|book| {
        let account = book.stripe.accounts.get_mut(&destination).ok_or_else(|| {
            refusal(StatusCode::BAD_REQUEST, Some("resource_missing"), &format!("No such destination: '{destination}'"), Some("destination"))
        })?;
        if !account.payouts_enabled {
            let message = "Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments";
            return Err(refusal(StatusCode::BAD_REQUEST, Some("insufficient_capabilities_for_transfer"), message, Some("destination")));
        }
        let balance = account.balance.entry(currency.clone()).or_default();
        *balance = balance.saturating_add(amount);
        let transfer = json!({
            "id": format!("tr_{}", random_alnum(ID_RANDOM_LEN)), "object": "transfer", "amount": amount,
            "amount_reversed": 0, "currency": currency, "destination": destination, "created": unix_now(),
            "transfer_group": map.get("transfer_group"), "description": map.get("description"),
            "metadata": metadata(&map), "reversed": false,
        });
        book.stripe.transfers.push(transfer.clone());
        Ok(stored(&transfer))
    })
}

/// `GET /v1/transfers`.
async fn list_transfers(State(payouts): State<Arc<Payouts>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let items = payouts.with_book(|book| {
        let matches = |t: &&Value, field: &str| query.get(field).is_none_or(|wanted| t[field] == wanted.as_str());
        book.stripe
            .transfers
            .iter()
            .filter(|t| matches(t, "transfer_group") && matches(t, "destination"))
            .cloned()
            .collect()
    });
    list(items, &query, "/v1/transfers")
}

/// `POST /v1/payouts` (`Stripe-Account` required).
async fn create_payout(State(payouts): State<Arc<Payouts>>, request: Request) -> Response {
    let (parts, post, params) = match open(&payouts, request).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let Some(account) = stripe_account(&parts.headers) else { return respond(no_account()) };
    let p = Arc::clone(&payouts);
    run_post::<StripeWire>(&payouts.sim, post, move |attempt, _| {
        let kind = p.with_book(|book| {
            let seller = book
                .stripe
                .accounts
                .get(&account)
                .and_then(|a| a.body["metadata"]["seller_account"].as_str().map(str::to_owned));
            seller.map_or(TokenKind::NormalSuccess, |s| book.scenario(&s).kind())
        });
        let fault = p.sim.faults.decide(kind, attempt);
        with_fault::<StripeWire>(fault, &p.sim.faults, || {
            new_payout(&p, &account, &params).unwrap_or_else(|reply| reply)
        })
    })
    .await
}

fn new_payout(payouts: &Arc<Payouts>, account_id: &str, params: &Params) -> Result<Reply, Reply> {
    let map = known(params, &["amount", "currency", "description", "statement_descriptor", "method", "metadata["])?;
    let (amount, currency) = amount_and_currency(&map)?;
    if map.get("method").is_some_and(|m| m != "standard") {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            None,
            "The simulator makes standard payouts only.",
            Some("method"),
        ));
    }
    let (object, hold, fail) = payouts.with_book(|book| {
        let seq = book.next_seq();
        let account = book.stripe.accounts.get_mut(account_id).ok_or_else(no_account)?;
        if !account.payouts_enabled {
            return Err(refusal(StatusCode::BAD_REQUEST, Some("payouts_not_allowed"), "Payouts have been disabled on this account.", None));
        }
        let balance = account.balance.entry(currency.clone()).or_default();
        if *balance < amount {
            let message = "You have insufficient funds in your Stripe account for this transfer.";
            return Err(refusal(StatusCode::BAD_REQUEST, Some("balance_insufficient"), message, Some("amount")));
        }
        if book.stripe.payouts.len() >= PAYOUTS_MAX {
            return Err(refusal(StatusCode::BAD_REQUEST, None, "Too many payouts in the simulator.", None));
        }
        *balance -= amount;
        let seller = account.body["metadata"]["seller_account"].as_str().unwrap_or_default().to_owned();
        let scenario = book.scenario(&seller);
        let now = unix_now();
        let object = json!({
            "id": format!("po_{}", random_alnum(ID_RANDOM_LEN)), "object": "payout", "amount": amount,
            "currency": currency, "arrival_date": now + DAY_SECS.unsigned_abs(), "automatic": false, "created": now,
            "description": map.get("description"), "destination": null, "failure_code": null, "failure_message": null,
            "metadata": metadata(&map), "method": "standard", "source_type": "card", "status": "pending", "type": "bank_account",
        });
        book.stripe.payouts.push(Payout { account: account_id.to_owned(), body: object.clone(), seq, created_at_ms: now_ms() });
        Ok((object, scenario.hold, scenario.after_paid()))
    })?;
    payouts.connect_hooks.send(account_id, vec![("payout.created", object.clone())]);
    if !hold {
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        tokio::spawn(live(Arc::clone(payouts), account_id.to_owned(), id, fail));
    }
    Ok(stored(&object))
}

/// `pending` → `in_transit` → `paid` (→ `failed`, money back in the balance), with events.
async fn live(payouts: Arc<Payouts>, account: String, id: String, after_paid: AfterPaid) {
    let moves = [
        ("pending", "in_transit", "payout.updated"),
        ("in_transit", "paid", "payout.paid"),
        ("paid", "failed", "payout.failed"),
    ];
    for (index, (from, to, event)) in moves.into_iter().enumerate() {
        if index == 2 && after_paid == AfterPaid::Stays {
            return;
        }
        step(&payouts).await;
        let moved = payouts.with_book(|book| {
            let payout = book.stripe.payout_mut(&account, &id).filter(|p| p.status() == from)?;
            payout.body["status"] = json!(to);
            if to == "failed" {
                payout.body["failure_code"] = json!("account_closed");
                payout.body["failure_message"] = json!("The bank account has been closed.");
            }
            let (object, amount, currency) =
                (payout.body.clone(), payout.body["amount"].as_u64(), payout.body["currency"].clone());
            if to == "failed"
                && let (Some(amount), Some(currency), Some(acct)) =
                    (amount, currency.as_str(), book.stripe.accounts.get_mut(&account))
            {
                let balance = acct.balance.entry(currency.to_owned()).or_default();
                *balance = balance.saturating_add(amount);
            }
            Some(object)
        });
        let Some(object) = moved else { return };
        if to == "failed" && after_paid == AfterPaid::ReturnedSilently {
            return;
        }
        payouts.connect_hooks.send(&account, vec![(event, object)]);
    }
}

/// `GET /v1/payouts` (the `Stripe-Account`'s payouts; none without it).
async fn list_payouts(
    State(payouts): State<Arc<Payouts>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let account = stripe_account(&headers).unwrap_or_default();
    let items = payouts.with_book(|book| {
        let breaks = &book.statement_breaks;
        let mut items: Vec<Value> = book
            .stripe
            .payouts
            .iter()
            .filter(|p| p.account == account)
            .filter_map(|p| {
                let reference = p.body["metadata"]["payout_reference"].as_str();
                statement::alter(breaks, reference, p.body.clone(), &["amount"])
            })
            .collect();
        items.extend(breaks.iter().filter_map(|b| foreign_payout(b, &account)));
        items
    });
    list(items, &query, "/v1/payouts")
}

/// A foreign payout of the statement breaks on `account`'s list (newest: after ours).
fn foreign_payout(b: &StatementBreak, account: &str) -> Option<Value> {
    let StatementBreak::Foreign { provider, destination, reference, amount_minor, currency, seed } = b else {
        return None;
    };
    if provider != "stripe_connect" || destination.as_deref() != Some(account) {
        return None;
    }
    let now = unix_now();
    Some(json!({
        "id": format!("po_foreign{seed:06}"), "object": "payout", "amount": amount_minor,
        "currency": currency.to_ascii_lowercase(), "arrival_date": now, "automatic": false, "created": now,
        "description": null, "destination": null, "failure_code": null, "failure_message": null,
        "metadata": {"payout_reference": reference}, "method": "standard", "source_type": "card", "status": "paid",
        "type": "bank_account",
    }))
}

/// `GET /v1/payouts/{id}`.
async fn get_payout(State(payouts): State<Arc<Payouts>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let account = stripe_account(&headers).unwrap_or_default();
    match payouts.with_book(|book| book.stripe.payout_mut(&account, &id).map(|p| p.body.clone())) {
        Some(payout) => respond(stored(&payout)),
        None => respond(no_payout(&id)),
    }
}

/// `POST /v1/payouts/{id}/cancel`.
async fn cancel_payout(State(payouts): State<Arc<Payouts>>, Path(id): Path<String>, request: Request) -> Response {
    let (parts, post, _) = match open(&payouts, request).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let account = stripe_account(&parts.headers).unwrap_or_default();
    let p = Arc::clone(&payouts);
    run_post::<StripeWire>(&payouts.sim, post, move |_, _| {
        let canceled = p.with_book(|book| {
            let payout = book.stripe.payout_mut(&account, &id).ok_or_else(|| no_payout(&id))?;
            if payout.status() != "pending" {
                return Err(refusal(
                    StatusCode::BAD_REQUEST,
                    None,
                    "Payouts can only be canceled while they are pending.",
                    None,
                ));
            }
            payout.body["status"] = json!("canceled");
            let (object, amount, currency) = (
                payout.body.clone(),
                payout.body["amount"].as_u64().unwrap_or_default(),
                payout.body["currency"].as_str().unwrap_or_default().to_owned(),
            );
            if let Some(acct) = book.stripe.accounts.get_mut(&account) {
                let balance = acct.balance.entry(currency).or_default();
                *balance = balance.saturating_add(amount);
            }
            Ok(object)
        });
        Executed::now(match canceled {
            Ok(object) => {
                p.connect_hooks.send(&account, vec![("payout.canceled", object.clone())]);
                stored(&object)
            }
            Err(reply) => reply,
        })
    })
    .await
}
