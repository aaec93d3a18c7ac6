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
    /// Captured, then returned to the buyer in full by the saga's compensation (a step after
    /// the capture failed permanently): the ledger holds the pay-in and its reversal, the
    /// seller's wallet nets to zero.
    Reversed,
}

/// A status string read from storage or the wire is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment order status {0:?}")]
pub struct UnknownStatus(pub String);

impl PaymentOrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [PaymentOrderStatus; 6] =
        [Self::NotStarted, Self::Executing, Self::Success, Self::Failed, Self::Unknown, Self::Reversed];

    /// The stored / wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotStarted => "NOT_STARTED",
            Self::Executing => "EXECUTING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::Unknown => "UNKNOWN",
            Self::Reversed => "REVERSED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }

    /// The PSP's answer is final: SUCCESS, FAILED and REVERSED. Refunds are separate records,
    /// not a status. FAILED and REVERSED never change again; SUCCESS has exactly one way out,
    /// to REVERSED, taken only by the saga's compensation (see [`Self::can_transition_to`]).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Reversed)
    }

    /// Whether `self -> to` is a legal move. UNKNOWN may only be left for a final answer from
    /// the PSP. A terminal status is never left, except SUCCESS -> REVERSED: the capture was
    /// given back in full because a later step failed permanently.
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
                | (Success, Reversed)
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

    /// FAILED and REVERSED are never left; SUCCESS is left only for REVERSED.
    #[test]
    fn terminal_statuses_are_never_left() {
        for to in PaymentOrderStatus::ALL {
            assert!(!Failed.can_transition_to(to));
            assert!(!Reversed.can_transition_to(to));
            assert_eq!(Success.can_transition_to(to), to == Reversed, "SUCCESS -> {to}");
        }
        assert!(Executing.can_transition_to(Unknown));
        assert!(Unknown.can_transition_to(Success));
        assert!(!Unknown.can_transition_to(NotStarted));
    }

    /// REVERSED is reachable from SUCCESS only: a payment that was never captured has nothing
    /// to give back.
    #[test]
    fn only_a_capture_can_be_reversed() {
        for from in PaymentOrderStatus::ALL {
            assert_eq!(from.can_transition_to(Reversed), from == Success, "{from} -> REVERSED");
        }
    }

    /// Exactly the PSP's final answers are terminal.
    #[test]
    fn terminal_set() {
        let terminal: Vec<_> = PaymentOrderStatus::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, vec![Success, Failed, Reversed]);
    }

    /// Every status parses back from its stored spelling and serializes to it in JSON.
    #[test]
    fn spelling_round_trips() {
        for st in PaymentOrderStatus::ALL {
            assert_eq!(PaymentOrderStatus::parse(st.as_str()).unwrap(), st);
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert_eq!(PaymentOrderStatus::parse("REVERSED").unwrap(), Reversed);
        assert!(PaymentOrderStatus::parse("reversed").is_err());
    }
}
