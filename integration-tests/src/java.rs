//! Java programs compiled at test time against Debian's jars (Apache Curator, ZooKeeper,
//! Jackson), to check that what we write and lock is what the JVM side of a mixed fleet sees.
//!
//! [`JavaProgram::compile`] runs `javac` into a temp dir; when `javac` or a jar is missing it
//! records a visible skip and the calling test returns. [`JavaProcess`] talks to a running
//! program line by line over stdin and stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Where Debian's `lib*-java` packages put their jars.
pub const DEBIAN_JARS: &str = "/usr/share/java";

/// The jars (Debian names) a Curator program needs: recipes, discovery, the ZooKeeper client,
/// Guava, Jackson and slf4j.
pub const CURATOR_JARS: &[&str] = &[
    "curator-framework",
    "curator-recipes",
    "curator-client",
    "curator-x-discovery",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
    "slf4j-api",
    "slf4j-simple",
];

/// How to get the Curator jars, for skip messages.
pub const CURATOR_REMEDY: &str = "run scripts/test.sh, which installs Debian's \
     libcurator-recipes-java, libcurator-framework-java and libcurator-discovery-java";

/// A compiled Java program: its classes and the classpath to run them with.
#[derive(Debug)]
pub struct JavaProgram {
    classes: tempfile::TempDir,
    classpath: String,
    main: String,
}

impl JavaProgram {
    /// Compiles `source` (a file of this crate's `java/` folder, such as `CuratorPeer.java`)
    /// against the Debian `jars`; `None` after recording the skip of `test` when `javac` or
    /// a jar is missing.
    pub fn compile(test: &str, source: &str, jars: &[&str]) -> Option<Self> {
        let paths: Vec<PathBuf> = jars
            .iter()
            .map(|j| Path::new(DEBIAN_JARS).join(format!("{j}.jar")))
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
            test_support::record_skip(test, &missing.display().to_string(), CURATOR_REMEDY);
            return None;
        }
        if Command::new("javac").arg("-version").output().is_err() {
            test_support::record_skip(test, "javac", "install a JDK (scripts/test.sh does)");
            return None;
        }
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("java")
            .join(source);
        let classes = tempfile::tempdir().expect("temp dir for Java classes");
        let libraries = std::env::join_paths(&paths)
            .expect("jar paths")
            .to_string_lossy()
            .into_owned();
        let out = Command::new("javac")
            .args(["-nowarn", "-d"])
            .arg(classes.path())
            .args(["-cp", &libraries])
            .arg(&file)
            .output()
            .expect("run javac");
        assert!(
            out.status.success(),
            "javac {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let classpath = format!("{}:{libraries}", classes.path().display());
        let main = source.trim_end_matches(".java").to_owned();
        Some(Self {
            classes,
            classpath,
            main,
        })
    }

    /// Starts the program with `args`; its stderr goes to a log shown when it misbehaves.
    pub fn spawn(&self, args: &[&str]) -> JavaProcess {
        let log_path = self
            .classes
            .path()
            .join(format!("{}.log", crate::unique_name("run")));
        let log = std::fs::File::create(&log_path).expect("Java log file");
        let mut child = Command::new("java")
            .args(["-Xmx128m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"])
            .args(["-cp", &self.classpath, &self.main])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start java");
        let stdin = child.stdin.take();
        let lines = crate::lines_of(child.stdout.take().expect("java stdout"));
        JavaProcess {
            child,
            stdin,
            lines,
            log_path,
        }
    }
}

/// A running Java program driven over stdin and stdout. Killed when dropped.
#[derive(Debug)]
pub struct JavaProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log_path: PathBuf,
}

impl JavaProcess {
    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("sending '{line}' to Java: {e}; {}", self.log()));
    }

    /// The next answer line, which must start with `prefix`; waits at most `timeout`.
    pub fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) if line.starts_with(prefix) => line,
            Ok(line) => panic!(
                "Java answered '{line}', expected '{prefix}'; {}",
                self.log()
            ),
            Err(RecvTimeoutError::Timeout) => {
                panic!("no '{prefix}' from Java after {timeout:?}; {}", self.log())
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("Java exited before '{prefix}'; {}", self.log())
            }
        }
    }

    /// An answer line that has already arrived, if any.
    pub fn answered(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    /// Sends a command and waits for its answer.
    pub fn call(&mut self, line: &str, answer: &str, timeout: Duration) -> String {
        self.send(line);
        self.expect(answer, timeout)
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        format!("its log: {}", text.get(start..).unwrap_or(&text))
    }
}

impl Drop for JavaProcess {
    fn drop(&mut self) {
        // Closing stdin asks it to quit; the kill covers one that is stuck.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
