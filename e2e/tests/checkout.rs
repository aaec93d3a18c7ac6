//! The checkout saga end to end: gateway -> Temporal workflow -> risk, PSP charge, wallet,
//! ledger, on every configured database backend.

use payments_domain::{PaymentOrderId, PaymentOrderStatus as S, SellerAccount};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};

fn checkout_body(checkout_id: &str, token: &str, orders: &[(&str, &str, &str, &str)]) -> Value {
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "buyer-1", "name": "Test Buyer"},
        "credit_card_info": {"token": token},
        "payment_orders": orders.iter().map(|(po, seller, amount, cur)| json!({
            "payment_order_id": po, "seller_account": seller, "amount": amount, "currency": cur,
        })).collect::<Vec<_>>(),
    })
}

/// A stack on a new database of `db`; `None` when that backend is not configured.
async fn stack(db: Db) -> Option<Stack> {
    let url = db.url().await?;
    Some(Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await)
}

/// A two-seller checkout ends with both orders SUCCESS, each seller's wallet credited by its
/// amount, one capture per order at the PSP, a ledger that balances per currency and equals
/// the wallets, and a history holding every transition. Runs on SQLite and PostgreSQL.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_seller_checkout_succeeds(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let id = unique("chk");
    let (po1, po2) = (format!("{id}-1"), format!("{id}-2"));
    let (sa, sb) = (unique("seller-a"), unique("seller-b"));
    let body = checkout_body(&id, "pm_card_visa", &[(&po1, &sa, "10.50", "USD"), (&po2, &sb, "15000", "KRW")]);
    let (status, answer) = stack.post_payment(&body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["workflow_id"], format!("checkout-{id}"));
    assert_eq!(answer["payment_orders"][0]["amount"], "10.50");

    let done = stack.wait_done(&id).await;
    assert!(done.is_payment_done);
    for o in &done.orders {
        assert_eq!(o.status, S::Success, "{o:?}");
        assert!(o.wallet_updated && o.ledger_updated && o.psp_reference.is_some());
        assert_eq!(stack.captures(o.payment_order_id.as_str()).await.len(), 1);
        let history: Vec<_> =
            stack.store.history(&o.payment_order_id).await.unwrap().iter().map(|h| h.to_status).collect();
        assert_eq!(history, vec![S::NotStarted, S::Executing, S::Success]);
    }
    let wallet_a = stack.store.wallet_balances(&SellerAccount::parse(sa.clone()).unwrap()).await.unwrap();
    assert_eq!(wallet_a.iter().map(|m| m.to_string()).collect::<Vec<_>>(), vec!["10.50 USD"]);
    let wallet_b = stack.store.wallet_balances(&SellerAccount::parse(sb.clone()).unwrap()).await.unwrap();
    assert_eq!(wallet_b.iter().map(|m| m.to_string()).collect::<Vec<_>>(), vec!["15000 KRW"]);
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.transactions, 2);

    let (status, order) = stack.get(&format!("/v1/payments/{po2}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (order["status"].as_str(), order["amount"].as_str(), order["currency"].as_str()),
        (Some("SUCCESS"), Some("15000"), Some("KRW"))
    );
    assert_eq!((order["wallet_updated"].as_bool(), order["ledger_updated"].as_bool()), (Some(true), Some(true)));
    let (_, checkout) = stack.get(&format!("/v1/checkouts/{id}")).await;
    assert_eq!(checkout["is_payment_done"], true);
    assert_eq!(stack.workflow_runs(&format!("checkout-{id}")).await, 1);
    stack.shutdown().await;
}

/// A declined card ends FAILED with the PSP's decline code kept, no wallet credit and no
/// ledger entry; the checkout is still done (every order final).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_token_fails_without_booking(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let id = unique("chk");
    let po = format!("{id}-1");
    let seller = unique("seller");
    let body = checkout_body(&id, "pm_card_chargeDeclinedInsufficientFunds", &[(&po, &seller, "99.99", "EUR")]);
    assert_eq!(stack.post_payment(&body).await.0, 202);
    let done = stack.wait_done(&id).await;
    let order = &done.orders[0];
    assert_eq!(order.status, S::Failed);
    assert_eq!(order.failure_code.as_deref(), Some("insufficient_funds"));
    assert!(!order.wallet_updated && !order.ledger_updated);
    assert!(done.is_payment_done);
    assert!(stack.captures(&po).await.is_empty());
    assert!(stack.store.wallet_balances(&SellerAccount::parse(seller).unwrap()).await.unwrap().is_empty());
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent() && report.transactions == 0, "{report:?}");
    stack.shutdown().await;
}

/// A buyer on the risk blocklist is declined before any PSP call: orders FAILED with the rule's
/// code, nothing captured, nothing booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_decline_charges_nothing(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions {
        database_url: Some(url),
        risk_blocked_buyers: "buyer-1".into(),
        ..StackOptions::new()
    })
    .await;
    let id = unique("chk");
    let po = format!("{id}-1");
    assert_eq!(
        stack.post_payment(&checkout_body(&id, "pm_card_visa", &[(&po, "seller-x", "5.00", "USD")])).await.0,
        202
    );
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Failed);
    assert_eq!(done.orders[0].failure_code.as_deref(), Some("risk_buyer_blocked"));
    assert!(stack.captures(&po).await.is_empty());
    let history: Vec<_> =
        stack.store.history(&PaymentOrderId::parse(po).unwrap()).await.unwrap().iter().map(|h| h.to_status).collect();
    assert_eq!(history, vec![S::NotStarted, S::Failed]);
    stack.shutdown().await;
}

/// The same POST sent again, and ten times concurrently, gives one stored checkout, one
/// workflow and one capture per order; every answer shows the same checkout.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_and_concurrent_posts_charge_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let id = unique("chk");
    let (po1, po2) = (format!("{id}-1"), format!("{id}-2"));
    let body =
        checkout_body(&id, "pm_card_visa", &[(&po1, "seller-a", "1.00", "USD"), (&po2, "seller-b", "2.00", "USD")]);
    let posts = (0..10).map(|_| stack.post_payment(&body));
    let answers = futures::future::join_all(posts).await;
    let created = answers.iter().filter(|(s, _)| *s == 202).count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(answers.iter().all(|(s, a)| (*s == 202 || *s == 200) && a["checkout_id"] == id.as_str()), "{answers:?}");
    stack.wait_done(&id).await;
    let (status, again) = stack.post_payment(&body).await;
    assert_eq!((status, again["is_payment_done"].as_bool()), (200, Some(true)));
    for po in [&po1, &po2] {
        assert_eq!(stack.captures(po).await.len(), 1, "{po}");
    }
    let workflow_id = format!("checkout-{id}");
    assert_eq!(stack.workflow_runs(&workflow_id).await, 1);
    stack.shutdown().await;
}
