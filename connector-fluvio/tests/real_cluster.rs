//! Against a real Fluvio cluster, when `FLUVIO_ENDPOINT` names its SC (`host:port`) and the
//! crate is built with `--features fluvio-client`; otherwise the test says why it is skipped.
//!
//! ```text
//! FLUVIO_ENDPOINT=127.0.0.1:9003 cargo test -p tranquility-fluvio --features fluvio-client --test real_cluster -- --nocapture
//! ```
//!
//! It creates a fresh topic, produces records, consumes them into a pipeline over a test beam,
//! stops once every record is answered (the topic idle, a `next()` waiting: the case that used
//! to hang on the first commit), and checks with a second consumer of the same name that the
//! committed offset is after the last record with an outcome.

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
    use tranquility::spec::{IngestionSpec, TranquilityConfig};
    use tranquility_fluvio::{run_topics, FluvioConfig, FluvioSource, RecordSource};

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
    let mut file: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/configs/fluvio.json")).unwrap();
    file["dataSources"][0]["spec"]["dataSchema"]["dataSource"] = json!("fluvio_test");
    file["dataSources"][0]["properties"]["fluvio.topic"] = json!(topic);
    file["properties"]["fluvio.endpoint"] = json!(endpoint);
    file["properties"]["fluvio.consumer.id"] = json!(consumer_id);
    file["properties"]["commit.periodMillis"] = json!("500");
    let config = TranquilityConfig::from_value(file, "fluvio.json").unwrap();
    let config = FluvioConfig::from_config(&config).unwrap();
    let watch = memory.clone();
    // Every record answered, then idle for a few commit periods while a next() waits: the
    // moment the connector used to cancel that next() and hang on its commit.
    let stop = async move {
        while watch.events().len() < 20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let sink_of = |_: &str| Some(Arc::new(pipeline.clone()) as _);
    let open = |route: &tranquility_fluvio::DataSourceTopic| {
        let topic = route.topic.clone();
        let config = &config;
        async move { FluvioSource::connect(config, &topic).await }
    };
    let reports = tokio::time::timeout(
        Duration::from_secs(60),
        run_topics(&config.routes, &config.options, sink_of, open, stop),
    )
    .await
    .expect("consumed and stopped in time")
    .expect("consume");
    let report = &reports[0].1;
    assert_eq!(report.tally.sent, 20);
    assert!(
        report.commits >= 2,
        "periodic and final commits: {report:?}"
    );

    // The same consumer name resumes after the committed records.
    producer
        .send(
            RecordKey::NULL,
            json!({"timestamp": 5_000, "n": 20}).to_string(),
        )
        .await
        .unwrap();
    producer.flush().await.unwrap();
    let again = FluvioSource::connect(&config, &topic)
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
