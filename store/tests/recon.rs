//! Reconciliation's storage on every configured backend: a report stored once and never
//! changed, a day with one payment per break kind matched into the right breaks, breaks kept
//! once per fingerprint through re-runs, an operator's resolve and accept, healing by absence,
//! and the settlement booked so that the day's clearing nets to the breaks.

mod common;

use common::{assert_consistent, checkout_order, po, rid, stores, usd};
use payments_domain::PaymentOrderStatus as S;
use payments_recon::parse::parse_csv;
use payments_recon::{BreakKind, Day, FeeContract, MatchPolicy, Psp};
use payments_store::{
    BreakAction, BreakFilter, BreakStatus, PLATFORM_BANK_ACCOUNT, PSP_FEE_ADJUSTMENTS_ACCOUNT, PSP_FEES_ACCOUNT,
    ReportDraft, ReportSource, Store, Transition,
};
use std::collections::BTreeMap;

const STRIPE: FeeContract = FeeContract { bps: 290, fixed_minor: 30, fixed_on_zero_decimal: false };
const SAME_DAY: MatchPolicy = MatchPolicy { window_days: 0, fee_tolerance_bps: 10, fee_tolerance_minor: 2 };
const HEADER: &str = "psp,transaction_id,payment_reference,order_id,type,amount_minor,fee_minor,net_minor,currency,sold_date,paid_out_date";

fn today() -> Day {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    Psp::Stripe.day_of_ms(i64::try_from(now).unwrap())
}

/// A CSV row of a charge (`fee_delta` off the contract) or, with a negative amount, a refund.
fn row(txn: &str, reference: &str, order: &str, amount: i64, fee_delta: i64, currency: &str) -> String {
    let kind = if amount < 0 { "refund" } else { "charge" };
    let fee = if amount < 0 { 0 } else { STRIPE.fee_minor(amount, currency) + fee_delta };
    format!("stripe,{txn},{reference},{order},{kind},{amount},{fee},{},{currency},{},", amount - fee, today())
}

async fn import(store: &Store, name: &str, rows: &[String]) -> payments_store::ImportOutcome {
    let text = format!("{HEADER}\n{}\n", rows.join("\n"));
    let lines = parse_csv(Psp::Stripe, &text).unwrap();
    let draft = ReportDraft {
        psp: Psp::Stripe,
        source: ReportSource::Csv,
        name,
        day: Some(today()),
        content: text.as_bytes(),
        lines: &lines,
    };
    store.import_settlement_report(draft).await.unwrap()
}

/// A one-order checkout driven to `to` with PSP reference `pi_{id}`; SUCCESS is booked.
async fn order(store: &Store, id: &str, amount: &str, to: S) {
    let order = checkout_order(store, id, "seller-r", amount).await;
    store.transition(&order, &Transition::to(S::Executing, "charging")).await.unwrap();
    let mut t = Transition::to(to, "psp answered");
    if to != S::Unknown {
        t.psp_reference = Some(format!("pi_{id}"));
    }
    store.transition(&order, &t).await.unwrap();
    if to == S::Success {
        store.credit_wallet_for_order(&order).await.unwrap();
        store.post_order_ledger(&order).await.unwrap();
    }
}

async fn refund(store: &Store, order: &str, n: u32, amount: i64, psp_id: &str) {
    let id = rid(&format!("{order}:refund:{n}"));
    store.request_refund(&id, &po(order), Some(usd(amount)), "buyer asked").await.unwrap();
    store.complete_refund(&id, psp_id).await.unwrap();
}

fn by_kind(findings: &[payments_recon::Finding]) -> BTreeMap<BreakKind, Vec<String>> {
    let mut map: BTreeMap<BreakKind, Vec<String>> = BTreeMap::new();
    for f in findings {
        map.entry(f.kind).or_default().push(f.subject.clone());
    }
    map
}

/// The same report twice stores nothing the second time; a later report of the day stores its
/// lines, those already known as copies; a line in a report is never changed or deleted.
#[tokio::test]
async fn a_report_is_stored_once_and_never_changed() {
    for store in stores().await {
        let rows = [row("txn_a", "pi_a", "po-a", 1_000, 0, "USD"), row("txn_b", "pi_b", "po-b", 2_000, 0, "USD")];
        let first = import(&store, "day.csv", &rows).await;
        assert_eq!((first.lines_stored, first.repeated, first.already_imported), (2, 0, false));
        let again = import(&store, "day-again.csv", &rows).await;
        assert_eq!((again.file_id, again.lines_stored, again.already_imported), (first.file_id, 0, true));
        let later =
            import(&store, "day-2.csv", &[rows[1].clone(), row("txn_c", "pi_c", "po-c", 3_000, 0, "USD")]).await;
        assert_eq!((later.lines_stored, later.repeated), (2, 1));
        assert_eq!(store.settlement_line_count(Psp::Stripe, today()).await.unwrap(), 3, "each movement once");
        let mut refused =
            vec!["UPDATE recon_line SET amount_minor = 1", "DELETE FROM recon_line", "DELETE FROM recon_file"];
        refused.push("UPDATE recon_file SET name = 'x'");
        if store.backend() == payments_store::Backend::Postgres {
            refused.extend(["TRUNCATE recon_line", "TRUNCATE recon_file CASCADE"]);
        }
        for sql in refused {
            let error = sqlx::query(sql).execute(store.pool()).await.expect_err(sql).to_string();
            assert!(error.contains("is append-only"), "{sql}: {error}");
        }
        store.close().await;
    }
}

/// One payment per break kind in one day: each found, once, with its class; re-running finds
/// the same breaks and keeps them; resolve, accept and healing by absence; the settlement books
/// the PSP's figures and the books stay balanced.
#[tokio::test]
async fn a_day_with_every_kind_of_line_break() {
    for store in stores().await {
        order(&store, "po-ok", "100.00", S::Success).await;
        refund(&store, "po-ok", 1, 2_000, "re_ok").await;
        order(&store, "po-unk", "10.00", S::Unknown).await;
        order(&store, "po-fail", "11.00", S::Failed).await;
        order(&store, "po-missing", "12.00", S::Success).await;
        order(&store, "po-over", "50.00", S::Success).await;
        order(&store, "po-fee", "100.00", S::Success).await;
        order(&store, "po-feebig", "100.00", S::Success).await;
        order(&store, "po-dup", "13.00", S::Success).await;
        order(&store, "po-twice", "14.00", S::Success).await;
        order(&store, "po-eur", "15.00", S::Success).await;
        order(&store, "po-rf", "16.00", S::Success).await;
        refund(&store, "po-rf", 1, 600, "re_rf").await;
        let dup = row("txn_dup", "pi_po-dup", "po-dup", 1_300, 0, "USD");
        let rows = [
            row("txn_ok", "pi_po-ok", "po-ok", 10_000, 0, "USD"),
            row("txn_ok_r", "pi_po-ok", "po-ok", -2_000, 0, "USD"),
            row("txn_dash", "pi_po-ok", "po-ok", -500, 0, "USD"),
            row("txn_unk", "pi_lost", "po-unk", 1_000, 0, "USD"),
            row("txn_fail", "pi_po-fail", "po-fail", 1_100, 0, "USD"),
            row("txn_foreign", "pi_foreign", "po-foreign", 4_200, 0, "USD"),
            row("txn_over", "pi_po-over", "po-over", 5_100, 0, "USD"),
            row("txn_fee", "pi_po-fee", "po-fee", 10_000, 1, "USD"),
            row("txn_feebig", "pi_po-feebig", "po-feebig", 10_000, 100, "USD"),
            dup.clone(),
            dup,
            row("txn_twice_1", "pi_po-twice", "po-twice", 1_400, 0, "USD"),
            row("txn_twice_2", "pi_po-twice", "po-twice", 1_400, 0, "USD"),
            row("txn_eur", "pi_po-eur", "po-eur", 1_500, 0, "EUR"),
            row("txn_rf", "pi_po-rf", "po-rf", 1_600, 0, "USD"),
        ];
        let imported = import(&store, "every-kind.csv", &rows).await;
        assert_eq!((imported.lines_stored, imported.repeated), (15, 1));

        let (report, findings) = store.match_settlement_day(Psp::Stripe, today(), &STRIPE, &SAME_DAY).await.unwrap();
        let expected: BTreeMap<BreakKind, Vec<String>> = [
            (BreakKind::CaptureUnconfirmed, vec!["po-unk"]),
            (BreakKind::CapturedButFailed, vec!["po-fail"]),
            (BreakKind::UnknownPayment, vec!["txn_foreign"]),
            (BreakKind::MissingAtPsp, vec!["po-missing"]),
            (BreakKind::AmountOver, vec!["pi_po-over"]),
            (BreakKind::CurrencyMismatch, vec!["txn_eur"]),
            (BreakKind::FeeWithinTolerance, vec!["txn_fee"]),
            (BreakKind::FeeMismatch, vec!["txn_feebig"]),
            (BreakKind::DuplicateCapture, vec!["txn_twice_2"]),
            (BreakKind::RefundMissingInBooks, vec!["txn_dash"]),
            (BreakKind::RefundMissingAtPsp, vec!["po-rf:refund:1"]),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(str::to_owned).collect()))
        .collect();
        let mut found = by_kind(&findings);
        let duplicate = found.remove(&BreakKind::DuplicateLine).expect("the duplicated line");
        assert_eq!(duplicate.len(), 1);
        assert!(duplicate[0].starts_with(&format!("txn_dup@{}:", imported.file_id)), "{duplicate:?}");
        assert_eq!(found, expected);
        assert_eq!(report.lines, 14);
        // po-ok's capture and refund, po-dup, po-twice's first capture, po-fee's and po-feebig's
        // amounts (their fee is a separate break), po-rf's capture.
        assert_eq!(report.matched, 7, "{report:?}");

        let (kept, breaks) = store.keep_findings(Psp::Stripe, today(), &findings).await.unwrap();
        assert_eq!((kept.new, kept.reopened, kept.healed), (12, 0, 0));
        for b in &breaks {
            assert_eq!((b.status, b.class), (BreakStatus::Open, b.kind.class().number()), "{b:?}");
        }
        let foreign = breaks.iter().find(|b| b.kind == BreakKind::UnknownPayment).unwrap();
        assert_eq!(foreign.evidence["psp_lines"][0].as_str().unwrap(), rows[5]);
        assert_eq!(foreign.class, 3);
        let fail = breaks.iter().find(|b| b.kind == BreakKind::CapturedButFailed).unwrap();
        assert_eq!(fail.suggested_fix.as_deref(), Some("refund_capture"));

        // An operator resolves one and accepts another; a re-run keeps both as they are and
        // adds nothing.
        let over = breaks.iter().find(|b| b.kind == BreakKind::AmountOver).unwrap();
        store
            .act_on_break(over.break_id, &BreakAction::Resolve { note: "PSP corrected it".into() }, "ops")
            .await
            .unwrap();
        let until_ms = i64::MAX / 2;
        let feebig = breaks.iter().find(|b| b.kind == BreakKind::FeeMismatch).unwrap();
        let accepted = store
            .act_on_break(feebig.break_id, &BreakAction::Accept { note: "new contract".into(), until_ms }, "ops")
            .await
            .unwrap();
        assert_eq!((accepted.status, accepted.accepted_until_ms), (BreakStatus::Accepted, Some(until_ms)));
        let error = store
            .act_on_break(over.break_id, &BreakAction::Resolve { note: "again".into() }, "ops")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("is RESOLVED"), "{error}");

        // The missing capture's line arrives in a later report: the re-run heals that break,
        // reopens the resolved one (the PSP still reports it) and keeps the accepted one.
        import(&store, "late.csv", &[row("txn_missing", "pi_po-missing", "po-missing", 1_200, 0, "USD")]).await;
        let (_, findings) = store.match_settlement_day(Psp::Stripe, today(), &STRIPE, &SAME_DAY).await.unwrap();
        assert!(!findings.iter().any(|f| f.kind == BreakKind::MissingAtPsp));
        let (kept, _) = store.keep_findings(Psp::Stripe, today(), &findings).await.unwrap();
        assert_eq!((kept.new, kept.reopened, kept.healed), (0, 1, 1));
        let missing = store
            .recon_breaks(&BreakFilter { status: Some(BreakStatus::Healed), limit: 10, ..BreakFilter::default() })
            .await
            .unwrap();
        assert_eq!(missing.iter().map(|b| b.kind).collect::<Vec<_>>(), [BreakKind::MissingAtPsp]);
        assert_eq!(store.recon_break(over.break_id).await.unwrap().unwrap().reopened, 1);
        assert_eq!(store.recon_break(feebig.break_id).await.unwrap().unwrap().status, BreakStatus::Accepted);
        let queue2 =
            BreakFilter { status: Some(BreakStatus::Open), class: Some(2), limit: 100, ..BreakFilter::default() };
        assert_eq!(store.recon_breaks(&queue2).await.unwrap().len(), 5, "work queue");

        // The settlement books what the PSP reported, per currency: the EUR line too (the PSP
        // did pay it; the clearing account shows the currency break as EUR drift).
        let mut parts = store.book_settlement(Psp::Stripe, today(), &STRIPE).await.unwrap();
        assert_eq!(parts.iter().map(|p| p.currency.as_str()).collect::<Vec<_>>(), ["EUR", "USD"], "{parts:?}");
        assert_eq!((parts[0].gross_minor, parts[0].line_count), (1_500, 1));
        parts.remove(0);
        let usd_rows: Vec<&String> = rows.iter().filter(|r| r.contains(",USD,")).collect();
        let gross: i64 =
            usd_rows.iter().enumerate().filter(|(i, _)| *i != 10).map(|(_, r)| field(r, 5)).sum::<i64>() + 1_200;
        assert_eq!((parts[0].gross_minor, parts[0].fee_minor - parts[0].contract_fee_minor), (gross, 101));
        assert_eq!(parts[0].net_minor, parts[0].gross_minor - parts[0].fee_minor);
        assert!(store.book_settlement(Psp::Stripe, today(), &STRIPE).await.unwrap().is_empty(), "booked once");
        for (account, minor) in [
            (PLATFORM_BANK_ACCOUNT, parts[0].net_minor),
            (PSP_FEES_ACCOUNT, parts[0].contract_fee_minor),
            (PSP_FEE_ADJUSTMENTS_ACCOUNT, 101),
        ] {
            assert_eq!(debit_balance(&store, account).await, minor, "{account}");
        }
        assert_consistent(&store).await;
        store.close().await;
    }
}

fn field(row: &str, index: usize) -> i64 {
    row.split(',').nth(index).unwrap().parse().unwrap()
}

async fn debit_balance(store: &Store, account: &str) -> i64 {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE direction WHEN 'DEBIT' THEN amount_minor ELSE -amount_minor END), 0) AS BIGINT) \
         FROM ledger_entry WHERE account = $1 AND currency = 'USD'",
    )
    .bind(account)
    .fetch_one(store.pool())
    .await
    .unwrap();
    sqlx::Row::get(&row, 0)
}

/// A capture missing at the PSP on its day, reported by the PSP in the next day's report (past
/// the window): the next day's run matches the line, and the earlier day's break is healed
/// without running that day again. A fix that did not work opens its break again.
#[tokio::test]
async fn a_late_line_heals_the_earlier_days_break() {
    for store in stores().await {
        order(&store, "po-late", "12.00", S::Success).await;
        import(&store, "empty.csv", &[row("txn_other", "pi_other", "po-other", 100, 0, "USD")]).await;
        let (_, findings) = store.match_settlement_day(Psp::Stripe, today(), &STRIPE, &SAME_DAY).await.unwrap();
        let (_, kept) = store.keep_findings(Psp::Stripe, today(), &findings).await.unwrap();
        let missing = kept.iter().find(|b| b.kind == BreakKind::MissingAtPsp).expect("missing").clone();
        store
            .act_on_break(missing.break_id, &BreakAction::Healing { action: "asked the PSP".into() }, "program")
            .await
            .unwrap();
        assert_eq!(store.heal_late_lines(Psp::Stripe).await.unwrap(), 0, "nothing reported yet");
        // Running the day again: the fix did not work, the break is open again.
        let (_, findings) = store.match_settlement_day(Psp::Stripe, today(), &STRIPE, &SAME_DAY).await.unwrap();
        store.keep_findings(Psp::Stripe, today(), &findings).await.unwrap();
        let again = store.recon_break(missing.break_id).await.unwrap().unwrap();
        assert_eq!(
            (again.status, again.reopened, again.resolution.as_deref()),
            (BreakStatus::Open, 0, Some("asked the PSP"))
        );
        let tomorrow = today().plus_days(1).to_string();
        let late = row("txn_late", "pi_po-late", "po-late", 1_200, 0, "USD").replace(&today().to_string(), &tomorrow);
        import(&store, "tomorrow.csv", &[late]).await;
        assert_eq!(store.heal_late_lines(Psp::Stripe).await.unwrap(), 1);
        let healed = store.recon_break(missing.break_id).await.unwrap().unwrap();
        assert_eq!(healed.status, BreakStatus::Healed);
        assert_eq!(healed.resolution.as_deref(), Some("the PSP reported it in a later report"));
        store.close().await;
    }
}

/// A payment whose rows agree with the PSP but whose pay-in the ledger booked at another
/// amount is clearing drift (class 3), one break per day and currency naming its lines; a clean
/// payment beside it adds nothing, and a pay-in not posted yet is not judged.
#[tokio::test]
async fn a_ledger_that_disagrees_with_clean_rows_is_clearing_drift() {
    use payments_domain::{Currency, Money};
    use payments_store::{Direction, EntryDraft, TransactionDraft};
    for store in stores().await {
        order(&store, "po-clean", "10.00", S::Success).await;
        // Driven to SUCCESS with its rows, its pay-in booked by hand at 17.50 instead of 17.00.
        let drifted = checkout_order(&store, "po-drift", "seller-r", "17.00").await;
        store.transition(&drifted, &Transition::to(S::Executing, "charging")).await.unwrap();
        let mut t = Transition::to(S::Success, "psp answered");
        t.psp_reference = Some("pi_po-drift".into());
        store.transition(&drifted, &t).await.unwrap();
        let usd_minor = |minor| Money::from_minor(minor, Currency::parse("USD").unwrap());
        let draft = TransactionDraft {
            id: "po-drift:ledger".into(),
            kind: "payment".into(),
            payment_order_id: Some(drifted.clone()),
            entries: vec![
                EntryDraft { account: "psp_clearing".into(), direction: Direction::Debit, amount: usd_minor(1_750) },
                EntryDraft { account: "suspense".into(), direction: Direction::Credit, amount: usd_minor(1_750) },
            ],
        };
        store.post_ledger(&draft).await.unwrap();
        // Captured, its pay-in not posted yet: in flight, not judged.
        let pending = checkout_order(&store, "po-pending", "seller-r", "5.00").await;
        store.transition(&pending, &Transition::to(S::Executing, "charging")).await.unwrap();
        let mut t = Transition::to(S::Success, "psp answered");
        t.psp_reference = Some("pi_po-pending".into());
        store.transition(&pending, &t).await.unwrap();
        import(
            &store,
            "drift.csv",
            &[
                row("txn_clean", "pi_po-clean", "po-clean", 1_000, 0, "USD"),
                row("txn_drift", "pi_po-drift", "po-drift", 1_700, 0, "USD"),
                row("txn_pending", "pi_po-pending", "po-pending", 500, 0, "USD"),
            ],
        )
        .await;
        let (_, findings) = store.match_settlement_day(Psp::Stripe, today(), &STRIPE, &SAME_DAY).await.unwrap();
        let drift: Vec<_> = findings.iter().filter(|f| f.kind == BreakKind::ClearingDrift).collect();
        assert_eq!(drift.len(), 1, "{findings:?}");
        assert_eq!(
            (drift[0].subject.as_str(), drift[0].amount_minor, drift[0].transaction_ids.clone()),
            (format!("{}:USD", today()).as_str(), 50, vec!["txn_drift".to_owned()])
        );
        assert_eq!(findings.len(), 1, "nothing else: {findings:?}");
        store.close().await;
    }
}

/// A report spooled to disk is stored line by line as a report in memory is: each line's raw
/// text exactly as received, a movement repeated inside it or known from an earlier report
/// stored as a copy, the same content again stored once; a malformed line stores nothing; an
/// API report spools one item a line.
#[tokio::test]
async fn a_spooled_report_is_stored_as_received() {
    use payments_store::{ReportHeader, ReportSpool, SpoolFormat};
    for store in stores().await {
        import(&store, "earlier.csv", &[row("txn_known", "pi_k", "po-k", 700, 0, "USD")]).await;
        let rows = [
            row("txn_a", "pi_a", "po-a", 1_000, 0, "USD"),
            row("txn_a", "pi_a", "po-a", 1_000, 0, "USD"),
            row("txn_known", "pi_k", "po-k", 700, 0, "USD"),
            row("txn_b", "pi_b", "po-b", -2_00, 0, "USD").replace("\n", ""),
        ];
        let text = format!("{HEADER}\r\n{}\r\n", rows.join("\r\n"));
        let spool = || {
            let mut spool = ReportSpool::new(Psp::Stripe, SpoolFormat::Csv).unwrap();
            // In pieces that cut lines, as a download arrives.
            for piece in text.as_bytes().chunks(7) {
                spool.write(piece).unwrap();
            }
            spool
        };
        let header = ReportHeader { source: ReportSource::Csv, name: "spooled.csv", day: Some(today()) };
        let stored = store.import_spooled_report(header, &mut spool()).await.unwrap();
        assert_eq!((stored.lines_stored, stored.repeated, stored.already_imported), (4, 2, false));
        let again = store.import_spooled_report(header, &mut spool()).await.unwrap();
        assert_eq!((again.file_id, again.lines_stored, again.already_imported), (stored.file_id, 0, true));
        let raws: Vec<String> = sqlx::query_scalar("SELECT raw FROM recon_line WHERE file_id = $1 ORDER BY line_no")
            .bind(stored.file_id)
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(raws, rows.to_vec(), "each line's raw text as received, without its line break");
        assert_eq!(store.settlement_line(Psp::Stripe, "txn_a").await.unwrap().unwrap().amount_minor, 1_000);

        let mut bad = ReportSpool::new(Psp::Stripe, SpoolFormat::Csv).unwrap();
        let broken = row("txn_x", "pi_x", "po-x", 1, 0, "USD").replace(",charge,", ",charge,,");
        bad.write(format!("{HEADER}\n{}\n{broken}\n", row("txn_y", "pi_y", "po-y", 1, 0, "USD")).as_bytes()).unwrap();
        let header = ReportHeader { name: "bad.csv", ..header };
        let refused = store.import_spooled_report(header, &mut bad).await.unwrap_err().to_string();
        assert!(refused.contains("record 2"), "the malformed line is named: {refused}");
        let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recon_line WHERE transaction_id = 'txn_y'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(none, 0, "nothing of a malformed report is stored");

        let mut api = ReportSpool::new(Psp::Stripe, SpoolFormat::ApiItems).unwrap();
        let item = format!(
            r#"{{"id":"txn_api","reporting_category":"charge","amount":500,"fee":45,"net":455,"currency":"usd","created":{},"source":{{"payment_intent":"pi_api"}}}}"#,
            Psp::Stripe.day_start_ms(today()) / 1000 + 60
        );
        api.push_item(&item).unwrap();
        let header = ReportHeader { source: ReportSource::StripeApi, name: "api", day: Some(today()) };
        let stored = store.import_spooled_report(header, &mut api).await.unwrap();
        assert_eq!(stored.lines_stored, 1);
        let line = store.settlement_line(Psp::Stripe, "txn_api").await.unwrap().unwrap();
        assert_eq!((line.payment_reference.as_deref(), line.raw.as_str()), (Some("pi_api"), item.as_str()));
        store.close().await;
    }
}
