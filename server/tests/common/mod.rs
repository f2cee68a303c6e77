//! Test dataSources: real `DataSourcePipeline`s over a `FailableBeam` that fails events
//! containing `"FAIL"` and drops (OutsideWindow) events containing `"OLD"`. Batches are sent
//! only when full or on a flush (`lingerMillis = -1`), so async posts stay pending until the
//! server flushes.
#![allow(dead_code)]

use std::sync::Arc;

use tranquility::beam::testing::FailableBeam;
use tranquility::beam::{DropReason, Linger, TranquilizerConfig};
use tranquility::event::Event;
use tranquility::metrics::Metrics;
use tranquility::pipeline::DataSourcePipeline;
use tranquility::spec::{IngestionSpec, ParseSpec};
use tranquility_server::{AppState, DataSourceEntry, ServerConfig};

/// One test dataSource: its pipeline and the beam behind it.
#[derive(Debug, Clone)]
pub struct TestSource {
    pub pipeline: DataSourcePipeline,
    pub beam: FailableBeam,
}

fn contains(event: &Event, needle: &str) -> bool {
    String::from_utf8_lossy(event.raw()).contains(needle)
}

fn spec(name: &str) -> IngestionSpec {
    serde_json::from_value(serde_json::json!({
        "dataSchema": {
            "dataSource": name,
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "timestamp", "format": "auto"},
                "dimensionsSpec": {"dimensions": []}}},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
        },
        "tuningConfig": {"type": "realtime"}
    }))
    .unwrap()
}

impl TestSource {
    pub fn new(name: &str, metrics: &Metrics) -> Self {
        let beam = FailableBeam::new()
            .fail_if(|e| contains(e, "FAIL"))
            .drop_if(|e| contains(e, "OLD"), DropReason::OutsideWindow);
        let config = TranquilizerConfig::builder()
            .linger(Linger::UntilFull)
            .build()
            .unwrap();
        let pipeline = DataSourcePipeline::with_beam(
            name,
            &spec(name),
            Arc::new(beam.clone()),
            config,
            metrics,
        )
        .unwrap();
        Self { pipeline, beam }
    }

    /// The raw events the beam answered `Sent`, as text.
    pub fn sent_texts(&self) -> Vec<String> {
        self.beam
            .sent()
            .iter()
            .map(|e| String::from_utf8_lossy(e.raw()).into_owned())
            .collect()
    }

    /// How many events the beam answered `Sent`.
    pub fn sent_count(&self) -> usize {
        self.beam.sent().len()
    }

    /// Events handed in whose outcome is not known yet.
    pub fn pending(&self) -> i64 {
        self.pipeline.metrics().pending()
    }

    pub fn entry(&self, parse_spec: Option<&ParseSpec>) -> DataSourceEntry {
        DataSourceEntry::new(Arc::new(self.pipeline.clone()), parse_spec)
    }
}

/// State with dataSources `wiki` (json lines) and `csvds` (csv columns ts,page,n).
pub fn state(config: ServerConfig) -> (AppState, TestSource, TestSource) {
    let metrics = Metrics::new();
    let wiki = TestSource::new("wiki", &metrics);
    let csv = TestSource::new("csvds", &metrics);
    let csv_spec: ParseSpec = serde_json::from_str(
        r#"{"format":"csv","columns":["timestamp","page","n"],"timestampSpec":{"column":"timestamp"}}"#,
    )
    .unwrap();
    let state = AppState::new(
        config,
        metrics,
        [
            ("wiki".to_string(), wiki.entry(None)),
            ("csvds".to_string(), csv.entry(Some(&csv_spec))),
        ],
    );
    (state, wiki, csv)
}
