//! Toss's payout encryption, as the simulator speaks it: JWE compact serialisation (RFC 7516)
//! with `alg: dir`, `enc: A256GCM` under the 32-byte security key; the additional
//! authenticated data is the ASCII of the base64url protected header. Requests must carry
//! `iat` and `nonce` in that header, as Toss requires; answers carry them too.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::clock::{iso_kst, unix_now};

/// AES-GCM IV length in bytes.
const IV_LEN: usize = 12;
/// AES-GCM tag length in bytes.
const TAG_LEN: usize = 16;
/// Random bytes of an answer's nonce.
const NONCE_BYTES: usize = 16;

/// A security key: 32 bytes.
#[derive(Clone)]
pub struct SecurityKey([u8; 32]);

impl SecurityKey {
    /// Decodes 64 hexadecimal characters.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut key = [0_u8; 32];
        for (byte, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Self(key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }
}

/// Encrypts `plaintext` into a compact JWE with a header issued now.
pub fn encrypt(key: &SecurityKey, plaintext: &[u8]) -> String {
    let mut nonce = [0_u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let header = json!({"alg": "dir", "enc": "A256GCM", "iat": iso_kst(unix_now()), "nonce": nonce});
    encrypt_with_header(key, &header, plaintext)
}

/// Encrypts `plaintext` with the given protected `header` (tests use it to send bad headers).
pub fn encrypt_with_header(key: &SecurityKey, header: &Value, plaintext: &[u8]) -> String {
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let mut iv = [0_u8; IV_LEN];
    OsRng.fill_bytes(&mut iv);
    // AES-GCM only fails beyond 64 GiB of plaintext.
    let sealed = key
        .cipher()
        .encrypt(Nonce::from_slice(&iv), Payload { msg: plaintext, aad: protected.as_bytes() })
        .unwrap_or_default();
    let (ciphertext, tag) = sealed.split_at(sealed.len().saturating_sub(TAG_LEN));
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    format!("{protected}..{}.{}.{}", b64(&iv), b64(ciphertext), b64(tag))
}

/// Opens a request body: the plaintext, or why it is refused (Toss's message).
pub fn decrypt_request(key: &SecurityKey, token: &[u8]) -> Result<Vec<u8>, &'static str> {
    let token = std::str::from_utf8(token).map_err(|_| "암호화된 요청 본문이 아닙니다.")?.trim();
    let parts: Vec<&str> = token.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts[..] else {
        return Err("요청 본문이 JWE 형식이 아닙니다.");
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "JWE 인코딩이 올바르지 않습니다.");
    let header: Value = serde_json::from_slice(&decode(protected)?).map_err(|_| "JWE 헤더가 올바르지 않습니다.")?;
    if header["alg"] != "dir" || header["enc"] != "A256GCM" || !encrypted_key.is_empty() {
        return Err("JWE 알고리즘은 dir, A256GCM 이어야 합니다.");
    }
    let present = |name: &str| header[name].as_str().is_some_and(|value| !value.is_empty());
    if !present("iat") || !present("nonce") {
        return Err("JWE 헤더에 iat, nonce 가 필요합니다.");
    }
    let (iv, tag) = (decode(iv)?, decode(tag)?);
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err("JWE 인코딩이 올바르지 않습니다.");
    }
    let mut sealed = decode(ciphertext)?;
    sealed.extend_from_slice(&tag);
    key.cipher()
        .decrypt(Nonce::from_slice(&iv), Payload { msg: &sealed, aad: protected.as_bytes() })
        .map_err(|_| "복호화에 실패했습니다. 보안 키를 확인해주세요.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecurityKey {
        SecurityKey::from_hex(crate::config::TOSS_SECURITY_KEY_TEST).unwrap()
    }

    /// Round trip; a wrong key, an altered token and a header without `iat` are refused.
    #[test]
    fn round_trip_and_refusals() {
        let token = encrypt(&key(), b"[1,2]");
        assert_eq!(decrypt_request(&key(), token.as_bytes()).unwrap(), b"[1,2]");
        let other = SecurityKey::from_hex(&"0f".repeat(32)).unwrap();
        assert!(decrypt_request(&other, token.as_bytes()).is_err());
        let mut altered = token.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(decrypt_request(&key(), &altered).is_err());
        let bare = encrypt_with_header(&key(), &json!({"alg": "dir", "enc": "A256GCM"}), b"{}");
        assert!(decrypt_request(&key(), bare.as_bytes()).is_err());
        assert!(decrypt_request(&key(), b"{\"plain\": true}").is_err());
        assert!(SecurityKey::from_hex("abc").is_none());
    }
}
