//! Fresh databases for tests: a new SQLite file, and a new PostgreSQL database when
//! `PAYMENTS_TEST_POSTGRES_URL` is set. With `PAYMENTS_REQUIRE_POSTGRES=1` (CI) a missing or
//! unreachable PostgreSQL fails the test instead of being skipped.

use crate::{StoreError, redact_url};
use sqlx::Connection;
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable with an admin URL of the test PostgreSQL server.
pub const POSTGRES_URL_ENV: &str = "PAYMENTS_TEST_POSTGRES_URL";
/// Set to `1` to make PostgreSQL mandatory.
pub const REQUIRE_POSTGRES_ENV: &str = "PAYMENTS_REQUIRE_POSTGRES";
/// Prefix of every database the tests create; the test script drops leftovers by it.
pub const TEST_DB_PREFIX: &str = "payments_test_";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos)
}

/// The database URLs a backend-parametrized test should run against: a new SQLite file always,
/// and a new PostgreSQL database when configured.
pub async fn test_database_urls() -> Vec<String> {
    let mut urls = vec![sqlite_url()];
    if let Some(pg) = postgres_url().await {
        urls.push(pg);
    }
    urls
}

/// A new, empty SQLite database file under the system temp dir.
pub fn sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!("{TEST_DB_PREFIX}{}.db", unique_suffix()));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A new, empty PostgreSQL database, or `None` when PostgreSQL is not configured. Panics when
/// it is required but missing or unreachable.
pub async fn postgres_url() -> Option<String> {
    let required = std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1");
    let Ok(admin) = std::env::var(POSTGRES_URL_ENV) else {
        assert!(!required, "{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set");
        return None;
    };
    match create_postgres_database(&admin).await {
        Ok(url) => Some(url),
        Err(e) => panic!("PostgreSQL at {} is unusable: {e}", redact_url(&admin)),
    }
}

async fn create_postgres_database(admin_url: &str) -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let name = format!("{TEST_DB_PREFIX}{}", unique_suffix());
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    conn.close().await?;
    // Replace the path (database name) of the admin URL, keeping any query string.
    let (base, query) = admin_url.split_once('?').map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Ok(url)
}
