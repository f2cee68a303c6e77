//! Parsing push-events bodies (JSON or Smile arrays of objects) straight into [`InputRow`]s,
//! one pass per event, the way the task's `map` parser does it in Druid's HTTP handler.

use super::rollup::{DimValue, InputRow, Num, RowDims};
use crate::spec::{MetricSpec, Schema, TsFormat};
use crate::time::{self, Millis};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

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
        RowParser {
            ts_column: schema.ts_column.clone(),
            ts_format: schema.ts_format.clone(),
            ts_missing: schema.ts_missing,
            n_dims: schema.dimensions.as_ref().map(Vec::len),
            n_metrics: metrics.len(),
            roles,
            exclusions: schema.exclusions.iter().cloned().collect(),
        }
    }

    /// Parses a JSON body.
    pub fn parse_json(&self, body: &[u8]) -> Result<Vec<InputRow>, ParseError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let rows = RowsSeed(self)
            .deserialize(&mut de)
            .map_err(|e| self.classify(e.to_string()))?;
        de.end().map_err(|e| ParseError::Malformed(e.to_string()))?;
        Ok(rows)
    }

    /// Parses a Smile body.
    pub fn parse_smile(&self, body: &[u8]) -> Result<Vec<InputRow>, ParseError> {
        let mut de = serde_smile::Deserializer::from_slice(body);
        let rows = RowsSeed(self)
            .deserialize(&mut de)
            .map_err(|e| self.classify(e.to_string()))?;
        de.end().map_err(|e| ParseError::Malformed(e.to_string()))?;
        Ok(rows)
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
        while let Some(key) = map.next_key_seed(KeySeed(p))? {
            match key {
                Key::Known(role) => {
                    let v: Raw = map.next_value_seed(RawSeed)?;
                    for &j in &role.metrics {
                        metrics[j] = to_num(&v);
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
}
