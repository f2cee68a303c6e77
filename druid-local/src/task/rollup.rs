//! The in-memory segment index: interned dimension columns, typed metric columns, and rollup
//! through a hash map keyed by (truncated time, dimension value ids).

use crate::config::NullHandling;
use crate::spec::{AggKind, AggOp, MetricSpec, NumType};
use crate::time::Millis;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// A dimension value of one input row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DimValue {
    /// Missing, null or empty (legacy null handling treats `""` as null).
    Null,
    /// One string.
    One(Box<str>),
    /// Several strings, sorted (duplicates kept).
    Multi(Box<[Box<str>]>),
}

impl DimValue {
    /// The individual values (none for null).
    pub fn values(&self) -> &[Box<str>] {
        match self {
            DimValue::Null => &[],
            DimValue::One(s) => std::slice::from_ref(s),
            DimValue::Multi(v) => v,
        }
    }
    /// Druid's JSON form: null, a string, or an array.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            DimValue::Null => serde_json::Value::Null,
            DimValue::One(s) => serde_json::Value::String(s.to_string()),
            DimValue::Multi(v) => v
                .iter()
                .map(|s| serde_json::Value::String(s.to_string()))
                .collect(),
        }
    }
}

/// A numeric metric input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// Absent or not a number (reads as 0 in legacy null handling).
    Missing,
    /// An integer.
    Long(i64),
    /// A floating-point number.
    Double(f64),
}

impl Num {
    /// As a long (doubles truncate, like Java's `Number.longValue`).
    pub fn as_long(self) -> i64 {
        match self {
            Num::Missing => 0,
            Num::Long(l) => l,
            Num::Double(d) => d as i64,
        }
    }
    /// As a double.
    pub fn as_double(self) -> f64 {
        match self {
            Num::Missing => 0.0,
            Num::Long(l) => l as f64,
            Num::Double(d) => d,
        }
    }
}

/// Dimensions of a parsed row: aligned to the spec's list, or named (schemaless).
#[derive(Debug, Clone)]
pub enum RowDims {
    /// One value per spec dimension, in spec order.
    Fixed(Vec<DimValue>),
    /// Discovered dimensions in event order.
    Named(Vec<(String, DimValue)>),
}

/// A parsed event, ready to index.
#[derive(Debug, Clone)]
pub struct InputRow {
    /// Event time (not truncated).
    pub ts: Millis,
    /// Dimension values.
    pub dims: RowDims,
    /// One input per metric, in metricsSpec order.
    pub metrics: Vec<Num>,
}

/// One dimension's dictionary: id 0 is null.
#[derive(Debug, Default, Clone)]
pub struct Dict {
    ids: FxHashMap<DimValue, u32>,
    /// Values by id.
    pub values: Vec<DimValue>,
}

impl Dict {
    fn new() -> Dict {
        Dict {
            ids: FxHashMap::default(),
            values: vec![DimValue::Null],
        }
    }
    fn intern(&mut self, v: DimValue) -> u32 {
        if v == DimValue::Null {
            return 0;
        }
        if let Some(id) = self.ids.get(&v) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }
    /// Number of distinct non-null values.
    pub fn cardinality(&self) -> usize {
        self.values.len() - 1
    }
}

/// A typed metric column.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// Longs.
    Long(Vec<i64>),
    /// Doubles (also floats, rounded to f32 after each step).
    Double(Vec<f64>),
}

/// A stored numeric value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val {
    /// Long value.
    Long(i64),
    /// Double value.
    Double(f64),
}

impl Column {
    /// Value at `row`.
    #[inline]
    pub fn get(&self, row: usize) -> Val {
        match self {
            Column::Long(v) => Val::Long(v[row]),
            Column::Double(v) => Val::Double(v[row]),
        }
    }
}

/// A rolled-up segment index.
#[derive(Debug, Clone)]
pub struct Index {
    /// Dimension names in first-seen (or spec) order.
    pub dims: Vec<String>,
    dim_pos: FxHashMap<String, usize>,
    /// Dictionary per dimension.
    pub dicts: Vec<Dict>,
    /// Value ids per dimension, per row.
    pub dim_cols: Vec<Vec<u32>>,
    /// Metric definitions.
    pub metrics: Vec<MetricSpec>,
    /// Metric columns.
    pub metric_cols: Vec<Column>,
    /// Per metric, which rows hold null (SQL-compatible null handling; empty when legacy).
    metric_nulls: Vec<Vec<bool>>,
    /// Whether a missing metric input is stored as null.
    nullable: bool,
    /// Whether the segment was handed off (its metadata then reads as a merged segment's).
    pub handed_off: bool,
    /// Truncated row times.
    pub times: Vec<Millis>,
    /// Whether equal rows merge.
    pub rollup: bool,
    keys: FxHashMap<Box<[u32]>, u32>,
    scratch: Vec<u32>,
    /// Newest event time ingested (before truncation).
    pub max_ingested: Option<Millis>,
}

impl Index {
    /// An empty index with the spec's dimensions (empty for schemaless) and metrics.
    pub fn new(dims: &[String], metrics: &[MetricSpec], rollup: bool) -> Index {
        let metric_cols = metrics
            .iter()
            .map(|m| match m.kind.num_type() {
                NumType::Long => Column::Long(Vec::new()),
                _ => Column::Double(Vec::new()),
            })
            .collect();
        Index {
            dims: dims.to_vec(),
            dim_pos: dims
                .iter()
                .enumerate()
                .map(|(i, d)| (d.clone(), i))
                .collect(),
            dicts: dims.iter().map(|_| Dict::new()).collect(),
            dim_cols: dims.iter().map(|_| Vec::new()).collect(),
            metrics: metrics.to_vec(),
            metric_cols,
            metric_nulls: metrics.iter().map(|_| Vec::new()).collect(),
            nullable: false,
            handed_off: false,
            times: Vec::new(),
            rollup,
            keys: FxHashMap::default(),
            scratch: Vec::new(),
            max_ingested: None,
        }
    }

    /// The same index storing missing metric inputs as `null_handling` says (legacy by
    /// default); set before the first row.
    pub fn with_nulls(mut self, null_handling: NullHandling) -> Index {
        self.nullable = null_handling == NullHandling::SqlCompatible;
        self
    }

    /// Whether metric `j` is null in `row`.
    #[inline]
    pub fn metric_is_null(&self, j: usize, row: usize) -> bool {
        self.metric_nulls[j].get(row).copied().unwrap_or(false)
    }

    /// Whether metric `j` holds a null in any row.
    pub fn metric_has_nulls(&self, j: usize) -> bool {
        self.metric_nulls[j].contains(&true)
    }

    /// Which rows of metric `j` are null (empty when none can be).
    pub fn metric_nulls(&self, j: usize) -> &[bool] {
        &self.metric_nulls[j]
    }

    /// Number of stored rows.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether no row is stored.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Position of a dimension column.
    pub fn dim_index(&self, name: &str) -> Option<usize> {
        self.dim_pos.get(name).copied()
    }

    /// Position of a metric column.
    pub fn metric_index(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.name == name)
    }

    fn add_dim(&mut self, name: &str) -> usize {
        let i = self.dims.len();
        self.dims.push(name.to_owned());
        self.dim_pos.insert(name.to_owned(), i);
        self.dicts.push(Dict::new());
        self.dim_cols.push(vec![0; self.times.len()]);
        i
    }

    /// Adds a row whose time is already truncated to the query granularity.
    pub fn add(&mut self, truncated: Millis, event_time: Millis, dims: RowDims, metrics: &[Num]) {
        self.max_ingested = Some(self.max_ingested.map_or(event_time, |m| m.max(event_time)));
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        key.push((truncated >> 32) as u32);
        key.push(truncated as u32);
        match dims {
            RowDims::Fixed(values) => {
                for (i, v) in values.into_iter().enumerate() {
                    let id = self.dicts[i].intern(v);
                    key.push(id);
                }
            }
            RowDims::Named(values) => {
                key.resize(2 + self.dims.len(), 0);
                for (name, v) in values {
                    let i = match self.dim_pos.get(&name) {
                        Some(i) => *i,
                        None => self.add_dim(&name),
                    };
                    let id = self.dicts[i].intern(v);
                    if key.len() < 3 + i {
                        key.resize(3 + i, 0);
                    }
                    key[2 + i] = id;
                }
            }
        }
        // A missing trailing dimension is the same as null.
        while key.len() > 2 && key.last() == Some(&0) {
            key.pop();
        }
        let existing = if self.rollup {
            self.keys.get(key.as_slice()).copied()
        } else {
            None
        };
        match existing {
            Some(row) => self.combine(row as usize, metrics),
            None => {
                let row = self.times.len() as u32;
                self.times.push(truncated);
                for (d, col) in self.dim_cols.iter_mut().enumerate() {
                    col.push(key.get(2 + d).copied().unwrap_or(0));
                }
                for (j, m) in self.metrics.iter().enumerate() {
                    let input = metrics.get(j).copied().unwrap_or(Num::Missing);
                    match (&mut self.metric_cols[j], m.kind) {
                        (Column::Long(c), AggKind::Count) => c.push(1),
                        (Column::Long(c), _) => c.push(input.as_long()),
                        (Column::Double(c), k) => c.push(round(k, input.as_double())),
                    }
                    if self.nullable {
                        let null = input == Num::Missing && m.kind != AggKind::Count;
                        self.metric_nulls[j].push(null);
                    }
                }
                if self.rollup {
                    self.keys.insert(key.clone().into_boxed_slice(), row);
                }
            }
        }
        self.scratch = key;
    }

    fn combine(&mut self, row: usize, metrics: &[Num]) {
        for (j, m) in self.metrics.iter().enumerate() {
            let input = metrics.get(j).copied().unwrap_or(Num::Missing);
            if self.nullable && m.kind != AggKind::Count {
                // Nulls are skipped; the first value replaces a null.
                if input == Num::Missing {
                    continue;
                }
                if std::mem::replace(&mut self.metric_nulls[j][row], false) {
                    match &mut self.metric_cols[j] {
                        Column::Long(c) => c[row] = input.as_long(),
                        Column::Double(c) => c[row] = round(m.kind, input.as_double()),
                    }
                    continue;
                }
            }
            match &mut self.metric_cols[j] {
                Column::Long(c) => {
                    let x = if m.kind == AggKind::Count {
                        1
                    } else {
                        input.as_long()
                    };
                    c[row] = match m.kind.op() {
                        AggOp::Sum => c[row].wrapping_add(x),
                        AggOp::Min => c[row].min(x),
                        AggOp::Max => c[row].max(x),
                    };
                }
                Column::Double(c) => {
                    let x = input.as_double();
                    c[row] = round(
                        m.kind,
                        match m.kind.op() {
                            AggOp::Sum => c[row] + x,
                            AggOp::Min => c[row].min(x),
                            AggOp::Max => c[row].max(x),
                        },
                    );
                }
            }
        }
    }

    /// A read-only copy holding the given rows (in that order, repeats allowed), unrolled.
    pub fn take_rows(&self, rows: &[usize]) -> Index {
        let mut out = Index::new(&self.dims, &self.metrics, false);
        out.nullable = self.nullable;
        out.metric_nulls = self
            .metric_nulls
            .iter()
            .map(|n| {
                if n.is_empty() {
                    Vec::new()
                } else {
                    rows.iter().map(|r| n[*r]).collect()
                }
            })
            .collect();
        out.dicts = self.dicts.clone();
        out.dim_cols = self
            .dim_cols
            .iter()
            .map(|c| rows.iter().map(|r| c[*r]).collect())
            .collect();
        out.metric_cols = self
            .metric_cols
            .iter()
            .map(|c| match c {
                Column::Long(v) => Column::Long(rows.iter().map(|r| v[*r]).collect()),
                Column::Double(v) => Column::Double(rows.iter().map(|r| v[*r]).collect()),
            })
            .collect();
        out.times = rows.iter().map(|r| self.times[*r]).collect();
        out.max_ingested = self.max_ingested;
        out
    }

    /// Sets a whole dimension column (one value per row), replacing any column of that name.
    pub fn set_dim(&mut self, name: &str, values: Vec<DimValue>) {
        if let Some(j) = self.metric_index(name) {
            self.metrics.remove(j);
            self.metric_cols.remove(j);
            self.metric_nulls.remove(j);
        }
        let d = match self.dim_pos.get(name) {
            Some(d) => *d,
            None => self.add_dim(name),
        };
        let mut dict = Dict::new();
        self.dim_cols[d] = values.into_iter().map(|v| dict.intern(v)).collect();
        self.dicts[d] = dict;
    }

    /// Drops the columns whose names start with `prefix` (a join's right side shadows them).
    pub fn drop_prefixed(&mut self, prefix: &str) {
        let keep: Vec<usize> = (0..self.dims.len())
            .filter(|d| !self.dims[*d].starts_with(prefix))
            .collect();
        if keep.len() < self.dims.len() {
            self.dims = keep.iter().map(|d| self.dims[*d].clone()).collect();
            self.dicts = keep.iter().map(|d| self.dicts[*d].clone()).collect();
            self.dim_cols = keep
                .iter()
                .map(|d| std::mem::take(&mut self.dim_cols[*d]))
                .collect();
            self.dim_pos = self
                .dims
                .iter()
                .enumerate()
                .map(|(i, d)| (d.clone(), i))
                .collect();
        }
        while let Some(j) = self.metrics.iter().position(|m| m.name.starts_with(prefix)) {
            self.metrics.remove(j);
            self.metric_cols.remove(j);
            self.metric_nulls.remove(j);
        }
    }

    /// Orders the metric columns by name, as Druid's segment merge lays them out at handoff
    /// (while a task runs they are in `metricsSpec` order).
    pub fn sort_metrics_by_name(&mut self) {
        let mut order: Vec<usize> = (0..self.metrics.len()).collect();
        order.sort_by(|a, b| self.metrics[*a].name.cmp(&self.metrics[*b].name));
        if order.iter().enumerate().all(|(i, j)| i == *j) {
            return;
        }
        let metrics = std::mem::take(&mut self.metrics);
        let mut cols = std::mem::take(&mut self.metric_cols);
        let mut nulls = std::mem::take(&mut self.metric_nulls);
        for j in order {
            self.metrics.push(metrics[j].clone());
            self.metric_cols
                .push(std::mem::replace(&mut cols[j], Column::Long(Vec::new())));
            self.metric_nulls.push(std::mem::take(&mut nulls[j]));
        }
    }

    /// The value of dimension `d` in `row`.
    pub fn dim_value(&self, d: usize, row: usize) -> &DimValue {
        &self.dicts[d].values[self.dim_cols[d][row] as usize]
    }

    /// Smallest and largest row time.
    pub fn time_range(&self) -> Option<(Millis, Millis)> {
        let min = self.times.iter().min()?;
        let max = self.times.iter().max()?;
        Some((*min, *max))
    }

    /// A serialisable copy.
    pub fn snapshot(&self) -> IndexSnapshot {
        IndexSnapshot {
            dims: self.dims.clone(),
            dict_values: self.dicts.iter().map(|d| d.values.clone()).collect(),
            dim_cols: self.dim_cols.clone(),
            metrics: self
                .metrics
                .iter()
                .map(|m| (m.kind.name().to_owned(), m.name.clone(), m.field.clone()))
                .collect(),
            metric_cols: self.metric_cols.clone(),
            metric_nulls: self.metric_nulls.clone(),
            nullable: self.nullable,
            handed_off: self.handed_off,
            times: self.times.clone(),
            rollup: self.rollup,
            max_ingested: self.max_ingested,
        }
    }

    /// Rebuilds an index from a snapshot (rollup keys included, so it can take more rows).
    pub fn from_snapshot(s: IndexSnapshot) -> Result<Index, String> {
        let mut metrics = Vec::new();
        for (kind, name, field) in &s.metrics {
            let kind = AggKind::parse(kind)
                .ok_or_else(|| format!("unknown aggregator [{kind}] in stored segment"))?;
            metrics.push(MetricSpec {
                kind,
                name: name.clone(),
                field: field.clone(),
            });
        }
        let mut idx = Index::new(&s.dims, &metrics, s.rollup);
        if s.dict_values.len() != s.dims.len()
            || s.dim_cols.len() != s.dims.len()
            || s.metric_cols.len() != metrics.len()
        {
            return Err("stored segment columns do not match its schema".into());
        }
        for (d, values) in s.dict_values.into_iter().enumerate() {
            let mut dict = Dict::new();
            for v in values.into_iter().skip(1) {
                dict.intern(v);
            }
            idx.dicts[d] = dict;
        }
        let n = s.times.len();
        if s.dim_cols.iter().any(|c| c.len() != n) {
            return Err("stored segment has ragged dimension columns".into());
        }
        idx.dim_cols = s.dim_cols;
        idx.metric_cols = s.metric_cols;
        idx.nullable = s.nullable;
        idx.handed_off = s.handed_off;
        // Segments written before null tracking have none.
        if s.metric_nulls.len() == metrics.len()
            && s.metric_nulls.iter().all(|c| c.is_empty() || c.len() == n)
        {
            idx.metric_nulls = s.metric_nulls;
        }
        idx.times = s.times;
        idx.max_ingested = s.max_ingested;
        if idx.rollup {
            for row in 0..n {
                let mut key = vec![(idx.times[row] >> 32) as u32, idx.times[row] as u32];
                key.extend(idx.dim_cols.iter().map(|c| c[row]));
                while key.len() > 2 && key.last() == Some(&0) {
                    key.pop();
                }
                idx.keys.insert(key.into_boxed_slice(), row as u32);
            }
        }
        Ok(idx)
    }
}

fn round(kind: AggKind, x: f64) -> f64 {
    if kind.num_type() == NumType::Float {
        x as f32 as f64
    } else {
        x
    }
}

/// On-disk form of an [`Index`].
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexSnapshot {
    dims: Vec<String>,
    dict_values: Vec<Vec<DimValue>>,
    dim_cols: Vec<Vec<u32>>,
    metrics: Vec<(String, String, Option<String>)>,
    metric_cols: Vec<Column>,
    #[serde(default)]
    metric_nulls: Vec<Vec<bool>>,
    #[serde(default)]
    nullable: bool,
    #[serde(default)]
    handed_off: bool,
    times: Vec<Millis>,
    rollup: bool,
    max_ingested: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Vec<MetricSpec> {
        vec![
            MetricSpec {
                kind: AggKind::Count,
                name: "count".into(),
                field: None,
            },
            MetricSpec {
                kind: AggKind::LongSum,
                name: "added".into(),
                field: Some("added".into()),
            },
            MetricSpec {
                kind: AggKind::DoubleMax,
                name: "mx".into(),
                field: Some("x".into()),
            },
        ]
    }

    #[test]
    fn rolls_up_equal_keys_and_keeps_distinct_ones() {
        let mut idx = Index::new(&["page".into()], &metrics(), true);
        let page = |p: &str| RowDims::Fixed(vec![DimValue::One(p.into())]);
        idx.add(
            0,
            5,
            page("A"),
            &[Num::Missing, Num::Long(3), Num::Double(1.5)],
        );
        idx.add(
            0,
            7,
            page("A"),
            &[Num::Missing, Num::Double(2.9), Num::Long(4)],
        );
        idx.add(0, 9, page("B"), &[Num::Missing, Num::Long(1), Num::Missing]);
        idx.add(
            60_000,
            60_001,
            page("A"),
            &[Num::Missing, Num::Long(1), Num::Missing],
        );
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.metric_cols[0].get(0), Val::Long(2));
        assert_eq!(idx.metric_cols[1].get(0), Val::Long(5));
        assert_eq!(idx.metric_cols[2].get(0), Val::Double(4.0));
        assert_eq!(idx.max_ingested, Some(60_001));
        let back = Index::from_snapshot(idx.snapshot()).unwrap();
        assert_eq!(back.len(), 3);
    }

    #[test]
    fn schemaless_missing_equals_null() {
        let mut idx = Index::new(&[], &metrics()[..1], true);
        idx.add(
            0,
            0,
            RowDims::Named(vec![("a".into(), DimValue::One("x".into()))]),
            &[],
        );
        idx.add(
            0,
            0,
            RowDims::Named(vec![("b".into(), DimValue::One("y".into()))]),
            &[],
        );
        idx.add(
            0,
            0,
            RowDims::Named(vec![
                ("a".into(), DimValue::One("x".into())),
                ("b".into(), DimValue::Null),
            ]),
            &[],
        );
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.dims, vec!["a", "b"]);
        assert_eq!(idx.metric_cols[0].get(0), Val::Long(2));
    }

    #[test]
    fn sql_compatible_nulls_skip_missing_inputs() {
        let mut idx =
            Index::new(&["page".into()], &metrics(), true).with_nulls(NullHandling::SqlCompatible);
        let page = |p: &str| RowDims::Fixed(vec![DimValue::One(p.into())]);
        // A: max stays null until a value comes, then the value replaces it; B: never a value.
        idx.add(0, 1, page("A"), &[Num::Missing, Num::Missing, Num::Missing]);
        idx.add(
            0,
            2,
            page("A"),
            &[Num::Missing, Num::Long(-4), Num::Missing],
        );
        idx.add(
            0,
            3,
            page("A"),
            &[Num::Missing, Num::Missing, Num::Double(-2.5)],
        );
        idx.add(0, 4, page("B"), &[Num::Missing, Num::Missing, Num::Missing]);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.metric_cols[0].get(0), Val::Long(3), "count counts rows");
        assert!(!idx.metric_is_null(0, 1));
        assert_eq!(
            (idx.metric_cols[1].get(0), idx.metric_is_null(1, 0)),
            (Val::Long(-4), false)
        );
        assert_eq!(
            (idx.metric_cols[2].get(0), idx.metric_is_null(2, 0)),
            (Val::Double(-2.5), false),
            "a max over one value is that value, not max(0, value)"
        );
        assert!(idx.metric_is_null(1, 1) && idx.metric_is_null(2, 1));
        let back = Index::from_snapshot(idx.snapshot()).unwrap();
        assert!(back.metric_is_null(1, 1) && !back.metric_is_null(1, 0));
        let taken = back.take_rows(&[1, 1, 0]);
        assert!(taken.metric_is_null(2, 1) && !taken.metric_is_null(2, 2));
        let mut sorted = back;
        sorted.sort_metrics_by_name();
        let names: Vec<&str> = sorted.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["added", "count", "mx"]);
        assert_eq!(sorted.metric_index("mx"), Some(2));
        assert!(sorted.metric_is_null(0, 1) && !sorted.metric_is_null(1, 1));
        assert_eq!(sorted.metric_cols[1].get(0), Val::Long(3));

        // Legacy: a missing input is 0.
        let mut legacy = Index::new(&["page".into()], &metrics(), true);
        legacy.add(0, 1, page("B"), &[Num::Missing, Num::Missing, Num::Missing]);
        assert!(!legacy.metric_is_null(1, 0));
        assert_eq!(legacy.metric_cols[1].get(0), Val::Long(0));
    }

    #[test]
    fn no_rollup_keeps_every_row() {
        let mut idx = Index::new(&["p".into()], &metrics()[..1], false);
        for _ in 0..3 {
            idx.add(0, 0, RowDims::Fixed(vec![DimValue::Null]), &[]);
        }
        assert_eq!(idx.len(), 3);
    }
}
