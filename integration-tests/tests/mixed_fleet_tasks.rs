//! Tasks and events in a mixed fleet, against druid-local and a real ZooKeeper: our events land
//! in a task built exactly as the original Tranquility builds it (timestampSpec in `millis`,
//! found through the shared metadata), the original's events land in a task we built, and a
//! task an earlier Tranquility-RS built with the user's own timestampSpec still gets events it
//! reads in the right unit.

use std::time::Duration;

use bytes::Bytes;
use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::setup::{assert_all_sent, now_millis};
use integration_tests::{druid, unique_name, ZooKeeper};
use serde_json::{json, Value};
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility::time::format_iso_millis;
use zookeeper_client as zk;

const HOUR: i64 = 3_600_000;
const WAIT: Duration = Duration::from_secs(30);

/// One dataSource whose events carry `timestamp` in `format`, with dimension `page` and
/// metrics `count` and `added`; coordination through ZooKeeper at `base`.
fn config(ds: &str, format: &str, zk: &ZooKeeper, base: &str) -> TranquilityConfig {
    let text = json!({
        "dataSources": [{
            "spec": {
                "dataSchema": {
                    "dataSource": ds,
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": format},
                        "dimensionsSpec": {"dimensions": ["page"]}}},
                    "metricsSpec": [{"type": "count", "name": "count"},
                                    {"type": "longSum", "name": "added", "fieldName": "added"}],
                    "granularitySpec": {"type": "uniform", "segmentGranularity": "hour",
                        "queryGranularity": "none"}
                },
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
            }
        }],
        "properties": {
            "zookeeper.connect": zk.connect_string(),
            "zookeeper.path": base,
            "druidBeam.taskLocator": "overlord"
        }
    });
    TranquilityConfig::from_str(&text.to_string(), "mixed.json").expect("config")
}

fn pipelines(config: &TranquilityConfig, druid: &DruidLocal) -> Pipelines {
    Pipelines::builder()
        .overlord_url(druid.url())
        .build(config)
        .expect("pipelines")
}

/// The current hour's start (the events' interval).
fn this_hour() -> i64 {
    let now = now_millis();
    now - now.rem_euclid(HOUR)
}

/// The names of a task for `ds`'s hour starting at `start`, partition 0, replicant 0.
struct TaskNames {
    id: String,
    firehose_id: String,
    service_name: String,
}

fn task_names(ds: &str, start: i64) -> TaskNames {
    let start_iso = format_iso_millis(start);
    let hour_of_day = start.rem_euclid(24 * HOUR) / HOUR;
    let firehose_id = format!("{ds}-{hour_of_day:03}-0000-0000");
    TaskNames {
        id: format!("index_realtime_{ds}_{start_iso}_0_0"),
        service_name: format!("firehose:druid:overlord:{firehose_id}"),
        firehose_id,
    }
}

/// The task the original's `DruidBeamMaker.taskBytes` submits for this dataSource's hour
/// (Druid 0.9.2's Jackson forms: the map parser reading `timestamp` in millis with no
/// missingValue, queryGranularity as a granularity object, the original's tuning defaults).
fn original_task(ds: &str, start: i64, timestamp_spec: Value) -> Value {
    let names = task_names(ds, start);
    let start_iso = format_iso_millis(start);
    json!({
        "type": "index_realtime",
        "id": names.id,
        "resource": {"availabilityGroup": format!("{ds}-{start_iso}-0000"), "requiredCapacity": 1},
        "spec": {
            "dataSchema": {
                "dataSource": ds,
                "parser": {"type": "map", "parseSpec": {
                    "format": "json",
                    "timestampSpec": timestamp_spec,
                    "dimensionsSpec": {"dimensions": ["page"], "spatialDimensions": []}
                }},
                "metricsSpec": [{"type": "count", "name": "count"},
                                {"type": "longSum", "name": "added", "fieldName": "added"}],
                "granularitySpec": {"type": "uniform", "segmentGranularity": "HOUR",
                    "queryGranularity": {"type": "none"}, "rollup": true}
            },
            "ioConfig": {"type": "realtime", "plumber": null, "firehose": {
                "type": "clipped",
                "interval": format!("{start_iso}/{}", format_iso_millis(start + HOUR)),
                "delegate": {"type": "timed",
                    "shutoffTime": format_iso_millis(start + HOUR + 15 * 60_000),
                    "delegate": {"type": "receiver", "serviceName": names.service_name,
                        "bufferSize": 100000}}}},
            "tuningConfig": {"type": "realtime", "maxRowsInMemory": 75000,
                "intermediatePersistPeriod": "PT10M", "windowPeriod": "PT10M",
                "shardSpec": {"type": "linear", "partitionNum": 0},
                "rejectionPolicy": {"type": "none"}}
        }
    })
}

/// Submits `task` to druid-local and writes the beam metadata for it as the original writes it
/// to `<base>/druid:overlord/<ds>/data`.
async fn create_as_another_instance(
    druid: &DruidLocal,
    zk: &ZooKeeper,
    base: &str,
    ds: &str,
    start: i64,
    task: &Value,
) {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/druid/indexer/v1/task", druid.url()))
        .json(task)
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("answer");
    let names = task_names(ds, start);
    assert_eq!(answer["task"], names.id.as_str(), "{answer}");
    let start_iso = format_iso_millis(start);
    let meta = json!({
        "latestTime": start_iso,
        "latestCloseTime": "1970-01-01T00:00:00.000Z",
        "beams": {start_iso.clone(): [{
            "interval": format!("{start_iso}/{}", format_iso_millis(start + HOUR)),
            "partition": 0,
            "tasks": [{"id": names.id, "firehoseId": names.firehose_id}],
            "timestamp": start_iso
        }]}
    });
    let client = zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect");
    let dir = format!("{base}/druid:overlord/{ds}");
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.mkdir(&dir, &persistent).await.expect("mkdir");
    client
        .create(
            &format!("{dir}/data"),
            meta.to_string().as_bytes(),
            &persistent,
        )
        .await
        .expect("data node");
}

/// The earliest and latest event time Druid holds for `ds`, in epoch millis.
async fn time_bounds(druid: &DruidLocal, ds: &str) -> (i64, i64) {
    let answer = druid::query(
        &druid.url(),
        &json!({"queryType": "timeBoundary", "dataSource": ds}),
    )
    .await;
    let millis = |key: &str| {
        let text = answer
            .pointer(&format!("/0/result/{key}"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {key} in {answer}"));
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("ISO time")
            .timestamp_millis()
    };
    (millis("minTime"), millis("maxTime"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_iso_events_land_in_a_task_the_original_created() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local");
    let zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("mixed"));
    let ds = unique_name("from-java");
    let start = this_hour();
    let millis_spec = json!({"column": "timestamp", "format": "millis", "missingValue": null});
    create_as_another_instance(
        &druid,
        &zk,
        &base,
        &ds,
        start,
        &original_task(&ds, start, millis_spec),
    )
    .await;

    let pipelines = pipelines(&config(&ds, "iso", &zk, &base), &druid);
    let pipeline = pipelines.get(&ds).expect("pipeline");
    let (first, last) = (now_millis() - 2_000, now_millis() - 1_000);
    // The earliest is kept within the hour whatever the clock says.
    let (first, last) = (first.max(start), last.max(start + 1));
    let raws: Vec<Bytes> = [first, last]
        .iter()
        .map(|t| {
            let iso = format_iso_millis(*t);
            Bytes::from(json!({"timestamp": iso, "page": "p", "added": 5}).to_string())
        })
        .collect();
    assert_all_sent(&pipeline.send_all(raws).await);

    // They went to the original's task (no second one), which read their times right.
    assert_eq!(
        druid::running_task_ids(&druid.url(), &ds).await,
        [task_names(&ds, start).id]
    );
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 2, WAIT).await,
        2
    );
    assert_eq!(druid::count(&druid.url(), &ds, "added").await, 10);
    assert_eq!(time_bounds(&druid, &ds).await, (first, last));
    pipelines.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_originals_events_land_in_a_task_we_created() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local");
    let zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("mixed"));
    let ds = unique_name("from-rust");
    let start = this_hour();
    let ours = now_millis().max(start);
    let pipelines = pipelines(&config(&ds, "iso", &zk, &base), &druid);
    let pipeline = pipelines.get(&ds).expect("pipeline");
    let event = json!({"timestamp": format_iso_millis(ours), "page": "p", "added": 1});
    assert_all_sent(
        &pipeline
            .send_all(vec![Bytes::from(event.to_string())])
            .await,
    );

    // Our task reads the timestamp column in millis, as the original's do.
    let ids = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let payload: Value = reqwest::get(format!("{}/druid/indexer/v1/task/{}", druid.url(), ids[0]))
        .await
        .expect("payload")
        .json()
        .await
        .expect("json");
    assert_eq!(
        payload.pointer("/payload/spec/dataSchema/parser/parseSpec/timestampSpec"),
        Some(&json!({"column": "timestamp", "format": "millis", "missingValue": null}))
    );

    // The original pushes `{timestamp in millis, metric inputs, dimensions}` to the receiver
    // named in the shared metadata.
    let theirs = ours.saturating_sub(500).max(start);
    let names = task_names(&ds, start);
    let body = json!([{"timestamp": theirs, "added": 2, "page": "q"}]);
    let response = reqwest::Client::new()
        .post(format!(
            "{}/druid/worker/v1/chat/{}/push-events",
            druid.url(),
            names.service_name
        ))
        .json(&body)
        .send()
        .await
        .expect("push");
    assert!(response.status().is_success(), "{}", response.status());

    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 2, WAIT).await,
        2
    );
    assert_eq!(druid::count(&druid.url(), &ds, "added").await, 3);
    assert_eq!(time_bounds(&druid, &ds).await, (theirs, ours));
    pipelines.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_of_an_earlier_version_gets_events_in_its_own_unit() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local");
    let zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("mixed"));
    let ds = unique_name("posix");
    let start = this_hour();
    // Earlier versions kept the user's timestampSpec in the task: here epoch seconds.
    let posix_spec = json!({"column": "timestamp", "format": "posix"});
    create_as_another_instance(
        &druid,
        &zk,
        &base,
        &ds,
        start,
        &original_task(&ds, start, posix_spec),
    )
    .await;

    let pipelines = pipelines(&config(&ds, "posix", &zk, &base), &druid);
    let pipeline = pipelines.get(&ds).expect("pipeline");
    let seconds = (now_millis() / 1000).max(start / 1000);
    let event = json!({"timestamp": seconds, "page": "p", "added": 4});
    assert_all_sent(
        &pipeline
            .send_all(vec![Bytes::from(event.to_string())])
            .await,
    );
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 1, WAIT).await,
        1
    );
    assert_eq!(
        time_bounds(&druid, &ds).await,
        (seconds * 1000, seconds * 1000)
    );
    pipelines.close().await;
    druid.shutdown().await;
}
