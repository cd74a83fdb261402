//! DynamoDB's expression language, as far as the product uses it and a little beyond:
//! condition and filter expressions (comparisons `= <> < <= > >=`, `BETWEEN`, `IN`,
//! `AND`/`OR`/`NOT`, parentheses, `attribute_exists`, `attribute_not_exists`,
//! `attribute_type`, `begins_with`, `contains`, `size`), key conditions, update expressions
//! (`SET` with `+`, `-`, `if_not_exists`, `list_append`; `REMOVE`; `ADD` on numbers and
//! sets; `DELETE` on sets) and projection expressions. Names (`#n`) and values (`:v`) are
//! resolved while parsing, and a request whose `ExpressionAttributeNames` or
//! `ExpressionAttributeValues` hold entries no expression uses is refused, as DynamoDB
//! refuses it.

use crate::error::ApiError;
use crate::number::Number;
use crate::value::{Item, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Operands one `IN` takes.
const MAX_IN_OPERANDS: usize = 100;

/// Which expression parameter is being parsed (it names the parameter in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Condition,
    KeyCondition,
    Filter,
    Update,
    Projection,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Condition => "ConditionExpression",
            Kind::KeyCondition => "KeyConditionExpression",
            Kind::Filter => "FilterExpression",
            Kind::Update => "UpdateExpression",
            Kind::Projection => "ProjectionExpression",
        }
    }
}

/// The `ExpressionAttributeNames` and `ExpressionAttributeValues` of one request (or one
/// action of a transaction), and which of them the expressions used.
#[derive(Debug, Default)]
pub struct Context {
    names: BTreeMap<String, String>,
    values: BTreeMap<String, Value>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
    expressions: usize,
}

impl Context {
    pub fn new(names: BTreeMap<String, String>, values: BTreeMap<String, Value>) -> Context {
        Context {
            names,
            values,
            ..Context::default()
        }
    }

    /// After every expression of the request was parsed: refuses names or values that
    /// none of them used (and values given with no expression at all).
    pub fn finish(&self) -> Result<(), ApiError> {
        if self.expressions == 0 && !self.values.is_empty() {
            return Err(ApiError::validation(
                "ExpressionAttributeValues can only be specified when using expressions",
            ));
        }
        if self.expressions == 0 && !self.names.is_empty() {
            return Err(ApiError::validation(
                "ExpressionAttributeNames can only be specified when using expressions",
            ));
        }
        let unused_names: Vec<&String> = self
            .names
            .keys()
            .filter(|k| !self.used_names.contains(*k))
            .collect();
        if !unused_names.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                join(&unused_names)
            )));
        }
        let unused_values: Vec<&String> = self
            .values
            .keys()
            .filter(|k| !self.used_values.contains(*k))
            .collect();
        if !unused_values.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                join(&unused_values)
            )));
        }
        Ok(())
    }

    pub fn condition(&mut self, text: &str) -> Result<Cond, ApiError> {
        self.parse(text, Kind::Condition, |p| p.condition())
    }

    pub fn filter(&mut self, text: &str) -> Result<Cond, ApiError> {
        self.parse(text, Kind::Filter, |p| p.condition())
    }

    pub fn key_condition(&mut self, text: &str) -> Result<Cond, ApiError> {
        self.parse(text, Kind::KeyCondition, |p| p.condition())
    }

    pub fn update(&mut self, text: &str) -> Result<Update, ApiError> {
        self.parse(text, Kind::Update, |p| p.update())
    }

    pub fn projection(&mut self, text: &str) -> Result<Vec<Path>, ApiError> {
        self.parse(text, Kind::Projection, |p| {
            let mut paths = vec![p.path()?];
            while p.eat(&Tok::Comma) {
                paths.push(p.path()?);
            }
            Ok(paths)
        })
    }

    fn parse<T>(
        &mut self,
        text: &str,
        kind: Kind,
        f: impl FnOnce(&mut Parser<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.expressions += 1;
        if text.trim().is_empty() {
            return Err(ApiError::validation(format!(
                "Invalid {}: The expression can not be empty;",
                kind.name()
            )));
        }
        let tokens = lex(text).map_err(|token| syntax(kind, &token))?;
        let mut parser = Parser {
            tokens,
            at: 0,
            kind,
            cx: self,
        };
        let out = f(&mut parser)?;
        if parser.peek() != &Tok::End {
            return Err(syntax(kind, &parser.peek().to_string()));
        }
        Ok(out)
    }
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn syntax(kind: Kind, token: &str) -> ApiError {
    ApiError::validation(format!(
        "Invalid {}: Syntax error; token: \"{token}\"",
        kind.name()
    ))
}

// ------------------------------------------------------------------------------ lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Name(String),
    Val(String),
    Int(usize),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    End,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Tok::Ident(s) | Tok::Name(s) | Tok::Val(s) => return f.write_str(s),
            Tok::Int(n) => return write!(f, "{n}"),
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Eq => "=",
            Tok::Ne => "<>",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::End => "<EOF>",
        };
        f.write_str(s)
    }
}

/// The tokens of `text`; the offending text when it has none.
fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '=' => Tok::Eq,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '<' => match chars.get(i + 1) {
                Some('>') => {
                    i += 1;
                    Tok::Ne
                }
                Some('=') => {
                    i += 1;
                    Tok::Le
                }
                _ => Tok::Lt,
            },
            '>' => match chars.get(i + 1) {
                Some('=') => {
                    i += 1;
                    Tok::Ge
                }
                _ => Tok::Gt,
            },
            '#' | ':' => {
                i += 1;
                let rest = word(&mut i);
                if rest.is_empty() {
                    return Err(c.to_string());
                }
                out.push(if c == '#' {
                    Tok::Name(format!("#{rest}"))
                } else {
                    Tok::Val(format!(":{rest}"))
                });
                continue;
            }
            c if c.is_ascii_digit() => {
                let digits = word(&mut i);
                match digits.parse() {
                    Ok(n) if digits.chars().all(|c| c.is_ascii_digit()) => out.push(Tok::Int(n)),
                    _ => return Err(digits),
                }
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                out.push(Tok::Ident(word(&mut i)));
                continue;
            }
            other => return Err(other.to_string()),
        };
        out.push(tok);
        i += 1;
    }
    out.push(Tok::End);
    Ok(out)
}

// ------------------------------------------------------------------------------ syntax

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElem {
    Attr(String),
    Index(usize),
}

/// A document path: an attribute, then map keys and list indexes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    /// The top-level attribute the path starts at.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(a)) => a,
            _ => "",
        }
    }

    /// The path when it is just one attribute.
    pub fn single(&self) -> Option<&str> {
        match self.0.as_slice() {
            [PathElem::Attr(a)] => Some(a),
            _ => None,
        }
    }

    fn overlaps(&self, other: &Path) -> bool {
        let n = self.0.len().min(other.0.len());
        self.0[..n] == other.0[..n]
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, elem) in self.0.iter().enumerate() {
            match elem {
                PathElem::Attr(a) if i == 0 => f.write_str(a)?,
                PathElem::Attr(a) => write!(f, ", {a}")?,
                PathElem::Index(n) => write!(f, ", [{n}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(Value),
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp(Operand, CmpOp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    AttrType(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdOperand {
    Path(Path),
    Value(Value),
    IfNotExists(Path, Box<UpdOperand>),
    ListAppend(Box<UpdOperand>, Box<UpdOperand>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Operand(UpdOperand),
    Plus(UpdOperand, UpdOperand),
    Minus(UpdOperand, UpdOperand),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub set: Vec<(Path, SetValue)>,
    pub remove: Vec<Path>,
    pub add: Vec<(Path, Value)>,
    pub delete: Vec<(Path, Value)>,
}

impl Update {
    /// Every path the update writes.
    pub fn paths(&self) -> Vec<&Path> {
        self.set
            .iter()
            .map(|(p, _)| p)
            .chain(self.remove.iter())
            .chain(self.add.iter().map(|(p, _)| p))
            .chain(self.delete.iter().map(|(p, _)| p))
            .collect()
    }
}

struct Parser<'a> {
    tokens: Vec<Tok>,
    at: usize,
    kind: Kind,
    cx: &'a mut Context,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), ApiError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> ApiError {
        syntax(self.kind, &self.peek().to_string())
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.keyword(word) {
            self.next();
            true
        } else {
            false
        }
    }

    fn name(&mut self, reference: &str) -> Result<String, ApiError> {
        match self.cx.names.get(reference) {
            Some(name) => {
                self.cx.used_names.insert(reference.to_owned());
                Ok(name.clone())
            }
            None => Err(ApiError::validation(format!(
                "Invalid {}: An expression attribute name used in the document path is not defined; attribute name: {reference}",
                self.kind.name()
            ))),
        }
    }

    fn value(&mut self, reference: &str) -> Result<Value, ApiError> {
        match self.cx.values.get(reference) {
            Some(value) => {
                self.cx.used_values.insert(reference.to_owned());
                Ok(value.clone())
            }
            None => Err(ApiError::validation(format!(
                "Invalid {}: An expression attribute value used in expression is not defined; attribute value: {reference}",
                self.kind.name()
            ))),
        }
    }

    fn path(&mut self) -> Result<Path, ApiError> {
        let first = match self.peek().clone() {
            Tok::Ident(word) => {
                self.next();
                word
            }
            Tok::Name(reference) => {
                self.next();
                self.name(&reference)?
            }
            _ => return Err(self.unexpected()),
        };
        let mut elems = vec![PathElem::Attr(first)];
        loop {
            if self.eat(&Tok::Dot) {
                let elem = match self.next() {
                    Tok::Ident(word) => word,
                    Tok::Name(reference) => self.name(&reference)?,
                    _ => return Err(self.unexpected()),
                };
                elems.push(PathElem::Attr(elem));
            } else if self.eat(&Tok::LBracket) {
                let Tok::Int(n) = self.next() else {
                    return Err(self.unexpected());
                };
                self.expect(&Tok::RBracket)?;
                elems.push(PathElem::Index(n));
            } else {
                return Ok(Path(elems));
            }
        }
    }

    // ---- conditions

    fn condition(&mut self) -> Result<Cond, ApiError> {
        let mut left = self.conjunction()?;
        while self.eat_keyword("OR") {
            let right = self.conjunction()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Cond, ApiError> {
        let mut left = self.negation()?;
        while self.eat_keyword("AND") {
            let right = self.negation()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn negation(&mut self) -> Result<Cond, ApiError> {
        if self.eat_keyword("NOT") {
            return Ok(Cond::Not(Box::new(self.negation()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Cond, ApiError> {
        if self.eat(&Tok::LParen) {
            let inner = self.condition()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        if let Tok::Ident(function) = self.peek().clone()
            && self.peek_at(1) == &Tok::LParen
            && function != "size"
        {
            self.next();
            self.next();
            let cond = match function.as_str() {
                "attribute_exists" => Cond::Exists(self.path()?),
                "attribute_not_exists" => Cond::NotExists(self.path()?),
                "attribute_type" => {
                    let path = self.path()?;
                    self.expect(&Tok::Comma)?;
                    Cond::AttrType(path, self.operand()?)
                }
                "begins_with" => {
                    let a = self.operand()?;
                    self.expect(&Tok::Comma)?;
                    Cond::BeginsWith(a, self.operand()?)
                }
                "contains" => {
                    let a = self.operand()?;
                    self.expect(&Tok::Comma)?;
                    Cond::Contains(a, self.operand()?)
                }
                other => {
                    return Err(ApiError::validation(format!(
                        "Invalid {}: Invalid function name; function: {other}",
                        self.kind.name()
                    )));
                }
            };
            self.expect(&Tok::RParen)?;
            return Ok(cond);
        }
        let left = self.operand()?;
        if self.eat_keyword("BETWEEN") {
            let low = self.operand()?;
            if !self.eat_keyword("AND") {
                return Err(self.unexpected());
            }
            let high = self.operand()?;
            if let (Operand::Value(l), Operand::Value(h)) = (&low, &high)
                && l.ordering(h) == Some(Ordering::Greater)
            {
                return Err(ApiError::validation(format!(
                    "Invalid {}: The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                    self.kind.name()
                )));
            }
            return Ok(Cond::Between(left, low, high));
        }
        if self.eat_keyword("IN") {
            self.expect(&Tok::LParen)?;
            let mut list = vec![self.operand()?];
            while self.eat(&Tok::Comma) {
                list.push(self.operand()?);
            }
            self.expect(&Tok::RParen)?;
            if list.len() > MAX_IN_OPERANDS {
                return Err(ApiError::validation(format!(
                    "Invalid {}: The expression contains too many operands for IN; limit: {MAX_IN_OPERANDS}",
                    self.kind.name()
                )));
            }
            return Ok(Cond::In(left, list));
        }
        let op = match self.peek() {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            _ => return Err(self.unexpected()),
        };
        self.next();
        let right = self.operand()?;
        Ok(Cond::Cmp(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, ApiError> {
        match self.peek().clone() {
            Tok::Val(reference) => {
                self.next();
                Ok(Operand::Value(self.value(&reference)?))
            }
            Tok::Ident(word) if word == "size" && self.peek_at(1) == &Tok::LParen => {
                self.next();
                self.next();
                let path = self.path()?;
                self.expect(&Tok::RParen)?;
                Ok(Operand::Size(path))
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    // ---- updates

    fn update(&mut self) -> Result<Update, ApiError> {
        let mut update = Update::default();
        let mut seen = BTreeSet::new();
        while self.peek() != &Tok::End {
            let Tok::Ident(section) = self.peek().clone() else {
                return Err(self.unexpected());
            };
            let section = section.to_ascii_uppercase();
            if !["SET", "REMOVE", "ADD", "DELETE"].contains(&section.as_str()) {
                return Err(self.unexpected());
            }
            self.next();
            if !seen.insert(section.clone()) {
                return Err(ApiError::validation(format!(
                    "Invalid UpdateExpression: The \"{section}\" section can only be used once in an update expression;"
                )));
            }
            loop {
                match section.as_str() {
                    "SET" => {
                        let path = self.path()?;
                        self.expect(&Tok::Eq)?;
                        let first = self.update_operand()?;
                        let value = if self.eat(&Tok::Plus) {
                            SetValue::Plus(first, self.update_operand()?)
                        } else if self.eat(&Tok::Minus) {
                            SetValue::Minus(first, self.update_operand()?)
                        } else {
                            SetValue::Operand(first)
                        };
                        update.set.push((path, value));
                    }
                    "REMOVE" => update.remove.push(self.path()?),
                    action => {
                        let path = self.path()?;
                        let Tok::Val(reference) = self.peek().clone() else {
                            return Err(self.unexpected());
                        };
                        self.next();
                        let value = self.value(&reference)?;
                        let fits = matches!(
                            (action, &value),
                            ("ADD", Value::N(_)) | (_, Value::Ss(_) | Value::Ns(_) | Value::Bs(_))
                        );
                        if !fits {
                            return Err(ApiError::validation(format!(
                                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: {action}, operand type: {}",
                                long_type_name(&value)
                            )));
                        }
                        if action == "ADD" {
                            update.add.push((path, value));
                        } else {
                            update.delete.push((path, value));
                        }
                    }
                }
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        let paths = update.paths();
        for (i, a) in paths.iter().enumerate() {
            for b in &paths[i + 1..] {
                if a.overlaps(b) {
                    return Err(ApiError::validation(format!(
                        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [{a}], path two: [{b}]"
                    )));
                }
            }
        }
        Ok(update)
    }

    fn update_operand(&mut self) -> Result<UpdOperand, ApiError> {
        match self.peek().clone() {
            Tok::Val(reference) => {
                self.next();
                Ok(UpdOperand::Value(self.value(&reference)?))
            }
            Tok::Ident(function) if self.peek_at(1) == &Tok::LParen => {
                self.next();
                self.next();
                let out = match function.as_str() {
                    "if_not_exists" => {
                        let path = self.path()?;
                        self.expect(&Tok::Comma)?;
                        UpdOperand::IfNotExists(path, Box::new(self.update_operand()?))
                    }
                    "list_append" => {
                        let a = self.update_operand()?;
                        self.expect(&Tok::Comma)?;
                        UpdOperand::ListAppend(Box::new(a), Box::new(self.update_operand()?))
                    }
                    other => {
                        return Err(ApiError::validation(format!(
                            "Invalid UpdateExpression: Invalid function name; function: {other}"
                        )));
                    }
                };
                self.expect(&Tok::RParen)?;
                Ok(out)
            }
            _ => Ok(UpdOperand::Path(self.path()?)),
        }
    }
}

fn long_type_name(value: &Value) -> &'static str {
    match value {
        Value::S(_) => "STRING",
        Value::N(_) => "NUMBER",
        Value::B(_) => "BINARY",
        Value::Bool(_) => "BOOLEAN",
        Value::Null => "NULL",
        Value::L(_) => "LIST",
        Value::M(_) => "MAP",
        Value::Ss(_) => "SS",
        Value::Ns(_) => "NS",
        Value::Bs(_) => "BS",
    }
}

// ------------------------------------------------------------------------------ evaluation

/// The value at `path` in `item`.
pub fn get<'a>(item: &'a Item, path: &Path) -> Option<&'a Value> {
    let mut elems = path.0.iter();
    let Some(PathElem::Attr(first)) = elems.next() else {
        return None;
    };
    let mut current = item.get(first)?;
    for elem in elems {
        current = match (elem, current) {
            (PathElem::Attr(k), Value::M(map)) => map.get(k)?,
            (PathElem::Index(i), Value::L(list)) => list.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

fn operand_value(item: &Item, operand: &Operand) -> Option<Value> {
    match operand {
        Operand::Value(v) => Some(v.clone()),
        Operand::Path(p) => get(item, p).cloned(),
        Operand::Size(p) => {
            let n = match get(item, p)? {
                Value::S(s) => s.chars().count(),
                Value::B(b) => b.len(),
                Value::L(l) => l.len(),
                Value::M(m) => m.len(),
                Value::Ss(s) => s.len(),
                Value::Ns(s) => s.len(),
                Value::Bs(s) => s.len(),
                _ => return None,
            };
            Some(Value::N(Number::from_u64(n as u64)))
        }
    }
}

/// Whether `cond` holds for `item` (an absent item is an item with no attributes).
pub fn eval(cond: &Cond, item: &Item) -> bool {
    match cond {
        Cond::Cmp(a, op, b) => {
            let (a, b) = (operand_value(item, a), operand_value(item, b));
            match op {
                CmpOp::Eq => matches!((&a, &b), (Some(a), Some(b)) if a.equals(b)),
                CmpOp::Ne => !matches!((&a, &b), (Some(a), Some(b)) if a.equals(b)),
                _ => {
                    let ordering = match (&a, &b) {
                        (Some(a), Some(b)) => a.ordering(b),
                        _ => None,
                    };
                    match ordering {
                        None => false,
                        Some(o) => match op {
                            CmpOp::Lt => o == Ordering::Less,
                            CmpOp::Le => o != Ordering::Greater,
                            CmpOp::Gt => o == Ordering::Greater,
                            CmpOp::Ge => o != Ordering::Less,
                            CmpOp::Eq | CmpOp::Ne => unreachable!(),
                        },
                    }
                }
            }
        }
        Cond::Between(x, low, high) => {
            match (
                operand_value(item, x),
                operand_value(item, low),
                operand_value(item, high),
            ) {
                (Some(x), Some(l), Some(h)) => {
                    matches!(x.ordering(&l), Some(Ordering::Greater | Ordering::Equal))
                        && matches!(x.ordering(&h), Some(Ordering::Less | Ordering::Equal))
                }
                _ => false,
            }
        }
        Cond::In(x, list) => match operand_value(item, x) {
            Some(x) => list
                .iter()
                .any(|o| operand_value(item, o).is_some_and(|v| v.equals(&x))),
            None => false,
        },
        Cond::Exists(p) => get(item, p).is_some(),
        Cond::NotExists(p) => get(item, p).is_none(),
        Cond::AttrType(p, t) => match (get(item, p), operand_value(item, t)) {
            (Some(v), Some(Value::S(t))) => v.type_name() == t,
            _ => false,
        },
        Cond::BeginsWith(a, b) => match (operand_value(item, a), operand_value(item, b)) {
            (Some(Value::S(a)), Some(Value::S(b))) => a.starts_with(&b),
            (Some(Value::B(a)), Some(Value::B(b))) => a.starts_with(&b),
            _ => false,
        },
        Cond::Contains(a, b) => match (operand_value(item, a), operand_value(item, b)) {
            (Some(Value::S(a)), Some(Value::S(b))) => a.contains(&b),
            (Some(Value::Ss(set)), Some(Value::S(b))) => set.contains(&b),
            (Some(Value::Ns(set)), Some(Value::N(b))) => set.contains(&b),
            (Some(Value::Bs(set)), Some(Value::B(b))) => set.contains(&b),
            (Some(Value::L(list)), Some(b)) => list.iter().any(|v| v.equals(&b)),
            _ => false,
        },
        Cond::And(a, b) => eval(a, item) && eval(b, item),
        Cond::Or(a, b) => eval(a, item) || eval(b, item),
        Cond::Not(a) => !eval(a, item),
    }
}

fn incorrect_type() -> ApiError {
    ApiError::validation("An operand in the update expression has an incorrect data type")
}

fn update_operand_value(item: &Item, operand: &UpdOperand) -> Result<Value, ApiError> {
    match operand {
        UpdOperand::Value(v) => Ok(v.clone()),
        UpdOperand::Path(p) => get(item, p).cloned().ok_or_else(|| {
            ApiError::validation(
                "The provided expression refers to an attribute that does not exist in the item",
            )
        }),
        UpdOperand::IfNotExists(p, fallback) => match get(item, p) {
            Some(v) => Ok(v.clone()),
            None => update_operand_value(item, fallback),
        },
        UpdOperand::ListAppend(a, b) => {
            match (
                update_operand_value(item, a)?,
                update_operand_value(item, b)?,
            ) {
                (Value::L(mut a), Value::L(b)) => {
                    a.extend(b);
                    Ok(Value::L(a))
                }
                _ => Err(incorrect_type()),
            }
        }
    }
}

fn number_error(e: crate::number::NumberError) -> ApiError {
    ApiError::validation(e.message())
}

/// `item` with `update` applied; every operand is read from `item` as it was before.
pub fn apply_update(item: &Item, update: &Update) -> Result<Item, ApiError> {
    let mut writes: Vec<(&Path, Option<Value>)> = Vec::new();
    for (path, value) in &update.set {
        let v = match value {
            SetValue::Operand(o) => update_operand_value(item, o)?,
            SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                let (Value::N(a), Value::N(b)) = (
                    update_operand_value(item, a)?,
                    update_operand_value(item, b)?,
                ) else {
                    return Err(incorrect_type());
                };
                let result = if matches!(value, SetValue::Plus(..)) {
                    a.add(&b)
                } else {
                    a.sub(&b)
                };
                Value::N(result.map_err(number_error)?)
            }
        };
        writes.push((path, Some(v)));
    }
    for (path, operand) in &update.add {
        let v = match (get(item, path), operand) {
            (None, v) => v.clone(),
            (Some(Value::N(a)), Value::N(b)) => Value::N(a.add(b).map_err(number_error)?),
            (Some(Value::Ss(a)), Value::Ss(b)) => Value::Ss(union(a, b)),
            (Some(Value::Ns(a)), Value::Ns(b)) => Value::Ns(union(a, b)),
            (Some(Value::Bs(a)), Value::Bs(b)) => Value::Bs(union(a, b)),
            _ => return Err(incorrect_type()),
        };
        writes.push((path, Some(v)));
    }
    for (path, operand) in &update.delete {
        let v = match (get(item, path), operand) {
            (None, _) => continue,
            (Some(Value::Ss(a)), Value::Ss(b)) => non_empty(difference(a, b), Value::Ss),
            (Some(Value::Ns(a)), Value::Ns(b)) => non_empty(difference(a, b), Value::Ns),
            (Some(Value::Bs(a)), Value::Bs(b)) => non_empty(difference(a, b), Value::Bs),
            _ => return Err(incorrect_type()),
        };
        writes.push((path, v));
    }
    let mut out = item.clone();
    for (path, value) in writes {
        match value {
            Some(v) => set_path(&mut out, path, v)?,
            None => remove_path(&mut out, path)?,
        }
    }
    // Removals from one list, highest index first, so that each removes what it named.
    let mut removals: Vec<&Path> = update.remove.iter().collect();
    removals.sort();
    for path in removals.into_iter().rev() {
        remove_path(&mut out, path)?;
    }
    Ok(out)
}

fn union<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = a.to_vec();
    for x in b {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

fn difference<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

fn non_empty<T>(members: Vec<T>, wrap: fn(Vec<T>) -> Value) -> Option<Value> {
    (!members.is_empty()).then(|| wrap(members))
}

fn invalid_path() -> ApiError {
    ApiError::validation(
        "The document path provided in the update expression is invalid for update",
    )
}

/// The container that holds the last element of `path`, or an error if it is missing.
fn parent_mut<'a>(item: &'a mut Item, path: &Path) -> Result<Option<&'a mut Value>, ApiError> {
    let elems = &path.0;
    if elems.len() == 1 {
        return Ok(None);
    }
    let Some(PathElem::Attr(first)) = elems.first() else {
        return Err(invalid_path());
    };
    let mut current = item.get_mut(first).ok_or_else(invalid_path)?;
    for elem in &elems[1..elems.len() - 1] {
        current = match (elem, current) {
            (PathElem::Attr(k), Value::M(map)) => map.get_mut(k).ok_or_else(invalid_path)?,
            (PathElem::Index(i), Value::L(list)) => list.get_mut(*i).ok_or_else(invalid_path)?,
            _ => return Err(invalid_path()),
        };
    }
    Ok(Some(current))
}

fn set_path(item: &mut Item, path: &Path, value: Value) -> Result<(), ApiError> {
    let last = path.0.last().ok_or_else(invalid_path)?;
    match (parent_mut(item, path)?, last) {
        (None, PathElem::Attr(name)) => {
            item.insert(name.clone(), value);
        }
        (Some(Value::M(map)), PathElem::Attr(k)) => {
            map.insert(k.clone(), value);
        }
        (Some(Value::L(list)), PathElem::Index(i)) => {
            if *i < list.len() {
                list[*i] = value;
            } else {
                list.push(value);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

fn remove_path(item: &mut Item, path: &Path) -> Result<(), ApiError> {
    let last = path.0.last().ok_or_else(invalid_path)?;
    match (parent_mut(item, path)?, last) {
        (None, PathElem::Attr(name)) => {
            item.remove(name);
        }
        (Some(Value::M(map)), PathElem::Attr(k)) => {
            map.remove(k);
        }
        (Some(Value::L(list)), PathElem::Index(i)) => {
            if *i < list.len() {
                list.remove(*i);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

/// The attributes of `item` that `paths` name (nested ones inside their parents).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for path in paths {
        let Some(value) = get(item, path) else {
            continue;
        };
        let mut elems = path.0.iter();
        let Some(PathElem::Attr(first)) = elems.next() else {
            continue;
        };
        let rest: Vec<&PathElem> = elems.collect();
        if rest.is_empty() {
            out.insert(first.clone(), value.clone());
            continue;
        }
        let template = match rest[0] {
            PathElem::Attr(_) => Value::M(BTreeMap::new()),
            PathElem::Index(_) => Value::L(Vec::new()),
        };
        let slot = out.entry(first.clone()).or_insert(template);
        insert_nested(slot, &rest, value.clone());
    }
    out
}

fn insert_nested(slot: &mut Value, rest: &[&PathElem], value: Value) {
    let Some((head, tail)) = rest.split_first() else {
        *slot = value;
        return;
    };
    let template = match tail.first() {
        Some(PathElem::Attr(_)) => Value::M(BTreeMap::new()),
        Some(PathElem::Index(_)) => Value::L(Vec::new()),
        None => Value::Null,
    };
    match (head, slot) {
        (PathElem::Attr(k), Value::M(map)) => {
            let child = map.entry(k.clone()).or_insert(template);
            insert_nested(child, tail, value);
        }
        (PathElem::Index(_), Value::L(list)) => {
            list.push(template);
            if let Some(child) = list.last_mut() {
                insert_nested(child, tail, value);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::item_from_json;
    use serde_json::json;

    fn cx(names: &[(&str, &str)], values: serde_json::Value) -> Context {
        Context::new(
            names
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            item_from_json(&values).unwrap(),
        )
    }

    fn item(j: serde_json::Value) -> Item {
        item_from_json(&j).unwrap()
    }

    #[test]
    fn the_products_conditions() {
        let meta = item(json!({"pk": {"S": "space#a"}, "hv": {"N": "3"}, "owner": {"S": "alice"}}));
        let mut c = cx(&[("#pk", "pk")], json!({}));
        assert!(eval(&c.condition("attribute_exists(#pk)").unwrap(), &meta));
        assert!(!eval(
            &c.condition("attribute_not_exists(#pk)").unwrap(),
            &meta
        ));
        c.finish().unwrap();

        let mut c = cx(&[("#hv", "hv")], json!({":expected": {"N": "3"}}));
        assert!(eval(&c.condition("#hv = :expected").unwrap(), &meta));
        let mut c = cx(&[("#count", "count")], json!({":limit": {"N": "2"}}));
        let below = c
            .condition("attribute_not_exists(#count) OR #count < :limit")
            .unwrap();
        assert!(eval(&below, &Item::new()));
        assert!(eval(&below, &item(json!({"count": {"N": "1"}}))));
        assert!(!eval(&below, &item(json!({"count": {"N": "2"}}))));

        let mut c = cx(
            &[("#pk", "pk"), ("#owner", "owner")],
            json!({":u0": {"S": "bob"}, ":u1": {"S": "alice"}}),
        );
        let cond = c
            .condition("attribute_exists(#pk) AND NOT (#owner IN (:u0, :u1))")
            .unwrap();
        assert!(!eval(&cond, &meta));
        assert!(eval(&cond, &item(json!({"pk": {"S": "x"}}))));
        c.finish().unwrap();
    }

    #[test]
    fn precedence_and_comparisons() {
        let it = item(json!({"a": {"N": "5"}, "s": {"S": "hello"}}));
        let mut c = cx(
            &[],
            json!({":one": {"N": "1"}, ":ten": {"N": "10"}, ":h": {"S": "he"}}),
        );
        let yes = [
            "a BETWEEN :one AND :ten",
            "a > :one AND a < :ten",
            "NOT a = :one",
            "a = :one OR a <> :one AND a < :ten",
            "begins_with(s, :h)",
            "contains(s, :h)",
            "size(s) > :one",
            "missing <> :one",
        ];
        for text in yes {
            assert!(eval(&c.condition(text).unwrap(), &it), "{text}");
        }
        for text in [
            "missing = :one",
            "missing < :ten",
            "s < :one",
            "(a = :one OR a = :ten) AND a > :one",
        ] {
            assert!(!eval(&c.condition(text).unwrap(), &it), "{text}");
        }
    }

    #[test]
    fn unused_and_undefined_references_are_refused() {
        let mut c = cx(&[("#a", "a"), ("#b", "b")], json!({":v": {"N": "1"}}));
        c.condition("#a = :v").unwrap();
        let err = c.finish().unwrap_err();
        assert!(
            err.message.contains("ExpressionAttributeNames unused"),
            "{err}"
        );
        let mut c = cx(&[], json!({}));
        let err = c.condition("#x = :y").unwrap_err();
        assert!(err.message.contains("attribute name"), "{err}");
        let c = cx(&[], json!({":v": {"N": "1"}}));
        assert!(c.finish().is_err(), "values without an expression");
        let mut c = cx(&[], json!({}));
        assert!(c.condition("a = = b").is_err());
        assert!(c.condition("a AND").is_err());
        assert!(c.condition("").is_err());
    }

    #[test]
    fn the_products_updates() {
        let meta =
            item(json!({"pk": {"S": "p"}, "hv": {"N": "3"}, "members": {"SS": ["bob", "carol"]}}));
        let mut c = cx(
            &[("#hv", "hv"), ("#hi", "hi"), ("#hiv", "hiv")],
            json!({":next": {"N": "4"}, ":items": {"L": [{"S": "e#a"}]}}),
        );
        let u = c
            .update("SET #hv = :next, #hi = :items, #hiv = :next")
            .unwrap();
        c.finish().unwrap();
        let after = apply_update(&meta, &u).unwrap();
        assert_eq!(after["hv"], Value::N(Number::from_u64(4)));
        assert_eq!(after["hiv"], Value::N(Number::from_u64(4)));

        let mut c = cx(
            &[("#av", "av"), ("#members", "members"), ("#link", "link")],
            json!({":one": {"N": "1"}, ":add": {"SS": ["dave", "bob"]}, ":link": {"S": "open"}}),
        );
        let u = c
            .update("SET #link = :link ADD #av :one, #members :add")
            .unwrap();
        let after = apply_update(&meta, &u).unwrap();
        assert_eq!(after["av"], Value::N(Number::from_u64(1)));
        assert_eq!(
            after["members"],
            Value::Ss(vec!["bob".into(), "carol".into(), "dave".into()])
        );
        let after = apply_update(&after, &u).unwrap();
        assert_eq!(after["av"], Value::N(Number::from_u64(2)));

        let mut c = cx(
            &[("#members", "members")],
            json!({":remove": {"SS": ["bob", "carol"]}}),
        );
        let u = c.update("DELETE #members :remove").unwrap();
        let after = apply_update(&meta, &u).unwrap();
        assert!(!after.contains_key("members"), "an emptied set is removed");

        let mut c = cx(&[("#members", "members")], json!({}));
        let u = c.update("REMOVE #members").unwrap();
        assert!(!apply_update(&meta, &u).unwrap().contains_key("members"));
    }

    #[test]
    fn update_refusals() {
        let mut c = cx(
            &[("#m", "m")],
            json!({":a": {"SS": ["x"]}, ":s": {"S": "x"}}),
        );
        let err = c.update("ADD #m :a DELETE #m :a").unwrap_err();
        assert!(err.message.contains("overlap"), "{err}");
        assert!(c.update("ADD #m :s").is_err(), "ADD of a string");
        assert!(
            c.update("SET #m = :s SET #m = :s").is_err(),
            "two SET sections"
        );
        let u = c.update("ADD #m :a").unwrap();
        let err = apply_update(&item(json!({"m": {"N": "1"}})), &u).unwrap_err();
        assert!(err.message.contains("incorrect data type"), "{err}");
        let mut c = cx(&[], json!({":one": {"N": "1"}}));
        let u = c.update("SET a = b + :one").unwrap();
        assert!(apply_update(&Item::new(), &u).is_err(), "b does not exist");
        let u = c.update("SET a = if_not_exists(a, :one) + :one").unwrap();
        assert_eq!(
            apply_update(&Item::new(), &u).unwrap()["a"],
            Value::N(Number::from_u64(2))
        );
    }

    #[test]
    fn nested_paths_and_projection() {
        let it = item(json!({"m": {"M": {"x": {"L": [{"N": "1"}, {"N": "2"}]}}}, "k": {"S": "v"}}));
        let mut c = cx(&[], json!({":v": {"N": "9"}}));
        let u = c.update("SET m.x[1] = :v, m.y = :v").unwrap();
        let after = apply_update(&it, &u).unwrap();
        let p = c.projection("m.x[1], k").unwrap();
        let projected = project(&after, &p);
        assert_eq!(
            crate::value::item_to_json(&projected),
            json!({"k": {"S": "v"}, "m": {"M": {"x": {"L": [{"N": "9"}]}}}})
        );
        let u = c.update("SET nope.x = :v").unwrap();
        assert!(apply_update(&it, &u).is_err());
    }
}
