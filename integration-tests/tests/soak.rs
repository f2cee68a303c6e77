//! A bounded soak: producers at full speed into druid-local for a while, checking that memory
//! stays flat and every event is accounted for. Short by default; set
//! `TRANQUILITY_SOAK_SECS` for a longer run (loopback only, bounded in time).

use std::time::{Duration, Instant};

use bytes::Bytes;
use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::setup::{config, local_pipelines, now_millis};
use integration_tests::{druid, unique_name};
use serde_json::json;

/// Resident set size of this process in KiB, from /proc.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_and_every_event_is_accounted_for() {
    let seconds: u64 = std::env::var("TRANQUILITY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let ds = unique_name("soak");
    let cfg = config(&ds, "hour", &[("druidBeam.taskLocator", "overlord")]);
    let pipelines = local_pipelines(&cfg, &druid.url());
    let pipeline = pipelines.get(&ds).unwrap().clone();

    // Few distinct dimension values, so druid-local's rollup keeps its rows few and the
    // process's memory reflects the pipeline, not the growing index.
    let batch = |n: usize| -> Vec<Bytes> {
        let ts = now_millis();
        (0..n)
            .map(|i| {
                Bytes::from(json!({"timestamp": ts, "page": format!("p{}", i % 10)}).to_string())
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut samples = Vec::new();
    let mut last_sample = Instant::now();
    let mut sent_total = 0u64;
    while Instant::now() < deadline {
        let outcomes = pipeline.send_all(batch(2000)).await;
        sent_total += outcomes.iter().filter(|o| o.is_sent()).count() as u64;
        if last_sample.elapsed() >= Duration::from_millis(250) {
            samples.push(rss_kib());
            last_sample = Instant::now();
        }
    }
    pipeline.flush().await;
    let tally = pipeline.metrics().snapshot();
    assert!(tally.is_balanced(), "{tally:?}");
    assert_eq!(tally.sent, sent_total);
    assert_eq!(
        tally.received, tally.sent,
        "nothing dropped or failed: {tally:?}"
    );
    assert_eq!(pipeline.metrics().pending(), 0);
    assert_eq!(
        druid::wait_for_count(
            &druid.url(),
            &ds,
            "count",
            sent_total as i64,
            Duration::from_secs(30)
        )
        .await,
        sent_total as i64
    );

    // Flat: the second half's peak is within a small margin of the first half's.
    assert!(samples.len() >= 4, "too few samples: {samples:?}");
    let (first, second) = samples.split_at(samples.len() / 2);
    let peak = |s: &[u64]| s.iter().copied().max().unwrap_or(0);
    let (a, b) = (peak(first), peak(second));
    assert!(
        b <= a + a / 4 + 16 * 1024,
        "memory grew from {a} KiB to {b} KiB over {seconds} s ({} events): {samples:?}",
        sent_total
    );
    pipelines.close().await;
    druid.shutdown().await;
}
