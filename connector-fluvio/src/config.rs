//! The connector's configuration: a Tranquility config file (`fluvio.json`) whose properties
//! name the cluster and, per dataSource, the topic and report flags (the README's table lists
//! each property with its default).

use std::time::Duration;

use tranquility::source::{DataSourceTopic, DriverOptions};
use tranquility::spec::properties::{
    Kind::{OneOf, Text},
    PropertyDef, PropertyTable,
    Scope::{Either, GlobalOnly},
    PROPERTY_TABLES,
};
use tranquility::spec::TranquilityConfig;

use crate::error::FluvioError;

/// The connector's properties, with their defaults.
#[rustfmt::skip]
pub const FLUVIO_PROPERTIES: &[PropertyDef] = &[
    PropertyDef::new("fluvio.endpoint", None, GlobalOnly, Text, "the Fluvio SC address host:port (unset = the current profile of ~/.fluvio/config)"),
    PropertyDef::new("fluvio.consumer.id", Some("tranquility-fluvio"), GlobalOnly, Text, "consumer name the offsets are stored under"),
    PropertyDef::new("fluvio.offsetStart", Some("beginning"), GlobalOnly, OneOf(&["beginning", "end"]), "where a consumer without a stored offset starts"),
    PropertyDef::new("fluvio.topic", None, Either, Text, "topic a dataSource reads (unset = the dataSource's name)"),
];

// linkme puts the table in a link section, which the unsafe_code lint flags.
#[allow(unsafe_code)]
#[linkme::distributed_slice(PROPERTY_TABLES)]
static FLUVIO_TABLE: PropertyTable = PropertyTable {
    owner: "tranquility-fluvio",
    rows: FLUVIO_PROPERTIES,
    prefixes: &[],
};

/// Where a consumer without a stored offset starts (`fluvio.offsetStart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetStart {
    /// The oldest record of each partition (`beginning`, the default).
    #[default]
    Beginning,
    /// Only records produced from now on (`end`).
    End,
}

/// The validated connector configuration.
#[derive(Debug, Clone)]
pub struct FluvioConfig {
    /// The cluster's SC address (`fluvio.endpoint`); `None` uses the current Fluvio profile.
    pub endpoint: Option<String>,
    /// The consumer name offsets are stored under (`fluvio.consumer.id`, default
    /// `tranquility-fluvio`, the counterpart of the Kafka connector's group id).
    pub consumer_id: String,
    /// Where a consumer without a stored offset starts.
    pub offset_start: OffsetStart,
    /// What each topic's source driver runs with (`commit.periodMillis`, then the defaults).
    pub options: DriverOptions,
    /// One route per dataSource.
    pub routes: Vec<DataSourceTopic>,
}

impl FluvioConfig {
    /// Reads the Fluvio properties of a loaded config file.
    pub fn from_config(config: &TranquilityConfig) -> Result<Self, FluvioError> {
        let global = config.global_properties();
        let bad = |e: tranquility::spec::ConfigError| FluvioError::Config(e.to_string());
        let invalid = |what: String| FluvioError::Config(format!("{}: {what}", config.source()));
        let offset_start = match global
            .one_of("fluvio.offsetStart", &["beginning", "end"])
            .map_err(bad)?
            .as_str()
        {
            "end" => OffsetStart::End,
            _ => OffsetStart::Beginning,
        };
        let consumer_id = global.string("fluvio.consumer.id").map_err(bad)?;
        if consumer_id.trim().is_empty() {
            return Err(invalid("properties.fluvio.consumer.id is empty".into()));
        }
        let commit_millis = global
            .int_in("commit.periodMillis", 1, i64::MAX)
            .map_err(bad)?;
        let routes = config
            .data_sources()
            .iter()
            .map(|ds| DataSourceTopic::of(ds, "fluvio.topic").map_err(bad))
            .collect::<Result<Vec<_>, FluvioError>>()?;
        if routes.is_empty() {
            return Err(invalid("no dataSources to consume into".into()));
        }
        Ok(Self {
            endpoint: global.opt_string("fluvio.endpoint"),
            consumer_id,
            offset_start,
            options: DriverOptions {
                commit_period: Duration::from_millis(commit_millis.unsigned_abs()),
                ..DriverOptions::default()
            },
            routes,
        })
    }
}
