//! Push client of a task's event receiver firehose:
//! `POST <task>/druid/worker/v1/chat/<serviceName>/push-events` with a JSON or Smile array.
//!
//! Every push carries a producer id and sequence number (`X-Firehose-Producer-Id` /
//! `X-Firehose-Producer-Seq`, Druid 0.12+), and a retried chunk keeps its number so Druid skips
//! it if an earlier attempt already got through. Two kinds of push:
//! - [`ReceiverClient::push`] leases a random producer id from the client's pool. Druid skips
//!   any sequence not above the last it saw, so a chunk overtaken by a later one would be
//!   skipped unsent: when a chunk that cannot have reached the firehose before is answered
//!   `skipped`, it is sent again under a new number.
//! - [`ReceiverClient::push_as`] pushes under a given id and number: a chunk of records read
//!   from a source, whose id names the partition and whose number is the chunk's last offset
//!   (see [`crate::source::Origin`]). There `skipped` means the task already has the chunk.
//!
//! A task that already tracks Druid's limit of 10 000 producer ids answers 403 to every push
//! that carries one; the client then pushes to it without an id (no deduplication there, so a
//! retried push may be ingested twice) and says so once per task at WARN.
//!
//! Transient errors (I/O, timeouts, "no such handler yet", 5xx) are retried with exponential
//! backoff and jitter for `druidBeam.firehoseRetryPeriod`, logged at DEBUG during
//! `druidBeam.firehoseQuietPeriod` and at WARN after. After each one the caller's [`TaskCheck`]
//! is asked whether the task has finished; if so the push gives up with
//! [`ReceiverError::TaskGone`] (the replica is gone for good).

use parking_lot::Mutex;
use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::Value;

use super::locator::{TaskLocator, TaskTarget};
use super::overlord::{error_chain, OverlordClient, TaskState};
use super::tls::DruidTls;
use super::BasicAuth;
use crate::retry::RetryPolicy;
use crate::source::Ownership;
use crate::spec::properties::SerializationFormat;

impl SerializationFormat {
    /// The Content-Type of a push body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            SerializationFormat::Json => "application/json",
            SerializationFormat::Smile => "application/x-jackson-smile",
        }
    }
}

/// An encoded chunk of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushBody {
    /// The encoded array.
    pub bytes: Bytes,
    /// Its encoding.
    pub format: SerializationFormat,
    /// How many events it holds.
    pub events: usize,
}

/// An event could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("event {index} of the chunk cannot be encoded as {format:?}: {reason}")]
pub struct EncodeError {
    /// Position in the chunk.
    pub index: usize,
    /// Target encoding.
    pub format: SerializationFormat,
    /// Why.
    pub reason: String,
}

/// A JSON array of events given as raw JSON objects (copied, not re-parsed).
pub fn encode_json_array<I, B>(events: I) -> PushBody
where
    I: IntoIterator<Item = B>,
    I::IntoIter: Clone,
    B: AsRef<[u8]>,
{
    let events = events.into_iter();
    let size = events.clone().map(|e| e.as_ref().len() + 1).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(size);
    out.push(b'[');
    let mut count = 0;
    for event in events {
        if count > 0 {
            out.push(b',');
        }
        out.extend_from_slice(event.as_ref());
        count += 1;
    }
    out.push(b']');
    PushBody {
        bytes: Bytes::from(out),
        format: SerializationFormat::Json,
        events: count,
    }
}

/// Why a build without the `smile` feature cannot push Smile.
pub const SMILE_MISSING: &str = "serialization.format=smile needs Smile, and this build has none \
     (tranquility-core was built without its `smile` feature); use json";

/// A Smile array of events given as raw JSON objects.
pub fn encode_smile_array<I, B>(events: I) -> Result<PushBody, EncodeError>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let values = events
        .into_iter()
        .enumerate()
        .map(|(index, e)| {
            serde_json::from_slice::<Value>(e.as_ref()).map_err(|err| EncodeError {
                index,
                format: SerializationFormat::Smile,
                reason: err.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    #[cfg(feature = "smile")]
    let encoded = serde_smile::to_vec(&values).map_err(|err| err.to_string());
    #[cfg(not(feature = "smile"))]
    let encoded: Result<Vec<u8>, String> = Err(SMILE_MISSING.into());
    let bytes = encoded.map_err(|reason| EncodeError {
        index: 0,
        format: SerializationFormat::Smile,
        reason,
    })?;
    Ok(PushBody {
        bytes: Bytes::from(bytes),
        format: SerializationFormat::Smile,
        events: values.len(),
    })
}

/// Asked after each transient push error: has the task finished?
#[async_trait]
pub trait TaskCheck: Send + Sync {
    /// `Some(state)` when the task is complete (SUCCESS or FAILED); `None` while it runs or
    /// when that cannot be told (unknown task, Overlord unreachable).
    async fn finished(&self, task_id: &str) -> Option<TaskState>;
}

#[async_trait]
impl TaskCheck for OverlordClient {
    async fn finished(&self, task_id: &str) -> Option<TaskState> {
        match self.task_status_once(task_id).await {
            Ok(Some(status)) if status.state.is_complete() => Some(status.state),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "task status check failed");
                None
            }
        }
    }
}

/// Settings of a [`ReceiverClient`].
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Retries of transient errors (`druidBeam.firehoseRetryPeriod`).
    pub retry: RetryPolicy,
    /// Transient errors are logged at DEBUG for this long from the push start
    /// (`druidBeam.firehoseQuietPeriod`), then at WARN.
    pub quiet_period: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Basic credentials for the tasks.
    pub auth: Option<BasicAuth>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            retry: RetryPolicy::receiver(),
            quiet_period: Duration::from_secs(60),
            request_timeout: Duration::from_secs(90),
            auth: None,
        }
    }
}

/// What the task answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReply {
    /// `eventCount` from the task (events buffered; 0 when skipped).
    pub event_count: u64,
    /// The task skipped the chunk as a duplicate of an earlier attempt that got through.
    pub skipped: bool,
    /// Requests made.
    pub attempts: u32,
    /// The producer id the chunk went with (`None`: without one, see the module docs).
    pub producer_id: Option<String>,
    /// The producer sequence number the chunk went with.
    pub seq: i64,
}

/// A push that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReceiverError {
    /// The task finished (or failed): this replica will take no more events.
    #[error("task {task_id} is gone ({state:?}) after {attempts} push attempt(s)")]
    TaskGone {
        /// Task id.
        task_id: String,
        /// Its final state.
        state: TaskState,
        /// Requests made.
        attempts: u32,
    },
    /// The task refused the chunk; retrying would not help.
    #[error("task {task_id} refused the push ({url}): HTTP {status}: {body}")]
    Rejected {
        /// Task id.
        task_id: String,
        /// Request URL.
        url: String,
        /// Status code.
        status: u16,
        /// The task's body.
        body: String,
    },
    /// Transient errors went on for the whole retry period.
    #[error("pushing to task {task_id} kept failing for {waited:?} ({attempts} attempt(s)); last error: {last}")]
    RetriesExhausted {
        /// Task id.
        task_id: String,
        /// Requests made.
        attempts: u32,
        /// Time spent.
        waited: Duration,
        /// The last error.
        last: String,
    },
    /// The chunk's partition stopped being read here while the push was being retried: its
    /// next owner sends it.
    #[error("gave up pushing to task {task_id} after {attempts} attempt(s): the partition is no longer read here")]
    Abandoned {
        /// Task id.
        task_id: String,
        /// Requests made.
        attempts: u32,
    },
    /// Something this client cannot do.
    #[error("cannot push to task {task_id}: {reason}")]
    Unsupported {
        /// Task id.
        task_id: String,
        /// What.
        reason: String,
    },
}

impl ReceiverError {
    /// Whether the task is gone for good (the beam for it is defunct).
    pub fn is_task_gone(&self) -> bool {
        matches!(self, ReceiverError::TaskGone { .. })
    }

    /// Whether pushing the same chunk later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ReceiverError::RetriesExhausted { .. } | ReceiverError::Abandoned { .. }
        )
    }
}

enum Attempt {
    Accepted(u64),
    Skipped,
    /// `reached`: the firehose may have recorded the sequence number.
    Transient {
        reason: String,
        reached: bool,
    },
    /// The firehose tracks Druid's maximum of producer ids and refuses any push with one.
    TooManyProducers,
    Permanent(ReceiverError),
}

/// Most tasks remembered as refusing producer ids (finished ones are forgotten with the rest).
const SATURATED_REMEMBERED: usize = 1024;

/// Pushes chunks to tasks' receivers. Create one per process (or per beam), not per push.
///
/// Druid skips a chunk whose `X-Firehose-Producer-Seq` is not above the last one it saw from
/// the same `X-Firehose-Producer-Id`, so concurrent pushes under one id would overtake and
/// skip each other. Each push therefore leases a producer (an id with its own sequence) for
/// all its attempts: retries stay deduplicated, and concurrent pushes never collide. The pool
/// grows to the number of pushes in flight at once, which Druid's per-firehose limit of
/// 10 000 producers leaves plenty of room for.
#[derive(Debug)]
pub struct ReceiverClient {
    http: reqwest::Client,
    config: ReceiverConfig,
    idle: Mutex<Vec<Producer>>,
    /// Tasks that refuse producer ids (Druid's limit): pushed to without one.
    saturated: Mutex<HashSet<String>>,
    tls: bool,
}

/// One producer id and its next sequence number.
#[derive(Debug)]
struct Producer {
    id: String,
    next_seq: i64,
}

impl Producer {
    fn new() -> Self {
        let id: u64 = rand::random();
        Producer {
            id: format!("tranquility-{id:016x}"),
            next_seq: 0,
        }
    }

    fn take_seq(&mut self) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }
}

/// Where a push's producer id and numbers come from.
enum Pushing<'a, 'c> {
    /// A leased producer, which gives an overtaken chunk a new number.
    Pooled(&'a mut Lease<'c>),
    /// A source partition's ownership (given id and number; stop once it is fenced).
    As(&'a Ownership),
}

/// A producer leased for one push; back to the pool when dropped.
struct Lease<'a> {
    client: &'a ReceiverClient,
    producer: Option<Producer>,
}

impl Lease<'_> {
    fn producer(&mut self) -> &mut Producer {
        self.producer.get_or_insert_with(Producer::new)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(producer) = self.producer.take() {
            self.client.idle.lock().push(producer);
        }
    }
}

impl ReceiverClient {
    /// A client, plain HTTP only; producer ids are random and made as needed.
    pub fn new(config: ReceiverConfig) -> Self {
        Self::with_tls(config, &DruidTls::off())
    }

    /// A client with TLS towards the tasks as `tls` says (`druid.tls.*`).
    pub fn with_tls(config: ReceiverConfig, tls: &DruidTls) -> Self {
        let http = tls
            .client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .build()
            .unwrap_or_default();
        ReceiverClient {
            http,
            config,
            idle: Mutex::new(Vec::new()),
            saturated: Mutex::new(HashSet::new()),
            tls: tls.is_enabled(),
        }
    }

    fn lease(&self) -> Lease<'_> {
        let producer = self.idle.lock().pop();
        Lease {
            client: self,
            producer,
        }
    }

    /// Pushes one chunk to `task` under a producer id of the pool, locating it through
    /// `locator` and asking `check` after each transient error whether the task is still there.
    pub async fn push(
        &self,
        task: &TaskTarget,
        locator: &dyn TaskLocator,
        check: &dyn TaskCheck,
        body: &PushBody,
    ) -> Result<PushReply, ReceiverError> {
        let mut lease = self.lease();
        let producer_id = lease.producer().id.clone();
        let seq = lease.producer().take_seq();
        let pooled = Pushing::Pooled(&mut lease);
        self.push_with(task, locator, check, body, &producer_id, seq, pooled)
            .await
    }

    /// Pushes one chunk of `ownership`'s records to `task` under its producer id and `seq`, as
    /// [`ReceiverClient::push`] does otherwise; a `skipped` answer means the task already has a
    /// chunk of this producer at or above `seq`. Once the ownership is fenced no new attempt
    /// starts ([`ReceiverError::Abandoned`]), so a partition's next owner never races a retry.
    pub async fn push_as(
        &self,
        task: &TaskTarget,
        locator: &dyn TaskLocator,
        check: &dyn TaskCheck,
        body: &PushBody,
        ownership: &Ownership,
        seq: i64,
    ) -> Result<PushReply, ReceiverError> {
        let id = ownership.producer_id();
        self.push_with(task, locator, check, body, id, seq, Pushing::As(ownership))
            .await
    }

    /// The retry loop of both kinds of push.
    #[allow(clippy::too_many_arguments)]
    async fn push_with(
        &self,
        task: &TaskTarget,
        locator: &dyn TaskLocator,
        check: &dyn TaskCheck,
        body: &PushBody,
        producer_id: &str,
        mut seq: i64,
        mut pushing: Pushing<'_, '_>,
    ) -> Result<PushReply, ReceiverError> {
        let mut retry = self.config.retry.start();
        let mut reached = false;
        let mut with_id = !self.saturated.lock().contains(&task.task_id);
        loop {
            let attempts = retry.attempts() + 1;
            if let Pushing::As(ownership) = pushing {
                if attempts > 1 && ownership.is_fenced() {
                    return Err(ReceiverError::Abandoned {
                        task_id: task.task_id.clone(),
                        attempts: attempts - 1,
                    });
                }
            }
            let producer = with_id.then_some((producer_id, seq));
            let reply = |event_count, skipped| PushReply {
                event_count,
                skipped,
                attempts,
                producer_id: with_id.then(|| producer_id.to_owned()),
                seq,
            };
            let reason = match self.attempt(task, locator, body, producer).await {
                Attempt::Accepted(event_count) => return Ok(reply(event_count, false)),
                Attempt::Skipped => match &mut pushing {
                    Pushing::Pooled(lease) if !reached => {
                        // The task saw a higher sequence of this id before (a pooled producer
                        // reused across tasks' restarts); nothing of this chunk was taken.
                        seq = lease.producer().take_seq();
                        tracing::debug!(task = %task.task_id, seq, "chunk overtaken, resending");
                        "overtaken by a later chunk".to_owned()
                    }
                    _ => return Ok(reply(0, true)),
                },
                Attempt::TooManyProducers => {
                    let mut saturated = self.saturated.lock();
                    if saturated.len() >= SATURATED_REMEMBERED {
                        saturated.clear();
                    }
                    if saturated.insert(task.task_id.clone()) {
                        tracing::warn!(
                            task = %task.task_id,
                            "the task tracks Druid's maximum of 10000 producer ids and refuses \
                             pushes that carry one: pushing to it without, so a retried or \
                             re-read push may be ingested twice"
                        );
                    }
                    with_id = false;
                    // Refused before anything was taken: sent again at once.
                    continue;
                }
                Attempt::Permanent(e) => return Err(e),
                Attempt::Transient {
                    reason,
                    reached: maybe,
                } => {
                    reached |= maybe;
                    locator.forget(task);
                    if let Some(state) = check.finished(&task.task_id).await {
                        return Err(ReceiverError::TaskGone {
                            task_id: task.task_id.clone(),
                            state,
                            attempts,
                        });
                    }
                    reason
                }
            };
            let elapsed = retry.elapsed();
            let Some(delay) = retry.failed() else {
                return Err(ReceiverError::RetriesExhausted {
                    task_id: task.task_id.clone(),
                    attempts,
                    waited: elapsed,
                    last: reason,
                });
            };
            let ms = delay.as_millis();
            if elapsed < self.config.quiet_period {
                tracing::debug!(task = %task.task_id, error = %reason, "Transient error, will try again in {ms} ms");
            } else {
                tracing::warn!(task = %task.task_id, error = %reason, "Transient error, will try again in {ms} ms");
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        task: &TaskTarget,
        locator: &dyn TaskLocator,
        body: &PushBody,
        producer: Option<(&str, i64)>,
    ) -> Attempt {
        let endpoint = match locator.locate(task).await {
            Ok(Some(endpoint)) => endpoint,
            Ok(None) => {
                return Attempt::Transient {
                    reason: format!("receiver '{}' not located yet", task.service_name),
                    reached: false,
                }
            }
            Err(e) => {
                return Attempt::Transient {
                    reason: e.to_string(),
                    reached: false,
                }
            }
        };
        if endpoint.tls && !self.tls {
            return Attempt::Permanent(ReceiverError::Unsupported {
                task_id: task.task_id.clone(),
                reason: format!(
                    "task listens only on TLS ({}): set druid.tls.enable=true (and \
                     druid.tls.trustStorePath to the PEM file of Druid's CA)",
                    endpoint.base_url()
                ),
            });
        }
        let url = format!(
            "{}/druid/worker/v1/chat/{}/push-events",
            endpoint.base_url(),
            task.service_name
        );
        let mut req = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, body.format.content_type())
            .header(reqwest::header::ACCEPT, "*/*")
            .header("X-Druid-Task-Id", &task.task_id)
            .body(body.bytes.clone());
        if let Some((producer_id, seq)) = producer {
            req = req
                .header("X-Firehose-Producer-Id", producer_id)
                .header("X-Firehose-Producer-Seq", seq.to_string());
        }
        if let Some(auth) = &self.config.auth {
            req = req.basic_auth(&auth.user, Some(&auth.pass));
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                return Attempt::Transient {
                    reason: format!("{url}: {}", error_chain(&e)),
                    reached: !e.is_connect(),
                }
            }
        };
        let status = resp.status();
        let text = match resp.bytes().await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                return Attempt::Transient {
                    reason: format!("{url}: reading the answer: {}", error_chain(&e)),
                    reached: true,
                }
            }
        };
        classify(&task.task_id, &url, status, text)
    }
}

/// What Druid 0.15+ says (in a 400) to a push for a chat handler not registered yet or any more.
const MISSING_HANDLER: &str = "Can't find chatHandler";

/// What Druid says (in a 403) once a firehose tracks its maximum of producer ids.
const TOO_MANY_PRODUCERS: &str = "Too many individual producer IDs";

fn classify(task_id: &str, url: &str, status: StatusCode, body: String) -> Attempt {
    if status.is_success() {
        let json: Option<Value> = serde_json::from_str(&body).ok();
        let skipped = json
            .as_ref()
            .and_then(|j| j.get("skipped"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if skipped {
            return Attempt::Skipped;
        }
        return match json.as_ref().and_then(|j| j.get("eventCount")?.as_u64()) {
            Some(n) => Attempt::Accepted(n),
            None => Attempt::Permanent(ReceiverError::Rejected {
                task_id: task_id.to_owned(),
                url: url.to_owned(),
                status: status.as_u16(),
                body: format!("success without an eventCount: {body}"),
            }),
        };
    }
    let transient = |reached| Attempt::Transient {
        reason: format!("HTTP {} from {url}: {body}", status.as_u16()),
        reached,
    };
    match status.as_u16() {
        // No such handler (not started yet, closed, or another task at this address): an empty
        // 404 before Druid 0.15, a 400 `Can't find chatHandler` from 0.15 on, a 503 in the
        // chat resource of releases after the receiver firehose was removed.
        404 | 503 => transient(false),
        400 if body.contains(MISSING_HANDLER) => transient(false),
        400 if body.contains("doesn't match with taskId") => transient(false),
        429 => transient(false),
        403 if body.contains(TOO_MANY_PRODUCERS) => Attempt::TooManyProducers,
        s if s >= 500 => transient(true),
        s => Attempt::Permanent(ReceiverError::Rejected {
            task_id: task_id.to_owned(),
            url: url.to_owned(),
            status: s,
            body,
        }),
    }
}

#[cfg(test)]
mod tests;
