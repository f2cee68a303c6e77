//! Core figure: the production pipeline minus HTTP (timestamp extraction, Tranquilizer,
//! ClusteredBeam over 2 partitions x 2 replicas of discarding beams) against serde_json
//! parsing the same events into a map, on the same threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use tranquility::beam::{
    Beam, BeamMaker, CloseError, ClusteredBeam, ClusteredBeamConfig, Outcome, ReplicatedBeam,
    SendError, TranquilizerConfig,
};
use tranquility::coord::{BeamDescriptor, LocalCoordinator};
use tranquility::druid::partitioner::dimension_hash_partitioner;
use tranquility::event::Event;
use tranquility::metrics::Metrics;
use tranquility::pipeline::DataSourcePipeline;
use tranquility::time::window::WindowRule;
use tranquility::time::SystemClock;
use tranquility::time::{Interval, Period};

use crate::workload;

/// Events per `hand_in` call (the server hands in one request body at a time).
const HAND_IN: usize = 1000;
/// Hand-ins whose outcomes a producer may await at once.
const OUTSTANDING: usize = 8;

/// What the core figure measured.
#[derive(Debug, Clone, Serialize)]
pub struct CoreFigure {
    /// Events through the pipeline, each answered `Sent`.
    pub events: u64,
    /// Pipeline events per second.
    pub pipeline_events_per_sec: f64,
    /// serde_json parses into a map per second.
    pub serde_json_events_per_sec: f64,
    /// pipeline / serde_json.
    pub ratio: f64,
    /// Threads both sides ran on.
    pub threads: usize,
    /// Bytes per event.
    pub event_bytes: usize,
    /// Partitions x replicas behind the ClusteredBeam.
    pub partitions: u32,
    /// Replicas per partition.
    pub replicas: usize,
}

/// A beam that accepts and forgets every event, counting them.
#[derive(Debug, Default)]
struct DiscardBeam {
    seen: Arc<AtomicU64>,
}

#[async_trait]
impl Beam for DiscardBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        self.seen.fetch_add(events.len() as u64, Ordering::Relaxed);
        vec![Outcome::Sent; events.len()]
    }

    async fn close(&self) -> Result<(), CloseError> {
        Ok(())
    }
}

/// Makes, for every bucket and partition, a replicated beam over discarding beams.
#[derive(Debug)]
struct DiscardMaker {
    replicas: usize,
    seen: Arc<AtomicU64>,
}

#[async_trait]
impl BeamMaker for DiscardMaker {
    async fn create(
        &self,
        interval: Interval,
        partition: u32,
    ) -> Result<BeamDescriptor, SendError> {
        let interval = interval
            .to_string()
            .parse()
            .map_err(|e| SendError::Other(format!("interval {interval}: {e}")))?;
        Ok(BeamDescriptor {
            interval: Some(interval),
            timestamp: None,
            partition,
            details: Map::new(),
        })
    }

    fn open(&self, _descriptor: &BeamDescriptor) -> Result<Arc<dyn Beam>, SendError> {
        let replicas = (0..self.replicas)
            .map(|_| DiscardBeam {
                seen: self.seen.clone(),
            })
            .collect();
        Ok(Arc::new(ReplicatedBeam::new(replicas)))
    }
}

/// The pipeline under test and the counter of events its replicas discarded.
fn pipeline(
    partitions: u32,
    replicas: usize,
) -> anyhow::Result<(DataSourcePipeline, Arc<AtomicU64>)> {
    let spec = workload::spec("bench_core")?;
    let seen = Arc::new(AtomicU64::new(0));
    let maker = Arc::new(DiscardMaker {
        replicas,
        seen: seen.clone(),
    });
    let clustered = ClusteredBeam::new(
        ClusteredBeamConfig {
            identity: "druid:overlord/bench_core".into(),
            rule: WindowRule {
                segment_granularity: spec.data_schema.granularity_spec.segment_granularity,
                window_period: spec.tuning_config.window_period(),
                warming_period: Period::ZERO,
            },
            partitions,
            partitioner: dimension_hash_partitioner(&spec),
            clock: Arc::new(SystemClock),
        },
        maker,
        Arc::new(LocalCoordinator::new()),
    );
    let pipeline = DataSourcePipeline::with_beam(
        "bench_core",
        &spec,
        Arc::new(clustered),
        TranquilizerConfig::default(),
        &Metrics::new(),
    )?;
    Ok((pipeline, seen))
}

/// Sends `passes` x `pool` through the pipeline from `producers` tasks; returns the events
/// answered `Sent` and the seconds taken.
async fn drive(
    pipeline: &DataSourcePipeline,
    pool: &Arc<Vec<Bytes>>,
    passes: usize,
    producers: usize,
) -> anyhow::Result<(u64, f64)> {
    let chunks = pool.len().div_ceil(HAND_IN) * passes;
    let started = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let pipeline = pipeline.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut sent = 0u64;
                let mut other = 0u64;
                let mut pending = VecDeque::new();
                let per_pass = pool.len().div_ceil(HAND_IN);
                for c in (p..chunks).step_by(producers) {
                    let at = (c % per_pass) * HAND_IN;
                    let chunk = pool[at..(at + HAND_IN).min(pool.len())].to_vec();
                    pending.push_back(tokio::spawn(pipeline.hand_in(chunk).await));
                    while pending.len() >= OUTSTANDING {
                        if let Some(h) = pending.pop_front() {
                            tally(h.await, &mut sent, &mut other);
                        }
                    }
                }
                for h in pending {
                    tally(h.await, &mut sent, &mut other);
                }
                (sent, other)
            })
        })
        .collect();
    let mut sent = 0;
    let mut other = 0;
    for t in tasks {
        let (s, o) = t.await?;
        sent += s;
        other += o;
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        other == 0,
        "{other} events were not answered Sent by the pipeline"
    );
    Ok((sent, secs))
}

fn tally(outcomes: Result<Vec<Outcome>, tokio::task::JoinError>, sent: &mut u64, other: &mut u64) {
    match outcomes {
        Ok(outcomes) => {
            for o in outcomes {
                if o.is_sent() {
                    *sent += 1;
                } else {
                    *other += 1;
                }
            }
        }
        Err(_) => *other += HAND_IN as u64,
    }
}

/// Parses `passes` x `pool` into maps on `threads` threads; returns events and seconds.
fn parse_baseline(
    pool: &Arc<Vec<Bytes>>,
    passes: usize,
    threads: usize,
) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let parsed: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let pool = pool.clone();
                s.spawn(move || -> anyhow::Result<u64> {
                    let mut n = 0u64;
                    for pass in 0..passes {
                        for raw in pool.iter().skip((t + pass) % threads).step_by(threads) {
                            let map: Map<String, Value> = serde_json::from_slice(raw)?;
                            n += u64::from(!map.is_empty());
                        }
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("parser thread panicked")))
            })
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let mut total = 0;
    for n in parsed {
        total += n?;
    }
    Ok((total, secs))
}

/// Runs the core figure over `pool_size` distinct events sent `passes` times.
pub async fn run(pool_size: usize, passes: usize, threads: usize) -> anyhow::Result<CoreFigure> {
    let (partitions, replicas) = (2, 2);
    let pool = Arc::new(workload::events(pool_size));
    let (pipeline, seen) = pipeline(partitions, replicas)?;
    // Warm-up: creates the bucket's beams, fills caches and the allocator.
    drive(&pipeline, &pool, 1, threads).await?;
    let before = seen.load(Ordering::Relaxed);
    let (events, secs) = drive(&pipeline, &pool, passes, threads * 2).await?;
    let discarded = seen.load(Ordering::Relaxed) - before;
    anyhow::ensure!(
        discarded == events * replicas as u64,
        "the replicas discarded {discarded} events, expected {}",
        events * replicas as u64
    );
    pipeline.close().await;
    let pipeline_rate = events as f64 / secs;

    let base_pool = pool.clone();
    let (parsed, base_secs) =
        tokio::task::spawn_blocking(move || parse_baseline(&base_pool, passes, threads)).await??;
    let baseline_rate = parsed as f64 / base_secs;
    Ok(CoreFigure {
        events,
        pipeline_events_per_sec: pipeline_rate,
        serde_json_events_per_sec: baseline_rate,
        ratio: pipeline_rate / baseline_rate,
        threads,
        event_bytes: workload::EVENT_BYTES,
        partitions,
        replicas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_event_reaches_both_replicas_of_its_partition() {
        let figure = run(2_500, 2, 2).await.unwrap();
        assert_eq!(figure.events, 5_000);
        assert!(figure.ratio > 0.0);
    }
}
