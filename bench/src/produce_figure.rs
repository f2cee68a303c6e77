//! The supervisor-backend figure: sync `POST /v1/post/{dataSource}` through the Tranquility
//! Server on the supervisor backend (events `sent` once the Kafka broker acknowledged them)
//! against a raw rdkafka producer of the same events, with the producer settings the backend
//! uses (idempotent, `acks=all`, `linger.ms=5`) and as many events in flight as the clients
//! post at once.
//!
//! druid-local plays 35.0.0 (no realtime tasks). Its Kafka supervisor is suspended once the
//! warm-up post has set it up, so Druid reading the topic does not share the cores during the
//! measure: the figure is Tranquility's cost on the way to Kafka. The two sides take turns.
//! Everything shares every core; with `pin_broker` the broker gets half of them (`taskset`)
//! and this process (server, load generator, raw producer, druid-local) the other half.

use std::sync::Arc;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use futures::StreamExt;
use indexmap::IndexMap;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use test_support::harness::Tansu;
use tranquility::backend::supervisor::producer_config;

use crate::kafka_figure::create_topic;
use crate::load::{self, LoadResult};
use crate::pin::Split;
use crate::server_figure::{bodies, warm_up};
use crate::stack::ServerStack;
use crate::workload;

/// The Druid release druid-local plays for the backend figures.
pub const PLAYED: &str = "35.0.0";

/// Turns each side takes, alternating.
const ROUNDS: u32 = 2;

/// Distinct events the raw producer cycles through.
const RAW_POOL: usize = 64_000;

/// What the raw producer did in its turns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RawProduce {
    /// Events the broker acknowledged.
    pub events_acknowledged: u64,
    /// Deliveries that failed.
    pub failed: u64,
    /// Seconds of producing (all turns).
    pub seconds: f64,
    /// Acknowledged events per second.
    pub events_per_sec: f64,
}

/// What the supervisor-backend figure measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProduceFigure {
    /// Through the server on the supervisor backend (sync posts, sent events counted).
    pub server: LoadResult,
    /// The raw rdkafka producer.
    pub raw: RawProduce,
    /// server / raw events per second.
    pub ratio: f64,
    /// Clients posting at once; the raw producer keeps `concurrency x batch_size` events in
    /// flight.
    pub concurrency: usize,
    /// Events per request body.
    pub batch_size: usize,
    /// The Druid release druid-local played.
    pub druid_version: String,
    /// Which cores the broker and this process had.
    pub placement: String,
}

/// Runs each side for `duration` in all, in alternating turns; `pin_broker` gives the broker
/// its own cores.
pub async fn run(
    duration: Duration,
    concurrency: usize,
    batch: usize,
    pin_broker: bool,
) -> anyhow::Result<ProduceFigure> {
    let broker = Tansu::start()?;
    let bootstrap = broker.bootstrap_servers();
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = PLAYED.parse()?;
    let druid = DruidLocal::start(config).await?;
    let split = pin_broker.then(Split::of_this_process).flatten();
    let (placement, pinned) = match &split {
        Some(split) => (
            format!(
                "the broker on CPU {}, this process (server, load, raw producer) on CPU {}",
                split.druid, split.ours
            ),
            broker
                .pid()
                .ok_or_else(|| anyhow::anyhow!("the broker is not running"))
                .and_then(|pid| Split::pin(pid, &split.druid))
                .and_then(|()| Split::pin_self(&split.ours)),
        ),
        None => (
            "the broker and this process sharing every core".to_string(),
            Ok(()),
        ),
    };
    let result = match pinned {
        Ok(()) => measure(&druid.url(), &bootstrap, duration, concurrency, batch).await,
        Err(e) => Err(e),
    };
    let restored = split.map(|s| Split::pin_self(&s.all)).transpose();
    druid.shutdown().await;
    drop(broker);
    let mut figure = result?;
    restored?;
    figure.placement = placement;
    Ok(figure)
}

async fn measure(
    druid_url: &str,
    bootstrap: &str,
    duration: Duration,
    concurrency: usize,
    batch: usize,
) -> anyhow::Result<ProduceFigure> {
    let ds = "bench_produce";
    let config = workload::supervisor_config(ds, bootstrap, &[])?;
    let stack = ServerStack::start(&config, druid_url).await?;
    // Creates the topic and the supervisor; then Druid stops reading.
    warm_up(&stack.url, ds).await?;
    let suspend = load::client()
        .post(format!(
            "{druid_url}/druid/indexer/v1/supervisor/{ds}/suspend"
        ))
        .send()
        .await?;
    anyhow::ensure!(
        suspend.status().is_success(),
        "suspending the supervisor: {}",
        suspend.text().await.unwrap_or_default()
    );

    let raw_topic = "bench-raw-produce";
    let admin = create_topic(bootstrap, raw_topic, 1).await?;
    let producer: FutureProducer = producer_config(bootstrap, &IndexMap::new()).create()?;
    let pool = Arc::new(workload::events(RAW_POOL));
    let in_flight = concurrency * batch;

    let bodies = bodies(batch);
    let server_url = format!("{}/v1/post/{ds}", stack.url);
    let turn = duration / ROUNDS;
    let (mut server, mut raw) = (Vec::new(), RawProduce::default());
    for round in 0..ROUNDS {
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let r = load::run(
                    &server_url,
                    bodies.clone(),
                    batch as u64,
                    concurrency,
                    turn,
                    load::server_sent,
                )
                .await;
                server.push(r);
            } else {
                let r = produce(&producer, raw_topic, &pool, in_flight, turn).await;
                raw.events_acknowledged += r.events_acknowledged;
                raw.failed += r.failed;
                raw.seconds += r.seconds;
            }
        }
    }
    raw.events_per_sec = raw.events_acknowledged as f64 / raw.seconds.max(f64::MIN_POSITIVE);
    let reports = stack.stop().await?;
    if let Some(r) = reports.first() {
        anyhow::ensure!(
            r.tally.is_balanced() && r.pending == 0,
            "server counts do not balance: {r:?}"
        );
    }
    drop((producer, admin));
    let server = LoadResult::combine(server);
    Ok(ProduceFigure {
        ratio: server.events_per_sec / raw.events_per_sec.max(f64::MIN_POSITIVE),
        server,
        raw,
        concurrency,
        batch_size: batch,
        druid_version: PLAYED.to_string(),
        placement: String::new(),
    })
}

/// Produces events of `pool` round-robin to `topic` for `duration`, `in_flight` at a time.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    pool: &Arc<Vec<bytes::Bytes>>,
    in_flight: usize,
    duration: Duration,
) -> RawProduce {
    let started = Instant::now();
    let deadline = started + duration;
    let mut next = 0usize;
    let sends = futures::stream::iter(std::iter::from_fn(move || {
        next += 1;
        (Instant::now() < deadline).then_some(next)
    }))
    .map(|i| {
        let payload = pool[i % pool.len()].clone();
        async move {
            producer
                .send(
                    FutureRecord::<(), [u8]>::to(topic).payload(&payload[..]),
                    Duration::from_secs(30),
                )
                .await
                .is_ok()
        }
    })
    .buffer_unordered(in_flight);
    let (ok, failed) = sends
        .fold((0u64, 0u64), |(ok, failed), delivered| async move {
            if delivered {
                (ok + 1, failed)
            } else {
                (ok, failed + 1)
            }
        })
        .await;
    let seconds = started.elapsed().as_secs_f64();
    RawProduce {
        events_acknowledged: ok,
        failed,
        seconds,
        events_per_sec: ok as f64 / seconds.max(f64::MIN_POSITIVE),
    }
}
