//! Finds top-level keys of a JSON object whose bytes are already known to be well-formed,
//! skipping over the other values without validating or decoding them again.
//!
//! It is only asked about bytes serde_json has parsed or written, and answers [`Found::Unsure`]
//! for anything it does not plainly understand (escaped keys, unexpected bytes), so the caller
//! can fall back to a full parse. On bytes that are not valid JSON it may answer wrongly but
//! never panics.

use memchr::memchr2;

/// What the scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    /// The raw bytes of the key's value (the last one, when the key repeats, as in Jackson).
    Value(&'a [u8]),
    /// The object has no such key.
    Missing,
    /// Not something this scan decides: parse the bytes fully instead.
    Unsure,
}

/// The value of top-level `key` in the JSON object `json`.
pub fn top_level_value<'a>(json: &'a [u8], key: &str) -> Found<'a> {
    scan(json, key.as_bytes()).unwrap_or(Found::Unsure)
}

fn scan<'a>(json: &'a [u8], key: &[u8]) -> Option<Found<'a>> {
    let mut found = None;
    top_level_members(json, |name, value| {
        if name == key {
            found = Some(value);
        }
    })?;
    Some(found.map_or(Found::Missing, Found::Value))
}

/// Calls `each(name, value)` for every top-level member of the JSON object `json`, in order,
/// with the raw bytes of its name (without the quotes) and of its value. `None` when the
/// scan is unsure (an escaped name, unexpected bytes): parse the bytes fully instead.
pub(crate) fn top_level_members<'a>(
    json: &'a [u8],
    mut each: impl FnMut(&'a [u8], &'a [u8]),
) -> Option<()> {
    let mut i = skip_ws(json, 0);
    if *json.get(i)? != b'{' {
        return None;
    }
    i = skip_ws(json, i + 1);
    if *json.get(i)? == b'}' {
        return end_of_document(json, i + 1).then_some(());
    }
    loop {
        if *json.get(i)? != b'"' {
            return None;
        }
        let key_end = string_end(json, i)?;
        let name = &json[i + 1..key_end];
        if name.contains(&b'\\') {
            return None;
        }
        i = skip_ws(json, key_end + 1);
        if *json.get(i)? != b':' {
            return None;
        }
        i = skip_ws(json, i + 1);
        let value_end = value_end(json, i)?;
        each(name, &json[i..value_end]);
        i = skip_ws(json, value_end);
        match *json.get(i)? {
            b',' => i = skip_ws(json, i + 1),
            b'}' if end_of_document(json, i + 1) => return Some(()),
            _ => return None,
        }
    }
}

fn end_of_document(json: &[u8], from: usize) -> bool {
    skip_ws(json, from) == json.len()
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while matches!(json.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Index of the closing quote of the string opening at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i += memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
}

/// Index just past the value starting at `start`.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match *json.get(start)? {
        b'"' => string_end(json, start).map(|e| e + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match *json.get(i)? {
                    b'"' => i = string_end(json, i)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let len = json[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(json.len() - start);
            (len > 0).then_some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(json: &str, key: &str) -> Found<'static> {
        let json: &'static str = Box::leak(json.to_string().into_boxed_str());
        top_level_value(json.as_bytes(), key)
    }

    fn value(s: &'static str) -> Found<'static> {
        Found::Value(s.as_bytes())
    }

    #[test]
    fn finds_top_level_values_of_every_kind() {
        let doc = r#" { "a" : 1, "ts":"2024-01-01T00:00:00Z" ,"n":{"ts":2,"x":[1,{"ts":3}]},"s":"q\"ts\\"} "#;
        assert_eq!(found(doc, "ts"), value(r#""2024-01-01T00:00:00Z""#));
        assert_eq!(found(doc, "a"), value("1"));
        assert_eq!(found(doc, "n"), value(r#"{"ts":2,"x":[1,{"ts":3}]}"#));
        assert_eq!(found(doc, "s"), value(r#""q\"ts\\""#));
        assert_eq!(found(doc, "x"), Found::Missing);
        assert_eq!(found(r#"{"t":null,"u":-1.5e3}"#, "u"), value("-1.5e3"));
        assert_eq!(found(r#"{"t":null,"u":true}"#, "t"), value("null"));
        assert_eq!(found("{}", "t"), Found::Missing);
        assert_eq!(found(" {\n}\n", "t"), Found::Missing);
    }

    #[test]
    fn the_last_of_repeated_keys_wins() {
        assert_eq!(found(r#"{"t":1,"t":2}"#, "t"), value("2"));
    }

    #[test]
    fn unsure_about_what_it_does_not_plainly_understand() {
        for doc in [
            r#"{"t\u0073":1}"#,
            "[]",
            "\"x\"",
            "",
            "{",
            r#"{"t":1"#,
            r#"{"t":1}x"#,
            r#"{"t":}"#,
            r#"{"t" 1}"#,
            r#"{"t":"1}"#,
            r#"{"t":[1,2}"#,
            r#"{"a":1,}"#,
            r#"{1:2}"#,
        ] {
            assert_eq!(found(doc, "t"), Found::Unsure, "{doc}");
        }
    }
}
