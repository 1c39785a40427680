//! The LLM proposer: renders the prompts, asks the model, reads its answer (full code or
//! SEARCH/REPLACE edits), checks that the code traces and sends what fails back with its
//! diagnostics, at most `repair_rounds` times. Every call is kept on the candidate.

pub mod answer;
pub mod client;

use std::collections::BTreeMap;

use async_trait::async_trait;
use autoarch_archive::{LlmCall, ProposerKind, Tokens};
use autoarch_sandbox::{Limits, TaskShape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::config::{LlmConfig, ModelChoice, Price, Reference, StructuredOutput};
use crate::prompts::{
    AnalyzeVars, Constant, DesignCard, FailureCard, LimitsCard, Metric, Prompts, ProposeVars,
    RepairVars, SystemVars, TaskCard,
};
use crate::proposer::{
    Analysis, AnalysisContext, Proposal, ProposalContext, ProposeError, Proposer, Shown,
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

#[async_trait]
impl Proposer for LlmProposer {
    fn kind(&self) -> ProposerKind {
        ProposerKind::Llm
    }

    async fn propose(&self, ctx: ProposalContext) -> Result<Proposal, ProposeError> {
        let model = self.pick_model(ctx.seed);
        let task = task_card(&ctx.task);
        let limits = limits_card(&ctx.limits);
        let parent = &ctx.parent.candidate;
        let mut calls: Vec<LlmCall> = Vec::new();
        let mut name = String::new();
        let mut motivation = String::new();
        // The code the next edits apply to, and the last code the model gave.
        let mut base = parent.code.clone();
        let mut code = String::new();
        let mut failure: Option<String> = None;
        // Whether the last answer gave code that only failed to trace (kept as written: the
        // loop traces it again and stores its diagnostics), rather than no usable code.
        let mut keep_code = false;

        for round in 0..=self.repair_rounds {
            let mode = self.client.mode();
            let system = self.system(&task, &limits, mode)?;
            let user = if round == 0 {
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
                let (problem, diagnostics) = failure
                    .clone()
                    .unwrap_or_default()
                    .split_once('\n')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .unwrap_or_default();
                self.prompts.repair(&RepairVars {
                    task: &task,
                    limits: &limits,
                    mode: mode.as_str(),
                    name: name.clone(),
                    code: base.clone(),
                    problem,
                    diagnostics,
                    round,
                    rounds: self.repair_rounds,
                })
            }
            .map_err(|e| ProposeError::Unavailable(e.to_string()))?;
            let purpose = if round == 0 { "propose" } else { "repair" };
            let (mut call, result) = self
                .ask(
                    purpose,
                    &model,
                    system,
                    user,
                    proposal_schema(),
                    "architecture",
                )
                .await;
            let answer = match result {
                Ok(a) => a,
                Err(CallError::Rejected(why, _)) => {
                    calls.push(call);
                    failure = Some(format!("the LLM call was rejected\n{why}"));
                    keep_code = false;
                    break;
                }
                Err(e) => {
                    // The endpoint is gone or misconfigured: a first call ends the proposal
                    // (the loop stops or falls back); a repair keeps what was asked so far.
                    calls.push(call);
                    if round == 0 {
                        return Err(ProposeError::Unavailable(e.to_string()));
                    }
                    failure = Some(format!("the repair call failed\n{e}"));
                    keep_code = false;
                    break;
                }
            };
            let next = match parse_answer(&answer.content, answer.finish_reason.as_deref()) {
                Err(why) => Err(format!("the answer cannot be used\n{why}")),
                Ok(a) => {
                    if !a.name.trim().is_empty() {
                        name = a.name.clone();
                    }
                    if !a.motivation.trim().is_empty() {
                        motivation = a.motivation.clone();
                    }
                    match a.body {
                        Body::Code(c) => Ok(c),
                        Body::Edits(edits) => apply_edits(&base, &edits, FILE)
                            .map_err(|d| format!("its edits do not apply\n{d}")),
                    }
                }
            };
            match next {
                Err(why) => {
                    call.outcome = why.lines().next().unwrap_or("").to_string()
                        + ": "
                        + why.lines().skip(1).collect::<Vec<_>>().join(" ").as_str();
                    failure = Some(why);
                    keep_code = false;
                }
                Ok(c) => {
                    code = c.clone();
                    base = c;
                    match ctx.checker.check(&code).await {
                        Ok(()) => {
                            call.outcome = "traced".into();
                            failure = None;
                        }
                        Err(diagnostics) => {
                            call.outcome = format!(
                                "does not trace: {}",
                                diagnostics.lines().next().unwrap_or("")
                            );
                            failure = Some(format!("the code does not trace\n{diagnostics}"));
                            keep_code = true;
                        }
                    }
                }
            }
            calls.push(call);
            if failure.is_none() {
                break;
            }
        }

        let tokens = calls.iter().fold(Tokens::default(), |t, c| Tokens {
            prompt: t.prompt + c.tokens.prompt,
            completion: t.completion + c.tokens.completion,
        });
        let cost_usd = calls.iter().map(|c| c.cost_usd).sum();
        let failure = failure.map(|f| {
            let (head, rest) = f.split_once('\n').unwrap_or((&f, ""));
            let rounds = calls.len().saturating_sub(1);
            format!(
                "{head}{}\n{rest}",
                if rounds > 0 {
                    format!(
                        " (after {rounds} repair round{})",
                        if rounds == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            )
        });
        Ok(Proposal {
            name: name_of(&name, &parent.name),
            motivation,
            code: if failure.is_none() || keep_code {
                code
            } else {
                String::new()
            },
            parents: vec![parent.id],
            model: Some(model),
            prompt: calls.first().map(|c| c.prompt.clone()),
            response: calls.last().map(|c| c.response.clone()),
            tokens,
            cost_usd,
            calls,
            failure,
        })
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
