//! The part of jq that `jq` fields are written in: paths such as `.a.b`, `.a[0]`, `.a[-1]`,
//! `."a b"` and `.["a b"]`, with jq's rules (indexing null gives null, indexing a value of the
//! wrong kind is an error, which makes the event unparseable as in Druid). Pipes, functions
//! and operators are refused when the spec is read, naming a `path` field that does the same
//! where there is one.

use serde_json::Value;

/// A compiled jq path.
#[derive(Debug, Clone)]
pub(super) struct JqPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(i64),
}

impl JqPath {
    /// Compiles `expr`, refusing what is not a plain path.
    pub(super) fn compile(expr: &str) -> Result<Self, String> {
        let text = expr.trim();
        let refuse = |what: &str| {
            format!(
                "'{text}' is not supported ({what}); only jq paths such as .a.b[0] are: write a \
                 'path' field (JSONPath, e.g. $.a.b[0]) or a transformSpec instead"
            )
        };
        let bytes = text.as_bytes();
        if bytes.first() != Some(&b'.') {
            return Err(refuse("a jq path starts with '.'"));
        }
        let mut steps = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' if i + 1 == bytes.len() => i += 1,
                b'.' if bytes[i + 1] == b'[' => i += 1,
                b'.' if bytes[i + 1] == b'"' => {
                    let (key, next) =
                        string(text, i + 1).ok_or_else(|| refuse("an unterminated string"))?;
                    steps.push(Step::Key(key));
                    i = next;
                }
                b'.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < bytes.len()
                        && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                    {
                        end += 1;
                    }
                    if end == start || bytes[start].is_ascii_digit() {
                        return Err(refuse("expected a key after '.'"));
                    }
                    steps.push(Step::Key(text[start..end].to_string()));
                    i = end;
                }
                b'[' => {
                    let close = text[i..]
                        .find(']')
                        .map(|c| i + c)
                        .ok_or_else(|| refuse("an unclosed '['"))?;
                    let inner = text[i + 1..close].trim();
                    if inner.starts_with('"') {
                        match string(inner, 0) {
                            Some((key, end)) if end == inner.len() => steps.push(Step::Key(key)),
                            _ => return Err(refuse("a bad key in brackets")),
                        }
                    } else {
                        let n = inner
                            .parse()
                            .map_err(|_| refuse("brackets hold a number or a \"key\" here"))?;
                        steps.push(Step::Index(n));
                    }
                    i = close + 1;
                }
                _ => return Err(refuse("pipes, functions and operators")),
            }
        }
        Ok(Self { steps })
    }

    /// The value at this path; an error when a step indexes a value of the wrong kind.
    pub(super) fn read<'a>(&self, doc: &'a Value) -> Result<Option<&'a Value>, String> {
        let mut node = doc;
        for step in &self.steps {
            let next = match (step, node) {
                (_, Value::Null) => return Ok(None),
                (Step::Key(k), Value::Object(o)) => o.get(k),
                (Step::Index(n), Value::Array(items)) => {
                    let n = if *n < 0 { items.len() as i64 + n } else { *n };
                    usize::try_from(n).ok().and_then(|n| items.get(n))
                }
                (Step::Key(k), other) => {
                    return Err(format!("Cannot index {} with \"{k}\"", kind(other)))
                }
                (Step::Index(_), other) => {
                    return Err(format!("Cannot index {} with number", kind(other)))
                }
            };
            match next {
                Some(v) => node = v,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }
}

/// A JSON string starting at `start` in `text`: its value and the index after it.
fn string(text: &str, start: usize) -> Option<(String, usize)> {
    let rest = text.get(start..)?;
    let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    let value = de.next()?.ok()?;
    Some((value, start + de.byte_offset()))
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

    fn read(doc: &Value, path: &str) -> Result<Option<Value>, String> {
        JqPath::compile(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .read(doc)
            .map(|v| v.cloned())
    }

    #[test]
    fn paths_follow_jq() {
        let doc = json!({"thing": {"food": ["sandwich", "pizza"]}, "a b": {"c": 1}, "n": 5});
        assert_eq!(read(&doc, ".thing.food[1]"), Ok(Some(json!("pizza"))));
        assert_eq!(read(&doc, ".thing.food[-1]"), Ok(Some(json!("pizza"))));
        assert_eq!(read(&doc, ".thing.food[7]"), Ok(None));
        assert_eq!(read(&doc, ".\"a b\".c"), Ok(Some(json!(1))));
        assert_eq!(read(&doc, ".[\"a b\"][\"c\"]"), Ok(Some(json!(1))));
        assert_eq!(read(&doc, ".missing.deeper[0]"), Ok(None));
        assert_eq!(read(&doc, "."), Ok(Some(doc.clone())));
        assert_eq!(
            read(&doc, ".n.x"),
            Err("Cannot index number with \"x\"".to_string())
        );
        assert_eq!(
            read(&doc, ".thing[0]"),
            Err("Cannot index object with number".to_string())
        );
    }

    #[test]
    fn more_than_a_path_is_refused() {
        for expr in [".hello | sum", "map(.a)", ".a + 1", ".a[]", "", ".a[", ".1"] {
            let err = JqPath::compile(expr).expect_err(expr);
            assert!(err.contains("'path' field"), "{expr}: {err}");
        }
    }
}
