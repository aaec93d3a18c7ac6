//! Pay-out end to end (issue 12), on both databases: fees booked at capture, sellers registered
//! with their payout providers (Stripe Connect in USD, Toss payouts v2 in KRW, both through
//! the simulator's real wire formats), a payout cycle run on demand paying each seller its
//! net once per period, refunds before and after the payout (a negative balance netted against
//! the next one), a payout paid then returned by the bank (booked back, the seller paused until
//! its bank account is fixed), and a lost provider answer that still pays once. Every figure of
//! the books is checked against the simulator's own records.

mod common;

use common::{assert_books_consistent, paymentsctl, refund_accepted, wait_refund_final};
use payments_domain::{Currency, SellerAccount};
use payments_proto::payments_v1 as pb;
use payments_store::{PayoutRecord, PayoutStatus, RefundStatus, Store};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};
use std::time::Duration;

async fn stack(database_url: String) -> Stack {
    Stack::start(StackOptions { database_url: Some(database_url), ..StackOptions::new() }).await
}

/// Posts a one-order checkout of `amount` `currency` to `seller` and waits until it is paid.
async fn paid(stack: &Stack, id: &str, seller: &str, amount: &str, currency: &str) -> String {
    let po = format!("{id}-1");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"seller_account": seller, "amount": amount, "currency": currency, "payment_order_id": po}],
    });
    let (status, answer) = stack.post_payment(&body).await;
    assert_eq!(status, 202, "{answer}");
    let done = stack.wait_done(id).await;
    assert_eq!(done.orders[0].status, payments_domain::PaymentOrderStatus::Success, "{done:?}");
    po
}

async fn register(stack: &Stack, seller: &str, provider: &str, country: &str) -> pb::PayoutSeller {
    let mut admin = stack.admin_grpc().await;
    let request = pb::RegisterSellerRequest {
        seller_account: seller.into(),
        provider: provider.into(),
        name: format!("Shop {seller}"),
        email: format!("{seller}@example.com"),
        country: country.into(),
        bank_code: if country == "KR" { "088".into() } else { "110000000".into() },
        account_number: "000123456789".into(),
        holder_name: "Kim Seller".into(),
        minimums: String::new(),
    };
    admin.register_seller(request).await.expect("seller registered").into_inner()
}

async fn run_payouts(stack: &Stack, seller: Option<&str>, period: &str) -> String {
    let mut admin = stack.admin_grpc().await;
    let request = pb::RunPayoutsRequest {
        seller_account: seller.unwrap_or_default().into(),
        currency: String::new(),
        period: period.into(),
    };
    admin.run_payouts(request).await.expect("payout cycle started").into_inner().workflow_id
}

/// The result of a payout cycle run.
async fn cycle_result(stack: &Stack, workflow_id: &str) -> payments_workflows::PayoutCycleResult {
    let t = common::temporal(stack).await;
    let h = t.get_workflow_handle::<payments_workflows::PayoutCycleWorkflow>(workflow_id.to_owned());
    stack
        .poll_until("the payout cycle", Duration::from_secs(30), || async {
            h.get_result(Default::default()).await.ok()
        })
        .await
}

/// Waits until the payout exists and reached `status`.
async fn wait_payout(stack: &Stack, payout_id: &str, status: PayoutStatus) -> PayoutRecord {
    let store = stack.store.clone();
    stack
        .poll_until(&format!("payout {payout_id} {status:?}"), Duration::from_secs(60), || {
            let (store, id) = (store.clone(), payout_id.to_owned());
            async move { store.payout(&id).await.ok().flatten().filter(|p| p.status == status) }
        })
        .await
}

async fn balance(store: &Store, seller: &str, currency: &str) -> payments_store::SellerBalance {
    let seller = SellerAccount::parse(seller).unwrap();
    store
        .seller_balance(&seller, Currency::parse(currency).unwrap(), &payments_store::PayoutHolds::delay(0))
        .await
        .unwrap()
}

async fn revenue(store: &Store, currency: &str) -> i64 {
    sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE direction WHEN 'CREDIT' THEN amount_minor ELSE -amount_minor END), 0) AS BIGINT) \
         FROM ledger_entry WHERE account = 'platform_revenue' AND currency = $1",
    )
    .bind(currency)
    .fetch_one(store.pool())
    .await
    .map(|r| sqlx::Row::get::<i64, _>(&r, 0))
    .unwrap()
}

/// The simulator's payouts with our reference: exactly one, of `amount_minor`.
async fn paid_once(stack: &Stack, reference: &str, amount_minor: i64) -> Value {
    let at_provider = stack.sim_payouts(Some(reference)).await;
    assert_eq!(at_provider.len(), 1, "one payout at the provider for {reference}: {at_provider:?}");
    assert_eq!(at_provider[0]["amount"].as_i64(), Some(amount_minor), "{at_provider:?}");
    at_provider[0].clone()
}

/// An operator cancels a payout the provider has accepted but not paid yet (the simulator's
/// payouts take a minute per step here) with `paymentsctl payout cancel`: it is canceled at the
/// provider, ends CANCELED, its amount is booked back to the seller's available balance, the
/// seller is not paused, and the next period pays the same amount once.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancels_a_payout_before_it_is_paid(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let mut sim = psp_simulator::SimConfig::new();
    sim.payout_step_ms = 60_000;
    let stack = Stack::start(StackOptions { database_url: Some(url), sim, ..StackOptions::new() }).await;
    let seller = unique("seller-pc");
    register(&stack, &seller, "stripe_connect", "US").await;
    paid(&stack, &format!("{seller}-chk-1"), &seller, "30.00", "USD").await;
    run_payouts(&stack, Some(&seller), "2026-11").await;
    let id = format!("payout-{seller}-USD-2026-11");
    wait_payout(&stack, &id, PayoutStatus::Requested).await;
    assert_eq!(balance(&stack.store, &seller, "USD").await.in_transit_minor, 3_000);

    paymentsctl(&stack, &["payout", "cancel", &id, "--reason", "seller asked to hold funds"]).await.unwrap();
    let canceled = wait_payout(&stack, &id, PayoutStatus::Canceled).await;
    assert_eq!(canceled.amount.amount_minor(), 3_000);
    let at_provider = paid_once(&stack, &id, 3_000).await;
    assert_eq!(at_provider["status"], "canceled", "canceled at the provider: {at_provider}");
    let b = balance(&stack.store, &seller, "USD").await;
    assert_eq!((b.total_minor, b.available_minor, b.in_transit_minor), (3_000, 3_000, 0), "booked back: {b:?}");
    let registered = stack.store.payout_seller(&SellerAccount::parse(seller.clone()).unwrap()).await.unwrap().unwrap();
    assert!(registered.paused_reason.is_none(), "a cancel does not pause the seller: {registered:?}");

    run_payouts(&stack, Some(&seller), "2026-12").await;
    let next = wait_payout(&stack, &format!("payout-{seller}-USD-2026-12"), PayoutStatus::Requested).await;
    assert_eq!(next.amount.amount_minor(), 3_000);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// A rolling reserve of 10 % held for 30 days (`PAYOUT_RESERVE_BPS`, `PAYOUT_RESERVE_DAYS`, on
/// the worker and the gateway): the balance shows 10 % of a fresh 100.05 capture reserved
/// (10.005, rounded up to 10.01), the payout cycle pays only the 90.04 available, and the
/// reserve stays in the seller's balance.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_reserve_holds_its_share_back_from_the_payout(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options = StackOptions {
        database_url: Some(url),
        payouts: Some(|c| {
            c.payout_reserve_bps = 1000;
            c.payout_reserve_days = 30;
        }),
        ..StackOptions::new()
    };
    let stack = Stack::start(options).await;
    let seller = unique("seller-rr");
    register(&stack, &seller, "stripe_connect", "US").await;
    paid(&stack, &format!("{seller}-chk-1"), &seller, "100.05", "USD").await;
    let (code, body) = stack.get(&format!("/v1/sellers/{seller}/balance")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["balances"][0],
        json!({"currency": "USD", "total": "100.05", "pending": "0.00", "reserved": "10.01", "available": "90.04", "in_transit": "0.00"})
    );
    run_payouts(&stack, Some(&seller), "2026-11").await;
    let p = wait_payout(&stack, &format!("payout-{seller}-USD-2026-11"), PayoutStatus::Settled).await;
    assert_eq!(p.amount.amount_minor(), 9_004);
    paid_once(&stack, &p.payout_id, 9_004).await;
    let (_, body) = stack.get(&format!("/v1/sellers/{seller}/balance")).await;
    assert_eq!(
        (body["balances"][0]["total"].as_str(), body["balances"][0]["reserved"].as_str()),
        (Some("10.01"), Some("10.01")),
        "{body}"
    );
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// Two sellers, two currencies, two providers, fees, a partial refund before and one after the
/// payout: every figure of the books; the same period run again pays nothing more; the
/// negative balance left by the late refund is netted against the next payout.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_seller_is_paid_its_net_once_per_period(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    paymentsctl(&stack, &["fees", "set", "--currency", "USD", "--bps", "290", "--fixed", "0.30"]).await.unwrap();
    paymentsctl(&stack, &["fees", "set", "--currency", "KRW", "--bps", "300"]).await.unwrap();
    // Workflow ids are shared by every test on the Temporal server: unique sellers and checkouts.
    let (sa, sb) = (unique("seller-pa"), unique("seller-pb"));
    let (sa, sb) = (sa.as_str(), sb.as_str());
    let chk = |n: &str| format!("{sa}-chk-{n}");
    let a = register(&stack, sa, "stripe_connect", "US").await;
    assert!(a.provider_seller_ref.starts_with("acct_") && a.payable, "{a:?}");
    assert_eq!(a.masked_account, "********6789");
    let b = register(&stack, sb, "toss_payouts", "KR").await;
    assert!(b.payable, "{b:?}");

    let big = paid(&stack, &chk("1"), sa, "100.00", "USD").await;
    let small = paid(&stack, &chk("2"), sa, "50.00", "USD").await;
    paid(&stack, &chk("3"), sb, "30000", "KRW").await;
    // 100.00 pays a fee of 2.90 + 0.30; refunding 20.00 of it gives back round(320 x 0.2) = 64.
    let before = refund_accepted(&stack, &big, Some("20.00"), "one item returned").await;
    assert_eq!(wait_refund_final(&stack, &before).await.status, RefundStatus::Succeeded);
    let a_net = (10_000 - 320) + (5_000 - 175) - (2_000 - 64);
    assert_eq!(balance(&stack.store, sa, "USD").await.available_minor, a_net);
    assert_eq!(balance(&stack.store, sb, "KRW").await.available_minor, 30_000 - 900);

    let first = run_payouts(&stack, None, "2026-11").await;
    assert_eq!(cycle_result(&stack, &first).await.started, 2);
    let pa = wait_payout(&stack, &format!("payout-{sa}-USD-2026-11"), PayoutStatus::Settled).await;
    let pb = wait_payout(&stack, &format!("payout-{sb}-KRW-2026-11"), PayoutStatus::Settled).await;
    assert_eq!((pa.amount.amount_minor(), pa.provider.as_str()), (a_net, "stripe_connect"));
    assert_eq!((pb.amount.amount_minor(), pb.provider.as_str()), (29_100, "toss_payouts"));
    paid_once(&stack, &pa.payout_id, a_net).await;
    paid_once(&stack, &pb.payout_id, 29_100).await;
    for (seller, currency) in [(sa, "USD"), (sb, "KRW")] {
        let b = balance(&stack.store, seller, currency).await;
        assert_eq!((b.total_minor, b.available_minor, b.in_transit_minor), (0, 0, 0), "{b:?}");
    }
    assert_eq!(revenue(&stack.store, "USD").await, 320 + 175 - 64);
    assert_eq!(revenue(&stack.store, "KRW").await, 900);

    // The same period again, by hand: nothing more is paid.
    // (Both balances are zero now: new captures first, so the run has candidates to skip.)
    paid(&stack, &chk("4"), sa, "1.00", "USD").await;
    paid(&stack, &chk("5"), sb, "1000", "KRW").await;
    let again = run_payouts(&stack, None, "2026-11").await;
    let again = cycle_result(&stack, &again).await;
    assert_eq!((again.started, again.existing), (0, 2), "{again:?}");
    paymentsctl(&stack, &["payout", "run", "--seller", sa, "--period", "2026-11"]).await.unwrap();
    paid_once(&stack, &pa.payout_id, a_net).await;
    assert_eq!(stack.store.payouts(None, 100).await.unwrap().len(), 2);

    // A refund after the payout: 10.00 of the 50.00 order; the seller gives back 10.00 less
    // round(175 x 0.2) = 35 of fee, which its balance does not hold: carried as -9.65.
    let late = refund_accepted(&stack, &small, Some("10.00"), "returned after payout").await;
    assert_eq!(wait_refund_final(&stack, &late).await.status, RefundStatus::Succeeded);
    // The 1.00 captured above (net 0.67) stays: 0.67 - 9.65 = -8.98 is carried.
    assert_eq!(balance(&stack.store, sa, "USD").await.total_minor, (100 - 33) - 965);
    let below = run_payouts(&stack, Some(sa), "2026-12a").await;
    assert_eq!(cycle_result(&stack, &below).await.started, 0, "nothing is paid out below zero");
    // The next capture first pays the carried debt back: 20.00 less 0.88 of fee, less 8.98.
    paid(&stack, &chk("6"), sa, "20.00", "USD").await;
    run_payouts(&stack, Some(sa), "2026-12b").await;
    let netted = wait_payout(&stack, &format!("payout-{sa}-USD-2026-12b"), PayoutStatus::Settled).await;
    assert_eq!(netted.amount.amount_minor(), (2_000 - 88) + (100 - 33) - 965);
    paid_once(&stack, &netted.payout_id, 1_014).await;

    // The provider's paid total equals the ledger's settled payouts, per currency.
    let settled: i64 = stack
        .store
        .payouts(None, 100)
        .await
        .unwrap()
        .iter()
        .filter(|p| p.status == PayoutStatus::Settled && p.amount.currency().code() == "USD")
        .map(|p| p.amount.amount_minor())
        .sum();
    let at_provider: i64 = stack
        .sim_payouts(None)
        .await
        .iter()
        .filter(|p| p["reference"].as_str().is_some_and(|r| r.starts_with(&format!("payout-{sa}-"))))
        .map(|p| p["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(settled, at_provider);
    assert_books_consistent(&stack).await;
    paymentsctl(&stack, &["balance", "show", sa]).await.unwrap();
    paymentsctl(&stack, &["payout", "list", "--seller", sa]).await.unwrap();
    // 1000 KRW captured after the payout, less 3 %: 970 available.
    let (code, body) = stack.get(&format!("/v1/sellers/{sb}/balance")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["balances"][0],
        json!({"currency": "KRW", "total": "970", "pending": "0", "reserved": "0", "available": "970", "in_transit": "0"})
    );
    stack.shutdown().await;
}

/// A payout the provider reports paid and the bank then returns (`account_closed`): the money
/// is booked back to the seller's available balance with the failure code, the seller's
/// payouts pause (the next cycle skips it) until an operator marks its bank account fixed;
/// then a retry pays it. A lost answer to the payout request still pays exactly once.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_payout_comes_back_and_pauses_the_seller(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    let sr = unique("seller-pr");
    let sr = sr.as_str();
    stack.payout_scenario(json!({"seller": sr, "paid_then_failed": true})).await;
    register(&stack, sr, "toss_payouts", "KR").await;
    paid(&stack, &format!("{sr}-chk-1"), sr, "50000", "KRW").await;
    run_payouts(&stack, Some(sr), "2026-11").await;
    let failed = wait_payout(&stack, &format!("payout-{sr}-KRW-2026-11"), PayoutStatus::Failed).await;
    assert_eq!(failed.failure_code.as_deref(), Some("ACCOUNT_CLOSED"), "{failed:?}");
    let b = balance(&stack.store, sr, "KRW").await;
    assert_eq!((b.available_minor, b.in_transit_minor), (50_000, 0), "booked back: {b:?}");
    let seller = stack.store.payout_seller(&SellerAccount::parse(sr).unwrap()).await.unwrap().unwrap();
    assert!(seller.paused_reason.as_deref().is_some_and(|r| r.contains("ACCOUNT_CLOSED")), "{seller:?}");
    assert_books_consistent(&stack).await;

    // Paused: the next cycle makes no payout.
    run_payouts(&stack, Some(sr), "2026-12").await;
    let t = common::temporal(&stack).await;
    let h = t.get_workflow_handle::<payments_workflows::PayoutWorkflow>(format!("payout-{sr}-KRW-2026-12"));
    let skipped = stack
        .poll_until("the paused payout", Duration::from_secs(30), || async {
            h.get_result(Default::default()).await.ok()
        })
        .await;
    assert_eq!(skipped.status, "SKIPPED");
    assert!(skipped.reason.as_deref().is_some_and(|r| r.contains("ACCOUNT_CLOSED")), "{skipped:?}");

    // The bank account is fixed; the next request's answer is lost once: paid exactly once.
    stack.payout_scenario(json!({"seller": sr, "fault": "lost_response"})).await;
    paymentsctl(&stack, &["seller", "mark-bank-fixed", sr]).await.unwrap();
    paymentsctl(&stack, &["payout", "retry", &failed.payout_id]).await.unwrap();
    let retried = wait_payout(&stack, &format!("payout-{sr}-KRW-2026-11-retry1"), PayoutStatus::Settled).await;
    assert_eq!(retried.amount.amount_minor(), 50_000);
    paid_once(&stack, &retried.payout_id, 50_000).await;
    let b = balance(&stack.store, sr, "KRW").await;
    assert_eq!((b.total_minor, b.in_transit_minor), (0, 0), "{b:?}");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The payout Schedule: created at start-up, brought up to date by the next start (never a
/// second schedule), and its trigger runs the cycle for the current period; the same period
/// run again by hand pays nothing more; `PAYOUT_SCHEDULE=off` pauses it.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_and_a_manual_run_pay_a_period_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    use payments_worker::payouts::{PayoutConfig, ensure_schedule, schedule_id};
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    let seller = unique("seller-ps");
    register(&stack, &seller, "stripe_connect", "US").await;
    paid(&stack, &format!("{seller}-chk-1"), &seller, "12.00", "USD").await;

    let client = common::temporal(&stack).await;
    let queue = stack.worker_config().shared.task_queue;
    let mut config: PayoutConfig = stack.worker_config().shared.payouts;
    config.payout_schedule = "monthly".into();
    config.payout_anchor = 1;
    ensure_schedule(&client, &config, &queue).await.expect("schedule created");
    config.payout_anchor = 15;
    ensure_schedule(&client, &config, &queue).await.expect("schedule updated, not duplicated");
    let handle = client.get_schedule_handle(schedule_id(&queue));
    let described = handle.describe(Default::default()).await.unwrap();
    let calendars = &described.raw().schedule.as_ref().unwrap().spec.as_ref().unwrap().structured_calendar;
    let days: Vec<String> = calendars.iter().flat_map(|c| c.day_of_month.iter().map(|r| r.start.to_string())).collect();
    let legacy = &described.raw().schedule.as_ref().unwrap().spec.as_ref().unwrap().calendar;
    let legacy_days: Vec<&str> = legacy.iter().map(|c| c.day_of_month.as_str()).collect();
    assert!(days == ["15"] || legacy_days == ["15"], "the anchor moved: {days:?} {legacy_days:?}");
    assert!(!described.paused());

    handle.trigger(Default::default(), Default::default()).await.expect("schedule triggered");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let period = payments_workflows::PayoutInterval::Monthly.period(now);
    let payout_id = format!("payout-{seller}-USD-{period}");
    let settled = wait_payout(&stack, &payout_id, PayoutStatus::Settled).await;
    assert_eq!(settled.amount.amount_minor(), 1_200);
    let manual = run_payouts(&stack, Some(&seller), "").await;
    // Nothing left to pay: the seller is no longer a candidate; with a new capture it is, and
    // the period's payout already exists.
    cycle_result(&stack, &manual).await;
    paid(&stack, &format!("{seller}-chk-2"), &seller, "3.00", "USD").await;
    let again = run_payouts(&stack, Some(&seller), &period).await;
    let again = cycle_result(&stack, &again).await;
    assert_eq!((again.started, again.existing), (0, 1), "{again:?}");
    paid_once(&stack, &payout_id, 1_200).await;

    config.payout_schedule = "off".into();
    ensure_schedule(&client, &config, &queue).await.expect("schedule paused");
    assert!(handle.describe(Default::default()).await.unwrap().paused());
    handle.delete(Default::default()).await.unwrap();
    stack.shutdown().await;
}
