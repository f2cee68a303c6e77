//! One test body, two Druids, for the 31+ ingestion paths: the release probe, the refusal of
//! realtime tasks, the Kafka supervisor API (its 400s and 404s, the spec written back, the
//! state changes and their history) and a supervisor ingesting Druid's own IT template, run
//! against a real Druid 33.0.0 (`real_druid_*`) and against druid-local playing 33.0.0.
//!
//! Where the two must differ it is in one place: the service a real cluster names in its
//! unknown-type errors is its Coordinator acting as Overlord (`druid/coordinator`).

use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::kafka::{create_topic, produce};
use integration_tests::modern::{it_template, post_json, send, wait_for_sums, wiki_events, Answer};
use integration_tests::real_druid::{RealDruid, MODERN_RELEASE};
use integration_tests::{setup::now_millis, unique_name, Tansu};
use serde_json::{json, Value};

enum Target {
    Real(RealDruid),
    Local(DruidLocal),
}

impl Target {
    async fn local() -> Target {
        let mut config = DruidLocalConfig::ephemeral();
        config.druid_version = MODERN_RELEASE.parse().expect("version");
        Target::Local(DruidLocal::start(config).await.expect("druid-local starts"))
    }

    async fn real(test: &str) -> Option<Target> {
        let test = test.to_owned();
        tokio::task::spawn_blocking(move || RealDruid::start_or_skip(MODERN_RELEASE, &test))
            .await
            .expect("start thread")
            .map(Target::Real)
    }

    fn overlord(&self) -> String {
        match self {
            Target::Real(d) => d.overlord_url().to_owned(),
            Target::Local(d) => d.url(),
        }
    }

    fn broker(&self) -> String {
        match self {
            Target::Real(d) => d.broker_url().to_owned(),
            Target::Local(d) => d.url(),
        }
    }

    /// The `druid.service` named in unknown-type errors.
    fn service(&self) -> &'static str {
        match self {
            Target::Real(_) => "druid/coordinator",
            Target::Local(_) => "druid/overlord",
        }
    }

    fn supervisors(&self) -> String {
        format!("{}/druid/indexer/v1/supervisor", self.overlord())
    }

    async fn stop(self) {
        match self {
            Target::Real(d) => tokio::task::spawn_blocking(move || drop(d))
                .await
                .expect("stop thread"),
            Target::Local(d) => d.shutdown().await,
        }
    }
}

fn error(msg: &str) -> Value {
    json!({ "error": msg })
}

/// `/status` names the release and the Kafka module; realtime tasks are an unknown type.
async fn release_and_realtime_refusal(t: &Target) {
    let c = reqwest::Client::new();
    let status = send(c.get(format!("{}/status", t.overlord()))).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["version"], MODERN_RELEASE);
    let modules: Vec<&str> = status.body["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["artifact"].as_str())
        .collect();
    assert!(
        modules.contains(&"druid-kafka-indexing-service"),
        "{modules:?}"
    );
    let task = json!({"type": "index_realtime", "id": "rt", "spec": {
        "dataSchema": {"dataSource": "x"}, "ioConfig": {"type": "realtime"}}});
    let a = send(post_json(
        &c,
        &format!("{}/druid/indexer/v1/task", t.overlord()),
        &task,
    ))
    .await;
    assert_eq!(
        a,
        Answer {
            status: 400,
            body: error(&format!(
                "Please make sure to load all the necessary extensions and jars with type 'index_realtime' on '{}' service. Could not resolve type id 'index_realtime' as a subtype of `org.apache.druid.indexing.common.task.Task` known type ids = [archive, compact, index, index_hadoop, index_kafka, index_parallel, index_sub, kill, move, noop, partial_dimension_cardinality, partial_dimension_distribution, partial_index_generate, partial_index_generic_merge, partial_range_index_generate, restore, single_phase_sub_task]",
                t.service()
            ))
        }
    );
}

/// The submit errors of the checklist, with Druid 33's bodies, and the 404s.
async fn supervisor_refusals(t: &Target, bootstrap: &str) {
    let c = reqwest::Client::new();
    let url = t.supervisors();
    let io = json!({"topic": "t", "consumerProperties": {"bootstrap.servers": bootstrap},
        "inputFormat": {"type": "json"}});
    let schema = json!({"dataSource": "e1", "timestampSpec": {"column": "timestamp"},
        "dimensionsSpec": {"dimensions": []}});
    let with_io = |f: &dyn Fn(&mut Value)| {
        let mut io = io.clone();
        f(&mut io);
        json!({"type": "kafka", "spec": {"dataSchema": schema, "ioConfig": io}})
    };
    let io_class = "Cannot construct instance of `org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorIOConfig`, problem: ";
    let cases: Vec<(Value, String)> = vec![
        (json!({"type": "kinesis2", "spec": {"dataSchema": schema, "ioConfig": io}}),
         format!("Please make sure to load all the necessary extensions and jars with type 'kinesis2' on '{}' service. Could not resolve type id 'kinesis2' as a subtype of `org.apache.druid.indexing.overlord.supervisor.SupervisorSpec` known type ids = [NoopSupervisorSpec, autocompact, kafka, scheduled_batch]", t.service())),
        (json!({"spec": {"dataSchema": schema, "ioConfig": io}}),
         "Could not resolve subtype of [simple type, class org.apache.druid.indexing.overlord.supervisor.SupervisorSpec]: missing type id property 'type'".into()),
        (with_io(&|io| { io.as_object_mut().unwrap().remove("topic"); }),
         format!("{io_class}Either topic or topicPattern must be specified")),
        (with_io(&|io| { io["topicPattern"] = json!("t.*"); }),
         format!("{io_class}Only one of topic [t] or topicPattern [t.*] must be specified")),
        (with_io(&|io| { io["consumerProperties"] = json!({}); }),
         format!("{io_class}consumerProperties must contain entry for [bootstrap.servers]")),
        (with_io(&|io| { io.as_object_mut().unwrap().remove("consumerProperties"); }),
         format!("{io_class}consumerProperties")),
        (with_io(&|io| { io["lateMessageRejectionPeriod"] = json!("PT1H"); io["lateMessageRejectionStartDateTime"] = json!("2020-01-01T00:00:00Z"); }),
         format!("{io_class}SeekableStreamSupervisorIOConfig does not support both properties lateMessageRejectionStartDateTime and lateMessageRejectionPeriod.")),
        (json!({"type": "kafka", "spec": {"dataSchema": schema, "ioConfig": io, "tuningConfig": {"maxRowsInMemory": 1000}}}),
         "Could not resolve subtype of [simple type, class org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorTuningConfig]: missing type id property 'type' (for POJO property 'tuningConfig')".into()),
        (json!({"type": "kafka", "spec": {"ioConfig": io}}),
         "Cannot construct instance of `org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorSpec`, problem: dataSchema".into()),
        (json!({"type": "kafka", "spec": {"dataSchema": schema}}),
         "Cannot construct instance of `org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorSpec`, problem: ioConfig".into()),
        (json!({"type": "kafka", "spec": {"dataSchema": {"timestampSpec": {"column": "timestamp"}}, "ioConfig": io}}),
         "Cannot construct instance of `org.apache.druid.segment.indexing.DataSchema`, problem: Invalid value for field [dataSource]: must not be null".into()),
        (json!({"type": "kafka", "spec": {"dataSchema": {"dataSource": "a/b", "timestampSpec": {"column": "timestamp"}}, "ioConfig": io}}),
         "Cannot construct instance of `org.apache.druid.segment.indexing.DataSchema`, problem: Invalid value for field [dataSource]: Value [a/b] cannot contain '/'.".into()),
        (json!({"type": "kafka", "spec": {"dataSchema": {"dataSource": "e1", "dimensionsSpec": {"dimensions": []}}, "ioConfig": io}}),
         "Cannot construct instance of `org.apache.druid.segment.indexing.DataSchema`, problem: timestampSpec".into()),
    ];
    for (body, msg) in cases {
        let a = send(post_json(&c, &url, &body)).await;
        assert_eq!(
            a,
            Answer {
                status: 400,
                body: error(&msg)
            },
            "for {body}"
        );
    }
    // Neither timestampSpec nor dimensionsSpec (an old task spec's shape) is taken, and so is
    // an ioConfig without inputFormat; the tasks would fail. The topic does not exist, so none
    // is created.
    for schema in [
        json!({"dataSource": "e2"}),
        json!({"dataSource": "e2", "timestampSpec": {"column": "ts"}, "dimensionsSpec": {}}),
    ] {
        let mut no_format = io.clone();
        no_format.as_object_mut().unwrap().remove("inputFormat");
        let body = json!({"type": "kafka", "spec": {"dataSchema": schema, "ioConfig": no_format}});
        let a = send(post_json(&c, &url, &body)).await;
        assert_eq!(
            a,
            Answer {
                status: 200,
                body: json!({"id": "e2"})
            },
            "for {body}"
        );
    }
    let a = send(c.post(format!("{url}/e2/terminate"))).await;
    assert_eq!(a.status, 200);
    let a = send(c.post(&url).header("Content-Type", "text/plain").body("{}")).await;
    assert_eq!(
        a,
        Answer {
            status: 415,
            body: json!("")
        }
    );
    let a = send(
        c.post(&url)
            .header("Content-Type", "application/json")
            .body("{\"type\":"),
    )
    .await;
    assert_eq!(a.status, 500);
    let missing = json!("Cannot find any supervisor with id: [nope]");
    for path in ["nope", "nope/status", "nope/health", "nope/stats"] {
        let a = send(c.get(format!("{url}/{path}"))).await;
        assert_eq!(
            a,
            Answer {
                status: 404,
                body: missing.clone()
            },
            "GET {path}"
        );
    }
    for path in [
        "nope/suspend",
        "nope/resume",
        "nope/reset",
        "nope/terminate",
        "nope/shutdown",
    ] {
        let a = send(c.post(format!("{url}/{path}"))).await;
        assert_eq!(
            a,
            Answer {
                status: 404,
                body: missing.clone()
            },
            "POST {path}"
        );
    }
    let a = send(c.get(format!("{url}/nope/history"))).await;
    assert_eq!(
        a,
        Answer {
            status: 404,
            body: error("No history for [nope].")
        }
    );
    let a = send(post_json(
        &c,
        &format!("{url}/nope/taskGroups/handoff"),
        &json!({"taskGroupIds": [0]}),
    ))
    .await;
    assert_eq!(
        a,
        Answer {
            status: 404,
            body: missing
        }
    );
}

/// Druid's concurrent-locks IT template through a whole life: ingested with exact sums, the
/// spec written back, suspend and resume (twice each), history, an unmodified update
/// skipped, terminate with its tombstone.
async fn supervisor_lifecycle(t: &Target, broker: &Tansu) -> Option<Value> {
    let c = reqwest::Client::new();
    let url = t.supervisors();
    let ds = unique_name("conf");
    let topic = unique_name("conf-topic");
    let spec = it_template(
        "supervisor_with_concurrent_locks_spec_template.json",
        &ds,
        &topic,
        &broker.bootstrap_servers(),
    )?;
    create_topic(broker, &topic, 3);
    let events = wiki_events(0, 60, now_millis());
    produce(broker, &topic, 3, &events.lines);
    let a = send(post_json(&c, &url, &spec)).await;
    assert_eq!(
        a,
        Answer {
            status: 200,
            body: json!({ "id": ds })
        }
    );
    let (count, added, deleted, delta) =
        wait_for_sums(&t.broker(), &ds, 60, Duration::from_secs(180)).await;
    assert_eq!(
        (count, added, deleted, delta),
        (60, events.added, events.deleted, events.delta)
    );

    let written = send(c.get(format!("{url}/{ds}"))).await;
    assert_eq!(written.status, 200);
    let w = &written.body;
    assert_eq!(w["spec"]["ioConfig"]["taskDuration"], "PT120S");
    assert_eq!(w["ioConfig"]["stream"], topic.as_str());
    assert_eq!(w["spec"]["dataSchema"], w["dataSchema"]);
    assert_eq!(w["context"], json!({"useConcurrentLocks": true}));
    assert_eq!(w["suspended"], false);
    assert_eq!(
        w["dataSchema"]["dimensionsSpec"]["dimensionExclusions"],
        json!(["__time", "deleted", "added", "delta", "count", "timestamp"])
    );

    let list = send(c.get(format!("{url}?state=true"))).await;
    let mine = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == ds.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        mine,
        json!({"id": ds, "state": "RUNNING", "detailedState": "RUNNING", "healthy": true, "suspended": false})
    );

    let a = send(c.post(format!("{url}/{ds}/suspend"))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["suspended"], true);
    let a = send(c.post(format!("{url}/{ds}/suspend"))).await;
    assert_eq!(
        a,
        Answer {
            status: 400,
            body: error(&format!("[{ds}] is already suspended"))
        }
    );
    let a = send(c.post(format!("{url}/{ds}/resume"))).await;
    assert_eq!((a.status, a.body["suspended"].clone()), (200, json!(false)));
    let a = send(c.post(format!("{url}/{ds}/resume"))).await;
    assert_eq!(
        a,
        Answer {
            status: 400,
            body: error(&format!("[{ds}] is already running"))
        }
    );
    let history = send(c.get(format!("{url}/{ds}/history"))).await;
    let flags: Vec<Value> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["spec"]["suspended"].clone())
        .collect();
    assert_eq!(
        flags,
        [json!(false), json!(true), json!(false)],
        "newest first"
    );
    // 33+: an unmodified spec with skipRestartIfUnmodified changes nothing.
    let a = send(post_json(
        &c,
        &format!("{url}?skipRestartIfUnmodified=true"),
        &spec,
    ))
    .await;
    assert_eq!(
        a,
        Answer {
            status: 200,
            body: json!({ "id": ds })
        }
    );
    let again = send(c.get(format!("{url}/{ds}/history"))).await;
    assert_eq!(again.body.as_array().map(Vec::len), Some(3));
    // 33 ignores `count` (limited from 35).
    let one = send(c.get(format!("{url}/{ds}/history?count=1"))).await;
    assert_eq!(one.body.as_array().map(Vec::len), Some(3));

    let a = send(c.post(format!("{url}/{ds}/terminate"))).await;
    assert_eq!(
        a,
        Answer {
            status: 200,
            body: json!({ "id": ds })
        }
    );
    let a = send(c.post(format!("{url}/{ds}/terminate"))).await;
    assert_eq!(
        a,
        Answer {
            status: 404,
            body: json!(format!("Cannot find any supervisor with id: [{ds}]"))
        }
    );
    let history = send(c.get(format!("{url}/{ds}/history"))).await;
    assert_eq!(
        history.body[0]["spec"],
        json!({"type": "noop", "id": null, "dataSources": [ds], "suspended": false, "source": "noop"})
    );
    let ids = send(c.get(&url)).await;
    assert!(!ids.body.as_array().unwrap().contains(&json!(ds)));
    // The rows stay queryable (published by the graceful stops).
    assert_eq!(
        wait_for_sums(&t.broker(), &ds, 60, Duration::from_secs(120))
            .await
            .0,
        60
    );
    Some(written.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_local_modern_conformance() {
    let broker = Tansu::start();
    let t = Target::local().await;
    release_and_realtime_refusal(&t).await;
    supervisor_refusals(&t, &broker.bootstrap_servers()).await;
    supervisor_lifecycle(&t, &broker).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_modern_conformance() {
    let Some(t) = Target::real("real_druid_modern_conformance").await else {
        return;
    };
    let broker = Tansu::start();
    release_and_realtime_refusal(&t).await;
    supervisor_refusals(&t, &broker.bootstrap_servers()).await;
    let real_spec = supervisor_lifecycle(&t, &broker).await;
    // The same template on druid-local writes back the same spec, byte for byte as JSON.
    if let Some(real_spec) = real_spec {
        let local = Target::local().await;
        let c = reqwest::Client::new();
        let ds = real_spec["dataSchema"]["dataSource"]
            .as_str()
            .unwrap()
            .to_owned();
        let topic = real_spec["ioConfig"]["topic"].as_str().unwrap().to_owned();
        let spec = it_template(
            "supervisor_with_concurrent_locks_spec_template.json",
            &ds,
            &topic,
            &broker.bootstrap_servers(),
        )
        .unwrap();
        assert_eq!(
            send(post_json(&c, &local.supervisors(), &spec))
                .await
                .status,
            200
        );
        let written = send(c.get(format!("{}/{ds}", local.supervisors()))).await;
        assert_eq!(written.body, real_spec);
        local.stop().await;
    }
    t.stop().await;
}
