//! Executing a parsed template as Go's text/template does, with `missingkey=zero`.

use std::sync::Arc;

use super::funcs::{self, Env};
use super::parse::{Arg, Branch, Cmd, Node, Number, Pipe, Tree};
use super::value::{ALERT_DATA_TYPE, Value};

/// Nested template calls and control structures allowed at run time (Go allows 100,000; this
/// keeps execution well inside a thread's stack).
const MAX_DEPTH: usize = 200;

/// Actions, loop iterations and calls one expansion may take (a template that would run
/// longer is stopped with an error: it holds its rule group's evaluation).
const MAX_STEPS: usize = 1_000_000;

/// `query` calls one expansion may make.
const MAX_QUERIES: usize = 1000;

/// Output longer than this stops execution: a `range` over a large query result inside
/// another must not build an unbounded string.
pub(crate) const MAX_OUTPUT: usize = 1 << 20;

/// An execution error, worded as Go words it.
#[derive(Debug, Clone)]
pub struct ExecError(pub String);

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    tree: &'a Tree,
    env: &'a Env<'a>,
    /// The template executing now (`define`d ones by their name).
    current: String,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
    /// `(position, text)` of the node being evaluated, for errors.
    at: (usize, String),
    steps: usize,
    queries: usize,
}

pub fn execute(tree: &Tree, data: Value, env: &Env) -> Result<String, ExecError> {
    let mut s = State {
        tree,
        env,
        current: tree.name.clone(),
        vars: vec![("$".into(), data.clone())],
        out: String::new(),
        depth: 0,
        at: (0, String::new()),
        steps: 0,
        queries: 0,
    };
    s.list(&tree.root, &data)?;
    Ok(s.out)
}

type R<T> = Result<T, ExecError>;

impl State<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> ExecError {
        let (line, col) = self.tree.line_col(self.at.0);
        ExecError(format!(
            "template: {}:{}:{}: executing \"{}\" at <{}>: {}",
            self.tree.name, line, col, self.current, self.at.1, msg
        ))
    }

    fn at(&mut self, pos: usize, text: &str) {
        self.at = (pos, text.to_string());
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        for n in nodes {
            match self.node(n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.err(format!("more than {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn node(&mut self, n: &Node, dot: &Value) -> R<Flow> {
        self.step()?;
        match n {
            Node::Text(t) => self.write(t)?,
            Node::Action(p) => {
                let v = self.pipe(p, dot)?;
                if p.decl.is_empty() {
                    let s = self.printable(&v)?;
                    self.write(&s)?;
                }
            }
            Node::If(b) => return self.branch(b, dot, false),
            Node::With(b) => return self.branch(b, dot, true),
            Node::Range(b) => return self.range(b, dot),
            Node::Template {
                pos,
                text,
                name,
                pipe,
            } => {
                self.at(*pos, text);
                let Some(body) = self.tree.defs.get(name) else {
                    return Err(self.err(format!(
                        "template: no template {name:?} associated with template {:?}",
                        self.tree.name
                    )));
                };
                let new_dot = match pipe {
                    Some(p) => self.pipe(p, dot)?,
                    None => Value::Nil,
                };
                self.enter()?;
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.current, name.clone());
                let r = self.list(body, &new_dot);
                self.vars = saved_vars;
                self.current = saved_name;
                self.depth -= 1;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("exceeded maximum template depth ({MAX_DEPTH})")));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.err(format!("output longer than {MAX_OUTPUT} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn printable(&self, v: &Value) -> R<String> {
        Ok(v.print())
    }

    fn branch(&mut self, b: &Branch, dot: &Value, with: bool) -> R<Flow> {
        self.enter()?;
        let mark = self.vars.len();
        let v = self.pipe(&b.pipe, dot)?;
        let r = if v.truth() {
            let d = if with { v } else { dot.clone() };
            self.list(&b.then, &d)
        } else if let Some(e) = &b.els {
            self.list(e, dot)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        r
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> R<Flow> {
        self.enter()?;
        let mark = self.vars.len();
        // The pipeline's own declarations are the loop variables, not its value.
        let mut pipe = b.pipe.clone();
        let decl = std::mem::take(&mut pipe.decl);
        let v = self.pipe(&pipe, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::StrMap(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
            Value::AnyMap(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Query(q) => q
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::Sample(s.clone())))
                .collect(),
            Value::Int(n) if *n as u64 > MAX_STEPS as u64 => {
                self.depth -= 1;
                return Err(self.err(format!("range over {n}: more than {MAX_STEPS} steps")));
            }
            Value::Int(n) => (0..(*n).max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Missing | Value::Nil => Vec::new(),
            other => {
                self.depth -= 1;
                return Err(self.err(format!("range can't iterate over {}", other.print())));
            }
        };
        let mut r = Ok(Flow::Normal);
        if items.is_empty() {
            if let Some(e) = &b.els {
                r = self.list(e, dot);
            }
        } else {
            for (k, v) in items {
                if let Err(e) = self.step() {
                    r = Err(e);
                    break;
                }
                let inner = self.vars.len();
                match decl.len() {
                    1 => self.set_or_push(&decl[0], v.clone(), b.pipe.assign),
                    2 => {
                        self.set_or_push(&decl[0], k, b.pipe.assign);
                        self.set_or_push(&decl[1], v.clone(), b.pipe.assign);
                    }
                    _ => {}
                }
                // Variables the body declares go with each iteration, as Go pops them; the
                // loop's own are kept when assigned (`range $i = ...` sets variables declared
                // outside), so that a body's `$x := ...` cannot pile up one value per item.
                let body = if b.pipe.assign {
                    self.vars.len()
                } else {
                    inner
                };
                let f = self.list(&b.then, &v);
                self.vars.truncate(body);
                match f {
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                    Ok(Flow::Break) => break,
                    Ok(_) => {}
                }
            }
        }
        self.vars.truncate(mark);
        self.depth -= 1;
        r.map(|_| Flow::Normal)
    }

    fn set_or_push(&mut self, name: &str, v: Value, assign: bool) {
        if assign && let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
            return;
        }
        self.vars.push((name.to_string(), v));
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> R<Value> {
        let mut last: Option<Value> = None;
        for (i, c) in p.cmds.iter().enumerate() {
            last = Some(self.cmd(c, dot, last, i)?);
        }
        let v = last.unwrap_or(Value::Missing);
        for name in &p.decl {
            self.set_or_push(name, v.clone(), p.assign);
        }
        Ok(v)
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, piped: Option<Value>, stage: usize) -> R<Value> {
        let first = &c.args[0];
        match first {
            Arg::Func(_, name) => {
                self.at(c.pos, &c.text);
                self.call(name, &c.args[1..], dot, piped, c)
            }
            Arg::Field(pos, text, fields) => {
                if c.args.len() > 1 || piped.is_some() {
                    self.at(*pos, text);
                    return self.method_call(dot.clone(), fields, &c.args[1..], dot, piped, c);
                }
                self.at(*pos, text);
                self.fields(dot.clone(), fields)
            }
            Arg::Var(pos, text, name, fields) => {
                let v = self.var(name);
                if c.args.len() > 1 || piped.is_some() {
                    self.at(*pos, text);
                    if fields.is_empty() {
                        return Err(self.err(format!("can't give argument to non-function {text}")));
                    }
                    return self.method_call(v, fields, &c.args[1..], dot, piped, c);
                }
                self.at(*pos, text);
                self.fields(v, fields)
            }
            Arg::Sub(_, text, pipe, fields) => {
                let v = self.pipe(pipe, dot)?;
                if c.args.len() > 1 || piped.is_some() {
                    if fields.is_empty() {
                        self.at(c.pos, &c.text);
                        return Err(self.err(format!("can't give argument to non-function {text}")));
                    }
                    return self.method_call(v, fields, &c.args[1..], dot, piped, c);
                }
                self.fields(v, fields)
            }
            other => {
                if piped.is_some() {
                    self.at(c.pos, &c.text);
                    return Err(self.err(format!(
                        "non executable command in pipeline stage {}",
                        stage + 1
                    )));
                }
                if c.args.len() > 1 {
                    self.at(other.pos(), &other.text());
                    return Err(self.err(format!(
                        "can't give argument to non-function {}",
                        other.text()
                    )));
                }
                self.arg(other, dot)
            }
        }
    }

    fn var(&self, name: &str) -> Value {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Missing)
    }

    /// An argument's value (a bare function name is a call without arguments).
    fn arg(&mut self, a: &Arg, dot: &Value) -> R<Value> {
        match a {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Field(pos, text, fields) => {
                self.at(*pos, text);
                self.fields(dot.clone(), fields)
            }
            Arg::Var(pos, text, name, fields) => {
                let v = self.var(name);
                self.at(*pos, text);
                self.fields(v, fields)
            }
            Arg::Func(pos, name) => {
                let cmd = Cmd {
                    pos: *pos,
                    text: name.clone(),
                    args: vec![a.clone()],
                };
                self.at(*pos, name);
                self.call(name, &[], dot, None, &cmd)
            }
            Arg::Str(pos, text, s) => {
                self.at(*pos, text);
                Ok(Value::Str(s.clone()))
            }
            Arg::Num(pos, text, n) => {
                self.at(*pos, text);
                Ok(match n {
                    Number::Int(i) => Value::Int(*i),
                    Number::Float(f) => Value::Float(*f),
                })
            }
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Sub(_, _, pipe, fields) => {
                let v = self.pipe(pipe, dot)?;
                self.fields(v, fields)
            }
        }
    }

    /// `.A.B.C` on `v`.
    fn fields(&mut self, mut v: Value, fields: &[String]) -> R<Value> {
        for f in fields {
            v = self.field(&v, f)?;
        }
        Ok(v)
    }

    fn field(&self, v: &Value, f: &str) -> R<Value> {
        Ok(match v {
            Value::Data(d) => match f {
                "Labels" => Value::StrMap(Arc::new(d.labels.clone())),
                "ExternalLabels" => Value::StrMap(Arc::new(d.external_labels.clone())),
                "ExternalURL" => Value::Str(d.external_url.clone()),
                "Value" => d.value(),
                _ => {
                    return Err(self.err(format!(
                        "can't evaluate field {f} in type {ALERT_DATA_TYPE}"
                    )));
                }
            },
            Value::Sample(s) => match f {
                "Labels" => Value::StrMap(Arc::new(s.labels.clone())),
                "Value" => s.value(),
                _ => {
                    return Err(
                        self.err(format!("can't evaluate field {f} in type *template.sample"))
                    );
                }
            },
            // A histogram's exported fields, as Go reads them off `*FloatHistogram` (the
            // spans and buckets are not offered).
            Value::Histogram(h) => match f {
                "Count" => Value::Float(h.count),
                "Sum" => Value::Float(h.sum),
                "ZeroCount" => Value::Float(h.zero_count),
                "ZeroThreshold" => Value::Float(h.zero_threshold),
                "Schema" => Value::Int(i64::from(h.schema)),
                "String" => Value::Str(h.go_string()),
                _ => {
                    return Err(self.err(format!(
                        "can't evaluate field {f} in type *histogram.FloatHistogram"
                    )));
                }
            },
            Value::StrMap(m) => Value::Str(m.get(f).cloned().unwrap_or_default()),
            Value::AnyMap(m) => m.get(f).cloned().unwrap_or(Value::Missing),
            Value::Missing => Value::Missing,
            Value::Time(_) | Value::Duration(_) => {
                return funcs::method(v, f, &[]).map_err(|m| self.err(m));
            }
            Value::Nil => {
                return Err(self.err(format!("nil pointer evaluating interface {{}}.{f}")));
            }
            other => {
                return Err(self.err(format!(
                    "can't evaluate field {f} in type {}",
                    other.type_name()
                )));
            }
        })
    }

    /// `.A.Method arg...` (methods exist on `toTime` and `toDuration` values only).
    fn method_call(
        &mut self,
        recv: Value,
        fields: &[String],
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
        c: &Cmd,
    ) -> R<Value> {
        let (last, path) = fields.split_last().expect("fields");
        let recv = self.fields(recv, path)?;
        let mut vals = Vec::new();
        for a in args {
            vals.push(self.arg(a, dot)?);
        }
        vals.extend(piped);
        self.at(c.pos, &c.text);
        match &recv {
            Value::Time(_) | Value::Duration(_) => {
                funcs::method(&recv, last, &vals).map_err(|m| self.err(m))
            }
            _ => {
                // A field, not a method: Go's wording.
                let _ = self.field(&recv, last)?;
                Err(self.err(format!(
                    "{last} has arguments but cannot be invoked as function"
                )))
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
        c: &Cmd,
    ) -> R<Value> {
        // `and` and `or` stop at the deciding argument.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(piped.is_some());
            if n < 1 {
                return Err(self.err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Value::Missing;
            for a in args {
                last = self.arg(a, dot)?;
                if last.truth() != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(a, dot)?);
        }
        vals.extend(piped);
        self.at(c.pos, &c.text);
        self.step()?;
        if name == "query" {
            self.queries += 1;
            if self.queries > MAX_QUERIES {
                return Err(self.err(format!("more than {MAX_QUERIES} queries")));
            }
        }
        let v = funcs::call(name, vals, self.env).map_err(|m| {
            self.err(format!("error calling {name}: {m}"))
                .with_plain(&m, self)
        })?;
        // A string built without being printed (`$x = printf "%s%s" $x $x`) is bounded too.
        if let Value::Str(s) | Value::Html(s) = &v
            && s.len() > MAX_OUTPUT
        {
            return Err(self.err(format!("result longer than {MAX_OUTPUT} bytes")));
        }
        Ok(v)
    }
}

impl ExecError {
    /// Errors of argument checking are worded without "error calling".
    fn with_plain(self, m: &funcs::FnError, s: &State) -> ExecError {
        match m {
            funcs::FnError::Call(_) => self,
            funcs::FnError::Args(msg) => s.err(msg),
        }
    }
}

impl std::fmt::Display for funcs::FnError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            funcs::FnError::Call(m) | funcs::FnError::Args(m) => f.write_str(m),
        }
    }
}
