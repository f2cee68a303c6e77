//! How Druid's Jackson mapper writes specs back: defaults filled in, granularities and
//! durations in their canonical forms, and `dimensionExclusions` in the iteration order of the
//! Java `HashSet` Druid builds them in. Supervisor specs are compared byte for byte
//! (`skipRestartIfUnmodified`), so the order has to be the same every time, and the same as
//! Druid's for a client that compares against a real cluster.

use crate::spec::MetricSpec;
use crate::time::{self, Granularity, Period};
use serde_json::{json, Map, Value};

/// Java's `String.hashCode` (over UTF-16 code units).
pub fn java_hash(s: &str) -> u32 {
    s.encode_utf16()
        .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)))
}

/// A Java `HashSet<String>`, kept only to reproduce its iteration order: by bucket of the
/// spread hash in the current table, then by insertion within a bucket (Java appends to a
/// bucket's list and keeps relative order when it splits a bucket on resize).
#[derive(Debug, Clone)]
pub struct JavaHashSet {
    table: usize,
    items: Vec<String>,
}

impl JavaHashSet {
    /// `new HashSet<>()`: a table of 16.
    pub fn new() -> JavaHashSet {
        JavaHashSet {
            table: 16,
            items: Vec::new(),
        }
    }

    /// `new HashSet<>(collection)` on Java 17: capacity `max(n / 0.75 + 1, 16)`.
    pub fn from_list(items: &[String]) -> JavaHashSet {
        let want = ((items.len() as f32 / 0.75) as usize + 1).max(16);
        let mut set = JavaHashSet {
            table: want.next_power_of_two(),
            items: Vec::new(),
        };
        for i in items {
            set.add(i);
        }
        set
    }

    /// `add`: appends if absent, doubling the table past three quarters full.
    pub fn add(&mut self, s: &str) {
        if self.contains(s) {
            return;
        }
        self.items.push(s.to_owned());
        if self.items.len() * 4 > self.table * 3 {
            self.table *= 2;
        }
    }

    /// `contains`.
    pub fn contains(&self, s: &str) -> bool {
        self.items.iter().any(|i| i == s)
    }

    /// `remove` (the table never shrinks).
    pub fn remove(&mut self, s: &str) {
        self.items.retain(|i| i != s);
    }

    /// Elements in Java's iteration order.
    pub fn iter_order(&self) -> Vec<String> {
        let bucket = |s: &str| {
            let h = java_hash(s);
            ((h ^ (h >> 16)) as usize) & (self.table - 1)
        };
        let mut idx: Vec<usize> = (0..self.items.len()).collect();
        idx.sort_by_key(|i| (bucket(&self.items[*i]), *i));
        idx.into_iter().map(|i| self.items[i].clone()).collect()
    }
}

impl Default for JavaHashSet {
    fn default() -> Self {
        JavaHashSet::new()
    }
}

/// `dimensionExclusions` as `DataSchema.computeDimensionsSpec` leaves them: the given ones,
/// then every input and output field that is not a dimension, rebuilt into a fresh `HashSet`.
pub fn dimension_exclusions(
    given: &[String],
    ts_column: &str,
    dims: &[String],
    metrics: &[MetricSpec],
) -> Vec<String> {
    let mut input = JavaHashSet::new();
    input.add(ts_column);
    for d in dims {
        input.add(d);
    }
    for m in metrics {
        if let Some(f) = &m.field {
            input.add(f);
        }
    }
    // A TreeMap's keys: sorted (Java compares UTF-16 units; the same order for the BMP).
    let mut output: Vec<String> = std::iter::once("__time".to_owned())
        .chain(dims.iter().cloned())
        .chain(metrics.iter().map(|m| m.name.clone()))
        .collect();
    output.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    output.dedup();
    let mut additional = JavaHashSet::new();
    for s in input.iter_order() {
        additional.add(&s);
    }
    for s in &output {
        additional.add(s);
    }
    for d in dims {
        additional.remove(d);
    }
    let given_set = JavaHashSet::from_list(given);
    let mut union = given_set.iter_order();
    for s in additional.iter_order() {
        if !given_set.contains(&s) {
            union.push(s);
        }
    }
    JavaHashSet::from_list(&union).iter_order()
}

/// A granularity as Druid writes it: a standard period by name, `none`/`all` and custom
/// ones as objects.
pub fn granularity(g: &Granularity) -> Value {
    match g {
        Granularity::None => json!({"type": "none"}),
        Granularity::All => json!({"type": "all"}),
        Granularity::Duration { millis, origin } => {
            json!({"type": "duration", "duration": millis, "origin": time::iso(*origin)})
        }
        Granularity::Period { period, tz, origin } => {
            let text = period.to_string();
            let named = [
                ("PT1S", "SECOND"),
                ("PT1M", "MINUTE"),
                ("PT5M", "FIVE_MINUTE"),
                ("PT10M", "TEN_MINUTE"),
                ("PT15M", "FIFTEEN_MINUTE"),
                ("PT30M", "THIRTY_MINUTE"),
                ("PT1H", "HOUR"),
                ("PT6H", "SIX_HOUR"),
                ("PT8H", "EIGHT_HOUR"),
                ("P1D", "DAY"),
                ("P1W", "WEEK"),
                ("P1M", "MONTH"),
                ("P3M", "QUARTER"),
                ("P1Y", "YEAR"),
            ];
            match named.iter().find(|(p, _)| *p == text) {
                Some((_, name)) if *tz == chrono_tz::Tz::UTC && origin.is_none() => json!(name),
                _ => json!({"type": "period", "period": text, "timeZone": tz.name(),
                    "origin": origin.map(time::iso)}),
            }
        }
    }
}

/// A Joda `Duration` as Jackson writes it: `PT<seconds>S`, with millis as a fraction.
pub fn duration(millis: i64) -> String {
    let sign = if millis < 0 { "-" } else { "" };
    let (s, ms) = (millis.abs() / 1000, millis.abs() % 1000);
    if ms == 0 {
        format!("PT{sign}{s}S")
    } else {
        let frac = format!("{ms:03}");
        format!("PT{sign}{s}.{}S", frac.trim_end_matches('0'))
    }
}

/// A Joda `Period` as written back (`toString`), from its text.
pub fn period(text: &str) -> Result<String, String> {
    Period::parse(text).map(|p| p.to_string())
}

/// An aggregator as Druid writes it back.
pub fn aggregator(m: &MetricSpec) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(m.kind.name()));
    o.insert("name".into(), json!(m.name));
    if let Some(f) = &m.field {
        o.insert("fieldName".into(), json!(f));
    }
    Value::Object(o)
}

/// A dimension schema object as Druid writes it (strings get `SORTED_ARRAY` and a bitmap).
pub fn dimension(v: &Value) -> Value {
    match v {
        Value::String(name) => json!({"type": "string", "name": name,
            "multiValueHandling": "SORTED_ARRAY", "createBitmapIndex": true}),
        Value::Object(o) => {
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("string");
            let name = o.get("name").cloned().unwrap_or(Value::Null);
            let handling = o
                .get("multiValueHandling")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .unwrap_or_else(|| "SORTED_ARRAY".into());
            match ty {
                "string" => json!({"type": "string", "name": name, "multiValueHandling": handling,
                    "createBitmapIndex": o.get("createBitmapIndex").and_then(Value::as_bool).unwrap_or(true)}),
                "long" | "float" | "double" => json!({"type": ty, "name": name,
                    "multiValueHandling": handling, "createBitmapIndex": false}),
                _ => v.clone(),
            }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::AggKind;

    fn metric(kind: AggKind, name: &str, field: Option<&str>) -> MetricSpec {
        MetricSpec {
            kind,
            name: name.into(),
            field: field.map(str::to_owned),
        }
    }

    #[test]
    fn exclusions_in_druid_33s_order() {
        // What Druid 33.0.0 answered for its own Kafka IT supervisor template.
        let dims: Vec<String> = [
            "page",
            "language",
            "user",
            "unpatrolled",
            "newPage",
            "robot",
            "anonymous",
            "namespace",
            "continent",
            "country",
            "region",
            "city",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let metrics = vec![
            metric(AggKind::Count, "count", None),
            metric(AggKind::DoubleSum, "added", Some("added")),
            metric(AggKind::DoubleSum, "deleted", Some("deleted")),
            metric(AggKind::DoubleSum, "delta", Some("delta")),
        ];
        assert_eq!(
            dimension_exclusions(&[], "timestamp", &dims, &metrics),
            ["__time", "deleted", "added", "delta", "count", "timestamp"]
        );
        // No dimensions, no metrics (seen too).
        assert_eq!(
            dimension_exclusions(&[], "timestamp", &[], &[]),
            ["__time", "timestamp"]
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            java_hash("timestamp"),
            "timestamp"
                .chars()
                .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(c as u32))
        );
        assert_eq!(duration(3_600_000), "PT3600S");
        assert_eq!(duration(1_500), "PT1.5S");
        assert_eq!(period("pt10m").unwrap(), "PT10M");
        assert_eq!(
            granularity(&Granularity::named("minute").unwrap()),
            json!("MINUTE")
        );
        assert_eq!(granularity(&Granularity::None), json!({"type": "none"}));
    }
}
