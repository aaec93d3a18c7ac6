//! A small embedded migrator. Migrations are compiled into the binary (no files needed at run
//! time) and applied in one transaction under a lock, so a worker and a gateway starting
//! together cannot apply the same migration twice.

use crate::{Backend, Store, StoreError, now_ms};
use sqlx::{Executor, Row};

/// (version, description, SQL) per backend, in order. Never edit an applied migration: add one.
const SQLITE: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "hosted_and_webhooks", include_str!("../migrations/sqlite/0002_hosted_and_webhooks.sql")),
    (3, "idempotency_keys", include_str!("../migrations/sqlite/0003_idempotency_keys.sql")),
    (4, "refunds", include_str!("../migrations/sqlite/0004_refunds.sql")),
    (5, "failures", include_str!("../migrations/sqlite/0005_failures.sql")),
    (6, "refund_sweep", include_str!("../migrations/sqlite/0006_refund_sweep.sql")),
    (7, "money_safety", include_str!("../migrations/sqlite/0007_money_safety.sql")),
    (8, "append_only_guards", include_str!("../migrations/sqlite/0008_append_only_guards.sql")),
    (9, "api_keys", include_str!("../migrations/sqlite/0009_api_keys.sql")),
    (10, "balance_checks", include_str!("../migrations/sqlite/0010_balance_checks.sql")),
    (11, "fee_rates", include_str!("../migrations/sqlite/0011_fee_rates.sql")),
    (12, "order_fees", include_str!("../migrations/sqlite/0012_order_fees.sql")),
    (13, "payouts", include_str!("../migrations/sqlite/0013_payouts.sql")),
    (14, "balance_index", include_str!("../migrations/sqlite/0014_balance_index.sql")),
    (15, "reconciliation", include_str!("../migrations/sqlite/0015_reconciliation.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "hosted_and_webhooks", include_str!("../migrations/postgres/0002_hosted_and_webhooks.sql")),
    (3, "idempotency_keys", include_str!("../migrations/postgres/0003_idempotency_keys.sql")),
    (4, "refunds", include_str!("../migrations/postgres/0004_refunds.sql")),
    (5, "failures", include_str!("../migrations/postgres/0005_failures.sql")),
    (6, "refund_sweep", include_str!("../migrations/postgres/0006_refund_sweep.sql")),
    (7, "money_safety", include_str!("../migrations/postgres/0007_money_safety.sql")),
    (8, "append_only_guards", include_str!("../migrations/postgres/0008_append_only_guards.sql")),
    (9, "api_keys", include_str!("../migrations/postgres/0009_api_keys.sql")),
    (10, "balance_checks", include_str!("../migrations/postgres/0010_balance_checks.sql")),
    (11, "fee_rates", include_str!("../migrations/postgres/0011_fee_rates.sql")),
    (12, "order_fees", include_str!("../migrations/postgres/0012_order_fees.sql")),
    (13, "payouts", include_str!("../migrations/postgres/0013_payouts.sql")),
    (14, "balance_index", include_str!("../migrations/postgres/0014_balance_index.sql")),
    (15, "reconciliation", include_str!("../migrations/postgres/0015_reconciliation.sql")),
];

/// Arbitrary, fixed key for the PostgreSQL advisory lock that serializes migrators.
const PG_MIGRATION_LOCK_KEY: i64 = 0x7061_796d_656e_7473; // "payments"

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    run_to(store, i64::MAX).await
}

/// Applies the pending migrations up to and including `version_max` (tests stop early to
/// check a migration against data written under the schema before it).
pub(crate) async fn run_to(store: &Store, version_max: i64) -> Result<(), StoreError> {
    let migrations = match store.backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let mut tx = store.begin_write().await?;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_MIGRATION_LOCK_KEY).execute(&mut *tx).await?;
    }
    // PostgreSQL checks the right to create in the schema even for IF NOT EXISTS: a service
    // role (no CREATE) starting against an up-to-date schema must not try.
    let exists = match store.backend {
        Backend::Postgres => sqlx::query("SELECT to_regclass('schema_migration') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?
            .try_get::<bool, _>(0)?,
        Backend::Sqlite => false,
    };
    if !exists {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migration (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at_ms BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
    }
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migration")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    for &(version, description, sql) in migrations {
        if applied.contains(&version) || version > version_max {
            continue;
        }
        tracing::info!(version, description, "applying migration");
        // A whole script through the Executor trait (simple query protocol: several statements
        // at once). `sqlx::raw_sql` would do too, but its generic async fn makes this future
        // fail the `Send` check (a higher-ranked lifetime limitation of the compiler).
        (&mut *tx).execute(sql).await?;
        sqlx::query("INSERT INTO schema_migration (version, description, applied_at_ms) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(description.to_owned())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
    }
    if let Some(newest) = applied.iter().max()
        && *newest > migrations.last().map(|m| m.0).unwrap_or(0)
    {
        return Err(StoreError::Corrupt(format!("database schema version {newest} is newer than this binary knows")));
    }
    tx.commit().await?;
    Ok(())
}
