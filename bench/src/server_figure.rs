//! Server figure: events/s through `POST /v1/post/{dataSource}` (sync) to druid-local, against
//! the same bodies POSTed straight to a druid-local task's push-events, same concurrency. The
//! two sides take turns, so both see the machine in the same state.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tranquility::spec::CoreProperties;
use tranquility::time::Granularity;

use crate::load::{self, LoadResult};
use crate::pin::Split;
use crate::slow_druid::DruidChild;
use crate::stack::ServerStack;
use crate::workload;

/// What the server figure measured.
#[derive(Debug, Clone, Serialize)]
pub struct ServerFigure {
    /// Through the Tranquility Server (sync posts, sent events counted).
    pub server: LoadResult,
    /// Straight to the task's push-events endpoint.
    pub direct: LoadResult,
    /// server / direct events per second.
    pub ratio: f64,
    /// Clients posting at once, on both sides.
    pub concurrency: usize,
    /// Events per request body.
    pub batch_size: usize,
    /// Where druid-local ran and which cores each side had.
    pub placement: String,
}

/// Distinct request bodies to cycle through.
const BODIES: usize = 64;

/// Turns each side takes, alternating.
const ROUNDS: u32 = 4;

/// Bodies of `batch` fresh events each.
pub fn bodies(batch: usize) -> Arc<Vec<bytes::Bytes>> {
    let pool = workload::events(BODIES * batch);
    Arc::new(pool.chunks(batch).map(workload::json_array).collect())
}

/// Submits a realtime task for `data_source` (the spec Tranquility would submit for the
/// current hour) and returns the task's push-events URL once it answers.
pub async fn direct_task(druid_url: &str, data_source: &str) -> anyhow::Result<String> {
    let spec = workload::spec(data_source)?;
    let props = CoreProperties::from_properties(&Default::default())?;
    let interval = Granularity::HOUR.bucket(workload::now_millis());
    let task = tranquility::druid::task_spec::realtime_task(&spec, &props, interval, 0, 0)?;
    let client = load::client();
    let answer = client
        .post(format!("{druid_url}/druid/indexer/v1/task"))
        .json(&task.json)
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "druid-local refused the task: {}",
        answer.text().await.unwrap_or_default()
    );
    let push = format!(
        "{druid_url}/druid/worker/v1/chat/{}/push-events",
        task.service_name
    );
    for _ in 0..100 {
        let probe = client
            .post(&push)
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await?;
        if probe.status().is_success() {
            return Ok(push);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the task's receiver {push} never answered")
}

/// Posts one body to the server and checks every event was sent (creates the task).
pub async fn warm_up(url: &str, data_source: &str) -> anyhow::Result<()> {
    let body = workload::json_array(&workload::events(10));
    let answer = load::client()
        .post(format!("{url}/v1/post/{data_source}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = answer.status();
    let text = answer.text().await?;
    let sent = load::server_sent(text.as_bytes());
    anyhow::ensure!(
        status.is_success() && sent == Some(10),
        "warm-up post was not fully sent: {status} {text}"
    );
    Ok(())
}

/// Runs both sides for `duration` each. With `druid_program` (see [`crate::slow_druid`]),
/// druid-local runs as a child process on half the CPUs and this process on the other half,
/// as when Tranquility and Druid have machines of their own; otherwise druid-local runs in
/// this process and both share every core.
pub async fn run(
    duration: Duration,
    concurrency: usize,
    batch: usize,
    druid_program: Option<&[String]>,
) -> anyhow::Result<ServerFigure> {
    let split = druid_program.and_then(|p| Split::of_this_process().map(|s| (p, s)));
    let Some((program, split)) = split else {
        let druid =
            druid_local::DruidLocal::start(druid_local::DruidLocalConfig::ephemeral()).await?;
        let placement = "druid-local in this process, sharing every core".to_string();
        let result = measure(&druid.url(), duration, concurrency, batch, placement).await;
        druid.shutdown().await;
        return result;
    };
    let mut command = program.to_vec();
    command.push("--serve-druid".to_string());
    let druid = DruidChild::spawn(&split.druid_command(&command)).await?;
    Split::pin_self(&split.ours)?;
    let placement = format!(
        "druid-local in a child process on CPU {}, Tranquility and the load on CPU {}",
        split.druid, split.ours
    );
    let result = measure(&druid.url, duration, concurrency, batch, placement).await;
    let restored = Split::pin_self(&split.all);
    druid.stop().await;
    let figure = result?;
    restored?;
    Ok(figure)
}

async fn measure(
    druid_url: &str,
    duration: Duration,
    concurrency: usize,
    batch: usize,
    placement: String,
) -> anyhow::Result<ServerFigure> {
    let bodies = bodies(batch);
    let config = workload::config("bench_server", &[])?;
    let stack = ServerStack::start(&config, druid_url).await?;
    warm_up(&stack.url, "bench_server").await?;
    let server_url = format!("{}/v1/post/bench_server", stack.url);
    let push = direct_task(druid_url, "bench_direct").await?;

    // Short turns, alternating which side goes first, so a change in the machine's speed
    // during the run weighs on both sides alike.
    let turn = duration / ROUNDS;
    // (URL, how its answers acknowledge events, the turns taken): server first, then direct.
    let mut sides: [(&str, load::AckParser, Vec<LoadResult>); 2] = [
        (&server_url, load::server_sent, Vec::new()),
        (&push, load::druid_event_count, Vec::new()),
    ];
    for round in 0..ROUNDS as usize {
        for side in [round % 2, 1 - round % 2] {
            let (url, ack, turns) = &mut sides[side];
            let r = load::run(url, bodies.clone(), batch as u64, concurrency, turn, *ack).await;
            turns.push(r);
        }
    }
    let [(_, _, server), (_, _, direct)] = sides;
    let reports = stack.stop().await?;
    if let Some(r) = reports.first() {
        anyhow::ensure!(
            r.tally.is_balanced() && r.pending == 0,
            "server counts do not balance: {:?}",
            r
        );
    }
    let (server, direct) = (LoadResult::combine(server), LoadResult::combine(direct));
    Ok(ServerFigure {
        ratio: server.events_per_sec / direct.events_per_sec.max(f64::MIN_POSITIVE),
        server,
        direct,
        concurrency,
        batch_size: batch,
        placement,
    })
}

/// Sums the `count` metric of `data_source` over all time (rows ingested, before rollup).
pub async fn druid_count(druid_url: &str, data_source: &str) -> anyhow::Result<u64> {
    let query = serde_json::json!({
        "queryType": "timeseries",
        "dataSource": data_source,
        "granularity": "all",
        "intervals": ["1000-01-01/3000-01-01"],
        "aggregations": [{"type": "longSum", "name": "n", "fieldName": "count"}]
    });
    let rows: Value = load::client()
        .post(format!("{druid_url}/druid/v2"))
        .json(&query)
        .send()
        .await?
        .json()
        .await?;
    Ok(rows
        .pointer("/0/result/n")
        .and_then(Value::as_u64)
        .unwrap_or(0))
}
