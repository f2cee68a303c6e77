//! Events as they travel through the beams: the original bytes plus the extracted timestamp.

use bytes::Bytes;

/// One event: its original JSON object bytes and its timestamp in epoch milliseconds (UTC).
///
/// The bytes are kept as received so that pushing to Druid needs no re-serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    timestamp_millis: i64,
    raw: Bytes,
}

impl Event {
    /// An event from its timestamp (epoch millis) and its JSON object bytes.
    pub fn new(timestamp_millis: i64, raw: impl Into<Bytes>) -> Self {
        Self {
            timestamp_millis,
            raw: raw.into(),
        }
    }

    /// The event's timestamp in epoch milliseconds (UTC).
    pub fn timestamp_millis(&self) -> i64 {
        self.timestamp_millis
    }

    /// The event's original JSON object bytes.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}
