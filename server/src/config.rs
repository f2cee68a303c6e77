//! Server options: the original's `http.*` properties from the global `properties` section,
//! plus our own `http.bindAddress` and `http.maxBodyBytes`.
//!
//! | Property | Default | Honoured as |
//! |---|---|---|
//! | `http.port` | 8200 | TCP port (0 picks a free one) |
//! | `http.port.enable` | true | false is refused: plaintext HTTP is the only listener |
//! | `http.threads` | 40 | at most this many requests are handled at once; more wait |
//! | `http.idleTimeout` | PT5M | a connection with no bytes read or written for this long is closed; a value ≤ 0 means 30 s, Jetty's own default |
//! | `http.bindAddress` | 0.0.0.0 | address to listen on (new) |
//! | `http.maxBodyBytes` | 67108864 | largest request body, before and after gzip; larger answers 413 (new) |
//! | `https.port.enable` | false | true is refused: put a TLS proxy in front |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tranquility::spec::{ConfigError, Properties, ServerProperties, TranquilityConfig};

/// `http.bindAddress`: every interface, as the original listened, so existing remote clients
/// keep working. Set `127.0.0.1` to accept local clients only.
pub fn default_bind_address() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// `http.maxBodyBytes`: 64 MiB, far above the original's typical batches of a few thousand
/// events, small enough that one request cannot exhaust memory.
pub fn default_max_body_bytes() -> usize {
    64 * 1024 * 1024
}

/// What `http.idleTimeout` ≤ 0 means: Jetty's own connector default, 30 seconds.
pub fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}

/// How long a graceful stop waits for pending events before giving up on them.
pub fn default_drain_timeout() -> Duration {
    Duration::from_secs(60)
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(default_bind_address(), 8200),
            max_concurrent_requests: 40,
            idle_timeout: Duration::from_secs(300),
            max_body_bytes: default_max_body_bytes(),
            drain_timeout: default_drain_timeout(),
        }
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
        if !server.http_port_enable {
            return Err(invalid(
                "http.port.enable",
                "false",
                "plaintext HTTP is the only listener this server has; it cannot be disabled",
            ));
        }
        if server.https_port_enable {
            return Err(invalid(
                "https.port.enable",
                "true",
                "HTTPS is not built in; terminate TLS in a proxy in front of the server",
            ));
        }
        let bind = match p.get("http.bindAddress") {
            None => default_bind_address(),
            Some(text) => text.trim().parse().map_err(|_| {
                invalid(
                    "http.bindAddress",
                    text,
                    "expected an IP address such as 0.0.0.0 or 127.0.0.1",
                )
            })?,
        };
        let max_body_bytes = match p.get("http.maxBodyBytes") {
            None => default_max_body_bytes(),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    invalid(
                        "http.maxBodyBytes",
                        text,
                        "expected a positive whole number of bytes",
                    )
                })?,
        };
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
        Ok(Self {
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
            ]),
            "t",
        )
        .unwrap();
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
            ("http.port", "70000", "http.port"),
            ("http.idleTimeout", "P1M", "fixed period"),
            ("https.port.enable", "true", "TLS"),
            ("http.port.enable", "false", "cannot be disabled"),
        ] {
            let e = ServerConfig::from_properties(&props(&[(key, value)]), "server.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{key}: {e}");
            assert!(e.contains(expect), "{key}: {e}");
        }
    }
}
