//! The connector's configuration: a Tranquility config file (`fluvio.json`) whose properties
//! name the cluster and, per dataSource, the topic.
//!
//! | property | scope | default | meaning |
//! | --- | --- | --- | --- |
//! | `fluvio.endpoint` | global | the current profile of `~/.fluvio/config` | the cluster's SC address, `host:port` |
//! | `fluvio.consumer.id` | global | `tranquility-fluvio` | the consumer whose offsets are stored |
//! | `fluvio.offsetStart` | global | `beginning` | where a consumer without a stored offset starts: `beginning` or `end` |
//! | `commit.periodMillis` | global | `15000` | how often offsets are committed |
//! | `fluvio.topic` | dataSource | the dataSource name | the topic to read |

use std::time::Duration;

use tranquility::spec::{DataSourceConfig, TranquilityConfig};

use crate::error::FluvioError;

/// Where a consumer without a stored offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetStart {
    /// The oldest record of each partition.
    #[default]
    Beginning,
    /// Only records produced from now on.
    End,
}

/// How a failed send is retried before the connector stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first retry; doubled each time.
    pub initial_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Attempts in all (the first included); `None` retries retriable errors for ever.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            // The original's `druidBeam.firehoseRetryPeriod` default.
            max_backoff: Duration::from_secs(60),
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (`failures >= 1`), with up to 25% jitter.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(1 << failures.saturating_sub(1).min(20));
        let base = doubled.min(self.max_backoff);
        base.mul_f64(1.0 + rand::random::<f64>() * 0.25)
    }

    /// Whether another attempt may follow `attempts` attempts.
    pub fn allows(&self, attempts: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempts < max)
    }
}

/// A dataSource and the topic it reads.
#[derive(Debug, Clone)]
pub struct TopicRoute {
    /// The topic.
    pub topic: String,
    /// The dataSource (its spec and properties).
    pub data_source: DataSourceConfig,
}

/// The validated connector configuration.
#[derive(Debug, Clone)]
pub struct FluvioConfig {
    /// The cluster's SC address; `None` uses the current Fluvio profile.
    pub endpoint: Option<String>,
    /// The consumer name offsets are stored under.
    pub consumer_id: String,
    /// Where a consumer without a stored offset starts.
    pub offset_start: OffsetStart,
    /// How often offsets are committed.
    pub commit_period: Duration,
    /// One route per dataSource.
    pub routes: Vec<TopicRoute>,
}

/// `tranquility-fluvio`, the counterpart of the Kafka connector's group id.
pub fn default_consumer_id() -> String {
    "tranquility-fluvio".into()
}

impl FluvioConfig {
    /// Reads the Fluvio properties of a loaded config file.
    pub fn from_config(config: &TranquilityConfig) -> Result<Self, FluvioError> {
        let global = config.global_properties();
        let bad = |e: tranquility::spec::ConfigError| FluvioError::Config(e.to_string());
        let offset_start = match global.get("fluvio.offsetStart") {
            None | Some("beginning") => OffsetStart::Beginning,
            Some("end") => OffsetStart::End,
            Some(other) => {
                return Err(FluvioError::Config(format!(
                    "{}: properties.fluvio.offsetStart is \"{other}\"; expected \"beginning\" or \"end\"",
                    config.source()
                )))
            }
        };
        let consumer_id = global
            .get("fluvio.consumer.id")
            .map(str::to_string)
            .unwrap_or_else(default_consumer_id);
        if consumer_id.trim().is_empty() {
            return Err(FluvioError::Config(format!(
                "{}: properties.fluvio.consumer.id is empty",
                config.source()
            )));
        }
        let commit_millis = global
            .int_in("commit.periodMillis", 1, i64::MAX)
            .map_err(bad)?;
        let routes: Vec<TopicRoute> = config
            .data_sources()
            .iter()
            .map(|ds| TopicRoute {
                topic: ds
                    .properties
                    .get("fluvio.topic")
                    .map(str::to_string)
                    .unwrap_or_else(|| ds.name.clone()),
                data_source: ds.clone(),
            })
            .collect();
        if routes.is_empty() {
            return Err(FluvioError::Config(format!(
                "{}: no dataSources to consume into",
                config.source()
            )));
        }
        Ok(Self {
            endpoint: global.get("fluvio.endpoint").map(str::to_string),
            consumer_id,
            offset_start,
            commit_period: Duration::from_millis(commit_millis.unsigned_abs()),
            routes,
        })
    }
}
