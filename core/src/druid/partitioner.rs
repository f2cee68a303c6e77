//! The partition of an event: a hash of its time (truncated to queryGranularity) and its
//! dimension values, so that rows that roll up together land in the same partition.
//!
//! Same inputs as the original (§4.9 of the reference): the truncated timestamp, then each
//! dimension in name order with its values (numbers as text, lists sorted and de-duplicated,
//! empty and null values skipped). The hash itself is FNV-1a, stable across processes and
//! versions, so every instance picks the same partition for the same row.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::beam::Partitioner;
use crate::event::scan::top_level_members;
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
    let bucket = query_granularity.bucket_start(event.timestamp_millis());
    hash.write(&bucket.to_be_bytes());
    let Some(mut chosen) = chosen_fields(event.raw(), dimensions) else {
        return hash.finish();
    };
    // Name order; of a repeated name the last value counts, as in a JSON map. The sort is
    // stable, so a later duplicate comes after an earlier one.
    chosen.sort_by(|a, b| a.0.cmp(&b.0));
    let mut values = Vec::new();
    for (i, (name, raw)) in chosen.iter().enumerate() {
        if chosen.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        values.clear();
        texts(raw, &mut values);
        if values.is_empty() {
            continue;
        }
        values.sort();
        values.dedup();
        hash.write(name);
        hash.write(&[0]);
        for v in &values {
            hash.write(v);
            hash.write(&[0]);
        }
    }
    hash.finish()
}

/// A dimension's name and its value's raw JSON, borrowed from the event where they can be.
type Fields<'a> = Vec<(Cow<'a, [u8]>, &'a [u8])>;

/// The dimension fields of an event object: found by the structural scan (the event's bytes
/// were validated when its timestamp was read), or, where the scan is unsure (escaped names),
/// by serde_json, which reads the names and skips the other values unparsed. `None` when the
/// bytes are not a JSON object.
fn chosen_fields<'a>(raw: &'a [u8], dimensions: &Dimensions) -> Option<Fields<'a>> {
    let wanted = |name: &[u8]| match dimensions {
        Dimensions::Listed(names) => names.iter().any(|n| n.as_bytes() == name),
        Dimensions::AllBut(excluded) => !excluded.iter().any(|x| x.as_bytes() == name),
    };
    let mut chosen = Vec::new();
    let scanned = top_level_members(raw, |name, value| {
        if wanted(name) {
            chosen.push((Cow::Borrowed(name), value));
        }
    });
    if scanned.is_some() {
        return Some(chosen);
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    let parsed = serde::de::DeserializeSeed::deserialize(Chosen(&wanted), &mut de).ok()?;
    let fields = parsed.into_iter().map(|(name, value)| {
        let name = match name {
            Cow::Borrowed(name) => Cow::Borrowed(name.as_bytes()),
            Cow::Owned(name) => Cow::Owned(name.into_bytes()),
        };
        (name, value.get().as_bytes())
    });
    Some(fields.collect())
}

/// Reads only the dimension fields of an event object, borrowing their names and raw values
/// from the event and skipping the other values unparsed.
struct Chosen<'w, W>(&'w W);

type Parsed<'de> = Vec<(Cow<'de, str>, &'de RawValue)>;

impl<'de, W: Fn(&[u8]) -> bool> serde::de::DeserializeSeed<'de> for Chosen<'_, W> {
    type Value = Parsed<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, W: Fn(&[u8]) -> bool> serde::de::Visitor<'de> for Chosen<'_, W> {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut chosen = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if (self.0)(key.as_bytes()) {
                chosen.push((key, map.next_value::<&'de RawValue>()?));
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(chosen)
    }
}

/// Appends the texts a dimension value hashes as: a string as itself (none when empty), a
/// number or boolean as JSON prints it, each item of a list, nothing for null. Plain strings,
/// integers and booleans are borrowed from the event; the rest goes through a parse.
fn texts<'a>(raw: &'a [u8], out: &mut Vec<Cow<'a, [u8]>>) {
    match raw.first() {
        Some(b'"') if !raw.contains(&b'\\') => {
            let text = &raw[1..raw.len() - 1];
            if !text.is_empty() {
                out.push(Cow::Borrowed(text));
            }
        }
        Some(b't' | b'f') => out.push(Cow::Borrowed(raw)),
        Some(b'n') => {}
        _ if is_small_integer(raw) => out.push(Cow::Borrowed(raw)),
        _ => {
            if let Ok(value) = serde_json::from_slice::<Value>(raw) {
                value_texts(&value, out);
            }
        }
    }
}

/// An integer serde_json reads and prints back unchanged: no `-0`, at most 18 digits.
fn is_small_integer(bytes: &[u8]) -> bool {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let negative_zero = digits.len() < bytes.len() && digits.first() == Some(&b'0');
    (1..=18).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) && !negative_zero
}

fn value_texts<'a>(value: &Value, out: &mut Vec<Cow<'a, [u8]>>) {
    match value {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push(Cow::Owned(s.clone().into_bytes())),
        Value::Array(items) => items.iter().for_each(|item| value_texts(item, out)),
        other => out.push(Cow::Owned(other.to_string().into_bytes())),
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

    /// The hash as first written (a map of parsed values): the borrowing one must agree.
    fn reference_hash(event: &Event, query_granularity: &Granularity, dims: &Dimensions) -> u64 {
        fn all_texts(value: &Value) -> Vec<String> {
            match value {
                Value::Null => Vec::new(),
                Value::String(s) if s.is_empty() => Vec::new(),
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items.iter().flat_map(all_texts).collect(),
                other => vec![other.to_string()],
            }
        }
        let mut hash = Fnv::new();
        let bucket = query_granularity.bucket_start(event.timestamp_millis());
        hash.write(&bucket.to_be_bytes());
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(event.raw()) else {
            return hash.finish();
        };
        let chosen: std::collections::BTreeMap<String, Value> = fields
            .into_iter()
            .filter(|(k, _)| match dims {
                Dimensions::Listed(names) => names.contains(k),
                Dimensions::AllBut(excluded) => !excluded.contains(k),
            })
            .collect();
        for (name, value) in chosen {
            let mut values = all_texts(&value);
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

    fn leaf() -> impl Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-c\\\\\"\\n\\u{e9}\\u{1F600} ]{0,4}".prop_map(Value::from),
        ]
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        #[test]
        fn borrowing_hash_agrees_with_the_parsed_one(
            fields in proptest::collection::vec(
                ("[a-d]", proptest::prop_oneof![
                    leaf(),
                    proptest::collection::vec(leaf(), 0..4).prop_map(Value::from),
                    leaf().prop_map(|v| serde_json::json!({"in": v})),
                ]),
                0..6,
            ),
            ts in 0i64..10_000_000,
            pretty in proptest::bool::ANY,
        ) {
            let object: serde_json::Map<String, Value> = fields.into_iter().collect();
            let body = Value::Object(object);
            let raw = if pretty {
                serde_json::to_vec_pretty(&body).unwrap()
            } else {
                serde_json::to_vec(&body).unwrap()
            };
            let event = Event::new(ts, raw);
            let minute = Granularity::from_name("minute").unwrap();
            for dims in [
                Dimensions::Listed(vec!["a".into(), "c".into(), "d".into()]),
                Dimensions::AllBut(vec!["b".into()]),
            ] {
                proptest::prop_assert_eq!(
                    partition_hash(&event, &minute, &dims),
                    reference_hash(&event, &minute, &dims)
                );
            }
        }
    }

    #[test]
    fn a_repeated_field_counts_with_its_last_value() {
        let dims = Dimensions::Listed(vec!["page".into()]);
        let hash = |raw: &str| {
            partition_hash(
                &Event::new(0, raw.as_bytes().to_vec()),
                &Granularity::HOUR,
                &dims,
            )
        };
        assert_eq!(hash(r#"{"page":"A","page":"B"}"#), hash(r#"{"page":"B"}"#));
        assert_ne!(hash(r#"{"page":"A","page":"B"}"#), hash(r#"{"page":"A"}"#));
        // Escapes and number spellings hash as their values.
        assert_eq!(hash(r#"{"page":"\u0041"}"#), hash(r#"{"page":"A"}"#));
        // An escaped name is read by the parse the scan falls back to.
        assert_eq!(hash(r#"{"p\u0061ge":"A"}"#), hash(r#"{"page":"A"}"#));
        assert_eq!(
            hash(r#"{"p\u0061ge":"A","page":"B"}"#),
            hash(r#"{"page":"B"}"#)
        );
        assert_eq!(hash(r#"{"page":1e0}"#), hash(r#"{"page":1.0}"#));
    }
}
