//! druid-local serving HTTPS only (`--tls-cert`/`--tls-key`), optionally requiring client
//! certificates (`--tls-client-ca`), and reporting its port as Druid's TLS port.

mod common;

use common::{iso_in, task};
use druid_local::{DruidLocal, DruidLocalConfig, TlsFiles};
use reqwest::{Certificate, Identity};
use serde_json::Value;
use test_support::certs::TestPki;

fn trusting(pki: &TestPki) -> reqwest::ClientBuilder {
    let ca = Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
}

async fn start(pki: &TestPki, client_ca: bool) -> DruidLocal {
    DruidLocal::start(DruidLocalConfig {
        tls: Some(TlsFiles {
            cert: pki.server_cert.clone(),
            key: pki.server_key.clone(),
            client_ca: client_ca.then(|| pki.ca.clone()),
        }),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .expect("druid-local starts with TLS")
}

#[tokio::test]
async fn serves_https_and_reports_the_tls_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "dl");
    let druid = start(&pki, false).await;
    let base = druid.url();
    assert!(base.starts_with("https://"), "{base}");
    let client = trusting(&pki).build().unwrap();
    let health = client
        .get(format!("{base}/status/health"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    // Plain HTTP on that port gets no answer.
    let plain = format!("http://127.0.0.1:{}/status/health", druid.port());
    assert!(reqwest::get(&plain).await.is_err());
    // A task's location names the TLS port, with the plaintext one off, as Druid does.
    let spec = task("tls_task", "tls_ds", "firehose:tls", &iso_in(60), 1000);
    let created = client
        .post(format!("{base}/druid/indexer/v1/task"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text().await);
    let running: Value = client
        .get(format!("{base}/druid/indexer/v1/runningTasks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let location = &running[0]["location"];
    assert_eq!(location["port"], -1, "{running}");
    assert_eq!(location["tlsPort"], druid.port(), "{running}");
    druid.shutdown().await;
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "mtls");
    let druid = start(&pki, true).await;
    let url = format!("{}/status/health", druid.url());
    let anonymous = trusting(&pki).build().unwrap();
    assert!(anonymous.get(&url).send().await.is_err());
    let pem = [
        std::fs::read(&pki.client_cert).unwrap(),
        std::fs::read(&pki.client_key).unwrap(),
    ]
    .concat();
    let known = trusting(&pki)
        .identity(Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    assert!(known.get(&url).send().await.unwrap().status().is_success());
    druid.shutdown().await;
}
