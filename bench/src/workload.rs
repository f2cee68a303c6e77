//! The events and the dataSource every figure uses: 200-byte JSON objects with current ISO
//! timestamps and a few low-cardinality dimensions, so Druid-side rollup stays cheap and the
//! figures measure the push path, not the indexer.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::Pipelines;
use tranquility::spec::{ConfigError, IngestionSpec, TranquilityConfig};
use tranquility::time::format_iso_millis;

/// The size every generated event is padded to, in bytes.
pub const EVENT_BYTES: usize = 200;

/// Now, in epoch millis.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One event of exactly [`EVENT_BYTES`] bytes (unless `probe` makes it longer), timestamped
/// `ts`; `i` varies the dimension values.
pub fn event(i: usize, ts: i64, probe: Option<&str>) -> Bytes {
    let country = ["fr", "de", "us", "jp"][i % 4];
    let mut value = json!({
        "timestamp": format_iso_millis(ts),
        "page": format!("page-{:02}", i % 10),
        "user": format!("user-{}", i % 5),
        "country": country,
        "device": if i % 2 == 0 { "mobile" } else { "desktop" },
        "action": if i % 3 == 0 { "view" } else { "click" },
        "latency_ms": (i * 7919) % 1000,
        "bytes": (i * 104_729) % 100_000,
        "pad": "",
    });
    if let Some(p) = probe {
        value["probe"] = Value::from(p);
    }
    let text = value.to_string();
    let pad = EVENT_BYTES.saturating_sub(text.len());
    value["pad"] = Value::from("x".repeat(pad));
    Bytes::from(value.to_string())
}

/// `n` distinct events timestamped a little before now.
pub fn events(n: usize) -> Vec<Bytes> {
    let now = now_millis();
    (0..n)
        .map(|i| event(i, now - (i % 1000) as i64, None))
        .collect()
}

/// A JSON array of `events`, as a POST body.
pub fn json_array(events: &[Bytes]) -> Bytes {
    let mut body = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.push(b']');
    Bytes::from(body)
}

/// The ingestion spec of dataSource `name`: ISO timestamps, five dimensions plus `probe`
/// (the latency markers), three metrics, hourly segments, second-level rollup.
pub fn spec_value(name: &str) -> Value {
    json!({
        "dataSchema": {
            "dataSource": name,
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "timestamp", "format": "auto"},
                "dimensionsSpec": {"dimensions":
                    ["page", "user", "country", "device", "action", "probe"]}}},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "latency_ms", "fieldName": "latency_ms"},
                {"type": "longSum", "name": "bytes", "fieldName": "bytes"}
            ],
            "granularitySpec": {"type": "uniform", "segmentGranularity": "hour",
                "queryGranularity": "second"}
        },
        "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M",
            "maxRowsInMemory": 500000}
    })
}

/// The ingestion spec of dataSource `name`, parsed.
pub fn spec(name: &str) -> Result<IngestionSpec, serde_json::Error> {
    serde_json::from_value(spec_value(name))
}

/// A Tranquility config with one dataSource and the given properties (tasks found through the
/// Overlord, one partition and replica).
pub fn config(name: &str, properties: &[(&str, String)]) -> Result<TranquilityConfig, ConfigError> {
    config_over(
        name,
        &[
            ("druidBeam.taskLocator", "overlord"),
            ("task.partitions", "1"),
            ("task.replicants", "1"),
        ],
        properties,
    )
}

/// A config for the supervisor backend (one partition, one replica) on the Kafka brokers
/// `bootstrap`, plus `properties`.
pub fn supervisor_config(
    name: &str,
    bootstrap: &str,
    properties: &[(&str, String)],
) -> Result<TranquilityConfig, ConfigError> {
    let mut all = vec![
        ("druid.ingestion", "supervisor".to_string()),
        (
            "druid.ingestion.kafka.bootstrap.servers",
            bootstrap.to_string(),
        ),
    ];
    all.extend(properties.iter().cloned());
    config_over(
        name,
        &[("task.partitions", "1"), ("task.replicants", "1")],
        &all,
    )
}

/// A config for the batch backend, plus `properties`.
pub fn batch_config(
    name: &str,
    properties: &[(&str, String)],
) -> Result<TranquilityConfig, ConfigError> {
    let mut all = vec![("druid.ingestion", "batch".to_string())];
    all.extend(properties.iter().cloned());
    config_over(name, &[], &all)
}

/// `base` properties, then `properties` over them.
fn config_over(
    name: &str,
    base: &[(&str, &str)],
    properties: &[(&str, String)],
) -> Result<TranquilityConfig, ConfigError> {
    let mut props = serde_json::Map::new();
    for (k, v) in base {
        props.insert((*k).into(), Value::from(*v));
    }
    for (k, v) in properties {
        props.insert((*k).into(), Value::from(v.as_str()));
    }
    let root = json!({"dataSources": [{"spec": spec_value(name)}], "properties": props});
    TranquilityConfig::from_value(root, "bench.json")
}

/// The production pipelines of `config` for one process: in-process coordination, the
/// Overlord at `overlord_url`.
pub fn pipelines(config: &TranquilityConfig, overlord_url: &str) -> anyhow::Result<Pipelines> {
    Ok(Pipelines::builder()
        .coordinator(Arc::new(LocalCoordinator::new()))
        .overlord_url(overlord_url)
        .build(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranquility::event::TimestampExtractor;

    #[test]
    fn events_are_200_bytes_of_json_with_a_readable_timestamp() {
        let spec = spec("bench").unwrap();
        let extractor = TimestampExtractor::new(&spec.data_schema.timestamp_spec()).unwrap();
        let now = now_millis();
        for (i, e) in events(50).iter().enumerate() {
            assert_eq!(e.len(), EVENT_BYTES, "event {i}");
            let value: Value = serde_json::from_slice(e).unwrap();
            assert!(value.is_object());
            let ts = extractor.extract(e).unwrap();
            assert!((now - ts).abs() < 5_000, "{ts} vs {now}");
        }
        let probe = event(1, now, Some("p-7"));
        let value: Value = serde_json::from_slice(&probe).unwrap();
        assert_eq!(value["probe"], "p-7");
    }

    #[test]
    fn the_body_is_a_json_array_of_the_events() {
        let evs = events(3);
        let body: Vec<Value> = serde_json::from_slice(&json_array(&evs)).unwrap();
        assert_eq!(body.len(), 3);
        assert_eq!(serde_json::to_vec(&body[2]).unwrap().len(), EVENT_BYTES);
    }

    #[test]
    fn backend_configs_set_nothing_their_backend_ignores() {
        use tranquility::backend::{unused_properties, Backend};
        let supervisor = supervisor_config("bench_s", "127.0.0.1:9092", &[]).unwrap();
        let props = &supervisor.data_sources()[0].properties;
        assert_eq!(props.get("druid.ingestion"), Some("supervisor"));
        assert!(unused_properties(props, Backend::Supervisor).is_empty());
        let batch = batch_config("bench_b", &[("tranquility.maxBatchSize", "10".into())]).unwrap();
        let props = &batch.data_sources()[0].properties;
        assert_eq!(props.get("druid.ingestion"), Some("batch"));
        assert_eq!(props.get("tranquility.maxBatchSize"), Some("10"));
        assert!(unused_properties(props, Backend::Batch).is_empty());
        // The realtime config would be named in the batch backend's warning.
        let realtime = config("bench_r", &[]).unwrap();
        assert!(
            !unused_properties(&realtime.data_sources()[0].properties, Backend::Batch).is_empty()
        );
    }

    #[test]
    fn the_config_builds_and_names_the_data_source() {
        let cfg = config("bench_x", &[("druidBeam.firehoseChunkSize", "500".into())]).unwrap();
        assert_eq!(cfg.data_sources()[0].name, "bench_x");
        assert_eq!(
            cfg.data_sources()[0]
                .properties
                .get("druidBeam.firehoseChunkSize"),
            Some("500")
        );
    }
}
