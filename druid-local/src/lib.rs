//! druid-local: a single-process, Druid-wire-compatible indexing service.
//!
//! It plays Druid's side of every wire a push client touches, as one chosen Druid release
//! (`version`): the Overlord task API, `index_realtime` (and appenderator) tasks with the
//! `clipped`/`timed`/`receiver` firehose chain and their push-events chat handler (up to 30),
//! Kafka supervisors (`supervisor`) and inline batch tasks (`batch`) with time-chunk locks
//! (`locks`) and a metadata log (`metadata`), rollup into segments, local "deep storage",
//! Curator service announcements in ZooKeeper, native queries and Druid SQL. One HTTP port
//! serves all of it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), druid_local::Error> {
//! let druid = druid_local::DruidLocal::start(druid_local::DruidLocalConfig::ephemeral()).await?;
//! println!("Overlord at {}", druid.url());
//! druid.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Start reading at `http.rs` (every route and which module serves it), then `overlord/` (task
//! submission and status) and `task/` (a realtime task's life, receiver to hand-off);
//! `supervisor/`, `batch/` and `ingest/` are the Druid 31+ paths, `query/` and `sql/` answer
//! reads.

pub mod auth;
pub mod batch;
pub mod config;
pub mod coordinator;
pub mod flatten;
mod http;
pub mod ingest;
pub mod locks;
pub mod metadata;
pub mod overlord;
pub mod query;
pub mod spec;
pub mod sql;
pub mod storage;
pub mod supervisor;
pub mod task;
pub mod tasks;
pub mod time;
pub mod tls;
pub mod version;
pub mod zk;

pub use config::{BasicCredentials, DruidLocalConfig, NullHandling, TlsFiles};

use indexmap::IndexMap;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use task::receiver::Receiver;
use task::Task;

/// Why druid-local could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or reading the data dir failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// ZooKeeper was unreachable.
    #[error(transparent)]
    Zk(#[from] zk::ZkError),
}

/// Receivers registered under one chat handler name, with their registration ids.
type Registered = (u64, Arc<Receiver>);

/// A registered chat handler, to unregister later.
#[derive(Debug)]
pub struct HandlerReg {
    name: String,
    id: u64,
    zk_path: Option<String>,
}

/// State shared by the HTTP handlers and the task runners.
#[derive(Debug)]
pub struct Shared {
    /// Host reported in locations.
    pub host: String,
    /// Port actually bound.
    pub port: u16,
    /// Whether the port speaks HTTPS (then it is reported as the TLS port).
    pub tls: bool,
    /// Segments.
    pub store: storage::Store,
    /// Tasks in submission order.
    pub tasks: RwLock<IndexMap<String, Arc<Task>>>,
    chat: RwLock<HashMap<String, Vec<Registered>>>,
    next_reg: AtomicU64,
    zk: Option<zk::Announcer>,
    data_dir: Option<PathBuf>,
    /// How missing numbers are stored and aggregated (as the Druid version played: 28+).
    pub null_handling: NullHandling,
    /// The Druid release played.
    pub version: version::DruidVersion,
    /// The Overlord's `druid.service`, which Druid names in unknown-type errors.
    pub service_name: String,
    /// Supervisor specs, stream offsets and published segments (Druid's metadata store).
    pub metadata: metadata::Metadata,
    /// Kafka supervisors.
    pub supervisors: supervisor::Manager,
    /// Time-chunk locks of batch and Kafka tasks.
    pub locks: locks::LockBox,
    /// Reports of batch tasks.
    pub reports: batch::Reports,
    /// Delay before a published batch segment is queryable.
    pub segment_load_delay: std::time::Duration,
    /// `druid.indexer.queue.maxTaskPayloadSize` (31+).
    pub max_task_payload_size: Option<usize>,
}

impl Shared {
    /// Registers a chat handler name (and announces it when ZooKeeper is configured).
    pub async fn register_handler(&self, name: &str, recv: Arc<Receiver>) -> HandlerReg {
        let id = self.next_reg.fetch_add(1, Ordering::Relaxed);
        self.chat
            .write()
            .entry(name.to_owned())
            .or_default()
            .push((id, recv));
        let zk_path = match &self.zk {
            Some(a) => match a.announce(name).await {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, name, "cannot announce chat handler");
                    None
                }
            },
            None => None,
        };
        HandlerReg {
            name: name.to_owned(),
            id,
            zk_path,
        }
    }

    /// Unregisters a chat handler and removes its announcement.
    pub async fn unregister_handler(&self, reg: HandlerReg) {
        {
            let mut chat = self.chat.write();
            if let Some(v) = chat.get_mut(&reg.name) {
                v.retain(|(id, _)| *id != reg.id);
                if v.is_empty() {
                    chat.remove(&reg.name);
                }
            }
        }
        if let (Some(a), Some(p)) = (&self.zk, reg.zk_path) {
            if let Err(e) = a.unannounce(&p).await {
                tracing::warn!(error = %e, "cannot remove chat handler announcement");
            }
        }
    }

    /// The receiver registered under `name`; with several, the one of `task_id` if given,
    /// else the newest.
    pub fn handler(&self, name: &str, task_id: Option<&str>) -> Option<Arc<Receiver>> {
        let chat = self.chat.read();
        let v = chat.get(name)?;
        if let Some(t) = task_id {
            if let Some((_, r)) = v.iter().find(|(_, r)| r.task_id == t) {
                return Some(r.clone());
            }
        }
        v.last().map(|(_, r)| r.clone())
    }

    /// Base URL, `http://host:port` or `https://host:port`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// Persists a task record when a data dir is configured.
    pub fn save_task(&self, task: &Task) {
        if let Some(dir) = &self.data_dir {
            if let Err(e) = task::persist::save(&dir.join("tasks"), task) {
                tracing::error!(error = %e, task = %task.spec.id, "cannot persist task record");
            }
        }
    }
}

/// A running druid-local instance.
#[derive(Debug)]
pub struct DruidLocal {
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    overlord_announcement: Option<String>,
}

impl DruidLocal {
    /// Binds `config.bind` and serves.
    pub async fn start(config: DruidLocalConfig) -> Result<DruidLocal, Error> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        Self::start_on(listener, config).await
    }

    /// Serves on an already bound listener.
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: DruidLocalConfig,
    ) -> Result<DruidLocal, Error> {
        let port = listener.local_addr()?.port();
        let store = storage::Store::open(config.data_dir.as_deref())?;
        let (metadata, replay) = metadata::Metadata::open(config.data_dir.as_deref())?;
        for (segments, dropped) in &replay.publishes {
            store.publish(None, segments, dropped);
        }
        let zk = match &config.zk {
            Some(connect) => Some(
                zk::Announcer::connect(connect, &config.discovery_path, &config.host, port)
                    .await?
                    .tls(config.tls.is_some()),
            ),
            None => None,
        };
        let mut tasks = IndexMap::new();
        if let Some(dir) = &config.data_dir {
            for t in task::persist::load_all(&dir.join("tasks"))? {
                tasks.insert(t.spec.id.clone(), t);
            }
        }
        let shared = Arc::new(Shared {
            host: config.host.clone(),
            port,
            tls: config.tls.is_some(),
            store,
            tasks: RwLock::new(tasks),
            chat: RwLock::default(),
            next_reg: AtomicU64::new(0),
            zk,
            data_dir: config.data_dir.clone(),
            null_handling: if config.druid_version.major() >= 28 {
                NullHandling::SqlCompatible
            } else {
                NullHandling::Legacy
            },
            version: config.druid_version.clone(),
            service_name: config.overlord_service_name.clone(),
            metadata,
            supervisors: supervisor::Manager::default(),
            locks: locks::LockBox::default(),
            reports: batch::Reports::default(),
            segment_load_delay: config.segment_load_delay,
            max_task_payload_size: config.max_task_payload_size,
        });
        for t in shared.tasks.read().values() {
            shared.save_task(t);
        }
        shared.supervisors.restore(&shared).await;
        let overlord_announcement = match &shared.zk {
            Some(a) => Some(a.announce(&config.overlord_service_name).await?),
            None => None,
        };
        let tls = match &config.tls {
            Some(files) => Some(tls::server_config(files)?),
            None => None,
        };
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let mut app = http::app(shared.clone());
        if let Some(creds) = config.basic_auth.clone() {
            let guard = Arc::new(auth::Guard {
                creds,
                host: config.host.clone(),
            });
            app = app.layer(axum::middleware::from_fn_with_state(guard, auth::require));
        }
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            let served = match tls {
                Some(tls) => match tls::TlsListener::new(listener, tls) {
                    Ok(listener) => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(shutdown)
                            .await
                    }
                    Err(e) => Err(e),
                },
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(port, tls = shared.tls, "druid-local listening");
        Ok(DruidLocal {
            shared,
            stop,
            server,
            overlord_announcement,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:8090` (`https://` when serving TLS).
    pub fn url(&self) -> String {
        self.shared.url()
    }

    /// Port bound.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Shared state (tests and embedders inspect tasks and segments through it).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving. Running tasks are failed (their in-memory rows are lost), like a
    /// Druid process stop without task restore.
    pub async fn shutdown(self) {
        self.shared.supervisors.stop_all(false).await;
        let tasks: Vec<_> = self.shared.tasks.read().values().cloned().collect();
        for t in tasks {
            if t.kill(task::persist::RESTART_FAILURE) {
                self.shared.save_task(&t);
            }
        }
        if let (Some(a), Some(p)) = (&self.shared.zk, &self.overlord_announcement) {
            let _ = a.unannounce(p).await;
        }
        self.stop.send_replace(true);
        let _ = self.server.await;
    }

    /// Serves until CTRL-C or SIGTERM, then shuts down as [`DruidLocal::shutdown`] does.
    /// (druid-local shares no code with Tranquility, whose commands have their own helper.)
    pub async fn run_until_stopped(self) {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
        tracing::info!("stop signal received: shutting down");
        self.shutdown().await;
        tracing::info!("druid-local stopped");
    }
}
