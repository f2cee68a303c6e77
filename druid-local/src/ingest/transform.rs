//! `transformSpec`: `expression` transforms that add or replace input fields, and a filter
//! that drops rows (counted as thrown away), applied to each input row after its timestamp is
//! parsed, as Druid's `Transformer` does.
//!
//! Expressions are evaluated by the query engine's evaluator over a one-row index built from
//! the fields the expression reads (numbers as numeric columns, everything else as strings),
//! so both sides share one set of operator rules.

use crate::query::expr::{Expr, Val};
use crate::query::filter::{Filter, Pred};
use crate::spec::{AggKind, MetricSpec};
use crate::task::parse::java_double;
use crate::task::rollup::{DimValue, Index, Num, RowDims};
use crate::time::Millis;
use serde_json::{json, Map, Value};

/// A parsed `transformSpec`.
#[derive(Debug, Clone, Default)]
pub struct Transform {
    transforms: Vec<(String, Expr)>,
    filter: Option<Filter>,
}

impl Transform {
    /// Parses `{"transforms": [...], "filter": ...}`; `None`/null is the empty transform.
    pub fn parse(v: Option<&Value>) -> Result<Transform, String> {
        let Some(o) = v.filter(|v| !v.is_null()) else {
            return Ok(Transform::default());
        };
        let o = o
            .as_object()
            .ok_or_else(|| format!("transformSpec must be an object, got {o}"))?;
        let mut transforms = Vec::new();
        for t in o
            .get("transforms")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ty = t.get("type").and_then(Value::as_str).unwrap_or("");
            if ty != "expression" {
                return Err(format!(
                    "druid-local supports only `expression` transforms, got [{ty}]"
                ));
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("transform {t} needs a name"))?;
            let expr = t
                .get("expression")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("transform [{name}] needs an expression"))?;
            let parsed = Expr::parse(expr).map_err(|e| e.parts().2.to_owned())?;
            if transforms.iter().any(|(n, _)| n == name) {
                return Err(format!("Transform name [{name}] is defined more than once"));
            }
            transforms.push((name.to_owned(), parsed));
        }
        let filter = match o.get("filter") {
            None | Some(Value::Null) => None,
            Some(f) => Some(Filter::parse(f).map_err(|e| e.parts().2.to_owned())?),
        };
        Ok(Transform { transforms, filter })
    }

    /// Whether nothing is transformed or filtered.
    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty() && self.filter.is_none()
    }

    /// Applies the transforms to `event` (time `ts`) and says whether the filter keeps it.
    pub fn apply(&self, event: &mut Map<String, Value>, ts: Millis) -> Result<bool, String> {
        // Transforms read the input row, not each other's outputs.
        let mut outputs = Vec::with_capacity(self.transforms.len());
        for (name, expr) in &self.transforms {
            outputs.push((name.clone(), eval(expr, event, ts)?));
        }
        for (name, v) in outputs {
            event.insert(name, v);
        }
        Ok(self.filter.as_ref().is_none_or(|f| matches(f, event, ts)))
    }
}

/// Evaluates an expression over one event.
fn eval(expr: &Expr, event: &Map<String, Value>, ts: Millis) -> Result<Value, String> {
    let mut names = Vec::new();
    expr.columns(&mut names);
    let mut dims = Vec::new();
    let mut dim_values = Vec::new();
    let mut metrics = Vec::new();
    let mut nums = Vec::new();
    for n in names.into_iter().filter(|n| n != "__time") {
        match event.get(&n) {
            Some(Value::Number(x)) => {
                let kind = if x.is_i64() {
                    AggKind::LongSum
                } else {
                    AggKind::DoubleSum
                };
                nums.push(match x.as_i64() {
                    Some(l) => Num::Long(l),
                    None => Num::Double(x.as_f64().unwrap_or(0.0)),
                });
                metrics.push(MetricSpec {
                    kind,
                    name: n.clone(),
                    field: Some(n),
                });
            }
            other => {
                dim_values.push(match other.and_then(scalar) {
                    Some(s) if !s.is_empty() => DimValue::One(s.into_boxed_str()),
                    _ => DimValue::Null,
                });
                dims.push(n);
            }
        }
    }
    let mut idx = Index::new(&dims, &metrics, false);
    idx.add(ts, ts, RowDims::Fixed(dim_values), &nums);
    let v = expr
        .bind(&idx)
        .eval(0)
        .map_err(|e| e.parts().2.to_owned())?;
    Ok(match v {
        Val::Null => Value::Null,
        Val::Str(s) => Value::String(s),
        Val::Long(l) => json!(l),
        Val::Double(d) => json!(d),
    })
}

/// An input value as the text Druid compares in filters.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_i64() {
            Some(l) => l.to_string(),
            None => java_double(n.as_f64().unwrap_or(0.0)),
        }),
        other => Some(other.to_string()),
    }
}

/// Whether a filter keeps an event (arrays match if any element does).
fn matches(f: &Filter, event: &Map<String, Value>, ts: Millis) -> bool {
    match f {
        Filter::Const(b) => *b,
        Filter::And(fs) => fs.iter().all(|f| matches(f, event, ts)),
        Filter::Or(fs) => fs.iter().any(|f| matches(f, event, ts)),
        Filter::Not(f) => !matches(f, event, ts),
        Filter::Intervals(ivs) => ivs.iter().any(|i| i.contains(ts)),
        Filter::Column(col, pred) if col == "__time" => pred.test(Some(&ts.to_string())),
        Filter::Column(col, pred) => test(pred, event.get(col)),
    }
}

fn test(pred: &Pred, v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().any(|i| test(pred, Some(i))),
        Some(v) => match scalar(v).filter(|s| !s.is_empty()) {
            Some(s) => pred.test(Some(&s)),
            None => pred.test(None),
        },
        None => pred.test(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_then_filters() {
        let t = Transform::parse(Some(&json!({
            "transforms": [
                {"type": "expression", "name": "page", "expression": "concat(page, '!')"},
                {"type": "expression", "name": "twice", "expression": "added * 2"}
            ],
            "filter": {"type": "selector", "dimension": "page", "value": "a!"}
        })))
        .unwrap();
        let mut ev = json!({"page": "a", "added": 21})
            .as_object()
            .unwrap()
            .clone();
        assert!(t.apply(&mut ev, 0).unwrap());
        assert_eq!(ev["page"], "a!");
        assert_eq!(ev["twice"], 42);
        let mut ev = json!({"page": "b", "added": 1})
            .as_object()
            .unwrap()
            .clone();
        assert!(!t.apply(&mut ev, 0).unwrap());
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        assert!(Transform::parse(Some(
            &json!({"transforms": [{"type": "javascript", "name": "x"}]})
        ))
        .is_err());
        assert!(Transform::parse(Some(&json!({"filter": {"type": "spatial"}}))).is_err());
        assert!(Transform::parse(Some(&Value::Null)).unwrap().is_empty());
    }
}
