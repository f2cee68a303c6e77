//! Events as they travel through the beams: the original bytes plus the extracted timestamp.
//!
//! [`TimestampExtractor`] reads the timestamp the way a Druid `timestampSpec` says, scanning
//! only the top-level key it needs, so decoding costs about one JSON validation pass.

mod pattern;
pub(crate) mod scan;
pub mod string_parser;
mod timestamp;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::source::Origin;

pub use pattern::JodaPattern;
pub use string_parser::{LineError, ParsedLine, StringParser, StringParserError};
pub use timestamp::{TimestampError, TimestampExtractor, TimestampFormat, TimestampSpecError};

/// One event: its original JSON object bytes and its timestamp in epoch milliseconds (UTC).
///
/// The bytes are kept as received so that pushing to Druid needs no re-serialization.
#[derive(Debug, Clone)]
pub struct Event {
    timestamp_millis: i64,
    raw: Bytes,
    /// Where the timestamp column's value lies in `raw` (start, length), when known.
    timestamp_at: Option<(u32, u32)>,
    /// Where a source read it, for events that come from one (Kafka, Fluvio).
    origin: Option<Origin>,
}

impl Event {
    /// An event from its timestamp (epoch millis) and its JSON object bytes.
    pub fn new(timestamp_millis: i64, raw: impl Into<Bytes>) -> Self {
        Self {
            timestamp_millis,
            raw: raw.into(),
            timestamp_at: None,
            origin: None,
        }
    }

    /// An event from JSON object bytes, its timestamp read with `extractor`.
    pub fn from_json(raw: Bytes, extractor: &TimestampExtractor) -> Result<Self, TimestampError> {
        Self::from_raw(RawEvent::unchecked(raw), extractor)
    }

    /// An event from bytes handed to a pipeline; well-formed bytes skip a second validation.
    pub fn from_raw(raw: RawEvent, extractor: &TimestampExtractor) -> Result<Self, TimestampError> {
        let (timestamp_millis, timestamp_at) = if raw.well_formed {
            extractor.extract_well_formed_at(&raw.bytes)?
        } else {
            (extractor.extract(&raw.bytes)?, None)
        };
        Ok(Self {
            timestamp_millis,
            raw: raw.bytes,
            timestamp_at,
            origin: None,
        })
    }

    /// The event, noted as read at `origin` (see [`Origin`]).
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Where a source read the event, if one did.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    /// The event's timestamp in epoch milliseconds (UTC).
    pub fn timestamp_millis(&self) -> i64 {
        self.timestamp_millis
    }

    /// The event's original JSON object bytes.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The raw bytes of the timestamp column's value, when extraction noted where it lies
    /// (so rewriting it needs no second scan).
    pub(crate) fn timestamp_value(&self) -> Option<(usize, &[u8])> {
        let (start, len) = self.timestamp_at?;
        let start = start as usize;
        let value = self.raw.get(start..start.checked_add(len as usize)?)?;
        Some((start, value))
    }
}

/// Two events are equal when their bytes and timestamps are (where extraction found the
/// timestamp is only a hint).
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.timestamp_millis == other.timestamp_millis && self.raw == other.raw
    }
}

impl Eq for Event {}

/// One event's JSON object bytes as handed to a pipeline, and whether serde_json has already
/// parsed or written them (then reading the timestamp need not validate them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    bytes: Bytes,
    well_formed: bool,
}

impl RawEvent {
    /// Bytes from anywhere; they are validated when the timestamp is read.
    pub fn unchecked(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            well_formed: false,
        }
    }

    /// A value serde_json parsed out of `body`, as a zero-copy slice of `body` (copied when
    /// it does not lie within `body`).
    pub fn from_raw_value(body: &Bytes, value: &RawValue) -> Self {
        let text = value.get().as_bytes();
        let start = (text.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
        let bytes = match start.checked_add(text.len()) {
            Some(end) if end <= body.len() => body.slice(start..end),
            _ => Bytes::copy_from_slice(text),
        };
        Self {
            bytes,
            well_formed: true,
        }
    }

    /// `value` written as JSON.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self {
            bytes: Bytes::from(value.to_string()),
            well_formed: true,
        }
    }

    /// The event's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Whether the bytes are known to be well-formed JSON.
    pub fn is_well_formed(&self) -> bool {
        self.well_formed
    }
}

impl From<Bytes> for RawEvent {
    fn from(bytes: Bytes) -> Self {
        Self::unchecked(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_are_sliced_from_their_body_or_copied() {
        let body = Bytes::from_static(br#"[{"a":1},{"b":2}]"#);
        let values: Vec<&RawValue> = serde_json::from_slice(&body).unwrap();
        let second = RawEvent::from_raw_value(&body, values[1]);
        assert_eq!(second.bytes().as_ref(), br#"{"b":2}"#);
        assert_eq!(second.bytes().as_ptr(), body[9..].as_ptr());
        assert!(second.is_well_formed());

        let elsewhere = Bytes::from_static(br#"{"c":3}"#);
        let copied = RawEvent::from_raw_value(&elsewhere, values[0]);
        assert_eq!(copied.bytes().as_ref(), br#"{"a":1}"#);
        assert!(!RawEvent::from(elsewhere).is_well_formed());
    }

    #[test]
    fn well_formed_and_unchecked_events_read_the_same_timestamp() {
        let spec = crate::spec::TimestampSpec::new("ts", "auto");
        let extractor = TimestampExtractor::new(&spec).unwrap();
        let value = serde_json::json!({"x": "a\"b", "ts": "2024-01-01T00:00:00Z"});
        let checked = Event::from_raw(RawEvent::from_value(&value), &extractor).unwrap();
        let text = Bytes::from(value.to_string());
        let unchecked = Event::from_raw(RawEvent::unchecked(text), &extractor).unwrap();
        assert_eq!(checked, unchecked);
        assert_eq!(checked.timestamp_millis(), 1_704_067_200_000);
    }
}
