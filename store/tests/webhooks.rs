//! Webhook event retention, on every configured backend: the purge deletes events received
//! before the cut-off and keeps the others.

mod common;

use common::stores;
use payments_store::{WebhookEvent, WebhookRecord};

#[tokio::test]
async fn purge_deletes_old_events_only() {
    for store in stores().await {
        for id in ["old", "new"] {
            let event = WebhookEvent { psp: "stripe", event_id: id, event_type: "t", checkout_id: None, payload: "{}" };
            assert_eq!(store.record_webhook(&event).await.unwrap(), WebhookRecord::New);
        }
        sqlx::query("UPDATE webhook_event SET received_at_ms = 1000 WHERE event_id = 'old'")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(store.purge_webhook_events(2000).await.unwrap(), 1);
        let left: Vec<String> =
            sqlx::query_scalar("SELECT event_id FROM webhook_event").fetch_all(store.pool()).await.unwrap();
        assert_eq!(left, vec!["new".to_owned()]);
        assert_eq!(store.purge_webhook_events(2000).await.unwrap(), 0);
    }
}
