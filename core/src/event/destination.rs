//! The one routing rule for events that name their dataSource themselves (`POST /v1/post`,
//! `tranquility push` without `--data-source`): the object's `dataSource` field when it is a
//! string, else its `feed` field when that is a string, as the original server did.

use serde::Deserialize;
use serde_json::Value;

/// Where a JSON object asks to go: the dataSource it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// To this dataSource.
    To(String),
    /// A JSON object with neither a string `dataSource` nor a string `feed`.
    Unnamed,
    /// Not a JSON object.
    NotAnObject,
}

impl Destination {
    /// The route of one JSON object's bytes.
    pub fn of(object: &[u8]) -> Destination {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(rename = "dataSource")]
            data_source: Option<Value>,
            feed: Option<Value>,
        }
        let Ok(fields) = serde_json::from_slice::<Fields>(object) else {
            return Destination::NotAnObject;
        };
        let name = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        match name(fields.data_source).or_else(|| name(fields.feed)) {
            Some(name) => Destination::To(name),
            None => Destination::Unnamed,
        }
    }

    /// The dataSource, when the object names one.
    pub fn data_source(self) -> Option<String> {
        match self {
            Destination::To(name) => Some(name),
            Destination::Unnamed | Destination::NotAnObject => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_source_then_feed_and_only_strings() {
        let to = |s: &str| Destination::To(s.to_string());
        assert_eq!(
            Destination::of(br#"{"dataSource":"a","feed":"b"}"#),
            to("a")
        );
        assert_eq!(
            Destination::of(br#"{"feed":"b","x":{"dataSource":"no"}}"#),
            to("b")
        );
        // A non-string dataSource does not name one; a string feed beside it still routes.
        assert_eq!(Destination::of(br#"{"dataSource":3,"feed":"b"}"#), to("b"));
        assert_eq!(
            Destination::of(br#"{"dataSource":3}"#),
            Destination::Unnamed
        );
        assert_eq!(Destination::of(br#"{"x":1}"#), Destination::Unnamed);
        assert_eq!(Destination::of(br#"[1]"#), Destination::NotAnObject);
        assert_eq!(
            Destination::of(br#"{"dataSource":"a""#),
            Destination::NotAnObject
        );
    }
}
