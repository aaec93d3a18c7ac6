//! Reconciliation's storage (issue 13): settlement reports and their lines (stored once,
//! immutable), the day's matching in bounded pages, breaks with their queue states, and the
//! settlement's booking. What counts as a break and its class is decided by the
//! `payments-recon` crate; this module reads our books for it and keeps its findings.
//!
//! Layout: `mod.rs` (importing a report: in memory, or streamed from a `spool.rs` file),
//! `day.rs` (matching one PSP's day, page by page),
//! `payouts.rs` (matching the payouts a provider's statement lists against ours),
//! `breaks.rs` (keeping findings as breaks; the operator's actions), `settle.rs` (booking a
//! settled day: PSP clearing -> platform bank + PSP fees), `runs.rs` (each PSP day's run and
//! its report).

mod breaks;
mod day;
mod payouts;
mod runs;
mod settle;
mod spool;

pub use breaks::{
    BREAK_NOTE_LEN_MAX, BREAKS_LIMIT_MAX, BreakAction, BreakFilter, BreakRecord, BreakStatus, KeepOutcome,
};
pub use day::{DayReport, KindCount, RECON_PAGE_KEYS};
pub use payouts::{PayoutMatch, payout_provider_of};
pub use runs::ReconRunRecord;
pub use settle::{
    PLATFORM_BANK_ACCOUNT, PSP_FEE_ADJUSTMENTS_ACCOUNT, PSP_FEES_ACCOUNT, SETTLEMENT_LEDGER_KIND, SettlementPart,
};
pub use spool::{ReportSpool, SpoolFormat, SpooledLines};

use crate::{Store, StoreError, is_unique_violation, now_ms};
use payments_recon::{Day, Psp, SettlementLine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};

/// A report of at least this many lines is followed by `ANALYZE recon_line` on PostgreSQL.
const ANALYZE_AFTER_LINES: u64 = 1_000;

/// Longest report name (a file name or an API query) kept.
pub const REPORT_NAME_LEN_MAX: usize = 200;

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportSource {
    /// A settlement file (the simulator's daily CSV, `paymentsctl recon import`).
    Csv,
    /// Toss Payments' API: `GET /v1/settlements`, or the payouts v2 statement `GET /v2/payouts`.
    TossApi,
    /// Stripe's API: `GET /v1/balance_transactions`, or the Connect payouts of each connected
    /// account (`GET /v1/payouts`).
    StripeApi,
}

impl ReportSource {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportSource::Csv => "csv",
            ReportSource::TossApi => "toss_api",
            ReportSource::StripeApi => "stripe_api",
        }
    }
}

/// A report to store: its parsed lines and the bytes its hash is taken of.
#[derive(Debug, Clone, Copy)]
pub struct ReportDraft<'a> {
    /// Whose report.
    pub psp: Psp,
    /// Where from.
    pub source: ReportSource,
    /// A file name or the API query, for people.
    pub name: &'a str,
    /// The settlement day it was fetched for, if it was.
    pub day: Option<Day>,
    /// The report exactly as received (an API pull: its pages' raw items, joined).
    pub content: &'a [u8],
    /// Its lines, parsed.
    pub lines: &'a [SettlementLine],
}

/// A spooled report's description (its content and PSP are the spool's).
#[derive(Debug, Clone, Copy)]
pub struct ReportHeader<'a> {
    /// Where from.
    pub source: ReportSource,
    /// A file name or the API query, for people.
    pub name: &'a str,
    /// The settlement day it was fetched for, if it was.
    pub day: Option<Day>,
}

/// What importing a report did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// The stored report's id (the earlier one when it was already imported).
    pub file_id: i64,
    /// Lines stored now (0 when already imported).
    pub lines_stored: u64,
    /// Of those, copies of a movement stored before (a duplicated line, or a movement an
    /// earlier report of the day had).
    pub repeated: u64,
    /// The same content was imported before: nothing was written.
    pub already_imported: bool,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl Store {
    /// Stores a settlement report and its lines once: the same content again (same PSP and
    /// SHA-256) writes nothing and answers the earlier report. All lines or none are stored.
    pub async fn import_settlement_report(&self, draft: ReportDraft<'_>) -> Result<ImportOutcome, StoreError> {
        if draft.name.is_empty() || draft.name.len() > REPORT_NAME_LEN_MAX {
            return Err(StoreError::Precondition(format!("report name: 1 to {REPORT_NAME_LEN_MAX} bytes")));
        }
        let sha256: String = Sha256::digest(draft.content).iter().map(|b| format!("{b:02x}")).collect();
        if let Some(file_id) = self.report_by_hash(draft.psp, &sha256).await? {
            return Ok(ImportOutcome { file_id, lines_stored: 0, repeated: 0, already_imported: true, sha256 });
        }
        let header = ReportHeader { source: draft.source, name: draft.name, day: draft.day };
        let count = u64::try_from(draft.lines.len()).unwrap_or(u64::MAX);
        let tx = self.begin_write().await?;
        let (mut tx, file_id) = match self.open_report(tx, draft.psp, header, &sha256, count).await? {
            Ok(opened) => opened,
            Err(earlier) => return Ok(earlier),
        };
        // Movements stored by earlier reports, looked up before this one writes anything (the
        // lookups then never read rows this transaction added, whose statistics the planner
        // does not have yet); movements of this report as its lines are written.
        let mut first: BTreeMap<String, i64> = BTreeMap::new();
        for chunk in draft.lines.chunks(IMPORT_CHUNK_LINES) {
            let ids: Vec<&str> = chunk.iter().map(|l| l.transaction_id.as_str()).collect();
            first.extend(first_copies(&mut tx, draft.psp, &ids).await?);
        }
        let mut repeated = 0;
        for chunk in draft.lines.chunks(IMPORT_CHUNK_LINES) {
            repeated += insert_chunk(&mut tx, draft.psp, file_id, chunk, &mut first).await?;
        }
        tx.commit().await?;
        let lines_stored = u64::try_from(draft.lines.len()).unwrap_or(u64::MAX);
        self.analyze_after_import(lines_stored).await;
        tracing::info!(psp = %draft.psp, file_id, lines_stored, repeated, "settlement report imported");
        Ok(ImportOutcome { file_id, lines_stored, repeated, already_imported: false, sha256 })
    }

    /// Stores a spooled report and its lines once, as [`Store::import_settlement_report`] does,
    /// reading the spool line by line (never the whole report at once), in one transaction: a
    /// first pass checks and counts every line and looks up the movements earlier reports
    /// stored, a second writes the lines in chunks. What is held is one chunk of lines and the
    /// ids of the report's movements.
    pub async fn import_spooled_report(
        &self,
        header: ReportHeader<'_>,
        spool: &mut ReportSpool,
    ) -> Result<ImportOutcome, StoreError> {
        let psp = spool.psp();
        if header.name.is_empty() || header.name.len() > REPORT_NAME_LEN_MAX {
            return Err(StoreError::Precondition(format!("report name: 1 to {REPORT_NAME_LEN_MAX} bytes")));
        }
        let sha256 = spool.sha256();
        if let Some(file_id) = self.report_by_hash(psp, &sha256).await? {
            return Ok(ImportOutcome { file_id, lines_stored: 0, repeated: 0, already_imported: true, sha256 });
        }
        // One pass checks every line (a malformed one stores nothing), counts them and looks up
        // the movements earlier reports stored, before this one writes anything.
        let mut tx = self.begin_write().await?;
        let mut first: BTreeMap<String, i64> = BTreeMap::new();
        let mut count: u64 = 0;
        let mut lines = spool.lines()?;
        while let Some(chunk) = next_chunk(&mut lines)? {
            count += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            let ids: Vec<&str> = chunk.iter().map(|l| l.transaction_id.as_str()).collect();
            first.extend(first_copies(&mut tx, psp, &ids).await?);
        }
        let (mut tx, file_id) = match self.open_report(tx, psp, header, &sha256, count).await? {
            Ok(opened) => opened,
            Err(earlier) => return Ok(earlier),
        };
        let (mut stored, mut repeated) = (0_u64, 0);
        let mut lines = spool.lines()?;
        while let Some(chunk) = next_chunk(&mut lines)? {
            stored += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            repeated += insert_chunk(&mut tx, psp, file_id, &chunk, &mut first).await?;
        }
        if stored != count {
            return Err(StoreError::Precondition(format!("the spooled report changed: {count} lines, then {stored}")));
        }
        tx.commit().await?;
        self.analyze_after_import(stored).await;
        tracing::info!(%psp, file_id, lines_stored = stored, repeated, "settlement report imported (streamed)");
        Ok(ImportOutcome { file_id, lines_stored: stored, repeated, already_imported: false, sha256 })
    }

    /// Writes the report's row in the import's transaction `tx`; when another caller stored
    /// the same content meanwhile, answers that report instead (the same content, the same
    /// outcome).
    async fn open_report(
        &self,
        mut tx: Transaction<'static, Any>,
        psp: Psp,
        header: ReportHeader<'_>,
        sha256: &str,
        line_count: u64,
    ) -> Result<Result<(Transaction<'static, Any>, i64), ImportOutcome>, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO recon_file (psp, source, name, day, sha256, line_count, imported_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING file_id",
        )
        .bind(psp.as_str())
        .bind(header.source.as_str())
        .bind(header.name)
        .bind(header.day.map(|d| d.to_string()))
        .bind(sha256)
        .bind(i64::try_from(line_count).unwrap_or(i64::MAX))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await;
        match inserted {
            Ok(row) => Ok(Ok((tx, row.try_get(0)?))),
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let file_id = self.report_by_hash(psp, sha256).await?.ok_or(e)?;
                let sha256 = sha256.to_owned();
                Ok(Err(ImportOutcome { file_id, lines_stored: 0, repeated: 0, already_imported: true, sha256 }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a large import on PostgreSQL: the new lines' statistics for the matching's plans.
    async fn analyze_after_import(&self, lines_stored: u64) {
        if self.backend() == crate::Backend::Postgres && lines_stored >= ANALYZE_AFTER_LINES {
            // The day is matched right after: give the planner the new lines' statistics now
            // rather than at autovacuum's next round (a plan made without them scans the table
            // for every page). Only the table's owner may: a service role is refused, and then
            // autovacuum's statistics are what the matching gets.
            if let Err(e) = sqlx::query("ANALYZE recon_line").execute(self.pool()).await {
                tracing::warn!(error = %e, "ANALYZE recon_line refused; the planner waits for autovacuum's statistics");
            }
        }
    }

    async fn report_by_hash(&self, psp: Psp, sha256: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT file_id FROM recon_file WHERE psp = $1 AND sha256 = $2")
            .bind(psp.as_str())
            .bind(sha256)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// How many first copies of settlement lines (payout statements' lines aside) a PSP's day
    /// has: what a run matches as payments.
    pub async fn settlement_line_count(&self, psp: Psp, day: Day) -> Result<i64, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) FROM recon_line WHERE psp = $1 AND sold_date = $2 AND duplicate_of IS NULL \
             AND kind NOT IN {}",
            payouts::PAYOUT_KINDS
        ))
        .bind(psp.as_str())
        .bind(day.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }
}

/// The next chunk of a spooled report's lines, `None` at its end; a malformed line refuses the
/// report.
fn next_chunk(lines: &mut SpooledLines) -> Result<Option<Vec<SettlementLine>>, StoreError> {
    let chunk: Vec<SettlementLine> = lines
        .by_ref()
        .take(IMPORT_CHUNK_LINES)
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Precondition(format!("settlement report: {e}")))?;
    Ok(Some(chunk).filter(|c| !c.is_empty()))
}

/// Lines written per multi-row INSERT (16 values each: far below both databases' limits on
/// bind parameters).
const IMPORT_CHUNK_LINES: usize = 200;

/// Stores a chunk of lines. A movement stored before (`first`: its first line, in an earlier
/// report or earlier in this one) is stored as a copy pointing at that line; the lines written
/// first are added to `first`. Answers how many were copies.
async fn insert_chunk(
    tx: &mut Transaction<'static, Any>,
    psp: Psp,
    file_id: i64,
    chunk: &[SettlementLine],
    first: &mut BTreeMap<String, i64>,
) -> Result<u64, StoreError> {
    for line in chunk {
        if line.net_minor != line.amount_minor.saturating_sub(line.fee_minor) {
            return Err(StoreError::Precondition(format!(
                "line {}: net {} is not amount {} minus fee {}",
                line.line_no, line.net_minor, line.amount_minor, line.fee_minor
            )));
        }
    }
    // New movements (each once) go in one statement; copies one by one after it, once their
    // first line has its id.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let (fresh, copies): (Vec<&SettlementLine>, Vec<&SettlementLine>) = chunk
        .iter()
        .partition(|l| !first.contains_key(l.transaction_id.as_str()) && seen.insert(l.transaction_id.as_str()));
    if !fresh.is_empty() {
        let rows: Vec<String> =
            (0..fresh.len()).map(|row| format!("({})", placeholders(row * LINE_VALUES + 1, LINE_VALUES))).collect();
        let sql = format!(
            "INSERT INTO recon_line ({LINE_INSERT_COLUMNS}) VALUES {} RETURNING transaction_id, line_id",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for line in &fresh {
            query = bind_line(query, psp, file_id, line, None);
        }
        for row in query.fetch_all(&mut **tx).await? {
            first.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    for line in &copies {
        let of = first.get(line.transaction_id.as_str()).copied();
        let sql = format!("INSERT INTO recon_line ({LINE_INSERT_COLUMNS}) VALUES ({})", placeholders(1, LINE_VALUES));
        bind_line(sqlx::query(&sql), psp, file_id, line, of).execute(&mut **tx).await?;
    }
    Ok(u64::try_from(copies.len()).unwrap_or(u64::MAX))
}

/// Columns an imported line is written with, in [`bind_line`]'s order.
const LINE_INSERT_COLUMNS: &str = "file_id, line_no, psp, kind, transaction_id, payment_reference, order_id, \
    refund_reference, amount_minor, fee_minor, net_minor, currency, sold_date, paid_out_date, raw, duplicate_of";
/// How many values [`LINE_INSERT_COLUMNS`] names.
const LINE_VALUES: usize = 16;

fn bind_line<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    psp: Psp,
    file_id: i64,
    line: &'q SettlementLine,
    duplicate_of: Option<i64>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(file_id)
        .bind(i64::from(line.line_no))
        .bind(psp.as_str())
        .bind(line.kind.as_str())
        .bind(line.transaction_id.as_str())
        .bind(line.payment_reference.as_deref())
        .bind(line.order_id.as_deref())
        .bind(line.refund_reference.as_deref())
        .bind(line.amount_minor)
        .bind(line.fee_minor)
        .bind(line.net_minor)
        .bind(line.currency.as_str())
        .bind(line.sold_date.to_string())
        .bind(line.paid_out_date.map(|d| d.to_string()))
        .bind(line.raw.as_str())
        .bind(duplicate_of)
}

/// The first stored line of each of `ids` that has one.
async fn first_copies(
    tx: &mut Transaction<'static, Any>,
    psp: Psp,
    ids: &[&str],
) -> Result<BTreeMap<String, i64>, StoreError> {
    let sql = format!(
        "SELECT transaction_id, line_id FROM recon_line WHERE psp = $1 AND duplicate_of IS NULL \
         AND transaction_id IN ({})",
        placeholders(2, ids.len())
    );
    let mut query = sqlx::query(&sql).bind(psp.as_str());
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?))).collect()
}

/// `$first, $first+1, ...` for an IN list of `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
