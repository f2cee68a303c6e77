use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::*;
use crate::druid::testing::{json as json_response, Scripted};

fn fast(url: &str, auth: Option<BasicAuth>) -> OverlordClient {
    OverlordClient::new(
        OverlordEndpoint::Url(url.to_owned()),
        OverlordConfig {
            retry: RetryPolicy {
                period: Some(Duration::from_secs(2)),
                max_attempts: None,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(40),
            },
            request_timeout: Duration::from_secs(5),
            auth,
            max_redirects: 5,
        },
    )
}

fn task() -> Value {
    json!({"type":"index_realtime","id":"index_realtime_foo_2019-01-01T03:00:00.000Z_0_0"})
}

#[tokio::test]
async fn submit_retries_server_errors_then_returns_the_assigned_id() {
    let server = Scripted::start(|n, _| {
        if n < 2 {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        } else {
            json_response(StatusCode::OK, r#"{"task":"assigned-id"}"#)
        }
    })
    .await;
    let client = fast(&server.url, BasicAuth::from_properties("", ""));
    let id = client.submit_task(&task()).await.expect("submitted");
    assert_eq!(id, "assigned-id");
    assert_eq!(server.count(), 3);
    let last = server.get(2);
    assert_eq!(last.method, Method::POST);
    assert_eq!(last.path, "/druid/indexer/v1/task");
    assert_eq!(
        last.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&last.body).expect("json body"),
        task()
    );
    assert_eq!(last.header("authorization"), None, "no empty credentials");
}

#[tokio::test]
async fn follows_a_307_to_the_leader_keeping_body_and_credentials() {
    let leader = Scripted::start(|_, req| {
        let id = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        json_response(StatusCode::OK, &json!({ "task": id }).to_string())
    })
    .await;
    let target = format!("{}/druid/indexer/v1/task", leader.url);
    let standby = Scripted::start(move |_, _| {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, target.clone())],
        )
            .into_response()
    })
    .await;
    let client = fast(&standby.url, BasicAuth::from_properties("druid", "secret"));
    let id = client.submit_task(&task()).await.expect("submitted");
    assert_eq!(id, "index_realtime_foo_2019-01-01T03:00:00.000Z_0_0");
    assert_eq!(standby.count(), 1);
    assert_eq!(leader.count(), 1);
    let got = leader.get(0);
    assert_eq!(got.method, Method::POST);
    // base64("druid:secret")
    assert_eq!(
        got.header("authorization").as_deref(),
        Some("Basic ZHJ1aWQ6c2VjcmV0")
    );
}

#[tokio::test]
async fn a_400_is_permanent_and_carries_druids_body() {
    let server = Scripted::start(|_, _| {
        json_response(
            StatusCode::BAD_REQUEST,
            r#"{"error":"Task[x] already exists!"}"#,
        )
    })
    .await;
    let err = fast(&server.url, None)
        .submit_task(&task())
        .await
        .expect_err("400 fails");
    assert_eq!(server.count(), 1, "no retry of a 400");
    assert!(!err.is_retriable());
    assert!(matches!(err, OverlordError::SubmitTask { attempts: 1, .. }));
    assert_eq!(err.call_error().status(), Some(400));
    let text = err.to_string();
    assert!(text.contains("already exists"), "{text}");
    assert!(text.contains("index_realtime_foo"), "{text}");
}

#[tokio::test]
async fn transient_errors_give_up_after_the_retry_period() {
    let server = Scripted::start(|_, _| StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
    let client = OverlordClient::new(
        OverlordEndpoint::Url(server.url.clone()),
        OverlordConfig {
            retry: RetryPolicy {
                period: Some(Duration::from_millis(300)),
                max_attempts: None,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(40),
            },
            ..OverlordConfig::default()
        },
    );
    let err = client.running_tasks().await.expect_err("keeps failing");
    assert!(err.is_retriable());
    assert!(server.count() > 2, "retried: {}", server.count());
    assert!(matches!(err, OverlordError::RunningTasks { .. }));
}

#[tokio::test]
async fn connection_refused_is_a_transient_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let client = OverlordClient::new(
        OverlordEndpoint::Url(format!("http://127.0.0.1:{port}")),
        OverlordConfig {
            retry: RetryPolicy {
                period: Some(Duration::from_millis(100)),
                max_attempts: None,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(20),
            },
            ..OverlordConfig::default()
        },
    );
    let err = client.shutdown_task("t").await.expect_err("nobody listens");
    assert!(err.is_retriable());
    assert!(
        matches!(err.call_error(), CallError::Transport { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn status_reads_both_shapes_and_404_means_unknown() {
    let server = Scripted::start(|_, req| match req.path.as_str() {
        "/druid/indexer/v1/task/old/status" => json_response(
            StatusCode::OK,
            r#"{"task":"old","status":{"id":"old","status":"SUCCESS","duration":1234}}"#,
        ),
        "/druid/indexer/v1/task/new%2Fid/status" => json_response(
            StatusCode::OK,
            r#"{"task":"new/id","status":{"id":"new/id","statusCode":"RUNNING","status":"RUNNING",
               "runnerStatusCode":"RUNNING","duration":-1,
               "location":{"host":"mm1","port":8100,"tlsPort":-1},"errorMsg":null}}"#,
        ),
        "/druid/indexer/v1/task/gone13/status" => json_response(
            StatusCode::NOT_FOUND,
            r#"{"task":"gone13","status":null}"#,
        ),
        // Druid 0.13 to 0.2x: the task resource filter answers before the resource.
        "/druid/indexer/v1/task/gone21/status" => (
            StatusCode::BAD_REQUEST,
            "Cannot find any task with id: [gone21]",
        )
            .into_response(),
        // A 400 for another reason stays an error.
        "/druid/indexer/v1/task/bad/status" => (StatusCode::BAD_REQUEST, "Invalid taskId").into_response(),
        "/druid/indexer/v1/task/failed/status" => json_response(
            StatusCode::OK,
            r#"{"task":"failed","status":{"id":"failed","statusCode":"FAILED","errorMsg":"Shutdown request from user"}}"#,
        ),
        _ => json_response(StatusCode::NOT_FOUND, r#"{"task":"x"}"#),
    })
    .await;
    let client = fast(&server.url, None);
    let old = client.task_status("old").await.expect("ok").expect("known");
    assert_eq!(old.state, TaskState::Success);
    assert_eq!(old.duration_ms, Some(1234));
    assert_eq!(old.location, None);
    let new = client
        .task_status("new/id")
        .await
        .expect("ok")
        .expect("known");
    assert_eq!(new.state, TaskState::Running);
    let endpoint = new.location.and_then(|l| l.endpoint()).expect("located");
    assert_eq!(endpoint.base_url(), "http://mm1:8100");
    assert_eq!(client.task_status("gone13").await.expect("ok"), None);
    assert_eq!(client.task_status("unknown").await.expect("ok"), None);
    assert_eq!(client.task_status("gone21").await.expect("ok"), None);
    assert!(client.task_status("bad").await.is_err());
    let failed = client
        .task_status_once("failed")
        .await
        .expect("ok")
        .expect("known");
    assert_eq!(failed.state, TaskState::Failed);
    assert!(failed.state.is_complete());
    assert_eq!(
        failed.error_msg.as_deref(),
        Some("Shutdown request from user")
    );
}

#[tokio::test]
async fn running_tasks_and_shutdown() {
    let server = Scripted::start(|_, req| match req.path.as_str() {
        "/druid/indexer/v1/runningTasks" => json_response(
            StatusCode::OK,
            r#"[{"id":"a","location":{"host":"h1","port":8100}},
                {"id":"b","location":{"host":null,"port":-1,"tlsPort":-1}},
                {"id":"c","location":{"host":"h3","port":-1,"tlsPort":8300}},
                {"id":"d"}]"#,
        ),
        // Druid 28+: an unknown task is a plain-text 404; before, a 400 from the filter.
        "/druid/indexer/v1/task/gone28/shutdown" => (
            StatusCode::NOT_FOUND,
            "Cannot find any task with id: [gone28]",
        )
            .into_response(),
        "/druid/indexer/v1/task/gone21/shutdown" => (
            StatusCode::BAD_REQUEST,
            "Cannot find any task with id: [gone21]",
        )
            .into_response(),
        _ => json_response(StatusCode::OK, r#"{"task":"a"}"#),
    })
    .await;
    let client = fast(&server.url, None);
    // A task that is already gone needs no shutdown.
    client.shutdown_task("gone28").await.expect("gone is done");
    client.shutdown_task("gone21").await.expect("gone is done");
    let tasks = client.running_tasks().await.expect("listed");
    let ids: Vec<_> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    let endpoints: Vec<_> = tasks
        .iter()
        .map(|t| t.location.as_ref().and_then(TaskLocation::endpoint))
        .collect();
    assert_eq!(endpoints[0].as_ref().map(|e| e.port), Some(8100));
    assert_eq!(endpoints[1], None);
    assert_eq!(
        endpoints[2].as_ref().map(|e| (e.port, e.tls)),
        Some((8300, true))
    );
    assert_eq!(endpoints[3], None);
    client.shutdown_task("a").await.expect("shut down");
    let last = server.get(server.count() - 1);
    assert_eq!(last.method, Method::POST);
    assert_eq!(last.path, "/druid/indexer/v1/task/a/shutdown");
}

#[tokio::test]
async fn a_2xx_without_a_task_id_is_a_bad_response() {
    let server = Scripted::start(|_, _| json_response(StatusCode::OK, "{}")).await;
    let err = fast(&server.url, None)
        .submit_task(&task())
        .await
        .expect_err("no id");
    assert!(
        matches!(err.call_error(), CallError::BadResponse { .. }),
        "{err}"
    );
    assert!(!err.is_retriable());
}
