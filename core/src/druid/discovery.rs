//! Curator service discovery, read side: the instances announced under
//! `<druid.discovery.curator.path>/<name>/<instance id>` as Curator `ServiceInstance` JSON.
//!
//! Druid announces the leading Overlord as `druid:overlord` and each task's receiver firehose
//! under its service name. Lookups are cached briefly so a hot path does not query ZooKeeper per
//! request; callers [`invalidate`](CuratorDiscovery::invalidate) after a failed call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::seq::IndexedRandom;
use serde::Deserialize;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::{mangle_service_name, Endpoint};
use crate::coord::{ZkConnection, ZkError};

/// One announced instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// The service name as announced (`druid:overlord`).
    pub name: String,
    /// The instance id (a UUID).
    pub id: String,
    /// Host (Druid's `druid.host`, without port).
    pub address: String,
    /// Plaintext port, if any.
    pub port: Option<u16>,
    /// TLS port, if any (`null` before Druid 0.11, `-1` when TLS is off).
    pub ssl_port: Option<u16>,
    /// When it was registered, in epoch milliseconds.
    pub registration_time_utc: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInstance {
    name: Option<String>,
    id: Option<String>,
    address: Option<String>,
    port: Option<i64>,
    ssl_port: Option<i64>,
    #[serde(rename = "registrationTimeUTC")]
    registration_time_utc: Option<i64>,
}

fn port(p: Option<i64>) -> Option<u16> {
    p.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)
}

impl ServiceInstance {
    /// Where to reach it: the plaintext port if announced (as the original client), else TLS.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let (port, tls) = match (self.port, self.ssl_port) {
            (Some(p), _) => (p, false),
            (None, Some(p)) => (p, true),
            (None, None) => return None,
        };
        Some(Endpoint {
            host: self.address.clone(),
            port,
            tls,
        })
    }

    /// Where to reach it with TLS towards Druid on or off: the TLS port first when `tls`.
    pub fn endpoint_for(&self, tls: bool) -> Option<Endpoint> {
        Endpoint::choose(&self.address, self.port, self.ssl_port, tls)
    }

    /// Parses Curator's JSON; `None` with a reason when it has no address or no port.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawInstance =
            serde_json::from_slice(bytes).map_err(|e| format!("not a ServiceInstance: {e}"))?;
        let address = raw.address.filter(|a| !a.is_empty()).ok_or("no address")?;
        let instance = ServiceInstance {
            name: raw.name.unwrap_or_default(),
            id: raw.id.unwrap_or_default(),
            address,
            port: port(raw.port),
            ssl_port: port(raw.ssl_port),
            registration_time_utc: raw.registration_time_utc,
        };
        if instance.port.is_none() && instance.ssl_port.is_none() {
            return Err("neither port nor sslPort".into());
        }
        Ok(instance)
    }
}

/// Discovery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    /// ZooKeeper could not be read.
    #[error(transparent)]
    ZooKeeper(#[from] ZkError),
    /// Nothing is announced under the name.
    #[error("no instances of '{service}' under {base_path} in ZooKeeper {connect}: {hint}")]
    NoInstances {
        /// The mangled service name.
        service: String,
        /// The discovery base path.
        base_path: String,
        /// The ZooKeeper connect string.
        connect: String,
        /// What probably is wrong.
        hint: &'static str,
    },
}

impl DiscoveryError {
    /// Whether looking again later may help (always: services come and go).
    pub fn is_retriable(&self) -> bool {
        match self {
            DiscoveryError::ZooKeeper(e) => e.is_retriable(),
            DiscoveryError::NoInstances { .. } => true,
        }
    }
}

type Cached = (Instant, Arc<Vec<ServiceInstance>>);

/// Reads Curator service discovery from ZooKeeper, with a short cache per service.
#[derive(Debug)]
pub struct CuratorDiscovery {
    conn: Arc<ZkConnection>,
    base_path: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl CuratorDiscovery {
    /// Discovery under `base_path` (`druid.discovery.curator.path`, default `/druid/discovery`),
    /// caching each lookup for 2 s.
    pub fn new(conn: Arc<ZkConnection>, base_path: impl Into<String>) -> Self {
        CuratorDiscovery {
            conn,
            base_path: base_path.into().trim_end_matches('/').to_owned(),
            cache_ttl: Duration::from_secs(2),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how long a lookup is reused.
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The discovery base path.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Forgets the cached instances of `service`, so the next lookup reads ZooKeeper.
    pub fn invalidate(&self, service: &str) {
        self.cache.lock().remove(&mangle_service_name(service));
    }

    /// The instances announced for `service` (`/` is mangled to `:`); empty when none.
    pub async fn instances(&self, service: &str) -> Result<Arc<Vec<ServiceInstance>>, ZkError> {
        let service = mangle_service_name(service);
        if let Some((at, list)) = self.cache.lock().get(&service) {
            if at.elapsed() < self.cache_ttl {
                return Ok(list.clone());
            }
        }
        let list = Arc::new(self.read(&service).await?);
        self.cache
            .lock()
            .insert(service, (Instant::now(), list.clone()));
        Ok(list)
    }

    /// One instance of `service`, chosen at random.
    pub async fn pick(&self, service: &str) -> Result<ServiceInstance, DiscoveryError> {
        let list = self.instances(service).await?;
        list.choose(&mut rand::rng())
            .cloned()
            .ok_or_else(|| DiscoveryError::NoInstances {
                service: mangle_service_name(service),
                base_path: self.base_path.clone(),
                connect: self.conn.connect_string().to_owned(),
                hint: if service.contains("overlord") {
                    "is the Overlord running and announced (druid.discovery.curator.path)?"
                } else {
                    "is the service running and announced (druid.discovery.curator.path)?"
                },
            })
    }

    async fn read(&self, service: &str) -> Result<Vec<ServiceInstance>, ZkError> {
        let dir = format!("{}/{service}", self.base_path);
        let children = self.conn.children(&dir).await?;
        let mut instances = Vec::with_capacity(children.len());
        for child in children {
            let path = format!("{dir}/{child}");
            let path = path.as_str();
            let data = self
                .conn
                .run(&format!("get_data {path}"), |client| async move {
                    match client.get_data(path).await {
                        // The instance went away between list and read.
                        Err(zk::Error::NoNode) => Ok(None),
                        other => other.map(|(data, _)| Some(data)),
                    }
                })
                .await?;
            let Some(data) = data else { continue };
            match ServiceInstance::from_json(&data) {
                Ok(instance) => instances.push(instance),
                Err(reason) => {
                    tracing::warn!(
                        path,
                        reason,
                        "ignoring an unreadable discovery announcement"
                    )
                }
            }
        }
        Ok(instances)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_druid_announcements_of_every_version() {
        let new = br#"{"name":"druid:overlord","id":"6f1c","address":"overlord1.example.com",
            "port":8090,"sslPort":-1,"payload":null,"registrationTimeUTC":1704103200000,
            "serviceType":"DYNAMIC","uriSpec":null}"#;
        let i = ServiceInstance::from_json(new).expect("new form");
        assert_eq!(i.address, "overlord1.example.com");
        assert_eq!(i.port, Some(8090));
        assert_eq!(i.ssl_port, None);
        assert_eq!(i.registration_time_utc, Some(1704103200000));

        let old = br#"{"name":"druid:overlord","id":"x","address":"h","port":8090,"sslPort":null,"enabled":true}"#;
        assert_eq!(
            ServiceInstance::from_json(old).expect("old form").port,
            Some(8090)
        );

        let tls = br#"{"name":"n","id":"x","address":"h","port":-1,"sslPort":8290}"#;
        let i = ServiceInstance::from_json(tls).expect("tls only");
        assert_eq!((i.port, i.ssl_port), (None, Some(8290)));

        for (bad, why) in [
            (&br#"{"name":"n","address":"","port":1}"#[..], "no address"),
            (br#"{"name":"n","address":"h","port":-1}"#, "neither"),
            (b"garbage", "not a ServiceInstance"),
        ] {
            let err = ServiceInstance::from_json(bad).expect_err("must fail");
            assert!(err.contains(why), "{err}");
        }
    }
}
