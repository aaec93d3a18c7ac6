//! Gateway configuration: command-line flags, each overridable by an environment variable.

use clap::Parser;

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
    /// Temporal frontend address.
    #[arg(
        long,
        env = "TEMPORAL_ADDRESS",
        default_value = "http://127.0.0.1:7233"
    )]
    pub temporal_address: String,
    /// Temporal namespace.
    #[arg(long, env = "TEMPORAL_NAMESPACE", default_value = "default")]
    pub temporal_namespace: String,
    /// Task queue the checkout workflows are started on (the worker polls it).
    #[arg(long, env = "PAYMENTS_TASK_QUEUE", default_value = "checkout")]
    pub task_queue: String,
    /// Payments database, shared with the worker.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://payments.db?mode=rwc"
    )]
    pub database_url: String,
}

impl GatewayConfig {
    /// Defaults, as if no flag or variable were given.
    pub fn defaults() -> Self {
        GatewayConfig::parse_from(["payments-gateway"])
    }
}
