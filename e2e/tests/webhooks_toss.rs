//! The Toss Payments side of the PSP webhook-to-signal bridge end to end (`POST /webhooks/toss`):
//! Toss's unsigned `PAYMENT_STATUS_CHANGED` events are only hints that wake a payment pending at
//! the PSP (the workflow asks the PSP, so a forged `DONE` cannot move an order to SUCCESS), and
//! payout events must carry a valid Toss signature, are recorded once, and distinct ones are all
//! recorded. The Stripe side is in `webhooks.rs`; the helpers both use are in `common`.
//!
//! Every stack here waits 600 s for a pending PSP payment, so a pending checkout that finishes
//! within a test's bounds was woken by a webhook. "Settled" below means the checkout's workflow
//! has no workflow task pending: it has taken in every signal in its history and is blocked (on
//! the PSP, with its timer running) or finished.

mod common;

use common::{
    delivered, fired_timers, long_pending, order, post_webhook, psp_signals, resolve_review, rows_with_payload,
    settled, temporal,
};
use payments_domain::PaymentOrderStatus as S;
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::json;

/// A Toss `PAYMENT_STATUS_CHANGED` event (unsigned, as Toss sends them) for `key` / `po`.
fn toss_status_event(key: &str, po: &str, status: &str, created_at: &str) -> String {
    json!({
        "eventType": "PAYMENT_STATUS_CHANGED",
        "createdAt": created_at,
        "data": {"paymentKey": key, "orderId": po, "status": status, "totalAmount": 20000, "method": "카드"},
    })
    .to_string()
}

/// (f) Toss's unsigned `PAYMENT_STATUS_CHANGED` wakes the workflow of a `billing_sim_review`
/// payment, as a hint only. The simulator's own webhooks are off and the pending deadline is
/// 600 s, so only the events posted here can wake it: a forged `DONE` while the payment is
/// still in review is signaled but leaves the order EXECUTING (the workflow re-fetched the
/// payment); after the PSP approves, a `DONE` event wakes it and the order ends SUCCESS with
/// one capture.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toss_status_event_wakes_pending_payment(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), webhooks: false, ..long_pending("toss") }).await;
    let temporal = temporal(&stack).await;
    let (id, po) = stack.post_one_order("billing_sim_review", "20000", "KRW").await;
    let key = stack.psp_payment_id("toss", &po).await;
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(order(&stack, &po).await.status, S::Executing);
    assert_eq!(psp_signals(&temporal, &id).await, 0);

    let forged = toss_status_event(&key, &po, "DONE", "2024-01-01T00:00:00.000");
    let (status, answer) = post_webhook(&stack, "toss", &forged, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"received": true, "outcome": "signaled"}));
    assert!(settled(&stack, &temporal, &id).await, "a forged DONE finished the checkout");
    assert_eq!(psp_signals(&temporal, &id).await, 1);
    assert_eq!(order(&stack, &po).await.status, S::Executing);
    assert!(stack.captures(&po).await.is_empty());

    resolve_review(&stack, &key, "approve").await;
    // Nothing tells the workflow yet: it still waits.
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(order(&stack, &po).await.status, S::Executing);

    let real = toss_status_event(&key, &po, "DONE", "2024-01-01T00:00:05.000");
    let (status, answer) = post_webhook(&stack, "toss", &real, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "signaled");
    let done = stack.wait_done(&id).await;
    // Woken by the signal, not by the deadline's timer.
    assert_eq!(fired_timers(&temporal, &id).await, 0, "a timer ended the wait");
    assert_eq!(done.orders[0].status, S::Success);
    assert_eq!(done.orders[0].psp_reference.as_deref(), Some(key.as_str()));
    assert_eq!(stack.captures(&po).await.len(), 1);
    assert_eq!(psp_signals(&temporal, &id).await, 2);
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    stack.shutdown().await;
}

/// A Toss payout event shaped as the simulator (and Toss) sends it.
fn toss_payout_event(event_id: &str, payout_id: &str) -> String {
    json!({
        "eventType": "payout.changed",
        "createdAt": "2024-09-05T12:19:21+09:00",
        "version": "2022-11-16",
        "eventId": event_id,
        "entityType": "payout",
        "entityBody": {"id": payout_id, "refPayoutId": payout_id, "status": "COMPLETED",
            "amount": {"currency": "KRW", "value": 10000}},
    })
    .to_string()
}

fn toss_secret() -> String {
    psp_simulator::SimConfig::new().toss_webhook_secret
}

/// Unsigned hints cannot be used to flood a checkout: a recorded hint is never signalled again
/// (a duplicate), and past the per-checkout rate (3 a minute here, duplicates included: the
/// limit comes before any database work) a new one is answered 429 with `Retry-After` and
/// neither recorded nor signalled.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_hints_are_deduplicated_and_rate_limited(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options = StackOptions {
        database_url: Some(url),
        webhooks: false,
        gateway: Some(|c| c.toss_hints_per_checkout_per_min = 3),
        ..long_pending("toss")
    };
    let stack = Stack::start(options).await;
    let temporal = temporal(&stack).await;
    let (id, po) = stack.post_one_order("billing_sim_review", "20000", "KRW").await;
    let key = stack.psp_payment_id("toss", &po).await;
    assert!(settled(&stack, &temporal, &id).await);

    let first = toss_status_event(&key, &po, "DONE", "2024-01-01T00:00:00.000");
    assert_eq!(
        post_webhook(&stack, "toss", &first, &[]).await,
        (200, json!({"received": true, "outcome": "signaled"}))
    );
    assert!(settled(&stack, &temporal, &id).await);
    let again = post_webhook(&stack, "toss", &first, &[]).await;
    assert_eq!(again, (200, json!({"received": true, "duplicate": true})), "a recorded hint is not signalled again");
    let second = toss_status_event(&key, &po, "DONE", "2024-01-01T00:00:01.000");
    assert_eq!(post_webhook(&stack, "toss", &second, &[]).await.0, 200);
    assert!(settled(&stack, &temporal, &id).await);

    let third = toss_status_event(&key, &po, "DONE", "2024-01-01T00:00:02.000");
    let response = stack
        .http
        .post(format!("{}/webhooks/toss", stack.rest_url))
        .header("content-type", "application/json")
        .body(third.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(psp_signals(&temporal, &id).await, 2, "only the two hints within the rate were signalled");
    assert_eq!(rows_with_payload(&stack, "toss", &third).await, 0, "the refused hint was not recorded");
    assert_eq!(order(&stack, &po).await.status, S::Executing, "hints never move money");
    stack.shutdown().await;
}

/// (g) Toss payout events must be signed: unsigned -> 401, signed with another key or for
/// another transmission time -> 401, none recorded; signed as Toss does (two `v1:` values,
/// the first made with a retired key) -> 200 and recorded once. The simulator's own signed
/// `payout.changed` delivery is accepted and recorded too.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toss_payout_events_must_be_signed(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("toss") }).await;
    let secret = toss_secret();
    let time = "2024-09-05T12:19:21+09:00";
    let body = toss_payout_event(&unique("payout-evt"), &unique("FPA"));
    let time_header = ("tosspayments-webhook-transmission-time", time.to_owned());

    let (status, answer) = post_webhook(&stack, "toss", &body, &[]).await;
    assert_eq!(status, 401, "unsigned: {answer}");
    let (status, answer) = post_webhook(&stack, "toss", &body, std::slice::from_ref(&time_header)).await;
    assert_eq!(status, 401, "time but no signature: {answer}");
    let refused = [
        ("another key", psp_simulator::toss_payout_signature("not-the-key", &body, time), time.to_owned()),
        ("another time", psp_simulator::toss_payout_signature(&secret, &body, time), format!("{time}x")),
        ("another body", psp_simulator::toss_payout_signature(&secret, &format!("{body} "), time), time.to_owned()),
    ];
    for (why, signature, sent_time) in refused {
        let headers =
            [("tosspayments-webhook-signature", signature), ("tosspayments-webhook-transmission-time", sent_time)];
        let (status, answer) = post_webhook(&stack, "toss", &body, &headers).await;
        assert_eq!(status, 401, "{why}: {answer}");
    }
    assert_eq!(rows_with_payload(&stack, "toss", &body).await, 0);

    let signature = format!(
        "{},{}",
        psp_simulator::toss_payout_signature(&format!("{secret}:retired"), &body, time),
        psp_simulator::toss_payout_signature(&secret, &body, time)
    );
    let headers = [("tosspayments-webhook-signature", signature), time_header];
    let (status, answer) = post_webhook(&stack, "toss", &body, &headers).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["received"], true);
    assert!(answer.get("outcome").is_some(), "{answer}");
    assert_eq!(rows_with_payload(&stack, "toss", &body).await, 1);
    let (status, answer) = post_webhook(&stack, "toss", &body, &headers).await;
    assert_eq!((status, &answer), (200, &json!({"received": true, "duplicate": true})));
    assert_eq!(rows_with_payload(&stack, "toss", &body).await, 1);

    // The simulator's own payout webhook.
    let resp = stack
        .http
        .post(format!("{}/_sim/toss/payouts", stack.sim_url))
        .json(&json!({"amount": 10000, "destination": "seller-a"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let sent = delivered(&stack, "payout.changed", 1).await;
    let rows: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM webhook_event WHERE psp = 'toss' AND event_type = 'payout.changed' AND payload LIKE $1",
    )
    .bind(format!("%\"eventId\":\"{}\"%", sent[0]))
    .fetch_one(stack.store.pool())
    .await
    .unwrap();
    assert_eq!(rows, 1, "the simulator's payout event {} was not recorded", sent[0]);
    stack.shutdown().await;
}

/// (h) Two distinct Toss payout events signed for the same transmission time are both recorded:
/// the bridge keys payout events by their `eventId` (Toss's payout events carry no
/// `data.payoutId` / `data.id`), so the second is not mistaken for a duplicate.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_toss_payout_events_are_all_recorded(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("toss") }).await;
    let secret = toss_secret();
    let time = "2024-09-05T12:19:21+09:00";
    for n in 0..2 {
        let body = toss_payout_event(&unique(&format!("payout-evt-{n}")), &unique("FPA"));
        let headers = [
            ("tosspayments-webhook-signature", psp_simulator::toss_payout_signature(&secret, &body, time)),
            ("tosspayments-webhook-transmission-time", time.to_owned()),
        ];
        let (status, answer) = post_webhook(&stack, "toss", &body, &headers).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.get("duplicate").is_none(), "event {n} taken for a duplicate: {answer}");
        assert_eq!(rows_with_payload(&stack, "toss", &body).await, 1, "event {n} not recorded");
    }
    stack.shutdown().await;
}
