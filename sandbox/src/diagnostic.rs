//! Diagnostics: what is wrong with architecture code, where, rendered like rustc.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// One problem in architecture code. `line` and `col` are 1-based.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Diagnostic {
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// Extra lines: the innermost frames of the call stack, hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The source line with a caret under the location, as [`Diagnostic::render`] shows it.
    #[serde(default)]
    pub snippet: String,
}

impl Diagnostic {
    /// A diagnostic at `line:col` (1-based) of `source`, with its snippet filled in.
    pub fn at(source: &str, line: u32, col: u32, width: usize, message: String) -> Diagnostic {
        let line = line.max(1);
        let col = col.max(1);
        Diagnostic {
            line,
            col,
            message,
            notes: Vec::new(),
            snippet: snippet(source, line, col, width),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// rustc-style text: `error: ...`, ` --> file:line:col`, the snippet, then notes.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let gutter = " ".repeat(self.line.to_string().len());
        let _ = writeln!(out, "{gutter}--> {file}:{}:{}", self.line, self.col);
        if !self.snippet.is_empty() {
            out.push_str(&self.snippet);
        }
        for note in &self.notes {
            let _ = writeln!(out, "{gutter} = note: {note}");
        }
        out
    }
}

/// Render many diagnostics, separated by blank lines.
pub fn render_all(diagnostics: &[Diagnostic], file: &str) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(file))
        .collect::<Vec<_>>()
        .join("\n")
}

fn snippet(source: &str, line: u32, col: u32, width: usize) -> String {
    let Some(text) = source.lines().nth(line as usize - 1) else {
        return String::new();
    };
    let gutter = " ".repeat(line.to_string().len());
    let text = text.trim_end();
    let chars = text.chars().count();
    let start = (col as usize - 1).min(chars);
    let width = width.max(1).min(chars.saturating_sub(start).max(1));
    format!(
        "{gutter} |\n{line} | {text}\n{gutter} | {}{}\n",
        " ".repeat(start),
        "^".repeat(width)
    )
}

/// Python syntax that Starlark lacks, with what to write instead.
const MISSING_SYNTAX: &[(&str, &str)] = &[
    (
        "while",
        "`while` loops are not available: use `for i in range(n):` with a fixed bound",
    ),
    (
        "class",
        "`class` is not available: write functions that build the graph",
    ),
    (
        "import",
        "imports are not available: every op is built in (see `autoarch ops`)",
    ),
    (
        "from",
        "imports are not available: every op is built in (see `autoarch ops`)",
    ),
    (
        "try",
        "`try` is not available: the tracer reports errors itself",
    ),
    (
        "except",
        "`try`/`except` is not available: the tracer reports errors itself",
    ),
    ("finally", "`try`/`finally` is not available"),
    ("raise", "`raise` is not available: use `fail(\"message\")`"),
    ("with", "`with` blocks are not available"),
    (
        "yield",
        "generators are not available: build and return lists",
    ),
    (
        "global",
        "`global` is not available: pass values as arguments",
    ),
    (
        "nonlocal",
        "`nonlocal` is not available: pass values as arguments",
    ),
    (
        "assert",
        "`assert` is not available: use `if not cond: fail(\"message\")`",
    ),
    ("async", "`async` is not available"),
    ("await", "`await` is not available"),
    ("del", "`del` is not available"),
    ("is", "`is` is not available: use `==` or `!=`"),
];

/// A cursor over source characters that keeps the line and column (1-based).
struct Cursor {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
}

impl Cursor {
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn advance(&mut self) {
        if self.chars[self.i] == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        self.i += 1;
    }

    fn advance_by(&mut self, n: usize) {
        for _ in 0..n {
            self.advance();
        }
    }

    fn skip_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.advance();
        }
    }

    /// Skips a string literal opened by `quote` here (single or triple quoted).
    fn skip_string(&mut self, quote: char) {
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        let quote_len = if triple { 3 } else { 1 };
        self.advance_by(quote_len);
        while let Some(c) = self.peek(0) {
            if c == '\\' && self.peek(1).is_some() {
                self.advance_by(2);
                continue;
            }
            if !triple && c == '\n' {
                break;
            }
            if c == quote
                && (!triple || (self.peek(1) == Some(quote) && self.peek(2) == Some(quote)))
            {
                self.advance_by(quote_len);
                break;
            }
            self.advance();
        }
    }

    /// Reads an identifier or keyword starting here.
    fn word(&mut self) -> String {
        let start = self.i;
        while self
            .peek(0)
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            self.advance();
        }
        self.chars[start..self.i].iter().collect()
    }
}

/// Find Python constructs that Starlark does not have, outside strings and comments, and say what
/// to write instead. Runs before parsing so that the message names the construct, not a token.
pub fn missing_syntax(source: &str) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut at = Cursor {
        chars: source.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    // The last significant character, to tell `a ** b` (power) from `f(**kwargs)`.
    let mut prev: Option<char> = None;
    let mut at_line_start = true;
    while let Some(c) = at.peek(0) {
        let (line, col) = (at.line, at.col);
        match c {
            '#' => at.skip_comment(),
            '\n' => {
                at_line_start = true;
                at.advance();
            }
            '"' | '\'' => {
                at.skip_string(c);
                prev = Some('"');
                at_line_start = false;
            }
            c if c.is_alphabetic() || c == '_' => {
                let word = at.word();
                if let Some((_, msg)) = MISSING_SYNTAX.iter().find(|(k, _)| *k == word) {
                    found.push(Diagnostic::at(
                        source,
                        line,
                        col,
                        word.len(),
                        msg.to_string(),
                    ));
                } else if word == "load"
                    && at_line_start
                    && next_non_space(&at.chars, at.i) == Some('(')
                {
                    found.push(Diagnostic::at(
                        source,
                        line,
                        col,
                        4,
                        "`load` is not available: architecture code is one self-contained file"
                            .to_string(),
                    ));
                }
                prev = Some('a');
                at_line_start = false;
            }
            '*' if at.peek(1) == Some('*') => {
                if matches!(prev, Some(p) if p == 'a' || p == ')' || p == ']' || p == '"') {
                    found.push(Diagnostic::at(
                        source,
                        line,
                        col,
                        2,
                        "`**` (power) is not available: use `pow(x, p)` on tensors, or write the number out"
                            .to_string(),
                    ));
                }
                at.advance_by(2);
                prev = Some('*');
                at_line_start = false;
            }
            '@' => {
                let msg = if at_line_start {
                    "decorators are not available: call the function directly"
                } else {
                    "`@` (matrix multiply) is not available: use `matmul(a, b)`"
                };
                found.push(Diagnostic::at(source, line, col, 1, msg.to_string()));
                at.advance();
                prev = Some('@');
                at_line_start = false;
            }
            c if c.is_whitespace() => at.advance(),
            c => {
                prev = Some(if c.is_ascii_digit() || c == '.' {
                    'a'
                } else {
                    c
                });
                at_line_start = false;
                at.advance();
            }
        }
    }
    found
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<char> {
    while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
        i += 1;
    }
    chars.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_is_told_apart_from_kwargs() {
        let d = missing_syntax("y = f(**kw)\nz = a ** 2\n");
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].col), (2, 7));
    }

    #[test]
    fn keywords_inside_strings_and_comments_are_ignored() {
        let d = missing_syntax("s = \"while class import\" # try\nt = '''\nwith\n'''\n");
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn snippet_points_at_the_column() {
        let d = Diagnostic::at("a = 1\nb = c + d\n", 2, 5, 5, "bad".into());
        assert_eq!(d.snippet, "  |\n2 | b = c + d\n  |     ^^^^^\n");
    }
}
