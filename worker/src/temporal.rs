//! Connecting to Temporal.

use anyhow::Context;
use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};

/// Time allowed to open the connection; a dev server that is not up by then is reported.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// A client bound to `namespace` at `address` (e.g. `http://127.0.0.1:7233`).
pub async fn connect(address: &str, namespace: &str) -> anyhow::Result<Client> {
    let url = Url::parse(address).with_context(|| format!("TEMPORAL_ADDRESS {address:?} is not a URL"))?;
    let options = ConnectionOptions::new(url)
        .identity(format!("payments@{}", std::process::id()))
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .build();
    let connection =
        Connection::connect(options).await.with_context(|| format!("connecting to Temporal at {address}"))?;
    Ok(Client::new(connection, ClientOptions::new(namespace.to_owned()).build())?)
}
