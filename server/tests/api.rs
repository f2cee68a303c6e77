//! The router through `oneshot`: every body shape, every refusal, and the counts.

mod common;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tranquility_server::{app, AppState, ResponseShape, ServerConfig};

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, String, Bytes) {
    let res = app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        status,
        ctype,
        res.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn post(uri: &str, ctype: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", ctype)
        .body(body.into())
        .unwrap()
}

fn result(body: &Bytes) -> Value {
    serde_json::from_slice::<Value>(body).unwrap()["result"].clone()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn ev(extra: &str) -> String {
    format!(r#"{{"timestamp":{},"page":"{extra}"}}"#, now())
}

fn setup() -> (AppState, common::TestSource, common::TestSource) {
    common::state(ServerConfig {
        max_body_bytes: 4096,
        ..ServerConfig::default()
    })
}

#[tokio::test]
async fn json_array_objects_and_lines_are_sent() {
    let (state, wiki, _) = setup();
    for (ctype, body) in [
        ("application/json", format!("[{},{}]", ev("a"), ev("b"))),
        (
            "application/json; charset=utf-8",
            format!("{}\n{}\n", ev("a"), ev("b")),
        ),
        ("application/json", format!("{}{}", ev("a"), ev("b"))),
    ] {
        let (status, ct, body) = call(&state, post("/v1/post/wiki", ctype, body)).await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        assert_eq!(ct, "application/json");
        assert_eq!(
            result(&body),
            json!({"received": 2, "sent": 2, "dropped": 0, "failed": 0})
        );
    }
    let (_, _, body) = call(&state, post("/v1/post/wiki", "application/json", ev("one"))).await;
    assert_eq!(result(&body)["sent"], 1);
    assert_eq!(wiki.sent_count(), 7);
}

#[tokio::test]
async fn v1_post_routes_by_data_source_then_feed() {
    let (state, wiki, csv) = setup();
    let t = now();
    let body = format!(
        r#"[{{"dataSource":"wiki","timestamp":{t}}},{{"feed":"csvds","timestamp":{t}}},{{"feed":"wiki","timestamp":{t}}}]"#
    );
    let (status, _, body) = call(&state, post("/v1/post", "application/json", body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result(&body)["received"], 3);
    assert_eq!(result(&body)["sent"], 3);
    assert_eq!(wiki.sent_count(), 2);
    assert_eq!(csv.sent_count(), 1);
}

#[tokio::test]
async fn whole_request_refusals_keep_the_original_status_and_message() {
    let (state, wiki, _) = setup();
    let t = now();
    let cases: Vec<(Request<Body>, StatusCode, &str)> =
        vec![
        (
            post("/v1/post/wiki", "application/xml", "{}"),
            StatusCode::BAD_REQUEST,
            "Expected contentType application/json, application/x-jackson-smile, or text/plain\n",
        ),
        (
            Request::post("/v1/post/wiki").body(Body::from("{}")).unwrap(),
            StatusCode::BAD_REQUEST,
            "Expected contentType application/json, application/x-jackson-smile, or text/plain\n",
        ),
        (
            post("/v1/post", "text/plain", "x"),
            StatusCode::BAD_REQUEST,
            "Must include dataSource in URL for contentType[text/plain]\n",
        ),
        (
            post("/v1/post/nope", "application/json", "{}"),
            StatusCode::BAD_REQUEST,
            "No definition for dataSource 'nope'\n",
        ),
        (
            post(
                "/v1/post",
                "application/json",
                format!(r#"[{{"dataSource":"wiki","timestamp":{t}}},{{"dataSource":"nope"}}]"#),
            ),
            StatusCode::BAD_REQUEST,
            "No definition for dataSource 'nope'\n",
        ),
        (
            post(
                "/v1/post",
                "application/json",
                format!(r#"[{{"dataSource":"wiki","timestamp":{t}}},{{"page":"x"}}]"#),
            ),
            StatusCode::BAD_REQUEST,
            "Missing 'dataSource' or 'feed'\n",
        ),
        (
            post("/v1/post/wiki?async=maybe", "application/json", "{}"),
            StatusCode::BAD_REQUEST,
            "Expected true or false\n",
        ),
        (
            Request::post("/v1/post/wiki")
                .header("content-type", "application/json")
                .header("content-encoding", "br")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "Unrecognized request Content-Encoding\n",
        ),
    ];
    for (req, status, message) in cases {
        let (got, ct, body) = call(&state, req).await;
        assert_eq!(
            (got, std::str::from_utf8(&body).unwrap()),
            (status, message)
        );
        assert!(ct.starts_with("text/plain"), "{ct}");
    }
    // Refused requests send nothing, even their good objects.
    assert_eq!(wiki.sent_count(), 0);
    assert_eq!(wiki.pending(), 0);
    let tally = state.metrics().data_source("wiki").snapshot();
    assert_eq!(tally.received, 0);
}

#[tokio::test]
async fn malformed_bodies_name_the_problem() {
    let (state, _, csv) = setup();
    for (uri, ctype, body) in [
        ("/v1/post/wiki", "application/json", &b"[{\"a\":1},"[..]),
        ("/v1/post/wiki", "application/json", b"{\"a\":1} junk"),
        (
            "/v1/post/wiki",
            "application/x-jackson-smile",
            b":)\n\x01\xfa\x80",
        ),
        ("/v1/post", "application/json", b"[3]"),
    ] {
        let (status, _, body) = call(&state, post(uri, ctype, body)).await;
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.starts_with("Malformed JSON: "), "{text}");
    }
    let (status, _, body) = call(
        &state,
        post("/v1/post/csvds", "text/plain", &b"1,a,2\n\xff\xfe\n"[..]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "Malformed string on line[2]: not valid UTF-8\n"
    );
    assert_eq!(csv.sent_count(), 0);
}

#[tokio::test]
async fn bad_events_are_dropped_with_a_reason_and_the_rest_sent() {
    let (state, wiki, _) = setup();
    let body = format!(
        r#"[{}, {{"timestamp":"not a time"}}, {{"page":"no timestamp"}}, 7, "s", {}, {}]"#,
        ev("good"),
        ev("OLD"),
        ev("good2")
    );
    let (status, _, body) = call(&state, post("/v1/post/wiki", "application/json", body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        result(&body),
        json!({"received": 7, "sent": 2, "dropped": 5, "failed": 0,
               "droppedReasons": {"unparseable": 4, "outside_window": 1}})
    );
    assert_eq!(wiki.sent_count(), 2);
}

#[tokio::test]
async fn the_original_response_shape_answers_received_and_sent_only() {
    let (state, wiki, _) = common::state(ServerConfig {
        response_shape: ResponseShape::Original,
        ..ServerConfig::default()
    });
    let body = format!(r#"[{}, 7, {}]"#, ev("good"), ev("OLD"));
    let (status, ct, body) = call(&state, post("/v1/post/wiki", "application/json", body)).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
    // Byte for byte what the original answered, so a strict client (a Jackson POJO that fails
    // on unknown properties) reads it.
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"result":{"received":3,"sent":1}}"#
    );
    assert_eq!(wiki.sent_count(), 1);
    let smile = serde_smile::to_vec(&json!([{"timestamp": now(), "page": "s"}])).unwrap();
    let (_, ct, body) = call(
        &state,
        post("/v1/post/wiki", "application/x-jackson-smile", smile),
    )
    .await;
    assert_eq!(ct, "application/x-jackson-smile");
    let answer: Value = serde_smile::from_slice(&body).unwrap();
    assert_eq!(answer, json!({"result": {"received": 1, "sent": 1}}));
    let (_, _, body) = call(
        &state,
        post("/v1/post/wiki?async=true", "application/json", ev("a")),
    )
    .await;
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"result":{"received":1,"sent":0}}"#
    );
}

#[tokio::test]
async fn send_failures_answer_500_with_the_counts() {
    let (state, _, _) = setup();
    let body = format!("[{},{}]", ev("ok"), ev("FAIL"));
    let (status, _, body) = call(&state, post("/v1/post/wiki", "application/json", body)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = std::str::from_utf8(&body).unwrap();
    assert!(
        text.starts_with(
            "Server error: 1 of 2 events failed (1 sent, 0 dropped): push to failable failed: failed on purpose"
        ),
        "{text}"
    );
    let tally = state.metrics().data_source("wiki").snapshot();
    assert_eq!((tally.received, tally.sent, tally.failed), (2, 1, 1));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn gzip_bodies_and_size_limits() {
    let (state, wiki, _) = setup();
    let req = |body: Vec<u8>, encoding: &str| {
        Request::post("/v1/post/wiki")
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(Body::from(body))
            .unwrap()
    };
    let (status, _, body) = call(&state, req(gzip(ev("z").as_bytes()), "gzip")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result(&body)["sent"], 1);

    let (status, _, body) = call(&state, req(b"not gzip".to_vec(), "gzip")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(std::str::from_utf8(&body)
        .unwrap()
        .starts_with("Malformed gzip body: "));

    // Over the limit as sent, and over it only once decompressed.
    let big = format!("[{}]", vec![ev("x"); 200].join(","));
    let (status, _, body) = call(&state, req(big.clone().into_bytes(), "identity")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "Request body larger than the limit of 4096 bytes\n"
    );
    let squeezed = gzip(big.as_bytes());
    assert!(squeezed.len() < 4096);
    let (status, _, _) = call(&state, req(squeezed, "gzip")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(wiki.sent_count(), 1);
}

#[tokio::test]
async fn smile_requests_get_smile_answers() {
    let (state, wiki, _) = setup();
    let events = json!([{"timestamp": now(), "page": "s"}, {"timestamp": now(), "n": 2.5}]);
    let body = serde_smile::to_vec(&events).unwrap();
    let (status, ct, body) = call(
        &state,
        post("/v1/post/wiki", "application/x-jackson-smile", body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "application/x-jackson-smile");
    let answer: Value = serde_smile::from_slice(&body).unwrap();
    assert_eq!(answer["result"]["received"], 2);
    assert_eq!(answer["result"]["sent"], 2);
    let sent: Value = serde_json::from_str(&wiki.sent_texts()[0]).unwrap();
    assert_eq!(sent["page"], "s");
}

#[tokio::test]
async fn text_lines_go_through_the_string_parser() {
    let (state, csv, _) = {
        let (s, w, c) = setup();
        (s, c, w)
    };
    let t = now();
    let body = format!("{t},Main,1\n\n{t},\"Talk, page\",2\n1,2,3,4\n");
    let (status, _, body) = call(&state, post("/v1/post/csvds", "text/plain", body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        result(&body),
        json!({"received": 3, "sent": 2, "dropped": 1, "failed": 0,
               "droppedReasons": {"unparseable": 1}})
    );
    assert_eq!(
        csv.sent_texts()[1],
        format!(r#"{{"timestamp":"{t}","page":"Talk, page","n":"2"}}"#)
    );
    // A dataSource without a parser reads JSON lines.
    let body = format!("{}\n[1]\n", ev("line"));
    let (status, _, body) = call(
        &state,
        post("/v1/post/wiki", "text/plain; charset=utf-8", body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result(&body)["sent"], 1);
    assert_eq!(result(&body)["dropped"], 1);
}

#[tokio::test]
async fn text_for_a_parse_spec_that_cannot_read_text_is_refused() {
    let metrics = tranquility::metrics::Metrics::new();
    let ingest = common::TestSource::new("rx", &metrics);
    let spec: tranquility::spec::ParseSpec =
        serde_json::from_str(r#"{"format":"regex","pattern":"(.*)"}"#).unwrap();
    let state = AppState::new(
        ServerConfig::default(),
        metrics,
        [("rx".to_string(), ingest.entry(Some(&spec)))],
    );
    let (status, _, body) = call(&state, post("/v1/post/rx", "text/plain", "x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.contains("'regex' is not supported"), "{text}");
    // JSON still works for it.
    let (status, _, _) = call(&state, post("/v1/post/rx", "application/json", ev("j"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn async_answers_after_hand_off() {
    let (state, wiki, _) = setup();
    let body = format!("[{}, 5, {}]", ev("a"), ev("b"));
    let (status, _, body) = call(
        &state,
        post("/v1/post/wiki?async=true", "application/json", body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        result(&body),
        json!({"received": 3, "sent": 0, "dropped": 1, "failed": 0,
               "droppedReasons": {"unparseable": 1}})
    );
    // Nothing forced a flush: the events wait, counted as pending.
    assert_eq!(wiki.pending(), 2);
    assert_eq!(state.metrics().data_source("wiki").pending(), 2);
}

#[tokio::test]
async fn liveness_health_and_not_found() {
    let (state, _, _) = setup();
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let (status, _, body) = call(&state, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.is_empty());
    let (status, _, body) = call(&state, get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"status": "ok", "dataSources": ["csvds", "wiki"], "backends": {}})
    );
    let (status, _, body) = call(&state, get("/v2/whatever")).await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::NOT_FOUND, &b"Not found\n"[..])
    );
}

#[tokio::test]
async fn metrics_agree_with_the_responses() {
    let (state, _, _) = setup();
    let mut totals = [0u64; 4];
    for body in [
        format!("[{},{}]", ev("a"), ev("OLD")),
        format!("[{}, 1, {{\"timestamp\":\"bad\"}}]", ev("b")),
        format!("[{}]", ev("FAIL")),
    ] {
        let (_, _, answer) = call(&state, post("/v1/post/wiki", "application/json", body)).await;
        let (r, s, d, f) = match serde_json::from_slice::<Value>(&answer) {
            Ok(v) => {
                let r = &v["result"];
                (
                    r["received"].as_u64().unwrap(),
                    r["sent"].as_u64().unwrap(),
                    r["dropped"].as_u64().unwrap(),
                    r["failed"].as_u64().unwrap(),
                )
            }
            // The 500 names its counts in text: 1 of 1 failed.
            Err(_) => (1, 0, 0, 1),
        };
        for (t, n) in totals.iter_mut().zip([r, s, d, f]) {
            *t += n;
        }
    }
    assert_eq!(totals, [6, 2, 3, 1]);
    let (status, ct, text) = call(
        &state,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = std::str::from_utf8(&text).unwrap();
    for line in [
        "tranquility_events_received_total{dataSource=\"wiki\"} 6",
        "tranquility_events_sent_total{dataSource=\"wiki\"} 2",
        "tranquility_events_dropped_total{dataSource=\"wiki\",reason=\"unparseable\"} 2",
        "tranquility_events_dropped_total{dataSource=\"wiki\",reason=\"outside_window\"} 1",
        "tranquility_events_failed_total{dataSource=\"wiki\"} 1",
        "tranquility_events_pending{dataSource=\"wiki\"} 0",
        "tranquility_tasks_active{dataSource=\"wiki\"} 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
