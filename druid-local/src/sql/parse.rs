//! Parsing with the `sqlparser` crate: `?` marks replaced by the request's typed `parameters`
//! at the token level (so they bind in text order, and a `?` inside a string stays text), and
//! parse failures reported like Druid's `DruidSqlParser` does (the unexpected token, where it
//! is, and what was expected).

use super::error::{Pos, SqlError};
use super::request::Parameter;
use serde_json::Value;
use sqlparser::ast::Statement;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// The tokens a parameter stands for.
fn parameter_tokens(p: &Parameter, position: usize) -> Result<Vec<Token>, SqlError> {
    let bad = |why: &str| {
        SqlError::invalid(
            format!(
                "Cannot bind parameter (position [{position}]) of type [{}] to {}: {why}",
                p.ty, p.value
            ),
            None,
        )
    };
    if p.value.is_null() {
        return Ok(vec![Token::make_keyword("NULL")]);
    }
    let number = |v: &Value| -> Result<Vec<Token>, SqlError> {
        let text = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) if s.trim().parse::<f64>().is_ok() => s.trim().to_owned(),
            _ => return Err(bad("not a number")),
        };
        Ok(match text.strip_prefix('-') {
            Some(abs) => vec![Token::Minus, Token::Number(abs.to_owned(), false)],
            None => vec![Token::Number(text, false)],
        })
    };
    Ok(match p.ty.as_str() {
        "VARCHAR" | "CHAR" => vec![Token::SingleQuotedString(match &p.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })],
        "BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" | "DOUBLE" | "FLOAT" | "REAL" | "DECIMAL"
        | "NUMERIC" => number(&p.value)?,
        "BOOLEAN" => match &p.value {
            Value::Bool(b) => vec![Token::make_keyword(if *b { "TRUE" } else { "FALSE" })],
            _ => return Err(bad("not a boolean")),
        },
        "TIMESTAMP" | "DATE" => match &p.value {
            Value::String(s) => vec![
                Token::make_keyword(&p.ty),
                Token::SingleQuotedString(s.clone()),
            ],
            // Milliseconds are an instant, whatever sqlTimeZone says.
            Value::Number(n) => {
                let ms = n.as_i64().ok_or_else(|| bad("not a whole number"))?;
                let mut t = vec![Token::make_word("MILLIS_TO_TIMESTAMP", None), Token::LParen];
                t.extend(number(&Value::from(ms))?);
                t.push(Token::RParen);
                t
            }
            _ => return Err(bad("not a timestamp")),
        },
        other => {
            return Err(SqlError::unsupported(format!(
                "parameters of type [{other}] are not supported by druid-local"
            )))
        }
    })
}

/// Where the text ends, for errors at the end of input.
fn end_of(sql: &str) -> (u64, u64) {
    let line = sql.lines().count().max(1) as u64;
    let last = if sql.ends_with('\n') {
        ""
    } else {
        sql.lines().last().unwrap_or("")
    };
    let line = if sql.ends_with('\n') { line + 1 } else { line };
    (line, last.chars().count() as u64 + 1)
}

/// Turns sqlparser's message (`Expected: X, found: Y at Line: L, Column: C`) into Druid's parts.
fn parse_error(sql: &str, message: &str) -> SqlError {
    let (mut line, mut column) = end_of(sql);
    let mut text = message.to_owned();
    if let Some(i) = message.rfind(" at Line: ") {
        let loc = &message[i + " at Line: ".len()..];
        if let Some((l, c)) = loc.split_once(", Column: ") {
            if let (Ok(l), Ok(c)) = (l.trim().parse(), c.trim().parse()) {
                (line, column) = (l, c);
            }
        }
        text = message[..i].to_owned();
    }
    let (expected, token) = match text.split_once(", found: ") {
        Some((e, f)) => (
            e.trim_start_matches("Expected: ").to_owned(),
            if f == "EOF" {
                "<EOF>".to_owned()
            } else {
                f.to_owned()
            },
        ),
        None => (text.clone(), String::new()),
    };
    let width = token.chars().count().max(1) as u64;
    SqlError::Parse {
        pos: Pos {
            line,
            column,
            end_line: line,
            end_column: column + width - 1,
        },
        token,
        expected: vec![expected],
    }
}

/// Parses `sql` into one statement, binding `parameters` to its `?` marks.
pub fn parse(sql: &str, parameters: &[Parameter]) -> Result<Statement, SqlError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| parse_error(sql, &e.to_string()))?;
    let first_word = tokens.iter().find_map(|t| match &t.token {
        Token::Whitespace(_) => None,
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => Some(String::new()),
    });
    if first_word.as_deref() == Some("EXPLAIN") {
        return Err(SqlError::unsupported(
            "EXPLAIN PLAN FOR is not supported by druid-local",
        ));
    }
    let mut bound: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut marks = 0;
    for t in tokens {
        match &t.token {
            Token::Placeholder(p) if p == "?" => {
                marks += 1;
                let param = parameters.get(marks - 1).ok_or_else(|| {
                    SqlError::invalid(
                        format!("No value bound for parameter (position [{marks}])"),
                        super::bind::pos_of(t.span),
                    )
                })?;
                for token in parameter_tokens(param, marks)? {
                    bound.push(TokenWithSpan {
                        token,
                        span: t.span,
                    });
                }
            }
            Token::Placeholder(p) => {
                return Err(parse_error(
                    sql,
                    &format!(
                        "Expected: an expression, found: {p} at Line: {}, Column: {}",
                        t.span.start.line, t.span.start.column
                    ),
                ))
            }
            _ => bound.push(t),
        }
    }
    let mut statements = Parser::new(&dialect)
        .with_tokens_with_locations(bound)
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => {
                SqlError::unsupported("the statement nests too deeply for druid-local's parser")
            }
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => parse_error(sql, &m),
        })?;
    match statements.len() {
        0 => Err(SqlError::invalid(
            "Statement list is missing a non-SET statement to execute",
            None,
        )),
        1 => Ok(statements.remove(0)),
        _ => Err(SqlError::unsupported(
            "several statements in one request (such as SET ...; SELECT ...) are not supported by druid-local",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(ty: &str, value: Value) -> Parameter {
        Parameter {
            ty: ty.into(),
            value,
        }
    }

    #[test]
    fn binds_parameters_in_text_order() {
        let s = parse(
            "SELECT '?' FROM t WHERE a = ? AND b > ? AND __time >= ?",
            &[
                param("VARCHAR", json!("it's")),
                param("BIGINT", json!(-5)),
                param("TIMESTAMP", json!(0)),
            ],
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "SELECT '?' FROM t WHERE a = 'it''s' AND b > -5 AND __time >= MILLIS_TO_TIMESTAMP(0)"
        );
        let e = parse("SELECT ? + ?", &[param("INTEGER", json!(1))]).unwrap_err();
        assert!(e.message().contains("position [2]"), "{}", e.message());
    }

    #[test]
    fn reports_the_unexpected_token_and_where() {
        match parse("SELECT a b c FROM t", &[]).unwrap_err() {
            SqlError::Parse { pos, token, .. } => {
                assert_eq!(token, "c");
                assert_eq!((pos.line, pos.column), (1, 12));
            }
            other => panic!("{other:?}"),
        }
        match parse("SELECT a FROM", &[]).unwrap_err() {
            SqlError::Parse { pos, token, .. } => {
                assert_eq!(token, "<EOF>");
                assert_eq!((pos.line, pos.column), (1, 14));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("SELECT 'open", &[]),
            Err(SqlError::Parse { .. })
        ));
        assert!(matches!(
            parse("SELECT 1; SELECT 2", &[]),
            Err(SqlError::Unsupported(_))
        ));
        assert!(parse("SELECT 1;", &[]).is_ok());
    }
}
