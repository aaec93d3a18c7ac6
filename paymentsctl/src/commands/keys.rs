//! `paymentsctl keys bootstrap|create|list|revoke|roll`: API keys. `bootstrap` issues the first
//! admin key straight into the database (`--database-url`), and only while no active admin key
//! exists; every other subcommand goes through the gateway's AdminService with that admin key
//! (`PAYMENTS_ADMIN_KEY`). A key is printed once, when it is issued: store it then.

use crate::admin::{self, AdminTarget};
use crate::cli::Globals;
use crate::commands::{print_json, unix_millis};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use payments_proto::payments_v1 as pb;
use payments_store::{ApiKeyMode, ApiScope, Store, redact_url};
use serde_json::{Value, json};

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue the first admin key, directly in the database; refused once an active admin key
    /// exists.
    Bootstrap(BootstrapArgs),
    /// Issue a key (AdminService, admin key).
    Create(CreateArgs),
    /// List every key, revoked and expired ones too (never the keys themselves).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key_...`).
        key_id: String,
    },
    /// Replace a key: a new key with the same name and scopes; the old one keeps working for
    /// `--expires-in-secs`.
    Roll(RollArgs),
}

/// Arguments of `keys bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Who holds the key.
    #[arg(long, default_value = "bootstrap-admin")]
    pub name: String,
    /// Issue an `sk_live_` key, for a gateway with `PAYMENTS_ENV=production`.
    #[arg(long)]
    pub live: bool,
}

/// A key's scope, as given on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Create, read and refund payments.
    Payments,
    /// Operators' actions.
    Admin,
}

/// Arguments of `keys create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Who holds the key (e.g. `checkout-service`).
    #[arg(long)]
    pub name: String,
    /// Its scopes (repeat for both).
    #[arg(long = "scope", required = true, value_enum)]
    pub scopes: Vec<ScopeArg>,
}

/// Arguments of `keys roll`.
#[derive(Debug, Args)]
pub struct RollArgs {
    /// The key's id (`key_...`).
    pub key_id: String,
    /// How long the old key keeps working, in seconds (0 to 604800).
    #[arg(long, default_value_t = 24 * 3600)]
    pub expires_in_secs: u64,
}

/// Runs a `keys` subcommand.
pub async fn run(globals: &Globals, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Bootstrap(args) => bootstrap(globals, args).await,
        KeysCommand::Create(args) => {
            let scopes = args
                .scopes
                .iter()
                .map(|s| match s {
                    ScopeArg::Payments => ApiScope::Payments,
                    ScopeArg::Admin => ApiScope::Admin,
                })
                .map(|s| s.as_str().to_owned())
                .collect();
            let request = pb::CreateApiKeyRequest { name: args.name, scopes };
            print_json(&issued_json(&create(&globals.admin()?, request).await?))
        }
        KeysCommand::List { json } => {
            let keys = list(&globals.admin()?).await?;
            if json {
                return print_json(&Value::Array(keys.iter().map(key_json).collect()));
            }
            print!("{}", table(&keys));
            Ok(())
        }
        KeysCommand::Revoke { key_id } => print_json(&key_json(&revoke(&globals.admin()?, &key_id).await?)),
        KeysCommand::Roll(args) => {
            print_json(&issued_json(&roll(&globals.admin()?, &args.key_id, args.expires_in_secs).await?))
        }
    }
}

async fn bootstrap(globals: &Globals, args: BootstrapArgs) -> anyhow::Result<()> {
    let store = Store::connect(&globals.database_url)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&globals.database_url)))?;
    let mode = if args.live { ApiKeyMode::Live } else { ApiKeyMode::Test };
    let result = store.bootstrap_admin_key(&args.name, mode).await;
    store.close().await;
    let issued = result?;
    print_json(&json!({
        "key_id": issued.record.key_id,
        "name": issued.record.name,
        "scopes": ["admin"],
        "mode": mode.as_str(),
        "secret": issued.secret,
    }))
}

/// Issues a key.
pub async fn create(target: &AdminTarget, request: pb::CreateApiKeyRequest) -> anyhow::Result<pb::IssuedApiKey> {
    let mut client = admin::connect(target).await?;
    client
        .create_api_key(request)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| admin::refusal(&s, "the creation of", "an API key"))
}

/// Every key, newest first.
pub async fn list(target: &AdminTarget) -> anyhow::Result<Vec<pb::ApiKey>> {
    let mut client = admin::connect(target).await?;
    match client.list_api_keys(pb::ListApiKeysRequest {}).await {
        Ok(r) => Ok(r.into_inner().api_keys),
        Err(s) => Err(admin::refusal(&s, "the listing of", "API keys")),
    }
}

/// Revokes a key.
pub async fn revoke(target: &AdminTarget, key_id: &str) -> anyhow::Result<pb::ApiKey> {
    let mut client = admin::connect(target).await?;
    let request = pb::RevokeApiKeyRequest { key_id: key_id.to_owned() };
    client
        .revoke_api_key(request)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| admin::refusal(&s, "the revocation of", &format!("API key {key_id}")))
}

/// Rolls a key.
pub async fn roll(target: &AdminTarget, key_id: &str, expires_in_secs: u64) -> anyhow::Result<pb::IssuedApiKey> {
    let mut client = admin::connect(target).await?;
    let request = pb::RollApiKeyRequest { key_id: key_id.to_owned(), expires_in_secs };
    client
        .roll_api_key(request)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| admin::refusal(&s, "the roll of", &format!("API key {key_id}")))
}

/// A stored key as JSON.
pub fn key_json(k: &pb::ApiKey) -> Value {
    let time = |ms: i64| if ms == 0 { Value::Null } else { json!(ms) };
    json!({
        "key_id": k.key_id,
        "name": k.name,
        "scopes": k.scopes,
        "mode": k.mode,
        "key": k.redacted,
        "status": k.status,
        "created_at_ms": k.created_at_ms,
        "expires_at_ms": time(k.expires_at_ms),
        "revoked_at_ms": time(k.revoked_at_ms),
        "rolled_to": if k.rolled_to.is_empty() { Value::Null } else { json!(k.rolled_to) },
    })
}

/// An issued key as JSON, the secret included (shown this once).
pub fn issued_json(k: &pb::IssuedApiKey) -> Value {
    let mut value = k.api_key.as_ref().map(key_json).unwrap_or_else(|| json!({}));
    value["secret"] = json!(k.secret);
    value
}

/// One line per key.
pub fn table(keys: &[pb::ApiKey]) -> String {
    let now = unix_millis();
    let mut out =
        format!("{:<22} {:<8} {:<16} {:<24} {:<20} {}\n", "KEY ID", "STATUS", "SCOPES", "KEY", "NAME", "EXPIRES IN");
    for k in keys {
        let expires = match k.expires_at_ms {
            0 => "-".to_owned(),
            at if at <= now => "expired".to_owned(),
            at => format!("{} s", (at - now) / 1000),
        };
        out.push_str(&format!(
            "{:<22} {:<8} {:<16} {:<24} {:<20} {}\n",
            k.key_id,
            k.status,
            k.scopes.join(","),
            k.redacted,
            k.name,
            expires
        ));
    }
    out
}
