//! The adapters on test beams: tags and outcomes, counting, back-pressure, the driver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tranquility::beam::testing::{FailableBeam, MemoryBeam};
use tranquility::beam::{Beam, DropReason, Outcome, TranquilizerConfig};
use tranquility::metrics::Metrics;
use tranquility::pipeline::DataSourcePipeline;
use tranquility::spec::IngestionSpec;

use crate::{drive, drive_ndjson, BeamSink, DriveError, Json, SinkError};

fn pipeline(beam: impl Beam + 'static, config: TranquilizerConfig) -> DataSourcePipeline {
    let spec: IngestionSpec = serde_json::from_value(json!({
        "dataSchema": {
            "dataSource": "clicks",
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "timestamp", "format": "auto"},
                "dimensionsSpec": {"dimensions": []}}},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
        },
        "tuningConfig": {"type": "realtime"}
    }))
    .unwrap();
    DataSourcePipeline::with_beam("clicks", &spec, Arc::new(beam), config, &Metrics::new()).unwrap()
}

fn linger(millis: i64) -> TranquilizerConfig {
    TranquilizerConfig::builder()
        .linger_millis(millis)
        .build()
        .unwrap()
}

#[derive(serde::Serialize)]
struct Click {
    timestamp: i64,
    page: &'static str,
    mark: Option<&'static str>,
}

#[tokio::test]
async fn every_event_gets_its_tagged_outcome_in_order() {
    let beam = FailableBeam::by_mark();
    let pipeline = pipeline(beam.clone(), linger(5));
    let (mut sink, outcomes) = BeamSink::<&'static str>::new(pipeline.clone());
    let typed = |mark| {
        Json(Click {
            timestamp: 1_000,
            page: "/",
            mark,
        })
    };
    sink.send(("typed", typed(None))).await.unwrap();
    sink.send(("failing", typed(Some("fail")))).await.unwrap();
    sink.send(("dropping", typed(Some("drop")))).await.unwrap();
    sink.send(("raw", Bytes::from_static(br#"{"timestamp":2000}"#)))
        .await
        .unwrap();
    sink.send(("no time", json!({"page": "/"}))).await.unwrap();
    sink.send(("not an object", "[1,2]")).await.unwrap();
    let unserializable: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    sink.send(("unserializable", Json(unserializable)))
        .await
        .unwrap();
    SinkExt::<(&str, Bytes)>::close(&mut sink).await.unwrap();

    let got: Vec<(&str, Outcome)> = outcomes.collect().await;
    let tags: Vec<&str> = got.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        tags,
        [
            "typed",
            "failing",
            "dropping",
            "raw",
            "no time",
            "not an object",
            "unserializable"
        ]
    );
    assert!(got[0].1.is_sent() && got[3].1.is_sent());
    assert!(got[1].1.is_failed());
    assert!(matches!(
        got[2].1,
        Outcome::Dropped(DropReason::OutsideWindow)
    ));
    for (tag, outcome) in &got[4..] {
        assert!(
            matches!(outcome, Outcome::Dropped(DropReason::Unparseable)),
            "{tag}: {outcome:?}"
        );
    }
    assert_eq!(beam.sent().len(), 2);
    let tally = pipeline.metrics().snapshot();
    assert_eq!(tally.received, 7);
    assert!(tally.is_balanced());

    let refused = sink.send(("late", "{}")).await;
    assert!(matches!(refused, Err(SinkError::Closed)), "{refused:?}");
}

#[tokio::test]
async fn a_full_pipeline_holds_the_producer_back() {
    let beam = FailableBeam::new();
    beam.hold();
    let config = TranquilizerConfig::builder()
        .max_batch_size(1)
        .max_pending_batches(1)
        .linger_millis(0)
        .build()
        .unwrap();
    let pipeline = pipeline(beam.clone(), config);
    let (mut sink, mut outcomes) = BeamSink::<u64>::new(pipeline.clone());
    // One batch in flight (held), one event buffered: the third hand-in waits for room.
    for n in 0..3u64 {
        sink.feed((n, json!({"timestamp": n}))).await.unwrap();
    }
    let fourth = tokio::time::timeout(
        Duration::from_millis(200),
        sink.feed((3, json!({"timestamp": 3}))),
    )
    .await;
    assert!(fourth.is_err(), "the sink took an event while full");
    assert_eq!(beam.in_flight(), 1);

    beam.release();
    sink.feed((3, json!({"timestamp": 3}))).await.unwrap();
    SinkExt::<(u64, Bytes)>::close(&mut sink).await.unwrap();
    let mut seen = Vec::new();
    while let Some((n, outcome)) = outcomes.next().await {
        assert!(outcome.is_sent(), "{n}: {outcome:?}");
        seen.push(n);
    }
    assert_eq!(seen, [0, 1, 2, 3]);
    assert_eq!(beam.max_in_flight(), 1);
}

#[tokio::test]
async fn dropping_the_outcomes_still_counts_every_event() {
    let memory = MemoryBeam::new();
    let pipeline = pipeline(memory.clone(), linger(20));
    let (mut sink, outcomes) = BeamSink::<u64>::new(pipeline.clone());
    sink.feed((0, "{\"timestamp\":1}")).await.unwrap();
    drop(outcomes);
    for n in 1..50u64 {
        sink.feed((n, json!({"timestamp": n}))).await.unwrap();
    }
    SinkExt::<(u64, Bytes)>::close(&mut sink).await.unwrap();
    let metrics = pipeline.metrics().clone();
    tokio::time::timeout(Duration::from_secs(5), async {
        while metrics.snapshot().sent < 50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every outcome counted");
    assert_eq!(memory.events().len(), 50);
    assert!(metrics.snapshot().is_balanced());
    assert_eq!(metrics.pending(), 0);
}

#[tokio::test]
async fn drive_reports_counts_and_the_first_failure() {
    let beam = FailableBeam::by_mark();
    let pipeline = pipeline(beam.clone(), linger(5));
    let events = futures::stream::iter(0..100u64).map(|n| {
        let mark = match n {
            17 | 40 => "fail",
            n if n % 10 == 0 => "drop",
            _ => "ok",
        };
        json!({"timestamp": n, "mark": mark})
    });
    let report = drive(events, &pipeline).await.unwrap();
    assert_eq!(report.tally.received, 100);
    assert_eq!(report.tally.failed, 2);
    assert_eq!(report.tally.dropped(DropReason::OutsideWindow), 9);
    assert_eq!(report.tally.sent, 89);
    assert_eq!(report.first_failure.as_ref().map(|(seq, _)| *seq), Some(17));
    assert_eq!(pipeline.metrics().snapshot(), report.tally);
}

#[tokio::test]
async fn drive_ndjson_counts_bad_lines_and_stops_on_read_errors() {
    let memory = MemoryBeam::new();
    let pipeline = pipeline(memory.clone(), linger(5));
    let long = format!("{{\"timestamp\":1,\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let input = format!("{{\"timestamp\":1}}\n\nnot json\n{long}\n{{\"timestamp\":2}}");
    let report = drive_ndjson(input.as_bytes(), &pipeline).await.unwrap();
    assert_eq!(report.tally.received, 4);
    assert_eq!(report.tally.sent, 2);
    assert_eq!(report.tally.dropped(DropReason::Unparseable), 2);
    assert_eq!(memory.events().len(), 2);

    let failing = tokio_util::io::StreamReader::new(futures::stream::iter(vec![
        Ok(Bytes::from_static(b"{\"timestamp\":3}\n")),
        Err(std::io::Error::other("disk on fire")),
    ]));
    match drive_ndjson(failing, &pipeline).await {
        Err(DriveError::Read { source, report }) => {
            assert!(source.to_string().contains("disk on fire"));
            assert_eq!(report.tally.sent, 1);
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}
