//! Connecting to Temporal: plain (a local dev server), or secured as Temporal Cloud and secured
//! clusters need: TLS with the server's CA, mutual TLS with a client certificate and key, and/or
//! an API key (sent as a bearer token by the SDK).

use anyhow::Context;
use payments_activities::psp::SecretKey;
use std::path::PathBuf;
use std::time::Duration;
use temporalio_client::{Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, TlsOptions, Url};

/// Time allowed to open the connection; a dev server that is not up by then is reported.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// How to reach a secured Temporal frontend (`TEMPORAL_TLS*`, `TEMPORAL_API_KEY`). All unset:
/// plaintext, as the local dev server speaks.
#[derive(Clone, Default, clap::Args)]
pub struct TemporalSecurity {
    /// Use TLS (implied by any of the settings below and by an `https://` address).
    #[arg(long, env = "TEMPORAL_TLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub temporal_tls: bool,
    /// PEM file of the CA that signed the server's certificate (default: the system's roots,
    /// right for Temporal Cloud).
    #[arg(long, env = "TEMPORAL_TLS_CA")]
    pub temporal_tls_ca: Option<PathBuf>,
    /// PEM file of this client's certificate, for mutual TLS (with `TEMPORAL_TLS_KEY`).
    #[arg(long, env = "TEMPORAL_TLS_CERT")]
    pub temporal_tls_cert: Option<PathBuf>,
    /// PEM file of this client's private key, for mutual TLS (with `TEMPORAL_TLS_CERT`).
    #[arg(long, env = "TEMPORAL_TLS_KEY")]
    pub temporal_tls_key: Option<PathBuf>,
    /// Name to verify the server's certificate against (default: the address's host).
    #[arg(long, env = "TEMPORAL_TLS_SERVER_NAME")]
    pub temporal_tls_server_name: Option<String>,
    /// API key of the namespace (Temporal Cloud). Never logged.
    #[arg(long, env = "TEMPORAL_API_KEY", hide_env_values = true)]
    pub temporal_api_key: Option<SecretKey>,
}

impl std::fmt::Debug for TemporalSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporalSecurity")
            .field("tls", &self.uses_tls())
            .field("ca", &self.temporal_tls_ca)
            .field("cert", &self.temporal_tls_cert)
            .field("key", &self.temporal_tls_key)
            .field("server_name", &self.temporal_tls_server_name)
            .field("api_key", &self.temporal_api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl TemporalSecurity {
    /// Whether the connection uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.temporal_tls
            || self.temporal_tls_ca.is_some()
            || self.temporal_tls_cert.is_some()
            || self.temporal_tls_key.is_some()
            || self.temporal_tls_server_name.is_some()
            || self.temporal_api_key.is_some()
    }

    /// The SDK's TLS options, reading the PEM files; `None` for plaintext.
    pub fn tls_options(&self) -> anyhow::Result<Option<TlsOptions>> {
        if !self.uses_tls() {
            return Ok(None);
        }
        let read = |var: &str, path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("{var}: reading {}", path.display()))
        };
        let client = match (&self.temporal_tls_cert, &self.temporal_tls_key) {
            (Some(cert), Some(key)) => Some(
                ClientTlsOptions::builder()
                    .client_cert(read("TEMPORAL_TLS_CERT", cert)?)
                    .client_private_key(read("TEMPORAL_TLS_KEY", key)?)
                    .build(),
            ),
            (None, None) => None,
            _ => anyhow::bail!("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mutual TLS needs both)"),
        };
        let ca = self.temporal_tls_ca.as_ref().map(|p| read("TEMPORAL_TLS_CA", p)).transpose()?;
        Ok(Some(
            TlsOptions::builder()
                .maybe_server_root_ca_cert(ca)
                .maybe_domain(self.temporal_tls_server_name.clone())
                .maybe_client_tls_options(client)
                .build(),
        ))
    }
}

/// A client bound to `namespace` at `address` (e.g. `http://127.0.0.1:7233`), plaintext.
pub async fn connect(address: &str, namespace: &str) -> anyhow::Result<Client> {
    connect_secured(address, namespace, &TemporalSecurity::default()).await
}

/// A client bound to `namespace` at `address`, with `security` (TLS turns an `http://` address
/// into `https://`).
pub async fn connect_secured(address: &str, namespace: &str, security: &TemporalSecurity) -> anyhow::Result<Client> {
    let mut url = Url::parse(address).with_context(|| format!("TEMPORAL_ADDRESS {address:?} is not a URL"))?;
    let tls = security.tls_options()?;
    if tls.is_some() && url.scheme() == "http" {
        url.set_scheme("https").map_err(|()| anyhow::anyhow!("TEMPORAL_ADDRESS {address:?}: cannot use TLS"))?;
    }
    let options = ConnectionOptions::new(url)
        .identity(format!("payments@{}", std::process::id()))
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .maybe_tls_options(tls)
        .maybe_api_key(security.temporal_api_key.as_ref().map(|k| k.expose().to_owned()))
        .build();
    let connection =
        Connection::connect(options).await.with_context(|| format!("connecting to Temporal at {address}"))?;
    Ok(Client::new(connection, ClientOptions::new(namespace.to_owned()).build())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plaintext unless something asks for TLS; half a client pair is refused by name; the API
    /// key never shows in Debug.
    #[test]
    fn tls_settings() {
        let none = TemporalSecurity::default();
        assert!(none.tls_options().unwrap().is_none());
        let cloud =
            TemporalSecurity { temporal_api_key: Some(SecretKey::new("tcld_secret".to_owned())), ..Default::default() };
        assert!(cloud.tls_options().unwrap().is_some(), "an API key implies TLS");
        assert!(!format!("{cloud:?}").contains("tcld_secret"));
        let half = TemporalSecurity { temporal_tls_cert: Some("/nope.pem".into()), ..Default::default() };
        assert!(half.tls_options().unwrap_err().to_string().contains("TEMPORAL_TLS_KEY"));
        let missing = TemporalSecurity { temporal_tls_ca: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        assert!(missing.tls_options().unwrap_err().to_string().contains("TEMPORAL_TLS_CA"));
    }
}
