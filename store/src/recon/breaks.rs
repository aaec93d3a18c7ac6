//! Findings kept as breaks, one per fingerprint (`{psp}:{kind}:{subject}`), and the queue
//! states an operator or the program moves them through (see the migration
//! `0015_reconciliation.sql` for the states).

use crate::{Store, StoreError, now_ms};
use payments_recon::{BreakKind, Day, Finding, Psp};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeSet;

/// Longest operator note or heal action kept.
pub const BREAK_NOTE_LEN_MAX: usize = 1_000;
/// Most breaks one listing answers.
pub const BREAKS_LIMIT_MAX: usize = 500;

/// Where a break stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakStatus {
    /// Waiting: for the program (class 1) or a queue (classes 2 and 3).
    Open,
    /// A fix was sent through the workflows; the next run tells whether it worked.
    Healing,
    /// Fixed: by the program, or no longer found by a run.
    Healed,
    /// Closed by an operator with a note.
    Resolved,
    /// Accepted by an operator until a moment.
    Accepted,
}

impl BreakStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakStatus::Open => "OPEN",
            BreakStatus::Healing => "HEALING",
            BreakStatus::Healed => "HEALED",
            BreakStatus::Resolved => "RESOLVED",
            BreakStatus::Accepted => "ACCEPTED",
        }
    }

    /// Reads the stored form.
    pub fn parse(text: &str) -> Option<BreakStatus> {
        [Self::Open, Self::Healing, Self::Healed, Self::Resolved, Self::Accepted]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether someone (or something) still has to act.
    pub fn is_active(self) -> bool {
        matches!(self, BreakStatus::Open | BreakStatus::Healing)
    }
}

/// A stored break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakRecord {
    /// Its id.
    pub break_id: i64,
    /// `{psp}:{kind}:{subject}`.
    pub fingerprint: String,
    /// Whose settlement.
    pub psp: Psp,
    /// The run day that first found it.
    pub day: Day,
    /// The run day that last found it.
    pub last_seen_day: Day,
    /// What it is.
    pub kind: BreakKind,
    /// 1, 2 or 3.
    pub class: i64,
    /// Where it stands.
    pub status: BreakStatus,
    /// What it is about.
    pub subject: String,
    /// The order concerned, if any.
    pub order_id: Option<String>,
    /// Minor units at stake.
    pub amount_minor: i64,
    /// Their currency.
    pub currency: String,
    /// The finding as last seen: its sentence, the PSP's raw lines, the transaction ids.
    pub evidence: serde_json::Value,
    /// The fix an operator may approve.
    pub suggested_fix: Option<String>,
    /// How it was healed or resolved.
    pub resolution: Option<String>,
    /// Who resolved, accepted or approved it (the API key's name), or `program`.
    pub resolved_by: Option<String>,
    /// An acceptance's end.
    pub accepted_until_ms: Option<i64>,
    /// Times a run found it again after it was closed.
    pub reopened: i64,
    /// First found.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// Which breaks to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakFilter {
    /// Only this status.
    pub status: Option<BreakStatus>,
    /// Only this class.
    pub class: Option<i64>,
    /// Only this PSP.
    pub psp: Option<Psp>,
    /// Only breaks last seen by this run day.
    pub day: Option<Day>,
    /// Ids above this one (paging).
    pub after_id: i64,
    /// At most this many (capped at [`BREAKS_LIMIT_MAX`]).
    pub limit: usize,
}

/// What an operator or the program does to a break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BreakAction {
    /// Close with a note.
    Resolve {
        /// Why.
        note: String,
    },
    /// Accept until a moment; a run finding it after that opens it again.
    Accept {
        /// Why.
        note: String,
        /// Until when (unix ms).
        until_ms: i64,
    },
    /// A fix (approved, or the program's own) was sent through the workflows.
    Healing {
        /// What was sent.
        action: String,
    },
    /// The program fixed it.
    Healed {
        /// How.
        action: String,
    },
}

/// What keeping a run's findings did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepOutcome {
    /// Breaks found for the first time.
    pub new: u64,
    /// Closed breaks found again and opened again.
    pub reopened: u64,
    /// Open breaks of the day the run no longer found: healed.
    pub healed: u64,
}

const BREAK_COLUMNS: &str = "break_id, fingerprint, psp, day, last_seen_day, kind, class, status, subject, order_id, \
    amount_minor, currency, evidence, suggested_fix, resolution, resolved_by, accepted_until_ms, reopened, \
    created_at_ms, updated_at_ms";

/// Kinds whose fix is done in the run itself (a copy ignored, a fee booked): found again, they
/// stay healed instead of reopening.
fn healed_in_run(kind: BreakKind) -> bool {
    matches!(kind, BreakKind::DuplicateLine | BreakKind::FeeWithinTolerance)
}

impl Store {
    /// Keeps a run's findings as breaks: new ones open, closed ones found again reopen (an
    /// expired acceptance too), and the active breaks of this run day that it no longer found
    /// are healed. Answers the breaks of the findings, in their order.
    pub async fn keep_findings(
        &self,
        psp: Psp,
        day: Day,
        findings: &[Finding],
    ) -> Result<(KeepOutcome, Vec<BreakRecord>), StoreError> {
        let mut outcome = KeepOutcome::default();
        let mut kept = Vec::with_capacity(findings.len());
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for finding in findings {
            let fingerprint = format!("{psp}:{}:{}", finding.kind, finding.subject);
            if !seen.insert(fingerprint.clone()) {
                continue;
            }
            let evidence = self.evidence(psp, finding).await?;
            let record = self.keep_one(psp, day, &fingerprint, finding, &evidence, &mut outcome).await?;
            kept.push(record);
        }
        let stale = sqlx::query(
            "SELECT break_id, fingerprint FROM recon_break WHERE psp = $1 AND last_seen_day = $2 \
             AND status IN ('OPEN', 'HEALING')",
        )
        .bind(psp.as_str())
        .bind(day.to_string())
        .fetch_all(self.pool())
        .await?;
        for row in stale {
            let fingerprint: String = row.try_get("fingerprint")?;
            if !seen.contains(&fingerprint) {
                let action = format!("the run of {day} no longer finds it");
                self.act_on_break(row.try_get("break_id")?, &BreakAction::Healed { action }, "program").await?;
                outcome.healed += 1;
            }
        }
        Ok((outcome, kept))
    }

    async fn keep_one(
        &self,
        psp: Psp,
        day: Day,
        fingerprint: &str,
        finding: &Finding,
        evidence: &serde_json::Value,
        outcome: &mut KeepOutcome,
    ) -> Result<BreakRecord, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(&format!("SELECT {BREAK_COLUMNS} FROM recon_break WHERE fingerprint = $1"))
            .bind(fingerprint)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| break_from_row(&row))
            .transpose()?;
        let evidence_text = evidence.to_string();
        match existing {
            None => {
                sqlx::query(
                    "INSERT INTO recon_break (fingerprint, psp, day, last_seen_day, kind, class, status, subject, \
                     order_id, amount_minor, currency, evidence, suggested_fix, created_at_ms, updated_at_ms) \
                     VALUES ($1, $2, $3, $3, $4, $5, 'OPEN', $6, $7, $8, $9, $10, $11, $12, $12)",
                )
                .bind(fingerprint)
                .bind(psp.as_str())
                .bind(day.to_string())
                .bind(finding.kind.as_str())
                .bind(finding.kind.class().number())
                .bind(finding.subject.as_str())
                .bind(finding.order_id.as_deref())
                .bind(finding.amount_minor)
                .bind(finding.currency.as_str())
                .bind(evidence_text.as_str())
                .bind(finding.kind.suggested_fix().map(|f| f.as_str()))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                outcome.new += 1;
            }
            Some(record) => {
                let expired = record.accepted_until_ms.is_some_and(|until| until <= now);
                let reopen = match record.status {
                    BreakStatus::Healed | BreakStatus::Resolved => !healed_in_run(record.kind),
                    BreakStatus::Accepted => expired,
                    BreakStatus::Open | BreakStatus::Healing => false,
                };
                // A fix sent by an earlier run that this run still finds did not work: open again
                // (class 1 is sent again), keeping what was tried; not a reopening of a closed one.
                let retry = record.status == BreakStatus::Healing;
                let sql = if reopen {
                    "UPDATE recon_break SET last_seen_day = $1, amount_minor = $2, evidence = $3, updated_at_ms = $4, \
                     status = 'OPEN', resolution = NULL, resolved_by = NULL, accepted_until_ms = NULL, \
                     reopened = reopened + 1 WHERE fingerprint = $5"
                } else if retry {
                    "UPDATE recon_break SET last_seen_day = $1, amount_minor = $2, evidence = $3, updated_at_ms = $4, \
                     status = 'OPEN' WHERE fingerprint = $5"
                } else {
                    "UPDATE recon_break SET last_seen_day = $1, amount_minor = $2, evidence = $3, updated_at_ms = $4 \
                     WHERE fingerprint = $5"
                };
                sqlx::query(sql)
                    .bind(day.to_string())
                    .bind(finding.amount_minor)
                    .bind(evidence_text.as_str())
                    .bind(now)
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await?;
                outcome.reopened += u64::from(reopen);
            }
        }
        let record = sqlx::query(&format!("SELECT {BREAK_COLUMNS} FROM recon_break WHERE fingerprint = $1"))
            .bind(fingerprint)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        break_from_row(&record)
    }

    /// The evidence of a finding: its sentence, its transaction ids and the PSP's raw lines.
    async fn evidence(&self, psp: Psp, finding: &Finding) -> Result<serde_json::Value, StoreError> {
        let mut raw = Vec::with_capacity(finding.transaction_ids.len());
        for id in finding.transaction_ids.iter().take(20) {
            let row = sqlx::query(
                "SELECT raw FROM recon_line WHERE psp = $1 AND transaction_id = $2 AND duplicate_of IS NULL",
            )
            .bind(psp.as_str())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                raw.push(row.try_get::<String, _>(0)?);
            }
        }
        Ok(serde_json::json!({
            "detail": finding.detail,
            "transaction_ids": finding.transaction_ids,
            "psp_lines": raw,
        }))
    }

    /// Moves a break: an operator's resolve or accept (of an active or accepted break), or the
    /// program's healing and healed marks. `by` is who acted (an API key's name, or `program`).
    pub async fn act_on_break(&self, break_id: i64, action: &BreakAction, by: &str) -> Result<BreakRecord, StoreError> {
        let (status, note, until) = match action {
            BreakAction::Resolve { note } => (BreakStatus::Resolved, note, None),
            BreakAction::Accept { note, until_ms } => (BreakStatus::Accepted, note, Some(*until_ms)),
            BreakAction::Healing { action } => (BreakStatus::Healing, action, None),
            BreakAction::Healed { action } => (BreakStatus::Healed, action, None),
        };
        if note.trim().is_empty() || note.len() > BREAK_NOTE_LEN_MAX || by.is_empty() || by.len() > BREAK_NOTE_LEN_MAX {
            return Err(StoreError::Precondition(format!("a note of 1 to {BREAK_NOTE_LEN_MAX} bytes is required")));
        }
        if until.is_some_and(|until| until <= now_ms()) {
            return Err(StoreError::Precondition("an acceptance must end in the future".into()));
        }
        let mut tx = self.begin_write().await?;
        let current = sqlx::query(&format!("SELECT {BREAK_COLUMNS} FROM recon_break WHERE break_id = $1"))
            .bind(break_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| break_from_row(&row))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("break {break_id}")))?;
        let allowed = match status {
            BreakStatus::Resolved | BreakStatus::Accepted | BreakStatus::Healing => {
                current.status.is_active() || current.status == BreakStatus::Accepted
            }
            BreakStatus::Healed => current.status.is_active(),
            BreakStatus::Open => false,
        };
        if !allowed {
            return Err(StoreError::Precondition(format!(
                "break {break_id} is {}: it cannot become {}",
                current.status.as_str(),
                status.as_str()
            )));
        }
        sqlx::query(
            "UPDATE recon_break SET status = $1, resolution = $2, resolved_by = $3, accepted_until_ms = $4, \
             updated_at_ms = $5 WHERE break_id = $6",
        )
        .bind(status.as_str())
        .bind(note.as_str())
        .bind(by)
        .bind(until)
        .bind(now_ms())
        .bind(break_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("SELECT {BREAK_COLUMNS} FROM recon_break WHERE break_id = $1"))
            .bind(break_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        break_from_row(&row)
    }

    /// One break.
    pub async fn recon_break(&self, break_id: i64) -> Result<Option<BreakRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {BREAK_COLUMNS} FROM recon_break WHERE break_id = $1"))
            .bind(break_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| break_from_row(&r)).transpose()
    }

    /// Breaks matching `filter`, by id.
    pub async fn recon_breaks(&self, filter: &BreakFilter) -> Result<Vec<BreakRecord>, StoreError> {
        let limit = filter.limit.clamp(1, BREAKS_LIMIT_MAX);
        let mut conditions = vec!["break_id > $1".to_owned()];
        let mut values: Vec<String> = Vec::new();
        let text_filters = [
            ("status", filter.status.map(|s| s.as_str().to_owned())),
            ("psp", filter.psp.map(|p| p.as_str().to_owned())),
            ("last_seen_day", filter.day.map(|d| d.to_string())),
        ];
        for (column, value) in text_filters {
            if let Some(value) = value {
                values.push(value);
                conditions.push(format!("{column} = ${}", values.len() + 1));
            }
        }
        if let Some(class) = filter.class {
            conditions.push(format!("class = {}", class.clamp(1, 3)));
        }
        let sql = format!(
            "SELECT {BREAK_COLUMNS} FROM recon_break WHERE {} ORDER BY break_id LIMIT {limit}",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&sql).bind(filter.after_id);
        for value in &values {
            query = query.bind(value.as_str());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(break_from_row).collect()
    }
}

fn break_from_row(row: &AnyRow) -> Result<BreakRecord, StoreError> {
    let id: i64 = row.try_get("break_id")?;
    let bad = |what: &str| StoreError::Corrupt(format!("break {id}: {what}"));
    let day = |column: &str| -> Result<Day, StoreError> {
        Day::parse(&row.try_get::<String, _>(column)?).map_err(|e| bad(&e.to_string()))
    };
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let evidence: String = row.try_get("evidence")?;
    Ok(BreakRecord {
        break_id: id,
        fingerprint: row.try_get("fingerprint")?,
        psp: Psp::parse(&row.try_get::<String, _>("psp")?).map_err(|e| bad(&e.to_string()))?,
        day: day("day")?,
        last_seen_day: day("last_seen_day")?,
        kind: BreakKind::parse(&kind).ok_or_else(|| bad(&format!("kind {kind}")))?,
        class: row.try_get("class")?,
        status: BreakStatus::parse(&status).ok_or_else(|| bad(&format!("status {status}")))?,
        subject: row.try_get("subject")?,
        order_id: row.try_get("order_id")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        evidence: serde_json::from_str(&evidence).map_err(|e| bad(&e.to_string()))?,
        suggested_fix: row.try_get("suggested_fix")?,
        resolution: row.try_get("resolution")?,
        resolved_by: row.try_get("resolved_by")?,
        accepted_until_ms: row.try_get("accepted_until_ms")?,
        reopened: row.try_get("reopened")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}
