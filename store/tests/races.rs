//! Races on one order's money with truly parallel callers: a multi-threaded runtime, every
//! racer released by one barrier, many rounds, on every configured backend (PostgreSQL's row
//! locks and SQLite's single writer). Whatever the interleaving: never more refunded than
//! captured, one refund per idempotency key, one record per webhook, and consistent books.

mod common;

use common::{BOTH, assert_consistent, balance, captured, rid, usd};
use payments_domain::PaymentOrderStatus as S;
use payments_store::{RefundRecord, RefundStatus, Store, StoreError, WebhookEvent, WebhookRecord};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Barrier;

/// Rounds per race: each a fresh order, so each a fresh interleaving.
const ROUNDS: usize = 8;

/// Runs the futures at once (each on a task of its own, released together); answers their
/// results in order.
async fn at_once<T: Send + 'static>(futures: Vec<impl Future<Output = T> + Send + 'static>) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(futures.len()));
    let tasks: Vec<_> = futures
        .into_iter()
        .map(|f| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                f.await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("racer panicked"));
    }
    results
}

/// A customer's refund of 4.00 and the saga's reversal of a 10.00 capture, requested at once,
/// then completed at once: either the refund came first (4.00, and the reversal takes the
/// remaining 6.00) or the reversal took everything (10.00, the refund refused with nothing
/// refundable). Either way 10.00 is given back in all, the order ends REVERSED, the seller's
/// wallet ends at zero and the books hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_and_a_reversal_at_once_never_exceed_the_capture() {
    for store in common::stores().await {
        let mut orders_seen = [0usize; 2];
        for round in 0..ROUNDS {
            let (name, seller) = (format!("po-rr{round}"), format!("seller-rr{round}"));
            let id = captured(&store, &name, &seller, "10.00", BOTH).await;
            let refund = {
                let (store, id, refund_id) = (store.clone(), id.clone(), rid(&format!("{name}:refund:1")));
                async move { store.request_refund(&refund_id, &id, Some(usd(400)), "customer").await }
            };
            let reversal = {
                let (store, id) = (store.clone(), id.clone());
                async move { store.request_reversal(&id, "wallet credit refused").await }
            };
            let mut answers = at_once(vec![Box::pin(refund) as RefundFuture, Box::pin(reversal)]).await;
            let (reversal, refund) = (answers.pop().unwrap(), answers.pop().unwrap());
            let reversal = reversal.expect("the reversal is always granted something");
            let granted: Vec<RefundRecord> = match refund {
                Ok(r) => {
                    assert_eq!((r.amount, reversal.amount), (usd(400), usd(600)), "round {round}");
                    orders_seen[0] += 1;
                    vec![r, reversal]
                }
                Err(StoreError::RefundTooLarge { refundable }) => {
                    assert_eq!((refundable, reversal.amount), (usd(0), usd(1000)), "round {round}");
                    orders_seen[1] += 1;
                    vec![reversal]
                }
                Err(e) => panic!("round {round}: {e}"),
            };
            let completions = granted
                .iter()
                .map(|r| {
                    let (store, refund_id) = (store.clone(), r.refund_id.clone());
                    async move { store.complete_refund(&refund_id, &format!("re_{refund_id}")).await }
                })
                .collect();
            for done in at_once(completions).await {
                assert_eq!(done.expect("completed").status, RefundStatus::Succeeded, "round {round}");
            }
            let refunds = store.refunds(&id).await.unwrap();
            let given_back: i64 =
                refunds.iter().filter(|r| r.status == RefundStatus::Succeeded).map(|r| r.amount.amount_minor()).sum();
            assert_eq!(given_back, 1000, "round {round}: {refunds:?}");
            assert_eq!(store.order(&id).await.unwrap().unwrap().status, S::Reversed, "round {round}");
            assert_eq!(balance(&store, &seller).await, 0, "round {round}");
            assert_consistent(&store).await;
        }
        eprintln!("refund first / reversal first: {orders_seen:?}");
    }
}

type RefundFuture = std::pin::Pin<Box<dyn Future<Output = Result<RefundRecord, StoreError>> + Send>>;

/// Six refunds of everything at once, each under its own key: one is stored (the whole
/// 10.00), five are refused with nothing refundable. Then six at once under one key, on a
/// second order: one refund is stored and all six are answered with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_at_once_store_one() {
    for store in common::stores().await {
        for round in 0..ROUNDS {
            let id = captured(&store, &format!("po-ra{round}"), "seller-ra", "10.00", BOTH).await;
            let requests =
                (0..6)
                    .map(|i| {
                        let (store, id) = (store.clone(), id.clone());
                        async move {
                            store.request_next_refund(&id, None, "everything", Some(&format!("ra{round}-{i}"))).await
                        }
                    })
                    .collect();
            let answers = at_once(requests).await;
            let stored: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
            assert_eq!(stored.len(), 1, "round {round}: {answers:?}");
            assert_eq!((stored[0].0.amount, stored[0].1), (usd(1000), true));
            for a in &answers {
                match a {
                    Ok(_) => {}
                    Err(StoreError::RefundTooLarge { refundable }) => assert_eq!(*refundable, usd(0), "round {round}"),
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            assert_eq!(store.refunds(&id).await.unwrap().len(), 1, "round {round}");

            let other = captured(&store, &format!("po-rk{round}"), "seller-rk", "10.00", BOTH).await;
            let key = format!("rk{round}");
            let requests = (0..6)
                .map(|_| {
                    let (store, other, key) = (store.clone(), other.clone(), key.clone());
                    async move { store.request_next_refund(&other, Some(usd(300)), "one item", Some(&key)).await }
                })
                .collect();
            let answers: Vec<_> =
                at_once(requests).await.into_iter().map(|a| a.expect("same key, same request")).collect();
            assert_eq!(answers.iter().filter(|(_, new)| *new).count(), 1, "round {round}: stored once");
            assert!(answers.iter().all(|(r, _)| *r == answers[0].0), "round {round}: one refund answered");
            assert_eq!(store.refunds(&other).await.unwrap().len(), 1, "round {round}");
        }
        assert_consistent(&store).await;
    }
}

/// The same webhook recorded eight times at once (a PSP's retry arriving while the first
/// delivery is being handled, two gateways): one `New`, the others `Pending` (seen, not yet
/// handled), one row. Once handled, every later delivery is `Done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_webhook_recorded_at_once_is_stored_once() {
    for store in common::stores().await {
        for round in 0..ROUNDS {
            let event_id = format!("evt_race_{round}");
            let answers = at_once((0..8).map(|_| record(store.clone(), event_id.clone())).collect()).await;
            let answers: Vec<WebhookRecord> = answers.into_iter().map(|a| a.expect("recorded")).collect();
            assert_eq!(answers.iter().filter(|a| **a == WebhookRecord::New).count(), 1, "round {round}: {answers:?}");
            assert!(answers.iter().all(|a| matches!(a, WebhookRecord::New | WebhookRecord::Pending)), "{answers:?}");
            let rows: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM webhook_event WHERE psp = 'stripe' AND event_id = $1")
                    .bind(&event_id)
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            assert_eq!(rows, 1, "round {round}");
            store.finish_webhook("stripe", &event_id, "signaled").await.unwrap();
            let later = at_once((0..4).map(|_| record(store.clone(), event_id.clone())).collect()).await;
            assert!(later.into_iter().all(|a| a.expect("recorded") == WebhookRecord::Done), "round {round}");
        }
    }
}

async fn record(store: Store, event_id: String) -> Result<WebhookRecord, StoreError> {
    let event = WebhookEvent {
        psp: "stripe",
        event_id: &event_id,
        event_type: "payment_intent.succeeded",
        checkout_id: None,
        payload: "{}",
    };
    store.record_webhook(&event).await
}
