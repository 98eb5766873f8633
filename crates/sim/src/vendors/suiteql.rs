//! The SuiteQL a simulated NetSuite answers: Oracle SQL's `SELECT ... FROM ... JOIN ... WHERE
//! ... ORDER BY`, NetSuite's `BUILTIN.DF`, `TO_CHAR`, `TO_TIMESTAMP`, `ABS`, `MAX` in a scalar
//! subquery, `IN`/`NOT IN`, `IS [NOT] NULL`, over tables whose columns are NetSuite's own record
//! fields ([`Catalog`]). A query is parsed, every column it names is looked up in the catalog
//! (an unknown one is refused as NetSuite refuses it), and only then evaluated over the rows.
//! Anything outside that subset is refused too, never guessed at: the simulator answers what
//! NetSuite would, not what one connector happens to send.

use std::collections::BTreeMap;

use serde_json::Value;

/// A table's rows: column → value (`None`: NULL). Names are lower case, as SuiteQL answers.
pub type Row = BTreeMap<String, Option<String>>;

/// The tables and the fields each exposes to SuiteQL.
pub struct Catalog {
    pub tables: BTreeMap<&'static str, &'static [&'static str]>,
}

/// Why a query is refused: NetSuite's detail text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

fn refused<T>(why: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(why.into()))
}

// --- Tokens ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(String),
    Symbol(&'static str),
}

fn tokens(q: &str) -> Result<Vec<Token>, Refused> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => break,
                    Some(ch) => {
                        text.push(*ch);
                        i += 1;
                    }
                    None => return refused("Unterminated string literal."),
                }
            }
            i += 1;
            out.push(Token::Text(text));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect::<String>().to_lowercase()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = ["<=", ">=", "<>", "!="].into_iter().find(|s| *s == two);
            let symbol = match symbol {
                Some(s) => s,
                None => match c {
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    '.' => ".",
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    '*' => "*",
                    other => return refused(format!("Unexpected character '{other}'.")),
                },
            };
            i += symbol.len();
            out.push(Token::Symbol(symbol));
        }
    }
    Ok(out)
}

// --- Syntax ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Expr {
    Column { table: Option<String>, field: String },
    Text(String),
    Number(String),
    Call { name: String, args: Vec<Expr> },
    Subquery(Box<Query>),
    Compare { op: &'static str, left: Box<Expr>, right: Box<Expr> },
    In { expr: Box<Expr>, list: Vec<Expr>, negated: bool },
    IsNull { expr: Box<Expr>, negated: bool },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone)]
struct Source {
    table: String,
    alias: String,
}

#[derive(Debug, Clone)]
struct Join {
    source: Source,
    on: Expr,
    left: bool,
}

#[derive(Debug, Clone)]
struct Query {
    select: Vec<(Expr, String)>,
    from: Source,
    joins: Vec<Join>,
    filter: Option<Expr>,
    order: Vec<(Expr, bool)>,
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

const RESERVED: [&str; 14] =
    ["select", "from", "join", "inner", "left", "on", "where", "order", "by", "and", "or", "not", "as", "outer"];

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(x)) if x == w)
    }

    fn symbol(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Token::Symbol(x)) if *x == s)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.word(w);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn eat_symbol(&mut self, s: &str) -> bool {
        let yes = self.symbol(s);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn expect_word(&mut self, w: &str) -> Result<(), Refused> {
        if self.eat_word(w) {
            Ok(())
        } else {
            refused(format!("Expected {} near {:?}.", w.to_uppercase(), self.peek()))
        }
    }

    fn expect_symbol(&mut self, s: &str) -> Result<(), Refused> {
        if self.eat_symbol(s) { Ok(()) } else { refused(format!("Expected '{s}' near {:?}.", self.peek())) }
    }

    fn name(&mut self) -> Result<String, Refused> {
        match self.next() {
            Some(Token::Word(w)) if !RESERVED.contains(&w.as_str()) => Ok(w),
            other => refused(format!("Expected a name, found {other:?}.")),
        }
    }

    fn query(&mut self) -> Result<Query, Refused> {
        self.expect_word("select")?;
        let mut select = Vec::new();
        loop {
            if self.symbol("*") {
                return refused("SELECT * is not simulated: name the fields.");
            }
            let expr = self.expr()?;
            let alias = if self.eat_word("as") {
                self.name()?
            } else {
                match &expr {
                    Expr::Column { field, .. } => field.clone(),
                    _ => format!("expr{}", select.len() + 1),
                }
            };
            select.push((expr, alias));
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_word("from")?;
        let from = self.source()?;
        let mut joins = Vec::new();
        loop {
            let left = if self.eat_word("left") {
                self.eat_word("outer");
                true
            } else {
                self.eat_word("inner");
                false
            };
            if !self.eat_word("join") {
                if left {
                    return refused("Expected JOIN after LEFT.");
                }
                break;
            }
            let source = self.source()?;
            self.expect_word("on")?;
            joins.push(Join { source, on: self.condition()?, left });
        }
        let filter = if self.eat_word("where") { Some(self.condition()?) } else { None };
        let mut order = Vec::new();
        if self.eat_word("order") {
            self.expect_word("by")?;
            loop {
                let expr = self.expr()?;
                let descending = self.eat_word("desc");
                if !descending {
                    self.eat_word("asc");
                }
                order.push((expr, descending));
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        Ok(Query { select, from, joins, filter, order })
    }

    fn source(&mut self) -> Result<Source, Refused> {
        let table = self.name()?;
        let alias = match self.peek() {
            Some(Token::Word(w)) if !RESERVED.contains(&w.as_str()) => self.name()?,
            _ => table.clone(),
        };
        Ok(Source { table, alias })
    }

    fn condition(&mut self) -> Result<Expr, Refused> {
        let mut left = self.conjunction()?;
        while self.eat_word("or") {
            left = Expr::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Expr, Refused> {
        let mut left = self.predicate()?;
        while self.eat_word("and") {
            left = Expr::And(Box::new(left), Box::new(self.predicate()?));
        }
        Ok(left)
    }

    fn predicate(&mut self) -> Result<Expr, Refused> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.predicate()?)));
        }
        if self.symbol("(") && !matches!(self.tokens.get(self.at + 1), Some(Token::Word(w)) if w == "select") {
            self.at += 1;
            let inner = self.condition()?;
            self.expect_symbol(")")?;
            return Ok(inner);
        }
        let expr = self.expr()?;
        if self.eat_word("is") {
            let negated = self.eat_word("not");
            self.expect_word("null")?;
            return Ok(Expr::IsNull { expr: Box::new(expr), negated });
        }
        let negated = self.eat_word("not");
        if self.eat_word("in") {
            self.expect_symbol("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_symbol(",") {
                list.push(self.expr()?);
            }
            self.expect_symbol(")")?;
            return Ok(Expr::In { expr: Box::new(expr), list, negated });
        }
        if negated {
            return refused("Expected IN after NOT.");
        }
        for op in ["=", "<>", "!=", "<=", ">=", "<", ">"] {
            if self.eat_symbol(op) {
                return Ok(Expr::Compare { op, left: Box::new(expr), right: Box::new(self.expr()?) });
            }
        }
        refused(format!("Expected a comparison near {:?}.", self.peek()))
    }

    fn expr(&mut self) -> Result<Expr, Refused> {
        match self.next() {
            Some(Token::Text(t)) => Ok(Expr::Text(t)),
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Symbol("(")) => {
                let query = self.query()?;
                self.expect_symbol(")")?;
                Ok(Expr::Subquery(Box::new(query)))
            }
            Some(Token::Word(first)) if !RESERVED.contains(&first.as_str()) => {
                let mut name = first;
                let mut qualifier = None;
                if self.eat_symbol(".") {
                    qualifier = Some(name);
                    name = self.name()?;
                }
                if self.eat_symbol("(") {
                    let name = match qualifier {
                        Some(q) => format!("{q}.{name}"),
                        None => name,
                    };
                    let mut args = Vec::new();
                    if !self.eat_symbol(")") {
                        args.push(self.expr()?);
                        while self.eat_symbol(",") {
                            args.push(self.expr()?);
                        }
                        self.expect_symbol(")")?;
                    }
                    return Ok(Expr::Call { name, args });
                }
                Ok(Expr::Column { table: qualifier, field: name })
            }
            other => refused(format!("Unexpected {other:?}.")),
        }
    }
}

// --- Checking against the catalog ------------------------------------------------------------

/// NetSuite's words for a field it does not expose to SuiteQL.
fn not_found(field: &str, table: &str) -> Refused {
    Refused(format!(
        "Invalid search query. Detailed unprocessed description follows. Search error occurred: Field '{field}' for \
         record '{table}' was not found. Reason: NOT_EXPOSED - Not available for channel SEARCH"
    ))
}

impl Catalog {
    fn fields(&self, table: &str) -> Result<&'static [&'static str], Refused> {
        self.tables.get(table).copied().ok_or_else(|| {
            Refused(format!(
                "Invalid search query. Detailed unprocessed description follows. Search error occurred: Record \
                 '{table}' was not found."
            ))
        })
    }

    /// Every table and column the query names exists; `outer` are the sources of enclosing
    /// queries (a correlated subquery may name them).
    fn check(&self, q: &Query, outer: &[Source]) -> Result<(), Refused> {
        let mut scope: Vec<Source> = outer.to_vec();
        scope.push(q.from.clone());
        scope.extend(q.joins.iter().map(|j| j.source.clone()));
        for source in &scope {
            self.fields(&source.table)?;
        }
        let mut exprs: Vec<&Expr> = q.select.iter().map(|(e, _)| e).collect();
        exprs.extend(q.joins.iter().map(|j| &j.on));
        exprs.extend(q.filter.iter());
        exprs.extend(q.order.iter().map(|(e, _)| e));
        for e in exprs {
            self.check_expr(e, &scope)?;
        }
        Ok(())
    }

    fn check_expr(&self, e: &Expr, scope: &[Source]) -> Result<(), Refused> {
        match e {
            Expr::Column { table: Some(alias), field } => {
                let source = scope.iter().rev().find(|s| &s.alias == alias);
                let Some(source) = source else { return refused(format!("Unknown identifier '{alias}'.")) };
                if !self.fields(&source.table)?.contains(&field.as_str()) {
                    return Err(not_found(field, &source.table));
                }
                Ok(())
            }
            Expr::Column { table: None, field } => {
                let local = scope.last().map(|s| s.table.clone()).unwrap_or_default();
                let known = scope.iter().any(|s| self.fields(&s.table).is_ok_and(|f| f.contains(&field.as_str())));
                if known { Ok(()) } else { Err(not_found(field, &local)) }
            }
            Expr::Text(_) | Expr::Number(_) => Ok(()),
            Expr::Call { name, args } => {
                if !["builtin.df", "to_char", "to_timestamp", "abs", "max"].contains(&name.as_str()) {
                    return refused(format!("Unknown function {}.", name.to_uppercase()));
                }
                args.iter().try_for_each(|a| self.check_expr(a, scope))
            }
            Expr::Subquery(q) => self.check(q, scope),
            Expr::Compare { left, right, .. } | Expr::And(left, right) | Expr::Or(left, right) => {
                self.check_expr(left, scope)?;
                self.check_expr(right, scope)
            }
            Expr::In { expr, list, .. } => {
                self.check_expr(expr, scope)?;
                list.iter().try_for_each(|a| self.check_expr(a, scope))
            }
            Expr::IsNull { expr, .. } | Expr::Not(expr) => self.check_expr(expr, scope),
        }
    }
}

// --- Evaluation -----------------------------------------------------------------------------

/// The data a query reads, and how a list field's value is displayed (`BUILTIN.DF`).
pub struct Data<'a> {
    pub tables: &'a BTreeMap<String, Vec<Row>>,
    pub display: &'a dyn Fn(&str, &str) -> Option<String>,
}

/// The rows of one candidate combination: alias → (table, row).
type Bound<'r> = Vec<(&'r str, &'r str, &'r Row)>;

fn lookup<'r>(bound: &Bound<'r>, table: Option<&str>, field: &str) -> (Option<String>, Option<&'r str>) {
    let found = bound.iter().rev().find(|(alias, _, row)| match table {
        Some(t) => *alias == t,
        None => row.contains_key(field),
    });
    match found {
        Some((_, table, row)) => (row.get(field).cloned().flatten(), Some(*table)),
        None => (None, None),
    }
}

/// Oracle's date format models, the ones SuiteQL queries use.
fn strftime_of(model: &str) -> String {
    let mut out = String::new();
    let mut rest = model;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push_str(&quoted[..end]);
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        let (piece, len) = [("YYYY", "%Y"), ("HH24", "%H"), ("MM", "%m"), ("DD", "%d"), ("MI", "%M"), ("SS", "%S")]
            .iter()
            .find(|(m, _)| rest.starts_with(m))
            .map_or_else(|| (rest[..1].to_owned(), 1), |(m, f)| ((*f).to_owned(), m.len()));
        out.push_str(&piece);
        rest = &rest[len..];
    }
    out
}

/// The simulator's own form of a date: `YYYY-MM-DD HH:MM:SS`, UTC.
pub const STORED: &str = "%Y-%m-%d %H:%M:%S";

fn number(v: &str) -> Option<rust_decimal::Decimal> {
    v.parse().ok()
}

fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

impl Data<'_> {
    fn value(&self, e: &Expr, bound: &Bound<'_>) -> Result<Option<String>, Refused> {
        Ok(match e {
            Expr::Column { table, field } => lookup(bound, table.as_deref(), field).0,
            Expr::Text(t) => Some(t.clone()),
            Expr::Number(n) => Some(n.clone()),
            Expr::Subquery(q) => {
                let rows = self.rows(q, bound)?;
                rows.into_iter().next().and_then(|mut r| r.pop()).flatten()
            }
            Expr::Call { name, args } => {
                let arg = |i: usize| args.get(i).map(|a| self.value(a, bound)).transpose().map(Option::flatten);
                match name.as_str() {
                    "builtin.df" => match args.first() {
                        Some(Expr::Column { table, field }) => {
                            let (value, table) = lookup(bound, table.as_deref(), field);
                            value.map(|v| table.and_then(|t| (self.display)(&format!("{t}.{field}"), &v)).unwrap_or(v))
                        }
                        _ => arg(0)?,
                    },
                    "abs" => arg(0)?.and_then(|v| number(&v)).map(|d| d.abs().normalize().to_string()),
                    "to_char" | "to_timestamp" => {
                        let (value, model) = (arg(0)?, arg(1)?.unwrap_or_default());
                        let (from, to) = if name == "to_char" {
                            (STORED.to_owned(), strftime_of(&model))
                        } else {
                            (strftime_of(&model), STORED.to_owned())
                        };
                        match value {
                            Some(v) => match jiff::civil::DateTime::strptime(&from, &v) {
                                Ok(d) => Some(d.strftime(&to).to_string()),
                                Err(_) => return refused(format!("'{v}' does not match the format '{model}'.")),
                            },
                            None => None,
                        }
                    }
                    other => return refused(format!("{} is an aggregate here only.", other.to_uppercase())),
                }
            }
            other => Some(if self.truth(other, bound)? { "T" } else { "F" }.to_owned()),
        })
    }

    fn truth(&self, e: &Expr, bound: &Bound<'_>) -> Result<bool, Refused> {
        Ok(match e {
            Expr::And(a, b) => self.truth(a, bound)? && self.truth(b, bound)?,
            Expr::Or(a, b) => self.truth(a, bound)? || self.truth(b, bound)?,
            Expr::Not(a) => !self.truth(a, bound)?,
            Expr::IsNull { expr, negated } => self.value(expr, bound)?.is_none() != *negated,
            Expr::In { expr, list, negated } => {
                let Some(v) = self.value(expr, bound)? else { return Ok(false) };
                let mut found = false;
                for item in list {
                    found |= self.value(item, bound)?.is_some_and(|x| compare(&v, &x).is_eq());
                }
                found != *negated
            }
            Expr::Compare { op, left, right } => {
                let (Some(a), Some(b)) = (self.value(left, bound)?, self.value(right, bound)?) else {
                    return Ok(false);
                };
                let order = compare(&a, &b);
                match *op {
                    "=" => order.is_eq(),
                    "<>" | "!=" => order.is_ne(),
                    "<" => order.is_lt(),
                    "<=" => order.is_le(),
                    ">" => order.is_gt(),
                    _ => order.is_ge(),
                }
            }
            other => return refused(format!("{other:?} is not a condition.")),
        })
    }

    fn table(&self, name: &str) -> &[Row] {
        self.tables.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The combinations of rows a query's FROM, JOINs and WHERE leave, under `outer`.
    fn matches<'r>(&'r self, q: &'r Query, outer: &Bound<'r>) -> Result<Vec<Bound<'r>>, Refused> {
        let mut combos: Vec<Bound<'r>> = Vec::new();
        for row in self.table(&q.from.table) {
            let mut b = outer.clone();
            b.push((&q.from.alias, &q.from.table, row));
            combos.push(b);
        }
        for join in &q.joins {
            let mut next = Vec::new();
            for combo in combos {
                let mut any = false;
                for row in self.table(&join.source.table) {
                    let mut b = combo.clone();
                    b.push((&join.source.alias, &join.source.table, row));
                    if self.truth(&join.on, &b)? {
                        next.push(b);
                        any = true;
                    }
                }
                if join.left && !any {
                    next.push(combo);
                }
            }
            combos = next;
        }
        let mut kept = Vec::new();
        for combo in combos {
            if q.filter.as_ref().map_or(Ok(true), |f| self.truth(f, &combo))? {
                kept.push(combo);
            }
        }
        Ok(kept)
    }

    /// The query's rows, each its selected values in order.
    fn rows(&self, q: &Query, outer: &Bound<'_>) -> Result<Vec<Vec<Option<String>>>, Refused> {
        let mut combos = self.matches(q, outer)?;
        let aggregate = q.select.iter().any(|(e, _)| matches!(e, Expr::Call { name, .. } if name == "max"));
        if aggregate {
            let mut row = Vec::new();
            for (e, _) in &q.select {
                let Expr::Call { name, args } = e else {
                    return refused("Mixing MAX with plain columns needs GROUP BY.");
                };
                if name != "max" || args.len() != 1 {
                    return refused("Mixing MAX with plain columns needs GROUP BY.");
                }
                let mut best: Option<String> = None;
                for combo in &combos {
                    if let Some(v) = self.value(&args[0], combo)? {
                        best = Some(match best {
                            Some(b) if compare(&b, &v).is_ge() => b,
                            _ => v,
                        });
                    }
                }
                row.push(best);
            }
            return Ok(vec![row]);
        }
        let mut keyed = Vec::new();
        for combo in combos.drain(..) {
            let key: Vec<Option<String>> =
                q.order.iter().map(|(e, _)| self.value(e, &combo)).collect::<Result<_, _>>()?;
            let values: Vec<Option<String>> =
                q.select.iter().map(|(e, _)| self.value(e, &combo)).collect::<Result<_, _>>()?;
            keyed.push((key, values));
        }
        keyed.sort_by(|(a, _), (b, _)| {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let order = match (x, y) {
                    (Some(x), Some(y)) => compare(x, y),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                };
                let order = if q.order[i].1 { order.reverse() } else { order };
                if order.is_ne() {
                    return order;
                }
            }
            std::cmp::Ordering::Equal
        });
        Ok(keyed.into_iter().map(|(_, v)| v).collect())
    }
}

/// Parses `q`, checks it against `catalog` and answers it over `data`: one JSON object per
/// row, named by the select list's aliases, NULLs left out (as SuiteQL leaves them out).
pub fn answer(q: &str, catalog: &Catalog, data: &Data<'_>) -> Result<Vec<Value>, Refused> {
    let mut parser = Parser { tokens: tokens(q)?, at: 0 };
    let query = parser.query()?;
    if parser.at < parser.tokens.len() {
        return refused(format!("Unexpected {:?} after the query.", parser.peek()));
    }
    catalog.check(&query, &[])?;
    let rows = data.rows(&query, &Vec::new())?;
    Ok(rows
        .into_iter()
        .map(|values| {
            let mut object = serde_json::Map::new();
            object.insert("links".into(), Value::Array(Vec::new()));
            for ((_, name), value) in query.select.iter().zip(values) {
                if let Some(v) = value {
                    object.insert(name.clone(), Value::String(v));
                }
            }
            Value::Object(object)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            tables: [
                ("transaction", &["id", "type", "externalid", "lastmodifieddate", "shipcarrier"][..]),
                ("transactionline", &["transaction", "item", "quantity", "mainline"][..]),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn row(pairs: &[(&str, Option<&str>)]) -> Row {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned))).collect()
    }

    fn tables() -> BTreeMap<String, Vec<Row>> {
        let t = |id: &str, ty: &str, modified: &str| {
            row(&[
                ("id", Some(id)),
                ("type", Some(ty)),
                ("externalid", None),
                ("lastmodifieddate", Some(modified)),
                ("shipcarrier", Some("ups")),
            ])
        };
        let mut tables = BTreeMap::new();
        tables.insert(
            "transaction".to_owned(),
            vec![
                t("10", "ItemShip", "2026-11-26 10:00:05"),
                t("9", "ItemShip", "2026-11-26 10:00:05"),
                t("11", "SalesOrd", "2026-11-26 09:00:00"),
            ],
        );
        tables.insert(
            "transactionline".to_owned(),
            vec![
                row(&[
                    ("transaction", Some("10")),
                    ("item", Some("5")),
                    ("quantity", Some("-2")),
                    ("mainline", Some("F")),
                ]),
                row(&[
                    ("transaction", Some("9")),
                    ("item", Some("6")),
                    ("quantity", Some("3")),
                    ("mainline", Some("F")),
                ]),
            ],
        );
        tables
    }

    fn run(q: &str) -> Result<Vec<Value>, Refused> {
        let tables = tables();
        let display =
            |field: &str, v: &str| (field == "transaction.shipcarrier" && v == "ups").then(|| "UPS".to_owned());
        answer(q, &catalog(), &Data { tables: &tables, display: &display })
    }

    #[test]
    fn a_query_is_answered_from_the_rows_in_order_without_nulls() {
        let rows =
            run("SELECT f.id AS id, TO_CHAR(f.lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS at, f.externalid, \
             BUILTIN.DF(f.shipcarrier) AS carrier, (SELECT MAX(ABS(l.quantity)) FROM transactionline l WHERE \
             l.transaction = f.id) AS units FROM transaction f WHERE f.type = 'ItemShip' AND f.lastmodifieddate >= \
             TO_TIMESTAMP('2026-11-26 10:00:00', 'YYYY-MM-DD HH24:MI:SS') AND f.id NOT IN (7, 8) ORDER BY \
             f.lastmodifieddate, f.id")
            .unwrap();
        assert_eq!(
            rows,
            vec![
                serde_json::json!({"links": [], "id": "9", "at": "2026-11-26T10:00:05", "carrier": "UPS", "units": "3"}),
                serde_json::json!({"links": [], "id": "10", "at": "2026-11-26T10:00:05", "carrier": "UPS", "units": "2"}),
            ]
        );
    }

    #[test]
    fn an_unknown_field_or_record_is_refused_as_netsuite_words_it() {
        let Refused(why) = run("SELECT f.id, f.shipstatus FROM transaction f").unwrap_err();
        assert!(why.contains("Field 'shipstatus' for record 'transaction' was not found"), "{why}");
        let Refused(why) = run("SELECT id FROM salesorder").unwrap_err();
        assert!(why.contains("Record 'salesorder' was not found"), "{why}");
        let Refused(why) =
            run("SELECT l.id FROM transaction f JOIN transactionline l ON l.transaction = f.id").unwrap_err();
        assert!(why.contains("Field 'id' for record 'transactionline'"), "{why}");
        assert!(run("SELECT * FROM transaction").is_err());
    }
}
