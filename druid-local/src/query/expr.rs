//! Druid's native expression language, the subset druid-local evaluates: literals, column
//! references (bare or double-quoted), arithmetic, comparison and logical operators, and the
//! functions `nvl`, `if`, `isnull`, `notnull`, `concat`, `lower`, `upper`, `strlen`. Values
//! follow legacy null handling (`""` is null, a null number reads as 0).

use super::QueryError;
use crate::task::parse::java_double;
use crate::task::rollup::{Column, DimValue, Index};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `null` (or `''`).
    Null,
    /// A string literal.
    Str(String),
    /// An integer literal.
    Long(i64),
    /// A floating-point literal.
    Double(f64),
    /// A column reference.
    Column(String),
    /// `-x` or `!x`.
    Unary(char, Box<Expr>),
    /// A binary operator (`+ - * / % < <= > >= == != && ||`).
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(&'static str, Vec<Expr>),
}

/// Functions druid-local evaluates, with their argument counts (`None`: one or more).
const FUNCTIONS: [(&str, Option<usize>); 8] = [
    ("nvl", Some(2)),
    ("if", Some(3)),
    ("isnull", Some(1)),
    ("notnull", Some(1)),
    ("concat", None),
    ("lower", Some(1)),
    ("upper", Some(1)),
    ("strlen", Some(1)),
];

/// Binary operators by precedence level, loosest first.
const LEVELS: [&[&str]; 5] = [
    &["||"],
    &["&&"],
    &["<=", ">=", "==", "!=", "<", ">"],
    &["+", "-"],
    &["*", "/", "%"],
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

const OPS: [&str; 16] = [
    "<=", ">=", "==", "!=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "^", "=",
];

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated {c}-quoted text")),
                    Some('\\') => {
                        let esc = chars.get(i + 1).copied().ok_or("dangling escape")?;
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(d) if *d == c => {
                        i += 1;
                        break;
                    }
                    Some(d) => {
                        s.push(*d);
                        i += 1;
                    }
                }
            }
            out.push(if c == '"' {
                Tok::Quoted(s)
            } else {
                Tok::Str(s)
            });
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || ((chars[i] == 'e' || chars[i] == 'E') && i > start)
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| format!("unexpected character [{c}]"))?;
            if *op == "^" || *op == "=" {
                return Err(format!("operator [{op}] is not supported by druid-local"));
            }
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        while let Some(Tok::Op(op)) = self.peek() {
            let Some(op) = LEVELS[level].iter().find(|o| *o == op).copied() else {
                break;
            };
            self.pos += 1;
            let rhs = self.binary(level + 1)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Tok::Op("-")) => {
                self.pos += 1;
                Ok(match self.unary()? {
                    Expr::Long(l) => Expr::Long(-l),
                    Expr::Double(d) => Expr::Double(-d),
                    e => Expr::Unary('-', Box::new(e)),
                })
            }
            Some(Tok::Op("!")) => {
                self.pos += 1;
                Ok(Expr::Unary('!', Box::new(self.unary()?)))
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Num(n)) => {
                if let Ok(l) = n.parse::<i64>() {
                    Ok(Expr::Long(l))
                } else {
                    n.parse::<f64>()
                        .map(Expr::Double)
                        .map_err(|_| format!("invalid number [{n}]"))
                }
            }
            Some(Tok::Str(s)) if s.is_empty() => Ok(Expr::Null),
            Some(Tok::Str(s)) => Ok(Expr::Str(s)),
            Some(Tok::Quoted(s)) => Ok(Expr::Column(s)),
            Some(Tok::Ident(name)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    return self.call(&name);
                }
                Ok(if name == "null" {
                    Expr::Null
                } else {
                    Expr::Column(name)
                })
            }
            Some(Tok::LParen) => {
                let e = self.binary(0)?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing `)`".into()),
                }
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end of expression".into()),
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, String> {
        let Some((fname, arity)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
            return Err(format!(
                "function [{name}] is not supported by druid-local; supported: {}",
                FUNCTIONS.map(|(f, _)| f).join(", ")
            ));
        };
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.binary(0)?);
                match self.next() {
                    Some(Tok::Comma) => {}
                    Some(Tok::RParen) => break,
                    _ => return Err(format!("expected `,` or `)` in call to [{name}]")),
                }
            }
        }
        let ok = match arity {
            Some(n) => args.len() == *n,
            None => !args.is_empty(),
        };
        if !ok {
            return Err(format!(
                "function [{name}] needs {} argument(s), got {}",
                arity.map_or("1 or more".to_owned(), |n| n.to_string()),
                args.len()
            ));
        }
        Ok(Expr::Call(fname, args))
    }
}

impl Expr {
    /// Parses an expression; an unsupported operator or function is a 501 naming it.
    pub fn parse(src: &str) -> Result<Expr, QueryError> {
        let wrap = |e: String| {
            if e.contains("not supported") {
                QueryError::unsupported(format!("expression [{src}]: {e}"))
            } else {
                QueryError::invalid(format!("invalid expression [{src}]: {e}"))
            }
        };
        let mut p = Parser {
            toks: lex(src).map_err(wrap)?,
            pos: 0,
        };
        let e = p.binary(0).map_err(wrap)?;
        if let Some(t) = p.peek() {
            return Err(wrap(format!("unexpected {t:?} after the expression")));
        }
        Ok(e)
    }

    /// Column names the expression reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Column(c) if !out.contains(c) => out.push(c.clone()),
            Expr::Unary(_, e) => e.columns(out),
            Expr::Binary(_, a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.columns(out)),
            _ => {}
        }
    }

    /// Binds column references to one index.
    pub fn bind<'a>(&'a self, idx: &'a Index) -> Bound<'a> {
        let mut names = Vec::new();
        self.columns(&mut names);
        let cols = names
            .into_iter()
            .map(|n| {
                let src = if n == "__time" {
                    Source::Time
                } else if let Some(d) = idx.dim_index(&n) {
                    Source::Dim(d)
                } else if let Some(j) = idx.metric_index(&n) {
                    Source::Metric(j)
                } else {
                    Source::Missing
                };
                (n, src)
            })
            .collect();
        Bound {
            expr: self,
            idx,
            cols,
        }
    }
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// Null (also the empty string).
    Null,
    /// A non-empty string.
    Str(String),
    /// A long.
    Long(i64),
    /// A double.
    Double(f64),
}

impl Val {
    fn string(s: String) -> Val {
        if s.is_empty() {
            Val::Null
        } else {
            Val::Str(s)
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// As text (numbers as Java prints them); `None` for null.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Str(s) => Some(s.clone()),
            Val::Long(l) => Some(l.to_string()),
            Val::Double(d) => Some(java_double(*d)),
        }
    }

    fn as_double(&self) -> f64 {
        match self {
            Val::Null => 0.0,
            Val::Str(s) => s.trim().parse().unwrap_or(0.0),
            Val::Long(l) => *l as f64,
            Val::Double(d) => *d,
        }
    }

    fn as_long(&self) -> i64 {
        match self {
            Val::Long(l) => *l,
            Val::Str(s) => s
                .trim()
                .parse::<i64>()
                .unwrap_or_else(|_| self.as_double() as i64),
            other => other.as_double() as i64,
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Str(s) => s.eq_ignore_ascii_case("true"),
            Val::Long(l) => *l > 0,
            Val::Double(d) => *d > 0.0,
        }
    }

    /// Whether a numeric operation on these operands stays in longs.
    fn long_pair(a: &Val, b: &Val) -> bool {
        let is_long = |v: &Val| match v {
            Val::Long(_) | Val::Null => true,
            Val::Str(s) => s.trim().parse::<i64>().is_ok(),
            Val::Double(_) => false,
        };
        is_long(a) && is_long(b)
    }
}

fn bool_val(b: bool) -> Val {
    Val::Long(i64::from(b))
}

#[derive(Debug)]
enum Source {
    Dim(usize),
    Metric(usize),
    Time,
    Missing,
}

/// An expression bound to one index.
#[derive(Debug)]
pub struct Bound<'a> {
    expr: &'a Expr,
    idx: &'a Index,
    cols: Vec<(String, Source)>,
}

impl Bound<'_> {
    /// Evaluates at `row`; a multi-value input is refused by name.
    pub fn eval(&self, row: usize) -> Result<Val, QueryError> {
        self.eval_expr(self.expr, row)
    }

    fn column(&self, name: &str, row: usize) -> Result<Val, QueryError> {
        let src = self.cols.iter().find(|(n, _)| n == name).map(|(_, s)| s);
        Ok(match src {
            Some(Source::Dim(d)) => match self.idx.dim_value(*d, row) {
                DimValue::Null => Val::Null,
                DimValue::One(s) => Val::string(s.to_string()),
                DimValue::Multi(_) => {
                    return Err(QueryError::unsupported(format!(
                        "expressions over multi-value dimension [{name}] are not supported by druid-local"
                    )))
                }
            },
            Some(Source::Metric(j)) if self.idx.metric_is_null(*j, row) => Val::Null,
            Some(Source::Metric(j)) => match &self.idx.metric_cols[*j] {
                Column::Long(v) => Val::Long(v[row]),
                Column::Double(v) => Val::Double(v[row]),
            },
            Some(Source::Time) => Val::Long(self.idx.times[row]),
            Some(Source::Missing) | None => Val::Null,
        })
    }

    fn eval_expr(&self, e: &Expr, row: usize) -> Result<Val, QueryError> {
        Ok(match e {
            Expr::Null => Val::Null,
            Expr::Str(s) => Val::string(s.clone()),
            Expr::Long(l) => Val::Long(*l),
            Expr::Double(d) => Val::Double(*d),
            Expr::Column(c) => self.column(c, row)?,
            Expr::Unary(op, x) => {
                let v = self.eval_expr(x, row)?;
                match (op, &v) {
                    ('!', _) => bool_val(!v.truthy()),
                    (_, Val::Double(d)) => Val::Double(-d),
                    _ => Val::Long(v.as_long().wrapping_neg()),
                }
            }
            Expr::Binary(op, a, b) => {
                let x = self.eval_expr(a, row)?;
                if *op == "&&" {
                    return Ok(bool_val(x.truthy() && self.eval_expr(b, row)?.truthy()));
                }
                if *op == "||" {
                    return Ok(bool_val(x.truthy() || self.eval_expr(b, row)?.truthy()));
                }
                let y = self.eval_expr(b, row)?;
                binary(op, &x, &y)
            }
            Expr::Call(f, args) => {
                let arg = |i: usize| self.eval_expr(&args[i], row);
                match *f {
                    "nvl" => {
                        let v = arg(0)?;
                        if v.is_null() {
                            arg(1)?
                        } else {
                            v
                        }
                    }
                    "if" => {
                        if arg(0)?.truthy() {
                            arg(1)?
                        } else {
                            arg(2)?
                        }
                    }
                    "isnull" => bool_val(arg(0)?.is_null()),
                    "notnull" => bool_val(!arg(0)?.is_null()),
                    "concat" => {
                        let mut s = String::new();
                        for i in 0..args.len() {
                            s.push_str(&arg(i)?.as_text().unwrap_or_default());
                        }
                        Val::string(s)
                    }
                    "lower" => arg(0)?
                        .as_text()
                        .map_or(Val::Null, |s| Val::string(s.to_lowercase())),
                    "upper" => arg(0)?
                        .as_text()
                        .map_or(Val::Null, |s| Val::string(s.to_uppercase())),
                    _ => Val::Long(
                        arg(0)?
                            .as_text()
                            .map_or(0, |s| s.encode_utf16().count() as i64),
                    ),
                }
            }
        })
    }
}

fn binary(op: &str, x: &Val, y: &Val) -> Val {
    let strings = matches!((x, y), (Val::Str(_) | Val::Null, Val::Str(_) | Val::Null))
        && !(x.is_null() && y.is_null());
    match op {
        "==" | "!=" | "<" | "<=" | ">" | ">=" => {
            let ord = if strings {
                x.as_text().cmp(&y.as_text())
            } else {
                x.as_double()
                    .partial_cmp(&y.as_double())
                    .unwrap_or(std::cmp::Ordering::Less)
            };
            bool_val(match op {
                "==" => ord.is_eq(),
                "!=" => ord.is_ne(),
                "<" => ord.is_lt(),
                "<=" => ord.is_le(),
                ">" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "+" if matches!(x, Val::Str(_)) || matches!(y, Val::Str(_)) => Val::string(format!(
            "{}{}",
            x.as_text().unwrap_or_default(),
            y.as_text().unwrap_or_default()
        )),
        _ if Val::long_pair(x, y) => {
            let (a, b) = (x.as_long(), y.as_long());
            match op {
                "+" => Val::Long(a.wrapping_add(b)),
                "-" => Val::Long(a.wrapping_sub(b)),
                "*" => Val::Long(a.wrapping_mul(b)),
                "/" => a.checked_div(b).map_or(Val::Null, Val::Long),
                _ => a.checked_rem(b).map_or(Val::Null, Val::Long),
            }
        }
        _ => {
            let (a, b) = (x.as_double(), y.as_double());
            Val::Double(match op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "/" => a / b,
                _ => a % b,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{AggKind, MetricSpec};
    use crate::task::rollup::{Num, RowDims};

    fn index() -> Index {
        let metrics = [MetricSpec {
            kind: AggKind::LongSum,
            name: "added".into(),
            field: Some("added".into()),
        }];
        let mut idx = Index::new(&["language".into(), "page".into()], &metrics, true);
        idx.add(
            0,
            0,
            RowDims::Fixed(vec![DimValue::One("en".into()), DimValue::Null]),
            &[Num::Long(7)],
        );
        idx
    }

    fn eval(src: &str) -> Val {
        let idx = index();
        let e = Expr::parse(src).unwrap();
        let v = e.bind(&idx).eval(0).unwrap();
        v
    }

    #[test]
    fn parses_precedence_and_quoting() {
        assert_eq!(
            Expr::parse("a + 2 * \"b c\" == 'x' && !d").unwrap(),
            Expr::Binary(
                "&&",
                Box::new(Expr::Binary(
                    "==",
                    Box::new(Expr::Binary(
                        "+",
                        Box::new(Expr::Column("a".into())),
                        Box::new(Expr::Binary(
                            "*",
                            Box::new(Expr::Long(2)),
                            Box::new(Expr::Column("b c".into()))
                        ))
                    )),
                    Box::new(Expr::Str("x".into()))
                )),
                Box::new(Expr::Unary('!', Box::new(Expr::Column("d".into()))))
            )
        );
    }

    #[test]
    fn evaluates_columns_functions_and_operators() {
        assert_eq!(eval("nvl(\"page\", \"language\")"), Val::Str("en".into()));
        assert_eq!(eval("nvl(language, 'x')"), Val::Str("en".into()));
        assert_eq!(eval("added * 2 + 1"), Val::Long(15));
        assert_eq!(eval("added / 2.0"), Val::Double(3.5));
        assert_eq!(eval("added / 0"), Val::Null);
        assert_eq!(eval("language == 'en' && isnull(page)"), Val::Long(1));
        assert_eq!(
            eval("concat(language, '-', added)"),
            Val::Str("en-7".into())
        );
        assert_eq!(
            eval("if(added > 10, 'big', upper(language))"),
            Val::Str("EN".into())
        );
        assert_eq!(eval("strlen(nosuch)"), Val::Long(0));
        assert_eq!(eval("-added"), Val::Long(-7));
    }

    #[test]
    fn refuses_unknown_functions_and_bad_syntax() {
        let e = Expr::parse("regexp_extract(page, 'x')").unwrap_err();
        assert!(e.message.contains("regexp_extract"), "{}", e.message);
        assert!(Expr::parse("a ==").is_err());
        assert!(Expr::parse("(a").is_err());
        assert!(Expr::parse("a ^ 2").is_err());
    }
}
