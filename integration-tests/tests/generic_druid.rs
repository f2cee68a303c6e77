//! connector-generic against druid-local: a `BeamSink` of typed events and an NDJSON file,
//! every event accounted for and counted by Druid.

use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use futures::{SinkExt, StreamExt};
use integration_tests::druid::wait_for_count;
use serde::Serialize;
use tranquility::beam::DropReason;
use tranquility_examples::local::{local_pipelines, sample_config};
use tranquility_generic::{drive_ndjson, BeamSink, Json};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Serialize)]
struct Sample {
    timestamp: String,
    host: String,
    metric: &'static str,
    value: f64,
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beam_sink_of_typed_events_lands_in_druid() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let pipelines = local_pipelines(&sample_config("server.json").unwrap(), &druid.url()).unwrap();
    let pipeline = pipelines.get("metrics").unwrap().clone();
    let (mut sink, outcomes) = BeamSink::<usize>::new(pipeline.clone());
    let n = 300;
    let producer = async move {
        for i in 0..n {
            let sample = Sample {
                timestamp: now_iso(),
                host: format!("host-{i}"),
                metric: "cpu",
                value: i as f64,
            };
            sink.feed((i, Json(sample))).await.unwrap();
        }
        SinkExt::<(usize, Json<Sample>)>::close(&mut sink)
            .await
            .unwrap();
    };
    let (_, got) = tokio::join!(producer, outcomes.collect::<Vec<_>>());
    let tags: Vec<usize> = got.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, (0..n).collect::<Vec<_>>());
    let not_sent: Vec<_> = got.iter().filter(|(_, o)| !o.is_sent()).take(3).collect();
    assert!(not_sent.is_empty(), "{not_sent:?}");

    let counted = wait_for_count(&druid.url(), "metrics", "count", n as i64, WAIT).await;
    assert_eq!(counted, n as i64);
    assert!(pipeline.metrics().snapshot().is_balanced());
    pipelines.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ndjson_file_lands_in_druid_and_bad_lines_are_counted() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let pipelines = local_pipelines(&sample_config("server.json").unwrap(), &druid.url()).unwrap();
    let pipeline = pipelines.get("metrics").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.ndjson");
    let mut text = String::new();
    for i in 0..250 {
        text.push_str(&format!(
            "{{\"timestamp\":\"{}\",\"host\":\"h{i}\",\"metric\":\"mem\",\"value\":{i}}}\n",
            now_iso()
        ));
        if i == 100 {
            text.push_str("this line is not JSON\n\n");
        }
    }
    std::fs::write(&path, text).unwrap();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let report = drive_ndjson(file, pipeline).await.unwrap();
    assert_eq!(report.tally.received, 251);
    assert_eq!(report.tally.sent, 250);
    assert_eq!(report.tally.dropped(DropReason::Unparseable), 1);
    let counted = wait_for_count(&druid.url(), "metrics", "count", 250, WAIT).await;
    assert_eq!(counted, 250);
    pipelines.close().await;
    druid.shutdown().await;
}
