//! Makes sure, once per dataSource, that its topic exists and that Druid runs a supervisor
//! with the current spec; then watches the supervisor's row counts.
//!
//! The topic is created through the Kafka admin API (an existing topic is kept as it is).
//! The supervisor is checked under the [`Coordinator`]'s lock, so of many instances starting
//! together one posts and the others find its spec: `GET /supervisor/{id}`; absent, or
//! `context["tranquility.specSha256"]` differing from the hash of the spec this instance would
//! post (a schema change), then `POST`; equal, nothing. Druid re-serialises specs with its
//! defaults, so only the hash Tranquility put in `context` is compared.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Method;
use serde_json::Value;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::backend::batch::RowStats;
use crate::backend::translate::{supervisor_spec, SupervisorSettings, SPEC_HASH_KEY};
use crate::coord::{update_with, CoordError, Coordinator, ModifyError};
use crate::druid::overlord::{encode_segment, ApiError, CallError, OverlordClient};
use crate::metrics::events::DruidRowsCounted;
use crate::metrics::DataSourceMetrics;
use crate::spec::{DataSchema, TuningConfig};

/// What a dataSource's supervisor backend sets up.
#[derive(Debug, Clone)]
pub struct SupervisorSetup {
    /// The dataSource (the supervisor's id).
    pub data_source: String,
    /// Its dataSchema (translated into the supervisor spec).
    pub schema: DataSchema,
    /// Its tuningConfig (translated into the supervisor spec).
    pub tuning: TuningConfig,
    /// The topic, Druid's consumer properties, task groups and replicas.
    pub settings: SupervisorSettings,
    /// Partitions of the topic when Tranquility creates it.
    pub partitions: u32,
    /// Replication factor of the topic when Tranquility creates it (-1: the broker's default).
    pub replication_factor: i32,
    /// The coordination identity whose lock serialises the check-and-post.
    pub identity: String,
    /// How often the supervisor's stats are read.
    pub stats_period: Duration,
}

impl SupervisorSetup {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.settings.topic
    }
}

/// Why the topic or the supervisor could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SetupError {
    /// What failed, naming the cause.
    pub message: String,
    /// Whether trying again later may help.
    pub retriable: bool,
}

impl SetupError {
    /// Whether trying again later may help.
    pub fn is_retriable(&self) -> bool {
        self.retriable
    }
}

/// What the check found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorAction {
    /// No supervisor existed: created.
    Created,
    /// The spec's hash differed: updated.
    Updated,
    /// The supervisor already runs this spec.
    Unchanged,
}

/// The topic and supervisor of one dataSource. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SupervisorManager {
    inner: Arc<Inner>,
}

struct Inner {
    setup: SupervisorSetup,
    spec: Value,
    hash: String,
    admin: AdminClient<DefaultClientContext>,
    /// How long a topic creation may take: the producer's `socket.timeout.ms`, else 30 s.
    admin_timeout: Duration,
    brokers: String,
    overlord: OverlordClient,
    coordinator: Arc<dyn Coordinator>,
    metrics: DataSourceMetrics,
    state: Mutex<Option<String>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorManager")
            .field("data_source", &self.setup.data_source)
            .field("topic", &self.setup.settings.topic)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

fn call_failed(what: &str, e: &ApiError) -> SetupError {
    SetupError {
        message: format!("{what}: {e}"),
        retriable: e.source.is_retriable(),
    }
}

impl SupervisorManager {
    /// A manager; the spec is translated now, so a spec Druid could not read is an error here.
    /// `admin` holds the brokers and the producer's settings for the admin client.
    pub fn new(
        setup: SupervisorSetup,
        admin: ClientConfig,
        overlord: OverlordClient,
        coordinator: Arc<dyn Coordinator>,
        metrics: DataSourceMetrics,
    ) -> Result<Self, String> {
        let spec = supervisor_spec(&setup.schema, &setup.tuning, &setup.settings)
            .map_err(|e| e.to_string())?;
        let hash = spec
            .get("context")
            .and_then(|c| c.get(SPEC_HASH_KEY))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        validate_topic(setup.topic())?;
        let brokers = admin
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_string();
        let admin_timeout = admin
            .get("socket.timeout.ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(30), Duration::from_millis);
        let admin = admin
            .create::<AdminClient<DefaultClientContext>>()
            .map_err(|e| format!("cannot create the Kafka admin client for {brokers}: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                setup,
                spec,
                hash,
                admin,
                admin_timeout,
                brokers,
                overlord,
                coordinator,
                metrics,
                state: Mutex::new(None),
                watcher: Mutex::new(None),
            }),
        })
    }

    /// The supervisor spec this instance posts (with its hash in `context`).
    pub fn spec(&self) -> &Value {
        &self.inner.spec
    }

    /// The supervisor's state as last read (`RUNNING`, `UNHEALTHY_SUPERVISOR`, ...).
    pub fn state(&self) -> Option<String> {
        self.inner.state.lock().clone()
    }

    /// Creates the topic if missing, makes sure the supervisor runs the current spec, and
    /// starts reading its stats.
    pub async fn ensure(&self) -> Result<(), SetupError> {
        self.create_topic().await?;
        let action = self.ensure_supervisor().await?;
        debug!(dataSource = %self.inner.setup.data_source, ?action, "supervisor checked");
        let mut watcher = self.inner.watcher.lock();
        if watcher.is_none() {
            let inner = self.inner.clone();
            *watcher = Some(tokio::spawn(async move { inner.watch().await }));
        }
        Ok(())
    }

    /// Stops reading the supervisor's stats (the supervisor keeps running in Druid).
    pub fn stop(&self) {
        if let Some(watcher) = self.inner.watcher.lock().take() {
            watcher.abort();
        }
    }

    /// Creates the topic through the admin API; an existing one is fine.
    pub async fn create_topic(&self) -> Result<(), SetupError> {
        let setup = &self.inner.setup;
        let topic = setup.topic();
        let partitions = i32::try_from(setup.partitions.max(1)).unwrap_or(i32::MAX);
        let new = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(setup.replication_factor),
        );
        let timeout = self.inner.admin_timeout;
        let options = AdminOptions::new()
            .operation_timeout(Some(timeout))
            .request_timeout(Some(timeout));
        let fail = |reason: String, retriable| SetupError {
            message: format!(
                "cannot create Kafka topic {topic} ({partitions} partitions) on {}: {reason}",
                self.inner.brokers
            ),
            retriable,
        };
        let results = self
            .inner
            .admin
            .create_topics([&new], &options)
            .await
            .map_err(|e| fail(e.to_string(), true))?;
        for result in results {
            match result {
                Ok(_) => {
                    info!(dataSource = %setup.data_source, topic, partitions, "Kafka topic created")
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    debug!(topic, "Kafka topic exists")
                }
                Err((_, code)) => {
                    let permanent = matches!(
                        code,
                        RDKafkaErrorCode::InvalidPartitions
                            | RDKafkaErrorCode::InvalidReplicationFactor
                            | RDKafkaErrorCode::InvalidTopic
                            | RDKafkaErrorCode::InvalidConfig
                            | RDKafkaErrorCode::InvalidRequest
                            | RDKafkaErrorCode::PolicyViolation
                            | RDKafkaErrorCode::TopicAuthorizationFailed
                            | RDKafkaErrorCode::ClusterAuthorizationFailed
                    );
                    return Err(fail(format!("{code} ({code:?})"), !permanent));
                }
            }
        }
        Ok(())
    }

    /// The coordinated check-and-post of the supervisor spec.
    pub async fn ensure_supervisor(&self) -> Result<SupervisorAction, SetupError> {
        let inner = &self.inner;
        ensure_supervisor_spec(
            &inner.overlord,
            inner.coordinator.as_ref(),
            &inner.setup.identity,
            &inner.setup.data_source,
            &inner.spec,
        )
        .await
    }
}

/// Makes sure Druid runs `spec` as the supervisor of `data_source`: under `coordinator`'s lock
/// on `identity`, `GET` it; absent, or with another `context` hash than `spec`'s, `POST`
/// `spec`; the same hash, nothing. Druid's refusal (4xx) carries its reason.
pub async fn ensure_supervisor_spec(
    overlord: &OverlordClient,
    coordinator: &dyn Coordinator,
    identity: &str,
    data_source: &str,
    spec: &Value,
) -> Result<SupervisorAction, SetupError> {
    let action = Arc::new(Mutex::new(SupervisorAction::Unchanged));
    let seen = action.clone();
    let (overlord, ds, spec) = (overlord.clone(), data_source.to_string(), spec.clone());
    let result = update_with(coordinator, identity, move |_meta| async move {
        let done = check_and_post(&overlord, &ds, &spec)
            .await
            .map_err(|e| Box::new(e) as ModifyError)?;
        *seen.lock() = done;
        // Only the lock is shared; nothing is written.
        Ok(None)
    })
    .await;
    match result {
        Ok(_) => Ok(*action.lock()),
        Err(CoordError::Modify { source, .. }) => match source.downcast::<SetupError>() {
            Ok(e) => Err(*e),
            Err(other) => Err(SetupError {
                message: other.to_string(),
                retriable: true,
            }),
        },
        Err(e) => Err(SetupError {
            message: format!(
                "coordinating the supervisor of {data_source} with other instances: {e}"
            ),
            retriable: e.is_retriable(),
        }),
    }
}

async fn check_and_post(
    overlord: &OverlordClient,
    ds: &str,
    spec: &Value,
) -> Result<SupervisorAction, SetupError> {
    let hash = spec
        .get("context")
        .and_then(|c| c.get(SPEC_HASH_KEY))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let current = overlord
        .call_api(Method::GET, &supervisor_path(ds), None)
        .await
        .map_err(|e| call_failed(&format!("reading the supervisor of {ds}"), &e))?;
    let action = if current.is_not_found() {
        SupervisorAction::Created
    } else {
        let stored = current.json().ok();
        let stored_hash = stored
            .as_ref()
            .and_then(|s| s.get("context"))
            .and_then(|c| c.get(SPEC_HASH_KEY))
            .and_then(Value::as_str);
        if stored_hash == Some(hash) {
            let suspended = stored
                .as_ref()
                .and_then(|s| s.get("suspended"))
                .and_then(Value::as_bool)
                == Some(true);
            if suspended {
                warn!(
                    dataSource = %ds,
                    "the supervisor is suspended: events reach the topic and wait there \
                     until it is resumed (POST /druid/indexer/v1/supervisor/{ds}/resume)"
                );
            }
            info!(dataSource = %ds, hash = %hash, "the supervisor runs the current spec");
            return Ok(SupervisorAction::Unchanged);
        }
        info!(
            dataSource = %ds,
            from = stored_hash.unwrap_or("(none)"),
            to = %hash,
            "the supervisor's spec changed: updating it"
        );
        SupervisorAction::Updated
    };
    let body = bytes::Bytes::from(serde_json::to_vec(spec).unwrap_or_default());
    let topic = spec
        .pointer("/spec/ioConfig/topic")
        .or_else(|| spec.pointer("/spec/ioConfig/topicPattern"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match overlord
            .call_api(Method::POST, "/druid/indexer/v1/supervisor", Some(body))
            .await
        {
            Ok(answer) if answer.is_not_found() => Err(SetupError {
                message: format!(
                    "the Overlord has no supervisor API (404); is {} loaded?",
                    super::super::KAFKA_INDEXING_MODULE
                ),
                retriable: false,
            }),
            Ok(_) => {
                info!(dataSource = %ds, topic, ?action, "supervisor posted");
                Ok(action)
            }
            Err(e) => match &e.source {
                CallError::Status { status, body, .. } if (400..500).contains(status) => {
                    Err(SetupError {
                        message: format!(
                            "Druid refused the supervisor of {ds} (topic {topic}) with HTTP {status}: {body}"
                        ),
                        retriable: false,
                    })
                }
                _ => Err(call_failed(&format!("posting the supervisor of {ds}"), &e)),
            },
        }
}

fn supervisor_path(data_source: &str) -> String {
    format!(
        "/druid/indexer/v1/supervisor/{}",
        encode_segment(data_source)
    )
}

/// What `GET /supervisor/{id}/status` says of a supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorStatus {
    /// `state`: `PENDING`, `RUNNING`, `IDLE`, `SUSPENDED`, `UNHEALTHY_SUPERVISOR`, ...
    pub state: String,
    /// `detailedState`, e.g. `CONNECTING_TO_STREAM` or `UNABLE_TO_CONNECT_TO_STREAM`.
    pub detailed_state: String,
    /// `healthy`.
    pub healthy: bool,
    /// The topic (`stream`).
    pub stream: String,
    /// The latest errors Druid recorded (`recentErrors`), as JSON text.
    pub recent_errors: Vec<String>,
}

impl SupervisorStatus {
    /// Whether Druid reports trouble (an unhealthy state or `healthy: false`).
    pub fn is_unhealthy(&self) -> bool {
        !self.healthy
            || self.state.starts_with("UNHEALTHY")
            || self.detailed_state.contains("UNABLE")
            || self.detailed_state.contains("LOST_CONTACT")
    }
}

/// Reads a supervisor's status; `None` when Druid has no such supervisor.
pub async fn supervisor_status(
    overlord: &OverlordClient,
    data_source: &str,
) -> Result<Option<SupervisorStatus>, SetupError> {
    let path = format!("{}/status", supervisor_path(data_source));
    let answer = overlord
        .call_api(Method::GET, &path, None)
        .await
        .map_err(|e| {
            call_failed(
                &format!("reading the status of supervisor {data_source}"),
                &e,
            )
        })?;
    if answer.is_not_found() {
        return Ok(None);
    }
    let json = answer.json().unwrap_or(Value::Null);
    let text = |k: &str| {
        json.pointer(&format!("/payload/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Some(SupervisorStatus {
        state: text("state"),
        detailed_state: text("detailedState"),
        healthy: json
            .pointer("/payload/healthy")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        stream: text("stream"),
        recent_errors: json
            .pointer("/payload/recentErrors")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(Value::to_string).collect())
            .unwrap_or_default(),
    }))
}

impl Inner {
    fn path(&self) -> String {
        supervisor_path(&self.setup.data_source)
    }

    /// Reads the supervisor's state and row counts every `stats_period`.
    async fn watch(self: Arc<Self>) {
        loop {
            self.read_status().await;
            self.read_stats().await;
            tokio::time::sleep(self.setup.stats_period).await;
        }
    }

    async fn read_status(&self) {
        let ds = &self.setup.data_source;
        let Ok(Some(status)) = supervisor_status(&self.overlord, ds).await else {
            return;
        };
        let shown = format!("{}/{}", status.state, status.detailed_state);
        let mut last = self.state.lock();
        if last.as_deref() != Some(shown.as_str()) {
            if status.is_unhealthy() {
                warn!(
                    dataSource = %ds,
                    state = %shown,
                    errors = ?status.recent_errors,
                    "the supervisor is unhealthy"
                );
            } else {
                info!(dataSource = %ds, state = %shown, "supervisor state");
            }
            *last = Some(shown);
        }
    }

    async fn read_stats(&self) {
        let path = format!("{}/stats", self.path());
        match self.overlord.call_api(Method::GET, &path, None).await {
            Ok(answer) if !answer.is_not_found() => {
                if let Ok(json) = answer.json() {
                    let s = sum_stats(&json);
                    DruidRowsCounted {
                        counts: [
                            s.processed,
                            s.processed_with_error,
                            s.thrown_away,
                            s.unparseable,
                        ],
                    }
                    .emit(&self.metrics);
                }
            }
            Ok(_) => {}
            Err(e) => debug!(error = %e, "reading the supervisor's stats"),
        }
    }
}

/// Checks a topic name against Kafka's rule (letters, digits, `.`, `_`, `-`; at most 249;
/// not `.` or `..`), so a bad `druid.ingestion.kafka.topic` is a configuration error even on
/// brokers that do not check.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    let legal = topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if topic.is_empty() || topic.len() > 249 || topic == "." || topic == ".." || !legal {
        return Err(format!(
            "druid.ingestion.kafka.topic gives '{topic}', which is not a Kafka topic name \
             (1 to 249 of letters, digits, '.', '_' and '-'; not '.' or '..')"
        ));
    }
    Ok(())
}

/// Sums `totals.buildSegments` over every task of every group of a `/stats` answer.
pub fn sum_stats(stats: &Value) -> RowStats {
    let mut sum = RowStats::default();
    let groups = stats.as_object().into_iter().flat_map(|g| g.values());
    for task in groups.filter_map(Value::as_object).flat_map(|t| t.values()) {
        let Some(build) = task.pointer("/totals/buildSegments") else {
            continue;
        };
        let n = |k: &str| build.get(k).and_then(Value::as_u64).unwrap_or(0);
        sum.processed += n("processed");
        sum.processed_with_error += n("processedWithError");
        sum.thrown_away += n("thrownAway");
        sum.unparseable += n("unparseable");
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(validate_topic("tranquility-wiki_2.x").is_ok());
        for bad in ["", ".", "..", "with space", "slash/es", &"x".repeat(250)] {
            let e = validate_topic(bad).unwrap_err();
            assert!(e.contains("druid.ingestion.kafka.topic"), "{e}");
        }
    }

    #[test]
    fn stats_are_summed_over_groups_and_tasks() {
        let stats = json!({
            "0": {"task_a": {"movingAverages": {}, "totals": {"buildSegments":
                    {"processed": 5, "processedBytes": 100, "processedWithError": 1,
                     "thrownAway": 2, "unparseable": 0}}}},
            "1": {"task_b": {"totals": {"buildSegments": {"processed": 3, "unparseable": 4}}},
                  "task_c": {"totals": {}}}
        });
        assert_eq!(
            sum_stats(&stats),
            RowStats {
                processed: 8,
                processed_with_error: 1,
                thrown_away: 2,
                unparseable: 4
            }
        );
        assert_eq!(sum_stats(&json!({})), RowStats::default());
    }
}
