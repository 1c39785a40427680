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

/// Find Python constructs that Starlark does not have, outside strings and comments, and say what
/// to write instead. Runs before parsing so that the message names the construct, not a token.
pub fn missing_syntax(source: &str) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let chars: Vec<char> = source.chars().collect();
    let (mut line, mut col) = (1u32, 1u32);
    let mut i = 0;
    // The last significant character, to tell `a ** b` (power) from `f(**kwargs)`.
    let mut prev: Option<char> = None;
    let mut at_line_start = true;
    let advance = |i: &mut usize, line: &mut u32, col: &mut u32, chars: &[char]| {
        if chars[*i] == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    advance(&mut i, &mut line, &mut col, &chars);
                }
            }
            '\n' => {
                at_line_start = true;
                advance(&mut i, &mut line, &mut col, &chars);
            }
            '"' | '\'' => {
                let triple = i + 2 < chars.len() && chars[i + 1] == c && chars[i + 2] == c;
                let quote_len = if triple { 3 } else { 1 };
                for _ in 0..quote_len {
                    advance(&mut i, &mut line, &mut col, &chars);
                }
                while i < chars.len() {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        advance(&mut i, &mut line, &mut col, &chars);
                        advance(&mut i, &mut line, &mut col, &chars);
                        continue;
                    }
                    if !triple && chars[i] == '\n' {
                        break;
                    }
                    if chars[i] == c
                        && (!triple
                            || (i + 2 < chars.len() && chars[i + 1] == c && chars[i + 2] == c))
                    {
                        for _ in 0..quote_len {
                            advance(&mut i, &mut line, &mut col, &chars);
                        }
                        break;
                    }
                    advance(&mut i, &mut line, &mut col, &chars);
                }
                prev = Some('"');
                at_line_start = false;
            }
            c if c.is_alphabetic() || c == '_' => {
                let (l0, c0) = (line, col);
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    advance(&mut i, &mut line, &mut col, &chars);
                }
                let word: String = chars[start..i].iter().collect();
                if let Some((_, msg)) = MISSING_SYNTAX.iter().find(|(k, _)| *k == word) {
                    found.push(Diagnostic::at(source, l0, c0, word.len(), msg.to_string()));
                } else if word == "load" && at_line_start && next_non_space(&chars, i) == Some('(')
                {
                    found.push(Diagnostic::at(
                        source,
                        l0,
                        c0,
                        4,
                        "`load` is not available: architecture code is one self-contained file"
                            .to_string(),
                    ));
                }
                prev = Some('a');
                at_line_start = false;
            }
            '*' if i + 1 < chars.len() && chars[i + 1] == '*' => {
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
                advance(&mut i, &mut line, &mut col, &chars);
                advance(&mut i, &mut line, &mut col, &chars);
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
                advance(&mut i, &mut line, &mut col, &chars);
                prev = Some('@');
                at_line_start = false;
            }
            c if c.is_whitespace() => advance(&mut i, &mut line, &mut col, &chars),
            c => {
                prev = Some(if c.is_ascii_digit() || c == '.' {
                    'a'
                } else {
                    c
                });
                at_line_start = false;
                advance(&mut i, &mut line, &mut col, &chars);
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
