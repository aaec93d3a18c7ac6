//! Creating and reading checkouts. The gateway stores the event and its NOT_STARTED orders in
//! one transaction before it starts the workflow, so nothing is charged that is not recorded.

use crate::records::{CheckoutRecord, ORDER_COLUMNS, OrderRecord, PaymentFlow, corrupt, flag};
use crate::tokens::TokenVault;
use crate::{Store, StoreError, is_unique_violation, now_ms};
use payments_domain::{BuyerId, CheckoutId, NewCheckout, PaymentMethod, PaymentOrderStatus};
use sqlx::{Any, Row, Transaction};

/// Attempts of [`Store::create_checkout`] when identical requests race.
const CREATE_ATTEMPTS_MAX: usize = 3;

/// Result of [`Store::create_checkout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored now.
    Created(CheckoutRecord),
    /// The same checkout was stored before (a retry or a concurrent duplicate): nothing written.
    Existing(CheckoutRecord),
}

impl CreateOutcome {
    /// The stored checkout either way.
    pub fn record(&self) -> &CheckoutRecord {
        match self {
            CreateOutcome::Created(r) | CreateOutcome::Existing(r) => r,
        }
    }
}

impl Store {
    /// Stores a new checkout with its orders (NOT_STARTED) and their first history rows, in one
    /// transaction; its payment token is sealed ([`TokenVault`]). The same checkout again
    /// answers [`CreateOutcome::Existing`]; a checkout id reused with other contents, or an
    /// order id owned by another checkout, is refused. `client_key` (the request's
    /// Idempotency-Key) is bound to the checkout it creates: the same key with another
    /// checkout is [`StoreError::ClientKeyTaken`].
    pub async fn create_checkout(
        &self,
        checkout: &NewCheckout,
        client_key: Option<&str>,
    ) -> Result<CreateOutcome, StoreError> {
        // Two identical requests can race past the existence check (PostgreSQL, READ
        // COMMITTED): the loser sees a unique violation or its own order ids already taken by
        // the same checkout. Trying again reads the winner's rows and answers `Existing` (or
        // `ClientKeyTaken` when the winner used the key for another checkout).
        for _ in 0..CREATE_ATTEMPTS_MAX - 1 {
            match self.try_create_checkout(checkout, client_key).await {
                Err(StoreError::Database(e)) if is_unique_violation(&e) => continue,
                Err(StoreError::OrderIdTaken { .. }) if self.checkout(&checkout.checkout_id).await?.is_some() => {
                    continue;
                }
                other => return other,
            }
        }
        self.try_create_checkout(checkout, client_key).await
    }

    async fn try_create_checkout(
        &self,
        checkout: &NewCheckout,
        client_key: Option<&str>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(key) = client_key {
            let owner = sqlx::query("SELECT checkout_id FROM payment_event WHERE client_key = $1")
                .bind(key.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(owner) = owner
                && owner.try_get::<String, _>("checkout_id")? != checkout.checkout_id.as_str()
            {
                return Err(StoreError::ClientKeyTaken(key.to_owned()));
            }
        }
        if let Some(existing) = load_checkout(&mut tx, &checkout.checkout_id).await? {
            let stored_token = stored_token(&mut tx, &checkout.checkout_id).await?;
            tx.rollback().await?;
            return if same_request(&existing, &self.vault, &stored_token, checkout)? {
                Ok(CreateOutcome::Existing(existing))
            } else {
                Err(StoreError::CheckoutMismatch(checkout.checkout_id.to_string()))
            };
        }
        for (index, order) in checkout.orders.iter().enumerate() {
            let taken = sqlx::query("SELECT checkout_id FROM payment_order WHERE payment_order_id = $1")
                .bind(order.payment_order_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(StoreError::OrderIdTaken { index, payment_order_id: order.payment_order_id.to_string() });
            }
        }
        let now = now_ms();
        let buyer_info = serde_json::to_string(&checkout.buyer_info)
            .map_err(|e| StoreError::Precondition(format!("buyer_info: {e}")))?;
        let token = match &checkout.payment {
            PaymentMethod::Token(token) => self.vault.seal(&checkout.checkout_id, token)?,
            PaymentMethod::Hosted => String::new(),
        };
        sqlx::query(
            "INSERT INTO payment_event (checkout_id, buyer_id, buyer_info, payment_token, flow, \
             is_payment_done, created_at_ms, updated_at_ms, client_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(checkout.checkout_id.as_str())
        .bind(checkout.buyer_id.as_str())
        .bind(buyer_info)
        .bind(token)
        .bind(PaymentFlow::of(&checkout.payment).as_str())
        .bind(false)
        .bind(now)
        .bind(now)
        .bind(client_key.map(str::to_owned))
        .execute(&mut *tx)
        .await?;
        for (position, order) in checkout.orders.iter().enumerate() {
            sqlx::query(
                "INSERT INTO payment_order (payment_order_id, checkout_id, position, seller_account, \
                 amount_minor, currency, status, wallet_updated, ledger_updated, created_at_ms, \
                 updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(order.payment_order_id.as_str())
            .bind(checkout.checkout_id.as_str())
            .bind(position as i32)
            .bind(order.seller_account.as_str())
            .bind(order.amount.amount_minor())
            .bind(order.amount.currency().code())
            .bind(PaymentOrderStatus::NotStarted.as_str())
            .bind(false)
            .bind(false)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            crate::orders::append_history(
                &mut tx,
                &order.payment_order_id,
                None,
                PaymentOrderStatus::NotStarted,
                "checkout received",
                now,
            )
            .await?;
        }
        let record = load_checkout(&mut tx, &checkout.checkout_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(checkout.checkout_id.to_string()))?;
        tx.commit().await?;
        Ok(CreateOutcome::Created(record))
    }

    /// Reads a checkout with its orders.
    pub async fn checkout(&self, id: &CheckoutId) -> Result<Option<CheckoutRecord>, StoreError> {
        let mut conn = self.pool.begin().await?;
        let record = load_checkout(&mut conn, id).await?;
        conn.commit().await?;
        Ok(record)
    }

    /// Marks the checkout done when every order is terminal and every successful order is in
    /// the wallet and the ledger (a REVERSED order is done: its capture was given back and
    /// its bookings reversed). Returns whether it is done. Idempotent.
    pub async fn complete_checkout(&self, id: &CheckoutId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let record = load_checkout(&mut tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("checkout {id}")))?;
        let done = record.orders.iter().all(|o| {
            matches!(o.status, PaymentOrderStatus::Failed | PaymentOrderStatus::Reversed)
                || (o.status == PaymentOrderStatus::Success && o.wallet_updated && o.ledger_updated)
        });
        if done && !record.is_payment_done {
            sqlx::query("UPDATE payment_event SET is_payment_done = $1, updated_at_ms = $2 WHERE checkout_id = $3")
                .bind(true)
                .bind(now_ms())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done)
    }
}

/// Whether `new` asks for exactly what `existing` holds (the token compared opened).
fn same_request(
    existing: &CheckoutRecord,
    vault: &TokenVault,
    stored_token: &str,
    new: &NewCheckout,
) -> Result<bool, StoreError> {
    let same_payment = match &new.payment {
        PaymentMethod::Hosted => existing.flow == PaymentFlow::Hosted,
        PaymentMethod::Token(token) => {
            existing.flow == PaymentFlow::Direct && vault.open(&existing.checkout_id, stored_token)? == *token
        }
    };
    Ok(same_payment
        && existing.buyer_id == new.buyer_id
        && existing.orders.len() == new.orders.len()
        && existing.orders.iter().zip(&new.orders).all(|(e, n)| {
            e.payment_order_id == n.payment_order_id && e.seller_account == n.seller_account && e.amount == n.amount
        }))
}

/// The stored (sealed) token column of a checkout.
async fn stored_token(tx: &mut Transaction<'static, Any>, id: &CheckoutId) -> Result<String, StoreError> {
    let row = sqlx::query("SELECT payment_token FROM payment_event WHERE checkout_id = $1")
        .bind(id.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("payment_token")?)
}

pub(crate) async fn load_checkout(
    tx: &mut Transaction<'static, Any>,
    id: &CheckoutId,
) -> Result<Option<CheckoutRecord>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT checkout_id, buyer_id, buyer_info, flow, client_key, \
         CASE WHEN is_payment_done THEN 1 ELSE 0 END AS is_payment_done, created_at_ms, \
         CASE WHEN workflow_started_at_ms IS NULL THEN 0 ELSE 1 END AS workflow_started \
         FROM payment_event WHERE checkout_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let orders =
        sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM payment_order WHERE checkout_id = $1 ORDER BY position"))
            .bind(id.as_str())
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(OrderRecord::from_row)
            .collect::<Result<Vec<_>, _>>()?;
    let info: String = row.try_get("buyer_info")?;
    Ok(Some(CheckoutRecord {
        checkout_id: CheckoutId::parse(row.try_get::<String, _>("checkout_id")?)
            .map_err(|e| corrupt("payment_event", e))?,
        buyer_id: BuyerId::parse(row.try_get::<String, _>("buyer_id")?).map_err(|e| corrupt("payment_event", e))?,
        buyer_info: serde_json::from_str(&info).map_err(|e| corrupt("buyer_info", e))?,
        flow: match row.try_get::<String, _>("flow")?.as_str() {
            "hosted" => PaymentFlow::Hosted,
            "direct" => PaymentFlow::Direct,
            other => return Err(corrupt("payment_event.flow", other)),
        },
        is_payment_done: flag(&row, "is_payment_done")?,
        orders,
        created_at_ms: row.try_get("created_at_ms")?,
        client_key: row.try_get("client_key")?,
        workflow_started: flag(&row, "workflow_started")?,
    }))
}
