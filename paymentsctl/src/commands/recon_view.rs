//! How `paymentsctl recon` prints: a run and its report as `name value` lines, breaks as a
//! table or with every field, and their JSON. Amounts are printed in the currency's major units
//! from the integer minor units of the report, never through a float.

use crate::commands::{cut, text_table};
use payments_domain::{Currency, Money};
use payments_proto::payments_v1 as pb;
use payments_workflows::recon_contract::ReconReport;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Characters of a subject shown in the `recon breaks` table (`show` prints it whole).
pub const TABLE_SUBJECT_CHARS_MAX: usize = 40;

/// `minor` units of `currency` as `12.34 USD`; a currency we do not keep books in stays in
/// minor units.
pub fn amount(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => format!("{} {}", Money::from_minor(minor, c).to_decimal_string(), c.code()),
        Err(_) => format!("{minor} minor units of {currency}"),
    }
}

fn line(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name:<15}{value}");
}

/// A run and its report, readable: the run's state, then lines, matched, in window, breaks per
/// class and kind with their amounts, what was healed and sent, what stays open, and the
/// settlement booked.
pub fn run_details(run: &pb::ReconciliationRun, workflow_link: &str) -> String {
    let mut out = String::new();
    line(&mut out, "run", &run.run_id);
    line(&mut out, "workflow", workflow_link);
    line(&mut out, "status", &run.status);
    line(&mut out, "attempts", run.attempts);
    if !run.error.is_empty() {
        line(&mut out, "error", &run.error);
    }
    if run.report_json.is_empty() {
        line(&mut out, "report", "none yet (no run of this day has completed)");
        return out;
    }
    match serde_json::from_str::<ReconReport>(&run.report_json) {
        Ok(report) => report_lines(&mut out, &report),
        // A report of another version: shown as it is rather than not at all.
        Err(_) => line(&mut out, "report", &run.report_json),
    }
    out
}

fn report_lines(out: &mut String, r: &ReconReport) {
    let m = &r.matching;
    line(out, "lines", m.lines);
    let i = &r.import;
    let imported = match i.file_id {
        // RECON_ORIGIN=imported: the run fetched nothing; the files imported by hand count.
        None => "nothing fetched (files imported with `recon import` only)".to_owned(),
        Some(file_id) => {
            format!(
                "{} fetched, {} stored now, {} repeated (file {file_id})",
                i.lines_fetched, i.lines_stored, i.repeated
            )
        }
    };
    line(out, "imported", imported);
    line(out, "matched", m.matched);
    line(out, "in window", format!("{} (inside the settlement window: not breaks yet)", m.in_window));
    if i.payout_lines_fetched > 0 || m.payouts_matched > 0 || m.payouts_in_window > 0 {
        let text = format!(
            "{} statement lines fetched ({} stored now), {} payouts matched, {} in window",
            i.payout_lines_fetched, i.payout_lines_stored, m.payouts_matched, m.payouts_in_window
        );
        line(out, "payouts", text);
    }
    line(out, "breaks", m.breaks.iter().map(|k| k.count).sum::<u64>());
    let mut kinds: Vec<_> = m.breaks.iter().collect();
    kinds.sort_by_key(|k| (k.class, k.kind));
    for k in kinds {
        let amounts: Vec<String> = k.amounts_minor.iter().map(|(c, minor)| amount(*minor, c)).collect();
        let _ = writeln!(out, "  class {}  {:<27}{:>5}  {}", k.class, k.kind.as_str(), k.count, amounts.join(", "));
    }
    line(out, "new", m.new);
    line(out, "reopened", m.reopened);
    let healed_now = m.healed_now + r.settlement.fee_breaks_healed;
    line(out, "healed", format!("{} (no longer found), {healed_now} in this run", m.healed));
    line(out, "fixes sent", format!("{} (not sent: {})", r.heals_sent, r.heals_failed));
    let [one, two, three] = m.open_by_class;
    line(out, "open", format!("class 1: {one}, class 2: {two}, class 3: {three}"));
    if r.settlement.parts.is_empty() {
        line(out, "settlement", "nothing booked now");
    }
    for p in &r.settlement.parts {
        let c = p.currency.as_str();
        let text = format!(
            "{} gross, {} fee (contract {}), {} net to the bank ({})",
            amount(p.gross_minor, c),
            amount(p.fee_minor, c),
            amount(p.contract_fee_minor, c),
            amount(p.net_minor, c),
            p.ledger_transaction_id
        );
        line(out, "settlement", text);
    }
}

/// A run as JSON, as the REST twin answers it: the report as an object (null before one
/// completed), absent texts and times as null.
pub fn run_json(r: &pb::ReconciliationRun) -> Value {
    json!({
        "run_id": r.run_id, "psp": r.psp, "day": r.day, "status": r.status, "attempts": r.attempts,
        "report": serde_json::from_str::<Value>(&r.report_json).unwrap_or(Value::Null),
        "error": if r.error.is_empty() { Value::Null } else { json!(r.error) },
        "started_at_ms": r.started_at_ms,
        "finished_at_ms": if r.finished_at_ms == 0 { Value::Null } else { json!(r.finished_at_ms) },
    })
}

/// Every field of a break in display order, absent texts as null, the evidence as an object.
pub fn break_fields(b: &pb::ReconBreak) -> Vec<(&'static str, Value)> {
    let text = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    vec![
        ("break_id", json!(b.break_id)),
        ("status", json!(b.status)),
        ("class", json!(b.class)),
        ("kind", json!(b.kind)),
        ("psp", json!(b.psp)),
        ("day", json!(b.day)),
        ("last_seen_day", json!(b.last_seen_day)),
        ("subject", json!(b.subject)),
        ("order_id", text(&b.order_id)),
        ("amount", json!(amount(b.amount_minor, &b.currency))),
        ("suggested_fix", text(&b.suggested_fix)),
        ("resolution", text(&b.resolution)),
        ("resolved_by", text(&b.resolved_by)),
        ("accepted_until_ms", if b.accepted_until_ms == 0 { Value::Null } else { json!(b.accepted_until_ms) }),
        ("reopened", json!(b.reopened)),
        ("fingerprint", json!(b.fingerprint)),
        ("created_at_ms", json!(b.created_at_ms)),
        ("updated_at_ms", json!(b.updated_at_ms)),
        ("evidence", serde_json::from_str::<Value>(&b.evidence_json).unwrap_or(Value::Null)),
    ]
}

/// [`break_fields`] as a JSON object.
pub fn break_json(b: &pb::ReconBreak) -> Value {
    Value::Object(break_fields(b).into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// [`break_fields`] as `name value` lines (absent texts as `-`, the evidence indented).
pub fn break_details(b: &pb::ReconBreak) -> String {
    let mut out = String::new();
    for (name, value) in break_fields(b) {
        match value {
            Value::Null => line(&mut out, name, "-"),
            Value::String(s) => line(&mut out, name, s),
            Value::Object(_) | Value::Array(_) => {
                let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
                line(&mut out, name, pretty.replace('\n', &format!("\n{:15}", "")));
            }
            other => line(&mut out, name, other),
        }
    }
    out
}

/// The `recon breaks` table: id, status, class, kind, PSP, day last seen, amount, subject (cut
/// to [`TABLE_SUBJECT_CHARS_MAX`]); a hint for the next page when there is one.
pub fn breaks_table(breaks: &[pb::ReconBreak], next_after_id: i64) -> String {
    if breaks.is_empty() {
        return "no breaks\n".to_owned();
    }
    let rows: Vec<[String; 8]> = breaks
        .iter()
        .map(|b| {
            [
                b.break_id.to_string(),
                b.status.clone(),
                b.class.to_string(),
                b.kind.clone(),
                b.psp.clone(),
                b.last_seen_day.clone(),
                amount(b.amount_minor, &b.currency),
                cut(&b.subject, TABLE_SUBJECT_CHARS_MAX),
            ]
        })
        .collect();
    let mut out = text_table(["ID", "STATUS", "CLASS", "KIND", "PSP", "DAY", "AMOUNT", "SUBJECT"], &rows);
    if next_after_id != 0 {
        let _ = writeln!(out, "more: --after-id {next_after_id}");
    }
    out
}

/// What an import stored, as `name value` lines.
pub fn import_details(i: &pb::SettlementImport) -> String {
    let mut out = String::new();
    line(&mut out, "file_id", i.file_id);
    line(&mut out, "lines stored", i.lines_stored);
    line(&mut out, "repeated", i.repeated);
    line(
        &mut out,
        "already stored",
        if i.already_imported { "yes: imported before, nothing stored now" } else { "no" },
    );
    line(&mut out, "sha256", &i.sha256);
    out
}
