//! The partition of an event: a hash of its time (truncated to queryGranularity) and its
//! dimension values, so that rows that roll up together land in the same partition.
//!
//! Same inputs as the original (§4.9 of the reference): the truncated timestamp, then each
//! dimension in name order with its values (numbers as text, lists sorted and de-duplicated,
//! empty and null values skipped). The hash itself is FNV-1a, stable across processes and
//! versions, so every instance picks the same partition for the same row.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::beam::Partitioner;
use crate::event::Event;
use crate::spec::IngestionSpec;
use crate::time::Granularity;

/// Which fields of an event are dimensions.
#[derive(Debug, Clone)]
enum Dimensions {
    /// Exactly these.
    Listed(Vec<String>),
    /// Every field except these (schemaless).
    AllBut(Vec<String>),
}

/// The partitioner for a dataSource's spec.
pub fn dimension_hash_partitioner(spec: &IngestionSpec) -> Partitioner {
    let schema = &spec.data_schema;
    let query_granularity = schema.granularity_spec.query_granularity;
    let dims_spec = schema.dimensions_spec();
    let dimensions = if dims_spec.is_schemaless() {
        let mut excluded: Vec<String> = dims_spec.dimension_exclusions.clone();
        excluded.push(schema.timestamp_spec().column);
        excluded.extend(schema.metrics_spec.iter().flat_map(|m| m.input_fields()));
        Dimensions::AllBut(excluded)
    } else {
        Dimensions::Listed(dims_spec.dimension_names().map(str::to_owned).collect())
    };
    Arc::new(move |event: &Event| partition_hash(event, &query_granularity, &dimensions) as usize)
}

fn partition_hash(event: &Event, query_granularity: &Granularity, dimensions: &Dimensions) -> u64 {
    let mut hash = Fnv::new();
    hash.write(
        &query_granularity
            .bucket_start(event.timestamp_millis())
            .to_be_bytes(),
    );
    let mut de = serde_json::Deserializer::from_slice(event.raw());
    let Ok(chosen) = serde::de::DeserializeSeed::deserialize(Chosen(dimensions), &mut de) else {
        return hash.finish();
    };
    for (name, value) in chosen {
        let mut values = texts(&value);
        if values.is_empty() {
            continue;
        }
        values.sort();
        values.dedup();
        hash.write(name.as_bytes());
        hash.write(&[0]);
        for v in values {
            hash.write(v.as_bytes());
            hash.write(&[0]);
        }
    }
    hash.finish()
}

/// Reads only the dimension fields of an event object, skipping the other values unparsed.
struct Chosen<'a>(&'a Dimensions);

impl<'de> serde::de::DeserializeSeed<'de> for Chosen<'_> {
    type Value = BTreeMap<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Chosen<'_> {
    type Value = BTreeMap<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut chosen = BTreeMap::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let wanted = match self.0 {
                Dimensions::Listed(names) => names.iter().any(|n| *n == key),
                Dimensions::AllBut(excluded) => !excluded.iter().any(|x| *x == key),
            };
            if wanted {
                chosen.insert(key.into_owned(), map.next_value::<Value>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(chosen)
    }
}

fn texts(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(texts).collect(),
        other => vec![other.to_string()],
    }
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(dimensions: Value) -> IngestionSpec {
        serde_json::from_value(json!({
            "dataSchema": {
                "dataSource": "x",
                "parser": {"type": "string", "parseSpec": {"format": "json",
                    "timestampSpec": {"column": "ts", "format": "millis"},
                    "dimensionsSpec": {"dimensions": dimensions}}},
                "metricsSpec": [{"type": "longSum", "name": "added", "fieldName": "added"}],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute"}
            },
            "tuningConfig": {"type": "realtime"}
        }))
        .unwrap()
    }

    fn ev(ts: i64, body: Value) -> Event {
        Event::new(ts, serde_json::to_vec(&body).unwrap())
    }

    #[test]
    fn rows_that_roll_up_together_share_a_partition() {
        let p = dimension_hash_partitioner(&spec(json!(["page", "tags"])));
        // Same minute, same dimensions (list order and duplicates don't matter), other fields differ.
        let a = ev(
            60_000,
            json!({"ts": 60_000, "page": "A", "tags": ["x", "y"], "added": 1, "other": 1}),
        );
        let b = ev(
            119_999,
            json!({"ts": 119_999, "page": "A", "tags": ["y", "x", "x"], "added": 5, "other": 2}),
        );
        assert_eq!(p(&a), p(&b));
        // A different dimension value or minute moves the row.
        let c = ev(
            60_000,
            json!({"ts": 60_000, "page": "B", "tags": ["x", "y"]}),
        );
        let d = ev(
            120_000,
            json!({"ts": 120_000, "page": "A", "tags": ["x", "y"]}),
        );
        assert_ne!(p(&a), p(&c));
        assert_ne!(p(&a), p(&d));
        // Null and empty values count as absent.
        let e = ev(
            60_000,
            json!({"ts": 60_000, "page": "A", "tags": ["x", "y"], "x": null}),
        );
        let f = ev(
            60_000,
            json!({"ts": 60_000, "page": "A", "tags": ["x", "y", ""]}),
        );
        assert_eq!(p(&a), p(&e));
        assert_eq!(p(&a), p(&f));
    }

    #[test]
    fn schemaless_uses_every_field_but_time_metrics_and_exclusions() {
        let p = dimension_hash_partitioner(&spec(json!([])));
        let a = ev(60_000, json!({"ts": 60_000, "page": "A", "added": 1}));
        let b = ev(60_001, json!({"ts": 60_001, "page": "A", "added": 9}));
        let c = ev(60_000, json!({"ts": 60_000, "page": "B", "added": 1}));
        assert_eq!(p(&a), p(&b));
        assert_ne!(p(&a), p(&c));
    }

    #[test]
    fn spreads_over_partitions() {
        let p = dimension_hash_partitioner(&spec(json!(["page"])));
        let mut seen = [0usize; 4];
        for i in 0..400 {
            seen[p(&ev(0, json!({"ts": 0, "page": format!("page-{i}")}))) % 4] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }
}
