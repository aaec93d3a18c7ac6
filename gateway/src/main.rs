//! `payments-gateway`: binds the REST and gRPC ports and serves until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    payments_worker::telemetry::init();
    let config = payments_gateway::GatewayConfig::parse();
    let rest = TcpListener::bind(&config.rest_listen)
        .await
        .with_context(|| format!("binding {}", config.rest_listen))?;
    let grpc = TcpListener::bind(&config.grpc_listen)
        .await
        .with_context(|| format!("binding {}", config.grpc_listen))?;
    payments_gateway::run(config, rest, grpc, shutdown_signal()).await
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
