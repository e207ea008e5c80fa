//! Go's text/template syntax: text, `{{ }}` actions with `-` trim markers, comments, pipelines,
//! variables, `if`/`else if`/`with`/`range`/`define`/`template`/`block`/`break`/`continue`.
//! Every node keeps its byte position and source text, for errors worded as Go words them.

use std::collections::{HashMap, HashSet};

/// A parse error: `template: NAME:LINE: msg`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub name: String,
    pub line: usize,
    pub msg: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "template: {}:{}: {}", self.name, self.line, self.msg)
    }
}

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Template {
        pos: usize,
        text: String,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub pipe: Pipe,
    pub then: Vec<Node>,
    pub els: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    /// Variables declared (`$x :=`) or assigned (`$x =`).
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub struct Cmd {
    pub pos: usize,
    /// The command as written, for `at <...>` in errors.
    pub text: String,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub enum Number {
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone)]
pub enum Arg {
    Dot(usize),
    /// `.A.B` on dot.
    Field(usize, String, Vec<String>),
    /// `$x.A.B`.
    Var(usize, String, String, Vec<String>),
    Func(usize, String),
    Str(usize, String, String),
    Num(usize, String, Number),
    Bool(usize, bool),
    Nil(usize),
    /// `( pipeline ).A.B`.
    Sub(usize, String, Box<Pipe>, Vec<String>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Dot(p)
            | Arg::Field(p, ..)
            | Arg::Var(p, ..)
            | Arg::Func(p, _)
            | Arg::Str(p, ..)
            | Arg::Num(p, ..)
            | Arg::Bool(p, _)
            | Arg::Nil(p)
            | Arg::Sub(p, ..) => *p,
        }
    }

    /// The operand as written.
    pub fn text(&self) -> String {
        match self {
            Arg::Dot(_) => ".".into(),
            Arg::Field(_, t, _) | Arg::Var(_, t, ..) | Arg::Str(_, t, _) | Arg::Num(_, t, _) => {
                t.clone()
            }
            Arg::Sub(_, t, ..) => t.clone(),
            Arg::Func(_, n) => n.clone(),
            Arg::Bool(_, b) => b.to_string(),
            Arg::Nil(_) => "nil".into(),
        }
    }
}

/// A parsed template: its body and the templates it `define`s.
#[derive(Debug, Clone)]
pub struct Tree {
    pub name: String,
    pub src: String,
    pub root: Vec<Node>,
    pub defs: HashMap<String, Vec<Node>>,
}

impl Tree {
    /// 1-based line and 0-based byte column of `pos`, as Go reports them.
    pub fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.src.as_bytes()[..pos.min(self.src.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = match before.iter().rposition(|&b| b == b'\n') {
            Some(i) => pos - i - 1,
            None => pos,
        };
        (line, col)
    }
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// Nesting of parentheses and control structures allowed (Go allows 10,000 parentheses; a
/// smaller limit keeps the recursive parser well within a thread's stack).
const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Str(String, String),
    Char(i64, String),
    Num(String),
    Space,
}

struct Parser<'a> {
    name: String,
    src: &'a str,
    pos: usize,
    funcs: &'a HashSet<&'static str>,
    vars: Vec<String>,
    defs: HashMap<String, Vec<Node>>,
    depth: usize,
    range_depth: usize,
}

/// What ended a list of nodes.
#[allow(clippy::enum_variant_names)]
enum End {
    Eof,
    End,
    Else(usize),
    ElseIf(usize, Pipe),
    ElseWith(usize, Pipe),
}

/// One action's tokens, with byte positions.
struct Action {
    toks: Vec<(usize, Tok)>,
    i: usize,
    start: usize,
    end: usize,
}

pub fn parse(name: &str, src: &str, funcs: &HashSet<&'static str>) -> Result<Tree, ParseError> {
    let mut p = Parser {
        name: name.to_string(),
        src,
        pos: 0,
        funcs,
        vars: vec!["$".into()],
        defs: HashMap::new(),
        depth: 0,
        range_depth: 0,
    };
    let (root, end) = p.list(true)?;
    match end {
        End::Eof => {}
        End::End => return Err(p.err_at(p.pos, "unexpected {{end}}")),
        End::Else(at) | End::ElseIf(at, _) | End::ElseWith(at, _) => {
            return Err(p.err_at(at, "unexpected {{else}}"));
        }
    }
    Ok(Tree {
        name: name.to_string(),
        src: src.to_string(),
        root,
        defs: p.defs,
    })
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

impl Parser<'_> {
    fn line_of(&self, pos: usize) -> usize {
        self.src.as_bytes()[..pos.min(self.src.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err_at(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.clone(),
            line: self.line_of(pos),
            msg: msg.into(),
        }
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of input.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, End), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_string()));
                }
                self.pos = self.src.len();
                return Ok((nodes, End::Eof));
            };
            let mut text = &rest[..open];
            let action_at = self.pos + open;
            let mut body = action_at + 2;
            let b = self.src.as_bytes();
            // `{{- ` trims the text before.
            if b.get(body) == Some(&b'-') && b.get(body + 1).is_some_and(|&c| is_space(c)) {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
                body += 2;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            // A comment.
            let after_space = body
                + self.src[body..]
                    .bytes()
                    .take_while(|&c| is_space(c))
                    .count();
            if self.src[after_space..].starts_with("/*") {
                let Some(close) = self.src[after_space + 2..].find("*/") else {
                    return Err(self.err_at(action_at, "unclosed comment"));
                };
                let mut p = after_space + 2 + close + 2;
                let trim_after;
                let rest = &self.src[p..];
                let sp = rest.bytes().take_while(|&c| is_space(c)).count();
                if rest[sp..].starts_with("-}}") && sp > 0 {
                    p += sp + 3;
                    trim_after = true;
                } else if rest.starts_with("}}") {
                    p += 2;
                    trim_after = false;
                } else {
                    return Err(self.err_at(action_at, "comment ends before closing delimiter"));
                }
                self.pos = p;
                if trim_after {
                    self.skip_space();
                }
                continue;
            }
            let action = self.lex_action(action_at, body)?;
            let trim_after = action.1;
            let mut a = action.0;
            self.pos = a.end;
            if trim_after {
                // Applied to the text that follows: skip its leading whitespace now.
                let skip = self.src[self.pos..]
                    .bytes()
                    .take_while(|&c| is_space(c))
                    .count();
                self.pos += skip;
            }
            match a.peek_non_space() {
                Some(Tok::Ident(k)) if KEYWORDS.contains(&k.as_str()) => {
                    let kw = k.clone();
                    a.next_non_space();
                    match kw.as_str() {
                        "end" => {
                            a.expect_end(self, "end")?;
                            return Ok((nodes, End::End));
                        }
                        "else" => {
                            match a.peek_non_space() {
                                Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                                    let k = k.clone();
                                    a.next_non_space();
                                    let pipe = self.pipeline(&mut a, false, &k)?;
                                    return Ok((
                                        nodes,
                                        if k == "if" {
                                            End::ElseIf(action_at, pipe)
                                        } else {
                                            End::ElseWith(action_at, pipe)
                                        },
                                    ));
                                }
                                _ => {}
                            }
                            a.expect_end(self, "else")?;
                            return Ok((nodes, End::Else(action_at)));
                        }
                        "if" | "with" | "range" => {
                            let n = self.control(&kw, &mut a, action_at)?;
                            nodes.push(n);
                        }
                        "define" => {
                            if !top || self.depth > 0 {
                                return Err(
                                    self.err_at(action_at, "unexpected <define> in command")
                                );
                            }
                            let name = a.string_arg(self, "define clause")?;
                            a.expect_end(self, "define clause")?;
                            let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                            let (body, end) = self.list(false)?;
                            self.vars = saved;
                            if !matches!(end, End::End) {
                                return Err(self.err_at(self.pos, "unexpected EOF"));
                            }
                            self.add_def(action_at, name, body)?;
                        }
                        "template" | "block" => {
                            let name = a.string_arg(self, &format!("{kw} clause"))?;
                            let pipe = if a.at_end() {
                                None
                            } else {
                                Some(self.pipeline(&mut a, false, &kw)?)
                            };
                            if kw == "block" {
                                let Some(pipe) = pipe else {
                                    return Err(
                                        self.err_at(action_at, "missing value for block clause")
                                    );
                                };
                                self.depth += 1;
                                if self.depth > MAX_DEPTH {
                                    return Err(
                                        self.err_at(action_at, "max expression depth exceeded")
                                    );
                                }
                                let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                                let (body, end) = self.list(false)?;
                                self.vars = saved;
                                self.depth -= 1;
                                if !matches!(end, End::End) {
                                    return Err(self.err_at(self.pos, "unexpected EOF"));
                                }
                                self.add_def(action_at, name.clone(), body)?;
                                nodes.push(Node::Template {
                                    pos: action_at,
                                    text: format!("{{{{template \"{name}\"}}}}"),
                                    name,
                                    pipe: Some(pipe),
                                });
                            } else {
                                nodes.push(Node::Template {
                                    pos: action_at,
                                    text: format!("{{{{template \"{name}\"}}}}"),
                                    name,
                                    pipe,
                                });
                            }
                        }
                        "break" | "continue" => {
                            if self.range_depth == 0 {
                                return Err(self.err_at(
                                    action_at,
                                    format!("{{{{{kw}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            a.expect_end(self, &kw)?;
                            nodes.push(if kw == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        _ => unreachable!(),
                    }
                }
                _ => {
                    let pipe = self.pipeline(&mut a, true, "command")?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
    }

    fn skip_space(&mut self) {
        let skip = self.src[self.pos..]
            .bytes()
            .take_while(|&c| is_space(c))
            .count();
        self.pos += skip;
    }

    fn add_def(&mut self, at: usize, name: String, body: Vec<Node>) -> Result<(), ParseError> {
        let empty = body
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        if let Some(old) = self.defs.get(&name) {
            let old_empty = old
                .iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
            if !empty && !old_empty {
                return Err(self.err_at(
                    at,
                    format!("template: multiple definition of template \"{name}\""),
                ));
            }
            if empty {
                return Ok(());
            }
        }
        self.defs.insert(name, body);
        Ok(())
    }

    fn control(&mut self, kw: &str, a: &mut Action, at: usize) -> Result<Node, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_at(at, "max expression depth exceeded"));
        }
        let vars_before = self.vars.len();
        let pipe = self.pipeline(a, false, kw)?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let (then, end) = self.list(false)?;
        if kw == "range" {
            self.range_depth -= 1;
        }
        // Variables declared in the pipeline are visible in the `else` too (Go pops them at
        // `end`).
        let els = match end {
            End::Eof => return Err(self.err_at(self.pos, "unexpected EOF")),
            End::End => None,
            End::Else(_) => {
                let (els, end) = self.list(false)?;
                if !matches!(end, End::End) {
                    return Err(match end {
                        End::Eof => self.err_at(self.pos, "unexpected EOF"),
                        _ => self.err_at(self.pos, "expected end; found {{else}}"),
                    });
                }
                Some(els)
            }
            End::ElseIf(p, pipe) => Some(vec![self.else_chain("if", pipe, p)?]),
            End::ElseWith(p, pipe) => Some(vec![self.else_chain("with", pipe, p)?]),
        };
        self.vars.truncate(vars_before);
        self.depth -= 1;
        Ok(match kw {
            "if" => Node::If(Branch { pipe, then, els }),
            "with" => Node::With(Branch { pipe, then, els }),
            _ => Node::Range(Branch { pipe, then, els }),
        })
    }

    /// The `if`/`with` that an `{{else if P}}` opens, ending at the shared `{{end}}`.
    fn else_chain(&mut self, kw: &str, pipe: Pipe, at: usize) -> Result<Node, ParseError> {
        // Each `{{else if}}` nests one level deeper (and executes so): counted as nesting.
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_at(at, "max expression depth exceeded"));
        }
        let r = self.else_chain_body(kw, pipe);
        self.depth -= 1;
        r
    }

    fn else_chain_body(&mut self, kw: &str, pipe: Pipe) -> Result<Node, ParseError> {
        let vars_before = self.vars.len();
        let (then, end) = self.list(false)?;
        let els = match end {
            End::Eof => return Err(self.err_at(self.pos, "unexpected EOF")),
            End::End => None,
            End::Else(_) => {
                let (els, end) = self.list(false)?;
                if !matches!(end, End::End) {
                    return Err(self.err_at(self.pos, "expected end; found {{else}}"));
                }
                Some(els)
            }
            End::ElseIf(p, pipe) => Some(vec![self.else_chain("if", pipe, p)?]),
            End::ElseWith(p, pipe) => Some(vec![self.else_chain("with", pipe, p)?]),
        };
        self.vars.truncate(vars_before);
        let b = Branch { pipe, then, els };
        Ok(if kw == "with" {
            Node::With(b)
        } else {
            Node::If(b)
        })
    }

    /// Tokenize one action starting at `body` (after `{{` and any `- `). Returns the tokens
    /// and whether it ends with ` -}}`.
    fn lex_action(&self, at: usize, body: usize) -> Result<(Action, bool), ParseError> {
        let b = self.src.as_bytes();
        let mut i = body;
        let mut toks = Vec::new();
        let mut parens = 0i32;
        loop {
            if i >= b.len() {
                return Err(self.err_at(at, "unclosed action"));
            }
            let c = b[i];
            // ` -}}`
            if is_space(c) {
                let start = i;
                while i < b.len() && is_space(b[i]) {
                    i += 1;
                }
                if self.src[i..].starts_with("-}}") {
                    if parens > 0 {
                        return Err(self.err_at(at, "unclosed left paren"));
                    }
                    return Ok((
                        Action {
                            toks,
                            i: 0,
                            start: at,
                            end: i + 3,
                        },
                        true,
                    ));
                }
                toks.push((start, Tok::Space));
                continue;
            }
            if self.src[i..].starts_with("}}") {
                if parens > 0 {
                    return Err(self.err_at(at, "unclosed left paren"));
                }
                return Ok((
                    Action {
                        toks,
                        i: 0,
                        start: at,
                        end: i + 2,
                    },
                    false,
                ));
            }
            let start = i;
            match c {
                b'|' => {
                    toks.push((i, Tok::Pipe));
                    i += 1;
                }
                b'(' => {
                    parens += 1;
                    toks.push((i, Tok::LParen));
                    i += 1;
                }
                b')' => {
                    parens -= 1;
                    if parens < 0 {
                        return Err(self.err_at(i, "unexpected right paren U+0029 ')'"));
                    }
                    toks.push((i, Tok::RParen));
                    i += 1;
                }
                b',' => {
                    toks.push((i, Tok::Comma));
                    i += 1;
                }
                b':' => {
                    if b.get(i + 1) != Some(&b'=') {
                        return Err(self.err_at(i, "expected :="));
                    }
                    toks.push((i, Tok::Declare));
                    i += 2;
                }
                b'=' => {
                    toks.push((i, Tok::Assign));
                    i += 1;
                }
                b'"' => {
                    let mut j = i + 1;
                    loop {
                        match b.get(j) {
                            None | Some(b'\n') => {
                                return Err(self.err_at(i, "unterminated quoted string"));
                            }
                            Some(b'\\') => j += 2,
                            Some(b'"') => break,
                            _ => j += 1,
                        }
                    }
                    let raw = &self.src[i..=j];
                    let v = unquote(raw)
                        .ok_or_else(|| self.err_at(i, format!("invalid syntax: {raw}")))?;
                    toks.push((i, Tok::Str(raw.to_string(), v)));
                    i = j + 1;
                }
                b'`' => {
                    let Some(close) = self.src[i + 1..].find('`') else {
                        return Err(self.err_at(i, "unterminated raw quoted string"));
                    };
                    let raw = &self.src[i..i + close + 2];
                    let v = self.src[i + 1..i + 1 + close].replace('\r', "");
                    toks.push((i, Tok::Str(raw.to_string(), v)));
                    i += close + 2;
                }
                b'\'' => {
                    let Some(close) = self.src[i + 1..].find('\'') else {
                        return Err(self.err_at(i, "unterminated character constant"));
                    };
                    let raw = &self.src[i..i + close + 2];
                    let inner = &self.src[i + 1..i + 1 + close];
                    let ch = if inner.starts_with('\\') {
                        unquote(&format!("\"{inner}\"")).and_then(|s| s.chars().next())
                    } else {
                        inner.chars().next().filter(|_| inner.chars().count() == 1)
                    };
                    let Some(ch) = ch else {
                        return Err(self.err_at(i, format!("malformed character constant: {raw}")));
                    };
                    toks.push((i, Tok::Char(ch as i64, raw.to_string())));
                    i += close + 2;
                }
                b'$' => {
                    let mut j = i + 1;
                    while j < b.len() && is_ident_byte(b[j]) {
                        j += 1;
                    }
                    toks.push((i, Tok::Var(self.src[i..j].to_string())));
                    i = j;
                }
                b'.' => {
                    if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                        let j = number_end(b, i);
                        toks.push((i, Tok::Num(self.src[i..j].to_string())));
                        i = j;
                    } else {
                        let mut j = i + 1;
                        while j < b.len() && is_ident_byte(b[j]) {
                            j += 1;
                        }
                        if j == i + 1 {
                            toks.push((i, Tok::Dot));
                        } else {
                            toks.push((i, Tok::Field(self.src[i + 1..j].to_string())));
                        }
                        i = j;
                    }
                }
                b'0'..=b'9' | b'+' | b'-' => {
                    let j = number_end(b, i);
                    if j == i || (j == i + 1 && !c.is_ascii_digit()) {
                        return Err(self.err_at(
                            i,
                            format!(
                                "bad number syntax: {:?}",
                                &self.src[i..(i + 1).min(b.len())]
                            ),
                        ));
                    }
                    let text = &self.src[i..j];
                    if j < b.len() && is_ident_byte(b[j]) {
                        let mut k = j;
                        while k < b.len() && is_ident_byte(b[k]) {
                            k += 1;
                        }
                        return Err(
                            self.err_at(i, format!("bad number syntax: {:?}", &self.src[i..k]))
                        );
                    }
                    toks.push((i, Tok::Num(text.to_string())));
                    i = j;
                }
                c if is_ident_byte(c) => {
                    let mut j = i;
                    while j < b.len() && is_ident_byte(b[j]) {
                        j += 1;
                    }
                    toks.push((i, Tok::Ident(self.src[i..j].to_string())));
                    i = j;
                }
                _ => {
                    let ch = self.src[i..].chars().next().unwrap_or('?');
                    return Err(self.err_at(
                        start,
                        format!("unrecognized character in action: U+{:04X}", ch as u32),
                    ));
                }
            }
            // Identifiers and fields must end at a terminator.
            if let Some((_, Tok::Ident(_) | Tok::Field(_) | Tok::Var(_))) = toks.last()
                && i < b.len()
            {
                let n = b[i];
                if !(is_space(n)
                    || matches!(n, b'.' | b',' | b'|' | b':' | b')' | b'(' | b'}' | b'='))
                {
                    let ch = self.src[i..].chars().next().unwrap_or('?');
                    return Err(self.err_at(i, format!("bad character U+{:04X} '{ch}'", ch as u32)));
                }
            }
        }
    }

    /// A pipeline: optional declaration, then commands joined by `|`.
    fn pipeline(&mut self, a: &mut Action, top: bool, context: &str) -> Result<Pipe, ParseError> {
        let pos = a.peek_pos().unwrap_or(a.start);
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$i, $v :=`
        let save = a.i;
        if let Some(Tok::Var(v)) = a.peek_non_space().cloned() {
            a.next_non_space();
            match a.peek_non_space().cloned() {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    let t = a.next_non_space().unwrap();
                    assign = matches!(t, Tok::Assign);
                    decl.push(v);
                }
                Some(Tok::Comma) if context == "range" => {
                    a.next_non_space();
                    match (a.next_non_space(), a.next_non_space()) {
                        (Some(Tok::Var(v2)), Some(t @ (Tok::Declare | Tok::Assign))) => {
                            assign = matches!(t, Tok::Assign);
                            decl.push(v);
                            decl.push(v2);
                        }
                        _ => return Err(self.err_at(pos, "range can only initialize variables")),
                    }
                }
                Some(Tok::Comma) => {
                    return Err(self.err_at(pos, "too many declarations in command"));
                }
                _ => a.i = save,
            }
        }
        for v in &decl {
            if assign && !self.vars.contains(v) {
                return Err(self.err_at(pos, format!("undefined variable \"{v}\"")));
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command(a)?;
            cmds.push(cmd);
            match a.next_non_space() {
                Some(Tok::Pipe) => continue,
                None => break,
                Some(Tok::RParen) => {
                    a.i -= 1;
                    break;
                }
                Some(t) => {
                    return Err(
                        self.err_at(pos, format!("unexpected {} in {context}", tok_desc(&t)))
                    );
                }
            }
        }
        if cmds.is_empty() {
            return Err(self.err_at(pos, format!("missing value for {context}")));
        }
        // Declared after the pipeline is parsed: `$x := $x` reads the outer one.
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        let _ = top;
        Ok(Pipe { decl, assign, cmds })
    }

    fn command(&mut self, a: &mut Action) -> Result<Cmd, ParseError> {
        let pos = a.peek_pos().unwrap_or(a.start);
        let mut args = Vec::new();
        loop {
            match a.peek_non_space() {
                None | Some(Tok::Pipe) | Some(Tok::RParen) => break,
                _ => {}
            }
            let arg = self.operand(a)?;
            args.push(arg);
            // Operands are separated by spaces.
            match a.peek() {
                Some(Tok::Space) | None | Some(Tok::Pipe) | Some(Tok::RParen) => {}
                Some(t) => {
                    let t = t.clone();
                    return Err(self.err_at(pos, format!("unexpected {} in operand", tok_desc(&t))));
                }
            }
        }
        if args.is_empty() {
            return Err(self.err_at(pos, "missing value for command"));
        }
        let end = a
            .toks
            .get(a.i)
            .map(|(p, _)| *p)
            .unwrap_or(a.end.saturating_sub(2));
        let text = self.src[pos..end.max(pos)].trim_end().to_string();
        Ok(Cmd { pos, text, args })
    }

    fn operand(&mut self, a: &mut Action) -> Result<Arg, ParseError> {
        let (pos, tok) = match a.next_non_space_pos() {
            Some(x) => x,
            None => return Err(self.err_at(a.start, "missing value for command")),
        };
        let term = match tok {
            Tok::Dot => Arg::Dot(pos),
            Tok::Field(f) => {
                let mut fields = vec![f];
                fields.extend(a.fields());
                Arg::Field(pos, self.text_from(pos, a), Vec::new()).with_fields(fields)
            }
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err_at(pos, format!("undefined variable \"{v}\"")));
                }
                let fields = a.fields();
                Arg::Var(pos, self.text_from(pos, a), v, fields)
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Bool(pos, true),
                "false" => Arg::Bool(pos, false),
                "nil" => Arg::Nil(pos),
                k if KEYWORDS.contains(&k) => {
                    return Err(self.err_at(pos, format!("unexpected <{k}> in command")));
                }
                _ => {
                    if !self.funcs.contains(id.as_str()) {
                        return Err(self.err_at(pos, format!("function \"{id}\" not defined")));
                    }
                    Arg::Func(pos, id)
                }
            },
            Tok::Str(raw, v) => Arg::Str(pos, raw, v),
            Tok::Char(c, raw) => Arg::Num(pos, raw, Number::Int(c)),
            Tok::Num(t) => Arg::Num(
                pos,
                t.clone(),
                parse_number(&t)
                    .ok_or_else(|| self.err_at(pos, format!("bad number syntax: {t:?}")))?,
            ),
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err_at(pos, "max expression depth exceeded"));
                }
                let pipe = self.pipeline(a, false, "parenthesized pipeline")?;
                self.depth -= 1;
                match a.next_non_space() {
                    Some(Tok::RParen) => {}
                    _ => return Err(self.err_at(pos, "unclosed left paren")),
                }
                let fields = a.fields();
                Arg::Sub(pos, self.text_from(pos, a), Box::new(pipe), fields)
            }
            t => return Err(self.err_at(pos, format!("unexpected {} in operand", tok_desc(&t)))),
        };
        Ok(term)
    }

    fn text_from(&self, pos: usize, a: &Action) -> String {
        let end = a
            .toks
            .get(a.i)
            .map(|(p, _)| *p)
            .unwrap_or(a.end.saturating_sub(2));
        self.src[pos..end.max(pos)]
            .trim_end()
            .trim_end_matches('-')
            .trim_end()
            .to_string()
    }
}

impl Arg {
    fn with_fields(self, fields: Vec<String>) -> Arg {
        match self {
            Arg::Field(p, t, _) => Arg::Field(p, t, fields),
            other => other,
        }
    }
}

impl Action {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(_, t)| t)
    }
    fn peek_pos(&self) -> Option<usize> {
        let mut j = self.i;
        while let Some((p, t)) = self.toks.get(j) {
            if *t != Tok::Space {
                return Some(*p);
            }
            j += 1;
        }
        None
    }
    fn peek_non_space(&self) -> Option<&Tok> {
        let mut j = self.i;
        while let Some((_, t)) = self.toks.get(j) {
            if *t != Tok::Space {
                return Some(t);
            }
            j += 1;
        }
        None
    }
    fn next_non_space(&mut self) -> Option<Tok> {
        self.next_non_space_pos().map(|(_, t)| t)
    }
    fn next_non_space_pos(&mut self) -> Option<(usize, Tok)> {
        while let Some((p, t)) = self.toks.get(self.i) {
            self.i += 1;
            if *t != Tok::Space {
                return Some((*p, t.clone()));
            }
        }
        None
    }
    fn at_end(&self) -> bool {
        self.peek_non_space().is_none()
    }
    /// `.A.B` directly after a term.
    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((_, Tok::Field(f))) = self.toks.get(self.i) {
            out.push(f.clone());
            self.i += 1;
        }
        out
    }
    fn expect_end(&mut self, p: &Parser, context: &str) -> Result<(), ParseError> {
        match self.next_non_space_pos() {
            None => Ok(()),
            Some((pos, t)) => {
                Err(p.err_at(pos, format!("unexpected {} in {context}", tok_desc(&t))))
            }
        }
    }
    fn string_arg(&mut self, p: &Parser, context: &str) -> Result<String, ParseError> {
        match self.next_non_space_pos() {
            Some((_, Tok::Str(_, v))) => Ok(v),
            Some((pos, t)) => {
                Err(p.err_at(pos, format!("unexpected {} in {context}", tok_desc(&t))))
            }
            None => Err(p.err_at(self.start, format!("unexpected EOF in {context}"))),
        }
    }
}

fn tok_desc(t: &Tok) -> String {
    let raw = match t {
        Tok::Pipe => "|".to_string(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Declare => ":=".into(),
        Tok::Assign => "=".into(),
        Tok::Comma => ",".into(),
        Tok::Dot => ".".into(),
        Tok::Field(f) => format!(".{f}"),
        Tok::Var(v) => v.clone(),
        Tok::Ident(i) if KEYWORDS.contains(&i.as_str()) => return format!("<{i}>"),
        Tok::Ident(i) => i.clone(),
        Tok::Str(r, _) => r.clone(),
        Tok::Char(_, r) => r.clone(),
        Tok::Num(n) => n.clone(),
        Tok::Space => " ".into(),
    };
    let short: String = if raw.chars().count() > 10 {
        format!("{}...", raw.chars().take(10).collect::<String>())
    } else {
        raw
    };
    format!("{short:?}")
}

fn is_ident_byte(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let hex = b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X'));
    if hex {
        i += 2;
    }
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_digit()
            || c == b'_'
            || c == b'.'
            || (hex && c.is_ascii_hexdigit())
            || (!hex && matches!(c, b'e' | b'E'))
            || (hex && matches!(c, b'p' | b'P'))
            || matches!(c, b'o' | b'O' | b'b' | b'B') && i > 0 && b[i - 1] == b'0';
        let sign_of_exponent =
            (c == b'+' || c == b'-') && matches!(b[i - 1], b'e' | b'E' | b'p' | b'P');
        if ok || sign_of_exponent {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// A number literal as Go types it: float if it has `.`, `e` or `p` (and is not hex), else int.
pub fn parse_number(t: &str) -> Option<Number> {
    let clean = t.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = |digits: &str, radix: u32| {
        i64::from_str_radix(digits, radix)
            .ok()
            .map(|v| Number::Int(if neg { -v } else { v }))
    };
    if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('p') || h.contains('.') {
            return None;
        }
        return int(h, 16);
    }
    if let Some(o) = lower.strip_prefix("0o") {
        return int(o, 8);
    }
    if let Some(bin) = lower.strip_prefix("0b") {
        return int(bin, 2);
    }
    if lower.contains('.') || lower.contains('e') {
        return lower
            .parse::<f64>()
            .ok()
            .map(|v| Number::Float(if neg { -v } else { v }));
    }
    if lower.len() > 1 && lower.starts_with('0') {
        return int(&lower[1..], 8);
    }
    int(&lower, 10)
}

/// Go's `strconv.Unquote` for a double-quoted literal.
pub fn unquote(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next()?;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| it.next()).collect();
                if hex.len() != n {
                    return None;
                }
                let v = u32::from_str_radix(&hex, 16).ok()?;
                out.push(char::from_u32(v)?);
            }
            '0'..='7' => {
                let mut s = String::from(e);
                for _ in 0..2 {
                    s.push(it.next()?);
                }
                let v = u32::from_str_radix(&s, 8).ok()?;
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    Some(out)
}
