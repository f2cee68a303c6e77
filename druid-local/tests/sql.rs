//! Druid SQL over real sockets: every result format and header option byte for byte, the id
//! headers, and each error case in Druid 30's shape and status, against rows pushed through a
//! realtime task.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const SERVICE: &str = "firehose:sql";

/// Starts druid-local with six rows in `wiki` (dims page, language; metrics count, added).
async fn with_rows() -> (druid_local::DruidLocal, reqwest::Client, String) {
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    let (status, _) = post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_sql", "wiki", SERVICE, &iso_in(120), 100),
    )
    .await;
    assert_eq!(status, 200);
    wait_handler(&c, &base, SERVICE).await;
    let events = json!([
        {"timestamp": "2024-01-01T10:00:05Z", "page": "A", "language": "en", "added": 3},
        {"timestamp": "2024-01-01T10:02:05Z", "page": "A", "language": "en", "added": 4},
        {"timestamp": "2024-01-01T10:03:05Z", "page": "B", "language": "fr", "added": 9},
        {"timestamp": "2024-01-01T10:30:00Z", "page": "C, \"quoted\"", "language": "en", "added": 1},
        {"timestamp": "2024-01-01T10:45:00Z", "page": "A", "language": "ja", "added": 10},
        {"timestamp": "2024-01-01T10:50:00Z", "page": "B", "added": 2}
    ]);
    let (status, v) = post(
        &c,
        &format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events"),
        &events,
    )
    .await;
    assert_eq!((status, v), (200, json!({"eventCount": 6})));
    // Rows become queryable once the indexer takes them from the buffer.
    for _ in 0..200 {
        let (_, v) = post(
            &c,
            &format!("{base}/druid/v2/sql"),
            &json!({"query": "SELECT COUNT(*) AS n FROM wiki", "resultFormat": "array"}),
        )
        .await;
        if v == json!([[6]]) {
            return (druid, c, base);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the six rows never became queryable");
}

/// POSTs a SQL body and returns (status, headers, raw body).
async fn sql(
    c: &reqwest::Client,
    base: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = c
        .post(format!("{base}/druid/v2/sql"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.expect("body"))
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

const QUERY: &str = "SELECT page, COUNT(*) AS n FROM wiki WHERE language = 'en' GROUP BY page";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_formats_and_headers() {
    let (druid, c, base) = with_rows().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"query": QUERY}),
            "[{\"page\":\"A\",\"n\":2},{\"page\":\"C, \\\"quoted\\\"\",\"n\":1}]\n",
        ),
        (
            json!({"query": QUERY, "resultFormat": "object", "header": true, "typesHeader": true, "sqlTypesHeader": true}),
            "[{\"page\":{\"type\":\"STRING\",\"sqlType\":\"VARCHAR\"},\"n\":{\"type\":\"LONG\",\"sqlType\":\"BIGINT\"}},{\"page\":\"A\",\"n\":2},{\"page\":\"C, \\\"quoted\\\"\",\"n\":1}]\n",
        ),
        (
            json!({"query": QUERY, "resultFormat": "array", "header": true}),
            "[[\"page\",\"n\"],[\"A\",2],[\"C, \\\"quoted\\\"\",1]]\n",
        ),
        (
            json!({"query": QUERY, "resultFormat": "objectLines", "header": true}),
            "{\"page\":null,\"n\":null}\n{\"page\":\"A\",\"n\":2}\n{\"page\":\"C, \\\"quoted\\\"\",\"n\":1}\n\n",
        ),
        (
            json!({"query": QUERY, "resultFormat": "ARRAYLINES", "header": true, "sqlTypesHeader": true}),
            "[\"page\",\"n\"]\n[\"VARCHAR\",\"BIGINT\"]\n[\"A\",2]\n[\"C, \\\"quoted\\\"\",1]\n\n",
        ),
        (
            json!({"query": QUERY, "resultFormat": "csv", "header": true, "typesHeader": true, "sqlTypesHeader": true}),
            "page,n\nSTRING,LONG\nVARCHAR,BIGINT\nA,2\n\"C, \"\"quoted\"\"\",1\n\n",
        ),
        (json!({"query": QUERY, "resultFormat": "csv"}), "A,2\n\"C, \"\"quoted\"\"\",1\n\n"),
        (
            json!({"query": "SELECT page FROM wiki WHERE page = 'none'", "resultFormat": "arrayLines"}),
            "\n\n",
        ),
    ];
    for (body, want) in cases {
        let (status, h, text) = sql(&c, &base, &body).await;
        assert_eq!(status, 200, "{body}: {text}");
        assert_eq!(text, want, "{body}");
        // Druid 30 answers application/json for every format.
        assert_eq!(header(&h, "content-type"), "application/json", "{body}");
        let included = body["header"] == json!(true);
        assert_eq!(
            header(&h, "x-druid-sql-header-included") == "yes",
            included,
            "{body}"
        );
        assert!(!header(&h, "x-druid-sql-query-id").is_empty());
        assert_eq!(
            header(&h, "x-druid-sql-query-id"),
            header(&h, "x-druid-query-id")
        );
    }
    // The id from the context, the trailing slash, timestamps and parameters.
    let r = c
        .post(format!("{base}/druid/v2/sql/"))
        .header("Content-Type", "application/json")
        .body(
            json!({"query": "SELECT __time, added FROM wiki WHERE page = ? AND added > ? ORDER BY __time DESC",
                   "context": {"sqlQueryId": "my-query"},
                   "parameters": [{"type": "VARCHAR", "value": "A"}, {"type": "BIGINT", "value": 3}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(r.headers(), "x-druid-sql-query-id"), "my-query");
    assert_eq!(header(r.headers(), "x-druid-query-id"), "my-query");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!([{"__time": "2024-01-01T10:45:00.000Z", "added": 10}, {"__time": "2024-01-01T10:02:00.000Z", "added": 4}])
    );
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_in_druid_30_shape() {
    let (druid, c, base) = with_rows().await;
    let json_error = |q: &str| json!({"query": q});
    // (body, status, errorCode, category, message fragment)
    let cases: Vec<(Value, u16, &str, &str, &str)> = vec![
        (json_error("SELEC page FROM wiki"), 400, "invalidInput", "INVALID_INPUT", "Received an unexpected token [SELEC] (line [1], column [1])"),
        (json_error("SELECT * FROM nope"), 400, "invalidInput", "INVALID_INPUT", "Object 'nope' not found (line [1], column [15])"),
        (json_error("SELECT nosuch FROM wiki"), 400, "invalidInput", "INVALID_INPUT", "Column 'nosuch' not found in any table (line [1], column [8])"),
        (json_error("SELECT page, COUNT(*) FROM wiki"), 400, "invalidInput", "INVALID_INPUT", "Expression 'page' is not being grouped"),
        (json_error("SELECT page FROM wiki ORDER BY page"), 400, "general", "INVALID_INPUT", "Query could not be planned. A possible reason is [SQL query requires ordering a table by non-time column [[page]], which is not supported.]"),
        (json_error("SELECT a.page FROM wiki a JOIN wiki b ON a.page = b.page"), 501, "general", "UNSUPPORTED", "JOIN is not supported by druid-local"),
        (json_error("SELECT REGEXP_EXTRACT(page, 'x') FROM wiki"), 501, "general", "UNSUPPORTED", "function [REGEXP_EXTRACT]"),
        (json!({"query": "SELECT page FROM wiki WHERE page = ?"}), 400, "invalidInput", "INVALID_INPUT", "No value bound for parameter (position [1])"),
    ];
    for (body, status, code, category, needle) in cases {
        let (s, h, text) = sql(&c, &base, &body).await;
        assert_eq!(s, status, "{body}: {text}");
        assert_eq!(header(&h, "content-type"), "application/json");
        assert!(!header(&h, "x-druid-sql-query-id").is_empty());
        let v: Value = serde_json::from_str(&text).expect("JSON error body");
        assert_eq!(v["error"], "druidException", "{text}");
        assert_eq!(v["errorCode"], code, "{text}");
        assert_eq!(v["category"], category, "{text}");
        assert!(v["persona"].is_string(), "{text}");
        assert!(v["context"].is_object(), "{text}");
        assert!(
            v["errorMessage"].as_str().unwrap_or("").contains(needle),
            "{body}: {text}"
        );
    }
    // The position of an unknown table, as Druid's context gives it.
    let (_, _, text) = sql(&c, &base, &json_error("SELECT * FROM nope")).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["context"],
        json!({"sourceType": "sql", "line": "1", "column": "15", "endLine": "1", "endColumn": "18"})
    );
    let (_, _, text) = sql(&c, &base, &json_error("SELECT page FROM")).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["context"]["token"], "<EOF>", "{text}");
    assert_eq!(v["context"]["sourceType"], "sql", "{text}");

    // Bodies Jackson does not map: 400 {"error": ...}.
    for (body, needle) in [
        (json!({"resultFormat": "array"}), "problem: query"),
        (
            json!({"query": "SELECT 1", "resultFormat": "tsv"}),
            "ResultFormat.TSV",
        ),
        (
            json!({"query": "SELECT 1", "typesHeader": true}),
            "without 'header'",
        ),
    ] {
        let (s, _, text) = sql(&c, &base, &body).await;
        assert_eq!(s, 400, "{body}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].as_str().unwrap_or("").contains(needle), "{text}");
    }
    // Not JSON: 500 and not a JSON body; not application/json: 415.
    let r = c
        .post(format!("{base}/druid/v2/sql"))
        .header("Content-Type", "application/json")
        .body("{\"query\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    let r = c
        .post(format!("{base}/druid/v2/sql"))
        .header("Content-Type", "text/plain")
        .body("SELECT 1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_answers_what_native_queries_answer() {
    let (druid, c, base) = with_rows().await;
    // A time floor with a filter, against the equivalent native timeseries.
    let (_, _, text) = sql(
        &c,
        &base,
        &json!({"query": "SELECT TIME_FLOOR(__time, 'PT30M') AS t, SUM(added) AS s, COUNT(*) AS n FROM wiki WHERE language <> 'fr' GROUP BY 1",
                "resultFormat": "array"}),
    )
    .await;
    let sql_rows: Value = serde_json::from_str(&text).unwrap();
    let native = query(
        &c,
        &base,
        &json!({"queryType": "timeseries", "dataSource": "wiki", "granularity": "thirty_minute",
                "intervals": ["2024-01-01/2024-01-02"], "context": {"skipEmptyBuckets": true},
                "filter": {"type": "not", "field": {"type": "selector", "dimension": "language", "value": "fr"}},
                "aggregations": [{"type": "longSum", "name": "s", "fieldName": "added"}, {"type": "longSum", "name": "n", "fieldName": "count"}]}),
    )
    .await;
    let native_rows: Vec<Value> = native
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!([r["timestamp"], r["result"]["s"], r["result"]["n"]]))
        .collect();
    assert_eq!(sql_rows, json!(native_rows));
    assert_eq!(
        sql_rows,
        json!([
            ["2024-01-01T10:00:00.000Z", 7, 2],
            ["2024-01-01T10:30:00.000Z", 13, 3]
        ])
    );
    // Metadata the way SQL clients list it.
    let (_, _, text) = sql(
        &c,
        &base,
        &json!({"query": "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'wiki'",
                "resultFormat": "array"}),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!([
            ["__time", "TIMESTAMP"],
            ["page", "VARCHAR"],
            ["language", "VARCHAR"],
            ["count", "BIGINT"],
            ["added", "BIGINT"]
        ])
    );
    let (_, _, text) = sql(
        &c,
        &base,
        &json!({"query": "SELECT task_id, status, datasource FROM sys.tasks", "resultFormat": "array"}),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!([["t_sql", "RUNNING", "wiki"]])
    );
    let (_, _, text) = sql(
        &c,
        &base,
        &json!({"query": "SELECT datasource, is_realtime, num_rows FROM sys.segments", "resultFormat": "array"}),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!([["wiki", 1, 6]])
    );
    druid.shutdown().await;
}
