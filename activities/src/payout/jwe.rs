//! JWE compact serialisation (RFC 7516) as Toss Payments' payouts v2 API uses it: direct
//! encryption (`alg: dir`) with AES-256-GCM (`enc: A256GCM`) under the merchant's 32-byte
//! security key, the protected header also carrying `iat` (ISO-8601 with offset) and `nonce`
//! (a UUID v4). The five parts are `BASE64URL(header) . "" . BASE64URL(iv) .
//! BASE64URL(ciphertext) . BASE64URL(tag)`: `dir` has no encrypted key, and the additional
//! authenticated data is the ASCII of the first part, so a changed header is refused as surely
//! as a changed ciphertext.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of a Toss security key in hexadecimal characters (32 bytes).
pub const SECURITY_KEY_HEX_LEN: usize = 64;
/// AES-GCM initialisation vector length in bytes (96 bits, as RFC 7518 requires).
pub const IV_LEN: usize = 12;
/// AES-GCM authentication tag length in bytes.
pub const TAG_LEN: usize = 16;
/// The only key-management algorithm used: the key is the content-encryption key.
pub const ALG_DIR: &str = "dir";
/// The only content-encryption algorithm used.
pub const ENC_A256GCM: &str = "A256GCM";
/// Longest compact token accepted for decryption (a payout batch of 100 items is far below).
pub const TOKEN_LEN_MAX: usize = 4 * 1024 * 1024;
/// Korea's offset from UTC, in seconds: `iat` is written in Korea time, as Toss writes its own.
const KST_OFFSET_SECS: i64 = 9 * 3_600;

/// Why a token could not be made or opened. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    /// The security key is not 64 hexadecimal characters.
    #[error("the security key must be {SECURITY_KEY_HEX_LEN} hexadecimal characters")]
    BadKey,
    /// Not five dot-separated base64url parts, or parts of the wrong size.
    #[error("malformed JWE: {0}")]
    Malformed(&'static str),
    /// A header algorithm other than `dir` / `A256GCM`.
    #[error("unsupported JWE algorithm {alg}/{enc}")]
    Unsupported {
        /// The header's `alg`.
        alg: String,
        /// The header's `enc`.
        enc: String,
    },
    /// The tag did not verify: wrong key, or the token was altered.
    #[error("JWE authentication failed (wrong key or altered token)")]
    Authentication,
}

/// A Toss security key: 32 bytes, from its 64-character hexadecimal form. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecurityKey([u8; 32]);

impl SecurityKey {
    /// Decodes the key from hexadecimal (either case; surrounding whitespace ignored).
    pub fn from_hex(hex: &str) -> Result<Self, JweError> {
        let hex = hex.trim().as_bytes();
        if hex.len() != SECURITY_KEY_HEX_LEN {
            return Err(JweError::BadKey);
        }
        let mut key = [0_u8; 32];
        for (byte, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (hex_digit(pair[0]).ok_or(JweError::BadKey)? << 4) | hex_digit(pair[1]).ok_or(JweError::BadKey)?;
        }
        Ok(SecurityKey(key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }
}

impl fmt::Debug for SecurityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecurityKey(***)")
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The protected header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Key management: `dir`.
    pub alg: String,
    /// Content encryption: `A256GCM`.
    pub enc: String,
    /// When the body was made, `yyyy-MM-dd'T'HH:mm:ss±hh:mm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<String>,
    /// A value used once (a UUID v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl Header {
    /// A `dir`/`A256GCM` header issued now, with a fresh UUID v4 nonce.
    pub fn now() -> Self {
        Header { alg: ALG_DIR.into(), enc: ENC_A256GCM.into(), iat: Some(iat_now()), nonce: Some(uuid_v4()) }
    }
}

/// Encrypts `plaintext` under `key` with `header` (a fresh random IV) into a compact token.
pub fn encrypt(key: &SecurityKey, header: &Header, plaintext: &[u8]) -> String {
    // Serialising a struct of strings cannot fail.
    let header_json = serde_json::to_vec(header).unwrap_or_default();
    let protected = URL_SAFE_NO_PAD.encode(header_json);
    let mut iv = [0_u8; IV_LEN];
    OsRng.fill_bytes(&mut iv);
    // AES-GCM only fails on plaintexts beyond 64 GiB, which no caller sends.
    let sealed = key
        .cipher()
        .encrypt(Nonce::from_slice(&iv), Payload { msg: plaintext, aad: protected.as_bytes() })
        .unwrap_or_default();
    let (ciphertext, tag) = sealed.split_at(sealed.len().saturating_sub(TAG_LEN));
    format!(
        "{protected}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Opens a compact token made with `key`: its header and plaintext. Refuses anything but
/// `dir`/`A256GCM`, a non-empty encrypted key, wrong part sizes, and a tag that does not verify.
pub fn decrypt(key: &SecurityKey, token: &str) -> Result<(Header, Vec<u8>), JweError> {
    let token = token.trim();
    if token.len() > TOKEN_LEN_MAX {
        return Err(JweError::Malformed("token too long"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts[..] else {
        return Err(JweError::Malformed("not five parts"));
    };
    if !encrypted_key.is_empty() {
        return Err(JweError::Malformed("alg dir carries no encrypted key"));
    }
    let decode = |part: &str, what: &'static str| URL_SAFE_NO_PAD.decode(part).map_err(|_| JweError::Malformed(what));
    let header: Header = serde_json::from_slice(&decode(protected, "header is not base64url")?)
        .map_err(|_| JweError::Malformed("header is not a JSON object"))?;
    if header.alg != ALG_DIR || header.enc != ENC_A256GCM {
        return Err(JweError::Unsupported { alg: header.alg, enc: header.enc });
    }
    let iv = decode(iv, "iv is not base64url")?;
    let mut sealed = decode(ciphertext, "ciphertext is not base64url")?;
    let tag = decode(tag, "tag is not base64url")?;
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err(JweError::Malformed("iv or tag of the wrong size"));
    }
    sealed.extend_from_slice(&tag);
    let plaintext = key
        .cipher()
        .decrypt(Nonce::from_slice(&iv), Payload { msg: &sealed, aad: protected.as_bytes() })
        .map_err(|_| JweError::Authentication)?;
    Ok((header, plaintext))
}

/// A random UUID v4 in its hyphenated form.
pub fn uuid_v4() -> String {
    let mut b = [0_u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The current time as `yyyy-MM-dd'T'HH:mm:ss+09:00`.
pub fn iat_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    iso_kst(i64::try_from(secs).unwrap_or(i64::MAX - KST_OFFSET_SECS))
}

/// `unix_secs` in Korea time, ISO-8601 with its offset.
pub fn iso_kst(unix_secs: i64) -> String {
    let local = unix_secs + KST_OFFSET_SECS;
    let (days, of_day) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+09:00", of_day / 3_600, of_day % 3_600 / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

    fn key() -> SecurityKey {
        SecurityKey::from_hex(KEY).unwrap()
    }

    /// What is encrypted opens again, header included; every token differs (fresh IV).
    #[test]
    fn round_trip() {
        let header = Header::now();
        let body = br#"[{"refPayoutId":"payout-1","amount":{"currency":"KRW","value":1000}}]"#;
        let token = encrypt(&key(), &header, body);
        assert_eq!(token.split('.').count(), 5);
        assert_eq!(token.split('.').nth(1), Some(""));
        let (opened, plaintext) = decrypt(&key(), &token).unwrap();
        assert_eq!(opened, header);
        assert_eq!(plaintext, body);
        assert_ne!(encrypt(&key(), &header, body), token);
        let protected = token.split('.').next().unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).unwrap()).unwrap();
        assert_eq!(raw["alg"], "dir");
        assert_eq!(raw["enc"], "A256GCM");
    }

    /// A wrong key, any altered part, and foreign algorithms are refused.
    #[test]
    fn refuses_tampering_and_wrong_keys() {
        let token = encrypt(&key(), &Header::now(), b"{\"a\":1}");
        let other = SecurityKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(decrypt(&other, &token), Err(JweError::Authentication));
        let parts: Vec<&str> = token.split('.').collect();
        // Flip one ciphertext bit.
        let mut ciphertext = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
        ciphertext[0] ^= 1;
        let altered = [parts[0], "", parts[2], &URL_SAFE_NO_PAD.encode(&ciphertext), parts[4]].join(".");
        assert_eq!(decrypt(&key(), &altered), Err(JweError::Authentication));
        // A different (still valid) protected header breaks the AAD.
        let header = Header { nonce: Some(uuid_v4()), ..Header::now() };
        let swapped_header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        let altered = [swapped_header.as_str(), "", parts[2], parts[3], parts[4]].join(".");
        assert_eq!(decrypt(&key(), &altered), Err(JweError::Authentication));
        let with_key = [parts[0], "AAAA", parts[2], parts[3], parts[4]].join(".");
        assert!(matches!(decrypt(&key(), &with_key), Err(JweError::Malformed(_))));
        assert!(matches!(decrypt(&key(), "a.b.c"), Err(JweError::Malformed(_))));
        assert!(matches!(decrypt(&key(), "{\"plain\":true}"), Err(JweError::Malformed(_))));
        let rsa = Header { alg: "RSA-OAEP".into(), ..Header::now() };
        assert!(matches!(decrypt(&key(), &encrypt(&key(), &rsa, b"x")), Err(JweError::Unsupported { .. })));
    }

    /// Keys are exactly 64 hex characters; `Debug` hides them.
    #[test]
    fn keys_are_64_hex_chars() {
        assert!(SecurityKey::from_hex(&KEY[..62]).is_err());
        assert!(SecurityKey::from_hex(&format!("{}zz", &KEY[..62])).is_err());
        assert_eq!(format!("{:?}", key()), "SecurityKey(***)");
    }

    /// Known instants format in Korea time; nonces are UUID v4.
    #[test]
    fn iat_and_nonce_formats() {
        assert_eq!(iso_kst(0), "1970-01-01T09:00:00+09:00");
        assert_eq!(iso_kst(1_704_121_200), "2024-01-02T00:00:00+09:00");
        let nonce = uuid_v4();
        assert_eq!(nonce.len(), 36);
        assert_eq!(&nonce[14..15], "4");
        assert!(matches!(&nonce[19..20], "8" | "9" | "a" | "b"));
    }
}
