//! Druid ingestion spec types and the Tranquility configuration file.
//!
//! - [`IngestionSpec`] and its parts are serde types for the spec Tranquility reads
//!   (`dataSchema`, `tuningConfig`); unknown fields survive a round trip so users' extensions
//!   reach Druid unchanged.
//! - [`TranquilityConfig`] loads `server.json`/`kafka.json` (or their YAML forms): dataSources
//!   with their specs and properties, and the global properties.
//! - [`properties`] holds the registry of every crate's property table, the core's own table
//!   and its typed views.

mod config_file;
mod data_schema;
mod error;
mod lenient;
pub mod properties;
mod tuning;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use config_file::{DataSourceConfig, TranquilityConfig};
pub use data_schema::{
    AggregatorSpec, DataSchema, DimensionSchema, DimensionsSpec, GranularitySpec, ParseSpec,
    ParserSpec, SpatialDimension, TimestampSpec, TypedDimension,
};
pub use error::ConfigError;
pub use properties::{CoreProperties, Properties, Secret};
pub use tuning::{TuningConfig, DEFAULT_WINDOW_PERIOD};

/// A Druid ingestion spec as Tranquility reads it: `dataSchema`, `tuningConfig`, optional
/// `ioConfig` (without firehose or plumber: Tranquility supplies those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionSpec {
    /// What is ingested and how.
    pub data_schema: DataSchema,
    /// Task tuning, including windowPeriod (Druid defaults when absent).
    #[serde(default)]
    pub tuning_config: TuningConfig,
    /// Optional ioConfig, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_config: Option<Value>,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A spec that Druid may accept but Tranquility cannot use; `path` is relative to the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem} (found {value})")]
pub struct SpecError {
    /// JSON path inside the spec, e.g. `dataSchema.granularitySpec.segmentGranularity`.
    pub path: String,
    /// The offending value, as JSON.
    pub value: String,
    /// What is wrong and what was expected.
    pub problem: String,
}

impl IngestionSpec {
    /// The dataSource name.
    pub fn data_source(&self) -> &str {
        &self.data_schema.data_source
    }

    /// Checks what Tranquility needs beyond Druid's own rules: no firehose or plumber in
    /// ioConfig, a realtime tuningConfig, string dimensions only, a segment granularity it can
    /// name tasks for, a usable flattenSpec and a usable timestampSpec.
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |path: String, value: String, problem: String| SpecError {
            path,
            value,
            problem,
        };
        if let Some(io) = &self.io_config {
            let has = |k: &str| io.get(k).is_some_and(|v| !v.is_null());
            if !io.is_object() {
                return Err(err(
                    "ioConfig".into(),
                    io.to_string(),
                    "expected an object".into(),
                ));
            }
            for k in ["firehose", "plumber"] {
                if has(k) {
                    return Err(err(
                        format!("ioConfig.{k}"),
                        io[k].to_string(),
                        format!("ioConfig may not have a {k}: Tranquility supplies it"),
                    ));
                }
            }
        }
        if !self.tuning_config.kind.eq_ignore_ascii_case("realtime") {
            return Err(err(
                "tuningConfig.type".into(),
                Value::from(self.tuning_config.kind.clone()).to_string(),
                "expected \"realtime\"".into(),
            ));
        }
        let ds = &self.data_schema;
        let dims_path = if ds.parser.is_some() {
            "dataSchema.parser.parseSpec.dimensionsSpec.dimensions"
        } else {
            "dataSchema.dimensionsSpec.dimensions"
        };
        for (i, d) in ds.dimensions_spec().dimensions.iter().enumerate() {
            let t = d.type_name();
            if t != "string" {
                return Err(err(
                    format!("{dims_path}[{i}]"),
                    serde_json::to_string(d).unwrap_or_default(),
                    format!(
                        "Dimensions of type[{}] are not supported: Tranquility sends string dimensions only",
                        t.to_ascii_uppercase()
                    ),
                ));
            }
        }
        let seg = &ds.granularity_spec.segment_granularity;
        if let Err(e) = crate::time::window::check_segment_granularity(seg) {
            return Err(err(
                "dataSchema.granularitySpec.segmentGranularity".into(),
                serde_json::to_string(seg).unwrap_or_default(),
                e.to_string(),
            ));
        }
        if let Some(parser) = &ds.parser {
            if let Err(e) = crate::event::Flattener::for_parser(parser) {
                // The offending entry (`flattenSpec.fields[i]`) or the whole flattenSpec.
                let spec = parser.parse_spec.extra.get("flattenSpec");
                let entry =
                    e.at.strip_prefix("flattenSpec.fields[")
                        .and_then(|rest| rest.strip_suffix(']'))
                        .and_then(|i| spec?.pointer(&format!("/fields/{i}")));
                let value = entry.or(spec).map(Value::to_string).unwrap_or_default();
                return Err(err(
                    format!("dataSchema.parser.parseSpec.{}", e.at),
                    value,
                    e.message,
                ));
            }
        }
        if let Err(e) = crate::event::TimestampExtractor::new(&ds.timestamp_spec()) {
            let field = e.field();
            let spec = ds.timestamp_spec();
            let value = match field {
                "missingValue" => spec
                    .missing_value
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                _ => Value::from(spec.format).to_string(),
            };
            return Err(err(
                format!("dataSchema.{}.{field}", ds.timestamp_spec_path()),
                value,
                e.to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
