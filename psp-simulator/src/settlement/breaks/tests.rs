use serde_json::json;

use super::*;

fn parse(body: serde_json::Value) -> Result<(Psp, Vec<Break>), String> {
    parse_request(body.to_string().as_bytes())
}

/// Every kind parses, and serializes back exactly as posted (currency
/// upper-cased).
#[test]
fn parses_every_kind_and_round_trips() {
    let breaks = json!([
        {"kind": "drop", "target": {"payment_reference": "pi_1"}},
        {"kind": "amount", "target": {"order_id": "po_1", "entry_kind": "refund"}, "delta_minor": -100},
        {"kind": "fee", "target": {"transaction_id": "txn_1"}, "delta_minor": 5},
        {"kind": "currency", "target": {"pick": {"seed": 7, "index": 0}}, "currency": "EUR"},
        {"kind": "duplicate", "target": {"pick": {"seed": 7, "index": 1}, "entry_kind": "charge"}},
        {"kind": "next_day", "target": {"order_id": "po_2"}},
        {"kind": "foreign", "amount_minor": 5000, "currency": "KRW", "date": "2026-12-01", "seed": 3},
        {"kind": "foreign", "amount_minor": 1, "currency": "usd", "date": "2026-12-01", "order_id": "po_x"},
    ]);
    let (psp, parsed) = parse(json!({"psp": "toss", "breaks": breaks})).unwrap();
    assert_eq!(psp, Psp::Toss);
    assert_eq!(parsed.len(), 8);
    let mut expected = breaks.clone();
    expected[6]["seed"] = json!(3);
    expected[7]["currency"] = json!("USD");
    expected[7]["seed"] = json!(0);
    assert_eq!(serde_json::to_value(&parsed).unwrap(), expected);
    let Break::Amount { target, delta_minor } = &parsed[1] else { panic!("an amount break") };
    assert_eq!(delta_minor.get(), -100);
    assert!(target.accepts(EntryKind::Refund) && !target.accepts(EntryKind::Charge));
    let Break::Fee { target, .. } = &parsed[2] else { panic!("a fee break") };
    assert!(target.accepts(EntryKind::Refund) && target.accepts(EntryKind::Charge));
}

/// Unknown kinds, psps and fields, missing fields, ambiguous targets,
/// zero deltas, bad dates and currencies are refused, naming the cause.
#[test]
fn refuses_malformed_breaks() {
    let target = json!({"payment_reference": "pi_1"});
    let one = |item: serde_json::Value| json!({"psp": "toss", "breaks": [item]});
    let foreign =
        |amount: u64, date: &str| json!({"kind": "foreign", "amount_minor": amount, "currency": "KRW", "date": date});
    let mut foreign_with_target = foreign(1, "2026-02-03");
    foreign_with_target["target"] = target.clone();
    let cases = [
        (json!({"psp": "paypal", "breaks": []}), "unknown variant `paypal`"),
        (json!({"psp": "toss"}), "missing field `breaks`"),
        (one(json!({"kind": "explode", "target": target})), "unknown variant `explode`"),
        (one(json!({"kind": "amount", "target": target})), "missing field `delta_minor`"),
        (one(json!({"kind": "drop"})), "missing field `target`"),
        (one(json!({"kind": "drop", "target": target, "delta_minor": 1})), "unknown field"),
        (one(json!({"kind": "fee", "target": target, "delta_minor": 0})), "non-zero"),
        (one(json!({"kind": "drop", "target": {}})), "exactly one"),
        (one(json!({"kind": "drop", "target": {"order_id": "a", "transaction_id": "b"}})), "exactly one"),
        (one(json!({"kind": "drop", "target": {"order_id": ""}})), "printable"),
        (one(json!({"kind": "drop", "target": {"orderId": "x"}})), "unknown field"),
        (one(json!({"kind": "currency", "target": target, "currency": "EURO"})), "three letters"),
        (one(foreign(1, "2026-02-30")), "YYYY-MM-DD"),
        (one(foreign(0, "2026-02-03")), "amount_minor"),
        (one(foreign_with_target), "unknown field"),
    ];
    for (body, expected) in cases {
        let error = parse(body.clone()).unwrap_err();
        assert!(error.contains(expected), "{body}: {error:?} should say {expected:?}");
    }
    assert!(parse_request(b"not json").is_err());
}

/// A later list replaces the PSP's list and leaves the other PSP's;
/// clearing one PSP or all works.
#[test]
fn store_replaces_per_psp() {
    let store = BreakStore::default();
    let (_, one) = parse(json!({"psp": "stripe", "breaks": [{"kind": "drop", "target": {"order_id": "a"}}]})).unwrap();
    let (_, two) = parse(json!({"psp": "stripe", "breaks": [{"kind": "drop", "target": {"order_id": "b"}}]})).unwrap();
    store.set(Psp::Stripe, one);
    store.set(Psp::Toss, two.clone());
    let config = store.set(Psp::Stripe, two.clone());
    assert_eq!((config.stripe.clone(), config.toss.clone()), (two.clone(), two.clone()));
    assert_eq!(store.clear(Some(Psp::Stripe)).toss, two);
    assert_eq!(store.clear(None), BreakConfig::default());
}
