//! Options of a druid-local instance (the CLI flags map one to one).

pub use crate::auth::BasicCredentials;
pub use crate::tls::TlsFiles;
use crate::version::DruidVersion;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How to run druid-local.
#[derive(Debug, Clone)]
pub struct DruidLocalConfig {
    /// Host name announced and reported in task locations and `/leader`.
    pub host: String,
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Where segments and task records are persisted; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// ZooKeeper connect string; `None` disables service announcements.
    pub zk: Option<String>,
    /// Curator discovery base path (Druid's `druid.discovery.curator.path`).
    pub discovery_path: String,
    /// Overlord service name (Druid's `druid.service`), announced as `druid:overlord`.
    pub overlord_service_name: String,
    /// When set, every endpoint but the Overlord's unsecured ones (`/status/health`,
    /// `/druid/indexer/v1/isLeader`) requires these HTTP Basic credentials.
    pub basic_auth: Option<BasicCredentials>,
    /// When set, the port speaks HTTPS only (Druid with its TLS port on and the plaintext
    /// one off): locations report `tlsPort` and announcements `sslPort`, with `port` -1.
    pub tls: Option<TlsFiles>,
    /// The Druid release played: which task types exist and how the APIs answer.
    pub druid_version: DruidVersion,
    /// How long a published batch segment takes to become queryable (a real cluster needs
    /// tens of seconds for the Coordinator to assign it and a Historical to load it).
    pub segment_load_delay: Duration,
    /// Druid's `druid.indexer.queue.maxTaskPayloadSize` (31+): larger task payloads are refused.
    pub max_task_payload_size: Option<usize>,
}

/// Druid's two null-handling modes for numbers (`druid.generic.useDefaultValueForNull`). The
/// mode follows the Druid version played: SQL-compatible from 28 on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NullHandling {
    /// The default from Druid 28: a missing or null metric input is stored as null; sums,
    /// minimums and maximums skip nulls and are null over no value (`count` counts rows).
    #[default]
    SqlCompatible,
    /// Druid's default before 28 (`useDefaultValueForNull=true`): a missing number is 0.
    Legacy,
}

impl DruidLocalConfig {
    /// In-memory instance on a free loopback port, no ZooKeeper: what tests embed.
    pub fn ephemeral() -> DruidLocalConfig {
        DruidLocalConfig {
            host: "127.0.0.1".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            zk: None,
            discovery_path: "/druid/discovery".into(),
            overlord_service_name: "druid/overlord".into(),
            basic_auth: None,
            tls: None,
            druid_version: DruidVersion::default(),
            segment_load_delay: Duration::ZERO,
            max_task_payload_size: None,
        }
    }
}
