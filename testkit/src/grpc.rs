//! The stack's gateway over gRPC, with its keys: the PaymentService with the `payments` key,
//! the AdminService with the `admin` key (the interceptor is paymentsctl's).

use crate::stack::Stack;
use payments_activities::psp::SecretKey;
use payments_proto::payments_v1::payment_service_client::PaymentServiceClient;
use paymentsctl::admin::{AdminClient, AdminTarget, Bearer};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A PaymentService client sending a key.
pub type PaymentsClient = PaymentServiceClient<InterceptedService<Channel, Bearer>>;

impl Stack {
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
