//! TLS towards Druid (`druid.tls.*`) against druid-local serving HTTPS only: pushes through
//! an https Overlord and https tasks, found through the Overlord or through ZooKeeper
//! (`sslPort`), client certificates, and clear failures for a wrong CA or TLS left off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig, TlsFiles};
use integration_tests::setup::{assert_all_sent, config, events, now_millis};
use integration_tests::{unique_name, ZooKeeper};
use serde_json::{json, Value};
use test_support::certs::TestPki;
use tranquility::beam::Outcome;
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;

const WAIT: Duration = Duration::from_secs(30);

async fn start_https(pki: &TestPki, zk: Option<String>, client_ca: bool) -> DruidLocal {
    DruidLocal::start(DruidLocalConfig {
        zk,
        tls: Some(TlsFiles {
            cert: pki.server_cert.clone(),
            key: pki.server_key.clone(),
            client_ca: client_ca.then(|| pki.ca.clone()),
        }),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .expect("druid-local serves HTTPS")
}

fn pipelines(cfg: &TranquilityConfig, overlord_url: Option<String>) -> Pipelines {
    let builder = Pipelines::builder().coordinator(Arc::new(LocalCoordinator::new()));
    match overlord_url {
        Some(url) => builder.overlord_url(url),
        None => builder,
    }
    .build(cfg)
    .expect("pipelines")
}

/// Rows of `ds` (its `count` metric) once they reach `expected`, asked over HTTPS (with the
/// client certificate when `client_cert`).
async fn wait_for_rows(
    pki: &TestPki,
    druid: &DruidLocal,
    client_cert: bool,
    ds: &str,
    expected: i64,
) -> i64 {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca);
    if client_cert {
        let pem = [
            std::fs::read(&pki.client_cert).unwrap(),
            std::fs::read(&pki.client_key).unwrap(),
        ]
        .concat();
        client = client.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    let client = client.build().unwrap();
    let query = json!({"queryType": "timeseries", "dataSource": ds, "granularity": "all",
        "intervals": ["1000-01-01/3000-01-01"],
        "aggregations": [{"type": "longSum", "name": "n", "fieldName": "count"}]});
    let deadline = Instant::now() + WAIT;
    loop {
        let answer: Value = client
            .post(format!("{}/druid/v2", druid.url()))
            .json(&query)
            .send()
            .await
            .expect("query over HTTPS")
            .json()
            .await
            .expect("query answer");
        let n = answer
            .pointer("/0/result/n")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if n >= expected || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn failure_text(outcomes: &[Outcome]) -> String {
    match outcomes.iter().find(|o| !o.is_sent()) {
        Some(Outcome::Failed(e)) => e.to_string(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_through_an_https_overlord_and_https_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "tls");
    let druid = start_https(&pki, None, false).await;
    assert!(druid.url().starts_with("https://"));
    let ds = unique_name("tls-overlord");
    let ca = pki.ca.to_str().unwrap();
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druidBeam.taskLocator", "overlord"),
            ("druid.tls.enable", "true"),
            ("druid.tls.trustStorePath", ca),
        ],
    );
    let pipelines = pipelines(&cfg, Some(druid.url()));
    let outcomes = pipelines
        .get(&ds)
        .unwrap()
        .send_all(events(200, now_millis(), "tls"))
        .await;
    assert_all_sent(&outcomes);
    assert_eq!(wait_for_rows(&pki, &druid, false, &ds, 200).await, 200);
    pipelines.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_the_announced_tls_ports() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "disco");
    let druid = start_https(&pki, Some(zk.connect_string()), false).await;
    let ds = unique_name("tls-discovery");
    let ca = pki.ca.to_str().unwrap();
    let connect = zk.connect_string();
    let cfg = config(
        &ds,
        "hour",
        &[
            ("zookeeper.connect", connect.as_str()),
            ("druid.tls.enable", "true"),
            ("druid.tls.trustStorePath", ca),
        ],
    );
    // The Overlord and the task's firehose are both found in ZooKeeper, with only sslPort.
    let pipelines_tls = pipelines(&cfg, None);
    let outcomes = pipelines_tls
        .get(&ds)
        .unwrap()
        .send_all(events(50, now_millis(), "disco"))
        .await;
    assert_all_sent(&outcomes);
    assert_eq!(wait_for_rows(&pki, &druid, false, &ds, 50).await, 50);
    pipelines_tls.close().await;

    // TLS left off: the TLS-only Overlord is refused with the property to set.
    let ds_off = unique_name("tls-off");
    let cfg = config(
        &ds_off,
        "hour",
        &[
            ("zookeeper.connect", connect.as_str()),
            ("druidBeam.indexRetryPeriod", "PT0S"),
        ],
    );
    let off = pipelines(&cfg, None);
    let outcomes = off
        .get(&ds_off)
        .unwrap()
        .send_all(events(1, now_millis(), "off"))
        .await;
    let text = failure_text(&outcomes);
    assert!(
        text.contains("reachable only over TLS") && text.contains("druid.tls.enable=true"),
        "{text}"
    );
    off.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_fails_naming_the_certificate_problem() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "right");
    let other = TestPki::create(dir.path(), "wrong");
    let druid = start_https(&pki, None, false).await;
    let ds = unique_name("tls-wrong-ca");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druidBeam.taskLocator", "overlord"),
            ("druid.tls.enable", "true"),
            ("druid.tls.trustStorePath", other.ca.to_str().unwrap()),
        ],
    );
    let pipelines = pipelines(&cfg, Some(druid.url()));
    let outcomes = pipelines
        .get(&ds)
        .unwrap()
        .send_all(events(3, now_millis(), "x"))
        .await;
    let text = failure_text(&outcomes);
    assert!(
        text.contains("invalid peer certificate")
            && text.contains("UnknownIssuer")
            && text.contains("druid.tls.trustStorePath"),
        "{text}"
    );
    let tally = pipelines.get(&ds).unwrap().metrics().snapshot();
    assert_eq!((tally.received, tally.failed), (3, 3));
    pipelines.close().await;

    // An https Overlord URL with TLS left off is refused when the pipelines are built.
    let cfg = config(&ds, "hour", &[("druidBeam.taskLocator", "overlord")]);
    let Err(err) = Pipelines::builder()
        .coordinator(Arc::new(LocalCoordinator::new()))
        .overlord_url(druid.url())
        .build(&cfg)
    else {
        panic!("an https Overlord URL with TLS off was accepted");
    };
    let err = err.to_string();
    assert!(err.contains("druid.tls.enable=true"), "{err}");
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_druid_requiring_client_certificates_gets_the_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "mtls");
    let druid = start_https(&pki, None, true).await;
    let ca = pki.ca.to_str().unwrap();
    let with_cert = |ds: &str, cert: bool| {
        let mut props = vec![
            ("druidBeam.taskLocator", "overlord"),
            ("druidBeam.indexRetryPeriod", "PT0S"),
            ("druid.tls.enable", "true"),
            ("druid.tls.trustStorePath", ca),
        ];
        if cert {
            props.push(("druid.tls.certPath", pki.client_cert.to_str().unwrap()));
            props.push(("druid.tls.keyPath", pki.client_key.to_str().unwrap()));
        }
        config(ds, "hour", &props)
    };
    let ds = unique_name("tls-client-cert");
    let pipelines_ok = pipelines(&with_cert(&ds, true), Some(druid.url()));
    let outcomes = pipelines_ok
        .get(&ds)
        .unwrap()
        .send_all(events(20, now_millis(), "m"))
        .await;
    assert_all_sent(&outcomes);
    assert_eq!(wait_for_rows(&pki, &druid, true, &ds, 20).await, 20);
    pipelines_ok.close().await;

    let ds = unique_name("tls-no-client-cert");
    let without = pipelines(&with_cert(&ds, false), Some(druid.url()));
    let outcomes = without
        .get(&ds)
        .unwrap()
        .send_all(events(1, now_millis(), "n"))
        .await;
    let text = failure_text(&outcomes);
    assert!(text.contains("druid.tls.certPath"), "{text}");
    without.close().await;
    druid.shutdown().await;
}
