//! gRPC `payments.v1.PaymentService`: the same operations as REST, validated by the same code.

use crate::error::ApiError;
use crate::service::PaymentsService;
use crate::views::{checkout_pb, order_pb};
use payments_domain::{CheckoutDraft, CheckoutId, NewCheckout, OrderDraft, PaymentOrderId};
use payments_proto::payments_v1 as pb;
use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

/// The tonic service.
pub struct GrpcPayments {
    service: PaymentsService,
}

impl GrpcPayments {
    /// Wraps the shared service.
    pub fn new(service: PaymentsService) -> Self {
        GrpcPayments { service }
    }
}

fn draft_from_pb(req: pb::CreatePaymentRequest) -> CheckoutDraft {
    let mut buyer_info = Map::new();
    if let Some(b) = req.buyer_info {
        for (k, v) in [
            ("buyer_id", b.buyer_id),
            ("name", b.name),
            ("email", b.email),
        ] {
            if !v.is_empty() {
                buyer_info.insert(k.to_owned(), Value::String(v));
            }
        }
    }
    CheckoutDraft {
        checkout_id: req.checkout_id,
        buyer_info,
        payment_token: req.credit_card_info.map(|c| c.token).unwrap_or_default(),
        payment_orders: req
            .payment_orders
            .into_iter()
            .map(|o| OrderDraft {
                seller_account: o.seller_account,
                amount: o.amount,
                currency: o.currency,
                payment_order_id: o.payment_order_id,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::payment_service_server::PaymentService for GrpcPayments {
    async fn create_payment(
        &self,
        request: Request<pb::CreatePaymentRequest>,
    ) -> Result<Response<pb::Checkout>, Status> {
        let checkout =
            NewCheckout::parse(draft_from_pb(request.into_inner())).map_err(ApiError::from)?;
        let (_, record) = self.service.create(checkout).await?;
        Ok(Response::new(checkout_pb(&record)))
    }

    async fn get_payment_order(
        &self,
        request: Request<pb::GetPaymentOrderRequest>,
    ) -> Result<Response<pb::PaymentOrder>, Status> {
        let id = PaymentOrderId::parse(request.into_inner().payment_order_id)
            .map_err(|e| Status::invalid_argument(format!("payment_order_id: {e}")))?;
        Ok(Response::new(order_pb(&self.service.order(&id).await?)))
    }

    async fn get_checkout(
        &self,
        request: Request<pb::GetCheckoutRequest>,
    ) -> Result<Response<pb::Checkout>, Status> {
        let id = CheckoutId::parse(request.into_inner().checkout_id)
            .map_err(|e| Status::invalid_argument(format!("checkout_id: {e}")))?;
        Ok(Response::new(checkout_pb(
            &self.service.checkout(&id).await?,
        )))
    }
}
