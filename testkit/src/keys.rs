//! The stack's API keys: issuing them, an HTTP client sending one, the Idempotency-Keys as the
//! gateway stores them, and the gateway over gRPC with its keys (the PaymentService with the
//! `payments` key, the AdminService with the `admin` key; the interceptor is paymentsctl's).

use crate::stack::Stack;
use payments_activities::psp::SecretKey;
use payments_proto::payments_v1::payment_service_client::PaymentServiceClient;
use payments_store::{ApiKeyDraft, ApiKeyMode, ApiScope, Store};
use paymentsctl::admin::{AdminClient, AdminTarget, Bearer};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Issues a test-mode key with one scope straight into the stack's database; answers the key
/// and its lineage.
pub(crate) async fn issue_key(store: &Store, name: &str, scope: ApiScope) -> (String, String) {
    let draft = ApiKeyDraft { name: name.to_owned(), scopes: vec![scope], mode: ApiKeyMode::Test };
    let issued = store.create_api_key(&draft).await.expect("issuing a test API key");
    (issued.secret, issued.record.lineage)
}

/// An HTTP client for tests, sending `key` (if any) as `Authorization: Bearer` by default (a
/// request's own `Authorization` header replaces it).
pub fn http_client(key: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).expect("API key header");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder().timeout(Duration::from_secs(30)).default_headers(headers).build().expect("http")
}

/// A PaymentService client sending a key.
pub type PaymentsClient = PaymentServiceClient<InterceptedService<Channel, Bearer>>;

impl Stack {
    /// The Idempotency-Key `client_key` sent with [`Stack::payments_key`] as the gateway stores
    /// it (scoped to the key's lineage), for reading its row.
    pub fn stored_key(&self, client_key: &str) -> String {
        format!("{}/{client_key}", self.payments_lineage)
    }

    /// The gateway's gRPC channel.
    pub async fn grpc_channel(&self) -> Channel {
        Channel::from_shared(self.grpc_url.clone()).expect("gRPC URL").connect().await.expect("gRPC connect")
    }

    /// The PaymentService, called with `key`.
    pub async fn payments_grpc_with(&self, key: &str) -> PaymentsClient {
        let bearer = Bearer::new(&SecretKey::new(key.to_owned())).expect("bearer");
        PaymentServiceClient::with_interceptor(self.grpc_channel().await, bearer)
    }

    /// The PaymentService, called with the `payments` key.
    pub async fn payments_grpc(&self) -> PaymentsClient {
        self.payments_grpc_with(&self.payments_key).await
    }

    /// The AdminService as paymentsctl's commands take it, with the `admin` key.
    pub fn admin_target(&self) -> AdminTarget {
        AdminTarget::new(&self.grpc_url, &self.admin_key)
    }

    /// The AdminService, called with the `admin` key.
    pub async fn admin_grpc(&self) -> AdminClient {
        paymentsctl::admin::connect(&self.admin_target()).await.expect("AdminService")
    }
}
