//! `tranquility spec -configFile FILE [--data-source DS] [--backend B]`: prints the JSON
//! Tranquility would submit to Druid for each dataSource, for review, or for users who manage
//! their supervisors themselves.
//!
//! - `realtime`: the `index_realtime` task of the current segment interval, partition 0,
//!   replicant 0 (the others differ only in their ids, shardSpec and service names).
//! - `supervisor`: the Kafka supervisor spec, with the hash Tranquility compares in `context`.
//! - `batch`: the `index_parallel` task of the current interval, with an empty inline
//!   `data` where a micro-batch's rows go.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value};
use tranquility::backend::translate::{
    batch_task, supervisor_spec, BatchLocks, BatchMode, EventFormat, SupervisorSettings,
};
use tranquility::druid::task_spec::realtime_task;
use tranquility::spec::properties::{Ingestion, IngestionProperties};
use tranquility::spec::{CoreProperties, DataSourceConfig};
use tranquility::time::Interval;

use crate::setup::{load_config, named_data_source, ConfigProblem};

/// Options of `tranquility spec`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Prints one JSON document: the spec itself with --data-source, else an \
    object keyed by dataSource. The backend defaults to the file's druid.ingestion; with `auto` \
    (decided at run time by the Overlord's version) pass --backend."
)]
pub struct Args {
    /// Configuration file (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
    /// Only this dataSource; also `-dataSource DS`.
    #[arg(long = "data-source", value_name = "DS")]
    pub data_source: Option<String>,
    /// Which submission to print.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

/// The backends `--backend` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// `index_realtime` tasks (Druid 0.9.2 to 30).
    Realtime,
    /// A Kafka supervisor (Druid 31+).
    Supervisor,
    /// `index_parallel` micro-batches (Druid 31+).
    Batch,
}

/// Prints the specs.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(&args.config_file)?;
    let chosen: Vec<&DataSourceConfig> = match &args.data_source {
        Some(name) => vec![named_data_source(&config, name)?],
        None => config.data_sources().iter().collect(),
    };
    let mut all = Map::new();
    for ds in &chosen {
        all.insert(ds.name.clone(), spec_of(ds, args.backend, config.source())?);
    }
    let document = match (&args.data_source, all.values().next()) {
        (Some(_), Some(only)) => only.clone(),
        _ => Value::Object(all),
    };
    let text = serde_json::to_string_pretty(&document)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        // A reader that stopped early (`| head`) is not an error of ours.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn spec_of(ds: &DataSourceConfig, flag: Option<Backend>, file: &str) -> anyhow::Result<Value> {
    let problem = |e: String| ConfigProblem(format!("{file}: dataSource '{}': {e}", ds.name));
    let core = CoreProperties::from_properties(&ds.properties)?;
    let ingestion = IngestionProperties::from_properties(&ds.properties)?;
    let backend = match (flag, ingestion.ingestion) {
        (Some(b), _) => b,
        (None, Ingestion::Realtime) => Backend::Realtime,
        (None, Ingestion::Supervisor) => Backend::Supervisor,
        (None, Ingestion::Batch) => Backend::Batch,
        (None, Ingestion::Auto) => {
            return Err(problem(
                "druid.ingestion is auto (chosen at run time from the Overlord's version); \
                 say which spec to print with --backend realtime|supervisor|batch"
                    .into(),
            )
            .into())
        }
    };
    let spec = &ds.spec;
    let now = chrono::Utc::now().timestamp_millis();
    let granularity = &spec.data_schema.granularity_spec.segment_granularity;
    let interval: Interval = granularity.bucket(now);
    let json = match backend {
        Backend::Realtime => {
            realtime_task(spec, &core, interval, 0, 0)
                .map_err(|e| problem(e.to_string()))?
                .json
        }
        Backend::Supervisor => {
            let brokers = ingestion.kafka_bootstrap_servers.clone().ok_or_else(|| {
                problem(
                    "the supervisor backend needs druid.ingestion.kafka.bootstrap.servers".into(),
                )
            })?;
            let mut consumer = Map::new();
            consumer.insert("bootstrap.servers".into(), Value::from(brokers));
            for (k, v) in &ingestion.kafka_consumer_properties.0 {
                consumer.insert(k.clone(), Value::from(v.as_str()));
            }
            let settings = SupervisorSettings {
                topic: ingestion.kafka_topic(&ds.name),
                consumer_properties: consumer,
                task_count: core.task_partitions,
                replicas: core.task_replicants,
                task_duration: ingestion.kafka_task_duration,
                use_earliest_offset: true,
                format: EventFormat::Json,
            };
            supervisor_spec(&spec.data_schema, &spec.tuning_config, &settings)
                .map_err(|e| problem(e.to_string()))?
        }
        Backend::Batch => batch_task(
            &spec.data_schema,
            &spec.tuning_config,
            &format!("tranquility_{}_{}", ds.name, interval.start),
            interval,
            "",
            BatchMode::Append,
            BatchLocks::Concurrent,
        )
        .map_err(|e| problem(e.to_string()))?,
    };
    Ok(json)
}
