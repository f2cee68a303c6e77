//! The connector's configuration: read from an original `kafka.json` (global Kafka properties,
//! each dataSource's topic pattern and flags), validated, plus options settable from code.
//!
//! Every global `kafka.*` property goes to librdkafka with the prefix removed, except:
//! - `group.id` comes from `kafka.group.id` (default `tranquility-kafka`);
//! - offsets are committed by the connector only: `enable.auto.commit` and
//!   `enable.auto.offset.store` are forced to `false` (the old `auto.commit.enable` is removed);
//! - the old consumer's ZooKeeper keys (`kafka.zookeeper.*`) are removed with a warning that
//!   names `kafka.bootstrap.servers`, which is then required.
//!
//! librdkafka checks every remaining key at start-up; a key it does not know fails with an
//! error naming the property as written in the file.

use std::time::Duration;

use indexmap::IndexMap;
use rdkafka::ClientConfig;
use tranquility::retry::RetryPolicy;
use tranquility::source::{DriverOptions, ReportFlags};
use tranquility::spec::properties::{KafkaDataSourceProperties, KafkaProperties};
use tranquility::spec::{DataSourceConfig, TranquilityConfig};

use crate::error::KafkaError;
use crate::mapping::{TopicMapper, TopicRoute};

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
                report: ReportFlags {
                    drops: p.report_drops_as_exceptions,
                    parse: p.report_parse_exceptions,
                },
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

/// Lets librdkafka check every key and value now, so a typo fails at start-up by name.
fn check_client_properties(props: &IndexMap<String, String>) -> Result<(), KafkaError> {
    let mut c = ClientConfig::new();
    for (k, v) in props {
        c.set(k, v);
    }
    c.create_native_config().map(drop).map_err(|e| match e {
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
    })
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
