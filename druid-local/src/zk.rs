//! Curator-style service discovery announcements in ZooKeeper, as Druid writes them: an
//! ephemeral node `<base>/<name with / -> :>/<uuid>` holding the ServiceInstance JSON.

use zookeeper_client as zk;

/// Errors talking to ZooKeeper.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// Connection failed.
    #[error("cannot connect to ZooKeeper at {0}: {1}")]
    Connect(String, zk::Error),
    /// A create or delete failed.
    #[error("ZooKeeper operation on {0} failed: {1}")]
    Op(String, zk::Error),
}

/// Announces services under the discovery path for the lifetime of one ZooKeeper session.
#[derive(Debug)]
pub struct Announcer {
    client: zk::Client,
    base: String,
    address: String,
    port: u16,
    tls: bool,
}

/// Druid's service-name canonicalisation: every `/` becomes `:`.
pub fn canonical_name(name: &str) -> String {
    name.replace('/', ":")
}

impl Announcer {
    /// Connects to `connect` (a ZooKeeper connect string).
    pub async fn connect(
        connect: &str,
        base: &str,
        address: &str,
        port: u16,
    ) -> Result<Announcer, ZkError> {
        let client = zk::Client::connect(connect)
            .await
            .map_err(|e| ZkError::Connect(connect.to_owned(), e))?;
        let base = format!("/{}", base.trim_matches('/'));
        Ok(Announcer {
            client,
            base,
            address: address.to_owned(),
            port,
            tls: false,
        })
    }

    /// Announces the port as Druid's TLS port (`sslPort`, with `port` -1) when `tls`.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Announces `name` and returns the node path to remove later.
    pub async fn announce(&self, name: &str) -> Result<String, ZkError> {
        let name = canonical_name(name);
        let id = uuid::Uuid::new_v4().to_string();
        let dir = format!("{}/{}", self.base, name);
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match self.client.mkdir(&dir, &persistent).await {
            Ok(()) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(ZkError::Op(dir, e)),
        }
        let body = serde_json::json!({
            "name": name,
            "id": id,
            "address": self.address,
            "port": if self.tls { -1 } else { i32::from(self.port) },
            "sslPort": if self.tls { i32::from(self.port) } else { -1 },
            "payload": null,
            "registrationTimeUTC": crate::time::now_millis(),
            "serviceType": "DYNAMIC",
            "uriSpec": null,
        });
        let path = format!("{dir}/{id}");
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        self.client
            .create(&path, body.to_string().as_bytes(), &ephemeral)
            .await
            .map_err(|e| ZkError::Op(path.clone(), e))?;
        Ok(path)
    }

    /// Removes an announcement.
    pub async fn unannounce(&self, path: &str) -> Result<(), ZkError> {
        match self.client.delete(path, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(ZkError::Op(path.to_owned(), e)),
        }
    }
}
