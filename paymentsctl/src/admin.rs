//! A client of the gateway's gRPC `payments.v1.AdminService` (`--gateway-grpc`, with the
//! admin key): one connection per command, with bounded connect and call times, and refusals
//! turned into errors meant for the operator.

use anyhow::{Context, anyhow};
use payments_proto::payments_v1::admin_service_client::AdminServiceClient;
use payments_worker::config::SecretKey;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// The AdminService and the key to call it with (a key with the `admin` scope).
#[derive(Debug, Clone)]
pub struct AdminTarget {
    /// gRPC address, e.g. `http://127.0.0.1:50051`.
    pub url: String,
    /// The admin key (redacted in `Debug`).
    pub key: SecretKey,
}

impl AdminTarget {
    /// The AdminService at `url`, called with `key`.
    pub fn new(url: &str, key: &str) -> Self {
        AdminTarget { url: url.to_owned(), key: SecretKey::new(key.to_owned()) }
    }
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// The metadata value for `key`, marked sensitive (never logged by tonic or hyper).
    pub fn new(key: &SecretKey) -> anyhow::Result<Bearer> {
        let mut value: MetadataValue<Ascii> = format!("Bearer {}", key.expose())
            .parse()
            .map_err(|_| anyhow!("the API key holds characters that cannot be sent"))?;
        value.set_sensitive(true);
        Ok(Bearer(value))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// An AdminService client that sends the admin key.
pub type AdminClient = AdminServiceClient<InterceptedService<Channel, Bearer>>;

/// Time allowed to open the gRPC connection to the gateway.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one call. A dead letter resolve waits up to 5 s for its workflow and a
/// delivery up to 10 s for a worker, a reconciliation run or an approved fix up to 15 s, so
/// this leaves room for each.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Time allowed for a settlement file's upload (`recon import`): the gateway's own limit on a
/// call (30 s), which 64 MiB fits on any usable link.
pub const IMPORT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to the AdminService of `target`.
pub async fn connect(target: &AdminTarget) -> anyhow::Result<AdminClient> {
    connect_with_timeout(target, REQUEST_TIMEOUT).await
}

/// Connects to the AdminService of `target`, each call allowed `timeout`.
pub async fn connect_with_timeout(target: &AdminTarget, timeout: Duration) -> anyhow::Result<AdminClient> {
    let grpc_url = target.url.as_str();
    let bearer = Bearer::new(&target.key)?;
    let endpoint = Endpoint::from_shared(grpc_url.to_owned())
        .with_context(|| format!("gateway gRPC address {grpc_url:?} is not a URL"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout);
    let channel = endpoint.connect().await.with_context(|| format!("gateway gRPC is not reachable at {grpc_url}"))?;
    Ok(AdminServiceClient::with_interceptor(channel, bearer))
}

/// A refused call as an operator-facing error: `action` is what was asked (e.g. "the retry
/// of"), `subject` what it was about (e.g. "dead letter x").
pub fn refusal(status: &Status, action: &str, subject: &str) -> anyhow::Error {
    match status.code() {
        Code::InvalidArgument | Code::FailedPrecondition => {
            anyhow!("the gateway refused {action} {subject}: {}", status.message())
        }
        Code::NotFound => anyhow!("{subject} not found ({})", status.message()),
        Code::Unavailable => anyhow!("{action} {subject} could not be delivered now: {}", status.message()),
        Code::Unauthenticated => anyhow!(
            "the gateway refused the admin key: {} (set PAYMENTS_ADMIN_KEY; scripts/run.sh prints the local keys)",
            status.message()
        ),
        Code::PermissionDenied => anyhow!("{action} {subject} needs an admin key: {}", status.message()),
        code => anyhow!("{action} {subject} failed: {code:?}: {}", status.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal names what was refused, and NOT_FOUND reads as "not found".
    #[test]
    fn refusals_read_well() {
        let e = refusal(&Status::not_found("dead letter x not found"), "the retry of", "dead letter x");
        assert!(e.to_string().starts_with("dead letter x not found"), "{e}");
        let e = refusal(&Status::invalid_argument("reason: is required"), "the resolution of", "dead letter x");
        assert_eq!(e.to_string(), "the gateway refused the resolution of dead letter x: reason: is required");
        let e = refusal(&Status::failed_precondition("checkout_id: it is done"), "the cancellation of", "checkout c");
        assert_eq!(e.to_string(), "the gateway refused the cancellation of checkout c: checkout_id: it is done");
        let e = refusal(&Status::internal("boom"), "the listing of", "dead letters");
        assert_eq!(e.to_string(), "the listing of dead letters failed: Internal: boom");
    }
}
