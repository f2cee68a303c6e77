//! Against a real Fluvio cluster, when `FLUVIO_ENDPOINT` names its SC (`host:port`) and the
//! crate is built with `--features fluvio-client`; otherwise the test says why it is skipped.
//!
//! ```text
//! FLUVIO_ENDPOINT=127.0.0.1:9003 cargo test -p tranquility-fluvio --features fluvio-client --test real_cluster -- --nocapture
//! ```
//!
//! It creates a fresh topic, produces records, consumes them into a pipeline over a test beam,
//! stops, and checks with a second consumer of the same name that the committed offset is
//! after the last record with an outcome.

#[cfg(not(feature = "fluvio-client"))]
#[test]
fn consumes_and_commits_against_a_real_cluster() {
    eprintln!(
        "skipped: built without the `fluvio-client` feature; run with \
         `--features fluvio-client` and FLUVIO_ENDPOINT=<sc host:port>"
    );
}

#[cfg(feature = "fluvio-client")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_and_commits_against_a_real_cluster() {
    use std::sync::Arc;
    use std::time::Duration;

    use fluvio::metadata::topic::TopicSpec;
    use fluvio::{Fluvio, FluvioClusterConfig, RecordKey};
    use serde_json::json;
    use tranquility::beam::testing::MemoryBeam;
    use tranquility::beam::TranquilizerConfig;
    use tranquility::metrics::Metrics;
    use tranquility::pipeline::DataSourcePipeline;
    use tranquility::spec::IngestionSpec;
    use tranquility_fluvio::{consume, ConsumeOptions, FluvioSource, OffsetStart, RecordSource};

    let Ok(endpoint) = std::env::var("FLUVIO_ENDPOINT") else {
        eprintln!(
            "skipped: FLUVIO_ENDPOINT is not set (the SC address of a Fluvio cluster, host:port)"
        );
        return;
    };
    let fluvio = Fluvio::connect_with_config(&FluvioClusterConfig::new(endpoint.clone()))
        .await
        .expect("connect to FLUVIO_ENDPOINT");
    let topic = format!("tranquility-test-{}", std::process::id());
    fluvio
        .admin()
        .await
        .create(topic.clone(), false, TopicSpec::new_computed(1, 1, None))
        .await
        .expect("create topic");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let producer = fluvio
        .topic_producer(topic.clone())
        .await
        .expect("producer");
    for n in 0..20 {
        let value = json!({"timestamp": 1_000 + n, "n": n}).to_string();
        producer.send(RecordKey::NULL, value).await.expect("send");
    }
    producer.flush().await.expect("flush");

    let spec: IngestionSpec = serde_json::from_value(json!({
        "dataSchema": {"dataSource": "fluvio_test",
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "timestamp", "format": "millis"},
                "dimensionsSpec": {"dimensions": []}}},
            "metricsSpec": [], "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}},
        "tuningConfig": {"type": "realtime"}
    }))
    .unwrap();
    let memory = MemoryBeam::new();
    let pipeline = DataSourcePipeline::with_beam(
        "fluvio_test",
        &spec,
        Arc::new(memory.clone()),
        TranquilizerConfig::default(),
        &Metrics::new(),
    )
    .unwrap();
    let consumer_id = format!("{topic}-consumer");
    let source = FluvioSource::connect(
        Some(&endpoint),
        &topic,
        &consumer_id,
        OffsetStart::Beginning,
    )
    .await
    .expect("consumer");
    let watch = memory.clone();
    let stop = async move {
        while watch.events().len() < 20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let options = ConsumeOptions {
        commit_period: Duration::from_millis(500),
        ..ConsumeOptions::new(topic.clone())
    };
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        consume(source, &pipeline, &options, stop),
    )
    .await
    .expect("consumed in time")
    .expect("consume");
    assert_eq!(report.tally.sent, 20);
    assert!(report.commits >= 1);

    // The same consumer name resumes after the committed records.
    producer
        .send(
            RecordKey::NULL,
            json!({"timestamp": 5_000, "n": 20}).to_string(),
        )
        .await
        .unwrap();
    producer.flush().await.unwrap();
    let mut again = FluvioSource::connect(
        Some(&endpoint),
        &topic,
        &consumer_id,
        OffsetStart::Beginning,
    )
    .await
    .expect("second consumer");
    let next = tokio::time::timeout(Duration::from_secs(30), again.next())
        .await
        .expect("a record in time")
        .expect("a record")
        .expect("no error");
    assert_eq!(next.offset, 20, "resumed at {}", next.offset);
    let _ = fluvio.admin().await.delete::<TopicSpec>(topic).await;
}
