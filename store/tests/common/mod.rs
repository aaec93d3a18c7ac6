//! Helpers shared by the failure-handling tests: a fresh store per configured backend and
//! one-order checkouts driven to a chosen state.

#![allow(dead_code)] // each test file uses a different subset

use payments_domain::checkout::draft_from_json;
use payments_domain::{Currency, Money, NewCheckout, PaymentOrderId, PaymentOrderStatus as S, SellerAccount};
use payments_store::test_db::test_database_urls;
use payments_store::{RefundId, Store, Transition};
use serde_json::json;

/// A fresh store on every configured backend (SQLite always, PostgreSQL when configured).
pub async fn stores() -> Vec<Store> {
    let mut stores = Vec::new();
    for url in test_database_urls().await {
        stores.push(Store::connect(&url).await.unwrap_or_else(|e| panic!("connect {url}: {e}")));
    }
    stores
}

pub fn po(s: &str) -> PaymentOrderId {
    PaymentOrderId::parse(s).unwrap()
}

pub fn rid(s: &str) -> RefundId {
    RefundId::parse(s).unwrap()
}

pub fn seller(s: &str) -> SellerAccount {
    SellerAccount::parse(s).unwrap()
}

pub fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("USD").unwrap())
}

/// Which bookings of a captured order to make.
#[derive(Debug, Clone, Copy)]
pub struct Book {
    pub wallet: bool,
    pub ledger: bool,
}

pub const BOTH: Book = Book { wallet: true, ledger: true };
pub const NONE: Book = Book { wallet: false, ledger: false };

/// Stores a one-order USD checkout `chk-{id}`; the order is NOT_STARTED.
pub async fn checkout_order(store: &Store, id: &str, seller: &str, amount: &str) -> PaymentOrderId {
    let body = json!({
        "checkout_id": format!("chk-{id}"),
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"payment_order_id": id, "seller_account": seller, "amount": amount, "currency": "USD"}],
    });
    store.create_checkout(&NewCheckout::parse(draft_from_json(&body).unwrap()).unwrap(), None).await.unwrap();
    po(id)
}

/// [`checkout_order`], driven to SUCCESS (captured) with the chosen bookings.
pub async fn captured(store: &Store, id: &str, seller: &str, amount: &str, book: Book) -> PaymentOrderId {
    let id = checkout_order(store, id, seller, amount).await;
    store.transition(&id, &Transition::to(S::Executing, "charging")).await.unwrap();
    store.transition(&id, &Transition::to(S::Success, "psp captured")).await.unwrap();
    if book.wallet {
        store.credit_wallet_for_order(&id).await.unwrap();
    }
    if book.ledger {
        store.post_order_ledger(&id).await.unwrap();
    }
    id
}

pub async fn assert_consistent(store: &Store) {
    let report = store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
}

/// The seller's USD balance; 0 when the seller has no wallet row.
pub async fn balance(store: &Store, s: &str) -> i64 {
    let b = store.wallet_balances(&seller(s)).await.unwrap();
    assert!(b.len() <= 1, "{b:?}");
    b.first().map_or(0, |m| m.amount_minor())
}

/// Ledger transactions of a kind.
pub async fn ledger_transactions(store: &Store, kind: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM ledger_transaction WHERE kind = $1")
        .bind(kind)
        .fetch_one(store.pool())
        .await
        .map(|r| sqlx::Row::get::<i64, _>(&r, "n"))
        .unwrap()
}

/// Waits until the wall clock has left the current millisecond. The store stamps fee rates and
/// captures with it, and a test that needs one strictly after the other (a rate set after a
/// capture, two rates in a row, which share a key when they share a millisecond) waits for the
/// next one instead of guessing a sleep.
pub async fn next_millisecond() {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let start = now();
    while now() <= start {
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
}
