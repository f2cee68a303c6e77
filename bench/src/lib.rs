//! One benchmark run: the pipeline's speed and memory as ratios against its limits, measured
//! side by side on the same machine.
//!
//! | figure | measured against | goal |
//! |---|---|---|
//! | core pipeline (discarding beams, 2 partitions x 2 replicas) | serde_json parsing the same events into a map | >= 2.0 x |
//! | `POST /v1/post` -> druid-local | the same bodies POSTed to the task's push-events | >= 0.8 x |
//! | Kafka connector -> druid-local | a raw consumer of the same topic | >= 0.95 x |
//! | druid-local's Kafka supervisor ingesting a topic | a raw consumer of the same topic | >= 0.8 x |
//! | RSS under overload (druid-local throttled) | — | <= 64 MiB and flat, every event accounted |
//! | POST to queryable at 20k events/s | — | p99 <= 1 s |
//! | `POST /v1/post` -> Kafka on the supervisor backend (Druid 35) | a raw producer of the same events | >= 0.8 x |
//! | POST to queryable at 20k events/s, supervisor backend (Druid 35) | — | p99 <= 2 s |
//! | POST to queryable, batch backend (Druid 35) | — | reported with its batch period |
//!
//! [`run`] measures what [`Options`] selects and returns a [`Report`], which prints as a table
//! and serialises to the JSON report (`core_ratio`, `server_ratio`, `kafka_ratio`, `supervisor_ratio`,
//! `overload_rss_mib`, `p99_latency_ms`, `supervisor_backend_ratio`,
//! `supervisor_backend_p99_latency_ms`, `batch_backend_p99_latency_ms`, plus the raw figures
//! behind each). Speed is a goal, not a test: nothing here asserts a timing.

pub mod backend_latency;
pub mod cli;
pub mod core_figure;
pub mod kafka_figure;
pub mod latency;
pub mod load;
pub mod overload;
pub mod pin;
pub mod produce_figure;
pub mod rss;
pub mod server_figure;
pub mod slow_druid;
pub mod stack;
pub mod supervisor_figure;
pub mod workload;

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use backend_latency::BackendLatency;
pub use core_figure::CoreFigure;
pub use latency::LatencyFigure;
pub use overload::OverloadFigure;
pub use produce_figure::ProduceFigure;
pub use server_figure::ServerFigure;

/// Goal for the throughput ratios without one of their own.
pub const RATIO_GOAL: f64 = 0.8;
/// Goal for the core pipeline against a serde_json map parse (the second round's).
pub const CORE_RATIO_GOAL: f64 = 2.0;
/// Goal for the Kafka connector against a raw consumer (the second round's).
pub const KAFKA_RATIO_GOAL: f64 = 0.95;
/// Goal for RSS under overload, MiB (the second round's).
pub const RSS_GOAL_MIB: f64 = 64.0;
/// Goal for p99 POST-to-queryable latency, ms.
pub const P99_GOAL_MS: f64 = 1000.0;
/// Goal for p99 POST-to-queryable latency on the supervisor backend, ms.
pub const SUPERVISOR_P99_GOAL_MS: f64 = 2000.0;

/// Why the Kafka figure is not measured.
pub const KAFKA_NOT_MEASURED: &str = "not measured: the figure was not selected or failed \
    (see errors); it needs the tansu broker that scripts/test.sh installs";

/// A figure of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Figure {
    /// Core pipeline vs serde_json.
    Core,
    /// Server vs direct push-events.
    Server,
    /// Kafka connector vs raw consumer.
    Kafka,
    /// druid-local's Kafka supervisor vs raw consumer.
    Supervisor,
    /// RSS under overload.
    Overload,
    /// POST-to-queryable latency.
    Latency,
    /// Server to Kafka on the supervisor backend vs a raw producer.
    SupervisorBackend,
    /// POST-to-queryable latency on the supervisor and batch backends.
    BackendLatency,
}

impl Figure {
    /// Every figure, in report order.
    pub const ALL: [Figure; 8] = [
        Figure::Core,
        Figure::Server,
        Figure::Kafka,
        Figure::Supervisor,
        Figure::Overload,
        Figure::Latency,
        Figure::SupervisorBackend,
        Figure::BackendLatency,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Core => "core",
            Figure::Server => "server",
            Figure::Kafka => "kafka",
            Figure::Supervisor => "supervisor",
            Figure::Overload => "overload",
            Figure::Latency => "latency",
            Figure::SupervisorBackend => "supervisor-backend",
            Figure::BackendLatency => "backend-latency",
        }
    }

    /// The figure called `name`.
    pub fn from_name(name: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.name() == name.trim())
    }
}

/// What to measure and for how long. [`Options::default`] runs in under 5 minutes,
/// [`Options::quick`] in under 2.
#[derive(Debug, Clone)]
pub struct Options {
    /// Figures to measure.
    pub figures: Vec<Figure>,
    /// Distinct events in the core figure's pool.
    pub core_pool: usize,
    /// Times the pool goes through the pipeline (and the parser).
    pub core_passes: usize,
    /// Threads for the core figure (both sides); default: available cores.
    pub threads: usize,
    /// Seconds each side of the server figure runs.
    pub server_seconds: u64,
    /// Clients posting at once (server figure and overload).
    pub concurrency: usize,
    /// Events per request body (server figure and overload).
    pub batch_size: usize,
    /// Seconds producers post at full speed in the overload figure.
    pub overload_seconds: u64,
    /// How long each push-events request holds druid-local's only push slot under overload.
    pub push_hold_ms: u64,
    /// The program and arguments that reach this benchmark's command line, used to run
    /// druid-local as a child process (see [`slow_druid`]); `None` runs it in this process.
    pub druid_program: Option<Vec<String>>,
    /// Seconds of posting in the latency figure (and on each backend of the backend-latency
    /// figure).
    pub latency_seconds: u64,
    /// Events per second in the latency figures.
    pub latency_rate: u64,
    /// The batch backend's `druid.ingestion.batch.periodMillis` in the backend-latency figure.
    pub batch_period_ms: u64,
    /// Seconds each side of the supervisor-backend figure runs.
    pub produce_seconds: u64,
    /// Gives the supervisor-backend figure's broker half the cores, this process the rest.
    pub pin_broker: bool,
    /// Messages in the Kafka figure's topic.
    pub kafka_events: usize,
    /// Messages in the supervisor figure's topic.
    pub supervisor_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            figures: Figure::ALL.to_vec(),
            core_pool: 100_000,
            core_passes: 20,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            server_seconds: 20,
            concurrency: 8,
            batch_size: 1000,
            overload_seconds: 60,
            push_hold_ms: 100,
            druid_program: None,
            latency_seconds: 30,
            latency_rate: 20_000,
            batch_period_ms: 1000,
            produce_seconds: 10,
            pin_broker: false,
            kafka_events: 200_000,
            supervisor_events: 200_000,
        }
    }
}

impl Options {
    /// Shorter runs: under 2 minutes in all.
    pub fn quick() -> Self {
        Self {
            core_passes: 5,
            server_seconds: 8,
            overload_seconds: 20,
            latency_seconds: 10,
            produce_seconds: 4,
            kafka_events: 50_000,
            supervisor_events: 50_000,
            ..Self::default()
        }
    }
}

/// The Kafka figure's place in the report.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaFigure {
    /// Whether it was measured.
    pub measured: bool,
    /// What was measured, or why not.
    pub note: String,
    /// The raw numbers, when measured.
    pub raw: Option<kafka_figure::KafkaRaw>,
}

/// Facts about the machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available to the process.
    pub cores: usize,
    /// 1-minute load average at the start (other work on the machine).
    pub load_average_start: Option<f64>,
    /// 1-minute load average at the end.
    pub load_average_end: Option<f64>,
    /// Whether this binary was built with optimisations.
    pub release_build: bool,
}

/// Everything one run measured. Serialises to the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Core pipeline events/s over serde_json events/s.
    pub core_ratio: Option<f64>,
    /// Server events/s over direct push-events events/s.
    pub server_ratio: Option<f64>,
    /// Kafka connector over raw consumer; `null` while not measured (see `kafka.note`).
    pub kafka_ratio: Option<f64>,
    /// druid-local's supervisor over a raw consumer of the same topic.
    pub supervisor_ratio: Option<f64>,
    /// Largest RSS under overload, MiB.
    pub overload_rss_mib: Option<f64>,
    /// p99 POST-to-queryable latency, ms.
    pub p99_latency_ms: Option<f64>,
    /// Server to Kafka on the supervisor backend over a raw producer of the same events.
    pub supervisor_backend_ratio: Option<f64>,
    /// p99 POST-to-queryable latency on the supervisor backend, ms.
    pub supervisor_backend_p99_latency_ms: Option<f64>,
    /// p99 POST-to-queryable latency on the batch backend, ms (see
    /// `backend_latency.batch_period_ms`).
    pub batch_backend_p99_latency_ms: Option<f64>,
    /// The core figure's raw numbers.
    pub core: Option<CoreFigure>,
    /// The server figure's raw numbers.
    pub server: Option<ServerFigure>,
    /// The Kafka figure.
    pub kafka: KafkaFigure,
    /// The supervisor figure's raw numbers.
    pub supervisor: Option<supervisor_figure::SupervisorRaw>,
    /// The overload figure's raw numbers.
    pub overload: Option<OverloadFigure>,
    /// The latency figure's raw numbers.
    pub latency: Option<LatencyFigure>,
    /// The supervisor-backend figure's raw numbers.
    pub supervisor_backend: Option<ProduceFigure>,
    /// The backend-latency figure's raw numbers.
    pub backend_latency: Option<BackendLatency>,
    /// Figures that could not be measured, with the error.
    pub errors: Vec<(String, String)>,
    /// The machine.
    pub machine: Machine,
    /// Seconds the whole run took.
    pub seconds: f64,
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Measures the selected figures one after another (never concurrently, so they do not
/// disturb each other). A figure that fails is reported in `errors`; the others still run.
pub async fn run(options: &Options) -> Report {
    let started = Instant::now();
    let machine_start = load_average();
    let wants = |f: Figure| options.figures.contains(&f);
    let mut errors = Vec::new();
    let mut note = |f: Figure, e: anyhow::Error| {
        tracing::warn!(figure = f.name(), error = %format!("{e:#}"), "figure failed");
        errors.push((f.name().to_string(), format!("{e:#}")));
    };

    // Overload first: its RSS is then not inflated by what earlier figures allocated.
    let mut overload = None;
    if wants(Figure::Overload) {
        tracing::info!("overload figure");
        match overload::run(
            options.overload_seconds,
            options.concurrency,
            options.batch_size,
            options.push_hold_ms,
            options.druid_program.as_deref(),
        )
        .await
        {
            Ok(f) => overload = Some(f),
            Err(e) => note(Figure::Overload, e),
        }
    }
    let mut latency = None;
    if wants(Figure::Latency) {
        tracing::info!("latency figure");
        match latency::run(options.latency_seconds, options.latency_rate).await {
            Ok(f) => latency = Some(f),
            Err(e) => note(Figure::Latency, e),
        }
    }
    let mut server = None;
    if wants(Figure::Server) {
        tracing::info!("server figure");
        match server_figure::run(
            Duration::from_secs(options.server_seconds),
            options.concurrency,
            options.batch_size,
            options.druid_program.as_deref(),
        )
        .await
        {
            Ok(f) => server = Some(f),
            Err(e) => note(Figure::Server, e),
        }
    }
    let mut kafka = None;
    if wants(Figure::Kafka) {
        tracing::info!("kafka figure");
        match kafka_figure::run(options.kafka_events).await {
            Ok(f) => kafka = Some(f),
            Err(e) => note(Figure::Kafka, e),
        }
    }
    let mut supervisor = None;
    if wants(Figure::Supervisor) {
        tracing::info!("supervisor figure");
        match supervisor_figure::run(options.supervisor_events).await {
            Ok(f) => supervisor = Some(f),
            Err(e) => note(Figure::Supervisor, e),
        }
    }
    let mut supervisor_backend = None;
    if wants(Figure::SupervisorBackend) {
        tracing::info!("supervisor-backend figure");
        match produce_figure::run(
            Duration::from_secs(options.produce_seconds),
            options.concurrency,
            options.batch_size,
            options.pin_broker,
        )
        .await
        {
            Ok(f) => supervisor_backend = Some(f),
            Err(e) => note(Figure::SupervisorBackend, e),
        }
    }
    let mut backend_latency = None;
    if wants(Figure::BackendLatency) {
        tracing::info!("backend-latency figure");
        let (figure, failures) = backend_latency::run(
            options.latency_seconds,
            options.latency_rate,
            options.batch_period_ms,
        )
        .await;
        for (backend, e) in failures {
            note(
                Figure::BackendLatency,
                e.context(format!("{backend} backend")),
            );
        }
        backend_latency = Some(figure);
    }
    let mut core = None;
    if wants(Figure::Core) {
        tracing::info!("core figure");
        match core_figure::run(options.core_pool, options.core_passes, options.threads).await {
            Ok(f) => core = Some(f),
            Err(e) => note(Figure::Core, e),
        }
    }
    Report {
        core_ratio: core.as_ref().map(|c| c.ratio),
        server_ratio: server.as_ref().map(|s| s.ratio),
        kafka_ratio: kafka.as_ref().map(|k| k.ratio),
        supervisor_ratio: supervisor.as_ref().map(|s| s.ratio),
        overload_rss_mib: overload.as_ref().map(|o| o.rss_max_mib),
        p99_latency_ms: latency.as_ref().map(|l| l.p99_ms),
        supervisor_backend_ratio: supervisor_backend.as_ref().map(|s| s.ratio),
        supervisor_backend_p99_latency_ms: backend_latency
            .as_ref()
            .and_then(|b| b.supervisor.as_ref().map(|l| l.p99_ms)),
        batch_backend_p99_latency_ms: backend_latency
            .as_ref()
            .and_then(|b| b.batch.as_ref().map(|l| l.p99_ms)),
        core,
        server,
        kafka: KafkaFigure {
            measured: kafka.is_some(),
            note: match &kafka {
                Some(k) => format!(
                    "{:.0}k/s events sent through the connector, {:.0}k/s read by a raw consumer ({} messages)",
                    k.connector_per_second / 1000.0,
                    k.raw_per_second / 1000.0,
                    k.events
                ),
                None => KAFKA_NOT_MEASURED.to_string(),
            },
            raw: kafka,
        },
        supervisor,
        overload,
        latency,
        supervisor_backend,
        backend_latency,
        errors,
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average_start: machine_start,
            load_average_end: load_average(),
            release_build: !cfg!(debug_assertions),
        },
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// A latency figure's quantiles, rate and probes, in one line.
fn latency_line(l: &LatencyFigure) -> String {
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms at {:.0}k/s ({} of {} probes found)",
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        l.achieved_events_per_sec / 1000.0,
        l.found,
        l.probes
    )
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = |n: f64| format!("{:.0}k/s", n / 1000.0);
        writeln!(f, "figure            measured                         against                          ratio / value   goal")?;
        match &self.core {
            Some(c) => writeln!(
                f,
                "core pipeline     {:<32} {:<32} {:>6.2} x        >= {CORE_RATIO_GOAL} x ({})",
                format!(
                    "{} events ({} threads)",
                    k(c.pipeline_events_per_sec),
                    c.threads
                ),
                format!("{} serde_json map", k(c.serde_json_events_per_sec)),
                c.ratio,
                verdict(c.ratio >= CORE_RATIO_GOAL)
            )?,
            None => writeln!(f, "core pipeline     not measured")?,
        }
        match &self.server {
            Some(s) => writeln!(
                f,
                "server            {:<32} {:<32} {:>6.2} x        >= {RATIO_GOAL} x ({})\n                  ({})",
                format!("{} events sent", k(s.server.events_per_sec)),
                format!("{} direct push-events", k(s.direct.events_per_sec)),
                s.ratio,
                verdict(s.ratio >= RATIO_GOAL),
                s.placement
            )?,
            None => writeln!(f, "server            not measured")?,
        }
        match &self.kafka.raw {
            Some(r) => writeln!(
                f,
                "kafka             {:<32} {:<32} {:>6.2} x        >= {KAFKA_RATIO_GOAL} x ({})",
                format!("{} events sent", k(r.connector_per_second)),
                format!("{} raw consumer", k(r.raw_per_second)),
                r.ratio,
                verdict(r.ratio >= KAFKA_RATIO_GOAL)
            )?,
            None => writeln!(f, "kafka             {}", self.kafka.note)?,
        }
        match &self.supervisor {
            Some(r) => writeln!(
                f,
                "supervisor        {:<32} {:<32} {:>6.2} x        >= {RATIO_GOAL} x ({})",
                format!("{} ingested", k(r.supervisor_per_second)),
                format!("{} raw consumer", k(r.raw_per_second)),
                r.ratio,
                verdict(r.ratio >= RATIO_GOAL)
            )?,
            None => writeln!(f, "supervisor        not measured")?,
        }
        match &self.overload {
            Some(o) => writeln!(
                f,
                "overload RSS      max {:.1} MiB, second half {:+.1} MiB, {}; {} received = {} sent + {} dropped + {} failed ({} pending){}   <= {RSS_GOAL_MIB} MiB, flat ({})",
                o.rss_max_mib,
                o.rss_growth_second_half_mib,
                if o.flat { "flat" } else { "GROWING" },
                o.received,
                o.sent,
                o.dropped.values().sum::<u64>(),
                o.failed,
                o.pending,
                if o.druid_separate_process { "" } else { " [druid-local in process]" },
                verdict(o.rss_max_mib <= RSS_GOAL_MIB && o.flat && o.balanced)
            )?,
            None => writeln!(f, "overload RSS      not measured")?,
        }
        match &self.latency {
            Some(l) => writeln!(
                f,
                "latency           p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms at {} ({} of {} probes found)   p99 <= {P99_GOAL_MS} ms ({})",
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                k(l.achieved_events_per_sec),
                l.found,
                l.probes,
                verdict(l.p99_ms <= P99_GOAL_MS && l.found == l.probes)
            )?,
            None => writeln!(f, "latency           not measured")?,
        }
        match &self.supervisor_backend {
            Some(s) => writeln!(
                f,
                "server -> kafka   {:<32} {:<32} {:>6.2} x        >= {RATIO_GOAL} x ({})",
                format!("{} events sent", k(s.server.events_per_sec)),
                format!("{} raw producer", k(s.raw.events_per_sec)),
                s.ratio,
                verdict(s.ratio >= RATIO_GOAL)
            )?,
            None => writeln!(f, "server -> kafka   not measured")?,
        }
        if let Some(s) = &self.supervisor_backend {
            writeln!(f, "                  ({})", s.placement)?;
        }
        let backends = self.backend_latency.as_ref();
        match backends.and_then(|b| b.supervisor.as_ref()) {
            Some(l) => writeln!(
                f,
                "latency (supervisor backend, Druid {}) {}   p99 <= {SUPERVISOR_P99_GOAL_MS} ms ({})",
                backends.map_or("", |b| b.druid_version.as_str()),
                latency_line(l),
                verdict(l.p99_ms <= SUPERVISOR_P99_GOAL_MS && l.found == l.probes)
            )?,
            None => writeln!(f, "latency (supervisor backend) not measured")?,
        }
        match backends.and_then(|b| b.batch.as_ref().map(|l| (b, l))) {
            Some((b, l)) => writeln!(
                f,
                "latency (batch backend, Druid {}, batches every {} ms) {}",
                b.druid_version,
                b.batch_period_ms,
                latency_line(l)
            )?,
            None => writeln!(f, "latency (batch backend) not measured")?,
        }
        for (figure, error) in &self.errors {
            writeln!(f, "error in {figure}: {error}")?;
        }
        write!(f, "run took {:.0} s", self.seconds)
    }
}
