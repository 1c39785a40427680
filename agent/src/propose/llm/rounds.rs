//! A `code` answer's rounds: the proposal, then repairs on diagnostics, each call kept.

use super::*;

/// What one proposal's rounds have produced so far.
#[derive(Default)]
pub(super) struct Rounds {
    pub(super) calls: Vec<LlmCall>,
    pub(super) name: String,
    pub(super) motivation: String,
    /// The code the next edits apply to (the parent's, then the model's last).
    pub(super) base: String,
    /// The last code the model gave, and its trace.
    pub(super) code: String,
    pub(super) traced: Option<TraceOutcome>,
    /// Why the last answer is not usable (none once it traced).
    pub(super) failure: Option<Unusable>,
    /// Whether that is code that was read and did not trace: it is kept as written, so that
    /// its diagnostics can be read with it.
    pub(super) untraced: bool,
}

impl Rounds {
    pub(super) fn fail(&mut self, headline: &str, detail: impl Into<String>) {
        self.failure = Some(Unusable {
            headline: headline.to_string(),
            detail: detail.into(),
        });
        self.traced = None;
        self.untraced = false;
    }

    /// The last answer's code does not trace: `diagnostics` say why.
    pub(super) fn fail_trace(&mut self, diagnostics: String) {
        self.fail("the code does not trace", diagnostics);
        self.untraced = true;
    }

    /// The proposal: traced code, or what is left with why it is unusable. Code that only
    /// failed to trace is kept as written, so that its diagnostics can be read with it.
    pub(super) fn into_proposal(
        self,
        parent: &autoarch_archive::Candidate,
        model: String,
    ) -> Proposal {
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
    pub(super) fn round_prompt(
        &self,
        ctx: &ProposalContext,
        rounds: &Rounds,
        round: u32,
        mode: AnswerMode,
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
    pub(super) fn read_answer(
        &self,
        answer: &ChatAnswer,
        rounds: &mut Rounds,
    ) -> Result<String, Unusable> {
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
    pub(super) async fn round(
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
            purpose: if round == 0 {
                CallPurpose::Propose
            } else {
                CallPurpose::Repair
            },
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
