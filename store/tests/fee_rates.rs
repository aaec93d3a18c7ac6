//! Fee rates on every configured backend: the rate in force at a moment (a seller's override
//! before the currency's default, the latest start not after the moment), no retroactive
//! rates, no duplicates, and the history refuses edits.

mod common;

use common::{seller, stores};
use payments_domain::Currency;
use payments_domain::fees::FeeRate;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn the_rate_in_force_follows_overrides_and_start_times() {
    let usd = Currency::parse("USD").unwrap();
    for store in stores().await {
        let t0 = now_ms() + 60_000;
        let (alice, bob) = (seller("seller-alice"), seller("seller-bob"));
        assert_eq!(store.fee_rate_at(usd, &alice, t0).await.unwrap(), None, "no rate: no fee");
        store.set_fee_rate(usd, None, FeeRate::new(290, 30).unwrap(), Some(t0), "ops").await.unwrap();
        store.set_fee_rate(usd, None, FeeRate::new(250, 30).unwrap(), Some(t0 + 10_000), "ops").await.unwrap();
        store.set_fee_rate(usd, Some(&alice), FeeRate::new(100, 0).unwrap(), Some(t0 + 5_000), "ops").await.unwrap();
        let at = |who, t| {
            let store = store.clone();
            async move { store.fee_rate_at(usd, who, t).await.unwrap().map(|r| (r.rate.bps, r.seller_account.is_some())) }
        };
        assert_eq!(at(&alice, t0 - 1).await, None, "before any rate");
        assert_eq!(at(&alice, t0).await, Some((290, false)), "the default until her override starts");
        assert_eq!(at(&alice, t0 + 5_000).await, Some((100, true)));
        assert_eq!(at(&alice, t0 + 20_000).await, Some((100, true)), "her override beats a later default");
        assert_eq!(at(&bob, t0 + 9_999).await, Some((290, false)));
        assert_eq!(at(&bob, t0 + 10_000).await, Some((250, false)));
        assert_eq!(at(&bob, i64::MAX).await, Some((250, false)));
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(store.fee_rate_at(eur, &bob, t0 + 20_000).await.unwrap(), None, "per currency");
        assert_eq!(store.fee_rates().await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn rates_are_never_retroactive_nor_edited() {
    let usd = Currency::parse("USD").unwrap();
    for store in stores().await {
        let rate = FeeRate::new(290, 30).unwrap();
        assert!(
            store.set_fee_rate(usd, None, rate, Some(now_ms() - 1_000), "ops").await.is_err(),
            "a start in the past"
        );
        let t = now_ms() + 60_000;
        store.set_fee_rate(usd, None, rate, Some(t), "ops").await.unwrap();
        assert!(
            store.set_fee_rate(usd, None, FeeRate::new(1, 0).unwrap(), Some(t), "ops").await.is_err(),
            "same start twice"
        );
        assert!(store.set_fee_rate(usd, None, rate, Some(t + 1), " ").await.is_err(), "who set it is required");
        for sql in ["UPDATE fee_rate SET bps = 1", "DELETE FROM fee_rate"] {
            assert!(sqlx::query(sql).execute(store.pool()).await.is_err(), "{sql} on the history");
        }
        assert_eq!(store.fee_rates().await.unwrap()[0].rate, rate);
    }
}
