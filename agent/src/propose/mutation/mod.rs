//! The mutation proposer: structural edits of a parent's source that keep it valid code —
//! widths, depth, heads, kernel sizes; activation, norm and token-mixer swaps; residuals, gates
//! and skips; weight tying; crossover of blocks from an inspiration — and edits that build
//! mechanisms from primitives ([`primitives`]): insert a mixer branch, put a primitive on a
//! path, bypass a call, rewire an operand, alter a primitive's constant.
//!
//! Edits are made on the source text (located by the sandbox's outline), so the author's
//! helpers, names and comments survive and every candidate's code stays readable. Each kind
//! is one function in [`edits`].

mod edits;
pub mod menu;
mod primitives;

use async_trait::async_trait;
use autoarch_archive::{CandidateId, ProposerKind};
use autoarch_sandbox::outline::{apply_edits, outline, Edit, Outline};
use autoarch_sandbox::{DType, TaskShape, TraceOutcome};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::propose::{Draft, Proposal, ProposalContext, ProposeError, Proposer};
use crate::seeds::Header;

/// The kinds of edit, in the order `autoarch` documents them (`[proposer] edits` chooses
/// among them).
pub use crate::config::EditKind;

pub const EDIT_KINDS: &[EditKind] = &EditKind::ALL;

/// One edit applied to a source: the new source, what was done in words, and the text edits
/// (on the source it was made for) that did it.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub kind: EditKind,
    pub code: String,
    pub description: String,
    pub edits: Vec<Edit>,
}

/// The facts about the task the edits need.
#[derive(Clone, Copy, Debug)]
pub struct TaskKind {
    /// Token sequences (int input with a SEQ_LEN): token mixers and long skips apply.
    pub sequence: bool,
}

impl TaskKind {
    pub fn of(task: &TaskShape) -> TaskKind {
        TaskKind {
            sequence: task.input_dtype == DType::Int
                && task.constants.iter().any(|(k, _)| k == "SEQ_LEN"),
        }
    }
}

/// Every edit of `kind` that applies to `source`; the caller picks one.
pub fn candidates(
    kind: EditKind,
    source: &str,
    o: &Outline,
    task: TaskKind,
    partner: Option<&str>,
) -> Vec<Applied> {
    let site = edits::Site {
        source,
        outline: o,
        task,
        partner,
    };
    let options = match kind {
        EditKind::Width => edits::width(&site),
        EditKind::Depth => edits::depth(&site),
        EditKind::Heads => edits::heads(&site),
        EditKind::Kernel => edits::kernel(&site),
        EditKind::Activation => edits::activation(&site),
        EditKind::Norm => edits::norm(&site),
        EditKind::Mixer => edits::mixer(&site),
        EditKind::Residual => edits::residual(&site),
        EditKind::Gate => edits::gate(&site),
        EditKind::Skip => edits::skip(&site),
        EditKind::Tie => edits::tie(&site),
        EditKind::Untie => edits::untie(&site),
        EditKind::Crossover => edits::crossover(&site),
        EditKind::Insert => primitives::insert(&site),
        EditKind::Primitive => primitives::primitive(&site),
        EditKind::Delete => primitives::delete(&site),
        EditKind::Rewire => primitives::rewire(&site),
        EditKind::Alter => primitives::alter(&site),
        EditKind::Trade => primitives::trade(&site),
    };
    options
        .into_iter()
        .filter_map(|(edits, description)| {
            let code = apply_edits(source, &edits).ok()?;
            (code != source).then_some(Applied {
                kind,
                code,
                description,
                edits,
            })
        })
        .collect()
}

/// Applies one random edit of one of `kinds` that fits; `None` when none applies.
pub fn mutate_once(
    source: &str,
    task: TaskKind,
    kinds: &[EditKind],
    partner: Option<&str>,
    rng: &mut impl Rng,
) -> Option<Applied> {
    let o = outline(source).ok()?;
    let mut kinds: Vec<EditKind> = kinds.to_vec();
    // Try kinds in random order; within a kind, a random site and value.
    while !kinds.is_empty() {
        let k = kinds.remove(rng.random_range(0..kinds.len()));
        let options = candidates(k, source, &o, task, partner);
        if let Some(pick) = options.choose(rng) {
            return Some(pick.clone());
        }
    }
    None
}

/// Rewrites the header comment: the new name, and the edit history (the last five edits).
pub(crate) fn rewrite_header(code: &str, name: &str, edits: &[String]) -> String {
    let header = Header::parse(code);
    let mut history = header.all("edit");
    history.extend(edits.iter().cloned());
    let skip = history.len().saturating_sub(5);
    let mut out = vec![format!("# name: {name}")];
    out.extend(
        header
            .lines
            .iter()
            .filter(|l| !(l.starts_with("# name:") || l.starts_with("# edit: ")))
            .map(|l| l.to_string()),
    );
    out.extend(history[skip..].iter().map(|e| format!("# edit: {e}")));
    let rest = &code[header.end..];
    format!("{}\n{rest}", out.join("\n"))
}

/// The base of a candidate name: without the edit suffixes.
fn base_name(name: &str) -> &str {
    name.split(" · ").next().unwrap_or(name).trim()
}

/// A mutated design.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutated {
    pub name: String,
    pub description: String,
    pub code: String,
    pub kinds: Vec<EditKind>,
}

/// Applies `n` random edits of `kinds` to `parent` (crossover may take blocks from `partner`),
/// fewer when no edit applies any more.
pub fn mutate(
    parent_name: &str,
    parent: &str,
    task: TaskKind,
    kinds: &[EditKind],
    partner: Option<&str>,
    n: u32,
    rng: &mut impl Rng,
) -> Option<Mutated> {
    let mut code = parent.to_string();
    let mut applied = Vec::new();
    for _ in 0..n {
        match mutate_once(&code, task, kinds, partner, rng) {
            Some(a) => {
                code = a.code.clone();
                applied.push(a);
            }
            None => break,
        }
    }
    if applied.is_empty() {
        return None;
    }
    let descriptions: Vec<String> = applied.iter().map(|a| a.description.clone()).collect();
    let kinds: Vec<EditKind> = applied.iter().map(|a| a.kind).collect();
    let name = format!(
        "{} · {}",
        base_name(parent_name),
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join("+")
    );
    Some(Mutated {
        code: rewrite_header(&code, &name, &descriptions),
        name,
        description: descriptions.join("; "),
        kinds,
    })
}

/// The offline proposer.
pub struct MutationProposer {
    pub max_edits: u32,
    /// The kinds of edit it makes.
    pub kinds: Vec<EditKind>,
}

impl MutationProposer {
    /// Up to `max_edits` edits of any kind per proposal.
    pub fn new(max_edits: u32) -> MutationProposer {
        MutationProposer {
            max_edits,
            kinds: EditKind::ALL.to_vec(),
        }
    }
}

/// Draws a proposal may make before it gives what it has: a child that does not trace, or
/// repeats a design the archive holds, is drawn again, so what is offered traces and is new
/// whenever a few draws can find such a child.
pub const DRAWS: usize = 8;

#[async_trait]
impl Proposer for MutationProposer {
    fn kind(&self) -> ProposerKind {
        ProposerKind::Mutation
    }

    async fn propose(&self, ctx: ProposalContext) -> Result<Proposal, ProposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
        let task = TaskKind::of(&ctx.task);
        // The best so far: a traced duplicate beats code that does not trace.
        let mut best: Option<(bool, Proposal)> = None;
        for _ in 0..DRAWS {
            let partner = ctx.inspirations.choose(&mut rng);
            let n = ctx.edits.draw(self.max_edits, &mut rng);
            let Some(m) = mutate(
                &ctx.parent.candidate.name,
                &ctx.parent.candidate.code,
                task,
                &self.kinds,
                partner.map(|p| p.candidate.code.as_str()),
                n,
                &mut rng,
            ) else {
                break;
            };
            let outcome = ctx.checker.check(&m.code).await?;
            let traced = matches!(outcome, TraceOutcome::Ok(_));
            let fresh = match &outcome {
                TraceOutcome::Ok(t) => !ctx.known.contains(&t.fingerprint.0),
                TraceOutcome::Invalid { .. } => false,
            };
            let proposal = proposal(&ctx, partner.map(|p| p.candidate.id), m, outcome);
            if fresh {
                return Ok(proposal);
            }
            if best.as_ref().is_none_or(|(t, _)| traced || !t) {
                best = Some((traced, proposal));
            }
        }
        best.map(|(_, p)| p)
            .ok_or_else(|| ProposeError::Nothing("no edit applies to the parent".into()))
    }
}

/// The proposal of a mutated design, traced (`partner`: the crossover partner drawn).
fn proposal(
    ctx: &ProposalContext,
    partner: Option<CandidateId>,
    m: Mutated,
    outcome: TraceOutcome,
) -> Proposal {
    let mut parents = vec![ctx.parent.candidate.id];
    if let Some(p) = partner {
        if m.kinds.contains(&EditKind::Crossover) && p != ctx.parent.candidate.id {
            parents.push(p);
        }
    }
    Proposal {
        name: m.name,
        motivation: format!(
            "Mutation of #{}: {}.",
            ctx.parent.candidate.id, m.description
        ),
        parents,
        model: None,
        calls: vec![],
        draft: Draft::Traced {
            code: m.code,
            outcome,
        },
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use autoarch_sandbox::{trace, TaskShape, TraceConfig, TraceOutcome};

    use super::*;

    /// Mutates every library seed of `task` `rounds` times (a chain of up to three generations,
    /// with another seed as crossover partner) and counts, per edit kind, the proposals that trace.
    fn trace_share(
        task: &str,
        rounds: usize,
    ) -> (usize, usize, BTreeMap<EditKind, (usize, usize)>) {
        let shape = TaskShape::by_name(task).unwrap();
        let config = TraceConfig::new(shape.clone());
        let seeds = crate::seeds::for_task(task);
        let kind = TaskKind::of(&shape);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut ok, mut total) = (0, 0);
        let mut by_kind: BTreeMap<EditKind, (usize, usize)> = BTreeMap::new();
        for (i, (name, code)) in seeds.iter().enumerate() {
            let partner = seeds[(i + 1) % seeds.len()].1;
            let mut current = (name.to_string(), code.to_string());
            for round in 0..rounds {
                let n = rng.random_range(1..=2);
                let Some(m) = mutate(
                    &current.0,
                    &current.1,
                    kind,
                    EDIT_KINDS,
                    Some(partner),
                    n,
                    &mut rng,
                ) else {
                    continue;
                };
                total += 1;
                let traced = matches!(trace(&m.code, &config), TraceOutcome::Ok(_));
                ok += traced as usize;
                for k in &m.kinds {
                    let e = by_kind.entry(*k).or_default();
                    e.0 += traced as usize;
                    e.1 += 1;
                }
                if !traced && std::env::var("SHOW_FAILED").is_ok() {
                    eprintln!(
                        "--- {}\n{}\n{:?}",
                        m.description,
                        m.code,
                        trace(&m.code, &config).diagnostics()
                    );
                }
                // Walk on from traced children now and then, so edits stack up over generations.
                if traced && round % 3 != 2 {
                    current = (m.name, m.code);
                } else {
                    current = (name.to_string(), code.to_string());
                }
            }
        }
        (ok, total, by_kind)
    }

    // Raw edits are made on the text without shapes; the proposer traces each draw and offers
    // only what traces (`what_the_proposer_offers_traces_and_is_new`), so this share is the
    // draws it spends, not what a campaign sees.
    #[test]
    fn at_least_four_in_five_sequence_mutations_trace() {
        let (ok, total, by_kind) = trace_share("mqar", 40);
        eprintln!("mqar: {ok}/{total} traced; by kind {by_kind:?}");
        assert!(total >= 200, "{total}");
        assert!(ok as f64 >= 0.8 * total as f64, "{ok}/{total}: {by_kind:?}");
        // Every kind that applies to sequence models was exercised.
        for k in EDIT_KINDS.iter().filter(|k| **k != EditKind::Kernel) {
            assert!(by_kind.contains_key(k), "{k:?} never applied: {by_kind:?}");
        }
    }

    #[test]
    fn at_least_four_in_five_image_mutations_trace() {
        let (ok, total, by_kind) = trace_share("digits", 40);
        eprintln!("digits: {ok}/{total} traced; by kind {by_kind:?}");
        assert!(ok as f64 >= 0.8 * total as f64, "{ok}/{total}: {by_kind:?}");
        assert!(by_kind.contains_key(&EditKind::Kernel), "{by_kind:?}");
    }

    #[test]
    fn edits_keep_comments_and_rewrite_the_header() {
        let code = crate::seeds::by_name("transformer").unwrap();
        let o = outline(code).unwrap();
        let task = TaskKind { sequence: true };
        let swaps = candidates(EditKind::Activation, code, &o, task, None);
        let to_relu = swaps
            .iter()
            .find(|a| a.description.starts_with("gelu -> relu"))
            .unwrap();
        assert!(to_relu.code.contains("linear(relu(linear(h, 4 * D)), D)"));
        assert!(to_relu
            .code
            .contains("# [B, T, D] -> [B, HEADS, T, D / HEADS]"));
        let header = rewrite_header(
            &to_relu.code,
            "transformer · activation",
            std::slice::from_ref(&to_relu.description),
        );
        assert!(
            header.starts_with("# name: transformer · activation\n# task: mqar\n"),
            "{header}"
        );
        assert!(header.contains("# edit: gelu -> relu in mlp\n"), "{header}");
    }

    #[test]
    fn mixer_swaps_replace_every_call_of_the_helper() {
        let code = crate::seeds::by_name("transformer").unwrap();
        let o = outline(code).unwrap();
        let swaps = candidates(EditKind::Mixer, code, &o, TaskKind { sequence: true }, None);
        let lin = swaps
            .iter()
            .find(|a| a.description == "token mixer attention -> mix_linear_attention")
            .unwrap();
        assert!(lin
            .code
            .contains("h = h + mix_linear_attention(rms_norm(h))"));
        assert!(lin.code.contains("def mix_linear_attention(x):"));
        let config = TraceConfig::new(TaskShape::by_name("mqar").unwrap());
        for s in &swaps {
            assert!(
                matches!(trace(&s.code, &config), TraceOutcome::Ok(_)),
                "{}",
                s.description
            );
        }
    }

    /// A proposal context for the transformer seed on `mqar`, traced in process.
    fn transformer_context(seed: u64, known: crate::propose::Known) -> ProposalContext {
        let archive = autoarch_archive::Archive::in_memory();
        let code = crate::seeds::by_name("transformer").unwrap();
        let mut new = autoarch_archive::testing::candidate("transformer", &[]);
        new.code = code.to_string();
        new.task = "mqar".into();
        let id = archive.insert_candidate(new).unwrap();
        let shape = TaskShape::by_name("mqar").unwrap();
        ProposalContext {
            task: shape.clone(),
            limits: autoarch_sandbox::Limits::default(),
            parent: crate::propose::Shown {
                candidate: archive.candidate(id).unwrap().unwrap(),
                summary: archive.summary(id).unwrap(),
                curve: String::new(),
            },
            inspirations: Vec::new(),
            failures: Vec::new(),
            insights: Vec::new(),
            seed,
            checker: crate::propose::Checker::new(
                std::sync::Arc::new(crate::machine::testing::InProcessTracer),
                TraceConfig::new(shape),
            ),
            known,
            edits: crate::propose::EditCount::Proposer,
        }
    }

    #[tokio::test]
    async fn what_the_proposer_offers_traces_and_is_new() {
        let proposer = MutationProposer::new(2);
        let known = crate::propose::Known::default();
        for seed in 0..40 {
            let p = proposer
                .propose(transformer_context(seed, known.clone()))
                .await
                .unwrap();
            let Draft::Traced {
                outcome: TraceOutcome::Ok(t),
                ..
            } = &p.draft
            else {
                panic!("proposal {seed} ({}) was offered untraced", p.name);
            };
            assert!(!known.contains(&t.fingerprint.0), "{seed}: a known design");
            known.insert(&t.fingerprint.0);
        }
    }
}
