//! Events as they travel through the beams: the original bytes plus the extracted timestamp.
//!
//! [`EventReader`] reads what producers hand in the way a dataSource's parseSpec says: flattened
//! first when it has a flattenSpec ([`flatten`]), then timestamped. [`TimestampExtractor`]
//! reads the timestamp the way a Druid `timestampSpec` says, scanning only the top-level key
//! it needs, so decoding costs about one JSON validation pass.

mod destination;
pub mod flatten;
mod pattern;
pub(crate) mod scan;
pub mod string_parser;
mod timestamp;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::source::Origin;
use crate::spec::DataSchema;

pub use destination::Destination;
pub use flatten::{FlattenError, FlattenSpecError, Flattener};
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

/// Turns what a producer handed in into an [`Event`], as the dataSource's parseSpec reads it:
/// flattened when the parseSpec has a flattenSpec, then timestamped. Without a flattenSpec the
/// bytes go on untouched.
#[derive(Debug, Clone)]
pub struct EventReader {
    flattener: Option<Flattener>,
    extractor: TimestampExtractor,
}

/// Why an event reader cannot be built from a dataSchema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventReaderError {
    /// The timestampSpec cannot be used.
    #[error(transparent)]
    Timestamp(#[from] TimestampSpecError),
    /// The flattenSpec cannot be used.
    #[error("parseSpec.{0}")]
    Flatten(#[from] FlattenSpecError),
}

/// Why one event could not be read (it is dropped as unparseable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// It could not be flattened.
    #[error(transparent)]
    Flatten(#[from] FlattenError),
    /// Its timestamp could not be read.
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
}

impl EventReader {
    /// The reader of a dataSchema: its timestampSpec and, on a json parseSpec, its flattenSpec.
    pub fn new(schema: &DataSchema) -> Result<Self, EventReaderError> {
        let extractor = TimestampExtractor::new(&schema.timestamp_spec())?;
        let flattener = match &schema.parser {
            Some(parser) => {
                if Flattener::ignored(parser) {
                    tracing::warn!(
                        dataSource = %schema.data_source,
                        parser = %parser.kind,
                        format = parser.parse_spec.format.as_deref().unwrap_or("json"),
                        "the flattenSpec is ignored: Druid applies it to a string parser reading json only"
                    );
                }
                Flattener::for_parser(parser)?
            }
            None => None,
        };
        Ok(Self {
            flattener,
            extractor,
        })
    }

    /// A reader from its parts.
    pub fn from_parts(extractor: TimestampExtractor, flattener: Option<Flattener>) -> Self {
        Self {
            flattener,
            extractor,
        }
    }

    /// Whether events are flattened.
    pub fn flattens(&self) -> bool {
        self.flattener.is_some()
    }

    /// Reads one event.
    pub fn read(&self, raw: RawEvent) -> Result<Event, ReadError> {
        let raw = match &self.flattener {
            None => raw,
            Some(f) => RawEvent {
                bytes: Bytes::from(f.flatten_json(&raw.bytes)?),
                well_formed: true,
            },
        };
        Ok(Event::from_raw(raw, &self.extractor)?)
    }
}

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

    fn schema(parse_spec: serde_json::Value) -> DataSchema {
        serde_json::from_value(serde_json::json!({
            "dataSource": "x",
            "parser": {"type": "string", "parseSpec": parse_spec},
            "granularitySpec": {"segmentGranularity": "hour"}
        }))
        .unwrap()
    }

    #[test]
    fn the_reader_flattens_before_reading_the_timestamp() {
        let reader = EventReader::new(&schema(serde_json::json!({
            "format": "json",
            "timestampSpec": {"column": "ts", "format": "posix"},
            "flattenSpec": {"useFieldDiscovery": false, "fields": [
                {"type": "path", "name": "ts", "expr": "$.meta.time"},
                {"type": "path", "name": "foo", "expr": "$.data.foo"}]}
        })))
        .unwrap();
        assert!(reader.flattens());
        let event = reader
            .read(RawEvent::unchecked(
                r#"{"meta":{"time":1436000000},"data":{"foo":"hey"},"ts":"ignored"}"#,
            ))
            .unwrap();
        assert_eq!(event.timestamp_millis(), 1_436_000_000_000);
        assert_eq!(event.raw().as_ref(), br#"{"ts":1436000000,"foo":"hey"}"#);
        let missing = reader.read(RawEvent::unchecked(r#"{"data":{"foo":"hey"}}"#));
        assert!(
            matches!(missing, Err(ReadError::Timestamp(_))),
            "{missing:?}"
        );
        let bad = reader.read(RawEvent::unchecked("[1]"));
        assert!(matches!(bad, Err(ReadError::Flatten(_))), "{bad:?}");
    }

    #[test]
    fn without_a_flatten_spec_the_bytes_go_on_untouched() {
        let reader = EventReader::new(&schema(serde_json::json!({
            "format": "json", "timestampSpec": {"column": "ts", "format": "millis"}
        })))
        .unwrap();
        assert!(!reader.flattens());
        let raw = Bytes::from_static(br#"{"ts":5, "nested":{"a":null}}"#);
        let event = reader.read(RawEvent::unchecked(raw.clone())).unwrap();
        assert_eq!(event.raw().as_ptr(), raw.as_ptr());
    }

    #[test]
    fn a_bad_flatten_spec_names_where() {
        let err = EventReader::new(&schema(serde_json::json!({
            "format": "json",
            "flattenSpec": {"fields": [{"type": "jq", "name": "t", "expr": ".a | length"}]}
        })))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("parseSpec.flattenSpec.fields[0]: field 't' of type jq:"),
            "{err}"
        );
    }
}
