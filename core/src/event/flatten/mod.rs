//! Druid's JSON flattening (`parseSpec.flattenSpec`): nested events into the flat rows the
//! rest of the spec reads, the way Druid's JSON parser does it before anything else.
//!
//! ```json
//! "flattenSpec": {
//!   "useFieldDiscovery": true,
//!   "fields": [
//!     "dim2",
//!     {"type": "root", "name": "ts"},
//!     {"type": "path", "name": "lat", "expr": "$.geo.lat"},
//!     {"type": "jq",   "name": "food", "expr": ".thing.food[1]"},
//!     {"type": "tree", "name": "city", "nodes": ["where", "city"]}
//!   ]
//! }
//! ```
//!
//! The flat event holds the listed fields first (a missing one is `null`), then, with
//! `useFieldDiscovery` (the default), every top-level field the list does not name whose value
//! is a string, a number, a boolean or a list of those (null too with the parseSpec's
//! `keepNullColumns`). Values are written as Druid's parser hands them on: nulls are left out
//! of lists, and integers too large for a long become doubles. `path` fields are JSONPath as
//! Jayway reads it (names, indexes, lists, slices, wildcards, scans, filters and the aggregate
//! functions), `jq` fields jq paths (`.a.b[0]`), `tree` fields a list of keys.
//!
//! Where Tranquility flattens, and why: once, as events come in, before the timestamp is
//! read. Every way in (server, Kafka, Fluvio, streams, push) goes through the pipeline, and
//! everything after it needs the flat event: the window rule and interval routing read the
//! timestamp, the partitioner reads the dimensions, and the tasks Tranquility creates read
//! flat events with a `map` parser (which in Druid ignores any flattenSpec, as the original's
//! tasks did). Druid 31+ specs translated for events forwarded by Tranquility therefore carry
//! no flattenSpec either. A dataSource without a flattenSpec does no flattening work at all.

mod jq;
mod jsonpath;

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::spec::ParserSpec;

/// A flattenSpec that cannot be used, with where it is (relative to the parseSpec).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct FlattenSpecError {
    /// Where, e.g. `flattenSpec.fields[2]`.
    pub at: String,
    /// What is wrong, naming the field and its type.
    pub message: String,
}

/// Why one event could not be flattened (it is then unparseable, as in Druid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlattenError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("expected a JSON object, found {0}")]
    NotObject(&'static str),
    /// A `jq` field indexed a value of the wrong kind.
    #[error("flattenSpec field '{field}' (jq): {message}")]
    Jq {
        /// The field's name.
        field: String,
        /// jq's complaint.
        message: String,
    },
}

/// A compiled flattenSpec.
#[derive(Debug, Clone)]
pub struct Flattener {
    use_field_discovery: bool,
    keep_nulls: bool,
    fields: Vec<Field>,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    extract: Extract,
}

#[derive(Debug, Clone)]
enum Extract {
    Root(String),
    Path(jsonpath::JsonPath),
    Jq(jq::JqPath),
    Tree(Vec<String>),
}

impl Flattener {
    /// The flattener of a parser, when its parseSpec has a flattenSpec Druid applies: a
    /// `string` parser reading `json` (Druid ignores a flattenSpec elsewhere, and so does
    /// this: see [`Flattener::ignored`]).
    pub fn for_parser(parser: &ParserSpec) -> Result<Option<Self>, FlattenSpecError> {
        let parse_spec = &parser.parse_spec;
        let Some(spec) = parse_spec.extra.get("flattenSpec").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        if Self::ignored(parser) {
            return Ok(None);
        }
        let keep_nulls = match parse_spec.extra.get("keepNullColumns") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        Self::new(spec, keep_nulls).map(Some)
    }

    /// Whether the parser has a flattenSpec that Druid, and so this, ignores: under a parser
    /// other than `string`, or a parseSpec format other than `json`.
    pub fn ignored(parser: &ParserSpec) -> bool {
        let parse_spec = &parser.parse_spec;
        let has = parse_spec
            .extra
            .get("flattenSpec")
            .is_some_and(|v| !v.is_null());
        let format = parse_spec.format.as_deref().unwrap_or("json");
        has && (!format.eq_ignore_ascii_case("json") || !parser.kind.eq_ignore_ascii_case("string"))
    }

    /// Compiles a flattenSpec object; `keep_nulls` keeps discovered fields whose value is null.
    pub fn new(spec: &Value, keep_nulls: bool) -> Result<Self, FlattenSpecError> {
        let fail = |at: String, message: String| FlattenSpecError { at, message };
        let Value::Object(spec) = spec else {
            return Err(fail(
                "flattenSpec".into(),
                format!("expected an object, found {spec}"),
            ));
        };
        let use_field_discovery = match spec.get("useFieldDiscovery") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                return Err(fail(
                    "flattenSpec.useFieldDiscovery".into(),
                    format!("expected true or false, found {other}"),
                ))
            }
        };
        let listed = match spec.get("fields") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(items)) => &items[..],
            Some(other) => {
                return Err(fail(
                    "flattenSpec.fields".into(),
                    format!("expected a list of fields, found {other}"),
                ))
            }
        };
        let mut fields: Vec<Field> = Vec::with_capacity(listed.len());
        for (i, entry) in listed.iter().enumerate() {
            let at = format!("flattenSpec.fields[{i}]");
            let field = Field::parse(entry).map_err(|message| fail(at.clone(), message))?;
            if fields.iter().any(|f| f.name == field.name) {
                return Err(fail(
                    at,
                    format!("Cannot have duplicate field definition: {}", field.name),
                ));
            }
            fields.push(field);
        }
        Ok(Self {
            use_field_discovery,
            keep_nulls,
            fields,
        })
    }

    /// Flattens one event object.
    pub fn flatten(&self, doc: Map<String, Value>) -> Result<Map<String, Value>, FlattenError> {
        let doc = Value::Object(doc);
        let mut out = Map::with_capacity(self.fields.len() + 8);
        for field in &self.fields {
            let mut value = self
                .extract(field, &doc)?
                .map_or(Value::Null, Cow::into_owned);
            normalize(&mut value);
            out.insert(field.name.clone(), value);
        }
        if self.use_field_discovery {
            let Value::Object(doc) = doc else {
                return Ok(out);
            };
            for (key, mut value) in doc {
                if !out.contains_key(&key) && self.discoverable(&value) {
                    normalize(&mut value);
                    out.insert(key, value);
                }
            }
        }
        Ok(out)
    }

    /// Flattens one event's JSON object bytes into new ones, written as they are found
    /// (no intermediate map).
    pub fn flatten_json(&self, raw: &[u8]) -> Result<Vec<u8>, FlattenError> {
        let doc = match serde_json::from_slice::<Value>(raw) {
            Ok(doc @ Value::Object(_)) => doc,
            Ok(other) => return Err(FlattenError::NotObject(kind(&other))),
            Err(e) => return Err(FlattenError::Json(e.to_string())),
        };
        let mut out = Vec::with_capacity(raw.len());
        out.push(b'{');
        let mut first = true;
        for field in &self.fields {
            let value = self.extract(field, &doc)?;
            write_entry(
                &mut out,
                &mut first,
                &field.name,
                value.as_deref().unwrap_or(&Value::Null),
            );
        }
        if let (true, Value::Object(doc)) = (self.use_field_discovery, &doc) {
            for (key, value) in doc {
                let listed = self.fields.iter().any(|f| f.name == *key);
                if !listed && self.discoverable(value) {
                    write_entry(&mut out, &mut first, key, value);
                }
            }
        }
        out.push(b'}');
        Ok(out)
    }

    /// The value of one listed field, before normalizing.
    fn extract<'a>(
        &self,
        field: &Field,
        doc: &'a Value,
    ) -> Result<Option<Cow<'a, Value>>, FlattenError> {
        Ok(match &field.extract {
            Extract::Root(key) => doc.get(key).map(Cow::Borrowed),
            Extract::Path(path) => path.read(doc),
            Extract::Jq(path) => path
                .read(doc)
                .map_err(|message| FlattenError::Jq {
                    field: field.name.clone(),
                    message,
                })?
                .map(Cow::Borrowed),
            Extract::Tree(keys) => keys
                .iter()
                .try_fold(doc, |node, key| node.as_object()?.get(key))
                .map(Cow::Borrowed),
        })
    }

    /// Druid's discovery: strings, numbers, booleans and lists of them (not objects, not
    /// lists holding objects or lists; null only when kept).
    fn discoverable(&self, value: &Value) -> bool {
        match value {
            Value::Object(_) => false,
            Value::Null => self.keep_nulls,
            Value::Array(items) => items.iter().all(|v| !v.is_object() && !v.is_array()),
            _ => true,
        }
    }
}

impl Field {
    fn parse(entry: &Value) -> Result<Self, String> {
        let object = match entry {
            Value::String(name) => {
                return Ok(Field {
                    name: name.clone(),
                    extract: Extract::Root(name.clone()),
                })
            }
            Value::Object(o) => o,
            other => return Err(format!("expected a field name or an object, found {other}")),
        };
        let name = match object.get("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => return Err("Missing 'name' in field spec".into()),
        };
        let kind = match object.get("type") {
            Some(Value::String(t)) => t.to_ascii_lowercase(),
            None | Some(Value::Null) => {
                return Err(format!(
                    "field '{name}' has no 'type' (one of root, path, jq, tree)"
                ))
            }
            Some(other) => return Err(format!("field '{name}': 'type' {other} is not a string")),
        };
        let expr = match object.get("expr") {
            None | Some(Value::Null) => None,
            Some(Value::String(e)) => Some(e.as_str()),
            Some(other) => {
                return Err(format!(
                    "field '{name}' of type {kind}: 'expr' {other} is not a string"
                ))
            }
        };
        let needs_expr = || format!("Missing 'expr' for field[{name}] of type {kind}");
        let bad = |message: String| format!("field '{name}' of type {kind}: {message}");
        let extract = match kind.as_str() {
            "root" => Extract::Root(expr.unwrap_or(&name).to_string()),
            "path" => Extract::Path(
                jsonpath::JsonPath::compile(expr.ok_or_else(needs_expr)?).map_err(bad)?,
            ),
            "jq" => Extract::Jq(jq::JqPath::compile(expr.ok_or_else(needs_expr)?).map_err(bad)?),
            "tree" => {
                let nodes = match object.get("nodes") {
                    Some(Value::Array(nodes)) if !nodes.is_empty() => nodes,
                    _ => return Err(bad("'nodes' must be a non-empty list of keys".into())),
                };
                let keys = nodes
                    .iter()
                    .map(|n| n.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        bad(format!("'nodes' must be keys (strings), found {nodes:?}"))
                    })?;
                Extract::Tree(keys)
            }
            other => {
                return Err(format!(
                    "field '{name}': type '{other}' is not one of root, path, jq, tree"
                ))
            }
        };
        Ok(Field { name, extract })
    }
}

/// Appends `"key":value` (normalized) to a JSON object being written.
fn write_entry(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &Value) {
    if !std::mem::replace(first, false) {
        out.push(b',');
    }
    // Strings and numbers always serialize.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    write_normalized(out, value);
}

/// Writes a value as [`normalize`] would leave it, without copying it first.
fn write_normalized(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => {
            match n.as_f64().and_then(serde_json::Number::from_f64) {
                Some(d) => out.extend_from_slice(d.to_string().as_bytes()),
                None => out.extend_from_slice(n.to_string().as_bytes()),
            }
        }
        Value::Array(items) => {
            out.push(b'[');
            let mut first = true;
            for item in items.iter().filter(|v| !v.is_null()) {
                if !std::mem::replace(&mut first, false) {
                    out.push(b',');
                }
                write_normalized(out, item);
            }
            out.push(b']');
        }
        Value::Object(object) => {
            out.push(b'{');
            let mut first = true;
            for (k, v) in object {
                write_entry(out, &mut first, k, v);
            }
            out.push(b'}');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// Leaves a value as Druid's JSON parser hands it on: nulls dropped from lists, integers
/// beyond a long as doubles.
fn normalize(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => {
            if let Some(d) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = d;
            }
        }
        Value::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(normalize);
        }
        Value::Object(object) => object.values_mut().for_each(normalize),
        _ => {}
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
