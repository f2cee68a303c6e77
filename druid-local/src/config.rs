//! Options of a druid-local instance (the CLI flags map one to one).

pub use crate::auth::BasicCredentials;
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
    /// The Druid release played: which task types exist and how the APIs answer.
    pub druid_version: DruidVersion,
    /// How long a published batch segment takes to become queryable (a real cluster needs
    /// tens of seconds for the Coordinator to assign it and a Historical to load it).
    pub segment_load_delay: Duration,
    /// Druid's `druid.indexer.queue.maxTaskPayloadSize` (31+): larger task payloads are refused.
    pub max_task_payload_size: Option<usize>,
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
            druid_version: DruidVersion::default(),
            segment_load_delay: Duration::ZERO,
            max_task_payload_size: None,
        }
    }
}
