//! Coordination between every instance that feeds the same dataSource: a read-modify-write of
//! the shared [`BeamMetadata`] under a lock.
//!
//! The identity is `<indexServiceKey>/<dataSource>`, e.g. `druid:overlord/foo`; all instances
//! using the same coordinator store and identity share one set of beams. The modify step may do
//! slow work (create tasks through the Overlord) while it holds the lock, so two instances never
//! create the same interval's tasks twice.
//!
//! - [`LocalCoordinator`]: one process (a map and an async mutex per identity).
//! - [`ZkCoordinator`]: ZooKeeper, at `<zookeeper.path>/<identity>/data` with the lock under
//!   `<zookeeper.path>/<identity>/mutex`: the original's layout and Curator's lock recipe, so
//!   instances of the original and of Tranquility-RS can share a dataSource.

#[cfg(feature = "zookeeper")]
mod connection;
mod local;
pub mod meta;
#[cfg(feature = "zookeeper")]
mod semaphore;
#[cfg(feature = "zookeeper")]
mod zk;

use std::fmt;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::FutureExt;

#[cfg(feature = "zookeeper")]
pub use connection::{ZkConnection, ZkError};
pub use local::LocalCoordinator;
pub use meta::{BeamDescriptor, BeamMetadata, MetaError, RealtimeTasks, TaskRef};
#[cfg(feature = "zookeeper")]
pub use zk::{ZkCoordinator, ZkCoordinatorConfig};

/// An error from the caller's modify step, carried through unchanged.
pub type ModifyError = Box<dyn std::error::Error + Send + Sync>;

/// The modify step: given the current metadata, return the new metadata to write (`None` or an
/// equal value: write nothing). It runs while the lock is held.
pub type Modify = Box<
    dyn FnOnce(BeamMetadata) -> BoxFuture<'static, Result<Option<BeamMetadata>, ModifyError>>
        + Send,
>;

/// A coordination failure.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The identity cannot be used as a path.
    #[error("invalid coordination identity '{identity}': {reason}")]
    InvalidIdentity {
        /// The rejected identity.
        identity: String,
        /// Why.
        reason: &'static str,
    },
    /// ZooKeeper could not be reached or refused an operation.
    #[error(transparent)]
    #[cfg(feature = "zookeeper")]
    ZooKeeper(#[from] ZkError),
    /// The lock was not acquired in time.
    #[error("timed out after {waited:?} waiting for the lock {path}")]
    LockTimeout {
        /// The lock's path.
        path: String,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// The lock could not be taken, for a reason waiting does not cure.
    #[error("could not take the lock {path}: {reason}")]
    LockFailed {
        /// The lock's path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Lock contenders of a layout this version does not share are at the lock's path: an
    /// instance of an earlier Tranquility-RS, whose lock neither the original nor this version
    /// sees, works on the same dataSource.
    #[error(
        "lock nodes {nodes:?} directly under {path} belong to an instance of an earlier \
         Tranquility-RS (before it used Curator's InterProcessSemaphoreMutex layout, \
         <path>/locks and <path>/leases); that instance and this one would not exclude each \
         other. Stop every Tranquility-RS instance older than this version that writes to this \
         dataSource, then start this one again (docs/migrating.md, \"The lock\")"
    )]
    ForeignLock {
        /// The lock's path.
        path: String,
        /// The foreign contender nodes found there.
        nodes: Vec<String>,
    },
    /// The lock was lost (session expired) before the new metadata was written; nothing was
    /// written.
    #[error(
        "lost the lock {path} before writing the beam metadata ({reason}); nothing was written"
    )]
    LockLost {
        /// The lock's path.
        path: String,
        /// What ZooKeeper said.
        reason: String,
    },
    /// The stored metadata cannot be read.
    #[error(
        "beam metadata at {path}: {source}; every instance sharing this dataSource must read \
         it: stop them, then repair or delete the node"
    )]
    Metadata {
        /// Where it is stored.
        path: String,
        /// The parse error.
        #[source]
        source: MetaError,
    },
    /// The caller's modify step failed; nothing was written.
    #[error("updating beam metadata of '{identity}' failed: {source}")]
    Modify {
        /// The identity being updated.
        identity: String,
        /// The caller's error.
        #[source]
        source: ModifyError,
    },
}

impl CoordError {
    /// Whether the same update may succeed later.
    pub fn is_retriable(&self) -> bool {
        match self {
            CoordError::InvalidIdentity { .. }
            | CoordError::Metadata { .. }
            | CoordError::Modify { .. }
            | CoordError::LockFailed { .. }
            | CoordError::ForeignLock { .. } => false,
            #[cfg(feature = "zookeeper")]
            CoordError::ZooKeeper(e) => e.is_retriable(),
            CoordError::LockTimeout { .. } | CoordError::LockLost { .. } => true,
        }
    }
}

/// Shared beam metadata with a distributed lock around updates.
#[async_trait]
pub trait Coordinator: Send + Sync + fmt::Debug {
    /// Locks `identity`, reads its metadata, runs `modify` and writes the result if it changed.
    /// Returns the metadata as it is after the update.
    async fn update(&self, identity: &str, modify: Modify) -> Result<BeamMetadata, CoordError>;

    /// Reads `identity`'s metadata without locking.
    async fn read(&self, identity: &str) -> Result<BeamMetadata, CoordError>;

    /// Checks, before serving, that `identity`'s shared metadata can be shared safely with
    /// the other instances there: readable, and no lock contender of a layout this version
    /// does not exclude. Nothing is written.
    async fn check_shared(&self, identity: &str) -> Result<(), CoordError> {
        self.read(identity).await.map(|_| ())
    }
}

/// Calls [`Coordinator::update`] with a closure returning a future, boxing both.
pub async fn update_with<F, Fut>(
    coordinator: &dyn Coordinator,
    identity: &str,
    modify: F,
) -> Result<BeamMetadata, CoordError>
where
    F: FnOnce(BeamMetadata) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Option<BeamMetadata>, ModifyError>> + Send + 'static,
{
    coordinator
        .update(identity, Box::new(move |meta| modify(meta).boxed()))
        .await
}

/// Checks an identity: non-empty `/`-separated segments, none `.` or `..`.
pub(crate) fn validate_identity(identity: &str) -> Result<(), CoordError> {
    let invalid = |reason| CoordError::InvalidIdentity {
        identity: identity.to_owned(),
        reason,
    };
    if identity.is_empty() {
        return Err(invalid("it is empty"));
    }
    for segment in identity.split('/') {
        if segment.is_empty() {
            return Err(invalid("it has an empty path segment"));
        }
        if segment == "." || segment == ".." {
            return Err(invalid("'.' and '..' are not allowed as segments"));
        }
        if segment.chars().any(char::is_control) {
            return Err(invalid("it contains control characters"));
        }
    }
    Ok(())
}
