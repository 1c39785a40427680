//! An outline of architecture code for tools that edit it as text: its integer constants, calls,
//! function definitions, assignments and returns, each with the byte span it occupies.
//!
//! Editing the source (rather than a graph printed back) keeps a proposal's code readable: the
//! author's helpers, names and comments survive. [`apply_edits`] splices replacements in.

use std::collections::BTreeSet;
use std::ops::Range;

use starlark::syntax::AstModule;
use starlark_syntax::lexer::TokenInt;
use starlark_syntax::syntax::ast::{
    ArgumentP, AssignTargetP, AstExpr, AstLiteral, AstNoPayload, AstStmt, BinOp, ExprP, ParameterP,
    StmtP,
};

use crate::diagnostic::Diagnostic;

/// A top-level `NAME = <int>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    pub name: String,
    pub value: i64,
    /// The literal.
    pub span: Range<usize>,
}

/// One argument of a call.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub keyword: Option<String>,
    /// The whole argument, keyword included.
    pub span: Range<usize>,
    /// The value expression.
    pub value_span: Range<usize>,
    /// The value, when it is an int literal.
    pub int: Option<i64>,
    /// The value, when it is a string literal.
    pub string: Option<String>,
}

/// A call `f(...)` of a plain name.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub callee: String,
    pub callee_span: Range<usize>,
    /// The whole call expression.
    pub span: Range<usize>,
    pub args: Vec<Arg>,
    /// The function definition it sits in (None at top level).
    pub function: Option<String>,
    /// Inside a `for` loop body.
    pub in_loop: bool,
}

impl Call {
    /// The argument with this keyword, or else the positional one at `position`.
    pub fn arg(&self, keyword: &str, position: usize) -> Option<&Arg> {
        self.args
            .iter()
            .find(|a| a.keyword.as_deref() == Some(keyword))
            .or_else(|| {
                self.args
                    .iter()
                    .filter(|a| a.keyword.is_none())
                    .nth(position)
            })
    }
}

/// A top-level function definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Def {
    pub name: String,
    pub params: Vec<String>,
    /// Its whole lines, from the start of the `def` line to the end of its last line (without
    /// the final newline).
    pub span: Range<usize>,
    /// Every name it reads.
    pub names: BTreeSet<String>,
}

/// `target = value` inside a function.
#[derive(Clone, Debug, PartialEq)]
pub struct Assign {
    pub target: String,
    pub function: Option<String>,
    pub in_loop: bool,
    /// The whole statement.
    pub span: Range<usize>,
    pub value_span: Range<usize>,
    /// When the value is `target + E`: the span of `E`.
    pub residual: Option<Range<usize>>,
    /// The statement's indentation.
    pub indent: String,
}

/// `return value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Return {
    pub function: Option<String>,
    pub span: Range<usize>,
    pub value_span: Range<usize>,
    pub indent: String,
}

/// A top-level statement that binds a name (a `def` or an assignment), as whole lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: String,
    pub span: Range<usize>,
    pub names: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outline {
    pub constants: Vec<Constant>,
    pub calls: Vec<Call>,
    pub defs: Vec<Def>,
    pub assigns: Vec<Assign>,
    pub returns: Vec<Return>,
    /// Every top-level binding (defs and assignments) in source order.
    pub bindings: Vec<Binding>,
}

impl Outline {
    pub fn def(&self, name: &str) -> Option<&Def> {
        self.defs.iter().find(|d| d.name == name)
    }

    pub fn constant(&self, name: &str) -> Option<&Constant> {
        self.constants.iter().find(|c| c.name == name)
    }

    pub fn binding(&self, name: &str) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.name == name)
    }
}

/// One replacement of a byte range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

impl Edit {
    pub fn new(range: Range<usize>, text: impl Into<String>) -> Edit {
        Edit {
            range,
            text: text.into(),
        }
    }

    pub fn insert(at: usize, text: impl Into<String>) -> Edit {
        Edit::new(at..at, text)
    }
}

/// Applies non-overlapping edits (in any order). Overlapping edits are refused.
pub fn apply_edits(source: &str, edits: &[Edit]) -> Result<String, String> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(source.len());
    let mut at = 0;
    for e in sorted {
        if e.range.start < at || e.range.end > source.len() || e.range.start > e.range.end {
            return Err(format!(
                "edit {:?} overlaps another or leaves the source",
                e.range
            ));
        }
        out.push_str(&source[at..e.range.start]);
        out.push_str(&e.text);
        at = e.range.end;
    }
    out.push_str(&source[at..]);
    Ok(out)
}

/// Outlines `source`; code that does not parse gets its diagnostic.
pub fn outline(source: &str) -> Result<Outline, Diagnostic> {
    let ast = AstModule::parse(
        crate::tracer::SOURCE_NAME,
        source.to_owned(),
        &crate::tracer::dialect(),
    )
    .map_err(|e| {
        crate::tracer::parse_errors(source, &e, &crate::Limits::default()).swap_remove(0)
    })?;
    let mut walker = Walker {
        source,
        out: Outline::default(),
    };
    walker.top(ast.statement());
    Ok(walker.out)
}

struct Walker<'s> {
    source: &'s str,
    out: Outline,
}

fn range(span: starlark::codemap::Span) -> Range<usize> {
    span.begin().get() as usize..span.end().get() as usize
}

fn int_of(e: &AstExpr) -> Option<i64> {
    match &e.node {
        ExprP::Literal(AstLiteral::Int(i)) => match &i.node {
            TokenInt::I32(v) => Some(*v as i64),
            TokenInt::BigInt(_) => None,
        },
        ExprP::Minus(inner) => int_of(inner).map(|v| -v),
        _ => None,
    }
}

impl Walker<'_> {
    /// The whole lines a span touches, without the final newline.
    fn lines(&self, r: Range<usize>) -> Range<usize> {
        let r = r.start..r.start + self.source[r.clone()].trim_end().len();
        let start = self.source[..r.start].rfind('\n').map_or(0, |i| i + 1);
        let end = self.source[r.end..]
            .find('\n')
            .map_or(self.source.len(), |i| r.end + i);
        start..end
    }

    fn indent(&self, at: usize) -> String {
        let start = self.source[..at].rfind('\n').map_or(0, |i| i + 1);
        self.source[start..at]
            .chars()
            .take_while(|c| c.is_whitespace())
            .collect()
    }

    fn top(&mut self, stmt: &AstStmt) {
        match &stmt.node {
            StmtP::Statements(list) => list.iter().for_each(|s| self.top(s)),
            StmtP::Def(def) => {
                let name = def.name.node.ident.clone();
                let params = def
                    .params
                    .iter()
                    .filter_map(|p| match &p.node {
                        ParameterP::Normal(n, _, _)
                        | ParameterP::Args(n, _)
                        | ParameterP::KwArgs(n, _) => Some(n.node.ident.clone()),
                        _ => None,
                    })
                    .collect();
                let span = self.lines(range(stmt.span));
                let names = names_in(stmt);
                self.out.bindings.push(Binding {
                    name: name.clone(),
                    span: span.clone(),
                    names: names.clone(),
                });
                self.out.defs.push(Def {
                    name: name.clone(),
                    params,
                    span,
                    names,
                });
                self.body(&def.body, Some(&name), false);
            }
            StmtP::Assign(a) => {
                if let AssignTargetP::Identifier(id) = &a.lhs.node {
                    let name = id.node.ident.clone();
                    if let Some(value) = int_of(&a.rhs) {
                        self.out.constants.push(Constant {
                            name: name.clone(),
                            value,
                            span: range(a.rhs.span),
                        });
                    }
                    self.out.bindings.push(Binding {
                        name,
                        span: self.lines(range(stmt.span)),
                        names: names_in(stmt),
                    });
                }
                self.exprs(stmt, None, false);
            }
            _ => self.body(stmt, None, false),
        }
    }

    fn body(&mut self, stmt: &AstStmt, function: Option<&str>, in_loop: bool) {
        match &stmt.node {
            StmtP::Statements(list) => list.iter().for_each(|s| self.body(s, function, in_loop)),
            StmtP::For(f) => {
                self.expr(&f.over, function, in_loop);
                self.body(&f.body, function, true);
            }
            StmtP::If(cond, then) => {
                self.expr(cond, function, in_loop);
                self.body(then, function, in_loop);
            }
            StmtP::IfElse(cond, branches) => {
                self.expr(cond, function, in_loop);
                self.body(&branches.0, function, in_loop);
                self.body(&branches.1, function, in_loop);
            }
            StmtP::Def(_) => {} // nested defs are not outlined
            StmtP::Assign(a) => {
                if let (AssignTargetP::Identifier(id), Some(function)) = (&a.lhs.node, function) {
                    let target = id.node.ident.clone();
                    let residual = match &a.rhs.node {
                        ExprP::Op(l, BinOp::Add, r) if matches!(&l.node, ExprP::Identifier(i) if i.node.ident == target) => {
                            Some(range(r.span))
                        }
                        _ => None,
                    };
                    let span = range(stmt.span);
                    self.out.assigns.push(Assign {
                        target,
                        function: Some(function.to_string()),
                        in_loop,
                        indent: self.indent(span.start),
                        span,
                        value_span: range(a.rhs.span),
                        residual,
                    });
                }
                self.exprs(stmt, function, in_loop);
            }
            StmtP::Return(Some(value)) => {
                let span = range(stmt.span);
                self.out.returns.push(Return {
                    function: function.map(str::to_string),
                    indent: self.indent(span.start),
                    span,
                    value_span: range(value.span),
                });
                self.exprs(stmt, function, in_loop);
            }
            _ => self.exprs(stmt, function, in_loop),
        }
    }

    fn exprs(&mut self, stmt: &AstStmt, function: Option<&str>, in_loop: bool) {
        let mut found = Vec::new();
        stmt.visit_expr(|e| found.push(e));
        for e in found {
            self.expr(e, function, in_loop);
        }
    }

    fn expr(&mut self, e: &AstExpr, function: Option<&str>, in_loop: bool) {
        if let ExprP::Call(callee, args) = &e.node {
            if let ExprP::Identifier(id) = &callee.node {
                let args = args
                    .args
                    .iter()
                    .map(|a| {
                        let (keyword, value) = match &a.node {
                            ArgumentP::Named(k, v) => (Some(k.node.clone()), v),
                            ArgumentP::Positional(v)
                            | ArgumentP::Args(v)
                            | ArgumentP::KwArgs(v) => (None, v),
                        };
                        let string = match &value.node {
                            ExprP::Literal(AstLiteral::String(s)) => Some(s.node.clone()),
                            _ => None,
                        };
                        Arg {
                            keyword,
                            span: range(a.span),
                            value_span: range(value.span),
                            int: int_of(value),
                            string,
                        }
                    })
                    .collect();
                self.out.calls.push(Call {
                    callee: id.node.ident.clone(),
                    callee_span: range(callee.span),
                    span: range(e.span),
                    args,
                    function: function.map(str::to_string),
                    in_loop,
                });
            }
        }
        let mut children = Vec::new();
        e.visit_expr(|c| children.push(c));
        for c in children {
            self.expr(c, function, in_loop);
        }
    }
}

/// Every identifier a statement reads, at any depth.
fn names_in(stmt: &AstStmt) -> BTreeSet<String> {
    fn expr(e: &AstExpr, out: &mut BTreeSet<String>) {
        if let ExprP::Identifier(id) = &e.node {
            out.insert(id.node.ident.clone());
        }
        e.visit_expr(|c| expr(c, out));
    }
    fn stmt_names(
        s: &starlark_syntax::syntax::ast::AstStmtP<AstNoPayload>,
        out: &mut BTreeSet<String>,
    ) {
        s.visit_children(|v| match v {
            starlark_syntax::syntax::uniplate::Visit::Stmt(s) => stmt_names(s, out),
            starlark_syntax::syntax::uniplate::Visit::Expr(e) => expr(e, out),
        });
    }
    let mut out = BTreeSet::new();
    stmt_names(stmt, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "\
# name: test
D = 64
HEADS = 4

def mlp(h):
    return linear(gelu(linear(h, 4 * D)), D)

def model(tokens):
    h = embedding(tokens, VOCAB, D)
    for _ in range(2):
        h = h + mlp(rms_norm(h, name=\"n\"))
    return linear(h, VOCAB)
";

    #[test]
    fn outlines_constants_calls_defs_assigns_and_returns() {
        let o = outline(CODE).unwrap();
        assert_eq!(
            o.constants
                .iter()
                .map(|c| (c.name.as_str(), c.value, &CODE[c.span.clone()]))
                .collect::<Vec<_>>(),
            vec![("D", 64, "64"), ("HEADS", 4, "4")]
        );
        let mlp = o.def("mlp").unwrap();
        assert_eq!(
            &CODE[mlp.span.clone()],
            "def mlp(h):\n    return linear(gelu(linear(h, 4 * D)), D)"
        );
        assert!(mlp.names.contains("D") && mlp.names.contains("gelu"));
        let range_call = o.calls.iter().find(|c| c.callee == "range").unwrap();
        assert_eq!(range_call.args[0].int, Some(2));
        assert!(!range_call.in_loop);
        let norm = o.calls.iter().find(|c| c.callee == "rms_norm").unwrap();
        assert!(norm.in_loop);
        assert_eq!(norm.function.as_deref(), Some("model"));
        assert_eq!(norm.arg("name", 9).unwrap().string.as_deref(), Some("n"));
        assert_eq!(
            &CODE[norm.arg("name", 9).unwrap().span.clone()],
            "name=\"n\""
        );
        let residual = o.assigns.iter().find(|a| a.residual.is_some()).unwrap();
        assert_eq!(
            &CODE[residual.residual.clone().unwrap()],
            "mlp(rms_norm(h, name=\"n\"))"
        );
        assert_eq!(residual.indent, "        ");
        let ret = o
            .returns
            .iter()
            .find(|r| r.function.as_deref() == Some("model"))
            .unwrap();
        assert_eq!(&CODE[ret.value_span.clone()], "linear(h, VOCAB)");
        assert_eq!(
            o.bindings
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            vec!["D", "HEADS", "mlp", "model"]
        );
    }

    #[test]
    fn edits_splice_and_refuse_overlaps() {
        let s = "abcdef";
        assert_eq!(
            apply_edits(
                s,
                &[
                    Edit::new(4..5, "E"),
                    Edit::insert(0, ">"),
                    Edit::new(1..2, "")
                ]
            ),
            Ok(">acdEf".to_string())
        );
        assert!(apply_edits(s, &[Edit::new(1..3, "x"), Edit::new(2..4, "y")]).is_err());
    }

    #[test]
    fn code_that_does_not_parse_gets_a_diagnostic() {
        let d = outline("def model(x):\n    return (\n").unwrap_err();
        assert!(d.line >= 2, "{d:?}");
    }
}
