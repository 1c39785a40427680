//! Proposers: where new architecture code comes from. The loop hands a [`Proposer`] a
//! [`ProposalContext`] (task, limits, the parent and inspirations a search strategy chose,
//! recent failures, insights) and gets a [`Proposal`] back: code, code with its trace, or a
//! typed failure. The loop traces what was not traced, deduplicates and evaluates.
//!
//! - [`mutation`]: offline structural edits of the parent's source.
//! - [`llm`]: an OpenAI-compatible model, with repair rounds on diagnostics.
//! - [`prompts`]: the LLM's templates.

pub mod llm;
pub mod mutation;
pub mod prompts;

/// The proposer `config` asks for (`[proposer] kind`), or why it cannot be built (an LLM
/// configuration that does not hold).
pub fn for_config(config: &crate::config::CampaignConfig) -> Result<Arc<dyn Proposer>, String> {
    let max_edits = config.proposer.max_edits;
    match config.proposer.kind {
        crate::config::ProposerChoice::Mutation => Ok(Arc::new(mutation::MutationProposer {
            max_edits,
            kinds: config.proposer.edits.clone(),
        })),
        crate::config::ProposerChoice::Llm => llm::LlmProposer::new(&config.llm, max_edits)
            .map(|p| Arc::new(p) as Arc<dyn Proposer>)
            .map_err(|e| format!("{e:#}")),
    }
}

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use autoarch_archive::{Candidate, CandidateId, LlmCall, ProposerKind, Summary, Tokens};
use autoarch_sandbox::{Limits, TaskShape, TraceConfig, TraceOutcome};

use crate::machine::{MachineError, Trace};

/// An archived design shown to a proposer, with how it did.
#[derive(Clone, Debug)]
pub struct Shown {
    pub candidate: Candidate,
    pub summary: Summary,
    /// The short-budget training curve in words ([`crate::text::curve_line`]), empty before
    /// training.
    pub curve: String,
}

/// A candidate that failed recently, with why.
#[derive(Clone, Debug)]
pub struct Failure {
    pub name: String,
    pub code: String,
    pub reason: String,
}

/// Traces code the way the loop will (under the campaign's limits, in the trace child), so a
/// proposer can repair what does not trace before handing it over, and hand over the trace so
/// that the loop does not trace it again.
#[derive(Clone)]
pub struct Checker {
    tracer: Arc<dyn Trace>,
    config: TraceConfig,
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Checker {
    pub fn new(tracer: Arc<dyn Trace>, config: TraceConfig) -> Checker {
        Checker { tracer, config }
    }

    /// The trace (graph or diagnostics); `Err` when the tracer itself failed.
    pub async fn check(&self, code: &str) -> Result<TraceOutcome, MachineError> {
        self.tracer.trace(code, &self.config).await
    }
}

/// The fingerprints of the designs the archive holds, kept by the loop as it stores them: a
/// proposer can leave out what would only be a duplicate.
#[derive(Clone, Debug, Default)]
pub struct Known(Arc<std::sync::RwLock<std::collections::HashSet<String>>>);

impl Known {
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(fingerprint)
    }

    pub fn insert(&self, fingerprint: &str) {
        if !fingerprint.is_empty() {
            self.0
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(fingerprint.to_string());
        }
    }
}

/// Everything a proposer may use for one proposal.
#[derive(Clone, Debug)]
pub struct ProposalContext {
    pub task: TaskShape,
    pub limits: Limits,
    pub parent: Shown,
    /// Top-scoring and diverse designs other than the parent (crossover partners).
    pub inspirations: Vec<Shown>,
    pub failures: Vec<Failure>,
    pub insights: Vec<String>,
    /// Seeds this proposal's randomness (proposals are reproducible from the archive).
    pub seed: u64,
    pub checker: Checker,
    /// The designs already archived.
    pub known: Known,
    /// How many edits the mutation proposer makes (the strategy's choice).
    pub edits: EditCount,
}

/// How many edits the mutation proposer applies to a parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditCount {
    /// The proposer's own setting: 1 to `[proposer] max_edits`, uniformly.
    Proposer,
    /// A geometric number (1, 2, 3, … with mean `mean`), so that samples reach beyond a
    /// seed's neighbours: random search's, which samples the space rather than searching it.
    Geometric { mean: u32 },
}

impl EditCount {
    /// Draws a number of edits; a geometric draw is capped at [`EditCount::MOST`].
    pub fn draw(self, max_edits: u32, rng: &mut impl rand::Rng) -> u32 {
        match self {
            EditCount::Proposer => rng.random_range(1..=max_edits.max(1)),
            EditCount::Geometric { mean } => {
                // P(n) = (1 − p)^(n − 1) p with p = 1 / mean, for n ≥ 1.
                let p = 1.0 / f64::from(mean.max(1));
                let mut n = 1;
                while n < EditCount::MOST && rng.random::<f64>() >= p {
                    n += 1;
                }
                n
            }
        }
    }

    /// The most edits a geometric draw makes.
    pub const MOST: u32 = 12;
}

/// Why a proposal has no usable code: a headline (one line) and the detail (diagnostics, the
/// answer's problem), as stored with the candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unusable {
    pub headline: String,
    pub detail: String,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.headline)
        } else {
            write!(f, "{}\n{}", self.headline, self.detail)
        }
    }
}

/// The code of a proposal, and how far it got.
#[derive(Clone, Debug, PartialEq)]
pub enum Draft {
    /// Code for the loop to trace.
    Code(String),
    /// Code the proposer traced already (each proposal is traced once).
    Traced { code: String, outcome: TraceOutcome },
    /// No usable code: what there is (possibly nothing) and why.
    Unusable { code: String, why: Unusable },
}

impl Draft {
    pub fn code(&self) -> &str {
        match self {
            Draft::Code(code) | Draft::Traced { code, .. } | Draft::Unusable { code, .. } => code,
        }
    }
}

/// A proposed design.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub name: String,
    pub motivation: String,
    pub parents: Vec<CandidateId>,
    /// The model that wrote it (LLM proposers).
    pub model: Option<String>,
    /// The LLM calls behind it, in order (none for the mutation proposer). Its tokens and
    /// cost are theirs.
    pub calls: Vec<LlmCall>,
    pub draft: Draft,
    /// Lines for the campaign's event log (e.g. an LLM model switching how it answers).
    pub notes: Vec<String>,
}

impl Proposal {
    /// The tokens of its calls.
    pub fn tokens(&self) -> Tokens {
        self.calls.iter().fold(Tokens::default(), |t, c| Tokens {
            prompt: t.prompt + c.tokens.prompt,
            completion: t.completion + c.tokens.completion,
        })
    }

    /// The cost of its calls, in US dollars.
    pub fn cost_usd(&self) -> f64 {
        self.calls.iter().map(|c| c.cost_usd).sum()
    }
}

/// What the loop hands an analysis: results so far, and what was already concluded.
#[derive(Clone, Debug)]
pub struct AnalysisContext {
    pub task: TaskShape,
    /// The best results and the most recent ones, each at most once.
    pub results: Vec<Shown>,
    pub insights: Vec<String>,
}

/// An analysis call and what it concluded: an insight and the candidates it rests on, or why
/// there is none (the call is kept either way: it cost tokens).
#[derive(Clone, Debug)]
pub struct Analysis {
    pub insight: Result<(String, Vec<CandidateId>), String>,
    pub call: LlmCall,
}

/// Why a proposer produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// Nothing to do with this parent (e.g. no edit applies); the loop picks another.
    #[error("no proposal: {0}")]
    Nothing(String),
    /// The proposer cannot work (e.g. its server is gone); the campaign stops or falls back.
    #[error("the proposer is unavailable: {0}")]
    Unavailable(String),
    /// The machine cannot trace (the campaign stops; no fallback helps). `calls` holds the LLM
    /// calls already made for the proposal: they cost tokens, so the loop accounts for them.
    #[error("{error}")]
    Machine {
        error: MachineError,
        calls: Vec<LlmCall>,
    },
}

impl From<MachineError> for ProposeError {
    fn from(error: MachineError) -> ProposeError {
        ProposeError::Machine {
            error,
            calls: Vec::new(),
        }
    }
}

/// A source of new architecture code. The loop traces, deduplicates and evaluates what it
/// returns; the proposer only writes code.
#[async_trait]
pub trait Proposer: Send + Sync {
    fn kind(&self) -> ProposerKind;
    async fn propose(&self, context: ProposalContext) -> Result<Proposal, ProposeError>;

    /// Draws a lesson from results; proposers that cannot analyse return `Ok(None)`.
    async fn analyze(&self, _context: AnalysisContext) -> Result<Option<Analysis>, ProposeError> {
        Ok(None)
    }

    /// What this campaign proposed before (a resumed run), oldest first, for proposers that
    /// learn from their own record (the LLM proposer's `auto` answer kind). Returns lines for
    /// the campaign's log.
    fn restore(&self, _history: &[&Candidate]) -> Vec<String> {
        Vec::new()
    }
}
