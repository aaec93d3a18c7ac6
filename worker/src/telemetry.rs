//! Logging for our binaries: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).

/// Installs the subscriber once; later calls are ignored.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}
