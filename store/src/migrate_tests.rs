//! Migrations 0005 and 0007 against databases that already hold data written under the schemas
//! before them, on every configured backend. Here rather than in `tests/` because it stops the migrator
//! half-way, which the public API never does.

use crate::test_db::test_database_urls;
use crate::{Backend, RefundId, RefundKind, RefundStatus, Store, TokenVault, migrate};
use payments_domain::{CheckoutId, PaymentOrderId, PaymentOrderStatus as S};
use sqlx::Row;

/// The newest migration.
const LATEST_VERSION: i64 = 15;

/// A direct USD checkout with NOT_STARTED orders of `(id, amount_minor)`, written with the
/// columns every schema since 0002 has (as older gateways wrote it: the token in plain text).
async fn old_checkout(store: &Store, checkout: &str, orders: &[(&str, i64)]) {
    try_exec(
        store,
        &format!(
            "INSERT INTO payment_event (checkout_id, buyer_id, buyer_info, payment_token, flow, is_payment_done, \
             created_at_ms, updated_at_ms) VALUES ('{checkout}', 'buyer-1', '{{}}', 'pm_card_visa', 'direct', \
             FALSE, 1, 1)"
        ),
    )
    .await
    .unwrap();
    for (position, (id, amount)) in orders.iter().enumerate() {
        try_exec(
            store,
            &format!(
                "INSERT INTO payment_order (payment_order_id, checkout_id, position, seller_account, amount_minor, \
                 currency, status, wallet_updated, ledger_updated, created_at_ms, updated_at_ms) VALUES \
                 ('{id}', '{checkout}', {position}, 'seller-m', {amount}, 'USD', 'NOT_STARTED', FALSE, FALSE, 1, 1)"
            ),
        )
        .await
        .unwrap();
        try_exec(
            store,
            &format!(
                "INSERT INTO payment_order_history (payment_order_id, from_status, to_status, reason, \
                 created_at_ms) VALUES ('{id}', NULL, 'NOT_STARTED', 'checkout received', 1)"
            ),
        )
        .await
        .unwrap();
    }
}

fn po(s: &str) -> PaymentOrderId {
    PaymentOrderId::parse(s).unwrap()
}

/// The tables schema 0004 already had whose indexes and triggers later migrations must keep:
/// the ones 0005 rebuilds or points at, and the append-only money records.
const KEPT_TABLES: &str = "'payment_order', 'payment_order_history', 'refund', 'payment_event', \
                           'ledger_transaction', 'ledger_entry', 'wallet_movement'";

/// Names of the indexes and triggers on `tables` (a quoted SQL list), sorted.
async fn schema_objects(store: &Store, tables: &str) -> Vec<String> {
    let sql = match store.backend() {
        Backend::Sqlite => format!(
            "SELECT type || ' ' || name FROM sqlite_master WHERE type IN ('index', 'trigger') \
             AND tbl_name IN ({tables}) ORDER BY 1"
        ),
        Backend::Postgres => format!(
            "SELECT 'index ' || CAST(indexname AS TEXT) FROM pg_indexes WHERE tablename IN ({tables}) \
             UNION ALL SELECT 'trigger ' || CAST(t.tgname AS TEXT) FROM pg_trigger t \
             JOIN pg_class c ON t.tgrelid = c.oid WHERE NOT t.tgisinternal AND c.relname IN ({tables}) ORDER BY 1"
        ),
    };
    sqlx::query(&sql).fetch_all(store.pool()).await.unwrap().iter().map(|r| r.get::<String, _>(0)).collect()
}

/// A status change as the code of an older schema wrote it: the order's status and its history
/// row (the current code reads columns older schemas do not have).
async fn old_transition(store: &Store, id: &str, from: &str, to: &str) {
    try_exec(
        store,
        &format!("UPDATE payment_order SET status = '{to}', updated_at_ms = 2 WHERE payment_order_id = '{id}'"),
    )
    .await
    .unwrap();
    try_exec(
        store,
        &format!(
            "INSERT INTO payment_order_history (payment_order_id, from_status, to_status, reason, created_at_ms) \
             VALUES ('{id}', '{from}', '{to}', 'old code', 2)"
        ),
    )
    .await
    .unwrap();
}

/// The orders' columns every schema has, one string per order.
async fn order_rows(store: &Store) -> Vec<String> {
    let sql = "SELECT payment_order_id || ' ' || checkout_id || ' ' || seller_account || ' ' || \
               CAST(amount_minor AS TEXT) || ' ' || currency || ' ' || status || ' ' || \
               CAST(CASE WHEN ledger_updated THEN 1 ELSE 0 END AS TEXT) || ' ' || \
               CAST(CASE WHEN wallet_updated THEN 1 ELSE 0 END AS TEXT) FROM payment_order ORDER BY 1";
    sqlx::query(sql).fetch_all(store.pool()).await.unwrap().iter().map(|r| r.get::<String, _>(0)).collect()
}

/// The history rows, one string each.
async fn history_rows(store: &Store) -> Vec<String> {
    let sql = "SELECT payment_order_id || ' ' || COALESCE(from_status, '-') || ' ' || to_status || ' ' || reason \
               FROM payment_order_history ORDER BY id";
    sqlx::query(sql).fetch_all(store.pool()).await.unwrap().iter().map(|r| r.get::<String, _>(0)).collect()
}

/// Runs a statement in its own transaction; Err if the statement or the commit is refused.
async fn try_exec(store: &Store, sql: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(sql).execute(&mut *tx).await?;
    tx.commit().await
}

/// Orders, their history and their refunds written under schema 0004 survive 0005 unchanged
/// (refunds read back as kind `refund`); indexes and triggers are all still there; foreign keys
/// from the history and refunds to the rebuilt `payment_order` (and from it to `payment_event`)
/// are still enforced; and REVERSED is now accepted while unknown statuses are still refused.
#[tokio::test]
async fn migration_0005_keeps_data_and_foreign_keys() {
    for url in test_database_urls().await {
        let store = Store::open(&url).await.unwrap();
        migrate::run_to(&store, 4).await.unwrap();
        // Rows as the gateway of schema 0004 wrote them (plain-text token, no 0007 columns).
        old_checkout(&store, "chk-mig", &[("po-mig-1", 1000), ("po-mig-2", 500)]).await;
        for (id, end) in [("po-mig-1", "SUCCESS"), ("po-mig-2", "FAILED")] {
            old_transition(&store, id, "NOT_STARTED", "EXECUTING").await;
            old_transition(&store, id, "EXECUTING", end).await;
        }
        // The pay-in as the code of schema 0004 posted it: two legs, no fee, in one transaction
        // (the entries' key to their transaction is checked at commit).
        let mut tx = store.pool().begin().await.unwrap();
        for sql in [
            "INSERT INTO ledger_entry (transaction_id, account, direction, amount_minor, currency) \
             VALUES ('po-mig-1:ledger', 'psp_clearing', 'DEBIT', 1000, 'USD')",
            "INSERT INTO ledger_entry (transaction_id, account, direction, amount_minor, currency) \
             VALUES ('po-mig-1:ledger', 'seller_payable:seller-m', 'CREDIT', 1000, 'USD')",
            "INSERT INTO ledger_transaction (id, kind, payment_order_id, created_at_ms) \
             VALUES ('po-mig-1:ledger', 'payin', 'po-mig-1', 3)",
            "UPDATE payment_order SET ledger_updated = TRUE WHERE payment_order_id = 'po-mig-1'",
        ] {
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        // A refund row as 0004 wrote it (no kind column yet).
        try_exec(
            &store,
            "INSERT INTO refund (refund_id, payment_order_id, amount_minor, currency, reason, status, failure_code, \
             created_at_ms, updated_at_ms) VALUES ('po-mig-1:refund:1', 'po-mig-1', 100, 'USD', 'old', 'FAILED', \
             'psp_refused', 1, 2)",
        )
        .await
        .unwrap();
        let before = order_rows(&store).await;
        let history_before = history_rows(&store).await;
        let objects_before = schema_objects(&store, KEPT_TABLES).await;
        for guarded in ["payment_order_history", "ledger_transaction", "ledger_entry"] {
            assert!(
                objects_before.iter().any(|o| o.starts_with(&format!("trigger {guarded}_"))),
                "{guarded}'s triggers are compared: {objects_before:?}"
            );
        }

        migrate::run(&store).await.unwrap();
        let version: i64 =
            sqlx::query("SELECT MAX(version) FROM schema_migration").fetch_one(store.pool()).await.unwrap().get(0);
        assert_eq!(version, LATEST_VERSION);
        assert_eq!(order_rows(&store).await, before, "orders unchanged");
        assert_eq!(history_rows(&store).await, history_before);
        assert_eq!(store.order(&po("po-mig-1")).await.unwrap().unwrap().fee, None, "captured before fees");
        // Exactly what 0004 had plus what later migrations add to those tables: nothing lost,
        // every guard added present (0005: one reversal per order; 0007: client keys and the
        // start sweeps; 0008: the history's TRUNCATE guard on PostgreSQL and the wallet
        // movements' guards; 0014: the wallet movements by seller; 0015: captures by time and orders
        // by PSP reference, for reconciliation).
        let added: &[&str] = match store.backend() {
            Backend::Sqlite => &["trigger wallet_movement_no_delete", "trigger wallet_movement_no_update"],
            Backend::Postgres => &[
                "trigger payment_order_history_no_truncate",
                "trigger wallet_movement_append_only",
                "trigger wallet_movement_no_truncate",
            ],
        };
        let mut expected = objects_before.clone();
        expected.extend(
            [
                "index payment_event_client_key",
                "index payment_event_unstarted",
                "index refund_client_key",
                "index refund_one_reversal",
                "index refund_unstarted",
                "index wallet_movement_seller",
                "index ledger_transaction_kind_time",
                "index payment_order_psp_reference",
            ]
            .iter()
            .chain(added)
            .map(|o| (*o).to_owned()),
        );
        expected.sort();
        assert_eq!(schema_objects(&store, KEPT_TABLES).await, expected, "indexes and triggers");
        // The fee rates (0011) are append-only too.
        let fee_rate_guards: &[&str] = match store.backend() {
            Backend::Sqlite => &["trigger fee_rate_no_delete", "trigger fee_rate_no_update"],
            Backend::Postgres => &["trigger fee_rate_append_only", "trigger fee_rate_no_truncate"],
        };
        let fee_rate = schema_objects(&store, "'fee_rate'").await;
        for guard in fee_rate_guards {
            assert!(fee_rate.iter().any(|o| o == guard), "{guard} on fee_rate: {fee_rate:?}");
        }
        let refunds = store.refunds(&po("po-mig-1")).await.unwrap();
        assert_eq!(refunds.len(), 1);
        assert_eq!((refunds[0].kind, refunds[0].status), (RefundKind::Refund, RefundStatus::Failed));
        assert_eq!(refunds[0].refund_id, RefundId::parse("po-mig-1:refund:1").unwrap());
        if store.backend() == Backend::Sqlite {
            let violations = sqlx::query("PRAGMA foreign_key_check").fetch_all(store.pool()).await.unwrap();
            assert!(violations.is_empty(), "{} foreign key violations", violations.len());
        }

        // Foreign keys into and out of the rebuilt table still hold.
        let refused = [
            "INSERT INTO payment_order_history (payment_order_id, from_status, to_status, reason, created_at_ms) \
             VALUES ('po-none', NULL, 'NOT_STARTED', 'x', 1)",
            "INSERT INTO refund (refund_id, payment_order_id, amount_minor, currency, reason, status, created_at_ms, \
             updated_at_ms) VALUES ('po-none:refund:1', 'po-none', 1, 'USD', 'x', 'REQUESTED', 1, 1)",
            "INSERT INTO payment_order (payment_order_id, checkout_id, position, seller_account, amount_minor, \
             currency, status, created_at_ms, updated_at_ms) VALUES ('po-x', 'chk-none', 0, 's', 1, 'USD', \
             'NOT_STARTED', 1, 1)",
            "UPDATE payment_order SET status = 'BOGUS' WHERE payment_order_id = 'po-mig-2'",
            "DELETE FROM payment_order WHERE payment_order_id = 'po-mig-2'",
        ];
        for sql in refused {
            assert!(try_exec(&store, sql).await.is_err(), "database accepted: {sql}");
        }
        try_exec(
            &store,
            "INSERT INTO payment_order_history (payment_order_id, from_status, to_status, reason, created_at_ms) \
             VALUES ('po-mig-2', 'FAILED', 'FAILED', 'note', 1)",
        )
        .await
        .unwrap();

        // The migrated order can be reversed: ledger posted, wallet never credited.
        let reversal = store.request_reversal(&po("po-mig-1"), "wallet credit failed").await.unwrap();
        assert_eq!(reversal.amount.amount_minor(), 1000, "the FAILED refund reserves nothing");
        store.complete_refund(&reversal.refund_id, "re_mig").await.unwrap();
        assert_eq!(store.order(&po("po-mig-1")).await.unwrap().unwrap().status, S::Reversed);
        let report = store.verify().await.unwrap();
        assert!(report.is_consistent(), "{report:?}");
        store.close().await;
    }
}

/// Rows written before 0007: a done checkout needs no start, an open one is left to the start
/// sweep; finished refunds and reversals need no start, a REQUESTED refund is left to the
/// sweep; a plain-text token still reads back and is then sealed in place.
#[tokio::test]
async fn migration_0007_marks_starts_and_seals_old_tokens() {
    for url in test_database_urls().await {
        let store = Store::open(&url).await.unwrap();
        migrate::run_to(&store, 6).await.unwrap();
        old_checkout(&store, "chk-open", &[("po-open", 100)]).await;
        old_checkout(&store, "chk-done", &[("po-done", 100)]).await;
        old_transition(&store, "po-done", "NOT_STARTED", "EXECUTING").await;
        old_transition(&store, "po-done", "EXECUTING", "FAILED").await;
        try_exec(&store, "UPDATE payment_event SET is_payment_done = TRUE WHERE checkout_id = 'chk-done'")
            .await
            .unwrap();
        migrate::run(&store).await.unwrap();

        let open = store.checkout(&CheckoutId::parse("chk-open").unwrap()).await.unwrap().unwrap();
        let done = store.checkout(&CheckoutId::parse("chk-done").unwrap()).await.unwrap().unwrap();
        assert!(!open.workflow_started && done.workflow_started);
        assert_eq!(open.client_key, None);
        let unstarted = store.unstarted_checkouts(i64::MAX, None, 10).await.unwrap();
        assert_eq!(unstarted.iter().map(|c| c.checkout_id.as_str()).collect::<Vec<_>>(), ["chk-open"]);

        let id = CheckoutId::parse("chk-open").unwrap();
        assert_eq!(store.payment_token(&id).await.unwrap().as_deref(), Some("pm_card_visa"), "legacy plain text");
        assert_eq!(store.seal_legacy_tokens().await.unwrap(), 2);
        assert_eq!(store.seal_legacy_tokens().await.unwrap(), 0, "idempotent");
        let stored: String = sqlx::query("SELECT payment_token FROM payment_event WHERE checkout_id = 'chk-open'")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
        assert!(TokenVault::is_sealed(&stored) && !stored.contains("pm_card_visa"), "{stored}");
        assert_eq!(store.payment_token(&id).await.unwrap().as_deref(), Some("pm_card_visa"));
        store.close().await;
    }
}
