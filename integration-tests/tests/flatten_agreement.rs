//! The two flatteners written apart, Tranquility's (core) and druid-local's (playing Druid),
//! agree on random nested events and random flattenSpecs in what both read: root, JSONPath
//! (names, indexes, lists, slices, wildcards, scans), jq paths, tree, and field discovery.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::from),
        (-1000i64..1000).prop_map(|n| Value::from(n as f64 / 8.0)),
        "[a-z]{0,3}".prop_map(Value::from),
    ]
}

fn nested() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One JSONPath step both implementations read.
fn step() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]".prop_map(|k| format!(".{k}")),
        "[a-c]".prop_map(|k| format!("['{k}']")),
        (-2i64..3).prop_map(|i| format!("[{i}]")),
        Just("[*]".to_string()),
        Just(".*".to_string()),
        "[a-c]".prop_map(|k| format!("..{k}")),
        Just("[0,1]".to_string()),
        Just("[0:2]".to_string()),
        Just("[-1:]".to_string()),
    ]
}

/// A jq path step (`.k` or `[i]`).
fn jq_step() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]".prop_map(|k| format!(".{k}")),
        (-2i64..3).prop_map(|i| format!("[{i}]")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn core_and_druid_local_flatten_alike(
        doc in prop::collection::btree_map("[a-d]", nested(), 0..5),
        path in prop::collection::vec(step(), 1..4),
        jq_key in "[a-d]",
        jq in prop::collection::vec(jq_step(), 0..3),
        tree in prop::collection::vec("[a-c]", 1..3),
        discovery in any::<bool>(),
    ) {
        let spec = json!({"useFieldDiscovery": discovery, "fields": [
            "a",
            {"type": "root", "name": "rootb", "expr": "b"},
            {"type": "path", "name": "p", "expr": format!("${}", path.concat())},
            {"type": "jq", "name": "q", "expr": format!(".{jq_key}{}", jq.concat())},
            {"type": "tree", "name": "t", "nodes": tree},
        ]});
        let doc: Map<String, Value> = doc.into_iter().collect();
        let ours = tranquility::event::Flattener::new(&spec, false)
            .expect("core compiles")
            .flatten(doc.clone());
        let theirs = druid_local::flatten::Flattener::new(&spec, false)
            .expect("druid-local compiles")
            .flatten(&doc);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => prop_assert_eq!(Value::Object(a), Value::Object(b)),
            // A jq step on a value of the wrong kind fails the event on both sides.
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "core {:?} vs druid-local {:?}", a, b),
        }
    }
}
