//! Storing candidates: designs that come in from outside (the campaign's seeds, `autoarch seed
//! add`) through one [`admit`], and the loop's proposals through [`store_proposal`].

use std::collections::BTreeMap;

use autoarch_archive::{Archive, CandidateId, NewCandidate, NewEvaluation, Outcome, ProposerKind};
use autoarch_sandbox::{render_all, Diagnostic, Stats, TraceConfig, TraceOutcome};

use super::Result;
use crate::machine::Trace;
use crate::propose::{Draft, Proposal, Unusable};
use autoarch_archive::Fidelity;

/// A design that comes in from outside the search.
#[derive(Clone, Debug)]
pub struct Design {
    pub name: String,
    pub motivation: String,
    pub code: String,
    /// `Seed` for a campaign's seeds, `Human` for `autoarch seed add`.
    pub proposer: ProposerKind,
    /// Where it came from (a file, `library:NAME`).
    pub source: String,
    pub tags: Vec<String>,
    pub task: String,
    pub island: u32,
}

/// What became of a design.
#[derive(Clone, Debug, PartialEq)]
pub enum Admitted {
    Added(CandidateId),
    /// The same design (by fingerprint) is already there.
    Duplicate(CandidateId),
    /// It does not trace; nothing was stored.
    Refused(Vec<Diagnostic>),
}

/// Traces a design and stores it, unless it does not trace or is already in the archive.
pub async fn admit(
    archive: &Archive,
    tracer: &dyn Trace,
    config: &TraceConfig,
    design: Design,
) -> Result<Admitted> {
    let traced = match tracer.trace(&design.code, config).await? {
        TraceOutcome::Ok(t) => t,
        TraceOutcome::Invalid { diagnostics } => return Ok(Admitted::Refused(diagnostics)),
    };
    if let Some(first) = archive.find_fingerprint(&traced.fingerprint.0)? {
        return Ok(Admitted::Duplicate(first));
    }
    let id = archive.insert_candidate(NewCandidate {
        name: design.name.clone(),
        motivation: design.motivation,
        code: design.code,
        task: design.task,
        fingerprint: traced.fingerprint.0.clone(),
        stats: traced.stats.clone(),
        parents: vec![],
        proposer: design.proposer,
        model: None,
        prompt: None,
        response: None,
        tokens: Default::default(),
        cost_usd: 0.0,
        calls: vec![],
        tags: design.tags,
        source: Some(design.source.clone()),
        duplicate_of: None,
        island: design.island,
    })?;
    archive.log_event(
        autoarch_archive::EventKind::SeedAdded,
        &format!("{} from {}", design.name, design.source),
        Some(id),
    )?;
    Ok(Admitted::Added(id))
}

/// What became of a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Traced and new: its short-budget evaluation is owed.
    Queued,
    /// The same design as an earlier candidate: recorded, never trained.
    Duplicate,
    /// No usable code: stored with an `invalid` evaluation that says why.
    Untraced,
}

impl Stored {
    pub fn as_str(self) -> &'static str {
        match self {
            Stored::Queued => "queued",
            Stored::Duplicate => "duplicate",
            Stored::Untraced => "did not trace",
        }
    }
}

/// Stores a proposal whose draft is traced or unusable (the loop traces plain code first).
pub fn store_proposal(
    archive: &Archive,
    p: Proposal,
    kind: ProposerKind,
    tags: Vec<String>,
    task: &str,
) -> Result<(CandidateId, Stored)> {
    let island = match p.parents.first() {
        Some(&parent) => archive.candidate(parent)?.map_or(0, |c| c.island),
        None => 0,
    };
    let (tokens, cost_usd) = (p.tokens(), p.cost_usd());
    let mut new = NewCandidate {
        name: p.name,
        motivation: p.motivation,
        code: String::new(),
        task: task.to_string(),
        fingerprint: String::new(),
        stats: Stats::default(),
        parents: p.parents,
        proposer: kind,
        model: p.model,
        prompt: p.calls.first().map(|c| c.prompt.clone()),
        response: p.calls.last().map(|c| c.response.clone()),
        tokens,
        cost_usd,
        calls: p.calls,
        tags,
        source: None,
        duplicate_of: None,
        island,
    };
    let traced = match p.draft {
        Draft::Traced {
            code,
            outcome: TraceOutcome::Ok(t),
        } => {
            new.code = code;
            t
        }
        Draft::Traced {
            code,
            outcome: TraceOutcome::Invalid { diagnostics },
        } => {
            new.code = code;
            let why = Unusable {
                headline: "the code does not trace".into(),
                detail: render_all(&diagnostics, "model.star"),
            };
            return store_untraced(archive, new, why);
        }
        Draft::Code(code) => {
            new.code = code;
            let why = Unusable {
                headline: "the proposal was never traced".into(),
                detail: String::new(),
            };
            return store_untraced(archive, new, why);
        }
        Draft::Unusable { code, why } => {
            new.code = code;
            return store_untraced(archive, new, why);
        }
    };
    new.fingerprint = traced.fingerprint.0.clone();
    new.stats = traced.stats.clone();
    if let Some(first) = archive.find_fingerprint(&new.fingerprint)? {
        new.duplicate_of = Some(first);
        let id = archive.insert_candidate(new)?;
        tracing::info!(candidate = id, duplicate_of = first, "duplicate proposal");
        return Ok((id, Stored::Duplicate));
    }
    Ok((archive.insert_candidate(new)?, Stored::Queued))
}

fn store_untraced(
    archive: &Archive,
    new: NewCandidate,
    why: Unusable,
) -> Result<(CandidateId, Stored)> {
    let id = archive.insert_candidate(new)?;
    tracing::info!(candidate = id, "proposal does not trace: {}", why.headline);
    archive.record_evaluation(NewEvaluation {
        candidate: id,
        fidelity: Fidelity::SHORT,
        seed: 0,
        outcome: Outcome::Invalid,
        reason: Some(why.to_string()),
        metrics: BTreeMap::new(),
        curve: vec![],
        timings: BTreeMap::new(),
    })?;
    Ok((id, Stored::Untraced))
}
