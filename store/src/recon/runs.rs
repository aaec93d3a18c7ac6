//! Reconciliation runs (`recon_run`): one row per PSP and day, updated by each run of it, with
//! the last run's report.

use crate::{Store, StoreError, now_ms};
use payments_recon::{Day, Psp};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Longest failure text kept.
const RUN_ERROR_LEN_MAX: usize = 2_000;

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconRunRecord {
    /// `recon-{psp}-{day}`.
    pub run_id: String,
    /// Whose day.
    pub psp: Psp,
    /// Which day.
    pub day: Day,
    /// `RUNNING`, `COMPLETED` or `FAILED`.
    pub status: String,
    /// Runs of the day so far.
    pub attempts: i64,
    /// The last completed run's report (JSON).
    pub report: Option<serde_json::Value>,
    /// Why the last run failed.
    pub error: Option<String>,
    /// When the last run started.
    pub started_at_ms: i64,
    /// When it finished.
    pub finished_at_ms: Option<i64>,
}

impl Store {
    /// Records a run's state: `RUNNING` starts a new attempt of the day; `COMPLETED` and
    /// `FAILED` finish it, with the report or the error.
    pub async fn record_recon_run(
        &self,
        run_id: &str,
        psp: Psp,
        day: Day,
        status: &str,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        if !matches!(status, "RUNNING" | "COMPLETED" | "FAILED") {
            return Err(StoreError::Precondition(format!("run status {status:?}")));
        }
        let now = now_ms();
        let error: Option<String> = error.map(|e| e.chars().take(RUN_ERROR_LEN_MAX).collect());
        let report = report.map(|r| r.to_string());
        let mut tx = self.begin_write().await?;
        let exists =
            sqlx::query("SELECT 1 FROM recon_run WHERE run_id = $1").bind(run_id).fetch_optional(&mut *tx).await?;
        if status == "RUNNING" {
            if exists.is_some() {
                sqlx::query(
                    "UPDATE recon_run SET status = 'RUNNING', attempts = attempts + 1, error = NULL, \
                     started_at_ms = $1, finished_at_ms = NULL WHERE run_id = $2",
                )
                .bind(now)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "INSERT INTO recon_run (run_id, psp, day, status, attempts, started_at_ms) \
                     VALUES ($1, $2, $3, 'RUNNING', 1, $4)",
                )
                .bind(run_id)
                .bind(psp.as_str())
                .bind(day.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        } else {
            let updated = sqlx::query(
                "UPDATE recon_run SET status = $1, report = COALESCE($2, report), error = $3, finished_at_ms = $4 \
                 WHERE run_id = $5",
            )
            .bind(status)
            .bind(report)
            .bind(error)
            .bind(now)
            .bind(run_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(StoreError::NotFound(format!("reconciliation run {run_id}")));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The run of `psp`'s `day`, if there was one.
    pub async fn recon_run(&self, psp: Psp, day: Day) -> Result<Option<ReconRunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT run_id, psp, day, status, attempts, report, error, started_at_ms, finished_at_ms FROM recon_run \
             WHERE psp = $1 AND day = $2",
        )
        .bind(psp.as_str())
        .bind(day.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// Active (OPEN or HEALING) breaks last seen by `psp`'s `day`, per class 1, 2, 3.
    pub async fn active_breaks_by_class(&self, psp: Psp, day: Day) -> Result<[u64; 3], StoreError> {
        let rows = sqlx::query(
            "SELECT class, COUNT(*) AS n FROM recon_break WHERE psp = $1 AND last_seen_day = $2 \
             AND status IN ('OPEN', 'HEALING') GROUP BY class",
        )
        .bind(psp.as_str())
        .bind(day.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut counts = [0; 3];
        for row in rows {
            let (class, n): (i64, i64) = (row.try_get("class")?, row.try_get("n")?);
            if let Some(slot) = usize::try_from(class - 1).ok().and_then(|i| counts.get_mut(i)) {
                *slot = u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }
}

fn run_from_row(row: &AnyRow) -> Result<ReconRunRecord, StoreError> {
    let run_id: String = row.try_get("run_id")?;
    let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("run {run_id}: {e}"));
    let report: Option<String> = row.try_get("report")?;
    Ok(ReconRunRecord {
        psp: Psp::parse(&row.try_get::<String, _>("psp")?).map_err(|e| bad(&e))?,
        day: Day::parse(&row.try_get::<String, _>("day")?).map_err(|e| bad(&e))?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        report: report.map(|r| serde_json::from_str(&r)).transpose().map_err(|e| bad(&e))?,
        error: row.try_get("error")?,
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        run_id,
    })
}
