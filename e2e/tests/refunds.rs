//! Refunds through `POST /v1/payments/{id}/refunds` and gRPC `PaymentService/CreateRefund`,
//! each run as a `refund` workflow: partial refunds add up to the capture and not a minor
//! unit more; the PSP is called once per refund (its id is the idempotency key); ledger
//! reversal and wallet debit are booked together; the books stay consistent. Both databases.

mod common;

use common::{assert_books_consistent, paid_order, post_refund, refund_accepted, wait_refund_final};
use payments_domain::{PaymentOrderId, SellerAccount};
use payments_proto::payments_v1 as pb;
use payments_store::RefundStatus;
use payments_testkit::{Db, Stack, StackOptions};
use rstest::rstest;

async fn stack(database_url: String, provider: &str) -> Stack {
    Stack::start(StackOptions {
        database_url: Some(database_url),
        psp_provider: provider.to_owned(),
        ..StackOptions::new()
    })
    .await
}

/// Two partial refunds adding up to the capture succeed (one PSP refund each, wallet back to
/// zero); a third asking for one cent more is refused with a clear 400 naming what is left
/// (nothing), and so is a first refund larger than the capture.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_add_up_to_the_capture_and_not_a_cent_more(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, "stripe").await;
    let po = paid_order(&stack, "pm_card_visa", "25.00", "USD").await;

    let (status, body) = post_refund(&stack, &po, Some("25.01"), "too much").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "refund_too_large", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("25.00"), "{body}");

    let first = refund_accepted(&stack, &po, Some("10.00"), "one item returned").await;
    assert_eq!(wait_refund_final(&stack, &first).await.status, RefundStatus::Succeeded);
    let second = refund_accepted(&stack, &po, Some("15.00"), "the rest returned").await;
    assert_eq!(wait_refund_final(&stack, &second).await.status, RefundStatus::Succeeded);

    let (status, body) = post_refund(&stack, &po, Some("0.01"), "one cent more").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "refund_too_large", "{body}");
    assert_eq!(body["error"]["param"], "amount", "{body}");

    let at_psp = stack.sim_refunds(&po).await;
    assert_eq!(at_psp.len(), 2, "one PSP refund per refund: {at_psp:?}");
    let (code, listed) = stack.get(&format!("/v1/payments/{po}/refunds")).await;
    assert_eq!(code, 200, "{listed}");
    let statuses: Vec<_> = listed["refunds"].as_array().unwrap().iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, vec!["SUCCEEDED", "SUCCEEDED"], "{listed}");
    let (code, one) = stack.get(&format!("/v1/refunds/{first}")).await;
    assert_eq!((code, one["amount"].as_str()), (200, Some("10.00")), "{one}");
    let seller = SellerAccount::parse("seller-a").unwrap();
    let balances = stack.store.wallet_balances(&seller).await.unwrap();
    assert_eq!(balances.iter().map(|m| m.amount_minor()).collect::<Vec<_>>(), vec![0], "debited by both refunds");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// Refunds of an order that was not captured are refused (400 `payment_not_refundable`),
/// unknown orders are 404, and a malformed amount is 400 `parameter_invalid`: nothing stored.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_of_unpaid_or_unknown_orders_are_refused(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, "stripe").await;
    let (checkout, declined) = stack.post_one_order("pm_card_chargeDeclined", "5.00", "USD").await;
    stack.wait_done(&checkout).await;
    let (status, body) = post_refund(&stack, &declined, None, "refund a decline").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("payment_not_refundable")), "{body}");
    let (status, body) = post_refund(&stack, "no-such-order", None, "refund nothing").await;
    assert_eq!(status, 404, "{body}");
    let paid = paid_order(&stack, "pm_card_visa", "5.00", "USD").await;
    for bad in ["-1.00", "1.001", "abc", "0"] {
        let (status, body) = post_refund(&stack, &paid, Some(bad), "bad amount").await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let id = PaymentOrderId::parse(&paid).unwrap();
    assert!(stack.store.refunds(&id).await.unwrap().is_empty(), "refused refunds store nothing");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The gRPC twin on a Toss stack: a partial cancel of a KRW payment, then the rest with no
/// amount; the same Idempotency-Key again replays the first answer and refunds nothing more.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refunds_partial_then_rest_on_toss(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, "toss").await;
    let po = paid_order(&stack, "billing_success", "15000", "KRW").await;
    let mut client = stack.payments_grpc().await;
    let request = |amount: &str, key: &str| {
        let mut r = tonic::Request::new(pb::CreateRefundRequest {
            payment_order_id: po.clone(),
            amount: amount.to_owned(),
            reason: "returned".to_owned(),
        });
        r.metadata_mut().insert("idempotency-key", key.parse().unwrap());
        r
    };
    let partial = client.create_refund(request("5000", &format!("{po}-r1"))).await.expect("partial").into_inner();
    assert_eq!((partial.amount.as_str(), partial.currency.as_str()), ("5000", "KRW"));
    let replay = client.create_refund(request("5000", &format!("{po}-r1"))).await.expect("replay").into_inner();
    assert_eq!(replay.refund_id, partial.refund_id, "same key, same refund");
    let rest = client.create_refund(request("", &format!("{po}-r2"))).await.expect("rest").into_inner();
    assert_eq!(rest.amount, "10000");
    for id in [&partial.refund_id, &rest.refund_id] {
        let id = payments_store::RefundId::parse(id.as_str()).unwrap();
        assert_eq!(wait_refund_final(&stack, &id).await.status, RefundStatus::Succeeded);
    }
    assert_eq!(stack.sim_refunds(&po).await.len(), 2, "two cancels at Toss");
    let listed =
        client.list_refunds(pb::ListRefundsRequest { payment_order_id: po.clone() }).await.expect("list").into_inner();
    assert_eq!(listed.refunds.len(), 2);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// A refund stored whose workflow never started (the gateway died between storing and
/// starting; here stored through the store exactly as the gateway does) is started by the
/// gateway's repair sweep and completes: SUCCEEDED, refunded once at the PSP, books consistent.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_whose_workflow_start_was_lost_is_repaired(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack =
        Stack::start(StackOptions { database_url: Some(url), start_sweep_secs: 1, ..StackOptions::new() }).await;
    let po = paid_order(&stack, "pm_card_visa", "8.00", "USD").await;
    let order = PaymentOrderId::parse(&po).unwrap();
    let (stored, _) = stack.store.request_next_refund(&order, None, "start lost", None).await.unwrap();
    assert_eq!(wait_refund_final(&stack, &stored.refund_id).await.status, RefundStatus::Succeeded);
    assert_eq!(stack.sim_refunds(&po).await.len(), 1, "refunded once");
    assert_eq!(stack.workflow_runs(&format!("refund-{}", stored.refund_id)).await, 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
