//! The driver against a scripted source and sink. The source models the strictest client the
//! driver must serve: a `commit` after a cancelled `next()` never returns (the Fluvio client's
//! behaviour), so any cancellation before a commit shows up as a hang.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::driver::{format_counts, looks_like_object};
use super::*;
use crate::beam::{DropReason, Outcome, SendError};
use crate::metrics::{Metrics, Tally};

/// What the test scripts and what the source saw.
#[derive(Debug, Default)]
struct Script {
    records: VecDeque<Result<SourceRecord, SourceError>>,
    /// After the records: the source ends, or (false) waits for more for ever.
    ends: bool,
    commits: Vec<Vec<Position>>,
    failing_commits: usize,
    /// `commit`, `cancel` (a pending `next()` dropped) and `close`, in order.
    events: Vec<&'static str>,
    /// A pending `next()` was dropped.
    cancelled: bool,
    /// A `next()` is waiting for a record.
    waiting: bool,
    pausable: bool,
    paused: bool,
    pauses: usize,
    closed: bool,
    partitions: Option<Partitions>,
    /// Revoked from inside the next `next()`, as a Kafka rebalance callback does.
    revoke: Option<Vec<PartitionId>>,
}

#[derive(Debug, Clone, Default)]
struct FakeSource {
    script: Arc<Mutex<Script>>,
    more: Arc<Notify>,
}

impl FakeSource {
    fn new(records: Vec<SourceRecord>, ends: bool) -> Self {
        let source = Self::default();
        {
            let mut s = source.script.lock();
            s.records = records.into_iter().map(Ok).collect();
            s.ends = ends;
        }
        source
    }

    fn push(&self, record: Result<SourceRecord, SourceError>) {
        self.script.lock().records.push_back(record);
        self.more.notify_one();
    }

    fn commits(&self) -> Vec<Vec<Position>> {
        self.script.lock().commits.clone()
    }

    /// The last committed offset of each partition.
    fn committed(&self) -> HashMap<PartitionId, i64> {
        let mut out = HashMap::new();
        for commit in self.commits() {
            for p in commit {
                out.insert(p.partition, p.offset);
            }
        }
        out
    }
}

/// Marks the script when dropped before a record was returned.
struct CancelGuard(Option<Arc<Mutex<Script>>>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(script) = self.0.take() {
            let mut s = script.lock();
            s.cancelled = true;
            s.waiting = false;
            s.events.push("cancel");
        }
    }
}

#[async_trait]
impl RecordSource for FakeSource {
    fn attach(&self, partitions: Partitions) {
        self.script.lock().partitions = Some(partitions);
    }

    async fn next(&self) -> Option<Result<SourceRecord, SourceError>> {
        let mut guard = CancelGuard(Some(self.script.clone()));
        loop {
            let more = self.more.notified();
            let mut more = std::pin::pin!(more);
            more.as_mut().enable();
            {
                let mut s = self.script.lock();
                if let Some(ids) = s.revoke.take() {
                    let partitions = s.partitions.clone().expect("attached");
                    drop(s);
                    partitions.revoke(&ids, |points| {
                        self.script.lock().commits.push(points.to_vec());
                        Ok(())
                    });
                    continue;
                }
                let next = if s.paused {
                    None
                } else {
                    s.records.pop_front()
                };
                if next.is_some() || (s.ends && !s.paused) {
                    s.waiting = false;
                    guard.0 = None;
                    return next;
                }
                s.waiting = true;
            }
            more.await;
        }
    }

    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        let cancelled = {
            let mut s = self.script.lock();
            if !s.cancelled && s.failing_commits > 0 {
                s.failing_commits -= 1;
                return Err(SourceError::new("offset store unavailable"));
            }
            s.cancelled
        };
        if cancelled {
            // What the Fluvio client does after a cancelled read: wait for ever.
            std::future::pending::<()>().await;
        }
        let mut s = self.script.lock();
        s.commits.push(positions.to_vec());
        s.events.push("commit");
        Ok(())
    }

    fn pause(&self) -> Result<bool, SourceError> {
        let mut s = self.script.lock();
        if s.pausable {
            s.paused = true;
            s.pauses += 1;
        }
        Ok(s.pausable)
    }

    fn resume(&self) -> Result<(), SourceError> {
        self.script.lock().paused = false;
        self.more.notify_one();
        Ok(())
    }

    async fn close(&self) {
        let mut s = self.script.lock();
        s.closed = true;
        s.events.push("close");
    }
}

/// Answers by the event's `mark`: `ok` sent, `late` dropped outside the window, `bad`
/// unparseable, `flaky` failing its first `flaky` attempts, `fatal` failing for good. Each
/// answer takes `delay`.
#[derive(Debug, Clone, Default)]
struct ScriptSink(Arc<SinkState>);

#[derive(Debug, Default)]
struct SinkState {
    delay: Duration,
    flaky: u32,
    attempts: Mutex<HashMap<u64, u32>>,
    sent: Mutex<Vec<u64>>,
    unparseable: Mutex<u64>,
    /// Sends without an answer yet, and the most there ever were.
    in_flight: Mutex<(usize, usize)>,
}

impl ScriptSink {
    fn new(delay: Duration, flaky: u32) -> Self {
        Self(Arc::new(SinkState {
            delay,
            flaky,
            ..SinkState::default()
        }))
    }

    fn sent(&self) -> Vec<u64> {
        self.0.sent.lock().clone()
    }

    fn attempts(&self, n: u64) -> u32 {
        self.0.attempts.lock().get(&n).copied().unwrap_or(0)
    }

    fn most_in_flight(&self) -> usize {
        self.0.in_flight.lock().1
    }
}

impl EventSink for ScriptSink {
    fn send(&self, raw: Bytes) -> BoxFuture<'static, Outcome> {
        let event: Value = serde_json::from_slice(&raw).unwrap_or_default();
        let n = event["n"].as_u64().unwrap_or(u64::MAX);
        let state = self.0.clone();
        let attempt = {
            let mut attempts = state.attempts.lock();
            let a = attempts.entry(n).or_default();
            *a += 1;
            *a
        };
        let outcome = match event["mark"].as_str().unwrap_or("ok") {
            "late" => Outcome::Dropped(DropReason::OutsideWindow),
            "bad" => Outcome::Dropped(DropReason::Unparseable),
            "flaky" if attempt <= state.flaky => Outcome::failed(SendError::Push {
                target: "test".into(),
                message: format!("attempt {attempt} fails on purpose"),
            }),
            "fatal" => Outcome::failed(SendError::Other("refused for good".into())),
            "stubborn" if attempt <= 2 => Outcome::failed(SendError::Push {
                target: "test".into(),
                message: format!("attempt {attempt} fails on purpose"),
            }),
            "stubborn" => Outcome::failed(SendError::Other("refused for good".into())),
            _ => Outcome::Sent,
        };
        {
            let mut f = state.in_flight.lock();
            f.0 += 1;
            f.1 = f.1.max(f.0);
        }
        Box::pin(async move {
            tokio::time::sleep(state.delay).await;
            state.in_flight.lock().0 -= 1;
            if matches!(outcome, Outcome::Sent) {
                state.sent.lock().push(n);
            }
            outcome
        })
    }

    fn drop_unparseable(&self, count: u64) {
        *self.0.unparseable.lock() += count;
    }
}

fn record(partition: i32, offset: i64, n: u64, mark: &str) -> SourceRecord {
    SourceRecord {
        partition: PartitionId::new("wiki", partition),
        offset,
        payload: Some(Bytes::from(json!({"n": n, "mark": mark}).to_string())),
    }
}

/// Records `(partition, offset, mark)`, each carrying its index as `n`.
fn records(list: &[(i32, i64, &str)]) -> Vec<SourceRecord> {
    let n = 0..;
    list.iter()
        .zip(n)
        .map(|(&(partition, offset, mark), n)| record(partition, offset, n, mark))
        .collect()
}

fn raw(partition: i32, offset: i64, payload: Option<&str>) -> SourceRecord {
    SourceRecord {
        partition: PartitionId::new("wiki", partition),
        offset,
        payload: payload.map(|p| Bytes::from(p.to_string())),
    }
}

fn options() -> DriverOptions {
    DriverOptions {
        commit_period: Duration::from_millis(20),
        max_message_bytes: 100,
        retry: crate::retry::RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_attempts: None,
            period: None,
        },
        ..DriverOptions::default()
    }
}

fn driver(
    source: &FakeSource,
    sink: &ScriptSink,
    report: ReportFlags,
    options: DriverOptions,
) -> SourceDriver<FakeSource> {
    let route = Route {
        sink: Arc::new(sink.clone()),
        report,
    };
    let metrics = SourceMetrics::register(&Metrics::new(), "test");
    SourceDriver::new(
        source.clone(),
        Arc::new(SingleRoute(route)),
        &metrics,
        options,
        0,
    )
}

/// Stops gracefully once `sink` has sent `n` events.
async fn when_sent(sink: ScriptSink, n: usize) -> Stop {
    while sink.sent().len() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Stop::Graceful
}

fn assert_balanced(t: &Tally, received: u64) {
    assert_eq!(t.received, received, "{t:?}");
    assert_eq!(
        t.received,
        t.sent + t.dropped_total() + t.failed,
        "every record received has one final outcome: {t:?}"
    );
}

fn at(partition: i32, offset: i64) -> Position {
    Position {
        partition: PartitionId::new("wiki", partition),
        offset,
    }
}

#[tokio::test(start_paused = true)]
async fn every_record_is_accounted_for_and_committed_after_its_outcome() {
    let source = FakeSource::new(
        vec![
            record(0, 10, 0, "ok"),
            record(1, 3, 1, "late"),
            record(0, 11, 2, "bad"),
            raw(0, 12, Some("not json")),
            raw(1, 4, None),
            raw(1, 5, Some(&format!("{{\"pad\": \"{}\"}}", "x".repeat(200)))),
            record(0, 14, 3, "flaky"),
            record(1, 6, 4, "ok"),
        ],
        true,
    );
    let sink = ScriptSink::new(Duration::from_millis(3), 2);
    let (report, result) = driver(&source, &sink, ReportFlags::default(), options())
        .run(std::future::pending())
        .await;
    result.unwrap();
    let t = report.tally;
    assert_balanced(&t, 8);
    assert_eq!((t.sent, t.failed), (3, 0));
    assert_eq!(t.dropped(DropReason::OutsideWindow), 1);
    assert_eq!(
        t.dropped(DropReason::Unparseable),
        4,
        "bad, not json, none, too large"
    );
    assert_eq!(report.retries, 2, "flaky failed twice, then went through");
    assert_eq!(
        *sink.0.unparseable.lock(),
        3,
        "the ones never sent are counted by the sink"
    );
    let committed = source.committed();
    assert_eq!(committed[&PartitionId::new("wiki", 0)], 15);
    assert_eq!(committed[&PartitionId::new("wiki", 1)], 7);
    let s = source.script.lock();
    assert_eq!(s.events.last(), Some(&"close"));
    assert!(!s.cancelled, "the source ended: no next() was left waiting");
}

#[tokio::test(start_paused = true)]
async fn a_failing_record_holds_its_partition_back_until_its_retry_succeeds() {
    let list = [(0, 0, "ok"), (0, 1, "flaky"), (0, 2, "ok"), (1, 0, "ok")];
    let source = FakeSource::new(records(&list), false);
    let sink = ScriptSink::new(Duration::from_millis(1), 6);
    let mut opts = options();
    opts.retry.initial_backoff = Duration::from_millis(40);
    opts.retry.max_backoff = Duration::from_millis(40);
    let stop = when_sent(sink.clone(), 4);
    let (report, result) = driver(&source, &sink, ReportFlags::default(), opts)
        .run(stop)
        .await;
    result.unwrap();
    let commits = source.commits();
    assert!(
        commits.len() >= 2,
        "periodic commits while it failed: {commits:?}"
    );
    let first = &commits[0];
    assert!(
        first.contains(&at(0, 1)) && first.contains(&at(1, 1)),
        "{first:?}"
    );
    for commit in &commits[..commits.len() - 1] {
        assert!(commit
            .iter()
            .all(|p| p.partition.partition != 0 || p.offset <= 1));
    }
    assert_eq!(source.committed()[&PartitionId::new("wiki", 0)], 3);
    assert_eq!(report.retries, 6);
    assert_balanced(&report.tally, 4);
}

#[tokio::test(start_paused = true)]
async fn a_record_that_cannot_succeed_stops_the_driver_before_it() {
    // `stubborn` fails twice with a retriable error, then for good.
    for (mark, attempts) in [("fatal", 1), ("flaky", 3), ("stubborn", 3)] {
        let source = FakeSource::new(records(&[(0, 0, "ok"), (0, 1, mark), (0, 2, "ok")]), false);
        let sink = ScriptSink::new(Duration::from_millis(1), 10);
        let mut opts = options();
        opts.retry.max_attempts = Some(3);
        let (report, result) = driver(&source, &sink, ReportFlags::default(), opts)
            .run(std::future::pending())
            .await;
        match result {
            Err(DriverError::SendFailed {
                offset,
                attempts: a,
                ..
            }) => assert_eq!((offset, a), (1, attempts), "{mark}"),
            other => panic!("{mark}: {other:?}"),
        }
        assert_eq!(
            source.committed()[&PartitionId::new("wiki", 0)],
            1,
            "{mark}"
        );
        assert_balanced(&report.tally, 3);
        assert_eq!(report.tally.failed, 1, "{mark}");
    }
}

#[tokio::test(start_paused = true)]
async fn reported_drops_stop_the_driver_uncommitted() {
    for (mark, flags, property) in [
        (
            "late",
            ReportFlags {
                drops: true,
                parse: false,
            },
            "reportDropsAsExceptions",
        ),
        (
            "bad",
            ReportFlags {
                drops: false,
                parse: true,
            },
            "reportParseExceptions",
        ),
    ] {
        let source = FakeSource::new(records(&[(0, 0, "ok"), (0, 1, mark), (0, 2, "ok")]), false);
        let sink = ScriptSink::new(Duration::from_millis(1), 0);
        let (report, result) = driver(&source, &sink, flags, options())
            .run(std::future::pending())
            .await;
        match result {
            Err(DriverError::ReportedDrop {
                offset,
                property: p,
                ..
            }) => assert_eq!((offset, p), (1, property)),
            other => panic!("{mark}: {other:?}"),
        }
        assert!(source.committed()[&PartitionId::new("wiki", 0)] <= 1);
        assert_balanced(&report.tally, report.tally.received);
        assert_eq!(report.tally.dropped_total(), 1);
    }
    // Flags off: the same drops are committed.
    let source = FakeSource::new(vec![record(0, 0, 0, "late"), record(0, 1, 1, "bad")], true);
    let sink = ScriptSink::new(Duration::from_millis(1), 0);
    let (report, result) = driver(&source, &sink, ReportFlags::default(), options())
        .run(std::future::pending())
        .await;
    result.unwrap();
    assert_eq!(source.committed()[&PartitionId::new("wiki", 0)], 2);
    assert_balanced(&report.tally, 2);
}

#[tokio::test(start_paused = true)]
async fn an_idle_source_is_never_cancelled_and_stops_with_a_final_commit() {
    let source = FakeSource::new(vec![record(0, 0, 0, "ok"), record(0, 1, 1, "ok")], false);
    let sink = ScriptSink::new(Duration::from_millis(1), 0);
    let run = driver(&source, &sink, ReportFlags::default(), options()).run(async {
        // Idle long enough for many commit ticks while a next() waits.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Stop::Graceful
    });
    let (report, result) = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stops while its next() waits");
    result.unwrap();
    assert_balanced(&report.tally, 2);
    assert_eq!(source.committed()[&PartitionId::new("wiki", 0)], 2);
    assert_eq!(
        source
            .script
            .lock()
            .events
            .rsplit(|e| *e == "commit")
            .next(),
        Some(&["cancel", "close"][..]),
        "the waiting next() goes only after the last commit, then the source is closed"
    );

    // More records while the driver runs come through the same waiting next().
    let source = FakeSource::new(vec![record(0, 0, 0, "ok")], false);
    let sink2 = ScriptSink::new(Duration::from_millis(1), 0);
    let feeder = {
        let source = source.clone();
        async move {
            for n in 1..5 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                source.push(Ok(record(0, n, n as u64, "ok")));
            }
        }
    };
    let run =
        driver(&source, &sink2, ReportFlags::default(), options()).run(when_sent(sink2.clone(), 5));
    let ((report, result), ()) = tokio::join!(run, feeder);
    result.unwrap();
    assert_balanced(&report.tally, 5);
    assert_eq!(source.committed()[&PartitionId::new("wiki", 0)], 5);
    let events = source.script.lock().events.clone();
    assert_eq!(
        events[events.len() - 2..],
        ["cancel", "close"],
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn in_flight_records_are_bounded_with_or_without_pausing() {
    for pausable in [true, false] {
        let records: Vec<SourceRecord> = (0..200)
            .map(|n| record(n as i32 % 2, n / 2, n as u64, "ok"))
            .collect();
        let source = FakeSource::new(records, true);
        source.script.lock().pausable = pausable;
        let sink = ScriptSink::new(Duration::from_millis(30), 0);
        let opts = DriverOptions {
            max_in_flight: 10,
            pause_after: Duration::from_millis(5),
            ..options()
        };
        let (report, result) = driver(&source, &sink, ReportFlags::default(), opts)
            .run(std::future::pending())
            .await;
        result.unwrap();
        assert_balanced(&report.tally, 200);
        assert_eq!(report.tally.sent, 200);
        assert!(
            sink.most_in_flight() <= 10,
            "{} in flight",
            sink.most_in_flight()
        );
        let s = source.script.lock();
        assert_eq!(s.pauses > 0, pausable, "pauses: {}", s.pauses);
        assert!(!s.paused, "resumed at the end");
    }
}

#[tokio::test(start_paused = true)]
async fn revoked_partitions_commit_their_done_offsets_and_forget_the_rest() {
    let source = FakeSource::new(
        records(&[(0, 0, "ok"), (1, 0, "ok"), (1, 1, "flaky")]),
        false,
    );
    let sink = ScriptSink::new(Duration::from_millis(5), 100);
    let feeder = {
        let source = source.clone();
        let sink = sink.clone();
        async move {
            // Revoke partition 1 while its record 1 is being retried.
            while sink.attempts(2) < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            source.script.lock().revoke = Some(vec![PartitionId::new("wiki", 1)]);
            source.push(Ok(record(0, 1, 3, "ok")));
        }
    };
    let run =
        driver(&source, &sink, ReportFlags::default(), options()).run(when_sent(sink.clone(), 3));
    let ((report, result), ()) = tokio::join!(run, feeder);
    result.unwrap();
    let committed = source.committed();
    assert_eq!(committed[&PartitionId::new("wiki", 0)], 2);
    assert_eq!(
        committed.get(&PartitionId::new("wiki", 1)),
        Some(&1),
        "only its done offset"
    );
    assert_balanced(&report.tally, 4);
    assert_eq!(
        report.tally.failed, 1,
        "the retried record of the revoked partition"
    );
}

#[tokio::test(start_paused = true)]
async fn abort_commits_nothing_more_and_counts_what_it_leaves() {
    let source = FakeSource::new(
        (0..5).map(|n| record(0, n, n as u64, "ok")).collect(),
        false,
    );
    let sink = ScriptSink::new(Duration::from_secs(3600), 0);
    let run = driver(&source, &sink, ReportFlags::default(), options()).run(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Stop::Abort
    });
    let (report, result) = run.await;
    result.unwrap();
    assert!(source.commits().is_empty());
    assert_balanced(&report.tally, 5);
    assert_eq!(report.tally.failed, 5, "abandoned without an outcome");
    assert!(source.script.lock().closed);
}

#[tokio::test(start_paused = true)]
async fn read_route_and_commit_errors_stop_the_driver() {
    let source = FakeSource::new(vec![record(0, 0, 0, "ok")], false);
    source.push(Err(SourceError::new("connection reset")));
    let sink = ScriptSink::new(Duration::from_millis(1), 0);
    let (report, result) = driver(&source, &sink, ReportFlags::default(), options())
        .run(std::future::pending())
        .await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "reading failed: connection reset"
    );
    assert_eq!(source.committed()[&PartitionId::new("wiki", 0)], 1);
    assert_balanced(&report.tally, 1);

    // A periodic commit that fails is tried again; a final one that fails is an error.
    let source = FakeSource::new(vec![record(0, 0, 0, "ok")], false);
    source.script.lock().failing_commits = 1;
    let sink2 = ScriptSink::new(Duration::from_millis(1), 0);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Stop::Graceful
    };
    let (_, result) = driver(&source, &sink2, ReportFlags::default(), options())
        .run(stop)
        .await;
    result.unwrap();
    assert_eq!(source.committed()[&PartitionId::new("wiki", 0)], 1);
    let source = FakeSource::new(vec![record(0, 0, 0, "ok")], true);
    source.script.lock().failing_commits = 100;
    let (report, result) = driver(&source, &sink2, ReportFlags::default(), options())
        .run(std::future::pending())
        .await;
    assert!(matches!(result, Err(DriverError::Commit(_))), "{result:?}");
    assert_balanced(&report.tally, 1);

    #[derive(Debug)]
    struct Nowhere;
    #[async_trait]
    impl Router for Nowhere {
        async fn route(&self, topic: &str) -> Result<Route, String> {
            Err(format!("no dataSource reads {topic}"))
        }
        async fn flush(&self) {}
    }
    let source = FakeSource::new(vec![record(0, 0, 0, "ok")], false);
    let metrics = SourceMetrics::register(&Metrics::new(), "test");
    let (report, result) =
        SourceDriver::new(source.clone(), Arc::new(Nowhere), &metrics, options(), 0)
            .run(std::future::pending())
            .await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "topic wiki: no dataSource reads wiki"
    );
    assert!(source.commits().is_empty());
    assert_balanced(&report.tally, 1);
}

#[tokio::test(start_paused = true)]
async fn a_group_stops_together_when_one_fails_or_when_asked() {
    let group_of = |sources: &[FakeSource]| {
        let mut group = SourceGroup::new();
        for source in sources {
            let sink = ScriptSink::new(Duration::from_millis(1), 0);
            group.spawn(driver(source, &sink, ReportFlags::default(), options()));
        }
        group
    };
    let failing = FakeSource::new(vec![record(0, 0, 0, "ok")], false);
    failing.push(Err(SourceError::new("broker gone")));
    let idle = FakeSource::new(vec![record(0, 0, 1, "ok"), record(0, 1, 2, "ok")], false);
    let finished = group_of(&[idle.clone(), failing])
        .run_until(std::future::pending())
        .await;
    assert_eq!(
        first_error(&finished).map(ToString::to_string).as_deref(),
        Some("reading failed: broker gone")
    );
    assert!(finished[0].1.is_ok(), "the other one stopped gracefully");
    assert_balanced(&finished[0].0.tally, 2);
    assert_eq!(idle.committed()[&PartitionId::new("wiki", 0)], 2);

    let sources = [
        FakeSource::new(vec![record(0, 0, 0, "ok")], false),
        FakeSource::new(vec![record(1, 0, 1, "ok")], true),
    ];
    let shutdown = tokio::time::sleep(Duration::from_millis(100));
    let finished = group_of(&sources).run_until(shutdown).await;
    assert!(first_error(&finished).is_none(), "{finished:?}");
    assert_eq!(
        finished
            .iter()
            .map(|(r, _)| r.tally.sent)
            .collect::<Vec<_>>(),
        [1, 1]
    );
    assert!(sources.iter().all(|s| s.script.lock().closed));

    // Every source ends: the group is done without a shutdown.
    let ended = [
        FakeSource::new(vec![record(0, 0, 0, "ok")], true),
        FakeSource::new(vec![record(1, 0, 1, "ok")], true),
    ];
    let finished = group_of(&ended).run_until(std::future::pending()).await;
    assert!(first_error(&finished).is_none(), "{finished:?}");

    let mut group = group_of(&sources[..1]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let finished = tokio::time::timeout(Duration::from_secs(1), group.failed()).await;
    assert!(finished.is_err(), "nothing failed: failed() waits");
    let finished = group.stop(Stop::Abort).await;
    assert!(finished[0].1.is_ok());
}

#[test]
fn object_sniffing_and_the_commit_line() {
    assert!(looks_like_object(b"{\"a\":1}"));
    assert!(looks_like_object(b"  \n{"));
    assert!(!looks_like_object(b"[1,2]"));
    assert!(!looks_like_object(b"hello"));
    assert!(!looks_like_object(b""));
    let mut t = Tally {
        received: 3,
        sent: 1,
        ..Tally::default()
    };
    t.dropped[DropReason::ALL
        .iter()
        .position(|r| *r == DropReason::Unparseable)
        .unwrap()] = 2;
    let counts = [(Arc::<str>::from("t"), t)].into_iter().collect();
    assert_eq!(
        format_counts(&counts),
        "{t={receivedCount=3, sentCount=1, droppedCount=0, unparseableCount=2, failedCount=0}}"
    );
}

/// Checks the order rule of `send_ordered`: it records every wave and fails, on their first
/// attempt, the records whose `mark` is `flaky`, together with everything after them in the
/// wave (as the realtime beam holds back what follows a failed push).
#[derive(Debug, Clone, Default)]
struct OrderSink(Arc<OrderState>);

#[derive(Debug, Default)]
struct OrderState {
    /// Each wave: its partition and offsets, in the order handed over.
    waves: Mutex<Vec<(PartitionId, Vec<i64>)>>,
    /// Offsets taken, per partition, in the order they were taken.
    taken: Mutex<HashMap<PartitionId, Vec<i64>>>,
    /// Waves out per partition now, and the most there ever were.
    out: Mutex<(HashMap<PartitionId, usize>, usize)>,
    attempts: Mutex<HashMap<(PartitionId, i64), u32>>,
}

impl EventSink for OrderSink {
    fn send(&self, _raw: Bytes) -> BoxFuture<'static, Outcome> {
        unreachable!("the driver hands records over in waves")
    }

    fn send_ordered(&self, records: Vec<(Bytes, Origin)>) -> BoxFuture<'static, Vec<Outcome>> {
        let state = self.0.clone();
        Box::pin(async move {
            let partition = records[0].1.ownership().partition().clone();
            let offsets: Vec<i64> = records.iter().map(|(_, o)| o.offset()).collect();
            assert!(
                records
                    .iter()
                    .all(|(_, o)| o.ownership().partition() == &partition),
                "one partition per wave: {records:?}"
            );
            state
                .waves
                .lock()
                .push((partition.clone(), offsets.clone()));
            {
                let mut out = state.out.lock();
                let n = out.0.entry(partition.clone()).or_default();
                *n += 1;
                let n = *n;
                out.1 = out.1.max(n);
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
            let mut failing = false;
            let mut outcomes = Vec::new();
            for (raw, origin) in &records {
                let event: Value = serde_json::from_slice(raw).unwrap_or_default();
                let attempt = {
                    let mut attempts = state.attempts.lock();
                    let a = attempts
                        .entry((partition.clone(), origin.offset()))
                        .or_default();
                    *a += 1;
                    *a
                };
                failing |= event["mark"] == "flaky" && attempt == 1;
                outcomes.push(if failing {
                    Outcome::failed(SendError::Push {
                        target: "test".into(),
                        message: "fails on purpose".into(),
                    })
                } else {
                    state
                        .taken
                        .lock()
                        .entry(partition.clone())
                        .or_default()
                        .push(origin.offset());
                    Outcome::Sent
                });
            }
            *state.out.lock().0.entry(partition).or_default() -= 1;
            outcomes
        })
    }

    fn drop_unparseable(&self, _count: u64) {}
}

#[tokio::test(start_paused = true)]
async fn waves_keep_each_partition_in_offset_order_and_retry_failures_first() {
    let mut list = Vec::new();
    for offset in 0..300i64 {
        for partition in 0..3 {
            let mark = if offset % 37 == 5 { "flaky" } else { "ok" };
            list.push((partition, offset, mark));
        }
    }
    let source = FakeSource::new(records(&list), true);
    let sink = OrderSink::default();
    let route = Route {
        sink: Arc::new(sink.clone()),
        report: ReportFlags::default(),
    };
    let metrics = SourceMetrics::register(&Metrics::new(), "test");
    let opts = DriverOptions {
        max_wave: 16,
        ..options()
    };
    let (report, result) = SourceDriver::new(
        source.clone(),
        Arc::new(SingleRoute(route)),
        &metrics,
        opts,
        0,
    )
    .run(std::future::pending())
    .await;
    result.unwrap();
    assert_balanced(&report.tally, 900);
    assert_eq!(report.tally.sent, 900);
    assert_eq!(
        sink.0.out.lock().1,
        1,
        "one wave out per partition at a time"
    );
    let waves = sink.0.waves.lock().clone();
    assert!(waves.iter().all(|(_, o)| o.len() <= 16));
    assert!(
        waves.iter().all(|(_, o)| o.windows(2).all(|w| w[0] < w[1])),
        "each wave in offset order"
    );
    for partition in 0..3 {
        let id = PartitionId::new("wiki", partition);
        let taken = sink.0.taken.lock()[&id].clone();
        assert_eq!(
            taken,
            (0..300).collect::<Vec<_>>(),
            "every offset taken once, none after a later one: {id}"
        );
        assert_eq!(source.committed()[&id], 300);
    }
    // Each failure sent its wave's rest again, first, in the next wave of that partition.
    let retried = waves
        .iter()
        .filter(|(_, o)| o.first().is_some_and(|f| f % 37 == 5))
        .count();
    assert!(
        retried >= 3 * 8,
        "{retried} waves started with a retried record"
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_while_a_record_waits_for_its_retry_sends_nothing_after_it() {
    let source = FakeSource::new(
        records(&[(0, 0, "ok"), (0, 1, "flaky"), (1, 0, "ok")]),
        false,
    );
    let sink = ScriptSink::new(Duration::from_millis(1), 1000);
    let feeder = {
        let (source, sink) = (source.clone(), sink.clone());
        async move {
            while sink.attempts(1) < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Read after the failing record, while it waits for its next attempt.
            source.push(Ok(record(0, 2, 3, "ok")));
            source.push(Ok(record(1, 1, 4, "ok")));
        }
    };
    let stop = {
        let sink = sink.clone();
        async move {
            // Just after the feeder, while offset 1 waits (100 ms or more) for its third try.
            while sink.attempts(1) < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            Stop::Graceful
        }
    };
    let mut opts = options();
    opts.retry.initial_backoff = Duration::from_millis(100);
    opts.retry.max_backoff = Duration::from_secs(60);
    let run = driver(&source, &sink, ReportFlags::default(), opts).run(stop);
    let ((report, result), ()) = tokio::join!(run, feeder);
    result.unwrap();
    assert!(
        !sink.sent().contains(&3),
        "offset 2 never overtook the failing offset 1: {:?}",
        sink.sent()
    );
    assert!(sink.sent().contains(&4), "the other partition went on");
    let committed = source.committed();
    assert_eq!(committed[&PartitionId::new("wiki", 0)], 1);
    assert_eq!(committed[&PartitionId::new("wiki", 1)], 2);
    assert_balanced(&report.tally, 5);
    assert_eq!(
        report.tally.failed, 2,
        "the failing record and the one after it"
    );
}

#[tokio::test]
async fn a_pipeline_sends_a_wave_as_one_batch_with_its_origins() {
    use crate::beam::testing::MemoryBeam;
    use crate::pipeline::DataSourcePipeline;
    let spec: crate::spec::IngestionSpec = serde_json::from_value(json!({
        "dataSchema": {
            "dataSource": "wiki",
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "timestamp", "format": "millis"},
                "dimensionsSpec": {"dimensions": []}}},
            "metricsSpec": [],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
        },
        "tuningConfig": {"type": "realtime"}
    }))
    .unwrap();
    let memory = MemoryBeam::new();
    let metrics = Metrics::new();
    let pipeline = DataSourcePipeline::with_beam(
        "wiki",
        &spec,
        Arc::new(memory.clone()),
        crate::beam::TranquilizerConfig::builder()
            .max_batch_size(2)
            .build()
            .unwrap(),
        &metrics,
    )
    .unwrap();
    let hold = Ownership::new("", PartitionId::new("wiki", 0));
    let records: Vec<(Bytes, Origin)> = (10..15)
        .map(|o| {
            let raw = if o == 12 {
                Bytes::from_static(b"{\"no\":\"time\"}")
            } else {
                Bytes::from(format!(r#"{{"timestamp":{o}}}"#))
            };
            (raw, Origin::new(hold.clone(), o))
        })
        .collect();
    let sink: Arc<dyn EventSink> = Arc::new(pipeline.clone());
    let outcomes = sink.send_ordered(records).await;
    let kinds: Vec<bool> = outcomes.iter().map(Outcome::is_sent).collect();
    assert_eq!(kinds, [true, true, false, true, true]);
    assert!(matches!(
        outcomes[2],
        Outcome::Dropped(DropReason::Unparseable)
    ));
    assert_eq!(
        memory.batch_sizes(),
        [4],
        "one batch, larger than maxBatchSize"
    );
    let offsets: Vec<i64> = memory
        .events()
        .iter()
        .map(|e| e.origin().map(Origin::offset).unwrap())
        .collect();
    assert_eq!(offsets, [10, 11, 13, 14]);
    let tally = pipeline.metrics().snapshot();
    assert_eq!((tally.received, tally.sent), (5, 4));
    assert!(tally.is_balanced());
}
