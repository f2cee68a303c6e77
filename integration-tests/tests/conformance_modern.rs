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
    // The receivers' chat resource is gone from the Overlord.
    let a = send(post_json(
        &c,
        &format!(
            "{}/druid/worker/v1/chat/firehose:x/push-events",
            t.overlord()
        ),
        &json!([]),
    ))
    .await;
    assert_eq!(a.status, 404);
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

/// The probe task of the batch body: rows at 10:01 and 10:02, one outside the interval, one
/// line that is not JSON.
const DATA: &str = "{\"timestamp\":\"2025-11-25T10:01:00Z\",\"page\":\"a\",\"added\":1}\n{\"timestamp\":\"2025-11-25T10:02:00Z\",\"page\":\"b\",\"added\":2}\n{\"timestamp\":\"2025-11-25T12:02:00Z\",\"page\":\"b\",\"added\":5}\nnot json\n";
const HOUR: &str = "2025-11-25T10:00:00.000Z/2025-11-25T11:00:00.000Z";

fn batch(id: Option<&str>, ds: &str, data: &str, intervals: bool, ty: &str) -> Value {
    let mut gs = json!({"type": "uniform", "segmentGranularity": "HOUR", "queryGranularity": "MINUTE", "rollup": true});
    if intervals {
        gs["intervals"] = json!([HOUR]);
    }
    let mut t = json!({"type": ty, "spec": {
        "dataSchema": {"dataSource": ds, "timestampSpec": {"column": "timestamp", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}],
            "granularitySpec": gs},
        "ioConfig": {"type": ty, "inputSource": {"type": "inline", "data": data},
            "inputFormat": {"type": "json"}, "appendToExisting": true, "dropExisting": false},
        "tuningConfig": {"type": ty, "partitionsSpec": {"type": "dynamic"}}}});
    if let Some(id) = id {
        t["id"] = json!(id);
    }
    t
}

async fn task_status(t: &Target, id: &str) -> Value {
    let c = reqwest::Client::new();
    send(c.get(format!(
        "{}/druid/indexer/v1/task/{id}/status",
        t.overlord()
    )))
    .await
    .body["status"]
        .clone()
}

/// Polls a task's status until `pred` accepts it; panics after two minutes.
async fn wait_task(t: &Target, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let s = task_status(t, id).await;
        if pred(&s) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task {id}: {what} not seen; last {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn done(s: &Value) -> bool {
    s["statusCode"] == "SUCCESS" || s["statusCode"] == "FAILED"
}

/// Inline batch tasks: submit answers and refusals, the stored payload, reports, parse
/// failures and a replace.
async fn batch_tasks(t: &Target) {
    let c = reqwest::Client::new();
    let url = format!("{}/druid/indexer/v1/task", t.overlord());
    let ds = unique_name("bt");
    let a = send(post_json(
        &c,
        &url,
        &batch(Some(&format!("{ds}_b1")), &ds, DATA, true, "index_parallel"),
    ))
    .await;
    assert_eq!(
        a,
        Answer {
            status: 200,
            body: json!({"task": format!("{ds}_b1")})
        }
    );
    let s = wait_task(t, &format!("{ds}_b1"), "the end", done).await;
    assert_eq!(
        (
            s["statusCode"].clone(),
            s["groupId"].clone(),
            s["type"].clone()
        ),
        (
            json!("SUCCESS"),
            json!(format!("{ds}_b1")),
            json!("index_parallel")
        )
    );
    let r = send(c.get(format!("{url}/{ds}_b1/reports"))).await;
    assert_eq!(r.status, 200);
    let p = &r.body["ingestionStatsAndErrors"]["payload"];
    assert_eq!(
        p["rowStats"]["buildSegments"],
        json!({"processed": 2, "processedBytes": 183, "processedWithError": 0, "thrownAway": 1, "unparseable": 1})
    );
    assert_eq!(
        (
            p["ingestionState"].clone(),
            p["segmentsPublished"].clone(),
            p["errorMsg"].clone()
        ),
        (json!("COMPLETED"), json!(1), Value::Null)
    );
    assert_eq!(
        r.body["taskContext"]["payload"],
        json!({"forceTimeChunkLock": true, "useLineageBasedSegmentAllocation": true})
    );
    let payload = send(c.get(format!("{url}/{ds}_b1"))).await.body["payload"].clone();
    let keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "id",
            "groupId",
            "resource",
            "spec",
            "context",
            "dataSource"
        ]
    );
    assert_eq!(
        payload["spec"]["dataSchema"]["dimensionsSpec"]["dimensionExclusions"],
        json!(["__time", "added", "count", "timestamp"])
    );
    assert_eq!(
        payload["spec"]["tuningConfig"]["maxParseExceptions"],
        2147483647
    );

    // The same id again.
    let a = send(post_json(
        &c,
        &url,
        &batch(Some(&format!("{ds}_b1")), &ds, DATA, true, "index_parallel"),
    ))
    .await;
    assert_eq!(
        a,
        Answer {
            status: 400,
            body: json!({"error": "druidException", "errorCode": "entryAlreadyExists", "persona": "USER", "category": "INVALID_INPUT", "errorMessage": format!("Task[{ds}_b1] already exists"), "context": {}})
        }
    );

    // Refusals.
    let parallel =
        "Cannot construct instance of `org.apache.druid.indexing.common.task.batch.parallel.";
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut b = batch(
            Some(&format!("{ds}_bad")),
            &ds,
            DATA,
            true,
            "index_parallel",
        );
        f(&mut b);
        b
    };
    let cases = [
        (edit(&|b| b["spec"]["dataSchema"]["parser"] = json!({"type": "string", "parseSpec": {"format": "json", "timestampSpec": {"column": "timestamp"}, "dimensionsSpec": {"dimensions": []}}})),
         format!("{parallel}ParallelIndexIngestionSpec`, problem: Cannot use parser and inputSource together. Try using inputFormat instead of parser.")),
        (edit(&|b| { b["spec"]["ioConfig"].as_object_mut().unwrap().remove("inputFormat"); }),
         format!("{parallel}ParallelIndexIngestionSpec`, problem: At least one of properties[[parser, inputFormat]] must be present")),
        (edit(&|b| b["spec"]["ioConfig"]["dropExisting"] = json!(true)),
         format!("{parallel}ParallelIndexSupervisorTask`, problem: Cannot simultaneously replace and append to existing segments. Either dropExisting or appendToExisting should be set to false")),
        (edit(&|b| b["spec"]["tuningConfig"]["partitionsSpec"] = json!({"type": "hashed", "numShards": 1})),
         format!("{parallel}ParallelIndexTuningConfig`, problem: DynamicPartitionsSpec must be used for best-effort rollup")),
        (edit(&|b| { b["spec"]["tuningConfig"]["partitionsSpec"] = json!({"type": "hashed", "numShards": 1}); b["spec"]["tuningConfig"]["forceGuaranteedRollup"] = json!(true); }),
         format!("{parallel}ParallelIndexSupervisorTask`, problem: Perfect rollup cannot be guaranteed when appending to existing dataSources")),
    ];
    for (body, msg) in cases {
        assert_eq!(
            send(post_json(&c, &url, &body)).await,
            Answer {
                status: 400,
                body: error(&msg)
            }
        );
    }
    let a = send(c.get(format!("{url}/nope/reports"))).await;
    assert_eq!(
        a,
        Answer {
            status: 404,
            body: json!("Cannot find any task with id: [nope]")
        }
    );

    // A generated id; a parse failure over maxParseExceptions.
    let mut strict = batch(None, &ds, DATA, true, "index_parallel");
    strict["spec"]["tuningConfig"]["maxParseExceptions"] = json!(0);
    let a = send(post_json(&c, &url, &strict)).await;
    let id = a.body["task"].as_str().unwrap().to_owned();
    let prefix = format!("index_parallel_{ds}_");
    let rest = id
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("generated id {id}"));
    assert!(
        rest.len() == 8 + 1 + 24 && rest.as_bytes()[8] == b'_' && rest.ends_with('Z'),
        "generated id {id}"
    );
    let s = wait_task(t, &id, "the end", done).await;
    assert_eq!(s["statusCode"], "FAILED");
    assert!(
        s["errorMsg"]
            .as_str()
            .unwrap()
            .starts_with("org.apache.druid.java.util.common.RE: Max parse exceptions[0] exceeded"),
        "{s}"
    );
    let p = send(c.get(format!("{url}/{id}/reports"))).await.body["ingestionStatsAndErrors"]
        ["payload"]
        .clone();
    assert_eq!(
        (
            p["ingestionState"].clone(),
            p.get("segmentsPublished").cloned()
        ),
        (json!("BUILD_SEGMENTS"), None)
    );

    // `index` appends share the group `index_append_<ds>`.
    let a = send(post_json(
        &c,
        &url,
        &batch(Some(&format!("{ds}_s1")), &ds, DATA, true, "index"),
    ))
    .await;
    assert_eq!(a.status, 200);
    let s = wait_task(t, &format!("{ds}_s1"), "the end", done).await;
    assert_eq!(
        (s["statusCode"].clone(), s["groupId"].clone()),
        (json!("SUCCESS"), json!(format!("index_append_{ds}")))
    );

    // Two appends, one version, partitions 0 and 1; a replace overshadows them.
    let listing = format!(
        "{}/druid/coordinator/v1/metadata/datasources/{ds}/segments",
        t.overlord()
    );
    let ids = wait_listing(&c, &listing, 2).await;
    assert!(
        ids[1].ends_with("_1") && ids[1].starts_with(&ids[0]),
        "{ids:?}"
    );
    wait_count(t, &ds, 4).await;
    let mut replace = batch(
        Some(&format!("{ds}_r1")),
        &ds,
        "{\"timestamp\":\"2025-11-25T10:05:00Z\",\"page\":\"z\",\"added\":100}\n",
        true,
        "index_parallel",
    );
    replace["spec"]["ioConfig"]["appendToExisting"] = json!(false);
    assert_eq!(send(post_json(&c, &url, &replace)).await.status, 200);
    assert_eq!(
        wait_task(t, &format!("{ds}_r1"), "the end", done).await["statusCode"],
        "SUCCESS"
    );
    wait_count(t, &ds, 1).await;
    let ids = wait_listing(&c, &listing, 3).await;
    let newest = ids.iter().max_by_key(|i| version_of(i, &ds)).unwrap();
    assert!(
        version_of(newest, &ds) > version_of(&ids[0], &ds),
        "{ids:?}"
    );
}

/// The version part of a segment id `<ds>_<start>_<end>_<version>[_<partition>]`.
fn version_of(id: &str, ds: &str) -> String {
    id.strip_prefix(&format!("{ds}_"))
        .unwrap_or(id)
        .split('_')
        .nth(2)
        .unwrap_or("")
        .to_owned()
}

/// The used segment ids, once there are `n` of them (the Coordinator polls the metadata).
async fn wait_listing(c: &reqwest::Client, url: &str, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let a = send(c.get(url)).await;
        let mut ids: Vec<String> = a
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        ids.sort();
        if ids.len() >= n {
            return ids;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} segments not listed; last {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the Broker counts exactly `n` rows (segments load, overshadowed ones go).
async fn wait_count(t: &Target, ds: &str, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let got = integration_tests::druid::count(&t.broker(), ds, "count").await;
        if got == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "count of {ds}: {got}, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The lock table, with a first task holding its chunk lock while it waits for its segment
/// to load (`awaitSegmentAvailabilityTimeoutMillis`): an `index_parallel` append without
/// `intervals` fails, one with them waits; shared, concurrent and `index` appends coexist.
async fn batch_locks(t: &Target) {
    let c = reqwest::Client::new();
    let url = format!("{}/druid/indexer/v1/task", t.overlord());
    let holder = |ds: &str, id: &str, ty: &str, ctx: Value| {
        let mut b = batch(Some(id), ds, DATA, true, ty);
        b["spec"]["tuningConfig"]["awaitSegmentAvailabilityTimeoutMillis"] = json!(60000);
        b["context"] = ctx;
        b
    };
    let in_hour = "{\"timestamp\":\"2025-11-25T10:03:00Z\",\"page\":\"c\",\"added\":3}\n";
    let second = |ds: &str, id: &str, ty: &str, intervals: bool, ctx: Value| {
        let mut b = batch(Some(id), ds, in_hour, intervals, ty);
        b["context"] = ctx;
        b
    };
    let running = |s: &Value| s["statusCode"] == "RUNNING" && s["runnerStatusCode"] == "RUNNING";
    // EXCLUSIVE: without intervals the second fails, with them it waits.
    let ds = unique_name("lk");
    let (a, b1, b2) = (format!("{ds}_a"), format!("{ds}_b1"), format!("{ds}_b2"));
    assert_eq!(
        send(post_json(
            &c,
            &url,
            &holder(&ds, &a, "index_parallel", json!({}))
        ))
        .await
        .status,
        200
    );
    wait_task(t, &a, "running", running).await;
    assert_eq!(
        send(post_json(
            &c,
            &url,
            &second(&ds, &b1, "index_parallel", false, json!({}))
        ))
        .await
        .status,
        200
    );
    let s = wait_task(t, &b1, "the end", done).await;
    assert_eq!(s["statusCode"], "FAILED");
    assert!(
        s["errorMsg"].as_str().unwrap().starts_with(&format!(
            "org.apache.druid.java.util.common.ISE: Failed to get locks for intervals[[{HOUR}]]"
        )),
        "{s}"
    );
    assert_eq!(
        send(post_json(
            &c,
            &url,
            &second(&ds, &b2, "index_parallel", true, json!({}))
        ))
        .await
        .status,
        200
    );
    let s = wait_task(t, &b2, "waiting for the lock", |s| {
        s["runnerStatusCode"] == "WAITING" || done(s)
    })
    .await;
    assert_eq!(
        (s["statusCode"].clone(), s["runnerStatusCode"].clone()),
        (json!("RUNNING"), json!("WAITING"))
    );
    assert_eq!(
        task_status(t, &a).await["statusCode"],
        "RUNNING",
        "the holder still runs"
    );
    assert_eq!(
        wait_task(t, &b2, "the end", done).await["statusCode"],
        "SUCCESS"
    );
    assert_eq!(
        wait_task(t, &a, "the end", done).await["statusCode"],
        "SUCCESS"
    );

    // Shared, concurrent and `index` appends run beside the holder.
    for (ty, ctx) in [
        ("index_parallel", json!({"useSharedLock": true})),
        ("index_parallel", json!({"useConcurrentLocks": true})),
        ("index", json!({})),
    ] {
        let ds = unique_name("lk");
        let (a, b) = (format!("{ds}_a"), format!("{ds}_b"));
        assert_eq!(
            send(post_json(&c, &url, &holder(&ds, &a, ty, ctx.clone())))
                .await
                .status,
            200
        );
        wait_task(t, &a, "running", running).await;
        assert_eq!(
            send(post_json(
                &c,
                &url,
                &second(&ds, &b, ty, false, ctx.clone())
            ))
            .await
            .status,
            200
        );
        let s = wait_task(t, &b, "the end", done).await;
        assert_eq!(s["statusCode"], "SUCCESS", "{ty} {ctx}: {s}");
        assert_eq!(
            task_status(t, &a).await["statusCode"],
            "RUNNING",
            "{ty} {ctx}: side by side"
        );
        assert_eq!(
            wait_task(t, &a, "the end", done).await["statusCode"],
            "SUCCESS"
        );
        let ids = wait_listing(
            &c,
            &format!(
                "{}/druid/coordinator/v1/metadata/datasources/{ds}/segments",
                t.overlord()
            ),
            2,
        )
        .await;
        if ctx.get("useConcurrentLocks").is_some() {
            assert!(
                ids.iter().all(|i| i.contains("_1970-01-01T00:00:00.000Z")),
                "APPEND locks write at the epoch: {ids:?}"
            );
        }
        assert_eq!(
            version_of(&ids[0], &ds),
            version_of(&ids[1], &ds),
            "{ids:?}"
        );
    }
}

/// A supervisor's tasks and batch appends on one time chunk: without concurrent locks the
/// Kafka task's EXCLUSIVE lock makes a batch append with `intervals` wait (until the task
/// group hands off) and one without fail; with `useConcurrentLocks` on both they run side by
/// side.
async fn kafka_and_batch(t: &Target, broker: &Tansu, concurrent: bool) {
    let c = reqwest::Client::new();
    let ds = unique_name("kb");
    let topic = unique_name("kb-topic");
    create_topic(broker, &topic, 1);
    let hour = now_millis() / 3_600_000 * 3_600_000;
    let chunk = format!(
        "{}/{}",
        integration_tests::modern::iso(hour),
        integration_tests::modern::iso(hour + 3_600_000)
    );
    let lines: Vec<String> = (0..10)
        .map(|i| json!({"timestamp": integration_tests::modern::iso(hour + i * 1000), "page": "k", "added": 1}).to_string())
        .collect();
    produce(broker, &topic, 1, &lines);
    let ctx = if concurrent {
        json!({"useConcurrentLocks": true})
    } else {
        Value::Null
    };
    let spec = json!({"type": "kafka", "spec": {
        "dataSchema": {"dataSource": ds, "timestampSpec": {"column": "timestamp", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "HOUR", "queryGranularity": "NONE"}},
        "ioConfig": {"topic": topic, "consumerProperties": {"bootstrap.servers": broker.bootstrap_servers()},
            "inputFormat": {"type": "json"}, "taskDuration": "PT10M", "useEarliestOffset": true},
        "tuningConfig": {"type": "kafka"}}, "context": ctx});
    assert_eq!(
        send(post_json(&c, &t.supervisors(), &spec)).await.status,
        200
    );
    wait_count(t, &ds, 10).await;

    let url = format!("{}/druid/indexer/v1/task", t.overlord());
    let row = json!({"timestamp": integration_tests::modern::iso(hour + 60_000), "page": "b", "added": 1}).to_string();
    let append = |id: &str, intervals: bool| {
        let mut gs =
            json!({"type": "uniform", "segmentGranularity": "HOUR", "queryGranularity": "NONE"});
        if intervals {
            gs["intervals"] = json!([chunk]);
        }
        let mut b = json!({"type": "index_parallel", "id": id, "spec": {
            "dataSchema": {"dataSource": ds, "timestampSpec": {"column": "timestamp", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["page"]}, "metricsSpec": [{"type": "count", "name": "count"}],
                "granularitySpec": gs},
            "ioConfig": {"type": "index_parallel", "inputSource": {"type": "inline", "data": format!("{row}\n")},
                "inputFormat": {"type": "json"}, "appendToExisting": true},
            "tuningConfig": {"type": "index_parallel"}}});
        if concurrent {
            b["context"] = json!({"useConcurrentLocks": true});
        }
        b
    };
    let (free, waits) = (format!("{ds}_free"), format!("{ds}_waits"));
    assert_eq!(
        send(post_json(&c, &url, &append(&free, false)))
            .await
            .status,
        200
    );
    let s = wait_task(t, &free, "the end", done).await;
    if concurrent {
        assert_eq!(s["statusCode"], "SUCCESS", "{s}");
    } else {
        assert_eq!(s["statusCode"], "FAILED", "{s}");
        assert!(s["errorMsg"].as_str().unwrap().starts_with(&format!("org.apache.druid.java.util.common.ISE: Failed to get locks for intervals[[{chunk}]]")), "{s}");
        assert_eq!(
            send(post_json(&c, &url, &append(&waits, true)))
                .await
                .status,
            200
        );
        let s = wait_task(t, &waits, "waiting", |s| {
            s["runnerStatusCode"] == "WAITING" || done(s)
        })
        .await;
        assert_eq!(
            (s["statusCode"].clone(), s["runnerStatusCode"].clone()),
            (json!("RUNNING"), json!("WAITING"))
        );
        // The group hands off early; its lock goes, the append runs.
        let a = send(post_json(
            &c,
            &format!("{}/{ds}/taskGroups/handoff", t.supervisors()),
            &json!({"taskGroupIds": [0]}),
        ))
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(
            wait_task(t, &waits, "the end", done).await["statusCode"],
            "SUCCESS"
        );
    }
    wait_count(t, &ds, 11).await;
    assert_eq!(
        send(c.post(format!("{}/{ds}/terminate", t.supervisors())))
            .await
            .status,
        200
    );
}

/// Druid's `PT30S` IT template on 33: every task fails at start (the rejection period updater
/// is scheduled with a period of zero minutes) and nothing is ingested. (Whether the
/// supervisor turns UNHEALTHY_TASKS on a real 33 depends on a race with its task client:
/// seen once, not another time; druid-local counts every failure.)
async fn sub_minute_template(t: &Target, broker: &Tansu) {
    let c = reqwest::Client::new();
    let ds = unique_name("short");
    let topic = unique_name("short-topic");
    let Some(spec) = it_template(
        "supervisor_spec_template.json",
        &ds,
        &topic,
        &broker.bootstrap_servers(),
    ) else {
        return;
    };
    create_topic(broker, &topic, 1);
    produce(broker, &topic, 1, &wiki_events(0, 5, now_millis()).lines);
    assert_eq!(
        send(post_json(&c, &t.supervisors(), &spec)).await.status,
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let tasks = integration_tests::modern::tasks_of(&t.overlord(), &ds).await;
        if tasks.iter().any(|t| t["statusCode"] == "FAILED") {
            assert!(
                tasks.iter().all(|t| t["statusCode"] != "SUCCESS"),
                "{tasks:?}"
            );
            assert!(
                tasks
                    .iter()
                    .filter(|t| t["statusCode"] == "FAILED")
                    .all(|t| t["errorMsg"]
                        == "Failed with exception [null]. See indexer logs for details."),
                "{tasks:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed task: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        integration_tests::druid::count(&t.broker(), &ds, "count").await,
        0
    );
    assert_eq!(
        send(c.post(format!("{}/{ds}/terminate", t.supervisors())))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_local_modern_conformance() {
    let broker = Tansu::start().expect("tansu starts");
    let t = Target::local().await;
    release_and_realtime_refusal(&t).await;
    supervisor_refusals(&t, &broker.bootstrap_servers()).await;
    supervisor_lifecycle(&t, &broker).await;
    sub_minute_template(&t, &broker).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_local_batch_conformance() {
    // A real cluster takes seconds to load a segment; the load delay plays that.
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = MODERN_RELEASE.parse().expect("version");
    config.segment_load_delay = Duration::from_millis(1500);
    let t = Target::Local(DruidLocal::start(config).await.expect("druid-local starts"));
    batch_tasks(&t).await;
    batch_locks(&t).await;
    let broker = Tansu::start().expect("tansu starts");
    kafka_and_batch(&t, &broker, false).await;
    kafka_and_batch(&t, &broker, true).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_batch_conformance() {
    let Some(t) = Target::real("real_druid_batch_conformance").await else {
        return;
    };
    batch_tasks(&t).await;
    batch_locks(&t).await;
    let broker = Tansu::start().expect("tansu starts");
    kafka_and_batch(&t, &broker, false).await;
    kafka_and_batch(&t, &broker, true).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_modern_conformance() {
    let Some(t) = Target::real("real_druid_modern_conformance").await else {
        return;
    };
    let broker = Tansu::start().expect("tansu starts");
    release_and_realtime_refusal(&t).await;
    supervisor_refusals(&t, &broker.bootstrap_servers()).await;
    let real_spec = supervisor_lifecycle(&t, &broker).await;
    sub_minute_template(&t, &broker).await;
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
