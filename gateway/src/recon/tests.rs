use super::*;
use payments_recon::BreakKind;

fn param(e: ApiError) -> String {
    match e {
        ApiError::InvalidRequest { param, .. } => param,
        other => panic!("not a validation error: {other:?}"),
    }
}

/// 2026-12-01T00:00:00Z.
const DEC_1_MS: i64 = 1_796_083_200_000;

/// Only `stripe` and `toss`; days are strict YYYY-MM-DD and never after today in UTC+14.
#[test]
fn psps_and_days() {
    assert_eq!(parse_psp("stripe").unwrap(), Psp::Stripe);
    assert_eq!(parse_psp(" toss ").unwrap(), Psp::Toss);
    assert_eq!(param(parse_psp("paypal").unwrap_err()), "psp");
    assert_eq!(param(parse_psp("").unwrap_err()), "psp");
    assert_eq!(parse_day("2026-11-30", DEC_1_MS).unwrap().to_string(), "2026-11-30");
    assert_eq!(parse_day("2026-12-01", DEC_1_MS).unwrap().to_string(), "2026-12-01");
    // At 10:00 UTC it is already 00:00 of the next day in UTC+14; at 09:59 not yet.
    assert!(parse_day("2026-12-02", DEC_1_MS + 10 * 3_600_000).is_ok());
    assert_eq!(param(parse_day("2026-12-02", DEC_1_MS + 10 * 3_600_000 - 1).unwrap_err()), "day");
    for bad in ["2026-12-1", "01-12-2026", "2026-12-01T00:00:00Z", "", "tomorrow"] {
        assert_eq!(param(parse_day(bad, DEC_1_MS).unwrap_err()), "day", "{bad}");
    }
}

/// Every filter is checked and named when wrong; empty or zero means no filter.
#[test]
fn break_filters() {
    let all = breaks_filter("", 0, "", "", 0, 0).unwrap();
    assert_eq!(all, BreakFilter { limit: BREAKS_LIMIT_DEFAULT as usize, ..BreakFilter::default() });
    let some = breaks_filter("open", 2, "toss", "2026-12-01", 7, 500).unwrap();
    assert_eq!(some.status, Some(BreakStatus::Open));
    assert_eq!((some.class, some.psp, some.after_id, some.limit), (Some(2), Some(Psp::Toss), 7, 500));
    assert_eq!(some.day.map(|d| d.to_string()).as_deref(), Some("2026-12-01"));
    assert_eq!(param(breaks_filter("CLOSED", 0, "", "", 0, 0).unwrap_err()), "status");
    assert_eq!(param(breaks_filter("", 4, "", "", 0, 0).unwrap_err()), "class");
    assert_eq!(param(breaks_filter("", -1, "", "", 0, 0).unwrap_err()), "class");
    assert_eq!(param(breaks_filter("", 0, "adyen", "", 0, 0).unwrap_err()), "psp");
    assert_eq!(param(breaks_filter("", 0, "", "12/01", 0, 0).unwrap_err()), "day");
    assert_eq!(param(breaks_filter("", 0, "", "", -1, 0).unwrap_err()), "after_id");
    assert_eq!(param(breaks_filter("", 0, "", "", 0, 501).unwrap_err()), "limit");
}

/// Notes are trimmed, required, bounded and free of card numbers; acceptances last 1 to 365
/// days; ids are positive.
#[test]
fn actions() {
    assert_eq!(check_note("  paid back by hand ").unwrap(), "paid back by hand");
    assert_eq!(param(check_note(" ").unwrap_err()), "note");
    assert_eq!(param(check_note(&"n".repeat(BREAK_NOTE_LEN_MAX + 1)).unwrap_err()), "note");
    assert_eq!(param(check_note("card 4242 4242 4242 4242").unwrap_err()), "note");
    assert_eq!(accept_until_ms(1, DEC_1_MS).unwrap(), DEC_1_MS + DAY_MS);
    assert_eq!(accept_until_ms(ACCEPT_DAYS_MAX, 0).unwrap(), i64::from(ACCEPT_DAYS_MAX) * DAY_MS);
    assert_eq!(param(accept_until_ms(0, DEC_1_MS).unwrap_err()), "days");
    assert_eq!(param(accept_until_ms(ACCEPT_DAYS_MAX + 1, DEC_1_MS).unwrap_err()), "days");
    assert_eq!(check_break_id(3).unwrap(), 3);
    assert_eq!(param(check_break_id(0).unwrap_err()), "break_id");
}

/// Import names are bounded and printable; only CSV is read.
#[test]
fn imports() {
    assert_eq!(check_report_name(" 2026-12-01.csv ").unwrap(), "2026-12-01.csv");
    assert_eq!(param(check_report_name("").unwrap_err()), "name");
    assert_eq!(param(check_report_name("a\nb").unwrap_err()), "name");
    assert_eq!(param(check_report_name(&"n".repeat(REPORT_NAME_LEN_MAX + 1)).unwrap_err()), "name");
    assert!(check_format("").is_ok() && check_format("csv").is_ok());
    assert_eq!(param(check_format("xlsx").unwrap_err()), "format");
}

fn record() -> BreakRecord {
    let day = Day::parse("2026-12-01").unwrap();
    BreakRecord {
        break_id: 9,
        fingerprint: "stripe:amount_over:pi_1".into(),
        psp: Psp::Stripe,
        day,
        last_seen_day: day,
        kind: BreakKind::AmountOver,
        class: 2,
        status: BreakStatus::Open,
        subject: "pi_1".into(),
        order_id: Some("chk-1-1".into()),
        amount_minor: 100,
        currency: "USD".into(),
        evidence: serde_json::json!({"detail": "the PSP captured 1.00 more"}),
        suggested_fix: None,
        resolution: None,
        resolved_by: None,
        accepted_until_ms: None,
        reopened: 0,
        created_at_ms: 1,
        updated_at_ms: 2,
    }
}

/// A break's amount is a decimal string in its currency (empty for a currency we do not keep
/// books in), next to the minor units; absent texts are empty.
#[test]
fn break_views() {
    let b = break_pb(&record());
    assert_eq!((b.amount.as_str(), b.amount_minor, b.currency.as_str()), ("1.00", 100, "USD"));
    assert_eq!((b.kind.as_str(), b.class, b.status.as_str()), ("amount_over", 2, "OPEN"));
    assert_eq!((b.suggested_fix.as_str(), b.resolved_by.as_str(), b.accepted_until_ms), ("", "", 0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&b.evidence_json).unwrap()["detail"],
        "the PSP captured 1.00 more"
    );
    let foreign = break_pb(&BreakRecord { currency: "XYZ".into(), ..record() });
    assert_eq!((foreign.amount.as_str(), foreign.amount_minor), ("", 100));
}

/// A run whose workflow runs is RUNNING, whatever the row still says of the previous run.
#[test]
fn run_views() {
    let day = Day::parse("2026-12-01").unwrap();
    let row = ReconRunRecord {
        run_id: "recon-stripe-2026-12-01".into(),
        psp: Psp::Stripe,
        day,
        status: "COMPLETED".into(),
        attempts: 2,
        report: Some(serde_json::json!({"heals_sent": 0})),
        error: None,
        started_at_ms: 5,
        finished_at_ms: Some(6),
    };
    let done = run_pb(&row, false);
    assert_eq!(
        (done.status.as_str(), done.finished_at_ms, done.report_json.as_str()),
        ("COMPLETED", 6, "{\"heals_sent\":0}")
    );
    let again = run_pb(&row, true);
    assert_eq!((again.status.as_str(), again.finished_at_ms, again.attempts), ("RUNNING", 0, 2));
    let new = placeholder_run_pb(Psp::Toss, day, "recon-toss-2026-12-01");
    assert_eq!((new.run_id.as_str(), new.status.as_str(), new.attempts), ("recon-toss-2026-12-01", "RUNNING", 0));
}
