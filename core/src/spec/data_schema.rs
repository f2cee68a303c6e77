//! The `dataSchema` part of a Druid ingestion spec: dataSource, parser (parseSpec with
//! timestampSpec and dimensionsSpec), metricsSpec, granularitySpec and transformSpec.
//!
//! Every type keeps the fields it does not know in `extra` and writes them back unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient;
use crate::time::Granularity;

/// `dataSchema`: what the dataSource is called and how events become rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSchema {
    /// The Druid dataSource name.
    #[serde(deserialize_with = "lenient::string")]
    pub data_source: String,
    /// The legacy parser (`{"type":"string","parseSpec":{...}}`) that Tranquility reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parser: Option<ParserSpec>,
    /// Newer Druid layout: `timestampSpec` directly in `dataSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_spec: Option<TimestampSpec>,
    /// Newer Druid layout: `dimensionsSpec` directly in `dataSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions_spec: Option<DimensionsSpec>,
    /// Aggregators applied at ingestion.
    #[serde(default)]
    pub metrics_spec: Vec<AggregatorSpec>,
    /// Segment and query granularity, rollup.
    #[serde(default)]
    pub granularity_spec: GranularitySpec,
    /// Optional `transformSpec` (filter and expression transforms), passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_spec: Option<Value>,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DataSchema {
    /// The timestampSpec in force: the parser's, else the top-level one, else Druid's default.
    pub fn timestamp_spec(&self) -> TimestampSpec {
        self.parser
            .as_ref()
            .map(|p| p.parse_spec.timestamp_spec.clone())
            .or_else(|| self.timestamp_spec.clone())
            .unwrap_or_default()
    }

    /// The dimensionsSpec in force: the parser's, else the top-level one, else empty (schemaless).
    pub fn dimensions_spec(&self) -> DimensionsSpec {
        self.parser
            .as_ref()
            .map(|p| p.parse_spec.dimensions_spec.clone())
            .or_else(|| self.dimensions_spec.clone())
            .unwrap_or_default()
    }

    /// JSON path (relative to `dataSchema`) of the timestampSpec in force, for error messages.
    pub fn timestamp_spec_path(&self) -> &'static str {
        if self.parser.is_some() {
            "parser.parseSpec.timestampSpec"
        } else {
            "timestampSpec"
        }
    }
}

/// `parser`: how Druid turns input into rows; `parseSpec` carries the timestamp and dimensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParserSpec {
    /// Parser type: `string` (Druid's default), `map`, ...
    #[serde(rename = "type", default = "default_parser_type")]
    pub kind: String,
    /// The parseSpec.
    pub parse_spec: ParseSpec,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_parser_type() -> String {
    "string".to_string()
}

/// `parseSpec`: input format plus timestampSpec and dimensionsSpec (`columns`, `flattenSpec`,
/// `delimiter`, ... stay in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParseSpec {
    /// Input format: `json`, `csv`, `tsv`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Where the timestamp is and how it is written.
    #[serde(default)]
    pub timestamp_spec: TimestampSpec,
    /// Which columns are dimensions.
    #[serde(default)]
    pub dimensions_spec: DimensionsSpec,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `timestampSpec`: the timestamp column, its format and the value used when it is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampSpec {
    /// Column holding the timestamp (default `timestamp`).
    #[serde(default = "default_ts_column", deserialize_with = "lenient::string")]
    pub column: String,
    /// `auto` (default), `iso`, `millis`, `posix`, `micro`, `nano`, `ruby` or a Joda pattern.
    #[serde(default = "default_ts_format", deserialize_with = "lenient::string")]
    pub format: String,
    /// Timestamp for events without one: an ISO date-time string or epoch millis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_value: Option<Value>,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_ts_column() -> String {
    "timestamp".to_string()
}

fn default_ts_format() -> String {
    "auto".to_string()
}

impl Default for TimestampSpec {
    fn default() -> Self {
        Self {
            column: default_ts_column(),
            format: default_ts_format(),
            missing_value: None,
            extra: Map::new(),
        }
    }
}

impl TimestampSpec {
    /// A timestampSpec for `column` in `format`.
    pub fn new(column: impl Into<String>, format: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            format: format.into(),
            ..Self::default()
        }
    }
}

/// `dimensionsSpec`: explicit dimensions (empty = schemaless), exclusions, spatial dimensions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionsSpec {
    /// Dimension names or typed dimension objects, in order.
    #[serde(default)]
    pub dimensions: Vec<DimensionSchema>,
    /// Columns never taken as dimensions in schemaless mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimension_exclusions: Vec<String>,
    /// Spatial dimensions built from several columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spatial_dimensions: Vec<SpatialDimension>,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DimensionsSpec {
    /// Whether no dimensions are listed, so every other column becomes one.
    pub fn is_schemaless(&self) -> bool {
        self.dimensions.is_empty()
    }

    /// The listed dimension names, in order.
    pub fn dimension_names(&self) -> impl Iterator<Item = &str> {
        self.dimensions.iter().map(DimensionSchema::name)
    }
}

/// One entry of `dimensions`: a bare name or an object with `type` and `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DimensionSchema {
    /// A string dimension given by name.
    Name(String),
    /// `{"type":"string"|"long"|...,"name":...}`.
    Typed(TypedDimension),
}

impl DimensionSchema {
    /// The dimension's name.
    pub fn name(&self) -> &str {
        match self {
            DimensionSchema::Name(n) => n,
            DimensionSchema::Typed(t) => &t.name,
        }
    }

    /// The dimension's type, lower-case (`string` when not given).
    pub fn type_name(&self) -> String {
        match self {
            DimensionSchema::Typed(TypedDimension { kind: Some(k), .. }) => k.to_ascii_lowercase(),
            _ => "string".to_string(),
        }
    }
}

/// A dimension object such as `{"type":"long","name":"x"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypedDimension {
    /// `string`, `long`, `float`, `double`, `spatial`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The dimension's name.
    pub name: String,
    /// Fields not known here (`multiValueHandling`, `createBitmapIndex`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A spatial dimension: `{"dimName":"coord","dims":["lat","lon"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpatialDimension {
    /// Output dimension name.
    pub dim_name: String,
    /// Input columns.
    #[serde(default)]
    pub dims: Vec<String>,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One aggregator of `metricsSpec`, e.g. `{"type":"longSum","name":"n","fieldName":"x"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregatorSpec {
    /// Aggregator type: `count`, `longSum`, `doubleSum`, `hyperUnique`, `filtered`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Output column name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Input column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// Fields not known here (`fields`, `aggregator`, `expression`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AggregatorSpec {
    /// The input columns this aggregator reads (`fieldName`, `fields`, and a `filtered` inner one).
    pub fn input_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self.field_name.iter().cloned().collect();
        if let Some(Value::Array(fields)) = self.extra.get("fields") {
            out.extend(fields.iter().filter_map(|f| {
                match f {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o
                        .get("dimension")
                        .or_else(|| o.get("fieldName"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    _ => None,
                }
            }));
        }
        if let Some(inner) = self.extra.get("aggregator") {
            if let Ok(inner) = serde_json::from_value::<AggregatorSpec>(inner.clone()) {
                out.extend(inner.input_fields());
            }
        }
        out
    }

    /// The output name (a `filtered` aggregator may carry it on its inner aggregator).
    pub fn output_name(&self) -> Option<String> {
        self.name.clone().or_else(|| {
            self.extra
                .get("aggregator")
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }
}

/// `granularitySpec`: segment and query granularity and rollup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GranularitySpec {
    /// `uniform` (Druid's default) or `arbitrary`.
    #[serde(rename = "type", default = "default_gs_type")]
    pub kind: String,
    /// Segment granularity (Druid default `DAY`).
    #[serde(default = "default_segment_granularity")]
    pub segment_granularity: Granularity,
    /// Query granularity (Druid default `NONE`).
    #[serde(default = "default_query_granularity")]
    pub query_granularity: Granularity,
    /// Whether rows are rolled up (Druid default true).
    #[serde(default = "default_true", deserialize_with = "lenient::bool_")]
    pub rollup: bool,
    /// Intervals (unused by realtime ingestion, passed through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<Value>,
    /// Fields not known here, kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_gs_type() -> String {
    "uniform".to_string()
}
fn default_segment_granularity() -> Granularity {
    Granularity::DAY
}
fn default_query_granularity() -> Granularity {
    Granularity::None
}
fn default_true() -> bool {
    true
}

impl Default for GranularitySpec {
    fn default() -> Self {
        Self {
            kind: default_gs_type(),
            segment_granularity: default_segment_granularity(),
            query_granularity: default_query_granularity(),
            rollup: true,
            intervals: None,
            extra: Map::new(),
        }
    }
}
