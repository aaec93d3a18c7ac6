//! The schema after every migration (0005 rebuilt `payment_order` on SQLite), run against
//! every configured backend: constraints hold even for raw SQL that bypasses the store.

mod common;

use common::{BOTH, captured};
use payments_store::Store;

/// Runs a statement in its own transaction; Err if the statement or the commit is refused.
async fn try_exec(store: &Store, sql: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(sql).execute(&mut *tx).await?;
    tx.commit().await
}

/// Foreign keys into the rebuilt `payment_order` (history, refunds) and out of it (checkout)
/// still refuse dangling rows, while rows for an existing order are accepted; the status CHECK
/// accepts REVERSED and nothing unknown; the new tables' CHECKs hold.
#[tokio::test]
async fn migrated_schema_enforces_foreign_keys_and_checks() {
    for store in common::stores().await {
        captured(&store, "po-s", "seller-s", "2.00", BOTH).await;
        let accepted = [
            "INSERT INTO payment_order_history (payment_order_id, from_status, to_status, reason, created_at_ms) \
             VALUES ('po-s', 'SUCCESS', 'SUCCESS', 'note', 1)",
            "INSERT INTO refund (refund_id, payment_order_id, amount_minor, currency, reason, status, created_at_ms, \
             updated_at_ms) VALUES ('po-s:refund:9', 'po-s', 1, 'USD', 'x', 'FAILED', 1, 1)",
            "INSERT INTO dead_letter (dead_letter_id, workflow_id, subject, step, reason, last_error, attempts, status, \
             created_at_ms, updated_at_ms) VALUES ('d', 'w', 's', 'st', 'r', 'e', 0, 'OPEN', 1, 1)",
        ];
        for sql in accepted {
            try_exec(&store, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let refused = [
            // Foreign keys.
            "INSERT INTO payment_order_history (payment_order_id, from_status, to_status, reason, created_at_ms) \
             VALUES ('po-none', NULL, 'NOT_STARTED', 'x', 1)",
            "INSERT INTO refund (refund_id, payment_order_id, amount_minor, currency, reason, status, created_at_ms, \
             updated_at_ms) VALUES ('po-none:refund:1', 'po-none', 1, 'USD', 'x', 'REQUESTED', 1, 1)",
            "INSERT INTO payment_order (payment_order_id, checkout_id, position, seller_account, amount_minor, \
             currency, status, created_at_ms, updated_at_ms) VALUES ('po-x', 'chk-none', 0, 's', 1, 'USD', \
             'NOT_STARTED', 1, 1)",
            "DELETE FROM payment_order WHERE payment_order_id = 'po-s'",
            // CHECKs.
            "UPDATE payment_order SET status = 'BOGUS' WHERE payment_order_id = 'po-s'",
            "UPDATE refund SET kind = 'gift' WHERE refund_id = 'po-s:refund:9'",
            "UPDATE dead_letter SET status = 'RESOLVED' WHERE dead_letter_id = 'd'",
            "UPDATE dead_letter SET attempts = -1 WHERE dead_letter_id = 'd'",
            "UPDATE dead_letter SET status = 'DONE' WHERE dead_letter_id = 'd'",
            // At most one reversal per order.
            "INSERT INTO refund (refund_id, payment_order_id, kind, amount_minor, currency, reason, status, \
             created_at_ms, updated_at_ms) VALUES ('a', 'po-s', 'reversal', 1, 'USD', 'x', 'FAILED', 1, 1), \
             ('b', 'po-s', 'reversal', 1, 'USD', 'x', 'FAILED', 1, 1)",
        ];
        for sql in refused {
            assert!(try_exec(&store, sql).await.is_err(), "database accepted: {sql}");
        }
        try_exec(&store, "UPDATE payment_order SET status = 'REVERSED' WHERE payment_order_id = 'po-s'").await.unwrap();
        let kind: String = sqlx::query("SELECT kind FROM refund WHERE refund_id = 'po-s:refund:9'")
            .fetch_one(store.pool())
            .await
            .map(|r| sqlx::Row::get(&r, 0))
            .unwrap();
        assert_eq!(kind, "refund", "the default kind");
    }
}
