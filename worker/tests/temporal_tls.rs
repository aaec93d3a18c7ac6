//! The worker (and any client built by `payments_worker::temporal`) reaches a secured Temporal:
//! mutual TLS through a TLS-terminating proxy with a throwaway CA in front of the dev server.
//! With the CA and the client certificate it connects and runs checkouts; without the client
//! certificate, or without the CA, it cannot connect.

use payments_testkit::tls_proxy::TlsProxy;
use payments_testkit::{Db, Stack, StackOptions};
use payments_worker::temporal::{TemporalSecurity, connect_secured};
use rstest::rstest;
use std::process::{Command, Stdio};

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_checkouts_over_mutual_tls(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), worker: false, ..StackOptions::new() }).await;
    let upstream = stack.temporal_address.trim_start_matches("http://").to_owned();
    let proxy = TlsProxy::start(&upstream).await;
    let secured = TemporalSecurity {
        temporal_tls_ca: Some(proxy.ca_pem.clone()),
        temporal_tls_cert: Some(proxy.client_cert_pem.clone()),
        temporal_tls_key: Some(proxy.client_key_pem.clone()),
        ..TemporalSecurity::default()
    };
    connect_secured(&proxy.url, "default", &secured).await.expect("mutual TLS with the CA and a client certificate");
    let no_client_cert =
        TemporalSecurity { temporal_tls_ca: Some(proxy.ca_pem.clone()), ..TemporalSecurity::default() };
    assert!(
        connect_secured(&proxy.url, "default", &no_client_cert).await.is_err(),
        "the proxy requires a client certificate"
    );
    let no_ca = TemporalSecurity { temporal_tls_ca: None, ..secured.clone() };
    assert!(connect_secured(&proxy.url, "default", &no_ca).await.is_err(), "an unknown CA is refused");
    // An http:// address is dialled as https:// once TLS is configured.
    let http_url = proxy.url.replace("https://", "http://");
    connect_secured(&http_url, "default", &secured).await.expect("TLS on an http:// address");

    let c = stack.worker_config();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_payments-worker"))
        .env("TEMPORAL_ADDRESS", &proxy.url)
        .env("TEMPORAL_TLS_CA", &proxy.ca_pem)
        .env("TEMPORAL_TLS_CERT", &proxy.client_cert_pem)
        .env("TEMPORAL_TLS_KEY", &proxy.client_key_pem)
        .env("PAYMENTS_TASK_QUEUE", &c.shared.task_queue)
        .env("DATABASE_URL", &c.shared.database_url)
        .env("PSP_BASE_URL", &c.psp_base_url)
        .env("PSP_SECRET_KEY", "sk_test_testkit")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn payments-worker");
    let (id, po) = stack.post_one_order("pm_card_visa", "12.00", "USD").await;
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status.as_str(), "SUCCESS", "{done:?}");
    assert_eq!(stack.captures(&po).await.len(), 1);
    // The worker did the work over TLS and is still running: it neither crashed nor exited.
    assert!(worker.try_wait().expect("try_wait").is_none(), "the worker process ended during the test");
    worker.kill().expect("kill the worker");
    worker.wait().expect("reap the worker");
    stack.shutdown().await;
}
