//! Reconciliation activities (issue 13): fetch and store a day's settlement report, match it and
//! keep the breaks, book the settlement, and record the run. Long steps heartbeat while they
//! work, so a lost worker is noticed within the heartbeat timeout, not the step's.

pub mod fetch;
pub mod fix;

use crate::failure::{from_store, non_retryable, retryable};
use crate::payout::{PayoutProvider, PayoutProviders};
use crate::psp::PspError;
use fetch::{FetchError, ReportSource};
use payments_domain::PaymentOrderId;
use payments_recon::payouts::{PAYOUT_LOOKBACK_DAYS, returned_status};
use payments_recon::{BreakKind, Day, Psp, payout_lines};
use payments_store::{BreakAction, BreakFilter, BreakStatus, ReportDraft, ReportHeader, ReportSource as Source, Store};
use payments_workflows::payout_contract::PayoutReport;
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

/// The reconciliation activities: the store, per PSP reconciled its report source and
/// settings, and the payout providers whose statements are reconciled with it (Toss payouts
/// with `toss`, Stripe Connect with `stripe`).
pub struct ReconActivities {
    store: Store,
    sources: BTreeMap<Psp, (ReportSource, ReconSettings)>,
    payouts: PayoutProviders,
}

impl ReconActivities {
    /// Activities over `store`, fetching through `sources` (one per PSP reconciled) and, for a
    /// PSP whose payout provider is in `payouts`, that provider's payout statement.
    pub fn new(store: Store, sources: Vec<(ReportSource, ReconSettings)>, payouts: PayoutProviders) -> Self {
        ReconActivities {
            store,
            sources: sources.into_iter().map(|(s, settings)| (s.psp(), (s, settings))).collect(),
            payouts,
        }
    }

    /// The payout provider whose statement is reconciled with `psp`, if one is configured.
    fn payout_provider(&self, psp: Psp) -> Option<&std::sync::Arc<dyn PayoutProvider>> {
        self.payouts.get(payments_store::payout_provider_of(psp)).ok()
    }

    /// Fetches the payout statement of the lookback ending `day` and stores it once.
    async fn import_payouts(&self, psp: Psp, day: Day) -> Result<(u64, u64), ActivityError> {
        let Some(provider) = self.payout_provider(psp) else { return Ok((0, 0)) };
        let kind = payments_store::payout_provider_of(psp);
        let destinations = self.store.payout_destinations(kind).await.map_err(from_store)?;
        let from = day.plus_days(-PAYOUT_LOOKBACK_DAYS);
        // A read changes nothing at the provider: a lost answer is simply read again.
        let items = provider.statement(&destinations, from).await.map_err(|e| match e {
            PspError::Unavailable { retry_after, .. } => {
                retryable("ReconFetchFailed", format!("payout statement: {e}"), retry_after)
            }
            PspError::OutcomeUnknown(_) => retryable("ReconFetchFailed", format!("payout statement: {e}"), None),
            PspError::Authentication(_) => non_retryable("PspAuthentication", format!("payout statement: {e}")),
            PspError::InvalidRequest(_) | PspError::IdempotencyMismatch(_) => {
                non_retryable("ReconReportInvalid", format!("payout statement: {e}"))
            }
        })?;
        let lines = payout_lines(&items);
        if lines.is_empty() {
            return Ok((0, 0));
        }
        let content = items.iter().map(|i| i.raw.as_str()).collect::<Vec<_>>().join("\n");
        let name = format!("{kind} payouts {from}..{day}");
        let draft = ReportDraft {
            psp,
            source: if psp == Psp::Stripe { Source::StripeApi } else { Source::TossApi },
            name: &name,
            day: Some(day),
            content: content.as_bytes(),
            lines: &lines,
        };
        let stored = self.store.import_settlement_report(draft).await.map_err(from_store)?;
        Ok((u64::try_from(lines.len()).unwrap_or(u64::MAX), stored.lines_stored))
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
        let mut fetched = fetched.map_err(from_fetch)?;
        let header = ReportHeader { source: kind, name: &fetched.name, day: Some(input.day) };
        let stored = with_heartbeats(&ctx, &pages, self.store.import_spooled_report(header, &mut fetched.spool))
            .await
            .map_err(from_store)?;
        // An API report counts its items as they arrive; a CSV's lines were counted as they were
        // stored, or, stored before, are counted by reading it.
        let lines_fetched = match fetched.items {
            0 if !stored.already_imported => stored.lines_stored,
            0 => u64::try_from(fetched.spool.lines().map_err(from_store)?.count()).unwrap_or(u64::MAX),
            items => items,
        };
        let (payout_lines_fetched, payout_lines_stored) =
            with_heartbeats(&ctx, &pages, self.import_payouts(input.psp, input.day)).await?;
        Ok(ImportSummary {
            lines_fetched,
            lines_stored: stored.lines_stored,
            repeated: stored.repeated,
            file_id: Some(stored.file_id),
            payout_lines_fetched,
            payout_lines_stored,
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
        let (report, mut findings) = with_heartbeats(
            &ctx,
            &AtomicU64::new(0),
            store.match_settlement_day(input.psp, input.day, &input.contract, &input.policy),
        )
        .await
        .map_err(from_store)?;
        let mut payouts = payments_store::PayoutMatch::default();
        if self.payout_provider(input.psp).is_some() {
            payouts = store.match_payouts(input.psp, input.day, input.policy.window_days).await.map_err(from_store)?;
            findings.append(&mut payouts.findings);
        }
        let (kept, breaks) =
            with_heartbeats(&ctx, &AtomicU64::new(0), store.keep_findings(input.psp, input.day, &findings))
                .await
                .map_err(from_store)?;
        let mut totals: BTreeMap<BreakKind, (u64, BTreeMap<String, i64>)> = BTreeMap::new();
        for finding in &findings {
            let (count, amounts) = totals.entry(finding.kind).or_default();
            *count += 1;
            *amounts.entry(finding.currency.clone()).or_default() += finding.amount_minor;
        }
        let mut summary = MatchSummary {
            lines: report.lines,
            matched: report.matched,
            in_window: report.in_window,
            payouts_matched: payouts.matched,
            payouts_in_window: payouts.in_window,
            breaks: totals
                .into_iter()
                .map(|(kind, (count, amounts))| KindTotal {
                    kind,
                    class: kind.class().number(),
                    count,
                    amounts_minor: amounts.into_iter().collect(),
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
                BreakKind::PayoutReturned => {
                    let Some(payout_id) = record.order_id.clone() else { continue };
                    let lines = record.evidence["psp_lines"].as_array().cloned().unwrap_or_default();
                    let Some(back) = lines.iter().filter_map(|raw| raw.as_str().and_then(returned_status)).next()
                    else {
                        continue;
                    };
                    let report = PayoutReport {
                        payout_id,
                        status: back.status,
                        provider_payout_id: back.provider_payout_id,
                        failure_code: back.failure_code,
                        failure_message: back.failure_message,
                    };
                    summary.heals.push(Heal::PayoutReturned { break_id: record.break_id, report });
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
