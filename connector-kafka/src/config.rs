//! The connector's configuration: read from an original `kafka.json` (global Kafka properties,
//! each dataSource's topic pattern and flags), validated, plus options settable from code.
//!
//! Every global `kafka.*` property goes to librdkafka with the prefix removed, except:
//! - `group.id` comes from `kafka.group.id` (default `tranquility-kafka`);
//! - offsets are committed by the connector only: `enable.auto.commit` and
//!   `enable.auto.offset.store` are forced to `false` (the old `auto.commit.enable` is removed);
//! - the old consumer's ZooKeeper keys (`kafka.zookeeper.*`) are removed with a warning that
//!   names `kafka.bootstrap.servers`, which is then required;
//! - the old (Scala, ZooKeeper-based) consumer's other keys that librdkafka does not know
//!   ([`OLD_CONSUMER_KEYS`]: `consumer.id`, `consumer.timeout.ms`, `rebalance.*`, `offsets.*`,
//!   ...) are removed with a warning naming each; its keys librdkafka knows too
//!   (`socket.timeout.ms`, `fetch.message.max.bytes`, `auto.offset.reset`, ...) pass through.
//!
//! librdkafka checks every remaining key at start-up; a key it does not know fails with an
//! error naming the property as written in the file.

use std::time::Duration;

use crate::properties::{KafkaDataSourceProperties, KafkaProperties};
use indexmap::IndexMap;
use rdkafka::ClientConfig;
use tranquility::retry::RetryPolicy;
use tranquility::source::{DriverOptions, ReportFlags};
use tranquility::spec::{DataSourceConfig, TranquilityConfig};

use crate::error::KafkaError;
use crate::mapping::{TopicMapper, TopicRoute};

/// Keys of the old Scala consumer (`kafka.consumer.ConsumerConfig`, Kafka 0.8 to 0.10) that
/// librdkafka does not know: dropped with a warning, so an original `kafka.json` starts. The
/// ZooKeeper keys (`zookeeper.*`) and `auto.commit.enable` are handled on their own.
pub const OLD_CONSUMER_KEYS: &[(&str, &str)] = &[
    ("consumer.id", "librdkafka names group members itself"),
    (
        "consumer.timeout.ms",
        "the connector waits for messages without a timeout",
    ),
    (
        "num.consumer.fetchers",
        "set consumer.numThreads for the members this process runs",
    ),
    (
        "queued.max.message.chunks",
        "librdkafka bounds its prefetch with queued.max.messages.kbytes",
    ),
    (
        "rebalance.max.retries",
        "the broker's group coordinator runs rebalances",
    ),
    (
        "rebalance.backoff.ms",
        "the broker's group coordinator runs rebalances",
    ),
    (
        "refresh.leader.backoff.ms",
        "librdkafka refreshes leaders itself (topic.metadata.refresh.interval.ms)",
    ),
    (
        "exclude.internal.topics",
        "internal topics never match a topicPattern that names your topics",
    ),
    ("offsets.storage", "offsets are always stored in Kafka"),
    (
        "dual.commit.enabled",
        "offsets are always stored in Kafka, never in ZooKeeper",
    ),
    (
        "offsets.channel.backoff.ms",
        "offsets are committed through the group coordinator",
    ),
    (
        "offsets.channel.socket.timeout.ms",
        "offsets are committed through the group coordinator",
    ),
    (
        "offsets.commit.max.retries",
        "a failed commit is retried at the next commit.periodMillis",
    ),
];

/// Options not in the original's property table, settable from code. The first four are the
/// source driver's ([`DriverOptions`], whose docs say what each does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorOptions {
    /// Messages larger than this are dropped as `too_large` (counted and committed).
    pub max_message_bytes: usize,
    /// Messages in flight per consumer before it stops taking messages from the client
    /// (librdkafka's bounded prefetch queue then stops fetching).
    pub max_in_flight: usize,
    /// How long a consumer may stay at `max_in_flight` before it pauses its partitions.
    /// Pausing discards librdkafka's prefetched messages (fetched again on resume), so it is
    /// kept for long stalls.
    pub pause_after: Duration,
    /// How failed sends are retried.
    pub retry: RetryPolicy,
    /// How often the broker's topic list is checked for new topics matching the patterns.
    pub topic_refresh: Duration,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        let driver = DriverOptions::default();
        Self {
            max_message_bytes: driver.max_message_bytes,
            max_in_flight: driver.max_in_flight,
            pause_after: driver.pause_after,
            retry: driver.retry,
            topic_refresh: default_topic_refresh(),
        }
    }
}

/// Ten seconds: a new topic is picked up soon, and metadata requests stay rare.
fn default_topic_refresh() -> Duration {
    Duration::from_secs(10)
}

/// A dataSource as the connector uses it.
#[derive(Debug, Clone)]
pub struct DataSourceRoute {
    /// The dataSource's configuration (spec and properties).
    pub config: DataSourceConfig,
    /// Its report flags.
    pub report: ReportFlags,
}

/// The validated connector configuration.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// The consumer group (`kafka.group.id`).
    pub group_id: String,
    /// Group members this process runs (`consumer.numThreads`, -1 = max(1, CPUs - 1)).
    pub consumers: usize,
    /// How often done offsets are committed (`commit.periodMillis`).
    pub commit_period: Duration,
    /// How long an owned partition with lag may go without consuming or committing before
    /// it counts as stalled (`consumer.stallTimeoutMillis`, default 60 s).
    pub stall_timeout: Duration,
    /// Properties for librdkafka, after the fixes listed in the module docs.
    pub client_properties: IndexMap<String, String>,
    /// Topic to dataSource.
    pub mapper: TopicMapper,
    /// The dataSources, in the order of [`TopicMapper::routes`].
    pub data_sources: Vec<DataSourceRoute>,
    /// Options from code.
    pub options: ConnectorOptions,
    /// Warnings found while reading the configuration (each also logged).
    pub warnings: Vec<String>,
}

impl KafkaConfig {
    /// Reads and checks the Kafka parts of a loaded configuration file.
    pub fn from_config(config: &TranquilityConfig) -> Result<Self, KafkaError> {
        let kafka = KafkaProperties::from_properties(config.global_properties())?;
        let mut warnings = Vec::new();
        let mut warn = |message: String| {
            tracing::warn!("{message}");
            warnings.push(message);
        };

        let mut client = IndexMap::new();
        for (key, value) in &kafka.consumer_properties {
            if let Some(why) = old_consumer_key(key) {
                warn(format!(
                    "kafka.{key} belongs to the old ZooKeeper-based consumer and is ignored: {why}"
                ));
                continue;
            }
            match key.as_str() {
                "group.id" | "enable.auto.commit" | "enable.auto.offset.store" => {}
                "auto.commit.enable" => warn(format!(
                    "kafka.{key} is ignored: Tranquility commits offsets itself, only once \
                     their messages have an outcome"
                )),
                k if k.starts_with("zookeeper.") => warn(format!(
                    "kafka.{key} belongs to the old ZooKeeper-based consumer and is not used; \
                     set kafka.bootstrap.servers to the Kafka brokers (host:port,...) instead"
                )),
                _ => {
                    client.insert(key.clone(), value.clone());
                }
            }
        }
        if !client.contains_key("bootstrap.servers") && !client.contains_key("metadata.broker.list")
        {
            return Err(KafkaError::ClientProperty {
                key: "kafka.bootstrap.servers".into(),
                message: "required: the Kafka brokers as host:port,... (the old consumer's \
                          kafka.zookeeper.connect is not used)"
                    .into(),
            });
        }
        client.insert("group.id".into(), kafka.group_id.clone());
        client.insert("enable.auto.commit".into(), "false".into());
        client.insert("enable.auto.offset.store".into(), "false".into());
        check_client_properties(&client)?;

        let mut routes = Vec::new();
        let mut data_sources = Vec::new();
        for ds in config.data_sources() {
            check_format(ds)?;
            let p = KafkaDataSourceProperties::from_properties(&ds.properties)?;
            routes.push(TopicRoute::new(
                &ds.name,
                &p.topic_pattern,
                p.topic_pattern_priority,
                p.use_topic_as_data_source,
            )?);
            data_sources.push(DataSourceRoute {
                config: ds.clone(),
                report: p.report,
            });
        }

        let consumers = match kafka.num_threads {
            n if n > 0 => usize::try_from(n).unwrap_or(1),
            _ => std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1),
        };
        Ok(Self {
            group_id: kafka.group_id,
            consumers,
            commit_period: Duration::from_millis(kafka.commit_period_millis),
            stall_timeout: Duration::from_millis(kafka.stall_timeout_millis),
            client_properties: client,
            mapper: TopicMapper::new(routes),
            data_sources,
            options: ConnectorOptions::default(),
            warnings,
        })
    }

    /// The same configuration with other options.
    pub fn with_options(mut self, options: ConnectorOptions) -> Self {
        self.options = options;
        self
    }

    /// What each member's source driver runs with.
    pub fn driver_options(&self) -> DriverOptions {
        DriverOptions {
            commit_period: self.commit_period,
            max_in_flight: self.options.max_in_flight,
            pause_after: self.options.pause_after,
            max_message_bytes: self.options.max_message_bytes,
            retry: self.options.retry,
            ..DriverOptions::default()
        }
    }

    /// The librdkafka configuration of one group member.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in &self.client_properties {
            c.set(k, v);
        }
        c
    }
}

/// Why an old-consumer key is ignored, if `key` is one.
fn old_consumer_key(key: &str) -> Option<&'static str> {
    OLD_CONSUMER_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, why)| *why)
}

/// Lets librdkafka check every key and value now, so a typo fails at start-up by name; a
/// SASL mechanism this build lacks (Kerberos) fails here too, not at the first connection.
fn check_client_properties(props: &IndexMap<String, String>) -> Result<(), KafkaError> {
    let mut c = ClientConfig::new();
    for (k, v) in props {
        c.set(k, v);
    }
    let native = c.create_native_config().map_err(|e| match e {
        rdkafka::error::KafkaError::ClientConfig(_, desc, key, value) => {
            KafkaError::ClientProperty {
                key: format!("kafka.{key}"),
                message: format!("{desc} (value {value:?})"),
            }
        }
        other => KafkaError::ClientProperty {
            key: "kafka.*".into(),
            message: other.to_string(),
        },
    })?;
    let sasl = props
        .get("security.protocol")
        .is_some_and(|p| p.to_ascii_uppercase().starts_with("SASL"));
    let builtin = native.get("builtin.features").unwrap_or_default();
    let mechanisms = native.get("sasl.mechanisms").unwrap_or_default();
    let kerberos = mechanisms
        .split(',')
        .any(|m| m.trim().eq_ignore_ascii_case("GSSAPI"));
    if sasl && kerberos && !builtin.split(',').any(|f| f == "sasl_gssapi") {
        return Err(KafkaError::ClientProperty {
            key: "kafka.sasl.mechanisms".into(),
            message: format!(
                "{mechanisms:?} (librdkafka's default when unset): Kerberos (GSSAPI) is not \
                 built in; set PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER, or build \
                 with rdkafka's gssapi feature"
            ),
        });
    }
    Ok(())
}

/// Only JSON objects can be decoded for now; other parser formats fail by name.
fn check_format(ds: &DataSourceConfig) -> Result<(), KafkaError> {
    let format = ds
        .spec
        .data_schema
        .parser
        .as_ref()
        .and_then(|p| p.parse_spec.format.clone());
    match format {
        None => Ok(()),
        Some(f) if f.eq_ignore_ascii_case("json") => Ok(()),
        Some(f) => Err(KafkaError::UnsupportedFormat {
            data_source: ds.name.clone(),
            format: f,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original `kafka.json.example` from the peer data; the test returns (a visible
    /// skip) when that folder is absent.
    macro_rules! kafka_json_example {
        () => {
            std::fs::read_to_string(test_support::peer_data_or_skip!(
                "tranquility-configs/kafka.json.example"
            ))
            .unwrap()
        };
    }

    fn example(name: &str) -> String {
        std::fs::read_to_string(test_support::example_configs().join(name)).unwrap()
    }

    fn load(text: &str) -> Result<KafkaConfig, KafkaError> {
        let c = TranquilityConfig::from_str(text, "kafka.json").unwrap();
        KafkaConfig::from_config(&c)
    }

    fn file(global: &str, ds_props: &str, format: &str) -> String {
        format!(
            r#"{{"dataSources": [{{"spec": {{"dataSchema": {{"dataSource": "wiki",
                "parser": {{"type": "string", "parseSpec": {{"format": "{format}",
                    "timestampSpec": {{"column": "ts", "format": "auto"}},
                    "dimensionsSpec": {{"dimensions": ["page"]}}}}}},
                "granularitySpec": {{"segmentGranularity": "hour", "queryGranularity": "none"}},
                "metricsSpec": [{{"type": "count", "name": "count"}}]}},
              "tuningConfig": {{"type": "realtime"}}}},
              "properties": {{{ds_props}}}}}],
             "properties": {{{global}}}}}"#
        )
    }

    #[test]
    fn original_file_with_a_broker_added() {
        let text = kafka_json_example!().replace(
            "\"kafka.group.id\"",
            "\"kafka.bootstrap.servers\" : \"127.0.0.1:9092\",\n \"kafka.group.id\"",
        );
        let c = load(&text).unwrap();
        assert_eq!(c.group_id, "tranquility-kafka");
        assert_eq!(c.consumers, 2);
        assert_eq!(c.commit_period, Duration::from_millis(15_000));
        assert_eq!(c.client_properties["bootstrap.servers"], "127.0.0.1:9092");
        assert_eq!(c.client_properties["enable.auto.commit"], "false");
        assert!(!c.client_properties.contains_key("zookeeper.connect"));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("kafka.zookeeper.connect")
                    && w.contains("kafka.bootstrap.servers")),
            "{:?}",
            c.warnings
        );
        assert_eq!(c.mapper.target("twitter").unwrap().data_source, "twitter");
        assert_eq!(
            c.mapper.target("wikipedia-en").unwrap().data_source,
            "wikipedia"
        );
        assert!(!c.mapper.claims("twitter-archive"));
    }

    #[test]
    fn the_original_file_alone_asks_for_a_broker() {
        let text = kafka_json_example!();
        let e = load(&text).unwrap_err().to_string();
        assert!(e.contains("kafka.bootstrap.servers"), "{e}");
    }

    #[test]
    fn example_files_load_in_json_and_yaml() {
        for name in ["kafka.json", "kafka.yaml"] {
            let c = TranquilityConfig::from_str(&example(name), name).unwrap();
            let c = KafkaConfig::from_config(&c).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.group_id, "tranquility-kafka", "{name}");
            assert_eq!(c.commit_period, Duration::from_millis(15_000), "{name}");
            assert_eq!(c.client_properties["bootstrap.servers"], "127.0.0.1:9092");
            assert_eq!(c.client_properties["enable.auto.commit"], "false");
            assert_eq!(c.mapper.target("metrics").unwrap().data_source, "metrics");
            assert!(!c.mapper.claims("metrics-archive"), "{name}");
        }
    }

    #[test]
    fn an_example_without_its_broker_asks_for_one() {
        let text = example("kafka.yaml").replace("  kafka.bootstrap.servers: 127.0.0.1:9092\n", "");
        let c = TranquilityConfig::from_str(&text, "kafka.yaml").unwrap();
        let e = KafkaConfig::from_config(&c).unwrap_err().to_string();
        assert!(e.contains("kafka.bootstrap.servers"), "{e}");
    }

    #[test]
    fn unknown_client_property_fails_by_name() {
        let e = load(&file(
            r#""kafka.bootstrap.servers": "b:9092", "kafka.no.such.thing": "1""#,
            "",
            "json",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("kafka.no.such.thing"), "{e}");
    }

    #[test]
    fn old_consumer_keys_are_dropped_by_name_and_known_ones_pass() {
        let old: Vec<String> = OLD_CONSUMER_KEYS
            .iter()
            .map(|(k, _)| format!(r#""kafka.{k}": "1""#))
            .collect();
        let c = load(&file(
            &format!(
                r#""kafka.bootstrap.servers": "b:9092", "kafka.socket.timeout.ms": "30000",
                   "kafka.auto.offset.reset": "smallest", "kafka.fetch.message.max.bytes": "1048576",
                   {}"#,
                old.join(", ")
            ),
            "",
            "json",
        ))
        .unwrap();
        for (key, _) in OLD_CONSUMER_KEYS {
            assert!(!c.client_properties.contains_key(*key), "{key} passed on");
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.contains(&format!("kafka.{key} "))),
                "no warning names {key}: {:?}",
                c.warnings
            );
        }
        assert_eq!(c.client_properties["socket.timeout.ms"], "30000");
        assert_eq!(c.client_properties["auto.offset.reset"], "smallest");
        // A genuinely unknown key still stops start-up.
        let e = load(&file(
            r#""kafka.bootstrap.servers": "b:9092", "kafka.consumer.id": "c1",
               "kafka.rebalance.max.retrys": "4""#,
            "",
            "json",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("kafka.rebalance.max.retrys"), "{e}");
    }

    #[test]
    fn librdkafka_really_refuses_each_old_consumer_key() {
        // If librdkafka ever learns one of these, it should pass through instead.
        for (key, _) in OLD_CONSUMER_KEYS {
            let mut props = IndexMap::new();
            props.insert(key.to_string(), "1".to_string());
            assert!(
                check_client_properties(&props).is_err(),
                "librdkafka knows {key}: remove it from OLD_CONSUMER_KEYS"
            );
        }
    }

    #[test]
    fn tls_sasl_and_zstd_are_built_in() {
        let features = ClientConfig::new()
            .create_native_config()
            .and_then(|c| c.get("builtin.features"))
            .unwrap();
        for needed in [
            "ssl",
            "sasl_plain",
            "sasl_scram",
            "sasl_oauthbearer",
            "zstd",
            "lz4",
        ] {
            assert!(
                features.split(',').any(|f| f == needed),
                "librdkafka lacks {needed}: {features}"
            );
        }
        let c = load(&file(
            r#""kafka.bootstrap.servers": "b:9093", "kafka.security.protocol": "SASL_SSL",
               "kafka.sasl.mechanisms": "SCRAM-SHA-512", "kafka.sasl.username": "u",
               "kafka.sasl.password": "p", "kafka.ssl.ca.location": "/etc/ssl/certs""#,
            "",
            "json",
        ))
        .unwrap();
        assert_eq!(c.client_properties["security.protocol"], "SASL_SSL");
    }

    #[test]
    fn kerberos_is_refused_by_name() {
        let e = load(&file(
            r#""kafka.bootstrap.servers": "b:9093", "kafka.security.protocol": "SASL_PLAINTEXT",
               "kafka.sasl.mechanisms": "GSSAPI""#,
            "",
            "json",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("kafka.sasl.mechanisms") && e.contains("GSSAPI"),
            "{e}"
        );
        // librdkafka's default mechanism is GSSAPI too.
        let e = load(&file(
            r#""kafka.bootstrap.servers": "b:9093", "kafka.security.protocol": "sasl_ssl""#,
            "",
            "json",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("Kerberos"), "{e}");
    }

    #[test]
    fn other_formats_fail_by_name() {
        let e = load(&file(r#""kafka.bootstrap.servers": "b:9092""#, "", "csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"csv\"") && e.contains("wiki"), "{e}");
    }

    #[test]
    fn per_data_source_flags_and_forced_properties() {
        let c = load(&file(
            r#""kafka.bootstrap.servers": "b:9092", "kafka.enable.auto.commit": "true",
               "kafka.group.id": "g", "consumer.numThreads": "3", "commit.periodMillis": "500""#,
            r#""topicPattern": "w.*", "reportDropsAsExceptions": "true""#,
            "json",
        ))
        .unwrap();
        assert_eq!(c.client_properties["enable.auto.commit"], "false");
        assert_eq!(c.client_properties["group.id"], "g");
        assert_eq!((c.consumers, c.commit_period.as_millis()), (3, 500));
        assert_eq!(
            c.data_sources[0].report,
            ReportFlags {
                drops: true,
                parse: false
            }
        );
        assert!(c.mapper.claims("wx"));
    }
}
