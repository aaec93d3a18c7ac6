//! `paymentsctl dlq list|show|retry|resolve`: dead letters (saga steps that failed past their
//! retries and parked their workflow), through the gateway's gRPC `payments.v1.AdminService`
//! (`--gateway-grpc`).
//!
//! `retry` asks the parked workflow to run the step again (same idempotency keys, fresh
//! retries); `resolve` closes it without running the step (the operator settled it by hand).
//! Both are idempotent: acting on a letter already being retried or resolved answers it as it
//! is. The library functions ([`list`], [`show`], [`retry`], [`resolve`]) are what the commands
//! call, for tests that drive the CLI without spawning it.

use crate::admin::{self, AdminTarget};
use crate::cli::Globals;
use crate::commands::review::resolve_operator;
use crate::commands::{cut, print_json, text_table, unix_millis};
use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use payments_proto::payments_v1 as pb;
use serde_json::{Value, json};

/// Rows `dlq list` asks for without `--limit`.
pub const LIST_LIMIT_DEFAULT: u32 = 100;
/// Characters of a reason shown in the `dlq list` table (`show` prints it whole).
pub const TABLE_REASON_CHARS_MAX: usize = 60;

/// `dlq` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first.
    List(ListArgs),
    /// Print one dead letter with every field and its workflow's Temporal UI link.
    Show {
        /// The dead letter id (`{subject}:{step}`).
        dead_letter_id: String,
        /// Print JSON instead of `name: value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Run the failed step again (same idempotency keys, fresh retries).
    Retry(ActionArgs),
    /// Close a dead letter settled by hand; the step is not run again.
    Resolve(ActionArgs),
}

/// Status filter of `dlq list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    /// Waiting for an operator.
    Open,
    /// An operator asked for a retry.
    Retrying,
    /// Retried successfully or settled by hand.
    Resolved,
}

impl StatusFilter {
    /// The gateway's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Open => "OPEN",
            StatusFilter::Retrying => "RETRYING",
            StatusFilter::Resolved => "RESOLVED",
        }
    }
}

/// `dlq list` flags.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ListArgs {
    /// Only dead letters in this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusFilter>,
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = LIST_LIMIT_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `dlq retry|resolve` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ActionArgs {
    /// The dead letter id.
    pub dead_letter_id: String,
    /// Why (for a resolve: what was done by hand). Kept on the dead letter.
    #[arg(long)]
    pub reason: String,
    /// Who acts (default: `$USER`, else "operator").
    #[arg(long)]
    pub operator: Option<String>,
}

/// Dead letters from the gateway's AdminService, oldest first: all or those in `status`
/// (`OPEN`/`RETRYING`/`RESOLVED`, any case), at most `limit` (0 = the gateway's default, 100).
pub async fn list(target: &AdminTarget, status: Option<&str>, limit: u32) -> anyhow::Result<Vec<pb::DeadLetter>> {
    let request = pb::ListDeadLettersRequest { status: status.unwrap_or_default().to_uppercase(), limit };
    let mut client = admin::connect(target).await?;
    match client.list_dead_letters(request).await {
        Ok(response) => Ok(response.into_inner().dead_letters),
        Err(status) => Err(admin::refusal(&status, "the listing of", "dead letters")),
    }
}

/// One dead letter.
pub async fn show(target: &AdminTarget, id: &str) -> anyhow::Result<pb::DeadLetter> {
    let request = pb::GetDeadLetterRequest { dead_letter_id: id.to_owned() };
    let mut client = admin::connect(target).await?;
    match client.get_dead_letter(request).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(admin::refusal(&status, "the lookup of", &format!("dead letter {id}"))),
    }
}

/// Asks the parked workflow to retry the step; answers the dead letter afterwards (RETRYING,
/// or already RESOLVED if the retry was quick).
pub async fn retry(target: &AdminTarget, id: &str, operator: &str, reason: &str) -> anyhow::Result<pb::DeadLetter> {
    let request = action_request(id, operator, reason)?;
    let mut client = admin::connect(target).await?;
    match client.retry_dead_letter(request).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(admin::refusal(&status, "the retry of", &format!("dead letter {id}"))),
    }
}

/// Closes the dead letter without running its step; answers it afterwards (RESOLVED once the
/// workflow recorded it, which the gateway waits a few seconds for).
pub async fn resolve(target: &AdminTarget, id: &str, operator: &str, reason: &str) -> anyhow::Result<pb::DeadLetter> {
    let request = action_request(id, operator, reason)?;
    let mut client = admin::connect(target).await?;
    match client.resolve_dead_letter(request).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(admin::refusal(&status, "the resolution of", &format!("dead letter {id}"))),
    }
}

/// The request of a retry or resolve; a blank id or reason is refused before any call.
pub fn action_request(id: &str, operator: &str, reason: &str) -> anyhow::Result<pb::DeadLetterActionRequest> {
    if id.trim().is_empty() {
        bail!("a dead letter id is required");
    }
    if reason.trim().is_empty() {
        bail!("--reason must not be empty: it is kept on the dead letter");
    }
    Ok(pb::DeadLetterActionRequest {
        dead_letter_id: id.to_owned(),
        operator: operator.to_owned(),
        reason: reason.to_owned(),
    })
}

/// Runs a `dlq` subcommand and prints its answer (retry and resolve print the dead letter as
/// JSON, like `review` prints its decision).
pub async fn run(globals: &Globals, cmd: DlqCommand) -> anyhow::Result<()> {
    let target = globals.admin()?;
    let grpc = &target;
    let user = std::env::var("USER").ok();
    let operator = |args: &ActionArgs| resolve_operator(args.operator.as_deref(), user.as_deref());
    let letter = match cmd {
        DlqCommand::List(args) => {
            let letters = list(grpc, args.status.map(StatusFilter::as_str), args.limit).await?;
            if args.json {
                return print_json(&Value::Array(letters.iter().map(|d| dead_letter_json(globals, d)).collect()));
            }
            print!("{}", table(&letters, unix_millis()));
            return Ok(());
        }
        DlqCommand::Show { dead_letter_id, json } => {
            let letter = show(grpc, &dead_letter_id).await?;
            if !json {
                print!("{}", details(globals, &letter));
                return Ok(());
            }
            letter
        }
        DlqCommand::Retry(args) => retry(grpc, &args.dead_letter_id, &operator(&args), &args.reason).await?,
        DlqCommand::Resolve(args) => resolve(grpc, &args.dead_letter_id, &operator(&args), &args.reason).await?,
    };
    print_json(&dead_letter_json(globals, &letter))
}

/// Every field of a dead letter in display order, absent texts as null, plus its workflow's
/// Temporal UI link (`workflow`).
pub fn fields(globals: &Globals, d: &pb::DeadLetter) -> Vec<(&'static str, Value)> {
    let text = |s: &str| if s.is_empty() { Value::Null } else { Value::String(s.to_owned()) };
    vec![
        ("dead_letter_id", json!(d.dead_letter_id)),
        ("status", json!(d.status)),
        ("workflow_id", json!(d.workflow_id)),
        ("workflow", json!(globals.workflow_id_link(&d.workflow_id))),
        ("checkout_id", text(&d.checkout_id)),
        ("subject", json!(d.subject)),
        ("step", json!(d.step)),
        ("attempts", json!(d.attempts)),
        ("reason", json!(d.reason)),
        ("last_error", json!(d.last_error)),
        ("resolved_by", text(&d.resolved_by)),
        ("resolution", text(&d.resolution)),
        ("created_at_ms", json!(d.created_at_ms)),
        ("updated_at_ms", json!(d.updated_at_ms)),
    ]
}

/// [`fields`] as a JSON object.
pub fn dead_letter_json(globals: &Globals, d: &pb::DeadLetter) -> Value {
    Value::Object(fields(globals, d).into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// [`fields`] as `name: value` lines (texts unquoted, absent ones as `-`).
pub fn details(globals: &Globals, d: &pb::DeadLetter) -> String {
    let mut out = String::new();
    for (name, value) in fields(globals, d) {
        let value = match value {
            Value::Null => "-".to_owned(),
            Value::String(s) => s,
            other => other.to_string(),
        };
        out.push_str(&format!("{name:<15}{value}\n"));
    }
    out
}

/// The `dlq list` table: id, status, attempts, step, reason (cut to
/// [`TABLE_REASON_CHARS_MAX`]), age at `now_ms`. One line per letter, after a header.
pub fn table(letters: &[pb::DeadLetter], now_ms: i64) -> String {
    if letters.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let rows: Vec<[String; 6]> = letters
        .iter()
        .map(|d| {
            [
                d.dead_letter_id.clone(),
                d.status.clone(),
                d.attempts.to_string(),
                d.step.clone(),
                cut(&d.reason, TABLE_REASON_CHARS_MAX),
                age(now_ms.saturating_sub(d.created_at_ms)),
            ]
        })
        .collect();
    text_table(["ID", "STATUS", "ATTEMPTS", "STEP", "REASON", "AGE"], &rows)
}

/// A duration in the largest whole unit: `45s`, `12m`, `3h`, `2d`.
pub fn age(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<DlqCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("paymentsctl").chain(args.iter().copied()))?;
        match cli.command {
            Command::Dlq(cmd) => Ok(cmd),
            other => panic!("not a dlq command: {other:?}"),
        }
    }

    fn letter(id: &str, reason: &str, created_at_ms: i64) -> pb::DeadLetter {
        pb::DeadLetter {
            dead_letter_id: id.into(),
            workflow_id: "refund-po-1:refund:1".into(),
            subject: "po-1:refund:1".into(),
            step: "psp.refund".into(),
            reason: reason.into(),
            attempts: 10,
            status: "OPEN".into(),
            created_at_ms,
            ..Default::default()
        }
    }

    /// The four subcommands parse with their flags; `--status` takes the three statuses only
    /// and `--limit` 1..=1000; `--reason` is required for actions.
    #[test]
    fn commands_parse() {
        let cmd = parse(&["dlq", "list", "--status", "open", "--limit", "5", "--json"]).unwrap();
        assert_eq!(cmd, DlqCommand::List(ListArgs { status: Some(StatusFilter::Open), limit: 5, json: true }));
        assert_eq!(
            parse(&["dlq", "list"]).unwrap(),
            DlqCommand::List(ListArgs { status: None, limit: 100, json: false })
        );
        assert!(parse(&["dlq", "list", "--status", "closed"]).is_err());
        assert!(parse(&["dlq", "list", "--limit", "0"]).is_err());
        assert!(parse(&["dlq", "list", "--limit", "1001"]).is_err());
        assert_eq!(
            parse(&["dlq", "show", "po-1:psp.refund"]).unwrap(),
            DlqCommand::Show { dead_letter_id: "po-1:psp.refund".into(), json: false }
        );
        let cmd = parse(&["dlq", "retry", "d-1", "--reason", "PSP is back", "--operator", "alice"]).unwrap();
        let expected =
            ActionArgs { dead_letter_id: "d-1".into(), reason: "PSP is back".into(), operator: Some("alice".into()) };
        assert_eq!(cmd, DlqCommand::Retry(expected));
        assert!(matches!(
            parse(&["dlq", "resolve", "d-1", "--reason", "refunded by hand"]).unwrap(),
            DlqCommand::Resolve(_)
        ));
        assert!(parse(&["dlq", "retry", "d-1"]).is_err(), "no --reason");
    }

    /// Blank ids and reasons are refused before anything is sent.
    #[test]
    fn action_requests() {
        let r = action_request("d-1", "alice", "why").unwrap();
        assert_eq!((r.dead_letter_id.as_str(), r.operator.as_str(), r.reason.as_str()), ("d-1", "alice", "why"));
        assert!(action_request(" ", "alice", "why").is_err());
        assert!(action_request("d-1", "alice", "  ").unwrap_err().to_string().contains("--reason"));
    }

    /// The table has a header and one aligned row per letter; long reasons are cut.
    #[test]
    fn table_rows() {
        let long = "x".repeat(100);
        let out = table(&[letter("a:psp.refund", "short", 0), letter("b", &long, 3_600_000)], 7_200_000);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID") && lines[0].contains("REASON") && lines[0].ends_with("AGE"));
        assert!(lines[1].starts_with("a:psp.refund  OPEN") && lines[1].ends_with("2h"), "{}", lines[1]);
        assert!(
            lines[2].contains(&format!("{}...", "x".repeat(TABLE_REASON_CHARS_MAX - 3))) && lines[2].ends_with("1h")
        );
        assert_eq!(table(&[], 0), "no dead letters\n");
    }

    /// Ages use the largest whole unit; a clock behind the record reads 0s.
    #[test]
    fn ages() {
        assert_eq!(age(-5), "0s");
        assert_eq!(age(59_999), "59s");
        assert_eq!(age(60_000), "1m");
        assert_eq!(age(3_600_000), "1h");
        assert_eq!(age(2 * 86_400_000 + 5), "2d");
    }

    /// `show` has every field, nulls (or `-`) for absent texts, and the workflow's UI link.
    #[test]
    fn show_views() {
        let cli = Cli::try_parse_from(["paymentsctl", "--temporal-ui", "http://ui:8233", "dlq", "list"]).unwrap();
        let v = dead_letter_json(&cli.globals, &letter("a", "r", 1));
        assert_eq!(
            v["workflow"],
            format!("http://ui:8233/namespaces/{}/workflows/refund-po-1:refund:1", cli.globals.temporal_namespace)
        );
        assert_eq!((v["checkout_id"].clone(), v["resolved_by"].clone()), (Value::Null, Value::Null));
        assert_eq!((v["attempts"].as_i64(), v["last_error"].as_str()), (Some(10), Some("")));
        let text = details(&cli.globals, &letter("a", "r", 1));
        assert_eq!(text.lines().count(), fields(&cli.globals, &letter("a", "r", 1)).len());
        assert!(text.contains("step           psp.refund\n") && text.contains("resolved_by    -\n"), "{text}");
    }
}
