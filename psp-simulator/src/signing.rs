//! Webhook signatures, exactly as the real PSPs compute them, exposed so the
//! platform's tests can sign and verify.
//!
//! * Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
//!   "<t>.<raw body>")>`.
//! * Toss (payout and seller events only): `tosspayments-webhook-signature:
//!   v1:<base64 HMAC-SHA256(secret, "<raw body>:<transmission time>")>`,
//!   where the transmission time is the `tosspayments-webhook-transmission-time`
//!   header. Toss sends two comma-separated `v1:` values (for key rotation);
//!   a receiver accepts the event if any of them matches.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(secret: &str, message: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The `Stripe-Signature` header value for `body` sent at `timestamp`
/// (Unix seconds), signed with the endpoint secret `secret`.
pub fn stripe_signature_header(secret: &str, timestamp: u64, body: &str) -> String {
    let digest = hmac_sha256(secret, &[timestamp.to_string().as_bytes(), b".", body.as_bytes()]);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// One Toss payout signature, `v1:<base64>`, for `payload` (the raw body)
/// sent at `transmission_time` (the header's exact text).
pub fn toss_payout_signature(secret: &str, payload: &str, transmission_time: &str) -> String {
    let digest = hmac_sha256(secret, &[payload.as_bytes(), b":", transmission_time.as_bytes()]);
    format!("v1:{}", STANDARD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Matches an HMAC-SHA256 computed independently (RFC 4231 case 2:
    /// key "Jefe", data "what do ya want for nothing?").
    #[test]
    fn hmac_matches_reference_vector() {
        let digest = hmac_sha256("Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    /// Header layouts follow the PSPs' formats.
    #[test]
    fn header_layouts() {
        let stripe = stripe_signature_header("whsec_x", 1_700_000_000, "{}");
        assert!(stripe.starts_with("t=1700000000,v1="));
        assert_eq!(stripe.len(), "t=1700000000,v1=".len() + 64);
        let toss = toss_payout_signature("secret", "{}", "2024-09-05T12:19:21+09:00");
        assert!(toss.starts_with("v1:"));
        assert_eq!(STANDARD.decode(&toss[3..]).unwrap().len(), 32);
    }
}
