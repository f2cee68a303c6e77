//! Overload figure: druid-local throttled, producers posting `?async=true` at full speed to
//! the server; this process's RSS sampled every second; every event accounted for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::load::{self, LoadResult};
use crate::rss;
use crate::server_figure::{self, druid_count};
use crate::slow_druid::{DruidChild, InProcess};
use crate::stack::ServerStack;
use crate::workload;

/// RSS counts as flat when the second half of the load peaks at most this far above the
/// first half's peak (allocator warm-up happens in the first seconds).
pub const FLAT_GROWTH_MIB: f64 = 4.0;

/// What the overload figure measured.
#[derive(Debug, Clone, Serialize)]
pub struct OverloadFigure {
    /// Seconds the producers posted for.
    pub seconds: f64,
    /// Producers posting at once.
    pub concurrency: usize,
    /// Events per request.
    pub batch_size: usize,
    /// Each push-events request holds druid-local's only push slot this long.
    pub push_hold_ms: u64,
    /// Whether druid-local ran in its own process (else its memory is in the figures too).
    pub druid_separate_process: bool,
    /// RSS before the producers started, MiB.
    pub rss_start_mib: f64,
    /// Largest RSS seen, MiB.
    pub rss_max_mib: f64,
    /// RSS after the drain, MiB.
    pub rss_end_mib: f64,
    /// Least-squares RSS slope over the second half of the load, MiB per minute.
    pub rss_slope_mib_per_min: f64,
    /// Peak of the load's second half minus the peak of its first half, MiB.
    pub rss_growth_second_half_mib: f64,
    /// Growth at most [`FLAT_GROWTH_MIB`].
    pub flat: bool,
    /// (seconds, MiB) samples.
    pub rss_samples: Vec<(f64, f64)>,
    /// The druid-local child's RSS at the end, MiB.
    pub druid_rss_mib: Option<f64>,
    /// What the producers saw (acknowledged = handed in, as `?async=true` answers).
    pub producers: LoadResult,
    /// The server's final counts for the dataSource.
    pub received: u64,
    /// Sent to Druid.
    pub sent: u64,
    /// Dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Failed.
    pub failed: u64,
    /// Still pending after the drain.
    pub pending: i64,
    /// received == sent + dropped + failed, nothing pending.
    pub balanced: bool,
    /// Events druid-local counted (its `count` metric summed).
    pub druid_rows_counted: u64,
    /// Seconds the graceful stop took to flush what was pending.
    pub drain_seconds: f64,
}

enum Druid {
    Child(DruidChild),
    Here(InProcess),
}

/// Runs the overload figure. `druid_program` starts the throttled druid-local as a child
/// process (see [`crate::slow_druid::serve`]); without it, it runs in this process.
pub async fn run(
    seconds: u64,
    concurrency: usize,
    batch: usize,
    push_hold_ms: u64,
    druid_program: Option<&[String]>,
) -> anyhow::Result<OverloadFigure> {
    let (druid, overlord, druid_url) = match druid_program {
        Some(program) => {
            let mut cmd = program.to_vec();
            cmd.extend(["--serve-slow-druid".to_string(), push_hold_ms.to_string()]);
            let slow = DruidChild::spawn(&cmd).await?;
            let (u, d) = (slow.url.clone(), slow.druid_url.clone());
            (Druid::Child(slow), u, d)
        }
        None => {
            let slow = InProcess::start(push_hold_ms).await?;
            let (u, d) = (slow.url.clone(), slow.druid_url());
            (Druid::Here(slow), u, d)
        }
    };
    let result = measure(
        seconds,
        concurrency,
        batch,
        push_hold_ms,
        &overlord,
        &druid_url,
        &druid,
    )
    .await;
    match druid {
        Druid::Child(c) => c.stop().await,
        Druid::Here(h) => h.stop().await,
    }
    result
}

async fn measure(
    seconds: u64,
    concurrency: usize,
    batch: usize,
    push_hold_ms: u64,
    overlord: &str,
    druid_url: &str,
    druid: &Druid,
) -> anyhow::Result<OverloadFigure> {
    let ds = "bench_overload";
    let bodies = server_figure::bodies(batch);
    let config = workload::config(ds, &[])?;
    let stack = ServerStack::start(&config, overlord).await?;
    server_figure::warm_up(&stack.url, ds).await?;
    let rss_start = rss::rss_mib().unwrap_or(0.0);
    let sampler = rss::Sampler::start();
    let producers = load::run(
        &format!("{}/v1/post/{ds}?async=true", stack.url),
        bodies,
        batch as u64,
        concurrency,
        Duration::from_secs(seconds),
        load::server_received,
    )
    .await;
    let drain_started = Instant::now();
    let reports = stack.stop().await?;
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    let samples = sampler.stop();
    let report = reports
        .into_iter()
        .find(|r| r.name == ds)
        .ok_or_else(|| anyhow::anyhow!("no final counts for {ds}"))?;
    let tally = report.tally;

    // druid-local indexes what it took within a second or so; wait for it to catch up.
    let mut counted = 0;
    for _ in 0..50 {
        counted = druid_count(druid_url, ds).await?;
        if counted >= tally.sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let load_secs = producers.seconds;
    let second_half: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t >= load_secs / 2.0 && *t <= load_secs)
        .collect();
    let slope = rss::slope(&second_half) * 60.0;
    let peak = |from: f64, to: f64| {
        samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|s| s.1)
            .fold(0.0, f64::max)
    };
    let growth = peak(load_secs / 2.0, load_secs + 1.0) - peak(0.0, load_secs / 2.0);
    let dropped = tally
        .drop_reasons()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.as_str().to_string(), n))
        .collect();
    Ok(OverloadFigure {
        seconds: load_secs,
        concurrency,
        batch_size: batch,
        push_hold_ms,
        druid_separate_process: matches!(druid, Druid::Child(_)),
        rss_start_mib: rss_start,
        rss_max_mib: samples.iter().map(|s| s.1).fold(rss_start, f64::max),
        rss_end_mib: samples.last().map_or(rss_start, |s| s.1),
        rss_slope_mib_per_min: slope,
        rss_growth_second_half_mib: growth,
        flat: growth <= FLAT_GROWTH_MIB,
        rss_samples: samples,
        druid_rss_mib: match druid {
            Druid::Child(c) => c.rss_mib(),
            Druid::Here(_) => None,
        },
        producers,
        received: tally.received,
        sent: tally.sent,
        dropped,
        failed: tally.failed,
        pending: report.pending,
        balanced: tally.is_balanced() && report.pending == 0,
        druid_rows_counted: counted,
        drain_seconds,
    })
}
