//! Native query filters: parsing, and compiling against one segment's dictionaries so that a
//! row test is a table lookup.

use super::QueryError;
use crate::task::rollup::{DimValue, Index, Val};
use crate::time::Interval;
use regex::Regex;
use serde_json::Value;

/// Ordering of a `bound` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Byte-wise string order.
    Lexicographic,
    /// Numbers (values that do not parse never match).
    Numeric,
    /// Natural order of mixed digits and letters.
    Alphanumeric,
    /// By length, then lexicographic.
    Strlen,
}

/// A value predicate.
#[derive(Debug, Clone)]
pub enum Pred {
    /// Equal to (null matches null or empty).
    Eq(Option<String>),
    /// One of.
    In(Vec<Option<String>>),
    /// Range.
    Bound {
        /// Lower bound.
        lower: Option<String>,
        /// Upper bound.
        upper: Option<String>,
        /// Exclude the lower bound.
        lower_strict: bool,
        /// Exclude the upper bound.
        upper_strict: bool,
        /// Comparison.
        ordering: Ordering,
    },
    /// Regular expression (search anywhere in the value).
    Regex(Regex),
}

impl Pred {
    /// Tests one value (`None` is null; in legacy null handling `""` is null too).
    pub fn test(&self, v: Option<&str>) -> bool {
        let v = v.filter(|s| !s.is_empty());
        match self {
            Pred::Eq(x) => x.as_deref().filter(|s| !s.is_empty()) == v,
            Pred::In(xs) => xs
                .iter()
                .any(|x| x.as_deref().filter(|s| !s.is_empty()) == v),
            Pred::Regex(r) => r.is_match(v.unwrap_or("")),
            Pred::Bound {
                lower,
                upper,
                lower_strict,
                upper_strict,
                ordering,
            } => {
                let s = v.unwrap_or("");
                if *ordering == Ordering::Numeric {
                    let Ok(x) = s.trim().parse::<f64>() else {
                        return false;
                    };
                    let lo = lower.as_ref().map(|l| l.parse::<f64>().ok());
                    let hi = upper.as_ref().map(|u| u.parse::<f64>().ok());
                    if let Some(lo) = lo {
                        match lo {
                            Some(lo) if x > lo || (!lower_strict && x == lo) => {}
                            _ => return false,
                        }
                    }
                    if let Some(hi) = hi {
                        match hi {
                            Some(hi) if x < hi || (!upper_strict && x == hi) => {}
                            _ => return false,
                        }
                    }
                    return true;
                }
                let cmp = |a: &str, b: &str| match ordering {
                    Ordering::Strlen => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
                    Ordering::Alphanumeric => alphanumeric(a, b),
                    _ => a.cmp(b),
                };
                if let Some(l) = lower {
                    let c = cmp(s, l);
                    if c.is_lt() || (*lower_strict && c.is_eq()) {
                        return false;
                    }
                }
                if let Some(u) = upper {
                    let c = cmp(s, u);
                    if c.is_gt() || (*upper_strict && c.is_eq()) {
                        return false;
                    }
                }
                true
            }
        }
    }
}

impl Ordering {
    /// A string comparator by its Druid name (`lexicographic`, `alphanumeric`, `strlen`,
    /// `numeric`), given as a string or as `{"type": name}`.
    pub fn parse(v: Option<&Value>) -> Result<Ordering, QueryError> {
        match v.and_then(|o| o.as_str().or_else(|| o.get("type").and_then(Value::as_str))) {
            None | Some("lexicographic") => Ok(Ordering::Lexicographic),
            Some("numeric") => Ok(Ordering::Numeric),
            Some("alphanumeric") => Ok(Ordering::Alphanumeric),
            Some("strlen") => Ok(Ordering::Strlen),
            Some(other) => Err(QueryError::unsupported(format!(
                "ordering [{other}] is not supported by druid-local"
            ))),
        }
    }

    /// Compares two values (numbers that do not parse sort first, as nulls).
    pub fn compare(self, a: &str, b: &str) -> std::cmp::Ordering {
        match self {
            Ordering::Lexicographic => a.cmp(b),
            Ordering::Strlen => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            Ordering::Alphanumeric => alphanumeric(a, b),
            Ordering::Numeric => {
                let n = |s: &str| s.trim().parse::<f64>().ok();
                match (n(a), n(b)) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                }
            }
        }
    }
}

fn alphanumeric(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let take = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                    let mut s = String::new();
                    while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                        s.push(c);
                        it.next();
                    }
                    s
                };
                let (n, m) = (take(&mut x), take(&mut y));
                let (n, m) = (n.trim_start_matches('0'), m.trim_start_matches('0'));
                let o = n.len().cmp(&m.len()).then_with(|| n.cmp(m));
                if o.is_ne() {
                    return o;
                }
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(&d);
                }
                x.next();
                y.next();
            }
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// A predicate on a column.
    Column(String, Pred),
    /// `__time` within intervals.
    Intervals(Vec<Interval>),
    /// All of.
    And(Vec<Filter>),
    /// Any of.
    Or(Vec<Filter>),
    /// Negation.
    Not(Box<Filter>),
    /// Constant.
    Const(bool),
}

fn string_or_null(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

impl Filter {
    /// Parses a filter object; unsupported types are refused by name.
    pub fn parse(v: &Value) -> Result<Filter, QueryError> {
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| QueryError::invalid(format!("filter {v} has no type")))?;
        let dim = || -> Result<String, QueryError> {
            v.get("dimension")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| QueryError::invalid(format!("filter [{ty}] requires a dimension")))
        };
        if v.get("extractionFn").is_some_and(|e| !e.is_null()) {
            return Err(QueryError::unsupported(
                "extractionFn in filters is not supported by druid-local",
            ));
        }
        let list = |key: &str| -> Result<Vec<Filter>, QueryError> {
            v.get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| QueryError::invalid(format!("filter [{ty}] requires `{key}`")))?
                .iter()
                .map(Filter::parse)
                .collect()
        };
        Ok(match ty {
            "selector" => Filter::Column(dim()?, Pred::Eq(string_or_null(v.get("value")))),
            "in" => {
                let values = v.get("values").and_then(Value::as_array).ok_or_else(|| QueryError::invalid("in filter requires `values`"))?;
                Filter::Column(dim()?, Pred::In(values.iter().map(|x| string_or_null(Some(x))).collect()))
            }
            "bound" => {
                let ordering = Ordering::parse(v.get("ordering"))?;
                let ordering = if v.get("alphaNumeric").and_then(Value::as_bool) == Some(true) { Ordering::Alphanumeric } else { ordering };
                Filter::Column(
                    dim()?,
                    Pred::Bound {
                        lower: string_or_null(v.get("lower")),
                        upper: string_or_null(v.get("upper")),
                        lower_strict: v.get("lowerStrict").and_then(Value::as_bool).unwrap_or(false),
                        upper_strict: v.get("upperStrict").and_then(Value::as_bool).unwrap_or(false),
                        ordering,
                    },
                )
            }
            "regex" => {
                let p = v.get("pattern").and_then(Value::as_str).ok_or_else(|| QueryError::invalid("regex filter requires `pattern`"))?;
                Filter::Column(dim()?, Pred::Regex(Regex::new(p).map_err(|e| QueryError::invalid(e.to_string()))?))
            }
            "like" => {
                let p = v.get("pattern").and_then(Value::as_str).ok_or_else(|| QueryError::invalid("like filter requires `pattern`"))?;
                let mut re = String::from("^");
                for c in p.chars() {
                    match c {
                        '%' => re.push_str(".*"),
                        '_' => re.push('.'),
                        c => re.push_str(&regex::escape(&c.to_string())),
                    }
                }
                re.push('$');
                Filter::Column(dim()?, Pred::Regex(Regex::new(&re).map_err(|e| QueryError::invalid(e.to_string()))?))
            }
            "interval" => {
                let ivs = v.get("intervals").and_then(Value::as_array).ok_or_else(|| QueryError::invalid("interval filter requires `intervals`"))?;
                let ivs = ivs.iter().map(|i| i.as_str().ok_or_else(|| QueryError::invalid("intervals must be strings")).and_then(|s| Interval::parse(s).map_err(QueryError::invalid))).collect::<Result<_, _>>()?;
                if dim()? != "__time" {
                    return Err(QueryError::unsupported("the interval filter is supported on __time only"));
                }
                Filter::Intervals(ivs)
            }
            "and" => Filter::And(list("fields")?),
            "or" => Filter::Or(list("fields")?),
            "not" => Filter::Not(Box::new(Filter::parse(v.get("field").ok_or_else(|| QueryError::invalid("not filter requires `field`"))?)?)),
            "true" => Filter::Const(true),
            "false" => Filter::Const(false),
            other => return Err(QueryError::unsupported(format!("filter type [{other}] is not supported by druid-local; supported: selector, in, bound, regex, like, interval, and, or, not, true, false"))),
        })
    }

    /// Compiles against a segment.
    pub fn compile(&self, idx: &Index) -> Compiled {
        match self {
            Filter::Const(b) => Compiled::Const(*b),
            Filter::And(fs) => Compiled::And(fs.iter().map(|f| f.compile(idx)).collect()),
            Filter::Or(fs) => Compiled::Or(fs.iter().map(|f| f.compile(idx)).collect()),
            Filter::Not(f) => Compiled::Not(Box::new(f.compile(idx))),
            Filter::Intervals(ivs) => Compiled::Time(ivs.clone()),
            Filter::Column(col, pred) => {
                if let Some(d) = idx.dim_index(col) {
                    let table = idx.dicts[d]
                        .values
                        .iter()
                        .map(|v| match v {
                            DimValue::Null => pred.test(None),
                            DimValue::One(s) => pred.test(Some(s)),
                            DimValue::Multi(vs) => vs.iter().any(|s| pred.test(Some(s))),
                        })
                        .collect();
                    Compiled::Dim(d, table)
                } else if let Some(j) = idx.metric_index(col) {
                    Compiled::Metric(j, pred.clone())
                } else if col == "__time" {
                    Compiled::TimeValue(pred.clone())
                } else {
                    Compiled::Const(pred.test(None))
                }
            }
        }
    }
}

/// A filter bound to one segment.
#[derive(Debug)]
pub enum Compiled {
    /// Constant.
    Const(bool),
    /// Dictionary-id lookup table.
    Dim(usize, Vec<bool>),
    /// Predicate on a metric's printed value.
    Metric(usize, Pred),
    /// Predicate on the row time as millis.
    TimeValue(Pred),
    /// Row time in intervals.
    Time(Vec<Interval>),
    /// All of.
    And(Vec<Compiled>),
    /// Any of.
    Or(Vec<Compiled>),
    /// Negation.
    Not(Box<Compiled>),
}

impl Compiled {
    /// Tests a row.
    pub fn matches(&self, idx: &Index, row: usize) -> bool {
        match self {
            Compiled::Const(b) => *b,
            Compiled::Dim(d, table) => table[idx.dim_cols[*d][row] as usize],
            Compiled::Metric(j, p) => {
                if idx.metric_is_null(*j, row) {
                    return p.test(None);
                }
                let s = match idx.metric_cols[*j].get(row) {
                    Val::Long(l) => l.to_string(),
                    Val::Double(d) => d.to_string(),
                };
                p.test(Some(&s))
            }
            Compiled::TimeValue(p) => p.test(Some(&idx.times[row].to_string())),
            Compiled::Time(ivs) => ivs.iter().any(|i| i.contains(idx.times[row])),
            Compiled::And(fs) => fs.iter().all(|f| f.matches(idx, row)),
            Compiled::Or(fs) => fs.iter().any(|f| f.matches(idx, row)),
            Compiled::Not(f) => !f.matches(idx, row),
        }
    }
}
