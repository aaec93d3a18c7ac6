//! `paymentsctl db migrate [--grant-to ROLE]`: applies the schema migrations as the schema
//! owner (`--database-url`) and, on PostgreSQL, grants the services' role row access to every
//! table (README "Security": the services run as that role, which cannot alter, drop, disable
//! the triggers of, or TRUNCATE the tables). Run it at every deploy, before the services.

use crate::cli::Globals;
use anyhow::Context;
use clap::{Args, Subcommand};
use payments_store::{Store, redact_url};

/// `db` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (as the schema owner) and grant the service role.
    Migrate(MigrateArgs),
}

/// Arguments of `db migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The role the worker and gateway connect as (PostgreSQL): granted SELECT, INSERT,
    /// UPDATE, DELETE on every table, nothing else.
    #[arg(long)]
    pub grant_to: Option<String>,
}

/// Runs a `db` subcommand.
pub async fn run(globals: &Globals, cmd: DbCommand) -> anyhow::Result<()> {
    let DbCommand::Migrate(args) = cmd;
    let store = Store::connect(&globals.database_url)
        .await
        .with_context(|| format!("migrating {}", redact_url(&globals.database_url)))?;
    let result = match &args.grant_to {
        Some(role) => store.grant_service_role(role).await.with_context(|| format!("granting {role}")),
        None => Ok(()),
    };
    store.close().await;
    result?;
    println!("schema up to date{}", args.grant_to.map(|r| format!("; {r} granted row access")).unwrap_or_default());
    Ok(())
}
