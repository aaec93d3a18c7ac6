//! Operators' management of API keys (AdminService `CreateApiKey`, `ListApiKeys`,
//! `RevokeApiKey`, `RollApiKey`, used by `paymentsctl keys`). Keys are issued in the gateway's
//! own mode; the secret appears in the creating answer only.

use crate::error::ApiError;
use crate::idempotency::now_ms;
use payments_proto::payments_v1 as pb;
use payments_store::{ApiKeyDraft, ApiKeyMode, ApiKeyRecord, ApiScope, IssuedApiKey, StoreError};

/// Longest grace period of a rolled key: 7 days.
pub const ROLL_EXPIRY_SECS_MAX: u64 = 7 * 24 * 3600;

/// A new key's draft from a `CreateApiKey` request.
pub fn draft(r: pb::CreateApiKeyRequest, mode: ApiKeyMode) -> Result<ApiKeyDraft, ApiError> {
    let scopes = r
        .scopes
        .iter()
        .map(|s| ApiScope::parse(s).map_err(|e| ApiError::invalid("parameter_invalid", "scopes", e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err(ApiError::invalid("parameter_invalid", "scopes", "at least one of payments, admin"));
    }
    crate::error::refuse_card_number("name", &r.name)?;
    Ok(ApiKeyDraft { name: r.name, scopes, mode })
}

/// Checks a key id's syntax (`key_` and base62) before it reaches the store.
pub fn check_key_id(key_id: &str) -> Result<(), ApiError> {
    let ok = key_id
        .strip_prefix("key_")
        .is_some_and(|rest| !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok { Ok(()) } else { Err(ApiError::invalid("parameter_invalid", "key_id", "is not a key id (key_...)")) }
}

/// The roll's grace period, refused above [`ROLL_EXPIRY_SECS_MAX`].
pub fn roll_expiry_ms(expires_in_secs: u64) -> Result<i64, ApiError> {
    if expires_in_secs > ROLL_EXPIRY_SECS_MAX {
        return Err(ApiError::invalid(
            "parameter_invalid",
            "expires_in_secs",
            format!("at most {ROLL_EXPIRY_SECS_MAX} (7 days)"),
        ));
    }
    let secs = i64::try_from(expires_in_secs).unwrap_or(i64::MAX);
    Ok(now_ms().saturating_add(secs.saturating_mul(1000)))
}

/// Store refusals of key operations as API errors (a bad draft or an inactive key is the
/// caller's problem, not ours).
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Precondition(message) => ApiError::invalid("not_allowed", "key_id", message),
        other => other.into(),
    }
}

/// The wire view of a stored key.
pub fn key_pb(k: &ApiKeyRecord) -> pb::ApiKey {
    let now = now_ms();
    let status = if k.revoked_at_ms.is_some() {
        "revoked"
    } else if k.is_active(now) {
        "active"
    } else {
        "expired"
    };
    pb::ApiKey {
        key_id: k.key_id.clone(),
        name: k.name.clone(),
        scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        mode: k.mode.as_str().to_owned(),
        redacted: k.display(),
        created_at_ms: k.created_at_ms,
        expires_at_ms: k.expires_at_ms.unwrap_or(0),
        revoked_at_ms: k.revoked_at_ms.unwrap_or(0),
        rolled_to: k.rolled_to.clone().unwrap_or_default(),
        status: status.to_owned(),
    }
}

/// The wire view of an issued key, secret included.
pub fn issued_pb(k: IssuedApiKey) -> pb::IssuedApiKey {
    pb::IssuedApiKey { api_key: Some(key_pb(&k.record)), secret: k.secret }
}
