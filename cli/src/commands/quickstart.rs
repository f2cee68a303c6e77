//! `tranquility quickstart`: druid-local and Tranquility Server in one process, coordinated in
//! memory (no ZooKeeper), with a sample dataSource `quickstart` that takes any JSON object with
//! a current `timestamp`. Prints where to push and how to query.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use druid_local::{DruidLocal, DruidLocalConfig};
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::PipelineOptions;
use tranquility::spec::TranquilityConfig;
use tranquility_server::{shutdown_signal, AppState, Server, ServerConfig};

use crate::setup;

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
    "http.bindAddress": "127.0.0.1",
    "druidBeam.taskLocator": "overlord",
    "druidBeam.overlordPollPeriod": "PT5S",
    "druidBeam.firehoseGracePeriod": "PT1M",
    "druidBeam.randomizeTaskId": "true"
  }
}"#;

/// Set over a user's configuration file. No ZooKeeper here: tasks are found through the
/// Overlord. Beams are remembered only in memory and druid-local's running tasks end with the
/// process, so a restart within the same segment interval must create fresh task ids rather
/// than collide with the ended tasks' ids.
const QUICKSTART_OVERRIDES: &[(&str, &str)] = &[
    ("druidBeam.taskLocator", "overlord"),
    ("druidBeam.randomizeTaskId", "true"),
];

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
    /// The Druid release druid-local plays. The server pushes through `index_realtime`
    /// tasks, which exist up to 30; from 31 they are refused, as Druid refuses them.
    #[arg(long, default_value = druid_local::version::DEFAULT_VERSION, value_name = "VERSION")]
    pub druid_version: druid_local::version::DruidVersion,
}

/// The built-in configuration.
pub fn built_in_config() -> anyhow::Result<TranquilityConfig> {
    Ok(TranquilityConfig::from_str(BUILT_IN_CONFIG, BUILT_IN_NAME)?)
}

/// Runs until a stop signal, then stops the server (draining) and druid-local.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.config_file {
        Some(path) => setup::load_config_with(path, QUICKSTART_OVERRIDES)?,
        None => built_in_config()?,
    };
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

    let options = PipelineOptions {
        coordinator: Some(Arc::new(LocalCoordinator::new())),
        overlord_url: Some(druid.url()),
        ..PipelineOptions::default()
    };
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
    print!("{}", banner(server_addr, &druid.url(), &names));

    let served = server.run(shutdown_signal()).await;
    druid.shutdown().await;
    served.context("serving HTTP")?;
    Ok(())
}

/// What the user sees once everything is up: where to push, a curl example, a query.
fn banner(server: SocketAddr, druid_url: &str, data_sources: &[&str]) -> String {
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
        let config = built_in_config().unwrap();
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
        let server = ServerConfig::from_config(&config).unwrap();
        assert_eq!(server.listen, "127.0.0.1:8200".parse().unwrap());
        let pipelines = Pipelines::from_config(
            &config,
            PipelineOptions {
                coordinator: Some(Arc::new(LocalCoordinator::new())),
                overlord_url: Some("http://127.0.0.1:1".into()),
                ..PipelineOptions::default()
            },
        )
        .unwrap();
        assert_eq!(pipelines.names().collect::<Vec<_>>(), ["quickstart"]);
    }

    #[test]
    fn banner_names_the_urls() {
        let text = banner(
            "127.0.0.1:8200".parse().unwrap(),
            "http://127.0.0.1:8090",
            &["qs"],
        );
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
