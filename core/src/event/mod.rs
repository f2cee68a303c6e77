//! Events as they travel through the beams: the original bytes plus the extracted timestamp.
//!
//! [`TimestampExtractor`] reads the timestamp the way a Druid `timestampSpec` says, scanning
//! only the top-level key it needs, so decoding costs about one JSON validation pass.

mod pattern;
pub mod string_parser;
mod timestamp;

use bytes::Bytes;

pub use pattern::JodaPattern;
pub use string_parser::{LineError, ParsedLine, StringParser, StringParserError};
pub use timestamp::{TimestampError, TimestampExtractor, TimestampFormat, TimestampSpecError};

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

    /// An event from JSON object bytes, its timestamp read with `extractor`.
    pub fn from_json(raw: Bytes, extractor: &TimestampExtractor) -> Result<Self, TimestampError> {
        let timestamp_millis = extractor.extract(&raw)?;
        Ok(Self {
            timestamp_millis,
            raw,
        })
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
