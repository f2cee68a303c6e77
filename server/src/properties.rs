//! The Tranquility Server's properties: its table (registered with the core's loader) and
//! the typed view of the global section.

use std::net::IpAddr;
use tranquility::spec::properties::{
    Kind::{Bool, Int, List, OneOf, Period as Per, Text},
    PropertyDef, PropertyTable,
    Scope::{GlobalOnly, GlobalRead},
    PROPERTY_TABLES,
};

use tranquility::spec::{ConfigError, Properties, Secret};
use tranquility::time::Period;

/// The server's properties (process level), with their defaults.
#[rustfmt::skip]
pub const SERVER_PROPERTIES: &[PropertyDef] = &[
    PropertyDef::new("http.port", Some("8200"), GlobalOnly, Int, "plaintext HTTP port"),
    PropertyDef::new("http.port.enable", Some("true"), GlobalRead, Bool, "serve plaintext HTTP"),
    PropertyDef::new("http.threads", Some("40"), GlobalOnly, Int, "maximum HTTP worker threads"),
    PropertyDef::new("http.idleTimeout", Some("PT5M"), GlobalOnly, Per, "idle connection timeout (<= 0 keeps the default)"),
    PropertyDef::new("http.bindAddress", Some("0.0.0.0"), GlobalOnly, Text, "address the server listens on (127.0.0.1 = local clients only)"),
    PropertyDef::new("http.maxBodyBytes", Some("67108864"), GlobalOnly, Int, "largest request body in bytes, compressed and decompressed"),
    PropertyDef::new("http.responseShape", Some("full"), GlobalOnly, OneOf(&["full", "original"]), "success body: full adds dropped, failed and droppedReasons; original is exactly {\"result\":{\"received\",\"sent\"}} (our addition)"),
    PropertyDef::new("http.basicAuth.user", Some(""), GlobalOnly, Text, "HTTP Basic user every route but GET / and /health requires (empty = open; our addition)"),
    PropertyDef::new("http.basicAuth.pass", Some(""), GlobalOnly, Text, "HTTP Basic password for http.basicAuth.user (our addition)"),
    PropertyDef::new("https.port", Some("8400"), GlobalRead, Int, "TLS port"),
    PropertyDef::new("https.port.enable", Some("false"), GlobalRead, Bool, "serve HTTPS"),
    PropertyDef::new("https.keyStorePath", Some(""), GlobalRead, Text, "Java keystore with the server certificate: refused, convert it to PEM for https.certPath/https.keyPath"),
    PropertyDef::new("https.certPath", Some(""), GlobalRead, Text, "PEM file with the HTTPS certificate chain, leaf first (our addition)"),
    PropertyDef::new("https.keyPath", Some(""), GlobalRead, Text, "PEM file with the HTTPS private key: PKCS#8, PKCS#1 or SEC1 (our addition)"),
    PropertyDef::new("https.keyStoreType", Some(""), GlobalRead, Text, "keystore type (empty = default)"),
    PropertyDef::new("https.keyStorePassword", Some(""), GlobalRead, Text, "keystore password"),
    PropertyDef::new("https.certAlias", Some(""), GlobalRead, Text, "certificate alias in the keystore"),
    PropertyDef::new("https.keyManagerFactoryAlgorithm", Some(""), GlobalRead, Text, "key manager algorithm (empty = default)"),
    PropertyDef::new("https.keyManagerPassword", Some(""), GlobalRead, Text, "key password"),
    PropertyDef::new("https.includeCipherSuites", Some(""), GlobalRead, List, "cipher suites to allow (empty = defaults)"),
    PropertyDef::new("https.excludeCipherSuites", Some(""), GlobalRead, List, "cipher suites to refuse"),
    PropertyDef::new("https.includeProtocols", Some(""), GlobalRead, List, "TLS protocols to allow (empty = defaults)"),
    PropertyDef::new("https.excludeProtocols", Some(""), GlobalRead, List, "TLS protocols to refuse"),
];

// linkme puts the table in a link section, which the unsafe_code lint flags.
#[allow(unsafe_code)]
#[linkme::distributed_slice(PROPERTY_TABLES)]
static SERVER_TABLE: PropertyTable = PropertyTable {
    owner: "tranquility-server",
    rows: SERVER_PROPERTIES,
    prefixes: &[],
};

/// The Tranquility Server's process-level properties (global section), typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProperties {
    /// `http.port`.
    pub http_port: u16,
    /// `http.port.enable`.
    pub http_port_enable: bool,
    /// `https.port`.
    pub https_port: u16,
    /// `https.port.enable`.
    pub https_port_enable: bool,
    /// `https.keyStorePath` (refused by the server: Java keystores are not read).
    pub https_key_store_path: String,
    /// `https.certPath`: PEM certificate chain (empty = none).
    pub https_cert_path: String,
    /// `https.keyPath`: PEM private key (empty = none).
    pub https_key_path: String,
    /// `http.basicAuth.user` (empty = no authentication).
    pub http_basic_auth_user: String,
    /// `http.basicAuth.pass`.
    pub http_basic_auth_pass: Secret,
    /// `https.keyStoreType`.
    pub https_key_store_type: String,
    /// `https.keyStorePassword`.
    pub https_key_store_password: Secret,
    /// `https.certAlias`.
    pub https_cert_alias: String,
    /// `https.keyManagerFactoryAlgorithm`.
    pub https_key_manager_factory_algorithm: String,
    /// `https.keyManagerPassword`.
    pub https_key_manager_password: Secret,
    /// `https.includeCipherSuites`.
    pub https_include_cipher_suites: Vec<String>,
    /// `https.excludeCipherSuites`.
    pub https_exclude_cipher_suites: Vec<String>,
    /// `https.includeProtocols`.
    pub https_include_protocols: Vec<String>,
    /// `https.excludeProtocols`.
    pub https_exclude_protocols: Vec<String>,
    /// `http.threads`.
    pub http_threads: usize,
    /// `http.idleTimeout`.
    pub http_idle_timeout: Period,
    /// `http.bindAddress`.
    pub http_bind_address: IpAddr,
    /// `http.maxBodyBytes`.
    pub http_max_body_bytes: usize,
}

impl ServerProperties {
    /// Reads the server properties from the global section.
    pub fn from_properties(p: &Properties) -> Result<Self, ConfigError> {
        Ok(Self {
            http_port: p.int_in("http.port", 0, 65_535)? as u16,
            http_port_enable: p.bool("http.port.enable")?,
            https_port: p.int_in("https.port", 0, 65_535)? as u16,
            https_port_enable: p.bool("https.port.enable")?,
            https_key_store_path: p.string("https.keyStorePath")?,
            https_cert_path: p.string("https.certPath")?,
            https_key_path: p.string("https.keyPath")?,
            http_basic_auth_user: p.string("http.basicAuth.user")?,
            http_basic_auth_pass: p.secret("http.basicAuth.pass")?,
            https_key_store_type: p.string("https.keyStoreType")?,
            https_key_store_password: p.secret("https.keyStorePassword")?,
            https_cert_alias: p.string("https.certAlias")?,
            https_key_manager_factory_algorithm: p.string("https.keyManagerFactoryAlgorithm")?,
            https_key_manager_password: p.secret("https.keyManagerPassword")?,
            https_include_cipher_suites: p.list("https.includeCipherSuites")?,
            https_exclude_cipher_suites: p.list("https.excludeCipherSuites")?,
            https_include_protocols: p.list("https.includeProtocols")?,
            https_exclude_protocols: p.list("https.excludeProtocols")?,
            http_threads: p.int_in("http.threads", 1, 100_000)? as usize,
            http_idle_timeout: p.period("http.idleTimeout")?,
            http_bind_address: p.parse_with("http.bindAddress", |s| {
                s.trim()
                    .parse()
                    .map_err(|_| "expected an IP address such as 0.0.0.0 or 127.0.0.1".into())
            })?,
            http_max_body_bytes: p.parse_with("http.maxBodyBytes", |s| {
                s.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "expected a positive whole number of bytes".into())
            })?,
        })
    }
}

impl Default for ServerProperties {
    /// The table's defaults.
    fn default() -> Self {
        Self::from_properties(&Properties::new()).expect("the server's defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_table() {
        let s = ServerProperties::default();
        assert_eq!(
            (s.http_port, s.http_threads, s.https_port),
            (8200, 40, 8400)
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut p = Properties::new();
        p.insert("https.keyStorePassword", "hunter2-ks");
        p.insert("https.keyManagerPassword", "hunter2-km");
        p.insert("http.basicAuth.pass", "hunter2-http");
        let server = ServerProperties::from_properties(&p).unwrap();
        assert_eq!(server.http_basic_auth_pass.expose(), "hunter2-http");
        let text = format!("{server:?}");
        assert!(!text.contains("hunter2"), "secret in {text}");
    }
}
