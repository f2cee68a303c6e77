//! Closed-loop HTTP load: `concurrency` clients each POST pre-built JSON-array bodies back to
//! back for a fixed time, counting what the answers acknowledge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

/// How long one request may take before the client gives up on it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads the acknowledged event count out of a 200 answer.
pub type AckParser = fn(&[u8]) -> Option<u64>;

/// What one load run saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// Requests answered 200.
    pub requests_ok: u64,
    /// Requests answered otherwise or not answered, by cause.
    pub requests_failed: BTreeMap<String, u64>,
    /// Events in the requests posted.
    pub events_posted: u64,
    /// Events the answers acknowledged.
    pub events_acknowledged: u64,
    /// Events in requests that failed.
    pub events_in_failed_requests: u64,
    /// Seconds from the first request to the last answer.
    pub seconds: f64,
    /// Acknowledged events per second.
    pub events_per_sec: f64,
    /// Request round trip, median, in milliseconds.
    pub request_p50_ms: f64,
    /// Request round trip, 99th percentile, in milliseconds.
    pub request_p99_ms: f64,
    /// Slowest request, in milliseconds.
    pub request_max_ms: f64,
    /// Every request's round trip, in milliseconds (for combining runs).
    #[serde(skip)]
    latencies_ms: Vec<f64>,
}

impl LoadResult {
    /// Several runs as one: counts and seconds add up, quantiles are over all requests.
    pub fn combine(parts: impl IntoIterator<Item = LoadResult>) -> LoadResult {
        let mut total = LoadResult::default();
        for part in parts {
            total.add(part);
        }
        total.finish(total.seconds);
        total
    }

    fn add(&mut self, part: LoadResult) {
        self.requests_ok += part.requests_ok;
        self.events_posted += part.events_posted;
        self.events_acknowledged += part.events_acknowledged;
        self.events_in_failed_requests += part.events_in_failed_requests;
        for (k, v) in part.requests_failed {
            *self.requests_failed.entry(k).or_default() += v;
        }
        self.latencies_ms.extend(part.latencies_ms);
        self.seconds += part.seconds;
    }

    fn finish(&mut self, seconds: f64) {
        self.seconds = seconds;
        self.events_per_sec = self.events_acknowledged as f64 / seconds.max(f64::MIN_POSITIVE);
        self.latencies_ms.sort_by(f64::total_cmp);
        self.request_p50_ms = quantile(&self.latencies_ms, 0.5);
        self.request_p99_ms = quantile(&self.latencies_ms, 0.99);
        self.request_max_ms = self.latencies_ms.last().copied().unwrap_or(0.0);
    }
}

/// The body of a Tranquility Server answer: `{"result":{"received":..,"sent":..}}`.
pub fn server_sent(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer("/result/sent")?.as_u64()
}

/// An async (`?async=true`) answer: the events handed in.
pub fn server_received(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer("/result/received")?.as_u64()
}

/// A push-events answer: `{"eventCount":N}`.
pub fn druid_event_count(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("eventCount")?.as_u64()
}

/// A loopback HTTP client without proxies and with the request timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(256)
        .build()
        .unwrap_or_default()
}

/// `q`-quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Worker {
    result: LoadResult,
    latencies: Vec<f64>,
}

/// POSTs `bodies` (each holding `events_per_body` events) round-robin to `url` from
/// `concurrency` clients for `duration`.
pub async fn run(
    url: &str,
    bodies: Arc<Vec<Bytes>>,
    events_per_body: u64,
    concurrency: usize,
    duration: Duration,
    ack: AckParser,
) -> LoadResult {
    let client = client();
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let client = client.clone();
            let url = url.to_string();
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut me = Worker::default();
                let mut i = w;
                while Instant::now() < deadline {
                    let body = bodies[i % bodies.len()].clone();
                    i += concurrency;
                    let sent_at = Instant::now();
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    me.result.events_posted += events_per_body;
                    let failure = match answer {
                        Ok(r) if r.status().is_success() => match r.bytes().await {
                            Ok(b) => match ack(&b) {
                                Some(n) => {
                                    me.result.requests_ok += 1;
                                    me.result.events_acknowledged += n;
                                    None
                                }
                                None => Some("unreadable answer".to_string()),
                            },
                            Err(e) => Some(format!("reading the answer: {}", kind(&e))),
                        },
                        Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
                        Err(e) => Some(kind(&e)),
                    };
                    me.latencies.push(sent_at.elapsed().as_secs_f64() * 1000.0);
                    if let Some(cause) = failure {
                        me.result.events_in_failed_requests += events_per_body;
                        *me.result.requests_failed.entry(cause).or_default() += 1;
                    }
                }
                me
            })
        })
        .collect();
    let mut total = LoadResult::default();
    for w in workers {
        let Ok(me) = w.await else { continue };
        let mut part = me.result;
        part.latencies_ms = me.latencies;
        total.add(part);
    }
    total.finish(started.elapsed().as_secs_f64());
    total
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect error".into()
    } else {
        "transport error".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        assert_eq!(
            server_sent(br#"{"result":{"received":5,"sent":3}}"#),
            Some(3)
        );
        assert_eq!(
            server_received(br#"{"result":{"received":5,"sent":0}}"#),
            Some(5)
        );
        assert_eq!(druid_event_count(br#"{"eventCount":7}"#), Some(7));
        assert_eq!(druid_event_count(b"oops"), None);
    }

    #[test]
    fn quantiles_pick_from_the_sorted_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 51.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }

    #[test]
    fn combined_runs_add_up_and_share_quantiles() {
        let run = |ok: u64, seconds: f64, latencies: &[f64]| {
            let mut r = LoadResult {
                requests_ok: ok,
                events_posted: ok * 10,
                events_acknowledged: ok * 10,
                latencies_ms: latencies.to_vec(),
                ..LoadResult::default()
            };
            r.requests_failed.insert("timeout".into(), 1);
            r.finish(seconds);
            r
        };
        let all = LoadResult::combine([run(3, 1.0, &[1.0, 2.0, 3.0]), run(1, 3.0, &[9.0])]);
        assert_eq!(all.requests_ok, 4);
        assert_eq!(all.events_acknowledged, 40);
        assert_eq!(all.requests_failed["timeout"], 2);
        assert_eq!(all.seconds, 4.0);
        assert_eq!(all.events_per_sec, 10.0);
        assert_eq!(all.request_p50_ms, 3.0);
        assert_eq!(all.request_max_ms, 9.0);
    }
}
