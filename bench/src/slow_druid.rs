//! druid-local in its own process: plain for the server figure (so it can have cores of its
//! own), and slow for the overload figure (so the bench process's RSS is Tranquility's alone).
//!
//! The slow child runs druid-local plus a throttling proxy in front of it
//! ([`DruidProxy::slow_pushes`]): every push-events request waits for the single push slot and
//! holds it for `push_ms`, so druid-local accepts at most one chunk per `push_ms`. Overlord
//! answers are rewritten so task locations point at the proxy; everything else passes through
//! untouched.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use test_support::harness::DruidProxy;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Printed by the child once it serves: `<PREFIX><proxy url> <druid-local url>`.
const READY: &str = "druid-local ready: ";

/// Serves druid-local behind the throttling proxy until the process is killed (the child's
/// side). Prints the ready line on stdout.
pub async fn serve(push_ms: u64) -> anyhow::Result<()> {
    let slow = InProcess::start(push_ms).await?;
    println!("{READY}{} {}", slow.url, slow.druid.url());
    std::future::pending::<()>().await;
    Ok(())
}

/// Serves a plain druid-local until the process is killed (the child's side of the server
/// figure). Prints the ready line on stdout.
pub async fn serve_plain() -> anyhow::Result<()> {
    let druid = druid_local::DruidLocal::start(druid_local::DruidLocalConfig::ephemeral()).await?;
    println!("{READY}{url} {url}", url = druid.url());
    std::future::pending::<()>().await;
    Ok(())
}

/// druid-local and the throttling proxy in this process (when no child command is given).
#[derive(Debug)]
pub struct InProcess {
    /// The proxy's URL.
    pub url: String,
    druid: druid_local::DruidLocal,
    proxy: DruidProxy,
}

impl InProcess {
    /// Starts both on free loopback ports.
    pub async fn start(push_ms: u64) -> anyhow::Result<Self> {
        let druid =
            druid_local::DruidLocal::start(druid_local::DruidLocalConfig::ephemeral()).await?;
        let proxy = DruidProxy::start(SocketAddr::from(([127, 0, 0, 1], druid.port()))).await?;
        proxy.slow_pushes(Duration::from_millis(push_ms));
        Ok(Self {
            url: proxy.url(),
            druid,
            proxy,
        })
    }

    /// druid-local's own URL (for queries).
    pub fn druid_url(&self) -> String {
        self.druid.url()
    }

    /// Stops both.
    pub async fn stop(self) {
        drop(self.proxy);
        self.druid.shutdown().await;
    }
}

/// The parent's handle on the child; the child is killed when this drops.
#[derive(Debug)]
pub struct DruidChild {
    /// The proxy (druid-local itself for a plain child): give this to Tranquility as the
    /// Overlord.
    pub url: String,
    /// druid-local itself, for queries.
    pub druid_url: String,
    child: Child,
}

impl DruidChild {
    /// Starts `command` (a program and its arguments that ends up calling [`serve`]) and waits
    /// for its ready line.
    pub async fn spawn(command: &[String]) -> anyhow::Result<Self> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("empty druid-local command"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {program}: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from {program}"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix(READY) {
                    return Ok::<_, std::io::Error>(Some(rest.to_string()));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|_| anyhow::anyhow!("{program} did not get ready within 30 s"))??
        .ok_or_else(|| anyhow::anyhow!("{program} exited before getting ready"))?;
        let (url, druid_url) = ready
            .split_once(' ')
            .ok_or_else(|| anyhow::anyhow!("unexpected ready line: {ready}"))?;
        Ok(Self {
            url: url.to_string(),
            druid_url: druid_url.to_string(),
            child,
        })
    }

    /// The child's resident set, in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        self.child.id().and_then(crate::rss::rss_mib_of)
    }

    /// Kills the child.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
