use super::*;
use proptest::prelude::*;
use serde_json::json;

fn flattener(spec: Value) -> Flattener {
    Flattener::new(&spec, false).unwrap_or_else(|e| panic!("{e}"))
}

fn flat(f: &Flattener, doc: Value) -> Map<String, Value> {
    let Value::Object(doc) = doc else {
        panic!("not an object")
    };
    f.flatten(doc).expect("flattens")
}

/// The nested document of Druid's `JSONPathParserTest`.
fn druid_nested() -> Value {
    serde_json::from_str(
        r#"{"simpleVal":"text", "ignore_me":[1, {"x":2}], "blah":[4,5,6], "newmet":5,
            "foo":{"bar1":"aaa", "bar2":"bbb"}, "baz":[1,2,3], "timestamp":"2999",
            "foo.bar1":"Hello world!", "testListConvert":[1234567890000000000000, "foo"],
            "testListConvert2":[1234567890000000000000, "foo", [1234567890000000000000]],
            "testMapConvert":{"big": 1234567890000000000000, "big2":{"big2":1234567890000000000000}},
            "testEmptyList": [], "hey":[{"barx":"asdf"}], "met":{"a":[7,8,9]}}"#,
    )
    .expect("json")
}

#[test]
fn druid_nesting_with_field_discovery() {
    let f = flattener(json!({"useFieldDiscovery": true, "fields": [
        {"type": "root", "name": "baz", "expr": "baz"},
        {"type": "path", "name": "nested-foo.bar1", "expr": "$.foo.bar1"},
        {"type": "path", "name": "nested-foo.bar2", "expr": "$.foo.bar2"},
        {"type": "path", "name": "heybarx0", "expr": "$.hey[0].barx"},
        {"type": "path", "name": "met-array", "expr": "$.met.a"},
        {"type": "root", "name": "testListConvert2", "expr": "testListConvert2"},
        {"type": "root", "name": "testMapConvert", "expr": "testMapConvert"},
        {"type": "root", "name": "INVALID_ROOT", "expr": "INVALID_ROOT_EXPR"},
        {"type": "path", "name": "INVALID_PATH", "expr": "INVALID_PATH_EXPR"},
        {"type": "jq", "name": "jq-nested-foo.bar1", "expr": ".foo.bar1"},
        {"type": "jq", "name": "jq-heybarx0", "expr": ".hey[0].barx"},
        {"type": "jq", "name": "jq-met-array", "expr": ".met.a"}
    ]}));
    let m = flat(&f, druid_nested());
    assert_eq!(m["baz"], json!([1, 2, 3]));
    assert_eq!(m["blah"], json!([4, 5, 6]));
    assert_eq!(m["simpleVal"], "text");
    assert_eq!(m["newmet"], 5);
    assert_eq!(m["timestamp"], "2999");
    assert_eq!(m["foo.bar1"], "Hello world!");
    assert_eq!(m["testListConvert"], json!([1.23456789e21, "foo"]));
    assert_eq!(
        m["testListConvert2"],
        json!([1.23456789e21, "foo", [1.23456789e21]])
    );
    assert_eq!(
        m["testMapConvert"],
        json!({"big": 1.23456789e21, "big2": {"big2": 1.23456789e21}})
    );
    assert_eq!(m["testEmptyList"], json!([]));
    assert_eq!(m["nested-foo.bar1"], "aaa");
    assert_eq!(m["nested-foo.bar2"], "bbb");
    assert_eq!(m["heybarx0"], "asdf");
    assert_eq!(m["met-array"], json!([7, 8, 9]));
    assert_eq!(m["jq-nested-foo.bar1"], "aaa");
    assert_eq!(m["jq-heybarx0"], "asdf");
    assert_eq!(m["jq-met-array"], json!([7, 8, 9]));
    for absent in ["hey", "met", "ignore_me", "foo"] {
        assert!(!m.contains_key(absent), "{absent} discovered");
    }
    assert_eq!(m["INVALID_ROOT"], Value::Null);
    assert_eq!(m["INVALID_PATH"], Value::Null);
    // Listed fields first, in order, then discovered ones in document order.
    let keys: Vec<&str> = m.keys().map(String::as_str).take(3).collect();
    assert_eq!(keys, ["baz", "nested-foo.bar1", "nested-foo.bar2"]);
}

#[test]
fn druid_nesting_without_discovery() {
    let f = flattener(json!({"useFieldDiscovery": false, "fields": [
        {"type": "root", "name": "simpleVal", "expr": "simpleVal"},
        {"type": "root", "name": "timestamp", "expr": "timestamp"},
        {"type": "path", "name": "nested-foo.bar2", "expr": "$.foo.bar2"},
        {"type": "path", "name": "heybarx0", "expr": "$.hey[0].barx"},
        {"type": "path", "name": "met-array", "expr": "$.met.a"},
        {"type": "jq", "name": "jq-nested-foo.bar2", "expr": ".foo.bar2"}
    ]}));
    let m = flat(&f, druid_nested());
    assert_eq!(
        Value::Object(m),
        json!({"simpleVal": "text", "timestamp": "2999", "nested-foo.bar2": "bbb",
               "heybarx0": "asdf", "met-array": [7, 8, 9], "jq-nested-foo.bar2": "bbb"})
    );
}

#[test]
fn druid_simple_and_numbers() {
    let f = flattener(json!({"useFieldDiscovery": true, "fields": []}));
    let m = flat(
        &f,
        json!({"one": "foo", "two": ["bar", "baz"], "three": "qux", "four": null}),
    );
    assert_eq!(
        Value::Object(m),
        json!({"one": "foo", "two": ["bar", "baz"], "three": "qux"})
    );
    let numbers: Value = serde_json::from_str(
        r#"{"five": 5.0, "six": 6, "many": 1234567878900, "toomany": 1234567890000000000000,
            "ulong": 18446744073709551615}"#,
    )
    .expect("json");
    let m = flat(&f, numbers);
    assert_eq!(m["five"], json!(5.0));
    assert_eq!(m["six"], json!(6));
    assert_eq!(m["many"], json!(1234567878900_i64));
    assert_eq!(m["toomany"], json!(1.23456789e21));
    assert_eq!(m["ulong"], json!(18446744073709551615.0));
    let written: Value = serde_json::from_slice(
        &f.flatten_json(br#"{"ulong":18446744073709551615,"l":[null,18446744073709551615,1]}"#)
            .expect("flattens"),
    )
    .expect("json");
    assert_eq!(
        written,
        json!({"ulong": 18446744073709551615.0, "l": [18446744073709551615.0, 1]})
    );
    // keepNullColumns keeps discovered nulls.
    let keep = Flattener::new(&json!({}), true).expect("spec");
    assert!(flat(&keep, json!({"four": null})).contains_key("four"));
}

/// The example event and spec of Druid's flattenSpec documentation.
#[test]
fn druid_documented_example() {
    let event = json!({
        "timestamp": "2015-09-12T12:10:53.155Z", "dim1": "qwerty", "dim2": "asdf",
        "dim3": "zxcv", "ignore_me": "ignore this", "metrica": 9999,
        "foo": {"bar": "abc"}, "foo.bar": "def", "nestmet": {"val": 42},
        "hello": [1.0, 2.0, 3.0, 4.0, 5.0], "mixarray": [1.0, 2.0, 3.0, 4.0, {"last": 5}],
        "world": [{"hey": "there"}, {"tree": "apple"}], "thing": {"food": ["sandwich", "pizza"]}
    });
    let mut fields = json!([
        {"type": "root", "name": "dim1"},
        "dim2",
        {"type": "path", "name": "foo.bar", "expr": "$.foo.bar"},
        {"type": "root", "name": "foo.bar"},
        {"type": "path", "name": "path-metric", "expr": "$.nestmet.val"},
        {"type": "path", "name": "hello-0", "expr": "$.hello[0]"},
        {"type": "path", "name": "hello-4", "expr": "$.hello[4]"},
        {"type": "path", "name": "world-hey", "expr": "$.world[0].hey"},
        {"type": "path", "name": "worldtree", "expr": "$.world[1].tree"},
        {"type": "path", "name": "first-food", "expr": "$.thing.food[0]"},
        {"type": "path", "name": "second-food", "expr": "$.thing.food[1]"},
        {"type": "jq", "name": "first-food-by-jq", "expr": ".thing.food[1]"},
        {"type": "jq", "name": "hello-total", "expr": ".hello | sum"}
    ]);
    // As printed, the example names 'foo.bar' twice, which Druid refuses too.
    let err = Flattener::new(&json!({"fields": fields.clone()}), false).unwrap_err();
    assert_eq!(err.at, "flattenSpec.fields[3]");
    assert!(
        err.message
            .contains("Cannot have duplicate field definition: foo.bar"),
        "{err}"
    );
    let list = fields.as_array_mut().expect("list");
    list.remove(3);
    // 'jq' beyond a path is refused, naming the field and its type.
    let err = Flattener::new(&json!({"fields": list.clone()}), false).unwrap_err();
    assert_eq!(err.at, "flattenSpec.fields[11]");
    assert!(
        err.message.contains("'hello-total' of type jq")
            && err.message.contains("'.hello | sum' is not supported"),
        "{err}"
    );
    list.pop();
    list.push(json!({"type": "path", "name": "hello-total", "expr": "$.hello.sum()"}));
    let f = flattener(json!({"useFieldDiscovery": true, "fields": list}));
    let m = flat(&f, event);
    for (name, value) in [
        ("dim1", json!("qwerty")),
        ("dim2", json!("asdf")),
        ("dim3", json!("zxcv")),
        ("ignore_me", json!("ignore this")),
        ("metrica", json!(9999)),
        ("foo.bar", json!("abc")),
        ("path-metric", json!(42)),
        ("hello-0", json!(1.0)),
        ("hello-4", json!(5.0)),
        ("world-hey", json!("there")),
        ("worldtree", json!("apple")),
        ("first-food", json!("sandwich")),
        ("second-food", json!("pizza")),
        ("first-food-by-jq", json!("pizza")),
        ("hello-total", json!(15.0)),
        ("hello", json!([1.0, 2.0, 3.0, 4.0, 5.0])),
        ("timestamp", json!("2015-09-12T12:10:53.155Z")),
    ] {
        assert_eq!(m.get(name), Some(&value), "{name}");
    }
    for absent in ["foo", "nestmet", "mixarray", "world", "thing"] {
        assert!(!m.contains_key(absent), "{absent} discovered");
    }
}

#[test]
fn tree_fields_walk_keys() {
    let f = flattener(json!({"useFieldDiscovery": false, "fields": [
        {"type": "tree", "name": "city", "nodes": ["where", "city"]},
        {"type": "tree", "name": "none", "nodes": ["where", "city", "deeper"]}
    ]}));
    let m = flat(&f, json!({"where": {"city": "Oslo"}, "other": 1}));
    assert_eq!(Value::Object(m), json!({"city": "Oslo", "none": null}));
}

#[test]
fn the_peer_config_spec_flattens_nested_events() {
    let f = flattener(json!({"useFieldDiscovery": false, "fields": [
        {"type": "path", "name": "lat", "expr": "$.geo.lat"},
        {"type": "path", "name": "lon", "expr": "$.geo.lon"},
        {"type": "path", "name": "foo", "expr": "$.data.foo"},
        {"type": "path", "name": "bar", "expr": "$.data.bar"},
        {"type": "root", "name": "ts", "expr": "ts"}
    ]}));
    let out = f
        .flatten_json(
            br#"{"ts":1436000000,"geo":{"lat":37.7,"lon":-122.4},"data":{"foo":"hey","bar":2},"x":1}"#,
        )
        .expect("flattens");
    assert_eq!(
        std::str::from_utf8(&out).expect("utf8"),
        r#"{"lat":37.7,"lon":-122.4,"foo":"hey","bar":2,"ts":1436000000}"#
    );
    assert_eq!(
        f.flatten_json(b"[1]").unwrap_err(),
        FlattenError::NotObject("an array")
    );
    assert!(matches!(f.flatten_json(b"{"), Err(FlattenError::Json(_))));
}

#[test]
fn jq_type_errors_make_the_event_unparseable() {
    let f = flattener(json!({"fields": [{"type": "jq", "name": "x", "expr": ".a.b"}]}));
    let err = f.flatten_json(br#"{"a":"text"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "flattenSpec field 'x' (jq): Cannot index string with \"b\""
    );
}

#[test]
fn bad_specs_name_the_field_and_its_type() {
    let err = |spec: Value| Flattener::new(&spec, false).unwrap_err().to_string();
    assert_eq!(
        err(json!({"fields": [{"type": "path", "name": "a"}]})),
        "flattenSpec.fields[0]: Missing 'expr' for field[a] of type path"
    );
    assert_eq!(
        err(json!({"fields": ["ok", {"type": "path", "expr": "$.a"}]})),
        "flattenSpec.fields[1]: Missing 'name' in field spec"
    );
    assert!(
        err(json!({"fields": [{"type": "xpath", "name": "a", "expr": "/a"}]}))
            .contains("field 'a': type 'xpath' is not one of root, path, jq, tree")
    );
    assert!(
        err(json!({"fields": [{"type": "path", "name": "p", "expr": "$.a["}]}))
            .starts_with("flattenSpec.fields[0]: field 'p' of type path:")
    );
    assert!(
        err(json!({"fields": [{"type": "tree", "name": "t", "nodes": []}]}))
            .contains("field 't' of type tree: 'nodes' must be a non-empty list")
    );
    assert!(err(json!({"fields": [{"name": "a", "expr": "$.a"}]})).contains("has no 'type'"));
    assert!(err(json!({"useFieldDiscovery": "maybe"})).contains("useFieldDiscovery"));
    assert!(err(json!({"fields": {"a": 1}})).contains("flattenSpec.fields: expected a list"));
}

#[test]
fn only_a_string_parser_reading_json_flattens() {
    let parser = |kind: &str, format: &str| -> ParserSpec {
        serde_json::from_value(json!({"type": kind, "parseSpec": {"format": format,
            "timestampSpec": {"column": "ts"}, "dimensionsSpec": {"dimensions": []},
            "flattenSpec": {"fields": ["a"]}}}))
        .expect("parser")
    };
    assert!(Flattener::for_parser(&parser("string", "json"))
        .expect("ok")
        .is_some());
    assert!(Flattener::for_parser(&parser("string", "csv"))
        .expect("ok")
        .is_none());
    assert!(Flattener::for_parser(&parser("map", "json"))
        .expect("ok")
        .is_none());
    assert!(Flattener::ignored(&parser("map", "json")));
    assert!(Flattener::ignored(&parser("string", "tsv")));
    assert!(!Flattener::ignored(&parser("string", "JSON")));
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,6}".prop_map(Value::from),
    ]
}

fn nested() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// A path, a tree and a jq field reach the same nested value.
    #[test]
    fn path_tree_and_jq_agree(
        doc in prop::collection::btree_map("[a-c]", nested(), 0..4),
        keys in prop::collection::vec("[a-c]", 1..4),
    ) {
        let f = flattener(json!({"useFieldDiscovery": false, "fields": [
            {"type": "path", "name": "p", "expr": format!("$.{}", keys.join("."))},
            {"type": "tree", "name": "t", "nodes": keys},
            {"type": "jq", "name": "q", "expr": format!(".{}", keys.join("."))},
        ]}));
        let doc: Map<String, Value> = doc.into_iter().collect();
        let expected = keys.iter().try_fold(&Value::Object(doc.clone()), |n, k| n.as_object()?.get(k)).cloned();
        match f.flatten(doc) {
            Ok(m) => {
                let mut expected = expected.unwrap_or(Value::Null);
                normalize(&mut expected);
                prop_assert_eq!(&m["p"], &expected);
                prop_assert_eq!(&m["t"], &expected);
                prop_assert_eq!(&m["q"], &expected);
            }
            // jq alone refuses to index a scalar on the way.
            Err(FlattenError::Jq { .. }) => prop_assert!(expected.is_none()),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    /// Discovery keeps exactly the simple top-level fields, unchanged but for nulls in lists.
    #[test]
    fn discovery_keeps_simple_fields(doc in prop::collection::btree_map("[a-e]{1,2}", nested(), 0..6)) {
        let f = flattener(json!({}));
        let doc: Map<String, Value> = doc.into_iter().collect();
        let m = f.flatten(doc.clone()).expect("flattens");
        for (k, v) in &doc {
            let simple = match v {
                Value::Object(_) | Value::Null => false,
                Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()),
                _ => true,
            };
            prop_assert_eq!(m.contains_key(k), simple);
            if let (true, Value::Array(items)) = (simple, v) {
                let kept: Vec<&Value> = items.iter().filter(|i| !i.is_null()).collect();
                prop_assert_eq!(m[k].as_array().map(|a| a.iter().collect::<Vec<_>>()), Some(kept));
            }
        }
    }

    /// Writing the flat event directly gives what the map form holds, key order included.
    #[test]
    fn written_and_mapped_forms_agree(
        doc in prop::collection::btree_map("[a-d]", nested(), 0..5),
        discovery in any::<bool>(),
    ) {
        let f = flattener(json!({"useFieldDiscovery": discovery, "fields": [
            "a", {"type": "path", "name": "p", "expr": "$..b"},
            {"type": "path", "name": "c", "expr": "$.c[0]"},
            {"type": "tree", "name": "t", "nodes": ["d", "a"]}]}));
        let doc: Map<String, Value> = doc.into_iter().collect();
        let bytes = serde_json::to_vec(&doc).expect("json");
        let written: Map<String, Value> =
            serde_json::from_slice(&f.flatten_json(&bytes).expect("flattens")).expect("json");
        let mapped = f.flatten(doc).expect("flattens");
        prop_assert_eq!(written.keys().collect::<Vec<_>>(), mapped.keys().collect::<Vec<_>>());
        prop_assert_eq!(written, mapped);
    }

    /// Any bytes give flat JSON or an error, never a panic.
    #[test]
    fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let f = flattener(json!({"fields": [{"type": "path", "name": "x", "expr": "$..a[?(@.b > 1)]"}]}));
        if let Ok(out) = f.flatten_json(&bytes) {
            prop_assert!(serde_json::from_slice::<Map<String, Value>>(&out).is_ok());
        }
    }
}
