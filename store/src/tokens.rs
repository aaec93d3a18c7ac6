//! Payment tokens sealed at rest. A direct checkout's PSP token (a Stripe PaymentMethod id, a
//! Toss billing key: with our secret key, either one charges the buyer) is stored only sealed
//! with AES-256-GCM, bound to its checkout id (the AAD), so a database dump, a log of a row or
//! a copied row moved to another checkout reveals or charges nothing. Only the gateway (which
//! seals and compares) and the charge activity (which opens it right before the PSP call) hold
//! the keys. The token never enters a workflow's input, so Temporal histories never hold it.
//!
//! Stored form: `sealed:v1:{key_id}:{base64(nonce || ciphertext)}`; `key_id` is the first 8 hex
//! digits of SHA-256 of the key, so keys can be rotated: the first configured key seals, every
//! configured key opens. Rows written before sealing existed hold the token as plain text; they
//! are read as such and sealed by [`Store::seal_legacy_tokens`].

use crate::{Store, StoreError};
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use payments_domain::CheckoutId;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::fmt;

/// Prefix of a sealed token (format version 1).
const SEALED_PREFIX: &str = "sealed:v1:";
/// AES-GCM nonce length in bytes (96 bits, the standard size).
const NONCE_BYTES: usize = 12;
/// Key length in bytes (AES-256).
pub const TOKEN_KEY_BYTES: usize = 32;
/// Most keys accepted at once (the current one plus retired ones still opening old rows).
pub const TOKEN_KEYS_MAX: usize = 8;
/// Legacy rows sealed per statement by [`Store::seal_legacy_tokens`].
pub const SEAL_BATCH_MAX: i64 = 500;

/// The key used when none is configured: for local runs and tests only. It is published in
/// this repository, so it protects nothing; production sets `PAYMENT_TOKEN_KEYS`.
pub const DEV_TOKEN_KEY: &str = "bG9jYWwtZGV2LW9ubHktcGF5bWVudC10b2tlbi1rZXk=";

/// Seals and opens payment tokens. Its `Debug` shows key ids only.
#[derive(Clone)]
pub struct TokenVault {
    /// (key id, cipher); the first one seals.
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for TokenVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "TokenVault(keys: {ids:?})")
    }
}

impl TokenVault {
    /// Keys from configuration: comma-separated base64 of 32 random bytes each
    /// (`openssl rand -base64 32`), the sealing key first.
    pub fn from_config(keys: &str) -> Result<Self, StoreError> {
        let mut parsed = Vec::new();
        for (position, text) in keys.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
            let bytes = BASE64
                .decode(text)
                .map_err(|_| StoreError::Precondition(format!("payment token key #{} is not base64", position + 1)))?;
            if bytes.len() != TOKEN_KEY_BYTES {
                return Err(StoreError::Precondition(format!(
                    "payment token key #{} must be {TOKEN_KEY_BYTES} bytes, not {}",
                    position + 1,
                    bytes.len()
                )));
            }
            let id: String = Sha256::digest(&bytes).iter().take(4).map(|b| format!("{b:02x}")).collect();
            parsed.push((id, Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes))));
        }
        if parsed.is_empty() || parsed.len() > TOKEN_KEYS_MAX {
            return Err(StoreError::Precondition(format!(
                "between 1 and {TOKEN_KEYS_MAX} payment token keys are needed"
            )));
        }
        Ok(TokenVault { keys: parsed })
    }

    /// The vault of [`DEV_TOKEN_KEY`].
    pub fn dev() -> Self {
        // The constant is valid base64 of 32 bytes (checked by a test).
        TokenVault::from_config(DEV_TOKEN_KEY).unwrap_or_else(|_| unreachable!("DEV_TOKEN_KEY is a valid key"))
    }

    /// Whether the sealing key is the published development key.
    pub fn is_dev(&self) -> bool {
        TokenVault::dev().keys[0].0 == self.keys[0].0
    }

    /// Seals `token` for `checkout`.
    pub fn seal(&self, checkout: &CheckoutId, token: &str) -> Result<String, StoreError> {
        let (id, cipher) = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: token.as_bytes(), aad: checkout.as_str().as_bytes() })
            .map_err(|_| StoreError::Precondition("sealing a payment token failed".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{id}:{}", BASE64.encode(blob)))
    }

    /// Opens what [`TokenVault::seal`] stored for `checkout`; a legacy plain-text token is
    /// answered as it is. A token sealed with an unknown key, for another checkout, or altered
    /// is [`StoreError::Corrupt`] (the error never contains the token).
    pub fn open(&self, checkout: &CheckoutId, stored: &str) -> Result<String, StoreError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let corrupt = |why: &str| StoreError::Corrupt(format!("payment token of checkout {checkout}: {why}"));
        let (id, blob) = rest.split_once(':').ok_or_else(|| corrupt("malformed"))?;
        let (_, cipher) =
            self.keys.iter().find(|(k, _)| k == id).ok_or_else(|| corrupt(&format!("sealed with unknown key {id}")))?;
        let blob = BASE64.decode(blob).map_err(|_| corrupt("not base64"))?;
        if blob.len() <= NONCE_BYTES {
            return Err(corrupt("too short"));
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: checkout.as_str().as_bytes() })
            .map_err(|_| corrupt("does not open (altered, or sealed for another checkout)"))?;
        String::from_utf8(plain).map_err(|_| corrupt("not UTF-8"))
    }

    /// Whether a stored value is sealed (else it is a legacy plain-text token, or empty).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

impl Store {
    /// The checkout's payment token, opened (`None` for a hosted checkout or an unknown id).
    pub async fn payment_token(&self, checkout: &CheckoutId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT payment_token, flow FROM payment_event WHERE checkout_id = $1")
            .bind(checkout.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let flow: String = row.try_get("flow")?;
        if flow != "direct" {
            return Ok(None);
        }
        let stored: String = row.try_get("payment_token")?;
        self.vault.open(checkout, &stored).map(Some)
    }

    /// Seals up to [`SEAL_BATCH_MAX`] tokens stored in plain text by older versions; answers
    /// how many. Call until it answers 0 (the gateway does at start).
    pub async fn seal_legacy_tokens(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT checkout_id, payment_token FROM payment_event \
             WHERE flow = 'direct' AND payment_token <> '' AND payment_token NOT LIKE 'sealed:%' LIMIT $1",
        )
        .bind(SEAL_BATCH_MAX)
        .fetch_all(&self.pool)
        .await?;
        let mut sealed = 0;
        for row in rows {
            let id: String = row.try_get("checkout_id")?;
            let plain: String = row.try_get("payment_token")?;
            let checkout = CheckoutId::parse(id.clone()).map_err(|e| StoreError::Corrupt(format!("{id}: {e}")))?;
            // Compare-and-set on the plain text: a concurrent sealer's row is left alone.
            sealed += sqlx::query(
                "UPDATE payment_event SET payment_token = $1 WHERE checkout_id = $2 AND payment_token = $3",
            )
            .bind(self.vault.seal(&checkout, &plain)?)
            .bind(id)
            .bind(plain)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(id: &str) -> CheckoutId {
        CheckoutId::parse(id).unwrap()
    }

    /// A sealed token opens for its checkout only, shows nothing of the token, and the
    /// development key is well formed.
    #[test]
    fn seals_and_opens_for_one_checkout() {
        let vault = TokenVault::dev();
        assert!(vault.is_dev());
        let sealed = vault.seal(&checkout("chk-1"), "billing_secret_key_123").unwrap();
        assert!(TokenVault::is_sealed(&sealed));
        assert!(!sealed.contains("billing_secret_key_123"));
        assert_eq!(vault.open(&checkout("chk-1"), &sealed).unwrap(), "billing_secret_key_123");
        let moved = vault.open(&checkout("chk-2"), &sealed).unwrap_err().to_string();
        assert!(!moved.contains("billing_secret_key_123"), "{moved}");
        assert_ne!(sealed, vault.seal(&checkout("chk-1"), "billing_secret_key_123").unwrap(), "fresh nonce");
        assert_eq!(vault.open(&checkout("chk-1"), "pm_legacy").unwrap(), "pm_legacy");
    }

    /// Rotation: the first key seals, every key opens; an unknown key is refused; bad
    /// configuration is refused.
    #[test]
    fn keys_rotate() {
        let new_key = BASE64.encode([7u8; TOKEN_KEY_BYTES]);
        let old = TokenVault::dev();
        let sealed_old = old.seal(&checkout("chk-1"), "pm_1").unwrap();
        let rotated = TokenVault::from_config(&format!("{new_key}, {DEV_TOKEN_KEY}")).unwrap();
        assert!(!rotated.is_dev());
        assert_eq!(rotated.open(&checkout("chk-1"), &sealed_old).unwrap(), "pm_1");
        let sealed_new = rotated.seal(&checkout("chk-1"), "pm_2").unwrap();
        assert!(old.open(&checkout("chk-1"), &sealed_new).is_err());
        assert!(TokenVault::from_config("").is_err());
        assert!(TokenVault::from_config("not base64!").is_err());
        assert!(TokenVault::from_config(&BASE64.encode([1u8; 16])).is_err());
        assert!(!format!("{rotated:?}").contains(&new_key));
    }
}
