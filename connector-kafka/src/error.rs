//! Errors of the Kafka connector, named after what failed.

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
    /// Subscribing to the matching topics failed.
    #[error("subscribing to topics {topics:?} failed: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A topic the subscription let through matches no dataSource's pattern.
    #[error("topic {topic} was consumed but no dataSource's topicPattern maps it")]
    NoSpecForTopic {
        /// The topic.
        topic: String,
    },
    /// The event sink of a dataSource could not be built.
    #[error("dataSource {data_source}: building its pipeline failed: {message}")]
    Sink {
        /// The dataSource.
        data_source: String,
        /// What went wrong.
        message: String,
    },
    /// A message was dropped and `reportDropsAsExceptions` (or `reportParseExceptions` for an
    /// unparseable one) makes that fatal. Its offset was not committed.
    #[error("{topic}[{partition}] offset {offset} was dropped ({reason}) and {property} is true")]
    ReportedDrop {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The message's offset.
        offset: i64,
        /// Why it was dropped.
        reason: &'static str,
        /// The property that made the drop fatal.
        property: &'static str,
    },
    /// A message failed and retrying cannot help (or the retries ran out). Its offset was not
    /// committed, so the next consumer of the partition gets it again.
    #[error("{topic}[{partition}] offset {offset} failed after {attempts} attempt(s): {error}")]
    SendFailed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The message's offset.
        offset: i64,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// A consumer task ended abnormally.
    #[error("a consumer task ended abnormally: {0}")]
    Task(String),
}
