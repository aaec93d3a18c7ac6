//! `paymentsctl review approve|reject <checkout_id> --reason <text> [--operator <name>]`: an
//! operator's decision on a checkout the risk rules held for review, delivered through the
//! gateway's gRPC `payments.v1.AdminService/DecideReview` (`--gateway-grpc`).
//!
//! Approving lets the checkout's orders be charged; rejecting fails every order with
//! `risk_review_rejected`. The gateway refuses (INVALID_ARGUMENT) a checkout that is not
//! waiting for a decision, and answers NOT_FOUND for an unknown one; both end the command
//! with an error (exit 1) that says so.

use crate::admin::{self, AdminTarget};
use crate::cli::Globals;
use crate::commands::print_json;
use anyhow::bail;
use clap::{Args, Subcommand};
use payments_proto::payments_v1::{DecideReviewRequest, DecideReviewResponse};
use serde_json::json;

/// Operator name when neither `--operator` nor a non-empty `$USER` is given.
pub const DEFAULT_OPERATOR: &str = "operator";

/// `review` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ReviewCommand {
    /// Approve a checkout held for review: its payment orders are charged.
    Approve(DecisionArgs),
    /// Reject a checkout held for review: every payment order fails (`risk_review_rejected`).
    Reject(DecisionArgs),
}

/// What an operator decides on.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DecisionArgs {
    /// The checkout held for review.
    pub checkout_id: String,
    /// Why (kept in the checkout's history).
    #[arg(long)]
    pub reason: String,
    /// Who decides (default: `$USER`, else "operator").
    #[arg(long)]
    pub operator: Option<String>,
}

impl ReviewCommand {
    /// Whether this is an approval, and its arguments.
    pub fn decision(&self) -> (bool, &DecisionArgs) {
        match self {
            ReviewCommand::Approve(args) => (true, args),
            ReviewCommand::Reject(args) => (false, args),
        }
    }
}

/// The operator name: the flag, else `user` (`$USER`) when not blank, else [`DEFAULT_OPERATOR`].
pub fn resolve_operator(flag: Option<&str>, user: Option<&str>) -> String {
    [flag, user].into_iter().flatten().map(str::trim).find(|s| !s.is_empty()).unwrap_or(DEFAULT_OPERATOR).to_owned()
}

/// The request the command sends.
pub fn request(cmd: &ReviewCommand, user: Option<&str>) -> anyhow::Result<DecideReviewRequest> {
    let (approve, args) = cmd.decision();
    if args.checkout_id.trim().is_empty() {
        bail!("a checkout id is required");
    }
    if args.reason.trim().is_empty() {
        bail!("--reason must not be empty: it is kept in the checkout's history");
    }
    Ok(DecideReviewRequest {
        checkout_id: args.checkout_id.clone(),
        approve,
        reason: args.reason.clone(),
        operator: resolve_operator(args.operator.as_deref(), user),
    })
}

/// Sends `request` to the gateway's AdminService (`target`). Refusals come back as errors
/// meant for the operator.
pub async fn decide(target: &AdminTarget, request: DecideReviewRequest) -> anyhow::Result<DecideReviewResponse> {
    let subject = format!("checkout {}", request.checkout_id);
    let mut client = admin::connect(target).await?;
    match client.decide_review(request).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(admin::refusal(&status, "the decision on", &subject)),
    }
}

/// Runs a `review` subcommand: delivers the decision and prints what was delivered.
pub async fn run(globals: &Globals, cmd: ReviewCommand) -> anyhow::Result<()> {
    let user = std::env::var("USER").ok();
    let request = request(&cmd, user.as_deref())?;
    let (approve, operator, reason) = (request.approve, request.operator.clone(), request.reason.clone());
    let response = decide(&globals.admin()?, request).await?;
    print_json(&json!({
        "checkout_id": response.checkout_id,
        "decision": if approve { "approved" } else { "rejected" },
        "operator": operator,
        "reason": reason,
        "phase_when_decided": response.phase,
        "workflow": globals.workflow_link(&response.checkout_id),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("paymentsctl").chain(args.iter().copied()))
    }

    fn review(cli: Cli) -> ReviewCommand {
        match cli.command {
            Command::Review(cmd) => cmd,
            other => panic!("not a review command: {other:?}"),
        }
    }

    /// `approve` and `reject` parse into a decision with the checkout, reason and operator,
    /// and `--gateway-grpc` (a global flag) is accepted before or after the command.
    #[test]
    fn approve_and_reject_parse() {
        let cli = parse(&[
            "--gateway-grpc",
            "http://gw:6000",
            "review",
            "approve",
            "chk-1",
            "--reason",
            "known buyer",
            "--operator",
            "alice",
        ])
        .expect("parses");
        assert_eq!(cli.globals.gateway_grpc, "http://gw:6000");
        let cmd = review(cli);
        assert_eq!(
            cmd,
            ReviewCommand::Approve(DecisionArgs {
                checkout_id: "chk-1".into(),
                reason: "known buyer".into(),
                operator: Some("alice".into()),
            })
        );
        let req = request(&cmd, Some("bob")).unwrap();
        assert_eq!((req.checkout_id.as_str(), req.approve, req.operator.as_str()), ("chk-1", true, "alice"));

        let cli = parse(&["review", "reject", "chk-2", "--reason", "stolen card", "--gateway-grpc", "http://x:1"])
            .expect("parses");
        assert_eq!(cli.globals.gateway_grpc, "http://x:1");
        let req = request(&review(cli), Some("bob")).unwrap();
        assert_eq!(
            (req.checkout_id.as_str(), req.approve, req.reason.as_str(), req.operator.as_str()),
            ("chk-2", false, "stolen card", "bob")
        );
    }

    /// The operator defaults to `$USER`, then to "operator" (blank values do not count).
    #[test]
    fn operator_defaults() {
        assert_eq!(resolve_operator(Some("alice"), Some("bob")), "alice");
        assert_eq!(resolve_operator(None, Some("bob")), "bob");
        assert_eq!(resolve_operator(None, Some("  ")), DEFAULT_OPERATOR);
        assert_eq!(resolve_operator(None, None), DEFAULT_OPERATOR);
        assert_eq!(resolve_operator(Some(""), None), DEFAULT_OPERATOR);
    }

    /// `--reason` is required and must not be blank; the checkout id is required; an unknown
    /// decision is refused.
    #[test]
    fn missing_or_blank_arguments_are_refused() {
        assert!(parse(&["review", "approve", "chk-1"]).is_err(), "no --reason");
        assert!(parse(&["review", "approve", "--reason", "x"]).is_err(), "no checkout id");
        assert!(parse(&["review", "maybe", "chk-1", "--reason", "x"]).is_err(), "no such decision");
        let cli = parse(&["review", "reject", "chk-1", "--reason", "  "]).expect("parses");
        assert!(request(&review(cli), None).unwrap_err().to_string().contains("--reason"));
    }

    /// Without the flag the gRPC address is the gateway's default listen address.
    #[test]
    fn grpc_address_default() {
        // The environment may override it; only check the default when it does not.
        if std::env::var_os("PAYMENTS_GATEWAY_GRPC").is_none() {
            let cli = parse(&["review", "approve", "c", "--reason", "r"]).unwrap();
            assert_eq!(cli.globals.gateway_grpc, "http://127.0.0.1:50051");
        }
    }
}
