//! `payments-worker`: parses configuration and runs the worker until Ctrl-C or SIGTERM.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    payments_worker::telemetry::init();
    let config = payments_worker::WorkerConfig::parse();
    payments_worker::run(config, payments_worker::signal::shutdown()).await
}
