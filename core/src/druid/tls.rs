//! TLS towards Druid (`druid.tls.*`): the client side of the Overlord and task connections.
//!
//! With `druid.tls.enable=true` every connection to Druid may use HTTPS: the TLS port is
//! preferred where Druid announces one (`sslPort`, `tlsPort`) and `https://` Overlord URLs
//! work. Trust comes from `druid.tls.trustStorePath`, a PEM file of CA certificates (Java
//! keystores are refused with the command that converts them), or, when empty, the public
//! web roots. `druid.tls.protocol` caps the version as Java's `SSLContext` names do
//! (`TLSv1.2` = TLS 1.2 only, `TLSv1.3` or `TLS` = 1.2 and 1.3). A client certificate
//! (`druid.tls.certPath`, `druid.tls.keyPath`, PEM) is our addition, for a Druid that requires
//! one. With TLS off, an endpoint reachable only over TLS fails with an error saying so.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::spec::CoreProperties;

/// Why the TLS settings cannot be used; each names the property at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// The trust store is missing, unreadable, of a format not read, or holds no certificate.
    #[error("druid.tls.trustStorePath {path}: {reason}")]
    TrustStore {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The client certificate or key is missing or unreadable, or only one of them is set.
    #[error("{key} {path}: {reason}")]
    ClientCert {
        /// The property.
        key: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// `druid.tls.protocol` names a version rustls does not speak.
    #[error("druid.tls.protocol {0:?}: expected TLSv1.2, TLSv1.3 or TLS (TLS 1.0, 1.1 and SSL are not supported)")]
    Protocol(String),
    /// rustls refused the settings (e.g. a key that does not match its certificate).
    #[error("TLS towards Druid: {0}")]
    Rustls(String),
}

/// The TLS client settings for Druid: off, or a rustls configuration. Cheap to clone.
#[derive(Clone, Default)]
pub struct DruidTls {
    config: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for DruidTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DruidTls")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl DruidTls {
    /// TLS off: plain HTTP only.
    pub fn off() -> Self {
        DruidTls::default()
    }

    /// The settings of `druid.tls.*` (off unless `druid.tls.enable`).
    pub fn from_properties(p: &CoreProperties) -> Result<Self, TlsError> {
        if !p.tls_enable {
            return Ok(DruidTls::off());
        }
        let roots = trust_roots(p.tls_trust_store_path.trim(), p.tls_trust_store_type.trim())?;
        let algorithm = p.tls_trust_store_algorithm.trim();
        if !matches!(
            algorithm.to_ascii_uppercase().as_str(),
            "" | "PKIX" | "SUNX509"
        ) {
            tracing::warn!(
                "druid.tls.trustStoreAlgorithm {algorithm:?} is ignored: certificates are \
                 checked as PKIX (WebPKI) does"
            );
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions(&p.tls_protocol)?)
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match client_identity(p.tls_cert_path.trim(), p.tls_key_path.trim())? {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError::Rustls(format!("druid.tls.certPath/keyPath: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        Ok(DruidTls {
            config: Some(Arc::new(config)),
        })
    }

    /// Whether TLS is on (`druid.tls.enable`).
    pub fn is_enabled(&self) -> bool {
        self.config.is_some()
    }

    /// An HTTP client builder with these settings (reqwest's defaults when off).
    pub(crate) fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        match &self.config {
            Some(config) => builder.use_preconfigured_tls(rustls::ClientConfig::clone(config)),
            None => builder,
        }
    }
}

/// The versions a Java `SSLContext` protocol name enables, as far as rustls speaks them.
fn versions(
    protocol: &str,
) -> Result<&'static [&'static rustls::SupportedProtocolVersion], TlsError> {
    static TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    static BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    match protocol.trim().to_ascii_uppercase().as_str() {
        "" | "TLSV1.3" | "TLS" => Ok(BOTH),
        "TLSV1.2" => Ok(TLS12),
        _ => Err(TlsError::Protocol(protocol.to_owned())),
    }
}

/// The CA certificates to trust: the PEM trust store, or the public web roots when none.
fn trust_roots(path: &str, kind: &str) -> Result<rustls::RootCertStore, TlsError> {
    if path.is_empty() {
        return Ok(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    }
    let fail = |reason: String| TlsError::TrustStore {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let format = keystore_format(&bytes, kind);
    if let Some(how) = format.and_then(|f| conversion(f, path)) {
        return Err(fail(how));
    }
    if let Some(other) = format.filter(|f| *f != "PEM") {
        return Err(fail(format!(
            "trust stores of type {other} are not read; convert it to PEM with `keytool -list \
             -rfc -keystore {path} -storetype {other} > truststore.pem` and set \
             druid.tls.trustStorePath to that file"
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| fail(format!("not a PEM file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("a certificate cannot be used as a CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail(
            "no PEM CERTIFICATE block found; expected the CA certificates Druid's \
             certificates are signed with"
                .into(),
        ));
    }
    Ok(roots)
}

/// The store's format: `druid.tls.trustStoreType` if set, else read from its first bytes.
fn keystore_format(bytes: &[u8], kind: &str) -> Option<&'static str> {
    match kind.to_ascii_uppercase().as_str() {
        "PEM" => Some("PEM"),
        "JKS" => Some("JKS"),
        "PKCS12" | "P12" | "PFX" => Some("PKCS12"),
        "JCEKS" => Some("JCEKS"),
        "BKS" => Some("BKS"),
        "" if bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) => Some("JKS"),
        "" if bytes.starts_with(&[0xCE, 0xCE, 0xCE, 0xCE]) => Some("JCEKS"),
        // A DER SEQUENCE: what a PKCS#12 file is.
        "" if bytes.first() == Some(&0x30) => Some("PKCS12"),
        "" => Some("PEM"),
        _ => None,
    }
}

/// For a Java keystore: why it is refused and the command that converts it to PEM.
fn conversion(format: &str, path: &str) -> Option<String> {
    match format {
        "JKS" => Some(format!(
            "a Java KeyStore (JKS) is not read; convert its trusted certificates to PEM with \
             `keytool -list -rfc -keystore {path} -storepass <password> > truststore.pem` and \
             set druid.tls.trustStorePath to that file"
        )),
        "PKCS12" => Some(format!(
            "a PKCS#12 store is not read; convert its certificates to PEM with `openssl pkcs12 \
             -in {path} -nokeys -out truststore.pem` (or `keytool -list -rfc -keystore {path} \
             -storetype PKCS12 > truststore.pem`) and set druid.tls.trustStorePath to that file"
        )),
        _ => None,
    }
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client certificate chain and key, when both are set.
fn client_identity(cert: &str, key: &str) -> Result<Option<Identity>, TlsError> {
    let fail = |key: &'static str, path: &str, reason: String| TlsError::ClientCert {
        key,
        path: path.to_owned(),
        reason,
    };
    match (cert.is_empty(), key.is_empty()) {
        (true, true) => return Ok(None),
        (false, true) => {
            return Err(fail(
                "druid.tls.keyPath",
                key,
                "druid.tls.certPath is set, so its private key is needed too".into(),
            ))
        }
        (true, false) => {
            return Err(fail(
                "druid.tls.certPath",
                cert,
                "druid.tls.keyPath is set, so its certificate is needed too".into(),
            ))
        }
        (false, false) => {}
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(Path::new(cert))
        .map_err(|e| fail("druid.tls.certPath", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail("druid.tls.certPath", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(fail(
            "druid.tls.certPath",
            cert,
            "no PEM CERTIFICATE block found".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(Path::new(key)).map_err(|e| {
        fail(
            "druid.tls.keyPath",
            key,
            format!("{e} (expected a PKCS#8, PKCS#1 or SEC1 PEM private key)"),
        )
    })?;
    Ok(Some((certs, private)))
}

/// Whether a transport error's text says a certificate was refused, by us or by Druid.
pub(crate) fn is_certificate_problem(message: &str) -> bool {
    message.contains("invalid peer certificate")
        || message.contains("CertificateRequired")
        || message.contains("BadCertificate")
        || message.contains("UnknownCA")
}

/// A hint for a certificate problem, to append to its error text.
pub(crate) fn hint(message: &str) -> Option<&'static str> {
    is_certificate_problem(message).then_some(
        "check druid.tls.trustStorePath: it must hold the CA that signed Druid's certificate \
         for the host name or address used; if Druid requires client certificates, check \
         druid.tls.certPath and druid.tls.keyPath too",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Properties;

    fn tls(pairs: &[(&str, &str)]) -> Result<DruidTls, TlsError> {
        let mut p = Properties::new();
        p.insert("druid.tls.enable", "true");
        for (k, v) in pairs {
            p.insert(*k, *v);
        }
        DruidTls::from_properties(&CoreProperties::from_properties(&p).unwrap())
    }

    #[test]
    fn off_unless_enabled_and_public_roots_without_a_trust_store() {
        let p = CoreProperties::from_properties(&Properties::new()).unwrap();
        assert!(!DruidTls::from_properties(&p).unwrap().is_enabled());
        assert!(tls(&[]).unwrap().is_enabled());
    }

    #[test]
    fn java_keystores_are_refused_with_the_command_that_converts_them() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let jks = dir.join("truststore.jks");
        std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
        let e = tls(&[("druid.tls.trustStorePath", jks.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("druid.tls.trustStorePath") && e.contains("keytool -list -rfc"),
            "{e}"
        );
        let p12 = dir.join("truststore.p12");
        std::fs::write(&p12, [0x30, 0x82, 0x01, 0x00]).unwrap();
        let e = tls(&[("druid.tls.trustStorePath", p12.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("openssl pkcs12") && e.contains("-nokeys"), "{e}");
        let e = tls(&[
            ("druid.tls.trustStorePath", p12.to_str().unwrap()),
            ("druid.tls.trustStoreType", "BKS"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("BKS") && e.contains("keytool"), "{e}");
    }

    #[test]
    fn bad_files_protocols_and_half_identities_name_the_property() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let e = tls(&[("druid.tls.trustStorePath", empty.to_str().unwrap())]).unwrap_err();
        assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");
        let e = tls(&[("druid.tls.trustStorePath", "/no/such/ca.pem")]).unwrap_err();
        assert!(e.to_string().contains("/no/such/ca.pem"), "{e}");
        let e = tls(&[("druid.tls.protocol", "TLSv1.1")]).unwrap_err();
        assert!(e.to_string().contains("druid.tls.protocol"), "{e}");
        assert!(tls(&[("druid.tls.protocol", "TLSv1.3")]).is_ok());
        let e = tls(&[("druid.tls.certPath", "/c.pem")]).unwrap_err();
        assert!(e.to_string().contains("druid.tls.keyPath"), "{e}");
    }

    #[test]
    fn certificate_problems_get_a_hint() {
        assert!(hint("error sending request: invalid peer certificate: UnknownIssuer").is_some());
        assert!(hint("received fatal alert: CertificateRequired").is_some());
        assert!(hint("connection refused").is_none());
    }
}
