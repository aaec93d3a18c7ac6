//! `payments-gateway`: binds the REST and gRPC ports and serves until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    payments_worker::telemetry::init();
    let config = payments_gateway::GatewayConfig::parse();
    let rest =
        TcpListener::bind(&config.rest_listen).await.with_context(|| format!("binding {}", config.rest_listen))?;
    let grpc =
        TcpListener::bind(&config.grpc_listen).await.with_context(|| format!("binding {}", config.grpc_listen))?;
    payments_gateway::run(config, rest, grpc, payments_worker::signal::shutdown()).await
}
