//! Each break the matcher finds, from the smallest payment that shows it.

use super::*;

const DAY: &str = "2026-12-01";
const STRIPE: FeeContract = FeeContract { bps: 290, fixed_minor: 30, fixed_on_zero_decimal: false };
const POLICY: MatchPolicy = MatchPolicy { window_days: 1, fee_tolerance_bps: 10, fee_tolerance_minor: 2 };

fn day() -> Day {
    Day::parse(DAY).unwrap()
}

fn charge(txn: &str, amount: i64) -> SettlementLine {
    SettlementLine {
        line_no: 1,
        kind: LineKind::Charge,
        transaction_id: txn.into(),
        payment_reference: Some("pi_1".into()),
        order_id: Some("po-1".into()),
        refund_reference: None,
        amount_minor: amount,
        fee_minor: STRIPE.fee_minor(amount, "USD"),
        net_minor: amount - STRIPE.fee_minor(amount, "USD"),
        currency: "USD".into(),
        sold_date: day(),
        paid_out_date: None,
        raw: String::new(),
    }
}

fn refund_line(txn: &str, amount: i64, refund_reference: Option<&str>) -> SettlementLine {
    SettlementLine {
        kind: LineKind::Refund,
        amount_minor: -amount,
        fee_minor: 0,
        net_minor: -amount,
        refund_reference: refund_reference.map(Into::into),
        ..charge(txn, amount)
    }
}

fn order(id: &str, state: OrderState, amount: i64) -> OurOrder {
    OurOrder { order_id: id.into(), state, amount_minor: amount, currency: "USD".into() }
}

fn refund(id: &str, amount: i64, psp_reference: Option<&str>) -> OurRefund {
    OurRefund {
        refund_id: id.into(),
        order_id: "po-1".into(),
        amount_minor: amount,
        currency: "USD".into(),
        psp_reference: psp_reference.map(Into::into),
        day: day(),
        of_unbooked_capture: false,
    }
}

fn run(lines: &[SettlementLine], orders: &[OurOrder], refunds: &[OurRefund]) -> PaymentVerdict {
    match_payment(Payment { key: "pi_1", lines, orders, refunds }, day(), &STRIPE, &POLICY)
}

fn kinds(verdict: &PaymentVerdict) -> Vec<BreakKind> {
    verdict.findings.iter().map(|f| f.kind).collect()
}

/// A clean payment: one capture, a partial refund (matched by the PSP's id) and a second one
/// (matched by amount) all match; the hosted flow's one line for two orders matches their sum.
#[test]
fn clean_payments_match() {
    let lines = [charge("txn_1", 10_000), refund_line("txn_2", 2_500, Some("re_1")), refund_line("txn_3", 500, None)];
    let verdict = run(
        &lines,
        &[order("po-1", OrderState::Captured, 10_000)],
        &[refund("r-2", 500, None), refund("r-1", 2_500, Some("re_1"))],
    );
    assert_eq!(kinds(&verdict), []);
    assert_eq!(verdict.matched, ["txn_1", "txn_2", "txn_3"]);
    let hosted = run(
        &[charge("txn_1", 10_000)],
        &[order("po-1", OrderState::Captured, 6_000), order("po-2", OrderState::Captured, 4_000)],
        &[],
    );
    assert_eq!((kinds(&hosted), hosted.matched), (vec![], vec!["txn_1".to_owned()]));
}

/// Lines of another day are context only: yesterday's capture is not matched (or broken)
/// again by today's run, which judges today's refund.
#[test]
fn other_days_are_context() {
    let mut yesterday = charge("txn_1", 10_000);
    yesterday.sold_date = day().plus_days(-1);
    yesterday.fee_minor += 500;
    let verdict =
        run(&[yesterday, refund_line("txn_2", 100, None)], &[order("po-1", OrderState::Captured, 10_000)], &[]);
    assert_eq!(kinds(&verdict), [BreakKind::RefundMissingInBooks]);
    assert!(verdict.matched.is_empty());
}

/// The PSP captured and we have nothing, an unconfirmed order, or a failed one.
#[test]
fn captures_we_did_not_book() {
    assert_eq!(kinds(&run(&[charge("txn_1", 10_000)], &[], &[])), [BreakKind::UnknownPayment]);
    let unconfirmed = run(&[charge("txn_1", 10_000)], &[order("po-1", OrderState::Unconfirmed, 10_000)], &[]);
    assert_eq!(kinds(&unconfirmed), [BreakKind::CaptureUnconfirmed]);
    assert_eq!(unconfirmed.findings[0].subject, "po-1");
    let failed = run(&[charge("txn_1", 10_000)], &[order("po-1", OrderState::Failed, 10_000)], &[]);
    assert_eq!(kinds(&failed), [BreakKind::CapturedButFailed]);
}

/// Over, under, a duplicate capture and a currency mismatch.
#[test]
fn amounts_and_currencies() {
    let booked = [order("po-1", OrderState::Captured, 10_000)];
    let mut over_line = charge("txn_1", 10_100);
    over_line.fee_minor += 400;
    let over = run(&[over_line], &booked, &[]);
    assert_eq!(kinds(&over), [BreakKind::AmountOver], "its fee is judged once the amount is right");
    assert_eq!((over.findings[0].amount_minor, over.findings[0].subject.as_str()), (100, "pi_1"));
    let under = run(&[charge("txn_1", 9_000)], &booked, &[]);
    assert_eq!((kinds(&under), under.findings[0].amount_minor), (vec![BreakKind::AmountUnder], 1_000));
    let twice = run(&[charge("txn_1", 10_000), charge("txn_9", 10_000)], &booked, &[]);
    assert_eq!(kinds(&twice), [BreakKind::DuplicateCapture]);
    assert_eq!((twice.findings[0].subject.as_str(), twice.matched.clone()), ("txn_9", vec!["txn_1".to_owned()]));
    let mut euro = charge("txn_1", 10_000);
    euro.currency = "EUR".into();
    assert_eq!(kinds(&run(&[euro], &booked, &[])), [BreakKind::CurrencyMismatch]);
}

/// A fee off by less than the tolerance is booked; more is a person's call.
#[test]
fn fees_against_the_contract() {
    let booked = [order("po-1", OrderState::Captured, 10_000)];
    assert_eq!(STRIPE.fee_minor(10_000, "USD"), 320);
    assert_eq!(STRIPE.fee_minor(15_000, "KRW"), 435);
    assert_eq!(STRIPE.fee_minor(500, "JPY"), 15);
    assert_eq!(POLICY.fee_tolerance(10_000), 10);
    assert_eq!(POLICY.fee_tolerance(100), 2);
    let mut small = charge("txn_1", 10_000);
    small.fee_minor += 10;
    let verdict = run(&[small], &booked, &[]);
    assert_eq!(kinds(&verdict), [BreakKind::FeeWithinTolerance]);
    assert_eq!(verdict.findings[0].amount_minor, 10);
    let mut large = charge("txn_1", 10_000);
    large.fee_minor -= 11;
    let verdict = run(&[large], &booked, &[]);
    assert_eq!((kinds(&verdict), verdict.findings[0].amount_minor), (vec![BreakKind::FeeMismatch], -11));
}

/// Refund pairing: by id, then by amount; leftovers on either side are answered.
#[test]
fn refund_pairing() {
    let lines =
        [refund_line("txn_2", 300, Some("re_x")), refund_line("txn_3", 300, None), refund_line("txn_4", 700, None)];
    let ours = [refund("r-1", 300, None), refund("r-2", 300, Some("re_x")), refund("r-3", 900, None)];
    let (lines_left, ours_left) = pair_refunds(&lines, &ours);
    assert_eq!((lines_left, ours_left), (vec!["txn_4"], vec!["r-3"]));
}

/// A line of a kind no rule covers is unexplained.
#[test]
fn other_lines_are_unexplained() {
    let mut dispute = charge("txn_5", -700);
    dispute.kind = LineKind::Other("dispute".into());
    let verdict = run(&[charge("txn_1", 10_000), dispute], &[order("po-1", OrderState::Captured, 10_000)], &[]);
    assert_eq!(kinds(&verdict), [BreakKind::UnexplainedLine]);
}

/// A capture the buyer was told failed, refunded in full, is settled; a duplicate capture
/// whose extra an approved fix refunded is settled too.
#[test]
fn fixed_captures_are_settled() {
    let failed = [order("po-1", OrderState::Failed, 10_000)];
    let refunded = run(&[charge("txn_1", 10_000), refund_line("txn_2", 10_000, None)], &failed, &[]);
    assert_eq!((kinds(&refunded), refunded.matched.len()), (vec![BreakKind::RefundMissingInBooks], 1));
    let fix = OurRefund { of_unbooked_capture: true, ..refund("recon-break-1", 10_000, Some("re_fix")) };
    let healed = run(
        &[charge("txn_1", 10_000), refund_line("txn_2", 10_000, Some("re_fix"))],
        &failed,
        std::slice::from_ref(&fix),
    );
    assert_eq!((kinds(&healed), healed.matched), (vec![], vec!["txn_1".to_owned(), "txn_2".to_owned()]));
    let booked = [order("po-1", OrderState::Captured, 10_000)];
    let twice = [charge("txn_1", 10_000), charge("txn_9", 10_000), refund_line("txn_r", 10_000, Some("re_fix"))];
    let healed = run(&twice, &booked, &[fix]);
    assert_eq!(kinds(&healed), []);
}

/// A payment carrying the id of an order we booked under another payment is a second capture.
#[test]
fn a_second_payment_for_a_booked_order_is_a_duplicate_capture() {
    let elsewhere = [order("po-1", OrderState::CapturedElsewhere, 10_000)];
    let verdict = run(&[charge("txn_2", 10_000)], &elsewhere, &[]);
    assert_eq!(kinds(&verdict), [BreakKind::DuplicateCapture]);
    assert_eq!(
        (verdict.findings[0].subject.as_str(), verdict.findings[0].order_id.as_deref()),
        ("txn_2", Some("po-1"))
    );
    let fix = OurRefund { of_unbooked_capture: true, ..refund("recon-break-1", 10_000, None) };
    let refunded = [charge("txn_2", 10_000), refund_line("txn_3", 10_000, None)];
    assert_eq!(kinds(&run(&refunded, &elsewhere, &[fix])), []);
}
