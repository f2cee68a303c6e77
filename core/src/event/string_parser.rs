//! Text lines into JSON events, the way a Druid `parseSpec` reads strings: `json` (each line is
//! an object), `csv` and `tsv` (values named by `columns` or a header row).
//!
//! The output is a JSON object's bytes, ready for timestamp extraction and for Druid. Delimited
//! values stay strings (Druid's own parser types them), an empty value is `null`, and a value
//! holding the `listDelimiter` becomes an array (a multi-value dimension).

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::spec::ParseSpec;

/// Druid's default `listDelimiter` for csv and tsv (Ctrl-A).
pub const DEFAULT_LIST_DELIMITER: &str = "\u{1}";

/// A parseSpec the string parser cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StringParserError {
    /// A `format` other than json, csv or tsv.
    #[error("parseSpec format '{0}' is not supported for text lines; expected json, csv or tsv")]
    UnsupportedFormat(String),
    /// A field of the parseSpec has the wrong shape.
    #[error("parseSpec.{field}: {problem}")]
    Field {
        /// The field, e.g. `columns`.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Why one line could not become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A `json` line that is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A `json` line holding something other than an object.
    #[error("expected a JSON object, found {0}")]
    NotObject(&'static str),
    /// A csv line that the CSV reader refused (e.g. a stray quote).
    #[error("invalid CSV: {0}")]
    Csv(String),
    /// More values than columns.
    #[error("{found} values but only {expected} columns")]
    TooManyValues {
        /// Number of columns.
        expected: usize,
        /// Number of values on the line.
        found: usize,
    },
    /// A delimited line arrived before any columns were known (no `columns`, no header yet).
    #[error("no columns: set parseSpec.columns or hasHeaderRow")]
    NoColumns,
}

/// One non-blank line of a text body and what it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// Line number in the body, from 1.
    pub line: usize,
    /// The event's JSON object bytes, or why the line is not an event.
    pub result: Result<Bytes, LineError>,
}

/// Parses text lines with a parseSpec's `format`.
#[derive(Debug, Clone)]
pub struct StringParser {
    format: Format,
}

#[derive(Debug, Clone)]
enum Format {
    Json,
    Delimited(Delimited),
}

#[derive(Debug, Clone)]
struct Delimited {
    /// True for csv (quotes are honoured); tsv splits on the delimiter only, as Druid does.
    csv: bool,
    delimiter: String,
    list_delimiter: String,
    columns: Vec<String>,
    has_header_row: bool,
    skip_header_rows: usize,
}

impl StringParser {
    /// A parser for `spec`: format `json` (also when absent), `csv` or `tsv`.
    pub fn new(spec: &ParseSpec) -> Result<Self, StringParserError> {
        let format = spec
            .format
            .as_deref()
            .unwrap_or("json")
            .to_ascii_lowercase();
        let format = match format.as_str() {
            "json" => Format::Json,
            "csv" => Format::Delimited(Delimited::from_spec(spec, true)?),
            "tsv" => Format::Delimited(Delimited::from_spec(spec, false)?),
            _ => return Err(StringParserError::UnsupportedFormat(format)),
        };
        Ok(Self { format })
    }

    /// The format's name: `json`, `csv` or `tsv`.
    pub fn format(&self) -> &'static str {
        match &self.format {
            Format::Json => "json",
            Format::Delimited(d) if d.csv => "csv",
            Format::Delimited(_) => "tsv",
        }
    }

    /// Parses one line with the configured columns (header rows are a body's business, see
    /// [`parse_text`](Self::parse_text)).
    pub fn parse_line(&self, line: &str) -> Result<Bytes, LineError> {
        match &self.format {
            Format::Json => json_line(line),
            Format::Delimited(d) => d.event(&d.columns, line),
        }
    }

    /// Parses a text body line by line. Blank lines are skipped. For csv and tsv, the first
    /// `skipHeaderRows` lines are skipped, then with `hasHeaderRow` the next line names the
    /// columns; both apply to each body, since each body is a file of its own.
    pub fn parse_text(&self, text: &str) -> Vec<ParsedLine> {
        let numbered = text
            .lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)));
        match &self.format {
            Format::Json => numbered
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(line, text)| ParsedLine {
                    line,
                    result: json_line(text),
                })
                .collect(),
            Format::Delimited(d) => {
                let mut columns = d.columns.clone();
                let mut header_pending = d.has_header_row;
                let mut out = Vec::new();
                for (line, text) in numbered.skip(d.skip_header_rows) {
                    if header_pending {
                        header_pending = false;
                        match d.split(text) {
                            Ok(names) => columns = names,
                            Err(e) => out.push(ParsedLine {
                                line,
                                result: Err(e),
                            }),
                        }
                        continue;
                    }
                    if text.trim().is_empty() {
                        continue;
                    }
                    out.push(ParsedLine {
                        line,
                        result: d.event(&columns, text),
                    });
                }
                out
            }
        }
    }
}

fn json_line(line: &str) -> Result<Bytes, LineError> {
    let trimmed = line.trim();
    let value: &serde_json::value::RawValue =
        serde_json::from_str(trimmed).map_err(|e| LineError::Json(e.to_string()))?;
    match value.get().as_bytes().first() {
        Some(b'{') => Ok(Bytes::copy_from_slice(trimmed.as_bytes())),
        Some(b'[') => Err(LineError::NotObject("an array")),
        Some(b'"') => Err(LineError::NotObject("a string")),
        Some(b't' | b'f') => Err(LineError::NotObject("a boolean")),
        Some(b'n') => Err(LineError::NotObject("null")),
        _ => Err(LineError::NotObject("a number")),
    }
}

impl Delimited {
    fn from_spec(spec: &ParseSpec, csv: bool) -> Result<Self, StringParserError> {
        let string_field = |field: &'static str| -> Result<Option<String>, StringParserError> {
            match spec.extra.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(StringParserError::Field {
                    field,
                    problem: format!("expected a string, found {other}"),
                }),
            }
        };
        let delimiter = if csv {
            ",".to_string()
        } else {
            string_field("delimiter")?.unwrap_or_else(|| "\t".to_string())
        };
        if delimiter.is_empty() {
            return Err(StringParserError::Field {
                field: "delimiter",
                problem: "must not be empty".into(),
            });
        }
        let list_delimiter =
            string_field("listDelimiter")?.unwrap_or_else(|| DEFAULT_LIST_DELIMITER.to_string());
        let columns = match spec.extra.get("columns") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(StringParserError::Field {
                        field: "columns",
                        problem: format!("expected column names, found {other}"),
                    }),
                })
                .collect::<Result<_, _>>()?,
            // Druid also accepts one comma-separated string.
            Some(Value::String(s)) => s.split(',').map(|c| c.trim().to_string()).collect(),
            Some(other) => {
                return Err(StringParserError::Field {
                    field: "columns",
                    problem: format!("expected a list of column names, found {other}"),
                })
            }
        };
        let has_header_row = match spec.extra.get("hasHeaderRow") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                return Err(StringParserError::Field {
                    field: "hasHeaderRow",
                    problem: format!("expected true or false, found {other}"),
                })
            }
        };
        let skip_header_rows = match spec.extra.get("skipHeaderRows") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| StringParserError::Field {
                    field: "skipHeaderRows",
                    problem: format!("expected a whole number of rows, found {v}"),
                })?,
        };
        if columns.is_empty() && !has_header_row {
            return Err(StringParserError::Field {
                field: "columns",
                problem: "required for csv and tsv unless hasHeaderRow is true".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(StringParserError::Field {
                field: "columns",
                problem: format!("column '{dup}' appears twice"),
            });
        }
        Ok(Self {
            csv,
            delimiter,
            list_delimiter,
            columns,
            has_header_row,
            skip_header_rows,
        })
    }

    fn split(&self, line: &str) -> Result<Vec<String>, LineError> {
        if !self.csv {
            return Ok(line
                .split(self.delimiter.as_str())
                .map(String::from)
                .collect());
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(line.as_bytes());
        match reader.records().next() {
            None => Ok(Vec::new()),
            Some(Ok(record)) => Ok(record.iter().map(String::from).collect()),
            Some(Err(e)) => Err(LineError::Csv(e.to_string())),
        }
    }

    fn event(&self, columns: &[String], line: &str) -> Result<Bytes, LineError> {
        if columns.is_empty() {
            return Err(LineError::NoColumns);
        }
        let values = self.split(line)?;
        if values.len() > columns.len() {
            return Err(LineError::TooManyValues {
                expected: columns.len(),
                found: values.len(),
            });
        }
        let mut object = Map::with_capacity(values.len());
        for (column, value) in columns.iter().zip(values) {
            object.insert(column.clone(), self.value(value));
        }
        // Serializing a map of strings cannot fail.
        let bytes = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
        Ok(Bytes::from(bytes))
    }

    fn value(&self, value: String) -> Value {
        if value.is_empty() {
            Value::Null
        } else if !self.list_delimiter.is_empty() && value.contains(self.list_delimiter.as_str()) {
            Value::Array(
                value
                    .split(self.list_delimiter.as_str())
                    .map(|v| Value::String(v.to_string()))
                    .collect(),
            )
        } else {
            Value::String(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> ParseSpec {
        serde_json::from_str(json).unwrap()
    }

    fn text(bytes: &Bytes) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_lines_are_kept_as_objects() {
        let p = StringParser::new(&spec(r#"{"format":"json"}"#)).unwrap();
        assert_eq!(p.format(), "json");
        assert_eq!(
            text(&p.parse_line(r#"  {"a":1, "b":"x"} "#).unwrap()),
            r#"{"a":1, "b":"x"}"#
        );
        assert_eq!(
            p.parse_line("[1]").unwrap_err(),
            LineError::NotObject("an array")
        );
        assert!(matches!(p.parse_line("{\"a\":"), Err(LineError::Json(_))));
        let lines = p.parse_text("{\"a\":1}\r\n\n  \n7\n{\"b\":2}");
        let summary: Vec<_> = lines.iter().map(|l| (l.line, l.result.is_ok())).collect();
        assert_eq!(summary, [(1, true), (4, false), (5, true)]);
    }

    #[test]
    fn format_defaults_to_json() {
        let p = StringParser::new(&spec("{}")).unwrap();
        assert_eq!(p.format(), "json");
    }

    #[test]
    fn csv_with_columns_quotes_nulls_and_lists() {
        let p = StringParser::new(&spec(
            r#"{"format":"csv","columns":["ts","foo","bar"],"listDelimiter":"|"}"#,
        ))
        .unwrap();
        assert_eq!(
            text(&p.parse_line(r#"1000,"a, b",x|y"#).unwrap()),
            r#"{"ts":"1000","foo":"a, b","bar":["x","y"]}"#
        );
        assert_eq!(
            text(&p.parse_line("1000,,z").unwrap()),
            r#"{"ts":"1000","foo":null,"bar":"z"}"#
        );
        // Fewer values than columns: the missing columns are absent.
        assert_eq!(text(&p.parse_line("1000").unwrap()), r#"{"ts":"1000"}"#);
        assert_eq!(
            p.parse_line("1,2,3,4").unwrap_err(),
            LineError::TooManyValues {
                expected: 3,
                found: 4
            }
        );
    }

    #[test]
    fn csv_default_list_delimiter_is_ctrl_a() {
        let p = StringParser::new(&spec(r#"{"format":"csv","columns":["a"]}"#)).unwrap();
        assert_eq!(
            text(&p.parse_line("x\u{1}y").unwrap()),
            r#"{"a":["x","y"]}"#
        );
    }

    #[test]
    fn tsv_splits_without_quoting_and_takes_a_custom_delimiter() {
        let p = StringParser::new(&spec(r#"{"format":"tsv","columns":["a","b"]}"#)).unwrap();
        assert_eq!(p.format(), "tsv");
        assert_eq!(
            text(&p.parse_line("\"x\ty").unwrap()),
            r#"{"a":"\"x","b":"y"}"#
        );
        let p = StringParser::new(&spec(
            r#"{"format":"tsv","delimiter":"::","columns":"a, b"}"#,
        ))
        .unwrap();
        assert_eq!(text(&p.parse_line("1::2").unwrap()), r#"{"a":"1","b":"2"}"#);
    }

    #[test]
    fn header_rows_per_body() {
        let p = StringParser::new(&spec(
            r#"{"format":"csv","hasHeaderRow":true,"skipHeaderRows":1}"#,
        ))
        .unwrap();
        let lines = p.parse_text("# comment\nts,page\n1,Main\n\n2,Talk\n");
        let out: Vec<_> = lines
            .iter()
            .map(|l| (l.line, text(l.result.as_ref().unwrap()).to_string()))
            .collect();
        assert_eq!(
            out,
            [
                (3, r#"{"ts":"1","page":"Main"}"#.to_string()),
                (5, r#"{"ts":"2","page":"Talk"}"#.to_string())
            ]
        );
        // Without a header in the body, a single line has no columns.
        assert_eq!(p.parse_line("1,Main").unwrap_err(), LineError::NoColumns);
    }

    #[test]
    fn bad_csv_line_names_the_problem() {
        let p = StringParser::new(&spec(r#"{"format":"csv","columns":["a","b"]}"#)).unwrap();
        let lines = p.parse_text("1,2\n1,2,3\n");
        assert_eq!(lines[0].line, 1);
        assert!(lines[0].result.is_ok());
        assert_eq!(lines[1].line, 2);
        assert_eq!(
            lines[1].result.as_ref().unwrap_err().to_string(),
            "3 values but only 2 columns"
        );
    }

    #[test]
    fn unusable_specs_are_refused_with_the_field() {
        let err = |json: &str| StringParser::new(&spec(json)).unwrap_err().to_string();
        assert!(err(r#"{"format":"regex"}"#).contains("'regex' is not supported"));
        assert!(err(r#"{"format":"csv"}"#).contains("parseSpec.columns: required"));
        assert!(err(r#"{"format":"csv","columns":["a","a"]}"#).contains("'a' appears twice"));
        assert!(err(r#"{"format":"csv","columns":[1]}"#).contains("parseSpec.columns"));
        assert!(err(r#"{"format":"tsv","columns":["a"],"delimiter":""}"#)
            .contains("parseSpec.delimiter: must not be empty"));
        assert!(
            err(r#"{"format":"csv","columns":["a"],"skipHeaderRows":-1}"#)
                .contains("parseSpec.skipHeaderRows")
        );
        assert!(
            err(r#"{"format":"csv","columns":["a"],"hasHeaderRow":"maybe"}"#)
                .contains("parseSpec.hasHeaderRow")
        );
    }

    #[test]
    fn peer_config_csv_spec_parses_lines() {
        let p = StringParser::new(&spec(
            r#"{"format":"csv","columns":["ts","foo","bar","lat","lon","coord.geo"],
                "timestampSpec":{"column":"ts","format":"posix"},
                "dimensionsSpec":{"dimensions":["foo"]}}"#,
        ))
        .unwrap();
        let event = p.parse_line("1436000000,hey,2,37.7,-122.4,").unwrap();
        assert_eq!(
            text(&event),
            r#"{"ts":"1436000000","foo":"hey","bar":"2","lat":"37.7","lon":"-122.4","coord.geo":null}"#
        );
    }
}
