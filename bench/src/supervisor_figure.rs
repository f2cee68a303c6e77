//! The supervisor figure: druid-local's Kafka supervisor ingesting a tansu topic (one
//! partition, one task: consumer, JSON parsing, rollup into a live segment) against a raw
//! rdkafka consumer that only reads the same topic the same way (partition `assign()`ed from
//! offset 0, no consumer group).
//!
//! The supervisor is timed from its creation until its task has counted every message
//! (processed, thrown away or unparseable), as its stats report them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use druid_local::{DruidLocal, DruidLocalConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::{json, Value};
use test_support::harness::Tansu;

use crate::kafka_figure::{client, fill_topic};
use crate::workload;

/// The supervisor figure's raw numbers.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisorRaw {
    /// Messages in the topic.
    pub events: usize,
    /// Raw consumer, messages/s.
    pub raw_per_second: f64,
    /// Supervisor, messages/s ingested.
    pub supervisor_per_second: f64,
    /// `supervisor_per_second / raw_per_second`.
    pub ratio: f64,
}

/// The workload's dataSchema as a supervisor spec reading `topic`.
fn spec(name: &str, topic: &str, bootstrap: &str) -> Value {
    let realtime = workload::spec_value(name);
    let ds = &realtime["dataSchema"];
    let parse_spec = &ds["parser"]["parseSpec"];
    json!({"type": "kafka", "spec": {
        "dataSchema": {"dataSource": name, "timestampSpec": parse_spec["timestampSpec"],
            "dimensionsSpec": parse_spec["dimensionsSpec"], "metricsSpec": ds["metricsSpec"],
            "granularitySpec": ds["granularitySpec"]},
        "ioConfig": {"topic": topic, "consumerProperties": {"bootstrap.servers": bootstrap},
            "inputFormat": {"type": "json"}, "taskCount": 1, "replicas": 1,
            "taskDuration": "PT1H", "startDelay": "PT0S", "period": "PT1S",
            "useEarliestOffset": true},
        "tuningConfig": {"type": "kafka", "maxRowsInMemory": 500000}}})
}

/// Measures the figure with `events` messages.
pub async fn run(events: usize) -> anyhow::Result<SupervisorRaw> {
    let broker = Tansu::start()?;
    let bootstrap = broker.bootstrap_servers();
    let topic = format!("bench-supervisor-{}", std::process::id());
    let (admin, producer) = fill_topic(&bootstrap, &topic, events).await?;

    // The raw consumer: partition 0 assigned at offset 0, every message read, nothing else.
    let raw: StreamConsumer = client(&bootstrap)
        .set("group.id", format!("{topic}-raw"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(0))?;
    let started = Instant::now();
    raw.assign(&tpl)?;
    for _ in 0..events {
        tokio::time::timeout(Duration::from_secs(60), raw.recv())
            .await
            .context("the raw consumer stalled")??;
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    drop(raw);

    // The supervisor.
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = "33.0.0".parse()?;
    let druid = DruidLocal::start(config).await?;
    let name = "bench_supervisor";
    let http = reqwest::Client::new();
    let started = Instant::now();
    let answer = http
        .post(format!("{}/druid/indexer/v1/supervisor", druid.url()))
        .json(&spec(name, &topic, &bootstrap))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("the supervisor was refused: {}", answer.text().await?);
    }
    let deadline = started + Duration::from_secs(300);
    loop {
        let counted = druid
            .shared()
            .supervisors
            .get(name)
            .map(|s| counted(&s.stats()))
            .unwrap_or(0);
        if counted >= events as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the supervisor counted {counted} of {events} messages in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let supervisor_seconds = started.elapsed().as_secs_f64();
    druid.shutdown().await;
    drop((producer, admin));
    drop(broker);

    let raw_per_second = events as f64 / raw_seconds;
    let supervisor_per_second = events as f64 / supervisor_seconds;
    Ok(SupervisorRaw {
        events,
        raw_per_second,
        supervisor_per_second,
        ratio: supervisor_per_second / raw_per_second,
    })
}

/// Rows counted by every task of the stats (processed, thrown away or unparseable).
fn counted(stats: &Value) -> u64 {
    let mut by_task: BTreeMap<String, u64> = BTreeMap::new();
    for group in stats.as_object().into_iter().flat_map(|g| g.values()) {
        for (task, s) in group.as_object().into_iter().flatten() {
            let t = &s["totals"]["buildSegments"];
            let n = ["processed", "thrownAway", "unparseable"]
                .iter()
                .map(|k| t[k].as_u64().unwrap_or(0))
                .sum();
            by_task.insert(task.clone(), n);
        }
    }
    by_task.values().sum()
}
