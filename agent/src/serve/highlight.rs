//! Architecture code as HTML: every line an anchor (`#L12`), tokens classified by the Starlark
//! lexer the sandbox already uses. Every byte of the code is escaped; the only markup is ours.

use starlark_syntax::codemap::CodeMap;
use starlark_syntax::dialect::Dialect;
use starlark_syntax::lexer::{Lexer, Token};

/// What a byte of the code is, for its CSS class.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Plain,
    Keyword,
    Name,
    Call,
    Number,
    Str,
    Comment,
}

impl Class {
    fn css(self) -> Option<&'static str> {
        match self {
            Class::Plain => None,
            Class::Keyword => Some("k"),
            Class::Name => Some("n"),
            Class::Call => Some("f"),
            Class::Number => Some("m"),
            Class::Str => Some("s"),
            Class::Comment => Some("c"),
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The class of every byte, from the lexer; code the lexer rejects keeps what was classified
/// before the error (the rest is plain).
fn classes(code: &str) -> Vec<Class> {
    let mut out = vec![Class::Plain; code.len()];
    let lexer = Lexer::new(
        code,
        &Dialect::Standard,
        CodeMap::new("code.star".into(), code.to_string()),
    );
    let mut tokens: Vec<(usize, Token, usize)> = Vec::new();
    for lexeme in lexer {
        match lexeme {
            Ok(t) => tokens.push(t),
            Err(_) => break,
        }
    }
    for (i, (start, token, end)) in tokens.iter().enumerate() {
        let (start, end) = ((*start).min(code.len()), (*end).min(code.len()));
        let slice = code.get(start..end).unwrap_or("");
        let class = match token {
            Token::Comment(_) => Class::Comment,
            Token::String(_) | Token::Bytes(_) => Class::Str,
            Token::FStringStart(_) | Token::FStringText(_) | Token::FStringEnd => Class::Str,
            Token::Int(_) | Token::Float(_) => Class::Number,
            Token::Identifier(_) => {
                let called = matches!(tokens.get(i + 1), Some((_, Token::OpeningRound, _)));
                if called {
                    Class::Call
                } else {
                    Class::Name
                }
            }
            _ if !slice.is_empty() && slice.chars().all(|c| c.is_ascii_alphabetic()) => {
                Class::Keyword
            }
            _ => Class::Plain,
        };
        for c in &mut out[start..end] {
            *c = class;
        }
    }
    out
}

/// The code as table rows: a line-number anchor and the highlighted line.
pub fn code_html(code: &str) -> String {
    let classes = classes(code);
    let mut out = String::with_capacity(code.len() * 3);
    let mut offset = 0;
    for (n, line) in code.split('\n').enumerate() {
        let n = n + 1;
        out.push_str(&format!(
            "<tr id=\"L{n}\"><td class=\"ln\"><a href=\"#L{n}\">{n}</a></td><td class=\"src\">"
        ));
        let mut run_start = 0;
        let bytes: Vec<(usize, char)> = line.char_indices().collect();
        let class_at = |i: usize| classes.get(offset + i).copied().unwrap_or(Class::Plain);
        for (k, &(i, _)) in bytes.iter().enumerate() {
            let next = bytes.get(k + 1).map_or(line.len(), |(j, _)| *j);
            let boundary = next == line.len() || class_at(next) != class_at(i);
            if boundary {
                let text = escape(&line[run_start..next]);
                match class_at(run_start).css() {
                    Some(css) => out.push_str(&format!("<span class=\"{css}\">{text}</span>")),
                    None => out.push_str(&text),
                }
                run_start = next;
            }
        }
        out.push_str("</td></tr>\n");
        offset += line.len() + 1;
    }
    out
}

/// A unified diff as table rows, each line classed as added, removed, hunk header or context.
pub fn diff_html(diff: &str) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            "dh"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else if line.starts_with("@@") {
            "hunk"
        } else {
            "ctx"
        };
        out.push_str(&format!(
            "<tr class=\"{class}\"><td class=\"src\">{}</td></tr>\n",
            escape(line)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_classed_and_everything_is_escaped() {
        let code = "# a <b> comment\nD = 64\n\ndef model(tokens):\n    return linear(tokens, \"</pre><script>\")\n";
        let html = code_html(code);
        assert!(html.contains("<tr id=\"L1\"><td class=\"ln\"><a href=\"#L1\">1</a></td>"));
        assert!(
            html.contains("<span class=\"c\"># a &lt;b&gt; comment</span>"),
            "{html}"
        );
        assert!(html.contains("<span class=\"k\">def</span>"), "{html}");
        assert!(html.contains("<span class=\"f\">model</span>"), "{html}");
        assert!(html.contains("<span class=\"m\">64</span>"), "{html}");
        assert!(
            html.contains("<span class=\"s\">&quot;&lt;/pre&gt;&lt;script&gt;&quot;</span>"),
            "{html}"
        );
        assert!(!html.contains("<script>") && !html.contains("</pre>"));
        assert_eq!(html.matches("<tr ").count(), code.split('\n').count());
    }

    #[test]
    fn code_the_lexer_rejects_is_still_shown_escaped() {
        let html = code_html("x = \"unterminated <img src=x onerror=alert(1)>\n");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img"));
    }

    #[test]
    fn diff_lines_are_classed() {
        let html = diff_html("--- a\n+++ b\n@@ -1 +1 @@\n-D = 1\n+D = <2>\n same\n");
        assert!(html.contains("<tr class=\"del\"><td class=\"src\">-D = 1</td></tr>"));
        assert!(html.contains("<tr class=\"add\"><td class=\"src\">+D = &lt;2&gt;</td></tr>"));
        assert!(html.contains("class=\"hunk\""));
    }
}
