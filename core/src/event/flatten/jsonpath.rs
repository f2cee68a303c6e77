//! JSONPath as Druid's `path` fields read it: Jayway JsonPath with exceptions suppressed.
//!
//! What users write is understood: `$.a.b`, `$['a']['b c']`, `$.a[0]`, `$.a[-1]`, `$.a[0,2]`,
//! `$.a[1:3]`, `$.a[*].b`, `$.*`, `$..b`, filters such as `$.tags[?(@.key == 'env')].value`
//! (`==`, `!=`, `<`, `<=`, `>`, `>=`, `=~ /regex/i`, `in`, `nin`, `&&`, `||`, `!`, and a bare
//! path for "exists"), and the aggregate functions `length()`, `min()`, `max()`, `avg()`,
//! `sum()` and `stddev()` at the end. A path without a leading `$` is read from the root, as
//! Jayway does. Anything else is refused when the spec is read, saying what.
//!
//! Results follow Jayway: a definite path (no wildcard, scan, filter, slice or list of indexes)
//! gives the one value it points at, or null when there is none; any other path gives the list
//! of what it matched, possibly empty.

use std::borrow::Cow;

use fancy_regex::Regex;
use serde_json::{Map, Value};

/// A compiled path.
#[derive(Debug, Clone)]
pub(super) struct JsonPath {
    tokens: Vec<Token>,
    function: Option<Function>,
    definite: bool,
    /// Only single names and indexes: read by walking, without collecting matches.
    simple: bool,
}

#[derive(Debug, Clone)]
enum Token {
    /// `.a`, `['a']`, or `['a','b']` (merged into one object when it ends the path).
    Props(Vec<String>),
    /// `.*` or `[*]`.
    Wildcard,
    /// `[0]`, `[-1]`, `[0,2]`.
    Indexes(Vec<i64>),
    /// `[1:3]`, `[:2]`, `[-2:]`.
    Slice(Option<i64>, Option<i64>),
    /// `..`: what follows applies at every depth.
    Scan,
    /// `[?(...)]`.
    Filter(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Length,
    Min,
    Max,
    Avg,
    Sum,
    Stddev,
}

#[derive(Debug, Clone)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Exists(Operand),
    Compare(Operand, Op, Operand),
}

#[derive(Debug, Clone)]
enum Operand {
    /// `@...` (relative to the item tested) or `$...` (from the document's root).
    Path {
        absolute: bool,
        path: JsonPath,
    },
    Literal(Value),
    Regex(Box<Regex>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    In,
    Nin,
}

impl JsonPath {
    /// Compiles `expr`; the error says what is wrong and where.
    pub(super) fn compile(expr: &str) -> Result<Self, String> {
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Err("the path is empty".into());
        }
        let text: Cow<'_, str> = if trimmed.starts_with('$') || trimmed.starts_with('@') {
            Cow::Borrowed(trimmed)
        } else {
            Cow::Owned(format!("$.{trimmed}"))
        };
        let mut parser = Parser {
            text: &text,
            at: 1,
            in_filter: false,
        };
        let path = parser.path()?;
        if parser.at < text.len() {
            return Err(parser.error("unexpected character"));
        }
        Ok(path)
    }

    /// The value `doc` holds at this path, the way Jayway answers: `None` when a definite path
    /// leads nowhere.
    pub(super) fn read<'a>(&self, doc: &'a Value) -> Option<Cow<'a, Value>> {
        self.read_from(doc, doc)
    }

    fn read_from<'a>(&self, node: &'a Value, root: &'a Value) -> Option<Cow<'a, Value>> {
        if self.simple {
            return self
                .tokens
                .iter()
                .try_fold(node, |node, token| match (token, node) {
                    (Token::Props(names), Value::Object(o)) => o.get(&names[0]),
                    (Token::Indexes(i), Value::Array(items)) => index(items, i[0]),
                    _ => None,
                })
                .map(Cow::Borrowed);
        }
        let mut out = Vec::new();
        walk(&self.tokens, node, root, &mut out);
        let found = if self.definite {
            out.into_iter().next()?
        } else {
            Cow::Owned(Value::Array(out.into_iter().map(Cow::into_owned).collect()))
        };
        match self.function {
            None => Some(found),
            Some(f) => f.apply(&found).map(Cow::Owned),
        }
    }
}

/// Appends to `out` what `tokens` match from `node`.
fn walk<'a>(tokens: &[Token], node: &'a Value, root: &'a Value, out: &mut Vec<Cow<'a, Value>>) {
    let Some((token, rest)) = tokens.split_first() else {
        out.push(Cow::Borrowed(node));
        return;
    };
    match token {
        Token::Props(names) => {
            let Value::Object(object) = node else { return };
            if names.len() > 1 && rest.is_empty() {
                let merged: Map<String, Value> = names
                    .iter()
                    .filter_map(|n| object.get(n).map(|v| (n.clone(), v.clone())))
                    .collect();
                out.push(Cow::Owned(Value::Object(merged)));
                return;
            }
            for name in names {
                if let Some(v) = object.get(name) {
                    walk(rest, v, root, out);
                }
            }
        }
        Token::Wildcard => match node {
            Value::Object(object) => object.values().for_each(|v| walk(rest, v, root, out)),
            Value::Array(items) => items.iter().for_each(|v| walk(rest, v, root, out)),
            _ => {}
        },
        Token::Indexes(indexes) => {
            let Value::Array(items) = node else { return };
            for &i in indexes {
                if let Some(v) = index(items, i) {
                    walk(rest, v, root, out);
                }
            }
        }
        Token::Slice(from, to) => {
            let Value::Array(items) = node else { return };
            let len = items.len() as i64;
            let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
            let start = clamp(from.unwrap_or(0));
            let end = clamp(to.unwrap_or(len));
            for v in items.iter().take(end.max(0) as usize).skip(start as usize) {
                walk(rest, v, root, out);
            }
        }
        Token::Scan => scan(rest, node, root, out),
        Token::Filter(expr) => match node {
            Value::Object(_) if expr.test(node, root) => walk(rest, node, root, out),
            Value::Array(items) => {
                for v in items.iter().filter(|v| expr.test(v, root)) {
                    walk(rest, v, root, out);
                }
            }
            _ => {}
        },
    }
}

/// `..` then `rest`: applied at `node` and at every container below it, in document order.
fn scan<'a>(rest: &[Token], node: &'a Value, root: &'a Value, out: &mut Vec<Cow<'a, Value>>) {
    match rest.first() {
        // A filter under a scan tests each object once, not again through its array.
        Some(Token::Filter(expr)) => {
            if node.is_object() && expr.test(node, root) {
                walk(&rest[1..], node, root, out);
            }
        }
        _ => walk(rest, node, root, out),
    }
    let children: Box<dyn Iterator<Item = &'a Value>> = match node {
        Value::Object(object) => Box::new(object.values()),
        Value::Array(items) => Box::new(items.iter()),
        _ => return,
    };
    for child in children.filter(|c| c.is_object() || c.is_array()) {
        scan(rest, child, root, out);
    }
}

fn index(items: &[Value], i: i64) -> Option<&Value> {
    let i = if i < 0 { items.len() as i64 + i } else { i };
    usize::try_from(i).ok().and_then(|i| items.get(i))
}

impl Function {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "length" => Self::Length,
            "min" => Self::Min,
            "max" => Self::Max,
            "avg" => Self::Avg,
            "sum" => Self::Sum,
            "stddev" => Self::Stddev,
            _ => return None,
        })
    }

    fn apply(self, value: &Value) -> Option<Value> {
        if self == Self::Length {
            return match value {
                Value::Array(items) => Some(Value::from(items.len() as i64)),
                Value::Object(object) => Some(Value::from(object.len() as i64)),
                _ => None,
            };
        }
        let Value::Array(items) = value else {
            return None;
        };
        let numbers: Vec<f64> = items.iter().filter_map(Value::as_f64).collect();
        if numbers.is_empty() {
            return None;
        }
        let count = numbers.len() as f64;
        let sum: f64 = numbers.iter().sum();
        let result = match self {
            Self::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
            Self::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Self::Sum => sum,
            Self::Avg => sum / count,
            Self::Stddev => {
                let mean = sum / count;
                let squares: f64 = numbers.iter().map(|x| x * x).sum();
                (squares / count - mean * mean).max(0.0).sqrt()
            }
            Self::Length => return None,
        };
        serde_json::Number::from_f64(result).map(Value::Number)
    }
}

impl Expr {
    fn test(&self, item: &Value, root: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.test(item, root) || b.test(item, root),
            Expr::And(a, b) => a.test(item, root) && b.test(item, root),
            Expr::Not(e) => !e.test(item, root),
            Expr::Exists(operand) => operand.resolve(item, root).is_some(),
            Expr::Compare(left, op, right) => {
                let l = left.resolve(item, root);
                if let (Op::Match, Operand::Regex(re)) = (op, right) {
                    return matches!(l.as_deref(), Some(Value::String(s)) if re.is_match(s).unwrap_or(false));
                }
                let r = right.resolve(item, root);
                compare(l.as_deref(), *op, r.as_deref())
            }
        }
    }
}

impl Operand {
    fn resolve<'a>(&'a self, item: &'a Value, root: &'a Value) -> Option<Cow<'a, Value>> {
        match self {
            Operand::Path { absolute, path } => {
                path.read_from(if *absolute { root } else { item }, root)
            }
            Operand::Literal(v) => Some(Cow::Borrowed(v)),
            Operand::Regex(_) => None,
        }
    }
}

/// Jayway's comparisons: like with like (numbers by value, strings by text), anything else
/// unequal and unordered; an undefined side is unequal to everything.
fn compare(left: Option<&Value>, op: Op, right: Option<&Value>) -> bool {
    let equal = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    };
    match op {
        Op::Eq => matches!((left, right), (Some(a), Some(b)) if equal(a, b)),
        Op::Ne => !matches!((left, right), (Some(a), Some(b)) if equal(a, b)),
        Op::In | Op::Nin => {
            let found = match (left, right) {
                (Some(a), Some(Value::Array(items))) => items.iter().any(|b| equal(a, b)),
                _ => false,
            };
            found == (op == Op::In)
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ordering = match (left, right) {
                (Some(Value::Number(x)), Some(Value::Number(y))) => x
                    .as_f64()
                    .zip(y.as_f64())
                    .and_then(|(x, y)| x.partial_cmp(&y)),
                (Some(Value::String(x)), Some(Value::String(y))) => Some(x.cmp(y)),
                _ => None,
            };
            ordering.is_some_and(|o| match op {
                Op::Lt => o.is_lt(),
                Op::Le => o.is_le(),
                Op::Gt => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        Op::Match => false,
    }
}

/// A cursor over a path's text.
struct Parser<'t> {
    text: &'t str,
    at: usize,
    /// Inside a filter, a path also ends at an operator, a comma or a closing parenthesis.
    in_filter: bool,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let rest: String = self.text[self.at.min(self.text.len())..]
            .chars()
            .take(12)
            .collect();
        if rest.is_empty() {
            format!("{what} at the end of '{}'", self.text)
        } else {
            format!(
                "{what} at '{rest}' (position {}) in '{}'",
                self.at, self.text
            )
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.text.as_bytes().get(self.at + offset).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.text[self.at..].starts_with(s) {
            self.at += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), String> {
        self.skip_ws();
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{s}'")))
        }
    }

    /// The tokens after `$` or `@`, up to the end (or, in a filter, up to what follows a path).
    fn path(&mut self) -> Result<JsonPath, String> {
        let mut tokens = Vec::new();
        let mut function = None;
        loop {
            match self.peek() {
                None => break,
                Some(b'.') => {
                    let scan = self.peek_at(1) == Some(b'.');
                    if scan {
                        self.at += 2;
                        tokens.push(Token::Scan);
                    } else {
                        self.at += 1;
                    }
                    match self.peek() {
                        Some(b'[') => {} // read by the next turn
                        Some(b'*') => {
                            self.at += 1;
                            tokens.push(Token::Wildcard);
                        }
                        _ => match self.name()? {
                            (name, false) => tokens.push(Token::Props(vec![name])),
                            (name, true) if scan => {
                                return Err(format!("function {name}() cannot follow '..'"))
                            }
                            (name, true) => {
                                function = Some(self.function(&name)?);
                                break;
                            }
                        },
                    }
                }
                Some(b'[') => tokens.push(self.bracket()?),
                Some(_) if self.in_filter => break,
                Some(_) => return Err(self.error("unexpected character")),
            }
        }
        if function.is_some() && self.peek().is_some() && !self.in_filter {
            return Err(self.error("a function must end the path"));
        }
        let definite = tokens.iter().enumerate().all(|(i, t)| match t {
            Token::Props(names) => names.len() == 1 || i + 1 == tokens.len(),
            Token::Indexes(indexes) => indexes.len() == 1,
            Token::Wildcard | Token::Slice(..) | Token::Scan | Token::Filter(_) => false,
        });
        let simple = function.is_none()
            && tokens.iter().all(|t| match t {
                Token::Props(names) => names.len() == 1,
                Token::Indexes(indexes) => indexes.len() == 1,
                _ => false,
            });
        Ok(JsonPath {
            tokens,
            function,
            definite,
            simple,
        })
    }

    /// A dotted name; `true` when it is a function call `name(`.
    fn name(&mut self) -> Result<(String, bool), String> {
        let start = self.at;
        while let Some(b) = self.peek() {
            let stop = matches!(b, b'.' | b'[' | b'(') || b.is_ascii_whitespace();
            let filter_stop = self.in_filter && b"()=!<>&|,".contains(&b);
            if stop || filter_stop {
                break;
            }
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("expected a property name"));
        }
        let name = self.text[start..self.at].to_string();
        Ok((name, self.peek() == Some(b'(')))
    }

    fn function(&mut self, name: &str) -> Result<Function, String> {
        let function = Function::named(name).ok_or_else(|| {
            format!(
                "function {name}() is not supported; supported: length(), min(), max(), avg(), \
                 sum(), stddev()"
            )
        })?;
        self.expect("(")?;
        self.expect(")")
            .map_err(|_| format!("function {name}() takes no arguments here"))?;
        Ok(function)
    }

    /// `[...]`: names, indexes, a slice, `*` or a filter.
    fn bracket(&mut self) -> Result<Token, String> {
        self.at += 1;
        self.skip_ws();
        let token = match self.peek() {
            Some(b'*') => {
                self.at += 1;
                Token::Wildcard
            }
            Some(b'?') => {
                self.at += 1;
                self.expect("(")?;
                let outer = std::mem::replace(&mut self.in_filter, true);
                let expr = self.or();
                self.in_filter = outer;
                let expr = expr?;
                self.expect(")")?;
                Token::Filter(Box::new(expr))
            }
            Some(b'\'' | b'"') => {
                let mut names = vec![self.quoted()?];
                loop {
                    self.skip_ws();
                    if !self.eat(",") {
                        break;
                    }
                    self.skip_ws();
                    names.push(self.quoted()?);
                }
                Token::Props(names)
            }
            Some(b'-' | b':' | b'0'..=b'9') => self.indexes()?,
            _ => return Err(self.error("expected a name, an index, '*' or '?(' after '['")),
        };
        self.expect("]")?;
        Ok(token)
    }

    fn indexes(&mut self) -> Result<Token, String> {
        let first = self.integer()?;
        self.skip_ws();
        if self.eat(":") {
            self.skip_ws();
            let end = self.integer()?;
            self.skip_ws();
            if self.peek() == Some(b':') {
                return Err(self.error("slices with a step are not supported"));
            }
            return Ok(Token::Slice(first, end));
        }
        let mut indexes = vec![first.ok_or_else(|| self.error("expected an index"))?];
        while self.eat(",") {
            self.skip_ws();
            indexes.push(
                self.integer()?
                    .ok_or_else(|| self.error("expected an index"))?,
            );
            self.skip_ws();
        }
        Ok(Token::Indexes(indexes))
    }

    fn integer(&mut self) -> Result<Option<i64>, String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at == start {
            return Ok(None);
        }
        self.text[start..self.at]
            .parse()
            .map(Some)
            .map_err(|_| self.error("expected a whole number"))
    }

    /// A `'...'` or `"..."` string; a backslash takes the next character as it is.
    fn quoted(&mut self) -> Result<String, String> {
        let Some(quote) = self.peek().filter(|b| *b == b'\'' || *b == b'"') else {
            return Err(self.error("expected a quoted name"));
        };
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.text[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c if c as u32 == u32::from(quote) => {
                    self.at += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(format!("unterminated string in '{}'", self.text))
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.left_assoc("||", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, String> {
        self.left_assoc("&&", Self::unary, Expr::And)
    }

    /// `operand (op operand)*`, grouped from the left.
    fn left_assoc(
        &mut self,
        op: &str,
        operand: fn(&mut Self) -> Result<Expr, String>,
        join: fn(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Expr, String> {
        let mut left = operand(self)?;
        loop {
            self.skip_ws();
            if !self.eat(op) {
                return Ok(left);
            }
            left = join(Box::new(left), Box::new(operand(self)?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        if self.peek() == Some(b'!') && self.peek_at(1) != Some(b'=') {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            self.expect(")")?;
            return Ok(inner);
        }
        let left = self.operand()?;
        self.skip_ws();
        let Some(op) = self.operator()? else {
            return match left {
                Operand::Path { .. } => Ok(Expr::Exists(left)),
                _ => Err(self.error("expected a comparison operator")),
            };
        };
        self.skip_ws();
        let right = self.operand()?;
        if matches!(right, Operand::Regex(_)) != (op == Op::Match) {
            return Err(self.error("'=~' takes a /regex/ on its right, and only it does"));
        }
        Ok(Expr::Compare(left, op, right))
    }

    fn operator(&mut self) -> Result<Option<Op>, String> {
        for (text, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=~", Op::Match),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(text) {
                return Ok(Some(op));
            }
        }
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.at += 1;
        }
        match self.text[start..self.at].to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "in" => Ok(Some(Op::In)),
            "nin" => Ok(Some(Op::Nin)),
            other => Err(format!(
                "filter operator '{other}' is not supported; supported: ==, !=, <, <=, >, >=, \
                 =~, in, nin"
            )),
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_ws();
        match self.peek() {
            Some(b @ (b'@' | b'$')) => {
                self.at += 1;
                Ok(Operand::Path {
                    absolute: b == b'$',
                    path: self.path()?,
                })
            }
            Some(b'\'' | b'"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            Some(b'/') => self.regex(),
            Some(b'[' | b'{') => self.json_literal(),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_digit() || b"-+.eE".contains(&b))
                {
                    self.at += 1;
                }
                serde_json::from_str::<serde_json::Number>(&self.text[start..self.at])
                    .map(|n| Operand::Literal(Value::Number(n)))
                    .map_err(|_| self.error("expected a number"))
            }
            _ => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.eat(word) {
                        return Ok(Operand::Literal(value));
                    }
                }
                Err(self.error("expected @, $, a string, a number, true, false, null or /regex/"))
            }
        }
    }

    fn regex(&mut self) -> Result<Operand, String> {
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(format!("unterminated /regex/ in '{}'", self.text)),
                Some(b'\\') if !escaped => escaped = true,
                Some(b'/') if !escaped => break,
                Some(_) => escaped = false,
            }
            self.at += 1;
        }
        let body = &self.text[start..self.at];
        self.at += 1;
        let flags_start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.at += 1;
        }
        let mut inline = String::new();
        for flag in self.text[flags_start..self.at].chars() {
            match flag {
                'i' | 'm' | 's' | 'x' => inline.push(flag),
                other => return Err(format!("regex flag '{other}' is not supported")),
            }
        }
        // Jayway matches the whole string (Java's `matches`).
        let pattern = if inline.is_empty() {
            format!("^(?:{body})$")
        } else {
            format!("(?{inline})^(?:{body})$")
        };
        Regex::new(&pattern)
            .map(|re| Operand::Regex(Box::new(re)))
            .map_err(|e| format!("bad regex /{body}/: {e}"))
    }

    /// A JSON array or object literal (`in`, `nin`); single quotes are accepted as in Jayway.
    fn json_literal(&mut self) -> Result<Operand, String> {
        let start = self.at;
        let mut depth = 0usize;
        let mut quote = None;
        while let Some(b) = self.peek() {
            self.at += 1;
            match (quote, b) {
                (Some(_), b'\\') => self.at += 1,
                (Some(q), b) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'\'' | b'"') => quote = Some(b),
                (None, b'[' | b'{') => depth += 1,
                (None, b']' | b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        let text = &self.text[start..self.at];
        serde_json::from_str(text)
            .or_else(|_| serde_json::from_str(&text.replace('\'', "\"")))
            .map(Operand::Literal)
            .map_err(|e| format!("bad literal {text}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(doc: &Value, path: &str) -> Option<Value> {
        JsonPath::compile(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .read(doc)
            .map(Cow::into_owned)
    }

    fn store() -> Value {
        json!({
            "store": {
                "book": [
                    {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
                    {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99},
                    {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick",
                     "isbn": "0-553-21311-3", "price": 8.99},
                    {"category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord",
                     "isbn": "0-395-19395-8", "price": 22.99}
                ],
                "bicycle": {"color": "red", "price": 19.95}
            },
            "expensive": 10,
            "odd key": {"a-b": 1}
        })
    }

    #[test]
    fn definite_paths_give_one_value_or_none() {
        let doc = store();
        assert_eq!(read(&doc, "$.store.bicycle.color"), Some(json!("red")));
        assert_eq!(
            read(&doc, "$['store']['bicycle']['color']"),
            Some(json!("red"))
        );
        assert_eq!(read(&doc, "$[\"odd key\"]['a-b']"), Some(json!(1)));
        assert_eq!(
            read(&doc, "$.store.book[0].author"),
            Some(json!("Nigel Rees"))
        );
        assert_eq!(
            read(&doc, "$.store.book[-1].title"),
            Some(json!("The Lord"))
        );
        assert_eq!(read(&doc, "store.bicycle.price"), Some(json!(19.95)));
        assert_eq!(read(&doc, "$.store.nothing"), None);
        assert_eq!(read(&doc, "$.store.book[9]"), None);
        assert_eq!(read(&doc, "$.store.book.author"), None);
        assert_eq!(read(&doc, "$.expensive.deeper"), None);
        assert_eq!(read(&doc, "$"), Some(doc.clone()));
        // Several names at the end merge into one object.
        assert_eq!(
            read(&doc, "$.store.bicycle['color','price','none']"),
            Some(json!({"color": "red", "price": 19.95}))
        );
    }

    #[test]
    fn indefinite_paths_give_lists() {
        let doc = store();
        assert_eq!(
            read(&doc, "$.store.book[*].author"),
            Some(json!([
                "Nigel Rees",
                "Evelyn Waugh",
                "Herman Melville",
                "J. R. R. Tolkien"
            ]))
        );
        assert_eq!(
            read(&doc, "$..isbn"),
            Some(json!(["0-553-21311-3", "0-395-19395-8"]))
        );
        assert_eq!(
            read(&doc, "$.store.book[0,2].price"),
            Some(json!([8.95, 8.99]))
        );
        assert_eq!(
            read(&doc, "$.store.book[1:3].price"),
            Some(json!([12.99, 8.99]))
        );
        assert_eq!(read(&doc, "$.store.book[:1].price"), Some(json!([8.95])));
        assert_eq!(
            read(&doc, "$.store.book[-2:].price"),
            Some(json!([8.99, 22.99]))
        );
        assert_eq!(read(&doc, "$.store.*.color"), Some(json!(["red"])));
        assert_eq!(read(&doc, "$..nothing"), Some(json!([])));
        assert_eq!(
            read(&doc, "$..book[2].author"),
            Some(json!(["Herman Melville"]))
        );
        let prices = read(&doc, "$.store..price").unwrap();
        assert_eq!(prices.as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn filters() {
        let doc = store();
        assert_eq!(
            read(&doc, "$.store.book[?(@.price < 10)].title"),
            Some(json!(["Sayings", "Moby Dick"]))
        );
        assert_eq!(
            read(&doc, "$.store.book[?(@.isbn)].title"),
            Some(json!(["Moby Dick", "The Lord"]))
        );
        assert_eq!(
            read(&doc, "$.store.book[?(!@.isbn)].title"),
            Some(json!(["Sayings", "Sword"]))
        );
        assert_eq!(
            read(
                &doc,
                "$.store.book[?(@.category == 'fiction' && @.price > 20)].title"
            ),
            Some(json!(["The Lord"]))
        );
        assert_eq!(
            read(
                &doc,
                "$.store.book[?(@.price > $.expensive || @.author =~ /nigel.*/i)].title"
            ),
            Some(json!(["Sayings", "Sword", "The Lord"]))
        );
        assert_eq!(
            read(
                &doc,
                "$.store.book[?(@.author in ['Evelyn Waugh', \"Nigel Rees\"])].price"
            ),
            Some(json!([8.95, 12.99]))
        );
        assert_eq!(
            read(&doc, "$.store.book[?(@.category nin ['fiction'])].title"),
            Some(json!(["Sayings"]))
        );
        // Missing is unequal to everything.
        assert_eq!(
            read(&doc, "$.store.book[?(@.isbn != '0-553-21311-3')].title"),
            Some(json!(["Sayings", "Sword", "The Lord"]))
        );
        assert_eq!(read(&doc, "$..[?(@.color)].price"), Some(json!([19.95])));
    }

    #[test]
    fn functions() {
        let doc = json!({"a": [1, 2, 3, "x"], "o": {"k": 1}, "s": "text", "e": []});
        assert_eq!(read(&doc, "$.a.length()"), Some(json!(4)));
        assert_eq!(read(&doc, "$.o.length()"), Some(json!(1)));
        assert_eq!(read(&doc, "$.a.sum()"), Some(json!(6.0)));
        assert_eq!(read(&doc, "$.a.avg()"), Some(json!(2.0)));
        assert_eq!(read(&doc, "$.a.min()"), Some(json!(1.0)));
        assert_eq!(read(&doc, "$.a.max()"), Some(json!(3.0)));
        let sd = read(&doc, "$.a.stddev()").and_then(|v| v.as_f64()).unwrap();
        assert!((sd - (2.0f64 / 3.0).sqrt()).abs() < 1e-12, "{sd}");
        assert_eq!(read(&doc, "$.s.length()"), None);
        assert_eq!(read(&doc, "$.e.sum()"), None);
        assert_eq!(read(&doc, "$.missing.length()"), None);
    }

    #[test]
    fn refusals_say_what() {
        for (path, wanted) in [
            ("$.a.concat('x')", "concat() is not supported"),
            ("$.a[1:2:3]", "step"),
            ("$.a[", "expected a name"),
            ("$.a['b", "unterminated"),
            ("$.a[?(@.b size 2)]", "'size' is not supported"),
            ("$.a[?(@.b =~ 'x')]", "/regex/"),
            ("$.a.", "expected a property name"),
            ("$.a.length().b", "must end the path"),
            ("", "empty"),
        ] {
            let err = JsonPath::compile(path).expect_err(path);
            assert!(err.contains(wanted), "{path}: {err}");
        }
    }
}
