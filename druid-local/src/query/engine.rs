//! Query engines over segment views, producing Druid's result shapes.

use super::agg::{Agg, Having, PostAgg, State};
use super::{Common, QueryError};
use crate::spec::{string_list, NumType};
use crate::storage::Segment;
use crate::task::rollup::{DimValue, Index};
use crate::time::{self, Granularity, Millis};
use rustc_hash::FxHashMap;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

type Segs = [Arc<Segment>];

fn aggs(q: &Value, c: &Common) -> Result<Vec<Agg>, QueryError> {
    match q.get("aggregations") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|a| Ok(Agg::parse(a)?.with_nulls(c.null_handling)))
            .collect(),
        Some(other) => Err(QueryError::invalid(format!(
            "aggregations must be a list, got {other}"
        ))),
    }
}

fn post_aggs(q: &Value) -> Result<Vec<PostAgg>, QueryError> {
    match q.get("postAggregations") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(PostAgg::parse).collect(),
        Some(other) => Err(QueryError::invalid(format!(
            "postAggregations must be a list, got {other}"
        ))),
    }
}

fn ctx_bool(c: &Common, key: &str) -> bool {
    match c.context.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Fills `row` with finished aggregates and post-aggregates.
fn finish_row(row: &mut Map<String, Value>, aggs: &[Agg], states: &[State], posts: &[PostAgg]) {
    for (a, s) in aggs.iter().zip(states) {
        row.insert(a.spec.name.clone(), a.finish(*s));
    }
    for p in posts {
        let v = p.eval(row);
        row.insert(p.name().to_owned(), v);
    }
}

fn in_intervals(c: &Common, t: Millis) -> bool {
    c.intervals.iter().any(|i| i.contains(t))
}

/// Label of the single bucket of granularity `all`: the later of the first interval start
/// and the earliest row time of the data read, taken per segment and then the earliest.
fn all_label(c: &Common, seg_mins: &[Millis]) -> Millis {
    let start = c.intervals.first().map_or(0, |i| i.start);
    seg_mins
        .iter()
        .map(|m| (*m).max(start))
        .min()
        .unwrap_or(start)
}

/// Rows of a segment inside the query intervals and passing the filter, with their bucket.
fn for_each_row(
    c: &Common,
    idx: &Index,
    mut f: impl FnMut(usize, Millis),
) -> Option<(Millis, Millis)> {
    let filter = c.filter.as_ref().map(|f| f.compile(idx));
    let mut range: Option<(Millis, Millis)> = None;
    let all = matches!(c.granularity, Granularity::All);
    let single = c.intervals.len() == 1;
    let first = c.intervals[0];
    for row in 0..idx.len() {
        let t = idx.times[row];
        let inside = if single {
            first.contains(t)
        } else {
            in_intervals(c, t)
        };
        if !inside {
            continue;
        }
        range = Some(range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        if let Some(fl) = &filter {
            if !fl.matches(idx, row) {
                continue;
            }
        }
        let b = if all {
            0
        } else {
            c.granularity.bucket_start(t)
        };
        f(row, b);
    }
    range
}

/// `timeseries`.
pub fn timeseries(q: &Value, c: &Common, segs: &Segs) -> Result<Value, QueryError> {
    let aggs = aggs(q, c)?;
    let posts = post_aggs(q)?;
    let skip_empty = ctx_bool(c, "skipEmptyBuckets");
    let all = matches!(c.granularity, Granularity::All);
    let mut buckets: BTreeMap<Millis, Vec<State>> = BTreeMap::new();
    let mut seg_mins = Vec::new();
    let init: Vec<State> = aggs.iter().map(Agg::init).collect();
    for seg in segs {
        let idx = seg.index.read();
        let bound: Vec<_> = aggs.iter().map(|a| a.bind(&idx)).collect();
        let mut slots: FxHashMap<Millis, Vec<State>> = FxHashMap::default();
        let mut last: Option<(Millis, Vec<State>)> = None;
        let range = for_each_row(c, &idx, |row, b| {
            if last.as_ref().is_none_or(|(lb, _)| *lb != b) {
                if let Some((lb, st)) = last.take() {
                    slots.insert(lb, st);
                }
                let st = slots.remove(&b).unwrap_or_else(|| init.clone());
                last = Some((b, st));
            }
            if let Some((_, st)) = last.as_mut() {
                for (a, s) in bound.iter().zip(st.iter_mut()) {
                    a.add(s, &idx, row);
                }
            }
        });
        if let Some((lb, st)) = last.take() {
            slots.insert(lb, st);
        }
        let Some((min, max)) = range else { continue };
        seg_mins.push(min);
        if !all && !skip_empty {
            for iv in &c.intervals {
                let (lo, hi) = (min.max(iv.start), max.min(iv.end - 1));
                let mut b = c.granularity.bucket_start(lo);
                while b <= hi {
                    slots.entry(b).or_insert_with(|| init.clone());
                    b = c.granularity.next(b);
                }
            }
        }
        for (b, st) in slots {
            match buckets.get_mut(&b) {
                Some(acc) => {
                    for ((a, x), y) in aggs.iter().zip(acc.iter_mut()).zip(st) {
                        *x = a.combine(*x, y);
                    }
                }
                None => {
                    buckets.insert(b, st);
                }
            }
        }
    }
    let mut out = Vec::new();
    if all {
        let st = buckets.remove(&0);
        if st.is_some() || !skip_empty {
            let mut row = Map::new();
            finish_row(&mut row, &aggs, st.as_deref().unwrap_or(&init), &posts);
            out.push(json!({"timestamp": time::iso(all_label(c, &seg_mins)), "result": row}));
        }
    } else {
        for (b, st) in &buckets {
            let mut row = Map::new();
            finish_row(&mut row, &aggs, st, &posts);
            out.push(json!({"timestamp": time::iso(*b), "result": row}));
        }
    }
    if q.get("descending").and_then(Value::as_bool) == Some(true) {
        out.reverse();
    }
    if let Some(l) = q.get("limit").and_then(Value::as_u64) {
        out.truncate(l as usize);
    }
    Ok(Value::Array(out))
}

/// A dimension spec: input column and output name.
fn dim_spec(v: &Value) -> Result<(String, String), QueryError> {
    match v {
        Value::String(s) => Ok((s.clone(), s.clone())),
        Value::Object(o) => {
            match o.get("type").and_then(Value::as_str) {
                None | Some("default") | Some("LegacyDimensionSpec") => {}
                Some(t) => {
                    return Err(QueryError::unsupported(format!(
                        "dimension spec type [{t}] is not supported by druid-local"
                    )))
                }
            }
            let d = o
                .get("dimension")
                .and_then(Value::as_str)
                .ok_or_else(|| QueryError::invalid("dimension spec requires `dimension`"))?;
            let out = o.get("outputName").and_then(Value::as_str).unwrap_or(d);
            Ok((d.to_owned(), out.to_owned()))
        }
        other => Err(QueryError::invalid(format!(
            "invalid dimension spec {other}"
        ))),
    }
}

/// Values a row's dictionary entry contributes to a grouping (null groups as null).
fn explode(v: &DimValue) -> Vec<Option<String>> {
    match v {
        DimValue::Null => vec![None],
        DimValue::One(s) => vec![Some(s.to_string())],
        DimValue::Multi(vs) => vs.iter().map(|s| Some(s.to_string())).collect(),
    }
}

/// Per-segment grouping by (bucket, dictionary ids), exploded into value tuples when merged.
fn grouped(
    c: &Common,
    segs: &Segs,
    dims: &[String],
    aggs: &[Agg],
    seg_mins: &mut Vec<Millis>,
) -> BTreeMap<(Millis, Vec<Option<String>>), Vec<State>> {
    let init: Vec<State> = aggs.iter().map(Agg::init).collect();
    let mut merged: BTreeMap<(Millis, Vec<Option<String>>), Vec<State>> = BTreeMap::new();
    for seg in segs {
        let idx = seg.index.read();
        let cols: Vec<Option<usize>> = dims.iter().map(|d| idx.dim_index(d)).collect();
        let bound: Vec<_> = aggs.iter().map(|a| a.bind(&idx)).collect();
        let mut groups: FxHashMap<(Millis, Vec<u32>), Vec<State>> = FxHashMap::default();
        let mut key = Vec::with_capacity(dims.len());
        let range = for_each_row(c, &idx, |row, b| {
            key.clear();
            key.extend(cols.iter().map(|d| d.map_or(0, |d| idx.dim_cols[d][row])));
            let st = match groups.get_mut(&(b, key.clone())) {
                Some(s) => s,
                None => groups
                    .entry((b, key.clone()))
                    .or_insert_with(|| init.clone()),
            };
            for (a, s) in bound.iter().zip(st.iter_mut()) {
                a.add(s, &idx, row);
            }
        });
        if let Some((min, _)) = range {
            seg_mins.push(min);
        }
        for ((b, ids), st) in groups {
            let mut combos: Vec<Vec<Option<String>>> = vec![Vec::new()];
            for (i, id) in ids.iter().enumerate() {
                let values = match cols[i] {
                    Some(d) => explode(&idx.dicts[d].values[*id as usize]),
                    None => vec![None],
                };
                combos = combos
                    .into_iter()
                    .flat_map(|c| {
                        values.iter().map(move |v| {
                            let mut c = c.clone();
                            c.push(v.clone());
                            c
                        })
                    })
                    .collect();
            }
            for combo in combos {
                match merged.get_mut(&(b, combo.clone())) {
                    Some(acc) => {
                        for ((a, x), y) in aggs.iter().zip(acc.iter_mut()).zip(st.iter()) {
                            *x = a.combine(*x, *y);
                        }
                    }
                    None => {
                        merged.insert((b, combo), st.clone());
                    }
                }
            }
        }
    }
    merged
}

fn str_value(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

/// `groupBy`.
pub fn group_by(q: &Value, c: &Common, segs: &Segs) -> Result<Value, QueryError> {
    if q.get("subtotalsSpec").is_some_and(|s| !s.is_null()) {
        return Err(QueryError::unsupported(
            "subtotalsSpec is not supported by druid-local",
        ));
    }
    if matches!(q.get("dataSource"), Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("query"))
    {
        return Err(QueryError::unsupported(
            "nested groupBy is not supported by druid-local",
        ));
    }
    let specs: Vec<(String, String)> = match q.get("dimensions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(dim_spec).collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(QueryError::invalid(format!(
                "dimensions must be a list, got {other}"
            )))
        }
    };
    let aggs = aggs(q, c)?;
    let posts = post_aggs(q)?;
    let having = match q.get("having") {
        None | Some(Value::Null) => None,
        Some(h) => Some(Having::parse(h)?),
    };
    let dims: Vec<String> = specs.iter().map(|(d, _)| d.clone()).collect();
    let mut seg_mins = Vec::new();
    let groups = grouped(c, segs, &dims, &aggs, &mut seg_mins);
    let all_ts = c.intervals.first().map_or(0, |i| i.start);
    let mut rows: Vec<(Millis, Map<String, Value>)> = Vec::new();
    for ((b, values), st) in &groups {
        let mut ev = Map::new();
        for ((_, out), v) in specs.iter().zip(values) {
            ev.insert(out.clone(), str_value(v));
        }
        finish_row(&mut ev, &aggs, st, &posts);
        if having.as_ref().is_none_or(|h| h.test(&ev)) {
            let ts = if matches!(c.granularity, Granularity::All) {
                all_ts
            } else {
                *b
            };
            rows.push((ts, ev));
        }
    }
    apply_limit_spec(q, &mut rows)?;
    Ok(Value::Array(
        rows.into_iter()
            .map(|(ts, ev)| json!({"version": "v1", "timestamp": time::iso(ts), "event": ev}))
            .collect(),
    ))
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>, numeric: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let num = |v: Option<&Value>| {
        v.and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    match (a, b) {
        (Some(Value::Number(_)), Some(Value::Number(_))) => {
            num(a).partial_cmp(&num(b)).unwrap_or(Equal)
        }
        _ if numeric => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Equal),
            (None, Some(_)) => Less,
            (Some(_), None) => Greater,
            (None, None) => Equal,
        },
        _ => {
            let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
            s(a).cmp(&s(b))
        }
    }
}

fn apply_limit_spec(
    q: &Value,
    rows: &mut Vec<(Millis, Map<String, Value>)>,
) -> Result<(), QueryError> {
    let Some(ls) = q.get("limitSpec").filter(|l| !l.is_null()) else {
        return Ok(());
    };
    match ls.get("type").and_then(Value::as_str) {
        None | Some("default") => {}
        Some("NoopLimitSpec") | Some("noop") => return Ok(()),
        Some(t) => {
            return Err(QueryError::unsupported(format!(
                "limitSpec type [{t}] is not supported by druid-local"
            )))
        }
    }
    let mut cols: Vec<(String, bool, bool)> = Vec::new();
    for col in ls
        .get("columns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match col {
            Value::String(s) => cols.push((s.clone(), false, false)),
            Value::Object(o) => {
                let d = o
                    .get("dimension")
                    .and_then(Value::as_str)
                    .ok_or_else(|| QueryError::invalid("orderBy column requires `dimension`"))?;
                let desc = o
                    .get("direction")
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.eq_ignore_ascii_case("descending"));
                let numeric = o
                    .get("dimensionOrder")
                    .and_then(|x| x.as_str().or_else(|| x.get("type").and_then(Value::as_str)))
                    == Some("numeric");
                cols.push((d.to_owned(), desc, numeric));
            }
            other => {
                return Err(QueryError::invalid(format!(
                    "invalid orderBy column {other}"
                )))
            }
        }
    }
    if !cols.is_empty() {
        rows.sort_by(|(ta, a), (tb, b)| {
            let mut o = ta.cmp(tb);
            for (name, desc, numeric) in &cols {
                if o.is_ne() {
                    break;
                }
                let c = cmp_values(a.get(name), b.get(name), *numeric);
                o = if *desc { c.reverse() } else { c };
            }
            o
        });
    }
    let offset = ls.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    if offset > 0 {
        rows.drain(..offset.min(rows.len()));
    }
    if let Some(l) = ls.get("limit").and_then(Value::as_u64) {
        rows.truncate(l as usize);
    }
    Ok(())
}

/// How topN orders its values.
enum TopNOrder {
    Numeric(String, bool),
    Dimension(bool),
}

fn top_n_order(v: &Value) -> Result<TopNOrder, QueryError> {
    Ok(match v {
        Value::String(s) => TopNOrder::Numeric(s.clone(), false),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("numeric") => TopNOrder::Numeric(
                o.get("metric")
                    .and_then(Value::as_str)
                    .ok_or_else(|| QueryError::invalid("numeric topN metric requires `metric`"))?
                    .to_owned(),
                false,
            ),
            Some("inverted") => {
                match top_n_order(o.get("metric").ok_or_else(|| {
                    QueryError::invalid("inverted topN metric requires `metric`")
                })?)? {
                    TopNOrder::Numeric(m, inv) => TopNOrder::Numeric(m, !inv),
                    TopNOrder::Dimension(inv) => TopNOrder::Dimension(!inv),
                }
            }
            Some("dimension") | Some("lexicographic") => {
                if o.get("previousStop").is_some_and(|p| !p.is_null()) {
                    return Err(QueryError::unsupported(
                        "topN previousStop is not supported by druid-local",
                    ));
                }
                TopNOrder::Dimension(false)
            }
            other => {
                return Err(QueryError::unsupported(format!(
                    "topN metric type [{}] is not supported by druid-local",
                    other.unwrap_or("null")
                )))
            }
        },
        other => return Err(QueryError::invalid(format!("invalid topN metric {other}"))),
    })
}

/// `topN`.
pub fn top_n(q: &Value, c: &Common, segs: &Segs) -> Result<Value, QueryError> {
    let (dim, out_name) = dim_spec(
        q.get("dimension")
            .ok_or_else(|| QueryError::invalid("Missing fields [dimension]"))?,
    )?;
    let order = top_n_order(
        q.get("metric")
            .ok_or_else(|| QueryError::invalid("Missing fields [metric]"))?,
    )?;
    let threshold =
        q.get("threshold")
            .and_then(Value::as_u64)
            .ok_or_else(|| QueryError::invalid("Missing fields [threshold]"))? as usize;
    let aggs = aggs(q, c)?;
    let posts = post_aggs(q)?;
    if let TopNOrder::Numeric(m, _) = &order {
        if !aggs.iter().any(|a| &a.spec.name == m) && !posts.iter().any(|p| p.name() == m) {
            return Err(QueryError::invalid(format!(
                "Must have an AggregatorFactory or PostAggregator for metric[{m}], gave[{}]",
                aggs.iter()
                    .map(|a| a.spec.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut seg_mins = Vec::new();
    let groups = grouped(c, segs, std::slice::from_ref(&dim), &aggs, &mut seg_mins);
    let mut per_bucket: BTreeMap<Millis, Vec<Map<String, Value>>> = BTreeMap::new();
    for ((b, values), st) in &groups {
        let mut row = Map::new();
        row.insert(out_name.clone(), str_value(&values[0]));
        finish_row(&mut row, &aggs, st, &posts);
        per_bucket.entry(*b).or_default().push(row);
    }
    let mut out = Vec::new();
    for (b, mut rows) in per_bucket {
        match &order {
            TopNOrder::Numeric(m, inverted) => rows.sort_by(|x, y| {
                let o = cmp_values(y.get(m), x.get(m), true)
                    .then_with(|| cmp_values(x.get(&out_name), y.get(&out_name), false));
                if *inverted {
                    // Ascending, nulls still last.
                    let null = |r: &Map<String, Value>| r.get(m).is_none_or(Value::is_null);
                    null(x)
                        .cmp(&null(y))
                        .then_with(|| cmp_values(x.get(m), y.get(m), true))
                        .then_with(|| cmp_values(x.get(&out_name), y.get(&out_name), false))
                } else {
                    o
                }
            }),
            TopNOrder::Dimension(inverted) => rows.sort_by(|x, y| {
                let o = cmp_values(x.get(&out_name), y.get(&out_name), false);
                if *inverted {
                    o.reverse()
                } else {
                    o
                }
            }),
        }
        rows.truncate(threshold);
        let ts = if matches!(c.granularity, Granularity::All) {
            all_label(c, &seg_mins)
        } else {
            b
        };
        out.push(json!({"timestamp": time::iso(ts), "result": rows}));
    }
    Ok(Value::Array(out))
}

/// `scan` (resultFormat `list` or `compactedList`, order `none`).
pub fn scan(q: &Value, c: &Common, segs: &Segs) -> Result<Value, QueryError> {
    let compact = match q.get("resultFormat").and_then(Value::as_str) {
        None | Some("list") => false,
        Some("compactedList") => true,
        Some(other) => {
            return Err(QueryError::unsupported(format!(
                "scan resultFormat [{other}] is not supported by druid-local"
            )))
        }
    };
    let order = q.get("order").and_then(Value::as_str).unwrap_or("none");
    if !["none", "ascending", "descending"].contains(&order) {
        return Err(QueryError::invalid(format!("Invalid scan order [{order}]")));
    }
    let mut remaining = q
        .get("limit")
        .and_then(Value::as_u64)
        .map(|l| l as usize)
        .unwrap_or(usize::MAX);
    let mut skip = q.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let asked = string_list(q, "columns");
    let mut segs: Vec<&Arc<Segment>> = segs.iter().collect();
    segs.sort_by_key(|s| (s.interval.start, s.partition));
    if order == "descending" {
        segs.reverse();
    }
    let mut out = Vec::new();
    for seg in segs {
        if remaining == 0 {
            break;
        }
        let idx = seg.index.read();
        let columns: Vec<String> = if asked.is_empty() {
            std::iter::once("__time".to_owned())
                .chain(idx.dims.iter().cloned())
                .chain(idx.metrics.iter().map(|m| m.name.clone()))
                .collect()
        } else {
            asked.clone()
        };
        let mut rows = Vec::new();
        for_each_row(c, &idx, |row, _| rows.push(row));
        // Druid's realtime index iterates rows in (time, dimensions) order.
        rows.sort_by(|a, b| {
            idx.times[*a].cmp(&idx.times[*b]).then_with(|| {
                (0..idx.dims.len())
                    .map(|d| {
                        idx.dim_value(d, *a)
                            .values()
                            .cmp(idx.dim_value(d, *b).values())
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        if order == "descending" {
            rows.reverse();
        }
        let mut events = Vec::new();
        for row in rows {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if remaining == 0 {
                break;
            }
            remaining -= 1;
            let values = columns.iter().map(|col| {
                if col == "__time" {
                    Value::from(idx.times[row])
                } else if let Some(d) = idx.dim_index(col) {
                    idx.dim_value(d, row).to_json()
                } else if let Some(j) = idx.metric_index(col) {
                    let agg = Agg {
                        spec: idx.metrics[j].clone(),
                        filter: None,
                        nulls: c.null_handling,
                    };
                    agg.finish(match idx.metric_cols[j].get(row) {
                        _ if idx.metric_is_null(j, row) => State::Null,
                        crate::task::rollup::Val::Long(l) => State::Long(l),
                        crate::task::rollup::Val::Double(d) => State::Double(d),
                    })
                } else {
                    Value::Null
                }
            });
            if compact {
                events.push(Value::Array(values.collect()));
            } else {
                events.push(Value::Object(columns.iter().cloned().zip(values).collect()));
            }
        }
        if !events.is_empty() {
            // Each column's type as Druid names it; a column the segment lacks has none.
            let signature: Vec<Value> = columns
                .iter()
                .map(|col| {
                    let ty = if col == "__time" {
                        Some("LONG")
                    } else if idx.dim_index(col).is_some() {
                        Some("STRING")
                    } else {
                        idx.metric_index(col)
                            .map(|j| match idx.metrics[j].kind.num_type() {
                                NumType::Long => "LONG",
                                NumType::Double => "DOUBLE",
                                NumType::Float => "FLOAT",
                            })
                    };
                    match ty {
                        Some(ty) => json!({"name": col, "type": ty}),
                        None => json!({"name": col}),
                    }
                })
                .collect();
            // Rows put in time order across segments come without a segment id.
            let id = if order == "none" {
                json!(seg.id())
            } else {
                Value::Null
            };
            out.push(json!({"segmentId": id, "columns": columns, "events": events, "rowSignature": signature}));
        }
    }
    Ok(Value::Array(out))
}

/// `timeBoundary`.
pub fn time_boundary(q: &Value, c: &Common, segs: &Segs) -> Result<Value, QueryError> {
    let bound = q.get("bound").and_then(Value::as_str);
    let mut range: Option<(Millis, Millis)> = None;
    let c = Common {
        granularity: Granularity::All,
        data_source: c.data_source.clone(),
        source: c.source.clone(),
        virtual_columns: Vec::new(),
        intervals: c.intervals.clone(),
        filter: c.filter.clone(),
        context: Value::Null,
        null_handling: c.null_handling,
    };
    for seg in segs {
        let idx = seg.index.read();
        for_each_row(&c, &idx, |row, _| {
            let t = idx.times[row];
            range = Some(range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        });
    }
    let Some((min, max)) = range else {
        return Ok(json!([]));
    };
    Ok(match bound {
        Some("maxTime") => {
            json!([{"timestamp": time::iso(max), "result": {"maxTime": time::iso(max)}}])
        }
        Some("minTime") => {
            json!([{"timestamp": time::iso(min), "result": {"minTime": time::iso(min)}}])
        }
        None => {
            json!([{"timestamp": time::iso(min), "result": {"maxTime": time::iso(max), "minTime": time::iso(min)}}])
        }
        Some(other) => {
            return Err(QueryError::invalid(format!(
                "Invalid timeBoundary bound [{other}]: expected minTime or maxTime"
            )))
        }
    })
}

fn column_analysis(
    ty: &str,
    multi: bool,
    nulls: bool,
    card: Option<usize>,
    min: Value,
    max: Value,
) -> Value {
    json!({"typeSignature": ty, "type": ty, "hasMultipleValues": multi, "hasNulls": nulls, "size": 0, "cardinality": card, "minValue": min, "maxValue": max, "errorMessage": null})
}

/// `segmentMetadata`.
pub fn segment_metadata(q: &Value, _c: &Common, segs: &Segs) -> Result<Value, QueryError> {
    let types: Vec<String> = match q.get("analysisTypes").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        None => vec!["cardinality".into(), "interval".into(), "minmax".into()],
    };
    let has = |t: &str| types.iter().any(|x| x == t);
    let merge = q.get("merge").and_then(Value::as_bool).unwrap_or(false);
    let mut results: Vec<Map<String, Value>> = Vec::new();
    for seg in segs {
        let idx = seg.index.read();
        let mut columns = Map::new();
        columns.insert(
            "__time".into(),
            column_analysis("LONG", false, false, None, Value::Null, Value::Null),
        );
        for (d, name) in idx.dims.iter().enumerate() {
            let dict = &idx.dicts[d];
            let multi = dict.values.iter().any(|v| matches!(v, DimValue::Multi(_)));
            let nulls = idx.dim_cols[d].contains(&0);
            let mut all: Vec<&str> = dict
                .values
                .iter()
                .flat_map(|v| v.values().iter().map(|s| &**s))
                .collect();
            all.sort_unstable();
            all.dedup();
            // Null counts as a value; a merged (handed-off) segment's minimum is then null.
            let card = has("cardinality").then_some(all.len() + usize::from(nulls));
            let (min, max) = if has("minmax") {
                (
                    all.first()
                        .filter(|_| !(nulls && idx.handed_off))
                        .map_or(Value::Null, |s| json!(s)),
                    all.last().map_or(Value::Null, |s| json!(s)),
                )
            } else {
                (Value::Null, Value::Null)
            };
            columns.insert(
                name.clone(),
                column_analysis("STRING", multi, nulls, card, min, max),
            );
        }
        for (j, m) in idx.metrics.iter().enumerate() {
            let ty = match m.kind.num_type() {
                NumType::Long => "LONG",
                NumType::Double => "DOUBLE",
                NumType::Float => "FLOAT",
            };
            // A realtime index reports no nulls in metrics; a merged segment does.
            let nulls = idx.handed_off && idx.metric_has_nulls(j);
            columns.insert(
                m.name.clone(),
                column_analysis(ty, false, nulls, None, Value::Null, Value::Null),
            );
        }
        // The combining form of each aggregator, reading the stored column (`count` sums it).
        let aggregators = has("aggregators").then(|| {
            idx.metrics
                .iter()
                .map(|m| {
                    let ty = match m.kind {
                        crate::spec::AggKind::Count => "longSum",
                        k => k.name(),
                    };
                    let a = json!({"type": ty, "name": m.name, "fieldName": m.name});
                    (m.name.clone(), a)
                })
                .collect::<Map<String, Value>>()
        });
        let mut r = Map::new();
        r.insert("id".into(), json!(seg.id()));
        r.insert(
            "intervals".into(),
            if has("interval") {
                json!([seg.interval.to_string()])
            } else {
                Value::Null
            },
        );
        r.insert("columns".into(), Value::Object(columns));
        r.insert("size".into(), json!(0));
        r.insert("numRows".into(), json!(idx.len()));
        r.insert(
            "aggregators".into(),
            aggregators.map_or(Value::Null, Value::Object),
        );
        r.insert("timestampSpec".into(), Value::Null);
        r.insert("queryGranularity".into(), Value::Null);
        r.insert(
            "rollup".into(),
            if has("rollup") {
                json!(idx.rollup)
            } else {
                Value::Null
            },
        );
        results.push(r);
    }
    if merge && results.len() > 1 {
        let mut acc = results.remove(0);
        acc.insert("id".into(), json!("merged"));
        for r in results.drain(..) {
            merge_analysis(&mut acc, r);
        }
        results.push(acc);
    }
    Ok(Value::Array(
        results.into_iter().map(Value::Object).collect(),
    ))
}

fn merge_analysis(acc: &mut Map<String, Value>, r: Map<String, Value>) {
    if let (Some(Value::Array(a)), Some(Value::Array(b))) =
        (acc.get_mut("intervals"), r.get("intervals"))
    {
        a.extend(b.iter().cloned());
    }
    let rows = acc.get("numRows").and_then(Value::as_u64).unwrap_or(0)
        + r.get("numRows").and_then(Value::as_u64).unwrap_or(0);
    acc.insert("numRows".into(), json!(rows));
    if let (Some(Value::Object(a)), Some(Value::Object(b))) =
        (acc.get_mut("columns"), r.get("columns"))
    {
        for (name, col) in b {
            match a.get_mut(name) {
                None => {
                    a.insert(name.clone(), col.clone());
                }
                Some(x) => {
                    for flag in ["hasMultipleValues", "hasNulls"] {
                        let v = x[flag].as_bool().unwrap_or(false)
                            || col[flag].as_bool().unwrap_or(false);
                        x[flag] = json!(v);
                    }
                    if let (Some(c1), Some(c2)) =
                        (x["cardinality"].as_u64(), col["cardinality"].as_u64())
                    {
                        x["cardinality"] = json!(c1.max(c2));
                    }
                    if let (Some(m1), Some(m2)) = (x["minValue"].as_str(), col["minValue"].as_str())
                    {
                        x["minValue"] = json!(m1.min(m2));
                    }
                    if let (Some(m1), Some(m2)) = (x["maxValue"].as_str(), col["maxValue"].as_str())
                    {
                        x["maxValue"] = json!(m1.max(m2));
                    }
                }
            }
        }
    }
    if let (Some(Value::Object(a)), Some(Value::Object(b))) =
        (acc.get_mut("aggregators"), r.get("aggregators"))
    {
        for (k, v) in b {
            a.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// `dataSourceMetadata`.
pub fn data_source_metadata(segs: &Segs) -> Result<Value, QueryError> {
    let max = segs
        .iter()
        .filter_map(|s| s.index.read().max_ingested)
        .max();
    Ok(match max {
        Some(t) => {
            json!([{"timestamp": time::iso(t), "result": {"maxIngestedEventTime": time::iso(t)}}])
        }
        None => json!([]),
    })
}

/// What a `search` query looks for in dimension values.
enum SearchSpec {
    /// `contains` / `insensitive_contains`: the value holds this text.
    Contains { text: String, case_sensitive: bool },
    /// `fragment`: the value holds every one of these texts.
    Fragments {
        texts: Vec<String>,
        case_sensitive: bool,
    },
    /// `regex`: the pattern is found in the value.
    Regex(regex::Regex),
}

impl SearchSpec {
    fn parse(v: &Value) -> Result<SearchSpec, QueryError> {
        let case_sensitive = v
            .get("caseSensitive")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let text = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| QueryError::invalid(format!("search query spec requires `{key}`")))
        };
        match v.get("type").and_then(Value::as_str) {
            Some("insensitive_contains") => Ok(SearchSpec::Contains {
                text: text("value")?,
                case_sensitive: false,
            }),
            Some("contains") => Ok(SearchSpec::Contains {
                text: text("value")?,
                case_sensitive,
            }),
            Some("fragment") => Ok(SearchSpec::Fragments {
                texts: v
                    .get("values")
                    .and_then(Value::as_array)
                    .ok_or_else(|| QueryError::invalid("fragment search requires `values`"))?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                case_sensitive,
            }),
            Some("regex") => regex::Regex::new(&text("pattern")?)
                .map(SearchSpec::Regex)
                .map_err(|e| QueryError::invalid(format!("invalid search regex: {e}"))),
            other => Err(QueryError::unknown_type(format!(
                "Could not resolve type id '{}' as a subtype of `org.apache.druid.query.search.SearchQuerySpec`: known type ids = [contains, fragment, insensitive_contains, regex]",
                other.unwrap_or("")
            ))),
        }
    }

    fn accepts(&self, value: &str) -> bool {
        let fold = |s: &str, keep: bool| {
            if keep {
                s.to_owned()
            } else {
                s.to_lowercase()
            }
        };
        match self {
            SearchSpec::Contains {
                text,
                case_sensitive,
            } => fold(value, *case_sensitive).contains(&fold(text, *case_sensitive)),
            SearchSpec::Fragments {
                texts,
                case_sensitive,
            } => {
                let v = fold(value, *case_sensitive);
                texts.iter().all(|t| v.contains(&fold(t, *case_sensitive)))
            }
            SearchSpec::Regex(r) => r.is_match(value),
        }
    }
}

/// `search`: the dimension values a spec accepts, with the number of rows holding each,
/// ordered by value (the `sort` comparator) then dimension, at most `limit` (default 1000)
/// per bucket. As in Druid, each segment gives one result labelled with the start of its
/// data (here its interval), and the granularity only buckets those labels: rows are not
/// bucketed by their own time.
pub fn search(q: &Value, c: &Common, segs: &Segs) -> Result<Value, QueryError> {
    let spec = SearchSpec::parse(
        q.get("query")
            .ok_or_else(|| QueryError::invalid("search requires `query`"))?,
    )?;
    let wanted: Option<Vec<String>> = match q.get("searchDimensions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|d| match d {
                    Value::String(s) => Ok(s.clone()),
                    Value::Object(o) => o
                        .get("dimension")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| QueryError::invalid("a search dimension needs `dimension`")),
                    other => Err(QueryError::invalid(format!(
                        "invalid search dimension {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err(QueryError::invalid(format!(
                "searchDimensions must be a list, got {other}"
            )))
        }
    };
    let ordering = super::filter::Ordering::parse(q.get("sort"))?;
    let limit = q
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(1000, |l| l as usize);
    let all = matches!(c.granularity, Granularity::All);
    let mut buckets: BTreeMap<Millis, FxHashMap<(String, String), u64>> = BTreeMap::new();
    let mut first_segment: Option<Millis> = None;
    for seg in segs {
        let idx = seg.index.read();
        let dims: Vec<usize> = match &wanted {
            None => (0..idx.dims.len()).collect(),
            Some(names) => names.iter().filter_map(|n| idx.dim_index(n)).collect(),
        };
        // Which dictionary values each dimension's spec accepts, computed once per segment.
        let accepted: Vec<Vec<Vec<bool>>> = dims
            .iter()
            .map(|d| {
                idx.dicts[*d]
                    .values
                    .iter()
                    .map(|v| v.values().iter().map(|s| spec.accepts(s)).collect())
                    .collect()
            })
            .collect();
        let label = if all {
            0
        } else {
            c.granularity.bucket_start(seg.interval.start)
        };
        let mut hit = false;
        for_each_row(c, &idx, |row, _| {
            for (k, d) in dims.iter().enumerate() {
                let id = idx.dim_cols[*d][row] as usize;
                let values = idx.dicts[*d].values[id].values();
                for (v, ok) in values.iter().zip(&accepted[k][id]) {
                    if *ok {
                        hit = true;
                        *buckets
                            .entry(label)
                            .or_default()
                            .entry((idx.dims[*d].clone(), v.to_string()))
                            .or_default() += 1;
                    }
                }
            }
        });
        if hit {
            let start = seg.interval.start;
            first_segment = Some(first_segment.map_or(start, |f| f.min(start)));
        }
    }
    let mut out = Vec::new();
    for (bucket, hits) in buckets {
        let mut hits: Vec<((String, String), u64)> = hits.into_iter().collect();
        hits.sort_by(|((da, va), _), ((db, vb), _)| {
            ordering.compare(va, vb).then_with(|| da.cmp(db))
        });
        hits.truncate(limit);
        let ts = if all {
            first_segment.unwrap_or(bucket)
        } else {
            bucket
        };
        let result: Vec<Value> = hits
            .into_iter()
            .map(|((d, v), n)| json!({"dimension": d, "value": v, "count": n}))
            .collect();
        out.push(json!({"timestamp": time::iso(ts), "result": result}));
    }
    Ok(Value::Array(out))
}
