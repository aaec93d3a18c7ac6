//! `paymentsctl recon import|run|report|breaks|show|resolve|accept|approve`: reconciliation
//! through the gateway's gRPC AdminService (admin key). `import` uploads a PSP's settlement file
//! (stored once), `run` reconciles a PSP's day (`recon-{psp}-{day}`) and prints its report,
//! `breaks` and `show` read the work queues, and `resolve`, `accept` and `approve` act on a
//! break (the gateway records the admin key's name as who acted). Printing is
//! `recon_view.rs`. The library functions are what the commands call, for tests that drive the
//! CLI without spawning it.

use crate::admin::{self, AdminTarget};
use crate::cli::Globals;
use crate::commands::recon_view::{break_details, break_json, breaks_table, import_details, run_details, run_json};
use crate::commands::{print_json, unix_millis};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use payments_proto::payments_v1 as pb;
use payments_recon::{Day, Psp};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest settlement file sent (the gateway's limit).
pub const IMPORT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Bytes per message of an upload: well under the gateway's 64 KiB per gRPC message.
pub const IMPORT_CHUNK_BYTES: usize = 32 * 1024;
/// How long `run` waits for the run to end by default.
pub const RUN_WAIT_SECS_DEFAULT: u64 = 600;
/// Pause between reads of a run still in progress.
const RUN_POLL: Duration = Duration::from_millis(500);

/// `recon` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ReconCommand {
    /// Import a settlement file (the PSP's daily CSV); the same file again stores nothing.
    Import {
        /// The file.
        file: PathBuf,
        /// Whose file: stripe or toss.
        #[arg(long, value_enum, ignore_case = true)]
        psp: PspArg,
    },
    /// Reconcile a PSP's day now and print its report (waits for the run unless `--no-wait`).
    Run(RunArgs),
    /// The report of a PSP's day, as its last run left it.
    Report(DayArgs),
    /// Breaks, by id, as a table.
    Breaks(BreaksArgs),
    /// One break with its evidence.
    Show {
        /// The break id.
        break_id: i64,
        /// Print JSON instead of `name value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Close a break with a note (what was done about it).
    Resolve {
        /// The break id.
        break_id: i64,
        /// What was done; kept on the break.
        #[arg(long)]
        note: String,
    },
    /// Accept a break for a number of days; a run finding it after that opens it again.
    Accept {
        /// The break id.
        break_id: i64,
        /// Why it is acceptable; kept on the break.
        #[arg(long)]
        note: String,
        /// For how long (1 to 365 days).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=365))]
        days: u32,
    },
    /// Approve a break's suggested fix: it runs through the workflows (refund, lookup, booking).
    Approve {
        /// The break id.
        break_id: i64,
    },
}

/// A PSP on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PspArg {
    /// Stripe (days in UTC).
    Stripe,
    /// Toss Payments (days in Asia/Seoul).
    Toss,
}

impl PspArg {
    /// The PSP.
    pub fn psp(self) -> Psp {
        match self {
            PspArg::Stripe => Psp::Stripe,
            PspArg::Toss => Psp::Toss,
        }
    }
}

/// A PSP's day.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DayArgs {
    /// Whose day: stripe or toss.
    #[arg(long, value_enum, ignore_case = true)]
    pub psp: PspArg,
    /// The settlement day: YYYY-MM-DD, `today` or `yesterday` (in the PSP's zone).
    #[arg(long)]
    pub date: String,
    /// Print JSON instead of the readable report.
    #[arg(long)]
    pub json: bool,
}

/// `recon run` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RunArgs {
    /// The day.
    #[command(flatten)]
    pub day: DayArgs,
    /// Start the run and print it at once, without waiting for it to end.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the run to end.
    #[arg(long, default_value_t = RUN_WAIT_SECS_DEFAULT)]
    pub wait_secs: u64,
}

/// A break status on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Waiting for the program or a person.
    Open,
    /// A fix went through the workflows; the next run tells.
    Healing,
    /// Fixed.
    Healed,
    /// Closed by an operator.
    Resolved,
    /// Accepted by an operator until a moment.
    Accepted,
}

/// `recon breaks` filters.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BreaksArgs {
    /// Only breaks in this status.
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<StatusArg>,
    /// Only this class: 1 (fixed by the program), 2 (finance's queue), 3 (priority queue).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=3))]
    pub class: Option<i32>,
    /// Only this PSP's.
    #[arg(long, value_enum, ignore_case = true)]
    pub psp: Option<PspArg>,
    /// Only breaks last found by this run day (YYYY-MM-DD, `today` or `yesterday`; with `--psp`
    /// in its zone, else UTC).
    #[arg(long)]
    pub date: Option<String>,
    /// Breaks after this id (the next page).
    #[arg(long, default_value_t = 0)]
    pub after_id: i64,
    /// At most this many (1 to 500).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `YYYY-MM-DD`, or `today` / `yesterday` in `psp`'s zone at `now_ms`.
pub fn parse_date(text: &str, psp: Psp, now_ms: i64) -> anyhow::Result<Day> {
    match text.trim() {
        "today" => Ok(psp.day_of_ms(now_ms)),
        "yesterday" => Ok(psp.day_of_ms(now_ms).plus_days(-1)),
        other => Day::parse(other).map_err(|_| anyhow::anyhow!("--date {other:?}: YYYY-MM-DD, today or yesterday")),
    }
}

async fn call<T, F, Fut>(client: admin::AdminClient, action: &str, subject: &str, f: F) -> anyhow::Result<T>
where
    F: FnOnce(admin::AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    f(client).await.map(|r| r.into_inner()).map_err(|s| admin::refusal(&s, action, subject))
}

/// Uploads the settlement file at `path` of `psp` in pieces of [`IMPORT_CHUNK_BYTES`].
pub async fn import(target: &AdminTarget, path: &Path, psp: Psp) -> anyhow::Result<pb::SettlementImport> {
    let size = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if size > IMPORT_BYTES_MAX {
        bail!("{} has {size} bytes; the gateway imports at most {IMPORT_BYTES_MAX}", path.display());
    }
    let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "settlement.csv".into());
    let mut pieces: Vec<pb::ImportSettlementReportRequest> = content
        .chunks(IMPORT_CHUNK_BYTES)
        .map(|piece| pb::ImportSettlementReportRequest { content: piece.to_vec(), ..Default::default() })
        .collect();
    if pieces.is_empty() {
        pieces.push(pb::ImportSettlementReportRequest::default());
    }
    pieces[0].psp = psp.to_string();
    pieces[0].name = name.clone();
    pieces[0].format = "csv".into();
    let client = admin::connect_with_timeout(target, admin::IMPORT_REQUEST_TIMEOUT).await?;
    let subject = format!("settlement file {name}");
    call(client, "the import of", &subject, |mut c| async move {
        c.import_settlement_report(futures::stream::iter(pieces)).await
    })
    .await
}

/// Starts (or finds) the run of `psp`'s `day`; with `wait_secs`, follows it until it ended or
/// the time ran out.
pub async fn run(
    target: &AdminTarget,
    psp: Psp,
    day: Day,
    wait_secs: Option<u64>,
) -> anyhow::Result<pb::ReconciliationRun> {
    let subject = format!("the reconciliation of {psp} {day}");
    let request =
        pb::RunReconciliationRequest { psp: psp.to_string(), day: day.to_string(), wait: wait_secs.is_some() };
    let client = admin::connect(target).await?;
    let mut answer =
        call(client, "the start of", &subject, |mut c| async move { c.run_reconciliation(request).await }).await?;
    let Some(secs) = wait_secs else { return Ok(answer) };
    let deadline = Instant::now() + Duration::from_secs(secs);
    while answer.status == "RUNNING" && Instant::now() < deadline {
        tokio::time::sleep(RUN_POLL).await;
        answer = report(target, psp, day).await?;
    }
    Ok(answer)
}

/// The run of `psp`'s `day`.
pub async fn report(target: &AdminTarget, psp: Psp, day: Day) -> anyhow::Result<pb::ReconciliationRun> {
    let request = pb::GetReconciliationRunRequest { psp: psp.to_string(), day: day.to_string() };
    let client = admin::connect(target).await?;
    let subject = format!("the reconciliation run of {psp} {day}");
    call(client, "the lookup of", &subject, |mut c| async move { c.get_reconciliation_run(request).await }).await
}

/// Breaks matching `request`.
pub async fn breaks(
    target: &AdminTarget,
    request: pb::ListReconBreaksRequest,
) -> anyhow::Result<pb::ListReconBreaksResponse> {
    let client = admin::connect(target).await?;
    call(client, "the listing of", "reconciliation breaks", |mut c| async move { c.list_recon_breaks(request).await })
        .await
}

/// One break.
pub async fn show(target: &AdminTarget, break_id: i64) -> anyhow::Result<pb::ReconBreak> {
    let client = admin::connect(target).await?;
    let request = pb::GetReconBreakRequest { break_id };
    call(client, "the lookup of", &format!("break {break_id}"), |mut c| async move { c.get_recon_break(request).await })
        .await
}

/// Resolves a break with `note`.
pub async fn resolve(target: &AdminTarget, break_id: i64, note: &str) -> anyhow::Result<pb::ReconBreak> {
    if note.trim().is_empty() {
        bail!("--note must not be empty: it is kept on the break");
    }
    let request = pb::ResolveReconBreakRequest { break_id, note: note.to_owned() };
    let client = admin::connect(target).await?;
    call(client, "the resolution of", &format!("break {break_id}"), |mut c| async move {
        c.resolve_recon_break(request).await
    })
    .await
}

/// Accepts a break for `days` days with `note`.
pub async fn accept(target: &AdminTarget, break_id: i64, note: &str, days: u32) -> anyhow::Result<pb::ReconBreak> {
    if note.trim().is_empty() {
        bail!("--note must not be empty: it is kept on the break");
    }
    let request = pb::AcceptReconBreakRequest { break_id, note: note.to_owned(), days };
    let client = admin::connect(target).await?;
    call(client, "the acceptance of", &format!("break {break_id}"), |mut c| async move {
        c.accept_recon_break(request).await
    })
    .await
}

/// Approves a break's suggested fix.
pub async fn approve(target: &AdminTarget, break_id: i64) -> anyhow::Result<pb::ReconBreak> {
    let request = pb::ApproveReconBreakRequest { break_id };
    let client = admin::connect(target).await?;
    call(client, "the approval of", &format!("break {break_id}'s fix"), |mut c| async move {
        c.approve_recon_break(request).await
    })
    .await
}

/// The listing request of `recon breaks`.
pub fn breaks_request(args: &BreaksArgs, now_ms: i64) -> anyhow::Result<pb::ListReconBreaksRequest> {
    let psp = args.psp.map(PspArg::psp);
    let day = match &args.date {
        Some(date) => parse_date(date, psp.unwrap_or(Psp::Stripe), now_ms)?.to_string(),
        None => String::new(),
    };
    let status = args.status.and_then(|s| s.to_possible_value()).map(|v| v.get_name().to_uppercase());
    Ok(pb::ListReconBreaksRequest {
        status: status.unwrap_or_default(),
        class: args.class.unwrap_or(0),
        psp: psp.map(|p| p.to_string()).unwrap_or_default(),
        day,
        after_id: args.after_id,
        limit: args.limit,
    })
}

/// Runs a `recon` subcommand and prints its answer.
pub async fn command(globals: &Globals, cmd: ReconCommand) -> anyhow::Result<()> {
    let target = globals.admin()?;
    let now = unix_millis();
    let print_break = |b: &pb::ReconBreak, json: bool| -> anyhow::Result<()> {
        if json {
            return print_json(&break_json(b));
        }
        print!("{}", break_details(b));
        Ok(())
    };
    match cmd {
        ReconCommand::Import { file, psp } => {
            print!("{}", import_details(&import(&target, &file, psp.psp()).await?));
            Ok(())
        }
        ReconCommand::Run(args) => {
            let (psp, json) = (args.day.psp.psp(), args.day.json);
            let day = parse_date(&args.day.date, psp, now)?;
            let wait = if args.no_wait { None } else { Some(args.wait_secs) };
            let answer = run(&target, psp, day, wait).await?;
            print_run(globals, &answer, json)?;
            match answer.status.as_str() {
                "FAILED" => bail!("the run of {psp} {day} failed: {}", answer.error),
                "RUNNING" if !args.no_wait => {
                    bail!(
                        "the run of {psp} {day} still runs after {} s; `paymentsctl recon report` shows it",
                        args.wait_secs
                    )
                }
                _ => Ok(()),
            }
        }
        ReconCommand::Report(args) => {
            let psp = args.psp.psp();
            let day = parse_date(&args.date, psp, now)?;
            print_run(globals, &report(&target, psp, day).await?, args.json)
        }
        ReconCommand::Breaks(args) => {
            let listed = breaks(&target, breaks_request(&args, now)?).await?;
            if args.json {
                let list: Vec<Value> = listed.breaks.iter().map(break_json).collect();
                return print_json(&serde_json::json!({"breaks": list, "next_after_id": listed.next_after_id}));
            }
            print!("{}", breaks_table(&listed.breaks, listed.next_after_id));
            Ok(())
        }
        ReconCommand::Show { break_id, json } => print_break(&show(&target, break_id).await?, json),
        ReconCommand::Resolve { break_id, note } => print_break(&resolve(&target, break_id, &note).await?, false),
        ReconCommand::Accept { break_id, note, days } => {
            print_break(&accept(&target, break_id, &note, days).await?, false)
        }
        ReconCommand::Approve { break_id } => print_break(&approve(&target, break_id).await?, false),
    }
}

fn print_run(globals: &Globals, run: &pb::ReconciliationRun, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&run_json(run));
    }
    print!("{}", run_details(run, &globals.workflow_id_link(&run.run_id)));
    Ok(())
}

#[cfg(test)]
mod tests;
