//! How events reach Druid, by version: the backends behind the pipeline's seam.
//!
//! ```text
//!                       ┌─ realtime (Druid <= 30): ClusteredBeam ─> DruidBeamMaker ─> index_realtime tasks
//! pipeline ─> BackendBeam ─ supervisor (31+, Kafka): window rule ─> Kafka topic ─> Druid's Kafka supervisor
//!   (druid.ingestion)   └─ batch (31+, no Kafka): window rule ─> micro-batches ─> index_parallel tasks
//! ```
//!
//! Druid 0.9.2 to 30 run realtime tasks that Tranquility creates and pushes to (`beam`,
//! `druid`); Druid 31 removed them, so there the events go through a Kafka supervisor
//! ([`supervisor`], with the `kafka` feature) or as batch appends ([`batch`]). The window rule,
//! the per-event outcome and the accounting are the same on every backend.
//!
//! [`BackendBeam`] is the seam: it holds the chosen backend's beam, and with
//! `druid.ingestion=auto` it reads the Overlord's `GET /status` once (at start, or at the
//! first send when the Overlord was not reachable then) and chooses with [`choose`].
//! [`translate`] turns a dataSource's realtime spec into the newer paths' specs.

pub mod batch;
mod seam;
#[cfg(feature = "kafka")]
pub mod supervisor;
pub mod translate;
mod unused;

use std::fmt;

use serde_json::Value;

use crate::druid::overlord::{ApiError, OverlordClient};
use crate::spec::properties::Ingestion;

pub use seam::{BackendBeam, BackendFactory, BackendHandle};
pub use unused::unused_properties;

/// The first Druid release without `index_realtime` tasks.
pub const FIRST_MODERN_MAJOR: u32 = 31;

/// The extension a Kafka supervisor needs on the Overlord.
pub const KAFKA_INDEXING_MODULE: &str = "druid-kafka-indexing-service";

/// The way events of a dataSource reach Druid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `index_realtime` tasks with the receiver firehose (Druid 0.9.2 to 30).
    Realtime,
    /// A Kafka topic read by Druid's Kafka supervisor (31+).
    Supervisor,
    /// `index_parallel` micro-batches with an inline input source (31+).
    Batch,
}

impl Backend {
    /// The name used in `druid.ingestion`, logs and `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Realtime => "realtime",
            Backend::Supervisor => "supervisor",
            Backend::Batch => "batch",
        }
    }

    /// Whether this build can run the backend (the supervisor needs the `kafka` feature).
    pub fn is_built_in(self) -> bool {
        self != Backend::Supervisor || cfg!(feature = "kafka")
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `GET /status` says about a Druid service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DruidStatus {
    /// The version text, e.g. `33.0.0` or `0.22.1`.
    pub version: String,
    /// The major release: 33 for `33.0.0`; 0 for the `0.x` line.
    pub major: u32,
    /// The artifacts of the loaded extension modules.
    pub modules: Vec<String>,
}

impl DruidStatus {
    /// Reads a `GET /status` answer: `{"version":"33.0.0","modules":[{"artifact":..},..]}`.
    pub fn from_json(json: &Value) -> Result<Self, String> {
        let version = json
            .get("version")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no \"version\" in {json}"))?
            .to_string();
        let major = version
            .split(['.', '-'])
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| format!("Druid's version '{version}' does not start with a number"))?;
        let modules = json
            .get("modules")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|m| m.get("artifact").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            version,
            major,
            modules,
        })
    }

    /// Whether Druid still has `index_realtime` tasks (before 31).
    pub fn has_realtime_tasks(&self) -> bool {
        self.major < FIRST_MODERN_MAJOR
    }

    /// Whether the Kafka indexing extension is loaded.
    pub fn has_kafka_indexing(&self) -> bool {
        self.modules.iter().any(|m| m == KAFKA_INDEXING_MODULE)
    }
}

/// Why the Druid version could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    /// The Overlord did not answer.
    #[error("reading Druid's version (GET /status) from {0}")]
    Call(#[from] ApiError),
    /// It answered something else than a status.
    #[error("reading Druid's version (GET /status): {0}")]
    Answer(String),
}

impl ProbeError {
    /// Whether asking again later may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            ProbeError::Call(e) => e.source.is_retriable(),
            ProbeError::Answer(_) => false,
        }
    }
}

/// Reads the Overlord's `GET /status`.
pub async fn probe(overlord: &OverlordClient) -> Result<DruidStatus, ProbeError> {
    let answer = overlord
        .call_api(reqwest::Method::GET, "/status", None)
        .await?;
    if answer.is_not_found() {
        return Err(ProbeError::Answer(
            "404: this is not a Druid service (druid.overlord.url or discovery points elsewhere)"
                .into(),
        ));
    }
    let json = answer
        .json()
        .map_err(|e| ProbeError::Answer(format!("not JSON: {e}")))?;
    DruidStatus::from_json(&json).map_err(ProbeError::Answer)
}

/// A choice of backend and, when `auto` had to pick around something, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The backend.
    pub backend: Backend,
    /// Why `auto` chose it, for the log line.
    pub reason: String,
}

/// Picks the backend of `druid.ingestion=ingestion`. `auto` needs `status`: below 31 the
/// realtime tasks; 31 and later the supervisor when Kafka brokers are configured (and Druid
/// loads its Kafka extension), else batch appends. An explicit backend is taken as is.
pub fn choose(
    ingestion: Ingestion,
    status: Option<&DruidStatus>,
    kafka_configured: bool,
) -> Choice {
    let fixed = |backend: Backend| Choice {
        backend,
        reason: format!("druid.ingestion={backend}"),
    };
    match (ingestion, status) {
        (Ingestion::Realtime, _) => fixed(Backend::Realtime),
        (Ingestion::Supervisor, _) => fixed(Backend::Supervisor),
        (Ingestion::Batch, _) => fixed(Backend::Batch),
        (Ingestion::Auto, None) => Choice {
            backend: Backend::Realtime,
            reason: "druid.ingestion=auto without a Druid version: realtime tasks".into(),
        },
        (Ingestion::Auto, Some(s)) if s.has_realtime_tasks() => Choice {
            backend: Backend::Realtime,
            reason: format!("Druid {} has index_realtime tasks", s.version),
        },
        (Ingestion::Auto, Some(s)) if !kafka_configured => Choice {
            backend: Backend::Batch,
            reason: format!(
                "Druid {} has no index_realtime tasks and druid.ingestion.kafka.bootstrap.servers \
                 is not set",
                s.version
            ),
        },
        (Ingestion::Auto, Some(s)) if !s.has_kafka_indexing() => Choice {
            backend: Backend::Batch,
            reason: format!(
                "Druid {} has no index_realtime tasks and does not load {KAFKA_INDEXING_MODULE} \
                 (add it to druid.extensions.loadList for the supervisor backend)",
                s.version
            ),
        },
        (Ingestion::Auto, Some(s)) if !Backend::Supervisor.is_built_in() => Choice {
            backend: Backend::Batch,
            reason: format!(
                "Druid {} has no index_realtime tasks, and this build has no Kafka producer \
                 (the `kafka` feature)",
                s.version
            ),
        },
        (Ingestion::Auto, Some(s)) => Choice {
            backend: Backend::Supervisor,
            reason: format!(
                "Druid {} has no index_realtime tasks and loads {KAFKA_INDEXING_MODULE}; \
                 druid.ingestion.kafka.bootstrap.servers is set",
                s.version
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(version: &str, kafka: bool) -> DruidStatus {
        let modules = if kafka {
            json!([{"name": "org.apache.druid.indexing.kafka.KafkaIndexTaskModule",
                    "artifact": KAFKA_INDEXING_MODULE, "version": version}])
        } else {
            json!([])
        };
        DruidStatus::from_json(&json!({"version": version, "modules": modules, "memory": {}}))
            .unwrap()
    }

    #[test]
    fn the_status_gives_major_and_modules() {
        let s = status("33.0.0", true);
        assert_eq!((s.major, s.has_kafka_indexing()), (33, true));
        assert!(!s.has_realtime_tasks());
        assert_eq!(status("0.22.1", false).major, 0);
        assert!(status("30.0.1", false).has_realtime_tasks());
        assert_eq!(status("36.0.0-SNAPSHOT", false).major, 36);
        let e = DruidStatus::from_json(&json!({"version": "unknown"})).unwrap_err();
        assert!(e.contains("'unknown'"), "{e}");
        assert!(DruidStatus::from_json(&json!({})).is_err());
    }

    #[test]
    fn auto_follows_the_version_and_the_kafka_settings() {
        let pick = |s: &DruidStatus, kafka| choose(Ingestion::Auto, Some(s), kafka).backend;
        assert_eq!(pick(&status("28.0.0", true), true), Backend::Realtime);
        assert_eq!(pick(&status("0.9.2", false), false), Backend::Realtime);
        assert_eq!(pick(&status("31.0.0", true), false), Backend::Batch);
        let expected = if cfg!(feature = "kafka") {
            Backend::Supervisor
        } else {
            Backend::Batch
        };
        assert_eq!(pick(&status("33.0.0", true), true), expected);
        let without = choose(Ingestion::Auto, Some(&status("33.0.0", false)), true);
        assert_eq!(without.backend, Backend::Batch);
        assert!(
            without.reason.contains(KAFKA_INDEXING_MODULE),
            "{}",
            without.reason
        );
        // An explicit choice is taken whatever the version.
        let fixed = choose(Ingestion::Batch, Some(&status("28.0.0", true)), true);
        assert_eq!(fixed.backend, Backend::Batch);
    }
}
