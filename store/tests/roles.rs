//! The database defends the books itself: a wallet balance cannot go negative (both backends),
//! and on PostgreSQL the services' role (granted rows only, `Store::grant_service_role`) works
//! normally but cannot disable or drop the ledger's and history's triggers, alter or drop the
//! tables, or TRUNCATE them.

mod common;

use common::{BOTH, captured, stores};
use payments_store::test_db::postgres_url;
use payments_store::{ApiKeyDraft, ApiKeyMode, ApiScope, Store};

/// A raw UPDATE or INSERT of a negative wallet balance is refused.
#[tokio::test]
async fn wallet_balances_cannot_go_negative() {
    for store in stores().await {
        captured(&store, "po-neg", "seller-neg", "5.00", BOTH).await;
        let update = sqlx::query("UPDATE wallet SET balance_minor = -1 WHERE seller_account = 'seller-neg'")
            .execute(store.pool())
            .await;
        assert!(update.is_err(), "{:?}: a negative balance was written", store.backend());
        let insert = sqlx::query(
            "INSERT INTO wallet (seller_account, currency, balance_minor, updated_at_ms) VALUES ('s-x', 'USD', -5, 1)",
        )
        .execute(store.pool())
        .await;
        assert!(insert.is_err(), "{:?}: a negative wallet was inserted", store.backend());
    }
}

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
        "ALTER TABLE wallet DROP CONSTRAINT wallet_balance_not_negative",
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
