//! A ZooKeeper handle shared by coordination and discovery. It connects lazily, survives
//! connection loss (the client reconnects by itself) and replaces an expired session with a new
//! one, so callers only see errors when ZooKeeper stays away longer than the operation timeout.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use zookeeper_client as zk;

use crate::retry::{retry, RetryPolicy};

/// A ZooKeeper operation that failed, naming the ensemble and the operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("ZooKeeper {connect}: {op}: {source}")]
pub struct ZkError {
    /// The connect string.
    pub connect: String,
    /// What was attempted, e.g. `get_data /tranquility/beams/druid:overlord/foo/data`.
    pub op: String,
    /// The client's error.
    #[source]
    pub source: zk::Error,
}

impl ZkError {
    /// Whether the operation may succeed later (the ensemble was unreachable, the session ended).
    pub fn is_retriable(&self) -> bool {
        is_transient(&self.source)
    }
}

/// The connection dropped with the request in flight: it may or may not have been applied.
/// Requests pending when the socket fails carry the I/O error (`Custom`) rather than
/// `ConnectionLoss`.
pub(crate) fn is_connection_loss(e: &zk::Error) -> bool {
    matches!(e, zk::Error::ConnectionLoss | zk::Error::Custom(_))
}

/// Errors that go away by waiting or with a new session.
pub(crate) fn is_transient(e: &zk::Error) -> bool {
    is_connection_loss(e)
        || matches!(
            e,
            zk::Error::ConnectionLoss
                | zk::Error::SessionExpired
                | zk::Error::SessionMoved
                | zk::Error::Timeout
                | zk::Error::NoHosts
                | zk::Error::ClientClosed
                | zk::Error::Throttled
        )
}

/// A reconnecting ZooKeeper client.
#[derive(Debug)]
pub struct ZkConnection {
    connect_string: String,
    session_timeout: Duration,
    op_timeout: Duration,
    current: tokio::sync::Mutex<Option<zk::Client>>,
}

impl ZkConnection {
    /// A connection to `connect_string` (`host:port,...[/chroot]`, port 2181 by default) with
    /// the given session timeout (`zookeeper.timeout`). Operations are retried through outages
    /// for twice the session timeout. Nothing connects until the first use.
    pub fn new(connect_string: impl Into<String>, session_timeout: Duration) -> Self {
        ZkConnection {
            connect_string: connect_string.into(),
            session_timeout,
            op_timeout: session_timeout * 2,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Sets how long one operation is retried while ZooKeeper is unreachable.
    pub fn with_op_timeout(mut self, op_timeout: Duration) -> Self {
        self.op_timeout = op_timeout;
        self
    }

    /// The connect string.
    pub fn connect_string(&self) -> &str {
        &self.connect_string
    }

    /// How long one operation is retried while ZooKeeper is unreachable.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// The live client, connecting (or replacing an expired session) first if needed.
    pub async fn client(&self) -> Result<zk::Client, ZkError> {
        let mut current = self.current.lock().await;
        if let Some(client) = current.as_ref() {
            if !client.state().is_terminated() {
                return Ok(client.clone());
            }
            tracing::info!(
                connect = %self.connect_string,
                state = %client.state(),
                "ZooKeeper session ended, starting a new one"
            );
        }
        let connect = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_connection_timeout(self.session_timeout.min(Duration::from_secs(10)))
            .connect(&self.connect_string);
        let client = match tokio::time::timeout(self.session_timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(source)) => return Err(self.error("connect", source)),
            Err(_) => return Err(self.error("connect", zk::Error::Timeout)),
        };
        *current = Some(client.clone());
        Ok(client)
    }

    /// The children of `path`, none when it does not exist (retried like [`Self::run`]).
    pub async fn children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        self.run(&format!("list {path}"), |client| async move {
            match client.list_children(path).await {
                Err(zk::Error::NoNode) => Ok(Vec::new()),
                other => other,
            }
        })
        .await
    }

    /// Runs `f` on the live client, retrying transient errors (with a new session when the old
    /// one expired) until the operation timeout.
    pub async fn run<T, F, Fut>(&self, op: &str, mut f: F) -> Result<T, ZkError>
    where
        F: FnMut(zk::Client) -> Fut,
        Fut: Future<Output = Result<T, zk::Error>>,
    {
        let mut retry = RetryPolicy::zookeeper(self.op_timeout).start();
        let deadline = Instant::now() + self.op_timeout;
        loop {
            let result = match self.client().await {
                Ok(client) => attempt(deadline, f(client))
                    .await
                    .map_err(|e| self.error(op, e)),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retriable() => {
                    let Some(wait) = retry.failed() else {
                        return Err(e);
                    };
                    tracing::debug!(error = %e, "ZooKeeper operation failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Wraps a client error with this ensemble and operation.
    pub fn error(&self, op: &str, source: zk::Error) -> ZkError {
        ZkError {
            connect: self.connect_string.clone(),
            op: op.to_owned(),
            source,
        }
    }
}

/// How long one request may go unanswered before it is taken as lost with the connection and
/// tried again (within its operation's deadline). A request issued while the client reconnects
/// can stay unanswered for good, and an update waiting on it would hold its lock forever.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// `request`, given up as a connection loss after [`ATTEMPT_TIMEOUT`] or at `deadline`.
pub(crate) async fn attempt<T>(
    deadline: Instant,
    request: impl Future<Output = Result<T, zk::Error>>,
) -> Result<T, zk::Error> {
    bounded(deadline, request, || zk::Error::ConnectionLoss).await
}

/// `request`, answered with `lost()` after [`ATTEMPT_TIMEOUT`] or at `deadline`.
pub(crate) async fn bounded<T, E>(
    deadline: Instant,
    request: impl Future<Output = Result<T, E>>,
    lost: impl FnOnce() -> E,
) -> Result<T, E> {
    let left = deadline.saturating_duration_since(Instant::now());
    let limit = ATTEMPT_TIMEOUT.min(left).max(Duration::from_millis(10));
    match tokio::time::timeout(limit, request).await {
        Ok(answer) => answer,
        Err(_) => Err(lost()),
    }
}

/// Retries `f` on connection loss (not on session expiry) with the same client until `deadline`.
pub(crate) async fn retry_connection_loss<T, F, Fut>(
    deadline: Instant,
    mut f: F,
) -> Result<T, zk::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, zk::Error>>,
{
    let left = deadline.saturating_duration_since(Instant::now());
    retry(
        &RetryPolicy::zookeeper(left),
        || attempt(deadline, f()),
        is_connection_loss,
        |_, _| {},
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_request_is_a_connection_loss_and_is_tried_again() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let never = std::future::pending::<Result<(), zk::Error>>();
        assert_eq!(
            attempt(deadline, never).await,
            Err(zk::Error::ConnectionLoss)
        );

        // The first request hangs, the second is answered.
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let answer = retry_connection_loss(deadline, || {
            let first = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            async move {
                if first {
                    std::future::pending::<()>().await;
                }
                Ok::<_, zk::Error>(7)
            }
        })
        .await;
        assert_eq!(answer, Ok(7));
        assert_eq!(calls.into_inner(), 2);

        // Past the deadline the loss is the answer.
        let soon = Instant::now() + Duration::from_secs(1);
        let hung = retry_connection_loss(soon, std::future::pending::<Result<(), zk::Error>>);
        assert_eq!(hung.await, Err(zk::Error::ConnectionLoss));
    }
}
