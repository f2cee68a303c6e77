//! Errors of the Kafka connector, named after what failed.

use tranquility::source::DriverError;
use tranquility::spec::ConfigError;

/// What stopped the connector from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// A property in the configuration file is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A `kafka.*` property that the Kafka client refused, or a required one that is missing.
    #[error("property {key}: {message}")]
    ClientProperty {
        /// The property as written in the file (with its `kafka.` prefix).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A dataSource's `topicPattern` is not a valid regex.
    #[error("dataSource {data_source}: topicPattern {pattern:?} is not a valid regex: {message}")]
    TopicPattern {
        /// The dataSource.
        data_source: String,
        /// The pattern as written.
        pattern: String,
        /// The regex compiler's message.
        message: String,
    },
    /// A dataSource's parser reads a format this connector cannot decode yet.
    #[error(
        "dataSource {data_source}: parser format {format:?} is not supported by the Kafka \
         connector yet (only JSON objects are)"
    )]
    UnsupportedFormat {
        /// The dataSource.
        data_source: String,
        /// The `parseSpec.format` found.
        format: String,
    },
    /// Creating the Kafka consumer failed.
    #[error("creating the Kafka consumer failed: {0}")]
    CreateConsumer(#[source] rdkafka::error::KafkaError),
    /// A group member stopped on an error (reading, routing, a reported drop, a send that
    /// cannot succeed, the final commit). Nothing past the message named was committed.
    #[error(transparent)]
    Source(#[from] DriverError),
}
