//! API keys: who may call the gateway, and for what. A key is `sk_{mode}_` followed by
//! [`API_KEY_SECRET_CHARS`] random base62 characters; only its SHA-256 is stored, so the key is
//! shown once, when it is created (or rolled), and never again. Each key carries a set of
//! [`ApiScope`]s, a mode (`test` keys work only on a gateway in test mode, `live` keys only in
//! production) and a public id (`key_...`) that lists, logs and audit trails name instead.
//!
//! Keys are revocable at once and rollable: a roll issues a new key with the same name, scopes
//! and lineage, and lets the old one live until the given expiry, so clients can switch over
//! without an outage. Idempotency-Keys are scoped to the lineage (see `gateway/src/auth.rs`).

use crate::{Store, StoreError, now_ms};
use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Random characters after the `sk_{mode}_` prefix (about 238 bits).
pub const API_KEY_SECRET_CHARS: usize = 40;
/// Random characters after `key_` in a key's public id.
const KEY_ID_CHARS: usize = 16;
/// Characters of the key kept for display (`sk_test_...AbCd`).
const SUFFIX_CHARS: usize = 4;
/// Longest key name, in bytes.
pub const API_KEY_NAME_LEN_MAX: usize = 128;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a key may do. Each gateway route requires exactly one scope (or none, when public).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ApiScope {
    /// Operators: review decisions, cancellations, dead letters, wallet blocks, keys.
    Admin,
    /// Integrations: create and read payments and checkouts, refund.
    Payments,
}

impl ApiScope {
    /// Every scope, in their stored order.
    pub const ALL: [ApiScope; 2] = [ApiScope::Admin, ApiScope::Payments];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Admin => "admin",
            ApiScope::Payments => "payments",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Result<ApiScope, StoreError> {
        ApiScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| StoreError::Precondition(format!("unknown API key scope {s:?} (admin or payments)")))
    }
}

/// Which gateways accept a key: test keys on gateways in test mode, live keys in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiKeyMode {
    /// `sk_test_...`: local, CI and staging gateways.
    Test,
    /// `sk_live_...`: gateways with `PAYMENTS_ENV=production`.
    Live,
}

impl ApiKeyMode {
    /// The stored name, also the key's prefix after `sk_`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyMode::Test => "test",
            ApiKeyMode::Live => "live",
        }
    }

    /// Parses a mode name.
    pub fn parse(s: &str) -> Result<ApiKeyMode, StoreError> {
        match s {
            "test" => Ok(ApiKeyMode::Test),
            "live" => Ok(ApiKeyMode::Live),
            other => Err(StoreError::Precondition(format!("unknown API key mode {other:?} (test or live)"))),
        }
    }

    /// The mode a presented key claims by its prefix, if it has one of ours.
    pub fn of_key(key: &str) -> Option<ApiKeyMode> {
        [ApiKeyMode::Test, ApiKeyMode::Live].into_iter().find(|m| key.starts_with(&format!("sk_{}_", m.as_str())))
    }
}

/// A new key's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyDraft {
    /// Who or what holds it (`checkout-service`, `ops-alice`), 1 to [`API_KEY_NAME_LEN_MAX`]
    /// bytes.
    pub name: String,
    /// What it may do; at least one.
    pub scopes: Vec<ApiScope>,
    /// Which gateways accept it.
    pub mode: ApiKeyMode,
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public id, `key_...`.
    pub key_id: String,
    /// The first key id of its roll chain; Idempotency-Keys are scoped to it.
    pub lineage: String,
    /// Its holder.
    pub name: String,
    /// What it may do, sorted.
    pub scopes: Vec<ApiScope>,
    /// Which gateways accept it.
    pub mode: ApiKeyMode,
    /// The key's last characters, for display.
    pub suffix: String,
    /// Creation time.
    pub created_at_ms: i64,
    /// After this instant the key is refused (set by a roll).
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// The key that replaced it, if it was rolled.
    pub rolled_to: Option<String>,
}

impl ApiKeyRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let scopes: String = row.try_get("scopes")?;
        let mode: String = row.try_get("mode")?;
        let corrupt = |e: StoreError| StoreError::Corrupt(format!("api_key: {e}"));
        Ok(ApiKeyRecord {
            key_id: row.try_get("key_id")?,
            lineage: row.try_get("lineage")?,
            name: row.try_get("name")?,
            scopes: scopes.split(',').map(ApiScope::parse).collect::<Result<_, _>>().map_err(corrupt)?,
            mode: ApiKeyMode::parse(&mode).map_err(corrupt)?,
            suffix: row.try_get("suffix")?,
            created_at_ms: row.try_get("created_at_ms")?,
            expires_at_ms: row.try_get("expires_at_ms")?,
            revoked_at_ms: row.try_get("revoked_at_ms")?,
            rolled_to: row.try_get("rolled_to")?,
        })
    }

    /// Whether the key is accepted at `now_ms`: not revoked and not expired.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|at| now_ms < at)
    }

    /// Whether it carries `scope`.
    pub fn has_scope(&self, scope: ApiScope) -> bool {
        self.scopes.contains(&scope)
    }

    /// `sk_test_...AbCd`: enough to recognise a key, never enough to use it.
    pub fn display(&self) -> String {
        format!("sk_{}_...{}", self.mode.as_str(), self.suffix)
    }
}

/// A key as shown once at creation: the record and the key itself.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedApiKey {
    /// What is stored.
    pub record: ApiKeyRecord,
    /// The key; give it to its holder now, it cannot be shown again.
    pub secret: String,
}

impl std::fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey").field("record", &self.record).field("secret", &"<redacted>").finish()
    }
}

/// Hex SHA-256 of a presented key: what is stored and looked up.
pub fn api_key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` base62 characters from the operating system's random source (rejection sampling, so
/// every character is equally likely).
fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        OsRng.fill_bytes(&mut buf);
        for b in buf {
            // 248 = 4 * 62: bytes at or above it would favour the first characters.
            if b < 248 && out.len() < n {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// The scopes sorted and deduplicated, and as stored (comma-separated).
fn sorted_scopes(scopes: &[ApiScope]) -> Result<(Vec<ApiScope>, String), StoreError> {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(StoreError::Precondition("an API key needs at least one scope".into()));
    }
    let stored = scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
    Ok((scopes, stored))
}

const COLUMNS: &str =
    "key_id, lineage, name, scopes, mode, suffix, created_at_ms, expires_at_ms, revoked_at_ms, rolled_to";

impl Store {
    /// Issues a new key. The returned secret is the only copy.
    pub async fn create_api_key(&self, draft: &ApiKeyDraft) -> Result<IssuedApiKey, StoreError> {
        let mut tx = self.begin_write().await?;
        let issued = insert_key(&mut tx, draft, None).await?;
        tx.commit().await?;
        tracing::info!(key_id = %issued.record.key_id, name = %issued.record.name, "API key created");
        Ok(issued)
    }

    /// Issues the first admin key, only while no active admin key exists (the documented
    /// bootstrap); afterwards keys are managed with an admin key through the gateway.
    pub async fn bootstrap_admin_key(&self, name: &str, mode: ApiKeyMode) -> Result<IssuedApiKey, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_key WHERE revoked_at_ms IS NULL"))
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let key = ApiKeyRecord::from_row(row)?;
            if key.is_active(now) && key.has_scope(ApiScope::Admin) {
                return Err(StoreError::Precondition(format!(
                    "an active admin key exists ({}, {}); create further keys with it (`paymentsctl keys create`)",
                    key.key_id, key.name
                )));
            }
        }
        let draft = ApiKeyDraft { name: name.to_owned(), scopes: vec![ApiScope::Admin], mode };
        let issued = insert_key(&mut tx, &draft, None).await?;
        tx.commit().await?;
        tracing::info!(key_id = %issued.record.key_id, "bootstrap admin key created");
        Ok(issued)
    }

    /// The active key matching a presented key, if any. Revoked, expired and unknown keys are
    /// all `None`: the caller answers the same 401 for each.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_key WHERE secret_hash = $1"))
            .bind(api_key_hash(presented))
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let key = ApiKeyRecord::from_row(&row)?;
        Ok(key.is_active(now_ms()).then_some(key))
    }

    /// Every key, newest first (revoked and expired ones too: they are the audit trail).
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_key ORDER BY created_at_ms DESC, key_id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(ApiKeyRecord::from_row).collect()
    }

    /// One key by its public id.
    pub async fn api_key(&self, key_id: &str) -> Result<ApiKeyRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_key WHERE key_id = $1"))
            .bind(key_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API key {key_id}")))?;
        ApiKeyRecord::from_row(&row)
    }

    /// Revokes a key at once. Revoking a revoked key keeps its first revocation time.
    pub async fn revoke_api_key(&self, key_id: &str) -> Result<ApiKeyRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE api_key SET revoked_at_ms = $1 WHERE key_id = $2 AND revoked_at_ms IS NULL")
            .bind(now_ms())
            .bind(key_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        let key = self.api_key(key_id).await?;
        if updated == 1 {
            tracing::info!(key_id, name = %key.name, "API key revoked");
        }
        Ok(key)
    }

    /// Replaces an active key: a new key with the same name, scopes, mode and lineage is
    /// issued, and the old one stays valid until `old_expires_at_ms` (at once when it is not in
    /// the future; never later than an expiry it already had).
    pub async fn roll_api_key(&self, key_id: &str, old_expires_at_ms: i64) -> Result<IssuedApiKey, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_key WHERE key_id = $1"))
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API key {key_id}")))?;
        let old = ApiKeyRecord::from_row(&row)?;
        let now = now_ms();
        if !old.is_active(now) || old.rolled_to.is_some() {
            return Err(StoreError::Precondition(format!(
                "API key {key_id} is revoked, expired or already rolled; only an active key can be rolled"
            )));
        }
        let draft = ApiKeyDraft { name: old.name.clone(), scopes: old.scopes.clone(), mode: old.mode };
        let issued = insert_key(&mut tx, &draft, Some(&old.lineage)).await?;
        let expires = old.expires_at_ms.map_or(old_expires_at_ms, |at| at.min(old_expires_at_ms)).max(now);
        let updated = sqlx::query(
            "UPDATE api_key SET expires_at_ms = $1, rolled_to = $2 WHERE key_id = $3 AND rolled_to IS NULL",
        )
        .bind(expires)
        .bind(&issued.record.key_id)
        .bind(key_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(StoreError::Precondition(format!("API key {key_id} was rolled concurrently")));
        }
        tx.commit().await?;
        tracing::info!(old = key_id, new = %issued.record.key_id, expires_at_ms = expires, "API key rolled");
        Ok(issued)
    }
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    draft: &ApiKeyDraft,
    lineage: Option<&str>,
) -> Result<IssuedApiKey, StoreError> {
    let name = draft.name.trim();
    if name.is_empty() || name.len() > API_KEY_NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(StoreError::Precondition(format!(
            "an API key name must be 1 to {API_KEY_NAME_LEN_MAX} bytes of printable text"
        )));
    }
    let (scopes, stored_scopes) = sorted_scopes(&draft.scopes)?;
    let secret = format!("sk_{}_{}", draft.mode.as_str(), random_base62(API_KEY_SECRET_CHARS));
    let key_id = format!("key_{}", random_base62(KEY_ID_CHARS));
    let lineage = lineage.unwrap_or(&key_id).to_owned();
    let suffix = secret[secret.len() - SUFFIX_CHARS..].to_owned();
    let created = now_ms();
    sqlx::query(
        "INSERT INTO api_key (key_id, lineage, secret_hash, mode, scopes, name, suffix, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key_id)
    .bind(&lineage)
    .bind(api_key_hash(&secret))
    .bind(draft.mode.as_str())
    .bind(&stored_scopes)
    .bind(name)
    .bind(&suffix)
    .bind(created)
    .execute(&mut **tx)
    .await?;
    let record = ApiKeyRecord {
        key_id,
        lineage,
        name: name.to_owned(),
        scopes,
        mode: draft.mode,
        suffix,
        created_at_ms: created,
        expires_at_ms: None,
        revoked_at_ms: None,
        rolled_to: None,
    };
    Ok(IssuedApiKey { record, secret })
}
