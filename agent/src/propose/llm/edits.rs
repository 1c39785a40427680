//! An `edits` answer: the model picks entries of the structural-edit menu, which are applied
//! and traced here.

use super::*;

impl LlmProposer {
    /// A `code` answer: the code or SEARCH/REPLACE edits, repaired on diagnostics.
    pub(super) async fn propose_code(
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
    pub(super) async fn propose_edits(
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
    pub(super) fn edits_ask(
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
            purpose: CallPurpose::Propose,
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
    pub(super) fn make_choice(
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
pub(super) fn choice_name(given: &str, parent: &str, applied: &[edit_menu::MenuEntry]) -> String {
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
pub(super) const MENU_TRACE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The menu entries whose design traces under the campaign's limits (each traced in the trace
/// child, like every proposal) and is not in the archive yet, numbered again: the model is
/// offered no edit that fails, or repeats a design, on its own.
pub(super) async fn traced_entries(
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
pub(super) struct Choice {
    name: String,
    motivation: String,
    applied: Vec<edit_menu::MenuEntry>,
    /// Chosen entries that were not applied, and why.
    notes: Vec<String>,
    code: String,
}

/// The proposal of an `edits` answer: its call (with the entries applied and the outcome),
/// the parents (crossover partners included) and the draft.
pub(super) fn chosen_proposal(
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
