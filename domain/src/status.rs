//! Payment order status and the transitions allowed between statuses.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where one payment order stands (seed 001's `payment_order_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentOrderStatus {
    /// Stored, nothing sent to the PSP yet.
    NotStarted,
    /// Sent (or about to be sent) to the PSP.
    Executing,
    /// The PSP captured the money.
    Success,
    /// The PSP declined, or the checkout was refused before any charge.
    Failed,
    /// The PSP outcome is not known yet; resolved by a status query, never guessed.
    Unknown,
}

/// A status string read from storage or the wire is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment order status {0:?}")]
pub struct UnknownStatus(pub String);

impl PaymentOrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [PaymentOrderStatus; 5] =
        [Self::NotStarted, Self::Executing, Self::Success, Self::Failed, Self::Unknown];

    /// The stored / wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotStarted => "NOT_STARTED",
            Self::Executing => "EXECUTING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }

    /// SUCCESS and FAILED never change again (refunds are separate records, not a status).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Success | Self::Failed)
    }

    /// Whether `self -> to` is a legal move. UNKNOWN may only be left for a final answer from
    /// the PSP; a terminal status is never left.
    pub fn can_transition_to(&self, to: PaymentOrderStatus) -> bool {
        use PaymentOrderStatus::*;
        matches!(
            (self, to),
            (NotStarted, Executing)
                | (NotStarted, Failed)
                | (Executing, Success)
                | (Executing, Failed)
                | (Executing, Unknown)
                | (Unknown, Success)
                | (Unknown, Failed)
        )
    }
}

impl fmt::Display for PaymentOrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentOrderStatus::*;
    use super::*;

    #[test]
    fn terminal_statuses_are_never_left() {
        for to in PaymentOrderStatus::ALL {
            assert!(!Success.can_transition_to(to));
            assert!(!Failed.can_transition_to(to));
        }
        assert!(Executing.can_transition_to(Unknown));
        assert!(Unknown.can_transition_to(Success));
        assert!(!Unknown.can_transition_to(NotStarted));
    }

    #[test]
    fn spelling_round_trips() {
        for st in PaymentOrderStatus::ALL {
            assert_eq!(PaymentOrderStatus::parse(st.as_str()).unwrap(), st);
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
    }
}
