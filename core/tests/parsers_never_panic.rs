//! Property tests: the parsers that read user input answer with errors, never panics.

use proptest::prelude::*;
use serde_json::{json, Value};
use tranquility::event::{StringParser, TimestampExtractor};
use tranquility::spec::{ParseSpec, TimestampSpec, TranquilityConfig};
use tranquility::time::{Granularity, Interval, Period};

const VALID: &str = r#"{"dataSources":{"wiki":{"spec":{"dataSchema":{"dataSource":"wiki",
  "parser":{"type":"string","parseSpec":{"format":"json",
    "timestampSpec":{"column":"timestamp","format":"auto"},"dimensionsSpec":{"dimensions":["page"]}}},
  "metricsSpec":[{"type":"count","name":"count"}],
  "granularitySpec":{"type":"uniform","segmentGranularity":"hour","queryGranularity":"none"}},
  "tuningConfig":{"type":"realtime","windowPeriod":"PT10M"}},
  "properties":{"task.partitions":"2"}}},"properties":{"zookeeper.connect":"localhost"}}"#;

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON path of a value (object keys and array indexes).
fn paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            let mut p = prefix.clone();
            p.push(k.clone());
            paths(c, p, out)
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
            let mut p = prefix.clone();
            p.push(i.to_string());
            paths(c, p, out)
        }),
        _ => {}
    }
}

fn replace_at(v: &mut Value, path: &[String], with: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = with;
        return;
    };
    let child = match v {
        Value::Object(m) => m.get_mut(first),
        Value::Array(a) => first.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    };
    if let Some(c) = child {
        replace_at(c, rest, with);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_text_never_panics(text in ".{0,400}") {
        let _ = TranquilityConfig::from_str(&text, "fuzz.json");
        let _ = TranquilityConfig::from_str(&text, "fuzz.yaml");
    }

    #[test]
    fn config_with_any_node_replaced_never_panics(pick in any::<prop::sample::Index>(), with in json_value()) {
        let mut value: Value = serde_json::from_str(VALID).unwrap();
        let mut all = Vec::new();
        paths(&value, Vec::new(), &mut all);
        let path = pick.get(&all).clone();
        replace_at(&mut value, &path, with);
        if let Ok(config) = TranquilityConfig::from_str(&value.to_string(), "fuzz.json") {
            for ds in config.data_sources() {
                let _ = ds.spec.validate();
                let _ = tranquility::spec::CoreProperties::from_properties(&ds.properties);
            }
        }
    }

    #[test]
    fn periods_granularities_and_intervals_never_panic(text in ".{0,40}", json in json_value()) {
        let _ = Period::parse(&text);
        let _ = text.parse::<Granularity>();
        let _ = text.parse::<Interval>();
        let _ = serde_json::from_value::<Granularity>(json);
    }

    #[test]
    fn timestamp_extraction_never_panics(format in prop_oneof![
        Just("auto"), Just("iso"), Just("millis"), Just("posix"), Just("micro"), Just("nano"),
        Just("ruby"), Just("yyyy-MM-dd HH:mm:ss"), Just("dd/MMM/yyyy:HH:mm:ss Z")
    ], value in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let extractor = TimestampExtractor::new(&TimestampSpec::new("t", format)).unwrap();
        let _ = extractor.extract(&bytes);
        let _ = extractor.extract(json!({"t": value}).to_string().as_bytes());
    }

    #[test]
    fn string_parsers_never_panic(line in ".{0,120}", format in prop_oneof![Just("json"), Just("csv"), Just("tsv")]) {
        let spec: ParseSpec = serde_json::from_value(json!({
            "format": format,
            "columns": ["timestamp", "page", "tags"],
            "listDelimiter": "|",
            "timestampSpec": {"column": "timestamp", "format": "auto"},
            "dimensionsSpec": {"dimensions": ["page", "tags"]}
        })).unwrap();
        let parser = StringParser::new(&spec).unwrap();
        let _ = parser.parse_line(&line);
        let _ = parser.parse_text(&line);
    }
}
