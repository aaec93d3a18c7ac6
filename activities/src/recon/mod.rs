//! Reconciliation activities (issue 13): fetch and store a day's settlement report, match it and
//! keep the breaks, book the settlement, and record the run. Long steps heartbeat while they
//! work, so a lost worker is noticed within the heartbeat timeout, not the step's.

pub mod fetch;
pub mod fix;

use crate::failure::{from_store, non_retryable, retryable};
use fetch::{FetchError, ReportSource};
use payments_domain::PaymentOrderId;
use payments_recon::{BreakKind, Psp};
use payments_store::{BreakAction, BreakFilter, BreakStatus, ReportDraft, ReportSource as Source, Store};
use payments_workflows::recon_contract::{
    BookSettlement, Heal, HealingMark, ImportInput, ImportSettlement, ImportSummary, KindTotal, MarkHealing,
    MatchInput, MatchSettlement, MatchSummary, ReconSettings, ReconSettingsFor, RecordRun, ReportOrigin, RunRecord,
    RunStatus, SettleInput, SettleSummary, SettledPart,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// How often a long step heartbeats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// The reconciliation activities: the store and, per PSP reconciled, its report source and
/// settings.
pub struct ReconActivities {
    store: Store,
    sources: BTreeMap<Psp, (ReportSource, ReconSettings)>,
}

impl ReconActivities {
    /// Activities over `store`, fetching through `sources` (one per PSP reconciled).
    pub fn new(store: Store, sources: Vec<(ReportSource, ReconSettings)>) -> Self {
        ReconActivities { store, sources: sources.into_iter().map(|(s, settings)| (s.psp(), (s, settings))).collect() }
    }

    fn source(&self, psp: Psp) -> Result<&ReportSource, ActivityError> {
        self.sources
            .get(&psp)
            .map(|(source, _)| source)
            .ok_or_else(|| non_retryable("ReconNotConfigured", format!("no settlement source configured for {psp}")))
    }
}

/// Runs `work`, heartbeating every [`HEARTBEAT_EVERY`] until it ends; each heartbeat carries
/// `progress` (pages fetched so far, for an import), which the Temporal UI shows on the pending
/// activity: a long import reports how far it got.
async fn with_heartbeats<T>(ctx: &ActivityContext, progress: &AtomicU64, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {
                let details = serde_json::json!({ "pages": progress.load(Ordering::Relaxed) });
                // A heartbeat that cannot be serialised is not worth failing the step for.
                let _ = ctx.record_heartbeat(details).await;
            }
        }
    }
}

fn from_fetch(error: FetchError) -> ActivityError {
    match error {
        FetchError::Transient(message) => retryable("ReconFetchFailed", message, None),
        FetchError::Authentication(message) => non_retryable("PspAuthentication", message),
        FetchError::Invalid(message) => non_retryable("ReconReportInvalid", message),
    }
}

#[activities]
impl ReconActivities {
    /// The settings of a PSP this worker reconciles.
    #[activity(definition = ReconSettingsFor)]
    pub async fn settings(self: Arc<Self>, _ctx: ActivityContext, psp: Psp) -> Result<ReconSettings, ActivityError> {
        self.sources.get(&psp).map(|(_, settings)| *settings).ok_or_else(|| {
            non_retryable("ReconNotConfigured", format!("this worker does not reconcile {psp} (RECON_PSPS)"))
        })
    }

    /// Fetches the day's report and stores it once.
    #[activity(definition = ImportSettlement)]
    pub async fn import(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ImportInput,
    ) -> Result<ImportSummary, ActivityError> {
        let source = self.source(input.psp)?;
        let pages = AtomicU64::new(0);
        let (fetched, kind) = match input.origin {
            ReportOrigin::Imported => return Ok(ImportSummary::default()),
            ReportOrigin::Csv => (with_heartbeats(&ctx, &pages, source.csv(input.day)).await, Source::Csv),
            ReportOrigin::Api => {
                let kind = if input.psp == Psp::Stripe { Source::StripeApi } else { Source::TossApi };
                let count = |page: usize| pages.store(u64::try_from(page).unwrap_or(u64::MAX), Ordering::Relaxed);
                (with_heartbeats(&ctx, &pages, source.api(input.day, count)).await, kind)
            }
        };
        let fetched = fetched.map_err(from_fetch)?;
        let draft = ReportDraft {
            psp: input.psp,
            source: kind,
            name: &fetched.name,
            day: Some(input.day),
            content: &fetched.content,
            lines: &fetched.lines,
        };
        let stored =
            with_heartbeats(&ctx, &pages, self.store.import_settlement_report(draft)).await.map_err(from_store)?;
        Ok(ImportSummary {
            lines_fetched: u64::try_from(fetched.lines.len()).unwrap_or(u64::MAX),
            lines_stored: stored.lines_stored,
            repeated: stored.repeated,
            file_id: Some(stored.file_id),
        })
    }

    /// Matches the day, keeps the breaks, ignores duplicated lines and lists the class-1 fixes.
    #[activity(definition = MatchSettlement)]
    pub async fn match_day(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: MatchInput,
    ) -> Result<MatchSummary, ActivityError> {
        let store = &self.store;
        let (report, findings) = with_heartbeats(
            &ctx,
            &AtomicU64::new(0),
            store.match_settlement_day(input.psp, input.day, &input.contract, &input.policy),
        )
        .await
        .map_err(from_store)?;
        let (kept, breaks) =
            with_heartbeats(&ctx, &AtomicU64::new(0), store.keep_findings(input.psp, input.day, &findings))
                .await
                .map_err(from_store)?;
        let mut totals: BTreeMap<BreakKind, BTreeMap<String, i64>> = BTreeMap::new();
        for finding in &findings {
            let amounts = totals.entry(finding.kind).or_default();
            *amounts.entry(finding.currency.clone()).or_default() += finding.amount_minor;
        }
        let mut summary = MatchSummary {
            lines: report.lines,
            matched: report.matched,
            in_window: report.in_window,
            breaks: report
                .breaks
                .iter()
                .map(|k| KindTotal {
                    kind: k.kind,
                    class: k.class,
                    count: k.count,
                    amounts_minor: totals.remove(&k.kind).unwrap_or_default().into_iter().collect(),
                })
                .collect(),
            new: kept.new,
            reopened: kept.reopened,
            healed: kept.healed,
            ..MatchSummary::default()
        };
        for record in breaks.iter().filter(|b| b.status == BreakStatus::Open) {
            match record.kind {
                BreakKind::DuplicateLine => {
                    let action = BreakAction::Healed { action: "the repeated line was ignored".into() };
                    store.act_on_break(record.break_id, &action, "program").await.map_err(from_store)?;
                    summary.healed_now += 1;
                }
                BreakKind::CaptureUnconfirmed => {
                    let Some(order_id) = record.order_id.as_deref().and_then(|id| PaymentOrderId::parse(id).ok())
                    else {
                        continue;
                    };
                    let Some(order) = store.order(&order_id).await.map_err(from_store)? else { continue };
                    // The janitor looks the payment up by our order, as it does after any lost answer.
                    summary.heals.push(Heal::AskJanitor {
                        break_id: record.break_id,
                        checkout_id: order.checkout_id,
                        payment_order_id: order_id,
                        psp_reference: order.psp_reference,
                    });
                }
                _ => {}
            }
        }
        summary.healed += store.heal_late_lines(input.psp).await.map_err(from_store)?;
        summary.open_by_class = store.active_breaks_by_class(input.psp, input.day).await.map_err(from_store)?;
        Ok(summary)
    }

    /// Books the day's settlement and heals the fee breaks it booked.
    #[activity(definition = BookSettlement)]
    pub async fn settle(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SettleInput,
    ) -> Result<SettleSummary, ActivityError> {
        let store = &self.store;
        let parts =
            with_heartbeats(&ctx, &AtomicU64::new(0), store.book_settlement(input.psp, input.day, &input.contract))
                .await
                .map_err(from_store)?;
        let booked: Vec<String> = store.settlement_parts(input.psp, input.day).await.map_err(from_store)?;
        let mut healed = 0;
        if !booked.is_empty() {
            let filter = BreakFilter {
                status: Some(BreakStatus::Open),
                psp: Some(input.psp),
                day: Some(input.day),
                limit: payments_store::BREAKS_LIMIT_MAX,
                ..BreakFilter::default()
            };
            for record in store.recon_breaks(&filter).await.map_err(from_store)? {
                if record.kind == BreakKind::FeeWithinTolerance {
                    let action =
                        format!("the fee difference was booked to psp_fee_adjustments ({})", booked.join(", "));
                    store
                        .act_on_break(record.break_id, &BreakAction::Healed { action }, "program")
                        .await
                        .map_err(from_store)?;
                    healed += 1;
                }
            }
        }
        Ok(SettleSummary {
            parts: parts
                .into_iter()
                .map(|p| SettledPart {
                    ledger_transaction_id: p.ledger_transaction_id,
                    currency: p.currency,
                    gross_minor: p.gross_minor,
                    fee_minor: p.fee_minor,
                    contract_fee_minor: p.contract_fee_minor,
                    net_minor: p.net_minor,
                })
                .collect(),
            fee_breaks_healed: healed,
        })
    }

    /// Marks a break HEALING: its fix went through the workflows.
    #[activity(definition = MarkHealing)]
    pub async fn mark_healing(self: Arc<Self>, _ctx: ActivityContext, input: HealingMark) -> Result<(), ActivityError> {
        match self.store.act_on_break(input.break_id, &BreakAction::Healing { action: input.action }, "program").await {
            Ok(_) => Ok(()),
            // Resolved or accepted by an operator meanwhile: their decision stands.
            Err(payments_store::StoreError::Precondition(_)) => Ok(()),
            Err(e) => Err(from_store(e)),
        }
    }

    /// Records the run's state and report.
    #[activity(definition = RecordRun)]
    pub async fn record(self: Arc<Self>, _ctx: ActivityContext, input: RunRecord) -> Result<(), ActivityError> {
        let status = match input.status {
            RunStatus::Running => "RUNNING",
            RunStatus::Completed => "COMPLETED",
            RunStatus::Failed => "FAILED",
        };
        let report = input
            .report
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| non_retryable("ReconReport", e.to_string()))?;
        self.store
            .record_recon_run(&input.run_id, input.psp, input.day, status, report.as_ref(), input.error.as_deref())
            .await
            .map_err(from_store)
    }
}
