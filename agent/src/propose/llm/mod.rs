//! The LLM proposer: renders the prompts, asks the model, reads its answer (full code or
//! SEARCH/REPLACE edits), checks that the code traces and sends what fails back with its
//! diagnostics, at most `repair_rounds` times. Every call is kept on the candidate.

pub mod answer;
pub mod client;

use std::collections::BTreeMap;

use async_trait::async_trait;
use autoarch_archive::{LlmCall, ProposerKind, Tokens};
use autoarch_sandbox::TraceOutcome;
use autoarch_sandbox::{Limits, TaskShape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::config::{LlmConfig, ModelChoice, Price, Reference, StructuredOutput};
use crate::propose::prompts::{
    AnalyzeVars, Constant, DesignCard, FailureCard, LimitsCard, Metric, Prompts, ProposeVars,
    RepairVars, SystemVars, TaskCard,
};
use crate::propose::{
    Analysis, AnalysisContext, Draft, Proposal, ProposalContext, ProposeError, Proposer, Shown,
    Unusable,
};
use answer::{apply_edits, parse_answer, parse_insight, Body};
use client::{CallError, ChatAnswer, ChatRequest, ClientSettings, LlmClient, Mode};

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
}

/// The API key from the variable the config names; `None` (sent as no key) when unset.
pub fn api_key(config: &LlmConfig) -> Option<String> {
    std::env::var(&config.api_key_env)
        .ok()
        .filter(|k| !k.trim().is_empty())
}

impl LlmProposer {
    pub fn new(config: &LlmConfig) -> anyhow::Result<LlmProposer> {
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
            StructuredOutput::Auto => (Mode::JsonSchema, true),
            StructuredOutput::JsonSchema => (Mode::JsonSchema, false),
            StructuredOutput::JsonObject => (Mode::JsonObject, false),
            StructuredOutput::Text => (Mode::Text, false),
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
        Ok(LlmProposer {
            client,
            prompts: Prompts::load(config.prompts.as_deref())?,
            models: config.model_choices(),
            prices: config.prices.clone(),
            temperature: config.temperature,
            max_tokens: config.max_tokens,
            repair_rounds: config.repair_rounds,
            reference: match config.reference {
                Reference::Full => autoarch_sandbox::reference_markdown(),
                Reference::Brief => autoarch_sandbox::reference_brief(),
            },
        })
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
        mode: Mode,
    ) -> Result<String, ProposeError> {
        self.prompts
            .system(&SystemVars {
                task,
                limits,
                reference: &self.reference,
                mode: mode.as_str(),
            })
            .map_err(|e| ProposeError::Unavailable(e.to_string()))
    }

    /// One call, as an [`LlmCall`] (outcome filled in by the caller) and the answer if any.
    async fn ask(
        &self,
        purpose: &str,
        model: &str,
        system: String,
        user: String,
        schema: serde_json::Value,
        schema_name: &'static str,
    ) -> (LlmCall, Result<ChatAnswer, CallError>) {
        let mode = self.client.mode();
        let request = ChatRequest {
            model: model.to_string(),
            system,
            user,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            schema,
            schema_name,
        };
        let started = std::time::Instant::now();
        let result = self.client.chat(&request).await;
        let mut call = LlmCall {
            purpose: purpose.into(),
            model: model.into(),
            mode: mode.as_str().into(),
            prompt: format!("[system]\n{}\n[user]\n{}", request.system, request.user),
            seconds: started.elapsed().as_secs_f64(),
            ..LlmCall::default()
        };
        match &result {
            Ok(a) => {
                call.mode = a.mode.as_str().into();
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

pub fn task_card(task: &TaskShape) -> TaskCard {
    TaskCard {
        name: task.name.clone(),
        description: task.description.clone(),
        input: task.input.to_string(),
        input_dtype: task.input_dtype.to_string(),
        output: task.output.to_string(),
        constants: task
            .constants
            .iter()
            .map(|(k, v)| Constant {
                name: k.clone(),
                value: *v,
            })
            .collect(),
    }
}

fn limits_card(l: &Limits) -> LimitsCard {
    LimitsCard {
        max_params: l.max_params,
        max_flops: l.max_flops,
        max_nodes: l.max_nodes,
    }
}

pub fn design_card(s: &Shown, reason: String) -> DesignCard {
    let c = &s.candidate;
    DesignCard {
        id: c.id,
        name: c.name.clone(),
        code: c.code.clone(),
        motivation: c.motivation.clone(),
        status: s.summary.status.as_str().to_string(),
        score: s.summary.score().map(|v| (v * 1e4).round() / 1e4),
        metrics: s
            .summary
            .metrics
            .iter()
            .map(|(k, v)| Metric {
                name: k.clone(),
                value: (v * 1e4).round() / 1e4,
            })
            .collect(),
        curve: s.curve.clone(),
        params: c.stats.params,
        flops: c.stats.flops,
        parents: c.parents.clone(),
        reason,
    }
}

/// A candidate's name from the model's, or from its parent's when the model gave none.
fn name_of(given: &str, fallback: &str) -> String {
    let n = given.trim();
    if n.is_empty() {
        format!("{fallback} (llm)")
    } else {
        n.chars().take(80).collect()
    }
}

/// What one proposal's rounds have produced so far.
#[derive(Default)]
struct Rounds {
    calls: Vec<LlmCall>,
    name: String,
    motivation: String,
    /// The code the next edits apply to (the parent's, then the model's last).
    base: String,
    /// The last code the model gave, and its trace.
    code: String,
    traced: Option<TraceOutcome>,
    /// Why the last answer is not usable (none once it traced).
    failure: Option<Unusable>,
}

impl Rounds {
    fn fail(&mut self, headline: &str, detail: impl Into<String>) {
        self.failure = Some(Unusable {
            headline: headline.to_string(),
            detail: detail.into(),
        });
        self.traced = None;
    }

    /// The proposal: traced code, or what is left with why it is unusable. Code that only
    /// failed to trace is kept as written, so that its diagnostics can be read with it.
    fn into_proposal(self, parent: &autoarch_archive::Candidate, model: String) -> Proposal {
        let repairs = self.calls.len().saturating_sub(1);
        let draft = match (self.failure, self.traced) {
            (None, Some(outcome)) => Draft::Traced {
                code: self.code,
                outcome,
            },
            (failure, _) => {
                let mut why = failure.unwrap_or_else(|| Unusable {
                    headline: "no code".into(),
                    detail: String::new(),
                });
                let keep = why.headline == "the code does not trace";
                if repairs > 0 {
                    let s = if repairs == 1 { "" } else { "s" };
                    why.headline = format!("{} (after {repairs} repair round{s})", why.headline);
                }
                Draft::Unusable {
                    code: if keep { self.code } else { String::new() },
                    why,
                }
            }
        };
        Proposal {
            name: name_of(&self.name, &parent.name),
            motivation: self.motivation,
            parents: vec![parent.id],
            model: Some(model),
            calls: self.calls,
            draft,
        }
    }
}

impl LlmProposer {
    /// The user message of a round: the proposal prompt first, then repairs.
    fn round_prompt(
        &self,
        ctx: &ProposalContext,
        rounds: &Rounds,
        round: u32,
        mode: Mode,
    ) -> Result<String, ProposeError> {
        let task = task_card(&ctx.task);
        let limits = limits_card(&ctx.limits);
        let rendered = if round == 0 {
            self.prompts.propose(&ProposeVars {
                task: &task,
                limits: &limits,
                mode: mode.as_str(),
                parent: design_card(&ctx.parent, String::new()),
                inspirations: ctx
                    .inspirations
                    .iter()
                    .map(|s| design_card(s, String::new()))
                    .collect(),
                failures: ctx
                    .failures
                    .iter()
                    .map(|f| FailureCard {
                        name: f.name.clone(),
                        reason: f.reason.clone(),
                        code: f.code.clone(),
                    })
                    .collect(),
                insights: ctx.insights.clone(),
            })
        } else {
            let failure = rounds.failure.clone().unwrap_or(Unusable {
                headline: String::new(),
                detail: String::new(),
            });
            self.prompts.repair(&RepairVars {
                task: &task,
                limits: &limits,
                mode: mode.as_str(),
                name: rounds.name.clone(),
                code: rounds.base.clone(),
                problem: failure.headline,
                diagnostics: failure.detail,
                round,
                rounds: self.repair_rounds,
            })
        };
        rendered.map_err(|e| ProposeError::Unavailable(e.to_string()))
    }

    /// Reads an answer into code: whole code, or edits applied to the last code.
    fn read_answer(&self, answer: &ChatAnswer, rounds: &mut Rounds) -> Result<String, Unusable> {
        let unusable = |headline: &str, detail: String| Unusable {
            headline: headline.to_string(),
            detail,
        };
        let a = parse_answer(&answer.content, answer.finish_reason.as_deref())
            .map_err(|why| unusable("the answer cannot be used", why))?;
        if !a.name.trim().is_empty() {
            rounds.name = a.name.clone();
        }
        if !a.motivation.trim().is_empty() {
            rounds.motivation = a.motivation.clone();
        }
        match a.body {
            Body::Code(c) => Ok(c),
            Body::Edits(edits) => apply_edits(&rounds.base, &edits, FILE)
                .map_err(|d| unusable("its edits do not apply", d)),
        }
    }

    /// One call and what came of it. `Ok(true)` when the proposal is done (traced, or a call
    /// failed in a way no repair helps).
    async fn round(
        &self,
        ctx: &ProposalContext,
        model: &str,
        round: u32,
        rounds: &mut Rounds,
    ) -> Result<bool, ProposeError> {
        let mode = self.client.mode();
        let system = self.system(&task_card(&ctx.task), &limits_card(&ctx.limits), mode)?;
        let user = self.round_prompt(ctx, rounds, round, mode)?;
        let purpose = if round == 0 { "propose" } else { "repair" };
        let (mut call, result) = self
            .ask(
                purpose,
                model,
                system,
                user,
                proposal_schema(),
                "architecture",
            )
            .await;
        let answer = match result {
            Ok(a) => a,
            Err(CallError::Rejected(why, _)) => {
                rounds.calls.push(call);
                rounds.fail("the LLM call was rejected", why);
                return Ok(true);
            }
            // The endpoint is gone or misconfigured: a first call ends the proposal (the loop
            // stops or falls back); a repair keeps what was asked so far.
            Err(e) if round == 0 => {
                rounds.calls.push(call);
                return Err(ProposeError::Unavailable(e.to_string()));
            }
            Err(e) => {
                rounds.calls.push(call);
                rounds.fail("the repair call failed", e.to_string());
                return Ok(true);
            }
        };
        match self.read_answer(&answer, rounds) {
            Err(why) => {
                call.outcome = format!("{}: {}", why.headline, why.detail.replace('\n', " "));
                rounds.failure = Some(why);
                rounds.traced = None;
            }
            Ok(code) => {
                rounds.code = code.clone();
                rounds.base = code;
                let outcome = match ctx.checker.check(&rounds.code).await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        call.outcome = format!("not traced: {error}");
                        rounds.calls.push(call);
                        let calls = std::mem::take(&mut rounds.calls);
                        return Err(ProposeError::Machine { error, calls });
                    }
                };
                match &outcome {
                    TraceOutcome::Ok(_) => {
                        call.outcome = "traced".into();
                        rounds.failure = None;
                        rounds.traced = Some(outcome);
                    }
                    TraceOutcome::Invalid { diagnostics } => {
                        let rendered = autoarch_sandbox::render_all(diagnostics, FILE);
                        call.outcome =
                            format!("does not trace: {}", rendered.lines().next().unwrap_or(""));
                        rounds.fail("the code does not trace", rendered);
                    }
                }
            }
        }
        rounds.calls.push(call);
        Ok(rounds.failure.is_none())
    }
}

#[async_trait]
impl Proposer for LlmProposer {
    fn kind(&self) -> ProposerKind {
        ProposerKind::Llm
    }

    async fn propose(&self, ctx: ProposalContext) -> Result<Proposal, ProposeError> {
        let model = self.pick_model(ctx.seed);
        let mut rounds = Rounds {
            base: ctx.parent.candidate.code.clone(),
            ..Rounds::default()
        };
        for round in 0..=self.repair_rounds {
            if self.round(&ctx, &model, round, &mut rounds).await? {
                break;
            }
        }
        Ok(rounds.into_proposal(&ctx.parent.candidate, model))
    }

    async fn analyze(&self, ctx: AnalysisContext) -> Result<Option<Analysis>, ProposeError> {
        let model = self.pick_model(ctx.results.len() as u64);
        let task = task_card(&ctx.task);
        let mode = self.client.mode();
        let system = self.system(&task, &limits_card(&Limits::default()), mode)?;
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
        let (mut call, result) = self
            .ask("analyze", &model, system, user, insight_schema(), "insight")
            .await;
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
    use super::*;

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
        let p = LlmProposer::new(&config).unwrap();
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
