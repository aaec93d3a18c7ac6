//! gRPC `payments.v1.PaymentService`: the same operations as REST, validated by the same code;
//! and `payments.v1.AdminService`: operators' review decisions, cancellations, dead letters,
//! keys, fee rates, pay-out and reconciliation (`recon.rs`).

use crate::api_keys;
use crate::auth::Caller;
use crate::dead_letters::{check_id, parse_limit, parse_status};
use crate::error::{ApiError, refuse_card_number};
use crate::fee_rates;
use crate::grpc_idempotency::idempotent;
use crate::idempotency::now_ms;
use crate::recon;
use crate::refunds::{RefundDraft, parse_order_id};
use crate::service::PaymentsService;
use crate::views::{checkout_pb, dead_letter_pb, order_pb, refund_pb};
use payments_domain::{CheckoutDraft, CheckoutId, NewCheckout, OrderDraft, PaymentOrderId};
use payments_proto::payments_v1 as pb;
use payments_store::ApiKeyMode;
use payments_workflows::messages::{CancelRequest, DeadLetterVerb, ReviewDecision};
use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

/// The tonic service.
pub struct GrpcPayments {
    service: PaymentsService,
    public_url: String,
}

impl GrpcPayments {
    /// Wraps the shared service; `public_url` is this gateway's, for checkout page links.
    pub fn new(service: PaymentsService, public_url: String) -> Self {
        GrpcPayments { service, public_url }
    }
}

/// The operators' gRPC service.
pub struct GrpcAdmin {
    service: PaymentsService,
    /// The mode of the keys this gateway accepts, and so issues.
    mode: ApiKeyMode,
}

impl GrpcAdmin {
    /// Wraps the shared service; keys are issued in `mode`.
    pub fn new(service: PaymentsService, mode: ApiKeyMode) -> Self {
        GrpcAdmin { service, mode }
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for GrpcAdmin {
    async fn decide_review(
        &self,
        request: Request<pb::DecideReviewRequest>,
    ) -> Result<Response<pb::DecideReviewResponse>, Status> {
        let by = caller_id(&request);
        let r = request.into_inner();
        let id = CheckoutId::parse(r.checkout_id).map_err(|e| Status::invalid_argument(format!("checkout_id: {e}")))?;
        if r.reason.trim().is_empty() || r.operator.trim().is_empty() {
            return Err(Status::invalid_argument("reason and operator are required"));
        }
        refuse_card_number("reason", &r.reason)?;
        refuse_card_number("operator", &r.operator)?;
        let decision = ReviewDecision { approve: r.approve, reason: r.reason, operator: r.operator };
        let phase = self.service.decide_review(&id, decision).await?;
        tracing::info!(checkout_id = %id, approve = r.approve, by, "review decision delivered");
        Ok(Response::new(pb::DecideReviewResponse { checkout_id: id.to_string(), phase: phase.as_str().to_owned() }))
    }

    async fn cancel_checkout(
        &self,
        request: Request<pb::CancelCheckoutRequest>,
    ) -> Result<Response<pb::CancelCheckoutResponse>, Status> {
        let by = caller_id(&request);
        let r = request.into_inner();
        let id = CheckoutId::parse(r.checkout_id).map_err(|e| Status::invalid_argument(format!("checkout_id: {e}")))?;
        let cancel = CancelRequest { operator: r.operator, reason: r.reason };
        let phase = self.service.cancel_checkout(&id, cancel).await?;
        tracing::info!(checkout_id = %id, phase = phase.as_str(), by, "checkout cancellation delivered");
        Ok(Response::new(pb::CancelCheckoutResponse { checkout_id: id.to_string(), phase: phase.as_str().to_owned() }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let r = request.into_inner();
        let (status, limit) = (parse_status(&r.status)?, parse_limit(r.limit)?);
        let records = self.service.dead_letters(status, limit).await?;
        Ok(Response::new(pb::ListDeadLettersResponse { dead_letters: records.iter().map(dead_letter_pb).collect() }))
    }

    async fn get_dead_letter(
        &self,
        request: Request<pb::GetDeadLetterRequest>,
    ) -> Result<Response<pb::DeadLetter>, Status> {
        let id = request.into_inner().dead_letter_id;
        check_id(&id)?;
        Ok(Response::new(dead_letter_pb(&self.service.dead_letter(&id).await?)))
    }

    async fn retry_dead_letter(
        &self,
        request: Request<pb::DeadLetterActionRequest>,
    ) -> Result<Response<pb::DeadLetter>, Status> {
        let by = caller_id(&request);
        self.act(request.into_inner(), DeadLetterVerb::Retry, &by).await
    }

    async fn resolve_dead_letter(
        &self,
        request: Request<pb::DeadLetterActionRequest>,
    ) -> Result<Response<pb::DeadLetter>, Status> {
        let by = caller_id(&request);
        self.act(request.into_inner(), DeadLetterVerb::Resolve, &by).await
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::IssuedApiKey>, Status> {
        let by = caller_id(&request);
        let draft = api_keys::draft(request.into_inner(), self.mode)?;
        let issued = self.service.store().create_api_key(&draft).await.map_err(api_keys::store_error)?;
        tracing::info!(key_id = %issued.record.key_id, by, "API key issued");
        Ok(Response::new(api_keys::issued_pb(issued)))
    }

    async fn list_api_keys(
        &self,
        _request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let keys = self.service.store().api_keys().await.map_err(ApiError::from)?;
        Ok(Response::new(pb::ListApiKeysResponse { api_keys: keys.iter().map(api_keys::key_pb).collect() }))
    }

    async fn revoke_api_key(&self, request: Request<pb::RevokeApiKeyRequest>) -> Result<Response<pb::ApiKey>, Status> {
        let by = caller_id(&request);
        let key_id = request.into_inner().key_id;
        api_keys::check_key_id(&key_id)?;
        let record = self.service.store().revoke_api_key(&key_id).await.map_err(api_keys::store_error)?;
        tracing::info!(key_id, by, "API key revoked");
        Ok(Response::new(api_keys::key_pb(&record)))
    }

    async fn set_fee_rate(&self, request: Request<pb::SetFeeRateRequest>) -> Result<Response<pb::FeeRate>, Status> {
        // Stored with the calling key's id as its author.
        let by = caller_id(&request);
        let d = fee_rates::draft(request.into_inner())?;
        let record = self
            .service
            .store()
            .set_fee_rate(d.currency, d.seller.as_ref(), d.rate, d.effective_from_ms, &by)
            .await
            .map_err(fee_rates::store_error)?;
        Ok(Response::new(fee_rates::fee_rate_pb(&record)))
    }

    async fn register_seller(
        &self,
        request: Request<pb::RegisterSellerRequest>,
    ) -> Result<Response<pb::PayoutSeller>, Status> {
        Ok(Response::new(self.service.payouts()?.register(request.into_inner()).await?))
    }

    async fn get_seller(&self, request: Request<pb::GetSellerRequest>) -> Result<Response<pb::PayoutSeller>, Status> {
        Ok(Response::new(self.service.payouts()?.get_seller(&request.into_inner().seller_account).await?))
    }

    async fn mark_bank_fixed(
        &self,
        request: Request<pb::GetSellerRequest>,
    ) -> Result<Response<pb::PayoutSeller>, Status> {
        Ok(Response::new(self.service.payouts()?.mark_bank_fixed(&request.into_inner().seller_account).await?))
    }

    async fn run_payouts(
        &self,
        request: Request<pb::RunPayoutsRequest>,
    ) -> Result<Response<pb::RunPayoutsResponse>, Status> {
        Ok(Response::new(self.service.payouts()?.run(request.into_inner()).await?))
    }

    async fn list_payouts(
        &self,
        request: Request<pb::ListPayoutsRequest>,
    ) -> Result<Response<pb::ListPayoutsResponse>, Status> {
        Ok(Response::new(self.service.payouts()?.list(request.into_inner()).await?))
    }

    async fn get_payout(&self, request: Request<pb::GetPayoutRequest>) -> Result<Response<pb::Payout>, Status> {
        Ok(Response::new(self.service.payouts()?.get(&request.into_inner().payout_id).await?))
    }

    async fn cancel_payout(&self, request: Request<pb::CancelPayoutRequest>) -> Result<Response<pb::Payout>, Status> {
        Ok(Response::new(self.service.payouts()?.cancel(request.into_inner()).await?))
    }

    async fn run_reconciliation(
        &self,
        request: Request<pb::RunReconciliationRequest>,
    ) -> Result<Response<pb::ReconciliationRun>, Status> {
        let by = caller_id(&request);
        let r = request.into_inner();
        let (psp, day) = (recon::parse_psp(&r.psp)?, recon::parse_day(&r.day, now_ms())?);
        let run = self.service.run_reconciliation(psp, day, r.wait).await?;
        tracing::info!(run_id = %run.run_id, status = %run.status, by, "reconciliation run asked for");
        Ok(Response::new(run))
    }

    async fn get_reconciliation_run(
        &self,
        request: Request<pb::GetReconciliationRunRequest>,
    ) -> Result<Response<pb::ReconciliationRun>, Status> {
        let r = request.into_inner();
        let (psp, day) = (recon::parse_psp(&r.psp)?, recon::parse_day(&r.day, now_ms())?);
        Ok(Response::new(self.service.reconciliation_run(psp, day).await?))
    }

    async fn list_recon_breaks(
        &self,
        request: Request<pb::ListReconBreaksRequest>,
    ) -> Result<Response<pb::ListReconBreaksResponse>, Status> {
        let r = request.into_inner();
        let filter = recon::breaks_filter(&r.status, i64::from(r.class), &r.psp, &r.day, r.after_id, r.limit)?;
        let (breaks, next_after_id) = self.service.recon_breaks(&filter).await?;
        Ok(Response::new(pb::ListReconBreaksResponse {
            breaks: breaks.iter().map(recon::break_pb).collect(),
            next_after_id,
        }))
    }

    async fn get_recon_break(
        &self,
        request: Request<pb::GetReconBreakRequest>,
    ) -> Result<Response<pb::ReconBreak>, Status> {
        Ok(Response::new(recon::break_pb(&self.service.recon_break(request.into_inner().break_id).await?)))
    }

    async fn resolve_recon_break(
        &self,
        request: Request<pb::ResolveReconBreakRequest>,
    ) -> Result<Response<pb::ReconBreak>, Status> {
        let by = caller_name(&request)?;
        let r = request.into_inner();
        Ok(Response::new(recon::break_pb(&self.service.resolve_recon_break(r.break_id, &r.note, &by).await?)))
    }

    async fn accept_recon_break(
        &self,
        request: Request<pb::AcceptReconBreakRequest>,
    ) -> Result<Response<pb::ReconBreak>, Status> {
        let by = caller_name(&request)?;
        let r = request.into_inner();
        Ok(Response::new(recon::break_pb(&self.service.accept_recon_break(r.break_id, &r.note, r.days, &by).await?)))
    }

    async fn approve_recon_break(
        &self,
        request: Request<pb::ApproveReconBreakRequest>,
    ) -> Result<Response<pb::ReconBreak>, Status> {
        let by = caller_name(&request)?;
        let break_id = request.into_inner().break_id;
        Ok(Response::new(recon::break_pb(&self.service.approve_recon_break(break_id, &by).await?)))
    }

    async fn import_settlement_report(
        &self,
        mut request: Request<tonic::Streaming<pb::ImportSettlementReportRequest>>,
    ) -> Result<Response<pb::SettlementImport>, Status> {
        let by = caller_id(&request);
        // The slot first: nothing of the file is received while the gateway is at its limit.
        let _slot = self.service.recon_import_slot()?;
        let (name, spool) = recon::receive_import(request.get_mut()).await?;
        let psp = spool.psp();
        let outcome = self.service.import_settlement_csv(&name, spool).await?;
        tracing::info!(%psp, file_id = outcome.file_id, by, "settlement file imported over gRPC");
        Ok(Response::new(recon::import_pb(&outcome)))
    }

    async fn list_fee_rates(
        &self,
        _request: Request<pb::ListFeeRatesRequest>,
    ) -> Result<Response<pb::ListFeeRatesResponse>, Status> {
        let rates = self.service.store().fee_rates().await.map_err(ApiError::from)?;
        Ok(Response::new(pb::ListFeeRatesResponse { fee_rates: rates.iter().map(fee_rates::fee_rate_pb).collect() }))
    }

    async fn roll_api_key(
        &self,
        request: Request<pb::RollApiKeyRequest>,
    ) -> Result<Response<pb::IssuedApiKey>, Status> {
        let by = caller_id(&request);
        let r = request.into_inner();
        api_keys::check_key_id(&r.key_id)?;
        let expires = api_keys::roll_expiry_ms(r.expires_in_secs)?;
        let issued = self.service.store().roll_api_key(&r.key_id, expires).await.map_err(api_keys::store_error)?;
        tracing::info!(old = r.key_id, new = %issued.record.key_id, by, "API key rolled");
        Ok(Response::new(api_keys::issued_pb(issued)))
    }
}

/// The name of the request's authenticated caller's key: who an operator's action is
/// recorded as. Every AdminService call is guarded, so a call without one is our bug.
fn caller_name<T>(request: &Request<T>) -> Result<String, Status> {
    request.extensions().get::<Caller>().map(|c| c.name.clone()).ok_or_else(|| {
        Status::from(ApiError::Internal(anyhow::anyhow!("an AdminService call without an authenticated caller")))
    })
}

/// The key id of the request's authenticated caller, for audit log lines.
fn caller_id<T>(request: &Request<T>) -> String {
    request.extensions().get::<Caller>().map_or_else(|| "unknown".to_owned(), |c| c.key_id.clone())
}

impl GrpcAdmin {
    /// Retry or resolve, answering the dead letter afterwards; `by` is the caller's key id.
    async fn act(
        &self,
        r: pb::DeadLetterActionRequest,
        verb: DeadLetterVerb,
        by: &str,
    ) -> Result<Response<pb::DeadLetter>, Status> {
        let record = self.service.act_on_dead_letter(&r.dead_letter_id, verb, &r.operator, &r.reason).await?;
        tracing::info!(dead_letter_id = %r.dead_letter_id, ?verb, operator = %r.operator, by, "dead letter action delivered");
        Ok(Response::new(dead_letter_pb(&record)))
    }
}

fn draft_from_pb(req: pb::CreatePaymentRequest) -> CheckoutDraft {
    let mut buyer_info = Map::new();
    if let Some(b) = req.buyer_info {
        for (k, v) in [("buyer_id", b.buyer_id), ("name", b.name), ("email", b.email)] {
            if !v.is_empty() {
                buyer_info.insert(k.to_owned(), Value::String(v));
            }
        }
    }
    CheckoutDraft {
        checkout_id: req.checkout_id,
        buyer_info,
        payment_token: Some(req.credit_card_info.map(|c| c.token).unwrap_or_default()),
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
        let endpoint = "grpc payments.v1.PaymentService/CreatePayment";
        idempotent(self.service.store(), endpoint, request, |request, key| async move {
            let checkout = NewCheckout::parse(draft_from_pb(request.into_inner())).map_err(ApiError::from)?;
            let (_, record) = self.service.create(checkout, key.as_deref()).await?;
            Ok(Response::new(checkout_pb(&record)))
        })
        .await
    }

    async fn get_payment_order(
        &self,
        request: Request<pb::GetPaymentOrderRequest>,
    ) -> Result<Response<pb::PaymentOrder>, Status> {
        let id = PaymentOrderId::parse(request.into_inner().payment_order_id)
            .map_err(|e| Status::invalid_argument(format!("payment_order_id: {e}")))?;
        Ok(Response::new(order_pb(&self.service.order(&id).await?)))
    }

    async fn create_hosted_checkout(
        &self,
        request: Request<pb::CreateHostedCheckoutRequest>,
    ) -> Result<Response<pb::HostedCheckout>, Status> {
        let endpoint = "grpc payments.v1.PaymentService/CreateHostedCheckout";
        idempotent(self.service.store(), endpoint, request, |request, key| async move {
            let r = request.into_inner();
            let create = pb::CreatePaymentRequest {
                checkout_id: r.checkout_id,
                buyer_info: r.buyer_info,
                credit_card_info: None,
                payment_orders: r.payment_orders,
            };
            let mut draft = draft_from_pb(create);
            draft.payment_token = None;
            let checkout = NewCheckout::parse(draft).map_err(ApiError::from)?;
            let total = crate::rest::hosted_total(&checkout)?;
            let (_, record) = self.service.create(checkout, key.as_deref()).await?;
            Ok(Response::new(pb::HostedCheckout {
                checkout_url: crate::rest::checkout_url(&self.public_url, record.checkout_id.as_str()),
                checkout: Some(checkout_pb(&record)),
                amount: total.to_decimal_string(),
                currency: total.currency().code().to_owned(),
            }))
        })
        .await
    }

    async fn get_checkout(&self, request: Request<pb::GetCheckoutRequest>) -> Result<Response<pb::Checkout>, Status> {
        let id = CheckoutId::parse(request.into_inner().checkout_id)
            .map_err(|e| Status::invalid_argument(format!("checkout_id: {e}")))?;
        Ok(Response::new(checkout_pb(&self.service.checkout(&id).await?)))
    }

    async fn create_refund(&self, request: Request<pb::CreateRefundRequest>) -> Result<Response<pb::Refund>, Status> {
        let endpoint = "grpc payments.v1.PaymentService/CreateRefund";
        idempotent(self.service.store(), endpoint, request, |request, key| async move {
            let r = request.into_inner();
            let draft = RefundDraft {
                payment_order_id: r.payment_order_id,
                amount: Some(r.amount).filter(|a| !a.is_empty()),
                reason: r.reason,
            };
            Ok(Response::new(refund_pb(&self.service.create_refund(draft, key.as_deref()).await?)))
        })
        .await
    }

    async fn list_refunds(
        &self,
        request: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let id = parse_order_id(request.into_inner().payment_order_id)?;
        let views = self.service.refunds(&id).await?;
        Ok(Response::new(pb::ListRefundsResponse { refunds: views.iter().map(refund_pb).collect() }))
    }

    async fn get_seller_balance(
        &self,
        request: Request<pb::GetSellerBalanceRequest>,
    ) -> Result<Response<pb::SellerBalances>, Status> {
        Ok(Response::new(self.service.payouts()?.balances(&request.into_inner().seller_account).await?))
    }
}
