//! Benchmark: ingest with rollup of ~200-byte JSON events on one core, and a timeseries over
//! 1M ingested rows. Run in release:
//!
//! ```text
//! cargo run --release -p druid-local --example bench
//! ```

use druid_local::spec;
use druid_local::task::parse::RowParser;
use druid_local::task::rollup::{Index, RowDims};
use druid_local::time::Granularity;
use druid_local::{DruidLocal, DruidLocalConfig};
use serde_json::json;
use std::time::Instant;

fn task_spec(rollup: bool) -> serde_json::Value {
    json!({"type": "index_realtime", "id": format!("bench_{rollup}"),
      "spec": {"dataSchema": {"dataSource": "bench",
          "parser": {"type": "map", "parseSpec": {"format": "json", "timestampSpec": {"column": "timestamp", "format": "auto"},
            "dimensionsSpec": {"dimensions": ["page", "language", "user", "country", "city"]}}},
          "metricsSpec": [{"type": "count", "name": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"},
                          {"type": "longSum", "name": "deleted", "fieldName": "deleted"}, {"type": "doubleSum", "name": "delta", "fieldName": "delta"}],
          "granularitySpec": {"segmentGranularity": "HOUR", "queryGranularity": "MINUTE", "rollup": rollup}},
        "ioConfig": {"type": "realtime", "firehose": {"type": "timed", "shutoffTime": "2100-01-01T00:00:00Z",
          "delegate": {"type": "receiver", "serviceName": format!("bench-{rollup}"), "bufferSize": 100000}}},
        "tuningConfig": {"type": "realtime", "rejectionPolicy": {"type": "none"}}}})
}

/// `n` events as request bodies of 1000 events each; `unique` makes every row distinct.
fn bodies(n: usize, unique: bool) -> (Vec<Vec<u8>>, usize) {
    let mut out = Vec::new();
    let mut bytes = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut body = String::from("[");
        for (k, i) in chunk.iter().enumerate() {
            if k > 0 {
                body.push(',');
            }
            let page = if unique { *i } else { i % 500 };
            let ev = format!(
                r#"{{"timestamp":"2024-01-01T10:{:02}:{:02}.{:03}Z","page":"Page_{page:06}","language":"en","user":"user_{:05}","country":"Country_{:03}","city":"City_number_{:04}","added":{},"deleted":{},"delta":{}.5,"comment":"x"}}"#,
                (i / 60_000) % 60,
                (i / 1000) % 60,
                i % 1000,
                i % 50,
                i % 20,
                i % 7,
                i % 1000,
                i % 13,
                i % 100
            );
            bytes += ev.len();
            body.push_str(&ev);
        }
        body.push(']');
        out.push(body.into_bytes());
    }
    (out, bytes / n.max(1))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // 1. Ingest hot path on one core: parse each body once, roll up into the index.
    let spec = spec::parse_task(&task_spec(true)).expect("spec");
    let schema = spec.schema.clone().expect("schema");
    let parser = RowParser::new(&schema, &spec.metrics);
    let n = 1_000_000;
    let (bodies_rollup, avg) = bodies(n, false);
    let mut idx = Index::new(
        schema.dimensions.as_deref().unwrap_or(&[]),
        &spec.metrics,
        true,
    );
    let minute = Granularity::named("minute").expect("granularity");
    let t = Instant::now();
    for b in &bodies_rollup {
        for row in parser.parse_json(b).expect("parse") {
            let dims: RowDims = row.dims;
            idx.add(minute.bucket_start(row.ts), row.ts, dims, &row.metrics);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("ingest with rollup: {n} events of ~{avg} bytes in {secs:.3}s = {:.0} events/s on one core ({} rolled-up rows)", n as f64 / secs, idx.len());

    // 2. Timeseries over 1M ingested rows, through a running instance.
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("start");
    let client = reqwest::Client::new();
    let base = druid.url();
    client
        .post(format!("{base}/druid/indexer/v1/task"))
        .header("Content-Type", "application/json")
        .body(task_spec(false).to_string())
        .send()
        .await
        .expect("submit");
    let recv = loop {
        if let Some(r) = druid.shared().handler("bench-false", None) {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let (bodies_flat, _) = bodies(n, true);
    let t = Instant::now();
    for b in &bodies_flat {
        recv.push(recv.parser.parse_json(b).expect("parse"))
            .await
            .expect("push");
    }
    let q = json!({"queryType": "timeseries", "dataSource": "bench", "intervals": ["2024-01-01/2024-01-02"], "granularity": "all",
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}, {"type": "doubleSum", "name": "delta", "fieldName": "delta"}]});
    loop {
        let v = druid_local::query::run(druid.shared(), &q).expect("query");
        if v[0]["result"]["events"] == json!(n) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    println!(
        "pushed and indexed {n} distinct rows through the receiver in {:.3}s",
        t.elapsed().as_secs_f64()
    );
    let mut best = f64::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        let v = druid_local::query::run(druid.shared(), &q).expect("query");
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(v[0]["result"]["events"], json!(n));
    }
    println!(
        "timeseries (granularity all, 3 aggregators) over {n} rows: best of 10 = {:.1} ms",
        best * 1000.0
    );
    let qm = json!({"queryType": "timeseries", "dataSource": "bench", "intervals": ["2024-01-01/2024-01-02"], "granularity": "minute",
        "filter": {"type": "selector", "dimension": "language", "value": "en"},
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"}]});
    let t = Instant::now();
    druid_local::query::run(druid.shared(), &qm).expect("query");
    println!(
        "timeseries (granularity minute, selector filter) over {n} rows: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    druid.shutdown().await;
}
