//! The database itself keeps the money records append-only: the order history, the ledger's
//! transactions and entries, the wallets' movements and the fee rate history refuse UPDATE,
//! DELETE and (PostgreSQL) TRUNCATE of real rows, even from raw SQL that bypasses our code;
//! every refused statement is refused by the table's own guard (its "<table> is append-only"
//! error, not another table's guard or a constraint that happens to be in the way) and leaves every row in place. Both
//! backends.

mod common;

use common::{BOTH, captured, stores};
use payments_domain::Currency;
use payments_domain::fees::FeeRate;
use payments_store::{Backend, Store};
use sqlx::Row;

/// The append-only tables.
const PROTECTED: [&str; 5] =
    ["payment_order_history", "ledger_transaction", "ledger_entry", "wallet_movement", "fee_rate"];

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(store.pool()).await.unwrap().get(0)
}

/// Runs `sql` in its own transaction and commits: Err if the statement or the commit is refused.
async fn try_exec(store: &Store, sql: &str) -> Result<u64, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let affected = sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(affected)
}

/// With a captured, booked and refunded order in every protected table, each way of changing
/// or removing rows is refused and nothing changes.
#[tokio::test]
async fn protected_tables_refuse_changes_to_real_rows() {
    for store in stores().await {
        let id = captured(&store, "po-ao", "seller-ao", "5.00", BOTH).await;
        let (refund, _) = store.request_next_refund(&id, None, "customer", None).await.unwrap();
        store.complete_refund(&refund.refund_id, "re_ao").await.unwrap();
        for currency in ["USD", "EUR"] {
            let currency = Currency::parse(currency).unwrap();
            store.set_fee_rate(currency, None, FeeRate::new(290, 30).unwrap(), None, "ops").await.unwrap();
        }
        let before: Vec<i64> = counts(&store).await;
        assert!(before.iter().all(|n| *n >= 2), "every protected table holds rows: {before:?}");
        for table in PROTECTED {
            let column = match table {
                "payment_order_history" => "reason",
                "ledger_transaction" => "kind",
                "ledger_entry" => "account",
                "fee_rate" => "created_by",
                _ => "seller_account",
            };
            let mut attempts = vec![
                format!("UPDATE {table} SET {column} = 'x'"),
                format!("DELETE FROM {table}"),
                format!("DELETE FROM {table} WHERE {column} = (SELECT MIN({column}) FROM {table})"),
            ];
            if store.backend() == Backend::Postgres {
                attempts.push(format!("TRUNCATE {table}"));
                attempts.push(format!("TRUNCATE {table} CASCADE"));
            }
            for sql in attempts {
                let refused = match try_exec(&store, &sql).await {
                    Ok(n) => panic!("database accepted `{sql}` ({n} rows)"),
                    Err(e) => e.to_string(),
                };
                // The guard refused it. The one exception: PostgreSQL refuses a plain TRUNCATE
                // of a table other tables point at before any trigger runs (the CASCADE form
                // then reaches the guards).
                let referenced = store.backend() == Backend::Postgres
                    && sql == format!("TRUNCATE {table}")
                    && refused.contains("cannot truncate a table referenced in a foreign key constraint");
                let guard = format!("{table} is append-only");
                assert!(refused.contains(&guard) || referenced, "`{sql}` refused by something else: {refused}");
            }
        }
        assert_eq!(counts(&store).await, before, "no row changed");
        let report = store.verify().await.unwrap();
        assert!(report.is_consistent(), "{report:?}");
    }
}

async fn counts(store: &Store) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in PROTECTED {
        counts.push(count(store, table).await);
    }
    counts
}
