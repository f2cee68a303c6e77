//! `tranquility reindex -configFile F --data-source DS --interval A/B --input PATH_OR_URL...`:
//! the batch half of the hybrid batch/streaming architecture. It replaces one interval of a
//! dataSource with the true data set: a Druid native batch task (`index_parallel`, replace
//! mode) built from the dataSource's spec as the Druid 31+ backends translate it, whose new
//! segments overshadow whatever streaming wrote there (duplicates, late events that were
//! dropped). It waits for the task, printing its progress, and reports the rows it read and
//! the segments' new version. `--dry-run` prints the task instead.
//!
//! Inputs: local paths become a `local` input source (Druid's workers read the files, so
//! they must see the same paths; `--inline` reads them here and sends the rows in the task
//! instead), `http(s)://` URLs an `http` source, and `s3://`, `gs://`, `azureStorage://`,
//! `hdfs://` the input source of that name (its Druid extension must be loaded).
//! `--input-source JSON` passes any other input source through as written.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Map, Value};
use tranquility::backend::batch::RowStats;
use tranquility::backend::translate::{index_task, BatchMode, EventFormat};
use tranquility::druid::overlord::{encode_segment, OverlordClient};
use tranquility::druid::tls::DruidTls;
use tranquility::pipeline::{overlord_client, ZkConnections};
use tranquility::spec::{CoreProperties, DataSourceConfig};
use tranquility::time::{format_iso_millis, Interval};

use crate::setup::{data_source_names, load_config, named_data_source, ConfigProblem};

/// The largest task `--inline` builds: Druid keeps a task's payload in its metadata store.
const INLINE_LIMIT: usize = 64 * 1024 * 1024;

/// Options of `tranquility reindex`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 when the task succeeded, 1 when it failed (Druid's error \
    is printed), 2 for a bad command line or configuration. Druid 0.17 and later (input \
    sources) are supported; older versions are refused, naming the version."
)]
pub struct Args {
    /// Configuration file (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
    /// The dataSource to reindex; also `-dataSource DS` (default: the only one).
    #[arg(long = "data-source", value_name = "DS")]
    pub data_source: Option<String>,
    /// The interval to replace, ISO-8601 (`2026-11-01T00/2026-11-02T00`).
    #[arg(long, value_name = "START/END")]
    pub interval: Interval,
    /// Newline-delimited JSON to read: local files, http(s) URLs, or s3/gs/azureStorage/hdfs URIs.
    #[arg(long, value_name = "PATH_OR_URL", num_args = 1.., required_unless_present = "input_source")]
    pub input: Vec<String>,
    /// A Druid input source as JSON, passed through (instead of --input).
    #[arg(long, value_name = "JSON", conflicts_with = "input")]
    pub input_source: Option<String>,
    /// Read local files here and send their rows inside the task (for a Druid that cannot
    /// see them); at most 64 MiB.
    #[arg(long)]
    pub inline: bool,
    /// Print the task JSON and exit without submitting it.
    #[arg(long)]
    pub dry_run: bool,
    /// The Overlord's URL, over the file's `druid.overlord.url` and discovery.
    #[arg(long, value_name = "URL")]
    pub overlord: Option<String>,
    /// How long to wait for the task before giving up (it keeps running in Druid).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub timeout: u64,
}

/// Builds, submits and follows the task.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(&args.config_file)?;
    let ds = pick(&config, args.data_source.as_deref())?;
    let source = input_source(&args)?;
    let id = format!(
        "tranquility_reindex_{}_{}_{}",
        ds.name,
        format_iso_millis(args.interval.start),
        format_iso_millis(chrono::Utc::now().timestamp_millis())
    )
    .replace(':', "");
    let task = index_task(
        &ds.spec.data_schema,
        &ds.spec.tuning_config,
        &id,
        args.interval,
        source,
        EventFormat::AsParseSpec,
        BatchMode::Replace,
        json!({}),
    )
    .map_err(|e| ConfigProblem(e.to_string()))?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&task)?);
        return Ok(());
    }
    let props = CoreProperties::from_properties(&ds.properties)?;
    let tls = DruidTls::from_properties(&props).map_err(|e| ConfigProblem(e.to_string()))?;
    let overlord = overlord_client(
        &props,
        args.overlord.as_deref(),
        &ZkConnections::new(),
        &tls,
    )
    .map_err(ConfigProblem)?;
    check_version(&overlord).await?;

    let submitted = overlord
        .submit_task(&task)
        .await
        .with_context(|| format!("submitting the reindex task of {}", ds.name))?;
    println!("task {submitted}");
    let ended = follow(&overlord, &submitted, Duration::from_secs(args.timeout)).await?;
    let report = get_json(
        &overlord,
        &format!(
            "/druid/indexer/v1/task/{}/reports",
            encode_segment(&submitted)
        ),
    )
    .await;
    if let Some(stats) = report.as_ref().and_then(RowStats::from_report) {
        println!(
            "rows: processed {}, processed with errors {}, thrown away {}, unparseable {}",
            stats.processed, stats.processed_with_error, stats.thrown_away, stats.unparseable
        );
    }
    if let Some(message) = ended {
        anyhow::bail!("the reindex task {submitted} failed: {message}");
    }
    match newest_version(&overlord, &ds.name, args.interval).await {
        Some(version) => println!("segments of {} now at version {version}", args.interval),
        None => println!(
            "segments: not listed (no Coordinator API at the Overlord's address); the task succeeded"
        ),
    }
    Ok(())
}

fn pick<'a>(
    config: &'a tranquility::spec::TranquilityConfig,
    name: Option<&str>,
) -> anyhow::Result<&'a DataSourceConfig> {
    match (name, config.data_sources()) {
        (Some(name), _) => Ok(named_data_source(config, name)?),
        (None, [only]) => Ok(only),
        (None, _) => Err(ConfigProblem(format!(
            "{}: several dataSources ({}); name one with --data-source",
            config.source(),
            data_source_names(config)
        ))
        .into()),
    }
}

/// The task's input source from `--input` or `--input-source`.
fn input_source(args: &Args) -> anyhow::Result<Value> {
    if let Some(text) = &args.input_source {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigProblem(format!("--input-source is not JSON: {e}")))?;
        if value.get("type").and_then(Value::as_str).is_none() {
            return Err(ConfigProblem("--input-source needs a \"type\"".into()).into());
        }
        return Ok(value);
    }
    let mut by_kind: Vec<(&'static str, &'static str, Vec<Value>)> = Vec::new();
    let mut local = Vec::new();
    for input in &args.input {
        let lower = input.to_ascii_lowercase();
        let kind = [
            ("http://", "http", "uris"),
            ("https://", "http", "uris"),
            ("s3://", "s3", "uris"),
            ("gs://", "google", "uris"),
            ("azurestorage://", "azureStorage", "uris"),
            ("hdfs://", "hdfs", "paths"),
        ]
        .into_iter()
        .find(|(scheme, _, _)| lower.starts_with(scheme));
        match kind {
            Some((_, kind, key)) => match by_kind.iter_mut().find(|(k, _, _)| *k == kind) {
                Some((_, _, list)) => list.push(json!(input)),
                None => by_kind.push((kind, key, vec![json!(input)])),
            },
            None if lower.contains("://") => {
                return Err(ConfigProblem(format!(
                "--input {input}: unknown scheme; pass the Druid input source with --input-source"
            ))
                .into())
            }
            None => {
                let path = std::fs::canonicalize(input)
                    .map_err(|e| ConfigProblem(format!("--input {input}: {e}")))?;
                local.push(path);
            }
        }
    }
    let mut sources: Vec<Value> = by_kind
        .into_iter()
        .map(|(kind, key, list)| {
            let mut m = Map::new();
            m.insert("type".into(), json!(kind));
            m.insert(key.into(), Value::Array(list));
            Value::Object(m)
        })
        .collect();
    if !local.is_empty() {
        sources.push(if args.inline {
            inline_of(&local)?
        } else {
            json!({"type": "local", "files": local})
        });
    }
    Ok(match sources.len() {
        1 => sources.remove(0),
        // Druid 0.22+ reads several sources as one.
        _ => json!({"type": "combining", "delegates": sources}),
    })
}

fn inline_of(paths: &[PathBuf]) -> anyhow::Result<Value> {
    let mut data = String::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        data.push_str(&text);
        if !text.ends_with('\n') {
            data.push('\n');
        }
        if data.len() > INLINE_LIMIT {
            return Err(ConfigProblem(format!(
                "--inline: the files hold over {} MiB; let Druid read them (drop --inline) or \
                 serve them over HTTP",
                INLINE_LIMIT >> 20
            ))
            .into());
        }
    }
    Ok(json!({"type": "inline", "data": data}))
}

/// Refuses Druid releases without input sources (before 0.17), naming the version.
async fn check_version(overlord: &OverlordClient) -> anyhow::Result<()> {
    let Some(status) = get_json(overlord, "/status").await else {
        return Ok(());
    };
    let version = status.get("version").and_then(Value::as_str).unwrap_or("");
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if major == 0 && minor < 17 {
        anyhow::bail!(
            "Druid {version} has no input sources for native batch (0.17 and later); reindex \
             there with an `index` task and a firehose, written by hand"
        );
    }
    Ok(())
}

/// Polls the task until it ends, printing each change of state; `Some(error)` if it failed.
async fn follow(
    overlord: &OverlordClient,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        if let Some(status) = overlord.task_status(id).await? {
            use tranquility::druid::overlord::TaskState;
            let now = format!("{:?}", status.state);
            if now != last {
                println!("{:>5}s  {now}", started.elapsed().as_secs());
                last = now;
            }
            match status.state {
                TaskState::Success => return Ok(None),
                TaskState::Failed => {
                    return Ok(Some(
                        status.error_msg.unwrap_or_else(|| "no reason given".into()),
                    ))
                }
                TaskState::Running => {}
            }
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "the reindex task {id} did not finish within {} s; it keeps running in Druid",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The newest version among the used segments of `data_source` overlapping `interval`, from
/// the Coordinator's metadata API at the Overlord's address.
async fn newest_version(
    overlord: &OverlordClient,
    data_source: &str,
    interval: Interval,
) -> Option<String> {
    let path = format!(
        "/druid/coordinator/v1/metadata/datasources/{}/segments?full",
        encode_segment(data_source)
    );
    let segments = get_json(overlord, &path).await?;
    segments
        .as_array()?
        .iter()
        .filter(|s| {
            s.get("interval")
                .and_then(Value::as_str)
                .and_then(|i| i.parse::<Interval>().ok())
                .is_some_and(|i| i.start < interval.end && interval.start < i.end)
        })
        .filter_map(|s| s.get("version").and_then(Value::as_str))
        .max()
        .map(str::to_string)
}

async fn get_json(overlord: &OverlordClient, path: &str) -> Option<Value> {
    match overlord.call_api(Method::GET, path, None).await {
        Ok(answer) if !answer.is_not_found() => answer.json().ok(),
        _ => None,
    }
}
