//! Storage for the pay-in path: checkouts (payment events), payment orders and their
//! append-only status history, seller wallets and the double-entry ledger. One code path serves
//! SQLite (the embedded default) and PostgreSQL (production) through sqlx's `Any` driver; the
//! schema differs only where the SQL dialects do (`migrations/sqlite`, `migrations/postgres`).
//!
//! Layout: `lib.rs` (connecting, migrating, errors), `checkouts.rs` (create and read checkouts),
//! `orders.rs` (status transitions and history), `wallet.rs` (idempotent wallet movements),
//! `ledger.rs` (balanced, sealed ledger transactions), `verify.rs` (ledger balance and
//! wallet-equals-ledger checks), `webhooks.rs` (durable webhook deduplication),
//! `idempotency.rs` (the REST API's Idempotency-Key records), `refunds.rs` (refund and reversal
//! ids, kinds, records and reads), `refund_requests.rs` (requests, under the order's lock),
//! `refund_bookings.rs` (completion with its bookings, failure), `wallet_blocks.rs` (sellers an
//! operator froze), `dead_letters.rs` (saga steps parked for an operator), `records.rs` (row
//! types, validated on read), `tokens.rs` (payment tokens sealed at rest), `starts.rs` (rows
//! whose workflow start may have been lost, for the gateway's start sweep), `api_keys.rs` (who
//! may call the gateway: keys stored hashed, with scopes, revocation and rolls), `roles.rs`
//! (PostgreSQL: the services' role, granted rows only), `fee_rates.rs` (the platform's fee
//! rates, an append-only history; the rate in force at a moment), `recon/` (reconciliation:
//! settlement reports and lines, a day's matching, breaks, the settlement's booking).
//!
//! Every money-moving write carries a business idempotency key backed by a primary key:
//! `{payment_order_id}:wallet` for wallet credits, `{payment_order_id}:ledger` for ledger posts,
//! `{refund_id}:wallet` and `{refund_id}:ledger` for a refund's wallet debit and ledger reversal,
//! `{payment_order_id}:refund:{n}` and `{payment_order_id}:reversal` for refunds themselves.

mod api_keys;
mod balances;
mod checkouts;
mod dead_letters;
mod fee_rates;
mod idempotency;
mod ledger;
mod migrate;
#[cfg(test)]
mod migrate_tests;
mod order_fees;
mod orders;
mod payout_sellers;
mod payouts;
mod recon;
mod records;
mod refund_bookings;
mod refund_requests;
mod refunds;
mod roles;
mod starts;
mod tokens;
mod verify;
mod wallet;
mod wallet_blocks;
mod webhooks;

pub mod test_db;

pub use api_keys::{
    API_KEY_NAME_LEN_MAX, API_KEY_SECRET_CHARS, ApiKeyDraft, ApiKeyMode, ApiKeyRecord, ApiScope, IssuedApiKey,
    api_key_hash,
};
pub use balances::{PayoutHolds, SellerBalance};
pub use checkouts::CreateOutcome;
pub use dead_letters::{
    DEAD_LETTER_ID_LEN_MAX, DEAD_LETTER_OPERATOR_LEN_MAX, DEAD_LETTER_TEXT_BYTES_MAX, DEAD_LETTER_WORKFLOW_OPERATOR,
    DEAD_LETTERS_LIMIT_MAX, DeadLetterDraft, DeadLetterRecord, DeadLetterStatus,
};
pub use fee_rates::{FEE_RATE_CREATED_BY_LEN_MAX, FeeRateRecord};
pub use idempotency::{
    IDEMPOTENCY_CLAIM_STALE_MS, IDEMPOTENCY_KEY_TTL_MS, IdempotencyClaim, IdempotencyRecord, IdempotencyState,
};
pub use ledger::{
    Direction, EntryDraft, LedgerEntry, PSP_CLEARING_ACCOUNT, PostOutcome, TransactionDraft, order_ledger_key,
    seller_payable_account,
};
pub use order_fees::PLATFORM_REVENUE_ACCOUNT;
pub use orders::Transition;
pub use payout_sellers::{PAYOUT_SELLER_FIELD_LEN_MAX, PROVIDER_SELLER_STATUSES, PayoutSeller, PayoutSellerDraft};
pub use payouts::{
    PAYOUT_CANDIDATES_PAGE_MAX, PayoutProgress, PayoutRecord, PayoutSkip, PayoutStatus, ReserveOutcome, payout_id,
    payouts_in_transit_account,
};
pub use recon::{
    BREAK_NOTE_LEN_MAX, BREAKS_LIMIT_MAX, BreakAction, BreakFilter, BreakRecord, BreakStatus, DayReport, ImportOutcome,
    KeepOutcome, KindCount, PLATFORM_BANK_ACCOUNT, PSP_FEE_ADJUSTMENTS_ACCOUNT, PSP_FEES_ACCOUNT, PayoutMatch,
    RECON_PAGE_KEYS, REPORT_NAME_LEN_MAX, ReconRunRecord, ReportDraft, ReportHeader, ReportSource, ReportSpool,
    SETTLEMENT_LEDGER_KIND, SettlementPart, SpoolFormat, SpooledLines, payout_provider_of,
};
pub use records::{CheckoutRecord, HistoryRecord, OrderFee, OrderRecord, PaymentFlow};
pub use refund_bookings::{REFUND_LEDGER_KIND, REVERSAL_LEDGER_KIND};
pub use refund_requests::NEXT_REFUND_ID_PROBES_MAX;
pub use refunds::{
    REFUND_ID_LEN_MAX, RefundId, RefundKind, RefundRecord, RefundStatus, refund_ledger_key, refund_wallet_key,
    reversal_refund_id,
};
pub use roles::is_role_name;
pub use starts::{START_BATCH_MAX, StartCursor};
pub use tokens::{DEV_TOKEN_KEY, TOKEN_KEY_BYTES, TOKEN_KEYS_MAX, TokenVault};
pub use verify::{Imbalance, PayoutMismatch, VerifyReport, WalletMismatch};
pub use wallet::{WalletBalance, wallet_credit_key};
pub use wallet_blocks::{WALLET_BLOCK_REASON_LEN_MAX, WalletBlock};
pub use webhooks::{WEBHOOK_PAYLOAD_BYTES_MAX, WebhookEvent, WebhookRecord};

use payments_domain::Money;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Connections per pool. SQLite serializes writers anyway; PostgreSQL gets enough for the
/// worker's concurrent activities without starving other clients of the server.
pub const POOL_CONNECTIONS_MAX: u32 = 16;
/// How long a caller waits for a pooled connection before the operation fails (retryably).
pub const POOL_ACQUIRE_TIMEOUT_MS: u64 = 10_000;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (or `:memory:` for tests).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Store failures. [`StoreError::is_retryable`] tells activities how to classify them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or was unreachable; retrying may succeed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database URL names no supported backend.
    #[error("unsupported database url (expected sqlite: or postgres:): {0}")]
    UnsupportedUrl(String),
    /// No row with that id.
    #[error("{0} not found")]
    NotFound(String),
    /// A status change that the order's lifecycle forbids.
    #[error("payment order {order}: transition {from} -> {to} is not allowed")]
    InvalidTransition {
        /// The order.
        order: String,
        /// Its current status.
        from: String,
        /// The refused target status.
        to: String,
    },
    /// The checkout id exists with different contents.
    #[error("checkout {0} already exists with different payment orders")]
    CheckoutMismatch(String),
    /// A payment order id of the request already belongs to another checkout.
    #[error("payment order {payment_order_id} already belongs to another checkout")]
    OrderIdTaken {
        /// Position of the order in the request.
        index: usize,
        /// The taken id.
        payment_order_id: String,
    },
    /// A precondition of the operation does not hold (e.g. crediting a wallet for an order that
    /// did not succeed).
    #[error("precondition failed: {0}")]
    Precondition(String),
    /// A refund asks for more than the order still has refundable (captured minus requested and
    /// succeeded refunds); `refundable` is what could still be refunded.
    #[error("refund exceeds the refundable amount of {refundable}")]
    RefundTooLarge {
        /// What the order still has refundable.
        refundable: Money,
    },
    /// The seller's wallet is blocked by an operator (KYC, fraud): the credit was refused and
    /// nothing written. Not retryable: it takes an operator's unblock, not time.
    #[error("wallet of seller {seller} is blocked: {reason}")]
    WalletBlocked {
        /// The blocked seller.
        seller: String,
        /// The operator's reason.
        reason: String,
    },
    /// A stored value failed validation on read: data corruption or a schema/code mismatch.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The client's idempotency key already belongs to another request (another checkout, or a
    /// refund of another order, amount or reason): the key is bound to what it created first.
    #[error("idempotency key {0:?} was already used for a different request")]
    ClientKeyTaken(String),
}

impl StoreError {
    /// Whether retrying the same call may succeed. Database faults are transient (connection
    /// loss, lock timeouts, serialization conflicts); everything else is a fact about the data.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database(_))
    }

    /// A stable name for the failure kind, used as the Temporal application failure type.
    pub fn type_name(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "StoreDatabase",
            StoreError::UnsupportedUrl(_) => "StoreUnsupportedUrl",
            StoreError::NotFound(_) => "StoreNotFound",
            StoreError::InvalidTransition { .. } => "StoreInvalidTransition",
            StoreError::CheckoutMismatch(_) => "StoreCheckoutMismatch",
            StoreError::OrderIdTaken { .. } => "StoreOrderIdTaken",
            StoreError::Precondition(_) => "StorePrecondition",
            StoreError::RefundTooLarge { .. } => "StoreRefundTooLarge",
            StoreError::WalletBlocked { .. } => "StoreWalletBlocked",
            StoreError::Corrupt(_) => "StoreCorrupt",
            StoreError::ClientKeyTaken(_) => "StoreClientKeyTaken",
        }
    }
}

/// Handle to the payments database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Seals payment tokens before they are stored and opens them for the charge.
    vault: TokenVault,
}

impl Store {
    /// Connects and applies pending migrations. `url` is `sqlite://path?mode=rwc`,
    /// `sqlite::memory:` or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let store = Store::open(url).await?;
        migrate::run(&store).await?;
        Ok(store)
    }

    /// Connects without migrating (the migration tests start from older schemas).
    pub(crate) async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .acquire_timeout(Duration::from_millis(POOL_ACQUIRE_TIMEOUT_MS));
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the single writer; NORMAL sync is durable across
            // process crashes (what a worker kill tests) and fast. Foreign keys are on by
            // default in sqlx's SQLite driver; the ledger's deferred key depends on them.
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    Ok(())
                })
            });
            if url.contains(":memory:") {
                // Every connection to :memory: is its own database: keep exactly one.
                options = options.max_connections(1).min_connections(1);
            }
        }
        let pool = options.connect(url).await?;
        // The development key until the caller installs the configured one.
        Ok(Store { pool, backend, vault: TokenVault::dev() })
    }

    /// The same store sealing and opening payment tokens with `vault` (the configured keys).
    pub fn with_token_vault(mut self, vault: TokenVault) -> Store {
        self.vault = vault;
        self
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One round trip to the database (readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The underlying pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later can fail with
    /// SQLITE_BUSY when another writer committed in between, which no busy timeout fixes.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Wall-clock milliseconds since the Unix epoch, for `*_at_ms` columns.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Drops the password from a database URL so it can appear in errors and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// True when a database error is a UNIQUE / PRIMARY KEY violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod send_checks {
    //! The gateway and worker spawn store calls onto multi-threaded runtimes: every public
    //! future must be `Send`. These fail to compile if one is not.
    use super::*;
    fn assert_send<T: Send>(_: T) {}

    #[allow(dead_code, unused_must_use)]
    fn store_futures_are_send(store: Store, c: payments_domain::NewCheckout, id: payments_domain::PaymentOrderId) {
        assert_send(Store::connect("sqlite::memory:"));
        assert_send(store.create_checkout(&c, None));
        assert_send(store.checkout(&c.checkout_id));
        assert_send(store.order(&id));
        assert_send(store.verify());
        assert_send(store.history(&id));
        let refund = RefundId::parse("r-1").unwrap();
        assert_send(store.request_refund(&refund, &id, None, "reason"));
        assert_send(store.complete_refund(&refund, "re_1"));
        assert_send(store.fail_refund(&refund, "code"));
        assert_send(store.refunds(&id));
        assert_send(store.request_next_refund(&id, None, "reason", Some("k")));
        assert_send(store.request_reversal(&id, "reason"));
        let seller = payments_domain::SellerAccount::parse("s-1").unwrap();
        assert_send(store.block_wallet(&seller, "kyc"));
        assert_send(store.unblock_wallet(&seller));
        assert_send(store.wallet_block(&seller));
        let draft = DeadLetterDraft {
            dead_letter_id: "d-1".into(),
            workflow_id: "w".into(),
            checkout_id: None,
            subject: "s".into(),
            step: "st".into(),
            reason: "r".into(),
            last_error: "e".into(),
            attempts: 1,
        };
        assert_send(store.open_dead_letter(&draft));
        assert_send(store.dead_letter("d-1"));
        assert_send(store.dead_letters(None, 10));
        assert_send(store.mark_dead_letter_retrying("d-1", "op"));
        assert_send(store.resolve_dead_letter("d-1", "op", "done"));
        assert_send(store.close_dead_letter_retried("d-1"));
    }
}
