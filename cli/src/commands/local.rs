//! `tranquility local`: druid-local alone (Overlord API, realtime tasks, native queries on one
//! port), until SIGTERM or CTRL-C.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use druid_local::version::DruidVersion;
use druid_local::{BasicCredentials, DruidLocal, DruidLocalConfig};
use tranquility_server::shutdown_signal;

/// Options of `tranquility local`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Host name reported in task locations, `/leader` and ZooKeeper announcements.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// HTTP port (Druid's Overlord default is 8090; 0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Directory for handed-off segments and task records; omit to keep everything in memory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// ZooKeeper connect string; enables Curator service announcements.
    #[arg(long, value_name = "CONNECT")]
    pub zk: Option<String>,
    /// Curator discovery base path (Druid's `druid.discovery.curator.path`).
    #[arg(long, default_value = "/druid/discovery")]
    pub discovery_path: String,
    /// Overlord service name (Druid's `druid.service`); announced with `/` replaced by `:`.
    #[arg(long, default_value = "druid/overlord")]
    pub overlord_service_name: String,
    /// Require HTTP Basic credentials `user:pass` on every endpoint but `/status/health` and
    /// `/druid/indexer/v1/isLeader`, as Druid's basic authenticator does.
    #[arg(long, value_name = "USER:PASS", value_parser = BasicCredentials::parse, env = "DRUID_LOCAL_BASIC_AUTH", hide_env_values = true)]
    pub basic_auth: Option<BasicCredentials>,
    /// The Druid release to play (up to 30 realtime tasks; from 31 Kafka supervisors and
    /// native batch only).
    #[arg(long, default_value = druid_local::version::DEFAULT_VERSION, value_name = "VERSION")]
    pub druid_version: DruidVersion,
    /// Milliseconds before a published batch segment becomes queryable.
    #[arg(long, default_value_t = 0, value_name = "MILLIS")]
    pub segment_load_delay_ms: u64,
}

/// Serves until a stop signal.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bind = SocketAddr::new(args.bind, args.port);
    let config = DruidLocalConfig {
        host: args.host,
        bind,
        data_dir: args.data_dir,
        zk: args.zk,
        discovery_path: args.discovery_path,
        overlord_service_name: args.overlord_service_name,
        basic_auth: args.basic_auth,
        tls: None,
        druid_version: args.druid_version,
        segment_load_delay: std::time::Duration::from_millis(args.segment_load_delay_ms),
        ..DruidLocalConfig::ephemeral()
    };
    let druid = DruidLocal::start(config)
        .await
        .with_context(|| format!("starting druid-local on {bind}"))?;
    println!("druid-local listening on {}", druid.url());
    shutdown_signal().await;
    druid.shutdown().await;
    Ok(())
}
