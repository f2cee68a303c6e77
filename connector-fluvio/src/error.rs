//! The connector's errors, named after the operation that failed.

use tranquility::source::{DriverError, SourceError};

/// Why the connector stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum FluvioError {
    /// The configuration file is invalid.
    #[error("{0}")]
    Config(String),
    /// The dataSource has no pipeline.
    #[error("dataSource '{0}' has no pipeline")]
    NoPipeline(String),
    /// Connecting to the cluster or opening a consumer failed.
    #[error("cannot consume topic '{topic}': {source}")]
    Connect {
        /// The topic.
        topic: String,
        /// The client's error.
        source: SourceError,
    },
    /// Consuming a topic stopped on an error: reading, the final commit, or a record that
    /// cannot be sent or was dropped with a report flag set (it stays uncommitted).
    #[error("topic '{topic}': {source}")]
    Consume {
        /// The topic.
        topic: String,
        /// What stopped its driver.
        source: DriverError,
    },
}
