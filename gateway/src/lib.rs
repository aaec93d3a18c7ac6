//! The gateway: the platform's edges. REST JSON (the seeds' API) and tonic gRPC (the same
//! operations, with server reflection and health) in front of one [`service::PaymentsService`]
//! that stores a checkout and starts its Temporal workflow. It never moves money itself.
//!
//! Layout: `config.rs` (flags and environment), `auth.rs` (API keys and scopes on every route
//! and method), `limits.rs` (rate limits), `http_server.rs` (the REST server: header-read and
//! request timeouts, the concurrency limit), `api_keys.rs` (operators' key management), `fee_rates.rs` (operators' fee rates), `payouts.rs` (seller balances, sellers and payouts for operators, the payout webhook signals), `recon.rs` (reconciliation for operators: runs, breaks, settlement imports) and `recon_rest.rs` (its REST twins), `service.rs` (create/read shared by both APIs,
//! and messages to running checkouts: confirmations, review decisions, cancellations),
//! `rest.rs` (axum routes), `refunds.rs` (refund requests: validation, storing, starting their
//! workflow, REST routes), `start_sweep.rs` (the sweep that starts checkouts and refunds whose
//! workflow start was lost), `dead_letters.rs` (operators' retry and resolve of parked steps),
//! `idempotency.rs` (Idempotency-Key replay), `grpc.rs` (tonic services), `grpc_edges.rs`
//! (decode failures as INVALID_ARGUMENT, message and time limits), `pages.rs` (the
//! hosted-payment pages), `webhooks.rs` (the PSP webhook-to-signal bridge), `views.rs` (wire
//! views of records), `probes.rs` (readiness and liveness), `error.rs` (the one mapping of errors to HTTP and gRPC statuses),
//! `main.rs` (thin).

pub mod api_keys;
pub mod auth;
pub mod config;
pub mod dead_letters;
pub mod error;
pub mod fee_rates;
pub mod grpc;
pub mod grpc_edges;
pub mod grpc_idempotency;
pub mod http_server;
pub mod idempotency;
pub mod limits;
pub mod pages;
pub mod payouts;
pub mod probes;
pub mod recon;
pub mod recon_rest;
pub mod refunds;
pub mod rest;
pub mod service;
pub mod start_sweep;
pub mod views;
pub mod webhooks;

pub use config::GatewayConfig;

use anyhow::Context;
use payments_proto::payments_v1::admin_service_server::AdminServiceServer;
use payments_proto::payments_v1::payment_service_server::PaymentServiceServer;
use payments_store::Store;
use service::PaymentsService;
use std::future::Future;
use tokio::net::TcpListener;

/// Serves REST on `rest` and gRPC on `grpc` until `shutdown` resolves.
pub async fn run(
    config: GatewayConfig,
    rest: TcpListener,
    grpc: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    payments_worker::production::refuse_test_defaults(config.shared.env, config.production_problems())?;
    let holds = config.shared.payouts.holds()?;
    let store = config.shared.store().await?;
    let temporal = config.shared.temporal().await?;
    let desk = payouts::PayoutDesk::new(
        store.clone(),
        temporal.clone(),
        config.shared.task_queue.clone(),
        config.shared.payouts.clone(),
        holds,
        config.payout_providers.providers()?,
    );
    let service = PaymentsService::new(store.clone(), temporal, config.shared.task_queue.clone(), config.waits())
        .with_payouts(desk);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let purge = tokio::spawn(idempotency::purge_loop(store.clone(), stopped(stop_rx.clone())));
    tokio::spawn(webhooks::purge_loop(store.clone(), config.webhook_retention_days, stopped(stop_rx.clone())));
    let repair = tokio::spawn(start_sweep::sweep_loop(
        service.clone(),
        std::time::Duration::from_secs(config.start_sweep_secs),
        stopped(stop_rx.clone()),
    ));
    // Tokens stored in plain text by older versions are sealed, in batches, in the background.
    tokio::spawn(seal_legacy_tokens(store.clone()));

    tracing::info!(rest = %rest.local_addr()?, grpc = %grpc.local_addr()?, "gateway listening");
    let limits = limits::Limits::new(config.rates());
    tokio::spawn(limits.clone().sweep_loop(stopped(stop_rx.clone())));
    let auth = auth::Authenticator::new(store.clone(), config.shared.env.api_key_mode()).with_limits(limits.clone());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<PaymentServiceServer<grpc::GrpcPayments>>().await;
    let mut grpc_builder = tonic::transport::Server::builder()
        .timeout(grpc_edges::GRPC_CALL_TIMEOUT)
        .layer(tower::util::MapResponseLayer::new(grpc_edges::decode_errors_are_invalid_argument))
        .layer(auth::GrpcAuthLayer::new(auth.clone()));
    let payments = PaymentServiceServer::new(grpc::GrpcPayments::new(service.clone(), config.public_url.clone()))
        .max_decoding_message_size(grpc_edges::GRPC_MESSAGE_BYTES_MAX);
    let admin = AdminServiceServer::new(grpc::GrpcAdmin::new(service.clone(), config.shared.env.api_key_mode()))
        .max_decoding_message_size(grpc_edges::GRPC_MESSAGE_BYTES_MAX);
    let mut grpc_router = grpc_builder.add_service(health).add_service(payments).add_service(admin);
    if config.grpc_reflection {
        grpc_router = grpc_router
            .add_service(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(payments_proto::FILE_DESCRIPTOR_SET)
                    .build_v1()?,
            )
            .add_service(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(payments_proto::FILE_DESCRIPTOR_SET)
                    .build_v1alpha()?,
            );
    }
    let grpc_server = grpc_router.serve_with_incoming_shutdown(tokio_stream_listener(grpc), stopped(stop_rx.clone()));

    let serve_limits = config.serve_limits();
    let app = routes(&config, service, auth, limits.hints.clone()).into_router();
    let app = app.layer(axum::middleware::from_fn_with_state(limits, limits::per_ip));
    let app = http_server::limited(app, &serve_limits);
    let rest_server = http_server::serve(rest, app, &serve_limits, stopped(stop_rx));
    let (rest_result, grpc_result) = tokio::join!(rest_server, grpc_server);
    rest_result.context("REST server")?;
    grpc_result.context("gRPC server")?;
    // Stopped by the same signal; they end at their next await point.
    let _ = purge.await;
    let _ = repair.await;
    store.close().await;
    Ok(())
}

/// Every REST route of the gateway, each with its access decision (`auth::RouteTable`).
pub fn routes(
    config: &GatewayConfig,
    service: PaymentsService,
    auth: auth::Authenticator,
    hints: limits::Limiter<String>,
) -> auth::RouteTable {
    let pages = pages::PageConfig {
        public_url: config.public_url.clone(),
        toss_js_url: config.toss_js_url.clone(),
        toss_client_key: config.toss_client_key.clone(),
    };
    let secrets = webhooks::WebhookSecrets {
        stripe: config.stripe_webhook_secret.clone(),
        toss_payout: config.toss_webhook_secret.clone(),
    };
    let table = auth::RouteTable::new(auth);
    let table = rest::routes(table, service.clone(), config.public_url.clone());
    let table = pages::routes(table, service.clone(), pages);
    webhooks::routes(table, service, secrets, hints)
}

/// Seals every payment token older versions stored in plain text.
async fn seal_legacy_tokens(store: Store) {
    loop {
        match store.seal_legacy_tokens().await {
            Ok(0) => return,
            Ok(sealed) => tracing::info!(sealed, "payment tokens stored in plain text by an older version sealed"),
            Err(e) => {
                tracing::warn!(error = %e, "sealing older payment tokens failed; the next gateway start retries");
                return;
            }
        }
    }
}

/// Adapts a bound listener to the stream of connections tonic accepts.
fn tokio_stream_listener(
    listener: TcpListener,
) -> impl futures::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |listener| async move {
        let conn = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((conn, listener))
    })
}
