//! Result writers, byte for byte as Druid's `ObjectWriter`, `ArrayWriter`, `ObjectLinesWriter`,
//! `ArrayLinesWriter` and `CsvWriter` write them: `object`/`array` end with a line feed, the
//! `*Lines` formats and `csv` end with a blank line (so a cut-off answer shows), and the header
//! is the names, then the native types, then the SQL types (objects map each name to `null` or
//! to `{"type","sqlType"}`).

use super::request::{ResultFormat, SqlRequest};
use super::types::SqlType;
use crate::task::parse::java_double;
use serde_json::Value;

/// An output column.
#[derive(Debug, Clone, PartialEq)]
pub struct OutColumn {
    /// Name as the statement gives it (`EXPR$n` for unnamed expressions).
    pub name: String,
    /// SQL type.
    pub ty: SqlType,
}

fn json_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Writes one JSON object without going through a map, so that two columns with one name
/// both appear, as Jackson writes them.
fn object(names: &[&str], values: &[String]) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_str(n));
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

fn array(values: &[String]) -> String {
    format!("[{}]", values.join(","))
}

/// A CSV field as opencsv writes it: quoted when it holds a quote, comma or line break.
fn csv_field(s: &str, quote_all: bool) -> String {
    if quote_all || s.contains(['"', ',', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_line(fields: &[String]) -> String {
    // A row of one empty field is quoted so that it is not taken for the trailer.
    let quote_all = fields.len() == 1 && fields[0].is_empty();
    let mut line: Vec<String> = fields.iter().map(|f| csv_field(f, quote_all)).collect();
    if line.is_empty() {
        line.push(String::new());
    }
    format!("{}\n", line.join(","))
}

/// A value as CSV text: Java's `toString` (doubles as `1.0`), null as empty.
fn csv_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_i64() {
            Some(l) => l.to_string(),
            None => java_double(n.as_f64().unwrap_or(0.0)),
        },
        other => other.to_string(),
    }
}

/// The header rows: names, then native types, then SQL types, as asked.
fn header_rows(req: &SqlRequest, columns: &[OutColumn]) -> Vec<Vec<String>> {
    let mut rows = vec![columns.iter().map(|c| c.name.clone()).collect()];
    if req.types_header {
        rows.push(columns.iter().map(|c| c.ty.native().to_owned()).collect());
    }
    if req.sql_types_header {
        rows.push(columns.iter().map(|c| c.ty.name().to_owned()).collect());
    }
    rows
}

fn object_header(req: &SqlRequest, columns: &[OutColumn]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            let mut parts = Vec::new();
            if req.types_header {
                parts.push(format!("\"type\":{}", json_str(c.ty.native())));
            }
            if req.sql_types_header {
                parts.push(format!("\"sqlType\":{}", json_str(c.ty.name())));
            }
            if parts.is_empty() {
                "null".to_owned()
            } else {
                format!("{{{}}}", parts.join(","))
            }
        })
        .collect()
}

/// The response body for `rows` (already typed values) in the request's format.
pub fn write(req: &SqlRequest, columns: &[OutColumn], rows: &[Vec<Value>]) -> Vec<u8> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let json_row = |r: &Vec<Value>| -> Vec<String> { r.iter().map(Value::to_string).collect() };
    let mut items: Vec<String> = Vec::new();
    match req.format {
        ResultFormat::Object | ResultFormat::ObjectLines => {
            if req.header {
                items.push(object(&names, &object_header(req, columns)));
            }
            items.extend(rows.iter().map(|r| object(&names, &json_row(r))));
        }
        ResultFormat::Array | ResultFormat::ArrayLines => {
            if req.header {
                for h in header_rows(req, columns) {
                    items.push(array(&h.iter().map(|s| json_str(s)).collect::<Vec<_>>()));
                }
            }
            items.extend(rows.iter().map(|r| array(&json_row(r))));
        }
        ResultFormat::Csv => {
            let mut out = String::new();
            if req.header {
                for h in header_rows(req, columns) {
                    out.push_str(&csv_line(&h));
                }
            }
            for r in rows {
                out.push_str(&csv_line(&r.iter().map(csv_value).collect::<Vec<_>>()));
            }
            out.push('\n');
            return out.into_bytes();
        }
    }
    let body = match req.format {
        ResultFormat::Object | ResultFormat::Array => format!("[{}]\n", items.join(",")),
        // Rows separated by line feeds, then the line end and a blank line.
        _ => format!("{}\n\n", items.join("\n")),
    };
    body.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(format: ResultFormat, header: bool, types: bool, sql_types: bool) -> SqlRequest {
        SqlRequest {
            query: String::new(),
            format,
            header,
            types_header: types,
            sql_types_header: sql_types,
            context: Default::default(),
            parameters: Vec::new(),
        }
    }

    fn cols() -> Vec<OutColumn> {
        vec![
            OutColumn {
                name: "page".into(),
                ty: SqlType::Varchar,
            },
            OutColumn {
                name: "n".into(),
                ty: SqlType::Bigint,
            },
        ]
    }

    fn text(r: &SqlRequest, rows: &[Vec<Value>]) -> String {
        String::from_utf8(write(r, &cols(), rows)).unwrap()
    }

    #[test]
    fn every_format() {
        let rows = vec![vec![json!("A"), json!(2)], vec![json!("B,\"x\""), json!(1)]];
        assert_eq!(
            text(&req(ResultFormat::Object, false, false, false), &rows),
            "[{\"page\":\"A\",\"n\":2},{\"page\":\"B,\\\"x\\\"\",\"n\":1}]\n"
        );
        assert_eq!(
            text(&req(ResultFormat::Array, true, true, true), &rows[..1]),
            "[[\"page\",\"n\"],[\"STRING\",\"LONG\"],[\"VARCHAR\",\"BIGINT\"],[\"A\",2]]\n"
        );
        assert_eq!(
            text(&req(ResultFormat::ObjectLines, true, false, true), &rows[..1]),
            "{\"page\":{\"sqlType\":\"VARCHAR\"},\"n\":{\"sqlType\":\"BIGINT\"}}\n{\"page\":\"A\",\"n\":2}\n\n"
        );
        assert_eq!(
            text(
                &req(ResultFormat::ArrayLines, false, false, false),
                &rows[..1]
            ),
            "[\"A\",2]\n\n"
        );
        assert_eq!(
            text(&req(ResultFormat::Csv, true, true, false), &rows),
            "page,n\nSTRING,LONG\nA,2\n\"B,\"\"x\"\"\",1\n\n"
        );
        assert_eq!(
            text(&req(ResultFormat::Object, true, false, false), &[]),
            "[{\"page\":null,\"n\":null}]\n"
        );
        assert_eq!(
            text(&req(ResultFormat::ArrayLines, false, false, false), &[]),
            "\n\n"
        );
    }

    #[test]
    fn duplicate_names_and_doubles() {
        let c = vec![
            OutColumn {
                name: "a".into(),
                ty: SqlType::Double,
            },
            OutColumn {
                name: "a".into(),
                ty: SqlType::Double,
            },
        ];
        let r = req(ResultFormat::Object, false, false, false);
        let body = String::from_utf8(write(&r, &c, &[vec![json!(1.0), json!(2.5)]])).unwrap();
        assert_eq!(body, "[{\"a\":1.0,\"a\":2.5}]\n");
        let r = req(ResultFormat::Csv, false, false, false);
        let body = String::from_utf8(write(&r, &c, &[vec![json!(1.0), json!(null)]])).unwrap();
        assert_eq!(body, "1.0,\n\n");
    }
}
