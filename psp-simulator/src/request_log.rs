//! A bounded log of PSP POST requests and how each one ended, so tests can
//! check *when* a client retried (e.g. no sooner than `Retry-After`) and
//! which attempt was answered, dropped or replayed.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use crate::state::lock;

/// Entries kept; the oldest is forgotten first.
pub const REQUEST_LOG_ENTRIES_MAX: usize = 100_000;

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this HTTP status was sent (or is about to be, for a
    /// slow response).
    Status(u16),
    /// The connection was closed without any response bytes.
    Dropped,
    /// The stored response of an earlier attempt was replayed.
    Replayed,
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Status(status) => serializer.serialize_str(&status.to_string()),
            Self::Dropped => serializer.serialize_str("dropped"),
            Self::Replayed => serializer.serialize_str("replayed"),
        }
    }
}

/// One logged request.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedRequest {
    /// When the request reached its handler, Unix milliseconds.
    pub received_at_ms: u64,
    pub method: String,
    pub path: String,
    pub outcome: Outcome,
    /// Omitted from the admin output: the query already names the key.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// The bounded log.
#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<LoggedRequest>>,
}

impl RequestLog {
    /// Appends `entry`, forgetting the oldest beyond the bound.
    pub fn push(&self, entry: LoggedRequest) {
        let mut entries = lock(&self.entries);
        if entries.len() >= REQUEST_LOG_ENTRIES_MAX {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Requests made with `idempotency_key` (all requests if `None`), in
    /// order of arrival.
    pub fn matching(&self, idempotency_key: Option<&str>) -> Vec<LoggedRequest> {
        let mut found: Vec<LoggedRequest> = lock(&self.entries)
            .iter()
            .filter(|entry| idempotency_key.is_none_or(|key| entry.idempotency_key.as_deref() == Some(key)))
            .cloned()
            .collect();
        // Entries are appended when the outcome is known, so a slow first
        // attempt may be logged after a quick second one.
        found.sort_by_key(|entry| entry.received_at_ms);
        found
    }
}
