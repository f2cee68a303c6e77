//! Kafka supervisors on druid-local against a real Kafka-protocol broker (tansu), with the
//! events produced by an independent client (confluent-kafka): Druid's own IT templates
//! ingested with exact counts and sums, exactly-once across a druid-local restart, the
//! supervisor's health while the broker is down and after it returns, and the state changes
//! (suspend, resume, reset, terminate) with their answers.

use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::kafka::{create_topic, produce};
use integration_tests::modern::{
    it_template, post_json, send, sums, tasks_of, wait_for_sums, wait_supervisor, wiki_events,
};
use integration_tests::{setup::now_millis, unique_name, Tansu};
use serde_json::{json, Value};

async fn druid(version: &str, data_dir: Option<&std::path::Path>) -> DruidLocal {
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = version.parse().expect("version");
    config.data_dir = data_dir.map(|d| d.to_path_buf());
    DruidLocal::start(config).await.expect("druid-local starts")
}

fn supervisor_url(druid: &DruidLocal) -> String {
    format!("{}/druid/indexer/v1/supervisor", druid.url())
}

/// A spec of our own: short task duration and period, so publishes and health changes come
/// within seconds (on 32 and 33 a task duration under a minute fails every task, as there).
fn quick_spec(data_source: &str, topic: &str, bootstrap: &str) -> Value {
    json!({"type": "kafka", "spec": {
        "dataSchema": {"dataSource": data_source,
            "timestampSpec": {"column": "timestamp", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page", "user"]},
            "metricsSpec": [{"type": "count", "name": "count"},
                {"type": "doubleSum", "name": "added", "fieldName": "added"},
                {"type": "doubleSum", "name": "deleted", "fieldName": "deleted"},
                {"type": "doubleSum", "name": "delta", "fieldName": "delta"}],
            "granularitySpec": {"segmentGranularity": "HOUR", "queryGranularity": "NONE", "rollup": false}},
        "ioConfig": {"topic": topic, "consumerProperties": {"bootstrap.servers": bootstrap},
            "inputFormat": {"type": "json"}, "taskCount": 2, "replicas": 1,
            "taskDuration": "PT3S", "startDelay": "PT0.5S", "period": "PT0.5S",
            "useEarliestOffset": true},
        "tuningConfig": {"type": "kafka"}}})
}

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_it_templates_are_ingested_exactly() {
    let broker = Tansu::start().expect("tansu starts");
    let c = reqwest::Client::new();
    for (template, version) in [
        ("supervisor_spec_template.json", "30.0.0"),
        (
            "supervisor_with_concurrent_locks_spec_template.json",
            "33.0.0",
        ),
    ] {
        let ds = unique_name("it");
        let topic = unique_name("it-topic");
        let Some(spec) = it_template(template, &ds, &topic, &broker.bootstrap_servers()) else {
            return;
        };
        create_topic(&broker, &topic, 3);
        let events = wiki_events(0, 90, now_millis());
        produce(&broker, &topic, 3, &events.lines);
        let druid = druid(version, None).await;
        let a = send(post_json(&c, &supervisor_url(&druid), &spec)).await;
        assert_eq!((a.status, a.body), (200, json!({ "id": ds })), "{template}");
        let (count, added, deleted, delta) = wait_for_sums(&druid.url(), &ds, 90, WAIT).await;
        assert_eq!(count, 90, "{template}: every event counted once");
        assert_eq!(
            pydruid_sums(&druid.url(), &ds),
            (90, events.added),
            "pydruid sees the same"
        );
        assert_eq!(
            (added, deleted, delta),
            (events.added, events.deleted, events.delta)
        );
        // Three partitions in two groups: partitions 0 and 2 in group 0, 1 in group 1.
        let status = wait_supervisor(&druid.url(), &ds, "running tasks", WAIT, |p| {
            p["activeTasks"].as_array().is_some_and(|t| t.len() == 2)
        })
        .await;
        assert_eq!(status["state"], "RUNNING");
        assert_eq!(status["partitions"], 3);
        let starts: Vec<Value> = status["activeTasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["startingOffsets"].clone())
            .collect();
        assert!(starts.contains(&json!({"0": 0, "2": 0})), "{starts:?}");
        assert!(starts.contains(&json!({"1": 0})), "{starts:?}");
        let tasks = tasks_of(&druid.url(), &ds).await;
        assert!(tasks
            .iter()
            .all(|t| t["type"] == "index_kafka" && t["groupId"] == format!("index_kafka_{ds}")));
        let stats = send(c.get(format!("{}/{ds}/stats", supervisor_url(&druid)))).await;
        let processed: u64 = stats
            .body
            .as_object()
            .unwrap()
            .values()
            .flat_map(|g| g.as_object().unwrap().values())
            .map(|t| t["totals"]["buildSegments"]["processed"].as_u64().unwrap())
            .sum();
        assert_eq!(processed, 90);
        druid.shutdown().await;
    }
}

/// Count and `added` through pydruid, an independent query client.
fn pydruid_sums(url: &str, data_source: &str) -> (i64, f64) {
    const SCRIPT: &str = r#"
import json, sys
import urllib.error, urllib.request  # pydruid 0.6.9 uses urllib.request without importing it
from pydruid.client import PyDruid
from pydruid.utils.aggregators import doublesum, longsum
ts = PyDruid(sys.argv[1], "druid/v2").timeseries(datasource=sys.argv[2], granularity="all",
    intervals="1000-01-01/3000-01-01", aggregations={"n": longsum("count"), "added": doublesum("added")})
print(json.dumps(ts.result[0]["result"]))
"#;
    let out = std::process::Command::new(integration_tests::python())
        .args(["-c", SCRIPT, url, data_source])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pydruid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("pydruid result");
    (
        v["n"].as_i64().unwrap_or(-1),
        v["added"].as_f64().unwrap_or(-1.0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_minute_tasks_fail_on_33_as_there() {
    let broker = Tansu::start().expect("tansu starts");
    let c = reqwest::Client::new();
    let ds = unique_name("short");
    let topic = unique_name("short-topic");
    let Some(mut spec) = it_template(
        "supervisor_spec_template.json",
        &ds,
        &topic,
        &broker.bootstrap_servers(),
    ) else {
        return;
    };
    spec["ioConfig"]["period"] = json!("PT0.5S");
    spec["ioConfig"]["startDelay"] = json!("PT0.1S");
    create_topic(&broker, &topic, 1);
    let druid = druid("33.0.0", None).await;
    let a = send(post_json(&c, &supervisor_url(&druid), &spec)).await;
    assert_eq!(a.status, 200);
    let status = wait_supervisor(&druid.url(), &ds, "UNHEALTHY_TASKS", WAIT, |p| {
        p["state"] == "UNHEALTHY_TASKS"
    })
    .await;
    assert_eq!(status["healthy"], false);
    let failed: Vec<Value> = tasks_of(&druid.url(), &ds).await;
    assert!(failed.iter().any(|t| t["statusCode"] == "FAILED"
        && t["errorMsg"] == "Failed with exception [null]. See indexer logs for details."));
    druid.shutdown().await;
}

/// Waits until druid-local has committed every produced message (stored offsets at the end).
async fn wait_all_published(druid: &DruidLocal, ds: &str, total: i64) {
    wait_supervisor(&druid.url(), ds, "every message published", WAIT, |_| {
        druid
            .shared()
            .metadata
            .offsets(ds)
            .is_some_and(|o| o.partitions.values().sum::<i64>() == total)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_stored_offsets_exactly() {
    let broker = Tansu::start().expect("tansu starts");
    let data = tempfile::tempdir().expect("data dir");
    let c = reqwest::Client::new();
    let ds = unique_name("restart");
    let topic = unique_name("restart-topic");
    create_topic(&broker, &topic, 2);
    let now = now_millis();
    let first = wiki_events(0, 40, now);
    produce(&broker, &topic, 2, &first.lines);
    let druid = druid("35.0.0", Some(data.path())).await;
    let spec = quick_spec(&ds, &topic, &broker.bootstrap_servers());
    assert_eq!(
        send(post_json(&c, &supervisor_url(&druid), &spec))
            .await
            .status,
        200
    );
    assert_eq!(wait_for_sums(&druid.url(), &ds, 40, WAIT).await.0, 40);
    wait_all_published(&druid, &ds, 40).await;
    // More events, read but (most likely) not all published when druid-local stops.
    let second = wiki_events(40, 30, now);
    produce(&broker, &topic, 2, &second.lines);
    assert_eq!(wait_for_sums(&druid.url(), &ds, 70, WAIT).await.0, 70);
    druid.shutdown().await;

    let druid = druid_restarted(data.path()).await;
    let third = wiki_events(70, 30, now);
    produce(&broker, &topic, 2, &third.lines);
    wait_all_published(&druid, &ds, 100).await;
    let (count, added, _, _) = sums(&druid.url(), &ds).await;
    assert_eq!(
        count, 100,
        "nothing lost and nothing twice across the restart"
    );
    assert_eq!(added, first.added + second.added + third.added);
    druid.shutdown().await;
}

async fn druid_restarted(data: &std::path::Path) -> DruidLocal {
    druid("35.0.0", Some(data)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_is_unhealthy_while_the_broker_is_down_and_recovers() {
    let mut broker = Tansu::start_persistent().expect("tansu starts");
    let c = reqwest::Client::new();
    let ds = unique_name("broker");
    let topic = unique_name("broker-topic");
    create_topic(&broker, &topic, 1);
    produce(&broker, &topic, 1, &wiki_events(0, 10, now_millis()).lines);
    broker.stop();
    let druid = druid("35.0.0", None).await;
    let spec = quick_spec(&ds, &topic, &broker.bootstrap_servers());
    assert_eq!(
        send(post_json(&c, &supervisor_url(&druid), &spec))
            .await
            .status,
        200
    );
    let down = wait_supervisor(
        &druid.url(),
        &ds,
        "UNABLE_TO_CONNECT_TO_STREAM",
        WAIT,
        |p| p["detailedState"] == "UNABLE_TO_CONNECT_TO_STREAM",
    )
    .await;
    assert_eq!(down["state"], "UNHEALTHY_SUPERVISOR");
    assert_eq!(down["healthy"], false);
    assert_eq!(down["recentErrors"][0]["streamException"], true);
    let health = send(c.get(format!("{}/{ds}/health", supervisor_url(&druid)))).await;
    assert_eq!(
        (health.status, health.body),
        (503, json!({"healthy": false}))
    );

    broker.restart().expect("tansu restarts");
    wait_supervisor(&druid.url(), &ds, "RUNNING again", WAIT, |p| {
        p["state"] == "RUNNING"
    })
    .await;
    assert_eq!(wait_for_sums(&druid.url(), &ds, 10, WAIT).await.0, 10);
    let health = send(c.get(format!("{}/{ds}/health", supervisor_url(&druid)))).await;
    assert_eq!(
        (health.status, health.body),
        (200, json!({"healthy": true}))
    );

    // Contact lost after a success: LOST_CONTACT_WITH_STREAM, then back.
    broker.stop();
    wait_supervisor(&druid.url(), &ds, "LOST_CONTACT_WITH_STREAM", WAIT, |p| {
        p["detailedState"] == "LOST_CONTACT_WITH_STREAM"
    })
    .await;
    broker.restart().expect("tansu restarts");
    produce(&broker, &topic, 1, &wiki_events(10, 5, now_millis()).lines);
    assert_eq!(wait_for_sums(&druid.url(), &ds, 15, WAIT).await.0, 15);
    wait_supervisor(&druid.url(), &ds, "RUNNING after the restart", WAIT, |p| {
        p["state"] == "RUNNING"
    })
    .await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_resets_and_listings() {
    let broker = Tansu::start().expect("tansu starts");
    let c = reqwest::Client::new();
    let ds = unique_name("upd");
    let (t1, t2) = (unique_name("upd-a"), unique_name("upd-b"));
    create_topic(&broker, &t1, 1);
    create_topic(&broker, &t2, 1);
    produce(&broker, &t1, 1, &wiki_events(0, 10, now_millis()).lines);

    // 35 refuses a topic change of a running supervisor (500, as the exception is unmapped).
    let druid35 = druid("35.0.0", None).await;
    let url = supervisor_url(&druid35);
    assert_eq!(
        send(post_json(
            &c,
            &url,
            &quick_spec(&ds, &t1, &broker.bootstrap_servers())
        ))
        .await
        .status,
        200
    );
    let a = send(post_json(
        &c,
        &url,
        &quick_spec(&ds, &t2, &broker.bootstrap_servers()),
    ))
    .await;
    assert_eq!(a.status, 500);
    assert!(a.body.as_str().unwrap().contains(&format!(
        "Update of the input source stream from [{t1}] to [{t2}] is not supported for a running supervisor."
    )), "{a:?}");
    let spec = send(c.get(format!("{url}/{ds}"))).await;
    assert_eq!(spec.body["id"], ds.as_str(), "35 writes the id back");
    let a = send(c.get(format!("{url}/{ds}/history?count=0"))).await;
    assert_eq!(
        a.body,
        json!({"error": "Count must be greater than zero if set (count was 0)"})
    );
    assert_eq!(a.status, 400);
    druid35.shutdown().await;

    // 33 takes it: a new version in the history, the old tasks publish first.
    let druid = druid("31.0.1", None).await;
    let url = supervisor_url(&druid);
    assert_eq!(
        send(post_json(
            &c,
            &url,
            &quick_spec(&ds, &t1, &broker.bootstrap_servers())
        ))
        .await
        .status,
        200
    );
    assert_eq!(wait_for_sums(&druid.url(), &ds, 10, WAIT).await.0, 10);
    wait_all_published(&druid, &ds, 10).await;
    // Reset: stored offsets deleted; with useEarliestOffset the topic is read again (Druid
    // documents that a reset may duplicate or skip).
    let a = send(c.post(format!("{url}/{ds}/reset"))).await;
    assert_eq!(
        a,
        integration_tests::modern::Answer {
            status: 200,
            body: json!({ "id": ds })
        }
    );
    assert_eq!(wait_for_sums(&druid.url(), &ds, 20, WAIT).await.0, 20);
    // resetOffsets to the end of partition 0: nothing more is read.
    wait_all_published(&druid, &ds, 10).await;
    let body = json!({"type": "kafka", "partitions": {"type": "end", "stream": t1, "partitionOffsetMap": {"0": 10}}});
    assert_eq!(
        send(post_json(&c, &format!("{url}/{ds}/resetOffsets"), &body))
            .await
            .status,
        200
    );
    let wrong = json!({"type": "kafka", "partitions": {"type": "end", "stream": "other", "partitionOffsetMap": {"0": 1}}});
    let a = send(post_json(&c, &format!("{url}/{ds}/resetOffsets"), &wrong)).await;
    assert_eq!(a.status, 500);
    assert!(a
        .body
        .as_str()
        .unwrap()
        .contains("Stream[other] doesn't exist in the supervisor"));

    let a = send(post_json(
        &c,
        &url,
        &quick_spec(&ds, &t2, &broker.bootstrap_servers()),
    ))
    .await;
    assert_eq!(a.status, 200, "31 allows a topic change");
    let history = send(c.get(format!("{url}/{ds}/history"))).await;
    assert_eq!(history.body.as_array().map(Vec::len), Some(2));
    assert_eq!(history.body[0]["spec"]["ioConfig"]["topic"], t2.as_str());

    let full = send(c.get(format!("{url}?full"))).await;
    let keys: Vec<String> = full.body[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "id",
            "state",
            "detailedState",
            "healthy",
            "spec",
            "suspended"
        ]
    );
    let system = send(c.get(format!("{url}?system"))).await;
    assert_eq!(system.body[0]["source"], t2.as_str());
    assert_eq!(system.body[0]["type"], "kafka");
    let all = send(c.get(format!("{url}/history"))).await;
    assert_eq!(all.body[&ds].as_array().map(Vec::len), Some(2));
    let a = send(c.post(format!("{url}/suspendAll"))).await;
    assert_eq!(a.body, json!({"status": "success"}));
    let list = send(c.get(format!("{url}?state=true"))).await;
    assert_eq!(list.body[0]["suspended"], true);
    let a = send(c.post(format!("{url}/resumeAll"))).await;
    assert_eq!(a.body, json!({"status": "success"}));
    let a = send(c.post(format!("{url}/terminateAll"))).await;
    assert_eq!(a.body, json!({"status": "success"}));
    assert_eq!(send(c.get(&url)).await.body, json!([]));
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_rejection_transforms_and_counters() {
    let broker = Tansu::start().expect("tansu starts");
    let c = reqwest::Client::new();
    let ds = unique_name("rep");
    let topic = unique_name("rep-topic");
    create_topic(&broker, &topic, 2);
    let now = now_millis();
    let ev = |ts: i64, page: &str, added: Value| {
        json!({"timestamp": integration_tests::modern::iso(ts), "page": page, "user": "u",
            "added": added, "deleted": 0, "delta": 0})
        .to_string()
    };
    let mut lines: Vec<String> = (0..10).map(|i| ev(now - i * 1000, "p", json!(1))).collect();
    lines.push(ev(now - 3 * 3_600_000, "late", json!(1)));
    lines.push(ev(now - 4 * 3_600_000, "late", json!(1)));
    lines.push(ev(now + 3 * 3_600_000, "early", json!(1)));
    lines.push(ev(now, "skip", json!(1)));
    lines.push("{not json".into());
    lines.push(format!(
        "{} {}",
        ev(now, "two", json!(1)),
        ev(now, "two", json!(1))
    ));
    lines.push(ev(now, "p", json!("abc")));
    produce(&broker, &topic, 2, &lines);
    let mut spec = quick_spec(&ds, &topic, &broker.bootstrap_servers());
    spec["spec"]["ioConfig"]["taskCount"] = json!(1);
    spec["spec"]["ioConfig"]["replicas"] = json!(2);
    spec["spec"]["ioConfig"]["lateMessageRejectionPeriod"] = json!("PT1H");
    spec["spec"]["ioConfig"]["earlyMessageRejectionPeriod"] = json!("PT1H");
    spec["spec"]["dataSchema"]["transformSpec"] = json!({
        "filter": {"type": "not", "field": {"type": "selector", "dimension": "page", "value": "skip"}},
        "transforms": [{"type": "expression", "name": "user", "expression": "concat(user, '-', page)"}]});
    let druid = druid("35.0.0", None).await;
    assert_eq!(
        send(post_json(&c, &supervisor_url(&druid), &spec))
            .await
            .status,
        200
    );
    // 10 + 2 (one record, two objects) + 1 (a metric that is not a number).
    assert_eq!(wait_for_sums(&druid.url(), &ds, 13, WAIT).await.0, 13);
    let status = wait_supervisor(&druid.url(), &ds, "two replicas", WAIT, |p| {
        p["activeTasks"].as_array().is_some_and(|t| t.len() == 2)
    })
    .await;
    assert_eq!(
        status["activeTasks"][0]["startingOffsets"],
        status["activeTasks"][1]["startingOffsets"]
    );
    // Each replica reads the whole group on its own: wait until both have read every message
    // (the rows were queryable as soon as the first replica had).
    let deadline = std::time::Instant::now() + WAIT;
    let totals: Vec<Value> = loop {
        let stats = send(c.get(format!("{}/{ds}/stats", supervisor_url(&druid)))).await;
        let totals: Vec<Value> = stats.body["0"]
            .as_object()
            .map(|tasks| {
                tasks
                    .values()
                    .map(|t| t["totals"]["buildSegments"].clone())
                    .collect()
            })
            .unwrap_or_default();
        let read = |t: &Value| {
            ["processed", "thrownAway", "unparseable"]
                .iter()
                .map(|k| t[*k].as_i64().unwrap_or(0))
                .sum::<i64>()
        };
        if totals.len() == 2 && totals.iter().all(|t| read(t) >= 18) {
            break totals;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "both replicas read every message: {}",
            stats.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for t in &totals {
        assert_eq!(
            (
                t["processed"].clone(),
                t["thrownAway"].clone(),
                t["unparseable"].clone(),
                t["processedWithError"].clone()
            ),
            (json!(13), json!(4), json!(1), json!(1)),
            "{t}"
        );
    }
    let q = json!({"queryType": "groupBy", "dataSource": ds, "granularity": "all",
        "intervals": ["1000-01-01/3000-01-01"], "dimensions": ["user"],
        "aggregations": [{"type": "longSum", "name": "n", "fieldName": "count"}]});
    let rows = integration_tests::druid::query(&druid.url(), &q).await;
    let users: Vec<(String, i64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event"]["user"].as_str().unwrap_or("").to_owned(),
                r["event"]["n"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        users,
        [("u-p".to_owned(), 11), ("u-two".to_owned(), 2)],
        "transformed dimension"
    );
    // Two replicas read the same rows; one publish, and the count stays exact.
    wait_all_published(&druid, &ds, lines.len() as i64).await;
    assert_eq!(sums(&druid.url(), &ds).await.0, 13);
    druid.shutdown().await;
}
