//! Balances and payouts on every configured backend: pending until the payout delay passed,
//! a period paid once, the amount booked to in transit before any provider call, settled after
//! PAID, booked back and the seller paused on FAILED (also after PAID), a negative balance
//! carried and netted, minimums, blocks, and candidate paging.

mod common;

use common::{BOTH, assert_consistent, balance, captured, next_millisecond, rid, seller, stores, usd};
use payments_domain::Currency;
use payments_domain::fees::FeeRate;
use payments_store::{
    PayoutHolds, PayoutProgress, PayoutRecord, PayoutSellerDraft, PayoutSkip, PayoutStatus, ReserveOutcome, Store,
};

const DAY_MS: i64 = 86_400_000;

fn usd_code() -> Currency {
    Currency::parse("USD").unwrap()
}

async fn register(store: &Store, s: &str, status: &str) {
    let draft = PayoutSellerDraft {
        seller_account: seller(s),
        provider: "stripe_connect".into(),
        provider_seller_ref: format!("acct_{s}"),
        masked_account: "****6789".into(),
        provider_status: status.into(),
    };
    store.register_payout_seller(&draft).await.unwrap();
}

async fn reserve(store: &Store, s: &str, period: &str, delay_ms: i64) -> ReserveOutcome {
    store.reserve_payout(&seller(s), usd_code(), period, &PayoutHolds::delay(delay_ms)).await.unwrap()
}

fn payout(outcome: ReserveOutcome) -> PayoutRecord {
    match outcome {
        ReserveOutcome::Payout(p) => p,
        other => panic!("no payout: {other:?}"),
    }
}

fn progress(p: &PayoutRecord, status: PayoutStatus, code: Option<&str>) -> PayoutProgress {
    PayoutProgress {
        payout_id: p.payout_id.clone(),
        status,
        provider_payout_id: Some("po_1".into()),
        failure_code: code.map(str::to_owned),
        failure_message: None,
    }
}

/// Fees, the delay, one payout per period, paid then settled: every figure of the books.
#[tokio::test]
async fn a_period_is_paid_once_after_the_delay() {
    for store in stores().await {
        store.set_fee_rate(usd_code(), None, FeeRate::new(1000, 0).unwrap(), None, "ops").await.unwrap();
        next_millisecond().await;
        register(&store, "seller-a", "APPROVED").await;
        captured(&store, "po-a1", "seller-a", "10.00", BOTH).await;
        let b = store.seller_balance(&seller("seller-a"), usd_code(), &PayoutHolds::delay(DAY_MS)).await.unwrap();
        assert_eq!((b.total_minor, b.pending_minor, b.available_minor), (900, 900, 0), "captured today: pending");
        assert_eq!(
            reserve(&store, "seller-a", "2026-12", DAY_MS).await,
            ReserveOutcome::Skipped(PayoutSkip::BelowMinimum { available_minor: 0, minimum_minor: 0 })
        );
        let p = payout(reserve(&store, "seller-a", "2026-12", 0).await);
        assert_eq!(
            (p.amount, p.status, p.payout_id.as_str()),
            (usd(900), PayoutStatus::Reserved, "payout-seller-a-USD-2026-12")
        );
        assert_eq!(p.destination, "acct_seller-a");
        let b = store.seller_balance(&seller("seller-a"), usd_code(), &PayoutHolds::delay(0)).await.unwrap();
        assert_eq!((b.total_minor, b.available_minor, b.in_transit_minor), (0, 0, 900));
        assert_eq!(balance(&store, "seller-a").await, 0, "the wallet mirrors the payable account");
        // The same period again, after more captures: the same payout, nothing more booked.
        captured(&store, "po-a2", "seller-a", "5.00", BOTH).await;
        assert_eq!(payout(reserve(&store, "seller-a", "2026-12", 0).await), p);
        assert_eq!(balance(&store, "seller-a").await, 450);
        assert_consistent(&store).await;

        for status in [PayoutStatus::Requested, PayoutStatus::InTransit, PayoutStatus::Paid] {
            store.record_payout_progress(&progress(&p, status, None)).await.unwrap();
        }
        // A late IN_TRANSIT event does not move it back.
        let again = store.record_payout_progress(&progress(&p, PayoutStatus::InTransit, None)).await.unwrap();
        assert_eq!(again.status, PayoutStatus::Paid);
        assert_consistent(&store).await;
        let settled = store.settle_payout(&p.payout_id).await.unwrap();
        assert_eq!(settled.status, PayoutStatus::Settled);
        assert_eq!(store.settle_payout(&p.payout_id).await.unwrap(), settled, "settling twice changes nothing");
        let b = store.seller_balance(&seller("seller-a"), usd_code(), &PayoutHolds::delay(0)).await.unwrap();
        assert_eq!((b.total_minor, b.available_minor, b.in_transit_minor), (450, 450, 0));
        assert!(
            store.record_payout_progress(&progress(&p, PayoutStatus::Failed, Some("account_closed"))).await.is_err()
        );
        assert_consistent(&store).await;
    }
}

/// Paid, then returned by the bank: the money is booked back to the seller's available
/// balance, the failure code recorded, and the seller paused until the bank account is fixed.
#[tokio::test]
async fn a_returned_payout_books_back_and_pauses_the_seller() {
    for store in stores().await {
        register(&store, "seller-r", "APPROVED").await;
        captured(&store, "po-r1", "seller-r", "20.00", BOTH).await;
        let p = payout(reserve(&store, "seller-r", "2026-11", 0).await);
        store.record_payout_progress(&progress(&p, PayoutStatus::Paid, None)).await.unwrap();
        let failed =
            store.record_payout_progress(&progress(&p, PayoutStatus::Failed, Some("account_closed"))).await.unwrap();
        assert_eq!((failed.status, failed.failure_code.as_deref()), (PayoutStatus::Failed, Some("account_closed")));
        let b = store.seller_balance(&seller("seller-r"), usd_code(), &PayoutHolds::delay(0)).await.unwrap();
        assert_eq!((b.available_minor, b.in_transit_minor), (2000, 0));
        assert_eq!(balance(&store, "seller-r").await, 2000);
        // A repeated failure event books nothing more.
        store.record_payout_progress(&progress(&p, PayoutStatus::Failed, Some("account_closed"))).await.unwrap();
        assert_eq!(balance(&store, "seller-r").await, 2000);
        assert!(
            matches!(reserve(&store, "seller-r", "2026-12", 0).await, ReserveOutcome::Skipped(PayoutSkip::NotPayable(why)) if why.contains("account_closed"))
        );
        store.mark_bank_fixed(&seller("seller-r")).await.unwrap();
        assert_eq!(payout(reserve(&store, "seller-r", "2026-12", 0).await).amount, usd(2000));
        assert_consistent(&store).await;
    }
}

/// A refund after the payout takes the balance below zero; the next captures pay it back
/// first; nothing is ever paid out below zero.
#[tokio::test]
async fn a_negative_balance_is_netted_against_the_next_payout() {
    for store in stores().await {
        register(&store, "seller-n", "APPROVED").await;
        let first = captured(&store, "po-n1", "seller-n", "10.00", BOTH).await;
        let p = payout(reserve(&store, "seller-n", "2026-10", 0).await);
        assert_eq!(p.amount, usd(1000));
        let r = store.request_refund(&rid("po-n1:refund:1"), &first, Some(usd(400)), "late").await.unwrap();
        store.complete_refund(&r.refund_id, "re_1").await.unwrap();
        let b = store.seller_balance(&seller("seller-n"), usd_code(), &PayoutHolds::delay(0)).await.unwrap();
        assert_eq!((b.total_minor, b.available_minor), (-400, 0), "carried");
        captured(&store, "po-n2", "seller-n", "3.00", BOTH).await;
        assert!(matches!(
            reserve(&store, "seller-n", "2026-11", 0).await,
            ReserveOutcome::Skipped(PayoutSkip::BelowMinimum { available_minor: 0, .. })
        ));
        captured(&store, "po-n3", "seller-n", "5.00", BOTH).await;
        let next = payout(reserve(&store, "seller-n", "2026-12", 0).await);
        assert_eq!(next.amount, usd(400), "-4.00 + 3.00 + 5.00");
        assert_consistent(&store).await;
    }
}

/// Not payable at the provider, blocked, below the minimum or not registered: no payout and
/// nothing booked.
#[tokio::test]
async fn sellers_that_cannot_be_paid_are_skipped() {
    for store in stores().await {
        captured(&store, "po-u", "seller-u", "10.00", BOTH).await;
        assert_eq!(reserve(&store, "seller-u", "2026-12", 0).await, ReserveOutcome::Skipped(PayoutSkip::NotRegistered));
        register(&store, "seller-k", "KYC_REQUIRED").await;
        captured(&store, "po-k", "seller-k", "10.00", BOTH).await;
        assert_eq!(
            reserve(&store, "seller-k", "2026-12", 0).await,
            ReserveOutcome::Skipped(PayoutSkip::NotPayable("KYC_REQUIRED".into()))
        );
        store.set_payout_seller_status(&seller("seller-k"), "PARTIALLY_APPROVED").await.unwrap();
        store.set_payout_minimum(&seller("seller-k"), usd_code(), 1500).await.unwrap();
        assert!(matches!(
            reserve(&store, "seller-k", "2026-12", 0).await,
            ReserveOutcome::Skipped(PayoutSkip::BelowMinimum { available_minor: 1000, minimum_minor: 1500 })
        ));
        store.block_wallet(&seller("seller-k"), "fraud review").await.unwrap();
        let b = store.seller_balance(&seller("seller-k"), usd_code(), &PayoutHolds::delay(0)).await.unwrap();
        assert_eq!((b.reserved_minor, b.available_minor), (1000, 0), "a block holds the balance");
        store.set_payout_minimum(&seller("seller-k"), usd_code(), 0).await.unwrap();
        assert_eq!(
            reserve(&store, "seller-k", "2026-12", 0).await,
            ReserveOutcome::Skipped(PayoutSkip::Blocked("fraud review".into()))
        );
        assert!(store.payouts(None, 10).await.unwrap().is_empty());
        assert!(
            store.reserve_payout(&seller("seller-k"), usd_code(), "bad period!", &PayoutHolds::delay(0)).await.is_err()
        );
        assert_consistent(&store).await;
    }
}

/// Candidates come in (seller, currency) order, in pages after a cursor.
#[tokio::test]
async fn payout_candidates_page_in_order() {
    for store in stores().await {
        for s in ["seller-c1", "seller-c2", "seller-c3"] {
            register(&store, s, "APPROVED").await;
            captured(&store, &format!("po-{s}"), s, "1.00", BOTH).await;
        }
        captured(&store, "po-unreg", "seller-c0", "1.00", BOTH).await;
        let page = store.payout_candidates(None, None, None, 2).await.unwrap();
        let names: Vec<_> = page.iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(names, ["seller-c1", "seller-c2"]);
        let (last, currency) = page.last().unwrap().clone();
        let rest = store.payout_candidates(Some((&last, currency)), None, None, 2).await.unwrap();
        assert_eq!(rest.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>(), ["seller-c3"]);
        let one = store.payout_candidates(None, Some(&seller("seller-c2")), None, 10).await.unwrap();
        assert_eq!(one.len(), 1);
    }
}

/// A payout canceled before it was sent (an operator, or the provider refused it) books the
/// amount back to the seller without pausing it: the next period pays it.
#[tokio::test]
async fn a_canceled_payout_books_back_without_pausing() {
    for store in stores().await {
        register(&store, "seller-cx", "APPROVED").await;
        captured(&store, "po-cx", "seller-cx", "7.00", BOTH).await;
        let p = payout(reserve(&store, "seller-cx", "2026-11", 0).await);
        let canceled =
            store.record_payout_progress(&progress(&p, PayoutStatus::Canceled, Some("refused"))).await.unwrap();
        assert_eq!(canceled.status, PayoutStatus::Canceled);
        let b = store.seller_balance(&seller("seller-cx"), usd_code(), &PayoutHolds::delay(0)).await.unwrap();
        assert_eq!((b.available_minor, b.in_transit_minor), (700, 0));
        assert!(store.payout_seller(&seller("seller-cx")).await.unwrap().unwrap().paused_reason.is_none());
        assert_eq!(payout(reserve(&store, "seller-cx", "2026-12", 0).await).amount, usd(700));
        assert_consistent(&store).await;
    }
}

/// Moves an order's capture `ms` into the past (the rolling reserve reads the capture moment).
async fn captured_ago(store: &Store, order: &payments_domain::PaymentOrderId, ms: i64) {
    sqlx::query("UPDATE payment_order SET captured_at_ms = captured_at_ms - $1 WHERE payment_order_id = $2")
        .bind(ms)
        .bind(order.as_str())
        .execute(store.pool())
        .await
        .unwrap();
}

/// A rolling reserve of 10 % for 30 days after a 7-day delay: a capture of 40 days ago is all
/// available, one of 10 days ago is held at 10 % (of 50.05: 5.005, rounded up to 5.01), one of
/// today is pending. A payout takes only the available part; a refund of the held capture
/// lowers its hold; once the window passed the hold is released and the next period pays it.
/// Without a reserve the same books make it all available.
#[tokio::test]
async fn a_rolling_reserve_holds_its_share_until_its_window_passes() {
    let holds = PayoutHolds { delay_ms: 7 * DAY_MS, reserve_bps: 1000, reserve_window_ms: 30 * DAY_MS };
    let figures =
        |b: &payments_store::SellerBalance| (b.total_minor, b.pending_minor, b.reserved_minor, b.available_minor);
    for store in stores().await {
        register(&store, "seller-rr", "APPROVED").await;
        let old = captured(&store, "po-rr-old", "seller-rr", "100.00", BOTH).await;
        let held = captured(&store, "po-rr-held", "seller-rr", "50.05", BOTH).await;
        let new = captured(&store, "po-rr-new", "seller-rr", "20.00", BOTH).await;
        captured_ago(&store, &old, 40 * DAY_MS).await;
        captured_ago(&store, &held, 10 * DAY_MS).await;
        let s = seller("seller-rr");
        let b = store.seller_balance(&s, usd_code(), &holds).await.unwrap();
        assert_eq!(figures(&b), (17005, 2000, 501, 14504), "{b:?}");
        let unreserved = store.seller_balance(&s, usd_code(), &PayoutHolds::delay(7 * DAY_MS)).await.unwrap();
        assert_eq!(figures(&unreserved), (17005, 2000, 0, 15005), "{unreserved:?}");

        // The payout takes the available part only.
        let p = payout(store.reserve_payout(&s, usd_code(), "2026-11", &holds).await.unwrap());
        assert_eq!(p.amount, usd(14504));
        let b = store.seller_balance(&s, usd_code(), &holds).await.unwrap();
        assert_eq!((figures(&b), b.in_transit_minor), ((2501, 2000, 501, 0), 14504), "{b:?}");

        // A refund of 10.05 of the held capture: the hold is 10 % of the 40.00 left.
        let (refund, _) = store.request_next_refund(&held, Some(usd(1005)), "returned", None).await.unwrap();
        store.complete_refund(&refund.refund_id, "re_rr").await.unwrap();
        let b = store.seller_balance(&s, usd_code(), &holds).await.unwrap();
        assert_eq!(figures(&b), (1496, 1496, 0, 0), "pending and holds never exceed the balance: {b:?}");

        // The held capture leaves its window (31 days old) and today's passes its delay (8 days
        // old): the first is released, the second is held at 10 %, the next period pays the rest.
        captured_ago(&store, &held, 21 * DAY_MS).await;
        captured_ago(&store, &new, 8 * DAY_MS).await;
        let b = store.seller_balance(&s, usd_code(), &holds).await.unwrap();
        assert_eq!(figures(&b), (1496, 0, 200, 1296), "{b:?}");
        let next = payout(store.reserve_payout(&s, usd_code(), "2026-12", &holds).await.unwrap());
        assert_eq!(next.amount, usd(1296));
        assert_consistent(&store).await;
    }
}
