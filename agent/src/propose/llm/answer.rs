//! Reading an LLM's answer: JSON (from structured output) or text with a fenced code block or
//! SEARCH/REPLACE edits; and applying edits, with diagnostics when they do not apply.

use serde_json::Value;

/// One SEARCH/REPLACE edit.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    pub search: String,
    pub replace: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Code(String),
    Edits(Vec<Edit>),
}

/// A proposal as the model wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub name: String,
    pub motivation: String,
    pub body: Body,
}

/// An analysis as the model wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct InsightAnswer {
    pub insight: String,
    pub evidence: Vec<u64>,
}

const SEARCH: &str = "<<<<<<< SEARCH";
const DIVIDER: &str = "=======";
const REPLACE: &str = ">>>>>>> REPLACE";

fn truncated(finish_reason: Option<&str>) -> bool {
    finish_reason == Some("length")
}

const CUT: &str = "the answer was cut off at the token limit (finish_reason `length`) before it was complete; write shorter code or fewer edits";

/// Why an empty answer cannot be used.
fn empty_answer(finish_reason: Option<&str>) -> String {
    if truncated(finish_reason) {
        CUT.into()
    } else {
        "the answer is empty".into()
    }
}

/// The JSON object in an answer: the whole text, inside a ```json fence, or from the first `{`
/// to the last `}`.
fn json_object(content: &str) -> Option<Result<serde_json::Map<String, Value>, String>> {
    let trimmed = content.trim();
    let inner = fenced_blocks(trimmed)
        .into_iter()
        .find(|(lang, _)| lang == "json")
        .map(|(_, body)| body)
        .unwrap_or_else(|| trimmed.to_string());
    let start = inner.find('{')?;
    // Only an answer that is JSON (not code that happens to hold a brace) is read as JSON.
    if !inner[..start].trim().is_empty() && !trimmed.starts_with("```") {
        return None;
    }
    let end = inner.rfind('}').map(|e| e + 1).unwrap_or(inner.len());
    let text = &inner[start..end.max(start)];
    Some(match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the answer is JSON but not an object".into()),
        Err(e) if e.is_eof() => Err(format!(
            "the answer's JSON breaks off before it is complete ({e}); it was probably cut off at the token limit: write shorter code, or edits"
        )),
        Err(e) => Err(format!("the answer is not valid JSON: {e}")),
    })
}

fn string_field(map: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Reads a proposal. `Err` says, in a sentence fit for a repair prompt, why it cannot be used.
pub fn parse_answer(content: &str, finish_reason: Option<&str>) -> Result<Answer, String> {
    if content.trim().is_empty() {
        return Err(empty_answer(finish_reason));
    }
    if let Some(json) = json_object(content) {
        let map = match json {
            Ok(m) => m,
            Err(e) if truncated(finish_reason) => return Err(format!("{CUT} ({e})")),
            Err(e) => return Err(e),
        };
        let name = string_field(&map, "name").unwrap_or_default();
        let motivation = string_field(&map, "motivation").unwrap_or_default();
        if let Some(code) = string_field(&map, "code").filter(|c| !c.trim().is_empty()) {
            return Ok(Answer {
                name,
                motivation,
                body: Body::Code(strip_fence(&code)),
            });
        }
        if let Some(list) = map.get("edits").and_then(Value::as_array) {
            let mut edits = Vec::new();
            for (i, e) in list.iter().enumerate() {
                let (Some(search), Some(replace)) = (
                    e.get("search").and_then(Value::as_str),
                    e.get("replace").and_then(Value::as_str),
                ) else {
                    return Err(format!(
                        "edit {} in the JSON answer lacks a `search` or `replace` string",
                        i + 1
                    ));
                };
                edits.push(Edit {
                    search: search.to_string(),
                    replace: replace.to_string(),
                });
            }
            if !edits.is_empty() {
                return Ok(Answer {
                    name,
                    motivation,
                    body: Body::Edits(edits),
                });
            }
        }
        return Err("the JSON answer has neither a non-empty `code` nor any `edits`".into());
    }
    parse_text(content, finish_reason)
}

/// A code string that the model wrapped in a fence anyway.
fn strip_fence(code: &str) -> String {
    let t = code.trim();
    if t.starts_with("```") {
        if let Some((_, body)) = fenced_blocks(t).into_iter().next() {
            return body;
        }
    }
    let mut s = code.to_string();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// The fenced blocks of a text: (language, body). An unclosed last fence is left out.
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match open.take() {
            None => {
                if let Some(lang) = t.strip_prefix("```") {
                    open = Some((lang.trim().to_lowercase(), String::new()));
                }
            }
            Some((lang, mut body)) => {
                if t.trim_end() == "```" {
                    blocks.push((lang, body));
                } else {
                    body.push_str(line);
                    body.push('\n');
                    open = Some((lang, body));
                }
            }
        }
    }
    blocks
}

/// An `edits` answer as the model wrote it: the menu ids it chose, in order, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct MenuAnswer {
    pub name: String,
    pub motivation: String,
    pub ids: Vec<String>,
}

/// `E7`, `e7`, `7` or the number 7 as the id `E7`.
fn menu_id(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.as_u64()?.to_string(),
        _ => return None,
    };
    let digits = text.strip_prefix(['E', 'e']).unwrap_or(&text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // `E05` is `E5`; `E0` stays `E0` (no menu has it, and the refusal says so).
    digits.parse::<u64>().ok().map(|n| format!("E{n}"))
}

/// Reads an `edits` answer: JSON `{name, motivation, edits: [ids]}`, or text with `NAME:`,
/// `MOTIVATION:` and `EDITS: E3, E7` lines. Whether the ids are on the menu is the caller's
/// to check; `Err` says why the answer cannot be read at all.
pub fn parse_menu_answer(content: &str, finish_reason: Option<&str>) -> Result<MenuAnswer, String> {
    if content.trim().is_empty() {
        return Err(empty_answer(finish_reason));
    }
    if let Some(json) = json_object(content) {
        let map = json?;
        let list = map
            .get("edits")
            .and_then(Value::as_array)
            .ok_or("the answer has no `edits` list of menu ids")?;
        let mut ids = Vec::new();
        for (i, v) in list.iter().enumerate() {
            ids.push(menu_id(v).ok_or_else(|| {
                format!(
                    "edit {} of the answer, {v}, is not a menu id like \"E3\"",
                    i + 1
                )
            })?);
        }
        return Ok(MenuAnswer {
            name: string_field(&map, "name").unwrap_or_default(),
            motivation: string_field(&map, "motivation").unwrap_or_default(),
            ids,
        });
    }
    let line = labelled(content, "edits").ok_or("the answer has no `EDITS:` line of menu ids")?;
    // Words between the ids ("E3 and E7") are skipped; a line without any id is refused.
    let ids: Vec<String> = line
        .split([',', ' ', ';'])
        .filter_map(|t| {
            menu_id(&Value::String(
                t.trim_matches(['[', ']', '"', '.']).to_string(),
            ))
        })
        .collect();
    if ids.is_empty() {
        return Err(format!(
            "the EDITS line (`{line}`) holds no menu id like E3"
        ));
    }
    Ok(MenuAnswer {
        name: labelled(content, "name").unwrap_or_default(),
        motivation: labelled(content, "motivation").unwrap_or_default(),
        ids,
    })
}

fn labelled(text: &str, label: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let t = l.trim().trim_start_matches(['#', '*', ' ']);
        let (head, rest) = t.split_once(':')?;
        head.trim_matches(['*', ' '])
            .eq_ignore_ascii_case(label)
            .then(|| rest.trim().trim_matches('*').trim().to_string())
    })
}

fn parse_edits(text: &str) -> Result<Vec<Edit>, String> {
    let mut edits = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != SEARCH {
            continue;
        }
        let n = edits.len() + 1;
        let mut search = String::new();
        let mut found_divider = false;
        for l in lines.by_ref() {
            if l.trim() == DIVIDER {
                found_divider = true;
                break;
            }
            search.push_str(l);
            search.push('\n');
        }
        if !found_divider {
            return Err(format!("edit {n}: `{SEARCH}` has no `{DIVIDER}` after it"));
        }
        let mut replace = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l.trim() == REPLACE {
                closed = true;
                break;
            }
            replace.push_str(l);
            replace.push('\n');
        }
        if !closed {
            return Err(format!("edit {n}: `{DIVIDER}` has no `{REPLACE}` after it"));
        }
        edits.push(Edit { search, replace });
    }
    Ok(edits)
}

fn parse_text(content: &str, finish_reason: Option<&str>) -> Result<Answer, String> {
    let name = labelled(content, "name").unwrap_or_default();
    let motivation = labelled(content, "motivation").unwrap_or_default();
    if content.contains(SEARCH) {
        return match parse_edits(content) {
            Ok(edits) => Ok(Answer {
                name,
                motivation,
                body: Body::Edits(edits),
            }),
            Err(_) if truncated(finish_reason) => Err(CUT.into()),
            Err(e) => Err(e),
        };
    }
    let blocks = fenced_blocks(content);
    let code = blocks
        .iter()
        .filter(|(lang, body)| {
            matches!(lang.as_str(), "" | "python" | "py" | "starlark" | "star")
                && body.contains("def ")
        })
        .map(|(_, body)| body.clone())
        .next_back();
    match code {
        Some(code) => Ok(Answer {
            name,
            motivation,
            body: Body::Code(code),
        }),
        None if truncated(finish_reason) => Err(CUT.into()),
        None => Err(
            "the answer holds neither a fenced code block with a `def` nor SEARCH/REPLACE edits"
                .into(),
        ),
    }
}

/// Reads an analysis answer.
pub fn parse_insight(content: &str, finish_reason: Option<&str>) -> Result<InsightAnswer, String> {
    if content.trim().is_empty() {
        return Err("the answer is empty".into());
    }
    let (insight, evidence) = match json_object(content) {
        Some(Ok(map)) => {
            let insight = string_field(&map, "insight").unwrap_or_default();
            let evidence = map
                .get("evidence")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| {
                            v.as_u64().or_else(|| {
                                v.as_str()
                                    .and_then(|s| s.trim().trim_start_matches('#').parse().ok())
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            (insight, evidence)
        }
        Some(Err(e)) if truncated(finish_reason) => return Err(format!("{CUT} ({e})")),
        Some(Err(e)) => return Err(e),
        None => {
            let insight = labelled(content, "insight").unwrap_or_default();
            let evidence = labelled(content, "evidence")
                .unwrap_or_default()
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|t| t.parse().ok())
                .collect();
            (insight, evidence)
        }
    };
    if insight.trim().is_empty() {
        return Err("the answer states no insight".into());
    }
    Ok(InsightAnswer {
        insight: insight.trim().to_string(),
        evidence,
    })
}

/// Where `needle` occurs in `hay`, as byte offsets.
fn occurrences(hay: &str, needle: &str) -> Vec<usize> {
    hay.match_indices(needle).map(|(i, _)| i).collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Lines compared without their trailing whitespace: finds `search` in `code` when only
/// trailing spaces differ. Returns the byte range in `code`.
fn loose_match(code: &str, search: &str) -> Vec<(usize, usize)> {
    let want: Vec<&str> = search.lines().map(str::trim_end).collect();
    if want.is_empty() {
        return vec![];
    }
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        starts.push((offset, line));
        offset += line.len();
    }
    let mut found = Vec::new();
    for i in 0..starts.len() {
        if i + want.len() > starts.len() {
            break;
        }
        if (0..want.len()).all(|k| starts[i + k].1.trim_end() == want[k]) {
            let last = starts[i + want.len() - 1];
            found.push((starts[i].0, last.0 + last.1.len()));
        }
    }
    found
}

/// The line of `code` closest to `wanted`, for a diagnostic.
fn closest_line(code: &str, wanted: &str) -> Option<(usize, String, f32)> {
    code.lines()
        .enumerate()
        .map(|(i, l)| {
            let r = similar::TextDiff::from_chars(l.trim(), wanted.trim()).ratio();
            (i + 1, l.to_string(), r)
        })
        .max_by(|a, b| a.2.total_cmp(&b.2))
}

/// Applies edits in order. `Err` holds a diagnostic per edit that does not apply, in the
/// style of trace errors: which edit, why, and where the nearest text is.
pub fn apply_edits(code: &str, edits: &[Edit], file: &str) -> Result<String, String> {
    let mut out = code.to_string();
    let mut problems = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        let n = i + 1;
        if e.search.trim().is_empty() {
            problems.push(format!(
                "error: edit {n} does not apply: its SEARCH block is empty\n  = help: copy the lines to replace from {file} into the SEARCH block"
            ));
            continue;
        }
        let exact = occurrences(&out, &e.search);
        let range = match exact.len() {
            1 => Some((exact[0], exact[0] + e.search.len())),
            0 => {
                let loose = loose_match(&out, &e.search);
                match loose.len() {
                    1 => Some(loose[0]),
                    0 => None,
                    _ => {
                        let lines: Vec<String> = loose
                            .iter()
                            .map(|(s, _)| line_of(&out, *s).to_string())
                            .collect();
                        problems.push(format!(
                            "error: edit {n} does not apply: its SEARCH block occurs {} times (lines {})\n  = help: include more surrounding lines so that it matches once",
                            loose.len(),
                            lines.join(", ")
                        ));
                        continue;
                    }
                }
            }
            k => {
                let lines: Vec<String> = exact
                    .iter()
                    .map(|s| line_of(&out, *s).to_string())
                    .collect();
                problems.push(format!(
                    "error: edit {n} does not apply: its SEARCH block occurs {k} times (lines {})\n  = help: include more surrounding lines so that it matches once",
                    lines.join(", ")
                ));
                continue;
            }
        };
        match range {
            Some((start, end)) => {
                let mut replace = e.replace.clone();
                if out[start..end].ends_with('\n')
                    && !replace.is_empty()
                    && !replace.ends_with('\n')
                {
                    replace.push('\n');
                }
                out.replace_range(start..end, &replace);
            }
            None => {
                let first = e
                    .search
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let mut d =
                    format!("error: edit {n} does not apply: its SEARCH block is not in {file}\n");
                if let Some((line, text, ratio)) = closest_line(&out, first) {
                    if ratio > 0.5 {
                        let width = line.to_string().len();
                        d.push_str(&format!(
                            "{:width$}--> {file}:{line}\n{:width$} |\n{line} | {text}\n{:width$} | {}\n",
                            "",
                            "",
                            "",
                            "^".repeat(text.trim_end().len().max(1)),
                        ));
                        d.push_str(&format!(
                            "  = note: the nearest line to the SEARCH block's first line `{}`",
                            first.trim()
                        ));
                    } else {
                        d.push_str(&format!(
                            "  = note: no line resembles the SEARCH block's first line `{}`",
                            first.trim()
                        ));
                    }
                }
                d.push_str("\n  = help: copy the SEARCH lines exactly from the code, or send the complete code instead");
                problems.push(d);
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_answers_are_read_from_json_or_text_and_ids_normalised() {
        let a = parse_menu_answer(
            r#"{"name": "wider", "motivation": "more room", "edits": ["E3", 7, "e12"]}"#,
            Some("stop"),
        )
        .unwrap();
        assert_eq!(a.name, "wider");
        assert_eq!(a.ids, vec!["E3", "E7", "E12"]);
        let t = parse_menu_answer(
            "NAME: shift\nMOTIVATION: mixes tokens\nEDITS: E2, E05\n",
            None,
        )
        .unwrap();
        assert_eq!(
            (t.name.as_str(), t.ids),
            ("shift", vec!["E2".to_string(), "E5".to_string()])
        );
        let loose = parse_menu_answer("NAME: n\nEDITS: E3 and E7.\n", None).unwrap();
        assert_eq!(loose.ids, vec!["E3", "E7"]);
        assert!(parse_menu_answer("EDITS: the first one\n", None)
            .unwrap_err()
            .contains("holds no menu id"));
        let zero = parse_menu_answer(r#"{"edits": ["E0", "e007"]}"#, None).unwrap();
        assert_eq!(zero.ids, vec!["E0", "E7"]);
        let bad = parse_menu_answer(r#"{"name": "x", "edits": ["widen it"]}"#, None).unwrap_err();
        assert!(bad.contains("not a menu id"), "{bad}");
        let none = parse_menu_answer(r#"{"name": "x"}"#, None).unwrap_err();
        assert!(none.contains("no `edits` list"), "{none}");
        assert!(parse_menu_answer("", Some("length"))
            .unwrap_err()
            .contains("cut off"));
    }

    const PARENT: &str =
        "def model(x):\n    h = embed(x, 64)\n    h = rms_norm(h)\n    return linear(h, 10)\n";

    #[test]
    fn json_with_code() {
        let a = parse_answer(
            r#"{"name":"wide","motivation":"more width","code":"def model(x):\n    return x\n"}"#,
            Some("stop"),
        )
        .unwrap();
        assert_eq!(a.name, "wide");
        assert_eq!(a.body, Body::Code("def model(x):\n    return x\n".into()));
    }

    #[test]
    fn json_in_a_fence_with_edits() {
        let a = parse_answer(
            "Here you go:\n```json\n{\"name\":\"n\",\"motivation\":\"m\",\"edits\":[{\"search\":\"a\",\"replace\":\"b\"}]}\n```\n",
            None,
        )
        .unwrap();
        assert_eq!(
            a.body,
            Body::Edits(vec![Edit {
                search: "a".into(),
                replace: "b".into()
            }])
        );
    }

    #[test]
    fn text_with_a_fenced_block() {
        let a = parse_answer(
            "NAME: deeper\nMOTIVATION: two layers\n```python\ndef model(x):\n    return x\n```\n",
            Some("stop"),
        )
        .unwrap();
        assert_eq!(a.name, "deeper");
        assert_eq!(a.motivation, "two layers");
        assert_eq!(a.body, Body::Code("def model(x):\n    return x\n".into()));
    }

    #[test]
    fn text_with_search_replace_blocks() {
        let a = parse_answer(
            "NAME: ln\n<<<<<<< SEARCH\n    h = rms_norm(h)\n=======\n    h = layer_norm(h)\n>>>>>>> REPLACE\n",
            None,
        )
        .unwrap();
        let Body::Edits(edits) = a.body else { panic!() };
        assert_eq!(
            apply_edits(PARENT, &edits, "parent.star").unwrap(),
            PARENT.replace("rms_norm", "layer_norm")
        );
    }

    #[test]
    fn empty_garbage_and_truncated_answers_say_why() {
        assert_eq!(
            parse_answer("  \n", Some("stop")).unwrap_err(),
            "the answer is empty"
        );
        assert!(parse_answer("I like turtles.", Some("stop"))
            .unwrap_err()
            .contains("neither a fenced code block"));
        assert!(parse_answer(
            "{\"name\": \"x\", \"code\": \"def model(x):\\n",
            Some("length")
        )
        .unwrap_err()
        .contains("cut off"));
        assert!(
            parse_answer("{\"name\": \"x\", \"code\": \"def mo", Some("stop"))
                .unwrap_err()
                .contains("breaks off before it is complete")
        );
        assert!(parse_answer("{\"name\": \"x\" \"code\": 1}", Some("stop"))
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(
            parse_answer("```python\ndef model(x):\n    return", Some("length"))
                .unwrap_err()
                .contains("cut off")
        );
        assert!(parse_answer("{\"name\": \"x\"}", None)
            .unwrap_err()
            .contains("neither a non-empty `code`"));
    }

    #[test]
    fn edits_that_do_not_apply_are_diagnosed() {
        let missing = Edit {
            search: "    h = rmsnorm(h)\n".into(),
            replace: "x".into(),
        };
        let e = apply_edits(PARENT, &[missing], "parent.star").unwrap_err();
        assert!(
            e.contains("edit 1 does not apply: its SEARCH block is not in parent.star"),
            "{e}"
        );
        assert!(e.contains("--> parent.star:3"), "{e}");
        let twice = Edit {
            search: "h".into(),
            replace: "y".into(),
        };
        let e = apply_edits(PARENT, &[twice], "parent.star").unwrap_err();
        assert!(e.contains("occurs"), "{e}");
        let empty = Edit {
            search: " \n".into(),
            replace: "y".into(),
        };
        assert!(apply_edits(PARENT, &[empty], "parent.star")
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn trailing_spaces_do_not_stop_an_edit() {
        let e = Edit {
            search: "    h = rms_norm(h)   \n".into(),
            replace: "    h = layer_norm(h)\n".into(),
        };
        assert_eq!(
            apply_edits(PARENT, &[e], "p").unwrap(),
            PARENT.replace("rms_norm", "layer_norm")
        );
    }

    #[test]
    fn insights_in_json_and_text() {
        let i = parse_insight(
            r##"{"insight":"attention wins","evidence":[3,"#7"]}"##,
            None,
        )
        .unwrap();
        assert_eq!(i.evidence, vec![3, 7]);
        let i = parse_insight("INSIGHT: depth hurts\nEVIDENCE: #2, #5", None).unwrap();
        assert_eq!(
            (i.insight.as_str(), i.evidence),
            ("depth hurts", vec![2, 5])
        );
        assert!(parse_insight("", None).is_err());
    }
}
