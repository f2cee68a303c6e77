//! HTTPS with a PEM certificate and HTTP Basic authentication of clients, over real sockets.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use tranquility::spec::Secret;
use tranquility_server::auth::Credentials;
use tranquility_server::tls::TlsSettings;
use tranquility_server::{Server, ServerConfig};

const USER: &str = "ingest";
const PASS: &str = "correct horse: battery";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A self-signed certificate for 127.0.0.1 written as PEM files; returns (dir, cert, key, cert PEM).
fn self_signed() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let pem = cert.cert.pem();
    std::fs::write(&cert_path, &pem).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (dir, cert_path, key_path, pem)
}

fn secured_config(cert_path: PathBuf, key_path: PathBuf) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert_path,
            key_path,
        }),
        basic_auth: Some(Credentials {
            user: USER.into(),
            pass: Secret::new(PASS),
        }),
        ..ServerConfig::default()
    }
}

fn body() -> String {
    format!(r#"[{{"timestamp":{}}},{{"timestamp":{}}}]"#, now(), now())
}

#[tokio::test]
async fn https_and_basic_auth_guard_every_route_but_health() {
    let (_dir, cert_path, key_path, pem) = self_signed();
    let (state, wiki, _) = common::state(secured_config(cert_path, key_path));
    let server = Server::bind(state).await.unwrap();
    let http_addr = server.local_addr().unwrap();
    let https_addr = server.tls_local_addr().unwrap().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let post = |base: String, creds: Option<(&'static str, &'static str)>| {
        let mut rb = client
            .post(format!("{base}/v1/post/wiki?async=true"))
            .header("content-type", "application/json")
            .body(body());
        if let Some((u, p)) = creds {
            rb = rb.basic_auth(u, Some(p));
        }
        rb.send()
    };
    let https = format!("https://{https_addr}");
    let http = format!("http://{http_addr}");

    // Liveness stays open, over both listeners.
    for base in [&https, &http] {
        for path in ["/health", "/"] {
            let r = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{base}{path}");
        }
    }
    // No or wrong credentials: 401 with the challenge, nothing handed in.
    for base in [&https, &http] {
        for creds in [None, Some((USER, "wrong")), Some(("other", PASS))] {
            let r = post(base.clone(), creds).await.unwrap();
            assert_eq!(r.status(), 401, "{base} {creds:?}");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Basic realm=\"tranquility\""
            );
        }
        let r = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = client.post(format!("{base}/health")).send().await.unwrap();
        assert_eq!(r.status(), 401, "only GET /health is open");
    }
    assert_eq!(
        wiki.pipeline.metrics().snapshot().received,
        0,
        "a rejected request ingested events"
    );

    // Right credentials over HTTPS: accepted and handed in.
    let r = post(https.clone(), Some((USER, PASS))).await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["result"]["received"], 2);
    assert_eq!(wiki.pipeline.metrics().snapshot().received, 2);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain_to_tls = client
        .get(format!("http://{https_addr}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain_to_tls.is_err(),
        "plain HTTP on the TLS port answered: {plain_to_tls:?}"
    );
    // And the TLS port keeps serving afterwards.
    let r = client.get(format!("{https}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    stop.send(()).unwrap();
    let reports = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let wiki_report = reports.iter().find(|r| r.name == "wiki").unwrap();
    assert_eq!((wiki_report.tally.received, wiki_report.tally.sent), (2, 2));
    assert_eq!(wiki.sent_texts().len(), 2);
}

#[tokio::test]
async fn https_only_and_bad_pem_files() {
    let (_dir, cert_path, key_path, pem) = self_signed();
    let mut config = secured_config(cert_path.clone(), key_path.clone());
    config.http_enabled = false;
    config.basic_auth = None;
    let (state, _, _) = common::state(config);
    let server = Server::bind(state).await.unwrap();
    assert!(server.local_addr().is_err(), "no plaintext listener");
    let https_addr = server.tls_local_addr().unwrap().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = client
        .post(format!("https://{https_addr}/v1/post/wiki?async=true"))
        .header("content-type", "application/json")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "open without http.basicAuth.*");
    // A client that does not trust the certificate refuses the connection.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(untrusting
        .get(format!("https://{https_addr}/health"))
        .send()
        .await
        .is_err());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // Missing or swapped files fail at bind, naming the property.
    let missing = secured_config(cert_path.with_file_name("nope.pem"), key_path.clone());
    let e = Server::bind(common::state(missing).0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("https.certPath"), "{e}");
    let swapped = secured_config(key_path.clone(), cert_path.clone());
    let e = Server::bind(common::state(swapped).0)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("https.certPath") || e.contains("https.keyPath"),
        "{e}"
    );
}
