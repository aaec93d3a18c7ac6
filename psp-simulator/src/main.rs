//! `psp-simulator` binary: parses configuration, binds, and serves until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use psp_simulator::{IDEMPOTENCY_KEYS_MAX_DEFAULT, SimConfig};
use tracing_subscriber::EnvFilter;

/// Local PSP simulator speaking Stripe's PaymentIntents wire format.
#[derive(Debug, Parser)]
#[command(name = "psp-simulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PSP_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,

    /// Most idempotency keys remembered at once (oldest forgotten first).
    #[arg(long, env = "PSP_SIM_IDEMPOTENCY_KEYS_MAX", default_value_t = IDEMPOTENCY_KEYS_MAX_DEFAULT)]
    idempotency_keys_max: usize,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut config = SimConfig::new();
    config.idempotency_keys_max = args.idempotency_keys_max;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    psp_simulator::run(listener, config, shutdown_signal()).await
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
