//! Certificates for TLS tests, made on the spot with rcgen: a CA, a server certificate for
//! `127.0.0.1` and `localhost` signed by it, and a client certificate, as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// PEM files of one test PKI, in a folder of its own.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate (what a client trusts).
    pub ca: PathBuf,
    /// The server's certificate chain (leaf, then the CA).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA.
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
}

impl TestPki {
    /// Makes a CA named `name` and its certificates under `dir`.
    pub fn create(dir: &Path, name: &str) -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let leaf = |sans: Vec<String>, cn: &str| {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(sans).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params
                .signed_by(&key, &ca, &ca_key)
                .expect("leaf certificate");
            (cert, key)
        };
        let (server, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            &format!("{name} server"),
        );
        let (client, client_key) = leaf(Vec::new(), &format!("{name} client"));
        let write = |file: &str, text: String| {
            let path = dir.join(format!("{name}-{file}"));
            std::fs::write(&path, text).expect("write a PEM file");
            path
        };
        TestPki {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("server.pem", format!("{}{}", server.pem(), ca.pem())),
            server_key: write("server-key.pem", server_key.serialize_pem()),
            client_cert: write("client.pem", client.pem()),
            client_key: write("client-key.pem", client_key.serialize_pem()),
        }
    }
}
