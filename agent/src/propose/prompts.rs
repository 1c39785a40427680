//! The LLM prompts: minijinja templates in `prompts/`, embedded in the binary, any of which a
//! campaign may replace with its own file (`[llm] prompts = "DIR"`).
//!
//! Undefined variables are errors (strict mode), and every template is rendered once with a
//! sample context when it is loaded, so a broken override fails before the campaign starts.

use std::path::Path;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// The templates, by file name, with their built-in text.
pub const TEMPLATES: [(&str, &str); 7] = [
    ("system.j2", include_str!("../../../prompts/system.j2")),
    ("propose.j2", include_str!("../../../prompts/propose.j2")),
    ("edits.j2", include_str!("../../../prompts/edits.j2")),
    ("repair.j2", include_str!("../../../prompts/repair.j2")),
    ("analyze.j2", include_str!("../../../prompts/analyze.j2")),
    (
        "example_code.j2",
        include_str!("../../../prompts/example_code.j2"),
    ),
    (
        "example_edits.j2",
        include_str!("../../../prompts/example_edits.j2"),
    ),
];

/// What the model is asked to answer with (`[llm] answer`): the archive's record type.
pub use autoarch_archive::AnswerKind;

/// A prompt template could not be read, compiled or rendered.
#[derive(Debug, thiserror::Error)]
#[error("prompt template {name}: {reason}")]
pub struct PromptError {
    pub name: String,
    pub reason: String,
}

/// The task as prompts show it.
#[derive(Clone, Debug, Serialize)]
pub struct TaskCard {
    pub name: String,
    pub description: String,
    pub input: String,
    pub input_dtype: String,
    pub output: String,
    pub constants: Vec<Constant>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Constant {
    pub name: String,
    pub value: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LimitsCard {
    pub max_params: u64,
    pub max_flops: u64,
    pub max_nodes: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
}

/// An archived design as prompts show it.
#[derive(Clone, Debug, Serialize)]
pub struct DesignCard {
    pub id: u64,
    pub name: String,
    pub code: String,
    pub motivation: String,
    pub status: String,
    pub score: Option<f64>,
    pub metrics: Vec<Metric>,
    pub curve: String,
    pub params: u64,
    pub flops: u64,
    pub parents: Vec<u64>,
    /// Why it failed, if it did.
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailureCard {
    pub name: String,
    pub reason: String,
    pub code: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SystemVars<'a> {
    pub task: &'a TaskCard,
    pub limits: &'a LimitsCard,
    pub reference: &'a str,
    pub mode: &'a str,
    /// `code` or `edits`.
    pub answer: &'a str,
}

/// The proposal prompt of an `edits` answer.
#[derive(Clone, Debug, Serialize)]
pub struct EditsVars<'a> {
    pub task: &'a TaskCard,
    pub limits: &'a LimitsCard,
    pub mode: &'a str,
    pub parent: DesignCard,
    pub inspirations: Vec<DesignCard>,
    pub insights: Vec<String>,
    /// `E1: what it does`, ...
    pub menu: Vec<String>,
    pub max_edits: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProposeVars<'a> {
    pub task: &'a TaskCard,
    pub limits: &'a LimitsCard,
    pub mode: &'a str,
    pub parent: DesignCard,
    pub inspirations: Vec<DesignCard>,
    pub failures: Vec<FailureCard>,
    pub insights: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RepairVars<'a> {
    pub task: &'a TaskCard,
    pub limits: &'a LimitsCard,
    pub mode: &'a str,
    pub name: String,
    pub code: String,
    /// One line: what is wrong ("the code does not trace", "its edits do not apply", ...).
    pub problem: String,
    pub diagnostics: String,
    pub round: u32,
    pub rounds: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct AnalyzeVars<'a> {
    pub task: &'a TaskCard,
    pub mode: &'a str,
    pub results: Vec<DesignCard>,
    pub insights: Vec<String>,
}

/// The loaded templates.
#[derive(Debug)]
pub struct Prompts {
    env: Environment<'static>,
}

/// `text | truncate(n)`: at most n characters, with an ellipsis when cut.
fn truncate(text: String, n: usize) -> String {
    if text.chars().count() <= n {
        text
    } else {
        let mut cut: String = text.chars().take(n).collect();
        cut.push('…');
        cut
    }
}

impl Prompts {
    /// The built-in templates, with those found in `dir` (if given) in their place.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, PromptError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("truncate", truncate);
        if let Some(d) = dir {
            if !d.is_dir() {
                return Err(PromptError {
                    name: d.display().to_string(),
                    reason: "the prompt directory does not exist".into(),
                });
            }
        }
        for (name, builtin) in TEMPLATES {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(path) => std::fs::read_to_string(&path).map_err(|e| PromptError {
                    name: path.display().to_string(),
                    reason: e.to_string(),
                })?,
                None => builtin.to_string(),
            };
            env.add_template_owned(name, source)
                .map_err(|e| PromptError {
                    name: name.into(),
                    reason: describe(&e),
                })?;
        }
        let prompts = Prompts { env };
        prompts.check()?;
        Ok(prompts)
    }

    fn render(&self, name: &str, vars: Value) -> Result<String, PromptError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(vars))
            .map_err(|e| PromptError {
                name: name.into(),
                reason: describe(&e),
            })
    }

    pub fn system(&self, v: &SystemVars) -> Result<String, PromptError> {
        self.render("system.j2", Value::from(Serde(v)))
    }
    pub fn propose(&self, v: &ProposeVars) -> Result<String, PromptError> {
        self.render("propose.j2", Value::from(Serde(v)))
    }
    pub fn edits(&self, v: &EditsVars) -> Result<String, PromptError> {
        self.render("edits.j2", Value::from(Serde(v)))
    }

    /// The worked example of an answer kind in a structured-output mode: the question, and
    /// the answer to it.
    pub fn example(&self, answer: AnswerKind, mode: &str) -> Result<(String, String), PromptError> {
        let name = match answer {
            AnswerKind::Code => "example_code.j2",
            AnswerKind::Edits => "example_edits.j2",
        };
        let turn =
            |turn: &str| self.render(name, minijinja::context! { mode => mode, turn => turn });
        Ok((turn("user")?, turn("answer")?))
    }

    pub fn repair(&self, v: &RepairVars) -> Result<String, PromptError> {
        self.render("repair.j2", Value::from(Serde(v)))
    }
    pub fn analyze(&self, v: &AnalyzeVars) -> Result<String, PromptError> {
        self.render("analyze.j2", Value::from(Serde(v)))
    }

    /// Renders every template with a sample context in each answer mode.
    fn check(&self) -> Result<(), PromptError> {
        let task = TaskCard {
            name: "sample".into(),
            description: "A sample task.".into(),
            input: "[B, 8]".into(),
            input_dtype: "int".into(),
            output: "[B, 8, 16]".into(),
            constants: vec![Constant {
                name: "VOCAB".into(),
                value: 16,
            }],
        };
        let limits = LimitsCard {
            max_params: 1,
            max_flops: 1,
            max_nodes: 1,
        };
        let design = DesignCard {
            id: 1,
            name: "sample".into(),
            code: "def model(x):\n    return x\n".into(),
            motivation: "sample".into(),
            status: "ok".into(),
            score: Some(0.5),
            metrics: vec![Metric {
                name: "score".into(),
                value: 0.5,
            }],
            curve: "loss 1 → 0.5".into(),
            params: 1,
            flops: 1,
            parents: vec![],
            reason: String::new(),
        };
        for mode in ["json_schema", "json_object", "text"] {
            for answer in [AnswerKind::Code, AnswerKind::Edits] {
                self.system(&SystemVars {
                    task: &task,
                    limits: &limits,
                    reference: "ops",
                    mode,
                    answer: answer.as_str(),
                })?;
                self.example(answer, mode)?;
            }
            self.edits(&EditsVars {
                task: &task,
                limits: &limits,
                mode,
                parent: design.clone(),
                inspirations: vec![design.clone()],
                insights: vec!["i".into()],
                menu: vec!["E1: width D 8 -> 16".into()],
                max_edits: 2,
            })?;
            self.propose(&ProposeVars {
                task: &task,
                limits: &limits,
                mode,
                parent: design.clone(),
                inspirations: vec![design.clone()],
                failures: vec![FailureCard {
                    name: "f".into(),
                    reason: "r".into(),
                    code: "c".into(),
                }],
                insights: vec!["i".into()],
            })?;
            self.repair(&RepairVars {
                task: &task,
                limits: &limits,
                mode,
                name: "n".into(),
                code: "c".into(),
                problem: "p".into(),
                diagnostics: "d".into(),
                round: 1,
                rounds: 3,
            })?;
            self.analyze(&AnalyzeVars {
                task: &task,
                mode,
                results: vec![design.clone()],
                insights: vec!["i".into()],
            })?;
        }
        Ok(())
    }
}

/// A template error with its line, and what was undefined.
fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    let text = e.display_debug_info().to_string();
    if !text.trim().is_empty() {
        s.push('\n');
        s.push_str(&text);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_templates_render_in_every_mode() {
        Prompts::load(None).unwrap();
    }

    #[test]
    fn an_override_with_an_undefined_variable_fails_at_load_naming_the_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("repair.j2"), "Fix {{ cod }} please\n").unwrap();
        let e = Prompts::load(Some(dir.path())).unwrap_err();
        assert_eq!(e.name, "repair.j2");
        assert!(e.reason.contains("undefined"), "{}", e.reason);
    }

    #[test]
    fn an_override_replaces_only_its_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("analyze.j2"),
            "Results: {% for r in results %}#{{ r.id }} {% endfor %}({{ mode }})",
        )
        .unwrap();
        let p = Prompts::load(Some(dir.path())).unwrap();
        let task = TaskCard {
            name: "t".into(),
            description: "d".into(),
            input: "i".into(),
            input_dtype: "int".into(),
            output: "o".into(),
            constants: vec![],
        };
        let text = p
            .analyze(&AnalyzeVars {
                task: &task,
                mode: "text",
                results: vec![],
                insights: vec![],
            })
            .unwrap();
        assert_eq!(text, "Results: (text)");
        let limits = LimitsCard {
            max_params: 5,
            max_flops: 6,
            max_nodes: 7,
        };
        let system = p
            .system(&SystemVars {
                task: &task,
                limits: &limits,
                reference: "REF",
                mode: "text",
                answer: "code",
            })
            .unwrap();
        assert!(system.contains("at most 5 parameters") && system.contains("REF"));
    }

    #[test]
    fn a_missing_prompt_directory_is_an_error() {
        let e = Prompts::load(Some(Path::new("/nonexistent/prompts"))).unwrap_err();
        assert!(e.reason.contains("does not exist"));
    }
}
