//! A real Kafka-protocol broker (tansu) on a free loopback port.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{free_port, kill, log_tail};

/// The environment variable naming the tansu binary.
pub const TANSU_BIN_ENV: &str = "TANSU_BIN";

/// How to get tansu when it is missing.
const INSTALL_HINT: &str =
    "scripts/test.sh installs it, or: cargo install tansu --features dynostore";

/// A tansu broker on a free loopback port: in memory, or keeping its topics, messages and
/// committed offsets in a SQLite file across [`Tansu::restart`]. It runs in a temporary
/// folder of its own (with its log) and is killed when dropped.
#[derive(Debug)]
pub struct Tansu {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    persistent: bool,
    child: Option<Child>,
    advertised_port: u16,
    authentication: bool,
}

/// How a [`Tansu`] broker runs beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct TansuOptions {
    /// The port announced to clients in metadata, when it differs from the one the broker
    /// listens on (a TLS proxy in front of it).
    pub advertised_port: Option<u16>,
    /// SCRAM-SHA-512 users `(name, password)`: the broker then requires SASL authentication.
    /// tansu creates users only while authentication is off, so they are made first and the
    /// broker restarted (its data kept in SQLite).
    pub scram_users: Vec<(String, String)>,
}

impl Tansu {
    /// Starts an in-memory broker and waits until its port accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with_options(false, TansuOptions::default())
    }

    /// Starts a broker that keeps its data (SQLite in its own folder) across
    /// [`Tansu::restart`], as a user's broker does.
    pub fn start_persistent() -> anyhow::Result<Self> {
        Self::start_with_options(true, TansuOptions::default())
    }

    /// Starts a broker with `options` (kept across [`Tansu::restart`]).
    pub fn start_with_options(persistent: bool, options: TansuOptions) -> anyhow::Result<Self> {
        let bin = tansu_bin()?;
        let dir = tempfile::tempdir().context("a temporary folder for tansu")?;
        let port = free_port()?;
        let users = !options.scram_users.is_empty();
        let mut broker = Tansu {
            bin,
            port,
            dir,
            persistent: persistent || users,
            child: None,
            advertised_port: port,
            authentication: false,
        };
        if users {
            broker.spawn()?;
            for (name, password) in &options.scram_users {
                broker.create_user(name, password)?;
            }
            broker.stop();
        }
        broker.advertised_port = options.advertised_port.unwrap_or(port);
        broker.authentication = users;
        broker.spawn()?;
        Ok(broker)
    }

    fn create_user(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let out = Command::new(&self.bin)
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args([name, password, "--mechanism", "scram512"])
            .current_dir(self.dir.path())
            .output()
            .with_context(|| format!("running {} user create", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "tansu user create {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The port the broker itself listens on (plaintext).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The end of the broker's log (for a failing test's message).
    pub fn log(&self) -> String {
        log_tail(&self.dir.path().join("broker.log"))
    }

    /// Stops the broker (an in-memory broker's data is lost).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the broker again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised_port);
        let log_path = self.dir.path().join("broker.log");
        let log = std::fs::File::create(&log_path).context("creating tansu's log file")?;
        // tansu reads a `.env` from its working directory, so it runs in its own empty folder.
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(self.authentication.then_some("--authentication"))
            .args([
                "--storage-engine",
                // A path relative to the broker's folder (its working directory).
                if self.persistent {
                    "sqlite://tansu.db"
                } else {
                    "memory://tansu/"
                },
            ])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cloning tansu's log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} ({INSTALL_HINT})", self.bin.display()))?;
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("tansu exited ({status}): {}", log_tail(&log_path));
            }
            if Instant::now() >= deadline {
                self.stop();
                bail!(
                    "tansu not listening on {} after 30 s: {}",
                    self.port,
                    log_tail(&log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tansu binary: `$TANSU_BIN`, else `tansu` on `PATH`, else `$CARGO_HOME/bin/tansu`
/// (`~/.cargo/bin/tansu`); an error naming where it looked when none is a file.
pub fn tansu_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os(TANSU_BIN_ENV) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!(
                "tansu not found: {TANSU_BIN_ENV}={} is not a file ({INSTALL_HINT})",
                bin.display()
            );
        }
        return Ok(bin);
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).collect())
        .unwrap_or_default();
    if let Some(found) = on_path.into_iter().find(|p| p.is_file()) {
        return Ok(found);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    let installed = cargo_home.join("bin").join("tansu");
    if !installed.is_file() {
        bail!(
            "tansu not found: {TANSU_BIN_ENV} is unset, and neither PATH nor {} has a tansu \
             binary ({INSTALL_HINT})",
            installed.display()
        );
    }
    Ok(installed)
}
