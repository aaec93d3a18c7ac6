//! One test per break kind (issue 13), on both databases, driven as an operator would through
//! `paymentsctl recon` (the gateway's AdminService, with the admin key): the simulator puts
//! the break into its report of the day (or the PSP does what causes it: a capture whose answer
//! is lost, a refund in its dashboard, a second capture of an order, a capture of an order we
//! declined; or a file imported by hand holds a line no rule covers), a run classifies it, and
//! then class 1 is healed by the program, a suggested fix is approved and runs through the
//! workflows, or an operator accepts what the PSP will not change. The next run leaves nothing
//! active, and the books hold after each step.

mod common;

use common::{assert_books_consistent, paymentsctl, refund_accepted, wait_order_status, wait_refund_final};
use payments_domain::PaymentOrderStatus as S;
use payments_recon::{BreakKind, Day, Psp};
use payments_store::{BreakFilter, BreakRecord, BreakStatus, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions};
use payments_workflows::messages::WaitLimits;
use rstest::rstest;
use serde_json::{Value, json};
use std::time::Duration;

/// Bound on the program's healing (a janitor's round trip).
const HEAL_TIMEOUT: Duration = Duration::from_secs(60);

/// What happens after the run that found the break.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// Class 1: the program heals it (in the run, or by the workflow it signalled).
    Healed,
    /// An operator approves the suggested fix; the next run heals it.
    Approve,
    /// An operator accepts it for 30 days; the next run keeps it accepted.
    Accept,
}

/// How the break comes about.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// The simulator reports the order's capture line altered this way.
    Inject(fn(&str) -> Value),
    /// The order's capture answer is lost while the PSP's status API is down.
    LostCapture,
    /// The PSP refunds part of the order in its dashboard.
    DashboardRefund,
    /// Our refund of the order is missing from the PSP's report.
    RefundNotReported,
    /// The PSP captures the order a second time (another payment naming it).
    SecondCapture,
    /// The order is declined; then the PSP captures a payment naming it.
    CaptureOfFailed,
    /// A settlement file imported by hand has a line of a kind no rule covers (an adjustment).
    ImportedAdjustment,
}

fn today() -> Day {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    Psp::Stripe.day_of_ms(i64::try_from(now).expect("ms"))
}

async fn run(stack: &Stack) {
    let day = today().to_string();
    paymentsctl(stack, &["recon", "run", "--psp", "stripe", "--date", &day]).await.expect("recon run");
}

async fn breaks(stack: &Stack) -> Vec<BreakRecord> {
    let filter = BreakFilter { psp: Some(Psp::Stripe), day: Some(today()), limit: 500, ..BreakFilter::default() };
    stack.store.recon_breaks(&filter).await.expect("breaks")
}

async fn inject(stack: &Stack, breaks: Value) {
    let body = json!({ "psp": "stripe", "breaks": breaks });
    let resp = stack.http.post(format!("{}/_sim/settlements/breaks", stack.sim_url)).json(&body).send().await;
    assert!(resp.expect("POST breaks").status().is_success(), "{body}");
}

/// A PSP call as its dashboard or a stray client would make it (the simulator's Stripe API).
async fn stripe_post(stack: &Stack, path: &str, form: &str, key: &str) -> Value {
    let resp = stack
        .http
        .post(format!("{}{path}", stack.sim_url))
        .bearer_auth(payments_testkit::simulator::STRIPE_TEST_KEY)
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .expect("simulator call");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("json")
}

async fn cause_it(stack: &Stack, cause: Cause, po: &str) {
    match cause {
        Cause::Inject(kind) => inject(stack, json!([kind(po)])).await,
        Cause::LostCapture | Cause::CaptureOfFailed => unreachable!("made at checkout"),
        Cause::ImportedAdjustment => {
            let text = format!(
                "{}\nstripe,txn_adj_{po},,{po},adjustment,-100,0,-100,USD,{},\n",
                payments_recon::parse::CSV_COLUMNS.join(","),
                today()
            );
            let file = tempfile::NamedTempFile::new().expect("temp file");
            std::fs::write(file.path(), text).expect("write");
            let path = file.path().to_str().expect("path").to_owned();
            paymentsctl(stack, &["recon", "import", &path, "--psp", "stripe"]).await.expect("imported");
        }
        Cause::DashboardRefund => {
            let reference = common::order(stack, po).await.psp_reference.expect("reference");
            let body = json!({"psp": "stripe", "payment_reference": reference, "amount_minor": 300});
            let resp = stack.http.post(format!("{}/_sim/dashboard/refunds", stack.sim_url)).json(&body).send().await;
            assert!(resp.expect("dashboard refund").status().is_success());
        }
        Cause::RefundNotReported => {
            let refund = refund_accepted(stack, po, Some("2.00"), "buyer asked").await;
            assert_eq!(wait_refund_final(stack, &refund).await.status, RefundStatus::Succeeded);
            inject(stack, json!([{"kind": "drop", "target": {"order_id": po, "entry_kind": "refund"}}])).await;
        }
        Cause::SecondCapture => capture_naming(stack, po, "second").await,
    }
}

/// A capture at the PSP naming our order `po`, made outside our checkout (a stray client).
async fn capture_naming(stack: &Stack, po: &str, key: &str) {
    let form = format!(
        "amount=1700&currency=usd&confirm=true&payment_method=pm_card_visa&metadata%5Bpayment_order_id%5D={po}"
    );
    stripe_post(stack, "/v1/payment_intents", &form, &format!("{key}-{po}")).await;
}

/// One kind: caused, found once with its class, then healed, approved or accepted; the next run
/// leaves nothing active; the books hold throughout.
#[rstest]
#[case::missing_at_psp(Cause::Inject(|po| json!({"kind": "drop", "target": {"order_id": po}})), BreakKind::MissingAtPsp, Then::Accept)]
#[case::amount_over(Cause::Inject(|po| json!({"kind": "amount", "target": {"order_id": po}, "delta_minor": 100})), BreakKind::AmountOver, Then::Accept)]
#[case::amount_under(Cause::Inject(|po| json!({"kind": "amount", "target": {"order_id": po}, "delta_minor": -100})), BreakKind::AmountUnder, Then::Accept)]
#[case::fee_within_tolerance(Cause::Inject(|po| json!({"kind": "fee", "target": {"order_id": po}, "delta_minor": 1})), BreakKind::FeeWithinTolerance, Then::Healed)]
#[case::fee_mismatch(Cause::Inject(|po| json!({"kind": "fee", "target": {"order_id": po}, "delta_minor": 400})), BreakKind::FeeMismatch, Then::Accept)]
#[case::currency_mismatch(Cause::Inject(|po| json!({"kind": "currency", "target": {"order_id": po}, "currency": "EUR"})), BreakKind::CurrencyMismatch, Then::Accept)]
#[case::duplicate_line(Cause::Inject(|po| json!({"kind": "duplicate", "target": {"order_id": po}})), BreakKind::DuplicateLine, Then::Healed)]
#[case::unknown_payment(Cause::Inject(|_| json!({"kind": "foreign", "amount_minor": 4200, "currency": "USD", "date": today().to_string(), "seed": 3})), BreakKind::UnknownPayment, Then::Accept)]
#[case::capture_unconfirmed(Cause::LostCapture, BreakKind::CaptureUnconfirmed, Then::Healed)]
#[case::refund_missing_in_books(Cause::DashboardRefund, BreakKind::RefundMissingInBooks, Then::Approve)]
#[case::refund_missing_at_psp(Cause::RefundNotReported, BreakKind::RefundMissingAtPsp, Then::Accept)]
#[case::duplicate_capture(Cause::SecondCapture, BreakKind::DuplicateCapture, Then::Approve)]
#[case::captured_but_failed(Cause::CaptureOfFailed, BreakKind::CapturedButFailed, Then::Approve)]
#[case::unexplained_line(Cause::ImportedAdjustment, BreakKind::UnexplainedLine, Then::Accept)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_break_kind(
    #[case] cause: Cause,
    #[case] kind: BreakKind,
    #[case] then: Then,
    #[values(Db::Sqlite, Db::Postgres)] db: Db,
) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions {
        database_url: Some(url),
        // Nothing but reconciliation wakes a janitor; what is missing today is missing.
        webhooks: false,
        waits: WaitLimits { psp_attempts_max: 2, unknown_recheck_secs: [600, 600, 600], ..WaitLimits::DEFAULT },
        recon: Some(|c| c.recon_window_days = 0),
        ..StackOptions::new()
    })
    .await;
    common::paid_order(&stack, "pm_card_visa", "11.00", "USD").await;
    let po = if matches!(cause, Cause::LostCapture) {
        stack.psp_outage(false, true, false).await;
        let (checkout, po) = stack.post_one_order("pm_card_sim_lost_response", "17.00", "USD").await;
        // In the janitor's hands: the charge's own status queries have given up.
        common::wait_janitor(&stack, &checkout, &po).await;
        stack.psp_outage(false, false, false).await;
        po
    } else if matches!(cause, Cause::CaptureOfFailed) {
        let (checkout, po) = stack.post_one_order("pm_card_chargeDeclined", "17.00", "USD").await;
        assert_eq!(stack.wait_done(&checkout).await.orders[0].status, S::Failed);
        capture_naming(&stack, &po, "after-decline").await;
        po
    } else {
        let po = common::paid_order(&stack, "pm_card_visa", "17.00", "USD").await;
        cause_it(&stack, cause, &po).await;
        po
    };

    run(&stack).await;
    let found = breaks(&stack).await;
    assert_eq!(
        found.iter().map(|b| (b.kind, b.class)).collect::<Vec<_>>(),
        [(kind, kind.class().number())],
        "{found:?}"
    );
    let found = found.into_iter().next().expect("one break");
    if kind != BreakKind::UnknownPayment {
        assert_eq!(found.order_id.as_deref(), Some(po.as_str()), "{found:?}");
    }
    assert_books_consistent(&stack).await;

    match then {
        Then::Healed => {
            if kind == BreakKind::CaptureUnconfirmed {
                assert_eq!(found.status, BreakStatus::Healing, "the janitor was signalled");
                wait_order_status(&stack, &po, S::Success).await;
                stack
                    .poll_until("the capture booked", HEAL_TIMEOUT, || async {
                        common::order(&stack, &po).await.ledger_updated.then_some(())
                    })
                    .await;
            } else {
                assert_eq!(found.status, BreakStatus::Healed, "{found:?}");
            }
        }
        Then::Approve => {
            paymentsctl(&stack, &["recon", "approve", &found.break_id.to_string()]).await.expect("approved");
            let approved = stack.store.recon_break(found.break_id).await.expect("read").expect("break");
            assert_eq!(approved.status, BreakStatus::Healing, "{approved:?}");
        }
        Then::Accept => {
            let id = found.break_id.to_string();
            paymentsctl(&stack, &["recon", "accept", &id, "--note", "the PSP will not change it", "--days", "30"])
                .await
                .expect("accepted");
        }
    }
    assert_books_consistent(&stack).await;

    run(&stack).await;
    let after = stack.store.recon_break(found.break_id).await.expect("read").expect("break");
    let expected = match then {
        Then::Healed | Then::Approve => BreakStatus::Healed,
        Then::Accept => BreakStatus::Accepted,
    };
    assert_eq!((after.status, after.reopened), (expected, 0), "{after:?}");
    let active = stack.store.active_breaks_by_class(Psp::Stripe, today()).await.expect("counts");
    assert_eq!(active, [0, 0, 0], "the next run leaves nothing active");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
