//! Request bodies into events: content types, gzip, and the original's three body shapes.
//!
//! `application/json` bodies are a JSON array of objects, or objects concatenated or
//! separated by whitespace/newlines. `application/x-jackson-smile` bodies are the same in
//! Smile. Each object keeps its bytes (Smile objects are transcoded to JSON once), so the
//! pipeline never re-serializes what it forwards. An element that is not an object is kept as
//! [`Item::NotObject`]: it becomes a dropped event, and the good events beside it go on.

use std::io::Read;

use bytes::Bytes;
use serde_json::value::RawValue;
use tranquility::event::RawEvent;

use crate::error::RequestError;

/// The body formats the server accepts, chosen by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// `application/x-jackson-smile`.
    Smile,
    /// `text/plain`: one event per line, parsed with the dataSource's string parser.
    Text,
}

impl BodyFormat {
    /// The format for a `Content-Type` header value. Parameters such as `charset=utf-8` are
    /// accepted (the original refused them).
    pub fn from_content_type(value: Option<&str>) -> Result<Self, RequestError> {
        let value = value.ok_or(RequestError::UnsupportedContentType)?;
        let mime = value.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/json") {
            Ok(BodyFormat::Json)
        } else if mime.eq_ignore_ascii_case("application/x-jackson-smile") {
            Ok(BodyFormat::Smile)
        } else if mime.eq_ignore_ascii_case("text/plain") {
            Ok(BodyFormat::Text)
        } else {
            Err(RequestError::UnsupportedContentType)
        }
    }
}

/// One element of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A JSON object's bytes, already checked to be well-formed.
    Object(RawEvent),
    /// An element that is not an object; the string names its JSON type.
    NotObject(&'static str),
}

/// Undoes `Content-Encoding`, refusing output larger than `limit` bytes (a gzip bomb guard).
pub fn decompress(
    encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, RequestError> {
    match encoding.map(str::trim) {
        None | Some("") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
            let mut out = Vec::new();
            let read = flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| RequestError::MalformedGzip(e.to_string()))?;
            if read > limit {
                return Err(RequestError::BodyTooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
        Some(_) => Err(RequestError::UnrecognizedEncoding),
    }
}

/// Splits a JSON or Smile body into its elements. A Smile body is one document (one header):
/// an array of objects, or objects written one after another by one generator.
pub fn decode(format: BodyFormat, body: &Bytes) -> Result<Vec<Item>, RequestError> {
    match format {
        BodyFormat::Json => decode_json(body),
        BodyFormat::Smile => decode_smile(body),
        BodyFormat::Text => Err(RequestError::UnsupportedContentType),
    }
}

fn decode_json(body: &Bytes) -> Result<Vec<Item>, RequestError> {
    let malformed = |e: serde_json::Error| RequestError::MalformedJson(e.to_string());
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let raws: Vec<&RawValue> = if first == Some(&b'[') {
        serde_json::from_slice(body).map_err(malformed)?
    } else {
        serde_json::Deserializer::from_slice(body)
            .into_iter::<&RawValue>()
            .collect::<Result<_, _>>()
            .map_err(malformed)?
    };
    Ok(raws.into_iter().map(|raw| json_item(body, raw)).collect())
}

/// Keeps an element as a zero-copy slice of the body when it is an object.
fn json_item(body: &Bytes, raw: &RawValue) -> Item {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => Item::Object(RawEvent::from_raw_value(body, raw)),
        Some(b'[') => Item::NotObject("array"),
        Some(b'"') => Item::NotObject("string"),
        Some(b't' | b'f') => Item::NotObject("boolean"),
        Some(b'n') => Item::NotObject("null"),
        _ => Item::NotObject("number"),
    }
}

fn decode_smile(body: &Bytes) -> Result<Vec<Item>, RequestError> {
    let malformed = |e: serde_smile::Error| RequestError::MalformedJson(format!("Smile: {e}"));
    let mut values = Vec::new();
    for value in serde_smile::Deserializer::from_slice(body).into_iter::<serde_json::Value>() {
        match value.map_err(malformed)? {
            serde_json::Value::Array(elements) => values.extend(elements),
            other => values.push(other),
        }
    }
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::Object(_) => Ok(Item::Object(RawEvent::from_value(&value))),
            serde_json::Value::Array(_) => Ok(Item::NotObject("array")),
            serde_json::Value::String(_) => Ok(Item::NotObject("string")),
            serde_json::Value::Bool(_) => Ok(Item::NotObject("boolean")),
            serde_json::Value::Null => Ok(Item::NotObject("null")),
            serde_json::Value::Number(_) => Ok(Item::NotObject("number")),
        })
        .collect()
}

/// Refuses a body that holds elements but not one object: a producer sending `[1,2,3]`,
/// `"hello"` or `null` is broken, and must hear so from the status code. A body with at least
/// one object goes on, its other elements dropped as unparseable; an empty body is no error.
pub fn require_an_object(items: &[Item]) -> Result<(), RequestError> {
    if items.is_empty() || items.iter().any(|i| matches!(i, Item::Object(_))) {
        return Ok(());
    }
    let mut kinds: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::NotObject(kind) => Some(*kind),
            Item::Object(_) => None,
        })
        .collect();
    kinds.dedup();
    Err(RequestError::NoObject {
        elements: items.len(),
        kinds: kinds.join(", "),
    })
}

/// Parses `?async=`: `true`/`1`/`yes` or `false`/`0`/`no`/empty, as the original.
pub fn parse_async(value: Option<&str>) -> Result<bool, RequestError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => Err(RequestError::BadAsync),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Object(b) => {
                    // Checked once here, so the pipeline need not validate them again.
                    assert!(b.is_well_formed());
                    String::from_utf8(b.bytes().to_vec()).unwrap()
                }
                Item::NotObject(kind) => format!("<{kind}>"),
            })
            .collect()
    }

    #[test]
    fn content_types_with_and_without_parameters() {
        use BodyFormat::*;
        let ok = |v| BodyFormat::from_content_type(Some(v)).unwrap();
        assert_eq!(ok("application/json"), Json);
        assert_eq!(ok("application/json; charset=utf-8"), Json);
        assert_eq!(ok("Application/JSON"), Json);
        assert_eq!(ok("application/x-jackson-smile"), Smile);
        assert_eq!(ok("text/plain;charset=UTF-8"), Text);
        assert!(BodyFormat::from_content_type(None).is_err());
        assert!(BodyFormat::from_content_type(Some("application/xml")).is_err());
    }

    #[test]
    fn json_array_concatenated_and_newline_separated() {
        let array = Bytes::from_static(br#" [{"a":1}, {"b":[1,2]}] "#);
        assert_eq!(
            objects(&decode_json(&array).unwrap()),
            [r#"{"a":1}"#, r#"{"b":[1,2]}"#]
        );
        let concat = Bytes::from_static(br#"{"a":1}{"b":2}"#);
        assert_eq!(
            objects(&decode_json(&concat).unwrap()),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
        let lines = Bytes::from_static(b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(
            objects(&decode_json(&lines).unwrap()),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
        let single = Bytes::from_static(br#"{"a":1}"#);
        assert_eq!(objects(&decode_json(&single).unwrap()), [r#"{"a":1}"#]);
        // Objects are slices of the body, not copies.
        let Item::Object(first) = &decode_json(&array).unwrap()[0] else {
            panic!("an object")
        };
        assert_eq!(first.bytes().as_ptr(), array[2..].as_ptr());
        assert!(decode_json(&Bytes::from_static(b"  ")).unwrap().is_empty());
    }

    #[test]
    fn non_objects_are_items_of_their_own() {
        let body = Bytes::from_static(br#"[{"a":1}, 3, "x", null, [1], true]"#);
        assert_eq!(
            objects(&decode_json(&body).unwrap()),
            [
                r#"{"a":1}"#,
                "<number>",
                "<string>",
                "<null>",
                "<array>",
                "<boolean>"
            ]
        );
    }

    #[test]
    fn a_body_without_any_object_is_refused() {
        for (body, says) in [
            (&b"[1,2,3]"[..], "3 elements, none an object (number)"),
            (b"[\"a\",\"b\"]", "2 elements, none an object (string)"),
            (b"\"hello\"", "1 element, none an object (string)"),
            (b"null", "(null)"),
            (b"[1, \"x\", 2]", "(number, string, number)"),
        ] {
            let items = decode_json(&Bytes::copy_from_slice(body)).unwrap();
            let err = require_an_object(&items).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert!(err.contains("an object or an array of objects"), "{err}");
        }
        for body in [&b""[..], b"[]", b"[{\"a\":1}, 3]"] {
            let items = decode_json(&Bytes::copy_from_slice(body)).unwrap();
            assert!(require_an_object(&items).is_ok());
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let refused = match decode_json(&Bytes::from(deep)) {
            Ok(items) => require_an_object(&items).is_err(),
            Err(_) => true,
        };
        assert!(refused);
    }

    #[test]
    fn smile_without_any_object_is_refused() {
        for value in [
            serde_json::json!([1, 2]),
            serde_json::json!("s"),
            serde_json::Value::Null,
        ] {
            let body = Bytes::from(serde_smile::to_vec(&value).unwrap());
            let items = decode_smile(&body).unwrap();
            assert!(require_an_object(&items).is_err(), "{value}");
        }
    }

    #[test]
    fn malformed_json_names_the_problem() {
        for body in [
            &b"[{\"a\":1},"[..],
            b"{\"a\":",
            b"{\"a\":1} junk",
            b"\xff\xfe",
        ] {
            let err = decode_json(&Bytes::copy_from_slice(body)).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("Malformed JSON: "), "{text}");
            assert!(text.len() > "Malformed JSON: ".len(), "{text}");
        }
    }

    #[test]
    fn smile_array_and_single_object_are_transcoded() {
        let events = serde_json::json!([{"a": 1, "s": "x"}, {"b": 2.5}, 7]);
        let body = Bytes::from(serde_smile::to_vec(&events).unwrap());
        let items = decode_smile(&body).unwrap();
        assert_eq!(
            objects(&items),
            [r#"{"a":1,"s":"x"}"#, r#"{"b":2.5}"#, "<number>"]
        );

        let single = serde_smile::to_vec(&serde_json::json!({"a": 1})).unwrap();
        let items = decode_smile(&Bytes::from(single)).unwrap();
        assert_eq!(objects(&items), [r#"{"a":1}"#]);
    }

    #[test]
    fn truncated_smile_is_malformed() {
        let body = serde_smile::to_vec(&serde_json::json!([{"a": "hello"}])).unwrap();
        let cut = Bytes::copy_from_slice(&body[..body.len() - 3]);
        let err = decode_smile(&cut).unwrap_err();
        assert!(
            err.to_string().starts_with("Malformed JSON: Smile"),
            "{err}"
        );
    }

    #[test]
    fn gzip_round_trip_limit_and_errors() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"[{"a":1}]"#).unwrap();
        let body = Bytes::from(gz.finish().unwrap());
        let plain = decompress(Some("gzip"), body.clone(), 1024).unwrap();
        assert_eq!(&plain[..], br#"[{"a":1}]"#);
        assert!(matches!(
            decompress(Some("x-gzip"), body.clone(), 4),
            Err(RequestError::BodyTooLarge { limit: 4 })
        ));
        assert!(matches!(
            decompress(Some("gzip"), Bytes::from_static(b"not gzip"), 1024),
            Err(RequestError::MalformedGzip(_))
        ));
        assert!(matches!(
            decompress(Some("br"), body.clone(), 1024),
            Err(RequestError::UnrecognizedEncoding)
        ));
        assert_eq!(
            decompress(Some("identity"), body.clone(), 1024).unwrap(),
            body
        );
    }

    #[test]
    fn async_flag_values() {
        assert!(!parse_async(None).unwrap());
        assert!(!parse_async(Some("")).unwrap());
        assert!(parse_async(Some("yes")).unwrap());
        assert!(parse_async(Some("TRUE")).unwrap());
        assert!(!parse_async(Some("0")).unwrap());
        assert!(matches!(
            parse_async(Some("maybe")),
            Err(RequestError::BadAsync)
        ));
    }
}
