//! `paymentsctl recon` as an operator runs it, against a real stack whose worker matches only
//! the settlement files imported by hand (`RECON_ORIGIN=imported`), on both databases: the
//! simulator's daily CSV is imported, the day reconciled and its report printed, breaks listed,
//! shown and acted on (resolved, refused an acceptance, a suggested fix approved and healed),
//! and the REST twins under `/v1/admin/recon` answer the same. Every recon call, gRPC and REST,
//! needs the `admin` scope.

use payments_domain::PaymentOrderId;
use payments_proto::payments_v1 as pb;
use payments_recon::Psp;
use payments_store::{BREAKS_LIMIT_MAX, BreakFilter, BreakStatus, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions, http_client, unique};
use paymentsctl::admin::{self, AdminTarget};
use rstest::rstest;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the binary with the stack's addresses and `admin_key` as its admin key.
async fn paymentsctl_as(stack: &Stack, admin_key: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_paymentsctl"));
    command
        .args(args)
        .env("PAYMENTS_GATEWAY_URL", &stack.rest_url)
        .env("PAYMENTS_GATEWAY_GRPC", &stack.grpc_url)
        .env("PAYMENTS_API_KEY", &stack.payments_key)
        .env("PAYMENTS_ADMIN_KEY", admin_key)
        .env("TEMPORAL_ADDRESS", &stack.temporal_address);
    tokio::task::spawn_blocking(move || command.output().expect("run paymentsctl")).await.unwrap()
}

/// stdout of a run with the admin key that must succeed.
async fn printed(stack: &Stack, args: &[&str]) -> String {
    let out = paymentsctl_as(stack, &stack.admin_key, args).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "paymentsctl {args:?}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    stdout.into_owned()
}

/// stderr of a run with the admin key that must fail.
async fn refused(stack: &Stack, args: &[&str]) -> String {
    let out = paymentsctl_as(stack, &stack.admin_key, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "paymentsctl {args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.starts_with("error:") && !stderr.contains(&stack.admin_key), "{stderr}");
    stderr
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim_end() == line)
}

/// A stack whose runs match only what `recon import` stored.
async fn stack(db: Db) -> Option<Stack> {
    let url = db.url().await?;
    let recon: fn(&mut payments_worker::recon::ReconConfig) = |c| c.recon_origin = "imported".to_owned();
    Some(Stack::start(StackOptions { database_url: Some(url), recon: Some(recon), ..StackOptions::new() }).await)
}

/// Today's Stripe settlement day (UTC).
fn today() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Psp::Stripe.day_of_ms(i64::try_from(now.as_millis()).unwrap()).to_string()
}

/// Saves the simulator's Stripe CSV of `day` to a file of this test; answers its path.
async fn settlement_file(stack: &Stack, day: &str) -> PathBuf {
    let url = format!("{}/_sim/settlements/stripe/{day}.csv", stack.sim_url);
    let response = stack.http.get(url).send().await.expect("GET the settlement CSV");
    assert_eq!(response.status().as_u16(), 200);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{day}.csv", unique("stripe")));
    std::fs::write(&path, response.bytes().await.unwrap()).unwrap();
    path
}

/// Two captured checkouts; answers their order ids.
async fn two_captures(stack: &Stack) -> [String; 2] {
    let (c1, po1) = stack.post_one_order("pm_card_visa", "20.00", "USD").await;
    let (c2, po2) = stack.post_one_order("pm_card_visa", "21.00", "USD").await;
    stack.wait_done(&c1).await;
    stack.wait_done(&c2).await;
    [po1, po2]
}

/// A REST call with `key`: the status and the JSON body.
async fn rest(stack: &Stack, key: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = http_client(Some(key)).request(method, format!("{}{path}", stack.rest_url));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("REST call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The day's CSV imports once (again: nothing stored), the run matches both lines with no
/// break and prints so, no break is listed, and REST answers the same run and break list; a
/// run asked again over REST is answered completed with the same report.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_day_is_imported_run_and_reported(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    two_captures(&stack).await;
    let day = today();
    let file = settlement_file(&stack, &day).await;
    let file = file.to_str().unwrap();

    let imported = printed(&stack, &["recon", "import", file, "--psp", "stripe"]).await;
    assert!(has_line(&imported, "lines stored   2") && has_line(&imported, "already stored no"), "{imported}");
    let again = printed(&stack, &["recon", "import", file, "--psp", "stripe"]).await;
    assert!(has_line(&again, "lines stored   0"), "{again}");
    assert!(again.contains("already stored yes"), "{again}");

    let report = printed(&stack, &["recon", "run", "--psp", "stripe", "--date", &day]).await;
    for line in ["status         COMPLETED", "lines          2", "matched        2", "breaks         0"] {
        assert!(has_line(&report, line), "the report lacks {line:?}:\n{report}");
    }
    assert!(has_line(&report, "open           class 1: 0, class 2: 0, class 3: 0"), "{report}");
    let listed = printed(&stack, &["recon", "breaks", "--psp", "stripe"]).await;
    assert_eq!(listed, "no breaks\n");

    let grpc: Value =
        serde_json::from_str(&printed(&stack, &["recon", "report", "--psp", "stripe", "--date", &day, "--json"]).await)
            .unwrap();
    let (status, run) =
        rest(&stack, &stack.admin_key, reqwest::Method::GET, &format!("/v1/admin/recon/runs/stripe/{day}"), None).await;
    assert_eq!(status, 200, "{run}");
    for field in ["run_id", "psp", "day", "status", "attempts", "report", "error", "started_at_ms", "finished_at_ms"] {
        assert_eq!(run[field], grpc[field], "{field}: REST {run} gRPC {grpc}");
    }
    assert_eq!((run["status"].as_str(), run["report"]["matching"]["matched"].as_u64()), (Some("COMPLETED"), Some(2)));
    let (status, breaks) =
        rest(&stack, &stack.admin_key, reqwest::Method::GET, "/v1/admin/recon/breaks?psp=stripe", None).await;
    assert_eq!((status, breaks), (200, json!({"breaks": [], "next_after_id": 0})));

    let body = json!({"psp": "stripe", "day": day, "wait": true});
    let (status, rerun) =
        rest(&stack, &stack.admin_key, reqwest::Method::POST, "/v1/admin/recon/runs", Some(body)).await;
    assert_eq!(
        (status, rerun["status"].as_str(), rerun["attempts"].as_i64()),
        (200, Some("COMPLETED"), Some(2)),
        "{rerun}"
    );
    assert_eq!(rerun["report"]["matching"]["matched"].as_u64(), Some(2), "{rerun}");
    let all = BreakFilter { limit: BREAKS_LIMIT_MAX, ..BreakFilter::default() };
    assert_eq!(stack.store.recon_breaks(&all).await.unwrap().len(), 0, "no break was kept");
    stack.shutdown().await;
}

/// A PSP line 1.00 USD over our capture is an `amount_over` break of finance's queue (class
/// 2): it has no fix to approve; `recon resolve` closes it as the admin key's holder, and a
/// resolved break can no longer be accepted (FAILED_PRECONDITION over gRPC, 400
/// `break_not_actionable` over REST).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_break_is_resolved_and_then_not_accepted(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let [over, _] = two_captures(&stack).await;
    let breaks =
        json!({"psp": "stripe", "breaks": [{"kind": "amount", "target": {"order_id": over}, "delta_minor": 100}]});
    let response =
        stack.http.post(format!("{}/_sim/settlements/breaks", stack.sim_url)).json(&breaks).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let day = today();
    let file = settlement_file(&stack, &day).await;
    printed(&stack, &["recon", "import", file.to_str().unwrap(), "--psp", "stripe"]).await;

    let report = printed(&stack, &["recon", "run", "--psp", "stripe", "--date", &day]).await;
    let kind_line = report.lines().find(|l| l.trim_start().starts_with("class 2  amount_over ")).unwrap_or_default();
    assert!(kind_line.ends_with("1  1.00 USD"), "no amount_over line in:\n{report}");
    let found = open_break(&stack, "amount_over").await;
    assert_eq!((found["class"].as_i64(), found["amount"].as_str()), (Some(2), Some("1.00 USD")), "{found}");
    let id = found["break_id"].as_i64().unwrap().to_string();
    let table = printed(&stack, &["recon", "breaks", "--status", "open", "--class", "2"]).await;
    assert!(table.lines().any(|l| l.starts_with(&format!("{id} ")) && l.contains("amount_over")), "{table}");
    let shown = printed(&stack, &["recon", "show", &id]).await;
    assert!(has_line(&shown, "kind           amount_over") && has_line(&shown, "status         OPEN"), "{shown}");

    let stderr = refused(&stack, &["recon", "approve", &id]).await;
    assert!(stderr.contains("no suggested fix"), "{stderr}");
    let note = "the PSP corrected its report by phone";
    let resolved = printed(&stack, &["recon", "resolve", &id, "--note", note]).await;
    assert!(has_line(&resolved, "status         RESOLVED"), "{resolved}");
    let stored = stack.store.recon_break(id.parse().unwrap()).await.unwrap().expect("the break");
    assert_eq!(stored.status, BreakStatus::Resolved);
    assert_eq!((stored.resolution.as_deref(), stored.resolved_by.as_deref()), (Some(note), Some("testkit-admin")));

    let stderr = refused(&stack, &["recon", "accept", &id, "--note", "fine for now", "--days", "7"]).await;
    assert!(stderr.contains("RESOLVED"), "{stderr}");
    let mut client = admin::connect(&stack.admin_target()).await.unwrap();
    let accept = pb::AcceptReconBreakRequest { break_id: stored.break_id, note: "fine".into(), days: 7 };
    let status = client.accept_recon_break(accept).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let path = format!("/v1/admin/recon/breaks/{id}/accept");
    let (code, body) =
        rest(&stack, &stack.admin_key, reqwest::Method::POST, &path, Some(json!({"note": "fine", "days": 7}))).await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("break_not_actionable")), "{body}");
    let (code, body) =
        rest(&stack, &stack.admin_key, reqwest::Method::GET, &format!("/v1/admin/recon/breaks/{id}"), None).await;
    assert_eq!(
        (code, body["status"].as_str(), body["resolved_by"].as_str()),
        (200, Some("RESOLVED"), Some("testkit-admin"))
    );
    assert_eq!(body["evidence"]["transaction_ids"].as_array().map(Vec::len), Some(1), "{body}");
    stack.shutdown().await;
}

/// The open break of `kind`, as `recon breaks --json` lists it.
async fn open_break(stack: &Stack, kind: &str) -> Value {
    let listed: Value =
        serde_json::from_str(&printed(stack, &["recon", "breaks", "--status", "open", "--json"]).await).unwrap();
    let found = listed["breaks"].as_array().unwrap().iter().find(|b| b["kind"] == kind).cloned();
    found.unwrap_or_else(|| panic!("no open {kind} break: {listed}"))
}

/// A refund made in the PSP's dashboard (read from the PSP's API, the worker's default origin)
/// is `refund_missing_in_books`: `recon approve` runs its suggested fix through the refund path
/// (the refund recorded and booked, the break HEALING with the approver's name), a second
/// approval is refused, and the next run heals it.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_refund_is_approved_and_healed(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let (checkout, po) = stack.post_one_order("pm_card_visa", "20.00", "USD").await;
    stack.wait_done(&checkout).await;
    let order = stack.store.order(&PaymentOrderId::parse(po.as_str()).unwrap()).await.unwrap().expect("order");
    let dashboard = json!({"psp": "stripe", "payment_reference": order.psp_reference.expect("captured"),
        "amount_minor": 400, "reason": "requested_by_customer"});
    let response =
        stack.http.post(format!("{}/_sim/dashboard/refunds", stack.sim_url)).json(&dashboard).send().await.unwrap();
    assert!(response.status().is_success(), "dashboard refund: {}", response.status());
    let day = today();

    let report = printed(&stack, &["recon", "run", "--psp", "stripe", "--date", &day]).await;
    let kind_line =
        report.lines().find(|l| l.trim_start().starts_with("class 2  refund_missing_in_books ")).unwrap_or_default();
    assert!(kind_line.ends_with("1  -4.00 USD"), "no dashboard refund in:\n{report}");
    let found = open_break(&stack, "refund_missing_in_books").await;
    assert_eq!(found["suggested_fix"].as_str(), Some("record_psp_refund"), "{found}");
    let id = found["break_id"].as_i64().unwrap().to_string();
    let approved = printed(&stack, &["recon", "approve", &id]).await;
    assert!(has_line(&approved, "status         HEALING"), "{approved}");
    let resolution = approved.lines().find_map(|l| l.strip_prefix("resolution")).unwrap_or_default().trim();
    assert!(resolution.starts_with("recorded the PSP's refund") && resolution.contains("testkit-admin"), "{approved}");
    let refunds = stack.store.refunds(&PaymentOrderId::parse(po.as_str()).unwrap()).await.unwrap();
    let refunds: Vec<(RefundStatus, i64)> = refunds.iter().map(|r| (r.status, r.amount.amount_minor())).collect();
    assert_eq!(refunds, [(RefundStatus::Succeeded, 400)]);
    let stderr = refused(&stack, &["recon", "approve", &id]).await;
    assert!(stderr.contains("already approved"), "{stderr}");

    let body = json!({"psp": "stripe", "day": day, "wait": true});
    let (code, rerun) = rest(&stack, &stack.admin_key, reqwest::Method::POST, "/v1/admin/recon/runs", Some(body)).await;
    assert_eq!((code, rerun["report"]["matching"]["healed"].as_u64()), (200, Some(1)), "{rerun}");
    let shown = printed(&stack, &["recon", "show", &id]).await;
    assert!(has_line(&shown, "status         HEALED"), "{shown}");
    stack.shutdown().await;
}

/// A key without the `admin` scope is refused by every recon call: PERMISSION_DENIED over
/// gRPC (the CLI says an admin key is needed) and 403 `api_key_scope_missing` over REST.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recon_calls_need_the_admin_scope(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let day = today();
    let payments = AdminTarget::new(&stack.grpc_url, &stack.payments_key);
    let mut client = admin::connect(&payments).await.unwrap();
    let run = pb::RunReconciliationRequest { psp: "stripe".into(), day: day.clone(), wait: false };
    let codes = [
        client.run_reconciliation(run).await.map(|_| ()),
        client
            .get_reconciliation_run(pb::GetReconciliationRunRequest { psp: "stripe".into(), day: day.clone() })
            .await
            .map(|_| ()),
        client.list_recon_breaks(pb::ListReconBreaksRequest::default()).await.map(|_| ()),
        client.resolve_recon_break(pb::ResolveReconBreakRequest { break_id: 1, note: "n".into() }).await.map(|_| ()),
        client.approve_recon_break(pb::ApproveReconBreakRequest { break_id: 1 }).await.map(|_| ()),
        client
            .import_settlement_report(futures::stream::iter([pb::ImportSettlementReportRequest {
                psp: "stripe".into(),
                name: "x.csv".into(),
                ..Default::default()
            }]))
            .await
            .map(|_| ()),
    ];
    for (i, code) in codes.into_iter().enumerate() {
        assert_eq!(code.unwrap_err().code(), tonic::Code::PermissionDenied, "call {i}");
    }
    let out = paymentsctl_as(&stack, &stack.payments_key, &["recon", "breaks"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("needs an admin key"), "{stderr}");

    use reqwest::Method;
    let routes = [
        (Method::POST, "/v1/admin/recon/runs".to_owned(), Some(json!({"psp": "stripe", "day": day}))),
        (Method::GET, format!("/v1/admin/recon/runs/stripe/{day}"), None),
        (Method::GET, "/v1/admin/recon/breaks".to_owned(), None),
        (Method::GET, "/v1/admin/recon/breaks/1".to_owned(), None),
        (Method::POST, "/v1/admin/recon/breaks/1/resolve".to_owned(), Some(json!({"note": "n"}))),
        (Method::POST, "/v1/admin/recon/breaks/1/accept".to_owned(), Some(json!({"note": "n", "days": 1}))),
        (Method::POST, "/v1/admin/recon/breaks/1/approve".to_owned(), Some(json!({}))),
        (Method::POST, "/v1/admin/recon/imports?psp=stripe&name=x.csv".to_owned(), None),
    ];
    for (method, path, body) in routes {
        let (status, answer) = rest(&stack, &stack.payments_key, method.clone(), &path, body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("api_key_scope_missing")), "{method} {path}");
    }
    let (status, answer) = rest(&stack, &stack.admin_key, Method::GET, "/v1/admin/recon/breaks/1", None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("resource_missing")), "{answer}");
    stack.shutdown().await;
}
