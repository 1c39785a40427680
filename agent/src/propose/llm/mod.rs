//! The LLM proposer: renders the prompts, asks the model, reads its answer (full code or
//! SEARCH/REPLACE edits), checks that the code traces and sends what fails back with its
//! diagnostics, at most `repair_rounds` times. Every call is kept on the candidate.

pub mod answer;
pub mod client;
pub mod menu;
pub mod modes;

use std::collections::BTreeMap;

use async_trait::async_trait;
use autoarch_archive::{LlmCall, ProposerKind, Tokens};
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
use client::{CallError, ChatAnswer, ChatRequest, ClientSettings, LlmClient, Mode};
use modes::Modes;

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
    purpose: &'static str,
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
        let prompts = Prompts::load(config.prompts.as_deref())?;
        let example_name = |kind: AnswerKind| {
            let (_, reply) = prompts.example(kind, Mode::JsonSchema.as_str()).ok()?;
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
        mode: Mode,
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
    fn example(&self, answer: AnswerKind, mode: Mode) -> Result<(String, String), ProposeError> {
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
            purpose: a.purpose.into(),
            model: model.into(),
            mode: mode.as_str().into(),
            prompt,
            answer: a.answer,
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

/// The inspirations as prompts show them.
fn inspiration_cards(ctx: &ProposalContext) -> Vec<DesignCard> {
    ctx.inspirations
        .iter()
        .map(|s| design_card(s, String::new()))
        .collect()
}

/// A candidate's name from the model's, or from its parent's when the model gave none.
fn name_of(given: &str, fallback: &str) -> String {
    let n = given.trim();
    if n.is_empty() {
        let base = fallback.trim_end_matches(" (llm)");
        format!("{base} (llm)")
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
    /// Whether that is code that was read and did not trace: it is kept as written, so that
    /// its diagnostics can be read with it.
    untraced: bool,
}

impl Rounds {
    fn fail(&mut self, headline: &str, detail: impl Into<String>) {
        self.failure = Some(Unusable {
            headline: headline.to_string(),
            detail: detail.into(),
        });
        self.traced = None;
        self.untraced = false;
    }

    /// The last answer's code does not trace: `diagnostics` say why.
    fn fail_trace(&mut self, diagnostics: String) {
        self.fail("the code does not trace", diagnostics);
        self.untraced = true;
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
                let keep = self.untraced;
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
            notes: Vec::new(),
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
                inspirations: inspiration_cards(ctx),
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
        if !self.own_name(&a.name).trim().is_empty() {
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
        let system = self.system(
            &task_card(&ctx.task),
            &limits_card(&ctx.limits),
            mode,
            AnswerKind::Code,
        )?;
        let user = self.round_prompt(ctx, rounds, round, mode)?;
        let ask = Ask {
            purpose: if round == 0 { "propose" } else { "repair" },
            seed: ctx.seed.wrapping_mul(8).wrapping_add(u64::from(round)),
            answer: Some(AnswerKind::Code),
            system,
            examples: vec![self.example(AnswerKind::Code, mode)?],
            user,
            schema: proposal_schema(),
            schema_name: "architecture",
        };
        let (mut call, result) = self.ask(model, ask).await;
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
                rounds.untraced = false;
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
                        rounds.fail_trace(rendered);
                    }
                }
            }
        }
        rounds.calls.push(call);
        Ok(rounds.failure.is_none())
    }
}

impl LlmProposer {
    /// A `code` answer: the code or SEARCH/REPLACE edits, repaired on diagnostics.
    async fn propose_code(
        &self,
        ctx: &ProposalContext,
        model: String,
    ) -> Result<Proposal, ProposeError> {
        let mut rounds = Rounds {
            base: ctx.parent.candidate.code.clone(),
            ..Rounds::default()
        };
        for round in 0..=self.repair_rounds {
            if self.round(ctx, &model, round, &mut rounds).await? {
                break;
            }
        }
        Ok(rounds.into_proposal(&ctx.parent.candidate, model))
    }

    /// An `edits` answer: one call choosing from the parent's edit menu. `None` when no edit
    /// applies to the parent.
    async fn propose_edits(
        &self,
        ctx: &ProposalContext,
        model: &str,
    ) -> Result<Option<Proposal>, ProposeError> {
        let parent = &ctx.parent.candidate;
        let partners: Vec<Partner<'_>> = ctx
            .inspirations
            .iter()
            .filter(|s| s.candidate.id != parent.id)
            .map(|s| Partner {
                id: s.candidate.id,
                code: &s.candidate.code,
            })
            .collect();
        let task = TaskKind::of(&ctx.task);
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed ^ 0x3E_4E);
        let menu = edit_menu::menu(&parent.code, task, &partners, menu::MENU_SIZE, &mut rng);
        let menu = traced_entries(ctx, menu, task).await?;
        if menu.is_empty() {
            return Ok(None);
        }
        let (call, result) = self.ask(model, self.edits_ask(ctx, &menu)?).await;
        let answer = match result {
            Ok(a) => a,
            Err(CallError::Rejected(why, _)) => {
                let why = Unusable {
                    headline: "the LLM call was rejected".into(),
                    detail: why,
                };
                return Ok(Some(chosen_proposal(ctx, model, call, None, Err(why))));
            }
            Err(e) => return Err(ProposeError::Unavailable(e.to_string())),
        };
        let choice = match self.make_choice(&answer, &menu, &parent.code, &parent.name, task) {
            Ok(c) => c,
            Err(why) => return Ok(Some(chosen_proposal(ctx, model, call, None, Err(why)))),
        };
        let outcome = match ctx.checker.check(&choice.code).await {
            Ok(o) => o,
            Err(error) => {
                return Err(ProposeError::Machine {
                    error,
                    calls: vec![call],
                })
            }
        };
        Ok(Some(chosen_proposal(
            ctx,
            model,
            call,
            Some(choice),
            Ok(outcome),
        )))
    }

    /// The call of an `edits` answer: the menu prompt, its worked example, the schema.
    fn edits_ask(
        &self,
        ctx: &ProposalContext,
        menu: &[edit_menu::MenuEntry],
    ) -> Result<Ask, ProposeError> {
        let mode = self.client.mode();
        let (task_card, limits) = (task_card(&ctx.task), limits_card(&ctx.limits));
        let user = self
            .prompts
            .edits(&EditsVars {
                task: &task_card,
                limits: &limits,
                mode: mode.as_str(),
                parent: design_card(&ctx.parent, String::new()),
                inspirations: inspiration_cards(ctx),
                insights: ctx.insights.clone(),
                menu: menu.iter().map(|e| e.line()).collect(),
                max_edits: self.max_edits.max(1),
            })
            .map_err(|e| ProposeError::Unavailable(e.to_string()))?;
        Ok(Ask {
            purpose: "propose",
            seed: ctx.seed.wrapping_mul(8),
            answer: Some(AnswerKind::Edits),
            system: self.system(&task_card, &limits, mode, AnswerKind::Edits)?,
            examples: vec![self.example(AnswerKind::Edits, mode)?],
            user,
            schema: menu::schema(menu, self.max_edits),
            schema_name: "edits",
        })
    }

    /// Reads an `edits` answer and applies what it chose to the parent.
    fn make_choice(
        &self,
        answer: &ChatAnswer,
        menu: &[edit_menu::MenuEntry],
        parent_code: &str,
        parent_name: &str,
        task: TaskKind,
    ) -> Result<Choice, Unusable> {
        let a = parse_menu_answer(&answer.content, answer.finish_reason.as_deref()).map_err(
            |detail| Unusable {
                headline: "the answer cannot be used".into(),
                detail,
            },
        )?;
        let (entries, dropped) = menu::resolve(&a, menu, self.max_edits)?;
        let applied = edit_menu::apply(parent_code, &entries, task);
        let name = choice_name(self.own_name(&a.name), parent_name, &applied.applied);
        let what: Vec<String> = applied
            .applied
            .iter()
            .map(|e| e.description.clone())
            .collect();
        let code = rewrite_header(&applied.code, &name, &what);
        let mut notes: Vec<String> = applied
            .skipped
            .iter()
            .map(|(e, why)| format!("{} skipped: {why}", e.id))
            .collect();
        if !dropped.is_empty() {
            notes.push(format!(
                "{} dropped: at most {} edits",
                dropped.join(", "),
                self.max_edits.max(1)
            ));
        }
        Ok(Choice {
            name,
            motivation: a.motivation,
            applied: applied.applied,
            notes,
            code,
        })
    }
}

/// The name of an `edits` answer's design: the model's, unless it only named menu ids (small
/// models do), then the parent's with the kinds of edit, as the mutation proposer names them.
fn choice_name(given: &str, parent: &str, applied: &[edit_menu::MenuEntry]) -> String {
    let only_ids = given
        .split([',', ' ', ';', '+'])
        .filter(|t| !t.is_empty())
        .all(|t| {
            t.strip_prefix(['E', 'e'])
                .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()))
        });
    if !only_ids {
        return name_of(given, parent);
    }
    let base = parent.split(" · ").next().unwrap_or(parent).trim();
    let kinds: Vec<String> = applied
        .iter()
        .map(|e| format!("{:?}", e.kind).to_lowercase())
        .collect();
    format!("{base} · {} (llm)", kinds.join("+"))
}

/// The most time spent tracing one menu's entries.
const MENU_TRACE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The menu entries whose design traces under the campaign's limits (each traced in the trace
/// child, like every proposal) and is not in the archive yet, numbered again: the model is
/// offered no edit that fails, or repeats a design, on its own.
async fn traced_entries(
    ctx: &ProposalContext,
    menu: Vec<edit_menu::MenuEntry>,
    task: TaskKind,
) -> Result<Vec<edit_menu::MenuEntry>, ProposeError> {
    // One at a time: a trace child takes milliseconds and each has its memory limit.
    // Pathological code could take each to its deadline: past MENU_TRACE_BUDGET, the rest are
    // left off.
    let started = std::time::Instant::now();
    let mut keep = vec![false; menu.len()];
    for (i, e) in menu.iter().enumerate() {
        if started.elapsed() > MENU_TRACE_BUDGET {
            break;
        }
        let code = edit_menu::apply(&ctx.parent.candidate.code, &[e], task).code;
        // An edit that gives a design the archive holds would only be a duplicate.
        keep[i] = match ctx.checker.check(&code).await? {
            TraceOutcome::Ok(t) => !ctx.known.contains(&t.fingerprint.0),
            TraceOutcome::Invalid { .. } => false,
        };
    }
    let kept = menu
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect();
    Ok(edit_menu::renumber(kept))
}

/// What an `edits` answer chose and made.
struct Choice {
    name: String,
    motivation: String,
    applied: Vec<edit_menu::MenuEntry>,
    /// Chosen entries that were not applied, and why.
    notes: Vec<String>,
    code: String,
}

/// The proposal of an `edits` answer: its call (with the entries applied and the outcome),
/// the parents (crossover partners included) and the draft.
fn chosen_proposal(
    ctx: &ProposalContext,
    model: &str,
    mut call: LlmCall,
    choice: Option<Choice>,
    traced: Result<TraceOutcome, Unusable>,
) -> Proposal {
    let parent = &ctx.parent.candidate;
    let mut parents = vec![parent.id];
    let (name, mut motivation, code) = match &choice {
        Some(c) => {
            call.edits = c.applied.iter().map(|e| e.line()).collect();
            for e in &c.applied {
                if let Some((id, _)) = &e.partner {
                    if !parents.contains(id) {
                        parents.push(*id);
                    }
                }
            }
            (c.name.clone(), c.motivation.clone(), c.code.clone())
        }
        None => (name_of("", &parent.name), String::new(), String::new()),
    };
    if !call.edits.is_empty() {
        motivation = format!(
            "{}\nEdits chosen from the menu: {}.",
            motivation.trim(),
            call.edits.join("; ")
        )
        .trim_start()
        .to_string();
    }
    let notes = choice.map(|c| c.notes).unwrap_or_default();
    let draft = match traced {
        Ok(outcome @ TraceOutcome::Ok(_)) => {
            call.outcome = if notes.is_empty() {
                "traced".into()
            } else {
                format!("traced; {}", notes.join("; "))
            };
            Draft::Traced { code, outcome }
        }
        Ok(TraceOutcome::Invalid { diagnostics }) => {
            let rendered = autoarch_sandbox::render_all(&diagnostics, FILE);
            call.outcome = format!("does not trace: {}", rendered.lines().next().unwrap_or(""));
            Draft::Unusable {
                code,
                why: Unusable {
                    headline: "the code does not trace".into(),
                    detail: rendered,
                },
            }
        }
        Err(why) => {
            call.outcome = format!("{}: {}", why.headline, why.detail.replace('\n', " "));
            Draft::Unusable { code, why }
        }
    };
    Proposal {
        name,
        motivation,
        parents,
        model: Some(model.to_string()),
        calls: vec![call],
        draft,
        notes: Vec::new(),
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
            purpose: "analyze",
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
        for mode in Mode::CHAIN {
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
