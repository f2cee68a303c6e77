//! Finding a task's event receiver (`druidBeam.taskLocator`):
//!
//! - [`CuratorTaskLocator`] (`curator`, the default): the receiver firehose announces its service
//!   name (`firehose:druid:overlord:<firehoseId>`) in Curator discovery.
//! - [`OverlordTaskLocator`] (`overlord`): the task's `location` from the Overlord's
//!   `runningTasks`, polled every `druidBeam.overlordPollPeriod` (with jitter); a task not seen
//!   yet forces an early poll.

use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "zookeeper")]
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
#[cfg(feature = "zookeeper")]
use rand::seq::IndexedRandom;
use tokio::time::Instant;

#[cfg(feature = "zookeeper")]
use super::discovery::CuratorDiscovery;
use super::overlord::{OverlordClient, OverlordError};
use super::Endpoint;
#[cfg(feature = "zookeeper")]
use crate::coord::ZkError;
use crate::retry::jitter;

/// The task a push goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskTarget {
    /// The Overlord's task id.
    pub task_id: String,
    /// The receiver's service name, e.g. `firehose:druid:overlord:foo-003-0000-0000`.
    pub service_name: String,
}

/// Looking a task up failed (as opposed to "not there yet", which is `Ok(None)`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LocateError {
    /// Discovery could not read ZooKeeper.
    #[cfg(feature = "zookeeper")]
    #[error("locating task receiver through ZooKeeper: {0}")]
    ZooKeeper(#[from] ZkError),
    /// The Overlord could not list running tasks.
    #[error("locating task through the Overlord: {0}")]
    Overlord(#[from] OverlordError),
}

/// Finds where a task's receiver listens.
#[async_trait]
pub trait TaskLocator: Send + Sync + fmt::Debug {
    /// The receiver's endpoint, or `None` while it is not known (not announced or not placed).
    async fn locate(&self, task: &TaskTarget) -> Result<Option<Endpoint>, LocateError>;

    /// Drops what is known about `task`, after a failed push, so the next lookup is fresh.
    fn forget(&self, task: &TaskTarget);
}

/// Locates receivers through Curator discovery of their service name.
#[cfg(feature = "zookeeper")]
#[derive(Debug, Clone)]
pub struct CuratorTaskLocator {
    discovery: Arc<CuratorDiscovery>,
    tls: bool,
}

#[cfg(feature = "zookeeper")]
impl CuratorTaskLocator {
    /// A locator reading `discovery`.
    pub fn new(discovery: Arc<CuratorDiscovery>) -> Self {
        CuratorTaskLocator {
            discovery,
            tls: false,
        }
    }

    /// The same locator preferring announced TLS ports when `tls` (TLS towards Druid is on).
    pub fn with_tls(self, tls: bool) -> Self {
        CuratorTaskLocator { tls, ..self }
    }
}

#[cfg(feature = "zookeeper")]
#[async_trait]
impl TaskLocator for CuratorTaskLocator {
    async fn locate(&self, task: &TaskTarget) -> Result<Option<Endpoint>, LocateError> {
        let instances = self.discovery.instances(&task.service_name).await?;
        // Several tasks may announce one name (old and new interval); any is tried, and the
        // X-Druid-Task-Id header makes the wrong one refuse.
        Ok(instances
            .choose(&mut rand::rng())
            .and_then(|i| i.endpoint_for(self.tls)))
    }

    fn forget(&self, task: &TaskTarget) {
        self.discovery.invalidate(&task.service_name);
    }
}

#[derive(Debug, Default)]
struct PollState {
    last_poll: Option<Instant>,
    next_due: Duration,
    locations: HashMap<String, Option<Endpoint>>,
}

/// Locates tasks from the Overlord's `runningTasks`.
#[derive(Debug)]
pub struct OverlordTaskLocator {
    overlord: OverlordClient,
    poll_period: Duration,
    min_forced_interval: Duration,
    state: tokio::sync::Mutex<PollState>,
}

impl OverlordTaskLocator {
    /// Polls `overlord` every `poll_period` (`druidBeam.overlordPollPeriod`, default PT20S).
    pub fn new(overlord: OverlordClient, poll_period: Duration) -> Self {
        OverlordTaskLocator {
            overlord,
            poll_period,
            min_forced_interval: Duration::from_millis(500).min(poll_period),
            state: tokio::sync::Mutex::new(PollState::default()),
        }
    }
}

#[async_trait]
impl TaskLocator for OverlordTaskLocator {
    async fn locate(&self, task: &TaskTarget) -> Result<Option<Endpoint>, LocateError> {
        let mut state = self.state.lock().await;
        let since = state.last_poll.map(|t| t.elapsed());
        let stale = since.is_none_or(|s| s >= state.next_due);
        let unseen = !matches!(state.locations.get(&task.task_id), Some(Some(_)))
            && since.is_none_or(|s| s >= self.min_forced_interval);
        if stale || unseen {
            let running = self.overlord.running_tasks().await?;
            let tls = self.overlord.tls_enabled();
            state.locations = running
                .into_iter()
                .map(|t| {
                    let endpoint = t.location.as_ref().and_then(|l| l.endpoint_for(tls));
                    (t.id, endpoint)
                })
                .collect();
            state.last_poll = Some(Instant::now());
            state.next_due = jitter(self.poll_period);
        }
        Ok(state.locations.get(&task.task_id).cloned().flatten())
    }

    fn forget(&self, task: &TaskTarget) {
        if let Ok(mut state) = self.state.try_lock() {
            state.locations.remove(&task.task_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::druid::overlord::{OverlordConfig, OverlordEndpoint};
    use crate::druid::testing::{json, Scripted};

    #[tokio::test]
    async fn overlord_locator_polls_and_forces_a_poll_for_unseen_tasks() {
        let server = Scripted::start(|n, _| {
            if n == 0 {
                json(
                    StatusCode::OK,
                    r#"[{"id":"a","location":{"host":null,"port":-1}}]"#,
                )
            } else {
                json(
                    StatusCode::OK,
                    r#"[{"id":"a","location":{"host":"h","port":8100,"tlsPort":-1}}]"#,
                )
            }
        })
        .await;
        let overlord = OverlordClient::new(
            OverlordEndpoint::Url(server.url.clone()),
            OverlordConfig::default(),
        );
        let locator = OverlordTaskLocator::new(overlord, Duration::from_secs(3600));
        let a = TaskTarget {
            task_id: "a".into(),
            service_name: "firehose:druid:overlord:a".into(),
        };
        assert_eq!(locator.locate(&a).await.expect("poll"), None);
        // Not located yet, but polled moments ago: no new poll.
        assert_eq!(locator.locate(&a).await.expect("cached"), None);
        assert_eq!(server.count(), 1);
        tokio::time::sleep(Duration::from_millis(550)).await;
        let found = locator.locate(&a).await.expect("poll").expect("located");
        assert_eq!(found.base_url(), "http://h:8100");
        assert_eq!(server.count(), 2);
        // Known now: served from the cache until the poll period.
        locator.locate(&a).await.expect("cached");
        assert_eq!(server.count(), 2);
        assert_eq!(server.get(1).path, "/druid/indexer/v1/runningTasks");
    }
}
