//! Property tables (key, default, scope, kind, doc), the registry every crate adds its table
//! to, the property map with where each value came from, and the core's typed views.
//!
//! Each crate owns the rows it reads: the core's are [`CORE_PROPERTIES`]; the server's,
//! Kafka's and Fluvio's live in their crates, each added to [`PROPERTY_TABLES`] with
//! `#[linkme::distributed_slice]`. The loader knows a key when some linked crate's table has
//! it, and every typed view takes its defaults from the rows.
//!
//! Keys keep the original dotted spelling. The Tranquilizer keys are read as
//! `tranquility.maxBatchSize` (the original's spelling) or `druid.tranquilizer.maxBatchSize`.
//! `druid.overlord.url` is our addition: a fixed Overlord URL used instead of discovery.

use std::sync::Arc;

use indexmap::IndexMap;

use super::lenient::parse_bool;
use super::ConfigError;
use crate::time::Period;

/// Where a property may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Globally or per dataSource (a dataSource's value wins).
    Either,
    /// Globally only; setting it per dataSource is an error, as in the original.
    GlobalOnly,
    /// Read from the global section only; a per-dataSource value is ignored with a warning.
    GlobalRead,
}

/// The type a property's value must parse as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any text.
    Text,
    /// A whole number.
    Int,
    /// `true` or `false` (also `yes`/`no`, `on`/`off`).
    Bool,
    /// An ISO-8601 period such as `PT10M`.
    Period,
    /// A comma-separated list.
    List,
    /// One of the listed words (case-insensitive).
    OneOf(&'static [&'static str]),
    /// A key that is refused wherever it is set, with this message saying what to set instead.
    Refused(&'static str),
}

/// One property: key, other accepted spellings, default, scope, kind and a one-line doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertyDef {
    /// The key as written in config files.
    pub key: &'static str,
    /// Other spellings read when `key` is not set.
    pub aliases: &'static [&'static str],
    /// Default value as text; `None` = no default (unset).
    pub default: Option<&'static str>,
    /// Where it may be set.
    pub scope: Scope,
    /// Its type.
    pub kind: Kind,
    /// What it does.
    pub doc: &'static str,
}

impl PropertyDef {
    /// A row without aliases.
    pub const fn new(
        key: &'static str,
        default: Option<&'static str>,
        scope: Scope,
        kind: Kind,
        doc: &'static str,
    ) -> Self {
        Self {
            key,
            aliases: &[],
            default,
            scope,
            kind,
            doc,
        }
    }

    /// This row, also read under `aliases` when `key` is not set.
    pub const fn with_aliases(self, aliases: &'static [&'static str]) -> Self {
        Self { aliases, ..self }
    }
}

/// Keys under a prefix that go to another client as they are (`kafka.` to the Kafka consumer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixDef {
    /// The prefix, dot included.
    pub prefix: &'static str,
    /// Where its keys may be set (`GlobalRead`: per-dataSource ones are ignored with a warning).
    pub scope: Scope,
    /// Where the keys go.
    pub doc: &'static str,
}

/// The properties one crate reads.
#[derive(Debug)]
pub struct PropertyTable {
    /// The crate.
    pub owner: &'static str,
    /// Its keys.
    pub rows: &'static [PropertyDef],
    /// Its passthrough prefixes.
    pub prefixes: &'static [PrefixDef],
}

/// Every linked crate's property table: the one place the loader looks keys up.
#[allow(unsafe_code)]
#[linkme::distributed_slice]
pub static PROPERTY_TABLES: [PropertyTable];

// linkme puts the table in a link section, which the unsafe_code lint flags.
#[allow(unsafe_code)]
#[linkme::distributed_slice(PROPERTY_TABLES)]
static CORE_TABLE: PropertyTable = PropertyTable {
    owner: "tranquility-core",
    rows: CORE_PROPERTIES,
    prefixes: &[
        PrefixDef {
            prefix: INGESTION_PRODUCER_PREFIX,
            scope: Scope::Either,
            doc:
                "supervisor backend: librdkafka settings of Tranquility's producer and admin client",
        },
        PrefixDef {
            prefix: INGESTION_CONSUMER_PREFIX,
            scope: Scope::Either,
            doc: "supervisor backend: the supervisor's consumerProperties",
        },
    ],
};

const fn def(
    key: &'static str,
    default: Option<&'static str>,
    scope: Scope,
    kind: Kind,
    doc: &'static str,
) -> PropertyDef {
    PropertyDef::new(key, default, scope, kind, doc)
}

const fn alias(d: PropertyDef, aliases: &'static [&'static str]) -> PropertyDef {
    d.with_aliases(aliases)
}

use Kind::{Bool, Int, OneOf, Period as Per, Text};
use Scope::{Either, GlobalOnly, GlobalRead};

/// The core's properties (pipelines, Druid, ZooKeeper, the Druid 31+ backends and the source
/// driver), with their defaults.
pub const CORE_PROPERTIES: &[PropertyDef] = &[
    // Core (global or per dataSource).
    def("zookeeper.connect", Some("localhost:2181"), Either, Text, "ZooKeeper for coordination and service discovery"),
    def("zookeeper.timeout", Some("PT20S"), Either, Per, "ZooKeeper session timeout"),
    def("zookeeper.path", Some("/tranquility/beams"), Either, Text, "base znode of the beam metadata"),
    def("druid.discovery.curator.path", Some("/druid/discovery"), Either, Text, "Curator service discovery base path"),
    def("druid.selectors.indexing.serviceName", Some("druid/overlord"), Either, Text, "the Overlord's druid.service; '/' becomes ':' in the discovery key"),
    def("druid.overlord.url", None, Either, Text, "fixed Overlord base URL (http://host:port) used instead of discovery"),
    def("task.partitions", Some("1"), Either, Int, "partitions per segment interval"),
    def("task.replicants", Some("1"), Either, Int, "tasks per partition"),
    def("task.warmingPeriod", Some("PT0M"), Either, Per, "create tasks this long before their interval starts"),
    def("serialization.format", Some("json"), Either, OneOf(&["json", "smile"]), "encoding of events pushed to tasks"),
    alias(def("tranquility.maxBatchSize", Some("2000"), Either, Int, "Tranquilizer batch size"), &["druid.tranquilizer.maxBatchSize"]),
    alias(def("tranquility.maxPendingBatches", Some("5"), Either, Int, "batches in flight before send blocks"), &["druid.tranquilizer.maxPendingBatches"]),
    alias(def("tranquility.lingerMillis", Some("0"), Either, Int, "0 = send when a slot is free; >0 = wait to fill a batch; -1 = full batches or flush only"), &["druid.tranquilizer.lingerMillis"]),
    alias(def("tranquility.blockOnFull", Some("true"), Either, Bool, "block senders when the buffer is full; false is honoured only with tranquility.blockOnFull.honour=true (the original never read it)"), &["druid.tranquilizer.blockOnFull"]),
    def("tranquility.blockOnFull.honour", Some("false"), Either, Bool, "let tranquility.blockOnFull=false answer 'Buffer full' instead of blocking (our addition)"),
    def("druidBeam.firehoseGracePeriod", Some("PT5M"), Either, Per, "added to the task's shutoffTime"),
    def("druidBeam.firehoseQuietPeriod", Some("PT1M"), Either, Per, "push errors log at DEBUG, not WARN, this long into a push"),
    def("druidBeam.firehoseRetryPeriod", Some("PT1M"), Either, Per, "how long a push is retried on transient errors"),
    def("druidBeam.firehoseChunkSize", Some("1000"), Either, Int, "maximum events per push request"),
    def("druidBeam.randomizeTaskId", Some("false"), Either, Bool, "append a random suffix to task ids (testing)"),
    def("druidBeam.indexRetryPeriod", Some("PT1M"), Either, Per, "how long Overlord calls are retried on transient errors"),
    def("druidBeam.firehoseBufferSize", Some("100000"), Either, Int, "bufferSize of the task's receiver firehose"),
    def("druidBeam.overlordLocator", Some("curator"), Either, OneOf(&["curator"]), "how the Overlord is found"),
    def("druidBeam.taskLocator", Some("curator"), Either, OneOf(&["curator", "overlord"]), "how tasks are found: discovery or the Overlord's runningTasks"),
    def("druidBeam.overlordPollPeriod", Some("PT20S"), Either, Per, "runningTasks poll period (overlord task locator)"),
    def("druidBeam.basicAuthUser", Some(""), Either, Text, "HTTP Basic user for the Overlord and tasks"),
    def("druidBeam.basicAuthPass", Some(""), Either, Text, "HTTP Basic password for the Overlord and tasks"),
    def("druid.tls.enable", Some("false"), GlobalRead, Bool, "use TLS towards Druid"),
    def("druid.tls.protocol", Some("TLSv1.2"), GlobalRead, Text, "TLS protocol towards Druid"),
    def("druid.tls.trustStorePath", Some(""), GlobalRead, Text, "PEM file of the CAs to trust (empty = public web roots; JKS and PKCS12 are refused with the command that converts them)"),
    def("druid.tls.trustStoreType", Some(""), GlobalRead, Text, "truststore type (empty = default)"),
    def("druid.tls.trustStoreAlgorithm", Some(""), GlobalRead, Text, "trust manager algorithm (empty = default)"),
    def("druid.tls.trustStorePassword", Some(""), GlobalRead, Text, "truststore password (unused: PEM trust stores have none)"),
    def("druid.tls.certPath", Some(""), GlobalRead, Text, "PEM client certificate chain for a Druid that requires one (our addition)"),
    def("druid.tls.keyPath", Some(""), GlobalRead, Text, "PEM private key of druid.tls.certPath (our addition)"),
    // Druid 31+ backends (our addition; reference/modern-druid.md).
    def("druid.ingestion", Some("auto"), GlobalOnly, OneOf(&["auto", "realtime", "supervisor", "batch"]), "how events reach Druid: auto picks by the Overlord's version (below 31 realtime tasks; 31+ a Kafka supervisor when druid.ingestion.kafka.bootstrap.servers is set, else batch appends)"),
    def("druid.ingestion.kafka.bootstrap.servers", None, GlobalOnly, Text, "supervisor backend: the Kafka brokers (host:port,...) Tranquility produces to and Druid reads from"),
    def("druid.ingestion.kafka.topic", Some("tranquility-{dataSource}"), Either, Text, "supervisor backend: the dataSource's topic; {dataSource} is replaced by its name"),
    def("druid.ingestion.kafka.partitions", Some("0"), Either, Int, "supervisor backend: partitions of a topic Tranquility creates (0 = task.partitions)"),
    def("druid.ingestion.kafka.replicationFactor", Some("-1"), Either, Int, "supervisor backend: replication factor of a topic Tranquility creates (-1 = the broker's default)"),
    def("druid.ingestion.kafka.taskDuration", None, Either, Per, "supervisor backend: the supervisor's taskDuration (Druid's default PT1H when unset)"),
    def("druid.ingestion.batch.periodMillis", Some("30000"), Either, Int, "batch backend: how long events of an interval gather before their batch task is submitted"),
    def("druid.ingestion.batch.maxBytes", Some("5242880"), Either, Int, "batch backend: a batch is submitted at once when its rows reach this many bytes"),
    // The source driver (Kafka, Fluvio).
    def("commit.periodMillis", Some("15000"), GlobalOnly, Int, "flush and commit period in millis"),
    def("reportDropsAsExceptions", Some("false"), Either, Bool, "a dropped event stops the process"),
    def("reportParseExceptions", Some("false"), Either, Bool, "an unparseable event stops the process"),
];

/// Prefix of the supervisor backend's producer passthrough properties: librdkafka settings of
/// Tranquility's producer and admin client, such as `security.protocol` (the prefix is removed).
pub const INGESTION_PRODUCER_PREFIX: &str = "druid.ingestion.kafka.producer.";

/// Prefix of the supervisor backend's consumer passthrough properties: the Java consumer
/// settings Druid's supervisor reads the topic with (its `consumerProperties`).
pub const INGESTION_CONSUMER_PREFIX: &str = "druid.ingestion.kafka.consumer.";

/// The definition of `key` (or of the key it is an alias of) in any linked crate's table.
pub fn property(key: &str) -> Option<&'static PropertyDef> {
    PROPERTY_TABLES
        .iter()
        .flat_map(|t| t.rows)
        .find(|d| d.key == key || d.aliases.contains(&key))
}

/// The passthrough prefix `key` falls under, if any.
pub fn passthrough(key: &str) -> Option<&'static PrefixDef> {
    PROPERTY_TABLES
        .iter()
        .flat_map(|t| t.prefixes)
        .find(|p| key.starts_with(p.prefix))
}

/// Whether `key` is a property or a passthrough key of some linked crate.
pub fn is_known(key: &str) -> bool {
    property(key).is_some() || passthrough(key).is_some()
}

/// Checks `value` against `kind`, saying what was expected.
pub fn check_kind(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Text | Kind::List => Ok(()),
        Kind::Int => parse_int(value).map(|_| ()),
        Kind::Bool => parse_bool_prop(value).map(|_| ()),
        Kind::Period => parse_period(value).map(|_| ()),
        Kind::OneOf(words) => parse_one_of(words, value).map(|_| ()),
        Kind::Refused(why) => Err(why.to_string()),
    }
}

fn parse_int(s: &str) -> Result<i64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())
}

fn parse_bool_prop(s: &str) -> Result<bool, String> {
    parse_bool(s).ok_or_else(|| "expected true or false".to_string())
}

fn parse_period(s: &str) -> Result<Period, String> {
    Period::parse(s.trim())
        .map_err(|e| format!("expected an ISO-8601 period such as PT10M ({})", e.reason))
}

fn parse_one_of(words: &[&str], s: &str) -> Result<String, String> {
    let t = s.trim();
    words
        .iter()
        .find(|w| w.eq_ignore_ascii_case(t))
        .map(|w| w.to_string())
        .ok_or_else(|| format!("expected one of: {}", words.join(", ")))
}

/// Whether the value of `key` is a secret (a password, a passphrase, a JAAS config) that
/// must never appear in logs or `Debug` output.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("pass") || k.contains("secret") || k.ends_with("jaas.config")
}

/// Text that must not be printed: its `Debug` shows `<redacted>` (or `""` when empty).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("<redacted>")
        }
    }
}

#[derive(Clone, PartialEq)]
struct Entry {
    value: String,
    file: Arc<str>,
    path: String,
}

/// A set of properties (key → text value), each remembering the file and JSON path it came from.
/// Its `Debug` redacts secret values (see [`is_secret`]).
#[derive(Clone, Default, PartialEq)]
pub struct Properties {
    entries: IndexMap<String, Entry>,
}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, e) in &self.entries {
            if is_secret(k) && !e.value.is_empty() {
                m.entry(k, &format_args!("<redacted> ({} {})", e.file, e.path));
            } else {
                m.entry(k, &format_args!("{:?} ({} {})", e.value, e.file, e.path));
            }
        }
        m.finish()
    }
}

/// The JSON path of property `key` under `base` (`properties["task.partitions"]`).
pub(crate) fn property_path(base: &str, key: &str) -> String {
    format!("{base}[{}]", serde_json::Value::from(key))
}

impl Properties {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` from code.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let path = property_path("properties", &key);
        self.insert_from(key, value.into(), Arc::from("(set in code)"), path);
    }

    pub(crate) fn insert_from(&mut self, key: String, value: String, file: Arc<str>, path: String) {
        self.entries.insert(key, Entry { value, file, path });
    }

    /// Removes every key that starts with `prefix`.
    pub fn remove_prefixed(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }

    /// The value set for exactly `key` (no alias, no default).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.value.as_str())
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Keys and values, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.as_str()))
    }

    /// Number of properties set.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// These properties with `over`'s laid on top (`over` wins).
    pub fn overlay(&self, over: &Properties) -> Properties {
        let mut out = self.clone();
        for (k, e) in &over.entries {
            out.entries.insert(k.clone(), e.clone());
        }
        out
    }

    /// Properties whose key starts with `prefix`, with the prefix removed (Kafka passthrough).
    pub fn with_prefix(&self, prefix: &str) -> IndexMap<String, String> {
        self.entries
            .iter()
            .filter_map(|(k, e)| {
                k.strip_prefix(prefix)
                    .map(|s| (s.to_string(), e.value.clone()))
            })
            .collect()
    }

    /// The value of a table property (`key` or an alias), or its default; with its origin.
    fn resolve(&self, key: &str) -> Option<(&str, Option<&Entry>)> {
        let def = property(key);
        let keys = std::iter::once(key)
            .chain(def.map(|d| d.aliases.iter().copied()).into_iter().flatten());
        for k in keys {
            if let Some(e) = self.entries.get(k) {
                return Some((e.value.as_str(), Some(e)));
            }
        }
        def.and_then(|d| d.default).map(|v| (v, None))
    }

    /// The value of `key` (or its default) read by `parse`; a problem names the key, the
    /// value and where it was set.
    pub fn parse_with<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (value, entry) = self.resolve(key).ok_or_else(|| {
            ConfigError::invalid(
                "(configuration)",
                property_path("properties", key),
                "nothing",
                "this property is required",
            )
        })?;
        parse(value).map_err(|problem| match entry {
            Some(e) => ConfigError::invalid(
                e.file.as_ref(),
                e.path.clone(),
                serde_json::Value::from(value).to_string(),
                problem,
            ),
            None => ConfigError::invalid(
                "(built-in default)",
                property_path("properties", key),
                value,
                problem,
            ),
        })
    }

    /// Text value of `key` (or its default).
    pub fn string(&self, key: &str) -> Result<String, ConfigError> {
        self.parse_with(key, |s| Ok(s.to_string()))
    }

    /// Secret text value of `key` (or its default).
    pub fn secret(&self, key: &str) -> Result<Secret, ConfigError> {
        self.string(key).map(Secret)
    }

    /// Text value of `key`, `None` when unset and without default.
    pub fn opt_string(&self, key: &str) -> Option<String> {
        self.resolve(key).map(|(v, _)| v.to_string())
    }

    /// Whole-number value of `key` (or its default).
    pub fn int(&self, key: &str) -> Result<i64, ConfigError> {
        self.parse_with(key, parse_int)
    }

    /// Whole-number value of `key` that must lie in `min..=max`.
    pub fn int_in(&self, key: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
        self.parse_with(key, |s| {
            let v = parse_int(s)?;
            if (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(format!("expected a whole number from {min} to {max}"))
            }
        })
    }

    /// Boolean value of `key` (or its default).
    pub fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        self.parse_with(key, parse_bool_prop)
    }

    /// Period value of `key` (or its default).
    pub fn period(&self, key: &str) -> Result<Period, ConfigError> {
        self.parse_with(key, parse_period)
    }

    /// Comma-separated list value of `key` (empty entries dropped).
    pub fn list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        self.parse_with(key, |s| {
            Ok(s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect())
        })
    }

    /// Value of `key` that must be one of `words` (returned in the listed spelling).
    pub fn one_of(&self, key: &str, words: &[&str]) -> Result<String, ConfigError> {
        self.parse_with(key, |s| parse_one_of(words, s))
    }
}

/// Encoding of events pushed to tasks (`serialization.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerializationFormat {
    /// JSON arrays.
    Json,
    /// Smile (binary JSON) arrays.
    Smile,
}

/// How tasks are found (`druidBeam.taskLocator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskLocatorKind {
    /// Service discovery of the task's firehose.
    Curator,
    /// The Overlord's runningTasks list.
    Overlord,
}

/// The core properties of one dataSource (global overlaid with its own), typed.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreProperties {
    /// `zookeeper.connect`.
    pub zookeeper_connect: String,
    /// `zookeeper.timeout`.
    pub zookeeper_timeout: Period,
    /// `zookeeper.path`.
    pub zookeeper_path: String,
    /// `druid.discovery.curator.path`.
    pub discovery_path: String,
    /// `druid.selectors.indexing.serviceName`.
    pub indexing_service_name: String,
    /// `druid.overlord.url` (fixed Overlord URL, instead of discovery).
    pub overlord_url: Option<String>,
    /// `task.partitions`.
    pub task_partitions: u32,
    /// `task.replicants`.
    pub task_replicants: u32,
    /// `task.warmingPeriod`.
    pub task_warming_period: Period,
    /// `serialization.format`.
    pub serialization_format: SerializationFormat,
    /// `tranquility.maxBatchSize`.
    pub max_batch_size: usize,
    /// `tranquility.maxPendingBatches`.
    pub max_pending_batches: usize,
    /// `tranquility.lingerMillis`.
    pub linger_millis: i64,
    /// `tranquility.blockOnFull`.
    pub block_on_full: bool,
    /// `druidBeam.firehoseGracePeriod`.
    pub firehose_grace_period: Period,
    /// `druidBeam.firehoseQuietPeriod`.
    pub firehose_quiet_period: Period,
    /// `druidBeam.firehoseRetryPeriod`.
    pub firehose_retry_period: Period,
    /// `druidBeam.firehoseChunkSize`.
    pub firehose_chunk_size: usize,
    /// `druidBeam.randomizeTaskId`.
    pub randomize_task_id: bool,
    /// `druidBeam.indexRetryPeriod`.
    pub index_retry_period: Period,
    /// `druidBeam.firehoseBufferSize`.
    pub firehose_buffer_size: usize,
    /// `druidBeam.taskLocator`.
    pub task_locator: TaskLocatorKind,
    /// `druidBeam.overlordPollPeriod`.
    pub overlord_poll_period: Period,
    /// `druidBeam.basicAuthUser` (empty = none).
    pub basic_auth_user: String,
    /// `druidBeam.basicAuthPass` (empty = none).
    pub basic_auth_pass: Secret,
    /// `druid.tls.enable`.
    pub tls_enable: bool,
    /// `druid.tls.protocol`.
    pub tls_protocol: String,
    /// `druid.tls.trustStorePath` (empty = system roots).
    pub tls_trust_store_path: String,
    /// `druid.tls.trustStoreType`.
    pub tls_trust_store_type: String,
    /// `druid.tls.trustStoreAlgorithm`.
    pub tls_trust_store_algorithm: String,
    /// `druid.tls.trustStorePassword`.
    pub tls_trust_store_password: Secret,
    /// `druid.tls.certPath`: PEM client certificate chain (empty = none).
    pub tls_cert_path: String,
    /// `druid.tls.keyPath`: PEM client private key (empty = none).
    pub tls_key_path: String,
}

/// `tranquility.blockOnFull`, as the original behaved unless `tranquility.blockOnFull.honour`
/// opts in: the original documented the key but never read it, so its Server and Kafka always
/// blocked, and a file that says `false` did not mean "fail when full".
fn block_on_full(p: &Properties) -> Result<bool, ConfigError> {
    let asked = p.bool("tranquility.blockOnFull")?;
    let honour = p.bool("tranquility.blockOnFull.honour")?;
    if asked || honour {
        return Ok(asked);
    }
    tracing::warn!(
        "tranquility.blockOnFull=false is ignored and senders block when the buffer is full, \
         as in the original Tranquility (which never read this key); set \
         tranquility.blockOnFull.honour=true to answer 'Buffer full' (HTTP 503) instead"
    );
    Ok(true)
}

fn usize_of(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

impl Default for CoreProperties {
    /// Every default of [`CORE_PROPERTIES`].
    fn default() -> Self {
        Self::from_properties(&Properties::new()).expect("the core's property defaults are valid")
    }
}

impl CoreProperties {
    /// Reads and checks every core property (defaults from [`CORE_PROPERTIES`]).
    pub fn from_properties(p: &Properties) -> Result<Self, ConfigError> {
        Ok(Self {
            zookeeper_connect: p.string("zookeeper.connect")?,
            zookeeper_timeout: p.period("zookeeper.timeout")?,
            zookeeper_path: p.string("zookeeper.path")?,
            discovery_path: p.string("druid.discovery.curator.path")?,
            indexing_service_name: p.string("druid.selectors.indexing.serviceName")?,
            overlord_url: p
                .opt_string("druid.overlord.url")
                .filter(|s| !s.trim().is_empty()),
            task_partitions: p.int_in("task.partitions", 1, i64::from(u16::MAX))? as u32,
            task_replicants: p.int_in("task.replicants", 1, i64::from(u16::MAX))? as u32,
            task_warming_period: p.period("task.warmingPeriod")?,
            serialization_format: p.parse_with("serialization.format", |s| match parse_one_of(
                &["json", "smile"],
                s,
            )?
            .as_str()
            {
                #[cfg(feature = "smile")]
                "smile" => Ok(SerializationFormat::Smile),
                #[cfg(not(feature = "smile"))]
                "smile" => Err(crate::druid::receiver::SMILE_MISSING.into()),
                _ => Ok(SerializationFormat::Json),
            })?,
            max_batch_size: usize_of(p.int_in(
                "tranquility.maxBatchSize",
                1,
                i64::from(i32::MAX),
            )?),
            max_pending_batches: usize_of(p.int_in(
                "tranquility.maxPendingBatches",
                1,
                i64::from(i32::MAX),
            )?),
            linger_millis: p.int_in("tranquility.lingerMillis", -1, i64::MAX)?,
            block_on_full: block_on_full(p)?,
            firehose_grace_period: p.period("druidBeam.firehoseGracePeriod")?,
            firehose_quiet_period: p.period("druidBeam.firehoseQuietPeriod")?,
            firehose_retry_period: p.period("druidBeam.firehoseRetryPeriod")?,
            firehose_chunk_size: usize_of(p.int_in(
                "druidBeam.firehoseChunkSize",
                1,
                i64::from(i32::MAX),
            )?),
            randomize_task_id: p.bool("druidBeam.randomizeTaskId")?,
            index_retry_period: p.period("druidBeam.indexRetryPeriod")?,
            firehose_buffer_size: usize_of(p.int_in(
                "druidBeam.firehoseBufferSize",
                1,
                i64::from(i32::MAX),
            )?),
            task_locator: {
                p.one_of("druidBeam.overlordLocator", &["curator"])?;
                match p
                    .one_of("druidBeam.taskLocator", &["curator", "overlord"])?
                    .as_str()
                {
                    "overlord" => TaskLocatorKind::Overlord,
                    _ => TaskLocatorKind::Curator,
                }
            },
            overlord_poll_period: p.period("druidBeam.overlordPollPeriod")?,
            basic_auth_user: p.string("druidBeam.basicAuthUser")?,
            basic_auth_pass: p.secret("druidBeam.basicAuthPass")?,
            tls_enable: p.bool("druid.tls.enable")?,
            tls_protocol: p.string("druid.tls.protocol")?,
            tls_trust_store_path: p.string("druid.tls.trustStorePath")?,
            tls_trust_store_type: p.string("druid.tls.trustStoreType")?,
            tls_trust_store_algorithm: p.string("druid.tls.trustStoreAlgorithm")?,
            tls_trust_store_password: p.secret("druid.tls.trustStorePassword")?,
            tls_cert_path: p.string("druid.tls.certPath")?,
            tls_key_path: p.string("druid.tls.keyPath")?,
        })
    }

    /// The Overlord's discovery key: the service name with `/` turned into `:` (`druid:overlord`).
    pub fn indexing_service_key(&self) -> String {
        self.indexing_service_name.replace('/', ":")
    }

    /// Basic-auth credentials when both user and password are non-empty.
    pub fn basic_auth(&self) -> Option<(&str, &str)> {
        (!self.basic_auth_user.is_empty() && !self.basic_auth_pass.is_empty())
            .then_some((self.basic_auth_user.as_str(), self.basic_auth_pass.expose()))
    }
}

/// Which way events reach Druid (`druid.ingestion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingestion {
    /// Decided by the Overlord's version at start-up.
    Auto,
    /// `index_realtime` tasks and their event receivers (Druid 0.9.2 to 30).
    Realtime,
    /// A Kafka topic read by a Druid supervisor (31+).
    Supervisor,
    /// `index_parallel` tasks with inline micro-batches (31+).
    Batch,
}

impl Ingestion {
    /// The property's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Ingestion::Auto => "auto",
            Ingestion::Realtime => "realtime",
            Ingestion::Supervisor => "supervisor",
            Ingestion::Batch => "batch",
        }
    }
}

/// The Druid 31+ backend settings of one dataSource (global overlaid with its own), typed.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestionProperties {
    /// `druid.ingestion`.
    pub ingestion: Ingestion,
    /// `druid.ingestion.kafka.bootstrap.servers`.
    pub kafka_bootstrap_servers: Option<String>,
    /// `druid.ingestion.kafka.topic`, with `{dataSource}` still in it.
    pub kafka_topic_pattern: String,
    /// `druid.ingestion.kafka.partitions` (0 = `task.partitions`).
    pub kafka_partitions: u32,
    /// `druid.ingestion.kafka.replicationFactor` (-1 = the broker's default).
    pub kafka_replication_factor: i32,
    /// `druid.ingestion.kafka.taskDuration`.
    pub kafka_task_duration: Option<Period>,
    /// `druid.ingestion.batch.periodMillis`.
    pub batch_period_millis: u64,
    /// `druid.ingestion.batch.maxBytes`.
    pub batch_max_bytes: u64,
    /// `druid.ingestion.kafka.producer.*`, the prefix removed: Tranquility's producer.
    pub kafka_producer_properties: Passthrough,
    /// `druid.ingestion.kafka.consumer.*`, the prefix removed: Druid's consumerProperties.
    pub kafka_consumer_properties: Passthrough,
}

/// Passthrough settings (key without its prefix, value); `Debug` redacts secret values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Passthrough(pub IndexMap<String, String>);

impl std::fmt::Debug for Passthrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            let shown = if is_secret(k) {
                "<redacted>"
            } else {
                v.as_str()
            };
            m.entry(k, &shown);
        }
        m.finish()
    }
}

impl IngestionProperties {
    /// Reads and checks the backend properties.
    pub fn from_properties(p: &Properties) -> Result<Self, ConfigError> {
        let ingestion = match p
            .one_of(
                "druid.ingestion",
                &["auto", "realtime", "supervisor", "batch"],
            )?
            .as_str()
        {
            "realtime" => Ingestion::Realtime,
            "supervisor" => Ingestion::Supervisor,
            "batch" => Ingestion::Batch,
            _ => Ingestion::Auto,
        };
        let task_duration = match p.opt_string("druid.ingestion.kafka.taskDuration") {
            Some(_) => Some(p.period("druid.ingestion.kafka.taskDuration")?),
            None => None,
        };
        Ok(Self {
            ingestion,
            kafka_bootstrap_servers: p
                .opt_string("druid.ingestion.kafka.bootstrap.servers")
                .filter(|s| !s.trim().is_empty()),
            kafka_topic_pattern: p.string("druid.ingestion.kafka.topic")?,
            kafka_partitions: p.int_in("druid.ingestion.kafka.partitions", 0, 100_000)? as u32,
            kafka_replication_factor: p.int_in(
                "druid.ingestion.kafka.replicationFactor",
                -1,
                1_000,
            )? as i32,
            kafka_task_duration: task_duration,
            batch_period_millis: p.int_in("druid.ingestion.batch.periodMillis", 1, i64::MAX)?
                as u64,
            batch_max_bytes: p.int_in("druid.ingestion.batch.maxBytes", 1, i64::MAX)? as u64,
            kafka_producer_properties: Passthrough(p.with_prefix(INGESTION_PRODUCER_PREFIX)),
            kafka_consumer_properties: Passthrough(p.with_prefix(INGESTION_CONSUMER_PREFIX)),
        })
    }

    /// The topic of `data_source` on the supervisor backend.
    pub fn kafka_topic(&self, data_source: &str) -> String {
        self.kafka_topic_pattern
            .replace("{dataSource}", data_source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut p = Properties::new();
        p.insert("druidBeam.basicAuthUser", "druid");
        p.insert("druidBeam.basicAuthPass", "hunter2-core");
        p.insert("druid.tls.trustStorePassword", "hunter2-trust");
        p.insert(
            "druid.ingestion.kafka.producer.sasl.password",
            "hunter2-producer",
        );
        let core = CoreProperties::from_properties(&p).unwrap();
        let ingestion = IngestionProperties::from_properties(&p).unwrap();
        assert_eq!(core.basic_auth(), Some(("druid", "hunter2-core")));
        for text in [
            format!("{p:?}"),
            format!("{core:?}"),
            format!("{ingestion:?}"),
        ] {
            assert!(!text.contains("hunter2"), "secret in {text}");
        }
        assert!(
            format!("{p:?}").contains("\"druid\""),
            "non-secrets stay visible"
        );
        assert!(format!("{core:?}").contains("basic_auth_pass: <redacted>"));
        assert_eq!(
            ingestion.kafka_producer_properties.0["sasl.password"],
            "hunter2-producer"
        );
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }

    #[test]
    fn defaults_come_from_the_table() {
        let c = CoreProperties::from_properties(&Properties::new()).unwrap();
        assert_eq!(c.zookeeper_connect, "localhost:2181");
        assert_eq!(c.zookeeper_timeout, Period::seconds(20));
        assert_eq!(c.indexing_service_key(), "druid:overlord");
        assert_eq!((c.task_partitions, c.task_replicants), (1, 1));
        assert_eq!(
            (c.max_batch_size, c.max_pending_batches, c.linger_millis),
            (2000, 5, 0)
        );
        assert!(c.block_on_full);
        assert_eq!(c.firehose_grace_period, Period::minutes(5));
        assert_eq!(c.firehose_chunk_size, 1000);
        assert_eq!(c.firehose_buffer_size, 100_000);
        assert_eq!(c.task_locator, TaskLocatorKind::Curator);
        assert_eq!(c.serialization_format, SerializationFormat::Json);
        assert_eq!(c.basic_auth(), None);
        assert_eq!(c.overlord_url, None);
    }

    #[test]
    fn both_tranquilizer_spellings_are_read() {
        let mut p = Properties::new();
        p.insert("druid.tranquilizer.maxBatchSize", "500");
        p.insert("tranquility.lingerMillis", "-1");
        p.insert("druid.tranquilizer.blockOnFull", "false");
        p.insert("tranquility.blockOnFull.honour", "true");
        let c = CoreProperties::from_properties(&p).unwrap();
        assert_eq!(
            (c.max_batch_size, c.linger_millis, c.block_on_full),
            (500, -1, false)
        );
        // The original spelling wins when both are set.
        p.insert("tranquility.maxBatchSize", "700");
        assert_eq!(
            CoreProperties::from_properties(&p).unwrap().max_batch_size,
            700
        );
    }

    #[test]
    fn block_on_full_false_blocks_unless_honoured() {
        let mut p = Properties::new();
        p.insert("tranquility.blockOnFull", "false");
        assert!(
            CoreProperties::from_properties(&p).unwrap().block_on_full,
            "the original always blocked"
        );
        p.insert("tranquility.blockOnFull.honour", "true");
        assert!(!CoreProperties::from_properties(&p).unwrap().block_on_full);
        let mut p = Properties::new();
        p.insert("tranquility.blockOnFull.honour", "true");
        assert!(CoreProperties::from_properties(&p).unwrap().block_on_full);
        p.insert("tranquility.blockOnFull.honour", "maybe");
        let e = CoreProperties::from_properties(&p).unwrap_err().to_string();
        assert!(e.contains("tranquility.blockOnFull.honour"), "{e}");
    }

    #[test]
    fn bad_values_name_key_value_and_expectation() {
        let mut p = Properties::new();
        p.insert("task.partitions", "two");
        let e = CoreProperties::from_properties(&p).unwrap_err().to_string();
        assert!(
            e.contains(r#"properties["task.partitions"]"#)
                && e.contains("\"two\"")
                && e.contains("whole number"),
            "{e}"
        );
        let mut p = Properties::new();
        p.insert("serialization.format", "xml");
        let e = CoreProperties::from_properties(&p).unwrap_err().to_string();
        assert!(e.contains("json, smile"), "{e}");
        let mut p = Properties::new();
        p.insert("druidBeam.firehoseGracePeriod", "5 minutes");
        let e = CoreProperties::from_properties(&p).unwrap_err().to_string();
        assert!(e.contains("ISO-8601 period"), "{e}");
    }

    #[test]
    fn overlay_and_passthrough() {
        let mut g = Properties::new();
        g.insert("task.partitions", "2");
        g.insert("druid.ingestion.kafka.consumer.security.protocol", "SSL");
        let mut own = Properties::new();
        own.insert("task.partitions", "3");
        let merged = g.overlay(&own);
        assert_eq!(merged.get("task.partitions"), Some("3"));
        let i = IngestionProperties::from_properties(&merged).unwrap();
        assert_eq!(i.kafka_consumer_properties.0["security.protocol"], "SSL");
        assert!(is_known("druid.ingestion.kafka.producer.anything"));
        assert!(!is_known("tranquility.batchSize"));
        let mut m = merged.clone();
        m.remove_prefixed("task.");
        assert_eq!(m.get("task.partitions"), None);
    }
}
