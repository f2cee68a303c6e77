//! Parsing push-events bodies (JSON or Smile arrays of objects) straight into [`InputRow`]s,
//! one pass per event, the way the task's `map` parser does it in Druid's HTTP handler.
//!
//! A `string` parser with a json parseSpec flattens each event first, as Druid's JSON parser
//! does (its `flattenSpec`, see [`crate::flatten`]); the `map` parser never does. Spatial
//! dimensions join their columns' values with commas, as Druid's spatial row transformer does.

use super::rollup::{DimValue, InputRow, Num, RowDims};
use crate::flatten::Flattener;
use crate::spec::{MetricSpec, Schema, TsFormat};
use crate::time::{self, Millis};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::sync::Arc;

/// Why a body could not be turned into rows.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON/Smile, not an array of objects (Druid: 500 with a JSON `error`).
    #[error("{0}")]
    Malformed(String),
    /// An event could not be parsed by the task's parser (Druid: 500, not JSON).
    #[error("{0}")]
    Unparseable(String),
}

#[derive(Debug, Default, Clone)]
struct Role {
    ts: bool,
    dim: Option<usize>,
    metrics: Vec<usize>,
    /// (spatial dimension, position among its columns).
    spatial: Vec<(usize, usize)>,
}

/// A spatial dimension: where it sits among the dimensions and how many columns it joins.
#[derive(Debug)]
struct Spatial {
    dim: usize,
    columns: usize,
}

/// A compiled parser for one task's schema.
#[derive(Debug)]
pub struct RowParser {
    ts_column: String,
    ts_format: TsFormat,
    ts_missing: Option<Millis>,
    n_dims: Option<usize>,
    n_metrics: usize,
    roles: FxHashMap<String, Role>,
    exclusions: FxHashSet<String>,
    spatial: Vec<Spatial>,
    flatten: Option<Arc<Flattener>>,
}

/// A raw JSON/Smile value, kept only as long as needed to route it.
#[derive(Debug)]
enum Raw {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(String),
    Arr(Vec<Raw>),
    Obj(String),
}

impl RowParser {
    /// Builds the parser for a schema and metricsSpec.
    pub fn new(schema: &Schema, metrics: &[MetricSpec]) -> RowParser {
        let mut roles: FxHashMap<String, Role> = FxHashMap::default();
        roles.entry(schema.ts_column.clone()).or_default().ts = true;
        if let Some(dims) = &schema.dimensions {
            for (i, d) in dims.iter().enumerate() {
                roles.entry(d.clone()).or_default().dim = Some(i);
            }
        }
        for (j, m) in metrics.iter().enumerate() {
            if let Some(f) = &m.field {
                roles.entry(f.clone()).or_default().metrics.push(j);
            }
        }
        let mut spatial = Vec::new();
        for (name, columns) in &schema.spatial {
            let dim = schema
                .dimensions
                .as_ref()
                .and_then(|d| d.iter().position(|n| n == name));
            let Some(dim) = dim else { continue };
            for (pos, column) in columns.iter().enumerate() {
                roles
                    .entry(column.clone())
                    .or_default()
                    .spatial
                    .push((spatial.len(), pos));
            }
            spatial.push(Spatial {
                dim,
                columns: columns.len(),
            });
        }
        RowParser {
            ts_column: schema.ts_column.clone(),
            ts_format: schema.ts_format.clone(),
            ts_missing: schema.ts_missing,
            n_dims: schema.dimensions.as_ref().map(Vec::len),
            n_metrics: metrics.len(),
            roles,
            exclusions: schema.exclusions.iter().cloned().collect(),
            spatial,
            flatten: schema.flatten.clone(),
        }
    }

    /// Parses a JSON body.
    pub fn parse_json(&self, body: &[u8]) -> Result<Vec<InputRow>, ParseError> {
        if self.flatten.is_some() {
            let events: Vec<serde_json::Value> =
                serde_json::from_slice(body).map_err(|e| ParseError::Malformed(e.to_string()))?;
            return self.flattened_rows(events);
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let rows = RowsSeed(self)
            .deserialize(&mut de)
            .map_err(|e| self.classify(e.to_string()))?;
        de.end().map_err(|e| ParseError::Malformed(e.to_string()))?;
        Ok(rows)
    }

    /// Parses a Smile body.
    pub fn parse_smile(&self, body: &[u8]) -> Result<Vec<InputRow>, ParseError> {
        if self.flatten.is_some() {
            let events: Vec<serde_json::Value> =
                serde_smile::from_slice(body).map_err(|e| ParseError::Malformed(e.to_string()))?;
            return self.flattened_rows(events);
        }
        let mut de = serde_smile::Deserializer::from_slice(body);
        let rows = RowsSeed(self)
            .deserialize(&mut de)
            .map_err(|e| self.classify(e.to_string()))?;
        de.end().map_err(|e| ParseError::Malformed(e.to_string()))?;
        Ok(rows)
    }

    /// Flattens each event, then reads it as a row.
    fn flattened_rows(&self, events: Vec<serde_json::Value>) -> Result<Vec<InputRow>, ParseError> {
        let Some(flattener) = &self.flatten else {
            return Err(ParseError::Malformed("no flattenSpec".into()));
        };
        events
            .into_iter()
            .map(|event| {
                let serde_json::Value::Object(object) = event else {
                    return Err(ParseError::Malformed(format!(
                        "expected an event object (`Map<String, Object>`), got {event}"
                    )));
                };
                let flat = flattener
                    .flatten(&object)
                    .map_err(ParseError::Unparseable)?;
                RowSeed(self)
                    .deserialize(serde_json::Value::Object(flat))
                    .map_err(|e| self.classify(e.to_string()))
            })
            .collect()
    }

    /// Parses one event object already in memory (native batch and Kafka ingestion, after
    /// transforms).
    pub fn parse_value(&self, event: &serde_json::Value) -> Result<InputRow, ParseError> {
        RowSeed(self)
            .deserialize(event)
            .map_err(|e| self.classify(e.to_string()))
    }

    fn classify(&self, msg: String) -> ParseError {
        match msg.strip_prefix(UNPARSEABLE) {
            Some(rest) => {
                ParseError::Unparseable(rest.split(" at line ").next().unwrap_or(rest).to_owned())
            }
            None => ParseError::Malformed(msg),
        }
    }

    fn timestamp(&self, v: Option<Raw>) -> Result<Millis, String> {
        // Druid's ParseException text; its event dump is replaced by the column's name.
        let bad = |v: &Raw| {
            let shown = match v {
                Raw::Str(s) => s.clone(),
                Raw::Long(l) => l.to_string(),
                Raw::Double(d) => java_double(*d),
                Raw::Bool(b) => b.to_string(),
                other => format!("{other:?}"),
            };
            format!(
                "Timestamp[{shown}] is unparseable! Event: column [{}]",
                self.ts_column
            )
        };
        let v = match v {
            None | Some(Raw::Null) => {
                return self.ts_missing.ok_or_else(|| {
                    format!(
                        "Timestamp[null] is unparseable! Event: column [{}] is missing or null",
                        self.ts_column
                    )
                })
            }
            Some(v) => v,
        };
        let num = |v: &Raw| -> Option<f64> {
            match v {
                Raw::Long(l) => Some(*l as f64),
                Raw::Double(d) => Some(*d),
                Raw::Str(s) => s
                    .trim()
                    .trim_matches('"')
                    .parse::<i64>()
                    .ok()
                    .map(|l| l as f64),
                _ => None,
            }
        };
        let exact = |v: &Raw| -> Option<i64> {
            match v {
                Raw::Long(l) => Some(*l),
                Raw::Double(d) => Some(*d as i64),
                Raw::Str(s) => s.trim().trim_matches('"').parse::<i64>().ok(),
                _ => None,
            }
        };
        let out = match self.ts_format {
            TsFormat::Auto => match &v {
                Raw::Long(l) => Some(*l),
                Raw::Double(d) => Some(*d as i64),
                // As Druid: all digits are millis; anything else is ISO text.
                Raw::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    s.parse().ok()
                }
                Raw::Str(s) => time::parse_auto(s).ok(),
                _ => None,
            },
            TsFormat::Iso => match &v {
                Raw::Str(s) => time::parse_iso(time::strip_quotes(s)).ok(),
                Raw::Long(l) => time::parse_iso(&l.to_string()).ok(),
                _ => None,
            },
            TsFormat::Millis => exact(&v),
            TsFormat::Posix => exact(&v).map(|s| s.saturating_mul(1000)),
            TsFormat::Micro => exact(&v).map(|s| s / 1000),
            TsFormat::Nano => exact(&v).map(|s| s / 1_000_000),
            TsFormat::Ruby => match &v {
                Raw::Str(s) => s.trim().parse::<f64>().ok().map(|x| (x * 1000.0) as i64),
                other => num(other).map(|x| (x * 1000.0) as i64),
            },
        };
        out.ok_or_else(|| bad(&v))
    }
}

const UNPARSEABLE: &str = "\u{1}unparseable:";

struct RowsSeed<'a>(&'a RowParser);

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Vec<InputRow>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = Vec<InputRow>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of event objects (`Collection<Map<String, Object>>`)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(100_000));
        while let Some(row) = seq.next_element_seed(RowSeed(self.0))? {
            rows.push(row);
        }
        Ok(rows)
    }
}

struct RowSeed<'a>(&'a RowParser);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = InputRow;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

enum Key<'a> {
    Known(&'a Role),
    Other(String),
}

struct KeySeed<'a>(&'a RowParser);

impl<'de, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Key<'a>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'a> Visitor<'_> for KeySeed<'a> {
    type Value = Key<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(match self.0.roles.get(s) {
            Some(r) => Key::Known(r),
            None => Key::Other(s.to_owned()),
        })
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = InputRow;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object (`Map<String, Object>`)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let p = self.0;
        let mut ts = None;
        let mut metrics = vec![Num::Missing; p.n_metrics];
        let mut dims = match p.n_dims {
            Some(n) => RowDims::Fixed(vec![DimValue::Null; n]),
            None => RowDims::Named(Vec::new()),
        };
        let mut spatial: Vec<Vec<Option<String>>> =
            p.spatial.iter().map(|s| vec![None; s.columns]).collect();
        while let Some(key) = map.next_key_seed(KeySeed(p))? {
            match key {
                Key::Known(role) => {
                    let v: Raw = map.next_value_seed(RawSeed)?;
                    for &j in &role.metrics {
                        metrics[j] = to_num(&v);
                    }
                    for &(s, pos) in &role.spatial {
                        spatial[s][pos] = spatial_part(&v);
                    }
                    if role.ts {
                        ts = Some(v);
                        continue;
                    }
                    match (&mut dims, role.dim) {
                        (RowDims::Fixed(d), Some(i)) => d[i] = to_dim(v),
                        (RowDims::Fixed(_), None) => {}
                        (RowDims::Named(_), _) => {} // metric inputs are excluded in schemaless mode
                    }
                }
                Key::Other(name) => match &mut dims {
                    RowDims::Named(d) if !p.exclusions.contains(&name) => {
                        let v: Raw = map.next_value_seed(RawSeed)?;
                        d.push((name, to_dim(v)));
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        let ts = p
            .timestamp(ts)
            .map_err(|e| de::Error::custom(format!("{UNPARSEABLE}{e}")))?;
        if let RowDims::Fixed(d) = &mut dims {
            for (s, parts) in p.spatial.iter().zip(spatial) {
                // A value given for the spatial dimension itself is kept.
                if d[s.dim] == DimValue::Null && parts.iter().all(Option::is_some) {
                    let joined: Vec<String> = parts.into_iter().flatten().collect();
                    d[s.dim] = DimValue::One(joined.join(",").into_boxed_str());
                }
            }
        }
        Ok(InputRow { ts, dims, metrics })
    }
}

struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = Raw;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(b))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Long(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(i64::try_from(v)
            .map(Raw::Long)
            .unwrap_or(Raw::Double(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Double(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(RawSeed)? {
            out.push(v);
        }
        Ok(Raw::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut obj = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            obj.insert(k, map.next_value::<serde_json::Value>()?);
        }
        Ok(Raw::Obj(serde_json::Value::Object(obj).to_string()))
    }
}

/// A spatial column's value as Druid reads it: a number (or numeric text), written as Java does.
fn spatial_part(v: &Raw) -> Option<String> {
    let text = match v {
        Raw::Long(l) => l.to_string(),
        Raw::Double(d) => java_double(*d),
        Raw::Str(s) => s.trim().to_owned(),
        Raw::Arr(items) if items.len() == 1 => return spatial_part(&items[0]),
        _ => return None,
    };
    text.parse::<f32>().is_ok().then_some(text)
}

fn to_num(v: &Raw) -> Num {
    match v {
        Raw::Long(l) => Num::Long(*l),
        Raw::Double(d) => Num::Double(*d),
        Raw::Str(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .map(Num::Long)
                .or_else(|_| t.parse::<f64>().map(Num::Double))
                .unwrap_or(Num::Missing)
        }
        Raw::Bool(_) | Raw::Null | Raw::Arr(_) | Raw::Obj(_) => Num::Missing,
    }
}

/// Java's `Double.toString` for the common cases (`1.0`, `0.5`, `1.0E10`).
pub fn java_double(d: f64) -> String {
    if d.is_finite() && d == d.trunc() && d.abs() < 1e7 {
        format!("{d:.1}")
    } else if d.is_finite() && (d.abs() >= 1e7 || (d != 0.0 && d.abs() < 1e-3)) {
        let s = format!("{d:E}");
        match s.split_once('E') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0E{e}"),
            _ => s,
        }
    } else if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        format!("{d}")
    }
}

fn scalar_string(v: Raw) -> Option<String> {
    match v {
        Raw::Null => None,
        Raw::Bool(b) => Some(b.to_string()),
        Raw::Long(l) => Some(l.to_string()),
        Raw::Double(d) => Some(java_double(d)),
        Raw::Str(s) if s.is_empty() => None,
        Raw::Str(s) => Some(s),
        Raw::Obj(s) => Some(s),
        Raw::Arr(a) => Some(format!("{:?}", a)),
    }
}

fn to_dim(v: Raw) -> DimValue {
    match v {
        Raw::Arr(items) => {
            let mut vals: Vec<Box<str>> = items
                .into_iter()
                .filter_map(scalar_string)
                .map(String::into_boxed_str)
                .collect();
            match vals.len() {
                0 => DimValue::Null,
                1 => DimValue::One(vals.pop().unwrap_or_default()),
                _ => {
                    vals.sort();
                    DimValue::Multi(vals.into_boxed_slice())
                }
            }
        }
        other => match scalar_string(other) {
            Some(s) => DimValue::One(s.into_boxed_str()),
            None => DimValue::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::AggKind;

    fn parser(dims: Option<Vec<&str>>) -> RowParser {
        let metrics = vec![
            MetricSpec {
                kind: AggKind::Count,
                name: "count".into(),
                field: None,
            },
            MetricSpec {
                kind: AggKind::DoubleSum,
                name: "added".into(),
                field: Some("added".into()),
            },
        ];
        let schema = Schema {
            ts_column: "timestamp".into(),
            ts_format: TsFormat::Auto,
            ts_missing: None,
            dimensions: dims.map(|d| d.into_iter().map(String::from).collect()),
            exclusions: vec![
                "timestamp".into(),
                "added".into(),
                "count".into(),
                "skip".into(),
            ],
            spatial: Vec::new(),
            flatten: None,
        };
        RowParser::new(&schema, &metrics)
    }

    #[test]
    fn explicit_dims() {
        let p = parser(Some(vec!["page", "n"]));
        let rows = p.parse_json(br#"[{"timestamp":"2024-01-01T00:00:01Z","page":"A","n":1.0,"added":"3","other":{"x":1}}]"#).unwrap();
        assert_eq!(rows[0].ts, time::parse_iso("2024-01-01T00:00:01Z").unwrap());
        match &rows[0].dims {
            RowDims::Fixed(d) => assert_eq!(
                d,
                &vec![DimValue::One("A".into()), DimValue::One("1.0".into())]
            ),
            _ => panic!("fixed dims expected"),
        }
        assert_eq!(rows[0].metrics[1], Num::Long(3));
    }

    #[test]
    fn schemaless_excludes() {
        let p = parser(None);
        let rows = p
            .parse_json(br#"[{"timestamp":5,"tags":["b","a"],"skip":"x","added":1,"e":""}]"#)
            .unwrap();
        match &rows[0].dims {
            RowDims::Named(d) => {
                assert_eq!(d.len(), 2);
                assert_eq!(
                    d[0].1,
                    DimValue::Multi(vec!["a".into(), "b".into()].into_boxed_slice())
                );
                assert_eq!(d[1].1, DimValue::Null);
            }
            _ => panic!("named dims expected"),
        }
    }

    #[test]
    fn errors_are_classified() {
        let p = parser(None);
        assert!(matches!(
            p.parse_json(b"{\"a\":1}"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            p.parse_json(b"[1]"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            p.parse_json(b"[{\"a\":1"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(p.parse_json(b""), Err(ParseError::Malformed(_))));
        assert!(matches!(
            p.parse_json(br#"[{"timestamp":"soon"}]"#),
            Err(ParseError::Unparseable(_))
        ));
        assert!(matches!(
            p.parse_json(br#"[{"page":"x"}]"#),
            Err(ParseError::Unparseable(_))
        ));
    }

    #[test]
    fn smile_body() {
        let p = parser(Some(vec!["page"]));
        let body = serde_smile::to_vec(
            &serde_json::json!([{"timestamp": 1000, "page": "A", "added": 2.5}]),
        )
        .unwrap();
        let rows = p.parse_smile(&body).unwrap();
        assert_eq!(rows[0].metrics[1], Num::Double(2.5));
    }

    /// The schema druid-local builds for a task's dataSchema.
    fn task_parser(data_schema: serde_json::Value) -> RowParser {
        let metrics = vec![MetricSpec {
            kind: AggKind::LongSum,
            name: "barr".into(),
            field: Some("bar".into()),
        }];
        let schema = crate::spec::parse_task(&serde_json::json!({
            "type": "index_realtime", "id": "t",
            "spec": {"dataSchema": data_schema,
                "ioConfig": {"type": "realtime", "firehose": {"type": "receiver",
                    "serviceName": "s", "bufferSize": 10}},
                "tuningConfig": {"type": "realtime"}}
        }))
        .expect("task")
        .schema
        .expect("schema");
        RowParser::new(&schema, &metrics)
    }

    fn fixed(dims: &RowDims) -> &[DimValue] {
        match dims {
            RowDims::Fixed(d) => d,
            RowDims::Named(_) => panic!("explicit dimensions expected"),
        }
    }

    fn peer_schema(parser_type: &str) -> serde_json::Value {
        serde_json::json!({
            "dataSource": "xxx",
            "parser": {"type": parser_type, "parseSpec": {"format": "json",
                "flattenSpec": {"useFieldDiscovery": false, "fields": [
                    {"type": "path", "name": "lat", "expr": "$.geo.lat"},
                    {"type": "path", "name": "lon", "expr": "$.geo.lon"},
                    {"type": "path", "name": "foo", "expr": "$.data.foo"},
                    {"type": "path", "name": "bar", "expr": "$.data.bar"},
                    {"type": "root", "name": "ts", "expr": "ts"}]},
                "timestampSpec": {"column": "ts", "format": "posix"},
                "dimensionsSpec": {"dimensions": ["foo"],
                    "spatialDimensions": [{"dimName": "coord.geo", "dims": ["lat", "lon"]}]}}},
            "metricsSpec": [{"type": "longSum", "name": "barr", "fieldName": "bar"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute"}
        })
    }

    #[test]
    fn a_string_parser_flattens_and_spatial_dimensions_join() {
        let p = task_parser(peer_schema("string"));
        let body =
            br#"[{"ts":1436000000,"geo":{"lat":37.7,"lon":-122.4},"data":{"foo":"hey","bar":2}},
                        {"ts":1436000060,"geo":{"lat":"x"},"data":{"foo":"you","bar":3}}]"#;
        let rows = p.parse_json(body).unwrap();
        assert_eq!(rows[0].ts, 1_436_000_000_000);
        assert_eq!(
            fixed(&rows[0].dims),
            [
                DimValue::One("hey".into()),
                DimValue::One("37.7,-122.4".into())
            ]
        );
        assert_eq!(rows[0].metrics[0], Num::Long(2));
        // Not numbers, or not all there: no spatial value, as in Druid.
        assert_eq!(
            fixed(&rows[1].dims),
            [DimValue::One("you".into()), DimValue::Null]
        );
        let smile = serde_smile::to_vec(&serde_json::json!([
            {"ts": 1436000000, "geo": {"lat": 1, "lon": 2}, "data": {"foo": "s"}}
        ]))
        .unwrap();
        assert_eq!(
            fixed(&p.parse_smile(&smile).unwrap()[0].dims),
            [DimValue::One("s".into()), DimValue::One("1,2".into())]
        );
        assert!(matches!(
            p.parse_json(b"[1]"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            p.parse_json(br#"[{"data":{"foo":"no time"}}]"#),
            Err(ParseError::Unparseable(_))
        ));
    }

    #[test]
    fn a_map_parser_ignores_the_flatten_spec_as_druid_does() {
        let p = task_parser(peer_schema("map"));
        let rows = p
            .parse_json(br#"[{"ts":1436000000,"lat":1.5,"lon":2,"foo":"flat","bar":4,"data":{"foo":"nested"}}]"#)
            .unwrap();
        assert_eq!(
            fixed(&rows[0].dims),
            [DimValue::One("flat".into()), DimValue::One("1.5,2".into())]
        );
    }
}
