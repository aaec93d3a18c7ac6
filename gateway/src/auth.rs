//! Who is calling: every REST route and gRPC method is either [`Access::Public`] or needs an
//! API key with one [`ApiScope`], sent as `Authorization: Bearer sk_...` (gRPC metadata
//! `authorization`). A missing, malformed, unknown, revoked or expired key is 401 /
//! UNAUTHENTICATED; a key without the route's scope is 403 / PERMISSION_DENIED. The caller's
//! key (as a [`Caller`], never the key itself) rides in the request's extensions, where the
//! Idempotency-Key handling scopes client keys to it.
//!
//! The REST side is an axum middleware put on each route by [`RouteTable::add`], which also
//! records the route's decision (the table the route test walks); the gRPC side is a tower
//! layer that looks the method up in [`grpc_access`] and refuses methods without a decision.

use crate::error::ApiError;
use crate::limits::{Limits, too_many};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use payments_store::{ApiKeyMode, ApiScope, Store};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Longest `Authorization` value looked at; keys are 48 characters.
const AUTHORIZATION_BYTES_MAX: usize = 256;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key: health, the buyer's hosted pages, PSP webhooks (signed or verified by their own
    /// rules), gRPC health and reflection.
    Public,
    /// A key with this scope.
    Scope(ApiScope),
}

impl Access {
    /// `public`, `payments` or `admin`, as the README and the route list spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Scope(scope) => scope.as_str(),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's public id.
    pub key_id: String,
    /// The key's roll chain: Idempotency-Keys are scoped to it.
    pub lineage: String,
    /// The key's holder (its name): operators' actions on reconciliation breaks are recorded
    /// as theirs.
    pub name: String,
}

impl Caller {
    /// The caller's Idempotency-Key as stored: another caller's identical key never collides
    /// with it, and a key rolled mid-retry still finds its first answer.
    pub fn scoped_key(&self, client_key: &str) -> String {
        format!("{}/{client_key}", self.lineage)
    }
}

/// Checks presented keys against the store, and the per-key and per-IP rate limits.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    mode: ApiKeyMode,
    limits: Option<Limits>,
}

impl Authenticator {
    /// Accepts keys of `mode` found active in `store`; no rate limits.
    pub fn new(store: Store, mode: ApiKeyMode) -> Self {
        Authenticator { store, mode, limits: None }
    }

    /// The same, with rate limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Refuses a client IP over its rate.
    pub fn check_ip(&self, ip: std::net::IpAddr) -> Result<(), ApiError> {
        match &self.limits {
            Some(limits) => limits.check_ip(ip),
            None => Ok(()),
        }
    }

    /// The caller of a request carrying `authorization` values, if its key is active and has
    /// `scope`.
    pub async fn check(&self, authorization: &[&[u8]], scope: ApiScope) -> Result<Caller, ApiError> {
        let key = bearer(authorization)?;
        match ApiKeyMode::of_key(key) {
            Some(mode) if mode == self.mode => {}
            Some(mode) => {
                return Err(ApiError::unauthenticated(
                    "api_key_mode_mismatch",
                    format!(
                        "a {} key was sent to a gateway in {} mode; use an sk_{}_ key",
                        mode.as_str(),
                        self.mode.as_str(),
                        self.mode.as_str()
                    ),
                ));
            }
            None => return Err(invalid_key()),
        }
        let record = self.store.authenticate_api_key(key).await?.ok_or_else(invalid_key)?;
        if let Some(limits) = &self.limits {
            limits.per_key.check(&record.key_id).map_err(|wait| too_many("requests with this API key", wait))?;
        }
        if !record.has_scope(scope) {
            return Err(ApiError::PermissionDenied(format!(
                "the API key {} ({}) lacks the `{}` scope this call needs",
                record.key_id,
                record.display(),
                scope.as_str()
            )));
        }
        tracing::debug!(key_id = %record.key_id, scope = scope.as_str(), "caller authenticated");
        Ok(Caller { key_id: record.key_id, lineage: record.lineage, name: record.name })
    }
}

fn invalid_key() -> ApiError {
    // One answer for unknown, revoked and expired keys; the key is never echoed.
    ApiError::unauthenticated("api_key_invalid", "invalid API key provided (unknown, revoked or expired)")
}

/// The key of the `Authorization: Bearer <key>` values: exactly one, with the Bearer scheme
/// (any case) and a key of visible ASCII.
fn bearer<'a>(values: &[&'a [u8]]) -> Result<&'a str, ApiError> {
    let missing = || {
        ApiError::unauthenticated(
            "api_key_missing",
            "no API key provided; send it as `Authorization: Bearer sk_...` (see `paymentsctl keys`)",
        )
    };
    let malformed = |why: &str| ApiError::unauthenticated("api_key_malformed", format!("Authorization {why}"));
    let value = match values {
        [] => return Err(missing()),
        [one] => *one,
        _ => return Err(malformed("is given more than once")),
    };
    if value.len() > AUTHORIZATION_BYTES_MAX {
        return Err(malformed("is too long"));
    }
    let text = std::str::from_utf8(value).map_err(|_| malformed("is not ASCII"))?;
    let (scheme, key) = text.split_once(' ').ok_or_else(|| malformed("must be `Bearer <key>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed("must use the Bearer scheme"));
    }
    let key = key.trim();
    if key.is_empty() {
        return Err(missing());
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed("holds characters that are not visible ASCII"));
    }
    Ok(key)
}

/// The `Authorization` values of a request's headers.
fn authorization_values(headers: &HeaderMap) -> Vec<&[u8]> {
    headers.get_all(header::AUTHORIZATION).iter().map(|v| v.as_bytes()).collect()
}

#[derive(Clone)]
struct Guard {
    auth: Authenticator,
    scope: ApiScope,
}

async fn require(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let values = authorization_values(request.headers());
    match guard.auth.check(&values, guard.scope).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// One REST route's decision, as recorded by [`RouteTable::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// The HTTP method.
    pub method: Method,
    /// The axum path pattern, e.g. `/v1/payments/{payment_order_id}`.
    pub path: &'static str,
    /// What it needs.
    pub access: Access,
}

/// The REST router, built only through [`RouteTable::add`]: no route exists without an access
/// decision, and [`RouteTable::entries`] lists every one of them.
pub struct RouteTable {
    router: Router,
    entries: Vec<RouteEntry>,
    auth: Authenticator,
}

impl RouteTable {
    /// An empty table whose guarded routes check keys with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        RouteTable { router: Router::new(), entries: Vec::new(), auth }
    }

    /// Mounts `handler` (one method) at `path` behind `access`.
    pub fn add(mut self, method: Method, path: &'static str, access: Access, handler: MethodRouter) -> Self {
        let handler = match access {
            Access::Public => handler,
            Access::Scope(scope) => {
                handler.route_layer(middleware::from_fn_with_state(Guard { auth: self.auth.clone(), scope }, require))
            }
        };
        self.router = self.router.route(path, handler);
        self.entries.push(RouteEntry { method, path, access });
        self
    }

    /// Every route and its decision, in the order they were added.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// The router.
    pub fn into_router(self) -> Router {
        self.router
    }
}

/// The decision for a gRPC method path (`/package.Service/Method`); `None` for a method
/// nobody decided on, which the layer refuses.
pub fn grpc_access(path: &str) -> Option<Access> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let access = match (service, method) {
        ("grpc.health.v1.Health", "Check" | "Watch") => Access::Public,
        (
            "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection",
            "ServerReflectionInfo",
        ) => Access::Public,
        (
            "payments.v1.PaymentService",
            "CreatePayment"
            | "GetPaymentOrder"
            | "GetCheckout"
            | "CreateHostedCheckout"
            | "CreateRefund"
            | "ListRefunds"
            | "GetSellerBalance",
        ) => Access::Scope(ApiScope::Payments),
        (
            "payments.v1.AdminService",
            "DecideReview"
            | "CancelCheckout"
            | "ListDeadLetters"
            | "GetDeadLetter"
            | "RetryDeadLetter"
            | "ResolveDeadLetter"
            | "CreateApiKey"
            | "ListApiKeys"
            | "RevokeApiKey"
            | "RollApiKey"
            | "SetFeeRate"
            | "ListFeeRates"
            | "RegisterSeller"
            | "GetSeller"
            | "MarkBankFixed"
            | "RunPayouts"
            | "ListPayouts"
            | "GetPayout"
            | "CancelPayout"
            | "RunReconciliation"
            | "GetReconciliationRun"
            | "ListReconBreaks"
            | "GetReconBreak"
            | "ResolveReconBreak"
            | "AcceptReconBreak"
            | "ApproveReconBreak"
            | "ImportSettlementReport",
        ) => Access::Scope(ApiScope::Admin),
        _ => return None,
    };
    Some(access)
}

/// The tower layer that guards the gRPC server.
#[derive(Clone)]
pub struct GrpcAuthLayer {
    auth: Authenticator,
}

impl GrpcAuthLayer {
    /// Guards with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        GrpcAuthLayer { auth }
    }
}

impl<S> tower::Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> GrpcAuth<S> {
        GrpcAuth { inner, auth: self.auth.clone() }
    }
}

/// The service [`GrpcAuthLayer`] makes.
#[derive(Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    auth: Authenticator,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<axum::http::Request<B>> for GrpcAuth<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = axum::http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let peer =
                request.extensions().get::<tonic::transport::server::TcpConnectInfo>().and_then(|c| c.remote_addr());
            if let Some(peer) = peer
                && let Err(e) = auth.check_ip(peer.ip())
            {
                return Ok(tonic::Status::from(e).into_http());
            }
            let scope = match grpc_access(request.uri().path()) {
                Some(Access::Public) => return inner.call(request).await,
                Some(Access::Scope(scope)) => scope,
                None => {
                    return Ok(tonic::Status::permission_denied(format!(
                        "{} has no access decision; it is refused",
                        request.uri().path()
                    ))
                    .into_http());
                }
            };
            let values = authorization_values(request.headers());
            match auth.check(&values, scope).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(e) => Ok(tonic::Status::from(e).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only one `Bearer <visible ASCII>` value is a key; everything else is a 401 naming why.
    #[test]
    fn bearer_syntax() {
        assert_eq!(bearer(&[b"Bearer sk_test_abc"]).unwrap(), "sk_test_abc");
        assert_eq!(bearer(&[b"bearer  sk_test_abc "]).unwrap(), "sk_test_abc");
        let code = |values: &[&[u8]]| match bearer(values) {
            Err(ApiError::Unauthenticated { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(&[]), "api_key_missing");
        assert_eq!(code(&[b"Bearer "]), "api_key_missing");
        assert_eq!(code(&[b"Basic dXNlcjpwYXNz"]), "api_key_malformed");
        assert_eq!(code(&[b"sk_test_abc"]), "api_key_malformed");
        assert_eq!(code(&[b"Bearer a", b"Bearer b"]), "api_key_malformed");
        assert_eq!(code(&[&[b'a'; AUTHORIZATION_BYTES_MAX + 1]]), "api_key_malformed");
    }

    /// Every method of our services, health and reflection has a decision; anything else is
    /// refused.
    #[test]
    fn grpc_methods_have_decisions() {
        assert_eq!(grpc_access("/grpc.health.v1.Health/Check"), Some(Access::Public));
        assert_eq!(grpc_access("/payments.v1.PaymentService/CreatePayment"), Some(Access::Scope(ApiScope::Payments)));
        assert_eq!(grpc_access("/payments.v1.AdminService/DecideReview"), Some(Access::Scope(ApiScope::Admin)));
        assert_eq!(
            grpc_access("/payments.v1.AdminService/ImportSettlementReport"),
            Some(Access::Scope(ApiScope::Admin))
        );
        assert_eq!(grpc_access("/payments.v1.AdminService/Nope"), None);
        assert_eq!(grpc_access("garbage"), None);
    }

    /// Client keys of two callers never meet; a rolled key shares its lineage's scope.
    #[test]
    fn idempotency_keys_are_scoped_to_the_lineage() {
        let caller =
            |key_id: &str, lineage: &str| Caller { key_id: key_id.into(), lineage: lineage.into(), name: "ops".into() };
        let (a, rolled, b) = (caller("key_a", "key_a"), caller("key_a2", "key_a"), caller("key_b", "key_b"));
        assert_eq!(a.scoped_key("k"), rolled.scoped_key("k"));
        assert_ne!(a.scoped_key("k"), b.scoped_key("k"));
    }
}
