//! `druid-local`: run the Druid-wire-compatible indexing service from the command line.

use anyhow::Context;
use clap::Parser;
use druid_local::version::DruidVersion;
use druid_local::{BasicCredentials, DruidLocal, DruidLocalConfig, TlsFiles};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

// glibc's allocator serialises request threads on its arena locks under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A single-process, Druid-wire-compatible indexing service (Overlord, realtime tasks,
/// push-events receivers and native queries on one port).
#[derive(Debug, Parser)]
#[command(name = "druid-local", version)]
struct Args {
    /// Host name reported in task locations, `/leader` and ZooKeeper announcements.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// HTTP port (Druid's Overlord default is 8090; 0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Directory for handed-off segments and task records; omit to keep everything in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// ZooKeeper connect string; enables Curator service announcements.
    #[arg(long)]
    zk: Option<String>,
    /// Curator discovery base path (Druid's `druid.discovery.curator.path`).
    #[arg(long, default_value = "/druid/discovery")]
    discovery_path: String,
    /// Overlord service name (Druid's `druid.service`); announced with `/` replaced by `:`.
    #[arg(long, default_value = "druid/overlord")]
    overlord_service_name: String,
    /// Require HTTP Basic credentials `user:pass` on every endpoint but `/status/health` and
    /// `/druid/indexer/v1/isLeader` (like Druid's basic authenticator).
    #[arg(long, value_name = "USER:PASS", value_parser = BasicCredentials::parse, env = "DRUID_LOCAL_BASIC_AUTH", hide_env_values = true)]
    basic_auth: Option<BasicCredentials>,
    /// The Druid release to play: up to 30 realtime tasks with the receiver firehose, from 31
    /// only Kafka supervisors and native batch (see docs/druid-versions.md).
    #[arg(long, default_value = druid_local::version::DEFAULT_VERSION, value_name = "VERSION")]
    druid_version: DruidVersion,
    /// Milliseconds before a published batch segment becomes queryable (a real cluster takes
    /// tens of seconds to load one; 0 makes it immediate).
    #[arg(long, default_value_t = 0, value_name = "MILLIS")]
    segment_load_delay_ms: u64,
    /// Druid's `druid.indexer.queue.maxTaskPayloadSize` in bytes (31+): larger tasks are refused.
    #[arg(long, value_name = "BYTES")]
    max_task_payload_size: Option<usize>,
    /// Serve HTTPS only, with this PEM certificate chain (leaf first); needs --tls-key.
    /// Locations then report `tlsPort` and announcements `sslPort`, as Druid's TLS port.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by a CA in this PEM file (needs --tls-cert).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = DruidLocalConfig {
        host: args.host,
        bind: SocketAddr::new(args.bind, args.port),
        data_dir: args.data_dir,
        zk: args.zk,
        discovery_path: args.discovery_path,
        overlord_service_name: args.overlord_service_name,
        basic_auth: args.basic_auth,
        druid_version: args.druid_version,
        segment_load_delay: Duration::from_millis(args.segment_load_delay_ms),
        max_task_payload_size: args.max_task_payload_size,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: args.tls_client_ca,
            }),
            _ => None,
        },
    };
    let druid = DruidLocal::start(config)
        .await
        .context("starting druid-local")?;
    println!("druid-local listening on {}", druid.url());
    druid.run_until_stopped().await;
    Ok(())
}
