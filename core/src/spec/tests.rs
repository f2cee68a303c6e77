use super::*;
use serde_json::json;

fn spec_json() -> Value {
    json!({
        "dataSchema": {
            "dataSource": "foo",
            "parser": {
                "type": "string",
                "parseSpec": {
                    "format": "json",
                    "timestampSpec": {"column": "timestamp", "format": "auto"},
                    "dimensionsSpec": {
                        "dimensions": ["dim1", {"type": "string", "name": "dim2", "multiValueHandling": "ARRAY"}],
                        "spatialDimensions": [{"dimName": "geo", "dims": ["lat", "lon"]}]
                    },
                    "flattenSpec": {"useFieldDiscovery": true, "fields": []}
                },
                "extension": {"x": 1}
            },
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "doubleSum", "name": "x", "fieldName": "x", "expression": null},
                {"type": "filtered", "filter": {"type": "selector", "dimension": "d", "value": "v"},
                 "aggregator": {"type": "longSum", "name": "y", "fieldName": "yin"}}
            ],
            "granularitySpec": {"type": "uniform", "segmentGranularity": "hour", "queryGranularity": "minute", "rollup": "false"},
            "transformSpec": {"transforms": [{"type": "expression", "name": "z", "expression": "x * 2"}]},
            "userExtension": [1, 2, 3]
        },
        "tuningConfig": {
            "type": "realtime",
            "windowPeriod": "PT10m",
            "maxRowsInMemory": "100000",
            "buildV9Directly": "true",
            "maxBytesInMemory": 12345,
            "rejectionPolicy": {"type": "serverTime"}
        },
        "somethingElse": {"kept": true}
    })
}

#[test]
fn reads_what_druid_reads() {
    let spec: IngestionSpec = serde_json::from_value(spec_json()).unwrap();
    assert_eq!(spec.data_source(), "foo");
    let ds = &spec.data_schema;
    assert_eq!(
        ds.granularity_spec.segment_granularity,
        crate::time::Granularity::HOUR
    );
    assert!(!ds.granularity_spec.rollup);
    assert_eq!(ds.timestamp_spec().column, "timestamp");
    assert_eq!(
        ds.dimensions_spec().dimension_names().collect::<Vec<_>>(),
        ["dim1", "dim2"]
    );
    assert_eq!(
        ds.dimensions_spec().spatial_dimensions[0].dims,
        ["lat", "lon"]
    );
    assert_eq!(ds.metrics_spec[2].input_fields(), ["yin"]);
    assert_eq!(ds.metrics_spec[2].output_name().as_deref(), Some("y"));
    let t = &spec.tuning_config;
    assert_eq!(t.window_period(), crate::time::Period::minutes(10));
    assert_eq!(t.max_rows_in_memory, Some(100_000));
    assert_eq!(t.build_v9_directly, Some(true));
    spec.validate().unwrap();
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let spec: IngestionSpec = serde_json::from_value(spec_json()).unwrap();
    let out = serde_json::to_value(&spec).unwrap();
    assert_eq!(out["somethingElse"], json!({"kept": true}));
    assert_eq!(out["dataSchema"]["userExtension"], json!([1, 2, 3]));
    assert_eq!(out["dataSchema"]["parser"]["extension"], json!({"x": 1}));
    assert_eq!(
        out["dataSchema"]["parser"]["parseSpec"]["flattenSpec"]["useFieldDiscovery"],
        json!(true)
    );
    assert_eq!(
        out["dataSchema"]["parser"]["parseSpec"]["dimensionsSpec"]["dimensions"][1]
            ["multiValueHandling"],
        json!("ARRAY")
    );
    assert_eq!(
        out["dataSchema"]["metricsSpec"][1]["expression"],
        Value::Null
    );
    assert_eq!(
        out["dataSchema"]["transformSpec"]["transforms"][0]["name"],
        json!("z")
    );
    assert_eq!(out["tuningConfig"]["maxBytesInMemory"], json!(12345));
    assert_eq!(out["tuningConfig"]["maxRowsInMemory"], json!(100000));
    assert_eq!(out["tuningConfig"]["windowPeriod"], json!("PT10M"));
    assert_eq!(
        out["dataSchema"]["granularitySpec"]["segmentGranularity"],
        json!("HOUR")
    );
    // And reading our output gives the same spec.
    let again: IngestionSpec = serde_json::from_value(out).unwrap();
    assert_eq!(again, spec);
}

#[test]
fn defaults_for_missing_parts() {
    let spec: IngestionSpec =
        serde_json::from_value(json!({"dataSchema": {"dataSource": "d"}})).unwrap();
    assert_eq!(spec.tuning_config.window_period(), DEFAULT_WINDOW_PERIOD);
    assert_eq!(
        spec.data_schema.granularity_spec.segment_granularity,
        crate::time::Granularity::DAY
    );
    assert!(spec
        .data_schema
        .granularity_spec
        .query_granularity
        .is_none());
    assert!(spec.data_schema.dimensions_spec().is_schemaless());
    let task = spec.tuning_config.with_task_defaults();
    assert_eq!(task["maxRowsInMemory"], json!(75000));
    assert_eq!(task["type"], json!("realtime"));
}

#[test]
fn validate_refuses_what_tranquility_cannot_do() {
    let mut j = spec_json();
    j["dataSchema"]["parser"]["parseSpec"]["dimensionsSpec"]["dimensions"] =
        json!(["a", {"type": "long", "name": "n"}]);
    let e = serde_json::from_value::<IngestionSpec>(j)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        e.path,
        "dataSchema.parser.parseSpec.dimensionsSpec.dimensions[1]"
    );
    assert!(e
        .problem
        .contains("Dimensions of type[LONG] are not supported"));

    let mut j = spec_json();
    j["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("QUARTER");
    let e = serde_json::from_value::<IngestionSpec>(j)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.path, "dataSchema.granularitySpec.segmentGranularity");

    let mut j = spec_json();
    j["ioConfig"] = json!({"type": "realtime", "firehose": {"type": "kafka"}});
    let e = serde_json::from_value::<IngestionSpec>(j)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.path, "ioConfig.firehose");

    let mut j = spec_json();
    j["dataSchema"]["parser"]["parseSpec"]["timestampSpec"]["format"] = json!("yyyy-MM-dd GG");
    let e = serde_json::from_value::<IngestionSpec>(j)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.path, "dataSchema.parser.parseSpec.timestampSpec.format");
}

#[test]
fn a_bad_flatten_spec_is_refused_with_its_path() {
    let mut v = spec_json();
    v["dataSchema"]["parser"]["parseSpec"]["flattenSpec"] = json!({"fields": [
        "ok", {"type": "path", "name": "p", "expr": "$.a[?(@.b size 1)]"}]});
    let spec: IngestionSpec = serde_json::from_value(v).unwrap();
    let e = spec.validate().unwrap_err();
    assert_eq!(e.path, "dataSchema.parser.parseSpec.flattenSpec.fields[1]");
    assert!(e.value.contains("size 1"), "{}", e.value);
    assert!(
        e.problem.contains("'size' is not supported"),
        "{}",
        e.problem
    );
}

#[test]
fn overrides_reach_every_data_source_of_lists_and_maps() {
    let list = json!({"dataSources": [{"spec": spec_json(), "properties": {"task.partitions": "4"}}],
                      "properties": {"task.replicants": "2"}});
    let map = json!({"dataSources": {"foo": {"spec": spec_json()}}});
    for root in [list, map] {
        let mut config = TranquilityConfig::from_value(root, "f.json").unwrap();
        config
            .set_property("task.partitions", "3", "--flag")
            .unwrap();
        config
            .set_property("druid.ingestion", "batch", "--flag")
            .unwrap();
        assert_eq!(config.global_properties().get("task.partitions"), Some("3"));
        let ds = &config.data_sources()[0];
        assert_eq!(ds.properties.get("task.partitions"), Some("3"));
        assert_eq!(ds.properties.get("druid.ingestion"), Some("batch"));
        // A dataSource's own value is overridden too, not left to win over the global one.
        if let Some(own) = ds.own_properties.get("task.partitions") {
            assert_eq!(own, "3");
        }
        config.unset_properties("task.");
        let ds = &config.data_sources()[0];
        assert_eq!(ds.properties.get("task.partitions"), None);
        assert_eq!(ds.properties.get("task.replicants"), None);
        assert_eq!(ds.properties.get("druid.ingestion"), Some("batch"));
    }
}

#[test]
fn overrides_are_checked_like_the_file() {
    let root = json!({"dataSources": [{"spec": spec_json()}]});
    let mut config = TranquilityConfig::from_value(root, "f.json").unwrap();
    let err = config
        .set_property("task.partitions", "many", "--partitions")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--partitions") && err.contains("task.partitions"),
        "{err}"
    );
    let err = config
        .set_property("task.partitons", "2", "--flag")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Tranquility property"), "{err}");
    assert_eq!(config.global_properties().get("task.partitions"), None);
}
