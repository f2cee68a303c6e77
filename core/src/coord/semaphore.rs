//! Curator's `InterProcessSemaphoreMutex`, node for node, so that Tranquility-RS and the
//! original (or any Curator user) exclude each other on the same path.
//!
//! Under the mutex path `m`, Curator's `InterProcessSemaphoreV2` with one lease does this:
//! 1. take an inner `InterProcessMutex` at `m/locks`: an ephemeral-sequential
//!    `_c_<uuid>-lock-<seq>`, first in sequence order holds it, each other one watches the node
//!    just before it;
//! 2. holding it, create the lease `m/leases/_c_<uuid>-lease-<seq>` (ephemeral-sequential) and
//!    wait, still holding the inner lock, until `m/leases` has at most one child (ours);
//! 3. give the inner lock back. The lease is the mutex; releasing it is deleting it.
//!
//! The `_c_<uuid>-` prefix is Curator's "protection": after a create lost with the connection,
//! the contender finds its node by that prefix. Every request is bounded by an attempt
//! timeout and every wait re-checks now and then, so a request or a watch lost around a
//! reconnect stalls nothing; on any failure the nodes this attempt made are deleted before
//! returning (or in the background if the attempt is dropped), since a node left behind by a
//! live session would block every other contender until that session ends.

use std::fmt;

use rand::Rng;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::connection::{attempt, is_connection_loss, retry_connection_loss, ATTEMPT_TIMEOUT};

/// Where Curator's inner lock contenders live, under the mutex path.
const LOCKS: &str = "locks";
/// Where the leases live, under the mutex path.
const LEASES: &str = "leases";

/// Why the lease was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AcquireError {
    /// ZooKeeper refused or could not answer a request.
    ZooKeeper(zk::Error),
    /// Our own node disappeared while waiting (the session was lost); try again.
    Vanished(String),
    /// The deadline passed first.
    TimedOut,
    /// Contenders of another layout share the path, and they would not see our lease.
    ForeignContenders(Vec<String>),
}

impl AcquireError {
    /// Whether another attempt may succeed.
    pub(crate) fn is_retriable(&self) -> bool {
        match self {
            AcquireError::ZooKeeper(e) => super::connection::is_transient(e),
            AcquireError::Vanished(_) => true,
            AcquireError::TimedOut | AcquireError::ForeignContenders(_) => false,
        }
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::ZooKeeper(e) => write!(f, "{e}"),
            AcquireError::Vanished(path) => write!(f, "our node {path} disappeared"),
            AcquireError::TimedOut => write!(f, "timed out"),
            AcquireError::ForeignContenders(nodes) => write!(f, "foreign contenders {nodes:?}"),
        }
    }
}

impl From<zk::Error> for AcquireError {
    fn from(e: zk::Error) -> Self {
        AcquireError::ZooKeeper(e)
    }
}

/// Lock contenders directly under the mutex path: the layout of Tranquility-RS before it
/// followed Curator's recipe (`<mutex>/_c_<uuid>-lock-<seq>`). Such an instance and this one
/// do not see each other's locks.
pub(crate) fn foreign_contenders(children: &[String]) -> Vec<String> {
    children
        .iter()
        .filter(|c| c.as_str() != LOCKS && c.as_str() != LEASES && c.contains("lock-"))
        .cloned()
        .collect()
}

/// A held lease: the mutex is ours while this node exists.
#[derive(Debug)]
pub(crate) struct Lease {
    client: zk::Client,
    path: String,
    held: bool,
}

impl Lease {
    /// The session holding the lease.
    pub(crate) fn client(&self) -> &zk::Client {
        &self.client
    }

    /// The lease node, `<mutex>/leases/_c_<uuid>-lease-<seq>`.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Deletes the lease and waits for the answer until `deadline`.
    pub(crate) async fn release(mut self, deadline: Instant) -> Result<(), zk::Error> {
        self.held = false;
        delete(&self.client, &self.path, deadline).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.held {
            delete_in_background(self.client.clone(), vec![self.path.clone()]);
        }
    }
}

/// Takes the semaphore mutex at `mutex` with `client`'s session, waiting until `deadline`.
pub(crate) async fn acquire(
    client: &zk::Client,
    mutex: &str,
    deadline: Instant,
) -> Result<Lease, AcquireError> {
    let mut attempt = Attempt {
        client: client.clone(),
        protection: format!("_c_{}-", uuid_v4()),
        dirs: [format!("{mutex}/{LOCKS}"), format!("{mutex}/{LEASES}")],
        armed: true,
    };
    let result = attempt.run(mutex, deadline).await;
    if result.is_err() {
        attempt.clean_up().await;
    }
    attempt.armed = false;
    result
}

/// One try at the mutex: the nodes it may have created are named by its protection prefix.
struct Attempt {
    client: zk::Client,
    protection: String,
    dirs: [String; 2],
    /// Whether dropping it must clean up (it has not finished).
    armed: bool,
}

impl Attempt {
    async fn run(&self, mutex: &str, deadline: Instant) -> Result<Lease, AcquireError> {
        let client = &self.client;
        let children = match retry_connection_loss(deadline, || client.list_children(mutex)).await {
            Ok(children) => children,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let foreign = foreign_contenders(&children);
        if !foreign.is_empty() {
            return Err(AcquireError::ForeignContenders(foreign));
        }
        let [locks, leases] = &self.dirs;
        let lock = self.create(locks, "lock-", deadline).await?;
        wait_turn(client, (locks, &lock), Turn::First, deadline).await?;
        let lease = self.create(leases, "lease-", deadline).await?;
        wait_turn(client, (leases, &lease), Turn::Alone, deadline).await?;
        // The lease is held: the inner lock goes back, as Curator gives it back.
        let lease = Lease {
            client: client.clone(),
            path: format!("{leases}/{lease}"),
            held: true,
        };
        let lock_path = format!("{locks}/{lock}");
        if let Err(error) = delete(client, &lock_path, deadline).await {
            // Dropping the lease deletes it too: a failed step leaves no node behind.
            return Err(error.into());
        }
        Ok(lease)
    }

    /// Creates `<dir>/<protection><name><seq>` and returns its name. A create whose answer
    /// was lost is looked for by its protection prefix before trying again.
    async fn create(
        &self,
        dir: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<String, AcquireError> {
        let client = &self.client;
        let prefix = format!("{dir}/{}{name}", self.protection);
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        loop {
            if Instant::now() >= deadline {
                return Err(AcquireError::TimedOut);
            }
            match attempt(deadline, client.create(&prefix, b"", &options)).await {
                Ok((_, sequence)) => return Ok(format!("{}{name}{sequence}", self.protection)),
                Err(zk::Error::NoNode) => {
                    // The parents are missing (new path, or Curator's empty containers were
                    // reaped): create them as the original does, persistent.
                    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                    retry_connection_loss(deadline, || client.mkdir(dir, &persistent)).await?;
                }
                Err(e) if is_connection_loss(&e) => {
                    if let Some(found) = self.find(dir, deadline).await? {
                        return Ok(found);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Our node in `dir`, if a create went through.
    async fn find(&self, dir: &str, deadline: Instant) -> Result<Option<String>, AcquireError> {
        let client = &self.client;
        match retry_connection_loss(deadline, || client.list_children(dir)).await {
            Ok(children) => Ok(children
                .into_iter()
                .find(|c| c.starts_with(&self.protection))),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes whatever this attempt created, waiting a bounded time.
    async fn clean_up(&self) {
        let deadline = Instant::now() + ATTEMPT_TIMEOUT * 2;
        for dir in &self.dirs {
            // A lost session took its nodes with it.
            if let Ok(Some(node)) = self.find(dir, deadline).await {
                let path = format!("{dir}/{node}");
                if let Err(error) = delete(&self.client, &path, deadline).await {
                    tracing::warn!(%path, %error, "could not delete a lock node; it goes when this session ends");
                }
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.armed {
            // Cancelled mid-way: find and delete our nodes in the background.
            let client = self.client.clone();
            let protection = self.protection.clone();
            let dirs = self.dirs.clone();
            spawn(async move {
                Attempt {
                    client,
                    protection,
                    dirs,
                    armed: false,
                }
                .clean_up()
                .await
            });
        }
    }
}

/// What a contender waits for among the children of its directory.
#[derive(Debug, Clone, Copy)]
enum Turn {
    /// To be first among the `lock-` contenders in sequence order (Curator's
    /// `StandardLockInternalsDriver`), watching the one just before it.
    First,
    /// To hold the only lease left, watching the directory.
    Alone,
}

/// Waits until `ours` has its `turn` among the children of `dir`.
async fn wait_turn(
    client: &zk::Client,
    (dir, ours): (&str, &str),
    turn: Turn,
    deadline: Instant,
) -> Result<(), AcquireError> {
    let vanished = || AcquireError::Vanished(format!("{dir}/{ours}"));
    loop {
        let watcher = match turn {
            Turn::First => {
                let list = || client.list_children(dir);
                let mut children = retry_connection_loss(deadline, list).await?;
                children.retain(|c| c.contains("lock-"));
                children.sort_by(|a, b| sequence_part(a).cmp(sequence_part(b)));
                let index = children
                    .iter()
                    .position(|c| c == ours)
                    .ok_or_else(vanished)?;
                let Some(before) = index.checked_sub(1).map(|i| &children[i]) else {
                    return Ok(());
                };
                let path = format!("{dir}/{before}");
                let watch = || client.check_and_watch_stat(&path);
                match retry_connection_loss(deadline, watch).await? {
                    (Some(_), watcher) => watcher,
                    (None, _) => continue, // gone meanwhile: look again
                }
            }
            Turn::Alone => {
                let watch = || client.list_and_watch_children(dir);
                let (children, watcher) = retry_connection_loss(deadline, watch).await?;
                if !children.iter().any(|c| c == ours) {
                    return Err(vanished());
                }
                if children.len() <= 1 {
                    return Ok(());
                }
                watcher
            }
        };
        wait_for(watcher, deadline).await?;
    }
}

/// Waits for `watcher`, at most one attempt timeout (then the caller looks again, in case the
/// watch was lost around a reconnect), and never past `deadline`.
async fn wait_for(watcher: zk::OneshotWatcher, deadline: Instant) -> Result<(), AcquireError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(AcquireError::TimedOut);
    }
    let limit = (deadline - now).min(ATTEMPT_TIMEOUT);
    let _ = tokio::time::timeout(limit, watcher.changed()).await;
    Ok(())
}

/// The part of a contender's name Curator orders by: what follows the last `lock-`.
fn sequence_part(name: &str) -> &str {
    name.rfind("lock-")
        .map_or(name, |i| &name[i + "lock-".len()..])
}

/// Deletes `path`, retrying a lost connection until `deadline`; already gone is fine.
async fn delete(client: &zk::Client, path: &str, deadline: Instant) -> Result<(), zk::Error> {
    match retry_connection_loss(deadline, || client.delete(path, None)).await {
        Ok(()) | Err(zk::Error::NoNode | zk::Error::SessionExpired) => Ok(()),
        Err(e) => Err(e),
    }
}

fn delete_in_background(client: zk::Client, paths: Vec<String>) {
    spawn(async move {
        let deadline = Instant::now() + ATTEMPT_TIMEOUT * 2;
        for path in paths {
            if let Err(error) = delete(&client, &path, deadline).await {
                tracing::warn!(%path, %error, "could not delete a lock node; it goes when this session ends");
            }
        }
    });
}

/// Runs `work` on the current runtime, if there still is one.
fn spawn(work: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(work);
    }
}

/// A random (version 4) UUID in its usual text form, as Curator's protection prefix uses.
fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contenders_sort_by_sequence_whatever_their_prefix() {
        let mut names = vec![
            "_c_ffff-lock-0000000012".to_string(),
            "_c_0000-lock-0000000003".to_string(),
            "_c_aaaa-lock-0000000007".to_string(),
        ];
        names.sort_by(|a, b| sequence_part(a).cmp(sequence_part(b)));
        assert_eq!(
            names,
            [
                "_c_0000-lock-0000000003",
                "_c_aaaa-lock-0000000007",
                "_c_ffff-lock-0000000012"
            ]
        );
    }

    #[test]
    fn only_the_old_direct_layout_is_foreign() {
        let children = [
            "locks".to_string(),
            "leases".to_string(),
            "_c_6c1d-lock-0000000001".to_string(),
        ];
        assert_eq!(foreign_contenders(&children), ["_c_6c1d-lock-0000000001"]);
        assert!(foreign_contenders(&children[..2]).is_empty());
    }

    #[test]
    fn protection_ids_look_like_uuids() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, uuid_v4());
    }
}
