//! The connector's errors, named after the operation that failed.

use std::sync::Arc;

use tranquility::beam::SendError;

use crate::source::SourceError;

/// Why the connector stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum FluvioError {
    /// The configuration file is invalid.
    #[error("{0}")]
    Config(String),
    /// Connecting to the cluster or opening a consumer failed.
    #[error("cannot consume topic '{topic}': {source}")]
    Connect {
        /// The topic.
        topic: String,
        /// The client's error.
        source: SourceError,
    },
    /// Reading a record failed.
    #[error("reading topic '{topic}' failed: {source}")]
    Read {
        /// The topic.
        topic: String,
        /// The client's error.
        source: SourceError,
    },
    /// Committing the consumer offset failed.
    #[error("committing offsets of topic '{topic}' failed: {source}")]
    Commit {
        /// The topic.
        topic: String,
        /// The client's error.
        source: SourceError,
    },
    /// A record could not be sent and retrying will not help (or ran out of attempts); its
    /// offset and everything after it stay uncommitted.
    #[error(
        "record at partition {partition} offset {offset} of topic '{topic}' failed after {attempts} attempts: {error}"
    )]
    Send {
        /// The topic.
        topic: String,
        /// The record's partition.
        partition: u32,
        /// The record's offset.
        offset: i64,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: Arc<SendError>,
    },
    /// The dataSource has no pipeline.
    #[error("dataSource '{0}' has no pipeline")]
    NoPipeline(String),
}
