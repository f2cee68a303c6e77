//! `WHERE` to native: conditions on `__time` that are ANDed at the top become the query's
//! `intervals` (as Druid's planner does); the rest becomes a native filter (`selector`, `in`,
//! `bound` with lexicographic or numeric ordering, `like`, `and`/`or`/`not`; `__time` nested in
//! `OR`/`NOT` as a numeric `bound` on its milliseconds). Conditions that are not a column
//! compared with literals are refused by name.

use super::bind::{timestamp_literal, BinOp, Ex, TimeText};
use super::catalog::{Column, Role};
use super::error::SqlError;
use super::types::{SqlType, Val};
use crate::time::{iso, ETERNITY};
use chrono_tz::Tz;
use serde_json::{json, Value};

/// A translated `WHERE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    /// The query intervals, as ISO strings.
    pub intervals: Vec<String>,
    /// The native filter, if any.
    pub filter: Option<Value>,
}

/// Translates `WHERE` (and the filters of aggregates) over `cols`.
#[derive(Debug)]
pub struct Translator<'a> {
    /// Table columns.
    pub cols: &'a [Column],
    /// `sqlTimeZone`, for timestamp text.
    pub tz: &'a Tz,
}

fn flatten<'e>(e: &'e Ex, op: BinOp, out: &mut Vec<&'e Ex>) {
    match e {
        Ex::Bin(o, a, b) if *o == op => {
            flatten(a, op, out);
            flatten(b, op, out);
        }
        other => out.push(other),
    }
}

fn not(f: Value) -> Value {
    json!({"type": "not", "field": f})
}

fn describe(e: &Ex, cols: &[Column]) -> String {
    match e {
        Ex::Col(i) => cols[*i].name.clone(),
        Ex::Func(f, _) => format!("{f:?}").to_ascii_uppercase(),
        Ex::Cast(..) => "CAST".into(),
        Ex::TimeFloor(..) => "a time floor".into(),
        Ex::Agg(_) => "an aggregate".into(),
        _ => "an expression".into(),
    }
}

/// A literal's text as a native filter value (`None` for NULL).
fn value_text(v: &Val) -> Option<String> {
    match v {
        Val::Null => None,
        Val::Str(s) => Some(s.clone()),
        Val::Long(l) => Some(l.to_string()),
        Val::Double(d) => Some(crate::task::parse::java_double(*d)),
        Val::Bool(b) => Some(b.to_string()),
    }
}

fn bound(dim: &str, op: BinOp, v: &str, numeric: bool) -> Value {
    let ordering = if numeric { "numeric" } else { "lexicographic" };
    let mut b = json!({"type": "bound", "dimension": dim, "ordering": ordering});
    match op {
        BinOp::Lt | BinOp::Le => {
            b["upper"] = json!(v);
            b["upperStrict"] = json!(op == BinOp::Lt);
        }
        BinOp::Gt | BinOp::Ge => {
            b["lower"] = json!(v);
            b["lowerStrict"] = json!(op == BinOp::Gt);
        }
        _ => {
            b["lower"] = json!(v);
            b["upper"] = json!(v);
        }
    }
    b
}

impl Translator<'_> {
    /// `WHERE` as intervals plus a filter.
    pub fn where_clause(&self, e: Option<&Ex>) -> Result<Where, SqlError> {
        let (mut lo, mut hi) = (ETERNITY.start, ETERNITY.end);
        let mut rest = Vec::new();
        if let Some(e) = e {
            let mut conjuncts = Vec::new();
            flatten(e, BinOp::And, &mut conjuncts);
            for c in conjuncts {
                match self.time_range(c)? {
                    Some((a, b)) => {
                        lo = lo.max(a);
                        hi = hi.min(b);
                    }
                    None => rest.push(self.filter(c)?),
                }
            }
        }
        // An empty range still needs a valid interval: [lo, lo) holds nothing.
        let hi = hi.max(lo);
        let filter = match rest.len() {
            0 => None,
            1 => rest.pop(),
            _ => Some(json!({"type": "and", "fields": rest})),
        };
        Ok(Where {
            intervals: vec![format!("{}/{}", iso(lo), iso(hi))],
            filter,
        })
    }

    fn is_time(&self, e: &Ex) -> bool {
        matches!(e, Ex::Col(i) if self.cols[*i].role == Role::Time)
    }

    /// Milliseconds of a literal compared with `__time`.
    fn time_value(&self, e: &Ex, op: &str) -> Result<i64, SqlError> {
        match e {
            Ex::Lit(Val::Long(ms), SqlType::Timestamp) => Ok(*ms),
            Ex::Lit(Val::Str(s), _) => timestamp_literal(s, self.tz, TimeText::Cast).ok_or_else(|| {
                SqlError::invalid(
                    format!("Illegal TIMESTAMP literal '{s}': not in format 'yyyy-MM-dd HH:mm:ss'"),
                    None,
                )
            }),
            Ex::Lit(_, ty) => Err(SqlError::invalid(
                format!(
                    "Cannot apply '{op}' to arguments of type '<TIMESTAMP(3)> {op} <{}>'",
                    ty.name()
                ),
                None,
            )),
            other => Err(SqlError::unsupported(format!(
                "comparing __time with {} is not supported by druid-local; compare it with a timestamp literal",
                describe(other, self.cols)
            ))),
        }
    }

    /// `[start, end)` of a condition that bounds `__time`, if it is one.
    fn time_range(&self, e: &Ex) -> Result<Option<(i64, i64)>, SqlError> {
        match e {
            Ex::Bin(op, a, b) if op.is_comparison() && *op != BinOp::Ne => {
                let (op, lit) = if self.is_time(a) {
                    (*op, b)
                } else if self.is_time(b) {
                    (op.flipped(), a)
                } else {
                    return Ok(None);
                };
                if !matches!(lit.as_ref(), Ex::Lit(..)) {
                    return Ok(None);
                }
                let t = self.time_value(lit, op_text(op))?;
                let (s, e) = (ETERNITY.start, ETERNITY.end);
                Ok(Some(match op {
                    BinOp::Eq => (t, t + 1),
                    BinOp::Lt => (s, t),
                    BinOp::Le => (s, t + 1),
                    BinOp::Gt => (t + 1, e),
                    _ => (t, e),
                }))
            }
            Ex::Between(a, x, y, false) if self.is_time(a) => {
                if !matches!((x.as_ref(), y.as_ref()), (Ex::Lit(..), Ex::Lit(..))) {
                    return Ok(None);
                }
                Ok(Some((
                    self.time_value(x, "BETWEEN")?,
                    self.time_value(y, "BETWEEN")? + 1,
                )))
            }
            _ => Ok(None),
        }
    }

    /// A condition as a native filter.
    pub fn filter(&self, e: &Ex) -> Result<Value, SqlError> {
        match e {
            Ex::Bin(op @ (BinOp::And | BinOp::Or), ..) => {
                let mut parts = Vec::new();
                flatten(e, *op, &mut parts);
                let fields = parts
                    .into_iter()
                    .map(|p| self.filter(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let ty = if *op == BinOp::And { "and" } else { "or" };
                Ok(json!({"type": ty, "fields": fields}))
            }
            Ex::Not(a) => Ok(not(self.filter(a)?)),
            Ex::Lit(Val::Bool(b), _) => Ok(json!({"type": if *b { "true" } else { "false" }})),
            Ex::IsNull(a, negated) => {
                let c = self.column(a, "IS NULL")?;
                let f = if c.role == Role::Time {
                    json!({"type": "false"})
                } else {
                    json!({"type": "selector", "dimension": c.name, "value": null})
                };
                Ok(if *negated { not(f) } else { f })
            }
            Ex::Bin(op, a, b) if op.is_comparison() => {
                let (op, col, lit) = match (a.as_ref(), b.as_ref()) {
                    (Ex::Col(_), Ex::Lit(..)) => (*op, a, b),
                    (Ex::Lit(..), Ex::Col(_)) => (op.flipped(), b, a),
                    _ => {
                        return Err(SqlError::unsupported(format!(
                            "the condition on {} {} {} is not supported by druid-local; compare a column with a literal",
                            describe(a, self.cols),
                            op_text(*op),
                            describe(b, self.cols)
                        )))
                    }
                };
                let f = self.compare(col, op, lit)?;
                Ok(if op == BinOp::Ne { not(f) } else { f })
            }
            Ex::In(a, list, negated) => {
                let c = self.column(a, "IN")?;
                let all_strings = list
                    .iter()
                    .all(|x| matches!(x, Ex::Lit(Val::Str(_) | Val::Null, _)));
                let f = if c.role == Role::Dimension && all_strings {
                    let values: Vec<Value> = list
                        .iter()
                        .map(|x| match x {
                            Ex::Lit(v, _) => value_text(v).map_or(Value::Null, Value::String),
                            _ => Value::Null,
                        })
                        .collect();
                    json!({"type": "in", "dimension": c.name, "values": values})
                } else {
                    let fields = list
                        .iter()
                        .map(|x| self.compare(a, BinOp::Eq, x))
                        .collect::<Result<Vec<_>, _>>()?;
                    json!({"type": "or", "fields": fields})
                };
                Ok(if *negated { not(f) } else { f })
            }
            Ex::Between(a, x, y, negated) => {
                let f = json!({"type": "and", "fields": [
                    self.compare(a, BinOp::Ge, x)?, self.compare(a, BinOp::Le, y)?
                ]});
                Ok(if *negated { not(f) } else { f })
            }
            Ex::Like(a, p, negated) => {
                let c = self.column(a, "LIKE")?;
                let pattern = match p.as_ref() {
                    Ex::Lit(Val::Str(s), _) => s.clone(),
                    _ => {
                        return Err(SqlError::unsupported(
                            "LIKE with a pattern that is not a string literal is not supported by druid-local",
                        ))
                    }
                };
                if c.role != Role::Dimension {
                    return Err(SqlError::unsupported(format!(
                        "LIKE on the non-string column [{}] is not supported by druid-local",
                        c.name
                    )));
                }
                let f = json!({"type": "like", "dimension": c.name, "pattern": pattern});
                Ok(if *negated { not(f) } else { f })
            }
            other => Err(SqlError::unsupported(format!(
                "the condition on {} is not supported by druid-local; compare columns with literals (=, <>, <, >, IN, BETWEEN, LIKE, IS NULL)",
                describe(other, self.cols)
            ))),
        }
    }

    fn column(&self, e: &Ex, what: &str) -> Result<&Column, SqlError> {
        match e {
            Ex::Col(i) => Ok(&self.cols[*i]),
            other => Err(SqlError::unsupported(format!(
                "{what} on {} is not supported by druid-local; apply it to a column",
                describe(other, self.cols)
            ))),
        }
    }

    /// `col op literal` (`<>` as `=`; the caller negates).
    fn compare(&self, col: &Ex, op: BinOp, lit: &Ex) -> Result<Value, SqlError> {
        let c = self.column(col, op_text(op))?;
        let Ex::Lit(v, ty) = lit else {
            return Err(SqlError::unsupported(format!(
                "comparing {} with {} is not supported by druid-local; compare it with a literal",
                c.name,
                describe(lit, self.cols)
            )));
        };
        let op = if op == BinOp::Ne { BinOp::Eq } else { op };
        if matches!(v, Val::Null) {
            // Comparing with NULL is never true.
            return Ok(json!({"type": "false"}));
        }
        match c.role {
            Role::Time => {
                let t = self.time_value(lit, op_text(op))?;
                Ok(bound("__time", op, &t.to_string(), true))
            }
            Role::Dimension => {
                let text = value_text(v).unwrap_or_default();
                if ty.is_numeric() {
                    // Druid casts the string column to a number.
                    Ok(bound(&c.name, op, &text, true))
                } else if op == BinOp::Eq {
                    Ok(json!({"type": "selector", "dimension": c.name, "value": text}))
                } else {
                    Ok(bound(&c.name, op, &text, false))
                }
            }
            Role::Metric(_) | Role::System => {
                let n = v.as_f64().ok_or_else(|| {
                    SqlError::invalid(
                        format!(
                            "Cannot apply '{}' to arguments of type '<{}> {} <{}>'",
                            op_text(op),
                            c.ty.name(),
                            op_text(op),
                            ty.name()
                        ),
                        None,
                    )
                })?;
                let text = match v {
                    Val::Long(l) => l.to_string(),
                    _ => crate::task::parse::java_double(n),
                };
                Ok(bound(&c.name, op, &text, true))
            }
        }
    }
}

fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Eq => "=",
        BinOp::Ne => "<>",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        _ => "?",
    }
}
