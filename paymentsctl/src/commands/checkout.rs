//! `paymentsctl checkout show <checkout_id>`: the checkout as the gateway reports it.

use crate::cli::Globals;
use crate::commands::print_json;
use crate::gateway::{Gateway, found};
use clap::Subcommand;

/// `checkout` subcommands.
#[derive(Debug, Subcommand)]
pub enum CheckoutCommand {
    /// Print a checkout and its payment orders (GET /v1/checkouts/{checkout_id}).
    Show {
        /// The checkout id.
        checkout_id: String,
    },
}

/// Runs a `checkout` subcommand.
pub async fn run(globals: &Globals, cmd: CheckoutCommand) -> anyhow::Result<()> {
    match cmd {
        CheckoutCommand::Show { checkout_id } => {
            let gateway = Gateway::new(&globals.gateway)?;
            let answer = gateway.checkout(&checkout_id).await?;
            print_json(&found(answer, &format!("checkout {checkout_id}"))?)
        }
    }
}
