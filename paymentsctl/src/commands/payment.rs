//! `paymentsctl payment show <payment_order_id>`: one payment order as the gateway reports it.

use crate::cli::Globals;
use crate::commands::print_json;
use crate::gateway::found;
use clap::Subcommand;

/// `payment` subcommands.
#[derive(Debug, Subcommand)]
pub enum PaymentCommand {
    /// Print a payment order (GET /v1/payments/{payment_order_id}).
    Show {
        /// The payment order id.
        payment_order_id: String,
    },
}

/// Runs a `payment` subcommand.
pub async fn run(globals: &Globals, cmd: PaymentCommand) -> anyhow::Result<()> {
    match cmd {
        PaymentCommand::Show { payment_order_id } => {
            let gateway = globals.gateway_client()?;
            let answer = gateway.payment_order(&payment_order_id).await?;
            print_json(&found(answer, &format!("payment order {payment_order_id}"))?)
        }
    }
}
