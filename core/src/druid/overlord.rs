//! Overlord client: submit a task, read its status, shut it down, list running tasks.
//!
//! The Overlord is found through Curator discovery (`druid.selectors.indexing.serviceName`,
//! default `druid/overlord`) or at a fixed base URL (`druid.overlord.url`, e.g. the Router).
//!
//! Answers are sorted in one place (`classify`): 2xx is success; 404 means "unknown task" for
//! status calls; 3xx (when no usable `Location` was followed), 429 and 5xx, I/O errors and
//! timeouts are transient and retried with exponential backoff and jitter for the retry period
//! (`druidBeam.indexRetryPeriod`); any other 4xx is permanent and the error carries Druid's body.
//! A standby Overlord answers with 307 to the leader: the redirect is followed, keeping method,
//! body and credentials.

#[cfg(feature = "zookeeper")]
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

#[cfg(feature = "zookeeper")]
use super::discovery::{CuratorDiscovery, DiscoveryError};
use super::tls::{self, DruidTls};
use super::{BasicAuth, Endpoint};
use crate::retry::RetryPolicy;

/// Where the Overlord is.
#[derive(Debug, Clone)]
pub enum OverlordEndpoint {
    /// A fixed base URL such as `http://overlord:8090` (the path `/druid/indexer/v1` is added).
    Url(String),
    /// Curator discovery of `service_name` (`druid/overlord`; mangled to `druid:overlord`).
    #[cfg(feature = "zookeeper")]
    Discovery {
        /// The discovery reader.
        discovery: Arc<CuratorDiscovery>,
        /// The Overlord's `druid.service`.
        service_name: String,
    },
}

impl OverlordEndpoint {
    fn describe(&self) -> String {
        match self {
            OverlordEndpoint::Url(url) => url.clone(),
            #[cfg(feature = "zookeeper")]
            OverlordEndpoint::Discovery { service_name, .. } => {
                super::mangle_service_name(service_name)
            }
        }
    }
}

/// Settings of an [`OverlordClient`].
#[derive(Debug, Clone)]
pub struct OverlordConfig {
    /// Retries of transient errors (`druidBeam.indexRetryPeriod`).
    pub retry: RetryPolicy,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Basic credentials (`druidBeam.basicAuthUser` / `basicAuthPass`).
    pub auth: Option<BasicAuth>,
    /// Redirects followed per request.
    pub max_redirects: usize,
}

impl Default for OverlordConfig {
    fn default() -> Self {
        OverlordConfig {
            retry: RetryPolicy::overlord(),
            request_timeout: Duration::from_secs(90),
            auth: None,
            max_redirects: 5,
        }
    }
}

/// A task's state as the Overlord reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Queued or running.
    Running,
    /// Finished successfully.
    Success,
    /// Finished with failure (or shut down).
    Failed,
}

impl TaskState {
    /// Whether the task has finished (either way).
    pub fn is_complete(self) -> bool {
        !matches!(self, TaskState::Running)
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "RUNNING" => Some(TaskState::Running),
            "SUCCESS" => Some(TaskState::Success),
            "FAILED" => Some(TaskState::Failed),
            _ => None,
        }
    }
}

/// Where a task runs (`location`); unknown parts are `None`/non-positive until it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLocation {
    /// Host, `None` until the task is placed.
    pub host: Option<String>,
    /// Plaintext port, -1 when unknown or TLS only.
    pub port: i32,
    /// TLS port, -1 when off or unknown (absent before Druid 0.11).
    pub tls_port: i32,
}

impl TaskLocation {
    /// The endpoint to push to with TLS towards Druid on or off: the TLS port first when
    /// `tls`, else the plain port first; `None` while unknown.
    pub fn endpoint_for(&self, tls: bool) -> Option<Endpoint> {
        let host = self.host.as_deref().filter(|h| !h.is_empty())?;
        let port = |p: i32| u16::try_from(p).ok().filter(|p| *p > 0);
        Endpoint::choose(host, port(self.port), port(self.tls_port), tls)
    }

    /// The endpoint to push to: the TLS port if set, else the plain port; `None` while unknown.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let host = self.host.as_deref().filter(|h| !h.is_empty())?;
        let (port, tls) = if self.tls_port > 0 {
            (self.tls_port, true)
        } else if self.port > 0 {
            (self.port, false)
        } else {
            return None;
        };
        Some(Endpoint {
            host: host.to_owned(),
            port: u16::try_from(port).ok()?,
            tls,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        let int = |k: &str| {
            obj.get(k)
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(-1)
        };
        Some(TaskLocation {
            host: obj.get("host").and_then(Value::as_str).map(str::to_owned),
            port: int("port"),
            tls_port: int("tlsPort"),
        })
    }
}

/// A task's status (`GET /task/{id}/status`), from the 0.9.2 or the 0.13+ shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// Task id.
    pub id: String,
    /// State.
    pub state: TaskState,
    /// Location (0.13+ only).
    pub location: Option<TaskLocation>,
    /// Failure reason (0.13+), if any.
    pub error_msg: Option<String>,
    /// Run time in milliseconds once complete (-1 while running).
    pub duration_ms: Option<i64>,
}

/// One element of `GET /runningTasks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTask {
    /// Task id.
    pub id: String,
    /// Location, if reported.
    pub location: Option<TaskLocation>,
}

/// Why one call to the Overlord failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The Overlord could not be found.
    #[cfg(feature = "zookeeper")]
    #[error("{0}")]
    Locate(#[from] DiscoveryError),
    /// No HTTP answer (connection refused, reset, timeout).
    #[error("{url}: {message}")]
    Transport {
        /// The request URL.
        url: String,
        /// The client's message.
        message: String,
    },
    /// An HTTP answer that is not a success.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// The request URL.
        url: String,
        /// Status code.
        status: u16,
        /// Druid's response body.
        body: String,
    },
    /// Druid is reachable only over TLS, which is off.
    #[error("{url} is reachable only over TLS: set druid.tls.enable=true (and druid.tls.trustStorePath to the PEM file of Druid's CA)")]
    NeedsTls {
        /// The HTTPS URL.
        url: String,
    },
    /// A success answer that cannot be understood.
    #[error("unexpected answer from {url} ({reason}): {body}")]
    BadResponse {
        /// The request URL.
        url: String,
        /// What is wrong.
        reason: String,
        /// The body.
        body: String,
    },
}

impl CallError {
    /// Whether trying again may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            #[cfg(feature = "zookeeper")]
            CallError::Locate(e) => e.is_retriable(),
            // A refused certificate stays refused until the configuration changes.
            CallError::Transport { message, .. } => !tls::is_certificate_problem(message),
            CallError::NeedsTls { .. } => false,
            CallError::Status { status, .. } => is_transient_status(*status),
            CallError::BadResponse { .. } => false,
        }
    }

    /// The HTTP status, if the Overlord answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn is_transient_status(status: u16) -> bool {
    (300..400).contains(&status) || status == 429 || status >= 500
}

/// An Overlord operation failed (after retries, if it was transient).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OverlordError {
    /// `POST /task` failed.
    #[error("submitting task {task_id} to the Overlord ({overlord}) failed after {attempts} attempt(s): {source}")]
    SubmitTask {
        /// The `id` in the submitted JSON, or `?`.
        task_id: String,
        /// The Overlord (URL or service name).
        overlord: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: CallError,
    },
    /// `GET /task/{id}/status` failed.
    #[error("reading the status of task {task_id} from the Overlord ({overlord}) failed after {attempts} attempt(s): {source}")]
    TaskStatus {
        /// Task id.
        task_id: String,
        /// The Overlord (URL or service name).
        overlord: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: CallError,
    },
    /// `GET /task/{id}` failed.
    #[error("reading the spec of task {task_id} from the Overlord ({overlord}) failed after {attempts} attempt(s): {source}")]
    TaskPayload {
        /// Task id.
        task_id: String,
        /// The Overlord (URL or service name).
        overlord: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: CallError,
    },
    /// `POST /task/{id}/shutdown` failed.
    #[error("shutting down task {task_id} through the Overlord ({overlord}) failed after {attempts} attempt(s): {source}")]
    ShutdownTask {
        /// Task id.
        task_id: String,
        /// The Overlord (URL or service name).
        overlord: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: CallError,
    },
    /// `GET /runningTasks` failed.
    #[error("listing running tasks on the Overlord ({overlord}) failed after {attempts} attempt(s): {source}")]
    RunningTasks {
        /// The Overlord (URL or service name).
        overlord: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: CallError,
    },
}

impl OverlordError {
    /// The failure of the last attempt.
    pub fn call_error(&self) -> &CallError {
        match self {
            OverlordError::SubmitTask { source, .. }
            | OverlordError::TaskStatus { source, .. }
            | OverlordError::TaskPayload { source, .. }
            | OverlordError::ShutdownTask { source, .. }
            | OverlordError::RunningTasks { source, .. } => source,
        }
    }

    /// Whether the operation may succeed if tried again later.
    pub fn is_retriable(&self) -> bool {
        self.call_error().is_retriable()
    }
}

/// A raw answer: status and body.
struct Answer {
    url: String,
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Result<Value, CallError> {
        serde_json::from_slice(&self.body).map_err(|e| self.bad(format!("not JSON: {e}")))
    }

    fn bad(&self, reason: String) -> CallError {
        CallError::BadResponse {
            url: self.url.clone(),
            reason,
            body: body_text(&self.body),
        }
    }
}

fn body_text(body: &[u8]) -> String {
    const MAX: usize = 2000;
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.into_owned(),
    }
}

/// Sorts an HTTP answer: `Ok` for success (and 404 when `not_found_ok`), else the error.
fn classify(answer: Answer, not_found_ok: bool) -> Result<Answer, CallError> {
    let s = answer.status;
    if s.is_success() || (not_found_ok && s == StatusCode::NOT_FOUND) {
        Ok(answer)
    } else if not_found_ok && is_unknown_task(&answer) {
        // Answered as the 404 it means, so callers see one "not found".
        Ok(Answer {
            status: StatusCode::NOT_FOUND,
            ..answer
        })
    } else {
        Err(CallError::Status {
            url: answer.url,
            status: s.as_u16(),
            body: body_text(&answer.body),
        })
    }
}

/// Whether an answer says the task id is unknown. Druid 0.13 to 0.2x answer 400 with
/// `Cannot find any task with id: [..]` from their task resource filter before the resource
/// runs; later versions answer 404.
fn is_unknown_task(answer: &Answer) -> bool {
    answer.status == StatusCode::BAD_REQUEST
        && body_text(&answer.body).contains("Cannot find any task with id")
}

/// Client of the Overlord's task API (`/druid/indexer/v1`).
#[derive(Debug, Clone)]
pub struct OverlordClient {
    http: reqwest::Client,
    endpoint: OverlordEndpoint,
    config: OverlordConfig,
    tls: bool,
}

impl OverlordClient {
    /// A client for `endpoint`, plain HTTP only.
    pub fn new(endpoint: OverlordEndpoint, config: OverlordConfig) -> Self {
        Self::with_tls(endpoint, config, &DruidTls::off())
    }

    /// A client for `endpoint` with TLS towards Druid as `tls` says (`druid.tls.*`).
    pub fn with_tls(endpoint: OverlordEndpoint, config: OverlordConfig, tls: &DruidTls) -> Self {
        let http = tls
            .client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(2)
            .build()
            .unwrap_or_default();
        OverlordClient {
            http,
            endpoint,
            config,
            tls: tls.is_enabled(),
        }
    }

    /// Whether TLS towards Druid is on (so TLS ports are preferred).
    pub fn tls_enabled(&self) -> bool {
        self.tls
    }

    /// The same client (sharing connections) with another retry policy, e.g. a single attempt
    /// for a caller that retries by itself.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        let mut client = self.clone();
        client.config.retry = retry;
        client
    }

    /// Submits a task (`POST /task`) and returns the id the Overlord assigned.
    pub async fn submit_task(&self, task: &Value) -> Result<String, OverlordError> {
        let task_id = task
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        tracing::info!(
            service = %self.endpoint.describe(),
            "Creating druid indexing task: {}",
            serde_json::to_string_pretty(task).unwrap_or_default()
        );
        let body = Bytes::from(serde_json::to_vec(task).unwrap_or_default());
        let (result, attempts) = self
            .call_with_retries(Method::POST, "/task", Some(body), false)
            .await;
        let parsed = result.and_then(|answer| {
            let json = answer.json()?;
            json.get("task")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| answer.bad("no \"task\" id in the answer".into()))
        });
        match parsed {
            Ok(id) => {
                tracing::info!(task = %id, "Created druid indexing task");
                Ok(id)
            }
            Err(source) => Err(OverlordError::SubmitTask {
                task_id,
                overlord: self.endpoint.describe(),
                attempts,
                source,
            }),
        }
    }

    /// The status of a task; `None` when the Overlord does not know it (404 or no `status`).
    pub async fn task_status(&self, task_id: &str) -> Result<Option<TaskStatus>, OverlordError> {
        self.task_status_inner(task_id, true).await
    }

    /// Like [`task_status`](Self::task_status) with a single attempt (no retry of transient
    /// errors), for callers that are already retrying.
    pub async fn task_status_once(
        &self,
        task_id: &str,
    ) -> Result<Option<TaskStatus>, OverlordError> {
        self.task_status_inner(task_id, false).await
    }

    async fn task_status_inner(
        &self,
        task_id: &str,
        retry: bool,
    ) -> Result<Option<TaskStatus>, OverlordError> {
        let path = format!("/task/{}/status", encode_segment(task_id));
        let (result, attempts) = if retry {
            self.call_with_retries(Method::GET, &path, None, true).await
        } else {
            (
                self.call_once(&Method::GET, &path, None)
                    .await
                    .and_then(|a| classify(a, true)),
                1,
            )
        };
        result
            .and_then(|answer| {
                if answer.status == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                parse_status(task_id, &answer.json()?).map_err(|reason| answer.bad(reason))
            })
            .map_err(|source| OverlordError::TaskStatus {
                task_id: task_id.to_owned(),
                overlord: self.endpoint.describe(),
                attempts,
                source,
            })
    }

    /// The JSON a task was submitted with (`GET /task/{id}`, its `payload`); `None` when the
    /// Overlord does not know the task.
    pub async fn task_payload(&self, task_id: &str) -> Result<Option<Value>, OverlordError> {
        let path = format!("/task/{}", encode_segment(task_id));
        let (result, attempts) = self.call_with_retries(Method::GET, &path, None, true).await;
        result
            .and_then(|answer| {
                if answer.status == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                match answer.json()?.get_mut("payload").map(Value::take) {
                    Some(Value::Null) | None => Ok(None),
                    Some(payload) => Ok(Some(payload)),
                }
            })
            .map_err(|source| OverlordError::TaskPayload {
                task_id: task_id.to_owned(),
                overlord: self.endpoint.describe(),
                attempts,
                source,
            })
    }

    /// Asks the Overlord to kill a task (`POST /task/{id}/shutdown`); the task ends FAILED.
    /// A task the Overlord does not know is already gone: that is success too.
    pub async fn shutdown_task(&self, task_id: &str) -> Result<(), OverlordError> {
        let path = format!("/task/{}/shutdown", encode_segment(task_id));
        let (result, attempts) = self
            .call_with_retries(Method::POST, &path, Some(Bytes::new()), true)
            .await;
        result
            .map(|_| ())
            .map_err(|source| OverlordError::ShutdownTask {
                task_id: task_id.to_owned(),
                overlord: self.endpoint.describe(),
                attempts,
                source,
            })
    }

    /// The running tasks and their locations (`GET /runningTasks`).
    pub async fn running_tasks(&self) -> Result<Vec<RunningTask>, OverlordError> {
        let (result, attempts) = self
            .call_with_retries(Method::GET, "/runningTasks", None, false)
            .await;
        result
            .and_then(|answer| {
                let json = answer.json()?;
                let list = json
                    .as_array()
                    .ok_or_else(|| answer.bad("not a JSON array".into()))?;
                list.iter()
                    .map(|t| {
                        let id = t
                            .get("id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| answer.bad("a running task without \"id\"".into()))?;
                        Ok(RunningTask {
                            id: id.to_owned(),
                            location: t.get("location").and_then(TaskLocation::from_json),
                        })
                    })
                    .collect()
            })
            .map_err(|source| OverlordError::RunningTasks {
                overlord: self.endpoint.describe(),
                attempts,
                source,
            })
    }

    async fn base_url(&self) -> Result<String, CallError> {
        let base = match &self.endpoint {
            OverlordEndpoint::Url(url) => url.trim_end_matches('/').to_owned(),
            #[cfg(feature = "zookeeper")]
            OverlordEndpoint::Discovery {
                discovery,
                service_name,
            } => {
                let instance = discovery.pick(service_name).await?;
                let endpoint =
                    instance
                        .endpoint_for(self.tls)
                        .ok_or_else(|| CallError::Transport {
                            url: format!("{} instance {}", instance.name, instance.id),
                            message: "announced without a port".into(),
                        })?;
                endpoint.base_url()
            }
        };
        if !self.tls && base.to_ascii_lowercase().starts_with("https:") {
            return Err(CallError::NeedsTls { url: base });
        }
        Ok(base)
    }

    #[cfg(feature = "zookeeper")]
    fn forget_instance(&self) {
        if let OverlordEndpoint::Discovery {
            discovery,
            service_name,
        } = &self.endpoint
        {
            discovery.invalidate(service_name);
        }
    }

    /// Calls any Druid API on the Overlord's host: `path` from the root (`/status`, or under
    /// `/druid/`), retried like every other call. A 404 is an answer, not an error; other
    /// refusals carry Druid's body in [`CallError::Status`].
    pub async fn call_api(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<ApiAnswer, ApiError> {
        debug_assert!(is_root_path(path), "{path} is not a path from the root");
        let (result, attempts) = self.call_with_retries(method, path, body, true).await;
        match result {
            Ok(answer) => Ok(ApiAnswer {
                status: answer.status.as_u16(),
                body: answer.body,
            }),
            Err(source) => Err(ApiError {
                overlord: self.endpoint.describe(),
                attempts,
                source,
            }),
        }
    }

    /// One request, following redirects with the same method, body and credentials. `path`
    /// is under `/druid/indexer/v1` unless it starts from the root (see `is_root_path`).
    async fn call_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, CallError> {
        let base = self.base_url().await?;
        let mut url = if is_root_path(path) {
            format!("{base}{path}")
        } else {
            format!("{base}/druid/indexer/v1{path}")
        };
        let mut redirects = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let Some(auth) = &self.config.auth {
                req = req.basic_auth(&auth.user, Some(&auth.pass));
            }
            let transport = |e: reqwest::Error| CallError::Transport {
                url: url.clone(),
                message: error_chain(&e),
            };
            let resp = req.send().await.map_err(transport)?;
            let status = resp.status();
            if status.is_redirection() && redirects < self.config.max_redirects {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| Url::parse(&url).ok()?.join(l).ok());
                if let Some(next) = next {
                    tracing::debug!(from = %url, to = %next, "following Overlord redirect");
                    url = next.to_string();
                    redirects += 1;
                    continue;
                }
            }
            let body = resp.bytes().await.map_err(transport)?;
            return Ok(Answer { url, status, body });
        }
    }

    /// Calls with retries of transient failures; returns the result and the attempts made.
    async fn call_with_retries(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        not_found_ok: bool,
    ) -> (Result<Answer, CallError>, u32) {
        let mut retry = self.config.retry.start();
        loop {
            let error = match self.call_once(&method, path, body.clone()).await {
                Ok(answer) => match classify(answer, not_found_ok) {
                    Ok(answer) => return (Ok(answer), retry.attempts() + 1),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if !error.is_retriable() {
                tracing::warn!(%error, "Non-retryable response from the Overlord");
                return (Err(error), retry.attempts() + 1);
            }
            // A failed lookup has no instance to forget.
            #[cfg(feature = "zookeeper")]
            if !matches!(error, CallError::Locate(_)) {
                self.forget_instance();
            }
            let Some(delay) = retry.failed() else {
                return (Err(error), retry.attempts());
            };
            tracing::warn!(
                %error,
                "Transient error from the Overlord, will try again in {} ms",
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// Whether `path` starts from the host's root (`/status`, `/druid/...`) rather than from the
/// indexer API (`/task`, `/runningTasks`).
fn is_root_path(path: &str) -> bool {
    path == "/status" || path.starts_with("/status/") || path.starts_with("/druid/")
}

/// The answer of [`OverlordClient::call_api`]: a success or a 404.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

impl ApiAnswer {
    /// Whether the Overlord answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// A failed [`OverlordClient::call_api`] (after retries, if it was transient).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the Overlord ({overlord}) after {attempts} attempt(s): {source}")]
pub struct ApiError {
    /// The Overlord (URL or service name).
    pub overlord: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    #[source]
    pub source: CallError,
}

/// Percent-encodes what cannot appear raw in a path segment (task ids keep `:`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// All messages of an error and its sources, for a log line or a report.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    if let Some(hint) = tls::hint(&text) {
        text.push_str("; ");
        text.push_str(hint);
    }
    text
}

/// Parses `{"task":id,"status":{...}}` in the 0.9.2 or the 0.13+ shape.
fn parse_status(task_id: &str, json: &Value) -> Result<Option<TaskStatus>, String> {
    let status = match json.get("status") {
        None | Some(Value::Null) => return Ok(None),
        Some(s) => s,
    };
    let state_text = status
        .get("status")
        .and_then(Value::as_str)
        .or_else(|| status.get("statusCode").and_then(Value::as_str))
        .ok_or("status has neither \"status\" nor \"statusCode\"")?;
    let state =
        TaskState::parse(state_text).ok_or_else(|| format!("unknown task state {state_text}"))?;
    Ok(Some(TaskStatus {
        id: status
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(task_id)
            .to_owned(),
        state,
        location: status.get("location").and_then(TaskLocation::from_json),
        error_msg: status
            .get("errorMsg")
            .and_then(Value::as_str)
            .map(str::to_owned),
        duration_ms: status.get("duration").and_then(Value::as_i64),
    }))
}

#[cfg(test)]
mod tests;
