//! `paymentsctl refund create|list|show`: refunds of captured payment orders through the
//! gateway's REST API (`--gateway`).
//!
//! `create` asks for a refund (`--amount` in the order's currency, default everything still
//! refundable) and prints it as stored: REQUESTED, its workflow `refund-{refund_id}` then
//! refunds at the PSP and books it. Without `--idempotency-key` every call refunds again.

use crate::cli::Globals;
use crate::commands::print_json;
use crate::gateway::{Gateway, found};
use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

/// `refund` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum RefundCommand {
    /// Refund (part of) a captured payment order (POST /v1/payments/{id}/refunds).
    Create(CreateArgs),
    /// Every refund of a payment order (GET /v1/payments/{id}/refunds).
    List {
        /// The payment order id.
        payment_order_id: String,
    },
    /// One refund (GET /v1/refunds/{refund_id}).
    Show {
        /// The refund id (`{payment_order_id}:refund:{n}`).
        refund_id: String,
    },
}

/// `refund create` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CreateArgs {
    /// The payment order to refund.
    pub payment_order_id: String,
    /// Decimal amount in the order's currency (e.g. 12.50); default: everything still refundable.
    #[arg(long)]
    pub amount: Option<String>,
    /// Why (sent to the PSP; at most 500 characters).
    #[arg(long)]
    pub reason: String,
    /// Idempotency-Key: repeating the command with the same key replays the first answer.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// The request body of a refund: `{"amount"?, "reason"}`. A blank reason is refused here.
pub fn body(amount: Option<&str>, reason: &str) -> anyhow::Result<Value> {
    if reason.trim().is_empty() {
        bail!("--reason must not be empty: it goes to the PSP with the refund");
    }
    let mut body = Map::new();
    if let Some(amount) = amount {
        body.insert("amount".into(), Value::String(amount.to_owned()));
    }
    body.insert("reason".into(), Value::String(reason.to_owned()));
    Ok(Value::Object(body))
}

/// Asks the gateway for a refund; answers the refund as stored (REQUESTED).
pub async fn create(
    gateway: &Gateway,
    payment_order_id: &str,
    amount: Option<&str>,
    reason: &str,
    idempotency_key: Option<&str>,
) -> anyhow::Result<Value> {
    let body = body(amount, reason)?;
    let answer = gateway.create_refund(payment_order_id, &body, idempotency_key).await?;
    found(answer, &format!("payment order {payment_order_id}"))
}

/// Every refund of an order, oldest first.
pub async fn list(gateway: &Gateway, payment_order_id: &str) -> anyhow::Result<Vec<Value>> {
    let answer = gateway.refunds(payment_order_id).await?;
    let body = found(answer, &format!("payment order {payment_order_id}"))?;
    match body.get("refunds") {
        Some(Value::Array(refunds)) => Ok(refunds.clone()),
        _ => bail!("the gateway's refund list has no \"refunds\" array: {body}"),
    }
}

/// Runs a `refund` subcommand and prints its answer.
pub async fn run(globals: &Globals, cmd: RefundCommand) -> anyhow::Result<()> {
    match cmd {
        RefundCommand::Create(a) => print_json(
            &create(
                &globals.gateway_client()?,
                &a.payment_order_id,
                a.amount.as_deref(),
                &a.reason,
                a.idempotency_key.as_deref(),
            )
            .await?,
        ),
        RefundCommand::List { payment_order_id } => {
            print_json(&Value::Array(list(&globals.gateway_client()?, &payment_order_id).await?))
        }
        RefundCommand::Show { refund_id } => {
            let answer = globals.gateway_client()?.refund(&refund_id).await?;
            print_json(&found(answer, &format!("refund {refund_id}"))?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn parse(args: &[&str]) -> Result<RefundCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("paymentsctl").chain(args.iter().copied()))?;
        match cli.command {
            Command::Refund(cmd) => Ok(cmd),
            other => panic!("not a refund command: {other:?}"),
        }
    }

    /// `create` takes an optional amount and key and a required reason; `list` and `show`
    /// take an id.
    #[test]
    fn commands_parse() {
        let cmd = parse(&["refund", "create", "po-1", "--amount", "12.50", "--reason", "damaged"]).unwrap();
        let expected = CreateArgs {
            payment_order_id: "po-1".into(),
            amount: Some("12.50".into()),
            reason: "damaged".into(),
            idempotency_key: None,
        };
        assert_eq!(cmd, RefundCommand::Create(expected));
        assert!(parse(&["refund", "create", "po-1"]).is_err(), "no --reason");
        assert_eq!(
            parse(&["refund", "list", "po-1"]).unwrap(),
            RefundCommand::List { payment_order_id: "po-1".into() }
        );
        assert_eq!(
            parse(&["refund", "show", "po-1:refund:1"]).unwrap(),
            RefundCommand::Show { refund_id: "po-1:refund:1".into() }
        );
    }

    /// The body carries the amount only when given (the amount stays a string); a blank reason
    /// is refused.
    #[test]
    fn bodies() {
        assert_eq!(body(Some("1.00"), "r").unwrap(), json!({"amount": "1.00", "reason": "r"}));
        assert_eq!(body(None, "r").unwrap(), json!({"reason": "r"}));
        assert!(body(None, " ").is_err());
    }
}
