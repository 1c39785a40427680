//! The proposer interface: what the loop hands a proposer, and what it gets back.

use std::sync::Arc;

use async_trait::async_trait;
use autoarch_archive::{Candidate, CandidateId, LlmCall, ProposerKind, Summary, Tokens};
use autoarch_sandbox::{Limits, TaskShape};

/// An archived design shown to a proposer, with how it did.
#[derive(Clone, Debug)]
pub struct Shown {
    pub candidate: Candidate,
    pub summary: Summary,
    /// The short-budget training curve in words (`review::curve_line`), empty before training.
    pub curve: String,
}

/// A candidate that failed recently, with why.
#[derive(Clone, Debug)]
pub struct Failure {
    pub name: String,
    pub code: String,
    pub reason: String,
}

/// Traces code the way the loop will (in a child process, under the campaign's limits), so a
/// proposer can repair what does not trace before handing it over.
#[async_trait]
pub trait Checker: Send + Sync + std::fmt::Debug {
    /// `Err` holds the rendered diagnostics.
    async fn check(&self, code: &str) -> Result<(), String>;
}

/// Everything a proposer may use for one proposal.
#[derive(Clone, Debug)]
pub struct ProposalContext {
    pub task: TaskShape,
    pub limits: Limits,
    pub parent: Shown,
    /// Top-scoring and diverse designs other than the parent.
    pub inspirations: Vec<Shown>,
    pub failures: Vec<Failure>,
    pub insights: Vec<String>,
    /// Seeds this proposal's randomness (proposals are reproducible from the archive).
    pub seed: u64,
    pub checker: Arc<dyn Checker>,
}

/// A proposed design.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub name: String,
    pub motivation: String,
    /// Empty when no usable code came (the candidate is then stored as untraced, with why).
    pub code: String,
    pub parents: Vec<CandidateId>,
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub response: Option<String>,
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// The LLM calls behind it, in order (none for the mutation proposer).
    pub calls: Vec<LlmCall>,
    /// Why the proposal is not usable, when the proposer knows (an answer it could not read,
    /// edits that do not apply, code still failing after the repair rounds). Stored as the
    /// candidate's failure reason.
    pub failure: Option<String>,
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
}
