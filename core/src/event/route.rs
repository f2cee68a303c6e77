//! The one routing rule for events that name their dataSource themselves (`POST /v1/post`,
//! `tranquility push` without `--data-source`): the object's `dataSource` field when it is a
//! string, else its `feed` field when that is a string, as the original server did.

use serde::Deserialize;
use serde_json::Value;

/// Where a JSON object asks to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To this dataSource.
    To(String),
    /// A JSON object with neither a string `dataSource` nor a string `feed`.
    Unnamed,
    /// Not a JSON object.
    NotAnObject,
}

impl Route {
    /// The route of one JSON object's bytes.
    pub fn of(object: &[u8]) -> Route {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(rename = "dataSource")]
            data_source: Option<Value>,
            feed: Option<Value>,
        }
        let Ok(fields) = serde_json::from_slice::<Fields>(object) else {
            return Route::NotAnObject;
        };
        let name = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        match name(fields.data_source).or_else(|| name(fields.feed)) {
            Some(name) => Route::To(name),
            None => Route::Unnamed,
        }
    }

    /// The dataSource, when the object names one.
    pub fn data_source(self) -> Option<String> {
        match self {
            Route::To(name) => Some(name),
            Route::Unnamed | Route::NotAnObject => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_source_then_feed_and_only_strings() {
        let to = |s: &str| Route::To(s.to_string());
        assert_eq!(Route::of(br#"{"dataSource":"a","feed":"b"}"#), to("a"));
        assert_eq!(
            Route::of(br#"{"feed":"b","x":{"dataSource":"no"}}"#),
            to("b")
        );
        // A non-string dataSource does not name one; a string feed beside it still routes.
        assert_eq!(Route::of(br#"{"dataSource":3,"feed":"b"}"#), to("b"));
        assert_eq!(Route::of(br#"{"dataSource":3}"#), Route::Unnamed);
        assert_eq!(Route::of(br#"{"x":1}"#), Route::Unnamed);
        assert_eq!(Route::of(br#"[1]"#), Route::NotAnObject);
        assert_eq!(Route::of(br#"{"dataSource":"a""#), Route::NotAnObject);
    }
}
