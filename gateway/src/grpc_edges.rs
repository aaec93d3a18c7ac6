//! The gRPC server's edges besides access (`auth.rs`): a request message that does not decode
//! is `INVALID_ARGUMENT` (tonic-prost answers `INTERNAL`, which clients and proxies retry as a
//! server fault), and the limits on message size and call time.

use axum::http::{HeaderValue, Response};
use std::time::Duration;

/// Largest request message accepted (the REST body limit): a 100-order checkout is well under.
pub const GRPC_MESSAGE_BYTES_MAX: usize = crate::rest::REQUEST_BODY_BYTES_MAX;
/// Longest a call may run: above the AdminService's own waits for a workflow (10 s; 15 s for a
/// reconciliation run or an approved fix, `recon.rs`).
pub const GRPC_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// tonic-prost's message for a request it could not decode, as percent-encoded in
/// `grpc-message` (prost's `DecodeError` display).
const DECODE_ERROR_PREFIX: &str = "failed%20to%20decode%20Protobuf%20message";

/// Turns an `INTERNAL` answer to an undecodable request into `INVALID_ARGUMENT`; every other
/// answer passes unchanged. Use with `tower::util::MapResponseLayer`.
pub fn decode_errors_are_invalid_argument<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers();
    let internal = headers.get("grpc-status").is_some_and(|v| v.as_bytes() == b"13");
    let undecodable =
        headers.get("grpc-message").and_then(|v| v.to_str().ok()).is_some_and(|m| m.starts_with(DECODE_ERROR_PREFIX));
    if internal && undecodable {
        response.headers_mut().insert("grpc-status", HeaderValue::from_static("3"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &'static str, message: &'static str) -> Response<()> {
        let mut r = Response::new(());
        r.headers_mut().insert("grpc-status", HeaderValue::from_static(status));
        r.headers_mut().insert("grpc-message", HeaderValue::from_static(message));
        r
    }

    /// Only an INTERNAL decode failure changes, to INVALID_ARGUMENT (3).
    #[test]
    fn only_decode_failures_become_invalid_argument() {
        let mapped = decode_errors_are_invalid_argument(answer("13", "failed%20to%20decode%20Protobuf%20message:%20x"));
        assert_eq!(mapped.headers()["grpc-status"], "3");
        let other = decode_errors_are_invalid_argument(answer("13", "internal%20error"));
        assert_eq!(other.headers()["grpc-status"], "13");
        let ok = decode_errors_are_invalid_argument(answer("0", "failed%20to%20decode%20Protobuf%20message"));
        assert_eq!(ok.headers()["grpc-status"], "0");
    }
}
