//! HTTP Basic authentication toward Druid: druid-local requires credentials, the pipelines send
//! them from `druidBeam.basicAuthUser`/`basicAuthPass`; wrong ones fail every event with a
//! reason naming the 401, and no password ever reaches the logs or `Debug` output.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use druid_local::{BasicCredentials, DruidLocal, DruidLocalConfig};
use integration_tests::unique_name;
use serde_json::{json, Value};
use tranquility::beam::Outcome;
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;

const USER: &str = "tranquility";
const PASS: &str = "pw-Zq81-never-logged";
const WRONG: &str = "pw-Xk42-wrong-never-logged";

/// Every tracing line of this test binary, at TRACE level.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::ErrorKind::Other)?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_secret_in_logs() {
    let logs = String::from_utf8_lossy(&captured_logs().lock().expect("logs")).into_owned();
    assert!(!logs.is_empty(), "the capture saw no log line at all");
    for secret in [PASS, WRONG] {
        assert!(!logs.contains(secret), "a password reached the logs");
    }
}

async fn secured_druid() -> DruidLocal {
    DruidLocal::start(DruidLocalConfig {
        basic_auth: Some(BasicCredentials::new(USER, PASS)),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .expect("druid-local starts")
}

fn config(data_source: &str, auth: &[(&str, &str)]) -> TranquilityConfig {
    let mut props = serde_json::Map::new();
    props.insert("druidBeam.taskLocator".into(), json!("overlord"));
    props.insert("druidBeam.indexRetryPeriod".into(), json!("PT2S"));
    props.insert("druidBeam.firehoseRetryPeriod".into(), json!("PT2S"));
    for (k, v) in auth {
        props.insert((*k).into(), json!(v));
    }
    let text = json!({
        "dataSources": [{"spec": {
            "dataSchema": {
                "dataSource": data_source,
                "parser": {"type": "string", "parseSpec": {"format": "json",
                    "timestampSpec": {"column": "timestamp", "format": "millis"},
                    "dimensionsSpec": {"dimensions": []}}},
                "metricsSpec": [{"type": "count", "name": "count"}],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
            },
            "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
        }}],
        "properties": props
    });
    TranquilityConfig::from_str(&text.to_string(), "auth.json").expect("config")
}

fn pipelines(cfg: &TranquilityConfig, druid: &DruidLocal) -> Pipelines {
    Pipelines::builder()
        .coordinator(Arc::new(LocalCoordinator::new()))
        .overlord_url(druid.url())
        .build(cfg)
        .expect("pipelines")
}

fn events(n: usize) -> Vec<Bytes> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    (0..n)
        .map(|i| Bytes::from(json!({"timestamp": now, "i": i}).to_string()))
        .collect()
}

/// Events counted by druid-local, queried with `creds`; `None` when the query is refused.
async fn count(druid: &DruidLocal, ds: &str, creds: Option<(&str, &str)>) -> Option<i64> {
    let mut rb = reqwest::Client::new()
        .post(format!("{}/druid/v2", druid.url()))
        .json(
            &json!({"queryType": "timeseries", "dataSource": ds, "granularity": "all",
            "intervals": ["1000-01-01/3000-01-01"],
            "aggregations": [{"type": "longSum", "name": "n", "fieldName": "count"}]}),
        );
    if let Some((u, p)) = creds {
        rb = rb.basic_auth(u, Some(p));
    }
    let r = rb.send().await.expect("query request");
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.expect("query JSON");
    Some(
        v.pointer("/0/result/n")
            .and_then(Value::as_i64)
            .unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_credentials_deliver_every_event() {
    captured_logs();
    let druid = secured_druid().await;
    let ds = unique_name("auth-ok");
    let cfg = config(
        &ds,
        &[
            ("druidBeam.basicAuthUser", USER),
            ("druidBeam.basicAuthPass", PASS),
        ],
    );
    // The config and its typed views never print the password.
    let core =
        tranquility::spec::CoreProperties::from_properties(&cfg.data_sources()[0].properties)
            .expect("core properties");
    for text in [format!("{cfg:?}"), format!("{core:?}")] {
        assert!(!text.contains(PASS), "password in Debug output");
    }
    let p = pipelines(&cfg, &druid);
    let pipeline = p.get(&ds).expect("pipeline");
    let outcomes = pipeline.send_all(events(200)).await;
    let bad: Vec<_> = outcomes.iter().filter(|o| !o.is_sent()).take(3).collect();
    assert!(bad.is_empty(), "not all sent, e.g. {bad:?}");
    let t = pipeline.metrics().snapshot();
    assert_eq!(
        (t.received, t.sent, t.dropped_total(), t.failed),
        (200, 200, 0, 0)
    );

    // Without credentials the query is refused; with them it counts every event.
    assert_eq!(count(&druid, &ds, None).await, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while Instant::now() < deadline {
        n = count(&druid, &ds, Some((USER, PASS)))
            .await
            .expect("authorized query");
        if n >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 200);
    p.close().await;
    druid.shutdown().await;
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_credentials_fail_every_event_naming_the_401() {
    captured_logs();
    let druid = secured_druid().await;
    let cases: [(&str, Vec<(&str, &str)>); 2] = [
        (
            "auth-wrong",
            vec![
                ("druidBeam.basicAuthUser", USER),
                ("druidBeam.basicAuthPass", WRONG),
            ],
        ),
        ("auth-none", vec![]),
    ];
    for (prefix, auth) in cases {
        let ds = unique_name(prefix);
        let cfg = config(&ds, &auth);
        let p = pipelines(&cfg, &druid);
        let pipeline = p.get(&ds).expect("pipeline");
        let outcomes = pipeline.send_all(events(50)).await;
        for o in &outcomes {
            match o {
                Outcome::Failed(e) => {
                    let reason = e.to_string();
                    assert!(
                        reason.contains("401"),
                        "{prefix}: reason without the 401: {reason}"
                    );
                    assert!(!reason.contains(WRONG), "password in the failure reason");
                }
                other => panic!("{prefix}: expected a failure, got {other:?}"),
            }
        }
        let t = pipeline.metrics().snapshot();
        assert_eq!(
            (t.received, t.sent, t.dropped_total(), t.failed),
            (50, 0, 0, 50),
            "{prefix}: every event accounted for"
        );
        assert_eq!(count(&druid, &ds, Some((USER, PASS))).await, Some(0));
        p.close().await;
    }
    // Nothing was created on the Druid side.
    assert!(druid.shared().tasks.read().is_empty());
    druid.shutdown().await;
    assert_no_secret_in_logs();
}
