//! The independent check after every stack test: what the PSP simulator says moved — its
//! captures and refunds, each with our order id, amount, currency and idempotency key — against
//! what the platform stored (orders and their statuses, refunds, the ledger's PSP clearing
//! account), then the books' own consistency (`Store::verify`).
//!
//! The rules, per direct order (a hosted checkout is one PSP payment under the checkout id,
//! for the checkout's total):
//! - SUCCESS or REVERSED: exactly one capture, of the order's amount and currency, under the
//!   PSP reference the order stored; FAILED or NOT_STARTED: none; EXECUTING or UNKNOWN (a test
//!   that ends mid-flight): at most one, of the order's amount.
//! - Every refund at the PSP carries one of our refund ids as its idempotency key and belongs
//!   to that refund's order; SUCCEEDED refunds were made once, for their amount; FAILED ones
//!   never; REQUESTED ones at most once.
//! - The ledger's PSP clearing account holds, per order, the captured amount once the pay-in is
//!   booked, minus every succeeded refund and reversal.
//! - Currencies compare without case (Stripe writes them in lower case).
//! - No capture or refund at the PSP that the platform does not know of, except under the keys
//!   a test declared foreign ([`crate::Stack::expect_foreign_money`]).
//! - Payouts: every payout the simulator's payout providers made carries one of our payout ids
//!   as its reference, was made once, for the stored amount, currency and provider; a payout
//!   the platform holds as sent (REQUESTED, IN_TRANSIT, PAID, SETTLED) exists at the provider.

use payments_store::{PSP_CLEARING_ACCOUNT, Store};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One money movement at the simulator (`/_sim/captures`, `/_sim/refunds`).
#[derive(Debug, Clone, Deserialize)]
struct Movement {
    /// The PSP's id of a refund (captures have none here).
    #[serde(default)]
    id: String,
    payment_intent_id: String,
    payment_order_id: Option<String>,
    amount: i64,
    currency: String,
    idempotency_key: Option<String>,
}

#[derive(Debug)]
struct Order {
    id: String,
    checkout_id: String,
    amount_minor: i64,
    currency: String,
    status: String,
    psp_reference: Option<String>,
    booked: bool,
    hosted: bool,
}

#[derive(Debug)]
struct Refund {
    id: String,
    order_id: String,
    amount_minor: i64,
    currency: String,
    status: String,
    psp_refund_reference: Option<String>,
}

/// Every disagreement between the simulator and the platform's rows (empty: none).
pub(crate) async fn disagreements(
    http: &reqwest::Client,
    sim_url: &str,
    store: &Store,
    foreign: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (captures, refunds) =
        match (sim_list(http, sim_url, "captures").await, sim_list(http, sim_url, "refunds").await) {
            (Ok(c), Ok(r)) => (c, r),
            (Err(e), _) | (_, Err(e)) => return vec![format!("the simulator's records could not be read: {e}")],
        };
    let (orders, stored_refunds, clearing) = match rows(store).await {
        Ok(rows) => rows,
        Err(e) => return vec![format!("the platform's rows could not be read: {e}")],
    };
    let is_foreign = |m: &Movement| {
        m.payment_order_id.as_ref().is_some_and(|k| foreign.contains(k)) || foreign.contains(&m.payment_intent_id)
    };
    // A second capture of an order, refunded in full by an approved reconciliation fix: known
    // to the platform through its break and the fix's refund (checked with the refunds).
    let fixed: BTreeSet<String> =
        match sqlx::query_scalar::<_, String>("SELECT payment_reference FROM recon_fix_refund")
            .fetch_all(store.pool())
            .await
        {
            Ok(references) => references.into_iter().collect(),
            Err(e) => return vec![format!("the platform's reconciliation fixes could not be read: {e}")],
        };
    let captures: Vec<_> =
        captures.into_iter().filter(|m| !is_foreign(m) && !fixed.contains(&m.payment_intent_id)).collect();
    let refunds: Vec<_> = refunds.into_iter().filter(|m| !is_foreign(m)).collect();
    check_captures(&orders, &captures, &mut problems);
    check_refunds(&orders, &stored_refunds, &refunds, &mut problems);
    check_clearing(&orders, &stored_refunds, &clearing, &mut problems);
    match (sim_list(http, sim_url, "payouts").await, payout_rows(store).await) {
        (Ok(at_provider), Ok(stored)) => check_payouts(&stored, &at_provider, &mut problems),
        (Err(e), _) => problems.push(format!("the simulator's payouts could not be read: {e}")),
        (_, Err(e)) => problems.push(format!("the platform's payouts could not be read: {e}")),
    }
    match store.verify().await {
        Ok(report) if report.is_consistent() => {}
        Ok(report) => problems.push(format!("the books are inconsistent: {report:?}")),
        Err(e) => problems.push(format!("the books could not be verified: {e}")),
    }
    problems
}

/// The `kind` array of the simulator's `/_sim/{kind}` (captures, refunds, payouts). A failed
/// request, an error status or an answer without the array is an error, never "nothing moved".
async fn sim_list<T: DeserializeOwned>(http: &reqwest::Client, sim_url: &str, kind: &str) -> Result<Vec<T>, String> {
    let read = async {
        let response = http.get(format!("{sim_url}/_sim/{kind}")).send().await?.error_for_status()?;
        response.json::<HashMap<String, Vec<T>>>().await
    };
    let mut body = read.await.map_err(|e| format!("/_sim/{kind}: {e}"))?;
    body.remove(kind).ok_or_else(|| format!("/_sim/{kind} answered without `{kind}`"))
}

/// One payout a payout provider made (`/_sim/payouts`).
#[derive(Debug, Deserialize)]
struct SimPayout {
    provider: String,
    id: String,
    reference: Option<String>,
    amount: i64,
    currency: String,
}

/// One stored payout.
#[derive(Debug)]
struct PayoutRow {
    id: String,
    amount_minor: i64,
    currency: String,
    provider: String,
    status: String,
    provider_payout_id: Option<String>,
}

async fn payout_rows(store: &Store) -> Result<Vec<PayoutRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT payout_id, amount_minor, currency, provider, status, provider_payout_id FROM payout ORDER BY payout_id",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| PayoutRow {
            id: r.get(0),
            amount_minor: r.get(1),
            currency: r.get(2),
            provider: r.get(3),
            status: r.get(4),
            provider_payout_id: r.get(5),
        })
        .collect())
}

/// Per stored payout: a payout the provider confirmed (REQUESTED, IN_TRANSIT, PAID, SETTLED)
/// was made exactly once at the provider; one not yet (known to be) sent, failed or canceled
/// at most once; every one made for the stored amount, currency and provider, under the
/// provider id the row keeps. No payout at a provider under a reference the platform does not
/// know.
fn check_payouts(stored: &[PayoutRow], at_provider: &[SimPayout], problems: &mut Vec<String>) {
    let mut by_reference: BTreeMap<&str, Vec<&SimPayout>> = BTreeMap::new();
    for p in at_provider {
        match p.reference.as_deref() {
            Some(reference) => by_reference.entry(reference).or_default().push(p),
            None => problems.push(format!("payout {} at {} carries no reference of ours", p.id, p.provider)),
        }
    }
    for row in stored {
        let found = by_reference.remove(row.id.as_str()).unwrap_or_default();
        let expected = match row.status.as_str() {
            "REQUESTED" | "IN_TRANSIT" | "PAID" | "SETTLED" => 1..=1,
            _ => 0..=1,
        };
        if !expected.contains(&found.len()) {
            problems.push(format!(
                "payout {} ({}) was made {} time(s) at the provider, expected {expected:?}",
                row.id,
                row.status,
                found.len()
            ));
        }
        for p in &found {
            if p.amount != row.amount_minor
                || !p.currency.eq_ignore_ascii_case(&row.currency)
                || p.provider != row.provider
            {
                problems.push(format!(
                    "payout {}: {} paid {} {} but the platform stored {} {} through {}",
                    row.id, p.provider, p.amount, p.currency, row.amount_minor, row.currency, row.provider
                ));
            }
            if row.provider_payout_id.as_deref().is_some_and(|id| id != p.id) {
                problems.push(format!(
                    "payout {}: stored provider id {:?}, made as {}",
                    row.id, row.provider_payout_id, p.id
                ));
            }
        }
    }
    for (reference, found) in by_reference {
        problems.push(format!(
            "{} payout(s) at the provider under {reference}, which the platform does not know",
            found.len()
        ));
    }
}

type Rows = (Vec<Order>, Vec<Refund>, HashMap<String, i64>);

async fn rows(store: &Store) -> Result<Rows, sqlx::Error> {
    let pool = store.pool();
    let orders = sqlx::query(
        "SELECT o.payment_order_id, o.checkout_id, o.amount_minor, o.currency, o.status, o.psp_reference, \
         CASE WHEN o.ledger_updated THEN 1 ELSE 0 END AS booked, e.flow \
         FROM payment_order o JOIN payment_event e ON e.checkout_id = o.checkout_id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Order {
            id: r.try_get("payment_order_id")?,
            checkout_id: r.try_get("checkout_id")?,
            amount_minor: r.try_get("amount_minor")?,
            currency: r.try_get("currency")?,
            status: r.try_get("status")?,
            psp_reference: r.try_get("psp_reference")?,
            booked: r.try_get::<i64, _>("booked")? == 1,
            hosted: r.try_get::<String, _>("flow")? == "hosted",
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let refunds = sqlx::query(
        "SELECT refund_id, payment_order_id, amount_minor, currency, status, psp_refund_reference FROM refund",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Refund {
            id: r.try_get("refund_id")?,
            order_id: r.try_get("payment_order_id")?,
            amount_minor: r.try_get("amount_minor")?,
            currency: r.try_get("currency")?,
            status: r.try_get("status")?,
            psp_refund_reference: r.try_get("psp_refund_reference")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // Refunds approved reconciliation fixes made at the PSP of captures the books never had:
    // the platform's too, under their own key.
    let fixes = sqlx::query("SELECT refund_id, amount_minor, currency FROM recon_fix_refund").fetch_all(pool).await?;
    let mut refunds = refunds;
    for r in fixes {
        refunds.push(Refund {
            id: r.try_get("refund_id")?,
            order_id: String::new(),
            amount_minor: r.try_get("amount_minor")?,
            currency: r.try_get("currency")?,
            status: "SUCCEEDED".into(),
            psp_refund_reference: None,
        });
    }
    // Debits minus credits of the clearing account, per order.
    let mut clearing = HashMap::new();
    let entries = sqlx::query(
        "SELECT t.payment_order_id, e.direction, e.amount_minor FROM ledger_entry e \
         JOIN ledger_transaction t ON t.id = e.transaction_id WHERE e.account = $1",
    )
    .bind(PSP_CLEARING_ACCOUNT)
    .fetch_all(pool)
    .await?;
    for r in entries {
        let order: Option<String> = r.try_get("payment_order_id")?;
        let amount: i64 = r.try_get("amount_minor")?;
        let signed = if r.try_get::<String, _>("direction")? == "DEBIT" { amount } else { -amount };
        *clearing.entry(order.unwrap_or_default()).or_insert(0) += signed;
    }
    Ok((orders, refunds, clearing))
}

/// The PSP's order id of an order's payment: the order's own, or its hosted checkout's.
fn psp_order_id(order: &Order) -> &str {
    if order.hosted { &order.checkout_id } else { &order.id }
}

fn check_captures(orders: &[Order], captures: &[Movement], problems: &mut Vec<String>) {
    let mut by_key: BTreeMap<&str, Vec<&Movement>> = BTreeMap::new();
    for c in captures {
        match c.payment_order_id.as_deref() {
            Some(key) => by_key.entry(key).or_default().push(c),
            None => problems.push(format!("capture {} carries no order id of ours", c.payment_intent_id)),
        }
    }
    // Orders grouped by the PSP payment that pays them.
    let mut payments: BTreeMap<&str, Vec<&Order>> = BTreeMap::new();
    for o in orders {
        payments.entry(psp_order_id(o)).or_default().push(o);
    }
    for (key, group) in &payments {
        let found = by_key.remove(key).unwrap_or_default();
        let amount: i64 = group.iter().map(|o| o.amount_minor).sum();
        let currency = &group[0].currency;
        let captured = group.iter().any(|o| matches!(o.status.as_str(), "SUCCESS" | "REVERSED"));
        let never = group.iter().all(|o| matches!(o.status.as_str(), "FAILED" | "NOT_STARTED"));
        let statuses: Vec<_> = group.iter().map(|o| o.status.as_str()).collect();
        let expected = if captured {
            1..=1
        } else if never {
            0..=0
        } else {
            0..=1
        };
        if !expected.contains(&found.len()) {
            problems
                .push(format!("{key} ({statuses:?}) has {} capture(s) at the PSP, expected {expected:?}", found.len()));
        }
        for c in &found {
            if c.amount != amount || !c.currency.eq_ignore_ascii_case(currency) {
                problems.push(format!(
                    "{key}: the PSP captured {} {} but the platform's amount is {amount} {currency}",
                    c.amount, c.currency
                ));
            }
        }
        if let [capture] = found.as_slice() {
            for o in group.iter().filter(|o| matches!(o.status.as_str(), "SUCCESS" | "REVERSED")) {
                if o.psp_reference.as_deref() != Some(capture.payment_intent_id.as_str()) {
                    problems.push(format!(
                        "{}: stored PSP reference {:?}, captured as {}",
                        o.id, o.psp_reference, capture.payment_intent_id
                    ));
                }
            }
        }
    }
    for (key, found) in by_key {
        problems.push(format!("{} capture(s) at the PSP under {key}, which the platform does not know", found.len()));
    }
}

/// Per stored refund: a SUCCEEDED one was made exactly once at the PSP under its id (or, one
/// reconciliation recorded from the PSP's dashboard, is the keyless PSP refund its PSP
/// reference names), a FAILED one never, a REQUESTED one at most once; each for the stored
/// amount and order. No PSP refund the platform does not know.
fn check_refunds(orders: &[Order], stored: &[Refund], refunds: &[Movement], problems: &mut Vec<String>) {
    let orders: HashMap<&str, &Order> = orders.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut by_key: BTreeMap<&str, Vec<&Movement>> = BTreeMap::new();
    let mut keyless: BTreeMap<&str, &Movement> = BTreeMap::new();
    for r in refunds {
        match r.idempotency_key.as_deref() {
            Some(key) => by_key.entry(key).or_default().push(r),
            None => {
                keyless.insert(r.id.as_str(), r);
            }
        }
    }
    for refund in stored {
        let mut found = by_key.remove(refund.id.as_str()).unwrap_or_default();
        if found.is_empty()
            && let Some(dashboard) = refund.psp_refund_reference.as_deref().and_then(|id| keyless.remove(id))
        {
            found.push(dashboard);
        }
        let expected = match refund.status.as_str() {
            "SUCCEEDED" => 1..=1,
            "FAILED" => 0..=0,
            _ => 0..=1,
        };
        if !expected.contains(&found.len()) {
            problems.push(format!(
                "refund {} ({}) was made {} time(s) at the PSP, expected {expected:?}",
                refund.id,
                refund.status,
                found.len()
            ));
        }
        let order_key = orders.get(refund.order_id.as_str()).map(|o| psp_order_id(o));
        for r in found {
            if r.amount != refund.amount_minor || !r.currency.eq_ignore_ascii_case(&refund.currency) {
                problems.push(format!(
                    "refund {}: the PSP refunded {} {}, the platform stored {} {}",
                    refund.id, r.amount, r.currency, refund.amount_minor, refund.currency
                ));
            }
            if order_key.is_some() && r.payment_order_id.as_deref() != order_key {
                problems.push(format!(
                    "refund {} of {} was made on {:?} at the PSP",
                    refund.id, refund.order_id, r.payment_order_id
                ));
            }
        }
    }
    for (key, found) in by_key {
        problems
            .push(format!("{} refund(s) at the PSP under key {key}, which the platform does not know", found.len()));
    }
    for r in keyless.values() {
        problems.push(format!(
            "a refund at the PSP of {:?} ({}) carries no refund id and the platform has not recorded it",
            r.payment_order_id, r.id
        ));
    }
}

fn check_clearing(orders: &[Order], refunds: &[Refund], clearing: &HashMap<String, i64>, problems: &mut Vec<String>) {
    for o in orders {
        if o.booked && !matches!(o.status.as_str(), "SUCCESS" | "REVERSED") {
            problems.push(format!("{} is {} but its pay-in is booked", o.id, o.status));
        }
        let refunded: i64 =
            refunds.iter().filter(|r| r.order_id == o.id && r.status == "SUCCEEDED").map(|r| r.amount_minor).sum();
        let expected = if o.booked { o.amount_minor } else { 0 } - refunded;
        let actual = clearing.get(&o.id).copied().unwrap_or(0);
        if actual != expected {
            problems.push(format!(
                "{}: the PSP clearing account holds {actual} for it, expected {expected} (booked: {}, refunded: {refunded})",
                o.id, o.booked
            ));
        }
    }
}
