//! What SQL can read: the `druid` schema (one table per dataSource with rows, its columns
//! `__time`, then the dimensions and metrics in segment order) and the system tables
//! `INFORMATION_SCHEMA.SCHEMATA`/`TABLES`/`COLUMNS`, `sys.segments` and `sys.tasks`, with Druid's
//! columns and druid-local's state as their rows.

use super::error::SqlError;
use super::types::{SqlType, Val};
use crate::spec::{AggKind, NumType};
use crate::storage::Segment;
use crate::task::StatusCode as TaskStatus;
use crate::time::{self, ETERNITY};
use crate::Shared;
use std::sync::Arc;

/// What a column is, for planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `__time`.
    Time,
    /// A string dimension.
    Dimension,
    /// A stored metric of this aggregator kind.
    Metric(AggKind),
    /// A column of a system table.
    System,
}

/// A table column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name (case-sensitive, as in Druid).
    pub name: String,
    /// SQL type.
    pub ty: SqlType,
    /// Role.
    pub role: Role,
}

impl Column {
    fn system(name: &str, ty: SqlType) -> Column {
        Column {
            name: name.to_owned(),
            ty,
            role: Role::System,
        }
    }
}

/// A table a statement reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableRef {
    /// A dataSource.
    DataSource(String),
    /// `INFORMATION_SCHEMA.SCHEMATA`.
    Schemata,
    /// `INFORMATION_SCHEMA.TABLES`.
    Tables,
    /// `INFORMATION_SCHEMA.COLUMNS`.
    Columns,
    /// `sys.segments`.
    Segments,
    /// `sys.tasks`.
    Tasks,
    /// No `FROM`: one row without columns.
    Nothing,
}

/// The catalog name Druid reports.
pub const CATALOG: &str = "druid";
/// Druid's schemas, in the order `INFORMATION_SCHEMA.SCHEMATA` lists them.
const SCHEMAS: [&str; 5] = ["INFORMATION_SCHEMA", "druid", "lookup", "sys", "view"];
/// A system table: schema, name and its columns.
type SystemTable = (&'static str, &'static str, fn() -> Vec<Column>);

/// System tables druid-local serves.
const SYSTEM_TABLES: [SystemTable; 5] = [
    ("INFORMATION_SCHEMA", "COLUMNS", columns_columns),
    ("INFORMATION_SCHEMA", "SCHEMATA", schemata_columns),
    ("INFORMATION_SCHEMA", "TABLES", tables_columns),
    ("sys", "segments", segments_columns),
    ("sys", "tasks", tasks_columns),
];

fn schemata_columns() -> Vec<Column> {
    [
        "CATALOG_NAME",
        "SCHEMA_NAME",
        "SCHEMA_OWNER",
        "DEFAULT_CHARACTER_SET_CATALOG",
        "DEFAULT_CHARACTER_SET_SCHEMA",
        "DEFAULT_CHARACTER_SET_NAME",
        "SQL_PATH",
    ]
    .iter()
    .map(|n| Column::system(n, SqlType::Varchar))
    .collect()
}

fn tables_columns() -> Vec<Column> {
    [
        "TABLE_CATALOG",
        "TABLE_SCHEMA",
        "TABLE_NAME",
        "TABLE_TYPE",
        "IS_JOINABLE",
        "IS_BROADCAST",
    ]
    .iter()
    .map(|n| Column::system(n, SqlType::Varchar))
    .collect()
}

fn columns_columns() -> Vec<Column> {
    let mut c: Vec<Column> = [
        "TABLE_CATALOG",
        "TABLE_SCHEMA",
        "TABLE_NAME",
        "COLUMN_NAME",
        "ORDINAL_POSITION",
        "COLUMN_DEFAULT",
        "IS_NULLABLE",
        "DATA_TYPE",
        "CHARACTER_MAXIMUM_LENGTH",
        "CHARACTER_OCTET_LENGTH",
        "NUMERIC_PRECISION",
        "NUMERIC_PRECISION_RADIX",
        "NUMERIC_SCALE",
        "DATETIME_PRECISION",
        "CHARACTER_SET_NAME",
        "COLLATION_NAME",
    ]
    .iter()
    .map(|n| Column::system(n, SqlType::Varchar))
    .collect();
    c.push(Column::system("JDBC_TYPE", SqlType::Bigint));
    c
}

fn segments_columns() -> Vec<Column> {
    use SqlType::{Bigint as L, Varchar as S};
    [
        ("segment_id", S),
        ("datasource", S),
        ("start", S),
        ("end", S),
        ("size", L),
        ("version", S),
        ("partition_num", L),
        ("num_replicas", L),
        ("num_rows", L),
        ("is_active", L),
        ("is_published", L),
        ("is_available", L),
        ("is_realtime", L),
        ("is_overshadowed", L),
        ("shard_spec", S),
        ("dimensions", S),
        ("metrics", S),
        ("last_compaction_state", S),
        ("replication_factor", L),
    ]
    .iter()
    .map(|(n, t)| Column::system(n, *t))
    .collect()
}

fn tasks_columns() -> Vec<Column> {
    use SqlType::{Bigint as L, Varchar as S};
    [
        ("task_id", S),
        ("group_id", S),
        ("type", S),
        ("datasource", S),
        ("created_time", S),
        ("queue_insertion_time", S),
        ("status", S),
        ("runner_status", S),
        ("duration", L),
        ("location", S),
        ("host", S),
        ("plaintext_port", L),
        ("tls_port", L),
        ("error_msg", S),
    ]
    .iter()
    .map(|(n, t)| Column::system(n, *t))
    .collect()
}

/// The columns of a dataSource as its segments show them, or `None` when it has no rows.
pub fn data_source_columns(shared: &Shared, ds: &str) -> Option<Vec<Column>> {
    if !shared.store.data_sources().iter().any(|d| d == ds) {
        return None;
    }
    let segs = shared.store.view(ds, &[ETERNITY]);
    let mut cols = vec![Column {
        name: "__time".into(),
        ty: SqlType::Timestamp,
        role: Role::Time,
    }];
    let mut metrics: Vec<Column> = Vec::new();
    for s in &segs {
        let idx = s.index.read();
        for d in &idx.dims {
            if !cols.iter().any(|c| &c.name == d) {
                cols.push(Column {
                    name: d.clone(),
                    ty: SqlType::Varchar,
                    role: Role::Dimension,
                });
            }
        }
        for m in &idx.metrics {
            if !metrics.iter().any(|c| c.name == m.name) {
                let ty = match m.kind.num_type() {
                    NumType::Long => SqlType::Bigint,
                    NumType::Double => SqlType::Double,
                    NumType::Float => SqlType::Float,
                };
                metrics.push(Column {
                    name: m.name.clone(),
                    ty,
                    role: Role::Metric(m.kind),
                });
            }
        }
    }
    // A metric named like a dimension is read as the dimension, as the native engine does.
    metrics.retain(|m| !cols.iter().any(|c| c.name == m.name));
    cols.extend(metrics);
    Some(cols)
}

/// Resolves a `FROM` name (`wiki`, `druid.wiki`, `INFORMATION_SCHEMA.TABLES`, `sys.segments`);
/// `at` is where the name is, for the error.
pub fn resolve(
    shared: &Shared,
    parts: &[String],
    at: Option<super::error::Pos>,
) -> Result<(TableRef, Vec<Column>), SqlError> {
    let not_found = |what: &str, within: Option<&str>| {
        let message = match within {
            Some(s) => format!("Object '{what}' not found within '{s}'"),
            None => format!("Object '{what}' not found"),
        };
        Err(SqlError::invalid(message, at))
    };
    let (schema, table) = match parts {
        [t] => ("druid", t.as_str()),
        [s, t] => (s.as_str(), t.as_str()),
        [c, s, t] if c == CATALOG => (s.as_str(), t.as_str()),
        _ => return not_found(&parts.join("."), None),
    };
    if schema == "druid" {
        return match data_source_columns(shared, table) {
            Some(cols) => Ok((TableRef::DataSource(table.to_owned()), cols)),
            None => not_found(table, (parts.len() > 1).then_some("druid")),
        };
    }
    if !SCHEMAS.contains(&schema) {
        return not_found(schema, None);
    }
    let Some((_, _, columns)) = SYSTEM_TABLES
        .iter()
        .find(|(s, t, _)| *s == schema && *t == table)
    else {
        return not_found(table, Some(schema));
    };
    let r = match table {
        "SCHEMATA" => TableRef::Schemata,
        "TABLES" => TableRef::Tables,
        "COLUMNS" => TableRef::Columns,
        "segments" => TableRef::Segments,
        _ => TableRef::Tasks,
    };
    Ok((r, columns()))
}

fn s(v: &str) -> Val {
    Val::Str(v.to_owned())
}

fn opt(v: Option<String>) -> Val {
    v.map_or(Val::Null, Val::Str)
}

/// Every table Druid lists, as (schema, name, type, columns).
fn all_tables(shared: &Shared) -> Vec<(&'static str, String, &'static str, Vec<Column>)> {
    let mut out = Vec::new();
    for schema in SCHEMAS {
        if schema == "druid" {
            let mut names = shared.store.data_sources();
            names.sort();
            for ds in names {
                if let Some(cols) = data_source_columns(shared, &ds) {
                    out.push(("druid", ds, "TABLE", cols));
                }
            }
        }
        for (s, t, cols) in SYSTEM_TABLES.iter().filter(|(s, _, _)| *s == schema) {
            out.push((*s, (*t).to_owned(), "SYSTEM_TABLE", cols()));
        }
    }
    out
}

/// Calcite's default precision of a numeric or datetime type, as Druid reports it.
fn precision(ty: SqlType) -> Option<&'static str> {
    match ty {
        SqlType::Bigint => Some("19"),
        SqlType::Integer => Some("10"),
        SqlType::Double | SqlType::Float => Some("15"),
        SqlType::Decimal => Some("19"),
        SqlType::Timestamp => Some("3"),
        _ => None,
    }
}

fn segment_row(seg: &Arc<Segment>, realtime: bool) -> Vec<Val> {
    let idx = seg.index.read();
    let shard =
        serde_json::json!({"type": "numbered", "partitionNum": seg.partition, "partitions": 0});
    let metrics: Vec<&str> = idx.metrics.iter().map(|m| m.name.as_str()).collect();
    vec![
        s(&seg.id()),
        s(&seg.data_source),
        s(&time::iso(seg.interval.start)),
        s(&time::iso(seg.interval.end)),
        Val::Long(0),
        s(&seg.version),
        Val::Long(i64::from(seg.partition)),
        Val::Long(1),
        Val::Long(idx.len() as i64),
        Val::Long(1),
        Val::Long(i64::from(!realtime)),
        Val::Long(1),
        Val::Long(i64::from(realtime)),
        Val::Long(0),
        s(&shard.to_string()),
        s(&serde_json::to_string(&idx.dims).unwrap_or_default()),
        s(&serde_json::to_string(&metrics).unwrap_or_default()),
        Val::Null,
        if realtime { Val::Null } else { Val::Long(1) },
    ]
}

/// The rows of a system table, in its columns' order.
pub fn rows(shared: &Shared, table: &TableRef) -> Vec<Vec<Val>> {
    match table {
        TableRef::Nothing => vec![Vec::new()],
        TableRef::DataSource(_) => Vec::new(),
        TableRef::Schemata => SCHEMAS
            .iter()
            .map(|name| {
                let mut r = vec![s(CATALOG), s(name)];
                r.extend(std::iter::repeat_n(Val::Null, 5));
                r
            })
            .collect(),
        TableRef::Tables => all_tables(shared)
            .into_iter()
            .map(|(schema, name, ty, _)| {
                vec![
                    s(CATALOG),
                    s(schema),
                    Val::Str(name),
                    s(ty),
                    s("NO"),
                    s("NO"),
                ]
            })
            .collect(),
        TableRef::Columns => {
            let mut out = Vec::new();
            for (schema, name, _, cols) in all_tables(shared) {
                for (i, c) in cols.iter().enumerate() {
                    let numeric = c.ty.is_numeric();
                    let nullable = c.ty.is_string();
                    out.push(vec![
                        s(CATALOG),
                        s(schema),
                        s(&name),
                        s(&c.name),
                        // Druid's ORDINAL_POSITION is the 0-based field index, as text.
                        Val::Str(i.to_string()),
                        s(""),
                        s(if nullable { "YES" } else { "NO" }),
                        s(c.ty.name()),
                        Val::Null,
                        Val::Null,
                        opt(numeric.then(|| precision(c.ty).unwrap_or("0").to_owned())),
                        opt(numeric.then(|| "10".to_owned())),
                        opt(numeric.then(|| "0".to_owned())),
                        opt((c.ty == SqlType::Timestamp).then(|| "3".to_owned())),
                        opt(c.ty.is_string().then(|| "UTF-16LE".to_owned())),
                        opt(c
                            .ty
                            .is_string()
                            .then(|| "UTF-16LE$en_US$primary".to_owned())),
                        Val::Long(c.ty.jdbc()),
                    ]);
                }
            }
            out
        }
        TableRef::Segments => {
            let mut names = shared.store.data_sources();
            names.sort();
            let mut out = Vec::new();
            for ds in names {
                let mut segs = shared.store.view(&ds, &[ETERNITY]);
                segs.sort_by_key(|s| (s.interval.start, s.partition));
                for seg in segs.iter().filter(|s| !s.index.read().is_empty()) {
                    let realtime = !shared.store.is_handed_off(seg);
                    out.push(segment_row(seg, realtime));
                }
            }
            out
        }
        TableRef::Tasks => shared
            .tasks
            .read()
            .values()
            .map(|t| {
                let st = t.state.lock().clone();
                let (status, runner) = match st.status {
                    TaskStatus::Running => ("RUNNING", "RUNNING"),
                    TaskStatus::Success => ("SUCCESS", "NONE"),
                    TaskStatus::Failed => ("FAILED", "NONE"),
                };
                let location = match (&st.location, st.status) {
                    (Some((h, p)), TaskStatus::Running) => Some((h.clone(), i64::from(*p))),
                    _ => None,
                };
                vec![
                    s(&t.spec.id),
                    s(&t.spec.group_id),
                    s(t.spec.kind.name()),
                    s(&t.spec.data_source),
                    s(&time::iso(t.created)),
                    s("1970-01-01T00:00:00.000Z"),
                    s(status),
                    s(runner),
                    Val::Long(st.duration.unwrap_or(-1)),
                    match &location {
                        Some((h, p)) => Val::Str(format!("{h}:{p}")),
                        None => Val::Null,
                    },
                    opt(location.as_ref().map(|(h, _)| h.clone())),
                    Val::Long(location.as_ref().map_or(-1, |(_, p)| *p)),
                    Val::Long(-1),
                    opt(st.error.clone()),
                ]
            })
            .collect(),
    }
}
