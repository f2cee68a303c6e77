//! Loading Tranquility configuration files: the original distribution's files, both
//! dataSources shapes, property overrides, and error messages that point at the problem.

use std::path::{Path, PathBuf};

use test_support::{example_configs, peer_data_or_skip};
use tranquility::event::StringParser;
use tranquility::spec::properties::{
    check_kind, property, CoreProperties, PropertyDef, TaskLocatorKind, CORE_PROPERTIES,
    PROPERTY_TABLES,
};
use tranquility::spec::{ConfigError, TranquilityConfig};
use tranquility::time::{Granularity, Period};
use tranquility_fluvio::FLUVIO_PROPERTIES;
use tranquility_kafka::properties::KAFKA_PROPERTIES;
use tranquility_kafka::{KafkaDataSourceProperties, KafkaProperties};
use tranquility_server::properties::SERVER_PROPERTIES;
use tranquility_server::{ServerConfig, ServerProperties};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Loads a config file; the original's own test files need `@ZKPLACEHOLDER@` filled in.
fn load(path: &Path) -> TranquilityConfig {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replace("@ZKPLACEHOLDER@", "localhost:2181");
    TranquilityConfig::from_str(&text, &path.display().to_string())
        .unwrap_or_else(|e| panic!("{} should load: {e}", path.display()))
}

/// Checks what every config file must give: dataSources with a window and, where they have
/// a parser, a text parser; valid core, Kafka and server properties; server options that
/// listen on `http.port` (8200 when unset). Returns how many files were checked.
fn every_config_in(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "SOURCES.txt" {
            continue;
        }
        let cfg = load(&path);
        assert!(!cfg.data_sources().is_empty(), "{name} has dataSources");
        for ds in cfg.data_sources() {
            CoreProperties::from_properties(&ds.properties)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            KafkaDataSourceProperties::from_properties(&ds.properties).unwrap();
            assert!(!ds.spec.tuning_config.window_period().is_zero(), "{name}");
            if let Some(parser) = &ds.spec.data_schema.parser {
                StringParser::new(&parser.parse_spec)
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", ds.name));
            }
        }
        ServerProperties::from_properties(cfg.global_properties())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let server = ServerConfig::from_config(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        let port = cfg
            .global_properties()
            .get("http.port")
            .map_or(8200, |p| p.parse::<u16>().unwrap());
        assert_eq!(server.listen.port(), port, "{name}");
        KafkaProperties::from_properties(cfg.global_properties())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        count += 1;
    }
    count
}

#[test]
fn every_peer_config_loads() {
    let dir = peer_data_or_skip!("tranquility-configs");
    let count = every_config_in(&dir);
    assert!(count >= 15, "expected the whole peer set, loaded {count}");
}

#[test]
fn every_example_config_loads() {
    let count = every_config_in(&example_configs());
    assert!(count >= 5, "expected every example, loaded {count}");
}

#[test]
fn json_and_yaml_examples_in_both_shapes_load_alike() {
    for (list, map) in [("server.json", "server.yaml"), ("kafka.json", "kafka.yaml")] {
        let (list, map) = (
            load(&example_configs().join(list)),
            load(&example_configs().join(map)),
        );
        let names = |c: &TranquilityConfig| {
            c.data_sources()
                .iter()
                .map(|d| d.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&list), names(&map));
        for (a, b) in list.data_sources().iter().zip(map.data_sources()) {
            assert_eq!(a.spec, b.spec, "{}", a.name);
            let pairs = |d: &tranquility::spec::DataSourceConfig| {
                d.properties
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<std::collections::BTreeMap<_, _>>()
            };
            assert_eq!(pairs(a), pairs(b), "{}", a.name);
        }
    }
}

#[test]
fn map_and_list_shapes_give_the_same_data_source() {
    let map = TranquilityConfig::load(data("overrides-map.json")).unwrap();
    let list = TranquilityConfig::load(data("overrides-list.json")).unwrap();
    let yaml = TranquilityConfig::load(data("overrides.yaml")).unwrap();
    for cfg in [&map, &list, &yaml] {
        assert_eq!(cfg.data_sources().len(), 1);
        let ds = cfg.data_source("pageviews").unwrap();
        assert_eq!(
            ds.spec.data_schema.granularity_spec.segment_granularity,
            Granularity::HOUR
        );
        assert_eq!(ds.spec.tuning_config.window_period(), Period::seconds(30));
        assert_eq!(ds.spec.tuning_config.max_rows_in_memory, Some(50_000));
        // Global task.partitions=2, overridden to 3 on the dataSource.
        assert_eq!(cfg.global_properties().get("task.partitions"), Some("2"));
        assert_eq!(ds.properties.get("task.partitions"), Some("3"));
        assert_eq!(
            ds.properties.get("zookeeper.connect"),
            Some("zk.example.com")
        );
        let core = CoreProperties::from_properties(&ds.properties).unwrap();
        assert_eq!((core.task_partitions, core.task_replicants), (3, 1));
    }
    assert_eq!(map.data_sources()[0].spec, list.data_sources()[0].spec);
    assert_eq!(map.data_sources()[0].spec, yaml.data_sources()[0].spec);
}

#[test]
fn own_examples_read_as_documented() {
    let server = load(&example_configs().join("server.yaml"));
    let s = ServerProperties::from_properties(server.global_properties()).unwrap();
    assert_eq!((s.http_port, s.http_threads), (8200, 40));
    let metrics = server.data_source("metrics").unwrap();
    let c = CoreProperties::from_properties(&metrics.properties).unwrap();
    assert_eq!(c.task_locator, TaskLocatorKind::Overlord);
    assert_eq!(c.overlord_poll_period, Period::seconds(1));
    assert_eq!(
        metrics.spec.data_schema.granularity_spec.query_granularity,
        Granularity::from_name("MINUTE").unwrap()
    );
    let kafka = load(&example_configs().join("kafka.yaml"));
    let wiki =
        KafkaDataSourceProperties::from_properties(&kafka.data_sources()[0].properties).unwrap();
    assert_eq!(wiki.topic_pattern, "metrics");
    let k = KafkaProperties::from_properties(kafka.global_properties()).unwrap();
    assert_eq!(
        (k.group_id.as_str(), k.commit_period_millis),
        ("tranquility-kafka", 15_000)
    );
}

#[test]
fn examples_read_as_documented() {
    let dir = peer_data_or_skip!("tranquility-configs");
    let load_peer = |name: &str| load(&dir.join(name));
    let kafka = load_peer("kafka.yaml.example");
    let names: Vec<_> = kafka
        .data_sources()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["twitter", "wikipedia"]);
    let wiki =
        KafkaDataSourceProperties::from_properties(&kafka.data_sources()[1].properties).unwrap();
    assert_eq!(wiki.topic_pattern, "wikipedia.*");
    let k = KafkaProperties::from_properties(kafka.global_properties()).unwrap();
    assert_eq!(
        (k.group_id.as_str(), k.num_threads, k.commit_period_millis),
        ("tranquility-kafka", 2, 15_000)
    );
    // "maxRowsInMemory": "100000" in the JSON form.
    let kafka_json = load_peer("kafka.json.example");
    assert_eq!(
        kafka_json.data_sources()[0]
            .spec
            .tuning_config
            .max_rows_in_memory,
        Some(100_000)
    );
    let server = load_peer("server.yaml.example");
    let s = ServerProperties::from_properties(server.global_properties()).unwrap();
    assert_eq!((s.http_port, s.http_threads), (8200, 8));
    let example = load_peer("example.json");
    let c = CoreProperties::from_properties(&example.data_sources()[0].properties).unwrap();
    assert_eq!(c.task_locator, TaskLocatorKind::Overlord);
    assert_eq!(c.overlord_poll_period, Period::seconds(5));
    // The original's test file uses the unknown tranquility.batchSize: a warning, not an error.
    let direct = load_peer("direct-druid-test.yaml");
    assert!(
        direct
            .warnings()
            .iter()
            .any(|w| w.contains("tranquility.batchSize")),
        "{:?}",
        direct.warnings()
    );
    assert_eq!(
        direct.data_sources()[0]
            .spec
            .data_schema
            .granularity_spec
            .query_granularity,
        Granularity::from_name("MINUTE").unwrap()
    );
}

fn load_err(text: &str, name: &str) -> ConfigError {
    TranquilityConfig::from_str(text, name).unwrap_err()
}

const GOOD_SPEC: &str = r#"{"dataSchema":{"dataSource":"foo","parser":{"type":"string","parseSpec":{"format":"json",
  "timestampSpec":{"column":"timestamp","format":"auto"},"dimensionsSpec":{"dimensions":["a"]}}},
  "granularitySpec":{"segmentGranularity":"hour","queryGranularity":"none"}},
  "tuningConfig":{"type":"realtime","windowPeriod":"PT10M"}}"#;

#[test]
fn errors_name_file_path_value_and_expectation() {
    let bad_window = GOOD_SPEC.replace("\"PT10M\"", "\"PT10X\"");
    let e = load_err(
        &format!(r#"{{"dataSources":[{bad_window}]}}"#)
            .replace("[{", "[{\"spec\":{")
            .replace("}}]", "}}}]"),
        "server.json",
    );
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with("server.json: dataSources[0].spec.tuningConfig.windowPeriod:"),
        "{msg}"
    );
    assert!(
        msg.contains("\"PT10X\"") && msg.contains("ISO-8601 period"),
        "{msg}"
    );

    let e = load_err(
        &format!(r#"{{"dataSources":{{"bar":{{"spec":{GOOD_SPEC}}}}}}}"#),
        "kafka.json",
    );
    let msg = e.to_string();
    assert!(
        msg.contains("dataSources.bar.spec.dataSchema.dataSource")
            && msg.contains("dataSource[bar] did not match spec[foo]"),
        "{msg}"
    );

    let e = load_err(
        &format!(
            r#"{{"dataSources":[{{"spec":{GOOD_SPEC},"properties":{{"http.port":"8080"}}}}]}}"#
        ),
        "server.json",
    );
    let msg = e.to_string();
    assert!(
        msg.contains(r#"dataSources[0].properties["http.port"]"#)
            && msg.contains("cannot be per-dataSource (found in[foo])"),
        "{msg}"
    );

    let e = load_err(
        &format!(
            r#"{{"dataSources":[{{"spec":{GOOD_SPEC}}}],"properties":{{"task.partitions":"many"}}}}"#
        ),
        "server.json",
    );
    let msg = e.to_string();
    assert!(
        msg.contains(r#"server.json: properties["task.partitions"]"#)
            && msg.contains("\"many\"")
            && msg.contains("whole number"),
        "{msg}"
    );

    let e = load_err("dataSources: 3\n", "server.yaml");
    assert!(
        e.to_string().contains("dataSources must be a list or map"),
        "{e}"
    );

    let e = load_err("dataSources:\n  - spec:\n      dataSchema:\n        dataSource: x\n        granularitySpec:\n          segmentGranularity: fortnightly\n", "s.yaml");
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains("dataSources[0].spec.dataSchema.granularitySpec.segmentGranularity")
            && msg.contains("\"fortnightly\""),
        "{msg}"
    );

    let e = load_err("{\"dataSources\": [", "broken.json");
    assert!(
        matches!(e, ConfigError::Syntax { .. })
            && e.to_string().starts_with("broken.json: not valid JSON"),
        "{e}"
    );

    let e = load_err(
        &format!(
            r#"{{"dataSources":[{{"spec":{GOOD_SPEC}}}],"properties":{{"kafka.zookeeper.session.timeout.ms":"1"}}}}"#
        ),
        "kafka.json",
    );
    assert!(
        e.to_string().contains("Set zookeeper.timeout instead"),
        "{e}"
    );
    assert!(matches!(
        TranquilityConfig::load("/nonexistent/tranquility.yaml"),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn unknown_and_ignored_properties_warn() {
    let cfg = TranquilityConfig::from_str(
        &format!(
            r#"{{"dataSources":[{{"spec":{GOOD_SPEC},"properties":{{"my.own":"x","kafka.fetch.max.bytes":"1","druid.tls.enable":"true"}}}}],
                "properties":{{"kafka.bootstrap.servers":"b:9092","whatever":1,"druid.tranquilizer.maxBatchSize":10}}}}"#
        ),
        "c.json",
    )
    .unwrap();
    let w = cfg.warnings().join("\n");
    assert!(w.contains("'my.own'") && w.contains("'whatever'"), "{w}");
    assert!(
        w.contains("kafka.fetch.max.bytes") && w.contains("druid.tls.enable"),
        "{w}"
    );
    assert!(
        !w.contains("bootstrap.servers") && !w.contains("maxBatchSize"),
        "{w}"
    );
    let ds = &cfg.data_sources()[0];
    assert_eq!(ds.properties.get("my.own"), Some("x"));
    assert_eq!(ds.properties.get("druid.tls.enable"), None);
    assert_eq!(
        CoreProperties::from_properties(&ds.properties)
            .unwrap()
            .max_batch_size,
        10
    );
}

#[test]
fn yaml_scalars_become_property_text() {
    let cfg = TranquilityConfig::from_str(
        "properties:\n  task.partitions: 3\n  druidBeam.randomizeTaskId: yes\n  reportDropsAsExceptions: false\n  zookeeper.connect: ~\n",
        "p.yaml",
    )
    .unwrap();
    let p = cfg.global_properties();
    assert_eq!(p.get("task.partitions"), Some("3"));
    assert_eq!(p.get("reportDropsAsExceptions"), Some("false"));
    assert_eq!(p.get("zookeeper.connect"), None);
    assert!(
        CoreProperties::from_properties(p)
            .unwrap()
            .randomize_task_id
    );
    assert!(TranquilityConfig::from_str("", "empty.yaml")
        .unwrap()
        .data_sources()
        .is_empty());
}

/// The property tables of every crate, gathered into one registry: each is registered, no key
/// or alias is defined twice (the loader would read only the first), and every default fits
/// its kind. Naming each crate's table here links the crate in, so its table is gathered.
#[test]
fn every_property_table_is_registered_once_with_fitting_defaults() {
    let tables: [&[PropertyDef]; 4] = [
        CORE_PROPERTIES,
        SERVER_PROPERTIES,
        KAFKA_PROPERTIES,
        FLUVIO_PROPERTIES,
    ];
    for rows in tables {
        let registered = PROPERTY_TABLES.iter().any(|t| t.rows == rows);
        assert!(
            registered,
            "a table starting {:?} is not registered",
            rows[0].key
        );
    }
    let mut seen = std::collections::HashSet::new();
    for table in PROPERTY_TABLES {
        for d in table.rows {
            if let Some(v) = d.default {
                assert_eq!(check_kind(d.kind, v), Ok(()), "{}", d.key);
            }
            for k in std::iter::once(d.key).chain(d.aliases.iter().copied()) {
                assert!(seen.insert(k), "{k} is defined twice ({})", table.owner);
            }
            assert!(!d.doc.is_empty(), "{} has no doc", d.key);
            assert_eq!(property(d.key), Some(d));
        }
    }
}
