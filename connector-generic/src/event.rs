//! What the sink accepts as an event: JSON object bytes, or a value serialized to them.

use bytes::Bytes;
use serde::Serialize;

/// A typed event to serialize to JSON on the way in.
#[derive(Debug, Clone, PartialEq)]
pub struct Json<T>(pub T);

/// Anything that becomes the JSON bytes of one event.
///
/// A value that cannot be made into bytes (for example a map with non-string keys) is not an
/// error of the sink: the event is counted and dropped as unparseable, like a bad timestamp.
pub trait IntoEvent {
    /// The event's JSON bytes, or why they cannot be made.
    fn into_event(self) -> Result<Bytes, EventError>;
}

/// Why a value could not become an event's bytes.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Serializing the value to JSON failed.
    #[error("cannot serialize the event to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// An input line was longer than the reader allows.
    #[error("line {line} is longer than {max} bytes")]
    LineTooLong {
        /// The line number (from 1).
        line: u64,
        /// The limit.
        max: usize,
    },
}

impl IntoEvent for Bytes {
    fn into_event(self) -> Result<Bytes, EventError> {
        Ok(self)
    }
}

impl IntoEvent for Vec<u8> {
    fn into_event(self) -> Result<Bytes, EventError> {
        Ok(Bytes::from(self))
    }
}

impl IntoEvent for String {
    fn into_event(self) -> Result<Bytes, EventError> {
        Ok(Bytes::from(self))
    }
}

impl IntoEvent for &'static str {
    fn into_event(self) -> Result<Bytes, EventError> {
        Ok(Bytes::from_static(self.as_bytes()))
    }
}

impl IntoEvent for serde_json::Value {
    fn into_event(self) -> Result<Bytes, EventError> {
        Ok(Bytes::from(serde_json::to_vec(&self)?))
    }
}

impl<T: Serialize> IntoEvent for Json<T> {
    fn into_event(self) -> Result<Bytes, EventError> {
        Ok(Bytes::from(serde_json::to_vec(&self.0)?))
    }
}
