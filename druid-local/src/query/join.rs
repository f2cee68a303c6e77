//! Query data sources beyond a table, and expression virtual columns: a `join` of a table (or
//! of another join) with an `inline` right side on equality conditions, `LEFT` or `INNER`, as
//! Druid's broadcast hash join does; both are applied by deriving per-segment indexes whose
//! extra columns the engines read like stored ones.

use super::expr::{Expr, Val};
use super::QueryError;
use crate::storage::Segment;
use crate::task::rollup::{DimValue, Index};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::sync::Arc;

/// A query's data source.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// A table.
    Table(String),
    /// A join.
    Join(Box<Join>),
}

/// A `join` data source.
#[derive(Debug, Clone)]
pub struct Join {
    /// Left side.
    pub left: DataSource,
    /// Right-side column names, already prefixed.
    pub right_columns: Vec<String>,
    /// Right-side rows (legacy nulls: `""` is null).
    pub right_rows: Vec<Vec<Option<String>>>,
    /// `rightPrefix`.
    pub prefix: String,
    /// Equalities: (expression of the left side, right column position).
    pub keys: Vec<(Expr, usize)>,
    /// `INNER` (else `LEFT`).
    pub inner: bool,
}

impl DataSource {
    /// Parses a `dataSource` value.
    pub fn parse(v: &Value) -> Result<DataSource, QueryError> {
        match v {
            Value::String(s) => Ok(DataSource::Table(s.clone())),
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("table") => Ok(DataSource::Table(
                    o.get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| QueryError::invalid("table dataSource requires `name`"))?
                        .to_owned(),
                )),
                Some("join") => Ok(DataSource::Join(Box::new(Join::parse(v)?))),
                other => Err(QueryError::unsupported(format!(
                    "dataSource type [{}] is not supported by druid-local; supported: table, join (with an inline right side)",
                    other.unwrap_or("null")
                ))),
            },
            _ => Err(QueryError::invalid("Missing fields [dataSource]")),
        }
    }

    /// The table every row comes from (the leftmost one).
    pub fn base_table(&self) -> &str {
        match self {
            DataSource::Table(t) => t,
            DataSource::Join(j) => j.left.base_table(),
        }
    }
}

fn cell(v: &Value) -> Result<Option<String>, QueryError> {
    Ok(match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => {
            return Err(QueryError::unsupported(format!(
                "inline value {other} is not supported by druid-local; string columns only"
            )))
        }
    })
}

impl Join {
    fn parse(v: &Value) -> Result<Join, QueryError> {
        let field = |k: &str| {
            v.get(k)
                .filter(|x| !x.is_null())
                .ok_or_else(|| QueryError::invalid(format!("join dataSource requires `{k}`")))
        };
        let left = DataSource::parse(field("left")?)?;
        let prefix = field("rightPrefix")?
            .as_str()
            .filter(|p| !p.is_empty() && !"__time".starts_with(*p))
            .ok_or_else(|| {
                QueryError::invalid(
                    "rightPrefix must be a non-empty string that is not a prefix of __time",
                )
            })?
            .to_owned();
        let inner = match field("joinType")?.as_str() {
            Some(t) if t.eq_ignore_ascii_case("INNER") => true,
            Some(t) if t.eq_ignore_ascii_case("LEFT") => false,
            Some(t @ ("RIGHT" | "FULL" | "right" | "full")) => {
                return Err(QueryError::unsupported(format!(
                    "joinType [{t}] is not supported by druid-local; supported: INNER, LEFT"
                )))
            }
            other => {
                return Err(QueryError::invalid(format!(
                    "invalid joinType {}",
                    other.map_or_else(|| "null".to_owned(), |s| format!("[{s}]"))
                )))
            }
        };
        let right = field("right")?;
        match right.get("type").and_then(Value::as_str) {
            Some("inline") => {}
            other => {
                return Err(QueryError::unsupported(format!(
                    "join right-hand dataSource type [{}] is not supported by druid-local; only inline is",
                    other.unwrap_or("null")
                )))
            }
        }
        let names: Vec<String> = right
            .get("columnNames")
            .and_then(Value::as_array)
            .ok_or_else(|| QueryError::invalid("inline dataSource requires `columnNames`"))?
            .iter()
            .map(|n| {
                n.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| QueryError::invalid("columnNames must be strings"))
            })
            .collect::<Result<_, _>>()?;
        if let Some(types) = right.get("columnTypes").and_then(Value::as_array) {
            if types.len() != names.len() {
                return Err(QueryError::invalid(
                    "inline dataSource: columnTypes and columnNames differ in length",
                ));
            }
            for (n, t) in names.iter().zip(types) {
                match t.as_str() {
                    Some(t) if t.eq_ignore_ascii_case("string") => {}
                    Some(t) => {
                        return Err(QueryError::unsupported(format!(
                            "inline column [{n}] of type [{t}] is not supported by druid-local; string columns only"
                        )))
                    }
                    None if t.is_null() => {}
                    None => return Err(QueryError::invalid(format!("invalid column type {t}"))),
                }
            }
        }
        let right_rows = right
            .get("rows")
            .and_then(Value::as_array)
            .ok_or_else(|| QueryError::invalid("inline dataSource requires `rows`"))?
            .iter()
            .map(|r| {
                let r = r
                    .as_array()
                    .filter(|r| r.len() == names.len())
                    .ok_or_else(|| {
                        QueryError::invalid(format!(
                            "inline row {r} does not have {} values",
                            names.len()
                        ))
                    })?;
                r.iter().map(cell).collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let right_columns: Vec<String> = names.iter().map(|n| format!("{prefix}{n}")).collect();
        let src = field("condition")?
            .as_str()
            .ok_or_else(|| QueryError::invalid("join condition must be a string"))?;
        let keys = equalities(&Expr::parse(src)?, &prefix, &right_columns, src)?;
        Ok(Join {
            left,
            right_columns,
            right_rows,
            prefix,
            keys,
            inner,
        })
    }

    /// Joins one left-side index with the right side.
    fn apply(&self, left: &Index) -> Result<Index, QueryError> {
        // Hash the right rows by their key tuple.
        let mut table: FxHashMap<Vec<Option<&str>>, Vec<usize>> = FxHashMap::default();
        for (i, r) in self.right_rows.iter().enumerate() {
            let key = self.keys.iter().map(|(_, c)| r[*c].as_deref()).collect();
            table.entry(key).or_default().push(i);
        }
        let bound: Vec<_> = self.keys.iter().map(|(e, _)| e.bind(left)).collect();
        let mut rows = Vec::new();
        let mut matched: Vec<Option<usize>> = Vec::new();
        let mut key: Vec<Option<String>> = Vec::with_capacity(self.keys.len());
        for row in 0..left.len() {
            key.clear();
            for b in &bound {
                key.push(b.eval(row)?.as_text());
            }
            let probe: Vec<Option<&str>> = key.iter().map(Option::as_deref).collect();
            match table.get(&probe) {
                Some(hits) => {
                    for h in hits {
                        rows.push(row);
                        matched.push(Some(*h));
                    }
                }
                None if !self.inner => {
                    rows.push(row);
                    matched.push(None);
                }
                None => {}
            }
        }
        let mut out = left.take_rows(&rows);
        out.drop_prefixed(&self.prefix);
        for (c, name) in self.right_columns.iter().enumerate() {
            let values = matched
                .iter()
                .map(|m| match m.and_then(|r| self.right_rows[r][c].as_deref()) {
                    Some(s) => DimValue::One(s.into()),
                    None => DimValue::Null,
                })
                .collect();
            out.set_dim(name, values);
        }
        Ok(out)
    }
}

/// Splits a condition into `left-expression == right-column` pairs.
fn equalities(
    e: &Expr,
    prefix: &str,
    right: &[String],
    src: &str,
) -> Result<Vec<(Expr, usize)>, QueryError> {
    let refs_right = |e: &Expr| {
        let mut cols = Vec::new();
        e.columns(&mut cols);
        cols.iter().any(|c| c.starts_with(prefix))
    };
    match e {
        Expr::Binary("&&", a, b) => {
            let mut keys = equalities(a, prefix, right, src)?;
            keys.extend(equalities(b, prefix, right, src)?);
            Ok(keys)
        }
        Expr::Binary("==", a, b) => {
            let pick = |l: &Expr, r: &Expr| match r {
                Expr::Column(c) if !refs_right(l) => right.iter().position(|x| x == c),
                _ => None,
            };
            match pick(a, b).map(|c| (a, c)).or_else(|| pick(b, a).map(|c| (b, c))) {
                Some((l, c)) => Ok(vec![((**l).clone(), c)]),
                None => Err(QueryError::invalid(format!(
                    "Cannot build join condition [{src}]: each equality needs a right-side column (prefixed [{prefix}] and listed in columnNames) on one side and an expression of the left side on the other"
                ))),
            }
        }
        _ => Err(QueryError::unsupported(format!(
            "join condition [{src}] is not supported: only equalities joined with && are"
        ))),
    }
}

/// An `expression` virtual column.
#[derive(Debug, Clone)]
pub struct VirtualColumn {
    /// Column name.
    pub name: String,
    /// The expression.
    pub expr: Expr,
}

impl VirtualColumn {
    /// Parses one entry of `virtualColumns`.
    pub fn parse(v: &Value) -> Result<VirtualColumn, QueryError> {
        match v.get("type").and_then(Value::as_str) {
            Some("expression") => {}
            other => {
                return Err(QueryError::unsupported(format!(
                    "virtual column type [{}] is not supported by druid-local; only expression is",
                    other.unwrap_or("null")
                )))
            }
        }
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| QueryError::invalid("virtual column requires `name`"))?
            .to_owned();
        match v.get("outputType").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("string") => {}
            other => {
                return Err(QueryError::unsupported(format!(
                    "virtual column [{name}] with outputType [{}] is not supported by druid-local; only STRING output is",
                    other.unwrap_or("null")
                )))
            }
        }
        let src = v.get("expression").and_then(Value::as_str).ok_or_else(|| {
            QueryError::invalid(format!("virtual column [{name}] requires `expression`"))
        })?;
        Ok(VirtualColumn {
            name,
            expr: Expr::parse(src)?,
        })
    }
}

fn derive_index(
    idx: &Index,
    source: &DataSource,
    vcs: &[VirtualColumn],
) -> Result<Index, QueryError> {
    let mut out = match source {
        DataSource::Table(_) => idx.take_rows(&(0..idx.len()).collect::<Vec<_>>()),
        DataSource::Join(j) => {
            let left = derive_index(idx, &j.left, &[])?;
            j.apply(&left)?
        }
    };
    for vc in vcs {
        let b = vc.expr.bind(&out);
        let values = (0..out.len())
            .map(|row| {
                Ok(match b.eval(row)? {
                    Val::Null => DimValue::Null,
                    v => v
                        .as_text()
                        .map_or(DimValue::Null, |s| DimValue::One(s.into())),
                })
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        out.set_dim(&vc.name, values);
    }
    Ok(out)
}

/// Segments as the query sees them: joined and with virtual columns materialised.
pub fn derive(
    segs: Vec<Arc<Segment>>,
    source: &DataSource,
    vcs: &[VirtualColumn],
) -> Result<Vec<Arc<Segment>>, QueryError> {
    segs.into_iter()
        .map(|s| {
            let index = derive_index(&s.index.read(), source, vcs)?;
            Ok(Arc::new(Segment {
                data_source: s.data_source.clone(),
                interval: s.interval,
                version: s.version.clone(),
                partition: s.partition,
                index: RwLock::new(index),
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{AggKind, MetricSpec};
    use crate::task::rollup::{Num, RowDims};
    use serde_json::json;

    fn index() -> Index {
        let metrics = [MetricSpec {
            kind: AggKind::Count,
            name: "count".into(),
            field: None,
        }];
        let mut idx = Index::new(&["language".into(), "j.x".into()], &metrics, true);
        for (t, lang) in [(0, "en"), (1, "ja"), (2, "fr"), (3, "")] {
            let v = if lang.is_empty() {
                DimValue::Null
            } else {
                DimValue::One(lang.into())
            };
            idx.add(
                t,
                t,
                RowDims::Fixed(vec![v, DimValue::Null]),
                &[Num::Missing],
            );
        }
        idx
    }

    fn join(kind: &str, condition: &str) -> Result<DataSource, QueryError> {
        DataSource::parse(&json!({
            "type": "join", "left": "wiki", "rightPrefix": "j.", "joinType": kind,
            "condition": condition,
            "right": {"type": "inline", "columnNames": ["k", "v"], "columnTypes": ["string", "string"],
                      "rows": [["en", "English"], ["ja", "Japanese"], ["ja", "Nihongo"]]}
        }))
    }

    fn column(idx: &Index, name: &str) -> Vec<Option<String>> {
        let d = idx.dim_index(name).unwrap();
        (0..idx.len())
            .map(|r| idx.dim_value(d, r).values().first().map(|s| s.to_string()))
            .collect()
    }

    #[test]
    fn left_join_keeps_unmatched_rows_and_repeats_multiple_matches() {
        let ds = join("LEFT", "language == \"j.k\"").unwrap();
        let out = derive_index(&index(), &ds, &[]).unwrap();
        assert_eq!(out.times, vec![0, 1, 1, 2, 3]);
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            column(&out, "j.v"),
            vec![s("English"), s("Japanese"), s("Nihongo"), None, None]
        );
        // The left side's `j.x` is shadowed by the prefix.
        assert!(out.dim_index("j.x").is_none());
        assert_eq!(out.metric_cols[0].get(4), crate::task::rollup::Val::Long(1));
    }

    #[test]
    fn inner_join_drops_unmatched_rows_and_virtual_columns_read_joined_ones() {
        let ds = join("INNER", "\"j.k\" == lower(language) && 1 == 1 + 0").err();
        // A constant equality has no right column: refused.
        assert!(ds.is_some());
        let ds = join("INNER", "\"j.k\" == lower(language)").unwrap();
        let vc = VirtualColumn::parse(&json!({"type": "expression", "name": "lang",
            "expression": "concat(\"j.v\", '/', language)", "outputType": "STRING"}))
        .unwrap();
        let out = derive_index(&index(), &ds, &[vc]).unwrap();
        assert_eq!(out.times, vec![0, 1, 1]);
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            column(&out, "lang"),
            vec![s("English/en"), s("Japanese/ja"), s("Nihongo/ja")]
        );
    }

    #[test]
    fn unsupported_shapes_are_named() {
        let msg =
            |r: Result<DataSource, QueryError>| r.err().map(|e| e.message).unwrap_or_default();
        assert!(msg(join("FULL", "language == \"j.k\"")).contains("FULL"));
        assert!(msg(join("LEFT", "language != \"j.k\"")).contains("only equalities"));
        let lookup = DataSource::parse(&json!({"type": "join", "left": "w", "rightPrefix": "j.",
            "joinType": "LEFT", "condition": "a == \"j.k\"", "right": {"type": "lookup", "lookup": "x"}}));
        assert!(msg(lookup).contains("[lookup]"));
        let typed = DataSource::parse(&json!({"type": "join", "left": "w", "rightPrefix": "j.",
            "joinType": "LEFT", "condition": "a == \"j.k\"",
            "right": {"type": "inline", "columnNames": ["k"], "columnTypes": ["long"], "rows": [[1]]}}));
        assert!(msg(typed).contains("[long]"));
        let vc = VirtualColumn::parse(&json!({"type": "expression", "name": "n",
            "expression": "a + 1", "outputType": "LONG"}));
        assert!(vc
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
            .contains("[LONG]"));
    }
}
