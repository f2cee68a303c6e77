//! The adapter at its seam: an in-memory record source that models the Fluvio client's
//! cancellation rule, and test beams.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::json;
use tranquility::beam::testing::{mark, FailableBeam};
use tranquility::beam::{Beam, DropReason, TranquilizerConfig};
use tranquility::metrics::{DataSourceMetrics, Metrics};
use tranquility::pipeline::DataSourcePipeline;
use tranquility::source::{DriverError, Route, SingleRoute, SourceDriver, SourceMetrics};
use tranquility::spec::{IngestionSpec, TranquilityConfig};

use crate::{
    run_topics, DataSourceTopic, DriverOptions, EventSink, FluvioConfig, FluvioError, OffsetStart,
    PartitionId, Position, RecordSource, ReportFlags, SourceError, SourceRecord, TopicError,
};

/// What a test scripts and what the source saw.
#[derive(Debug, Default)]
struct State {
    records: VecDeque<Result<SourceRecord, SourceError>>,
    /// Once the records are read: wait for ever (a live, idle topic) instead of ending.
    idle: bool,
    /// The stored offset (the last processed record, as Fluvio stores it) at each commit.
    stored: Vec<i64>,
    fail_commits: bool,
    /// A pending `next()` was dropped: from then on, as with the real client, a commit
    /// never returns.
    cancelled: bool,
    /// Checked at each commit: every record below the commit has an outcome here.
    watch: Option<DataSourceMetrics>,
}

#[derive(Debug, Clone, Default)]
struct MemorySource(Arc<Mutex<State>>);

impl MemorySource {
    fn new(values: Vec<serde_json::Value>) -> Self {
        let source = Self::default();
        source.0.lock().unwrap().records = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| Ok(record(100 + i as i64, v)))
            .collect();
        source
    }

    fn idle(self) -> Self {
        self.0.lock().unwrap().idle = true;
        self
    }

    fn stored(&self) -> Vec<i64> {
        self.0.lock().unwrap().stored.clone()
    }

    fn cancelled(&self) -> bool {
        self.0.lock().unwrap().cancelled
    }
}

fn record(offset: i64, value: serde_json::Value) -> SourceRecord {
    SourceRecord {
        partition: PartitionId::new("metrics", 0),
        offset,
        payload: Some(Bytes::from(value.to_string())),
    }
}

/// Marks the source cancelled when a waiting `next()` is dropped.
struct Waiting(Arc<Mutex<State>>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.lock().unwrap().cancelled = true;
    }
}

#[async_trait]
impl RecordSource for MemorySource {
    async fn next(&self) -> Option<Result<SourceRecord, SourceError>> {
        let idle = {
            let mut state = self.0.lock().unwrap();
            if let Some(next) = state.records.pop_front() {
                return Some(next);
            }
            state.idle
        };
        if idle {
            let _waiting = Waiting(self.0.clone());
            std::future::pending::<()>().await;
        }
        None
    }

    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        if self.cancelled() {
            // What the Fluvio client does after a cancelled read: wait for ever.
            std::future::pending::<()>().await;
        }
        let mut state = self.0.lock().unwrap();
        if state.fail_commits {
            return Err(SourceError::new("offset store unavailable"));
        }
        for p in positions {
            if let Some(metrics) = &state.watch {
                let t = metrics.snapshot();
                let answered = t.sent + t.dropped_total() + t.failed;
                assert!(
                    answered >= (p.offset - 100) as u64,
                    "commit at {} while only {answered} records have an outcome",
                    p.offset
                );
            }
            state.stored.push(p.offset - 1);
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

fn options() -> DriverOptions {
    let mut options = DriverOptions {
        commit_period: Duration::from_millis(20),
        ..DriverOptions::default()
    };
    options.retry.initial_backoff = Duration::from_millis(5);
    options.retry.max_backoff = Duration::from_millis(20);
    options
}

fn events(marks: &[&str]) -> Vec<serde_json::Value> {
    marks
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"timestamp": i, "mark": m}))
        .collect()
}

/// Consumes `source` (one topic) until it ends or `stop` resolves.
async fn consume(
    source: impl RecordSource,
    sink: Arc<dyn EventSink>,
    topic: &str,
    report: ReportFlags,
    options: DriverOptions,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<tranquility::source::SourceReport, FluvioError> {
    let stop = async {
        stop.await;
        tranquility::source::Stop::Graceful
    };
    let router = Arc::new(SingleRoute(Route { sink, report }));
    let driver = SourceDriver::new(source, router, &SourceMetrics::default(), options, 0);
    let (report, result) = driver.run(stop).await;
    result.map_err(|source| TopicError::Consume {
        topic: topic.to_string(),
        source,
    })?;
    Ok(report)
}

fn sink(pipeline: &DataSourcePipeline) -> Arc<dyn EventSink> {
    Arc::new(pipeline.clone())
}

async fn run(
    source: MemorySource,
    pipeline: &DataSourcePipeline,
    options: DriverOptions,
) -> Result<tranquility::source::SourceReport, FluvioError> {
    let stop = std::future::pending();
    let flags = ReportFlags::default();
    consume(source, sink(pipeline), "metrics", flags, options, stop).await
}

#[tokio::test]
async fn commits_only_after_every_record_has_an_outcome() {
    // A slow beam: a commit before the outcomes would see fewer answered records.
    let beam = FailableBeam::by_mark().with_delay(Duration::from_millis(30));
    let answered = beam.clone();
    let mut values = events(&["ok", "drop", "ok", "not-json-timestamp", "ok"]);
    values[3] = json!({"mark": "no timestamp"});
    let source = MemorySource::new(values);
    let pipeline = pipeline(beam);
    source.0.lock().unwrap().watch = Some(pipeline.metrics().clone());
    let report = run(source.clone(), &pipeline, options()).await.unwrap();
    assert_eq!(report.tally.received, 5);
    assert_eq!(report.tally.sent, 3);
    assert_eq!(report.tally.dropped(DropReason::OutsideWindow), 1);
    assert_eq!(report.tally.dropped(DropReason::Unparseable), 1);
    assert!(report.tally.is_balanced());
    assert_eq!(answered.sent().len(), 3);
    assert_eq!(source.stored().last(), Some(&104));
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
    let source = MemorySource::new(events(&["ok", "flaky", "ok"]));
    let pipeline = pipeline(beam.clone());
    let report = run(source.clone(), &pipeline, options()).await.unwrap();
    assert_eq!(report.retries, 3);
    assert_eq!(report.tally.sent, 3);
    assert_eq!(report.tally.failed, 0);
    assert!(report.tally.is_balanced());
    assert_eq!(beam.sent().len(), 3);
    let stored = source.stored();
    assert_eq!(stored.last(), Some(&102));
    assert!(
        stored.iter().all(|s| *s == 100 || *s == 102),
        "never past 100 while 101 failed: {stored:?}"
    );
    // Each attempt is counted by the pipeline: three failed, then sent.
    let tally = pipeline.metrics().snapshot();
    assert_eq!((tally.received, tally.failed, tally.sent), (6, 3, 3));
}

#[tokio::test]
async fn a_record_that_keeps_failing_stops_the_connector_uncommitted() {
    let source = MemorySource::new(events(&["ok", "fail", "ok"]));
    let pipeline = pipeline(FailableBeam::by_mark());
    let mut options = options();
    options.retry.max_attempts = Some(2);
    options.commit_period = Duration::from_secs(3600);
    let err = run(source.clone(), &pipeline, options).await.unwrap_err();
    match err {
        FluvioError::Topic(TopicError::Consume {
            source: DriverError::SendFailed {
                offset, attempts, ..
            },
            ..
        }) => assert_eq!((offset, attempts), (101, 2)),
        other => panic!("expected a send error, got {other}"),
    }
    assert_eq!(
        source.stored(),
        [100],
        "only the record before it is committed"
    );
}

#[tokio::test]
async fn report_flags_stop_the_connector_at_the_dropped_record() {
    let source = MemorySource::new(events(&["ok", "drop", "ok"]));
    let pipeline = pipeline(FailableBeam::by_mark());
    let flags = ReportFlags {
        drops: true,
        parse: false,
    };
    let err = consume(
        source.clone(),
        sink(&pipeline),
        "metrics",
        flags,
        options(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic 'metrics': metrics[0] offset 101 was dropped (outside_window) and \
         reportDropsAsExceptions is true"
    );
    assert!(
        source.stored().iter().all(|s| *s < 101),
        "{:?}",
        source.stored()
    );
}

#[tokio::test]
async fn read_and_commit_errors_name_the_topic() {
    let source = MemorySource::new(events(&["ok"]));
    source
        .0
        .lock()
        .unwrap()
        .records
        .push_back(Err(SourceError("connection reset".into())));
    let err = run(source, &pipeline(FailableBeam::new()), options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic 'metrics': reading failed: connection reset"
    );

    let source = MemorySource::new(events(&["ok"]));
    source.0.lock().unwrap().fail_commits = true;
    let err = run(source, &pipeline(FailableBeam::new()), options())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FluvioError::Topic(TopicError::Consume {
                source: DriverError::Commit(_),
                ..
            })
        ),
        "{err}"
    );
}

/// A source that never ends: stopping commits what was read once it has outcomes.
#[derive(Debug, Default)]
struct Endless {
    next: Mutex<i64>,
    stored: Mutex<Vec<i64>>,
}

#[async_trait]
impl RecordSource for Endless {
    async fn next(&self) -> Option<Result<SourceRecord, SourceError>> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut next = self.next.lock().unwrap();
        *next += 1;
        Some(Ok(record(*next, json!({"timestamp": *next}))))
    }

    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        let mut stored = self.stored.lock().unwrap();
        stored.extend(positions.iter().map(|p| p.offset - 1));
        Ok(())
    }
}

#[tokio::test]
async fn stop_waits_for_outcomes_then_commits() {
    let source = Arc::new(Endless::default());
    let beam = FailableBeam::new().with_delay(Duration::from_millis(10));
    let pipeline = pipeline(beam.clone());
    let stop = tokio::time::sleep(Duration::from_millis(150));
    let report = consume(
        ArcSource(source.clone()),
        sink(&pipeline),
        "metrics",
        ReportFlags::default(),
        options(),
        stop,
    )
    .await
    .unwrap();
    assert!(report.tally.received > 0);
    assert_eq!(report.tally.sent, report.tally.received);
    assert_eq!(beam.sent().len() as u64, report.tally.received);
    assert_eq!(
        source.stored.lock().unwrap().last().copied(),
        Some(report.tally.received as i64)
    );
    assert!(
        report.commits >= 2,
        "periodic and final commits: {report:?}"
    );
}

/// A shared source, so a test keeps a handle on it.
#[derive(Debug)]
struct ArcSource<S>(Arc<S>);

#[async_trait]
impl<S: RecordSource> RecordSource for ArcSource<S> {
    async fn next(&self) -> Option<Result<SourceRecord, SourceError>> {
        self.0.next().await
    }

    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        self.0.commit(positions).await
    }
}

/// The bug seen on a real cluster: the topic goes idle with every record answered, a
/// commit falls due while `next()` waits, then the connector is stopped. Cancelling that
/// `next()` would make every later commit hang.
#[tokio::test]
async fn an_idle_topic_commits_and_stops_cleanly() {
    let source = MemorySource::new(events(&["ok", "ok", "ok"])).idle();
    let pipeline = pipeline(FailableBeam::new());
    let stop = tokio::time::sleep(Duration::from_millis(300));
    let consumed = consume(
        source.clone(),
        sink(&pipeline),
        "metrics",
        ReportFlags::default(),
        options(),
        stop,
    );
    let report = tokio::time::timeout(Duration::from_secs(10), consumed)
        .await
        .expect("stops in time")
        .expect("stops without an error");
    assert_eq!((report.tally.received, report.tally.sent), (3, 3));
    assert!(report.commits >= 1);
    assert_eq!(
        source.stored().last(),
        Some(&102),
        "everything read is committed"
    );
    assert!(
        source.cancelled(),
        "the waiting next() goes once the source is done with"
    );
}

#[tokio::test]
async fn every_topic_stops_when_one_fails_or_on_the_stop_signal() {
    // The example with a second dataSource reading topic `metrics2`.
    let mut file: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/configs/fluvio.json")).unwrap();
    let mut second = file["dataSources"][0].clone();
    second["spec"]["dataSchema"]["dataSource"] = json!("metrics2");
    second["properties"]["fluvio.topic"] = json!("metrics2");
    file["dataSources"].as_array_mut().unwrap().push(second);
    let config = TranquilityConfig::from_value(file, "fluvio.json").unwrap();
    let fluvio = FluvioConfig::from_config(&config).unwrap();
    let sink_of = |_: &str| Some(sink(&pipeline(FailableBeam::new())));
    let sources = [
        MemorySource::new(events(&["ok", "ok"])).idle(),
        MemorySource::new(events(&["ok"])).idle(),
    ];
    let open = |route: &DataSourceTopic| {
        let source = sources[usize::from(route.topic == "metrics2")].clone();
        async move { Ok::<_, SourceError>(source) }
    };
    let stop = tokio::time::sleep(Duration::from_millis(200));
    let reports = tokio::time::timeout(
        Duration::from_secs(10),
        run_topics(&fluvio.routes, &fluvio.options, sink_of, open, stop),
    )
    .await
    .expect("stops in time")
    .unwrap();
    let sent: Vec<(String, u64)> = reports
        .into_iter()
        .map(|(name, r)| (name, r.tally.sent))
        .collect();
    assert_eq!(sent, [("metrics".into(), 2), ("metrics2".into(), 1)]);
    assert_eq!(sources[0].stored().last(), Some(&101));
    assert_eq!(sources[1].stored().last(), Some(&100));

    // One topic fails to read: the other stops too, committed, and the error is returned.
    let sources = [
        MemorySource::new(events(&["ok"])).idle(),
        MemorySource::new(events(&["ok"])),
    ];
    sources[1]
        .0
        .lock()
        .unwrap()
        .records
        .push_back(Err(SourceError::new("SPU offline")));
    let open = |route: &DataSourceTopic| {
        let source = sources[usize::from(route.topic == "metrics2")].clone();
        async move { Ok::<_, SourceError>(source) }
    };
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        run_topics(
            &fluvio.routes,
            &fluvio.options,
            sink_of,
            open,
            std::future::pending(),
        ),
    )
    .await
    .expect("stops in time")
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic 'metrics2': reading failed: SPU offline"
    );
    assert_eq!(sources[0].stored().last(), Some(&100));
}

#[test]
fn config_reads_fluvio_properties_with_defaults() {
    let text = include_str!("../../examples/configs/fluvio.json");
    let config = TranquilityConfig::from_str(text, "fluvio.json").unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    let fluvio = FluvioConfig::from_config(&config).unwrap();
    assert_eq!(fluvio.endpoint.as_deref(), Some("127.0.0.1:9003"));
    assert_eq!(fluvio.consumer_id, "tranquility-fluvio");
    assert_eq!(fluvio.offset_start, OffsetStart::Beginning);
    assert_eq!(fluvio.routes.len(), 1);
    assert_eq!(fluvio.routes[0].topic, "metrics");
    assert_eq!(fluvio.routes[0].data_source.name, "metrics");
    assert_eq!(fluvio.routes[0].report, ReportFlags::default());

    let bad = text.replace(
        "\"fluvio.endpoint\"",
        "\"fluvio.offsetStart\": \"latest\", \"x\"",
    );
    // The loader knows the fluvio.* keys: a bad value is refused where the file is read.
    let err = TranquilityConfig::from_str(&bad, "fluvio.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fluvio.offsetStart") && err.contains("latest"),
        "{err}"
    );

    let flags = text.replace(
        "\"fluvio.endpoint\"",
        "\"reportParseExceptions\": \"true\", \"fluvio.endpoint\"",
    );
    let config = TranquilityConfig::from_str(&flags, "fluvio.json").unwrap();
    let fluvio = FluvioConfig::from_config(&config).unwrap();
    assert_eq!(
        fluvio.routes[0].report,
        ReportFlags {
            drops: false,
            parse: true
        }
    );
}
