//! The LLM proposer: renders the prompts, asks the model, reads its answer (full code or
//! SEARCH/REPLACE edits), checks that the code traces and sends what fails back with its
//! diagnostics, at most `repair_rounds` times. Every call is kept on the candidate.

pub mod answer;
mod cards;
pub mod client;
mod edits;
pub mod menu;
pub mod modes;
mod rounds;

use std::collections::BTreeMap;

use async_trait::async_trait;
use autoarch_archive::{CallPurpose, LlmCall, ProposerKind, Tokens};
use autoarch_sandbox::TraceOutcome;
use autoarch_sandbox::{Limits, TaskShape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::config::{LlmConfig, ModelChoice, Price, Reference, StructuredOutput};
use crate::propose::mutation::menu::{self as edit_menu, Partner};
use crate::propose::mutation::{rewrite_header, TaskKind};
use crate::propose::prompts::{
    AnalyzeVars, AnswerKind, Constant, DesignCard, EditsVars, FailureCard, LimitsCard, Metric,
    Prompts, ProposeVars, RepairVars, SystemVars, TaskCard,
};
use crate::propose::{
    Analysis, AnalysisContext, Draft, Proposal, ProposalContext, ProposeError, Proposer, Shown,
    Unusable,
};
use answer::{apply_edits, parse_answer, parse_insight, parse_menu_answer, Body};
use autoarch_archive::AnswerMode;
use client::{CallError, ChatAnswer, ChatRequest, ClientSettings, LlmClient};
use modes::Modes;

pub use cards::{design_card, task_card};
use cards::{inspiration_cards, limits_card, name_of};
use rounds::Rounds;

/// The file name code is shown under in diagnostics.
const FILE: &str = "model.star";

/// The JSON schema of a proposal.
fn proposal_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "motivation": {"type": "string"},
            "code": {"type": "string"},
            "edits": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"search": {"type": "string"}, "replace": {"type": "string"}},
                    "required": ["search", "replace"]
                }
            }
        },
        "required": ["name", "motivation", "code"]
    })
}

fn insight_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "insight": {"type": "string"},
            "evidence": {"type": "array", "items": {"type": "integer"}}
        },
        "required": ["insight", "evidence"]
    })
}

pub struct LlmProposer {
    client: LlmClient,
    prompts: Prompts,
    models: Vec<ModelChoice>,
    prices: BTreeMap<String, Price>,
    temperature: f64,
    max_tokens: u32,
    repair_rounds: u32,
    reference: String,
    /// The most menu entries an `edits` answer may choose.
    max_edits: u32,
    modes: Modes,
    /// The names the worked examples give their designs (code, edits): small models copy them,
    /// and a copied name is no name.
    example_names: [String; 2],
}

/// One call to make: what it is for, how it is asked, the worked example before it.
struct Ask {
    purpose: CallPurpose,
    /// Sent as the request's `seed`, so that a campaign's calls can be reproduced.
    seed: u64,
    answer: Option<AnswerKind>,
    system: String,
    examples: Vec<(String, String)>,
    user: String,
    schema: serde_json::Value,
    schema_name: &'static str,
}

/// The API key from the variable the config names; `None` (sent as no key) when unset.
pub fn api_key(config: &LlmConfig) -> Option<String> {
    std::env::var(&config.api_key_env)
        .ok()
        .filter(|k| !k.trim().is_empty())
}

impl LlmProposer {
    /// `max_edits`: the most menu entries one `edits` answer applies (`proposer.max_edits`).
    pub fn new(config: &LlmConfig, max_edits: u32) -> anyhow::Result<LlmProposer> {
        let base_url = config
            .base_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("`llm.base_url` is required by the llm proposer"))?;
        let key = api_key(config);
        if key.is_none() {
            tracing::info!(
                "no API key in ${}: requests go without one (fine for local servers)",
                config.api_key_env
            );
        }
        let (first_mode, fallback) = match config.structured_output {
            StructuredOutput::Auto => (AnswerMode::JsonSchema, true),
            StructuredOutput::JsonSchema => (AnswerMode::JsonSchema, false),
            StructuredOutput::JsonObject => (AnswerMode::JsonObject, false),
            StructuredOutput::Text => (AnswerMode::Text, false),
        };
        let secs = std::time::Duration::from_secs_f64;
        let client = LlmClient::new(ClientSettings {
            base_url,
            api_key: key,
            timeout: secs(config.timeout_seconds),
            unreachable: secs(config.unreachable_seconds),
            retry_base: secs(config.retry_base_seconds),
            retry_max: secs(config.retry_max_seconds),
            first_mode,
            fallback,
        })?;
        let prompts = Prompts::load(config.prompts.as_deref())?;
        let example_name = |kind: AnswerKind| {
            let (_, reply) = prompts
                .example(kind, AnswerMode::JsonSchema.as_str())
                .ok()?;
            match kind {
                AnswerKind::Code => parse_answer(&reply, None).ok().map(|a| a.name),
                AnswerKind::Edits => parse_menu_answer(&reply, None).ok().map(|a| a.name),
            }
        };
        let example_names = [
            example_name(AnswerKind::Code).unwrap_or_default(),
            example_name(AnswerKind::Edits).unwrap_or_default(),
        ];
        Ok(LlmProposer {
            client,
            prompts,
            models: config.model_choices(),
            prices: config.prices.clone(),
            temperature: config.temperature,
            max_tokens: config.max_tokens,
            repair_rounds: config.repair_rounds,
            reference: match config.reference {
                Reference::Full => autoarch_sandbox::reference_markdown(),
                Reference::Brief => autoarch_sandbox::reference_brief(),
            },
            max_edits,
            modes: Modes::new(config.answer),
            example_names,
        })
    }

    /// The model's name for its design, unless it copied the worked example's.
    fn own_name<'a>(&self, given: &'a str) -> &'a str {
        let copied = self
            .example_names
            .iter()
            .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(given.trim()));
        if copied {
            ""
        } else {
            given
        }
    }

    fn pick_model(&self, seed: u64) -> String {
        let total: f64 = self.models.iter().map(|m| m.weight).sum();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_110D);
        let mut r = rng.random::<f64>() * total;
        for m in &self.models {
            if r < m.weight {
                return m.name.clone();
            }
            r -= m.weight;
        }
        self.models
            .last()
            .map(|m| m.name.clone())
            .unwrap_or_default()
    }

    fn cost(&self, model: &str, t: Tokens) -> f64 {
        self.prices.get(model).map_or(0.0, |p| {
            (t.prompt as f64 * p.prompt + t.completion as f64 * p.completion) / 1e6
        })
    }

    fn system(
        &self,
        task: &TaskCard,
        limits: &LimitsCard,
        mode: AnswerMode,
        answer: AnswerKind,
    ) -> Result<String, ProposeError> {
        self.prompts
            .system(&SystemVars {
                task,
                limits,
                reference: &self.reference,
                mode: mode.as_str(),
                answer: answer.as_str(),
            })
            .map_err(|e| ProposeError::Unavailable(e.to_string()))
    }

    /// The worked example of an answer kind, as a user turn and its answer.
    fn example(
        &self,
        answer: AnswerKind,
        mode: AnswerMode,
    ) -> Result<(String, String), ProposeError> {
        self.prompts
            .example(answer, mode.as_str())
            .map_err(|e| ProposeError::Unavailable(e.to_string()))
    }

    /// One call, as an [`LlmCall`] (outcome filled in by the caller) and the answer if any.
    async fn ask(&self, model: &str, a: Ask) -> (LlmCall, Result<ChatAnswer, CallError>) {
        let mode = self.client.mode();
        let mut prompt = format!("[system]\n{}\n", a.system);
        for (q, answer) in &a.examples {
            prompt.push_str(&format!("[user]\n{q}\n[assistant]\n{answer}\n"));
        }
        prompt.push_str(&format!("[user]\n{}", a.user));
        let request = ChatRequest {
            model: model.to_string(),
            system: a.system,
            examples: a.examples,
            user: a.user,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            seed: a.seed,
            schema: a.schema,
            schema_name: a.schema_name,
        };
        let started = std::time::Instant::now();
        let result = self.client.chat(&request).await;
        let mut call = LlmCall {
            purpose: a.purpose,
            model: model.into(),
            mode: Some(mode),
            prompt,
            answer: a.answer,
            seconds: started.elapsed().as_secs_f64(),
            ..LlmCall::default()
        };
        match &result {
            Ok(a) => {
                call.mode = Some(a.mode);
                call.response = a.content.clone();
                call.tokens = a.tokens;
                call.cost_usd = self.cost(model, a.tokens);
                call.attempts = a.attempts.clone();
                if a.estimated {
                    call.attempts
                        .push("the server reported no token usage; counts estimated at 4 characters a token".into());
                }
            }
            Err(e) => {
                call.attempts = e.attempts().to_vec();
                call.outcome = e.to_string();
            }
        }
        (call, result)
    }
}

#[async_trait]
impl Proposer for LlmProposer {
    fn kind(&self) -> ProposerKind {
        ProposerKind::Llm
    }

    async fn propose(&self, ctx: ProposalContext) -> Result<Proposal, ProposeError> {
        let model = self.pick_model(ctx.seed);
        let mut kind = self.modes.next(&model);
        let mut proposal = None;
        if kind == AnswerKind::Edits {
            proposal = self.propose_edits(&ctx, &model).await?;
            if proposal.is_none() {
                if self.modes.fixed() {
                    return Err(ProposeError::Nothing(
                        "no edit on the menu traces for this parent".into(),
                    ));
                }
                // `auto`: no edit applies to this parent, so it gets a code answer.
                kind = AnswerKind::Code;
            }
        }
        let mut proposal = match proposal {
            Some(p) => p,
            None => self.propose_code(&ctx, model.clone()).await?,
        };
        // What counts is a new design: code that traces into one the archive holds (a model
        // copying its parent) is no better than code that does not trace.
        let new_design = match &proposal.draft {
            Draft::Traced {
                outcome: TraceOutcome::Ok(t),
                ..
            } => !ctx.known.contains(&t.fingerprint.0),
            _ => false,
        };
        if let Some(line) = self.modes.record(&model, kind, new_design) {
            proposal.notes.push(line);
        }
        Ok(proposal)
    }

    fn restore(&self, history: &[&autoarch_archive::Candidate]) -> Vec<String> {
        let mut own: Vec<&autoarch_archive::Candidate> = history.to_vec();
        own.sort_by_key(|c| c.id);
        self.modes.clear();
        for c in own {
            let (Some(model), Some(first)) = (&c.model, c.calls.first()) else {
                continue;
            };
            let kind = first.answer_kind();
            let new_design = c.traced() && c.duplicate_of.is_none();
            self.modes.replay(model, kind, new_design);
        }
        self.modes.not_on_code()
    }

    async fn analyze(&self, ctx: AnalysisContext) -> Result<Option<Analysis>, ProposeError> {
        let model = self.pick_model(ctx.results.len() as u64);
        let task = task_card(&ctx.task);
        let mode = self.client.mode();
        let system = self.system(
            &task,
            &limits_card(&Limits::default()),
            mode,
            AnswerKind::Code,
        )?;
        let user = self
            .prompts
            .analyze(&AnalyzeVars {
                task: &task,
                mode: mode.as_str(),
                results: ctx
                    .results
                    .iter()
                    .map(|s| {
                        design_card(
                            s,
                            s.summary
                                .last_outcome
                                .filter(|o| *o != autoarch_archive::Outcome::Ok)
                                .map(|o| o.as_str().to_string())
                                .unwrap_or_default(),
                        )
                    })
                    .collect(),
                insights: ctx.insights.clone(),
            })
            .map_err(|e| ProposeError::Unavailable(e.to_string()))?;
        let ask = Ask {
            purpose: CallPurpose::Analyze,
            seed: ctx.results.len() as u64,
            answer: None,
            system,
            examples: vec![],
            user,
            schema: insight_schema(),
            schema_name: "insight",
        };
        let (mut call, result) = self.ask(&model, ask).await;
        let insight = match result {
            Ok(a) => parse_insight(&a.content, a.finish_reason.as_deref())
                .map(|i| (i.insight, i.evidence)),
            Err(e @ (CallError::Unreachable { .. } | CallError::Fatal(..))) => {
                return Err(ProposeError::Unavailable(e.to_string()))
            }
            Err(e) => Err(e.to_string()),
        };
        call.outcome = match &insight {
            Ok(_) => "insight".into(),
            Err(why) => why.clone(),
        };
        Ok(Some(Analysis { insight, call }))
    }
}

#[cfg(test)]
mod tests {
    use super::edits::choice_name;
    use super::*;

    /// The code inside the first ```python fence of a text.
    fn fenced(text: &str) -> String {
        let start = text.find("```python\n").unwrap() + "```python\n".len();
        text[start..][..text[start..].find("```").unwrap()].to_string()
    }

    #[test]
    fn the_worked_examples_are_real_answers_in_every_mode() {
        use autoarch_sandbox::{trace, TraceConfig};
        let prompts = Prompts::load(None).unwrap();
        let config = TraceConfig::new(TaskShape::by_name("mqar").unwrap());
        for mode in client::MODE_CHAIN {
            // The code example's parent and answer both trace.
            let (question, reply) = prompts.example(AnswerKind::Code, mode.as_str()).unwrap();
            assert!(matches!(
                trace(&fenced(&question), &config),
                TraceOutcome::Ok(_)
            ));
            let a = parse_answer(&reply, Some("stop")).unwrap();
            let Body::Code(code) = a.body else {
                panic!("{mode:?}: {reply}")
            };
            assert!(
                matches!(trace(&code, &config), TraceOutcome::Ok(_)),
                "{mode:?}"
            );
            // The edits example shows a real menu of its design, and chooses from it.
            let (question, reply) = prompts.example(AnswerKind::Edits, mode.as_str()).unwrap();
            let design = fenced(&question);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let real: Vec<String> =
                edit_menu::menu(&design, TaskKind { sequence: true }, &[], 100, &mut rng)
                    .into_iter()
                    .map(|e| e.description)
                    .collect();
            let shown: Vec<&str> = question
                .lines()
                .filter_map(|l| l.strip_prefix('E')?.split_once(": ").map(|(_, d)| d))
                .collect();
            assert_eq!(shown.len(), 4);
            for d in &shown {
                assert!(
                    real.iter().any(|r| r == d),
                    "{d:?} is not an edit of the design: {real:?}"
                );
            }
            let chosen = parse_menu_answer(&reply, Some("stop")).unwrap();
            assert_eq!(chosen.ids, vec!["E4", "E1"], "{mode:?}");
        }
    }

    #[test]
    fn a_choice_named_only_by_its_ids_gets_the_parents_name_and_its_kinds() {
        let code = crate::seeds::by_name("transformer").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let m = edit_menu::menu(code, TaskKind { sequence: true }, &[], 30, &mut rng);
        let width = m
            .iter()
            .find(|e| e.kind == crate::propose::mutation::EditKind::Width)
            .unwrap();
        let applied = vec![width.clone()];
        assert_eq!(
            choice_name("E3", "transformer · depth", &applied),
            "transformer · width (llm)"
        );
        assert_eq!(choice_name("E3, E12", "t", &applied), "t · width (llm)");
        assert_eq!(choice_name("", "t", &applied), "t · width (llm)");
        assert_eq!(
            choice_name("Wide transformer", "t", &applied),
            "Wide transformer"
        );
        // A code answer without a name, on a parent an LLM named: one suffix.
        assert_eq!(name_of("", "t · width (llm)"), "t · width (llm)");
        assert_eq!(name_of(" ", "t"), "t (llm)");
    }

    #[test]
    fn models_are_asked_in_proportion_to_their_weights_and_priced_per_million_tokens() {
        let mut config = LlmConfig {
            base_url: Some("http://127.0.0.1:9/v1".into()),
            models: vec![
                ModelChoice {
                    name: "cheap".into(),
                    weight: 3.0,
                },
                ModelChoice {
                    name: "strong".into(),
                    weight: 1.0,
                },
            ],
            ..LlmConfig::default()
        };
        config.prices.insert(
            "strong".into(),
            Price {
                prompt: 2.0,
                completion: 8.0,
            },
        );
        let p = LlmProposer::new(&config, 2).unwrap();
        let cheap = (0..4000u64).filter(|s| p.pick_model(*s) == "cheap").count();
        assert!((2800..3200).contains(&cheap), "{cheap} of 4000");
        assert_eq!(p.pick_model(17), p.pick_model(17), "reproducible");
        let t = Tokens {
            prompt: 1_000_000,
            completion: 500_000,
        };
        assert!((p.cost("strong", t) - 6.0).abs() < 1e-12);
        assert_eq!(p.cost("cheap", t), 0.0);
    }
}
