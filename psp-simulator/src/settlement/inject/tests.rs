use serde_json::json;

use super::*;
use crate::clock::Date;

/// A charge of `amount` (fee 3%) at `created`, and the entry's ids derived
/// from `n`.
fn charge(n: u64, amount: i64, created: u64) -> Entry {
    let (sold_date, paid_out_date) = dates(Psp::Stripe, created);
    Entry {
        psp: Psp::Stripe,
        kind: EntryKind::Charge,
        transaction_id: format!("txn_{n}"),
        source: format!("ch_{n}"),
        payment_reference: format!("pi_{n}"),
        order_id: Some(format!("po_{n}")),
        amount_minor: amount,
        fee_minor: amount * 3 / 100,
        net_minor: amount - amount * 3 / 100,
        currency: "usd".to_owned(),
        created,
        sold_date,
        paid_out_date,
        reason: None,
    }
}

/// A refund of `amount` of payment `n`, at `created`.
fn refund(n: u64, refund_no: u64, amount: i64, created: u64) -> Entry {
    Entry {
        kind: EntryKind::Refund,
        transaction_id: format!("txn_r{n}_{refund_no}"),
        source: format!("re_{n}_{refund_no}"),
        amount_minor: -amount,
        fee_minor: 0,
        net_minor: -amount,
        ..charge(n, amount, created)
    }
}

/// 2024-01-01T10:00:00Z.
const T0: u64 = 1_704_103_200;

fn ledger() -> Vec<Entry> {
    vec![charge(1, 10_000, T0), charge(2, 20_000, T0 + 10), refund(1, 1, 1_000, T0 + 20), refund(1, 2, 500, T0 + 30)]
}

fn breaks(list: serde_json::Value) -> Vec<Break> {
    serde_json::from_value(list).expect("test breaks are valid")
}

fn ids(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.transaction_id.as_str()).collect()
}

/// No breaks: the ledger's lines, unchanged.
#[test]
fn no_breaks_reports_the_ledger() {
    let reported = apply(Psp::Stripe, ledger(), &[]);
    assert_eq!(ids(&reported), ["txn_1", "txn_2", "txn_r1_1", "txn_r1_2"]);
}

/// Each targeted kind changes what it says, and only its line; net is
/// recomputed as amount − fee.
#[test]
fn targeted_kinds_change_their_line() {
    let list = breaks(json!([
        {"kind": "drop", "target": {"transaction_id": "txn_r1_2"}},
        {"kind": "amount", "target": {"payment_reference": "pi_2"}, "delta_minor": -150},
        {"kind": "fee", "target": {"order_id": "po_1", "entry_kind": "refund"}, "delta_minor": 7},
        {"kind": "currency", "target": {"order_id": "po_1"}, "currency": "EUR"},
    ]));
    let reported = apply(Psp::Stripe, ledger(), &list);
    assert_eq!(ids(&reported), ["txn_1", "txn_2", "txn_r1_1"]);
    let (one, two, refunded) = (&reported[0], &reported[1], &reported[2]);
    assert_eq!((one.currency.as_str(), one.amount_minor), ("eur", 10_000), "Stripe writes lower case");
    assert_eq!((two.amount_minor, two.fee_minor, two.net_minor), (19_850, 600, 19_250));
    assert_eq!((refunded.amount_minor, refunded.fee_minor, refunded.net_minor), (-1_000, 7, -1_007));
    assert_eq!(refunded.currency, "usd", "the currency break targets the charge only (default entry_kind)");
}

/// A duplicate is reported twice, identical and adjacent, with the
/// line's other breaks applied to both copies; `drop` wins over all.
#[test]
fn duplicates_and_drops_compose() {
    let list = breaks(json!([
        {"kind": "duplicate", "target": {"payment_reference": "pi_1"}},
        {"kind": "amount", "target": {"payment_reference": "pi_1"}, "delta_minor": 1},
        {"kind": "duplicate", "target": {"payment_reference": "pi_2"}},
        {"kind": "drop", "target": {"payment_reference": "pi_2"}},
    ]));
    let reported = apply(Psp::Stripe, ledger(), &list);
    assert_eq!(ids(&reported), ["txn_1", "txn_1", "txn_r1_1", "txn_r1_2"]);
    assert_eq!(reported[0].amount_minor, 10_001);
    assert_eq!(reported[1].amount_minor, 10_001);
    assert_eq!(reported[0].created, reported[1].created);
}

/// `next_day` moves sold and paid-out dates and `created` one day on,
/// and the line sorts among the next day's.
#[test]
fn next_day_moves_the_line() {
    let list = breaks(json!([{"kind": "next_day", "target": {"payment_reference": "pi_1"}}]));
    let reported = apply(Psp::Stripe, ledger(), &list);
    assert_eq!(ids(&reported), ["txn_2", "txn_r1_1", "txn_r1_2", "txn_1"]);
    let moved = &reported[3];
    assert_eq!(moved.sold_date.to_string(), "2024-01-02");
    assert_eq!(moved.paid_out_date.to_string(), "2024-01-04");
    assert_eq!(moved.created, T0 + 86_400);
}

/// A target matching nothing changes nothing; one matching several lines
/// (a payment's refunds) changes them all.
#[test]
fn targets_match_none_or_many() {
    let unmatched = breaks(json!([
        {"kind": "drop", "target": {"payment_reference": "pi_later"}},
        {"kind": "drop", "target": {"transaction_id": "txn_9"}},
    ]));
    assert_eq!(ids(&apply(Psp::Stripe, ledger(), &unmatched)), ids(&ledger()));
    let both = breaks(json!([{"kind": "drop", "target": {"payment_reference": "pi_1", "entry_kind": "refund"}}]));
    assert_eq!(ids(&apply(Psp::Stripe, ledger(), &both)), ["txn_1", "txn_2"]);
}

/// A pick is reproducible, different indices pick different lines, an
/// index beyond the lines picks none, and `entry_kind` narrows the pool;
/// the pick does not depend on the ledger's order.
#[test]
fn picks_are_seeded_and_reproducible() {
    let pick = |seed: u64, index: u64, kind: Option<&str>| {
        let mut target = json!({"pick": {"seed": seed, "index": index}});
        if let Some(kind) = kind {
            target["entry_kind"] = json!(kind);
        }
        let list = breaks(json!([{"kind": "drop", "target": target}]));
        let kept = apply(Psp::Stripe, ledger(), &list);
        let all = ledger();
        all.iter().map(|entry| entry.transaction_id.clone()).find(|id| !ids(&kept).contains(&id.as_str()))
    };
    let first = pick(42, 0, None);
    assert!(first.is_some());
    assert_eq!(pick(42, 0, None), first, "same seed, same line");
    let picked: std::collections::BTreeSet<_> = (0..4).map(|index| pick(42, index, None)).collect();
    assert_eq!(picked.len(), 4, "each index a different line");
    assert_eq!(pick(42, 4, None), None, "beyond the lines");
    for index in 0..2 {
        assert!(pick(7, index, Some("refund")).is_some_and(|id| id.starts_with("txn_r")));
    }
    assert_eq!(pick(7, 2, Some("refund")), None);
    let mut reversed = ledger();
    reversed.reverse();
    let list = breaks(json!([{"kind": "drop", "target": {"pick": {"seed": 42, "index": 0}}}]));
    let kept = apply(Psp::Stripe, reversed, &list);
    assert!(!ids(&kept).contains(&first.as_deref().unwrap_or_default()));
}

/// Foreign lines: Stripe-style ids from seed and position (reproducible,
/// distinct per position), the PSP's fee and case, sold on the date.
#[test]
fn foreign_stripe_lines() {
    let list = breaks(json!([
        {"kind": "foreign", "amount_minor": 10_000, "currency": "USD", "date": "2024-01-01", "seed": 5},
        {"kind": "foreign", "amount_minor": 10_000, "currency": "USD", "date": "2024-01-01", "seed": 5,
         "order_id": "po_ghost"},
    ]));
    let reported = apply(Psp::Stripe, Vec::new(), &list);
    assert_eq!(reported.len(), 2);
    let line = &reported[0];
    for (id, prefix) in [(&line.transaction_id, "txn_"), (&line.source, "ch_"), (&line.payment_reference, "pi_")] {
        assert!(id.starts_with(prefix) && id.len() == prefix.len() + 24, "{id}");
        assert!(id[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }
    assert_eq!((line.kind, line.amount_minor, line.fee_minor, line.net_minor), (EntryKind::Charge, 10_000, 320, 9_680));
    assert_eq!((line.currency.as_str(), line.order_id.as_deref()), ("usd", None));
    assert_eq!(line.sold_date, Date::parse("2024-01-01").unwrap());
    assert_eq!(line.created, 1_704_110_400, "noon UTC");
    assert_ne!(reported[0].transaction_id, reported[1].transaction_id);
    assert_eq!(reported[1].order_id.as_deref(), Some("po_ghost"));
    let again = apply(Psp::Stripe, Vec::new(), &list);
    assert_eq!(ids(&again), ids(&reported), "reproducible");
}

/// Toss foreign lines: Toss-style keys and order id, 3.2% fee, sold on
/// the Seoul date.
#[test]
fn foreign_toss_lines() {
    let list = breaks(json!([{"kind": "foreign", "amount_minor": 15_000, "currency": "krw", "date": "2024-01-01"}]));
    let reported = apply(Psp::Toss, Vec::new(), &list);
    let line = &reported[0];
    assert_eq!(line.transaction_id.len(), 32);
    assert!(line.transaction_id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
    assert_eq!(line.source, line.transaction_id);
    assert_eq!(line.payment_reference.len(), 50);
    assert!(line.payment_reference.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(line.order_id.as_deref().is_some_and(|id| id.starts_with("order_") && id.len() == 26));
    assert_eq!((line.amount_minor, line.fee_minor, line.net_minor), (15_000, 480, 14_520));
    assert_eq!(line.currency, "KRW");
    assert_eq!(line.sold_date.to_string(), "2024-01-01");
    assert_eq!(line.paid_out_date.to_string(), "2024-01-03");
    assert_eq!(line.created, 1_704_078_000, "noon in Seoul");
}
