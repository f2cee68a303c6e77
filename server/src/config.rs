//! Server options: the original's `http.*` properties from the global `properties` section,
//! plus our own `http.bindAddress` and `http.maxBodyBytes`.
//!
//! | Property | Default | Honoured as |
//! |---|---|---|
//! | `http.port` | 8200 | TCP port (0 picks a free one) |
//! | `http.port.enable` | true | false turns plaintext HTTP off; refused unless HTTPS is on |
//! | `http.threads` | 40 | at most this many requests are handled at once; more wait |
//! | `http.idleTimeout` | PT5M | a connection with no bytes read or written for this long is closed; a value ≤ 0 means 30 s, Jetty's own default |
//! | `http.bindAddress` | 0.0.0.0 | address to listen on (new) |
//! | `http.maxBodyBytes` | 67108864 | largest request body, before and after gzip; larger answers 413 (new) |
//! | `https.port.enable` | false | serve HTTPS on `https.port` (8400) too |
//! | `https.certPath`, `https.keyPath` | none | PEM certificate chain and private key (new; required with HTTPS) |
//! | `https.keyStorePath` | none | refused: Java keystores are not read, convert to PEM |
//! | `http.responseShape` | full | `full` answers `received`, `sent`, `dropped`, `failed` and `droppedReasons`; `original` answers exactly the original's `{"result":{"received":N,"sent":M}}`, for clients that refuse unknown fields (new) |
//! | `http.basicAuth.user`, `http.basicAuth.pass` | none | HTTP Basic credentials required on every route but `GET /` and `GET /health` (new) |

use std::net::SocketAddr;
use std::time::Duration;

use tranquility::spec::{ConfigError, Properties, TranquilityConfig};

use crate::properties::ServerProperties;

use crate::auth::Credentials;
use crate::tls::TlsSettings;

/// What `http.idleTimeout` ≤ 0 means: Jetty's own connector default, 30 seconds.
pub fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}

/// How long a graceful stop waits for pending events before giving up on them.
pub fn default_drain_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The fields of a successful post's answer (`http.responseShape`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseShape {
    /// `received`, `sent`, `dropped`, `failed` and `droppedReasons` (the default).
    #[default]
    Full,
    /// Exactly the original's `{"result":{"received":N,"sent":M}}`.
    Original,
}

/// The server's options, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address and port to listen on (`http.bindAddress`, `http.port`).
    pub listen: SocketAddr,
    /// Requests handled at once (`http.threads`).
    pub max_concurrent_requests: usize,
    /// Connections idle longer than this are closed (`http.idleTimeout`).
    pub idle_timeout: Duration,
    /// Largest request body in bytes, compressed and decompressed (`http.maxBodyBytes`).
    pub max_body_bytes: usize,
    /// How long a graceful stop waits for pending events.
    pub drain_timeout: Duration,
    /// Whether plaintext HTTP is served on `listen` (`http.port.enable`).
    pub http_enabled: bool,
    /// HTTPS, when enabled (`https.*`).
    pub tls: Option<TlsSettings>,
    /// Credentials clients must present (`http.basicAuth.*`); `None` = open.
    pub basic_auth: Option<Credentials>,
    /// The fields of a successful post's answer (`http.responseShape`).
    pub response_shape: ResponseShape,
}

impl Default for ServerConfig {
    /// The options every property's default gives (the server's property table).
    fn default() -> Self {
        Self::from_properties(&Properties::new(), "(defaults)")
            .expect("the server's property defaults are valid")
    }
}

impl ServerConfig {
    /// The options of a configuration file's global `properties`.
    pub fn from_config(config: &TranquilityConfig) -> Result<Self, ConfigError> {
        Self::from_properties(config.global_properties(), config.source())
    }

    /// The options of a set of global properties; `file` names their source in errors.
    pub fn from_properties(p: &Properties, file: &str) -> Result<Self, ConfigError> {
        let invalid = |key: &str, value: &str, problem: &str| ConfigError::Invalid {
            file: file.to_string(),
            path: format!("properties[{}]", serde_json::Value::from(key)),
            value: serde_json::Value::from(value).to_string(),
            problem: problem.to_string(),
        };
        let server = ServerProperties::from_properties(p)?;
        if !server.http_port_enable && !server.https_port_enable {
            return Err(invalid(
                "http.port.enable",
                "false",
                "plaintext HTTP cannot be disabled unless HTTPS is enabled (https.port.enable)",
            ));
        }
        if !server.https_key_store_path.is_empty() {
            return Err(invalid(
                "https.keyStorePath",
                &server.https_key_store_path,
                "Java keystores are not read; convert it to PEM files (e.g. `openssl pkcs12 -in \
                 keystore.p12 -nokeys -out cert.pem` and `openssl pkcs12 -in keystore.p12 -nocerts \
                 -nodes -out key.pem`, after `keytool -importkeystore -deststoretype PKCS12` for a \
                 JKS) and set https.certPath and https.keyPath",
            ));
        }
        let basic_auth = match (
            server.http_basic_auth_user.is_empty(),
            server.http_basic_auth_pass.is_empty(),
        ) {
            (true, true) => None,
            (false, false) => Some(Credentials {
                user: server.http_basic_auth_user.clone(),
                pass: server.http_basic_auth_pass.clone(),
            }),
            (true, false) => {
                return Err(invalid(
                    "http.basicAuth.user",
                    "",
                    "http.basicAuth.pass is set, so a user is needed too",
                ))
            }
            (false, true) => {
                return Err(invalid(
                    "http.basicAuth.pass",
                    "",
                    "http.basicAuth.user is set, so a non-empty password is needed too",
                ))
            }
        };
        if server.http_basic_auth_user.contains(':') {
            return Err(invalid(
                "http.basicAuth.user",
                &server.http_basic_auth_user,
                "a Basic user name cannot contain ':'",
            ));
        }
        // Every interface by default, as the original listened, so remote clients keep working.
        let bind = server.http_bind_address;
        let max_body_bytes = server.http_max_body_bytes;
        let idle_timeout = match server.http_idle_timeout.fixed_millis() {
            Some(ms) if ms > 0 => Duration::from_millis(ms.unsigned_abs()),
            Some(_) => default_idle_timeout(),
            None => {
                return Err(invalid(
                    "http.idleTimeout",
                    &server.http_idle_timeout.to_string(),
                    "expected a fixed period such as PT5M (no months or years)",
                ))
            }
        };
        let tls = if server.https_port_enable {
            for (key, value) in [
                ("https.certPath", &server.https_cert_path),
                ("https.keyPath", &server.https_key_path),
            ] {
                if value.trim().is_empty() {
                    return Err(invalid(
                        key,
                        value,
                        "HTTPS (TLS) is enabled: give the PEM certificate chain (https.certPath) \
                         and private key (https.keyPath)",
                    ));
                }
            }
            if server.http_port_enable
                && server.http_port != 0
                && server.https_port == server.http_port
            {
                return Err(invalid(
                    "https.port",
                    &server.https_port.to_string(),
                    "HTTP and HTTPS cannot share a port",
                ));
            }
            Some(TlsSettings {
                listen: SocketAddr::new(bind, server.https_port),
                cert_path: server.https_cert_path.trim().into(),
                key_path: server.https_key_path.trim().into(),
            })
        } else {
            None
        };
        let response_shape = match p
            .one_of("http.responseShape", &["full", "original"])?
            .as_str()
        {
            "original" => ResponseShape::Original,
            _ => ResponseShape::Full,
        };
        Ok(Self {
            response_shape,
            http_enabled: server.http_port_enable,
            tls,
            basic_auth,
            listen: SocketAddr::new(bind, server.http_port),
            max_concurrent_requests: server.http_threads,
            idle_timeout,
            max_body_bytes,
            drain_timeout: default_drain_timeout(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_basic_auth_are_read() {
        let c = ServerConfig::from_properties(
            &props(&[
                ("http.bindAddress", "127.0.0.1"),
                ("http.port.enable", "false"),
                ("https.port.enable", "true"),
                ("https.port", "8443"),
                ("https.certPath", "/etc/t/cert.pem"),
                ("https.keyPath", "/etc/t/key.pem"),
                ("http.basicAuth.user", "ingest"),
                ("http.basicAuth.pass", "very-secret"),
            ]),
            "t",
        )
        .unwrap();
        assert!(!c.http_enabled);
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(tls.cert_path, std::path::PathBuf::from("/etc/t/cert.pem"));
        let auth = c.basic_auth.as_ref().unwrap();
        assert_eq!(auth.user, "ingest");
        assert_eq!(auth.pass.expose(), "very-secret");
        assert!(!format!("{c:?}").contains("very-secret"));
        let same_port = ServerConfig::from_properties(
            &props(&[
                ("http.port", "8443"),
                ("https.port.enable", "true"),
                ("https.port", "8443"),
                ("https.certPath", "c"),
                ("https.keyPath", "k"),
            ]),
            "t",
        );
        assert!(same_port.unwrap_err().to_string().contains("share a port"));
    }

    fn props(pairs: &[(&str, &str)]) -> Properties {
        let mut p = Properties::new();
        for (k, v) in pairs {
            p.insert(*k, *v);
        }
        p
    }

    #[test]
    fn defaults_match_the_original() {
        let c = ServerConfig::from_properties(&Properties::new(), "t").unwrap();
        assert_eq!(c.listen, "0.0.0.0:8200".parse().unwrap());
        assert_eq!(c.max_concurrent_requests, 40);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.max_body_bytes, 64 * 1024 * 1024);
        assert_eq!(c, ServerConfig::default());
    }

    #[test]
    fn every_property_is_read() {
        let c = ServerConfig::from_properties(
            &props(&[
                ("http.port", "0"),
                ("http.threads", "3"),
                ("http.idleTimeout", "PT10S"),
                ("http.bindAddress", "127.0.0.1"),
                ("http.maxBodyBytes", "1000"),
                ("http.responseShape", "Original"),
            ]),
            "t",
        )
        .unwrap();
        assert_eq!(c.response_shape, ResponseShape::Original);
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.max_concurrent_requests, 3);
        assert_eq!(c.idle_timeout, Duration::from_secs(10));
        assert_eq!(c.max_body_bytes, 1000);
        let c =
            ServerConfig::from_properties(&props(&[("http.idleTimeout", "PT0S")]), "t").unwrap();
        assert_eq!(c.idle_timeout, default_idle_timeout());
    }

    #[test]
    fn bad_values_name_the_property() {
        for (key, value, expect) in [
            ("http.bindAddress", "localhost:80", "IP address"),
            ("http.maxBodyBytes", "0", "positive"),
            ("http.maxBodyBytes", "lots", "positive"),
            ("http.responseShape", "lean", "full, original"),
            ("http.port", "70000", "http.port"),
            ("http.idleTimeout", "P1M", "fixed period"),
            ("https.port.enable", "true", "TLS"),
            ("http.port.enable", "false", "cannot be disabled"),
            ("https.keyStorePath", "ks.jks", "convert it to PEM"),
            ("http.basicAuth.user", "a:b", "cannot contain"),
            ("http.basicAuth.pass", "x", "user is needed"),
        ] {
            let mut pairs = vec![(key, value)];
            if key == "http.basicAuth.user" {
                pairs.push(("http.basicAuth.pass", "x"));
            }
            let e = ServerConfig::from_properties(&props(&pairs), "server.json")
                .unwrap_err()
                .to_string();
            let named = if key == "https.port.enable" {
                "https.certPath"
            } else {
                key
            };
            assert!(e.contains(named), "{key}: {e}");
            assert!(e.contains(expect), "{key}: {e}");
        }
    }
}
