//! The gateway's probes: `/livez` answers while the process runs; `/healthz` is ready only
//! while the database and Temporal both answer, and says which one does not.

use payments_testkit::{Db, ProxyMode, Stack, StackOptions};
use rstest::rstest;
use serde_json::Value;
use std::time::Duration;

async fn probe(stack: &Stack, path: &str) -> (u16, Value) {
    let response = stack.http.get(format!("{}{path}", stack.rest_url)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Temporal cut: not ready (temporal), still alive; back: ready. PostgreSQL cut (through the
/// stack's proxy): not ready (database).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_temporal(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let postgres = url.starts_with("postgres");
    let options =
        StackOptions { database_url: Some(url), temporal_proxy: true, database_proxy: postgres, ..StackOptions::new() };
    let stack = Stack::start(options).await;
    let (status, body) = probe(&stack, "/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "{body}");
    assert_eq!((body["database"].as_str(), body["temporal"].as_str()), (Some("ok"), Some("ok")));

    stack.temporal_proxy.as_ref().unwrap().set(ProxyMode::Refuse);
    let body = stack
        .poll_until("not ready without Temporal", Duration::from_secs(30), || async {
            let (status, body) = probe(&stack, "/healthz").await;
            (status == 503).then_some(body)
        })
        .await;
    assert_eq!((body["status"].as_str(), body["database"].as_str()), (Some("not_ready"), Some("ok")), "{body}");
    assert_ne!(body["temporal"], "ok", "{body}");
    assert_eq!(probe(&stack, "/livez").await.0, 200, "alive all the same");
    stack.temporal_proxy.as_ref().unwrap().set(ProxyMode::Open);
    stack
        .poll_until("ready again", Duration::from_secs(30), || async {
            (probe(&stack, "/healthz").await.0 == 200).then_some(())
        })
        .await;

    // The database half needs a connection that can be lost: PostgreSQL's, cut at the proxy.
    // An SQLite database is a local file, and the only outage the testkit can make of it (a
    // held write lock) leaves `SELECT 1` answering in WAL mode, which is right: reads work.
    if postgres {
        let outage = stack.database_outage().await;
        let body = stack
            .poll_until("not ready without the database", Duration::from_secs(30), || async {
                let (status, body) = probe(&stack, "/healthz").await;
                (status == 503).then_some(body)
            })
            .await;
        assert_ne!(body["database"], "ok", "{body}");
        assert_eq!(body["temporal"], "ok", "{body}");
        outage.end(&stack).await;
        stack
            .poll_until("ready again", Duration::from_secs(30), || async {
                (probe(&stack, "/healthz").await.0 == 200).then_some(())
            })
            .await;
    }
    stack.shutdown().await;
}
