//! Payout statements in reconciliation (issue 13), on both databases: a seller's payout is paid
//! and then returned by the bank, and the provider's webhook of the return is lost (the
//! simulator's `silent_return`), so our books still have the payout out. The night's run reads
//! the payout provider's statement (Toss payouts v2 `GET /v2/payouts`; Stripe Connect
//! `GET /v1/payouts` of the seller's connected account), finds the return as a
//! class-1 `payout_returned` break and heals it through the payout's own workflow (signalled
//! with the provider's report, as the webhook would have): the amount is booked back to the
//! seller and the seller paused. The next run finds nothing; the books hold throughout. And
//! one test per other payout break kind, caused by what the simulator's payout list shows.

mod common;

use common::assert_books_consistent;
use payments_domain::{Currency, SellerAccount};
use payments_proto::payments_v1 as pb;
use payments_recon::{BreakKind, Day, Psp};
use payments_store::{BreakFilter, BreakRecord, BreakStatus, PayoutRecord, PayoutStatus};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};
use std::time::Duration;

fn today(psp: Psp) -> Day {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    psp.day_of_ms(i64::try_from(now).expect("ms"))
}

/// Who pays in and who pays out in one case.
#[derive(Debug, Clone, Copy)]
struct Side {
    psp: Psp,
    payout_provider: &'static str,
    country: &'static str,
    bank_code: &'static str,
    token: &'static str,
    amount: &'static str,
    currency: &'static str,
    failure_code: &'static str,
}

const TOSS: Side = Side {
    psp: Psp::Toss,
    payout_provider: "toss_payouts",
    country: "KR",
    bank_code: "088",
    token: "billing_success",
    amount: "50000",
    currency: "KRW",
    failure_code: "ACCOUNT_CLOSED",
};

const STRIPE: Side = Side {
    psp: Psp::Stripe,
    payout_provider: "stripe_connect",
    country: "US",
    bank_code: "110000000",
    token: "pm_card_visa",
    amount: "500.00",
    currency: "USD",
    failure_code: "account_closed",
};

/// A stack on `side`'s PSP, reconciled with a zero-day window.
async fn stack(url: String, side: Side, long_return_window: bool) -> Stack {
    // A paid payout is watched for its return for ten minutes (longer than the test), or the
    // test stacks' three seconds.
    let payouts: fn(&mut payments_worker::payouts::PayoutConfig) =
        if long_return_window { |c| c.payout_return_window_secs = 600 } else { |_| {} };
    Stack::start(StackOptions {
        database_url: Some(url),
        psp_provider: side.psp.as_str().into(),
        payouts: Some(payouts),
        recon: Some(|c| c.recon_window_days = 0),
        ..StackOptions::new()
    })
    .await
}

/// Registers `seller` with `side`'s payout provider, pays it through a checkout and starts its
/// payout of period 2026-11; answers the payout id.
async fn pay_out(stack: &Stack, side: Side, seller: &str) -> String {
    let mut admin = stack.admin_grpc().await;
    admin
        .register_seller(pb::RegisterSellerRequest {
            seller_account: seller.to_owned(),
            provider: side.payout_provider.into(),
            name: format!("Shop {seller}"),
            email: format!("{seller}@example.com"),
            country: side.country.into(),
            bank_code: side.bank_code.into(),
            account_number: "000123456789".into(),
            holder_name: "Kim Seller".into(),
            minimums: String::new(),
        })
        .await
        .expect("seller registered");
    let checkout = format!("{seller}-chk");
    let body = json!({
        "checkout_id": checkout,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": side.token},
        "payment_orders": [{"seller_account": seller, "amount": side.amount, "currency": side.currency,
            "payment_order_id": format!("{checkout}-1")}],
    });
    assert_eq!(stack.post_payment(&body).await.0, 202);
    stack.wait_done(&checkout).await;
    let request =
        pb::RunPayoutsRequest { seller_account: seller.to_owned(), currency: String::new(), period: "2026-11".into() };
    admin.run_payouts(request).await.expect("payout cycle started");
    format!("payout-{seller}-{}-2026-11", side.currency)
}

async fn wait_payout(stack: &Stack, payout_id: &str, status: PayoutStatus) -> PayoutRecord {
    let store = stack.store.clone();
    stack
        .poll_until(&format!("payout {payout_id} {status:?}"), Duration::from_secs(60), || async {
            store.payout(payout_id).await.ok().flatten().filter(|p| p.status == status)
        })
        .await
}

async fn run(stack: &Stack, psp: Psp) {
    let date = today(psp).to_string();
    common::paymentsctl(stack, &["recon", "run", "--psp", psp.as_str(), "--date", &date]).await.expect("recon run");
}

async fn breaks(stack: &Stack, psp: Psp) -> Vec<BreakRecord> {
    let filter = BreakFilter { psp: Some(psp), day: Some(today(psp)), limit: 500, ..BreakFilter::default() };
    stack.store.recon_breaks(&filter).await.expect("breaks")
}

#[rstest]
#[case::toss_payouts(TOSS)]
#[case::stripe_connect(STRIPE)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_payout_whose_webhook_was_lost_is_booked_back(
    #[case] side: Side,
    #[values(Db::Sqlite, Db::Postgres)] db: Db,
) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, side, true).await;
    let seller = unique("seller-rt");
    stack.payout_scenario(json!({"seller": seller, "paid_then_failed": true, "silent_return": true})).await;
    let payout_id = pay_out(&stack, side, &seller).await;

    // Paid in our books; returned at the provider, which never said so.
    let store = stack.store.clone();
    wait_payout(&stack, &payout_id, PayoutStatus::Paid).await;
    stack
        .poll_until("the provider's return", Duration::from_secs(30), || async {
            let listed = stack.sim_payouts(Some(&payout_id)).await;
            listed.first().filter(|p| p["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("failed"))).cloned()
        })
        .await;
    let ours = store.payout(&payout_id).await.expect("read").expect("payout");
    assert_eq!(ours.status, PayoutStatus::Paid, "the return's webhook was lost: {ours:?}");

    let day = today(side.psp);
    run(&stack, side.psp).await;
    let found = breaks(&stack, side.psp).await;
    assert_eq!(found.iter().map(|b| (b.kind, b.class)).collect::<Vec<_>>(), [(BreakKind::PayoutReturned, 1)]);
    let found = found.into_iter().next().expect("one break");
    assert_eq!(found.order_id.as_deref(), Some(payout_id.as_str()));
    assert_eq!(found.status, BreakStatus::Healing, "the payout's workflow was signalled: {found:?}");

    // The payout's workflow booked it back, with the provider's failure code.
    let failed = wait_payout(&stack, &payout_id, PayoutStatus::Failed).await;
    assert_eq!(failed.failure_code.as_deref(), Some(side.failure_code), "{failed:?}");
    let seller_id = SellerAccount::parse(&seller).expect("seller");
    let balance = store
        .seller_balance(
            &seller_id,
            Currency::parse(side.currency).expect("currency"),
            &payments_store::PayoutHolds::delay(0),
        )
        .await
        .expect("balance");
    assert_eq!((balance.available_minor, balance.in_transit_minor), (50_000, 0), "{balance:?}");
    let paused = store.payout_seller(&seller_id).await.expect("read").expect("seller");
    assert!(paused.paused_reason.as_deref().is_some_and(|r| r.contains(side.failure_code)), "{paused:?}");
    assert_books_consistent(&stack).await;

    run(&stack, side.psp).await;
    let after = store.recon_break(found.break_id).await.expect("read").expect("break");
    assert_eq!((after.status, after.reopened), (BreakStatus::Healed, 0), "{after:?}");
    assert_eq!(store.active_breaks_by_class(side.psp, day).await.expect("counts"), [0, 0, 0]);
    let report = store.recon_run(side.psp, day).await.expect("read").expect("run");
    let matching = &report.report.expect("report")["matching"];
    assert_eq!(matching["payouts_matched"], 1, "{matching}");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// How a payout break is caused: what the provider's statement shows.
fn statement_break(kind: BreakKind, payout_id: &str) -> Value {
    match kind {
        BreakKind::PayoutMissingInBooks => json!({"kind": "foreign", "provider": "toss_payouts",
            "reference": "payout-ghost-KRW-2026-11", "amount_minor": 12345, "currency": "KRW", "seed": 7}),
        BreakKind::PayoutAmountMismatch => json!({"kind": "amount", "reference": payout_id, "delta_minor": 100}),
        BreakKind::PayoutStatusMismatch => json!({"kind": "status", "reference": payout_id, "status": "FAILED"}),
        BreakKind::PayoutMissingAtProvider => json!({"kind": "drop", "reference": payout_id}),
        other => panic!("{other} is not a statement break"),
    }
}

/// One payout break kind each (Toss payouts, both databases): a settled payout, and the
/// provider's statement shows a payout nobody asked for, another amount, the payout returned
/// after we settled it, or no payout at all. The run puts it in its class's queue naming the
/// payout; an operator accepts it; the next run keeps it accepted and leaves nothing active;
/// the books hold throughout.
#[rstest]
#[case::missing_in_books(BreakKind::PayoutMissingInBooks)]
#[case::amount_mismatch(BreakKind::PayoutAmountMismatch)]
#[case::status_mismatch(BreakKind::PayoutStatusMismatch)]
#[case::missing_at_provider(BreakKind::PayoutMissingAtProvider)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_payout_break_kind(#[case] kind: BreakKind, #[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, TOSS, false).await;
    let seller = unique("seller-pk");
    let payout_id = pay_out(&stack, TOSS, &seller).await;
    wait_payout(&stack, &payout_id, PayoutStatus::Settled).await;
    // Before the first run: a statement line once stored is never changed by a later listing.
    let body = json!({"breaks": [statement_break(kind, &payout_id)]});
    let resp = stack.http.post(format!("{}/_sim/payouts/statement", stack.sim_url)).json(&body).send().await;
    assert!(resp.expect("statement breaks").status().is_success(), "{body}");
    run(&stack, Psp::Toss).await;
    let found = breaks(&stack, Psp::Toss).await;
    assert_eq!(found.iter().map(|b| (b.kind, b.class)).collect::<Vec<_>>(), [(kind, kind.class().number())]);
    let found = found.into_iter().next().expect("one break");
    let named = if kind == BreakKind::PayoutMissingInBooks { "payout-ghost-KRW-2026-11" } else { payout_id.as_str() };
    assert_eq!((found.order_id.as_deref(), found.status), (Some(named), BreakStatus::Open), "{found:?}");
    assert_books_consistent(&stack).await;

    let id = found.break_id.to_string();
    common::paymentsctl(&stack, &["recon", "accept", &id, "--note", "the provider will correct it", "--days", "30"])
        .await
        .expect("accepted");
    run(&stack, Psp::Toss).await;
    let after = stack.store.recon_break(found.break_id).await.expect("read").expect("break");
    assert_eq!((after.status, after.reopened), (BreakStatus::Accepted, 0), "{after:?}");
    assert_eq!(stack.store.active_breaks_by_class(Psp::Toss, today(Psp::Toss)).await.expect("counts"), [0, 0, 0]);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
