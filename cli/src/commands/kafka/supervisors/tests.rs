use serde_json::json;

use super::*;

fn data_source(name: &str, format: &str, props: Value) -> Value {
    json!({
        "spec": {
            "dataSchema": {
                "dataSource": name,
                "parser": {"type": "string", "parseSpec": {
                    "format": format, "pattern": "(.*)", "columns": ["timestamp", "page"],
                    "timestampSpec": {"column": "timestamp", "format": "auto"},
                    "dimensionsSpec": {"dimensions": ["page"]}}},
                "metricsSpec": [{"type": "count", "name": "count"}],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
            },
            "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
        },
        "properties": props
    })
}

fn kafka_json() -> Value {
    json!({
        "dataSources": [
            data_source("twitter", "json", json!({"topicPattern": "twitter"})),
            data_source("wikipedia", "json",
                        json!({"topicPattern": "wikipedia.*", "task.partitions": "2",
                               "task.replicants": "2"})),
            data_source("per_topic", "json",
                        json!({"topicPattern": "logs-.*", "useTopicAsDataSource": "true"})),
            data_source("regexed", "regex", json!({"topicPattern": "regexed"})),
            data_source("clash_a", "csv", json!({"topicPattern": "metrics-[a-z]+"})),
            data_source("clash_b", "json", json!({"topicPattern": "metrics-cpu"})),
            data_source("unused", "json", json!({})),
        ],
        "properties": {"kafka.bootstrap.servers": "k1:9092", "kafka.group.id": "g"}
    })
}

fn args(start_from: StartFrom) -> SupervisorArgs {
    SupervisorArgs {
        watch: false,
        start_from,
    }
}

#[test]
fn mappings_split_into_supervisors_and_what_tranquility_keeps() {
    let config = TranquilityConfig::from_value(kafka_json(), "kafka.json").unwrap();
    let (taken, fallback) = split(&config, "k1:9092", &args(StartFrom::Earliest)).unwrap();
    let names: Vec<&str> = taken.iter().map(|t| t.data_source.as_str()).collect();
    assert_eq!(names, ["twitter", "wikipedia"]);

    let twitter = &taken[0].spec;
    assert_eq!(twitter["spec"]["ioConfig"]["topic"], "twitter");
    assert_eq!(twitter["spec"]["ioConfig"]["useEarliestOffset"], true);
    assert_eq!(
        twitter["spec"]["ioConfig"]["consumerProperties"],
        json!({"bootstrap.servers": "k1:9092"})
    );
    let wikipedia = &taken[1].spec;
    let io = &wikipedia["spec"]["ioConfig"];
    assert_eq!(io["topicPattern"], "wikipedia.*");
    assert!(io.get("topic").is_none(), "{io}");
    assert_eq!(
        (io["taskCount"].as_u64(), io["replicas"].as_u64()),
        (Some(2), Some(2))
    );
    // The hash covers the pattern that replaced the topic.
    assert_eq!(
        wikipedia["context"][SPEC_HASH_KEY],
        json!(spec_hash(wikipedia))
    );

    let why: std::collections::HashMap<&str, &str> = fallback
        .iter()
        .map(|(d, r)| (d.as_str(), r.as_str()))
        .collect();
    assert_eq!(why.len(), 4, "{why:?}");
    assert!(why["per_topic"].contains("useTopicAsDataSource"));
    assert!(why["regexed"].contains("'regex'"), "{}", why["regexed"]);
    assert!(why["clash_a"].contains("clash_b"), "{}", why["clash_a"]);
    assert!(why["clash_b"].contains("clash_a"), "{}", why["clash_b"]);
}

#[test]
fn latest_skips_what_the_topic_holds() {
    let config = TranquilityConfig::from_value(kafka_json(), "kafka.json").unwrap();
    let (taken, _) = split(&config, "k1:9092", &args(StartFrom::Latest)).unwrap();
    assert_eq!(
        taken[0].spec["spec"]["ioConfig"]["useEarliestOffset"],
        false
    );
}

#[test]
fn the_rest_keeps_only_what_tranquility_consumes_and_produces_to_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kafka.json");
    std::fs::write(&path, kafka_json().to_string()).unwrap();
    let names: BTreeSet<String> = ["regexed".to_string(), "per_topic".to_string()].into();
    let rest = rest(&path, &names, "k1:9092").unwrap();
    let kept: Vec<&str> = rest
        .data_sources()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(kept, ["per_topic", "regexed"]);
    assert_eq!(
        rest.global_properties()
            .get("druid.ingestion.kafka.bootstrap.servers"),
        Some("k1:9092")
    );
}

#[test]
fn regexes_with_different_literal_prefixes_never_share_a_topic() {
    assert_eq!(literal_prefix("wikipedia.*"), "wikipedia");
    assert_eq!(literal_prefix("metrics-[a-z]+"), "metrics-");
    assert_eq!(literal_prefix("logs?-.*"), "log");
    assert_eq!(literal_prefix("a.*|b.*"), "");
    assert!(!may_share_names("wikipedia.*", "metrics-[a-z]+"));
    assert!(may_share_names("wiki.*", "wikipedia-[a-z]+"));
    assert!(may_share_names("a.*|b.*", "b-.*"));
}
