//! Timestamp extraction driven by a Druid `timestampSpec`: scan the event's top-level object
//! for one column (other values are skipped, not built), then parse it in the spec's format.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::pattern::JodaPattern;
use super::scan::Found;
use crate::spec::TimestampSpec;
use crate::time::{parse_iso_datetime, Zone};

/// A timestampSpec `format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Numbers are epoch millis; digit-only strings too; other strings ISO-8601.
    Auto,
    /// ISO-8601 text (numbers are read as their text).
    Iso,
    /// Epoch milliseconds.
    Millis,
    /// Epoch seconds.
    Posix,
    /// Epoch microseconds.
    Micro,
    /// Epoch nanoseconds.
    Nano,
    /// Epoch seconds with a fraction.
    Ruby,
    /// A Joda-style pattern such as `yyyy-MM-dd HH:mm:ss` (UTC unless it has a zone).
    Pattern(JodaPattern),
}

impl TimestampFormat {
    /// Parses a `format` value (names are case-insensitive; anything else is a pattern).
    pub fn parse(format: &str) -> Result<Self, String> {
        Ok(match format.trim().to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "iso" => Self::Iso,
            "millis" => Self::Millis,
            "posix" => Self::Posix,
            "micro" => Self::Micro,
            "nano" => Self::Nano,
            "ruby" => Self::Ruby,
            _ => Self::Pattern(JodaPattern::compile(format)?),
        })
    }
}

impl fmt::Display for TimestampFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Iso => "iso",
            Self::Millis => "millis",
            Self::Posix => "posix",
            Self::Micro => "micro",
            Self::Nano => "nano",
            Self::Ruby => "ruby",
            Self::Pattern(p) => p.as_str(),
        })
    }
}

/// A timestampSpec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampSpecError {
    /// The format is neither a known name nor a usable pattern.
    #[error("timestamp format '{format}' is not usable: {reason}; expected auto, iso, millis, posix, micro, nano, ruby or a Joda pattern such as yyyy-MM-dd HH:mm:ss")]
    Format {
        /// The format given.
        format: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// missingValue is not a date-time.
    #[error("missingValue {value} is not usable: {reason}; expected an ISO-8601 date-time or epoch millis")]
    MissingValue {
        /// The value given, as JSON.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

impl TimestampSpecError {
    /// The timestampSpec field at fault (`format` or `missingValue`).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Format { .. } => "format",
            Self::MissingValue { .. } => "missingValue",
        }
    }
}

/// Why an event has no usable timestamp. Each case is an outcome, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The bytes are not valid JSON.
    #[error("malformed JSON: {message}")]
    MalformedJson {
        /// The parser's message with position.
        message: String,
    },
    /// The JSON value is not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found (`array`, `string`, ...).
        found: &'static str,
    },
    /// The timestamp column is missing or null and there is no missingValue.
    #[error("missing timestamp column '{column}'")]
    Missing {
        /// The timestamp column.
        column: String,
    },
    /// The value is there but does not parse in the format.
    #[error(
        "timestamp {value} in column '{column}' is not parseable as format '{format}': {reason}"
    )]
    Unparseable {
        /// The timestamp column.
        column: String,
        /// The value, as JSON.
        value: String,
        /// The timestampSpec format.
        format: String,
        /// What was wrong.
        reason: String,
    },
}

impl TimestampError {
    /// A short fixed label for metrics (`malformed_json`, `not_an_object`,
    /// `missing_timestamp`, `unparseable_timestamp`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "malformed_json",
            Self::NotAnObject { .. } => "not_an_object",
            Self::Missing { .. } => "missing_timestamp",
            Self::Unparseable { .. } => "unparseable_timestamp",
        }
    }
}

/// Extracts event timestamps as a timestampSpec says; build once, use for every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampExtractor {
    column: String,
    format: TimestampFormat,
    missing_value: Option<i64>,
}

impl TimestampExtractor {
    /// Compiles a timestampSpec (checks the format and missingValue).
    pub fn new(spec: &TimestampSpec) -> Result<Self, TimestampSpecError> {
        let format =
            TimestampFormat::parse(&spec.format).map_err(|reason| TimestampSpecError::Format {
                format: spec.format.clone(),
                reason,
            })?;
        let missing_value = match &spec.missing_value {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(missing_value_millis(v).map_err(|reason| {
                TimestampSpecError::MissingValue {
                    value: v.to_string(),
                    reason,
                }
            })?),
        };
        Ok(Self {
            column: spec.column.clone(),
            format,
            missing_value,
        })
    }

    /// The timestamp column.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The format.
    pub fn format(&self) -> &TimestampFormat {
        &self.format
    }

    /// The timestamp (epoch millis) of one JSON object event.
    pub fn extract(&self, raw_json: &[u8]) -> Result<i64, TimestampError> {
        let mut de = serde_json::Deserializer::from_slice(raw_json);
        let found = ScanSeed {
            column: &self.column,
        }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| TimestampError::MalformedJson {
            message: e.to_string(),
        })?;
        match found {
            Scan::NotObject(found) => Err(TimestampError::NotAnObject { found }),
            Scan::Object(v) => self.resolve(v),
        }
    }

    /// [`extract`](Self::extract) for bytes already known to be well-formed JSON (parsed or
    /// written by serde_json): finds the column without validating the event again.
    pub fn extract_well_formed(&self, json: &[u8]) -> Result<i64, TimestampError> {
        self.extract_well_formed_at(json).map(|(millis, _)| millis)
    }

    /// [`extract_well_formed`](Self::extract_well_formed), also telling where the column's
    /// value lies in `json` (start and length) when the scan found it.
    pub(crate) fn extract_well_formed_at(
        &self,
        json: &[u8],
    ) -> Result<(i64, Option<(u32, u32)>), TimestampError> {
        match super::scan::top_level_value(json, &self.column) {
            Found::Missing => self.resolve(None).map(|t| (t, None)),
            Found::Value(v) => match serde_json::from_slice::<RawTs<'_>>(v) {
                Ok(raw) => {
                    // `v` is a sub-slice of `json`.
                    let start = v.as_ptr() as usize - json.as_ptr() as usize;
                    let at = u32::try_from(start).ok().zip(u32::try_from(v.len()).ok());
                    self.resolve(Some(raw)).map(|t| (t, at))
                }
                Err(_) => self.extract(json).map(|t| (t, None)),
            },
            Found::Unsure => self.extract(json).map(|t| (t, None)),
        }
    }

    /// The timestamp of a found (or missing) column value.
    fn resolve(&self, found: Option<RawTs<'_>>) -> Result<i64, TimestampError> {
        match found {
            None | Some(RawTs::Null) => self.missing_value.ok_or_else(|| TimestampError::Missing {
                column: self.column.clone(),
            }),
            Some(v) => self.parse_value(&v),
        }
    }

    /// Parses a value already extracted from an event (e.g. from a decoded map).
    pub fn parse_json_value(&self, v: &serde_json::Value) -> Result<i64, TimestampError> {
        let raw = match v {
            serde_json::Value::Null => {
                return self.missing_value.ok_or_else(|| TimestampError::Missing {
                    column: self.column.clone(),
                })
            }
            serde_json::Value::Bool(b) => RawTs::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => RawTs::I64(i),
                (None, Some(u)) => RawTs::U64(u),
                _ => RawTs::F64(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => RawTs::Str(Cow::Borrowed(s)),
            serde_json::Value::Array(_) => RawTs::Other("an array"),
            serde_json::Value::Object(_) => RawTs::Other("an object"),
        };
        self.parse_value(&raw)
    }

    fn parse_value(&self, v: &RawTs<'_>) -> Result<i64, TimestampError> {
        self.parse_inner(v)
            .map_err(|reason| TimestampError::Unparseable {
                column: self.column.clone(),
                value: v.to_json(),
                format: self.format.to_string(),
                reason,
            })
    }

    fn parse_inner(&self, v: &RawTs<'_>) -> Result<i64, String> {
        use TimestampFormat as F;
        // Druid strips surrounding quotes from string values.
        let text = v.as_text();
        let text = text.as_deref().map(strip_quotes);
        match (&self.format, v) {
            (_, RawTs::Bool(_) | RawTs::Other(_) | RawTs::Null) => {
                Err("expected a string or a number".into())
            }
            (F::Auto | F::Millis, RawTs::I64(i)) => Ok(*i),
            (F::Auto | F::Millis, RawTs::U64(u)) => {
                i64::try_from(*u).map_err(|_| "out of range".into())
            }
            (F::Auto | F::Millis, RawTs::F64(f)) => float_scaled(*f, 1.0),
            (F::Posix, _) => scaled_integer(v, text, 1000, true),
            (F::Micro, _) => scaled_integer(v, text, 1000, false),
            (F::Nano, _) => scaled_integer(v, text, 1_000_000, false),
            (F::Millis, _) => scaled_integer(v, text, 1, true),
            (F::Ruby, RawTs::I64(_) | RawTs::U64(_) | RawTs::F64(_)) => {
                float_scaled(v.as_f64(), 1000.0)
            }
            (F::Ruby, _) => {
                let t = text.unwrap_or_default();
                let f: f64 = t
                    .trim()
                    .parse()
                    .map_err(|_| "expected seconds with an optional fraction")?;
                float_scaled(f, 1000.0)
            }
            (F::Auto, _) => {
                let t = text.unwrap_or_default();
                // As Druid's `auto`: only digits are millis; a sign makes it an ISO year.
                if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    t.parse::<i64>().map_err(|_| "out of range".into())
                } else {
                    parse_iso_datetime(without_zone_id(t), Zone::UTC)
                }
            }
            (F::Iso, _) => parse_iso_datetime(text.unwrap_or_default(), Zone::UTC),
            (F::Pattern(p), _) => p.parse(text.unwrap_or_default()),
        }
    }
}

/// Drops a trailing ` <zone id>` the way Druid's `auto` format does: Druid parses the rest
/// and only relabels the result's zone, so the id never moves the instant. Tasks store the
/// row where Druid reads it, so routing must read it the same way.
fn without_zone_id(t: &str) -> &str {
    let t = t.trim();
    match t.rsplit_once(' ') {
        Some((head, tail)) if !head.is_empty() && tail.parse::<Zone>().is_ok() => head.trim_end(),
        _ => t,
    }
}

fn missing_value_millis(v: &serde_json::Value) -> Result<i64, String> {
    match v {
        serde_json::Value::String(s) => parse_iso_datetime(s, Zone::UTC),
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| "not a whole number of millis".to_string()),
        _ => Err("expected a string or a number".into()),
    }
}

fn strip_quotes(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn is_integer(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

fn float_scaled(f: f64, scale: f64) -> Result<i64, String> {
    let v = (f * scale).trunc();
    if v.is_finite() && v.abs() < 9.2e18 {
        Ok(v as i64)
    } else {
        Err("out of range".into())
    }
}

/// Integer formats: numbers are truncated; strings must be whole numbers. `mul` scales up
/// (posix, millis), otherwise the value is divided (micro, nano).
fn scaled_integer(
    v: &RawTs<'_>,
    text: Option<&str>,
    factor: i64,
    mul: bool,
) -> Result<i64, String> {
    let n: i64 = match v {
        RawTs::I64(i) => *i,
        RawTs::U64(u) => i64::try_from(*u).map_err(|_| "out of range")?,
        RawTs::F64(f) => float_scaled(*f, 1.0)?,
        _ => {
            let t = text.unwrap_or_default().trim();
            if !is_integer(t) {
                return Err("expected a whole number".into());
            }
            t.parse().map_err(|_| "out of range")?
        }
    };
    if mul {
        n.checked_mul(factor).ok_or_else(|| "out of range".into())
    } else {
        Ok(n / factor)
    }
}

/// The timestamp value as found in the event.
#[derive(Debug)]
enum RawTs<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    Other(&'static str),
}

impl RawTs<'_> {
    fn as_text(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            RawTs::Str(s) => Cow::Borrowed(s.as_ref()),
            RawTs::I64(i) => Cow::Owned(i.to_string()),
            RawTs::U64(u) => Cow::Owned(u.to_string()),
            RawTs::F64(f) => Cow::Owned(f.to_string()),
            _ => return None,
        })
    }

    fn as_f64(&self) -> f64 {
        match self {
            RawTs::I64(i) => *i as f64,
            RawTs::U64(u) => *u as f64,
            RawTs::F64(f) => *f,
            _ => f64::NAN,
        }
    }

    fn to_json(&self) -> String {
        match self {
            RawTs::Null => "null".into(),
            RawTs::Bool(b) => b.to_string(),
            RawTs::I64(i) => i.to_string(),
            RawTs::U64(u) => u.to_string(),
            RawTs::F64(f) => f.to_string(),
            RawTs::Str(s) => serde_json::Value::from(s.as_ref()).to_string(),
            RawTs::Other(k) => (*k).to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for RawTs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawTs::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawTs::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTs::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawTs::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawTs::F64(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawTs::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTs::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawTs::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawTs::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawTs::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

enum Scan<'de> {
    Object(Option<RawTs<'de>>),
    NotObject(&'static str),
}

struct ScanSeed<'a> {
    column: &'a str,
}

/// Compares a key with the column without allocating when the key has no escapes.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

impl<'de> DeserializeSeed<'de> for ScanSeed<'_> {
    type Value = Scan<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScanSeed<'_> {
    type Value = Scan<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_ts) = map.next_key_seed(KeyIs(self.column))? {
            if is_ts {
                // A repeated key: the last one wins, as in Jackson.
                found = Some(map.next_value::<RawTs<'de>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Scan::Object(found))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scan::NotObject("an array"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scan::NotObject("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scan::NotObject("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Scan::NotObject("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Scan::NotObject("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scan::NotObject("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Scan::NotObject("a string"))
    }
}

#[cfg(test)]
#[path = "timestamp_tests.rs"]
mod tests;
