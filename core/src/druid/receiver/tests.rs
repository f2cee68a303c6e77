use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::*;
use crate::druid::locator::LocateError;
use crate::druid::testing::{json, Scripted};
use crate::druid::Endpoint;
use crate::source::{Ownership, PartitionId};

#[derive(Debug)]
struct Fixed(Option<Endpoint>);

#[async_trait]
impl TaskLocator for Fixed {
    async fn locate(&self, _task: &TaskTarget) -> Result<Option<Endpoint>, LocateError> {
        Ok(self.0.clone())
    }
    fn forget(&self, _task: &TaskTarget) {}
}

fn at(url: &str) -> Fixed {
    let addr = url.trim_start_matches("http://");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    Fixed(Some(Endpoint {
        host: host.into(),
        port: port.parse().expect("port"),
        tls: false,
    }))
}

/// Reports the task finished from the `after`-th question on (or never).
#[derive(Default)]
struct Check {
    asked: AtomicUsize,
    gone_after: Option<usize>,
}

#[async_trait]
impl TaskCheck for Check {
    async fn finished(&self, _task_id: &str) -> Option<TaskState> {
        let n = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        self.gone_after
            .filter(|after| n >= *after)
            .map(|_| TaskState::Failed)
    }
}

fn target() -> TaskTarget {
    TaskTarget {
        task_id: "index_realtime_foo_2019-01-01T03:00:00.000Z_0_0".into(),
        service_name: "firehose:druid:overlord:foo-003-0000-0000".into(),
    }
}

fn fast() -> ReceiverClient {
    ReceiverClient::new(ReceiverConfig {
        retry: RetryPolicy {
            period: Some(Duration::from_secs(2)),
            max_attempts: None,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        },
        quiet_period: Duration::from_millis(20),
        request_timeout: Duration::from_secs(5),
        auth: None,
    })
}

fn body() -> PushBody {
    encode_json_array([br#"{"a":1}"#.as_slice(), br#"{"b":"x"}"#])
}

#[tokio::test]
async fn retries_server_errors_with_the_same_sequence_number() {
    let server = Scripted::start(|n, _| {
        if n < 2 {
            json(StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"boom"}"#)
        } else {
            json(StatusCode::OK, r#"{"eventCount":2}"#)
        }
    })
    .await;
    let client = fast();
    let check = Check::default();
    let reply = client
        .push(&target(), &at(&server.url), &check, &body())
        .await
        .expect("pushed");
    assert_eq!(reply.event_count, 2);
    assert_eq!(reply.attempts, 3);
    assert!(!reply.skipped);
    assert_eq!(
        check.asked.load(Ordering::SeqCst),
        2,
        "asked after each error"
    );
    let seqs: Vec<_> = (0..3)
        .map(|n| server.get(n).header("x-firehose-producer-seq"))
        .collect();
    assert_eq!(seqs, vec![Some(reply.seq.to_string()); 3]);
    let req = server.get(2);
    assert_eq!(
        req.path,
        "/druid/worker/v1/chat/firehose:druid:overlord:foo-003-0000-0000/push-events"
    );
    assert_eq!(
        req.header("x-firehose-producer-id").as_deref(),
        reply.producer_id.as_deref()
    );
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(req.header("x-druid-task-id"), Some(target().task_id));
    assert_eq!(&req.body[..], br#"[{"a":1},{"b":"x"}]"#);

    // The next chunk gets a higher number.
    let next = client
        .push(&target(), &at(&server.url), &check, &body())
        .await
        .expect("pushed");
    assert!(next.seq > reply.seq);
}

#[tokio::test]
async fn gives_up_when_the_task_is_gone() {
    let server = Scripted::start(|_, _| StatusCode::NOT_FOUND.into_response()).await;
    let check = Check {
        gone_after: Some(2),
        ..Check::default()
    };
    let err = fast()
        .push(&target(), &at(&server.url), &check, &body())
        .await
        .expect_err("task gone");
    assert!(err.is_task_gone(), "{err}");
    assert!(matches!(
        err,
        ReceiverError::TaskGone {
            state: TaskState::Failed,
            attempts: 2,
            ..
        }
    ));
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_400_is_permanent() {
    let server = Scripted::start(|_, _| {
        json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"Producer sequence value is missing"}"#,
        )
    })
    .await;
    let err = fast()
        .push(&target(), &at(&server.url), &Check::default(), &body())
        .await
        .expect_err("rejected");
    assert!(
        matches!(err, ReceiverError::Rejected { status: 400, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sequence value is missing"));
    assert!(!err.is_retriable());
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn an_overtaken_chunk_is_resent_under_a_new_number() {
    let server = Scripted::start(|n, _| {
        if n == 0 {
            json(StatusCode::OK, r#"{"eventCount":0,"skipped":true}"#)
        } else {
            json(StatusCode::OK, r#"{"eventCount":2}"#)
        }
    })
    .await;
    let reply = fast()
        .push(&target(), &at(&server.url), &Check::default(), &body())
        .await
        .expect("pushed");
    assert_eq!((reply.event_count, reply.skipped), (2, false));
    let first = server.get(0).header("x-firehose-producer-seq");
    let second = server.get(1).header("x-firehose-producer-seq");
    assert_ne!(first, second);
    assert_eq!(second, Some(reply.seq.to_string()));
}

#[tokio::test]
async fn a_skip_after_a_possibly_delivered_attempt_is_a_duplicate() {
    let server = Scripted::start(|n, _| {
        if n == 0 {
            json(StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"x"}"#)
        } else {
            json(StatusCode::OK, r#"{"eventCount":0,"skipped":true}"#)
        }
    })
    .await;
    let reply = fast()
        .push(&target(), &at(&server.url), &Check::default(), &body())
        .await
        .expect("pushed");
    assert!(reply.skipped);
    assert_eq!(reply.attempts, 2);
}

#[tokio::test]
async fn an_unlocated_task_is_retried_until_the_period_ends() {
    let client = ReceiverClient::new(ReceiverConfig {
        retry: RetryPolicy {
            period: Some(Duration::from_millis(200)),
            max_attempts: None,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
        },
        ..ReceiverConfig::default()
    });
    let check = Check::default();
    let err = client
        .push(&target(), &Fixed(None), &check, &body())
        .await
        .expect_err("never located");
    assert!(err.is_retriable());
    assert!(err.to_string().contains("not located"), "{err}");
    assert!(check.asked.load(Ordering::SeqCst) > 1);
}

#[tokio::test]
async fn sends_credentials_only_when_configured() {
    let server = Scripted::start(|_, _| json(StatusCode::OK, r#"{"eventCount":1}"#)).await;
    let client = ReceiverClient::new(ReceiverConfig {
        auth: BasicAuth::from_properties("druid", "secret"),
        ..ReceiverConfig::default()
    });
    client
        .push(&target(), &at(&server.url), &Check::default(), &body())
        .await
        .expect("pushed");
    assert_eq!(
        server.get(0).header("authorization").as_deref(),
        Some("Basic ZHJ1aWQ6c2VjcmV0")
    );
    fast()
        .push(&target(), &at(&server.url), &Check::default(), &body())
        .await
        .expect("pushed");
    assert_eq!(server.get(1).header("authorization"), None);
}

#[test]
fn encoders_produce_arrays() {
    let empty = encode_json_array(Vec::<Vec<u8>>::new());
    assert_eq!((&empty.bytes[..], empty.events), (&b"[]"[..], 0));

    let events = [
        r#"{"page":"A","added":3}"#,
        r#"{"page":"B","n":[1,2.5,null]}"#,
    ];
    let smile = encode_smile_array(events).expect("smile");
    assert_eq!(smile.events, 2);
    assert_eq!(smile.format.content_type(), "application/x-jackson-smile");
    assert_eq!(&smile.bytes[..3], b":)\n", "Smile header");
    let back: Value = serde_smile::from_slice(&smile.bytes).expect("decodes");
    assert_eq!(
        back,
        serde_json::json!([{"page":"A","added":3},{"page":"B","n":[1,2.5,null]}])
    );

    let err = encode_smile_array([r#"{"ok":1}"#, "{not json"]).expect_err("bad event");
    assert_eq!(err.index, 1);
}

#[tokio::test]
async fn concurrent_pushes_never_overtake_each_other() {
    let server = Scripted::start(|_, _| json(StatusCode::OK, r#"{"eventCount":2}"#)).await;
    let client = fast();
    let locator = at(&server.url);
    let check = Check::default();
    let (task, chunk) = (target(), body());
    for _round in 0..3 {
        let pushes = (0..8).map(|_| client.push(&task, &locator, &check, &chunk));
        for reply in futures::future::join_all(pushes).await {
            assert_eq!(reply.expect("pushed").attempts, 1);
        }
    }
    // Per producer id, the task saw strictly increasing sequence numbers (Druid's rule).
    let mut last: std::collections::HashMap<String, i64> = Default::default();
    for i in 0..server.count() {
        let req = server.get(i);
        let id = req.header("x-firehose-producer-id").expect("producer id");
        let seq: i64 = req
            .header("x-firehose-producer-seq")
            .expect("seq")
            .parse()
            .expect("a number");
        if let Some(previous) = last.insert(id, seq) {
            assert!(seq > previous, "sequence went from {previous} to {seq}");
        }
    }
    assert!(last.len() <= 8, "one producer per concurrent push at most");
}

/// Druid 0.15 to 30 answer a push to a chat handler that is not registered yet (the peon is
/// still starting its firehose) or any more (the firehose closed) with a 400, not a 404 or
/// 503: retried like them, until the handler appears or the task is gone.
#[tokio::test]
async fn a_missing_chat_handler_400_is_retried() {
    let server = Scripted::start(|n, _| {
        if n < 2 {
            json(
                StatusCode::BAD_REQUEST,
                r#"{"error":"Can't find chatHandler for handler[firehose:druid:overlord:foo-003-0000-0000]"}"#,
            )
        } else {
            json(StatusCode::OK, r#"{"eventCount":2}"#)
        }
    })
    .await;
    let check = Check::default();
    let reply = fast()
        .push(&target(), &at(&server.url), &check, &body())
        .await
        .expect("pushed once the handler is there");
    assert_eq!((reply.event_count, reply.attempts), (2, 3));
    assert_eq!(check.asked.load(Ordering::SeqCst), 2);

    // A handler that never comes back: given up once the task is reported finished.
    let server = Scripted::start(|_, _| {
        json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"Can't find chatHandler for handler[foo-003-0000-0000]"}"#,
        )
    })
    .await;
    let check = Check {
        gone_after: Some(3),
        ..Check::default()
    };
    let err = fast()
        .push(&target(), &at(&server.url), &check, &body())
        .await
        .expect_err("task gone");
    assert!(
        matches!(err, ReceiverError::TaskGone { attempts: 3, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_push_under_a_given_number_keeps_it_and_a_skip_means_the_task_has_it() {
    let server = Scripted::start(|n, _| match n {
        0 => json(StatusCode::SERVICE_UNAVAILABLE, ""),
        1 => json(StatusCode::OK, r#"{"eventCount":2}"#),
        _ => json(StatusCode::OK, r#"{"eventCount":0,"skipped":true}"#),
    })
    .await;
    let client = fast();
    let check = Check::default();
    let hold = Ownership::new("", PartitionId::new("t", 0));
    let reply = client
        .push_as(&target(), &at(&server.url), &check, &body(), &hold, 41)
        .await
        .expect("pushed");
    assert_eq!(
        (reply.event_count, reply.skipped, reply.seq),
        (2, false, 41)
    );
    assert_eq!(reply.producer_id.as_deref(), Some("tranquility:t:0"));
    for n in 0..2 {
        let req = server.get(n);
        assert_eq!(
            req.header("x-firehose-producer-id").as_deref(),
            Some("tranquility:t:0")
        );
        assert_eq!(req.header("x-firehose-producer-seq").as_deref(), Some("41"));
    }
    // Skipped at the first attempt: not resent under another number, the task has it.
    let again = client
        .push_as(&target(), &at(&server.url), &check, &body(), &hold, 41)
        .await
        .expect("pushed");
    assert!(again.skipped);
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn a_task_at_the_producer_limit_is_pushed_to_without_an_id() {
    let server = Scripted::start(|_, req| {
        if req.header("x-firehose-producer-id").is_some() {
            json(
                StatusCode::FORBIDDEN,
                r#"{"error":"Too many individual producer IDs for this firehose.  Max is 10000"}"#,
            )
        } else {
            json(StatusCode::OK, r#"{"eventCount":2}"#)
        }
    })
    .await;
    let client = fast();
    let check = Check::default();
    let hold = Ownership::new("", PartitionId::new("t", 0));
    let reply = client
        .push_as(&target(), &at(&server.url), &check, &body(), &hold, 7)
        .await
        .expect("pushed without an id");
    assert_eq!((reply.event_count, reply.producer_id), (2, None));
    assert_eq!(server.count(), 2);
    // Remembered: the next push (of either kind) goes without an id at once.
    let next = client
        .push(&target(), &at(&server.url), &check, &body())
        .await
        .expect("pushed");
    assert_eq!(next.producer_id, None);
    assert_eq!(server.count(), 3);
    assert_eq!(server.get(2).header("x-firehose-producer-id"), None);

    // Any other 403 is refused for good.
    let denied = Scripted::start(|_, _| json(StatusCode::FORBIDDEN, "")).await;
    let err = fast()
        .push(&target(), &at(&denied.url), &check, &body())
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ReceiverError::Rejected { status: 403, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_fenced_ownership_starts_no_new_attempt() {
    let server = Scripted::start(|_, _| json(StatusCode::SERVICE_UNAVAILABLE, "")).await;
    let hold = Ownership::new("", PartitionId::new("t", 0));
    let (client, task, locator, check, chunk) =
        (fast(), target(), at(&server.url), Check::default(), body());
    let push = client.push_as(&task, &locator, &check, &chunk, &hold, 3);
    // Let a few attempts fail, then fence: the loop gives up before the next one.
    let fence = async {
        while server.count() < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        hold.fence();
    };
    let (result, ()) = tokio::join!(push, fence);
    let err = result.expect_err("abandoned");
    assert!(matches!(err, ReceiverError::Abandoned { .. }), "{err}");
    let made = server.count();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.count(), made, "no attempt after the fence");
}
