//! Payout providers: one trait, [`PayoutProvider`], with an adapter per provider (Toss Payments
//! payouts v2 in `toss.rs`, Stripe Connect in `stripe.rs`), the webhook parsers that turn a
//! provider's verified event into a [`ProviderEvent`], and (in `activities.rs`, later) the
//! activities the payout workflow calls.
//!
//! Errors reuse [`PspError`]'s classification: retryable faults (5xx, 429, connection errors),
//! refusals, and [`PspError::OutcomeUnknown`] when a request may have been acted on but its
//! answer was lost. A payout's `reference` (`payout-{seller}-{currency}-{period}`) is the
//! provider's idempotency key and reference (Toss `refPayoutId`, Stripe `Idempotency-Key` and
//! `transfer_group`), so sending it again can never pay twice.

pub mod activities;
pub use activities::{PayoutActivities, PayoutProviders};
pub mod jwe;
pub mod stripe;
pub mod toss;

use crate::psp::{PspError, PspFuture};
use payments_domain::{Money, SellerAccount};
use payments_recon::{Day, StatementPayout, StatementStatus};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which provider a seller is paid through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutProviderKind {
    /// Toss Payments payouts v2 (지급대행), KRW.
    TossPayouts,
    /// Stripe Connect: a transfer to the seller's connected account, then a payout from it.
    StripeConnect,
}

impl PayoutProviderKind {
    /// Stable name (configuration, storage).
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutProviderKind::TossPayouts => "toss_payouts",
            PayoutProviderKind::StripeConnect => "stripe_connect",
        }
    }
    /// Parses [`PayoutProviderKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "toss_payouts" => Some(PayoutProviderKind::TossPayouts),
            "stripe_connect" => Some(PayoutProviderKind::StripeConnect),
            _ => None,
        }
    }
}

/// A seller's bank account, sent to the provider once at registration and never stored by us
/// (we keep the provider's seller reference and a masked number). `Debug` masks the number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    /// Bank code (Toss: the two/three-digit Korean bank code; Stripe: routing number).
    pub bank_code: String,
    /// Account number.
    pub account_number: String,
    /// Account holder's name.
    pub holder_name: String,
}

impl BankAccount {
    /// The number with all but the last four characters replaced by `*`.
    pub fn masked_number(&self) -> String {
        let n = self.account_number.chars().count();
        self.account_number.chars().enumerate().map(|(i, c)| if i + 4 < n { '*' } else { c }).collect()
    }
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankAccount")
            .field("bank_code", &self.bank_code)
            .field("account_number", &self.masked_number())
            .field("holder_name", &self.holder_name)
            .finish()
    }
}

/// What a provider needs to register a seller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerRegistration {
    /// Our seller id: Toss `refSellerId`, Stripe account `metadata[seller_account]`.
    pub seller: SellerAccount,
    /// Legal or display name.
    pub name: String,
    /// Contact e-mail.
    pub email: String,
    /// ISO 3166-1 alpha-2 country of the bank account (`KR`, `US`, ...).
    pub country: String,
    /// Where the money goes.
    pub bank_account: BankAccount,
}

/// A seller as the provider sees it, normalised to Toss's vocabulary (Stripe maps
/// `payouts_enabled` to [`ProviderSellerStatus::Approved`], an account with requirements due to
/// [`ProviderSellerStatus::KycRequired`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProviderSellerStatus {
    /// Registered; the provider still has to identify the seller. Not payable.
    ApprovalRequired,
    /// Identified; payable (Toss: up to the KYC threshold).
    PartiallyApproved,
    /// KYC due before the next payout. Not payable.
    KycRequired,
    /// Fully approved; payable.
    Approved,
}

impl ProviderSellerStatus {
    /// Whether the provider accepts payouts to this seller.
    pub fn is_payable(self) -> bool {
        matches!(self, ProviderSellerStatus::PartiallyApproved | ProviderSellerStatus::Approved)
    }
}

/// A seller registered at a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSeller {
    /// The provider's id of the seller (Toss seller id, Stripe `acct_...`): the payout
    /// destination.
    pub provider_ref: String,
    /// Our seller id, as the provider echoes it (Toss `refSellerId`, Stripe metadata).
    pub seller: SellerAccount,
    /// Status.
    pub status: ProviderSellerStatus,
}

/// A payout to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutOrder {
    /// `payout-{seller}-{currency}-{period}`: the idempotency key and the provider's reference.
    pub reference: String,
    /// [`ProviderSeller::provider_ref`].
    pub destination: String,
    /// Positive amount.
    pub amount: Money,
    /// Short text for the seller's bank statement (Toss: at most 7 characters).
    pub description: String,
}

/// Longest payout reference sent to a provider: well inside Stripe's 255-character
/// idempotency keys once `:transfer` / `:payout` is appended, and our own bound for Toss's
/// `refPayoutId` (Toss documents none).
pub const REFERENCE_LEN_MAX: usize = 100;

impl PayoutOrder {
    /// Refuses, before any call, an order no provider can take: an empty or overlong
    /// reference or destination, or an amount that is not positive.
    pub fn check(&self) -> Result<(), PspError> {
        let bad_text = |t: &str| t.is_empty() || t.chars().count() > REFERENCE_LEN_MAX;
        if bad_text(&self.reference) || bad_text(&self.destination) {
            return Err(PspError::InvalidRequest(format!(
                "payout reference and destination must be 1 to {REFERENCE_LEN_MAX} characters"
            )));
        }
        if self.amount.amount_minor() <= 0 {
            return Err(PspError::InvalidRequest(format!("payout {} has no positive amount", self.reference)));
        }
        Ok(())
    }
}

/// A payout's status, normalised across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProviderPayoutStatus {
    /// Accepted, not sent to the bank yet (Toss `REQUESTED`, Stripe `pending`); cancellable.
    Requested,
    /// On its way (Toss `IN_PROGRESS`, Stripe `in_transit`).
    InTransit,
    /// The provider reports it paid (Toss `COMPLETED`, Stripe `paid`). Not final: a bank can
    /// still return it.
    Paid,
    /// Failed or returned (Toss `FAILED`, Stripe `failed`); the money is back at the provider.
    Failed,
    /// Canceled before it was sent (Toss `CANCELED`, Stripe `canceled`).
    Canceled,
}

/// A payout as the provider describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPayout {
    /// The provider's id (Toss payout id, Stripe `po_...`).
    pub provider_payout_id: String,
    /// Our reference, echoed by the provider.
    pub reference: String,
    /// Status.
    pub status: ProviderPayoutStatus,
    /// Amount.
    pub amount: Money,
    /// The provider's failure code (Toss `error.code`, Stripe `failure_code`).
    pub failure_code: Option<String>,
    /// The provider's failure message.
    pub failure_message: Option<String>,
}

/// A provider webhook event, after its signature was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderEvent {
    /// A payout changed.
    Payout(ProviderPayout),
    /// A seller changed (approval, KYC).
    Seller(ProviderSeller),
    /// An event of a kind we do not act on (recorded only).
    Other {
        /// The provider's event type.
        event_type: String,
    },
}

/// A payout provider.
pub trait PayoutProvider: Send + Sync + 'static {
    /// Which provider this is.
    fn kind(&self) -> PayoutProviderKind;

    /// Registers a seller (idempotent by `registration.seller`: registering again answers the
    /// existing seller).
    fn register_seller<'a>(&'a self, registration: &'a SellerRegistration) -> PspFuture<'a, ProviderSeller>;

    /// The seller's current state at the provider.
    fn seller<'a>(&'a self, provider_ref: &'a str) -> PspFuture<'a, ProviderSeller>;

    /// Sends a payout. Idempotent by `order.reference`: sending the same reference again
    /// answers the payout made the first time and never pays twice. A seller the provider
    /// does not pay is [`PspError::InvalidRequest`].
    fn create_payout<'a>(&'a self, order: &'a PayoutOrder) -> PspFuture<'a, ProviderPayout>;

    /// The payout with our reference, if the provider made it (used after a lost answer).
    fn find_payout<'a>(&'a self, order: &'a PayoutOrder) -> PspFuture<'a, Option<ProviderPayout>>;

    /// Cancels a payout still [`ProviderPayoutStatus::Requested`]; answers its state after the
    /// attempt (it may already be in transit or paid).
    fn cancel_payout<'a>(
        &'a self,
        order: &'a PayoutOrder,
        provider_payout_id: &'a str,
    ) -> PspFuture<'a, ProviderPayout>;

    /// The provider's payout statement for reconciliation: every payout it lists dated on or
    /// after `from` (Toss `payoutDate`; Stripe `created`, as a UTC day), read newest first
    /// until an older one. Stripe lists each connected account of `destinations` in turn;
    /// Toss lists the platform's payouts and needs none.
    fn statement<'a>(&'a self, destinations: &'a [String], from: Day) -> PspFuture<'a, Vec<StatementPayout>>;
}

/// Pages of a payout statement read before giving up (per account for Stripe): 10,000
/// payouts at 100 a page.
pub const STATEMENT_PAGES_MAX: usize = 100;

/// A listed payout as a statement item: `day` is the provider's day of it, `raw` the item as
/// listed, `return_id` the provider's id of the money coming back, when it names one.
pub fn statement_item(payout: ProviderPayout, day: Day, return_id: Option<String>, raw: String) -> StatementPayout {
    let status = match payout.status {
        ProviderPayoutStatus::Requested | ProviderPayoutStatus::InTransit | ProviderPayoutStatus::Paid => {
            StatementStatus::Out
        }
        ProviderPayoutStatus::Failed => StatementStatus::Failed,
        ProviderPayoutStatus::Canceled => StatementStatus::Canceled,
    };
    StatementPayout {
        provider_payout_id: payout.provider_payout_id,
        reference: payout.reference,
        amount_minor: payout.amount.amount_minor(),
        currency: payout.amount.currency().code().to_owned(),
        status,
        return_id,
        day,
        raw,
    }
}
