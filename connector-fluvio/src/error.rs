//! The connector's errors.

use tranquility::source::TopicError;

/// Why the connector stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum FluvioError {
    /// The configuration file is invalid.
    #[error("{0}")]
    Config(String),
    /// A topic could not be opened, or its consumption stopped on an error.
    #[error(transparent)]
    Topic(#[from] TopicError),
}
