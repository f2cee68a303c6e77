//! One set of test bodies, two Druids: the wire Tranquility relies on, checked against a real
//! Druid and against druid-local with the same expectations.
//!
//! Each check takes a [`DruidTarget`]. `druid_local_*` tests run one check each against
//! druid-local; `real_druid_conformance` starts one real cluster (20 s or so) and runs them
//! all against it, naming the check that fails. The checks: the Overlord API and its errors,
//! an `index_realtime` task's receiver (discovery, pushes with producer dedup, push errors),
//! native queries on its rows before and after the handoff, an Overlord shutdown, and Druid's
//! own realtime integration tests (`druid_it`).
//!
//! The real Druid runs only when installed (`scripts/real-druid.sh install 28.0.0`); tests
//! against it carry `real_druid` in their names: `cargo nextest run -E 'test(/real_druid/)'`.

#[path = "conformance/druid_it.rs"]
mod druid_it;

use std::time::{Duration, Instant};

use integration_tests::real_druid::{MODERN_RELEASE, REALTIME_RELEASE};
use integration_tests::target::{
    client, find_receiver, iso, now_millis, post_json, post_raw, query_until, realtime_task,
    segment, send, wait_finished, Answer, DruidTarget, HOUR_MS,
};
use integration_tests::unique_name;
use serde_json::{json, Value};
use zookeeper_client as zk;

/// How long rows may take to reach a real Broker (segment announcement, Historical load).
const VISIBLE: Duration = Duration::from_secs(60);

/// The Overlord API outside any task's life: unknown ids, bad submissions, the leader and
/// status endpoints.
async fn overlord_api(t: &DruidTarget) {
    let c = client();
    let overlord = t.overlord_url();
    let v1 = format!("{overlord}/druid/indexer/v1");

    // Unknown ids: Druid's task filter answers before any endpoint, in plain text.
    for request in [
        c.get(format!("{v1}/task/nope/status")),
        c.get(format!("{v1}/task/nope")),
        c.post(format!("{v1}/task/nope/shutdown")),
    ] {
        let answer = send(request).await;
        assert_eq!(
            answer.pair(),
            (404, &json!("Cannot find any task with id: [nope]")),
            "{answer:?}"
        );
        assert!(answer.content_type.starts_with("text/plain"), "{answer:?}");
    }

    // Submissions that do not map: 400 with Druid's `{"error": ...}`; not JSON at all: Jetty's
    // 500 page; another content type: an empty 415.
    let start = hour_start();
    let good = realtime_task("never-run", "conformance-bad", "svc-bad", start);
    let mut untyped = good.clone();
    untyped.as_object_mut().expect("object").remove("type");
    let mut no_capacity = good.clone();
    no_capacity["resource"]["requiredCapacity"] = json!(0);
    let mut bad_granularity = good.clone();
    bad_granularity["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] =
        json!("FORTNIGHT");
    for bad in [untyped, no_capacity, bad_granularity] {
        let answer = send(post_json(&c, &format!("{v1}/task"), &bad)).await;
        assert_eq!(answer.status, 400, "{answer:?}");
        assert!(answer.body["error"].is_string(), "{answer:?}");
    }
    let answer = send(post_raw(
        &c,
        &format!("{v1}/task"),
        "application/json",
        "{\"type\":",
    ))
    .await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert!(answer.content_type.starts_with("text/html"), "{answer:?}");
    assert!(
        answer.text().contains("HTTP ERROR 500")
            && answer.text().contains("com.fasterxml.jackson.core"),
        "{answer:?}"
    );
    let answer = send(post_raw(&c, &format!("{v1}/task"), "text/plain", "{}")).await;
    assert_eq!(answer.pair(), (415, &json!("")));

    let answer = send(c.get(format!("{v1}/tasks?state=bogus"))).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.text().starts_with("Invalid state : bogus"),
        "{answer:?}"
    );
    assert_eq!(
        send(c.get(format!("{v1}/isLeader"))).await.pair(),
        (200, &json!({"leader": true}))
    );
    assert_eq!(
        send(c.get(format!("{v1}/leader"))).await.pair(),
        (200, &json!(overlord))
    );
    assert_eq!(
        send(c.get(format!("{overlord}/status/health")))
            .await
            .pair(),
        (200, &json!(true))
    );
    let status = send(c.get(format!("{overlord}/status"))).await;
    assert_eq!(status.status, 200);
    assert!(status.body["version"].is_string(), "{status:?}");
    assert!(status.body["modules"].is_array(), "{status:?}");
    let memory = status.body["memory"].as_object().expect("memory");
    let mut keys: Vec<&str> = memory.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "directMemory",
            "freeMemory",
            "maxMemory",
            "totalMemory",
            "usedMemory"
        ]
    );
}

/// A task id as Druid puts it in `X-Druid-Task-Id` (0.14+): Java's form encoding, with `%20`
/// for spaces.
fn url_encoded(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-*_".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn hour_start() -> i64 {
    let now = now_millis();
    now - now.rem_euclid(HOUR_MS)
}

/// The task's status while it runs, in the 0.13+ shape with the deprecated duplicate.
fn assert_running_status(status: &Answer, task_id: &str, data_source: &str) {
    assert_eq!(status.status, 200, "{status:?}");
    assert_eq!(status.body["task"], task_id);
    let s = &status.body["status"];
    let mut keys: Vec<&str> = s
        .as_object()
        .expect("status object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "createdTime",
            "dataSource",
            "duration",
            "errorMsg",
            "groupId",
            "id",
            "location",
            "queueInsertionTime",
            "runnerStatusCode",
            "status",
            "statusCode",
            "type"
        ]
    );
    assert_eq!(
        (
            &s["id"],
            &s["groupId"],
            &s["type"],
            &s["statusCode"],
            &s["status"],
            &s["runnerStatusCode"],
            &s["duration"],
            &s["dataSource"],
            &s["errorMsg"],
            &s["queueInsertionTime"],
        ),
        (
            &json!(task_id),
            &json!(format!("index_realtime_{data_source}")),
            &json!("index_realtime"),
            &json!("RUNNING"),
            &json!("RUNNING"),
            &json!("RUNNING"),
            &json!(-1),
            &json!(data_source),
            &Value::Null,
            &json!("1970-01-01T00:00:00.000Z"),
        )
    );
}

/// The Curator service instance announced for `service` under `/druid/discovery`.
async fn discovered(zookeeper: &str, service: &str) -> Value {
    let client = zk::Client::connect(zookeeper)
        .await
        .expect("connect to ZooKeeper");
    let path = format!("/druid/discovery/{service}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(children) = client.list_children(&path).await {
            if let Some(child) = children.first() {
                let (data, _) = client
                    .get_data(&format!("{path}/{child}"))
                    .await
                    .expect("read the instance node");
                return serde_json::from_slice(&data).expect("instance node is JSON");
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing announced under {path} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submit a task like Tranquility's, find its receiver, push with producer dedup and every
/// kind of bad push, query the rows, close the firehose (handoff) and query them again.
async fn receiver_push_queries_and_handoff(t: &DruidTarget) {
    let began = Instant::now();
    let c = client();
    let overlord = t.overlord_url();
    let v1 = format!("{overlord}/druid/indexer/v1");
    let data_source = unique_name("conformance");
    let start = hour_start();
    let task_id = format!("index_realtime_{data_source}_{}_0_0", iso(start));
    let service = format!("firehose:druid:overlord:{data_source}-000-0000-0000");
    let task = realtime_task(&task_id, &data_source, &service, start);

    let submitted = send(post_json(&c, &format!("{v1}/task"), &task)).await;
    assert_eq!(submitted.pair(), (200, &json!({"task": task_id})));
    // Ids are never reusable; 28 says `Task [<id>] already exists.`, 30 has a DruidException.
    let again = send(post_json(&c, &format!("{v1}/task"), &task)).await;
    assert_eq!(again.status, 400, "{again:?}");
    assert!(again.text().contains("already exists"), "{again:?}");

    let payload = send(c.get(format!("{v1}/task/{}", segment(&task_id)))).await;
    assert_eq!(payload.status, 200);
    let p = &payload.body["payload"];
    assert_eq!(
        (
            &payload.body["task"],
            &p["id"],
            &p["groupId"],
            &p["dataSource"],
            &p["type"]
        ),
        (
            &json!(task_id),
            &json!(task_id),
            &json!(format!("index_realtime_{data_source}")),
            &json!(data_source),
            &json!("index_realtime")
        )
    );
    assert_eq!(
        (
            &p["context"]["forceTimeChunkLock"],
            &p["context"]["useLineageBasedSegmentAllocation"]
        ),
        (&json!(true), &json!(true)),
        "{p}"
    );

    let receiver = t.receiver(&task_id, &service).await;
    eprintln!(
        "{}: receiver at {} after {:.1} s; before that {:?}",
        t.name(),
        receiver.base,
        began.elapsed().as_secs_f64(),
        receiver.before_ready
    );
    // Before the firehose registers, a push finds no handler: the same 400 as for any
    // unknown name (or no connection yet, on a real peon).
    for early in &receiver.before_ready {
        assert!(
            early.status == 0
                || early.pair()
                    == (
                        400,
                        &json!({"error": format!("Can't find chatHandler for handler[{service}]")})
                    ),
            "{early:?}"
        );
    }
    let status = send(c.get(format!("{v1}/task/{}/status", segment(&task_id)))).await;
    assert_running_status(&status, &task_id, &data_source);
    let location = status.body["status"]["location"].clone();
    assert_eq!(
        format!(
            "http://{}:{}",
            location["host"].as_str().unwrap_or("?"),
            location["port"]
        ),
        receiver.base
    );
    assert_eq!(location["tlsPort"], -1);
    let running = send(c.get(format!("{v1}/runningTasks"))).await;
    let listed = running
        .body
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == task_id.as_str())
        .unwrap_or_else(|| panic!("{task_id} not in runningTasks: {running:?}"));
    assert_eq!(
        (
            &listed["location"],
            &listed["statusCode"],
            &listed["runnerStatusCode"],
            &listed["queueInsertionTime"]
        ),
        (
            &location,
            &json!("RUNNING"),
            &json!("RUNNING"),
            &listed["createdTime"]
        )
    );

    let instance = discovered(&t.zookeeper_connect(), &service).await;
    assert_eq!(instance["name"], service.as_str());
    assert_eq!(
        format!(
            "http://{}:{}",
            instance["address"].as_str().unwrap_or("?"),
            instance["port"]
        ),
        receiver.base,
        "the announced address is the task's location"
    );

    push_errors(t, &receiver.base, &service, &task_id).await;

    let push = receiver.push_url(&service);
    let batch = |body: &Value, seq: Option<&str>| {
        let mut request = post_json(&c, &push, body).header("X-Firehose-Producer-Id", "producer-1");
        if let Some(seq) = seq {
            request = request.header("X-Firehose-Producer-Seq", seq);
        }
        send(request)
    };
    let minute = 60_000;
    let first = json!([
        {"timestamp": start + minute, "page": "A", "language": "en", "added": 10},
        {"timestamp": start + minute + 10_000, "page": "A", "language": "en", "added": 5},
        {"timestamp": start + 2 * minute, "page": "B", "language": "fr", "added": 7}
    ]);
    let second = json!([
        {"timestamp": start + 4 * minute, "page": "C"},
        {"timestamp": start + 4 * minute, "page": "D", "language": "ja", "added": 3}
    ]);
    let answers = [
        batch(&first, Some("1")).await,
        batch(&first, Some("1")).await,
        batch(&first, Some("0")).await,
        batch(&second, Some("2")).await,
        batch(&second, None).await,
        batch(&second, Some("two")).await,
    ];
    let expected = [
        (200, json!({"eventCount": 3})),
        (200, json!({"eventCount": 0, "skipped": true})),
        (200, json!({"eventCount": 0, "skipped": true})),
        (200, json!({"eventCount": 2})),
        (400, json!({"error": "Producer sequence value is missing"})),
        (400, json!({"error": "Producer sequence must be a number"})),
    ];
    for (answer, (status, body)) in answers.iter().zip(&expected) {
        assert_eq!(answer.pair(), (*status, body));
        assert_eq!(answer.task_header, Some(url_encoded(&task_id)));
    }

    let broker = t.broker_url();
    queries(&broker, &data_source, start, false).await;

    // Closing the firehose ends the task with a handoff: SUCCESS, the location kept, and the
    // rows still there (on a real Druid, from the Historical that loaded the segment).
    let close = send(c.post(format!(
        "{}/druid/worker/v1/chat/{service}/shutdown?shutoffTime={}",
        receiver.base,
        iso(now_millis() - 1000)
    )))
    .await;
    assert_eq!(close.pair(), (200, &json!("")));
    // The full name goes away at the close (the 1-s close thread of a real peon may take a
    // moment); once its peon exits, nothing answers there at all.
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let answer = send(post_raw(&c, &push, "application/json", "[]")).await;
        if answer.status != 200 || Instant::now() >= deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        gone.pair()
            == (
                400,
                &json!({"error": format!("Can't find chatHandler for handler[{service}]")})
            )
            || (t.is_real() && gone.status == 0),
        "push after the close: {gone:?}"
    );
    let done = wait_finished(&c, &overlord, &task_id).await;
    let s = &done.body["status"];
    assert_eq!(
        (
            &s["statusCode"],
            &s["status"],
            &s["runnerStatusCode"],
            &s["location"]
        ),
        (
            &json!("SUCCESS"),
            &json!("SUCCESS"),
            &json!("WAITING"),
            &location
        ),
        "{done:?}"
    );
    assert!(s["duration"].as_i64().unwrap_or(-1) >= 0, "{done:?}");
    let complete = send(c.get(format!("{v1}/completeTasks"))).await;
    let listed = complete
        .body
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == task_id.as_str())
        .unwrap_or_else(|| panic!("{task_id} not in completeTasks: {complete:?}"));
    assert_eq!(
        (
            &listed["statusCode"],
            &listed["runnerStatusCode"],
            &listed["location"],
            &listed["queueInsertionTime"]
        ),
        (
            &json!("SUCCESS"),
            &json!("NONE"),
            &location,
            &json!("1970-01-01T00:00:00.000Z")
        )
    );
    queries(&broker, &data_source, start, true).await;
    eprintln!(
        "{}: push, dedup, queries and handoff took {:.1} s",
        t.name(),
        began.elapsed().as_secs_f64()
    );
}

/// Pushes Druid refuses, each with the answer both give.
async fn push_errors(t: &DruidTarget, base: &str, service: &str, task_id: &str) {
    let c = client();
    let push = format!("{base}/druid/worker/v1/chat/{service}/push-events");
    let unknown = send(post_raw(
        &c,
        &format!("{base}/druid/worker/v1/chat/nobody/push-events"),
        "application/json",
        "[]",
    ))
    .await;
    assert_eq!(
        unknown.pair(),
        (
            400,
            &json!({"error": "Can't find chatHandler for handler[nobody]"})
        )
    );
    let csv = send(post_raw(&c, &push, "text/csv", "a,b")).await;
    assert_eq!(
        (csv.pair(), csv.task_header.clone()),
        ((415, &json!("")), Some(url_encoded(task_id)))
    );
    for body in ["", "{\"a\":1}", "[1,2]", "[{\"timestamp\":"] {
        let answer = send(post_raw(&c, &push, "application/json", body)).await;
        assert_eq!(answer.status, 500, "body {body:?}: {answer:?}");
        assert!(
            answer.body["error"].is_string(),
            "body {body:?}: {answer:?}"
        );
    }
    // One unparseable event fails the whole request (nothing of it is buffered: the queries
    // later count none of these rows).
    let unparseable = json!([
        {"timestamp": hour_start() + 30_000, "page": "Z", "added": 1000},
        {"timestamp": "whenever", "page": "Z"}
    ]);
    let answer = send(post_json(&c, &push, &unparseable)).await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert!(answer.content_type.starts_with("text/html"), "{answer:?}");
    assert!(
        answer
            .text()
            .contains("ParseException: Timestamp[whenever] is unparseable!"),
        "{}: {answer:?}",
        t.name()
    );
    let mismatch =
        send(post_raw(&c, &push, "application/json", "[]").header("X-Druid-Task-Id", "other-task"))
            .await;
    assert_eq!(
        mismatch.pair(),
        (
            400,
            &json!({"error": format!("Requested taskId[other-task] doesn't match with taskId[{task_id}]")})
        )
    );
}

/// Native queries over the rows pushed by [`receiver_push_queries_and_handoff`]: five events
/// in four rolled-up rows (minute 1: A/en twice, minute 2: B/fr, minute 4: C without
/// language or `added`, D/ja).
async fn queries(broker: &str, data_source: &str, start: i64, handed_off: bool) {
    let phase = if handed_off {
        "after the handoff"
    } else {
        "while the task runs"
    };
    let minute = 60_000;
    let at = |m: i64| iso(start + m * minute);
    let hour = format!("{}/{}", iso(start), iso(start + HOUR_MS));
    let aggs = json!([
        {"type": "longSum", "name": "n", "fieldName": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
        {"type": "count", "name": "rows"},
        {"type": "doubleMax", "name": "mx", "fieldName": "added"}
    ]);
    let sums = json!([
        {"type": "longSum", "name": "n", "fieldName": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"}
    ]);
    let timeseries = |intervals: &str, granularity: &str, aggs: &Value, filter: Value| {
        json!({"queryType": "timeseries", "dataSource": data_source, "intervals": [intervals],
               "granularity": granularity, "aggregations": aggs, "filter": filter})
    };
    let one = |ts: String, result: Value| json!([{"timestamp": ts, "result": result}]);
    let mut cases: Vec<(&str, Value, Value)> = vec![
        (
            "timeseries, all",
            timeseries(&hour, "all", &aggs, Value::Null),
            one(at(1), json!({"n": 5, "added": 25, "rows": 4, "mx": 15.0})),
        ),
        (
            // Empty buckets between rows are null for sums and max, 0 for count.
            "timeseries, minute",
            timeseries(
                &format!("{}/{}", at(1), at(5)),
                "minute",
                &aggs,
                Value::Null,
            ),
            json!([
                {"timestamp": at(1), "result": {"n": 2, "added": 15, "rows": 1, "mx": 15.0}},
                {"timestamp": at(2), "result": {"n": 1, "added": 7, "rows": 1, "mx": 7.0}},
                {"timestamp": at(3), "result": {"n": null, "added": null, "rows": 0, "mx": null}},
                {"timestamp": at(4), "result": {"n": 2, "added": 3, "rows": 2, "mx": 3.0}}
            ]),
        ),
        (
            "timeseries over Druid's eternity",
            timeseries(
                "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z",
                "all",
                &sums,
                Value::Null,
            ),
            one(at(1), json!({"n": 5, "added": 25})),
        ),
        (
            "timeseries, or of selector and in",
            timeseries(
                &hour,
                "all",
                &sums,
                json!({"type": "or", "fields": [
                {"type": "selector", "dimension": "page", "value": "A"},
                {"type": "in", "dimension": "language", "values": ["fr", "ja"]}]}),
            ),
            one(at(1), json!({"n": 4, "added": 25})),
        ),
        (
            "timeseries, lexicographic bound",
            timeseries(
                &hour,
                "all",
                &sums,
                json!({"type": "bound", "dimension": "page",
                "lower": "B", "upper": "C", "ordering": "lexicographic"}),
            ),
            one(at(1), json!({"n": 2, "added": 7})),
        ),
        (
            "timeseries, regex and like",
            timeseries(
                &hour,
                "all",
                &sums,
                json!({"type": "and", "fields": [
                {"type": "regex", "dimension": "page", "pattern": "^[ABD]"},
                {"type": "like", "dimension": "language", "pattern": "%r"}]}),
            ),
            one(at(1), json!({"n": 1, "added": 7})),
        ),
        (
            "timeseries, interval filter",
            timeseries(
                &hour,
                "all",
                &sums,
                json!({"type": "interval", "dimension": "__time",
                "intervals": [format!("{}/{}", at(2), at(5))]}),
            ),
            one(at(1), json!({"n": 3, "added": 10})),
        ),
        (
            "timeseries, selector on a missing value",
            timeseries(
                &hour,
                "all",
                &aggs,
                json!({"type": "selector", "dimension": "language", "value": null}),
            ),
            one(at(1), json!({"n": 1, "added": null, "rows": 1, "mx": null})),
        ),
        (
            "timeseries, no such dataSource",
            json!({"queryType": "timeseries", "dataSource": format!("{data_source}-none"),
                   "intervals": [hour], "granularity": "all", "aggregations": aggs}),
            one(
                iso(start),
                json!({"n": null, "added": null, "rows": 0, "mx": null}),
            ),
        ),
        (
            "topN",
            json!({"queryType": "topN", "dataSource": data_source, "intervals": [hour],
                   "granularity": "all", "dimension": "page", "metric": "added", "threshold": 3,
                   "aggregations": sums}),
            one(
                at(1),
                json!([
                    {"page": "A", "n": 2, "added": 15},
                    {"page": "B", "n": 1, "added": 7},
                    {"page": "D", "n": 1, "added": 3}
                ]),
            ),
        ),
        (
            // groupBy labels granularity `all` with the query interval's start.
            "groupBy, null group first",
            json!({"queryType": "groupBy", "dataSource": data_source, "intervals": [hour],
                   "granularity": "all", "dimensions": ["language"], "aggregations": sums}),
            json!([
                {"version": "v1", "timestamp": iso(start), "event": {"language": null, "n": 1, "added": null}},
                {"version": "v1", "timestamp": iso(start), "event": {"language": "en", "n": 2, "added": 15}},
                {"version": "v1", "timestamp": iso(start), "event": {"language": "fr", "n": 1, "added": 7}},
                {"version": "v1", "timestamp": iso(start), "event": {"language": "ja", "n": 1, "added": 3}}
            ]),
        ),
        (
            "groupBy, having, post-aggregation and limitSpec",
            json!({"queryType": "groupBy", "dataSource": data_source, "intervals": [hour],
                   "granularity": "all",
                   "dimensions": [{"type": "default", "dimension": "page", "outputName": "p"}],
                   "aggregations": sums,
                   "postAggregations": [{"type": "arithmetic", "name": "twice", "fn": "*",
                       "fields": [{"type": "fieldAccess", "fieldName": "added"},
                                  {"type": "constant", "value": 2}]}],
                   "having": {"type": "greaterThan", "aggregation": "added", "value": 5},
                   "limitSpec": {"type": "default", "limit": 5,
                       "columns": [{"dimension": "added", "direction": "descending", "dimensionOrder": "numeric"}]}}),
            json!([
                {"version": "v1", "timestamp": iso(start), "event": {"p": "A", "n": 2, "added": 15, "twice": 30.0}},
                {"version": "v1", "timestamp": iso(start), "event": {"p": "B", "n": 1, "added": 7, "twice": 14.0}}
            ]),
        ),
        (
            // Rows holding each value; labelled with the segment's start; by value then
            // dimension (uppercase first).
            "search, insensitive_contains",
            json!({"queryType": "search", "dataSource": data_source, "intervals": [hour],
                   "granularity": "all", "query": {"type": "insensitive_contains", "value": "a"}}),
            one(
                iso(start),
                json!([
                    {"dimension": "page", "value": "A", "count": 1},
                    {"dimension": "language", "value": "ja", "count": 1}
                ]),
            ),
        ),
        (
            // One result per segment, labelled with its start whatever the granularity.
            "search, fragment in one dimension, strlen order, minute granularity",
            json!({"queryType": "search", "dataSource": data_source, "intervals": [hour],
                   "granularity": "minute", "searchDimensions": ["language"],
                   "query": {"type": "fragment", "values": ["R", "f"]},
                   "sort": {"type": "strlen"}}),
            one(
                iso(start),
                json!([{"dimension": "language", "value": "fr", "count": 1}]),
            ),
        ),
        (
            "timeBoundary",
            json!({"queryType": "timeBoundary", "dataSource": data_source}),
            one(at(1), json!({"minTime": at(1), "maxTime": at(4)})),
        ),
        (
            "dataSourceMetadata",
            json!({"queryType": "dataSourceMetadata", "dataSource": data_source}),
            one(at(4), json!({"maxIngestedEventTime": at(4)})),
        ),
    ];
    for (what, query, expected) in cases.drain(..) {
        let answer = query_until(broker, &query, &expected, VISIBLE).await;
        assert_eq!(
            answer.pair(),
            (200, &expected),
            "{phase}: query [{what}] differs"
        );
    }

    // Scans: the rows in time order with their row signature (segment ids carry a version
    // that differs run to run).
    let scan = |columns: Value, format: &str| {
        json!({"queryType": "scan", "dataSource": data_source, "intervals": [hour],
               "columns": columns, "limit": 3, "resultFormat": format})
    };
    let c = client();
    let answer = send(post_json(
        &c,
        &format!("{broker}/druid/v2"),
        &scan(
            json!([
                "__time",
                "page",
                "language",
                "added",
                "count",
                "nonexistent"
            ]),
            "list",
        ),
    ))
    .await;
    assert_eq!(answer.status, 200, "{phase}: scan: {answer:?}");
    let batch = &answer.body[0];
    assert!(
        batch["segmentId"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{data_source}_{hour}_").replace('/', "_")),
        "{phase}: scan segment id: {answer:?}"
    );
    assert_eq!(
        (&batch["columns"], &batch["events"], &batch["rowSignature"]),
        (
            &json!([
                "__time",
                "page",
                "language",
                "added",
                "count",
                "nonexistent"
            ]),
            &json!([
                {"__time": start + minute, "page": "A", "language": "en", "added": 15, "count": 2, "nonexistent": null},
                {"__time": start + 2 * minute, "page": "B", "language": "fr", "added": 7, "count": 1, "nonexistent": null},
                {"__time": start + 4 * minute, "page": "C", "language": null, "added": null, "count": 1, "nonexistent": null}
            ]),
            &json!([
                {"name": "__time", "type": "LONG"}, {"name": "page", "type": "STRING"},
                {"name": "language", "type": "STRING"}, {"name": "added", "type": "LONG"},
                {"name": "count", "type": "LONG"}, {"name": "nonexistent"}
            ])
        ),
        "{phase}: scan list"
    );
    let answer = send(post_json(
        &c,
        &format!("{broker}/druid/v2"),
        &scan(json!([]), "compactedList"),
    ))
    .await;
    let batch = &answer.body[0];
    // Metrics in metricsSpec order while the task runs; the segment handed off has them
    // sorted by name.
    let expected = if handed_off {
        (
            json!(["__time", "page", "language", "added", "count"]),
            json!([
                [start + minute, "A", "en", 15, 2],
                [start + 2 * minute, "B", "fr", 7, 1],
                [start + 4 * minute, "C", null, null, 1]
            ]),
        )
    } else {
        (
            json!(["__time", "page", "language", "count", "added"]),
            json!([
                [start + minute, "A", "en", 2, 15],
                [start + 2 * minute, "B", "fr", 1, 7],
                [start + 4 * minute, "C", null, 1, null]
            ]),
        )
    };
    assert_eq!(
        (&batch["columns"], &batch["events"]),
        (&expected.0, &expected.1),
        "{phase}: scan compactedList: {answer:?}"
    );

    // Segment metadata (merged over the one segment; its id carries a version and a realtime
    // segment's data interval ends with its last row, so neither is compared). A handed-off
    // segment reads as a merged one: metric nulls show, and a null is the least value.
    let answer = send(post_json(
        &c,
        &format!("{broker}/druid/v2"),
        &json!({"queryType": "segmentMetadata", "dataSource": data_source, "intervals": [hour],
                "merge": true, "analysisTypes": ["cardinality", "minmax", "aggregators", "rollup"]}),
    ))
    .await;
    let mut meta = answer.body[0].clone();
    let meta = meta.as_object_mut().expect("segment analysis");
    meta.remove("id");
    meta.remove("intervals");
    let column = |ty: &str, nulls: bool, card: Value, min: Value, max: Value| {
        json!({"typeSignature": ty, "type": ty, "hasMultipleValues": false, "hasNulls": nulls,
               "size": 0, "cardinality": card, "minValue": min, "maxValue": max, "errorMessage": null})
    };
    let language_min = if handed_off { json!(null) } else { json!("en") };
    assert_eq!(
        Value::Object(meta.clone()),
        json!({
            "columns": {
                "__time": column("LONG", false, Value::Null, Value::Null, Value::Null),
                "page": column("STRING", false, json!(4), json!("A"), json!("D")),
                "language": column("STRING", true, json!(4), language_min, json!("ja")),
                "count": column("LONG", false, Value::Null, Value::Null, Value::Null),
                "added": column("LONG", handed_off, Value::Null, Value::Null, Value::Null)
            },
            "size": 0, "numRows": 4,
            "aggregators": {
                "added": {"type": "longSum", "name": "added", "fieldName": "added"},
                "count": {"type": "longSum", "name": "count", "fieldName": "count"}
            },
            "timestampSpec": null, "queryGranularity": null, "rollup": true
        }),
        "{phase}: segmentMetadata"
    );
    // The Broker's view of the dataSource: a realtime segment announces no dimensions.
    let described = send(c.get(format!("{broker}/druid/v2/datasources/{data_source}"))).await;
    let dimensions = if handed_off {
        json!(["language", "page"])
    } else {
        json!([])
    };
    assert_eq!(
        described.pair(),
        (
            200,
            &json!({"dimensions": dimensions, "metrics": ["added", "count"]})
        ),
        "{phase}"
    );

    // SQL through the Broker: rows, events and sums; an unknown table in Druid's
    // DruidException shape.
    let sql = |query: String| {
        send(post_json(
            &c,
            &format!("{broker}/druid/v2/sql"),
            &json!({"query": query}),
        ))
    };
    let answer = sql(format!(
        "SELECT COUNT(*) AS n, SUM(\"count\") AS events, SUM(added) AS added FROM \"{data_source}\""
    ))
    .await;
    assert_eq!(
        answer.pair(),
        (200, &json!([{"n": 4, "events": 5, "added": 25}])),
        "{phase}: SQL"
    );
    let answer = sql(format!("SELECT COUNT(*) FROM \"{data_source}-none\"")).await;
    assert_eq!(
        (
            answer.status,
            &answer.body["error"],
            &answer.body["errorCode"]
        ),
        (400, &json!("druidException"), &json!("invalidInput")),
        "{phase}: SQL on an unknown table: {answer:?}"
    );

    // Queries that do not map: the Broker's 500 naming Jackson's exception; malformed JSON 400.
    let bogus = send(post_json(
        &c,
        &format!("{broker}/druid/v2"),
        &json!({"queryType": "bogus", "dataSource": data_source}),
    ))
    .await;
    assert_eq!(
        (
            bogus.status,
            &bogus.body["error"],
            &bogus.body["errorClass"]
        ),
        (
            500,
            &json!("Unknown exception"),
            &json!("com.fasterxml.jackson.databind.exc.InvalidTypeIdException")
        ),
        "{bogus:?}"
    );
    let no_intervals = send(post_json(
        &c,
        &format!("{broker}/druid/v2"),
        &json!({"queryType": "timeseries", "dataSource": data_source, "granularity": "all"}),
    ))
    .await;
    assert_eq!(
        (no_intervals.status, &no_intervals.body["errorClass"]),
        (
            500,
            &json!("com.fasterxml.jackson.databind.exc.ValueInstantiationException")
        ),
        "{no_intervals:?}"
    );
    let malformed = send(post_raw(
        &c,
        &format!("{broker}/druid/v2"),
        "application/json",
        "{oops",
    ))
    .await;
    assert_eq!(
        (
            malformed.status,
            &malformed.body["error"],
            &malformed.body["errorClass"]
        ),
        (
            400,
            &json!("Json parse failed"),
            &json!("com.fasterxml.jackson.core.JsonParseException")
        ),
        "{malformed:?}"
    );
}

/// An Overlord shutdown kills a running task: FAILED with the reason Druid gives; shutting
/// a finished task down again is still a 200.
async fn overlord_shutdown_fails_the_task(t: &DruidTarget) {
    let c = client();
    let overlord = t.overlord_url();
    let data_source = unique_name("conformance-kill");
    let start = hour_start();
    let task_id = format!("index_realtime_{data_source}_{}_0_0", iso(start));
    let service = format!("firehose:druid:overlord:{data_source}-000-0000-0000");
    let task = realtime_task(&task_id, &data_source, &service, start);
    let submitted = send(post_json(
        &c,
        &format!("{overlord}/druid/indexer/v1/task"),
        &task,
    ))
    .await;
    assert_eq!(submitted.status, 200, "submit: {submitted:?}");
    find_receiver(&c, &overlord, &task_id, &service).await;

    let url = format!(
        "{overlord}/druid/indexer/v1/task/{}/shutdown",
        segment(&task_id)
    );
    let shutdown = send(c.post(&url)).await;
    assert_eq!(shutdown.pair(), (200, &json!({"task": task_id})));
    let done = wait_finished(&c, &overlord, &task_id).await;
    assert_eq!(
        (
            &done.body["status"]["statusCode"],
            &done.body["status"]["errorMsg"],
            &done.body["status"]["duration"]
        ),
        (
            &json!("FAILED"),
            &json!("Shutdown request from user"),
            &json!(-1)
        ),
        "{done:?}"
    );
    let again = send(c.post(&url)).await;
    assert_eq!(again.pair(), (200, &json!({"task": task_id})));
}

/// Runs `check` against druid-local.
macro_rules! druid_local_test {
    ($name:ident, $check:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let target = DruidTarget::local().await;
            $check(&target).await;
            target.stop().await;
        }
    };
}

druid_local_test!(druid_local_overlord_api, overlord_api);
druid_local_test!(
    druid_local_receiver_push_queries_and_handoff,
    receiver_push_queries_and_handoff
);
druid_local_test!(
    druid_local_overlord_shutdown_fails_the_task,
    overlord_shutdown_fails_the_task
);
druid_local_test!(druid_local_realtime_index_it, druid_it::realtime);
druid_local_test!(
    druid_local_realtime_index_it_0_17_1,
    druid_it::realtime_0_17_1
);
druid_local_test!(
    druid_local_appenderator_realtime_index_it,
    druid_it::appenderator
);

/// Every check against one real cluster, in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_conformance() {
    let Some(target) = DruidTarget::real(REALTIME_RELEASE, "real_druid_conformance").await else {
        return;
    };
    let began = Instant::now();
    overlord_api(&target).await;
    eprintln!(
        "overlord_api passed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    receiver_push_queries_and_handoff(&target).await;
    eprintln!(
        "receiver_push_queries_and_handoff passed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    overlord_shutdown_fails_the_task(&target).await;
    eprintln!(
        "overlord_shutdown_fails_the_task passed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    druid_it::realtime(&target).await;
    eprintln!(
        "druid_it::realtime passed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    druid_it::appenderator(&target).await;
    eprintln!(
        "druid_it::appenderator passed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    target.stop().await;
}

/// The modern release (31+, no realtime tasks) starts with its Kafka indexing extension loaded
/// and answers the supervisor API that the supervisor backend talks to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_modern_release_loads_kafka_indexing() {
    let test = "real_druid_modern_release_loads_kafka_indexing";
    let Some(target) = DruidTarget::real(MODERN_RELEASE, test).await else {
        return;
    };
    let c = client();
    let status = send(c.get(format!("{}/status", target.overlord_url()))).await;
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
        "modules: {modules:?}"
    );
    let supervisors = send(c.get(format!(
        "{}/druid/indexer/v1/supervisor",
        target.overlord_url()
    )))
    .await;
    assert_eq!(supervisors.pair(), (200, &json!([])));
    target.stop().await;
}
