//! A slow Druid: druid-local behind a proxy that lets one push through at a time and holds
//! each one. Producers posting to the Tranquility Server at full speed are held back (the
//! default `blockOnFull`, and `blockOnFull=false` alone, which the original never read) or,
//! with `tranquility.blockOnFull.honour=true`, told at once that the buffer is full; either way the events
//! waiting in the server stay within `(maxPendingBatches + 1) x maxBatchSize`, and every
//! event is accounted for against a druid-local query.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::druid;
use integration_tests::setup::{config, local_pipelines, now_millis};
use integration_tests::DruidProxy;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tranquility::metrics::Tally;
use tranquility::pipeline::DataSourcePipeline;
use tranquility_server::{AppState, DataSourceReport, Server, ServerConfig};

const BATCH: i64 = 100;
const PENDING_BATCHES: i64 = 2;
const PRODUCERS: usize = 8;
const POSTS_EACH: usize = 15;
const EVENTS_PER_POST: usize = 50;

/// What the producers saw.
#[derive(Debug, Default)]
struct Seen {
    ok: Vec<Value>,
    buffer_full: usize,
    other: Vec<String>,
}

/// Runs the server over `slow` with the blockOnFull properties `block`, posts from every producer at once while
/// sampling the events pending in the pipeline; returns what the producers saw, the largest
/// pending count, the final report and druid-local's row count.
async fn overload(block: &[(&str, &str)], data_source: &str) -> (Seen, i64, DataSourceReport, u64) {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let upstream = ([127, 0, 0, 1], druid.port()).into();
    let slow = DruidProxy::start(upstream).await.expect("proxy starts");
    let (batch, pending) = (BATCH.to_string(), PENDING_BATCHES.to_string());
    let mut properties = vec![
        ("druidBeam.taskLocator", "overlord"),
        ("tranquility.maxBatchSize", batch.as_str()),
        ("tranquility.maxPendingBatches", pending.as_str()),
    ];
    properties.extend_from_slice(block);
    let config = config(data_source, "hour", &properties);
    let pipelines = local_pipelines(&config, &slow.url());
    let pipeline: DataSourcePipeline = pipelines.iter().next().unwrap().clone();
    let state = AppState::from_pipelines(
        ServerConfig::from_config(&config).unwrap(),
        &config,
        &pipelines,
    );
    let server = Server::from_listener(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        state,
    );
    let url = format!(
        "http://{}/v1/post/{data_source}",
        server.local_addr().unwrap()
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();

    // The task exists before Druid turns slow.
    let warm_up = json!([{"timestamp": now_millis(), "producer": "warm-up"}]);
    let answer: Value = http
        .post(&url)
        .json(&warm_up)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["result"]["sent"], 1, "{answer}");
    slow.slow_pushes(Duration::from_millis(20));

    let most_pending = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (pipeline, most) = (pipeline.clone(), most_pending.clone());
        tokio::spawn(async move {
            loop {
                most.fetch_max(pipeline.metrics().pending(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let refused = format!("Buffer full for dataSource '{data_source}'");
    let producers = (0..PRODUCERS).map(|p| {
        let (http, url, refused) = (http.clone(), url.clone(), refused.clone());
        tokio::spawn(async move {
            let mut seen = Seen::default();
            for post in 0..POSTS_EACH {
                let events: Vec<Value> = (0..EVENTS_PER_POST)
                    .map(
                        |i| json!({"timestamp": now_millis(), "producer": p, "post": post, "i": i}),
                    )
                    .collect();
                let res = http.post(&url).json(&events).send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                match status {
                    200 => seen.ok.push(serde_json::from_str(&body).unwrap()),
                    503 if body.contains(&refused) => seen.buffer_full += 1,
                    _ => seen.other.push(format!("{status} {body}")),
                }
            }
            seen
        })
    });
    let mut seen = Seen::default();
    for producer in futures::future::join_all(producers).await {
        let s = producer.unwrap();
        seen.ok.extend(s.ok);
        seen.buffer_full += s.buffer_full;
        seen.other.extend(s.other);
    }
    sampler.abort();

    let _ = stop.send(());
    let reports = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    let report = reports.into_iter().next().unwrap();
    let rows = druid::count(&druid.url(), data_source, "count").await as u64;
    druid.shutdown().await;
    (seen, most_pending.load(Ordering::SeqCst), report, rows)
}

fn assert_balanced(t: &Tally) {
    assert!(
        t.is_balanced(),
        "received != sent + dropped + failed: {t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_druid_holds_producers_back_with_bounded_pending_and_nothing_lost() {
    // blockOnFull=false alone blocks, as the original (which never read the key) did.
    let (seen, most_pending, report, rows) =
        overload(&[("tranquility.blockOnFull", "false")], "slow_block").await;
    let total = (PRODUCERS * POSTS_EACH * EVENTS_PER_POST) as u64;

    // Every post waited for its events and got them all sent.
    assert!(seen.other.is_empty(), "{:?}", seen.other);
    assert_eq!(seen.buffer_full, 0);
    assert_eq!(seen.ok.len(), PRODUCERS * POSTS_EACH);
    for answer in &seen.ok {
        assert_eq!(
            answer["result"],
            json!({"received": EVENTS_PER_POST, "sent": EVENTS_PER_POST, "dropped": 0, "failed": 0})
        );
    }
    // The pipeline filled up (so producers were held back) but never held more than its bound.
    let bound = (PENDING_BATCHES + 1) * BATCH;
    assert!(
        most_pending <= bound,
        "{most_pending} events pending, bound {bound}"
    );
    assert!(
        most_pending >= PENDING_BATCHES * BATCH,
        "the pipeline never filled up ({most_pending} pending): Druid was not slow enough"
    );
    // The warm-up event too: server counts, Druid rows and posts agree.
    assert_balanced(&report.tally);
    assert_eq!(report.pending, 0);
    assert_eq!(
        (report.tally.received, report.tally.sent),
        (total + 1, total + 1)
    );
    assert_eq!(rows, total + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_druid_without_block_on_full_answers_buffer_full_and_loses_nothing_silently() {
    let (seen, most_pending, report, rows) = overload(
        &[
            ("tranquility.blockOnFull", "false"),
            ("tranquility.blockOnFull.honour", "true"),
        ],
        "slow_refuse",
    )
    .await;
    let total = (PRODUCERS * POSTS_EACH * EVENTS_PER_POST) as u64;

    assert!(seen.other.is_empty(), "{:?}", seen.other);
    assert!(
        seen.buffer_full > 0,
        "no post was refused with Buffer full ({} answered 200)",
        seen.ok.len()
    );
    assert_eq!(seen.ok.len() + seen.buffer_full, PRODUCERS * POSTS_EACH);
    let bound = (PENDING_BATCHES + 1) * BATCH;
    assert!(
        most_pending <= bound,
        "{most_pending} events pending, bound {bound}"
    );
    // Refused events are counted as failed; what was sent is exactly what Druid has.
    assert_balanced(&report.tally);
    assert_eq!(report.pending, 0);
    assert_eq!(report.tally.received, total + 1);
    assert_eq!(report.tally.dropped_total(), 0);
    assert!(report.tally.failed > 0, "{:?}", report.tally);
    assert_eq!(rows, report.tally.sent);
    let sent_in_answers: u64 = seen
        .ok
        .iter()
        .map(|a| a["result"]["sent"].as_u64().unwrap())
        .sum();
    assert!(
        sent_in_answers < report.tally.sent,
        "the warm-up is not in the answers"
    );
}
