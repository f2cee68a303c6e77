//! `tranquility kafka` on Druid 31+: Druid reads the user's topics itself.
//!
//! With `druid.ingestion=supervisor`, or `auto` when the Overlord runs Druid 31+ with its Kafka
//! extension, each topic-to-dataSource mapping of `kafka.json` becomes a Kafka supervisor on
//! the user's own topic (`topic` for a plain name, `topicPattern` for a regex): no message
//! passes through Tranquility. The spec is the dataSource's, translated as for the supervisor
//! backend, with the parseSpec's format as the `inputFormat` (the messages are read as they
//! are). Many instances starting together post each supervisor once (the ZooKeeper lock), and
//! an unchanged spec is not posted again.
//!
//! A mapping that a supervisor cannot express is consumed and produced as before, and said so:
//! - `useTopicAsDataSource` (a dataSource per topic; a supervisor feeds one dataSource);
//! - a parseSpec format without an `inputFormat` (e.g. `regex`, `javascript`);
//! - a pattern that may claim a topic another mapping claims (`topicPattern.priority` sends
//!   such a topic to one dataSource; supervisors would each read it).
//!
//! The offsets Tranquility committed for its consumer group are not carried over: a new
//! supervisor starts at the earliest offsets (`--start-from latest` to skip what the topic
//! holds), so moving from a running Tranquility Kafka re-reads what is retained (at least
//! once) unless told otherwise.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value};
use tranquility::backend::supervisor::{
    ensure_supervisor_spec, supervisor_status, SupervisorAction,
};
use tranquility::backend::translate::{
    input_format, spec_hash, supervisor_spec, EventFormat, SupervisorSettings, SPEC_HASH_KEY,
};
use tranquility::backend::{probe, KAFKA_INDEXING_MODULE};
use tranquility::druid::overlord::OverlordClient;
use tranquility::druid::tls::DruidTls;
use tranquility::pipeline::{overlord_client, supervisor_identity, zk_coordinator, ZkConnections};
use tranquility::retry::RetryPolicy;
use tranquility::spec::properties::{Ingestion, IngestionProperties};
use tranquility::spec::{CoreProperties, DataSourceConfig, TranquilityConfig};
use tranquility_kafka::mapping::TopicRoute;
use tranquility_kafka::{KafkaDataSourceProperties, KafkaProperties};

use crate::setup::ConfigProblem;

/// The options of `tranquility kafka` for Druid 31+.
#[derive(Debug, Clone, clap::Args)]
pub struct SupervisorArgs {
    /// Druid 31+: after setting up the supervisors, keep reporting their states until stopped
    /// (without it: report once they have started, and exit, unless some mapping is still
    /// consumed by Tranquility).
    #[arg(long = "watch")]
    pub watch: bool,
    /// Druid 31+: where a new supervisor starts reading when Druid has no offsets for its
    /// topic yet.
    #[arg(long = "start-from", value_enum, default_value_t = StartFrom::Earliest)]
    pub start_from: StartFrom,
}

/// Where a new supervisor starts reading (`useEarliestOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// The oldest retained message.
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

/// One mapping a supervisor takes over.
#[derive(Debug, Clone)]
struct Taken {
    data_source: String,
    /// `topic X` or `topicPattern X`, for reports.
    source: String,
    spec: Value,
    core: CoreProperties,
}

/// How long a report waits for supervisors to leave `PENDING`.
const START_WAIT: Duration = Duration::from_secs(120);
/// How often states are read.
const POLL: Duration = Duration::from_secs(2);

/// Sets up supervisors for the mappings they can express and returns the configuration left
/// to consume: the whole file when Druid has realtime tasks (or the backend is not the
/// supervisor), the mappings supervisors cannot express, or `None` when supervisors took
/// everything (then this returns after the report, or, with `--watch`, at `stop`).
pub async fn take_over(
    config: TranquilityConfig,
    path: &Path,
    args: &SupervisorArgs,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<Option<TranquilityConfig>> {
    let Some(first) = config.data_sources().first() else {
        return Ok(Some(config));
    };
    let ingestion = IngestionProperties::from_properties(&first.properties)?;
    let core = CoreProperties::from_properties(&first.properties)?;
    let tls = DruidTls::from_properties(&core)
        .map_err(|e| ConfigProblem(format!("{}: {e}", config.source())))?;
    // One ZooKeeper connection per connect string for the Overlord's discovery and the locks.
    let zk = ZkConnections::new();
    let overlord = overlord_client(&core, None, &zk, &tls)
        .map_err(|e| ConfigProblem(format!("{}: {e}", config.source())))?;
    // One attempt: an Overlord away at start leaves the choice to the pipelines.
    let once = overlord.with_retry(RetryPolicy::overlord().once());
    if !uses_supervisors(ingestion.ingestion, &once).await {
        return Ok(Some(config));
    }
    let kafka = KafkaProperties::from_properties(config.global_properties())?;
    let brokers = kafka
        .consumer_properties
        .get("bootstrap.servers")
        .cloned()
        .or_else(|| ingestion.kafka_bootstrap_servers.clone())
        .ok_or_else(|| {
            ConfigProblem(format!(
                "{}: supervisors read the topics through Kafka brokers: set kafka.bootstrap.servers",
                config.source()
            ))
        })?;
    let (taken, fallback) = split(&config, &brokers, args)?;
    for (ds, reason) in &fallback {
        tracing::warn!(
            dataSource = %ds,
            "no supervisor for this mapping: {reason}; Tranquility consumes and produces it"
        );
        println!("{ds}: consumed by Tranquility ({reason})");
    }
    for t in &taken {
        let coordinator = zk_coordinator(&t.core, &zk);
        let action = ensure_supervisor_spec(
            &overlord,
            coordinator.as_ref(),
            &supervisor_identity(&t.core, &t.data_source),
            &t.data_source,
            &t.spec,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", t.data_source))?;
        let done = match action {
            SupervisorAction::Created => "created",
            SupervisorAction::Updated => "updated",
            SupervisorAction::Unchanged => "unchanged",
        };
        println!("{}: supervisor on {} {done}", t.data_source, t.source);
    }
    report(&overlord, &taken).await?;
    if fallback.is_empty() {
        if args.watch {
            watch(overlord, taken, stop).await;
        }
        return Ok(None);
    }
    if args.watch {
        tokio::spawn(watch(overlord, taken, std::future::pending::<()>()));
    }
    let names: BTreeSet<String> = fallback.into_iter().map(|(ds, _)| ds).collect();
    rest(path, &names, &brokers).map(Some)
}

/// Whether the mappings go to supervisors: `supervisor`, or `auto` on a Druid 31+ that loads
/// the Kafka extension. An unreachable Overlord leaves `auto` to the pipelines (first send).
async fn uses_supervisors(ingestion: Ingestion, overlord: &OverlordClient) -> bool {
    match ingestion {
        Ingestion::Supervisor => true,
        Ingestion::Realtime | Ingestion::Batch => false,
        Ingestion::Auto => match probe(overlord).await {
            Ok(s) if s.has_realtime_tasks() => false,
            Ok(s) if !s.has_kafka_indexing() => {
                tracing::info!(
                    version = %s.version,
                    "Druid has no realtime tasks and does not load {KAFKA_INDEXING_MODULE}: \
                     Tranquility consumes the topics and sends batches"
                );
                false
            }
            Ok(s) => {
                tracing::info!(version = %s.version, "Druid reads the topics: one supervisor per mapping");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read Druid's version now: consuming the topics");
                false
            }
        },
    }
}

/// The mappings supervisors take, and the others with the reason.
#[allow(clippy::type_complexity)]
fn split(
    config: &TranquilityConfig,
    brokers: &str,
    args: &SupervisorArgs,
) -> anyhow::Result<(Vec<Taken>, Vec<(String, String)>)> {
    let mut candidates = Vec::new();
    let mut fallback = Vec::new();
    for ds in config.data_sources() {
        let kafka = KafkaDataSourceProperties::from_properties(&ds.properties)?;
        let route = TopicRoute::new(
            &ds.name,
            &kafka.topic_pattern,
            kafka.topic_pattern_priority,
            kafka.use_topic_as_data_source,
        )
        .map_err(|e| ConfigProblem(format!("{}: {e}", config.source())))?;
        // The default pattern matches no topic: the mapping is not consumed at all.
        if kafka.topic_pattern == "(?!)" {
            continue;
        }
        if kafka.use_topic_as_data_source {
            fallback.push((
                ds.name.clone(),
                "useTopicAsDataSource makes a dataSource of each topic, and a supervisor feeds \
                 one dataSource"
                    .to_string(),
            ));
            continue;
        }
        if let Err(e) = input_format(&ds.spec.data_schema, EventFormat::AsParseSpec) {
            fallback.push((ds.name.clone(), e.reason));
            continue;
        }
        candidates.push((ds, route));
    }
    // A topic two patterns claim goes to one dataSource in Tranquility, to both with
    // supervisors: such mappings stay with Tranquility.
    let literal = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let mut overlapping = BTreeSet::new();
    for (i, (a, ra)) in candidates.iter().enumerate() {
        for (b, rb) in candidates.iter().skip(i + 1) {
            let clash = match (literal(&ra.pattern), literal(&rb.pattern)) {
                (true, true) => ra.pattern == rb.pattern,
                (true, false) => rb.matches(&ra.pattern),
                (false, true) => ra.matches(&rb.pattern),
                (false, false) => may_share_names(&ra.pattern, &rb.pattern),
            };
            if clash {
                overlapping.insert((a.name.clone(), b.name.clone()));
            }
        }
    }
    let mut taken = Vec::new();
    for (ds, route) in candidates {
        if let Some((a, b)) = overlapping
            .iter()
            .find(|(a, b)| *a == ds.name || *b == ds.name)
        {
            let other = if *a == ds.name { b } else { a };
            fallback.push((
                ds.name.clone(),
                format!(
                    "its topicPattern '{}' may claim the topics of dataSource '{other}' \
                     (topicPattern.priority picks one; supervisors would both read them)",
                    route.pattern
                ),
            ));
            continue;
        }
        taken.push(take(ds, &route, literal(&route.pattern), brokers, args)?);
    }
    Ok((taken, fallback))
}

/// The literal text every name a regex matches must start with: the leading letters, digits,
/// `-` and `_` (less one before a quantifier); nothing when the pattern has an alternation.
fn literal_prefix(pattern: &str) -> &str {
    if pattern.contains('|') {
        return "";
    }
    let end = pattern
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(pattern.len());
    match pattern[end..].chars().next() {
        Some('?' | '*' | '{') => &pattern[..end.saturating_sub(1)],
        _ => &pattern[..end],
    }
}

/// Whether two regexes may both match a whole topic name: unless their literal prefixes
/// differ (then no name starts with both), they are taken to.
fn may_share_names(a: &str, b: &str) -> bool {
    let (pa, pb) = (literal_prefix(a), literal_prefix(b));
    pa.starts_with(pb) || pb.starts_with(pa)
}

fn take(
    ds: &DataSourceConfig,
    route: &TopicRoute,
    literal: bool,
    brokers: &str,
    args: &SupervisorArgs,
) -> anyhow::Result<Taken> {
    let core = CoreProperties::from_properties(&ds.properties)?;
    let ingestion = IngestionProperties::from_properties(&ds.properties)?;
    let mut consumer = Map::new();
    consumer.insert("bootstrap.servers".into(), Value::from(brokers));
    for (k, v) in &ingestion.kafka_consumer_properties.0 {
        consumer.insert(k.clone(), Value::from(v.as_str()));
    }
    let settings = SupervisorSettings {
        topic: route.pattern.clone(),
        consumer_properties: consumer,
        task_count: core.task_partitions,
        replicas: core.task_replicants,
        task_duration: ingestion.kafka_task_duration,
        use_earliest_offset: args.start_from == StartFrom::Earliest,
        format: EventFormat::AsParseSpec,
    };
    let mut spec = supervisor_spec(&ds.spec.data_schema, &ds.spec.tuning_config, &settings)?;
    let source = if literal {
        format!("topic {}", route.pattern)
    } else {
        // A regex: Druid reads every topic whose whole name it matches, as Tranquility did.
        if let Some(io) = spec
            .pointer_mut("/spec/ioConfig")
            .and_then(Value::as_object_mut)
        {
            io.remove("topic");
            io.insert("topicPattern".into(), Value::from(route.pattern.as_str()));
        }
        let hash = spec_hash(&spec);
        spec["context"][SPEC_HASH_KEY] = Value::from(hash);
        format!("topicPattern {}", route.pattern)
    };
    Ok(Taken {
        data_source: ds.name.clone(),
        source,
        spec,
        core,
    })
}

/// Waits until every supervisor has left `PENDING` (or a time limit), prints each state, and
/// fails naming the supervisors Druid reports unhealthy.
async fn report(overlord: &OverlordClient, taken: &[Taken]) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_WAIT;
    let mut states = Vec::new();
    loop {
        states.clear();
        for t in taken {
            let status = supervisor_status(overlord, &t.data_source)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", t.data_source))?;
            states.push(status);
        }
        let settled = states.iter().all(|s| {
            s.as_ref()
                .is_some_and(|s| s.state != "PENDING" && !s.state.is_empty())
        });
        if settled || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let mut unhealthy = Vec::new();
    for (t, status) in taken.iter().zip(&states) {
        match status {
            Some(s) => {
                println!(
                    "{}: supervisor {} ({}) on {}",
                    t.data_source, s.state, s.detailed_state, t.source
                );
                if s.is_unhealthy() {
                    unhealthy.push(format!(
                        "{} is {} ({}): {}",
                        t.data_source,
                        s.state,
                        s.detailed_state,
                        s.recent_errors.join("; ")
                    ));
                }
            }
            None => unhealthy.push(format!("{} has no supervisor in Druid", t.data_source)),
        }
    }
    if unhealthy.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "supervisors in trouble: {}",
            unhealthy.join(" | ")
        ))
    }
}

/// Logs every change of the supervisors' states until `stop`.
async fn watch(overlord: OverlordClient, taken: Vec<Taken>, stop: impl Future<Output = ()>) {
    let mut last: Vec<Option<String>> = vec![None; taken.len()];
    let looping = async {
        loop {
            for (t, seen) in taken.iter().zip(last.iter_mut()) {
                let now = match supervisor_status(&overlord, &t.data_source).await {
                    Ok(Some(s)) => format!("{} ({})", s.state, s.detailed_state),
                    Ok(None) => "absent".to_string(),
                    Err(e) => format!("unknown: {e}"),
                };
                if seen.as_deref() != Some(now.as_str()) {
                    tracing::info!(dataSource = %t.data_source, state = %now, "supervisor state");
                    println!("{}: supervisor {now}", t.data_source);
                    *seen = Some(now);
                }
            }
            tokio::time::sleep(POLL * 5).await;
        }
    };
    tokio::select! {
        () = looping => {}
        () = stop => {}
    }
}

/// The file with only the `names` dataSources, producing through the supervisor backend's own
/// topics (`druid.ingestion.kafka.bootstrap.servers` defaults to the consumer's brokers).
fn rest(path: &Path, names: &BTreeSet<String>, brokers: &str) -> anyhow::Result<TranquilityConfig> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?;
    let mut root: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| ConfigProblem(format!("{name}: {e}")))?
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| ConfigProblem(format!("{name}: {e}")))?
    };
    let keep = |entry: &Value, key: Option<&str>| {
        entry
            .pointer("/spec/dataSchema/dataSource")
            .and_then(Value::as_str)
            .or(key)
            .is_some_and(|n| names.contains(n))
    };
    match root.get_mut("dataSources") {
        Some(Value::Array(list)) => list.retain(|e| keep(e, None)),
        Some(Value::Object(by_name)) => by_name.retain(|k, e| keep(e, Some(k))),
        _ => {}
    }
    if let Some(obj) = root.as_object_mut() {
        if let Value::Object(props) = obj
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()))
        {
            props
                .entry("druid.ingestion.kafka.bootstrap.servers")
                .or_insert_with(|| Value::from(brokers));
        }
    }
    Ok(TranquilityConfig::from_value(root, &name)?)
}

#[cfg(test)]
mod tests;
