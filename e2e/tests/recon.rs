//! Reconciliation end to end (issue 13), on both databases and both PSPs: real checkouts and
//! refunds through the gateway, the simulator's settlement report read through the PSP's own
//! API (Stripe balance transactions with expanded sources, Toss settlements), the `recon`
//! workflow matching it, healing class-1 breaks through the checkout's janitor and the
//! settlement booking, and an operator's approved fix running through the refund path. The
//! simulator injects each break into its report (seeded, by target) the way a PSP's file
//! would carry it.

mod common;

use common::{assert_books_consistent, refund_accepted, wait_refund_final};
use payments_domain::{PaymentOrderId, PaymentOrderStatus as S};
use payments_recon::{BreakKind, Day, Psp};
use payments_store::{BreakFilter, BreakRecord, BreakStatus, PSP_CLEARING_ACCOUNT, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions, unique};
use payments_workflows::messages::WaitLimits;
use payments_workflows::recon_contract::{FixRequest, ReconReport, recon_fix_workflow_id, recon_workflow_id};
use payments_workflows::{ReconFixWorkflow, ReconInput, ReconWorkflow};
use rstest::rstest;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use temporalio_client::{WorkflowIdReusePolicy, WorkflowStartOptions};

/// Bound on one reconciliation run of a test day.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn psp_of(name: &str) -> Psp {
    Psp::parse(name).expect("psp")
}

/// The PSP's settlement day now.
fn today(psp: Psp) -> Day {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    psp.day_of_ms(i64::try_from(now).expect("ms"))
}

/// A test card or billing key of the PSP, and the currency and amounts its checkouts use.
struct Terms {
    token: &'static str,
    lost: &'static str,
    currency: &'static str,
    /// Amount `n` in the currency's major units, as a wire string.
    amount: fn(u32) -> String,
    /// The other currency a line is moved to.
    other_currency: &'static str,
}

fn terms(psp: Psp) -> Terms {
    match psp {
        Psp::Stripe => Terms {
            token: "pm_card_visa",
            lost: "pm_card_sim_lost_response",
            currency: "USD",
            amount: |n| format!("{n}.00"),
            other_currency: "EUR",
        },
        Psp::Toss => Terms {
            token: "billing_success",
            lost: "billing_sim_lost_response",
            currency: "KRW",
            amount: |n| format!("{}", n * 100),
            other_currency: "USD",
        },
    }
}

/// Starts the run of `psp`'s `day` (again, if it ran before) and answers its report.
async fn reconcile(stack: &Stack, psp: Psp, day: Day) -> ReconReport {
    let client = common::temporal(stack).await;
    let id = recon_workflow_id(psp, day, &stack.task_queue);
    let options = WorkflowStartOptions::new(stack.task_queue.clone(), id.clone())
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .build();
    let input = ReconInput { psp, day, settings: None };
    let handle = client.start_workflow(ReconWorkflow::run, input, options).await.expect("recon started");
    let result = tokio::time::timeout(RUN_TIMEOUT, handle.get_result(Default::default()));
    result.await.expect("the run finished in time").expect("the run completed")
}

/// Approves a break's suggested fix as an operator would, and waits for it.
async fn approve(stack: &Stack, break_id: i64) -> String {
    let client = common::temporal(stack).await;
    let options =
        WorkflowStartOptions::new(stack.task_queue.clone(), recon_fix_workflow_id(break_id, &stack.task_queue))
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .build();
    let request = FixRequest { break_id, operator: "finance-ops".into() };
    let handle = client.start_workflow(ReconFixWorkflow::run, request, options).await.expect("fix started");
    let result = tokio::time::timeout(RUN_TIMEOUT, handle.get_result(Default::default()));
    result.await.expect("the fix finished in time").expect("the fix completed")
}

/// Every break a run of `day` last saw, by kind.
async fn breaks(stack: &Stack, psp: Psp, day: Day) -> BTreeMap<BreakKind, Vec<BreakRecord>> {
    let filter = BreakFilter { psp: Some(psp), day: Some(day), limit: 500, ..BreakFilter::default() };
    let mut by_kind: BTreeMap<BreakKind, Vec<BreakRecord>> = BTreeMap::new();
    for record in stack.store.recon_breaks(&filter).await.expect("breaks") {
        by_kind.entry(record.kind).or_default().push(record);
    }
    by_kind
}

/// Tells the simulator to report `breaks` in `psp`'s settlement data.
async fn inject(stack: &Stack, psp: Psp, breaks: Value) {
    let body = json!({ "psp": psp.as_str(), "breaks": breaks });
    let resp = stack.http.post(format!("{}/_sim/settlements/breaks", stack.sim_url)).json(&body).send().await;
    let resp = resp.expect("POST /_sim/settlements/breaks");
    assert!(resp.status().is_success(), "breaks {body}: {}", resp.status());
}

/// The PSP's payment reference of an order.
async fn reference(stack: &Stack, po: &str) -> String {
    let order = common::order(stack, po).await;
    order.psp_reference.expect("a captured order has its PSP reference")
}

/// The clearing account's balance in `currency` (debits minus credits).
async fn clearing(stack: &Stack, currency: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COALESCE(SUM(CASE direction WHEN 'DEBIT' THEN amount_minor ELSE -amount_minor END), 0) AS BIGINT) \
         FROM ledger_entry WHERE account = $1 AND currency = $2",
    )
    .bind(PSP_CLEARING_ACCOUNT)
    .bind(currency)
    .fetch_one(stack.store.pool())
    .await
    .expect("clearing balance")
}

/// A day with captures (one line for a hosted checkout's two orders on Toss), a partial
/// refund, all matched: no break, the settlement booked from the PSP's figures so that the
/// day's clearing account nets to zero, `ReconStatus = CLEAN`. Running the day again stores
/// nothing new, finds nothing new and books nothing twice.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_day_is_matched_settled_and_idempotent(
    #[values(Db::Sqlite, Db::Postgres)] db: Db,
    #[values("stripe", "toss")] psp: &str,
) {
    let Some(url) = db.url().await else { return };
    let psp = psp_of(psp);
    let t = terms(psp);
    let stack = Stack::start(StackOptions {
        database_url: Some(url),
        psp_provider: psp.as_str().into(),
        ..StackOptions::new()
    })
    .await;
    let po1 = common::paid_order(&stack, t.token, &(t.amount)(100), t.currency).await;
    common::paid_order(&stack, t.token, &(t.amount)(40), t.currency).await;
    if psp == Psp::Toss {
        let checkout = unique("hosted");
        stack.create_hosted_two_sellers(&checkout).await;
        common::pay_hosted(&stack, &checkout, 20_000).await;
        stack.wait_done(&checkout).await;
    }
    let refund = refund_accepted(&stack, &po1, Some(&(t.amount)(25)), "changed mind").await;
    assert_eq!(wait_refund_final(&stack, &refund).await.status, RefundStatus::Succeeded);

    let day = today(psp);
    let report = reconcile(&stack, psp, day).await;
    let lines = if psp == Psp::Toss { 4 } else { 3 };
    assert_eq!(
        (report.import.lines_stored, report.matching.lines, report.matching.matched),
        (lines, lines, lines),
        "{report:?}"
    );
    assert!(report.matching.breaks.is_empty(), "{report:?}");
    assert_eq!(report.matching.open_by_class, [0, 0, 0]);
    let [part] = &report.settlement.parts[..] else { panic!("one settlement part: {report:?}") };
    let captured_minor = sqlx::query_scalar::<_, i64>(
        "SELECT CAST(SUM(amount_minor) AS BIGINT) FROM payment_order WHERE status = 'SUCCESS'",
    )
    .fetch_one(stack.store.pool())
    .await
    .expect("captured");
    let refunded_minor = wait_refund_final(&stack, &refund).await.amount.amount_minor();
    assert_eq!(part.gross_minor, captured_minor - refunded_minor);
    assert_eq!(part.fee_minor, part.contract_fee_minor, "the simulator charges the contract's fee");
    assert_eq!(clearing(&stack, t.currency).await, 0, "a settled day nets the clearing account to zero");
    let run = stack.store.recon_run(psp, day).await.expect("run").expect("stored");
    assert_eq!((run.status.as_str(), run.attempts), ("COMPLETED", 1));
    let clean = format!(
        "WorkflowId = '{}' AND ReconDate = '{day}' AND ReconStatus = 'CLEAN'",
        recon_workflow_id(psp, day, &stack.task_queue)
    );
    stack
        .poll_until("the run to be listed CLEAN", RUN_TIMEOUT, || async {
            (common::visible(&stack, &clean).await == 1).then_some(())
        })
        .await;

    let again = reconcile(&stack, psp, day).await;
    assert_eq!((again.import.lines_stored, again.matching.matched, again.matching.new), (0, lines, 0), "{again:?}");
    assert!(again.settlement.parts.is_empty(), "nothing booked twice: {again:?}");
    assert_eq!(stack.store.recon_run(psp, day).await.expect("run").expect("stored").attempts, 2);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// Every line break at once, injected by the simulator into its report of the day (the
/// settlement window is 0 days here: what is missing today is missing), plus a capture whose
/// answer was lost (its janitor waiting), a refund made in the PSP's dashboard and a refund of
/// ours the PSP does not report. Each break is found once with its class; class 1 is healed
/// through the workflows (the duplicated line ignored, the fee difference booked, the lost
/// capture's janitor signalled and the capture booked); an operator approves the dashboard
/// refund's suggested fix, which books it through the refund path; the next run heals those
/// and keeps the rest in their queues; the books hold throughout. The payout provider's
/// statement of the day shows a settled payout with another amount and a payout nobody asked
/// for (the returned payout healed through its workflow has its own test, `recon_payouts.rs`).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_break_in_one_day(
    #[values(Db::Sqlite, Db::Postgres)] db: Db,
    #[values("stripe", "toss")] psp: &str,
) {
    let Some(url) = db.url().await else { return };
    let psp = psp_of(psp);
    let t = terms(psp);
    let options = StackOptions {
        database_url: Some(url),
        psp_provider: psp.as_str().into(),
        // No webhook and a janitor that would wait ten minutes: only reconciliation wakes it.
        webhooks: false,
        waits: WaitLimits { psp_attempts_max: 2, unknown_recheck_secs: [600, 600, 600], ..WaitLimits::DEFAULT },
        recon: Some(|c| c.recon_window_days = 0),
        ..StackOptions::new()
    };
    let stack = Stack::start(options).await;
    let mut po = BTreeMap::new();
    for (name, major) in [
        ("drop", 11),
        ("over", 12),
        ("fee", 100),
        ("feebig", 101),
        ("currency", 13),
        ("dup", 14),
        ("twice", 15),
        ("dash", 16),
        ("ours", 17),
        ("clean", 18),
    ] {
        po.insert(name, common::paid_order(&stack, t.token, &(t.amount)(major), t.currency).await);
    }
    let ours = refund_accepted(&stack, &po["ours"], Some(&(t.amount)(5)), "buyer asked").await;
    assert_eq!(wait_refund_final(&stack, &ours).await.status, RefundStatus::Succeeded);
    // The lost capture: charged, its answer lost, the PSP's status API down until the order is
    // UNKNOWN, then back; nobody asks again (no webhook, the janitor's next round far away).
    stack.psp_outage(false, true, false).await;
    let (lost_checkout, lost) = stack.post_one_order(t.lost, &(t.amount)(19), t.currency).await;
    // In the janitor's hands: the charge's own status queries have given up (an order is
    // UNKNOWN before they have, and one of them could still find the capture).
    common::wait_janitor(&stack, &lost_checkout, &lost).await;
    stack.psp_outage(false, false, false).await;
    let dashboard = json!({"psp": psp.as_str(), "payment_reference": reference(&stack, &po["dash"]).await, "amount_minor": minor(&t, 4), "reason": "requested_by_customer"});
    let resp = stack
        .http
        .post(format!("{}/_sim/dashboard/refunds", stack.sim_url))
        .json(&dashboard)
        .send()
        .await
        .expect("dashboard refund");
    assert!(resp.status().is_success(), "dashboard refund: {}", resp.status());
    // A seller's payout, settled (no webhooks: the payout's own status check sees it paid);
    // the provider's statement then shows it with another amount, and a payout nobody asked
    // for.
    let (seller, payout_id) = settled_payout(&stack, psp, &t).await;
    let (provider, destination) = stack
        .store
        .payout_seller(&payments_domain::SellerAccount::parse(&seller).expect("seller"))
        .await
        .expect("read")
        .map(|s| (s.provider, s.provider_seller_ref))
        .expect("registered");
    let statement = json!({"breaks": [
        {"kind": "amount", "reference": payout_id, "delta_minor": 100},
        {"kind": "foreign", "provider": provider, "destination": destination, "reference": "payout-ghost",
            "amount_minor": minor(&t, 9), "currency": t.currency, "seed": 9},
    ]});
    let resp = stack.http.post(format!("{}/_sim/payouts/statement", stack.sim_url)).json(&statement).send().await;
    assert!(resp.expect("statement breaks").status().is_success());
    let target = |name: &str| json!({"order_id": po[name]});
    inject(&stack, psp, json!([
        {"kind": "drop", "target": target("drop")},
        {"kind": "amount", "target": target("over"), "delta_minor": 100},
        {"kind": "fee", "target": target("fee"), "delta_minor": 1},
        {"kind": "fee", "target": target("feebig"), "delta_minor": 500},
        {"kind": "currency", "target": target("currency"), "currency": t.other_currency},
        {"kind": "duplicate", "target": target("dup")},
        {"kind": "foreign", "amount_minor": minor(&t, 15), "currency": t.currency, "date": today(psp).to_string(), "seed": 7, "order_id": po["twice"]},
        {"kind": "foreign", "amount_minor": minor(&t, 42), "currency": t.currency, "date": today(psp).to_string(), "seed": 8},
        {"kind": "drop", "target": {"order_id": po["ours"], "entry_kind": "refund"}},
    ])).await;

    let day = today(psp);
    let report = reconcile(&stack, psp, day).await;
    let found = breaks(&stack, psp, day).await;
    let expected = [
        (BreakKind::MissingAtPsp, 2, BreakStatus::Open),
        (BreakKind::AmountOver, 2, BreakStatus::Open),
        (BreakKind::FeeWithinTolerance, 1, BreakStatus::Healed),
        (BreakKind::FeeMismatch, 2, BreakStatus::Open),
        (BreakKind::CurrencyMismatch, 3, BreakStatus::Open),
        (BreakKind::DuplicateLine, 1, BreakStatus::Healed),
        (BreakKind::DuplicateCapture, 2, BreakStatus::Open),
        (BreakKind::UnknownPayment, 3, BreakStatus::Open),
        (BreakKind::RefundMissingInBooks, 2, BreakStatus::Open),
        (BreakKind::RefundMissingAtPsp, 2, BreakStatus::Open),
        (BreakKind::CaptureUnconfirmed, 1, BreakStatus::Healing),
        (BreakKind::PayoutAmountMismatch, 2, BreakStatus::Open),
        (BreakKind::PayoutMissingInBooks, 3, BreakStatus::Open),
    ];
    let mut got: Vec<(BreakKind, i64, &str)> =
        found.values().flatten().map(|b| (b.kind, b.class, b.status.as_str())).collect();
    let mut want: Vec<(BreakKind, i64, &str)> = expected.iter().map(|(k, c, s)| (*k, *c, s.as_str())).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{report:?}");
    assert_eq!(found[&BreakKind::MissingAtPsp][0].order_id.as_deref(), Some(po["drop"].as_str()));
    assert_eq!(found[&BreakKind::DuplicateCapture][0].order_id.as_deref(), Some(po["twice"].as_str()));
    assert_eq!(found[&BreakKind::CaptureUnconfirmed][0].order_id.as_deref(), Some(lost.as_str()));
    assert_eq!(found[&BreakKind::PayoutAmountMismatch][0].order_id.as_deref(), Some(payout_id.as_str()));
    assert_eq!(found[&BreakKind::PayoutMissingInBooks][0].order_id.as_deref(), Some("payout-ghost"));
    assert_eq!(report.heals_sent, 1);
    assert_eq!(report.settlement.fee_breaks_healed, 1);
    assert_books_consistent(&stack).await;

    // The janitor, woken by reconciliation, finds and books the lost capture.
    let done = stack.wait_done(&lost_checkout).await;
    assert_eq!(done.orders[0].status, S::Success);
    // An operator approves the dashboard refund's suggested fix: booked as a refund of ours.
    let dash = &found[&BreakKind::RefundMissingInBooks][0];
    assert_eq!(dash.suggested_fix.as_deref(), Some("record_psp_refund"));
    let done = approve(&stack, dash.break_id).await;
    assert!(done.starts_with("recorded the PSP's refund"), "{done}");
    let refunds = stack.store.refunds(&PaymentOrderId::parse(&po["dash"]).expect("id")).await.expect("refunds");
    assert_eq!(
        refunds.iter().map(|r| (r.status, r.amount.amount_minor())).collect::<Vec<_>>(),
        [(RefundStatus::Succeeded, minor(&t, 4))]
    );
    assert_books_consistent(&stack).await;

    let rerun = reconcile(&stack, psp, day).await;
    let found = breaks(&stack, psp, day).await;
    for (kind, status) in [
        (BreakKind::CaptureUnconfirmed, BreakStatus::Healed),
        (BreakKind::RefundMissingInBooks, BreakStatus::Healed),
        (BreakKind::DuplicateLine, BreakStatus::Healed),
        (BreakKind::FeeWithinTolerance, BreakStatus::Healed),
        (BreakKind::AmountOver, BreakStatus::Open),
        (BreakKind::UnknownPayment, BreakStatus::Open),
        (BreakKind::PayoutAmountMismatch, BreakStatus::Open),
        (BreakKind::PayoutMissingInBooks, BreakStatus::Open),
    ] {
        assert_eq!(found[&kind][0].status, status, "{kind}: {:?}", found[&kind]);
        assert_eq!(found[&kind][0].reopened, 0, "{kind}");
    }
    assert_eq!((rerun.matching.new, rerun.matching.healed), (0, 2), "{rerun:?}");
    assert_eq!(rerun.matching.open_by_class, [0, 6, 3], "{rerun:?}");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// A seller of its own (payout workflow ids are not scoped to a test stack's task queue),
/// registered with `psp`'s payout provider, paid one order, its balance paid out for period
/// 2026-11; waits until the payout settled. Answers the seller and the payout id.
async fn settled_payout(stack: &Stack, psp: Psp, t: &Terms) -> (String, String) {
    use payments_proto::payments_v1 as pb;
    let (provider, country, bank_code) = match psp {
        Psp::Toss => ("toss_payouts", "KR", "088"),
        Psp::Stripe => ("stripe_connect", "US", "110000000"),
    };
    let seller = unique("seller-po");
    let mut admin = stack.admin_grpc().await;
    let registration = pb::RegisterSellerRequest {
        seller_account: seller.clone(),
        provider: provider.into(),
        name: "Shop".into(),
        email: "shop@example.com".into(),
        country: country.into(),
        bank_code: bank_code.into(),
        account_number: "000123456789".into(),
        holder_name: "Kim Seller".into(),
        minimums: String::new(),
    };
    admin.register_seller(registration).await.expect("seller registered");
    let checkout = format!("{seller}-chk");
    let body = json!({
        "checkout_id": checkout,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": t.token},
        "payment_orders": [{"seller_account": seller, "amount": (t.amount)(20), "currency": t.currency,
            "payment_order_id": format!("{checkout}-1")}],
    });
    assert_eq!(stack.post_payment(&body).await.0, 202);
    assert_eq!(stack.wait_done(&checkout).await.orders[0].status, S::Success);
    let request =
        pb::RunPayoutsRequest { seller_account: seller.clone(), currency: t.currency.into(), period: "2026-11".into() };
    admin.run_payouts(request).await.expect("payout cycle started");
    let payout_id = format!("payout-{seller}-{}-2026-11", t.currency);
    let store = stack.store.clone();
    stack
        .poll_until("the payout settled", Duration::from_secs(60), || async {
            let payout = store.payout(&payout_id).await.ok().flatten();
            payout.filter(|p| p.status == payments_store::PayoutStatus::Settled)
        })
        .await;
    (seller, payout_id)
}

/// `major` major units of the terms' currency in minor units.
fn minor(t: &Terms, major: u32) -> i64 {
    let text = (t.amount)(major);
    let currency = payments_domain::Currency::parse(t.currency).expect("currency");
    payments_domain::Money::parse(&text, currency).expect("amount").amount_minor()
}

/// A line the PSP reports the next day (a capture just before midnight): inside the settlement
/// window it is timing, not a break; the next day's run matches it.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_moved_to_the_next_day_is_timing(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let late = common::paid_order(&stack, "pm_card_visa", "21.00", "USD").await;
    common::paid_order(&stack, "pm_card_visa", "22.00", "USD").await;
    inject(&stack, Psp::Stripe, json!([{"kind": "next_day", "target": {"order_id": late}}])).await;
    let day = today(Psp::Stripe);
    let report = reconcile(&stack, Psp::Stripe, day).await;
    assert_eq!((report.matching.lines, report.matching.matched, report.matching.in_window), (1, 1, 1), "{report:?}");
    assert!(report.matching.breaks.is_empty(), "{report:?}");
    let next = reconcile(&stack, Psp::Stripe, day.plus_days(1)).await;
    assert_eq!((next.matching.lines, next.matching.matched), (1, 1), "{next:?}");
    assert!(next.matching.breaks.is_empty(), "past the window, the line is there: {next:?}");
    assert!(breaks(&stack, Psp::Stripe, day).await.is_empty());
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The nightly Schedule: created at start-up and brought up to date by the next start (never a
/// second one), with a week of catch-up; a triggered night reconciles the PSP's previous day;
/// nights replayed after downtime (a backfill: what catch-up runs) each reconcile the day
/// before the night they were meant for, not the day they ran; `RECON_SCHEDULE=off` pauses it.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_schedule_reconciles_the_night_it_was_meant_for(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    use payments_worker::recon::{RECON_CATCHUP_WINDOW, ensure_schedules, schedule_id};
    use temporalio_client::schedules::ScheduleBackfill;
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let client = common::temporal(&stack).await;
    let mut config = stack.worker_config();
    config.recon.recon_schedule = "daily".into();
    config.recon.recon_hour = 1;
    ensure_schedules(&client, &config).await.expect("schedule created");
    config.recon.recon_hour = 2;
    ensure_schedules(&client, &config).await.expect("schedule updated, not duplicated");
    let handle = client.get_schedule_handle(schedule_id(Psp::Stripe, &stack.task_queue));
    let described = handle.describe(Default::default()).await.expect("described");
    let schedule = described.raw().schedule.as_ref().expect("schedule");
    let calendars = &schedule.spec.as_ref().expect("spec").structured_calendar;
    let hours: Vec<i32> = calendars.iter().flat_map(|c| c.hour.iter().map(|r| r.start)).collect();
    assert_eq!(hours, [2], "the hour moved");
    let catchup = schedule.policies.as_ref().and_then(|p| p.catchup_window.as_ref()).map(|d| d.seconds);
    assert_eq!(catchup, Some(i64::try_from(RECON_CATCHUP_WINDOW.as_secs()).expect("secs")));
    assert!(!described.paused());

    let day = today(Psp::Stripe);
    handle.trigger(Default::default(), Default::default()).await.expect("triggered");
    let yesterday = day.plus_days(-1);
    let run = stack
        .poll_until("the triggered night's run", RUN_TIMEOUT, || async {
            stack.store.recon_run(Psp::Stripe, yesterday).await.ok().flatten().filter(|r| r.status == "COMPLETED")
        })
        .await;
    assert_eq!(run.run_id, recon_workflow_id(Psp::Stripe, yesterday, &stack.task_queue));

    // Two nights missed (3 and 2 days ago at 02:00 UTC), run now.
    let midnight =
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(Psp::Stripe.day_start_ms(day)).expect("ms"));
    let from = midnight - Duration::from_secs(3 * 86_400);
    let until = midnight - Duration::from_secs(86_400 + 3_600);
    handle.backfill([ScheduleBackfill::new(from, until).build()], Default::default()).await.expect("backfilled");
    for back in [4, 3] {
        let missed = day.plus_days(-back);
        stack
            .poll_until(&format!("the run of {missed}"), RUN_TIMEOUT, || async {
                stack.store.recon_run(Psp::Stripe, missed).await.ok().flatten().filter(|r| r.status == "COMPLETED")
            })
            .await;
    }
    assert!(
        stack.store.recon_run(Psp::Stripe, day.plus_days(-2)).await.expect("read").is_none(),
        "no night meant for it"
    );

    config.recon.recon_schedule = "off".into();
    ensure_schedules(&client, &config).await.expect("schedule paused");
    assert!(handle.describe(Default::default()).await.expect("described").paused());
    handle.delete(Default::default()).await.expect("deleted");
    stack.shutdown().await;
}
