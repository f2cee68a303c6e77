//! What Kafka supervisors and native batch tasks share: the 0.17+ `dataSchema` (with Druid's
//! submit-time errors and its written-back form), the row pipeline (JSON input, timestamp and
//! dimensions, `transformSpec`) and the row counters Druid reports (`rowStats`).

pub mod jackson;
pub mod transform;

use crate::flatten::Flattener;
use crate::spec::{self, MetricSpec, Schema};
use crate::task::parse::{ParseError, RowParser};
use crate::task::rollup::InputRow;
use crate::time::{self, Granularity, Interval};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use transform::Transform;

/// The Jackson class Druid names in `dataSchema` errors.
pub const DATA_SCHEMA_CLASS: &str = "org.apache.druid.segment.indexing.DataSchema";

/// A validated `dataSchema`.
#[derive(Debug, Clone)]
pub struct DataSchema {
    /// Target dataSource.
    pub data_source: String,
    /// Metrics in spec order.
    pub metrics: Vec<MetricSpec>,
    /// Segment interval granularity.
    pub segment_granularity: Granularity,
    /// Rollup truncation granularity.
    pub query_granularity: Granularity,
    /// Whether equal rows merge.
    pub rollup: bool,
    /// `granularitySpec.intervals` (batch: rows outside are thrown away).
    pub intervals: Vec<Interval>,
    /// Timestamp and dimension extraction.
    pub schema: Schema,
    /// `transformSpec`.
    pub transform: Transform,
    /// Why rows cannot be read although Druid took the spec (its tasks fail with this).
    pub unusable: Option<String>,
    written: Value,
}

fn problem(msg: impl std::fmt::Display) -> String {
    format!("Cannot construct instance of `{DATA_SCHEMA_CLASS}`, problem: {msg}")
}

impl DataSchema {
    /// Validates a `dataSchema` object as Druid's `DataSchema` constructor does.
    pub fn parse(v: &Value) -> Result<DataSchema, String> {
        let ds = v.as_object().ok_or_else(|| {
            format!("Cannot construct instance of `{DATA_SCHEMA_CLASS}`: expected a JSON object, got {v}")
        })?;
        let data_source = match ds.get("dataSource") {
            None | Some(Value::Null) => {
                return Err(problem(
                    "Invalid value for field [dataSource]: must not be null",
                ))
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(problem(format!("dataSource must be a string, got {other}")))
            }
        };
        spec::validate_name("dataSource", &data_source).map_err(problem)?;
        let parser = ds.get("parser").filter(|p| !p.is_null());
        let has = |key: &str| {
            ds.get(key).is_some_and(|v| !v.is_null())
                || parser
                    .and_then(|p| p.get("parseSpec"))
                    .and_then(|p| p.get(key))
                    .is_some_and(|v| !v.is_null())
        };
        // Druid checks timestampSpec only together with a dimensionsSpec (old task specs had
        // neither); without both the spec is taken and its tasks fail.
        let unusable = match (has("timestampSpec"), has("dimensionsSpec")) {
            (false, true) => return Err(problem("timestampSpec")),
            (false, false) => Some(format!(
                "dataSchema of [{data_source}] has neither a timestampSpec nor a dimensionsSpec: rows cannot be read"
            )),
            _ => None,
        };
        let mut metrics = Vec::new();
        if let Some(ms) = ds.get("metricsSpec").filter(|m| !m.is_null()) {
            let arr = ms
                .as_array()
                .ok_or_else(|| problem("metricsSpec must be a list of aggregators"))?;
            for m in arr {
                metrics.push(MetricSpec::from_json(m, "metricsSpec")?);
            }
        }
        let gs = match ds.get("granularitySpec") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(g)) => g.clone(),
            Some(other) => {
                return Err(problem(format!(
                    "granularitySpec must be an object, got {other}"
                )))
            }
        };
        match gs.get("type").and_then(Value::as_str) {
            None | Some("uniform") => {}
            Some(t) => return Err(format!("Could not resolve type id '{t}' as a subtype of `org.apache.druid.segment.indexing.granularity.GranularitySpec`: druid-local supports only [uniform]")),
        }
        let gran = |key: &str, default: &str| match gs.get(key) {
            None | Some(Value::Null) => Granularity::named(default),
            Some(g) => Granularity::from_json(g).map_err(|e| format!("{key}: {e}")),
        };
        let segment_granularity = gran("segmentGranularity", "DAY")?;
        if matches!(segment_granularity, Granularity::All | Granularity::None) {
            return Err("segmentGranularity must be a time granularity, not ALL or NONE".into());
        }
        let query_granularity = gran("queryGranularity", "NONE")?;
        let rollup = gs.get("rollup").and_then(Value::as_bool).unwrap_or(true);
        let mut intervals = Vec::new();
        for i in gs
            .get("intervals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = i
                .as_str()
                .ok_or_else(|| format!("granularitySpec.intervals must be strings, got {i}"))?;
            intervals.push(Interval::parse(text)?);
        }
        let schema = match &unusable {
            Some(_) => spec::parse_schema(
                json!({"timestampSpec": {"column": "timestamp"}})
                    .as_object()
                    .expect("an object"),
                &metrics,
            ),
            None => spec::parse_schema(ds, &metrics),
        }
        .map_err(problem)?;
        let transform = Transform::parse(ds.get("transformSpec"))?;
        let mut written = write_back(
            ds,
            parser,
            &schema,
            &metrics,
            &segment_granularity,
            &query_granularity,
            rollup,
            &intervals,
        );
        if unusable.is_some() {
            written["timestampSpec"] = Value::Null;
            written["dimensionsSpec"] = Value::Null;
        }
        Ok(DataSchema {
            data_source,
            metrics,
            segment_granularity,
            query_granularity,
            rollup,
            intervals,
            schema,
            transform,
            unusable,
            written,
        })
    }

    /// The `dataSchema` as Druid writes it back (defaults filled in).
    pub fn written(&self) -> &Value {
        &self.written
    }

    /// Dimension names in spec order (empty for schemaless).
    pub fn dimension_names(&self) -> Vec<String> {
        self.schema.dimensions.clone().unwrap_or_default()
    }
}

#[allow(clippy::too_many_arguments)]
fn write_back(
    ds: &Map<String, Value>,
    parser: Option<&Value>,
    schema: &Schema,
    metrics: &[MetricSpec],
    segment: &Granularity,
    query: &Granularity,
    rollup: bool,
    intervals: &[Interval],
) -> Value {
    let parse_spec = parser.and_then(|p| p.get("parseSpec"));
    let pick = |key: &str| {
        ds.get(key)
            .filter(|v| !v.is_null())
            .or_else(|| parse_spec.and_then(|p| p.get(key)).filter(|v| !v.is_null()))
    };
    let ts = pick("timestampSpec");
    let ts_format = ts
        .and_then(|t| t.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("auto");
    let dims_spec = pick("dimensionsSpec");
    let dims: Vec<Value> = dims_spec
        .and_then(|d| d.get("dimensions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(jackson::dimension)
        .collect();
    let given: Vec<String> = dims_spec
        .and_then(|d| d.get("dimensionExclusions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    let names = schema.dimensions.clone().unwrap_or_default();
    let flag = |key: &str| {
        dims_spec
            .and_then(|d| d.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let transform = ds.get("transformSpec").filter(|t| !t.is_null());
    let transforms: Vec<Value> = transform
        .and_then(|t| t.get("transforms"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| json!({"type": "expression", "name": t.get("name"), "expression": t.get("expression")}))
        .collect();
    let mut out = Map::new();
    out.insert(
        "dataSource".into(),
        ds.get("dataSource").cloned().unwrap_or(Value::Null),
    );
    if let Some(p) = parser {
        out.insert("parser".into(), p.clone());
    }
    out.insert(
        "timestampSpec".into(),
        json!({"column": schema.ts_column, "format": ts_format,
            "missingValue": schema.ts_missing.map(time::iso)}),
    );
    out.insert(
        "dimensionsSpec".into(),
        json!({
            "dimensions": dims,
            "dimensionExclusions": jackson::dimension_exclusions(&given, &schema.ts_column, &names, metrics),
            "includeAllDimensions": flag("includeAllDimensions"),
            "useSchemaDiscovery": flag("useSchemaDiscovery"),
        }),
    );
    out.insert(
        "metricsSpec".into(),
        metrics.iter().map(jackson::aggregator).collect(),
    );
    out.insert(
        "granularitySpec".into(),
        json!({"type": "uniform", "segmentGranularity": jackson::granularity(segment),
            "queryGranularity": jackson::granularity(query), "rollup": rollup,
            "intervals": intervals.iter().map(|i| i.to_string()).collect::<Vec<_>>()}),
    );
    out.insert(
        "transformSpec".into(),
        json!({"filter": transform.and_then(|t| t.get("filter")).cloned().unwrap_or(Value::Null),
            "transforms": transforms}),
    );
    Value::Object(out)
}

/// Row counters of one task (Druid's `rowStats.buildSegments`).
#[derive(Debug, Default)]
pub struct RowStats {
    /// Rows indexed.
    pub processed: AtomicU64,
    /// Input bytes read.
    pub processed_bytes: AtomicU64,
    /// Rows indexed although a column failed to parse (such a metric reads as 0).
    pub processed_with_error: AtomicU64,
    /// Rows dropped on purpose: filtered, outside `intervals` or the rejection window.
    pub thrown_away: AtomicU64,
    /// Records that could not be parsed into a row at all.
    pub unparseable: AtomicU64,
}

impl RowStats {
    /// `{"processed", "processedBytes", "processedWithError", "thrownAway", "unparseable"}`.
    pub fn totals(&self) -> Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "processed": g(&self.processed),
            "processedBytes": g(&self.processed_bytes),
            "processedWithError": g(&self.processed_with_error),
            "thrownAway": g(&self.thrown_away),
            "unparseable": g(&self.unparseable),
        })
    }

    /// Adds one to a counter.
    pub fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// What one input event became.
#[derive(Debug)]
pub enum Event {
    /// A row to index; `true` when a metric input was not a number.
    Row(InputRow, bool),
    /// Dropped by the transformSpec filter.
    Filtered,
}

/// Turns input events into rows for one dataSchema.
#[derive(Debug)]
pub struct Rows {
    parser: RowParser,
    transform: Transform,
    metric_fields: Vec<String>,
    /// Applied to each event before anything else reads it, as Druid's JSON readers do.
    flatten: Option<Arc<Flattener>>,
}

impl Rows {
    /// The pipeline of a dataSchema.
    pub fn new(schema: &DataSchema) -> Rows {
        let mut metric_fields: Vec<String> = schema
            .metrics
            .iter()
            .filter_map(|m| m.field.clone())
            .collect();
        metric_fields.dedup();
        Rows {
            parser: RowParser::new(&schema.schema, &schema.metrics),
            transform: schema.transform.clone(),
            metric_fields,
            flatten: schema.schema.flatten.clone(),
        }
    }

    /// Flattens every event first with `flattener` (an `inputFormat`'s `flattenSpec`), in
    /// place of a legacy parser's.
    pub fn with_flattener(mut self, flattener: Flattener) -> Rows {
        self.flatten = Some(Arc::new(flattener));
        self
    }

    /// One parsed JSON event.
    pub fn event(&self, mut v: Value) -> Result<Event, String> {
        let Value::Object(obj) = &v else {
            return Err(format!("Unable to parse row [{v}]: not a JSON object"));
        };
        if let Some(flattener) = &self.flatten {
            v = Value::Object(flattener.flatten(obj)?);
        }
        let Value::Object(obj) = &v else {
            return Err(format!("Unable to parse row [{v}]: not a JSON object"));
        };
        let with_error = self.metric_fields.iter().any(|f| match obj.get(f) {
            Some(Value::String(s)) => {
                let t = s.trim();
                !t.is_empty() && t.parse::<f64>().is_err()
            }
            Some(Value::Bool(_) | Value::Object(_)) => true,
            _ => false,
        });
        let mut row = self.parser.parse_value(&v).map_err(parse_message)?;
        if !self.transform.is_empty() {
            let Value::Object(obj) = &mut v else {
                return Err("not an object".into());
            };
            if !self.transform.apply(obj, row.ts)? {
                return Ok(Event::Filtered);
            }
            row = self.parser.parse_value(&v).map_err(parse_message)?;
        }
        Ok(Event::Row(row, with_error))
    }
}

fn parse_message(e: ParseError) -> String {
    match e {
        ParseError::Malformed(m) | ParseError::Unparseable(m) => m,
    }
}

/// All JSON values of one stream record (several may follow each other), or the parse error:
/// Druid's stream JSON reader is not line-split, and a record that fails is unparseable whole.
pub fn concatenated_json(bytes: &[u8]) -> Result<Vec<Value>, String> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "Unable to parse row [{}]: {e}",
                String::from_utf8_lossy(bytes)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"dataSource": "wiki",
            "timestampSpec": {"column": "timestamp", "format": "auto"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}],
            "granularitySpec": {"segmentGranularity": "HOUR", "queryGranularity": "MINUTE"}})
    }

    #[test]
    fn druid_errors_at_submit() {
        let mut s = schema();
        s.as_object_mut().unwrap().remove("dataSource");
        assert_eq!(
            DataSchema::parse(&s).unwrap_err(),
            "Cannot construct instance of `org.apache.druid.segment.indexing.DataSchema`, problem: Invalid value for field [dataSource]: must not be null"
        );
        let mut s = schema();
        s["dataSource"] = json!("a/b");
        assert!(DataSchema::parse(&s)
            .unwrap_err()
            .ends_with("Value [a/b] cannot contain '/'."));
        let mut s = schema();
        s.as_object_mut().unwrap().remove("timestampSpec");
        assert!(DataSchema::parse(&s)
            .unwrap_err()
            .ends_with("problem: timestampSpec"));
    }

    #[test]
    fn rows_from_concatenated_objects() {
        let ds = DataSchema::parse(&schema()).unwrap();
        let rows = Rows::new(&ds);
        let values = concatenated_json(
            br#"{"timestamp":"2024-01-01T00:00:00Z","page":"a","added":1} {"timestamp":"2024-01-01T00:00:01Z","page":"b","added":"x"}"#,
        )
        .unwrap();
        assert_eq!(values.len(), 2);
        let mut errors = Vec::new();
        for v in values {
            match rows.event(v).unwrap() {
                Event::Row(_, e) => errors.push(e),
                Event::Filtered => panic!("nothing is filtered"),
            }
        }
        assert_eq!(errors, [false, true]);
        assert!(concatenated_json(b"{\"a\":1} {").is_err());
        assert!(rows.event(json!({"page": "x"})).is_err());
    }

    #[test]
    fn events_are_flattened_before_the_row_and_the_transforms_read_them() {
        let ds = DataSchema::parse(&json!({
            "dataSource": "wiki",
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["page"]},
                "flattenSpec": {"useFieldDiscovery": false, "fields": [
                    {"type": "path", "name": "page", "expr": "$.meta.page"},
                    {"type": "root", "name": "ts"}]}}},
            "granularitySpec": {"segmentGranularity": "hour"}
        }))
        .unwrap();
        let nested = json!({"ts": 1000, "meta": {"page": "a"}, "page": "top"});
        let Event::Row(row, _) = Rows::new(&ds).event(nested.clone()).unwrap() else {
            panic!("a row")
        };
        assert_eq!(row.ts, 1000);
        assert_eq!(
            format!("{:?}", row.dims),
            format!(
                "{:?}",
                crate::task::rollup::RowDims::Fixed(vec![crate::task::rollup::DimValue::One(
                    "a".into()
                )])
            )
        );
        // An inputFormat's flattenSpec in place of the parser's.
        let input_format = crate::flatten::Flattener::new(
            &json!({"fields": [{"type": "root", "name": "page"}]}),
            false,
        )
        .unwrap();
        let Event::Row(row, _) = Rows::new(&ds)
            .with_flattener(input_format)
            .event(nested)
            .unwrap()
        else {
            panic!("a row")
        };
        assert_eq!(
            format!("{:?}", row.dims),
            format!(
                "{:?}",
                crate::task::rollup::RowDims::Fixed(vec![crate::task::rollup::DimValue::One(
                    "top".into()
                )])
            )
        );
    }

    #[test]
    fn written_back_with_defaults() {
        let ds = DataSchema::parse(&schema()).unwrap();
        let w = ds.written();
        assert_eq!(w["granularitySpec"]["segmentGranularity"], "HOUR");
        assert_eq!(w["timestampSpec"]["missingValue"], Value::Null);
        assert_eq!(
            w["dimensionsSpec"]["dimensions"][0]["multiValueHandling"],
            "SORTED_ARRAY"
        );
        assert_eq!(
            w["transformSpec"],
            json!({"filter": null, "transforms": []})
        );
    }
}
