//! `paymentsctl checkout show <checkout_id>`: the checkout as the gateway reports it (REST).
//!
//! `paymentsctl checkout cancel <checkout_id> --reason <text> [--operator <name>]`: an
//! operator cancels a checkout that is not done yet, through the gateway's gRPC
//! `payments.v1.AdminService/CancelCheckout` (`--gateway-grpc`). Orders not charged yet fail
//! (`checkout_cancelled`); whatever was captured is given back. It prints the phase the
//! checkout was in. The gateway refuses (FAILED_PRECONDITION) a checkout that is done or already
//! cancelled and answers NOT_FOUND for an unknown one; both end the command with an error
//! (exit 1) that says so. [`cancel`] is what the command calls, for tests that drive the CLI
//! without spawning it.

use crate::admin::{self, AdminTarget};
use crate::cli::Globals;
use crate::commands::print_json;
use crate::commands::review::resolve_operator;
use crate::gateway::found;
use anyhow::bail;
use clap::{Args, Subcommand};
use payments_proto::payments_v1 as pb;
use serde_json::json;

/// `checkout` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CheckoutCommand {
    /// Print a checkout and its payment orders (GET /v1/checkouts/{checkout_id}).
    Show {
        /// The checkout id.
        checkout_id: String,
    },
    /// Cancel a checkout that is not done yet: uncharged orders fail, captures are given back
    /// (gRPC AdminService).
    Cancel(CancelArgs),
}

/// What an operator cancels, and why.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CancelArgs {
    /// The checkout to cancel.
    pub checkout_id: String,
    /// Why (kept in the orders' history and given to the refunds of anything captured).
    #[arg(long)]
    pub reason: String,
    /// Who cancels (default: `$USER`, else "operator").
    #[arg(long)]
    pub operator: Option<String>,
}

/// The request of a cancellation; a blank checkout id or reason is refused before any call.
pub fn cancel_request(checkout_id: &str, operator: &str, reason: &str) -> anyhow::Result<pb::CancelCheckoutRequest> {
    if checkout_id.trim().is_empty() {
        bail!("a checkout id is required");
    }
    if reason.trim().is_empty() {
        bail!("--reason must not be empty: it is kept in the orders' history");
    }
    Ok(pb::CancelCheckoutRequest {
        checkout_id: checkout_id.to_owned(),
        operator: operator.to_owned(),
        reason: reason.to_owned(),
    })
}

/// Cancels `checkout_id` through the gateway's AdminService (`target`); answers the phase
/// the checkout was in. Refusals come back as errors meant for the operator.
pub async fn cancel(
    target: &AdminTarget,
    checkout_id: &str,
    operator: &str,
    reason: &str,
) -> anyhow::Result<pb::CancelCheckoutResponse> {
    let request = cancel_request(checkout_id, operator, reason)?;
    let mut client = admin::connect(target).await?;
    match client.cancel_checkout(request).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(admin::refusal(&status, "the cancellation of", &format!("checkout {checkout_id}"))),
    }
}

/// Runs a `checkout` subcommand.
pub async fn run(globals: &Globals, cmd: CheckoutCommand) -> anyhow::Result<()> {
    match cmd {
        CheckoutCommand::Show { checkout_id } => {
            let gateway = globals.gateway_client()?;
            let answer = gateway.checkout(&checkout_id).await?;
            print_json(&found(answer, &format!("checkout {checkout_id}"))?)
        }
        CheckoutCommand::Cancel(args) => {
            let user = std::env::var("USER").ok();
            let operator = resolve_operator(args.operator.as_deref(), user.as_deref());
            let response = cancel(&globals.admin()?, &args.checkout_id, &operator, &args.reason).await?;
            print_json(&json!({
                "checkout_id": response.checkout_id,
                "cancelled": true,
                "operator": operator,
                "reason": args.reason,
                "phase_when_cancelled": response.phase,
                "workflow": globals.workflow_link(&response.checkout_id),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("paymentsctl").chain(args.iter().copied()))
    }

    fn checkout(cli: Cli) -> CheckoutCommand {
        match cli.command {
            Command::Checkout(cmd) => cmd,
            other => panic!("not a checkout command: {other:?}"),
        }
    }

    /// `cancel` parses the checkout, reason and optional operator, with `--gateway-grpc`
    /// before or after it; `show` still parses.
    #[test]
    fn cancel_parses() {
        let cli = parse(&[
            "--gateway-grpc",
            "http://gw:6000",
            "checkout",
            "cancel",
            "chk-1",
            "--reason",
            "buyer asked",
            "--operator",
            "alice",
        ])
        .expect("parses");
        assert_eq!(cli.globals.gateway_grpc, "http://gw:6000");
        assert_eq!(
            checkout(cli),
            CheckoutCommand::Cancel(CancelArgs {
                checkout_id: "chk-1".into(),
                reason: "buyer asked".into(),
                operator: Some("alice".into()),
            })
        );
        let cli = parse(&["checkout", "cancel", "chk-2", "--reason", "fraud", "--gateway-grpc", "http://x:1"])
            .expect("parses");
        assert_eq!(cli.globals.gateway_grpc, "http://x:1");
        let CheckoutCommand::Cancel(args) = checkout(cli) else { panic!("not a cancel") };
        assert_eq!(args.operator, None);
        assert_eq!(resolve_operator(args.operator.as_deref(), Some("bob")), "bob");
        assert_eq!(
            checkout(parse(&["checkout", "show", "c"]).unwrap()),
            CheckoutCommand::Show { checkout_id: "c".into() }
        );
    }

    /// `--reason` and the checkout id are required; blank ones are refused before any call.
    #[test]
    fn missing_or_blank_arguments_are_refused() {
        assert!(parse(&["checkout", "cancel", "chk-1"]).is_err(), "no --reason");
        assert!(parse(&["checkout", "cancel", "--reason", "x"]).is_err(), "no checkout id");
        assert!(cancel_request("chk-1", "alice", "  ").unwrap_err().to_string().contains("--reason"));
        assert!(cancel_request(" ", "alice", "r").unwrap_err().to_string().contains("checkout id"));
        let request = cancel_request("chk-1", "alice", "buyer asked").unwrap();
        assert_eq!(
            (request.checkout_id.as_str(), request.operator.as_str(), request.reason.as_str()),
            ("chk-1", "alice", "buyer asked")
        );
    }

    /// A blank reason fails without connecting (the address is unreachable on purpose).
    #[tokio::test]
    async fn cancel_refuses_before_connecting() {
        let e = cancel(&AdminTarget::new("http://127.0.0.1:1", "sk_test_x"), "chk-1", "alice", "").await.unwrap_err();
        assert!(e.to_string().contains("--reason"), "{e}");
    }
}
