//! Binding: from sqlparser's AST to a [`Bound`] statement over one table, with columns resolved
//! (case-sensitive, as Druid's Calcite is configured), aliases and ordinals in `GROUP BY` and
//! `ORDER BY` replaced by their expressions, constant time arithmetic folded
//! (`CURRENT_TIMESTAMP - INTERVAL '1' DAY`), and the validation errors Druid's validator raises
//! (unknown table or column, ungrouped columns). Whatever has no place in the small expression
//! language below is refused here, by name.

use super::catalog::{self, Column, TableRef};
use super::error::{Pos, SqlError};
use super::types::{SqlType, Val};
use crate::time::{self, Period};
use crate::Shared;
use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use sqlparser::ast::{
    self, BinaryOperator, CeilFloorKind, DateTimeField, Distinct, DuplicateTreatment, Expr,
    FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, LimitClause, ObjectNamePart,
    OrderByKind, SelectItem, SetExpr, Spanned, Statement, TableFactor, UnaryOperator,
    Value as SqlValue,
};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `=`
    Eq,
    /// `<>`, `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `||`
    Concat,
}

impl BinOp {
    /// Whether it compares two values.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    /// The comparison with its operands swapped (`a < b` is `b > a`).
    pub fn flipped(self) -> BinOp {
        match self {
            BinOp::Lt => BinOp::Gt,
            BinOp::Le => BinOp::Ge,
            BinOp::Gt => BinOp::Lt,
            BinOp::Ge => BinOp::Le,
            other => other,
        }
    }
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    /// `COUNT(*)`, `COUNT(x)`.
    Count,
    /// `COUNT(DISTINCT x)`, `APPROX_COUNT_DISTINCT(x)` (exact here).
    CountDistinct,
    /// `SUM`.
    Sum,
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
    /// `AVG`.
    Avg,
}

/// An aggregate call.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// The function.
    pub func: AggFn,
    /// Its argument (`None` for `COUNT(*)`).
    pub arg: Option<Ex>,
    /// `FILTER (WHERE ...)`.
    pub filter: Option<Ex>,
}

/// A scalar function the in-memory evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `UPPER`
    Upper,
    /// `LOWER`
    Lower,
    /// `CHAR_LENGTH`, `LENGTH`, `STRLEN`
    CharLength,
    /// `CONCAT`
    Concat,
    /// `COALESCE`, `NVL`
    Coalesce,
}

/// A time floor: `TIME_FLOOR(__time, period, origin, tz)`, `FLOOR(__time TO unit)`,
/// `DATE_TRUNC(unit, __time)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    /// ISO-8601 period.
    pub period: String,
    /// Alignment origin.
    pub origin: Option<i64>,
    /// Time zone name.
    pub tz: String,
}

/// A bound expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Ex {
    /// A column of the table, by position.
    Col(usize),
    /// A literal (timestamps as epoch milliseconds).
    Lit(Val, SqlType),
    /// A binary operator.
    Bin(BinOp, Box<Ex>, Box<Ex>),
    /// `NOT x`.
    Not(Box<Ex>),
    /// `-x`.
    Neg(Box<Ex>),
    /// `x IS [NOT] NULL` (true: negated).
    IsNull(Box<Ex>, bool),
    /// `x [NOT] IN (...)`.
    In(Box<Ex>, Vec<Ex>, bool),
    /// `x [NOT] BETWEEN a AND b`.
    Between(Box<Ex>, Box<Ex>, Box<Ex>, bool),
    /// `x [NOT] LIKE pattern`.
    Like(Box<Ex>, Box<Ex>, bool),
    /// A time floor.
    TimeFloor(Box<Ex>, Floor),
    /// An aggregate.
    Agg(Box<AggCall>),
    /// A scalar function.
    Func(Func, Vec<Ex>),
    /// `CAST(x AS type)`.
    Cast(Box<Ex>, SqlType),
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`.
    Case(Option<Box<Ex>>, Vec<(Ex, Ex)>, Option<Box<Ex>>),
}

impl Ex {
    /// Whether an aggregate occurs in it.
    pub fn has_agg(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Ex::Agg(_)));
        found
    }

    /// Visits the expression and its children, not descending into aggregates.
    pub fn walk(&self, f: &mut impl FnMut(&Ex)) {
        f(self);
        match self {
            Ex::Col(_) | Ex::Lit(..) | Ex::Agg(_) => {}
            Ex::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Ex::Not(a) | Ex::Neg(a) | Ex::IsNull(a, _) | Ex::TimeFloor(a, _) | Ex::Cast(a, _) => {
                a.walk(f)
            }
            Ex::In(a, list, _) => {
                a.walk(f);
                list.iter().for_each(|x| x.walk(f));
            }
            Ex::Between(a, b, c, _) => {
                a.walk(f);
                b.walk(f);
                c.walk(f);
            }
            Ex::Like(a, b, _) => {
                a.walk(f);
                b.walk(f);
            }
            Ex::Func(_, args) => args.iter().for_each(|x| x.walk(f)),
            Ex::Case(op, whens, other) => {
                if let Some(o) = op {
                    o.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = other {
                    o.walk(f);
                }
            }
        }
    }

    /// The SQL type of the expression over `cols`.
    pub fn ty(&self, cols: &[Column]) -> SqlType {
        match self {
            Ex::Col(i) => cols[*i].ty,
            Ex::Lit(_, t) | Ex::Cast(_, t) => *t,
            Ex::Bin(op, a, b) => match op {
                BinOp::Concat => SqlType::Varchar,
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                    let (x, y) = (a.ty(cols), b.ty(cols));
                    let int = |t: SqlType| matches!(t, SqlType::Bigint | SqlType::Integer);
                    if x == SqlType::Integer && y == SqlType::Integer {
                        SqlType::Integer
                    } else if int(x) && int(y) {
                        SqlType::Bigint
                    } else {
                        SqlType::Double
                    }
                }
                _ => SqlType::Boolean,
            },
            Ex::Not(_) | Ex::IsNull(..) | Ex::In(..) | Ex::Between(..) | Ex::Like(..) => {
                SqlType::Boolean
            }
            Ex::Neg(a) => a.ty(cols),
            Ex::TimeFloor(..) => SqlType::Timestamp,
            Ex::Agg(a) => {
                let arg = a.arg.as_ref().map(|x| x.ty(cols));
                match a.func {
                    AggFn::Count | AggFn::CountDistinct => SqlType::Bigint,
                    AggFn::Sum => match arg {
                        Some(SqlType::Integer) | Some(SqlType::Bigint) => SqlType::Bigint,
                        Some(SqlType::Float) => SqlType::Float,
                        _ => SqlType::Double,
                    },
                    _ => arg.unwrap_or(SqlType::Bigint),
                }
            }
            Ex::Func(f, args) => match f {
                Func::Upper | Func::Lower | Func::Concat => SqlType::Varchar,
                Func::CharLength => SqlType::Integer,
                Func::Coalesce => args.first().map_or(SqlType::Varchar, |a| a.ty(cols)),
            },
            Ex::Case(_, whens, other) => whens
                .first()
                .map(|(_, t)| t.ty(cols))
                .or_else(|| other.as_ref().map(|o| o.ty(cols)))
                .unwrap_or(SqlType::Varchar),
        }
    }
}

/// A select list entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The expression.
    pub ex: Ex,
    /// Output name.
    pub name: String,
    /// Where it is in the SQL.
    pub pos: Option<Pos>,
    /// Its SQL text, for messages.
    pub text: String,
}

/// A statement bound to its table.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The table read.
    pub table: TableRef,
    /// Its columns.
    pub columns: Vec<Column>,
    /// The select list, `*` expanded.
    pub items: Vec<Item>,
    /// `WHERE`.
    pub filter: Option<Ex>,
    /// `GROUP BY` (ordinals and aliases replaced).
    pub group_by: Vec<Ex>,
    /// `HAVING`.
    pub having: Option<Ex>,
    /// `ORDER BY` expressions and whether descending.
    pub order_by: Vec<(Ex, bool)>,
    /// `LIMIT` / `FETCH`.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: u64,
    /// `SELECT DISTINCT`.
    pub distinct: bool,
}

impl Bound {
    /// Whether rows are aggregated (`GROUP BY`, aggregates or `DISTINCT`).
    pub fn is_aggregate(&self) -> bool {
        !self.group_by.is_empty()
            || self.distinct
            || self.items.iter().any(|i| i.ex.has_agg())
            || self.having.is_some()
            || self.order_by.iter().any(|(e, _)| e.has_agg())
    }
}

/// Where an AST node is, as Calcite reports positions.
pub fn pos_of(span: sqlparser::tokenizer::Span) -> Option<Pos> {
    (span.start.line > 0).then(|| Pos {
        line: span.start.line,
        column: span.start.column,
        end_line: span.end.line,
        end_column: if span.end.line == span.start.line {
            span.end.column.saturating_sub(1).max(span.start.column)
        } else {
            span.end.column.saturating_sub(1)
        },
    })
}

/// The parts of the planning context binding needs.
#[derive(Debug, Clone)]
pub struct Env {
    /// `CURRENT_TIMESTAMP` of this statement.
    pub now: i64,
    /// `sqlTimeZone`.
    pub tz: Tz,
}

/// Which text a SQL timestamp accepts, as Calcite parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeText {
    /// `TIMESTAMP '...'`: `yyyy-MM-dd HH:mm:ss[.fff]`.
    Timestamp,
    /// `DATE '...'`: `yyyy-MM-dd`.
    Date,
    /// A string cast to a timestamp (compared with `__time`): either of the above.
    Cast,
}

/// Parses SQL timestamp text in `tz` (no `T`, no offset, as Calcite requires).
pub fn timestamp_literal(s: &str, tz: &Tz, form: TimeText) -> Option<i64> {
    let t = s.trim();
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = t.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10);
    let time = t.len() >= 19
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (t.len() == 19 || (b[19] == b'.' && t.len() > 20 && digits(20..t.len())));
    let ok = match form {
        TimeText::Timestamp => date && time,
        TimeText::Date => date && t.len() == 10,
        TimeText::Cast => date && (t.len() == 10 || time),
    };
    if !ok {
        return None;
    }
    // SQL separates date and time with a space, ISO-8601 with a `T`.
    let ms = time::parse_iso(&t.replacen(' ', "T", 1)).ok()?;
    if *tz == Tz::UTC {
        return Some(ms);
    }
    let naive = DateTime::from_timestamp_millis(ms)?.naive_utc();
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.timestamp_millis())
}

fn unit_period(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_uppercase().as_str() {
        "SECOND" => "PT1S",
        "MINUTE" => "PT1M",
        "HOUR" => "PT1H",
        "DAY" => "P1D",
        "WEEK" => "P1W",
        "MONTH" => "P1M",
        "QUARTER" => "P3M",
        "YEAR" => "P1Y",
        _ => return None,
    })
}

fn field_unit(f: &DateTimeField) -> Option<&'static str> {
    match f {
        DateTimeField::Second | DateTimeField::Seconds => Some("SECOND"),
        DateTimeField::Minute | DateTimeField::Minutes => Some("MINUTE"),
        DateTimeField::Hour | DateTimeField::Hours => Some("HOUR"),
        DateTimeField::Day | DateTimeField::Days => Some("DAY"),
        DateTimeField::Week(_) | DateTimeField::Weeks => Some("WEEK"),
        DateTimeField::Month | DateTimeField::Months => Some("MONTH"),
        DateTimeField::Quarter => Some("QUARTER"),
        DateTimeField::Year | DateTimeField::Years => Some("YEAR"),
        _ => None,
    }
}

/// The largest `n` of `INTERVAL 'n' UNIT` folded (a million years at most), so that time
/// arithmetic cannot overflow.
const MAX_INTERVAL_UNITS: u64 = 1_000_000;

/// Druid SQL functions druid-local does not implement: refused as unsupported rather than as
/// unknown, since Druid would run them.
const DRUID_FUNCTIONS: &[&str] = &[
    "ABS",
    "APPROX_COUNT_DISTINCT_BUILTIN",
    "APPROX_COUNT_DISTINCT_DS_HLL",
    "APPROX_COUNT_DISTINCT_DS_THETA",
    "APPROX_QUANTILE",
    "APPROX_QUANTILE_DS",
    "APPROX_QUANTILE_FIXED_BUCKETS",
    "ARRAY_AGG",
    "BIT_AND",
    "BIT_OR",
    "BIT_XOR",
    "BLOOM_FILTER",
    "BTRIM",
    "CEIL",
    "CONTAINS_STRING",
    "DS_HLL",
    "DS_THETA",
    "DS_QUANTILES_SKETCH",
    "EARLIEST",
    "EARLIEST_BY",
    "EXP",
    "EXTRACT",
    "FLOOR",
    "GREATEST",
    "GROUPING",
    "ICONTAINS_STRING",
    "LATEST",
    "LATEST_BY",
    "LEAST",
    "LEFT",
    "LN",
    "LOG10",
    "LOOKUP",
    "LPAD",
    "LTRIM",
    "MILLIS_TO_TIMESTAMP",
    "MOD",
    "MV_CONTAINS",
    "MV_LENGTH",
    "MV_TO_ARRAY",
    "NULLIF",
    "PARSE_LONG",
    "POSITION",
    "POWER",
    "REGEXP_EXTRACT",
    "REGEXP_LIKE",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "ROUND",
    "RPAD",
    "RTRIM",
    "SQRT",
    "STDDEV",
    "STRING_AGG",
    "STRING_FORMAT",
    "STRPOS",
    "SUBSTR",
    "SUBSTRING",
    "TEXTCAT",
    "TIME_CEIL",
    "TIME_EXTRACT",
    "TIME_FORMAT",
    "TIME_IN_INTERVAL",
    "TIME_PARSE",
    "TIME_SHIFT",
    "TIMESTAMPADD",
    "TIMESTAMPDIFF",
    "TIMESTAMP_TO_MILLIS",
    "TRIM",
    "TRUNC",
    "TRUNCATE",
    "VARIANCE",
];

fn obj_name(name: &ast::ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            ObjectNamePart::Function(f) => f.name.value.clone(),
        })
        .collect()
}

/// Resolves names of one statement.
struct Binder<'a> {
    columns: &'a [Column],
    /// Table name and alias that qualify columns.
    qualifiers: Vec<String>,
    env: &'a Env,
    /// Select items by alias, for `GROUP BY`, `HAVING` and `ORDER BY`.
    aliases: Vec<(String, Ex)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    /// Table columns only (`SELECT`, `WHERE`).
    Columns,
    /// Columns, then select aliases (`GROUP BY`, `HAVING`).
    ColumnsThenAliases,
    /// Aliases, then columns (`ORDER BY`).
    AliasesThenColumns,
}

fn lit_str(e: &Ex) -> Option<&str> {
    match e {
        Ex::Lit(Val::Str(s), _) => Some(s),
        _ => None,
    }
}

fn lit_ts(e: &Ex) -> Option<i64> {
    match e {
        Ex::Lit(Val::Long(ms), SqlType::Timestamp) => Some(*ms),
        _ => None,
    }
}

impl Binder<'_> {
    fn column(&self, name: &str, names: Names) -> Option<Ex> {
        let col = || {
            self.columns
                .iter()
                .position(|c| c.name == name)
                .map(Ex::Col)
        };
        let alias = || {
            self.aliases
                .iter()
                .find(|(a, _)| a == name)
                .map(|(_, e)| e.clone())
        };
        match names {
            Names::Columns => col(),
            Names::ColumnsThenAliases => col().or_else(alias),
            Names::AliasesThenColumns => alias().or_else(col),
        }
    }

    fn ident(&self, id: &ast::Ident, names: Names) -> Result<Ex, SqlError> {
        self.column(&id.value, names).ok_or_else(|| {
            SqlError::invalid(
                format!("Column '{}' not found in any table", id.value),
                pos_of(id.span),
            )
        })
    }

    fn expr(&self, e: &Expr, names: Names) -> Result<Ex, SqlError> {
        let b = |x: &Expr| self.expr(x, names).map(Box::new);
        Ok(match e {
            Expr::Identifier(id) => self.ident(id, names)?,
            Expr::CompoundIdentifier(parts) => {
                let (col, quals) = parts.split_last().expect("compound identifiers have parts");
                let q: Vec<String> = quals.iter().map(|i| i.value.clone()).collect();
                let qualifier = q.last().cloned().unwrap_or_default();
                if !self.qualifiers.contains(&qualifier) {
                    return Err(SqlError::invalid(
                        format!("Table '{}' not found", q.join(".")),
                        pos_of(quals[0].span),
                    ));
                }
                self.ident(col, Names::Columns)?
            }
            Expr::Nested(x) => self.expr(x, names)?,
            Expr::Value(v) => literal(&v.value, pos_of(v.span))?,
            Expr::TypedString(ts) => {
                let text = match &ts.value.value {
                    SqlValue::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                let ty = ts.data_type.to_string().to_ascii_uppercase();
                if ty.starts_with("TIMESTAMP") || ty == "DATE" {
                    let (form, format) = if ty == "DATE" {
                        (TimeText::Date, "yyyy-MM-dd")
                    } else {
                        (TimeText::Timestamp, "yyyy-MM-dd HH:mm:ss")
                    };
                    let ms = timestamp_literal(&text, &self.env.tz, form).ok_or_else(|| {
                        SqlError::invalid(
                            format!("Illegal {ty} literal '{text}': not in format '{format}'"),
                            pos_of(ts.value.span),
                        )
                    })?;
                    Ex::Lit(Val::Long(ms), SqlType::Timestamp)
                } else {
                    return Err(SqlError::unsupported(format!(
                        "{ty} literals are not supported by druid-local"
                    )));
                }
            }
            Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Not => Ex::Not(b(expr)?),
                UnaryOperator::Plus => self.expr(expr, names)?,
                UnaryOperator::Minus => match self.expr(expr, names)? {
                    Ex::Lit(Val::Long(l), t) => Ex::Lit(Val::Long(-l), t),
                    Ex::Lit(Val::Double(d), t) => Ex::Lit(Val::Double(-d), t),
                    x => Ex::Neg(Box::new(x)),
                },
                other => {
                    return Err(SqlError::unsupported(format!(
                        "operator [{other}] is not supported by druid-local"
                    )))
                }
            },
            Expr::BinaryOp { left, op, right } => {
                if let Expr::Interval(iv) = right.as_ref() {
                    return self.shift(left, op, iv, names);
                }
                let op = match op {
                    BinaryOperator::Eq => BinOp::Eq,
                    BinaryOperator::NotEq => BinOp::Ne,
                    BinaryOperator::Lt => BinOp::Lt,
                    BinaryOperator::LtEq => BinOp::Le,
                    BinaryOperator::Gt => BinOp::Gt,
                    BinaryOperator::GtEq => BinOp::Ge,
                    BinaryOperator::And => BinOp::And,
                    BinaryOperator::Or => BinOp::Or,
                    BinaryOperator::Plus => BinOp::Add,
                    BinaryOperator::Minus => BinOp::Sub,
                    BinaryOperator::Multiply => BinOp::Mul,
                    BinaryOperator::Divide => BinOp::Div,
                    BinaryOperator::Modulo => BinOp::Mod,
                    BinaryOperator::StringConcat => BinOp::Concat,
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "operator [{other}] is not supported by druid-local"
                        )))
                    }
                };
                Ex::Bin(op, b(left)?, b(right)?)
            }
            Expr::IsNull(x) => Ex::IsNull(b(x)?, false),
            Expr::IsNotNull(x) => Ex::IsNull(b(x)?, true),
            Expr::In {
                expr,
                target,
                negated,
                ..
            } => match target {
                ast::InTarget::List(list) => Ex::In(
                    b(expr)?,
                    list.iter()
                        .map(|x| self.expr(x, names))
                        .collect::<Result<_, _>>()?,
                    *negated,
                ),
                _ => return Err(subqueries()),
            },
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => Ex::Between(b(expr)?, b(low)?, b(high)?, *negated),
            Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any || escape_char.is_some() {
                    return Err(SqlError::unsupported(
                        "LIKE with ESCAPE or ANY is not supported by druid-local",
                    ));
                }
                Ex::Like(b(expr)?, b(pattern)?, *negated)
            }
            Expr::Floor { expr, field } => match field {
                CeilFloorKind::DateTimeField(f) => {
                    let period = field_unit(f).and_then(unit_period).ok_or_else(|| {
                        SqlError::unsupported(format!(
                            "FLOOR to [{f}] is not supported by druid-local; use SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR"
                        ))
                    })?;
                    self.floor(b(expr)?, period.to_owned(), None, None)?
                }
                CeilFloorKind::Scale(_) => return Err(unsupported_fn("FLOOR")),
            },
            Expr::Ceil { .. } => return Err(unsupported_fn("CEIL")),
            Expr::Cast {
                expr, data_type, ..
            } => {
                let inner = self.expr(expr, names)?;
                let target = cast_type(data_type)?;
                match (&inner, target) {
                    (Ex::Lit(Val::Str(s), _), SqlType::Timestamp) => {
                        let ms = timestamp_literal(s, &self.env.tz, TimeText::Cast).ok_or_else(
                            || {
                                SqlError::invalid(
                                    format!("Illegal TIMESTAMP literal '{s}'"),
                                    pos_of(expr.span()),
                                )
                            },
                        )?;
                        Ex::Lit(Val::Long(ms), SqlType::Timestamp)
                    }
                    // A cast to the type the value has is no cast (Calcite drops it too), so
                    // Superset's TIME_FLOOR(CAST(__time AS TIMESTAMP), ...) is a time floor.
                    _ if inner.ty(self.columns) == target => inner,
                    _ => Ex::Cast(Box::new(inner), target),
                }
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Ex::Case(
                operand
                    .as_deref()
                    .map(|o| self.expr(o, names))
                    .transpose()?
                    .map(Box::new),
                conditions
                    .iter()
                    .map(|w| {
                        Ok((
                            self.expr(&w.condition, names)?,
                            self.expr(&w.result, names)?,
                        ))
                    })
                    .collect::<Result<_, SqlError>>()?,
                else_result
                    .as_deref()
                    .map(|o| self.expr(o, names))
                    .transpose()?
                    .map(Box::new),
            ),
            Expr::Function(f) => self.function(f, names)?,
            Expr::Subquery(_) | Expr::Exists { .. } => return Err(subqueries()),
            Expr::Interval(_) => return Err(SqlError::unsupported(
                "an INTERVAL is supported only added to or subtracted from a constant timestamp",
            )),
            Expr::Extract { .. } => return Err(unsupported_fn("EXTRACT")),
            Expr::Substring { .. } => return Err(unsupported_fn("SUBSTRING")),
            Expr::Trim { .. } => return Err(unsupported_fn("TRIM")),
            Expr::Position { .. } => return Err(unsupported_fn("POSITION")),
            other => {
                return Err(SqlError::unsupported(format!(
                    "the expression [{other}] is not supported by druid-local"
                )))
            }
        })
    }

    /// `<timestamp> ± INTERVAL 'n' UNIT`, folded to a constant.
    fn shift(
        &self,
        left: &Expr,
        op: &BinaryOperator,
        iv: &ast::Interval,
        names: Names,
    ) -> Result<Ex, SqlError> {
        let sign = match op {
            BinaryOperator::Plus => 1,
            BinaryOperator::Minus => -1,
            other => {
                return Err(SqlError::unsupported(format!(
                    "operator [{other}] with an INTERVAL is not supported by druid-local"
                )))
            }
        };
        let n: i64 = match iv.value.as_ref() {
            Expr::Value(v) => match &v.value {
                SqlValue::SingleQuotedString(s) | SqlValue::Number(s, _) => s.trim().parse().ok(),
                _ => None,
            },
            _ => None,
        }
        .filter(|n: &i64| iv.last_field.is_none() && n.unsigned_abs() <= MAX_INTERVAL_UNITS)
        .ok_or_else(|| {
            SqlError::unsupported(format!(
                "INTERVAL [{iv}] is not supported by druid-local; use INTERVAL 'n' <unit> with a whole n"
            ))
        })?;
        let period = iv
            .leading_field
            .as_ref()
            .and_then(field_unit)
            .and_then(unit_period)
            .and_then(|p| Period::parse(p).ok())
            .ok_or_else(|| {
                SqlError::unsupported(format!("INTERVAL [{iv}] is not supported by druid-local"))
            })?;
        let base = self.expr(left, names)?;
        let ms = lit_ts(&base).ok_or_else(|| {
            SqlError::unsupported(
                "INTERVAL arithmetic is supported on constant timestamps only (such as CURRENT_TIMESTAMP - INTERVAL '1' DAY)",
            )
        })?;
        Ok(Ex::Lit(
            Val::Long(
                period
                    .add_to(ms, sign * n, self.env.tz)
                    .map_err(|e| SqlError::invalid(e, None))?,
            ),
            SqlType::Timestamp,
        ))
    }

    fn floor(
        &self,
        arg: Box<Ex>,
        period: String,
        origin: Option<i64>,
        tz: Option<String>,
    ) -> Result<Ex, SqlError> {
        let p = Period::parse(&period)
            .map_err(|e| SqlError::invalid(format!("Invalid period [{period}]: {e}"), None))?;
        let (months, fixed) = (
            p.total_months(),
            p.total_days() * 86_400_000 + p.time_millis(),
        );
        if months < 0 || fixed < 0 || (months == 0 && fixed <= 0) {
            return Err(SqlError::invalid(
                format!("Invalid period [{period}]: a time floor needs a positive period"),
                None,
            ));
        }
        let tz = tz.unwrap_or_else(|| self.env.tz.name().to_owned());
        if tz.parse::<Tz>().is_err() {
            return Err(SqlError::invalid(format!("Invalid time zone [{tz}]"), None));
        }
        Ok(Ex::TimeFloor(arg, Floor { period, origin, tz }))
    }

    fn function(&self, f: &ast::Function, names: Names) -> Result<Ex, SqlError> {
        let name = obj_name(&f.name).join(".").to_ascii_uppercase();
        if f.over.is_some() {
            return Err(SqlError::unsupported(format!(
                "window functions ({name} ... OVER) are not supported by druid-local"
            )));
        }
        let (distinct, args, star) = match &f.args {
            FunctionArguments::None => (false, Vec::new(), false),
            FunctionArguments::Subquery(_) => return Err(subqueries()),
            FunctionArguments::List(l) => {
                if !l.clauses.is_empty() {
                    return Err(SqlError::unsupported(format!(
                        "clauses inside {name}(...) are not supported by druid-local"
                    )));
                }
                let mut star = false;
                let mut args = Vec::new();
                for a in &l.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(SqlError::unsupported(format!(
                                "argument [{a}] of {name} is not supported by druid-local"
                            )))
                        }
                    }
                }
                (
                    matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct)),
                    args,
                    star,
                )
            }
        };
        let filter = match &f.filter {
            Some(w) => Some(self.expr(w, Names::Columns)?),
            None => None,
        };
        let arity = |n: usize| -> Result<(), SqlError> {
            if args.len() == n || (star && n == 1 && args.is_empty()) {
                Ok(())
            } else {
                Err(SqlError::invalid(
                    format!("Invalid number of arguments to function '{name}'. Was expecting {n} arguments"),
                    pos_of(f.span()),
                ))
            }
        };
        let agg = |func: AggFn, arg: Option<Ex>| {
            Ok(Ex::Agg(Box::new(AggCall {
                func,
                arg,
                filter: filter.clone(),
            })))
        };
        let one = |i: usize| self.expr(args[i], names);
        match name.as_str() {
            "COUNT" => {
                if star {
                    return agg(AggFn::Count, None);
                }
                arity(1)?;
                let func = if distinct {
                    AggFn::CountDistinct
                } else {
                    AggFn::Count
                };
                return agg(func, Some(one(0)?));
            }
            "APPROX_COUNT_DISTINCT" => {
                arity(1)?;
                return agg(AggFn::CountDistinct, Some(one(0)?));
            }
            "SUM" | "MIN" | "MAX" | "AVG" => {
                arity(1)?;
                if distinct {
                    return Err(SqlError::unsupported(format!(
                        "{name}(DISTINCT ...) is not supported by druid-local"
                    )));
                }
                let func = match name.as_str() {
                    "SUM" => AggFn::Sum,
                    "MIN" => AggFn::Min,
                    "MAX" => AggFn::Max,
                    _ => AggFn::Avg,
                };
                return agg(func, Some(one(0)?));
            }
            _ => {}
        }
        if filter.is_some() || distinct {
            return Err(SqlError::invalid(
                format!("FILTER or DISTINCT given to [{name}], which is not an aggregate function"),
                pos_of(f.span()),
            ));
        }
        Ok(match name.as_str() {
            "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" | "NOW" => {
                Ex::Lit(Val::Long(self.env.now), SqlType::Timestamp)
            }
            "CURRENT_DATE" => {
                let day = Period::parse("P1D").expect("P1D is a period");
                let g = crate::time::Granularity::Period {
                    period: day,
                    tz: self.env.tz,
                    origin: None,
                };
                Ex::Lit(Val::Long(g.bucket_start(self.env.now)), SqlType::Timestamp)
            }
            "TIME_FLOOR" => {
                if !(2..=4).contains(&args.len()) {
                    arity(2)?;
                }
                let arg = Box::new(one(0)?);
                let period = lit_str(&one(1)?).map(str::to_owned).ok_or_else(|| {
                    SqlError::unsupported("TIME_FLOOR needs a literal period such as 'PT1H'")
                })?;
                let origin = match args.get(2) {
                    Some(o) => match self.expr(o, names)? {
                        Ex::Lit(Val::Null, _) => None,
                        e => Some(lit_ts(&e).ok_or_else(|| {
                            SqlError::unsupported("TIME_FLOOR needs a literal TIMESTAMP origin")
                        })?),
                    },
                    None => None,
                };
                let tz = match args.get(3) {
                    Some(z) => match self.expr(z, names)? {
                        Ex::Lit(Val::Null, _) => None,
                        e => Some(lit_str(&e).map(str::to_owned).ok_or_else(|| {
                            SqlError::unsupported("TIME_FLOOR needs a literal time zone")
                        })?),
                    },
                    None => None,
                };
                self.floor(arg, period, origin, tz)?
            }
            "DATE_TRUNC" => {
                arity(2)?;
                let unit = one(0)?;
                let period = lit_str(&unit).and_then(unit_period).ok_or_else(|| {
                    SqlError::unsupported(format!(
                        "DATE_TRUNC unit [{}] is not supported by druid-local; use 'second', 'minute', 'hour', 'day', 'week', 'month', 'quarter' or 'year'",
                        args[0]
                    ))
                })?;
                self.floor(Box::new(one(1)?), period.to_owned(), None, None)?
            }
            "TIME_PARSE" | "MILLIS_TO_TIMESTAMP" if args.len() == 1 => {
                let v = one(0)?;
                let ms = match (name.as_str(), &v) {
                    ("TIME_PARSE", Ex::Lit(Val::Str(s), _)) => time::parse_iso(s).ok(),
                    ("MILLIS_TO_TIMESTAMP", Ex::Lit(Val::Long(l), _)) => Some(*l),
                    _ => None,
                }
                .ok_or_else(|| {
                    SqlError::unsupported(format!(
                        "{name} is supported by druid-local on a literal only"
                    ))
                })?;
                Ex::Lit(Val::Long(ms), SqlType::Timestamp)
            }
            "UPPER" | "LOWER" | "CHAR_LENGTH" | "CHARACTER_LENGTH" | "LENGTH" | "STRLEN" => {
                arity(1)?;
                let func = match name.as_str() {
                    "UPPER" => Func::Upper,
                    "LOWER" => Func::Lower,
                    _ => Func::CharLength,
                };
                Ex::Func(func, vec![one(0)?])
            }
            "CONCAT" | "COALESCE" | "NVL" => {
                let func = if name == "CONCAT" {
                    Func::Concat
                } else {
                    Func::Coalesce
                };
                Ex::Func(
                    func,
                    args.iter()
                        .map(|a| self.expr(a, names))
                        .collect::<Result<_, _>>()?,
                )
            }
            n if DRUID_FUNCTIONS.contains(&n) => return Err(unsupported_fn(n)),
            n => {
                return Err(SqlError::invalid(
                    format!("No match found for function signature {n}(...)"),
                    pos_of(f.span()),
                ))
            }
        })
    }
}

fn unsupported_fn(name: &str) -> SqlError {
    SqlError::unsupported(format!("function [{name}] is not supported by druid-local"))
}

fn subqueries() -> SqlError {
    SqlError::unsupported("subqueries are not supported by druid-local")
}

fn literal(v: &SqlValue, pos: Option<Pos>) -> Result<Ex, SqlError> {
    Ok(match v {
        SqlValue::Number(s, _) => {
            if let Ok(l) = s.parse::<i64>() {
                let ty = if i32::try_from(l).is_ok() {
                    SqlType::Integer
                } else {
                    SqlType::Bigint
                };
                Ex::Lit(Val::Long(l), ty)
            } else {
                let d = s.parse::<f64>().map_err(|_| {
                    SqlError::invalid(format!("Numeric literal '{s}' out of range"), pos)
                })?;
                Ex::Lit(Val::Double(d), SqlType::Decimal)
            }
        }
        SqlValue::SingleQuotedString(s) => Ex::Lit(Val::Str(s.clone()), SqlType::Char),
        SqlValue::Boolean(b) => Ex::Lit(Val::Bool(*b), SqlType::Boolean),
        SqlValue::Null => Ex::Lit(Val::Null, SqlType::Varchar),
        SqlValue::Placeholder(_) => {
            return Err(SqlError::invalid("No value bound for parameter", pos))
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "the literal [{other}] is not supported by druid-local"
            )))
        }
    })
}

fn cast_type(t: &ast::DataType) -> Result<SqlType, SqlError> {
    let name = t.to_string().to_ascii_uppercase();
    let base = name.split(['(', ' ']).next().unwrap_or("");
    Ok(match base {
        "VARCHAR" | "CHAR" | "TEXT" | "STRING" | "CHARACTER" => SqlType::Varchar,
        "BIGINT" | "INTEGER" | "INT" | "SMALLINT" | "TINYINT" => SqlType::Bigint,
        "DOUBLE" | "FLOAT" | "REAL" | "DECIMAL" | "NUMERIC" => SqlType::Double,
        "TIMESTAMP" | "DATE" => SqlType::Timestamp,
        "BOOLEAN" | "BOOL" => SqlType::Boolean,
        _ => {
            return Err(SqlError::unsupported(format!(
                "CAST to [{name}] is not supported by druid-local"
            )))
        }
    })
}

fn const_u64(e: &Expr, what: &str) -> Result<Option<u64>, SqlError> {
    match e {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(s, _) => s.parse::<u64>().map(Some).map_err(|_| {
                SqlError::invalid(
                    format!("{what} must be a non-negative integer, got {s}"),
                    pos_of(v.span),
                )
            }),
            SqlValue::Null => Ok(None),
            other => Err(SqlError::invalid(
                format!("{what} must be a non-negative integer, got {other}"),
                pos_of(v.span),
            )),
        },
        other => Err(SqlError::unsupported(format!(
            "{what} [{other}] is not supported by druid-local; use an integer"
        ))),
    }
}

/// A positive integer literal, read as an ordinal in `GROUP BY` / `ORDER BY`.
fn ordinal(e: &Expr) -> Option<(usize, Option<Pos>)> {
    match e {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(s, _) => s.parse::<usize>().ok().map(|n| (n, pos_of(v.span))),
            _ => None,
        },
        _ => None,
    }
}

/// Binds one parsed statement.
pub fn bind(shared: &Shared, stmt: &Statement, env: &Env) -> Result<Bound, SqlError> {
    let q = match stmt {
        Statement::Query(q) => q,
        Statement::Insert(_) => {
            return Err(SqlError::invalid(
                "INSERT operations are not supported by requested SQL engine [native], consider using MSQ.",
                None,
            ))
        }
        Statement::Explain { .. } | Statement::ExplainTable { .. } => {
            return Err(SqlError::unsupported(
                "EXPLAIN is not supported by druid-local",
            ))
        }
        other => {
            let word = other.to_string();
            let word = word.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            return Err(SqlError::unsupported(format!(
                "{word} statements are not supported by druid-local; only SELECT is"
            )));
        }
    };
    if q.with.is_some() {
        return Err(SqlError::unsupported(
            "WITH (common table expressions) is not supported by druid-local",
        ));
    }
    let select = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { op, .. } => {
            return Err(SqlError::unsupported(format!(
                "{op} is not supported by druid-local"
            )))
        }
        SetExpr::Query(_) => return Err(subqueries()),
        SetExpr::Values(_) => {
            return Err(SqlError::unsupported(
                "VALUES is not supported by druid-local",
            ))
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "[{other}] is not supported by druid-local"
            )))
        }
    };
    if select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.connect_by.is_empty()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
    {
        return Err(SqlError::unsupported(
            "this SELECT clause is not supported by druid-local",
        ));
    }
    // FROM: one table, no joins.
    let (table, columns, qualifiers) = match select.from.as_slice() {
        [] => (TableRef::Nothing, Vec::new(), Vec::new()),
        [twj] => {
            if !twj.joins.is_empty() {
                return Err(SqlError::unsupported(
                    "JOIN is not supported by druid-local",
                ));
            }
            match &twj.relation {
                TableFactor::Table {
                    name, alias, args, ..
                } => {
                    if args.is_some() {
                        return Err(SqlError::unsupported(
                            "table functions (such as EXTERN or APPEND) are not supported by druid-local",
                        ));
                    }
                    let parts = obj_name(name);
                    let (t, cols) = catalog::resolve(shared, &parts, pos_of(name.span()))?;
                    let mut quals = vec![parts.last().cloned().unwrap_or_default()];
                    if let Some(a) = alias {
                        quals.push(a.name.value.clone());
                    }
                    (t, cols, quals)
                }
                TableFactor::Derived { .. } => return Err(subqueries()),
                _ => {
                    return Err(SqlError::unsupported(
                        "this FROM source is not supported by druid-local; name one table",
                    ))
                }
            }
        }
        _ => {
            return Err(SqlError::unsupported(
                "JOIN (several tables in FROM) is not supported by druid-local",
            ))
        }
    };
    let mut binder = Binder {
        columns: &columns,
        qualifiers,
        env,
        aliases: Vec::new(),
    };
    let distinct = match &select.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(Distinct::On(_)) => {
            return Err(SqlError::unsupported(
                "DISTINCT ON is not supported by druid-local",
            ))
        }
    };
    let mut items = Vec::new();
    for (i, item) in select.projection.iter().enumerate() {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                if table == TableRef::Nothing {
                    return Err(SqlError::invalid(
                        "SELECT * requires a FROM clause",
                        pos_of(item.span()),
                    ));
                }
                for (c, col) in columns.iter().enumerate() {
                    items.push(Item {
                        ex: Ex::Col(c),
                        name: col.name.clone(),
                        pos: pos_of(item.span()),
                        text: col.name.clone(),
                    });
                }
            }
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let ex = binder.expr(e, Names::Columns)?;
                let name = match item {
                    SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                    _ => match e {
                        Expr::Identifier(id) => id.value.clone(),
                        Expr::CompoundIdentifier(p) => {
                            p.last().map(|i| i.value.clone()).unwrap_or_default()
                        }
                        _ => format!("EXPR${i}"),
                    },
                };
                items.push(Item {
                    ex,
                    name,
                    pos: pos_of(e.span()),
                    text: e.to_string(),
                });
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "select item [{other}] is not supported by druid-local"
                )))
            }
        }
    }
    binder.aliases = items
        .iter()
        .map(|i| (i.name.clone(), i.ex.clone()))
        .collect();
    let by_ordinal = |n: usize, pos: Option<Pos>| -> Result<Ex, SqlError> {
        items
            .get(n.wrapping_sub(1))
            .map(|i| i.ex.clone())
            .ok_or_else(|| SqlError::invalid(format!("Ordinal out of range: {n}"), pos))
    };
    let filter = match &select.selection {
        Some(w) => {
            let f = binder.expr(w, Names::Columns)?;
            if f.has_agg() {
                return Err(SqlError::invalid(
                    "Aggregate expression is illegal in WHERE clause",
                    pos_of(w.span()),
                ));
            }
            Some(f)
        }
        None => None,
    };
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(SqlError::unsupported(
                    "GROUP BY modifiers (ROLLUP, CUBE, GROUPING SETS) are not supported by druid-local",
                ));
            }
            exprs
                .iter()
                .map(|e| match ordinal(e) {
                    Some((n, pos)) => by_ordinal(n, pos),
                    None => match e {
                        Expr::GroupingSets(_) | Expr::Cube(_) | Expr::Rollup(_) => {
                            Err(SqlError::unsupported(
                                "GROUPING SETS, CUBE and ROLLUP are not supported by druid-local",
                            ))
                        }
                        _ => binder.expr(e, Names::ColumnsThenAliases),
                    },
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        GroupByExpr::All(_) => {
            return Err(SqlError::unsupported(
                "GROUP BY ALL is not supported by druid-local",
            ))
        }
    };
    let having = select
        .having
        .as_ref()
        .map(|h| binder.expr(h, Names::ColumnsThenAliases))
        .transpose()?;
    let mut order_by = Vec::new();
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(list) = &ob.kind else {
            return Err(SqlError::unsupported(
                "ORDER BY ALL is not supported by druid-local",
            ));
        };
        for o in list {
            let ex = match ordinal(&o.expr) {
                Some((n, pos)) => by_ordinal(n, pos)?,
                None => binder.expr(&o.expr, Names::AliasesThenColumns)?,
            };
            let desc = match &o.options.sort {
                None | Some(ast::OrderBySort::Asc) => false,
                Some(ast::OrderBySort::Desc) => true,
                Some(other) => {
                    return Err(SqlError::unsupported(format!(
                        "ORDER BY [{other:?}] is not supported by druid-local"
                    )))
                }
            };
            order_by.push((ex, desc));
        }
    }
    let (mut limit, mut offset) = (None, 0);
    match &q.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset {
            limit: l,
            offset: o,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::unsupported(
                    "LIMIT BY is not supported by druid-local",
                ));
            }
            if let Some(l) = l {
                limit = const_u64(l, "LIMIT")?;
            }
            if let Some(o) = o {
                offset = const_u64(&o.value, "OFFSET")?.unwrap_or(0);
            }
        }
        Some(LimitClause::OffsetCommaLimit { .. }) => {
            return Err(SqlError::unsupported(
                "LIMIT offset, count is not supported by druid-local; use LIMIT n OFFSET m",
            ))
        }
    }
    if let Some(f) = &q.fetch {
        if f.percent || f.with_ties {
            return Err(SqlError::unsupported(
                "FETCH ... PERCENT / WITH TIES is not supported by druid-local",
            ));
        }
        if let Some(n) = &f.quantity {
            limit = const_u64(n, "FETCH")?;
        }
    }
    let bound = Bound {
        table,
        columns: columns.clone(),
        items,
        filter,
        group_by,
        having,
        order_by,
        limit,
        offset,
        distinct,
    };
    check_grouped(&bound)?;
    Ok(bound)
}

/// In an aggregating statement, every column outside an aggregate must be a grouping key, as
/// Druid's validator requires.
fn check_grouped(b: &Bound) -> Result<(), SqlError> {
    if !b.is_aggregate() {
        return Ok(());
    }
    let keys: Vec<Ex> = if b.distinct && b.group_by.is_empty() {
        b.items.iter().map(|i| i.ex.clone()).collect()
    } else {
        b.group_by.clone()
    };
    fn ungrouped(e: &Ex, keys: &[Ex]) -> Option<usize> {
        if keys.contains(e) {
            return None;
        }
        match e {
            Ex::Col(i) => Some(*i),
            Ex::Agg(_) | Ex::Lit(..) => None,
            Ex::Bin(_, a, b) | Ex::Like(a, b, _) => {
                ungrouped(a, keys).or_else(|| ungrouped(b, keys))
            }
            Ex::Not(a) | Ex::Neg(a) | Ex::IsNull(a, _) | Ex::TimeFloor(a, _) | Ex::Cast(a, _) => {
                ungrouped(a, keys)
            }
            Ex::In(a, list, _) => {
                ungrouped(a, keys).or_else(|| list.iter().find_map(|x| ungrouped(x, keys)))
            }
            Ex::Between(a, x, y, _) => ungrouped(a, keys)
                .or_else(|| ungrouped(x, keys))
                .or_else(|| ungrouped(y, keys)),
            Ex::Func(_, args) => args.iter().find_map(|x| ungrouped(x, keys)),
            Ex::Case(op, whens, other) => op
                .as_deref()
                .and_then(|o| ungrouped(o, keys))
                .or_else(|| {
                    whens
                        .iter()
                        .find_map(|(w, t)| ungrouped(w, keys).or_else(|| ungrouped(t, keys)))
                })
                .or_else(|| other.as_deref().and_then(|o| ungrouped(o, keys))),
        }
    }
    for item in &b.items {
        if let Some(c) = ungrouped(&item.ex, &keys) {
            return Err(SqlError::invalid(
                format!("Expression '{}' is not being grouped", b.columns[c].name),
                item.pos,
            ));
        }
    }
    for e in b.having.iter().chain(b.order_by.iter().map(|(e, _)| e)) {
        if let Some(c) = ungrouped(e, &keys) {
            return Err(SqlError::invalid(
                format!("Expression '{}' is not being grouped", b.columns[c].name),
                None,
            ));
        }
    }
    Ok(())
}
