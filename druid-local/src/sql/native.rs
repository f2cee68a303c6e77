//! Planning a bound statement over a dataSource onto one native query, the way Druid's SQL
//! planner chooses: aggregates without grouping are a `timeseries` (granularity `all`);
//! grouping by one time floor only, ordered by it if at all, is a `timeseries` with that
//! granularity; grouping by one string column with `ORDER BY` one column and `LIMIT` is a
//! `topN`; other grouping is a `groupBy` (a time floor as its granularity, `HAVING` as its
//! having spec, `ORDER BY`/`LIMIT`/`OFFSET` as its limitSpec); rows without grouping are a
//! `scan` (`compactedList`, ordered only by `__time`). Native names follow Druid's: `d0...`
//! for grouping columns, `a0...` for aggregators.
//!
//! Where the native engine cannot do what SQL asks, the rest runs here on the native results,
//! never guessed: `COUNT(DISTINCT x)` is exact, from a `groupBy` that adds `x` to the grouping
//! and a merge per group (the shape of Druid's exact plan; Druid approximates by default); and
//! `ORDER BY` with a time floor grouping is sorted here, since a native `limitSpec` orders
//! within time buckets first.

use super::bind::{AggCall, AggFn, BinOp, Bound, Ex};
use super::catalog::{Column, Role};
use super::error::SqlError;
use super::eval::{self, Output};
use super::filter::Translator;
use super::format::OutColumn;
use super::types::{coerce_native, millis_of, SqlType};
use crate::query::agg::{double_json, Having};
use crate::spec::{AggKind, NumType};
use crate::Shared;
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// Where an output value comes from in a native result row.
#[derive(Debug, Clone, PartialEq)]
enum Src {
    /// The row's timestamp (a time floor, or `__time` in a scan).
    Time,
    /// A named field of the row.
    Field(String),
    /// A literal.
    Const(Value),
}

/// How the exact `COUNT(DISTINCT)` merge combines the inner rows of a group.
#[derive(Debug, Clone, PartialEq)]
enum Merge {
    /// Add up the partial values.
    Sum { long: bool },
    /// The least partial value.
    Min,
    /// The greatest partial value.
    Max,
    /// `<name>:sum` divided by `<name>:count`.
    Avg { long: bool },
    /// The number of inner rows whose distinct column is not null.
    Distinct,
}

/// The grouping fields of an exact distinct count and each output field's merge.
type Merges = (Vec<String>, Vec<(String, Merge)>);

/// A native query and how to turn its results into SQL rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The native query.
    pub native: Value,
    /// The native query type.
    pub query_type: &'static str,
    outputs: Vec<(OutColumn, Src)>,
    /// Exact distinct counts: grouping fields and per-aggregate merges.
    merge: Option<Merges>,
    /// A having spec applied here (after a merge).
    having: Option<Value>,
    /// Ordering applied here: source, descending, numeric.
    sort: Vec<(Src, bool, bool)>,
    offset: usize,
    limit: Option<usize>,
}

/// One native row: its timestamp and fields.
#[derive(Debug, Clone)]
struct Row {
    ts: i64,
    fields: Map<String, Value>,
}

/// Context the planner passes to the native query.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// `sqlTimeZone`.
    pub tz: &'a Tz,
    /// The request context, forwarded to the native query.
    pub context: &'a Map<String, Value>,
    /// The SQL query id.
    pub query_id: &'a str,
}

fn agg_kind(op: AggFn, ty: SqlType) -> AggKind {
    let float = ty == SqlType::Float;
    let long = matches!(ty, SqlType::Bigint | SqlType::Timestamp);
    match (op, long, float) {
        (AggFn::Min, true, _) => AggKind::LongMin,
        (AggFn::Min, _, true) => AggKind::FloatMin,
        (AggFn::Min, _, _) => AggKind::DoubleMin,
        (AggFn::Max, true, _) => AggKind::LongMax,
        (AggFn::Max, _, true) => AggKind::FloatMax,
        (AggFn::Max, _, _) => AggKind::DoubleMax,
        (_, true, _) => AggKind::LongSum,
        (_, _, true) => AggKind::FloatSum,
        _ => AggKind::DoubleSum,
    }
}

/// The native aggregators, post-aggregators and merge rules of one SQL aggregate.
struct Native {
    aggs: Vec<Value>,
    posts: Vec<Value>,
    merges: Vec<(String, Merge)>,
    ty: SqlType,
    distinct_col: Option<String>,
}

fn sql_text(f: AggFn) -> &'static str {
    match f {
        AggFn::Count | AggFn::CountDistinct => "COUNT",
        AggFn::Sum => "SUM",
        AggFn::Min => "MIN",
        AggFn::Max => "MAX",
        AggFn::Avg => "AVG",
    }
}

fn native_agg(
    call: &AggCall,
    name: &str,
    cols: &[Column],
    tr: &Translator<'_>,
) -> Result<Native, SqlError> {
    let col = match &call.arg {
        None => None,
        Some(Ex::Col(i)) => Some(&cols[*i]),
        Some(_) => {
            return Err(SqlError::unsupported(format!(
                "{}() over an expression is not supported by druid-local; aggregate a column",
                sql_text(call.func)
            )))
        }
    };
    let wrap = |agg: Value| -> Result<Value, SqlError> {
        Ok(match &call.filter {
            Some(f) => {
                json!({"type": "filtered", "filter": tr.filter(f)?, "aggregator": agg, "name": agg["name"]})
            }
            None => agg,
        })
    };
    let one = |agg: Value, merge: Merge, ty: SqlType| -> Result<Native, SqlError> {
        Ok(Native {
            aggs: vec![wrap(agg)?],
            posts: Vec::new(),
            merges: vec![(name.to_owned(), merge)],
            ty,
            distinct_col: None,
        })
    };
    match call.func {
        AggFn::Count => match col {
            Some(c) if c.role == Role::Dimension => {
                let agg = json!({"type": "filtered", "name": name, "aggregator": {"type": "count", "name": name},
                    "filter": {"type": "not", "field": {"type": "selector", "dimension": c.name, "value": null}}});
                one(agg, Merge::Sum { long: true }, SqlType::Bigint)
            }
            _ => one(
                json!({"type": "count", "name": name}),
                Merge::Sum { long: true },
                SqlType::Bigint,
            ),
        },
        AggFn::CountDistinct => {
            let c = col.expect("COUNT(DISTINCT) has an argument");
            if c.role != Role::Dimension || call.filter.is_some() {
                return Err(SqlError::unsupported(format!(
                    "COUNT(DISTINCT {}) is supported by druid-local on string columns without FILTER only",
                    c.name
                )));
            }
            Ok(Native {
                aggs: Vec::new(),
                posts: Vec::new(),
                merges: vec![(name.to_owned(), Merge::Distinct)],
                ty: SqlType::Bigint,
                distinct_col: Some(c.name.clone()),
            })
        }
        func => {
            let c = col.expect("SUM, MIN, MAX and AVG have an argument");
            let numeric = matches!(c.role, Role::Metric(_))
                || (c.role == Role::Time && matches!(func, AggFn::Min | AggFn::Max));
            if !numeric {
                let ty = if c.role == Role::Time {
                    "TIMESTAMP(3)"
                } else {
                    c.ty.name()
                };
                if c.role == Role::Dimension && matches!(func, AggFn::Min | AggFn::Max) {
                    return Err(SqlError::unsupported(format!(
                        "{}() over the string column [{}] is not supported by druid-local",
                        sql_text(func),
                        c.name
                    )));
                }
                return Err(SqlError::invalid(
                    format!(
                        "Cannot apply '{0}' to arguments of type '{0}(<{ty}>)'. Supported form(s): '{0}(<NUMERIC>)'",
                        sql_text(func)
                    ),
                    None,
                ));
            }
            let kind = agg_kind(func, c.ty);
            let long = kind.num_type() == NumType::Long;
            if func == AggFn::Avg {
                let (sum, count) = (format!("{name}:sum"), format!("{name}:count"));
                let mut out = Native {
                    aggs: vec![
                        wrap(json!({"type": kind.name(), "name": sum, "fieldName": c.name}))?,
                        wrap(json!({"type": "count", "name": count}))?,
                    ],
                    posts: vec![
                        json!({"type": "arithmetic", "name": name, "fn": "quotient", "fields": [
                        {"type": "fieldAccess", "fieldName": sum}, {"type": "fieldAccess", "fieldName": count}]}),
                    ],
                    merges: vec![
                        (sum.clone(), Merge::Sum { long }),
                        (count.clone(), Merge::Sum { long: true }),
                        (name.to_owned(), Merge::Avg { long }),
                    ],
                    ty: c.ty,
                    distinct_col: None,
                };
                if c.ty == SqlType::Float {
                    out.ty = SqlType::Float;
                }
                return Ok(out);
            }
            let merge = match func {
                AggFn::Min => Merge::Min,
                AggFn::Max => Merge::Max,
                _ => Merge::Sum { long },
            };
            let ty = if c.role == Role::Time {
                SqlType::Timestamp
            } else {
                c.ty
            };
            one(
                json!({"type": kind.name(), "name": name, "fieldName": c.name}),
                merge,
                ty,
            )
        }
    }
}

/// The having spec of a `HAVING` condition over aggregate outputs.
fn having_spec(e: &Ex, agg_name: &dyn Fn(&Ex) -> Option<String>) -> Result<Value, SqlError> {
    let refuse = || {
        SqlError::unsupported(
            "this HAVING condition is not supported by druid-local; compare aggregates with numbers, combined with AND, OR, NOT",
        )
    };
    match e {
        Ex::Bin(op @ (BinOp::And | BinOp::Or), a, b) => {
            let ty = if *op == BinOp::And { "and" } else { "or" };
            Ok(
                json!({"type": ty, "havingSpecs": [having_spec(a, agg_name)?, having_spec(b, agg_name)?]}),
            )
        }
        Ex::Not(a) => Ok(json!({"type": "not", "havingSpec": having_spec(a, agg_name)?})),
        Ex::Bin(op, a, b) if op.is_comparison() => {
            let (op, name, v) = match (agg_name(a), agg_name(b)) {
                (Some(n), None) => (*op, n, b),
                (None, Some(n)) => (op.flipped(), n, a),
                _ => return Err(refuse()),
            };
            let Ex::Lit(v, _) = v.as_ref() else {
                return Err(refuse());
            };
            let value = v.as_f64().ok_or_else(refuse)?;
            let spec = |ty: &str| json!({"type": ty, "aggregation": name, "value": value});
            Ok(match op {
                BinOp::Gt => spec("greaterThan"),
                BinOp::Lt => spec("lessThan"),
                BinOp::Eq => spec("equalTo"),
                BinOp::Ge => json!({"type": "not", "havingSpec": spec("lessThan")}),
                BinOp::Le => json!({"type": "not", "havingSpec": spec("greaterThan")}),
                _ => json!({"type": "not", "havingSpec": spec("equalTo")}),
            })
        }
        _ => Err(refuse()),
    }
}

fn context(ctx: &Ctx<'_>, extra: &[(&str, Value)]) -> Value {
    let mut c = ctx.context.clone();
    c.insert("sqlQueryId".into(), json!(ctx.query_id));
    for (k, v) in extra {
        c.insert((*k).into(), v.clone());
    }
    Value::Object(c)
}

/// Plans `b` over the dataSource `ds`.
pub fn plan(b: &Bound, ds: &str, ctx: &Ctx<'_>) -> Result<Plan, SqlError> {
    let cols = &b.columns;
    let tr = Translator { cols, tz: ctx.tz };
    let w = tr.where_clause(b.filter.as_ref())?;
    let mut base = json!({"dataSource": ds, "intervals": w.intervals});
    if let Some(f) = w.filter {
        base["filter"] = f;
    }
    if b.is_aggregate() {
        plan_aggregate(b, base, &tr, ctx)
    } else {
        plan_scan(b, base, ctx)
    }
}

fn plan_scan(b: &Bound, mut q: Value, ctx: &Ctx<'_>) -> Result<Plan, SqlError> {
    let cols = &b.columns;
    let mut columns: Vec<String> = Vec::new();
    let mut outputs = Vec::new();
    for item in &b.items {
        let src = match &item.ex {
            Ex::Col(i) => {
                let name = cols[*i].name.clone();
                if !columns.contains(&name) {
                    columns.push(name.clone());
                }
                Src::Field(name)
            }
            Ex::Lit(v, _) => Src::Const(v.to_json()),
            _ => {
                return Err(SqlError::unsupported(format!(
                    "the expression [{}] in a SELECT without GROUP BY is not supported by druid-local; select columns",
                    item.text
                )))
            }
        };
        outputs.push((
            OutColumn {
                name: item.name.clone(),
                ty: item.ex.ty(cols),
            },
            src,
        ));
    }
    if columns.is_empty() {
        // Only literals: read one column to count the rows.
        columns.push("__time".into());
    }
    let order = match b.order_by.as_slice() {
        [] => "none",
        [(Ex::Col(i), desc)] if cols[*i].role == Role::Time => {
            if *desc {
                "descending"
            } else {
                "ascending"
            }
        }
        other => {
            let names: Vec<String> = other
                .iter()
                .map(|(e, _)| match e {
                    Ex::Col(i) => cols[*i].name.clone(),
                    _ => "an expression".into(),
                })
                .collect();
            return Err(SqlError::CannotPlan(format!(
                "SQL query requires ordering a table by non-time column [[{}]], which is not supported.",
                names.join(", ")
            )));
        }
    };
    q["queryType"] = json!("scan");
    q["resultFormat"] = json!("compactedList");
    q["columns"] = json!(columns);
    q["order"] = json!(order);
    if let Some(l) = b.limit {
        q["limit"] = json!(l);
    }
    if b.offset > 0 {
        q["offset"] = json!(b.offset);
    }
    q["context"] = context(ctx, &[]);
    Ok(Plan {
        native: q,
        query_type: "scan",
        outputs,
        merge: None,
        having: None,
        sort: Vec::new(),
        offset: 0,
        limit: None,
    })
}

/// The grouping of an aggregating statement: at most one time floor (the granularity) and
/// string dimensions (`d0`, `d1`, ...).
struct Grouping {
    granularity: Option<Value>,
    keys: Vec<(Ex, Src)>,
    dims: Vec<Value>,
}

fn grouping(keys: &[Ex], cols: &[Column]) -> Result<Grouping, SqlError> {
    let mut g = Grouping {
        granularity: None,
        keys: Vec::new(),
        dims: Vec::new(),
    };
    let is_time = |e: &Ex| matches!(e, Ex::Col(i) if cols[*i].role == Role::Time);
    for k in keys {
        if g.keys.iter().any(|(e, _)| e == k) {
            continue;
        }
        let granularity = match k {
            Ex::TimeFloor(arg, f) if is_time(arg) => {
                eval::granularity(f)?;
                Some(
                    json!({"type": "period", "period": f.period, "timeZone": f.tz,
                            "origin": f.origin.map(crate::time::iso)}),
                )
            }
            Ex::Col(_) if is_time(k) => Some(json!("none")),
            _ => None,
        };
        if let Some(granularity) = granularity {
            if g.granularity.is_some() {
                return Err(SqlError::unsupported(
                    "grouping by more than one time floor is not supported by druid-local",
                ));
            }
            g.granularity = Some(granularity);
            g.keys.push((k.clone(), Src::Time));
            continue;
        }
        let refuse = |what: String| {
            SqlError::unsupported(format!(
                "GROUP BY {what} is not supported by druid-local; group by string columns or a time floor of __time"
            ))
        };
        match k {
            Ex::Col(i) if cols[*i].role == Role::Dimension => {
                let out = format!("d{}", g.dims.len());
                g.dims
                    .push(json!({"type": "default", "dimension": cols[*i].name,
                                   "outputName": out, "outputType": "STRING"}));
                g.keys.push((k.clone(), Src::Field(out)));
            }
            Ex::Col(i) => return Err(refuse(format!("the metric column [{}]", cols[*i].name))),
            Ex::TimeFloor(..) => {
                return Err(refuse("a time floor of a column other than __time".into()))
            }
            _ => return Err(refuse("an expression".into())),
        }
    }
    Ok(g)
}

fn plan_aggregate(
    b: &Bound,
    mut q: Value,
    tr: &Translator<'_>,
    ctx: &Ctx<'_>,
) -> Result<Plan, SqlError> {
    let cols = &b.columns;
    let keys: Vec<Ex> = if b.group_by.is_empty() && b.distinct {
        b.items.iter().map(|i| i.ex.clone()).collect()
    } else {
        b.group_by.clone()
    };
    if b.distinct && !b.group_by.is_empty() && b.items.iter().any(|i| i.ex.has_agg()) {
        return Err(SqlError::unsupported(
            "SELECT DISTINCT with aggregates is not supported by druid-local",
        ));
    }
    let Grouping {
        granularity,
        keys: key_srcs,
        dims,
    } = grouping(&keys, cols)?;
    // Aggregates, in order of first use.
    let mut calls: Vec<AggCall> = Vec::new();
    let mut collect = |e: &Ex| {
        e.walk(&mut |x| {
            if let Ex::Agg(a) = x {
                if !calls.contains(a) {
                    calls.push((**a).clone());
                }
            }
        })
    };
    for i in &b.items {
        collect(&i.ex);
    }
    if let Some(h) = &b.having {
        collect(h);
    }
    for (e, _) in &b.order_by {
        collect(e);
    }
    let mut natives = Vec::new();
    for (n, call) in calls.iter().enumerate() {
        natives.push(native_agg(call, &format!("a{n}"), cols, tr)?);
    }
    let agg_name = |e: &Ex| -> Option<String> {
        match e {
            Ex::Agg(a) => calls
                .iter()
                .position(|c| c == a.as_ref())
                .map(|n| format!("a{n}")),
            _ => None,
        }
    };
    let agg_type = |e: &Ex| -> Option<SqlType> {
        match e {
            Ex::Agg(a) => calls
                .iter()
                .position(|c| c == a.as_ref())
                .map(|n| natives[n].ty),
            _ => None,
        }
    };
    let src_of = |e: &Ex| -> Option<Src> {
        key_srcs
            .iter()
            .find(|(k, _)| k == e)
            .map(|(_, s)| s.clone())
            .or_else(|| agg_name(e).map(Src::Field))
    };
    let mut outputs = Vec::new();
    for item in &b.items {
        let src = match (&item.ex, src_of(&item.ex)) {
            (_, Some(s)) => s,
            (Ex::Lit(v, _), None) => Src::Const(v.to_json()),
            _ => {
                return Err(SqlError::unsupported(format!(
                    "the expression [{}] over grouped values is not supported by druid-local; select grouping columns and aggregates",
                    item.text
                )))
            }
        };
        let ty = agg_type(&item.ex).unwrap_or_else(|| item.ex.ty(cols));
        outputs.push((
            OutColumn {
                name: item.name.clone(),
                ty,
            },
            src,
        ));
    }
    let mut order: Vec<(Src, bool, bool)> = Vec::new();
    for (e, desc) in &b.order_by {
        if matches!(e, Ex::Lit(..)) {
            continue;
        }
        let src = src_of(e).ok_or_else(|| {
            SqlError::unsupported(
                "ORDER BY an expression over grouped values is not supported by druid-local; order by grouping columns or aggregates",
            )
        })?;
        let numeric = agg_type(e).is_some_and(|t| t != SqlType::Varchar);
        order.push((src, *desc, numeric));
    }
    let having = b
        .having
        .as_ref()
        .map(|h| having_spec(h, &agg_name))
        .transpose()?;
    let mut aggregations: Vec<Value> = Vec::new();
    let mut posts: Vec<Value> = Vec::new();
    let mut merges = Vec::new();
    let mut distinct: Option<String> = None;
    for n in &natives {
        aggregations.extend(n.aggs.iter().cloned());
        posts.extend(n.posts.iter().cloned());
        merges.extend(n.merges.iter().cloned());
        if let Some(d) = &n.distinct_col {
            if distinct.as_ref().is_some_and(|x| x != d) {
                return Err(SqlError::unsupported(
                    "COUNT(DISTINCT ...) over more than one column is not supported by druid-local",
                ));
            }
            distinct = Some(d.clone());
        }
    }
    let has_time = granularity.is_some();
    let gran = granularity.clone().unwrap_or(json!("all"));
    let limit = b.limit.map(|l| l as usize);
    let offset = b.offset as usize;
    let mut plan = Plan {
        native: Value::Null,
        query_type: "groupBy",
        outputs,
        merge: None,
        having: None,
        sort: Vec::new(),
        offset: 0,
        limit: None,
    };
    q["granularity"] = gran.clone();
    q["aggregations"] = json!(aggregations);
    if !posts.is_empty() {
        q["postAggregations"] = json!(posts);
    }

    if let Some(d) = distinct {
        // Exact distinct count: group by the keys and the counted column, then merge here.
        let mut inner_dims = dims.clone();
        inner_dims.push(
            json!({"type": "default", "dimension": d, "outputName": "dd", "outputType": "STRING"}),
        );
        q["queryType"] = json!("groupBy");
        q["dimensions"] = json!(inner_dims);
        // The quotient of AVG is computed in the merge.
        if let Some(o) = q.as_object_mut() {
            o.remove("postAggregations");
        }
        q["context"] = context(ctx, &[]);
        let key_fields = (0..dims.len()).map(|i| format!("d{i}")).collect();
        plan.native = q;
        plan.merge = Some((key_fields, merges));
        plan.having = having;
        plan.sort = order;
        plan.offset = offset;
        plan.limit = limit;
        return Ok(plan);
    }

    let orders_time_only = order.iter().all(|(s, _, _)| *s == Src::Time);
    if dims.is_empty() && having.is_none() && (!has_time || (orders_time_only && offset == 0)) {
        q["queryType"] = json!("timeseries");
        if has_time {
            if order.first().is_some_and(|(_, desc, _)| *desc) {
                q["descending"] = json!(true);
            }
            if let Some(l) = limit {
                q["limit"] = json!(l);
            }
            q["context"] = context(ctx, &[("skipEmptyBuckets", json!(true))]);
        } else {
            // One row: LIMIT and OFFSET apply to it here.
            q["context"] = context(ctx, &[]);
            plan.offset = offset;
            plan.limit = limit;
        }
        plan.query_type = "timeseries";
        plan.native = q;
        return Ok(plan);
    }
    if dims.len() == 1 && !has_time && having.is_none() && offset == 0 && order.len() == 1 {
        if let Some(l) = limit.filter(|l| (1..=100_000).contains(l)) {
            let (src, desc, numeric) = &order[0];
            let metric = match src {
                Src::Field(f) if f.starts_with('a') && *numeric => {
                    let m = json!({"type": "numeric", "metric": f});
                    if *desc {
                        Some(m)
                    } else {
                        Some(json!({"type": "inverted", "metric": m}))
                    }
                }
                Src::Field(f) if f == "d0" => {
                    let m = json!({"type": "dimension", "ordering": "lexicographic"});
                    if *desc {
                        Some(json!({"type": "inverted", "metric": m}))
                    } else {
                        Some(m)
                    }
                }
                _ => None,
            };
            if let Some(metric) = metric {
                q["queryType"] = json!("topN");
                q["dimension"] = dims[0].clone();
                q["metric"] = metric;
                q["threshold"] = json!(l);
                q["context"] = context(ctx, &[]);
                plan.query_type = "topN";
                plan.native = q;
                return Ok(plan);
            }
        }
    }
    q["queryType"] = json!("groupBy");
    q["dimensions"] = json!(dims);
    if let Some(h) = having {
        q["having"] = h;
    }
    if has_time && !order.is_empty() {
        // A native limitSpec orders within time buckets first: sort here instead.
        plan.sort = order;
        plan.offset = offset;
        plan.limit = limit;
    } else if !order.is_empty() || limit.is_some() || offset > 0 {
        let columns: Vec<Value> = order
            .iter()
            .map(|(src, desc, numeric)| {
                let Src::Field(f) = src else {
                    unreachable!("time keys are sorted here")
                };
                json!({"dimension": f, "direction": if *desc { "descending" } else { "ascending" },
                       "dimensionOrder": if *numeric { "numeric" } else { "lexicographic" }})
            })
            .collect();
        let mut ls = json!({"type": "default", "columns": columns});
        if let Some(l) = limit {
            ls["limit"] = json!(l);
        }
        if offset > 0 {
            ls["offset"] = json!(offset);
        }
        q["limitSpec"] = ls;
    }
    q["context"] = context(ctx, &[]);
    plan.native = q;
    Ok(plan)
}

fn rows_of(query_type: &str, result: &Value) -> Vec<Row> {
    let ts = |v: &Value| millis_of(&v["timestamp"]).unwrap_or(0);
    let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let list = result.as_array().cloned().unwrap_or_default();
    match query_type {
        "timeseries" => list
            .iter()
            .map(|r| Row {
                ts: ts(r),
                fields: obj(&r["result"]),
            })
            .collect(),
        "topN" => list
            .iter()
            .flat_map(|bucket| {
                let t = ts(bucket);
                bucket["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |r| Row {
                        ts: t,
                        fields: r.as_object().cloned().unwrap_or_default(),
                    })
            })
            .collect(),
        "scan" => list
            .iter()
            .flat_map(|batch| {
                let columns: Vec<String> = batch["columns"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .filter_map(|n| n.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                batch["events"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |e| {
                        let fields: Map<String, Value> = columns
                            .iter()
                            .cloned()
                            .zip(e.as_array().cloned().unwrap_or_default())
                            .collect();
                        Row {
                            ts: fields.get("__time").and_then(millis_of).unwrap_or(0),
                            fields,
                        }
                    })
            })
            .collect(),
        _ => list
            .iter()
            .map(|r| Row {
                ts: ts(r),
                fields: obj(&r["event"]),
            })
            .collect(),
    }
}

fn num(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64).unwrap_or(0.0)
}

/// Merges inner rows (grouped by keys and the distinct column, so a group's rows are
/// adjacent) into one row per group.
fn merge(rows: Vec<Row>, keys: &[String], merges: &[(String, Merge)]) -> Vec<Row> {
    let mut out: Vec<(Vec<Value>, Vec<Row>)> = Vec::new();
    for r in rows {
        let mut key: Vec<Value> = keys
            .iter()
            .map(|k| r.fields.get(k).cloned().unwrap_or(Value::Null))
            .collect();
        key.push(json!(r.ts));
        match out.last_mut() {
            Some((k, members)) if *k == key => members.push(r),
            _ => out.push((key, vec![r])),
        }
    }
    out.into_iter()
        .map(|(_, members)| {
            let mut fields = Map::new();
            for k in keys {
                fields.insert(
                    k.clone(),
                    members[0].fields.get(k).cloned().unwrap_or(Value::Null),
                );
            }
            for (name, m) in merges {
                let values = members.iter().map(|r| r.fields.get(name));
                let v = match m {
                    Merge::Sum { long: true } => {
                        json!(values
                            .map(|v| v.and_then(Value::as_i64).unwrap_or(0))
                            .sum::<i64>())
                    }
                    Merge::Sum { long: false } => double_json(values.map(num).sum()),
                    Merge::Min | Merge::Max => {
                        let mut best: Option<&Value> = None;
                        for v in values.flatten() {
                            let better = match best {
                                None => true,
                                Some(b) => {
                                    let o = num(Some(v)).partial_cmp(&num(Some(b)));
                                    o == Some(if *m == Merge::Min {
                                        Ordering::Less
                                    } else {
                                        Ordering::Greater
                                    })
                                }
                            };
                            if better {
                                best = Some(v);
                            }
                        }
                        best.cloned().unwrap_or(Value::Null)
                    }
                    Merge::Avg { long } => {
                        let sum = num(fields.get(&format!("{name}:sum")));
                        let count = num(fields.get(&format!("{name}:count")));
                        let q = if count == 0.0 { 0.0 } else { sum / count };
                        if *long {
                            json!(q as i64)
                        } else {
                            double_json(q)
                        }
                    }
                    Merge::Distinct => json!(members
                        .iter()
                        .filter(|r| r
                            .fields
                            .get("dd")
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty()))
                        .count()),
                };
                fields.insert(name.clone(), v);
            }
            Row {
                ts: members[0].ts,
                fields,
            }
        })
        .collect()
}

fn value_cmp(a: Option<&Value>, b: Option<&Value>, numeric: bool) -> Ordering {
    let n = |v: Option<&Value>| {
        v.and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    if numeric {
        return n(a).partial_cmp(&n(b)).unwrap_or(Ordering::Equal);
    }
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    s(a).cmp(&s(b))
}

/// Runs the plan and shapes its rows; timestamps print in `tz`.
pub fn execute(shared: &Shared, plan: &Plan, tz: &Tz) -> Result<Output, SqlError> {
    let result = crate::query::run(shared, &plan.native).map_err(SqlError::Native)?;
    let mut rows = rows_of(plan.query_type, &result);
    if let Some((keys, merges)) = &plan.merge {
        rows = merge(rows, keys, merges);
    }
    if let Some(h) = &plan.having {
        let h = Having::parse(h).map_err(SqlError::Native)?;
        rows.retain(|r| h.test(&r.fields));
    }
    if !plan.sort.is_empty() {
        rows.sort_by(|a, b| {
            for (src, desc, numeric) in &plan.sort {
                let o = match src {
                    Src::Time => a.ts.cmp(&b.ts),
                    Src::Field(f) => value_cmp(a.fields.get(f), b.fields.get(f), *numeric),
                    Src::Const(_) => Ordering::Equal,
                };
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    let rows = rows
        .into_iter()
        .skip(plan.offset)
        .take(plan.limit.unwrap_or(usize::MAX))
        .map(|r| {
            plan.outputs
                .iter()
                .map(|(col, src)| {
                    let v = match src {
                        Src::Time => json!(r.ts),
                        Src::Field(f) => r.fields.get(f).cloned().unwrap_or(Value::Null),
                        Src::Const(v) => v.clone(),
                    };
                    coerce_native(&v, col.ty, tz)
                })
                .collect()
        })
        .collect();
    Ok(Output {
        columns: plan.outputs.iter().map(|(c, _)| c.clone()).collect(),
        rows,
    })
}
