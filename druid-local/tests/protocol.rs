//! Protocol tests: every endpoint's shapes and status codes against the Druid wire reference,
//! including the bad inputs Druid rejects, over real sockets.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const SERVICE: &str = "firehose:druid:overlord:wiki-010-0000-0000";

#[tokio::test]
async fn submit_validation_and_status_shapes() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    let task_url = format!("{base}/druid/indexer/v1/task");

    // Wrong content type: 415 without a body.
    let r = c
        .post(&task_url)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(r.text().await.unwrap(), "");
    // Malformed JSON: Jetty's 500 page, naming the parse exception.
    let r = c
        .post(&task_url)
        .header("Content-Type", "application/json")
        .body("{\"type\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("HTTP ERROR 500") && page.contains("JsonParseException"));

    let good = task("t_ok", "wiki", SERVICE, &iso_in(60), 100);
    let mut bad_cases: Vec<(Value, &str)> = Vec::new();
    let mut t = good.clone();
    t["type"] = json!("index_parallel");
    bad_cases.push((t, "index_parallel"));
    let mut t = good.clone();
    t.as_object_mut().unwrap().remove("type");
    bad_cases.push((t, "missing type id"));
    let mut t = good.clone();
    t["spec"].as_object_mut().unwrap().remove("dataSchema");
    bad_cases.push((t, "dataSchema"));
    let mut t = good.clone();
    t["spec"]["ioConfig"]["firehose"]["delegate"]["delegate"]["type"] = json!("kafka");
    bad_cases.push((t, "'kafka'"));
    let mut t = good.clone();
    t["resource"]["requiredCapacity"] = json!(0);
    bad_cases.push((t, "requiredCapacity"));
    let mut t = good.clone();
    t["resource"]
        .as_object_mut()
        .unwrap()
        .remove("requiredCapacity");
    bad_cases.push((t, "requiredCapacity"));
    let mut t = good.clone();
    t["spec"]["dataSchema"]["metricsSpec"] =
        json!([{"type": "thetaSketch", "name": "u", "fieldName": "user"}]);
    bad_cases.push((t, "thetaSketch"));
    let mut t = good.clone();
    t["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("FORTNIGHT");
    bad_cases.push((t, "FORTNIGHT"));
    let mut t = good.clone();
    t["id"] = json!("bad\tid");
    bad_cases.push((t, "whitespace"));
    for (body, needle) in bad_cases {
        let (status, v) = post(&c, &task_url, &body).await;
        assert_eq!(status, 400, "expected 400 for {needle}: {v}");
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("error body for {needle}: {v}"));
        assert!(
            msg.contains(needle),
            "error for {needle} should name it: {msg}"
        );
    }

    // Success, then duplicate id (Druid 30 DruidException shape).
    let (status, v) = post(&c, &task_url, &good).await;
    assert_eq!((status, v.clone()), (200, json!({"task": "t_ok"})));
    let (status, v) = post(&c, &task_url, &good).await;
    assert_eq!(status, 400);
    assert_eq!(v["errorCode"], "entryAlreadyExists");

    // Status in the 0.13+ shape with the deprecated duplicate.
    wait_handler(&c, &base, SERVICE).await;
    let (status, v) = get(&c, &format!("{base}/druid/indexer/v1/task/t_ok/status")).await;
    assert_eq!(status, 200);
    let s = &v["status"];
    assert_eq!(v["task"], "t_ok");
    for key in [
        "id",
        "groupId",
        "type",
        "createdTime",
        "queueInsertionTime",
        "statusCode",
        "status",
        "runnerStatusCode",
        "duration",
        "location",
        "dataSource",
        "errorMsg",
    ] {
        assert!(s.get(key).is_some(), "status lacks {key}: {s}");
    }
    assert_eq!(s["statusCode"], "RUNNING");
    assert_eq!(s["status"], "RUNNING");
    assert_eq!(s["groupId"], "index_realtime_wiki");
    assert_eq!(s["duration"], -1);
    assert_eq!(
        s["location"],
        json!({"host": "127.0.0.1", "port": druid.port(), "tlsPort": -1})
    );

    // Unknown task: Druid's task filter answers 404 in plain text for status and payload.
    let unknown = json!("Cannot find any task with id: [nope]");
    let (status, v) = get(&c, &format!("{base}/druid/indexer/v1/task/nope/status")).await;
    assert_eq!((status, v), (404, unknown.clone()));
    let (status, v) = get(&c, &format!("{base}/druid/indexer/v1/task/nope")).await;
    assert_eq!((status, v), (404, unknown));
    let (status, v) = get(&c, &format!("{base}/druid/indexer/v1/task/t_ok")).await;
    assert_eq!(status, 200);
    assert_eq!(v["payload"]["id"], "t_ok");
    assert_eq!(v["payload"]["groupId"], "index_realtime_wiki");
    assert_eq!(v["payload"]["dataSource"], "wiki");
    assert_eq!(
        v["payload"]["context"],
        json!({"forceTimeChunkLock": true, "useLineageBasedSegmentAllocation": true})
    );

    // Lists.
    let (_, running) = get(&c, &format!("{base}/druid/indexer/v1/runningTasks")).await;
    assert_eq!(running.as_array().unwrap().len(), 1);
    assert_eq!(running[0]["id"], "t_ok");
    assert_eq!(running[0]["location"]["port"], druid.port());
    assert_eq!(
        get(&c, &format!("{base}/druid/indexer/v1/pendingTasks"))
            .await
            .1,
        json!([])
    );
    assert_eq!(
        get(&c, &format!("{base}/druid/indexer/v1/completeTasks"))
            .await
            .1,
        json!([])
    );
    let (status, _) = get(&c, &format!("{base}/druid/indexer/v1/tasks?state=bogus")).await;
    assert_eq!(status, 400);

    // Shutdown: 200 for a known task, 404 for an unknown one; FAILED with Druid's message; no
    // handoff; the location stays.
    let (status, v) = post(
        &c,
        &format!("{base}/druid/indexer/v1/task/t_ok/shutdown"),
        &json!({}),
    )
    .await;
    assert_eq!((status, v), (200, json!({"task": "t_ok"})));
    let (status, v) = post(
        &c,
        &format!("{base}/druid/indexer/v1/task/unknown/shutdown"),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, v),
        (404, json!("Cannot find any task with id: [unknown]"))
    );
    let (_, v) = get(&c, &format!("{base}/druid/indexer/v1/task/t_ok/status")).await;
    assert_eq!(v["status"]["statusCode"], "FAILED");
    assert_eq!(v["status"]["errorMsg"], "Shutdown request from user");
    assert_eq!(v["status"]["duration"], -1, "Druid records no duration");
    assert_eq!(v["status"]["location"]["port"], druid.port());
    let (_, complete) = get(&c, &format!("{base}/druid/indexer/v1/completeTasks")).await;
    assert_eq!(complete[0]["runnerStatusCode"], "NONE");

    // Leader, health, status.
    let r = c
        .get(format!("{base}/druid/indexer/v1/leader"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        format!("http://127.0.0.1:{}", druid.port())
    );
    assert_eq!(
        get(&c, &format!("{base}/druid/indexer/v1/isLeader"))
            .await
            .1,
        json!({"leader": true})
    );
    assert_eq!(
        get(&c, &format!("{base}/status/health")).await,
        (200, json!(true))
    );
    let (status, v) = get(&c, &format!("{base}/status")).await;
    assert_eq!(status, 200);
    assert!(v["version"].is_string() && v["modules"].is_array());
    druid.shutdown().await;
}

#[tokio::test]
async fn push_events_bad_inputs_and_dedup() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_push", "wiki", SERVICE, &iso_in(60), 100),
    )
    .await;
    wait_handler(&c, &base, SERVICE).await;
    let push = format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events");

    // Unknown handler: 400 JSON (Druid 0.15 to 30).
    let (status, v) = post(
        &c,
        &format!("{base}/druid/worker/v1/chat/nobody/push-events"),
        &json!([]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "Can't find chatHandler for handler[nobody]");
    // Content type.
    let r = c
        .post(&push)
        .header("Content-Type", "text/csv")
        .body("a,b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // Malformed bodies: 500 with a JSON error.
    for body in ["", "{\"a\":1}", "[1,2]", "[{\"timestamp\":"] {
        let r = c
            .post(&push)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 500, "body {body:?}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string());
    }
    // An unparseable event: Jetty's 500 page, and nothing of the batch is buffered.
    let r = c
        .post(&push)
        .header("Content-Type", "application/json")
        .body(json!([{"timestamp": "2024-01-01T10:00:00Z", "page": "A", "added": 1}, {"timestamp": "whenever", "page": "B"}]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("ParseException: Timestamp[whenever] is unparseable!"));

    // Task id header: mismatch 400; the response names the task.
    let r = c
        .post(&push)
        .header("Content-Type", "application/json")
        .header("X-Druid-Task-Id", "other")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["X-Druid-Task-Id"], "t_push");

    // Producer sequence dedup.
    let ev = json!([{"timestamp": "2024-01-01T10:00:00Z", "page": "A", "added": 1}]).to_string();
    let send = |seq: Option<&str>| {
        let mut rb = c
            .post(&push)
            .header("Content-Type", "application/json")
            .header("X-Firehose-Producer-Id", "p1");
        if let Some(s) = seq {
            rb = rb.header("X-Firehose-Producer-Seq", s);
        }
        rb.body(ev.clone()).send()
    };
    let r = send(Some("5")).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"eventCount": 1}));
    let r = send(Some("5")).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"eventCount": 0, "skipped": true})
    );
    let r = send(Some("3")).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"eventCount": 0, "skipped": true})
    );
    let r = send(Some("9")).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"eventCount": 1}));
    let r = send(None).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "Producer sequence value is missing"})
    );
    let r = send(Some("x")).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "Producer sequence must be a number"})
    );

    // Smile in, Smile out; the alias answers too.
    let body = serde_smile::to_vec(
        &json!([{"timestamp": "2024-01-01T10:00:30Z", "page": "B", "added": 2}]),
    )
    .unwrap();
    let r = c
        .post(format!(
            "{base}/druid/worker/v1/chat/wiki-010-0000-0000/push-events"
        ))
        .header("Content-Type", "application/x-jackson-smile")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-jackson-smile");
    let v: Value = serde_smile::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v, json!({"eventCount": 1}));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let q = json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": ["2024-01-01T10:00Z/2024-01-01T11:00Z"], "granularity": "all",
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}]});
    let v = query(&c, &base, &q).await;
    assert_eq!(
        v,
        json!([{"timestamp": "2024-01-01T10:00:00.000Z", "result": {"events": 3, "added": 4}}])
    );
    let (_, m) = get(&c, &format!("{base}/druid-local/v1/task/t_push/metrics")).await;
    assert_eq!(m["skippedRequests"], 2);
    druid.shutdown().await;
}

#[tokio::test]
async fn back_pressure_clip_and_window_rejection() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    // A buffer of 2 rows; 5 rows in one request must wait for the indexer, then all land.
    post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_bp", "bp", SERVICE, &iso_in(60), 2),
    )
    .await;
    wait_handler(&c, &base, SERVICE).await;
    let push = format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events");
    let rows: Vec<Value> = (0..5)
        .map(|i| json!({"timestamp": format!("2024-01-01T10:0{i}:00Z"), "page": "A", "added": 1}))
        .collect();
    let (status, v) = post(&c, &push, &Value::Array(rows)).await;
    assert_eq!((status, v), (200, json!({"eventCount": 5})));
    // Outside the clipped interval: acknowledged, then dropped (counted apart).
    let (status, v) = post(
        &c,
        &push,
        &json!([{"timestamp": "2024-01-01T12:00:00Z", "page": "Z"}]),
    )
    .await;
    assert_eq!((status, v), (200, json!({"eventCount": 1})));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, m) = get(&c, &format!("{base}/druid-local/v1/task/t_bp/metrics")).await;
    assert_eq!(
        (
            m["processed"].clone(),
            m["clipped"].clone(),
            m["thrownAway"].clone()
        ),
        (json!(5), json!(1), json!(0))
    );

    // serverTime window: an event an hour old is thrown away, a current one is processed.
    let mut spec = task("t_win", "win", "firehose:win", &iso_in(60), 100);
    spec["spec"]["tuningConfig"]["rejectionPolicy"] = json!({"type": "serverTime"});
    spec["spec"]["ioConfig"]["firehose"] = spec["spec"]["ioConfig"]["firehose"]["delegate"].clone();
    post(&c, &format!("{base}/druid/indexer/v1/task"), &spec).await;
    wait_handler(&c, &base, "firehose:win").await;
    let now = druid_local::time::iso(druid_local::time::now_millis());
    let old = druid_local::time::iso(druid_local::time::now_millis() - 3_600_000);
    let (status, v) = post(
        &c,
        &format!("{base}/druid/worker/v1/chat/firehose:win/push-events"),
        &json!([{"timestamp": now, "page": "A"}, {"timestamp": old, "page": "B"}]),
    )
    .await;
    assert_eq!((status, v), (200, json!({"eventCount": 2})));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, m) = get(&c, &format!("{base}/druid-local/v1/task/t_win/metrics")).await;
    assert_eq!(
        (m["processed"].clone(), m["thrownAway"].clone()),
        (json!(1), json!(1))
    );
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_buffer_blocks_the_request_until_space_frees() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_block", "blk", SERVICE, &iso_in(60), 1),
    )
    .await;
    wait_handler(&c, &base, SERVICE).await;
    let recv = druid.shared().handler(SERVICE, None).unwrap();
    // Hold the sink's write lock so the indexer cannot take rows: the buffer (1 row) fills.
    let rows = |n: usize| {
        recv.parser
            .parse_json(
                Value::Array(
                    (0..n)
                        .map(|_| json!({"timestamp": "2024-01-01T10:00:00Z", "page": "A"}))
                        .collect(),
                )
                .to_string()
                .as_bytes(),
            )
            .unwrap()
    };
    recv.push(rows(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let segs = druid.shared().store.view(
        "blk",
        &[druid_local::time::Interval::parse("2024-01-01/2024-01-02").unwrap()],
    );
    // Hold the sink's write lock on a plain thread until told to release it.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let seg = segs[0].clone();
    let holder = std::thread::spawn(move || {
        let _guard = seg.index.write();
        locked_tx.send(()).unwrap();
        release_rx.recv().ok();
    });
    locked_rx.recv().unwrap();
    recv.push(rows(1)).await.unwrap();
    let push = format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events");
    let body = json!([{"timestamp": "2024-01-01T10:00:00Z", "page": "A"}, {"timestamp": "2024-01-01T10:00:00Z", "page": "A"}]).to_string();
    let pending = tokio::spawn({
        let c = c.clone();
        async move {
            c.post(push)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !pending.is_finished(),
        "a full buffer makes the request wait"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("request completes once space frees")
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    druid.shutdown().await;
}

#[tokio::test]
async fn queries_shapes_and_errors() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_q", "wiki", SERVICE, &iso_in(60), 1000),
    )
    .await;
    wait_handler(&c, &base, SERVICE).await;
    let events = json!([
        {"timestamp": "2024-01-01T10:00:10Z", "page": "A", "language": "en", "added": 10},
        {"timestamp": "2024-01-01T10:00:40Z", "page": "A", "language": "en", "added": 5},
        {"timestamp": "2024-01-01T10:01:00Z", "page": "B", "language": "fr", "added": 7},
        {"timestamp": "2024-01-01T10:03:00Z", "page": "C", "added": 1}
    ]);
    post(
        &c,
        &format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events"),
        &events,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let iv = "2024-01-01T10:00:00Z/2024-01-01T11:00:00Z";
    let aggs = json!([{"type": "longSum", "name": "n", "fieldName": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}]);

    let v = query(&c, &base, &json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": iv, "granularity": "minute", "aggregations": aggs})).await;
    assert_eq!(
        v,
        json!([
            {"timestamp": "2024-01-01T10:00:00.000Z", "result": {"n": 2, "added": 15}},
            {"timestamp": "2024-01-01T10:01:00.000Z", "result": {"n": 1, "added": 7}},
            {"timestamp": "2024-01-01T10:02:00.000Z", "result": {"n": null, "added": null}},
            {"timestamp": "2024-01-01T10:03:00.000Z", "result": {"n": 1, "added": 1}}
        ])
    );
    let v = query(&c, &base, &json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": iv, "granularity": "minute", "aggregations": aggs, "context": {"skipEmptyBuckets": true},
        "filter": {"type": "or", "fields": [{"type": "selector", "dimension": "language", "value": "en"}, {"type": "in", "dimension": "page", "values": ["C"]}]}})).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    // SQL-compatible nulls (Druid 28+): a sum over no value is null, a count is 0.
    let mut with_count = aggs.clone();
    with_count
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "count", "name": "rows"}));
    let v = query(&c, &base, &json!({"queryType": "timeseries", "dataSource": "none", "intervals": iv, "granularity": "all", "aggregations": with_count})).await;
    assert_eq!(
        v,
        json!([{"timestamp": "2024-01-01T10:00:00.000Z", "result": {"n": null, "added": null, "rows": 0}}])
    );

    let v = query(&c, &base, &json!({"queryType": "topN", "dataSource": "wiki", "intervals": iv, "granularity": "all", "dimension": "page", "metric": "added", "threshold": 2, "aggregations": aggs})).await;
    assert_eq!(
        v,
        json!([{"timestamp": "2024-01-01T10:00:00.000Z", "result": [{"page": "A", "n": 2, "added": 15}, {"page": "B", "n": 1, "added": 7}]}])
    );

    let v = query(&c, &base, &json!({"queryType": "groupBy", "dataSource": "wiki", "intervals": [iv], "granularity": "all", "dimensions": ["language"], "aggregations": aggs,
        "filter": {"type": "not", "field": {"type": "bound", "dimension": "added", "lower": "6", "ordering": "numeric"}}})).await;
    assert_eq!(
        v,
        json!([
            {"version": "v1", "timestamp": "2024-01-01T10:00:00.000Z", "event": {"language": null, "n": 1, "added": 1}}
        ])
    );
    let v = query(&c, &base, &json!({"queryType": "groupBy", "dataSource": "wiki", "intervals": [iv], "granularity": "all", "dimensions": [{"type": "default", "dimension": "page", "outputName": "p"}], "aggregations": aggs,
        "limitSpec": {"type": "default", "limit": 2, "columns": [{"dimension": "added", "direction": "descending", "dimensionOrder": "numeric"}]}})).await;
    assert_eq!(v[0]["event"], json!({"p": "A", "n": 2, "added": 15}));
    assert_eq!(v.as_array().unwrap().len(), 2);

    let v = query(&c, &base, &json!({"queryType": "scan", "dataSource": "wiki", "intervals": [iv], "columns": ["__time", "page", "added"], "limit": 2})).await;
    assert_eq!(v[0]["columns"], json!(["__time", "page", "added"]));
    assert_eq!(
        v[0]["events"][0],
        json!({"__time": 1704103200000i64, "page": "A", "added": 15})
    );
    assert_eq!(v[0]["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        v[0]["rowSignature"],
        json!([{"name": "__time", "type": "LONG"}, {"name": "page", "type": "STRING"}, {"name": "added", "type": "LONG"}])
    );
    assert!(v[0]["segmentId"]
        .as_str()
        .unwrap()
        .starts_with("wiki_2024-01-01T10:00:00.000Z_2024-01-01T11:00:00.000Z_"));

    let v = query(
        &c,
        &base,
        &json!({"queryType": "timeBoundary", "dataSource": "wiki"}),
    )
    .await;
    assert_eq!(
        v,
        json!([{"timestamp": "2024-01-01T10:00:00.000Z", "result": {"maxTime": "2024-01-01T10:03:00.000Z", "minTime": "2024-01-01T10:00:00.000Z"}}])
    );

    // search: regex over every dimension, case-sensitive contains in one.
    let v = query(
        &c,
        &base,
        &json!({"queryType": "search", "dataSource": "wiki", "intervals": [iv],
        "query": {"type": "regex", "pattern": "^[AB]$"}}),
    )
    .await;
    assert_eq!(
        v,
        json!([{"timestamp": "2024-01-01T10:00:00.000Z", "result": [
            {"dimension": "page", "value": "A", "count": 1},
            {"dimension": "page", "value": "B", "count": 1}]}])
    );
    let v = query(&c, &base, &json!({"queryType": "search", "dataSource": "wiki", "intervals": [iv],
        "searchDimensions": ["language"], "query": {"type": "contains", "value": "E", "caseSensitive": true}})).await;
    assert_eq!(v, json!([]), "nothing holds an upper-case E");
    let v = query(
        &c,
        &base,
        &json!({"queryType": "dataSourceMetadata", "dataSource": "wiki"}),
    )
    .await;
    assert_eq!(
        v,
        json!([{"timestamp": "2024-01-01T10:03:00.000Z", "result": {"maxIngestedEventTime": "2024-01-01T10:03:00.000Z"}}])
    );
    let v = query(
        &c,
        &base,
        &json!({"queryType": "segmentMetadata", "dataSource": "wiki", "intervals": [iv]}),
    )
    .await;
    assert_eq!(
        v[0]["numRows"], 3,
        "two events of page A in minute 10:00 rolled up"
    );
    assert_eq!(v[0]["columns"]["page"]["cardinality"], 3);
    assert_eq!(v[0]["columns"]["page"]["minValue"], "A");
    assert_eq!(v[0]["columns"]["added"]["type"], "LONG");
    assert_eq!(v[0]["columns"]["language"]["hasNulls"], true);

    assert_eq!(
        get(&c, &format!("{base}/druid/v2/datasources")).await.1,
        json!(["wiki"])
    );
    assert_eq!(
        get(&c, &format!("{base}/druid/v2/datasources/wiki"))
            .await
            .1,
        json!({"dimensions": [], "metrics": ["added", "count"]}),
        "a realtime segment announces its metrics, no dimensions"
    );
    // Trailing slash works too.
    let (status, _) = post(
        &c,
        &format!("{base}/druid/v2/"),
        &json!({"queryType": "timeBoundary", "dataSource": "wiki"}),
    )
    .await;
    assert_eq!(status, 200);

    // Errors in Druid's shape: a query that does not map is a 500 naming Jackson's exception.
    let (status, v) = post(
        &c,
        &format!("{base}/druid/v2"),
        &json!({"queryType": "bogus", "dataSource": "wiki"}),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(v["error"], "Unknown exception");
    assert_eq!(
        v["errorClass"],
        "com.fasterxml.jackson.databind.exc.InvalidTypeIdException"
    );
    assert_eq!(v["host"], "127.0.0.1");
    assert!(v["errorMessage"].as_str().unwrap().contains("bogus"), "{v}");
    let (status, v) = post(
        &c,
        &format!("{base}/druid/v2"),
        &json!({"queryType": "select", "dataSource": "wiki", "intervals": iv}),
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (501, json!("Unsupported operation"))
    );
    let (status, _) = post(
        &c,
        &format!("{base}/druid/v2"),
        &json!({"queryType": "timeseries", "dataSource": "wiki", "granularity": "all"}),
    )
    .await;
    assert_eq!(status, 500, "timeseries without intervals");
    let (status, _) = post(&c, &format!("{base}/druid/v2"), &json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": iv, "filter": {"type": "spatial"}})).await;
    assert_eq!(status, 501);
    let (status, v) = post_raw(&c, &format!("{base}/druid/v2"), "{oops").await;
    assert_eq!((status, &v["error"]), (400, &json!("Json parse failed")));
    druid.shutdown().await;
}

/// `index_realtime_appenderator`: no rejection window, and each task gets its own partition
/// (two tasks with the same spec add up instead of being replicas).
/// Druid's `Intervals.ETERNITY` as Druid serialises it (Joda's MIN_INSTANT/MAX_INSTANT); Druid's
/// own integration tests count rows with a timeseries over it.
const ETERNITY: &str = "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z";

#[tokio::test]
async fn eternity_interval_counts_every_row() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    let service = "firehose:druid:overlord:eternal-000-0000-0000";
    // A task clipped to all of time, yearly segments, rows from year -1 to year 146140482.
    let mut spec = task("t_eternal", "eternal", service, &iso_in(60), 1000);
    spec["spec"]["ioConfig"]["firehose"]["interval"] = json!(ETERNITY);
    spec["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("YEAR");
    let (status, body) = post(&c, &format!("{base}/druid/indexer/v1/task"), &spec).await;
    assert_eq!(status, 200, "{body}");
    wait_handler(&c, &base, service).await;
    let events = json!([
        {"timestamp": "-0001-06-01T00:00:00Z", "page": "A", "added": 1},
        {"timestamp": "2024-01-01T10:00:00Z", "page": "B", "added": 2},
        {"timestamp": "10000-01-01T00:00:00Z", "page": "C", "added": 3},
        {"timestamp": "146140482-04-24T15:36:27.902Z", "page": "D", "added": 4}
    ]);
    let (status, body) = post(
        &c,
        &format!("{base}/druid/worker/v1/chat/{service}/push-events"),
        &events,
    )
    .await;
    assert_eq!((status, &body["eventCount"]), (200, &json!(4)), "{body}");

    let count = json!({"queryType": "timeseries", "dataSource": "eternal", "intervals": [ETERNITY],
        "granularity": "all", "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]});
    // Pushed rows reach the queryable index asynchronously: wait for all four, bounded.
    let mut v = Value::Null;
    for _ in 0..200 {
        v = query(&c, &base, &count).await;
        if v[0]["result"]["rows"] == json!(4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        v,
        json!([{"timestamp": "-0001-06-01T00:00:00.000Z", "result": {"rows": 4}}])
    );

    let years = query(
        &c,
        &base,
        &json!({"queryType": "timeseries", "dataSource": "eternal",
        "intervals": ETERNITY, "granularity": "year",
        "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}]}),
    )
    .await;
    assert_eq!(
        years,
        json!([
            {"timestamp": "-0001-01-01T00:00:00.000Z", "result": {"added": 1}},
            {"timestamp": "2024-01-01T00:00:00.000Z", "result": {"added": 2}},
            {"timestamp": "10000-01-01T00:00:00.000Z", "result": {"added": 3}},
            {"timestamp": "146140482-01-01T00:00:00.000Z", "result": {"added": 4}}
        ])
    );
    let bounds = query(
        &c,
        &base,
        &json!({"queryType": "timeBoundary", "dataSource": "eternal"}),
    )
    .await;
    assert_eq!(
        bounds[0]["result"],
        json!({"minTime": "-0001-06-01T00:00:00.000Z", "maxTime": "146140482-04-24T15:36:00.000Z"})
    );
    // Other interval forms Druid accepts (a period, a week date) select rows the same way:
    // all but the 2024 one here. Forms Druid refuses are a 500 (the Broker's answer to a query
    // that does not map), naming the interval.
    let (status, v) = post(
        &c,
        &format!("{base}/druid/v2"),
        &json!({"queryType": "timeseries", "dataSource": "eternal",
        "intervals": ["P2147483647D/2024-01-01", "2024-W01-2/P146140482Y"], "granularity": "all",
        "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]}),
    )
    .await;
    assert_eq!((status, &v[0]["result"]["rows"]), (200, &json!(3)), "{v}");
    for bad in [
        "2024-01-01 10:00/2024-01-02",
        "2024-01-01/P1.5D",
        "292278994-08-17T07:12:55.808Z/P1D",
    ] {
        let (status, v) = post(
            &c,
            &format!("{base}/druid/v2"),
            &json!({"queryType": "timeseries",
            "dataSource": "eternal", "intervals": [bad], "granularity": "all"}),
        )
        .await;
        assert_eq!(status, 500, "{bad}: {v}");
        assert!(v.to_string().contains(bad), "{bad}: {v}");
    }
}

#[tokio::test]
async fn appenderator_tasks_allocate_partitions() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    let appenderator = |id: &str, service: &str| {
        let mut t = task(id, "wiki_app", service, &iso_in(60), 100);
        t["type"] = json!("index_realtime_appenderator");
        t["spec"]["tuningConfig"] =
            json!({"type": "realtime_appenderator", "maxRowsInMemory": 1000});
        t
    };
    // The tuning config must be the appenderator's.
    let mut wrong = appenderator("app-x", "svc-x");
    wrong["spec"]["tuningConfig"]["type"] = json!("realtime");
    let (status, body) = post(&c, &format!("{base}/druid/indexer/v1/task"), &wrong).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap_or("")
        .contains("realtime_appenderator"));

    for (id, svc) in [("app-a", "svc-a"), ("app-b", "svc-b")] {
        let (status, body) = post(
            &c,
            &format!("{base}/druid/indexer/v1/task"),
            &appenderator(id, svc),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        wait_handler(&c, &base, svc).await;
        // Hours old: a serverTime window would throw these away.
        let events = json!([
            {"timestamp": "2024-01-01T10:01:00Z", "page": "A", "language": "en", "added": 3},
            {"timestamp": "2024-01-01T10:02:00Z", "page": "B", "language": "ja", "added": 4}
        ]);
        let url = format!("{base}/druid/worker/v1/chat/{svc}/push-events");
        let (status, body) = post(&c, &url, &events).await;
        assert_eq!((status, body["eventCount"].as_u64()), (200, Some(2)));
    }
    let (_, st) = get(&c, &format!("{base}/druid/indexer/v1/task/app-a/status")).await;
    assert_eq!(st["status"]["type"], "index_realtime_appenderator");
    assert_eq!(
        st["status"]["groupId"],
        "index_realtime_appenderator_wiki_app"
    );
    let (_, listed) = get(
        &c,
        &format!("{base}/druid/indexer/v1/tasks?type=index_realtime_appenderator"),
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let (_, listed) = get(
        &c,
        &format!("{base}/druid/indexer/v1/tasks?type=index_realtime"),
    )
    .await;
    assert_eq!(listed, json!([]));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let ts = query(
        &c,
        &base,
        &json!({"queryType": "timeseries", "dataSource": "wiki_app", "granularity": "all",
                "intervals": ["2024-01-01T10:00Z/2024-01-01T11:00Z"],
                "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}]}),
    )
    .await;
    assert_eq!(ts[0]["result"]["added"], 14, "{ts}");
    let scan = query(
        &c,
        &base,
        &json!({"queryType": "scan", "dataSource": "wiki_app", "columns": ["page"],
                "intervals": ["2024-01-01T10:00Z/2024-01-01T11:00Z"]}),
    )
    .await;
    let ids: Vec<&str> = scan
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["segmentId"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{scan}");
    assert!(ids.iter().any(|id| id.ends_with("_1")), "{ids:?}");
    druid.shutdown().await;
}

/// Joins with an inline right side and expression virtual columns over HTTP, and the 501s
/// naming what is not supported.
#[tokio::test]
async fn join_and_virtual_column_queries() {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    let svc = "svc-join";
    let (status, _) = post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("join-1", "wiki_j", svc, &iso_in(60), 100),
    )
    .await;
    assert_eq!(status, 200);
    wait_handler(&c, &base, svc).await;
    let events = json!([
        {"timestamp": "2024-01-01T10:01:00Z", "page": "A", "language": "en", "added": 3},
        {"timestamp": "2024-01-01T10:02:00Z", "page": "B", "language": "ja", "added": 4},
        {"timestamp": "2024-01-01T10:03:00Z", "page": "C", "language": "fr", "added": 5}
    ]);
    let url = format!("{base}/druid/worker/v1/chat/{svc}/push-events");
    assert_eq!(post(&c, &url, &events).await.0, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let join = |kind: &str, right: Value| {
        json!({"type": "join", "left": "wiki_j", "right": right, "rightPrefix": "r.",
               "condition": "\"r.lang\" == language", "joinType": kind})
    };
    let inline = json!({"type": "inline", "columnNames": ["lang", "name"],
                        "columnTypes": ["string", "string"],
                        "rows": [["en", "English"], ["ja", "Japanese"]]});
    let group_by = |ds: Value| {
        json!({"queryType": "groupBy", "dataSource": ds, "granularity": "all",
               "intervals": ["2024-01-01T10:00Z/2024-01-01T11:00Z"],
               "virtualColumns": [{"type": "expression", "name": "label",
                   "expression": "concat(nvl(\"r.name\", 'other'), ':', page)", "outputType": "STRING"}],
               "dimensions": ["label"],
               "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}]})
    };
    let rows = |v: &Value| -> Vec<(String, i64)> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["event"]["label"].as_str().unwrap_or("").to_owned(),
                    r["event"]["added"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    };
    let left = query(&c, &base, &group_by(join("LEFT", inline.clone()))).await;
    assert_eq!(
        rows(&left),
        vec![
            ("English:A".to_owned(), 3),
            ("Japanese:B".to_owned(), 4),
            ("other:C".to_owned(), 5)
        ],
        "{left}"
    );
    let inner = query(&c, &base, &group_by(join("INNER", inline))).await;
    assert_eq!(rows(&inner).len(), 2, "{inner}");

    let r = c
        .post(format!("{base}/druid/v2"))
        .header("Content-Type", "application/json")
        .body(group_by(join("LEFT", json!({"type": "lookup", "lookup": "langs"}))).to_string())
        .send()
        .await
        .expect("query");
    assert_eq!(r.status().as_u16(), 501);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "Unsupported operation");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("[lookup]"),
        "{body}"
    );
    druid.shutdown().await;
}
