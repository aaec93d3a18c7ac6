//! The three readers against reports in the PSPs' shapes, and their refusals.

use super::*;

const CSV: &str = "psp,transaction_id,payment_reference,order_id,type,amount_minor,fee_minor,net_minor,currency,sold_date,paid_out_date\n\
stripe,txn_1,pi_1,po-1,charge,10000,320,9680,usd,2026-12-01,2026-12-03\n\
stripe,txn_2,pi_1,\"po,1\",refund,-2500,0,-2500,usd,2026-12-01,2026-12-03\r\n";

/// Every column is read, quoted fields and CRLF included, and the raw row is kept.
#[test]
fn csv_lines() {
    let lines = parse_csv(Psp::Stripe, CSV).unwrap();
    assert_eq!(lines.len(), 2);
    let charge = &lines[0];
    assert_eq!((charge.line_no, charge.kind.clone()), (1, LineKind::Charge));
    assert_eq!(charge.transaction_id, "txn_1");
    assert_eq!(charge.payment_reference.as_deref(), Some("pi_1"));
    assert_eq!((charge.amount_minor, charge.fee_minor, charge.net_minor), (10_000, 320, 9_680));
    assert_eq!(charge.currency, "USD");
    assert_eq!(charge.sold_date.to_string(), "2026-12-01");
    assert_eq!(charge.raw, "stripe,txn_1,pi_1,po-1,charge,10000,320,9680,usd,2026-12-01,2026-12-03");
    let refund = &lines[1];
    assert_eq!((refund.kind.clone(), refund.amount_minor), (LineKind::Refund, -2_500));
    assert_eq!(refund.order_id.as_deref(), Some("po,1"));
    assert_eq!(refund.raw, "stripe,txn_2,pi_1,\"po,1\",refund,-2500,0,-2500,usd,2026-12-01,2026-12-03");
}

/// A malformed file is refused whole, naming the line and the field.
#[test]
fn csv_refusals() {
    let header = CSV.lines().next().unwrap();
    let cases = [
        (format!("{header}\nstripe,txn_1,pi_1,po-1,charge,10.5,0,0,usd,2026-12-01,\n"), "line 1: amount_minor"),
        (
            format!(
                "{header}\nstripe,txn_1,pi_1,po-1,charge,1,0,1,usd,2026-12-01,\ntoss,t,p,o,charge,1,0,1,KRW,2026-12-01,\n"
            ),
            "line 2: psp",
        ),
        (format!("{header}\nstripe,,pi_1,po-1,charge,1,0,1,usd,2026-12-01,\n"), "line 1: transaction_id: missing"),
        (format!("{header}\nstripe,txn_1,pi_1,po-1,charge,1,0,1,usd,12/01/2026,\n"), "line 1: date"),
        (format!("{header}\nstripe,txn_1,pi_1,po-1,charge,1,0,1,dollars,2026-12-01,\n"), "line 1: currency"),
        ("psp,transaction_id\nstripe,txn_1\n".to_owned(), "no \"payment_reference\" column"),
    ];
    for (text, expected) in cases {
        let error = parse_csv(Psp::Stripe, &text).unwrap_err().to_string();
        assert!(error.contains(expected), "{error:?} should say {expected:?}");
    }
}

/// Toss: the documented `fees[]`, the live scalar `fee` and `interestFee` all count; a cancel
/// is a refund with its own transaction key.
#[test]
fn toss_settlements() {
    let body = r#"[
      {"mId":"m","paymentKey":"pk_1","transactionKey":"tk_1","orderId":"po-1","currency":"KRW","amount":15000,
       "interestFee":0,"fees":[{"type":"BASE","fee":400},{"type":"VAT","fee":80}],"payOutAmount":14520,
       "soldDate":"2026-12-01","paidOutDate":"2026-12-03","cancel":null},
      {"paymentKey":"pk_2","transactionKey":"tk_2","orderId":"co-2","currency":"KRW","amount":20000,
       "interestFee":100,"fee":640,"payOutAmount":19260,"soldDate":"2026-12-01","paidOutDate":"2026-12-03"},
      {"paymentKey":"pk_1","transactionKey":"tk_3","orderId":"po-1","currency":"KRW","amount":-5000,
       "fees":[],"payOutAmount":-5000,"soldDate":"2026-12-01","paidOutDate":"2026-12-03",
       "cancel":{"cancelAmount":5000,"transactionKey":"tk_3"}}
    ]"#;
    let lines = parse_toss_settlements(body, 11).unwrap();
    assert_eq!(lines.iter().map(|l| l.line_no).collect::<Vec<_>>(), [11, 12, 13]);
    assert_eq!((lines[0].fee_minor, lines[0].net_minor, lines[0].kind.clone()), (480, 14_520, LineKind::Charge));
    assert_eq!((lines[1].fee_minor, lines[1].order_id.as_deref()), (740, Some("co-2")));
    assert_eq!((lines[2].kind.clone(), lines[2].amount_minor), (LineKind::Refund, -5_000));
    assert_eq!(lines[2].refund_reference.as_deref(), Some("tk_3"));
    assert_eq!(lines[0].payment_reference.as_deref(), Some("pk_1"));
    assert!(lines[0].raw.contains("\"tk_1\""));
    let error = parse_toss_settlements(r#"[{"transactionKey":"t","amount":"1","soldDate":"2026-12-01"}]"#, 1)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("line 1: amount"), "{error}");
    assert!(parse_toss_settlements("{}", 1).is_err());
}

/// Stripe: the expanded source gives the payment intent, the order id and a refund's id;
/// the day is the UTC day of `created`; paging fields are read.
#[test]
fn stripe_balance_transactions() {
    let body = r#"{"object":"list","has_more":true,"url":"/v1/balance_transactions","data":[
      {"id":"txn_1","object":"balance_transaction","amount":10000,"fee":320,"net":9680,"currency":"usd",
       "created":1796169599,"available_on":1796256000,"reporting_category":"charge","type":"charge",
       "source":{"id":"ch_1","object":"charge","payment_intent":"pi_1","metadata":{"payment_order_id":"po-1"}}},
      {"id":"txn_2","amount":-2500,"fee":0,"net":-2500,"currency":"usd","created":1796169600,
       "reporting_category":"refund","source":{"id":"re_1","object":"refund","payment_intent":"pi_1","metadata":{}}},
      {"id":"txn_3","amount":-700,"fee":1500,"net":-2200,"currency":"usd","created":1796169600,
       "reporting_category":"dispute","source":"dp_1"}
    ]}"#;
    let page = parse_stripe_balance_transactions(body, 1).unwrap();
    assert!(page.has_more);
    assert_eq!(page.last_id.as_deref(), Some("txn_3"));
    let [charge, refund, dispute] = &page.lines[..] else { panic!("three lines") };
    assert_eq!(charge.sold_date.to_string(), "2026-12-01");
    assert_eq!(charge.paid_out_date.map(|d| d.to_string()).as_deref(), Some("2026-12-03"));
    assert_eq!((charge.payment_reference.as_deref(), charge.order_id.as_deref()), (Some("pi_1"), Some("po-1")));
    assert_eq!(charge.refund_reference, None);
    assert_eq!(refund.sold_date.to_string(), "2026-12-02");
    assert_eq!((refund.kind.clone(), refund.refund_reference.as_deref()), (LineKind::Refund, Some("re_1")));
    assert_eq!(dispute.kind, LineKind::Other("dispute".into()));
    assert_eq!(dispute.payment_reference, None);
    assert!(parse_stripe_balance_transactions(r#"{"data":[{"id":"txn_1"}]}"#, 1).is_err());
}

/// The optional `refund_id` column gives a refund line its own PSP id.
#[test]
fn csv_refund_ids() {
    let header = format!("{},refund_id", CSV.lines().next().unwrap());
    let text = format!(
        "{header}\nstripe,txn_1,pi_1,po-1,charge,1000,59,941,usd,2026-12-01,,\nstripe,txn_2,pi_1,po-1,refund,-500,0,-500,usd,2026-12-01,,re_9\n"
    );
    let lines = parse_csv(Psp::Stripe, &text).unwrap();
    assert_eq!((lines[0].refund_reference.as_deref(), lines[1].refund_reference.as_deref()), (None, Some("re_9")));
}
