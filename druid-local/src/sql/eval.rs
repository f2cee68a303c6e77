//! In-memory evaluation of a bound statement over a small table of rows: what Druid does with
//! its system tables (`INFORMATION_SCHEMA`, `sys`) and statements without `FROM`, which run in
//! Calcite's own engine rather than as native queries. Three-valued logic, grouping,
//! aggregates, `HAVING`, `ORDER BY` (nulls last ascending, as Calcite sorts), `LIMIT`/`OFFSET`.

use super::bind::{AggCall, AggFn, BinOp, Bound, Ex, Floor, Func};
use super::error::SqlError;
use super::format::OutColumn;
use super::types::{coerce, SqlType, Val};
use crate::time::{Granularity, Period};
use chrono_tz::Tz;
use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value;
use std::cmp::Ordering;

/// A result: typed columns and rows of response values.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The columns.
    pub columns: Vec<OutColumn>,
    /// The rows, values already written as their column's type.
    pub rows: Vec<Vec<Value>>,
}

fn truthy(v: &Val) -> bool {
    matches!(v, Val::Bool(true))
}

fn bool_val(b: Option<bool>) -> Val {
    b.map_or(Val::Null, Val::Bool)
}

/// SQL comparison: `None` when either side is null.
pub fn compare(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Null, _) | (_, Val::Null) => None,
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Long(x), Val::Long(y)) => Some(x.cmp(y)),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => Some(text(a).cmp(&text(b))),
        },
    }
}

fn text(v: &Val) -> String {
    match v {
        Val::Null => String::new(),
        Val::Str(s) => s.clone(),
        Val::Long(l) => l.to_string(),
        Val::Double(d) => crate::task::parse::java_double(*d),
        Val::Bool(b) => b.to_string(),
    }
}

/// A `LIKE` pattern as an anchored regular expression.
pub fn like_regex(pattern: &str) -> Result<Regex, SqlError> {
    let mut re = String::from("(?s)^");
    for c in pattern.chars() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| SqlError::invalid(format!("Invalid LIKE pattern: {e}"), None))
}

/// The native granularity of a time floor.
pub fn granularity(f: &Floor) -> Result<Granularity, SqlError> {
    Ok(Granularity::Period {
        period: Period::parse(&f.period)
            .map_err(|e| SqlError::invalid(format!("Invalid period: {e}"), None))?,
        tz: f
            .tz
            .parse()
            .map_err(|_| SqlError::invalid(format!("Invalid time zone [{}]", f.tz), None))?,
        origin: f.origin,
    })
}

fn arith(op: BinOp, a: &Val, b: &Val) -> Val {
    if matches!(a, Val::Null) || matches!(b, Val::Null) {
        return Val::Null;
    }
    if let (Val::Long(x), Val::Long(y)) = (a, b) {
        return match op {
            BinOp::Add => Val::Long(x.wrapping_add(*y)),
            BinOp::Sub => Val::Long(x.wrapping_sub(*y)),
            BinOp::Mul => Val::Long(x.wrapping_mul(*y)),
            BinOp::Div => x.checked_div(*y).map_or(Val::Null, Val::Long),
            _ => x.checked_rem(*y).map_or(Val::Null, Val::Long),
        };
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => Val::Double(match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => x / y,
            _ => x % y,
        }),
        _ => Val::Null,
    }
}

fn cast(v: Val, ty: SqlType) -> Val {
    match (v, ty) {
        (Val::Null, _) => Val::Null,
        (v, SqlType::Varchar | SqlType::Char) => Val::Str(text(&v)),
        (Val::Str(s), SqlType::Timestamp) => {
            crate::time::parse_iso(&s).map_or(Val::Null, Val::Long)
        }
        (v, SqlType::Bigint | SqlType::Integer | SqlType::Timestamp) => match v {
            Val::Long(l) => Val::Long(l),
            other => other.as_f64().map_or(Val::Null, |d| Val::Long(d as i64)),
        },
        (v, SqlType::Boolean) => match v {
            Val::Bool(b) => Val::Bool(b),
            Val::Str(s) => Val::Bool(s.eq_ignore_ascii_case("true")),
            other => Val::Bool(other.as_f64().is_some_and(|d| d != 0.0)),
        },
        (v, _) => v.as_f64().map_or(Val::Null, Val::Double),
    }
}

type AggFnRef<'a> = &'a mut dyn FnMut(&AggCall) -> Result<Val, SqlError>;

/// Evaluates `e` on `row`; aggregates are asked of `agg`.
pub fn eval(e: &Ex, row: &[Val], agg: AggFnRef<'_>) -> Result<Val, SqlError> {
    Ok(match e {
        Ex::Col(i) => row.get(*i).cloned().unwrap_or(Val::Null),
        Ex::Lit(v, _) => v.clone(),
        Ex::Agg(a) => agg(a)?,
        Ex::Bin(BinOp::And, a, b) => {
            let x = eval(a, row, agg)?;
            if x == Val::Bool(false) {
                return Ok(x);
            }
            let y = eval(b, row, agg)?;
            match (x, y) {
                (_, Val::Bool(false)) => Val::Bool(false),
                (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
                _ => Val::Null,
            }
        }
        Ex::Bin(BinOp::Or, a, b) => {
            let x = eval(a, row, agg)?;
            if x == Val::Bool(true) {
                return Ok(x);
            }
            let y = eval(b, row, agg)?;
            match (x, y) {
                (_, Val::Bool(true)) => Val::Bool(true),
                (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
                _ => Val::Null,
            }
        }
        Ex::Bin(op, a, b) => {
            let (x, y) = (eval(a, row, agg)?, eval(b, row, agg)?);
            match op {
                BinOp::Concat => match (&x, &y) {
                    (Val::Null, _) | (_, Val::Null) => Val::Null,
                    _ => Val::Str(text(&x) + &text(&y)),
                },
                op if op.is_comparison() => bool_val(compare(&x, &y).map(|o| match op {
                    BinOp::Eq => o.is_eq(),
                    BinOp::Ne => o.is_ne(),
                    BinOp::Lt => o.is_lt(),
                    BinOp::Le => o.is_le(),
                    BinOp::Gt => o.is_gt(),
                    _ => o.is_ge(),
                })),
                op => arith(*op, &x, &y),
            }
        }
        Ex::Not(a) => match eval(a, row, agg)? {
            Val::Null => Val::Null,
            v => Val::Bool(!truthy(&v)),
        },
        Ex::Neg(a) => match eval(a, row, agg)? {
            Val::Long(l) => Val::Long(l.wrapping_neg()),
            v => v.as_f64().map_or(Val::Null, |d| Val::Double(-d)),
        },
        Ex::IsNull(a, negated) => Val::Bool((eval(a, row, agg)? == Val::Null) != *negated),
        Ex::In(a, list, negated) => {
            let x = eval(a, row, agg)?;
            let mut result = Some(false);
            for item in list {
                match compare(&x, &eval(item, row, agg)?) {
                    Some(Ordering::Equal) => {
                        result = Some(true);
                        break;
                    }
                    None => result = None,
                    _ => {}
                }
            }
            bool_val(result.map(|r| r != *negated))
        }
        Ex::Between(a, lo, hi, negated) => {
            let x = eval(a, row, agg)?;
            let (l, h) = (eval(lo, row, agg)?, eval(hi, row, agg)?);
            let inside = match (compare(&x, &l), compare(&x, &h)) {
                (Some(a), Some(b)) => Some(a.is_ge() && b.is_le()),
                _ => None,
            };
            bool_val(inside.map(|r| r != *negated))
        }
        Ex::Like(a, p, negated) => match (eval(a, row, agg)?, eval(p, row, agg)?) {
            (Val::Null, _) | (_, Val::Null) => Val::Null,
            (x, p) => Val::Bool(like_regex(&text(&p))?.is_match(&text(&x)) != *negated),
        },
        Ex::TimeFloor(a, f) => match eval(a, row, agg)? {
            Val::Long(ms) => Val::Long(granularity(f)?.bucket_start(ms)),
            _ => Val::Null,
        },
        Ex::Func(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, row, agg))
                .collect::<Result<Vec<_>, _>>()?;
            match f {
                Func::Coalesce => vals
                    .into_iter()
                    .find(|v| *v != Val::Null)
                    .unwrap_or(Val::Null),
                _ if vals.contains(&Val::Null) => Val::Null,
                Func::Upper => Val::Str(text(&vals[0]).to_uppercase()),
                Func::Lower => Val::Str(text(&vals[0]).to_lowercase()),
                Func::CharLength => Val::Long(text(&vals[0]).encode_utf16().count() as i64),
                Func::Concat => Val::Str(vals.iter().map(text).collect()),
            }
        }
        Ex::Cast(a, ty) => cast(eval(a, row, agg)?, *ty),
        Ex::Case(operand, whens, other) => {
            let subject = operand.as_deref().map(|o| eval(o, row, agg)).transpose()?;
            for (w, t) in whens {
                let w = eval(w, row, agg)?;
                let hit = match &subject {
                    Some(s) => compare(s, &w) == Some(Ordering::Equal),
                    None => truthy(&w),
                };
                if hit {
                    return eval(t, row, agg);
                }
            }
            match other {
                Some(o) => eval(o, row, agg)?,
                None => Val::Null,
            }
        }
    })
}

fn no_agg(_: &AggCall) -> Result<Val, SqlError> {
    Err(SqlError::invalid(
        "Aggregate expression is illegal here",
        None,
    ))
}

/// Runs an aggregate over the rows of a group.
fn aggregate(a: &AggCall, rows: &[&Vec<Val>], input_ty: Option<SqlType>) -> Result<Val, SqlError> {
    let mut values = Vec::new();
    for r in rows {
        if let Some(f) = &a.filter {
            if !truthy(&eval(f, r, &mut no_agg)?) {
                continue;
            }
        }
        let v = match &a.arg {
            Some(x) => eval(x, r, &mut no_agg)?,
            None => Val::Long(1),
        };
        if v != Val::Null {
            values.push(v);
        }
    }
    Ok(match a.func {
        AggFn::Count => Val::Long(values.len() as i64),
        AggFn::CountDistinct => {
            let mut keys: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            keys.sort();
            keys.dedup();
            Val::Long(keys.len() as i64)
        }
        AggFn::Min | AggFn::Max => {
            let want = if a.func == AggFn::Min {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            values.into_iter().fold(Val::Null, |acc, v| match &acc {
                Val::Null => v,
                _ if compare(&v, &acc) == Some(want) => v,
                _ => acc,
            })
        }
        AggFn::Sum | AggFn::Avg => {
            if values.is_empty() {
                return Ok(Val::Null);
            }
            let n = values.len() as i64;
            let all_long = values.iter().all(|v| matches!(v, Val::Long(_)));
            if all_long {
                let sum = values.iter().fold(0i64, |s, v| match v {
                    Val::Long(l) => s.wrapping_add(*l),
                    _ => s,
                });
                if a.func == AggFn::Sum {
                    Val::Long(sum)
                } else {
                    Val::Long(sum / n)
                }
            } else {
                let sum: f64 = values.iter().filter_map(Val::as_f64).sum();
                let r = if a.func == AggFn::Sum {
                    sum
                } else {
                    sum / n as f64
                };
                match input_ty {
                    Some(SqlType::Bigint | SqlType::Integer) => Val::Long(r as i64),
                    _ => Val::Double(r),
                }
            }
        }
    })
}

/// Values of the `ORDER BY` expressions, each with whether it is descending.
type SortKey = Vec<(Val, bool)>;

fn sort_key_cmp(a: &[(Val, bool)], b: &[(Val, bool)]) -> Ordering {
    for ((x, desc), (y, _)) in a.iter().zip(b) {
        // Nulls sort as the highest values, as Calcite's default collation does.
        let o = match (x, y) {
            (Val::Null, Val::Null) => Ordering::Equal,
            (Val::Null, _) => Ordering::Greater,
            (_, Val::Null) => Ordering::Less,
            _ => compare(x, y).unwrap_or(Ordering::Equal),
        };
        let o = if *desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

/// Runs `b` over `rows` (in `b.columns` order); timestamps print in `tz`.
pub fn run(b: &Bound, rows: Vec<Vec<Val>>, tz: &Tz) -> Result<Output, SqlError> {
    let columns: Vec<OutColumn> = b
        .items
        .iter()
        .map(|i| OutColumn {
            name: i.name.clone(),
            ty: i.ex.ty(&b.columns),
        })
        .collect();
    let mut kept = Vec::new();
    for r in rows {
        let pass = match &b.filter {
            Some(f) => truthy(&eval(f, &r, &mut no_agg)?),
            None => true,
        };
        if pass {
            kept.push(r);
        }
    }
    // Each output row with its sort key.
    let mut out: Vec<(Vec<Val>, SortKey)> = Vec::new();
    if b.is_aggregate() {
        let keys: Vec<Ex> = if b.group_by.is_empty() && b.distinct {
            b.items.iter().map(|i| i.ex.clone()).collect()
        } else {
            b.group_by.clone()
        };
        let mut groups: IndexMap<String, Vec<&Vec<Val>>> = IndexMap::new();
        for r in &kept {
            let key = keys
                .iter()
                .map(|k| eval(k, r, &mut no_agg))
                .collect::<Result<Vec<_>, _>>()?;
            groups.entry(format!("{key:?}")).or_default().push(r);
        }
        if keys.is_empty() && groups.is_empty() {
            groups.insert(String::new(), Vec::new());
        }
        let empty = vec![Val::Null; b.columns.len()];
        for members in groups.values() {
            let first = members.first().copied().unwrap_or(&empty);
            let mut agg = |a: &AggCall| {
                let ty = a.arg.as_ref().map(|x| x.ty(&b.columns));
                aggregate(a, members, ty)
            };
            if let Some(h) = &b.having {
                if !truthy(&eval(h, first, &mut agg)?) {
                    continue;
                }
            }
            let values = b
                .items
                .iter()
                .map(|i| eval(&i.ex, first, &mut agg))
                .collect::<Result<Vec<_>, _>>()?;
            let key = b
                .order_by
                .iter()
                .map(|(e, d)| Ok((eval(e, first, &mut agg)?, *d)))
                .collect::<Result<Vec<_>, SqlError>>()?;
            out.push((values, key));
        }
    } else {
        for r in &kept {
            let values = b
                .items
                .iter()
                .map(|i| eval(&i.ex, r, &mut no_agg))
                .collect::<Result<Vec<_>, _>>()?;
            let key = b
                .order_by
                .iter()
                .map(|(e, d)| Ok((eval(e, r, &mut no_agg)?, *d)))
                .collect::<Result<Vec<_>, SqlError>>()?;
            out.push((values, key));
        }
    }
    if !b.order_by.is_empty() {
        out.sort_by(|(_, a), (_, b)| sort_key_cmp(a, b));
    }
    let rows = out
        .into_iter()
        .skip(b.offset as usize)
        .take(b.limit.map_or(usize::MAX, |l| l as usize))
        .map(|(values, _)| {
            values
                .iter()
                .zip(&columns)
                .map(|(v, c)| coerce(&v.to_json(), c.ty, tz))
                .collect()
        })
        .collect();
    Ok(Output { columns, rows })
}
