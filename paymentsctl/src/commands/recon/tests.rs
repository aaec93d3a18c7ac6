use super::*;
use crate::cli::{Cli, Command};
use crate::commands::recon_view::{amount, breaks_table, run_details};
use clap::Parser;

fn parse(args: &[&str]) -> Result<ReconCommand, clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("paymentsctl").chain(args.iter().copied()))?;
    match cli.command {
        Command::Recon(cmd) => Ok(cmd),
        other => panic!("not a recon command: {other:?}"),
    }
}

/// 2026-12-01T20:00:00Z: already 2026-12-02 in Seoul.
const EVENING_MS: i64 = 1_796_083_200_000 + 20 * 3_600_000;

/// Every subcommand parses with its flags; PSPs, statuses, classes, limits and days are held
/// to what the gateway accepts before anything is sent.
#[test]
fn commands_parse() {
    let cmd = parse(&["recon", "import", "day.csv", "--psp", "toss"]).unwrap();
    assert_eq!(cmd, ReconCommand::Import { file: "day.csv".into(), psp: PspArg::Toss });
    assert!(parse(&["recon", "import", "day.csv", "--psp", "paypal"]).is_err());
    let ReconCommand::Run(run) = parse(&["recon", "run", "--psp", "stripe", "--date", "2026-12-01"]).unwrap() else {
        panic!("run")
    };
    assert_eq!(
        (run.day.psp, run.day.date.as_str(), run.no_wait, run.wait_secs),
        (PspArg::Stripe, "2026-12-01", false, 600)
    );
    let ReconCommand::Run(run) = parse(&["recon", "run", "--psp", "toss", "--date", "today", "--no-wait"]).unwrap()
    else {
        panic!("run")
    };
    assert!(run.no_wait);
    assert!(parse(&["recon", "run", "--psp", "stripe"]).is_err(), "--date is required");
    assert!(matches!(
        parse(&["recon", "report", "--psp", "stripe", "--date", "yesterday", "--json"]).unwrap(),
        ReconCommand::Report(_)
    ));
    let ReconCommand::Breaks(b) =
        parse(&["recon", "breaks", "--status", "open", "--class", "2", "--limit", "5"]).unwrap()
    else {
        panic!("breaks")
    };
    assert_eq!((b.status, b.class, b.limit, b.after_id), (Some(StatusArg::Open), Some(2), 5, 0));
    assert!(parse(&["recon", "breaks", "--class", "4"]).is_err());
    assert!(parse(&["recon", "breaks", "--limit", "501"]).is_err());
    assert!(parse(&["recon", "breaks", "--status", "closed"]).is_err());
    let ReconCommand::Breaks(b) = parse(&["recon", "breaks", "--status", "OPEN", "--psp", "Toss"]).unwrap() else {
        panic!("breaks")
    };
    assert_eq!((b.status, b.psp), (Some(StatusArg::Open), Some(PspArg::Toss)), "any case, as the gateway spells them");
    assert_eq!(parse(&["recon", "show", "7"]).unwrap(), ReconCommand::Show { break_id: 7, json: false });
    assert_eq!(
        parse(&["recon", "resolve", "7", "--note", "refunded by hand"]).unwrap(),
        ReconCommand::Resolve { break_id: 7, note: "refunded by hand".into() }
    );
    assert!(parse(&["recon", "resolve", "7"]).is_err(), "--note is required");
    assert_eq!(
        parse(&["recon", "accept", "7", "--note", "PSP will credit", "--days", "30"]).unwrap(),
        ReconCommand::Accept { break_id: 7, note: "PSP will credit".into(), days: 30 }
    );
    assert!(parse(&["recon", "accept", "7", "--note", "n", "--days", "0"]).is_err());
    assert!(parse(&["recon", "accept", "7", "--note", "n", "--days", "366"]).is_err());
    assert_eq!(parse(&["recon", "approve", "7"]).unwrap(), ReconCommand::Approve { break_id: 7 });
}

/// `today` and `yesterday` are the PSP's own days; anything else must be YYYY-MM-DD.
#[test]
fn dates() {
    assert_eq!(parse_date("today", Psp::Stripe, EVENING_MS).unwrap().to_string(), "2026-12-01");
    assert_eq!(parse_date("today", Psp::Toss, EVENING_MS).unwrap().to_string(), "2026-12-02");
    assert_eq!(parse_date("yesterday", Psp::Toss, EVENING_MS).unwrap().to_string(), "2026-12-01");
    assert_eq!(parse_date("2026-11-30", Psp::Stripe, EVENING_MS).unwrap().to_string(), "2026-11-30");
    assert!(parse_date("30/11/2026", Psp::Stripe, EVENING_MS).unwrap_err().to_string().contains("--date"));
}

/// The listing request carries the gateway's spelling of each filter; none means all.
#[test]
fn listing_requests() {
    let ReconCommand::Breaks(args) =
        parse(&["recon", "breaks", "--status", "accepted", "--psp", "toss", "--date", "today"]).unwrap()
    else {
        panic!("breaks")
    };
    let r = breaks_request(&args, EVENING_MS).unwrap();
    assert_eq!(
        (r.status.as_str(), r.psp.as_str(), r.day.as_str(), r.class, r.limit),
        ("ACCEPTED", "toss", "2026-12-02", 0, 100)
    );
    let ReconCommand::Breaks(args) = parse(&["recon", "breaks"]).unwrap() else { panic!("breaks") };
    let r = breaks_request(&args, EVENING_MS).unwrap();
    assert_eq!((r.status.as_str(), r.psp.as_str(), r.day.as_str()), ("", "", ""));
}

/// Amounts print in major units of their currency; others stay in minor units.
#[test]
fn amounts() {
    assert_eq!(amount(100, "USD"), "1.00 USD");
    assert_eq!(amount(-1_234, "USD"), "-12.34 USD");
    assert_eq!(amount(32_000, "KRW"), "32000 KRW");
    assert_eq!(amount(5, "XYZ"), "5 minor units of XYZ");
}

fn report_json() -> String {
    serde_json::json!({
        "import": {"lines_fetched": 0, "lines_stored": 0, "repeated": 0, "file_id": null},
        "matching": {
            "lines": 2, "matched": 1, "in_window": 0,
            "breaks": [{"kind": "amount_over", "class": 2, "count": 1, "amounts_minor": [["USD", 100]]}],
            "new": 1, "reopened": 0, "healed": 0, "healed_now": 0, "heals": [], "open_by_class": [0, 1, 0]
        },
        "heals_sent": 0, "heals_failed": 0,
        "settlement": {"parts": [{"ledger_transaction_id": "settle:stripe:2026-12-01:USD:2", "currency": "USD",
            "gross_minor": 4100, "fee_minor": 179, "contract_fee_minor": 179, "net_minor": 3921}], "fee_breaks_healed": 0}
    })
    .to_string()
}

/// The report reads as lines, matched, breaks per class and kind with amounts, open per class
/// and the settlement booked.
#[test]
fn reports_read_well() {
    let run = pb::ReconciliationRun {
        run_id: "recon-stripe-2026-12-01".into(),
        psp: "stripe".into(),
        day: "2026-12-01".into(),
        status: "COMPLETED".into(),
        attempts: 1,
        report_json: report_json(),
        ..Default::default()
    };
    let text = run_details(&run, "http://ui/namespaces/default/workflows/recon-stripe-2026-12-01");
    for expected in [
        "status         COMPLETED",
        "lines          2",
        "matched        1",
        "breaks         1",
        "  class 2  amount_over                    1  1.00 USD",
        "open           class 1: 0, class 2: 1, class 3: 0",
        "settlement     41.00 USD gross, 1.79 USD fee (contract 1.79 USD), 39.21 USD net to the bank (settle:stripe:2026-12-01:USD:2)",
    ] {
        assert!(text.lines().any(|l| l == expected), "missing {expected:?} in:\n{text}");
    }
    let none = run_details(&pb::ReconciliationRun { status: "RUNNING".into(), ..Default::default() }, "-");
    assert!(none.contains("report         none yet"), "{none}");
}

/// The table has a header and one aligned row per break, and says how to get the next page.
#[test]
fn break_tables() {
    let b = pb::ReconBreak {
        break_id: 3,
        status: "OPEN".into(),
        class: 2,
        kind: "amount_over".into(),
        psp: "stripe".into(),
        last_seen_day: "2026-12-01".into(),
        amount_minor: 100,
        currency: "USD".into(),
        subject: "x".repeat(60),
        ..Default::default()
    };
    let out = breaks_table(&[b], 3);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID  STATUS  CLASS  KIND") && lines[0].ends_with("SUBJECT"), "{out}");
    assert!(lines[1].starts_with("3   OPEN    2      amount_over  stripe  2026-12-01  1.00 USD"), "{out}");
    assert!(lines[1].ends_with(&format!("{}...", "x".repeat(37))), "{out}");
    assert_eq!(lines[2], "more: --after-id 3");
    assert_eq!(breaks_table(&[], 0), "no breaks\n");
}
