//! Gateway configuration: command-line flags, each overridable by an environment variable.

use clap::Parser;
use payments_worker::config::SharedConfig;

/// Gateway configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "payments-gateway",
    about = "REST and gRPC API: stores checkouts and starts their workflows"
)]
pub struct GatewayConfig {
    /// REST listen address.
    #[arg(long, env = "GATEWAY_REST_LISTEN", default_value = "127.0.0.1:8080")]
    pub rest_listen: String,
    /// gRPC listen address.
    #[arg(long, env = "GATEWAY_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    pub grpc_listen: String,
    /// Temporal and database, as the worker's.
    #[command(flatten)]
    pub shared: SharedConfig,
}

impl GatewayConfig {
    /// Defaults, as if no flag or variable were given.
    pub fn defaults() -> Self {
        GatewayConfig::parse_from(["payments-gateway"])
    }
}
