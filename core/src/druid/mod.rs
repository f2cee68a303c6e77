//! Clients of Druid's indexing service: the Overlord (submit, status, shutdown), ZooKeeper
//! service discovery (Curator layout), task locators and the event receiver push client.

pub mod beam;
#[cfg(feature = "zookeeper")]
pub mod discovery;
pub mod event_shape;
pub mod locator;
pub mod overlord;
pub mod partitioner;
pub mod receiver;
pub mod task_spec;
#[cfg(test)]
mod testing;
pub mod tls;

/// Turns a Druid service name into its discovery key: Druid replaces `/` with `:`
/// (`druid/overlord` is announced as `druid:overlord`).
pub fn mangle_service_name(name: &str) -> String {
    name.replace('/', ":")
}

/// HTTP Basic credentials for the Overlord and the tasks.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name.
    pub user: String,
    /// Password.
    pub pass: String,
}

impl BasicAuth {
    /// Credentials from `druidBeam.basicAuthUser` / `basicAuthPass`; `None` when the user is
    /// empty, so no `Authorization` header with empty credentials is ever sent.
    pub fn from_properties(user: &str, pass: &str) -> Option<Self> {
        (!user.is_empty()).then(|| BasicAuth {
            user: user.to_owned(),
            pass: pass.to_owned(),
        })
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("pass", &"<redacted>")
            .finish()
    }
}

/// Where a task's HTTP server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Whether the port speaks TLS.
    pub tls: bool,
}

impl Endpoint {
    /// The endpoint of `host` given its plaintext and TLS ports (each `None` when off): the
    /// TLS port when `prefer_tls` (TLS towards Druid is on) and announced, else the plaintext
    /// one, else the TLS one; `None` without a port.
    pub fn choose(
        host: &str,
        port: Option<u16>,
        tls_port: Option<u16>,
        prefer_tls: bool,
    ) -> Option<Endpoint> {
        let (port, tls) = match (port, tls_port) {
            (_, Some(t)) if prefer_tls => (t, true),
            (Some(p), _) => (p, false),
            (None, Some(t)) => (t, true),
            (None, None) => return None,
        };
        Some(Endpoint {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// `http://host:port` (or `https://`).
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangles_slashes_and_builds_urls() {
        assert_eq!(mangle_service_name("druid/overlord"), "druid:overlord");
        let e = Endpoint {
            host: "::1".into(),
            port: 8100,
            tls: false,
        };
        assert_eq!(e.base_url(), "http://[::1]:8100");
        let both = |tls| Endpoint::choose("h", Some(80), Some(443), tls).map(|e| (e.port, e.tls));
        assert_eq!(both(false), Some((80, false)));
        assert_eq!(both(true), Some((443, true)));
        let plain_only = Endpoint::choose("h", Some(80), None, true).map(|e| e.tls);
        assert_eq!(plain_only, Some(false));
        let tls_only = Endpoint::choose("h", None, Some(443), false).map(|e| e.base_url());
        assert_eq!(tls_only.as_deref(), Some("https://h:443"));
        assert!(Endpoint::choose("h", None, None, true).is_none());
        assert!(BasicAuth::from_properties("", "").is_none());
        let auth = BasicAuth::from_properties("u", "p").expect("auth");
        assert!(!format!("{auth:?}").contains("\"p\""));
    }
}
