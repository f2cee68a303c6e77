//! Clients of Druid's indexing service: the Overlord (submit, status, shutdown), ZooKeeper
//! service discovery (Curator layout), task locators and the event receiver push client.

pub mod beam;
pub mod discovery;
pub mod locator;
pub mod overlord;
pub mod partitioner;
pub mod receiver;
pub mod task_spec;
#[cfg(test)]
mod testing;

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
        assert!(BasicAuth::from_properties("", "").is_none());
        let auth = BasicAuth::from_properties("u", "p").expect("auth");
        assert!(!format!("{auth:?}").contains("\"p\""));
    }
}
