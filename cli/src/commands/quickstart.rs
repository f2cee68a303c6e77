//! `tranquility quickstart`: druid-local and Tranquility Server in one process, coordinated in
//! memory (no ZooKeeper), with a sample dataSource `quickstart` that takes any JSON object with
//! a current `timestamp`. Prints where to push and how to query.
//!
//! druid-local plays Druid 30 by default, where the server pushes to realtime tasks. With
//! `--druid-version 31.0.0` or later (which have none) the events go as batch appends, or with
//! `--kafka HOST:PORT` through a Kafka topic that druid-local's Kafka supervisor reads: the
//! same backends, chosen the same way (`druid.ingestion=auto`), as against a real Druid.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use druid_local::version::DruidVersion;
use druid_local::{DruidLocal, DruidLocalConfig};
use tranquility::backend::Backend;
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::Pipelines;
use tranquility::spec::properties::IngestionProperties;
use tranquility::spec::TranquilityConfig;
use tranquility_server::{shutdown_signal, AppState, Server, ServerConfig};

use crate::setup::{self, ConfigProblem};

/// The sample dataSource: schemaless dimensions (every field but `timestamp` becomes one), a
/// `count` metric, hourly segments, and events accepted within ten minutes of now.
pub const BUILT_IN_CONFIG: &str = r#"{
  "dataSources": [
    {
      "spec": {
        "dataSchema": {
          "dataSource": "quickstart",
          "parser": {
            "type": "string",
            "parseSpec": {
              "format": "json",
              "timestampSpec": {"column": "timestamp", "format": "auto"},
              "dimensionsSpec": {"dimensions": []}
            }
          },
          "metricsSpec": [{"type": "count", "name": "count"}],
          "granularitySpec": {
            "type": "uniform",
            "segmentGranularity": "hour",
            "queryGranularity": "minute"
          }
        },
        "tuningConfig": {
          "type": "realtime",
          "windowPeriod": "PT10M",
          "intermediatePersistPeriod": "PT10M",
          "maxRowsInMemory": 75000
        }
      },
      "properties": {"task.partitions": "1", "task.replicants": "1"}
    }
  ],
  "properties": {
    "http.port": "8200",
    "http.bindAddress": "127.0.0.1"
  }
}"#;

/// Set on the built-in configuration when druid-local plays a release with realtime tasks:
/// tasks found through the Overlord, polled often, and ending soon after their interval.
const BUILT_IN_REALTIME: &[(&str, &str)] = &[
    ("druidBeam.taskLocator", "overlord"),
    ("druidBeam.overlordPollPeriod", "PT5S"),
    ("druidBeam.firehoseGracePeriod", "PT1M"),
    ("druidBeam.randomizeTaskId", "true"),
];

/// Set on the built-in configuration on the batch backend: a short batch period, so a posted
/// event is queryable (and a synchronous POST answered) within seconds rather than the
/// default 30.
const BUILT_IN_BATCH: &[(&str, &str)] = &[("druid.ingestion.batch.periodMillis", "2000")];

/// Set over a user's configuration file on a release with realtime tasks. No ZooKeeper here:
/// tasks are found through the Overlord. Beams are remembered only in memory and druid-local's
/// running tasks end with the process, so a restart within the same segment interval must
/// create fresh task ids rather than collide with the ended tasks' ids.
const QUICKSTART_OVERRIDES: &[(&str, &str)] = &[
    ("druidBeam.taskLocator", "overlord"),
    ("druidBeam.randomizeTaskId", "true"),
];

/// The property that makes `druid.ingestion=auto` pick the supervisor backend on 31+.
const KAFKA_PROPERTY: &str = "druid.ingestion.kafka.bootstrap.servers";

/// How the built-in configuration is named in messages.
pub const BUILT_IN_NAME: &str = "built-in quickstart config";

/// Options of `tranquility quickstart`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Events must have a `timestamp` within 10 minutes of now (ISO-8601 \
    or epoch milliseconds); other fields become dimensions. Stop with CTRL-C."
)]
pub struct Args {
    /// Port of Tranquility Server [default: 8200, or http.port of --config-file; 0 picks a
    /// free one].
    #[arg(long)]
    pub port: Option<u16>,
    /// Port of druid-local (0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    pub druid_port: u16,
    /// Directory for druid-local's segments and task records; omit to keep them in memory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use the dataSources of this configuration file instead of the built-in `quickstart`
    /// one; also `-configFile FILE`. Tasks are found through druid-local's Overlord.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// The Druid release druid-local plays. Up to 30 the server pushes to `index_realtime`
    /// tasks; 31 and later have none, so events go as batch appends (`index_parallel` tasks),
    /// or with --kafka through a Kafka topic that a Kafka supervisor reads.
    #[arg(long, default_value = druid_local::version::DEFAULT_VERSION, value_name = "VERSION")]
    pub druid_version: DruidVersion,
    /// Kafka brokers (Druid 31+): events go to a topic per dataSource, created on these
    /// brokers, and druid-local's Kafka supervisor reads it (the supervisor backend).
    #[arg(long, value_name = "HOST:PORT[,...]")]
    pub kafka: Option<String>,
}

/// What the quickstart serves: the built-in configuration or the file of `args`, with the
/// settings druid-local's release calls for, and the Kafka brokers of `--kafka`.
fn quickstart_config(args: &Args) -> anyhow::Result<TranquilityConfig> {
    let realtime = args.druid_version.has_realtime_tasks();
    if let (Some(_), true) = (&args.kafka, realtime) {
        return Err(ConfigProblem(format!(
            "--kafka needs --druid-version 31.0.0 or later: Druid {} ingests through realtime \
             tasks, which the quickstart pushes to",
            args.druid_version
        ))
        .into());
    }
    let mut config = match &args.config_file {
        Some(path) => setup::load_config(path)?,
        None => TranquilityConfig::from_str(BUILT_IN_CONFIG, BUILT_IN_NAME)?,
    };
    let built_in_batch = args.config_file.is_none() && !realtime && args.kafka.is_none();
    let settings = match (&args.config_file, realtime) {
        (Some(_), true) => QUICKSTART_OVERRIDES,
        (None, true) => BUILT_IN_REALTIME,
        _ if built_in_batch => BUILT_IN_BATCH,
        (_, false) => &[],
    };
    for (key, value) in settings {
        config.set_property(key, value, "tranquility quickstart")?;
    }
    if built_in_batch {
        // Batches share no tasks: the sample's partitions and replicants mean nothing there.
        config.unset_properties("task.");
    }
    if let Some(brokers) = &args.kafka {
        config.set_property(KAFKA_PROPERTY, brokers, "tranquility quickstart --kafka")?;
    }
    Ok(config)
}

/// Runs until a stop signal, then stops the server (draining) and druid-local.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = quickstart_config(&args)?;
    let mut server_config = ServerConfig::from_config(&config)?;
    if let Some(port) = args.port {
        server_config.listen.set_port(port);
    }

    let druid_bind = SocketAddr::from(([127, 0, 0, 1], args.druid_port));
    let druid = DruidLocal::start(DruidLocalConfig {
        bind: druid_bind,
        data_dir: args.data_dir.clone(),
        druid_version: args.druid_version.clone(),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .with_context(|| format!("starting druid-local on {druid_bind} (try another --druid-port)"))?;

    let options = Pipelines::builder()
        .coordinator(Arc::new(LocalCoordinator::new()))
        .overlord_url(druid.url());
    let pipelines = match setup::build_pipelines(&config, options) {
        Ok(p) => p,
        Err(e) => {
            druid.shutdown().await;
            return Err(e);
        }
    };
    let listen = server_config.listen;
    let state = AppState::from_pipelines(server_config, &config, &pipelines);
    let server = match Server::bind(state).await {
        Ok(s) => s,
        Err(e) => {
            druid.shutdown().await;
            return Err(anyhow::Error::new(e)
                .context(format!("cannot listen on {listen} (try another --port)")));
        }
    };
    let server_addr = setup::reachable(server.local_addr()?);
    let names: Vec<&str> = pipelines.names().collect();
    let backend = describe_backend(&pipelines, &config, &args.druid_version).await;
    print!("{}", banner(server_addr, &druid.url(), &names, &backend));

    let served = server.run(shutdown_signal()).await;
    druid.shutdown().await;
    served.context("serving HTTP")?;
    Ok(())
}

/// How the events of the first dataSource reach druid-local, once `druid.ingestion=auto` has
/// read its version (which takes a moment at start), for the banner.
async fn describe_backend(
    pipelines: &Pipelines,
    config: &TranquilityConfig,
    version: &DruidVersion,
) -> String {
    let Some(handle) = pipelines.iter().next().and_then(|p| p.backend().cloned()) else {
        return format!("Druid {version}");
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.backend().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settings = config
        .data_sources()
        .first()
        .and_then(|ds| IngestionProperties::from_properties(&ds.properties).ok());
    let how = match (handle.backend(), settings) {
        (None, _) => "not chosen yet (see /health)".to_string(),
        (Some(Backend::Batch), Some(s)) => format!(
            "batch, an index_parallel task per interval every {} ms",
            s.batch_period_millis
        ),
        (Some(Backend::Supervisor), Some(s)) => format!(
            "supervisor, a Kafka topic on {} read by a Kafka supervisor",
            s.kafka_bootstrap_servers.unwrap_or_default()
        ),
        (Some(backend), _) => backend.to_string(),
    };
    format!("{how} (Druid {version})")
}

/// What the user sees once everything is up: where to push, a curl example, a query.
fn banner(server: SocketAddr, druid_url: &str, data_sources: &[&str], backend: &str) -> String {
    let first = data_sources.first().copied().unwrap_or("quickstart");
    let push_url = format!("http://{server}/v1/post/{first}");
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let query = serde_json::json!({
        "queryType": "timeseries",
        "dataSource": first,
        "granularity": "all",
        "intervals": ["1970-01-01/2100-01-01"],
        "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"}]
    });
    let sql = serde_json::json!({ "query": format!("SELECT SUM(\"count\") AS \"count\" FROM \"{first}\"") });
    format!(
        "\nTranquility quickstart is running.\n\
         \n  druid-local:  {druid_url}\
         \n  backend:      {backend}\
         \n  dataSources:  {sources}\
         \n  push URL:     {push_url}\
         \n  query URL:    {druid_url}/druid/v2\
         \n\nSend an event (a JSON object whose \"timestamp\" is within 10 minutes of now, {now}):\n\
         \n  curl -X POST -H 'Content-Type: application/json' \\\
         \n    --data \"{{\\\"timestamp\\\":\\\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\\",\\\"page\\\":\\\"Main\\\",\\\"user\\\":\\\"alice\\\"}}\" \\\
         \n    {push_url}\
         \n\nCount the events in Druid:\n\
         \n  curl -X POST -H 'Content-Type: application/json' \\\
         \n    --data '{query}' \\\
         \n    {druid_url}/druid/v2\
         \n\nor with SQL:\n\
         \n  curl -X POST -H 'Content-Type: application/json' \\\
         \n    --data '{sql}' \\\
         \n    {druid_url}/druid/v2/sql\
         \n\nStop with CTRL-C.\n\n",
        sources = data_sources.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranquility::pipeline::Pipelines;

    #[tokio::test]
    async fn built_in_config_builds_pipelines_without_zookeeper() {
        let config = quickstart_config(&args("30.0.0", None)).unwrap();
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
        let server = ServerConfig::from_config(&config).unwrap();
        assert_eq!(server.listen, "127.0.0.1:8200".parse().unwrap());
        let pipelines = Pipelines::builder()
            .coordinator(Arc::new(LocalCoordinator::new()))
            .overlord_url("http://127.0.0.1:1")
            .build(&config)
            .unwrap();
        assert_eq!(pipelines.names().collect::<Vec<_>>(), ["quickstart"]);
    }

    fn args(version: &str, kafka: Option<&str>) -> Args {
        Args {
            port: None,
            druid_port: 0,
            data_dir: None,
            config_file: None,
            druid_version: version.parse().unwrap(),
            kafka: kafka.map(str::to_string),
        }
    }

    #[test]
    fn the_built_in_config_follows_the_played_release() {
        let old = quickstart_config(&args("30.0.0", None)).unwrap();
        let props = &old.data_sources()[0].properties;
        assert_eq!(props.get("druidBeam.taskLocator"), Some("overlord"));
        assert_eq!(props.get("druid.ingestion.batch.periodMillis"), None);

        // 31+: nothing only realtime tasks read (it would be named in a warning), and a short
        // batch period, or the Kafka brokers.
        let batch = quickstart_config(&args("35.0.0", None)).unwrap();
        let props = &batch.data_sources()[0].properties;
        assert_eq!(props.get("druidBeam.taskLocator"), None);
        assert_eq!(
            props.get("druid.ingestion.batch.periodMillis"),
            Some("2000")
        );
        assert_eq!(props.get(KAFKA_PROPERTY), None);
        assert_eq!(props.get("task.partitions"), None);
        let kafka = quickstart_config(&args("35.0.0", Some("127.0.0.1:9092"))).unwrap();
        assert_eq!(
            kafka.global_properties().get(KAFKA_PROPERTY),
            Some("127.0.0.1:9092")
        );
        let props = &kafka.data_sources()[0].properties;
        assert_eq!(props.get("druid.ingestion.batch.periodMillis"), None);
        assert_eq!(props.get("task.partitions"), Some("1"));
        assert!(kafka.warnings().is_empty(), "{:?}", kafka.warnings());
    }

    #[test]
    fn kafka_before_31_is_refused_as_a_usage_error() {
        let err = quickstart_config(&args("30.0.0", Some("127.0.0.1:9092"))).unwrap_err();
        assert!(setup::is_config_error(&err), "{err:#}");
        assert!(format!("{err:#}").contains("--kafka needs --druid-version 31.0.0"));
    }

    #[test]
    fn banner_names_the_urls() {
        let text = banner(
            "127.0.0.1:8200".parse().unwrap(),
            "http://127.0.0.1:8090",
            &["qs"],
            "batch (Druid 35.0.0)",
        );
        assert!(text.contains("backend:      batch (Druid 35.0.0)"));
        assert!(text.contains("push URL:     http://127.0.0.1:8200/v1/post/qs"));
        assert!(text.contains("query URL:    http://127.0.0.1:8090/druid/v2"));
        assert!(text.contains(r#""dataSource":"qs""#));
        assert!(
            text.contains(r#"--data '{"query":"SELECT SUM(\"count\") AS \"count\" FROM \"qs\""}'"#)
        );
        assert!(text.contains("http://127.0.0.1:8090/druid/v2/sql"));
        assert!(text.contains("$(date -u +%Y-%m-%dT%H:%M:%SZ)"));
    }
}
