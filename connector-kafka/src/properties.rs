//! The Kafka connector's properties: its table (registered with the core's loader), the
//! `kafka.` consumer passthrough, and the typed views of the global section and of each
//! dataSource. `reportDropsAsExceptions` and `reportParseExceptions` are the core source
//! driver's.

use indexmap::IndexMap;
use tranquility::source::ReportFlags;
use tranquility::spec::properties::{
    is_secret,
    Kind::{Bool, Int, Refused, Text},
    PrefixDef, PropertyDef, PropertyTable,
    Scope::{Either, GlobalOnly, GlobalRead},
    PROPERTY_TABLES,
};
use tranquility::spec::{ConfigError, Properties};

/// Prefix of the Kafka consumer's passthrough properties (global; the prefix is removed).
pub const KAFKA_PASSTHROUGH_PREFIX: &str = "kafka.";

/// Keys under the passthrough prefix that are Tranquility's own, never given to the consumer
/// (the old consumer's `kafka.zookeeper.*` reach the connector, which warns about them).
const OWN_KEYS: &[&str] = &["kafka.http.port"];

/// The Kafka connector's properties, with their defaults.
#[rustfmt::skip]
pub const KAFKA_PROPERTIES: &[PropertyDef] = &[
    PropertyDef::new("kafka.zookeeper.connect", None, GlobalOnly, Text, "Kafka's ZooKeeper (old consumer; kept for compatibility)"),
    PropertyDef::new("kafka.group.id", Some("tranquility-kafka"), GlobalOnly, Text, "consumer group, the same on every instance"),
    PropertyDef::new("consumer.numThreads", Some("-1"), GlobalOnly, Int, "consumer threads; -1 = max(1, CPUs - 1)"),
    PropertyDef::new("kafka.http.port", None, GlobalOnly, Int, "the kafka command serves /metrics and /health on this port (none when unset; http.port is the Server's; our addition)"),
    PropertyDef::new("consumer.stallTimeoutMillis", Some("60000"), GlobalOnly, Int, "/health turns unhealthy when an owned partition with lag has neither consumed nor committed for this long"),
    PropertyDef::new("topicPattern", Some("(?!)"), Either, Text, "regex that must match the whole topic name"),
    PropertyDef::new("topicPattern.priority", Some("1"), Either, Int, "highest priority wins when several patterns match"),
    PropertyDef::new("useTopicAsDataSource", Some("false"), Either, Bool, "the topic name becomes the dataSource"),
    PropertyDef::new("kafka.zookeeper.session.timeout.ms", None, GlobalOnly, Refused("Set zookeeper.timeout instead of setting kafka.zookeeper.session.timeout.ms"), "refused: the old consumer's ZooKeeper timeout (zookeeper.timeout is Tranquility's)"),
];

// linkme puts the table in a link section, which the unsafe_code lint flags.
#[allow(unsafe_code)]
#[linkme::distributed_slice(PROPERTY_TABLES)]
static KAFKA_TABLE: PropertyTable = PropertyTable {
    owner: "tranquility-kafka",
    rows: KAFKA_PROPERTIES,
    prefixes: &[PrefixDef {
        prefix: KAFKA_PASSTHROUGH_PREFIX,
        scope: GlobalRead,
        doc: "Kafka consumer settings, passed on with the prefix removed",
    }],
};

/// Kafka's process-level properties (global section), typed. `Debug` redacts secret
/// consumer properties (`ssl.key.password`, `sasl.jaas.config`, ...).
#[derive(Clone, PartialEq)]
pub struct KafkaProperties {
    /// `kafka.zookeeper.connect` (the old consumer's; kept for compatibility).
    pub zookeeper_connect: Option<String>,
    /// `kafka.group.id`.
    pub group_id: String,
    /// `consumer.numThreads` (-1 = max(1, CPUs - 1)).
    pub num_threads: i64,
    /// `commit.periodMillis`.
    pub commit_period_millis: u64,
    /// `consumer.stallTimeoutMillis`.
    pub stall_timeout_millis: u64,
    /// Every global `kafka.*` key with the prefix removed, for the consumer (but for
    /// Tranquility's own, such as `kafka.http.port`).
    pub consumer_properties: IndexMap<String, String>,
    /// `kafka.http.port`: where the kafka command serves `/metrics` and `/health`.
    pub http_port: Option<u16>,
}

impl std::fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let consumer: IndexMap<&str, &str> = self
            .consumer_properties
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaProperties")
            .field("zookeeper_connect", &self.zookeeper_connect)
            .field("group_id", &self.group_id)
            .field("num_threads", &self.num_threads)
            .field("commit_period_millis", &self.commit_period_millis)
            .field("stall_timeout_millis", &self.stall_timeout_millis)
            .field("consumer_properties", &consumer)
            .field("http_port", &self.http_port)
            .finish()
    }
}

impl KafkaProperties {
    /// Reads the Kafka properties from the global section.
    pub fn from_properties(p: &Properties) -> Result<Self, ConfigError> {
        Ok(Self {
            zookeeper_connect: p.opt_string("kafka.zookeeper.connect"),
            group_id: p.string("kafka.group.id")?,
            num_threads: p.int_in("consumer.numThreads", -1, 10_000)?,
            commit_period_millis: p.int_in("commit.periodMillis", 1, i64::MAX)? as u64,
            stall_timeout_millis: p.int_in("consumer.stallTimeoutMillis", 1, i64::MAX)? as u64,
            consumer_properties: p
                .with_prefix(KAFKA_PASSTHROUGH_PREFIX)
                .into_iter()
                .filter(|(k, _)| {
                    !OWN_KEYS.contains(&format!("{KAFKA_PASSTHROUGH_PREFIX}{k}").as_str())
                })
                .collect(),
            http_port: p
                .opt_string("kafka.http.port")
                .map(|_| p.int_in("kafka.http.port", 0, 65_535).map(|v| v as u16))
                .transpose()?,
        })
    }
}

/// Kafka properties of one dataSource (global overlaid with its own), typed.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaDataSourceProperties {
    /// `topicPattern`: must match the whole topic name.
    pub topic_pattern: String,
    /// `topicPattern.priority`.
    pub topic_pattern_priority: i64,
    /// `useTopicAsDataSource`.
    pub use_topic_as_data_source: bool,
    /// `reportDropsAsExceptions` and `reportParseExceptions`.
    pub report: ReportFlags,
}

impl KafkaDataSourceProperties {
    /// Reads the per-dataSource Kafka properties.
    pub fn from_properties(p: &Properties) -> Result<Self, ConfigError> {
        Ok(Self {
            topic_pattern: p.string("topicPattern")?,
            topic_pattern_priority: p.int("topicPattern.priority")?,
            use_topic_as_data_source: p.bool("useTopicAsDataSource")?,
            report: ReportFlags::from_properties(p)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranquility::spec::properties::is_known;

    #[test]
    fn defaults_come_from_the_table() {
        let k = KafkaProperties::from_properties(&Properties::new()).unwrap();
        assert_eq!(
            (k.group_id.as_str(), k.num_threads, k.commit_period_millis),
            ("tranquility-kafka", -1, 15_000)
        );
    }

    #[test]
    fn passthrough_and_own_keys() {
        let mut g = Properties::new();
        g.insert("kafka.bootstrap.servers", "localhost:9092");
        g.insert("kafka.group.id", "g");
        g.insert("kafka.sasl.jaas.config", "hunter2-jaas");
        let k = KafkaProperties::from_properties(&g).unwrap();
        assert_eq!(k.group_id, "g");
        assert_eq!(k.consumer_properties["bootstrap.servers"], "localhost:9092");
        assert_eq!(k.consumer_properties["sasl.jaas.config"], "hunter2-jaas");
        assert!(!format!("{k:?}").contains("hunter2"));
        assert!(is_known("kafka.anything"));
        assert_eq!(k.http_port, None);
        g.insert("kafka.http.port", "9100");
        let k = KafkaProperties::from_properties(&g).unwrap();
        assert_eq!(k.http_port, Some(9100));
        assert!(!k.consumer_properties.contains_key("http.port"));
    }
}
