//! druid-local requiring HTTP Basic credentials, answering like Druid's basic authenticator.

mod common;

use common::{iso_in, task};
use druid_local::{BasicCredentials, DruidLocal, DruidLocalConfig};
use serde_json::json;

const SERVICE: &str = "firehose:auth";

async fn start_secured() -> DruidLocal {
    DruidLocal::start(DruidLocalConfig {
        basic_auth: Some(BasicCredentials::new("admin", "s3cret")),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .expect("druid-local starts")
}

/// Sends a request with optional credentials; returns status, `WWW-Authenticate`, body.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    creds: Option<(&str, &str)>,
    body: &str,
) -> (u16, Option<String>, String) {
    let mut rb = client
        .request(method, url)
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some((u, p)) = creds {
        rb = rb.basic_auth(u, Some(p));
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    (status, challenge, r.text().await.expect("body"))
}

#[tokio::test]
async fn every_endpoint_but_health_requires_credentials() {
    let druid = start_secured().await;
    let base = druid.url();
    let client = reqwest::Client::new();
    let good = Some(("admin", "s3cret"));
    let spec = task("auth_task", "auth_ds", SERVICE, &iso_in(60), 1000).to_string();
    let q = json!({"queryType": "timeseries", "dataSource": "auth_ds", "granularity": "all",
        "intervals": ["2024-01-01/2024-01-02"], "aggregations": [{"type": "longSum", "name": "n", "fieldName": "count"}]})
    .to_string();
    let push = format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events");
    let events =
        json!([{"timestamp": "2024-01-01T10:00:00Z", "page": "p", "added": 1}]).to_string();
    use reqwest::Method as M;
    let secured = [
        (
            M::POST,
            format!("{base}/druid/indexer/v1/task"),
            spec.clone(),
        ),
        (
            M::GET,
            format!("{base}/druid/indexer/v1/task/auth_task/status"),
            String::new(),
        ),
        (
            M::GET,
            format!("{base}/druid/indexer/v1/runningTasks"),
            String::new(),
        ),
        (
            M::GET,
            format!("{base}/druid/indexer/v1/leader"),
            String::new(),
        ),
        (M::POST, push.clone(), events.clone()),
        (
            M::POST,
            format!("{base}/druid/worker/v1/chat/{SERVICE}/shutdown"),
            String::new(),
        ),
        (M::POST, format!("{base}/druid/v2"), q.clone()),
        (
            M::GET,
            format!("{base}/druid/v2/datasources"),
            String::new(),
        ),
        (M::GET, format!("{base}/status"), String::new()),
    ];
    for (m, url, body) in &secured {
        // No credentials: challenge and Druid's query-error body.
        let (s, ch, b) = call(&client, m.clone(), url, None, body).await;
        assert_eq!(s, 401, "{m} {url} without credentials");
        assert_eq!(ch.as_deref(), Some("Basic"), "{m} {url}");
        let v: serde_json::Value = serde_json::from_str(&b).expect("JSON body");
        assert_eq!(v["error"], "Unauthorized request.");
        // Wrong password and wrong user: bare 401, no challenge.
        for bad in [("admin", "wrong"), ("root", "s3cret")] {
            let (s, ch, _) = call(&client, m.clone(), url, Some(bad), body).await;
            assert_eq!(s, 401, "{m} {url} with {bad:?}");
            assert_eq!(ch, None);
        }
    }
    // Nothing got through: no task was created.
    assert!(druid.shared().tasks.read().is_empty());

    // Unsecured paths answer without credentials.
    let (s, _, b) = call(&client, M::GET, &format!("{base}/status/health"), None, "").await;
    assert_eq!((s, b.as_str()), (200, "true"));
    let (s, _, _) = call(
        &client,
        M::GET,
        &format!("{base}/druid/indexer/v1/isLeader"),
        None,
        "",
    )
    .await;
    assert_eq!(s, 200);

    // With credentials the whole path works: submit, push, query.
    let (s, _, b) = call(
        &client,
        M::POST,
        &format!("{base}/druid/indexer/v1/task"),
        good,
        &spec,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let mut pushed = false;
    for _ in 0..100 {
        let (s, _, b) = call(&client, M::POST, &push, good, &events).await;
        if s == 200 {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&b).expect("json")["eventCount"],
                1
            );
            pushed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(pushed, "chat handler never accepted the authenticated push");
    let (s, _, b) = call(&client, M::POST, &format!("{base}/druid/v2"), good, &q).await;
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v[0]["result"]["n"], 1, "{v}");
    druid.shutdown().await;
}

#[tokio::test]
async fn open_when_not_configured() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("starts");
    let client = reqwest::Client::new();
    let (s, _, _) = call(
        &client,
        reqwest::Method::GET,
        &format!("{}/druid/indexer/v1/runningTasks", druid.url()),
        None,
        "",
    )
    .await;
    assert_eq!(s, 200);
    druid.shutdown().await;
}
