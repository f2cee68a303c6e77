//! The adapter at its seam: an in-memory record source and test beams.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot_free::Shared;
use serde_json::json;
use tranquility::beam::testing::{mark, FailableBeam};
use tranquility::beam::{Beam, DropReason, TranquilizerConfig};
use tranquility::metrics::Metrics;
use tranquility::pipeline::DataSourcePipeline;
use tranquility::spec::{IngestionSpec, TranquilityConfig};

use crate::{
    consume, ConsumeOptions, FluvioConfig, FluvioError, OffsetStart, Record, RecordSource,
    RetryPolicy, SourceError,
};

/// Shared state between a test and its source, without extra dependencies.
mod parking_lot_free {
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Default, Clone)]
    pub struct Shared<T>(Arc<Mutex<T>>);

    impl<T: Clone> Shared<T> {
        pub fn get(&self) -> T {
            self.0.lock().unwrap().clone()
        }
        pub fn update(&self, f: impl FnOnce(&mut T)) {
            f(&mut self.0.lock().unwrap())
        }
    }
}

/// Records to yield, errors to inject, and what was committed: at each commit, the offset of
/// the last yielded record and how many records the beam had answered by then.
struct MemorySource {
    records: VecDeque<Result<Record, SourceError>>,
    yielded: Option<i64>,
    commits: Shared<Vec<i64>>,
    fail_commit: bool,
    /// Events of this pipeline still without an outcome, checked at each commit.
    watch: Option<tranquility::metrics::DataSourceMetrics>,
}

impl MemorySource {
    fn new(values: Vec<serde_json::Value>) -> (Self, Shared<Vec<i64>>) {
        let commits = Shared::default();
        let records = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                Ok(Record {
                    partition: 0,
                    offset: 100 + i as i64,
                    value: Bytes::from(v.to_string()),
                })
            })
            .collect();
        let source = Self {
            records,
            yielded: None,
            commits: commits.clone(),
            fail_commit: false,
            watch: None,
        };
        (source, commits)
    }
}

#[async_trait]
impl RecordSource for MemorySource {
    async fn next(&mut self) -> Option<Result<Record, SourceError>> {
        let next = self.records.pop_front()?;
        if let Ok(record) = &next {
            self.yielded = Some(record.offset);
        }
        Some(next)
    }

    async fn commit(&mut self) -> Result<(), SourceError> {
        if self.fail_commit {
            return Err(SourceError("offset store unavailable".into()));
        }
        if let Some(metrics) = &self.watch {
            assert_eq!(metrics.pending(), 0, "commit while outcomes are pending");
        }
        if let Some(offset) = self.yielded {
            self.commits.update(|c| c.push(offset));
        }
        Ok(())
    }
}

fn pipeline(beam: impl Beam + 'static) -> DataSourcePipeline {
    let spec: IngestionSpec = serde_json::from_value(json!({
        "dataSchema": {
            "dataSource": "metrics",
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "timestamp", "format": "millis"},
                "dimensionsSpec": {"dimensions": []}}},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
        },
        "tuningConfig": {"type": "realtime"}
    }))
    .unwrap();
    let config = TranquilizerConfig::builder()
        .linger_millis(5)
        .build()
        .unwrap();
    DataSourcePipeline::with_beam("metrics", &spec, Arc::new(beam), config, &Metrics::new())
        .unwrap()
}

fn options() -> ConsumeOptions {
    ConsumeOptions {
        commit_period: Duration::from_millis(20),
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_attempts: None,
        },
        ..ConsumeOptions::new("metrics")
    }
}

fn events(marks: &[&str]) -> Vec<serde_json::Value> {
    marks
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"timestamp": i, "mark": m}))
        .collect()
}

#[tokio::test]
async fn commits_only_after_every_record_has_an_outcome() {
    // A slow beam: a commit before the outcomes would see fewer answered records.
    let beam = FailableBeam::by_mark().with_delay(Duration::from_millis(30));
    let answered = beam.clone();
    let values = events(&["ok", "drop", "ok", "not-json-timestamp", "ok"]);
    let mut values = values;
    values[3] = json!({"mark": "no timestamp"});
    let (mut source, commits) = MemorySource::new(values);
    let pipeline = pipeline(beam);
    source.watch = Some(pipeline.metrics().clone());
    let report = consume(source, &pipeline, &options(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.tally.received, 5);
    assert_eq!(report.tally.sent, 3);
    assert_eq!(report.tally.dropped(DropReason::OutsideWindow), 1);
    assert_eq!(report.tally.dropped(DropReason::Unparseable), 1);
    assert_eq!(answered.sent().len(), 3);
    assert_eq!(commits.get().last(), Some(&104));
    assert!(pipeline.metrics().snapshot().is_balanced());
}

#[tokio::test]
async fn a_failed_record_is_retried_and_holds_the_commit_back() {
    let failures = Arc::new(AtomicU32::new(0));
    let counter = failures.clone();
    // "flaky" fails its first three attempts.
    let beam = FailableBeam::new().fail_if(move |e| {
        mark(e).as_deref() == Some("flaky") && counter.fetch_add(1, Ordering::SeqCst) < 3
    });
    let (source, commits) = MemorySource::new(events(&["ok", "flaky", "ok"]));
    let pipeline = pipeline(beam.clone());
    let report = consume(source, &pipeline, &options(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.retries, 3);
    assert_eq!(report.tally.sent, 3);
    assert_eq!(report.tally.failed, 0);
    assert_eq!(beam.sent().len(), 3);
    assert_eq!(commits.get().last(), Some(&102));
    // Each attempt is counted by the pipeline: three failed, then sent.
    let tally = pipeline.metrics().snapshot();
    assert_eq!((tally.received, tally.failed, tally.sent), (6, 3, 3));
}

#[tokio::test]
async fn a_record_that_keeps_failing_stops_the_connector_uncommitted() {
    let beam = FailableBeam::by_mark();
    let (source, commits) = MemorySource::new(events(&["ok", "fail", "ok"]));
    let pipeline = pipeline(beam);
    let mut options = options();
    options.retry.max_attempts = Some(2);
    options.commit_period = Duration::from_secs(3600);
    let err = consume(source, &pipeline, &options, std::future::pending())
        .await
        .unwrap_err();
    match err {
        FluvioError::Send {
            offset, attempts, ..
        } => assert_eq!((offset, attempts), (101, 2)),
        other => panic!("expected a send error, got {other}"),
    }
    assert!(commits.get().is_empty(), "committed {:?}", commits.get());
}

#[tokio::test]
async fn read_and_commit_errors_name_the_topic() {
    let (mut source, _) = MemorySource::new(events(&["ok"]));
    source
        .records
        .push_back(Err(SourceError("connection reset".into())));
    let err = consume(
        source,
        &pipeline(FailableBeam::new()),
        &options(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading topic 'metrics' failed: connection reset"
    );

    let (mut source, _) = MemorySource::new(events(&["ok"]));
    source.fail_commit = true;
    let err = consume(
        source,
        &pipeline(FailableBeam::new()),
        &options(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FluvioError::Commit { .. }), "{err}");
}

/// A source that never ends: stopping commits what was read once it has outcomes.
struct Endless {
    next: i64,
    commits: Shared<Vec<i64>>,
}

#[async_trait]
impl RecordSource for Endless {
    async fn next(&mut self) -> Option<Result<Record, SourceError>> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.next += 1;
        let value = json!({"timestamp": self.next}).to_string();
        Some(Ok(Record {
            partition: 0,
            offset: self.next,
            value: Bytes::from(value),
        }))
    }

    async fn commit(&mut self) -> Result<(), SourceError> {
        let last = self.next;
        self.commits.update(|c| c.push(last));
        Ok(())
    }
}

#[tokio::test]
async fn stop_waits_for_outcomes_then_commits() {
    let commits = Shared::default();
    let source = Endless {
        next: 0,
        commits: commits.clone(),
    };
    let beam = FailableBeam::new().with_delay(Duration::from_millis(10));
    let pipeline = pipeline(beam.clone());
    let stop = tokio::time::sleep(Duration::from_millis(150));
    let report = consume(source, &pipeline, &options(), stop).await.unwrap();
    assert!(report.tally.received > 0);
    assert_eq!(report.tally.sent, report.tally.received);
    assert_eq!(beam.sent().len() as u64, report.tally.received);
    assert_eq!(
        commits.get().last().copied(),
        Some(report.tally.received as i64)
    );
    assert!(
        report.commits >= 2,
        "periodic and final commits: {report:?}"
    );
}

#[test]
fn config_reads_fluvio_properties_with_defaults() {
    let text = include_str!("../../examples/configs/fluvio.json");
    let config = TranquilityConfig::from_str(text, "fluvio.json").unwrap();
    let fluvio = FluvioConfig::from_config(&config).unwrap();
    assert_eq!(fluvio.endpoint.as_deref(), Some("127.0.0.1:9003"));
    assert_eq!(fluvio.consumer_id, "tranquility-fluvio");
    assert_eq!(fluvio.offset_start, OffsetStart::Beginning);
    assert_eq!(fluvio.routes.len(), 1);
    assert_eq!(fluvio.routes[0].topic, "metrics");
    assert_eq!(fluvio.routes[0].data_source.name, "metrics");

    let bad = text.replace(
        "\"fluvio.endpoint\"",
        "\"fluvio.offsetStart\": \"latest\", \"x\"",
    );
    let config = TranquilityConfig::from_str(&bad, "fluvio.json").unwrap();
    let err = FluvioConfig::from_config(&config).unwrap_err().to_string();
    assert!(
        err.contains("fluvio.offsetStart") && err.contains("latest"),
        "{err}"
    );
}
