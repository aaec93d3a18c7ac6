//! The database backends an end-to-end test runs on. Every e2e test takes a [`Db`] and runs once
//! per backend as separate tests (rstest's `#[values(Db::Sqlite, Db::Postgres)]`), so the two
//! run concurrently, each on a database of its own:
//!
//! ```ignore
//! #[rstest]
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn a_checkout_succeeds(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
//!     let Some(url) = db.url().await else { return };
//!     ...
//! }
//! ```
//!
//! PostgreSQL runs when `PAYMENTS_TEST_POSTGRES_URL` is set; with `PAYMENTS_REQUIRE_POSTGRES=1`
//! (the README's test command in CI) its absence fails the test instead of skipping it.

use payments_store::test_db;

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A new SQLite file (the embedded default).
    Sqlite,
    /// A new PostgreSQL database (production).
    Postgres,
}

impl Db {
    /// The URL of a new, empty database of this backend; `None` when PostgreSQL is not
    /// configured and not required (the test then has nothing to run). Each call creates
    /// another database: a test with two stacks asks twice.
    pub async fn url(self) -> Option<String> {
        match self {
            Db::Sqlite => Some(test_db::sqlite_url()),
            Db::Postgres => {
                let url = test_db::postgres_url().await;
                if url.is_none() {
                    eprintln!("PostgreSQL not configured ({}): skipped", test_db::POSTGRES_URL_ENV);
                }
                url
            }
        }
    }
}
