//! Druid's JSON `flattenSpec`, as its JSON parser applies it before anything else reads a row:
//! listed fields (`root`, `path` in JSONPath, `jq`, `tree`), then with `useFieldDiscovery`
//! every top-level string, number, boolean or list of those.
//!
//! Used by a task whose parser is a `string` parser with a `json` parseSpec (Druid's `map`
//! parser, which Tranquility's tasks use, ignores a flattenSpec), and open to any ingestion
//! that reads JSON (`inputFormat.flattenSpec` has the same shape).
//!
//! JSONPath is Jayway's, without filters and functions: `$.a.b`, `$['a b']`, `$.a[0]`,
//! `$.a[-1]`, `$.a[0,2]`, `$.a[1:3]`, `$.a[*]`, `$.*`, `$..a`; jq is paths only (`.a.b[0]`).
//! What is beyond that fails the task's parser with a message saying so, where real Druid
//! would read it.

use serde_json::{Map, Value};

/// A compiled flattenSpec.
#[derive(Debug, Clone)]
pub struct Flattener {
    discovery: bool,
    keep_nulls: bool,
    fields: Vec<(String, Field)>,
}

#[derive(Debug, Clone)]
enum Field {
    Root(String),
    Path(Path),
    Jq(Vec<Seg>),
    Tree(Vec<String>),
}

#[derive(Debug, Clone)]
struct Path {
    segs: Vec<Seg>,
    definite: bool,
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Keys(Vec<String>),
    Index(i64),
    Indexes(Vec<i64>),
    Slice(Option<i64>, Option<i64>),
    All,
    /// `..` followed by a segment.
    Descend(Box<Seg>),
}

impl Flattener {
    /// Compiles a flattenSpec (`{"useFieldDiscovery":..,"fields":[..]}`); `keep_nulls` is the
    /// parseSpec's `keepNullColumns`.
    pub fn new(spec: &Value, keep_nulls: bool) -> Result<Self, String> {
        let discovery = match spec.get("useFieldDiscovery") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "flattenSpec.useFieldDiscovery: expected a boolean, got {other}"
                ))
            }
        };
        let mut fields: Vec<(String, Field)> = Vec::new();
        let listed = match spec.get("fields") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(other) => return Err(format!("flattenSpec.fields: expected a list, got {other}")),
        };
        for entry in &listed {
            let (name, field) = compile_field(entry)?;
            if fields.iter().any(|(n, _)| *n == name) {
                return Err(format!("Cannot have duplicate field definition: {name}"));
            }
            fields.push((name, field));
        }
        Ok(Flattener {
            discovery,
            keep_nulls,
            fields,
        })
    }

    /// The flat row of one event object.
    pub fn flatten(&self, event: &Map<String, Value>) -> Result<Map<String, Value>, String> {
        let root = Value::Object(event.clone());
        let mut out = Map::new();
        for (name, field) in &self.fields {
            let found = match field {
                Field::Root(key) => event.get(key).cloned(),
                Field::Path(path) => path.eval(&root),
                Field::Jq(segs) => {
                    jq(segs, &root).map_err(|e| format!("flattenSpec field [{name}]: {e}"))?
                }
                Field::Tree(keys) => {
                    let mut node = Some(&root);
                    for k in keys {
                        node = node.and_then(|n| n.as_object()).and_then(|o| o.get(k));
                    }
                    node.cloned()
                }
            };
            out.insert(name.clone(), found.map(druid_value).unwrap_or(Value::Null));
        }
        if self.discovery {
            for (key, value) in event {
                let simple = match value {
                    Value::Object(_) => false,
                    Value::Null => self.keep_nulls,
                    Value::Array(a) => !a.iter().any(|v| v.is_array() || v.is_object()),
                    _ => true,
                };
                if simple && !out.contains_key(key) {
                    out.insert(key.clone(), druid_value(value.clone()));
                }
            }
        }
        Ok(out)
    }
}

fn compile_field(entry: &Value) -> Result<(String, Field), String> {
    if let Value::String(name) = entry {
        return Ok((name.clone(), Field::Root(name.clone())));
    }
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .ok_or("Missing 'name' in field spec")?
        .to_owned();
    let kind = entry
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| format!("flattenSpec field [{name}] has no type"))?;
    let expr = entry.get("expr").and_then(Value::as_str);
    let need_expr = || format!("Missing 'expr' for field[{name}]");
    let field = match kind.as_str() {
        "root" => Field::Root(expr.unwrap_or(&name).to_owned()),
        "path" => Field::Path(
            compile_path(expr.ok_or_else(need_expr)?)
                .map_err(|e| format!("flattenSpec field [{name}] (path): {e}"))?,
        ),
        "jq" => Field::Jq(
            compile_jq(expr.ok_or_else(need_expr)?)
                .map_err(|e| format!("flattenSpec field [{name}] (jq): {e}"))?,
        ),
        "tree" => {
            let nodes: Option<Vec<String>> = entry
                .get("nodes")
                .and_then(Value::as_array)
                .filter(|n| !n.is_empty())
                .map(|n| n.iter().map(|k| k.as_str().map(str::to_owned)).collect())
                .and_then(|n: Option<Vec<String>>| n);
            Field::Tree(nodes.ok_or_else(|| format!("Missing 'nodes' for field[{name}]"))?)
        }
        other => {
            return Err(format!(
                "flattenSpec field [{name}]: unknown type [{other}]"
            ))
        }
    };
    Ok((name, field))
}

/// What Druid's JSON parser hands on: nulls left out of lists, integers past a long as doubles.
fn druid_value(v: Value) -> Value {
    match v {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_some() => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|v| !v.is_null())
                .map(druid_value)
                .collect(),
        ),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, druid_value(v))).collect())
        }
        other => other,
    }
}

fn compile_path(expr: &str) -> Result<Path, String> {
    let e = expr.trim();
    let text = if e.starts_with('$') {
        e.to_owned()
    } else {
        format!("$.{e}")
    };
    let chars: Vec<char> = text.chars().collect();
    let mut segs = Vec::new();
    let mut i = 1;
    while i < chars.len() {
        let descend = chars[i] == '.' && chars.get(i + 1) == Some(&'.');
        if chars[i] == '.' {
            i += if descend { 2 } else { 1 };
        } else if chars[i] != '[' {
            return Err(format!("unexpected '{}' in {text}", chars[i]));
        }
        let seg = match chars.get(i) {
            Some('[') => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|p| i + p)
                    .ok_or_else(|| format!("unclosed '[' in {text}"))?;
                let inner: String = chars[i + 1..close].iter().collect();
                i = close + 1;
                bracket(inner.trim()).map_err(|e| format!("{e} in {text}"))?
            }
            Some('*') => {
                i += 1;
                Seg::All
            }
            Some(_) => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], '.' | '[') {
                    if chars[i] == '(' {
                        return Err(format!("druid-local does not support JSONPath functions ({text}); real Druid does"));
                    }
                    i += 1;
                }
                Seg::Key(chars[start..i].iter().collect())
            }
            None => return Err(format!("{text} must not end with '.'")),
        };
        segs.push(if descend {
            Seg::Descend(Box::new(seg))
        } else {
            seg
        });
    }
    let last = segs.len().saturating_sub(1);
    let definite = segs.iter().enumerate().all(|(n, s)| match s {
        Seg::Key(_) | Seg::Index(_) => true,
        Seg::Keys(_) => n == last,
        _ => false,
    });
    Ok(Path { segs, definite })
}

fn bracket(inner: &str) -> Result<Seg, String> {
    if inner.starts_with('?') {
        return Err(
            "druid-local does not support JSONPath filters ([?(...)]); real Druid does".into(),
        );
    }
    if inner == "*" {
        return Ok(Seg::All);
    }
    if inner.starts_with('\'') || inner.starts_with('"') {
        let mut keys = Vec::new();
        for part in inner.split(',') {
            let p = part.trim();
            let q = p.chars().next().unwrap_or('\'');
            let key = p
                .strip_prefix(q)
                .and_then(|p| p.strip_suffix(q))
                .ok_or_else(|| format!("bad quoted name [{p}]"))?;
            keys.push(key.to_owned());
        }
        return Ok(if keys.len() == 1 {
            Seg::Key(keys.remove(0))
        } else {
            Seg::Keys(keys)
        });
    }
    let num = |s: &str| -> Result<Option<i64>, String> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| format!("bad index [{s}]"))
        }
    };
    if let Some((a, b)) = inner.split_once(':') {
        return Ok(Seg::Slice(num(a)?, num(b)?));
    }
    let mut idx = Vec::new();
    for part in inner.split(',') {
        idx.push(num(part)?.ok_or("empty index")?);
    }
    Ok(if idx.len() == 1 {
        Seg::Index(idx[0])
    } else {
        Seg::Indexes(idx)
    })
}

impl Path {
    fn eval(&self, root: &Value) -> Option<Value> {
        let mut nodes: Vec<Value> = vec![root.clone()];
        let last = self.segs.len().saturating_sub(1);
        for (n, seg) in self.segs.iter().enumerate() {
            let mut next = Vec::new();
            for node in &nodes {
                step(seg, node, n == last, &mut next);
            }
            nodes = next;
        }
        if self.definite {
            nodes.into_iter().next()
        } else {
            Some(Value::Array(nodes))
        }
    }
}

fn step(seg: &Seg, node: &Value, leaf: bool, out: &mut Vec<Value>) {
    let at = |a: &Vec<Value>, i: i64| -> Option<Value> {
        let i = if i < 0 { a.len() as i64 + i } else { i };
        usize::try_from(i).ok().and_then(|i| a.get(i)).cloned()
    };
    match (seg, node) {
        (Seg::Key(k), Value::Object(o)) => out.extend(o.get(k).cloned()),
        (Seg::Keys(ks), Value::Object(o)) if leaf => {
            let merged: Map<String, Value> = ks
                .iter()
                .filter_map(|k| o.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            out.push(Value::Object(merged));
        }
        (Seg::Keys(ks), Value::Object(o)) => {
            out.extend(ks.iter().filter_map(|k| o.get(k).cloned()))
        }
        (Seg::Index(i), Value::Array(a)) => out.extend(at(a, *i)),
        (Seg::Indexes(is), Value::Array(a)) => out.extend(is.iter().filter_map(|i| at(a, *i))),
        (Seg::Slice(from, to), Value::Array(a)) => {
            let len = a.len() as i64;
            let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
            let (s, e) = (norm(from.unwrap_or(0)), norm(to.unwrap_or(len)));
            out.extend((s..e.max(s)).filter_map(|i| at(a, i)));
        }
        (Seg::All, Value::Object(o)) => out.extend(o.values().cloned()),
        (Seg::All, Value::Array(a)) => out.extend(a.iter().cloned()),
        (Seg::Descend(inner), _) => {
            step(inner, node, leaf, out);
            let children: Vec<&Value> = match node {
                Value::Object(o) => o.values().collect(),
                Value::Array(a) => a.iter().collect(),
                _ => Vec::new(),
            };
            for c in children
                .into_iter()
                .filter(|c| c.is_object() || c.is_array())
            {
                step(seg, c, leaf, out);
            }
        }
        _ => {}
    }
}

fn compile_jq(expr: &str) -> Result<Vec<Seg>, String> {
    let e = expr.trim();
    if !e.starts_with('.') || e.contains('|') || e.contains(' ') || e.contains('(') {
        return Err(format!(
            "druid-local reads jq paths only (.a.b[0]), not [{e}]; real Druid reads more"
        ));
    }
    if e == "." {
        return Ok(Vec::new());
    }
    let path = compile_path(&format!("${e}"))
        .map_err(|_| format!("druid-local reads jq paths only (.a.b[0]), not [{e}]"))?;
    if path
        .segs
        .iter()
        .all(|s| matches!(s, Seg::Key(_) | Seg::Index(_)))
    {
        Ok(path.segs)
    } else {
        Err(format!(
            "druid-local reads jq paths only (.a.b[0]), not [{e}]"
        ))
    }
}

/// jq's indexing: null passes through, the wrong kind is an error.
fn jq(segs: &[Seg], root: &Value) -> Result<Option<Value>, String> {
    let mut node = root;
    for seg in segs {
        let next = match (seg, node) {
            (_, Value::Null) => return Ok(None),
            (Seg::Key(k), Value::Object(o)) => o.get(k),
            (Seg::Index(i), Value::Array(a)) => {
                let i = if *i < 0 { a.len() as i64 + i } else { *i };
                usize::try_from(i).ok().and_then(|i| a.get(i))
            }
            (Seg::Key(k), other) => {
                return Err(format!("Cannot index {} with \"{k}\"", kind(other)))
            }
            (_, other) => return Err(format!("Cannot index {} with number", kind(other))),
        };
        match next {
            Some(v) => node = v,
            None => return Ok(None),
        }
    }
    Ok(Some(node.clone()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(spec: Value, event: Value) -> Value {
        let f = Flattener::new(&spec, false).unwrap();
        Value::Object(f.flatten(event.as_object().unwrap()).unwrap())
    }

    #[test]
    fn the_documented_example() {
        let event = json!({"timestamp": "2015-09-12T12:10:53.155Z", "dim1": "qwerty",
            "foo": {"bar": "abc"}, "foo.bar": "def", "nestmet": {"val": 42},
            "hello": [1.0, 2.0, null], "world": [{"hey": "there"}, {"tree": "apple"}],
            "thing": {"food": ["sandwich", "pizza"]}});
        let out = flat(
            json!({"fields": ["dim1",
                {"type": "path", "name": "foo.bar", "expr": "$.foo.bar"},
                {"type": "path", "name": "path-metric", "expr": "$.nestmet.val"},
                {"type": "path", "name": "world-hey", "expr": "$.world[0].hey"},
                {"type": "path", "name": "hellos", "expr": "$.hello[*]"},
                {"type": "jq", "name": "second-food", "expr": ".thing.food[1]"},
                {"type": "tree", "name": "tree", "nodes": ["world"]},
                {"type": "path", "name": "trees", "expr": "$..tree"}]}),
            event,
        );
        assert_eq!(
            out,
            json!({"dim1": "qwerty", "foo.bar": "abc", "path-metric": 42, "world-hey": "there",
                   "hellos": [1.0, 2.0], "second-food": "pizza",
                   "tree": [{"hey": "there"}, {"tree": "apple"}], "trees": ["apple"],
                   "timestamp": "2015-09-12T12:10:53.155Z", "hello": [1.0, 2.0]})
        );
    }

    #[test]
    fn without_discovery_only_the_listed_fields() {
        let out = flat(
            json!({"useFieldDiscovery": false, "fields": [
                {"type": "path", "name": "lat", "expr": "$.geo.lat"},
                {"type": "root", "name": "ts"}, {"type": "path", "name": "x", "expr": "$.none[0]"}]}),
            json!({"ts": 1, "geo": {"lat": 37.7}, "other": "y"}),
        );
        assert_eq!(out, json!({"lat": 37.7, "ts": 1, "x": null}));
    }

    #[test]
    fn what_druid_local_cannot_read_says_so() {
        for (field, wanted) in [
            (
                json!({"type": "path", "name": "f", "expr": "$.a[?(@.b)]"}),
                "filters",
            ),
            (
                json!({"type": "path", "name": "f", "expr": "$.a.length()"}),
                "functions",
            ),
            (
                json!({"type": "jq", "name": "f", "expr": ".a | length"}),
                "jq paths only",
            ),
            (
                json!({"type": "xpath", "name": "f", "expr": "/a"}),
                "unknown type",
            ),
            (json!({"type": "path", "name": "f"}), "Missing 'expr'"),
        ] {
            let err = Flattener::new(&json!({"fields": [field]}), false).unwrap_err();
            assert!(err.contains(wanted), "{err}");
        }
        let dup = json!({"fields": ["a", {"type": "root", "name": "a"}]});
        assert!(Flattener::new(&dup, false)
            .unwrap_err()
            .contains("duplicate"));
    }
}
