//! In-process coordination: one async mutex per identity, metadata in memory.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{validate_identity, BeamMetadata, CoordError, Coordinator, Modify};

/// A [`Coordinator`] for instances inside one process; nothing survives the process.
#[derive(Debug, Default)]
pub struct LocalCoordinator {
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<BeamMetadata>>>>,
}

impl LocalCoordinator {
    /// An empty coordinator.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&self, identity: &str) -> Arc<tokio::sync::Mutex<BeamMetadata>> {
        self.entries
            .lock()
            .entry(identity.to_owned())
            .or_default()
            .clone()
    }
}

#[async_trait]
impl Coordinator for LocalCoordinator {
    async fn update(&self, identity: &str, modify: Modify) -> Result<BeamMetadata, CoordError> {
        validate_identity(identity)?;
        let entry = self.entry(identity);
        let mut guard = entry.lock().await;
        let current = guard.clone();
        let next = modify(current).await.map_err(|source| CoordError::Modify {
            identity: identity.to_owned(),
            source,
        })?;
        if let Some(next) = next {
            *guard = next;
        }
        Ok(guard.clone())
    }

    async fn read(&self, identity: &str) -> Result<BeamMetadata, CoordError> {
        validate_identity(identity)?;
        let entry = self.entry(identity);
        let guard = entry.lock().await;
        Ok(guard.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::coord::update_with;

    fn counter(meta: &BeamMetadata) -> u64 {
        meta.extra
            .get("counter")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn concurrent_slow_updates_never_interleave() {
        let coord: Arc<dyn Coordinator> = Arc::new(LocalCoordinator::new());
        let mut joins = Vec::new();
        for _ in 0..4 {
            let coord = coord.clone();
            joins.push(tokio::spawn(async move {
                for _ in 0..10 {
                    update_with(
                        coord.as_ref(),
                        "druid:overlord/foo",
                        |mut meta| async move {
                            let n = counter(&meta);
                            // A slow step while holding the lock, as task creation is.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            meta.extra.insert("counter".into(), (n + 1).into());
                            Ok(Some(meta))
                        },
                    )
                    .await
                    .expect("update");
                }
            }));
        }
        for j in joins {
            j.await.expect("join");
        }
        let meta = coord.read("druid:overlord/foo").await.expect("read");
        assert_eq!(counter(&meta), 40);
        let other = coord.read("druid:overlord/bar").await.expect("read");
        assert_eq!(counter(&other), 0);
    }

    #[tokio::test]
    async fn failed_modify_writes_nothing_and_bad_identity_is_refused() {
        let coord = LocalCoordinator::new();
        let err = update_with(&coord, "a/b", |_meta| async move {
            Err::<Option<BeamMetadata>, _>("overlord down".into())
        })
        .await
        .expect_err("modify error");
        assert!(err.to_string().contains("overlord down"), "{err}");
        assert!(!err.is_retriable());
        assert_eq!(
            coord.read("a/b").await.expect("read"),
            BeamMetadata::default()
        );
        let err = coord.read("a//b").await.expect_err("bad identity");
        assert!(matches!(err, CoordError::InvalidIdentity { .. }), "{err}");
    }
}
