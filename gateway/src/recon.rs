//! Reconciliation for operators (issue 13): the AdminService calls behind `paymentsctl recon`
//! and their REST twins (`recon_rest.rs`). Running a PSP's settlement day starts its `recon`
//! workflow; approving a break's suggested fix starts its `recon_fix` workflow; resolving and
//! accepting a break, listing breaks and reading runs are the store's. Importing a settlement
//! file parses it here (`payments_recon::parse`) and stores it once. The gateway never moves
//! money: fixes run through the workflows.
//!
//! Waits are bounded below the edges' own call limits (gRPC 30 s per call, paymentsctl 20 s),
//! so a long run is answered RUNNING and followed with `GetReconciliationRun`.

use crate::error::{ApiError, refuse_card_number};
use crate::idempotency::now_ms;
use crate::service::PaymentsService;
use payments_domain::{Currency, Money};
use payments_proto::payments_v1 as pb;
use payments_recon::{Day, Psp};
use payments_store::{
    BREAK_NOTE_LEN_MAX, BREAKS_LIMIT_MAX, BreakAction, BreakFilter, BreakRecord, BreakStatus, ImportOutcome,
    REPORT_NAME_LEN_MAX, ReconRunRecord, ReportHeader, ReportSource, ReportSpool, SpoolFormat, StoreError,
};
use payments_workflows::recon_contract::{FixRequest, recon_fix_workflow_id, recon_workflow_id};
use payments_workflows::{ReconFixWorkflow, ReconInput, ReconWorkflow};
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::errors::{WorkflowGetResultError, WorkflowStartError};
use temporalio_client::{
    WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowIdReusePolicy,
    WorkflowStartOptions,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a run asked to `wait` is waited for: under the gRPC call limit (30 s) and
/// paymentsctl's per-call limit (20 s); a longer run is answered RUNNING.
pub const RECON_RUN_WAIT_MS: u64 = 15_000;
/// How long an approval waits for its fix (a PSP refund or lookup, with retries); after that
/// the break is answered as it is and shows HEALING once the fix went through.
pub const RECON_FIX_WAIT_MS: u64 = 15_000;
/// Bound on asking Temporal whether a day's run is in progress (a read; milliseconds normally).
pub const RECON_DESCRIBE_TIMEOUT_MS: u64 = 2_000;
/// Largest settlement file imported (a PSP's day is a few MiB; 100,000 lines are about 15 MiB).
pub const RECON_IMPORT_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Imports parsed and stored at once: each holds its file in memory.
pub const RECON_IMPORTS_AT_ONCE_MAX: usize = 2;
/// `Retry-After` of an import refused because [`RECON_IMPORTS_AT_ONCE_MAX`] are running.
pub const RECON_IMPORT_RETRY_AFTER_SECS: u64 = 5;
/// Breaks listed when the caller gives no limit.
pub const BREAKS_LIMIT_DEFAULT: u32 = 100;
/// Longest acceptance of a break, in days.
pub const ACCEPT_DAYS_MAX: u32 = 365;
/// The easternmost zone (UTC+14): no settlement day after its today has begun anywhere.
const LATEST_ZONE_OFFSET_MS: i64 = 14 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The semaphore bounding imports at once (one per gateway).
pub fn import_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(RECON_IMPORTS_AT_ONCE_MAX))
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid("parameter_invalid", param, message.into())
}

/// `stripe` or `toss`.
pub fn parse_psp(text: &str) -> Result<Psp, ApiError> {
    Psp::parse(text.trim()).map_err(|_| invalid("psp", "must be stripe or toss"))
}

/// A settlement day, `YYYY-MM-DD`, not after today anywhere on Earth at `now_ms`.
pub fn parse_day(text: &str, now_ms: i64) -> Result<Day, ApiError> {
    let day = Day::parse(text.trim()).map_err(|_| invalid("day", "must be a YYYY-MM-DD date"))?;
    // `Psp::Stripe` days are UTC days; shifted by +14 h this is the latest date on Earth.
    let latest = Psp::Stripe.day_of_ms(now_ms.saturating_add(LATEST_ZONE_OFFSET_MS));
    if day > latest {
        return Err(invalid("day", format!("{day} has not begun anywhere yet (latest: {latest})")));
    }
    Ok(day)
}

/// A break id: positive.
pub fn check_break_id(break_id: i64) -> Result<i64, ApiError> {
    if break_id <= 0 {
        return Err(invalid("break_id", "must be a positive break id"));
    }
    Ok(break_id)
}

/// An operator's note, trimmed: 1 to [`BREAK_NOTE_LEN_MAX`] bytes, no card number.
pub fn check_note(note: &str) -> Result<String, ApiError> {
    let note = note.trim();
    if note.is_empty() || note.len() > BREAK_NOTE_LEN_MAX {
        return Err(invalid("note", format!("is required, 1 to {BREAK_NOTE_LEN_MAX} bytes")));
    }
    refuse_card_number("note", note)?;
    Ok(note.to_owned())
}

/// The end of an acceptance of `days` (1 to [`ACCEPT_DAYS_MAX`]) from `now_ms`.
pub fn accept_until_ms(days: u32, now_ms: i64) -> Result<i64, ApiError> {
    if days == 0 || days > ACCEPT_DAYS_MAX {
        return Err(invalid("days", format!("must be 1 to {ACCEPT_DAYS_MAX}")));
    }
    Ok(now_ms.saturating_add(i64::from(days) * DAY_MS))
}

/// The filter of a break listing, each field checked (empty / 0 = no filter).
pub fn breaks_filter(
    status: &str,
    class: i64,
    psp: &str,
    day: &str,
    after_id: i64,
    limit: u32,
) -> Result<BreakFilter, ApiError> {
    let status = match status.trim() {
        "" => None,
        s => Some(
            BreakStatus::parse(&s.to_ascii_uppercase())
                .ok_or_else(|| invalid("status", "must be OPEN, HEALING, HEALED, RESOLVED or ACCEPTED"))?,
        ),
    };
    let class = match class {
        0 => None,
        1..=3 => Some(class),
        _ => return Err(invalid("class", "must be 1, 2 or 3")),
    };
    let psp = match psp.trim() {
        "" => None,
        p => Some(parse_psp(p)?),
    };
    let day = match day.trim() {
        "" => None,
        d => Some(Day::parse(d).map_err(|_| invalid("day", "must be a YYYY-MM-DD date"))?),
    };
    if after_id < 0 {
        return Err(invalid("after_id", "must not be negative"));
    }
    let limit = match usize::try_from(limit).unwrap_or(usize::MAX) {
        0 => BREAKS_LIMIT_DEFAULT as usize,
        n if n > BREAKS_LIMIT_MAX => return Err(invalid("limit", format!("must be at most {BREAKS_LIMIT_MAX}"))),
        n => n,
    };
    Ok(BreakFilter { status, class, psp, day, after_id, limit })
}

/// A settlement file's name: 1 to [`REPORT_NAME_LEN_MAX`] bytes of visible characters.
pub fn check_report_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > REPORT_NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(invalid("name", format!("1 to {REPORT_NAME_LEN_MAX} bytes, no control characters")));
    }
    refuse_card_number("name", name)?;
    Ok(name)
}

/// The format of an import: `csv` (the default when empty) is the one read.
pub fn check_format(format: &str) -> Result<(), ApiError> {
    match format.trim() {
        "" | "csv" => Ok(()),
        other => Err(invalid("format", format!("{other:?} is not read; send csv"))),
    }
}

/// Store refusals of an operator's action on a break (its state forbids it) as
/// FAILED_PRECONDITION; a missing break is NOT_FOUND.
fn break_store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Precondition(message) => ApiError::invalid("break_not_actionable", "break_id", message),
        other => other.into(),
    }
}

impl PaymentsService {
    /// Starts the run of `psp`'s `day` (or finds it running) and answers it; with `wait`, after
    /// it ended or [`RECON_RUN_WAIT_MS`] passed.
    pub async fn run_reconciliation(&self, psp: Psp, day: Day, wait: bool) -> Result<pb::ReconciliationRun, ApiError> {
        let workflow_id = recon_workflow_id(psp, day, self.task_queue());
        // Running a day again is safe and idempotent (reports stored once, breaks per
        // fingerprint), so a finished run may be followed by another.
        let options = WorkflowStartOptions::new(self.task_queue().to_owned(), workflow_id.clone())
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
            .build();
        let input = ReconInput { psp, day, settings: None };
        match self.temporal().start_workflow(ReconWorkflow::run, input, options).await {
            Ok(_) => tracing::info!(workflow_id, "reconciliation run started on demand"),
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                tracing::info!(workflow_id, "reconciliation run in progress")
            }
            Err(e) => return Err(ApiError::Unavailable(format!("starting reconciliation run {workflow_id}: {e}"))),
        }
        let running = if wait { self.wait_for_run(&workflow_id).await } else { true };
        let stored = self.store().recon_run(psp, day).await?;
        Ok(match stored {
            Some(record) => run_pb(&record, running),
            None => placeholder_run_pb(psp, day, &workflow_id),
        })
    }

    /// Waits up to [`RECON_RUN_WAIT_MS`] for the run `workflow_id` to end; answers whether it
    /// still runs.
    async fn wait_for_run(&self, workflow_id: &str) -> bool {
        let handle = self.temporal().get_workflow_handle::<ReconWorkflow>(workflow_id.to_owned());
        let result = handle.get_result(WorkflowGetResultOptions::default());
        match tokio::time::timeout(Duration::from_millis(RECON_RUN_WAIT_MS), result).await {
            Err(_) => true,
            // Completed, or failed: a run records its end before it ends.
            Ok(Ok(_)) => false,
            Ok(Err(
                WorkflowGetResultError::Failed(_)
                | WorkflowGetResultError::Cancelled { .. }
                | WorkflowGetResultError::Terminated { .. }
                | WorkflowGetResultError::TimedOut,
            )) => false,
            Ok(Err(e)) => {
                tracing::warn!(workflow_id, error = %e, "waiting for a reconciliation run failed");
                self.recon_running(workflow_id).await
            }
        }
    }

    /// The run of `psp`'s `day`: RUNNING while its workflow runs, else as recorded.
    pub async fn reconciliation_run(&self, psp: Psp, day: Day) -> Result<pb::ReconciliationRun, ApiError> {
        let stored = self.store().recon_run(psp, day).await?;
        let workflow_id = recon_workflow_id(psp, day, self.task_queue());
        let running = self.recon_running(&workflow_id).await;
        match stored {
            Some(record) => Ok(run_pb(&record, running)),
            None if running => Ok(placeholder_run_pb(psp, day, &workflow_id)),
            None => Err(ApiError::NotFound(format!("reconciliation run of {psp} {day}"))),
        }
    }

    /// Whether the workflow `workflow_id` runs now; `false` when Temporal cannot say in time
    /// (the stored row is then the answer).
    async fn recon_running(&self, workflow_id: &str) -> bool {
        let handle = self.temporal().get_workflow_handle::<ReconWorkflow>(workflow_id.to_owned());
        let describe = handle.describe(WorkflowDescribeOptions::default());
        match tokio::time::timeout(Duration::from_millis(RECON_DESCRIBE_TIMEOUT_MS), describe).await {
            Ok(Ok(description)) => description.status() == WorkflowExecutionStatus::Running,
            Ok(Err(temporalio_client::errors::WorkflowInteractionError::NotFound(_))) => false,
            Ok(Err(e)) => {
                tracing::warn!(workflow_id, error = %e, "could not ask whether a reconciliation run is in progress");
                false
            }
            Err(_) => {
                tracing::warn!(workflow_id, "Temporal did not say in time whether a reconciliation run is in progress");
                false
            }
        }
    }

    /// Breaks matching `filter`, and the `after_id` of the next page (0 after the last).
    pub async fn recon_breaks(&self, filter: &BreakFilter) -> Result<(Vec<BreakRecord>, i64), ApiError> {
        let breaks = self.store().recon_breaks(filter).await?;
        let next = match breaks.last() {
            Some(last) if breaks.len() >= filter.limit => last.break_id,
            _ => 0,
        };
        Ok((breaks, next))
    }

    /// One break; NotFound when there is none.
    pub async fn recon_break(&self, break_id: i64) -> Result<BreakRecord, ApiError> {
        let id = check_break_id(break_id)?;
        self.store().recon_break(id).await?.ok_or_else(|| ApiError::NotFound(format!("break {id}")))
    }

    /// An operator (`by`, the API key's name) resolves a break with a note.
    pub async fn resolve_recon_break(&self, break_id: i64, note: &str, by: &str) -> Result<BreakRecord, ApiError> {
        let (id, note) = (check_break_id(break_id)?, check_note(note)?);
        let record =
            self.store().act_on_break(id, &BreakAction::Resolve { note }, by).await.map_err(break_store_error)?;
        tracing::info!(break_id = id, by, "reconciliation break resolved");
        Ok(record)
    }

    /// An operator (`by`) accepts a break for `days` days with a note.
    pub async fn accept_recon_break(
        &self,
        break_id: i64,
        note: &str,
        days: u32,
        by: &str,
    ) -> Result<BreakRecord, ApiError> {
        let (id, note, until_ms) = (check_break_id(break_id)?, check_note(note)?, accept_until_ms(days, now_ms())?);
        let action = BreakAction::Accept { note, until_ms };
        let record = self.store().act_on_break(id, &action, by).await.map_err(break_store_error)?;
        tracing::info!(break_id = id, by, days, "reconciliation break accepted");
        Ok(record)
    }

    /// An operator (`by`) approves a break's suggested fix: its `recon_fix` workflow runs it;
    /// answers the break after the fix or [`RECON_FIX_WAIT_MS`].
    pub async fn approve_recon_break(&self, break_id: i64, by: &str) -> Result<BreakRecord, ApiError> {
        let record = self.recon_break(break_id).await?;
        let refuse = |code: &'static str, message: String| ApiError::invalid(code, "break_id", message);
        let Some(fix) = record.suggested_fix.as_deref() else {
            return Err(refuse("no_suggested_fix", format!("break {break_id} has no suggested fix to approve")));
        };
        if !(record.status.is_active() || record.status == BreakStatus::Accepted) {
            let message = format!("break {break_id} is {}: its fix is not needed", record.status.as_str());
            return Err(refuse("break_not_actionable", message));
        }
        let workflow_id = recon_fix_workflow_id(break_id, self.task_queue());
        // One fix per break: a completed fix is never run twice; a failed one may be approved
        // again (its refund is keyed by the break at the PSP, so it is never made twice).
        let options = WorkflowStartOptions::new(self.task_queue().to_owned(), workflow_id.clone())
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
            .build();
        let request = FixRequest { break_id, operator: by.to_owned() };
        match self.temporal().start_workflow(ReconFixWorkflow::run, request, options).await {
            Ok(_) => tracing::info!(break_id, fix, by, "reconciliation fix approved"),
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                return Err(refuse("already_approved", format!("break {break_id}'s fix was already approved")));
            }
            Err(e) => return Err(ApiError::Unavailable(format!("starting the fix of break {break_id}: {e}"))),
        }
        let handle = self.temporal().get_workflow_handle::<ReconFixWorkflow>(workflow_id.clone());
        let result = handle.get_result(WorkflowGetResultOptions::default());
        match tokio::time::timeout(Duration::from_millis(RECON_FIX_WAIT_MS), result).await {
            Ok(Ok(done)) => tracing::info!(break_id, done, "reconciliation fix done"),
            Ok(Err(WorkflowGetResultError::Failed(f))) => {
                let message = format!("the fix of break {break_id} failed: {f}; approving it again runs it again");
                return Err(refuse("fix_failed", message));
            }
            Ok(Err(e)) => tracing::warn!(workflow_id, error = %e, "reconciliation fix did not complete"),
            Err(_) => tracing::info!(workflow_id, "reconciliation fix still running; answering the break as it is"),
        }
        self.recon_break(break_id).await
    }

    /// A slot for one import; RateLimited while [`RECON_IMPORTS_AT_ONCE_MAX`] run.
    pub fn recon_import_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.recon_imports().clone().try_acquire_owned().map_err(|_| ApiError::RateLimited {
            what: "settlement imports at once".into(),
            retry_after_secs: RECON_IMPORT_RETRY_AFTER_SECS,
        })
    }

    /// Stores a spooled settlement CSV once (see
    /// `payments_store::Store::import_spooled_report`: read back line by line, never whole); a
    /// malformed file stores nothing and is refused naming its line and field.
    pub async fn import_settlement_csv(&self, name: &str, mut spool: ReportSpool) -> Result<ImportOutcome, ApiError> {
        let name = check_report_name(name)?;
        let malformed = |message: String| ApiError::invalid("report_invalid", "content", message);
        if spool.is_empty() {
            return Err(malformed("is empty".into()));
        }
        let psp = spool.psp();
        let header = ReportHeader { source: ReportSource::Csv, name, day: None };
        let outcome = self.store().import_spooled_report(header, &mut spool).await.map_err(|e| match e {
            StoreError::Precondition(message) => malformed(message),
            other => other.into(),
        })?;
        tracing::info!(%psp, name, file_id = outcome.file_id, lines = outcome.lines_stored, "settlement file imported");
        Ok(outcome)
    }
}

/// A spool for a settlement CSV of `psp` received by hand.
pub fn csv_spool(psp: Psp) -> Result<ReportSpool, ApiError> {
    ReportSpool::new(psp, SpoolFormat::Csv).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))
}

/// Receives a streamed import (`ImportSettlementReport`): the PSP, name and format from the
/// first message, the file from every message's piece, spooled to disk as it comes and refused
/// as soon as it passes [`RECON_IMPORT_BYTES_MAX`].
pub async fn receive_import(
    stream: &mut tonic::Streaming<pb::ImportSettlementReportRequest>,
) -> Result<(String, ReportSpool), tonic::Status> {
    let first = stream.message().await?.ok_or_else(|| invalid("psp", "the stream holds no message"))?;
    let psp = parse_psp(&first.psp)?;
    let name = check_report_name(&first.name)?.to_owned();
    check_format(&first.format)?;
    let mut spool = csv_spool(psp)?;
    let mut piece = first.content;
    loop {
        if spool.len().saturating_add(piece.len() as u64) > RECON_IMPORT_BYTES_MAX as u64 {
            let message = format!("is larger than {RECON_IMPORT_BYTES_MAX} bytes");
            return Err(ApiError::invalid("report_invalid", "content", message).into());
        }
        spool.write(&piece).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
        match stream.message().await? {
            Some(next) => piece = next.content,
            None => break,
        }
    }
    Ok((name, spool))
}

/// The wire view of a stored run; `running` when its workflow runs now (the row may still show
/// the previous run of the day until the new one records itself).
pub fn run_pb(r: &ReconRunRecord, running: bool) -> pb::ReconciliationRun {
    pb::ReconciliationRun {
        run_id: r.run_id.clone(),
        psp: r.psp.to_string(),
        day: r.day.to_string(),
        status: if running { "RUNNING".to_owned() } else { r.status.clone() },
        attempts: r.attempts,
        report_json: r.report.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        error: r.error.clone().unwrap_or_default(),
        started_at_ms: r.started_at_ms,
        finished_at_ms: if running { 0 } else { r.finished_at_ms.unwrap_or(0) },
    }
}

/// A run started as `workflow_id` but not recorded yet.
pub fn placeholder_run_pb(psp: Psp, day: Day, workflow_id: &str) -> pb::ReconciliationRun {
    pb::ReconciliationRun {
        run_id: workflow_id.to_owned(),
        psp: psp.to_string(),
        day: day.to_string(),
        status: "RUNNING".to_owned(),
        ..Default::default()
    }
}

/// The wire view of a break.
pub fn break_pb(b: &BreakRecord) -> pb::ReconBreak {
    let amount = Currency::parse(&b.currency)
        .map(|c| Money::from_minor(b.amount_minor, c).to_decimal_string())
        .unwrap_or_default();
    pb::ReconBreak {
        break_id: b.break_id,
        fingerprint: b.fingerprint.clone(),
        psp: b.psp.to_string(),
        day: b.day.to_string(),
        last_seen_day: b.last_seen_day.to_string(),
        kind: b.kind.as_str().to_owned(),
        class: i32::try_from(b.class).unwrap_or(0),
        status: b.status.as_str().to_owned(),
        subject: b.subject.clone(),
        order_id: b.order_id.clone().unwrap_or_default(),
        amount,
        amount_minor: b.amount_minor,
        currency: b.currency.clone(),
        evidence_json: b.evidence.to_string(),
        suggested_fix: b.suggested_fix.clone().unwrap_or_default(),
        resolution: b.resolution.clone().unwrap_or_default(),
        resolved_by: b.resolved_by.clone().unwrap_or_default(),
        accepted_until_ms: b.accepted_until_ms.unwrap_or(0),
        reopened: b.reopened,
        created_at_ms: b.created_at_ms,
        updated_at_ms: b.updated_at_ms,
    }
}

/// The wire view of an import.
pub fn import_pb(o: &ImportOutcome) -> pb::SettlementImport {
    pb::SettlementImport {
        file_id: o.file_id,
        lines_stored: o.lines_stored,
        repeated: o.repeated,
        already_imported: o.already_imported,
        sha256: o.sha256.clone(),
    }
}

#[cfg(test)]
mod tests;
