//! Query-time aggregators, post-aggregators and having specs.

use super::filter::{Compiled, Filter};
use super::QueryError;
use crate::config::NullHandling;
use crate::spec::{AggKind, AggOp, MetricSpec, NumType};
use crate::task::parse::java_double;
use crate::task::rollup::{Column, DimValue, Index, Val};
use serde_json::{Map, Number, Value};

/// A query aggregator, possibly filtered.
#[derive(Debug, Clone)]
pub struct Agg {
    /// The aggregation.
    pub spec: MetricSpec,
    /// `filtered` aggregator's filter.
    pub filter: Option<Filter>,
    /// Whether nulls are skipped (and no value is null) or read as 0.
    pub nulls: NullHandling,
}

/// Running value of an aggregator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// Long accumulator.
    Long(i64),
    /// Double accumulator (floats too).
    Double(f64),
    /// Nothing aggregated yet (SQL-compatible null handling): finishes as null.
    Null,
}

impl Agg {
    /// Parses an aggregator (including `filtered`).
    pub fn parse(v: &Value) -> Result<Agg, QueryError> {
        if v.get("type").and_then(Value::as_str) == Some("filtered") {
            let inner = v
                .get("aggregator")
                .ok_or_else(|| QueryError::invalid("filtered aggregator requires `aggregator`"))?;
            let filter =
                Filter::parse(v.get("filter").ok_or_else(|| {
                    QueryError::invalid("filtered aggregator requires `filter`")
                })?)?;
            let mut a = Agg::parse(inner)?;
            if let Some(name) = v.get("name").and_then(Value::as_str) {
                a.spec.name = name.to_owned();
            }
            a.filter = Some(match a.filter.take() {
                Some(f) => Filter::And(vec![filter, f]),
                None => filter,
            });
            return Ok(a);
        }
        let spec = MetricSpec::from_json(v, "aggregations").map_err(|e| {
            if e.contains("does not support") {
                QueryError::unsupported(e)
            } else {
                QueryError::invalid(e)
            }
        })?;
        Ok(Agg {
            spec,
            filter: None,
            nulls: NullHandling::Legacy,
        })
    }

    /// The same aggregator under `nulls`.
    pub fn with_nulls(mut self, nulls: NullHandling) -> Agg {
        self.nulls = nulls;
        self
    }

    /// Initial state: no value when SQL-compatible (`count` starts at 0); in legacy null
    /// handling sums start at 0, min/max at the extremes.
    pub fn init(&self) -> State {
        let k = self.spec.kind;
        if self.nulls == NullHandling::SqlCompatible && k != AggKind::Count {
            return State::Null;
        }
        match (k.num_type(), k.op()) {
            (NumType::Long, AggOp::Sum) => State::Long(0),
            (NumType::Long, AggOp::Min) => State::Long(i64::MAX),
            (NumType::Long, AggOp::Max) => State::Long(i64::MIN),
            (_, AggOp::Sum) => State::Double(0.0),
            (_, AggOp::Min) => State::Double(f64::INFINITY),
            (_, AggOp::Max) => State::Double(f64::NEG_INFINITY),
        }
    }

    /// Combines two states.
    pub fn combine(&self, a: State, b: State) -> State {
        let op = self.spec.kind.op();
        match (a, b) {
            (State::Null, s) | (s, State::Null) => s,
            (State::Long(x), State::Long(y)) => State::Long(match op {
                AggOp::Sum => x.wrapping_add(y),
                AggOp::Min => x.min(y),
                AggOp::Max => x.max(y),
            }),
            (State::Double(x), State::Double(y)) => State::Double(self.round(match op {
                AggOp::Sum => x + y,
                AggOp::Min => x.min(y),
                AggOp::Max => x.max(y),
            })),
            (a, _) => a,
        }
    }

    fn round(&self, x: f64) -> f64 {
        if self.spec.kind.num_type() == NumType::Float {
            x as f32 as f64
        } else {
            x
        }
    }

    /// The finished JSON value.
    pub fn finish(&self, s: State) -> Value {
        match s {
            State::Null => Value::Null,
            State::Long(l) => Value::from(l),
            State::Double(d) if self.spec.kind.num_type() == NumType::Float => float_json(d as f32),
            State::Double(d) => double_json(d),
        }
    }
}

/// A double as Jackson prints it (non-finite values as strings).
pub fn double_json(d: f64) -> Value {
    match Number::from_f64(d) {
        Some(n) => Value::Number(n),
        None => Value::String(java_double(d)),
    }
}

fn float_json(f: f32) -> Value {
    // Print the shortest f32 form (0.1, not 0.10000000149011612).
    match f.to_string().parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) => Value::Number(n),
        None => Value::String(java_double(f as f64)),
    }
}

/// Where an aggregator reads its input in one segment.
#[derive(Debug)]
pub enum Input<'a> {
    /// Counts rows.
    Count,
    /// A long column and its null rows (empty when none can be).
    Long(&'a [i64], &'a [bool]),
    /// A double column and its null rows (empty when none can be).
    Double(&'a [f64], &'a [bool]),
    /// A string dimension read as numbers (null where a value is not a number).
    Dim(&'a [u32], Vec<Option<f64>>),
    /// Row time.
    Time(&'a [i64]),
    /// No such column: null (0 in legacy null handling).
    Missing,
}

/// An aggregator bound to a segment.
#[derive(Debug)]
pub struct Bound<'a> {
    /// Input.
    pub input: Input<'a>,
    /// Filter of a `filtered` aggregator.
    pub filter: Option<Compiled>,
    long: bool,
    op: AggOp,
    float: bool,
    legacy: bool,
}

impl Agg {
    /// Binds to a segment's columns.
    pub fn bind<'a>(&self, idx: &'a Index) -> Bound<'a> {
        let input = match (&self.spec.kind, &self.spec.field) {
            (AggKind::Count, _) => Input::Count,
            (_, Some(f)) if f == "__time" => Input::Time(&idx.times),
            (_, Some(f)) => match idx.metric_index(f) {
                Some(j) => match &idx.metric_cols[j] {
                    Column::Long(v) => Input::Long(v, idx.metric_nulls(j)),
                    Column::Double(v) => Input::Double(v, idx.metric_nulls(j)),
                },
                None => match idx.dim_index(f) {
                    Some(d) => Input::Dim(
                        &idx.dim_cols[d],
                        idx.dicts[d]
                            .values
                            .iter()
                            .map(|v| match v {
                                DimValue::One(s) => s.trim().parse().ok(),
                                _ => None,
                            })
                            .collect(),
                    ),
                    None => Input::Missing,
                },
            },
            (_, None) => Input::Missing,
        };
        Bound {
            input,
            filter: self.filter.as_ref().map(|f| f.compile(idx)),
            long: self.spec.kind.num_type() == NumType::Long,
            op: self.spec.kind.op(),
            float: self.spec.kind.num_type() == NumType::Float,
            legacy: self.nulls == NullHandling::Legacy,
        }
    }
}

impl Bound<'_> {
    /// Folds row `row` into `s`.
    #[inline]
    pub fn add(&self, s: &mut State, idx: &Index, row: usize) {
        if let Some(f) = &self.filter {
            if !f.matches(idx, row) {
                return;
            }
        }
        let null = |nulls: &[bool]| nulls.get(row).copied().unwrap_or(false);
        let v = match &self.input {
            Input::Count => Some(Val::Long(1)),
            Input::Long(c, nulls) => (!null(nulls)).then(|| Val::Long(c[row])),
            Input::Double(c, nulls) => (!null(nulls)).then(|| Val::Double(c[row])),
            Input::Dim(ids, nums) => nums[ids[row] as usize].map(Val::Double),
            Input::Time(t) => Some(Val::Long(t[row])),
            Input::Missing => None,
        };
        let v = match v {
            Some(v) => v,
            None if self.legacy => Val::Long(0),
            None => return,
        };
        if *s == State::Null {
            // The first value of an aggregator that started empty.
            *s = match (self.long, v) {
                (true, Val::Long(l)) => State::Long(l),
                (true, Val::Double(d)) => State::Long(d as i64),
                (false, Val::Long(l)) => State::Double(l as f64),
                (false, Val::Double(d)) => State::Double(d),
            };
            if let State::Double(d) = s {
                if self.float {
                    *d = *d as f32 as f64;
                }
            }
            return;
        }
        match s {
            State::Long(acc) => {
                let x = match v {
                    Val::Long(l) => l,
                    Val::Double(d) => d as i64,
                };
                *acc = match self.op {
                    AggOp::Sum => acc.wrapping_add(x),
                    AggOp::Min => (*acc).min(x),
                    AggOp::Max => (*acc).max(x),
                };
            }
            State::Double(acc) => {
                let x = match v {
                    Val::Long(l) => l as f64,
                    Val::Double(d) => d,
                };
                let r = match self.op {
                    AggOp::Sum => *acc + x,
                    AggOp::Min => acc.min(x),
                    AggOp::Max => acc.max(x),
                };
                *acc = if self.float { r as f32 as f64 } else { r };
            }
            State::Null => {}
        }
        debug_assert!(self.long == matches!(s, State::Long(_)));
    }
}

/// A post-aggregator.
#[derive(Debug, Clone)]
pub enum PostAgg {
    /// `arithmetic`.
    Arith {
        /// Output name.
        name: String,
        /// `+ - * / quotient pow`.
        op: String,
        /// Operands.
        fields: Vec<PostAgg>,
    },
    /// `fieldAccess` / `finalizingFieldAccess`.
    Field {
        /// Output name.
        name: String,
        /// Referenced column.
        field: String,
    },
    /// `constant`.
    Constant {
        /// Output name.
        name: String,
        /// The value.
        value: Value,
    },
    /// `doubleGreatest`, `longLeast`, ...
    Extreme {
        /// Output name.
        name: String,
        /// Greatest (else least).
        greatest: bool,
        /// Long result (else double).
        long: bool,
        /// Operands.
        fields: Vec<PostAgg>,
    },
}

impl PostAgg {
    /// Parses a post-aggregator.
    pub fn parse(v: &Value) -> Result<PostAgg, QueryError> {
        let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let what = name.clone();
        let fields = || -> Result<Vec<PostAgg>, QueryError> {
            v.get("fields")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    QueryError::invalid(format!("post-aggregator [{what}] requires `fields`"))
                })?
                .iter()
                .map(PostAgg::parse)
                .collect()
        };
        Ok(match ty {
            "arithmetic" => {
                let op = v.get("fn").and_then(Value::as_str).unwrap_or("").to_owned();
                if !["+", "-", "*", "/", "quotient", "pow"].contains(&op.as_str()) {
                    return Err(QueryError::invalid(format!(
                        "Unknown arithmetic function [{op}]"
                    )));
                }
                PostAgg::Arith {
                    name,
                    op,
                    fields: fields()?,
                }
            }
            "fieldAccess" | "finalizingFieldAccess" => {
                let field = v
                    .get("fieldName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| QueryError::invalid("fieldAccess requires `fieldName`"))?
                    .to_owned();
                PostAgg::Field { name, field }
            }
            "constant" => PostAgg::Constant {
                name,
                value: v.get("value").cloned().unwrap_or(Value::Null),
            },
            "doubleGreatest" | "doubleLeast" | "longGreatest" | "longLeast" => PostAgg::Extreme {
                name,
                greatest: ty.ends_with("Greatest"),
                long: ty.starts_with("long"),
                fields: fields()?,
            },
            other => {
                return Err(QueryError::unsupported(format!(
                    "post-aggregator type [{other}] is not supported by druid-local"
                )))
            }
        })
    }

    /// Output name.
    pub fn name(&self) -> &str {
        match self {
            PostAgg::Arith { name, .. }
            | PostAgg::Field { name, .. }
            | PostAgg::Constant { name, .. }
            | PostAgg::Extreme { name, .. } => name,
        }
    }

    /// Evaluates against a row of named values.
    pub fn eval(&self, row: &Map<String, Value>) -> Value {
        match self {
            PostAgg::Field { field, .. } => row.get(field).cloned().unwrap_or(Value::Null),
            PostAgg::Constant { value, .. } => value.clone(),
            PostAgg::Arith { op, fields, .. } => {
                // A null operand (an aggregate over no value) makes the result null.
                let Some(values) = fields
                    .iter()
                    .map(|f| {
                        let v = f.eval(row);
                        (!v.is_null()).then(|| v.as_f64().unwrap_or(0.0))
                    })
                    .collect::<Option<Vec<f64>>>()
                else {
                    return Value::Null;
                };
                let mut it = values.into_iter();
                let Some(mut acc) = it.next() else {
                    return Value::Null;
                };
                for x in it {
                    acc = match op.as_str() {
                        "+" => acc + x,
                        "-" => acc - x,
                        "*" => acc * x,
                        "/" => {
                            if x == 0.0 {
                                0.0
                            } else {
                                acc / x
                            }
                        }
                        "pow" => acc.powf(x),
                        _ => acc / x,
                    };
                }
                double_json(acc)
            }
            PostAgg::Extreme {
                greatest,
                long,
                fields,
                ..
            } => {
                let vals: Vec<f64> = fields.iter().filter_map(|f| f.eval(row).as_f64()).collect();
                if vals.is_empty() {
                    return Value::Null;
                }
                let vals = vals.into_iter();
                let r = if *greatest {
                    vals.fold(f64::NEG_INFINITY, f64::max)
                } else {
                    vals.fold(f64::INFINITY, f64::min)
                };
                if *long {
                    Value::from(r as i64)
                } else {
                    double_json(r)
                }
            }
        }
    }
}

/// A groupBy having spec.
#[derive(Debug, Clone)]
pub enum Having {
    /// Compare an aggregate to a number.
    Cmp {
        /// Column.
        agg: String,
        /// -1 less, 0 equal, 1 greater.
        want: i8,
        /// Threshold.
        value: f64,
    },
    /// All of.
    And(Vec<Having>),
    /// Any of.
    Or(Vec<Having>),
    /// Negation.
    Not(Box<Having>),
}

impl Having {
    /// Parses a having spec.
    pub fn parse(v: &Value) -> Result<Having, QueryError> {
        let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
        let cmp = |want| -> Result<Having, QueryError> {
            Ok(Having::Cmp {
                agg: v
                    .get("aggregation")
                    .and_then(Value::as_str)
                    .ok_or_else(|| QueryError::invalid("having requires `aggregation`"))?
                    .to_owned(),
                want,
                value: v
                    .get("value")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| QueryError::invalid("having requires a numeric `value`"))?,
            })
        };
        let list = || -> Result<Vec<Having>, QueryError> {
            v.get("havingSpecs")
                .and_then(Value::as_array)
                .ok_or_else(|| QueryError::invalid("having requires `havingSpecs`"))?
                .iter()
                .map(Having::parse)
                .collect()
        };
        Ok(match ty {
            "greaterThan" => cmp(1)?,
            "lessThan" => cmp(-1)?,
            "equalTo" => cmp(0)?,
            "and" => Having::And(list()?),
            "or" => Having::Or(list()?),
            "not" => Having::Not(Box::new(Having::parse(
                v.get("havingSpec")
                    .ok_or_else(|| QueryError::invalid("not having requires `havingSpec`"))?,
            )?)),
            other => {
                return Err(QueryError::unsupported(format!(
                    "having type [{other}] is not supported by druid-local"
                )))
            }
        })
    }

    /// Tests a result row.
    pub fn test(&self, row: &Map<String, Value>) -> bool {
        match self {
            Having::Cmp { agg, want, value } => {
                let Some(x) = row.get(agg).and_then(Value::as_f64) else {
                    return false;
                };
                match want {
                    1 => x > *value,
                    -1 => x < *value,
                    _ => x == *value,
                }
            }
            Having::And(hs) => hs.iter().all(|h| h.test(row)),
            Having::Or(hs) => hs.iter().any(|h| h.test(row)),
            Having::Not(h) => !h.test(row),
        }
    }
}
