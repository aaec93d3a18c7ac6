//! Domain types of the payment platform: money, currencies, validated ids, order statuses and
//! the validation of a checkout request. No I/O; every other crate builds on these.
//!
//! Layout: `currency` (ISO 4217 codes and minor units), `money` (parse wire strings into integer
//! minor units, checked arithmetic), `ids` (validated id newtypes), `status` (order statuses and
//! allowed transitions), `card` (card-number detection so PANs never reach storage), `checkout`
//! (a checkout request from the wire, validated into [`checkout::NewCheckout`]), `fees`
//! (platform fees and their proportional refund, in integer minor units, with the written
//! rounding decision).

pub mod card;
pub mod checkout;
pub mod currency;
pub mod fees;
pub mod ids;
pub mod money;
pub mod status;

pub use checkout::{CheckoutDraft, FieldError, NewCheckout, NewPaymentOrder, OrderDraft, PaymentMethod};
pub use currency::Currency;
pub use ids::{BuyerId, CheckoutId, IdError, PaymentOrderId, SellerAccount};
pub use money::{Money, MoneyError};
pub use status::PaymentOrderStatus;
