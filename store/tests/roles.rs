//! The database defends the books itself: on PostgreSQL the services' role (granted rows only, `Store::grant_service_role`) works
//! normally but cannot disable or drop the ledger's and history's triggers, alter or drop the
//! tables, or TRUNCATE them.

mod common;

use common::{BOTH, captured};
use payments_store::test_db::postgres_url;
use payments_store::{ApiKeyDraft, ApiKeyMode, ApiScope, Store};

/// `postgres://user@host/db` with `user` as the user.
fn as_user(url: &str, user: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap();
    let rest = &url[scheme_end..];
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{}{user}@{host}", &url[..scheme_end])
}

/// The service role does its job (connects at an up-to-date schema, writes rows) and is
/// refused every statement that could rewrite the books behind the triggers' back.
#[tokio::test]
async fn the_service_role_cannot_touch_the_guards() {
    let Some(url) = postgres_url().await else { return };
    let owner = Store::connect(&url).await.unwrap();
    captured(&owner, "po-role", "seller-role", "5.00", BOTH).await;
    let role = format!("payments_svc_{}", std::process::id());
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}")).execute(owner.pool()).await.ok();
    sqlx::query(&format!("CREATE ROLE {role} LOGIN")).execute(owner.pool()).await.unwrap();
    owner.grant_service_role(&role).await.unwrap();
    assert!(owner.grant_service_role("bad; DROP TABLE wallet").await.is_err(), "role names are checked");

    let service = Store::connect(&as_user(&url, &role)).await.expect("the service connects at an up-to-date schema");
    let draft = ApiKeyDraft { name: "svc".into(), scopes: vec![ApiScope::Payments], mode: ApiKeyMode::Test };
    service.create_api_key(&draft).await.expect("the service writes rows");
    assert!(service.verify().await.unwrap().is_consistent());

    for sql in [
        "ALTER TABLE ledger_entry DISABLE TRIGGER ALL",
        "ALTER TABLE payment_order_history DISABLE TRIGGER payment_order_history_append_only",
        "DROP TRIGGER ledger_entry_append_only ON ledger_entry",
        "DROP TRIGGER payment_order_history_no_truncate ON payment_order_history",
        "TRUNCATE payment_order_history",
        "TRUNCATE ledger_entry, ledger_transaction",
        "TRUNCATE wallet_movement",
        "ALTER TABLE wallet ADD CONSTRAINT sneaky CHECK (balance_minor > 0)",
        "DROP TABLE ledger_entry",
        "CREATE TABLE sneaky (x INT)",
    ] {
        let refused = sqlx::query(sql).execute(service.pool()).await;
        let err = refused.expect_err(sql).to_string();
        assert!(err.contains("must be owner") || err.contains("permission denied"), "{sql}: {err}");
    }
    assert!(owner.verify().await.unwrap().is_consistent(), "the books are intact");
    service.close().await;
    sqlx::query(&format!("DROP OWNED BY {role}")).execute(owner.pool()).await.unwrap();
    sqlx::query(&format!("DROP ROLE {role}")).execute(owner.pool()).await.unwrap();
}
