//! The seam between the connector and a Fluvio client: a stream of records that can commit
//! what it has yielded.

use async_trait::async_trait;
use bytes::Bytes;

/// A record read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The partition it came from.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its value: one JSON object.
    pub value: Bytes,
}

/// An error of the client, as text (clients have their own error types).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where records come from: one consumer of one topic.
#[async_trait]
pub trait RecordSource: Send {
    /// The next record; `None` when the topic ends (a live topic waits instead).
    async fn next(&mut self) -> Option<Result<Record, SourceError>>;

    /// Commits every record yielded so far and waits until the cluster has stored it.
    async fn commit(&mut self) -> Result<(), SourceError>;
}
