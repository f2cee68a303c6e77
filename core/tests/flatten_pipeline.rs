//! A dataSource with a flattenSpec through the pipeline: nested events in, flat events to the
//! beam, the timestamp and the partition read from flattened fields, every event counted.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tranquility::beam::{Beam, CloseError, DropReason, Outcome, TranquilizerConfig};
use tranquility::druid::partitioner::dimension_hash_partitioner;
use tranquility::event::Event;
use tranquility::metrics::Metrics;
use tranquility::pipeline::DataSourcePipeline;
use tranquility::spec::IngestionSpec;

/// Keeps what it is sent.
#[derive(Debug, Default)]
struct Recording(Mutex<Vec<Event>>);

#[async_trait]
impl Beam for Recording {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let n = events.len();
        self.0.lock().extend(events);
        vec![Outcome::Sent; n]
    }

    async fn close(&self) -> Result<(), CloseError> {
        Ok(())
    }
}

/// The spec of the original's `direct-druid-test-flattenSpec.yaml`.
fn spec() -> IngestionSpec {
    serde_json::from_value(json!({
        "dataSchema": {
            "dataSource": "xxx",
            "parser": {"type": "string", "parseSpec": {
                "format": "json",
                "flattenSpec": {"useFieldDiscovery": false, "fields": [
                    {"type": "path", "name": "lat", "expr": "$.geo.lat"},
                    {"type": "path", "name": "lon", "expr": "$.geo.lon"},
                    {"type": "path", "name": "foo", "expr": "$.data.foo"},
                    {"type": "path", "name": "bar", "expr": "$.data.bar"},
                    {"type": "root", "name": "ts", "expr": "ts"}]},
                "timestampSpec": {"column": "ts", "format": "posix"},
                "dimensionsSpec": {"dimensions": ["foo"],
                    "spatialDimensions": [{"dimName": "coord.geo", "dims": ["lat", "lon"]}]}}},
            "metricsSpec": [{"type": "longSum", "name": "barr", "fieldName": "bar"}],
            "granularitySpec": {"type": "uniform", "segmentGranularity": "hour",
                "queryGranularity": "minute"}
        },
        "tuningConfig": {"type": "realtime"}
    }))
    .expect("spec")
}

fn nested(ts: i64, dimension: &str, metric: i64) -> Bytes {
    Bytes::from(
        json!({"ts": ts, "geo": {"lat": 37.7, "lon": -122.4}, "data": {"foo": dimension, "bar": metric},
               "extra": {"x": 1}})
        .to_string(),
    )
}

#[tokio::test]
async fn nested_events_reach_the_beam_flat() {
    let beam = Arc::new(Recording::default());
    let pipeline = DataSourcePipeline::with_beam(
        "xxx",
        &spec(),
        beam.clone(),
        TranquilizerConfig::default(),
        &Metrics::new(),
    )
    .expect("pipeline");
    let outcomes = pipeline
        .send_all(vec![
            nested(1_436_000_000, "hey", 2),
            Bytes::from_static(br#"{"geo":{"lat":1},"data":{"foo":"no time"}}"#),
            Bytes::from_static(b"[1,2]"),
            nested(1_436_000_060, "you", 3),
        ])
        .await;
    assert!(
        outcomes[0].is_sent() && outcomes[3].is_sent(),
        "{outcomes:?}"
    );
    for bad in &outcomes[1..3] {
        assert!(
            matches!(bad, Outcome::Dropped(DropReason::Unparseable)),
            "{bad:?}"
        );
    }
    let events = beam.0.lock().clone();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].timestamp_millis(), 1_436_000_000_000);
    let flat: Value = serde_json::from_slice(events[0].raw()).expect("json");
    assert_eq!(
        flat,
        json!({"lat": 37.7, "lon": -122.4, "foo": "hey", "bar": 2, "ts": 1_436_000_000})
    );
    let tally = pipeline.metrics().snapshot();
    assert_eq!((tally.received, tally.sent), (4, 2));
    assert_eq!(tally.dropped(DropReason::Unparseable), 2);
    assert!(tally.is_balanced());

    // The partitioner reads the flattened dimension: it hashes like an event written flat.
    let partitioner = dimension_hash_partitioner(&spec());
    let written_flat = Event::new(1_436_000_000_000, flat.to_string());
    assert_eq!(partitioner(&events[0]), partitioner(&written_flat));
    let other_foo = Event::new(
        1_436_000_000_000,
        json!({"foo": "another", "ts": 1_436_000_000}).to_string(),
    );
    assert_ne!(partitioner(&events[0]), partitioner(&other_foo));
    pipeline.close().await;
}

#[test]
fn a_bad_flatten_spec_stops_the_pipeline_naming_the_field() {
    let mut spec = serde_json::to_value(spec()).expect("json");
    spec["dataSchema"]["parser"]["parseSpec"]["flattenSpec"]["fields"][2] =
        json!({"type": "jq", "name": "foo", "expr": ".data | keys"});
    let spec: IngestionSpec = serde_json::from_value(spec).expect("spec");
    let err = DataSourcePipeline::with_beam(
        "xxx",
        &spec,
        Arc::new(Recording::default()),
        TranquilizerConfig::default(),
        &Metrics::new(),
    )
    .expect_err("refused")
    .to_string();
    assert!(
        err.contains("xxx") && err.contains("fields[2]") && err.contains("'foo' of type jq"),
        "{err}"
    );
}
