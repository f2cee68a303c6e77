//! Latency figure: events with current timestamps posted at a fixed rate through the server;
//! one event per request carries a unique `probe` value, and druid-local is polled until each
//! probe is queryable. Latency = from just before the POST to the poll that found it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;
use tranquility::spec::TranquilityConfig;

use crate::load::{self, quantile};
use crate::stack::ServerStack;
use crate::{server_figure, workload};

/// Requests per second; the batch size follows from the rate.
const POSTS_PER_SEC: u64 = 100;
/// How often druid-local is asked for outstanding probes.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long after the last post a probe may still show up.
const GRACE: Duration = Duration::from_secs(10);
/// How long the warm-up post may take to become queryable (a supervisor starting its task).
const READY_WITHIN: Duration = Duration::from_secs(120);
/// Requests in flight at most (beyond that the rate is not kept and the figure says so).
const MAX_IN_FLIGHT: usize = 512;

/// What the latency figure measured.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyFigure {
    /// Events per second asked for.
    pub target_events_per_sec: u64,
    /// Events per second the server answered `sent`.
    pub achieved_events_per_sec: f64,
    /// Seconds of posting.
    pub seconds: f64,
    /// Probes posted (one per request).
    pub probes: u64,
    /// Probes found queryable.
    pub found: u64,
    /// Median POST-to-queryable, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest found probe, ms.
    pub max_ms: f64,
    /// Requests that failed.
    pub failed_requests: u64,
    /// Poll period (the latencies' resolution), ms.
    pub poll_ms: u64,
}

type Outstanding = Arc<Mutex<HashMap<String, Instant>>>;

/// Runs the latency figure against an in-process druid-local.
pub async fn run(seconds: u64, rate: u64) -> anyhow::Result<LatencyFigure> {
    let druid = druid_local::DruidLocal::start(druid_local::DruidLocalConfig::ephemeral()).await?;
    let ds = "bench_latency";
    let result = measure(&druid.url(), ds, &workload::config(ds, &[])?, seconds, rate).await;
    druid.shutdown().await;
    result
}

/// Filler events (all but the probe) of one request, as JSON text without brackets.
fn filler(n: usize) -> Bytes {
    let body = workload::json_array(&workload::events(n));
    body.slice(1..body.len() - 1)
}

/// Posts through a server over `config` (the workload's dataSource `ds`, on the backend the
/// config picks) to the Druid at `druid_url`, and times every probe. The measure starts once
/// a first post is queryable (the backend's task or supervisor running).
pub(crate) async fn measure(
    druid_url: &str,
    ds: &'static str,
    config: &TranquilityConfig,
    seconds: u64,
    rate: u64,
) -> anyhow::Result<LatencyFigure> {
    let batch = (rate / POSTS_PER_SEC).max(1) as usize;
    let stack = ServerStack::start(config, druid_url).await?;
    server_figure::warm_up(&stack.url, ds).await?;
    let ready_by = Instant::now() + READY_WITHIN;
    while server_figure::druid_count(druid_url, ds).await? < 10 {
        anyhow::ensure!(
            Instant::now() < ready_by,
            "the warm-up events of {ds} were not queryable within {READY_WITHIN:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
    let url = format!("{}/v1/post/{ds}", stack.url);
    let outstanding: Outstanding = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let client = load::client();

    let poller = {
        let (outstanding, latencies, druid_url) = (
            outstanding.clone(),
            latencies.clone(),
            druid_url.to_string(),
        );
        tokio::spawn(async move { poll(&druid_url, ds, &outstanding, &latencies).await })
    };

    let started = Instant::now();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / POSTS_PER_SEC as u32);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut posts = Vec::new();
    let mut fill = filler(batch - 1);
    let mut filled_at = Instant::now();
    let mut probes = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        if filled_at.elapsed() >= Duration::from_secs(1) {
            fill = filler(batch - 1);
            filled_at = Instant::now();
        }
        let probe = format!("p{probes}");
        probes += 1;
        let event = workload::event(probes as usize, workload::now_millis(), Some(&probe));
        let mut body = Vec::with_capacity(event.len() + fill.len() + 3);
        body.push(b'[');
        body.extend_from_slice(&event);
        if !fill.is_empty() {
            body.push(b',');
            body.extend_from_slice(&fill);
        }
        body.push(b']');
        let permit = in_flight.clone().acquire_owned().await?;
        let (client, url, outstanding) = (client.clone(), url.clone(), outstanding.clone());
        posts.push(tokio::spawn(async move {
            let _permit = permit;
            if let Ok(mut o) = outstanding.lock() {
                o.insert(probe, Instant::now());
            }
            let answer = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => r
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| load::server_sent(&b))
                    .unwrap_or(0),
                _ => 0,
            }
        }));
    }
    let mut sent = 0u64;
    let mut failed_requests = 0u64;
    for p in posts {
        match p.await {
            Ok(n) if n > 0 => sent += n,
            _ => failed_requests += 1,
        }
    }
    let post_secs = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && outstanding.lock().map(|o| !o.is_empty()).unwrap_or(false) {
        tokio::time::sleep(POLL_EVERY).await;
    }
    poller.abort();
    let _ = stack.stop().await?;
    let mut found = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    found.sort_by(f64::total_cmp);
    Ok(LatencyFigure {
        target_events_per_sec: rate,
        achieved_events_per_sec: sent as f64 / post_secs,
        seconds: post_secs,
        probes,
        found: found.len() as u64,
        p50_ms: quantile(&found, 0.5),
        p99_ms: quantile(&found, 0.99),
        max_ms: found.last().copied().unwrap_or(0.0),
        failed_requests,
        poll_ms: POLL_EVERY.as_millis() as u64,
    })
}

/// Asks druid-local, every [`POLL_EVERY`], which outstanding probes it has; records their
/// latency and forgets them.
async fn poll(druid_url: &str, ds: &str, outstanding: &Outstanding, latencies: &Mutex<Vec<f64>>) {
    let client = load::client();
    let from = workload::now_millis() - 60_000;
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let wanted: Vec<String> = match outstanding.lock() {
            Ok(o) => o.keys().take(2000).cloned().collect(),
            Err(_) => return,
        };
        if wanted.is_empty() {
            continue;
        }
        let query = json!({
            "queryType": "scan",
            "dataSource": ds,
            "intervals": [format!(
                "{}/{}",
                tranquility::time::format_iso_millis(from),
                tranquility::time::format_iso_millis(workload::now_millis() + 60_000)
            )],
            "filter": {"type": "in", "dimension": "probe", "values": wanted},
            "columns": ["probe"],
            "resultFormat": "compactedList"
        });
        let Ok(answer) = client
            .post(format!("{druid_url}/druid/v2"))
            .json(&query)
            .send()
            .await
        else {
            continue;
        };
        let Ok(rows) = answer.json::<Value>().await else {
            continue;
        };
        let seen_at = Instant::now();
        let found = found_probes(&rows);
        if let (Ok(mut o), Ok(mut l)) = (outstanding.lock(), latencies.lock()) {
            for p in found {
                if let Some(sent_at) = o.remove(&p) {
                    l.push(seen_at.duration_since(sent_at).as_secs_f64() * 1000.0);
                }
            }
        }
    }
}

/// The probe values in a compactedList scan answer.
fn found_probes(rows: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for segment in rows.as_array().into_iter().flatten() {
        let columns = segment.get("columns").and_then(Value::as_array);
        let at = columns.and_then(|c| c.iter().position(|n| n == "probe"));
        let Some(at) = at else { continue };
        for row in segment
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = row.get(at).and_then(Value::as_str) {
                out.push(p.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_read_from_a_compacted_scan() {
        let rows = json!([
            {"segmentId": "a", "columns": ["__time", "probe"], "events": [[1, "p1"], [2, "p2"]]},
            {"segmentId": "b", "columns": ["probe"], "events": [["p9"], [null]]}
        ]);
        assert_eq!(found_probes(&rows), ["p1", "p2", "p9"]);
        assert!(found_probes(&json!({"error": "x"})).is_empty());
    }
}
