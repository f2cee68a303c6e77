//! [`Coordinator`] on ZooKeeper.
//!
//! Layout (as the original Tranquility): metadata JSON at `<base>/<identity>/data`, created
//! holding the empty metadata when missing (what the original writes, so either can read a node
//! the other created); the lock is Curator's `InterProcessSemaphoreMutex` at
//! `<base>/<identity>/mutex` (see [`super::semaphore`]), so an instance of the original and
//! this one exclude each other. Each update: take the lease, `sync`, read the data and its
//! version, run the modify step, then write in one transaction that checks the lease node
//! still exists and the data version is unchanged. If the session expired meanwhile, the lease
//! is gone and the write is refused, so two processes never both write while thinking they
//! hold the lock.
//!
//! The lease is released by an awaited delete (see `release`), and every request is bounded by
//! an attempt timeout: around a reconnect, zookeeper-client (0.11.2) can leave a request
//! unanswered, and a node left behind by our live session would block every later update
//! until the session ends.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::connection::{bounded, is_connection_loss, retry_connection_loss, ZkConnection};
use super::semaphore::{self, AcquireError, Lease};
use super::{validate_identity, BeamMetadata, CoordError, Coordinator, Modify};
use crate::retry::RetryPolicy;

/// Settings of a [`ZkCoordinator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkCoordinatorConfig {
    /// Base znode of the metadata (`zookeeper.path`, default `/tranquility/beams`).
    pub base_path: String,
    /// How long an update waits for the lock before giving up.
    pub lock_timeout: Duration,
}

impl Default for ZkCoordinatorConfig {
    fn default() -> Self {
        ZkCoordinatorConfig {
            // `zookeeper.path`'s default, from the core's property table.
            base_path: crate::spec::CoreProperties::default().zookeeper_path,
            lock_timeout: Duration::from_secs(600),
        }
    }
}

/// Beam metadata in ZooKeeper, shared by every process using the same ensemble and base path.
#[derive(Debug, Clone)]
pub struct ZkCoordinator {
    conn: Arc<ZkConnection>,
    config: ZkCoordinatorConfig,
}

struct Paths {
    data: String,
    mutex: String,
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

impl ZkCoordinator {
    /// A coordinator on `conn` (which may be shared with service discovery).
    pub fn new(conn: Arc<ZkConnection>, config: ZkCoordinatorConfig) -> Self {
        ZkCoordinator { conn, config }
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Arc<ZkConnection> {
        &self.conn
    }

    fn paths(&self, identity: &str) -> Result<Paths, CoordError> {
        validate_identity(identity)?;
        let base = self.config.base_path.trim_end_matches('/');
        let dir = format!("{base}/{identity}");
        Ok(Paths {
            data: format!("{dir}/data"),
            mutex: format!("{dir}/mutex"),
        })
    }

    async fn ensure_data(&self, data: &str) -> Result<(), CoordError> {
        let op = format!("create {data}");
        let empty = BeamMetadata::default().to_bytes();
        let empty = empty.as_slice();
        self.conn
            .run(&op, |client| async move {
                match client.create(data, empty, &persistent()).await {
                    Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
                    Err(zk::Error::NoNode) => {
                        let parent = data.rsplit_once('/').map_or("/", |(p, _)| p);
                        client.mkdir(parent, &persistent()).await?;
                        match client.create(data, empty, &persistent()).await {
                            Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(())
    }

    /// The update's work while `lock` is held: read, modify, write if changed.
    async fn update_holding(
        &self,
        lock: &Lease,
        identity: &str,
        paths: &Paths,
        modify: Modify,
    ) -> Result<BeamMetadata, CoordError> {
        let (current, stored, version) = self.read_with(lock.client(), &paths.data).await?;
        let next = modify(current.clone())
            .await
            .map_err(|source| CoordError::Modify {
                identity: identity.to_owned(),
                source,
            })?;
        let next = match next.filter(|n| *n != current) {
            Some(next) => next,
            // A node an earlier version created with no bytes: the original cannot read it,
            // so it gets the empty metadata's JSON.
            None if BeamMetadata::is_unwritten(&stored) => current.clone(),
            None => return Ok(current),
        };
        let bytes = next.to_bytes();
        tracing::info!(
            path = %paths.data,
            data = %String::from_utf8_lossy(&bytes),
            "Writing new beam data"
        );
        self.write_locked(lock, paths, &bytes, version).await?;
        Ok(next)
    }

    /// Deletes our lease and waits for the answer: a lease left behind by our live session
    /// would make every later contender wait until the session ends.
    async fn release(&self, lock: Lease) {
        let path = lock.path().to_owned();
        let deadline = Instant::now() + self.conn.op_timeout();
        if let Err(error) = lock.release(deadline).await {
            tracing::warn!(
                %path,
                %error,
                "could not release the lock; it goes when this session ends"
            );
        }
    }

    /// Takes the lock, retrying with a new session if the old one expired while waiting.
    async fn lock(&self, mutex: &str) -> Result<Lease, CoordError> {
        let started = Instant::now();
        let deadline = started + self.config.lock_timeout;
        let mut retry = RetryPolicy::zookeeper(self.config.lock_timeout).start();
        loop {
            let error = match self.conn.client().await {
                Ok(client) => match semaphore::acquire(&client, mutex, deadline).await {
                    Ok(lease) => return Ok(lease),
                    Err(AcquireError::ForeignContenders(nodes)) => {
                        return Err(CoordError::ForeignLock {
                            path: mutex.to_owned(),
                            nodes,
                        })
                    }
                    Err(AcquireError::TimedOut) => None,
                    Err(e) => Some((e.is_retriable(), e.to_string())),
                },
                Err(e) => Some((e.is_retriable(), e.source.to_string())),
            };
            // A retriable failure waits while the policy allows; past it, the lock timed out.
            let wait = match &error {
                Some((true, _)) => retry.failed(),
                _ => None,
            };
            match (error, wait) {
                (Some((true, e)), Some(wait)) => {
                    tracing::debug!(error = %e, "taking the lock failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                (Some((false, e)), _) => {
                    return Err(CoordError::LockFailed {
                        path: mutex.to_owned(),
                        reason: e,
                    })
                }
                _ => {
                    return Err(CoordError::LockTimeout {
                        path: mutex.to_owned(),
                        waited: started.elapsed(),
                    })
                }
            }
        }
    }

    async fn read_with(
        &self,
        client: &zk::Client,
        data: &str,
    ) -> Result<(BeamMetadata, Vec<u8>, i32), CoordError> {
        let deadline = Instant::now() + self.conn.op_timeout();
        let read = retry_connection_loss(deadline, || async {
            client.sync(data).await?;
            client.get_data(data).await
        })
        .await
        .map_err(|e| self.conn.error(&format!("read {data}"), e))?;
        let (bytes, stat) = read;
        let meta = BeamMetadata::from_bytes(&bytes).map_err(|source| CoordError::Metadata {
            path: data.to_owned(),
            source,
        })?;
        Ok((meta, bytes, stat.version))
    }

    /// Writes `bytes` if the lock is still ours and the version is still `version`.
    async fn write_locked(
        &self,
        lock: &Lease,
        paths: &Paths,
        bytes: &[u8],
        version: i32,
    ) -> Result<(), CoordError> {
        let lost = |reason: String| CoordError::LockLost {
            path: lock.path().to_owned(),
            reason,
        };
        let deadline = Instant::now() + self.conn.op_timeout();
        let mut retry = RetryPolicy::zookeeper(self.conn.op_timeout()).start();
        loop {
            let mut writer = lock
                .client()
                .new_check_writer(lock.path(), None)
                .map_err(|e| self.conn.error(&format!("write {}", paths.data), e))?;
            writer
                .add_set_data(&paths.data, bytes, Some(version))
                .map_err(|e| self.conn.error(&format!("write {}", paths.data), e))?;
            // An unanswered commit is handled like a lost connection: look at what was applied.
            let commit = bounded(deadline, writer.commit(), || {
                zk::CheckWriteError::RequestFailed {
                    source: zk::Error::ConnectionLoss,
                }
            });
            match commit.await {
                Ok(_) => return Ok(()),
                Err(zk::CheckWriteError::CheckFailed { source }) => {
                    return Err(lost(format!("lock node check: {source}")))
                }
                Err(zk::CheckWriteError::OperationFailed { source, .. }) => {
                    // Only we write under the lock, so another version means the lock was not ours.
                    return Err(lost(format!("data write: {source}")));
                }
                Err(zk::CheckWriteError::RequestFailed { source })
                    if is_connection_loss(&source) =>
                {
                    // The write may have been applied before the connection dropped: look,
                    // once the client had a moment to reconnect.
                    let Some(wait) = retry.failed() else {
                        return Err(lost("ZooKeeper unreachable while writing".into()));
                    };
                    tokio::time::sleep(wait).await;
                    let client = lock.client();
                    let seen = retry_connection_loss(deadline, || client.get_data(&paths.data))
                        .await
                        .map_err(|e| {
                            lost(format!(
                                "re-reading after connection loss: {e}; the write may or may not \
                                 have been applied"
                            ))
                        })?;
                    let (seen_bytes, stat) = seen;
                    if stat.version == version + 1 && seen_bytes == bytes {
                        return Ok(());
                    }
                    if stat.version != version {
                        return Err(lost(format!(
                            "data version moved from {version} to {}",
                            stat.version
                        )));
                    }
                    if Instant::now() >= deadline {
                        return Err(lost("ZooKeeper unreachable while writing".into()));
                    }
                }
                Err(zk::CheckWriteError::RequestFailed { source }) => {
                    return Err(lost(source.to_string()))
                }
            }
        }
    }
}

#[async_trait]
impl Coordinator for ZkCoordinator {
    async fn update(&self, identity: &str, modify: Modify) -> Result<BeamMetadata, CoordError> {
        let paths = self.paths(identity)?;
        self.ensure_data(&paths.data).await?;
        let lock = self.lock(&paths.mutex).await?;
        let result = self.update_holding(&lock, identity, &paths, modify).await;
        self.release(lock).await;
        result
    }

    async fn check_shared(&self, identity: &str) -> Result<(), CoordError> {
        self.read(identity).await?;
        let mutex = self.paths(identity)?.mutex;
        let children = self.conn.children(&mutex).await?;
        let nodes = semaphore::foreign_contenders(&children);
        if nodes.is_empty() {
            Ok(())
        } else {
            Err(CoordError::ForeignLock { path: mutex, nodes })
        }
    }

    async fn read(&self, identity: &str) -> Result<BeamMetadata, CoordError> {
        let paths = self.paths(identity)?;
        let data = paths.data.as_str();
        let bytes = self
            .conn
            .run(&format!("read {data}"), |client| async move {
                client.sync(data).await?;
                match client.get_data(data).await {
                    Ok((bytes, _)) => Ok(bytes),
                    Err(zk::Error::NoNode) => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            })
            .await?;
        BeamMetadata::from_bytes(&bytes).map_err(|source| CoordError::Metadata {
            path: data.to_owned(),
            source,
        })
    }
}
