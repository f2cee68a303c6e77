//! A ZooKeeper handle shared by coordination and discovery. It connects lazily, survives
//! connection loss (the client reconnects by itself) and replaces an expired session with a new
//! one, so callers only see errors when ZooKeeper stays away longer than the operation timeout.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use zookeeper_client as zk;

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

    /// Runs `f` on the live client, retrying transient errors (with a new session when the old
    /// one expired) until the operation timeout.
    pub async fn run<T, F, Fut>(&self, op: &str, mut f: F) -> Result<T, ZkError>
    where
        F: FnMut(zk::Client) -> Fut,
        Fut: Future<Output = Result<T, zk::Error>>,
    {
        let deadline = Instant::now() + self.op_timeout;
        let mut delay = Duration::from_millis(50);
        loop {
            let result = match self.client().await {
                Ok(client) => f(client).await.map_err(|e| self.error(op, e)),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retriable() && Instant::now() + delay < deadline => {
                    tracing::debug!(error = %e, "ZooKeeper operation failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
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

/// Retries `f` on connection loss (not on session expiry) with the same client until `deadline`.
pub(crate) async fn retry_connection_loss<T, F, Fut>(
    deadline: Instant,
    mut f: F,
) -> Result<T, zk::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, zk::Error>>,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match f().await {
            Err(e) if is_connection_loss(&e) && Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}
