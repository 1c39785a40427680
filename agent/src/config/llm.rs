//! `[proposer]` and `[llm]`: which proposer, and the OpenAI-compatible endpoint, models, prices,
//! retries and answer format of the LLM one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{bad, Checked};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ProposerChoice {
    /// Offline structural edits of archived designs.
    Mutation,
    /// An LLM behind an OpenAI-compatible endpoint.
    Llm,
}

/// A kind of edit the mutation proposer makes (and the LLM's edit menu offers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditKind {
    Width,
    Depth,
    Heads,
    Kernel,
    Activation,
    Norm,
    Mixer,
    Residual,
    Gate,
    Skip,
    Tie,
    Untie,
    Crossover,
    Insert,
    Primitive,
    Delete,
    Rewire,
    Alter,
    Trade,
}

impl EditKind {
    pub const ALL: [EditKind; 19] = [
        EditKind::Width,
        EditKind::Depth,
        EditKind::Heads,
        EditKind::Kernel,
        EditKind::Activation,
        EditKind::Norm,
        EditKind::Mixer,
        EditKind::Residual,
        EditKind::Gate,
        EditKind::Skip,
        EditKind::Tie,
        EditKind::Untie,
        EditKind::Crossover,
        EditKind::Insert,
        EditKind::Primitive,
        EditKind::Delete,
        EditKind::Rewire,
        EditKind::Alter,
        EditKind::Trade,
    ];

    /// The name configs, candidate names and reports use.
    pub fn name(self) -> &'static str {
        match self {
            EditKind::Width => "width",
            EditKind::Depth => "depth",
            EditKind::Heads => "heads",
            EditKind::Kernel => "kernel",
            EditKind::Activation => "activation",
            EditKind::Norm => "norm",
            EditKind::Mixer => "mixer",
            EditKind::Residual => "residual",
            EditKind::Gate => "gate",
            EditKind::Skip => "skip",
            EditKind::Tie => "tie",
            EditKind::Untie => "untie",
            EditKind::Crossover => "crossover",
            EditKind::Insert => "insert",
            EditKind::Primitive => "primitive",
            EditKind::Delete => "delete",
            EditKind::Rewire => "rewire",
            EditKind::Alter => "alter",
            EditKind::Trade => "trade",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProposerConfig {
    pub kind: ProposerChoice,
    /// The most edits the mutation proposer applies to one parent.
    pub max_edits: u32,
    /// The kinds of edit the mutation proposer makes (all by default).
    pub edits: Vec<EditKind>,
}

impl Default for ProposerConfig {
    fn default() -> Self {
        ProposerConfig {
            kind: ProposerChoice::Mutation,
            max_edits: 2,
            edits: EditKind::ALL.to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// The OpenAI-compatible endpoint, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8089/v1`.
    pub base_url: Option<String>,
    /// The one model to ask (or list several under `[[llm.models]]`).
    pub model: Option<String>,
    /// Several models, each asked in proportion to its weight.
    pub models: Vec<ModelChoice>,
    /// Price per million tokens, by model name; models not listed cost nothing.
    pub prices: BTreeMap<String, Price>,
    /// The environment variable holding the API key (the key itself is never stored).
    pub api_key_env: String,
    pub temperature: f64,
    pub max_tokens: u32,
    /// One request's limit: the call is abandoned (and retried) when it passes.
    pub timeout_seconds: f64,
    /// How long the endpoint may fail (timeouts, connection errors, 429, 5xx) before the campaign
    /// stops or falls back; retries back off exponentially with jitter in between.
    pub unreachable_seconds: f64,
    /// The first retry's wait; each later one doubles, up to `retry_max_seconds`.
    pub retry_base_seconds: f64,
    pub retry_max_seconds: f64,
    /// What to do when the endpoint stays unreachable: `stop` or `mutation` (go on offline).
    pub on_unreachable: OnUnreachable,
    /// How many times a proposal that does not trace goes back with its diagnostics.
    pub repair_rounds: u32,
    /// An `analyze` call after every this many evaluated candidates (0: never).
    pub analyze_every: u32,
    /// A directory whose `system.j2`, `propose.j2`, `repair.j2`, `analyze.j2` replace the
    /// built-in prompts (any subset; relative to the config file).
    pub prompts: Option<PathBuf>,
    /// Structured output: `auto` tries `json_schema`, then `json_object` with the schema, then
    /// plain text with a fenced code block, and remembers what the endpoint took.
    pub structured_output: StructuredOutput,
    /// The language reference in the system prompt: `full` (what `autoarch ops` prints) or
    /// `brief` (the rules and the signatures only, for models with a small context window).
    pub reference: Reference,
    /// How the model answers: `code` (the code, or SEARCH/REPLACE edits of the parent), `edits`
    /// (ids chosen from a menu of the structural edits that apply to the parent, under a JSON
    /// schema: it cannot write code that fails to parse) or `auto` (code, and edits for a model
    /// whose code keeps failing to trace).
    pub answer: AnswerChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerChoice {
    Code,
    Edits,
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    Full,
    Brief,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    pub name: String,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub prompt: f64,
    pub completion: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreachable {
    Stop,
    Mutation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    Auto,
    JsonSchema,
    JsonObject,
    Text,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: None,
            model: None,
            models: vec![],
            prices: BTreeMap::new(),
            api_key_env: "OPENAI_API_KEY".to_string(),
            temperature: 0.7,
            max_tokens: 2048,
            timeout_seconds: 120.0,
            unreachable_seconds: 300.0,
            retry_base_seconds: 1.0,
            retry_max_seconds: 60.0,
            on_unreachable: OnUnreachable::Stop,
            repair_rounds: 3,
            analyze_every: 8,
            prompts: None,
            structured_output: StructuredOutput::Auto,
            reference: Reference::Full,
            answer: AnswerChoice::Auto,
        }
    }
}

impl LlmConfig {
    /// The models to ask, with their weights.
    pub fn model_choices(&self) -> Vec<ModelChoice> {
        match &self.model {
            Some(m) => vec![ModelChoice {
                name: m.clone(),
                weight: 1.0,
            }],
            None => self.models.clone(),
        }
    }
}

impl LlmConfig {
    /// The LLM settings, with the proposer that uses them.
    pub(super) fn check(&self, proposer: &ProposerConfig) -> Checked {
        if proposer.kind == ProposerChoice::Llm {
            if self.base_url.is_none() {
                return bad("llm.base_url", "is required by the llm proposer");
            }
            if self.model.is_none() && self.models.is_empty() {
                return bad(
                    "llm.model",
                    "is required by the llm proposer (or list models under [[llm.models]])",
                );
            }
        }
        if self.model.is_some() && !self.models.is_empty() {
            return bad("llm.models", "cannot be given together with `llm.model`");
        }
        for m in &self.models {
            if m.name.trim().is_empty() {
                return bad("llm.models", "has a model without a name");
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return bad(
                    "llm.models",
                    &format!("gives {} a weight that is not a positive number", m.name),
                );
            }
        }
        for (model, p) in &self.prices {
            if !(p.prompt.is_finite()
                && p.prompt >= 0.0
                && p.completion.is_finite()
                && p.completion >= 0.0)
            {
                return bad(
                    "llm.prices",
                    &format!("gives {model} a price that is not a non-negative number"),
                );
            }
        }
        for (key, v) in [
            ("llm.timeout_seconds", self.timeout_seconds),
            ("llm.unreachable_seconds", self.unreachable_seconds),
            ("llm.retry_base_seconds", self.retry_base_seconds),
            ("llm.retry_max_seconds", self.retry_max_seconds),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, "must be a positive number of seconds");
            }
        }
        if self.repair_rounds > 10 {
            return bad("llm.repair_rounds", "must be at most 10");
        }
        if let Some(u) = &self.base_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return bad("llm.base_url", "must be an http:// or https:// URL");
            }
        }
        if !(self.temperature.is_finite() && (0.0..=2.0).contains(&self.temperature)) {
            return bad("llm.temperature", "must be between 0 and 2");
        }
        if self.max_tokens == 0 {
            return bad("llm.max_tokens", "must be at least 1");
        }
        if !(1..=3).contains(&proposer.max_edits) {
            return bad("proposer.max_edits", "must be 1, 2 or 3");
        }
        if proposer.edits.is_empty() {
            return bad("proposer.edits", "must name at least one kind of edit");
        }
        Ok(())
    }
}
