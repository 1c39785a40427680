//! The proposer interface: what the loop hands a proposer, and what it gets back.

use async_trait::async_trait;
use autoarch_archive::{Candidate, CandidateId, ProposerKind, Summary, Tokens};
use autoarch_sandbox::TaskShape;

/// An archived design shown to a proposer, with how it did.
#[derive(Clone, Debug)]
pub struct Shown {
    pub candidate: Candidate,
    pub summary: Summary,
}

/// A candidate that failed recently, with why.
#[derive(Clone, Debug)]
pub struct Failure {
    pub name: String,
    pub code: String,
    pub reason: String,
}

/// Everything a proposer may use for one proposal.
#[derive(Clone, Debug)]
pub struct ProposalContext {
    pub task: TaskShape,
    pub parent: Shown,
    /// Top-scoring and diverse designs other than the parent.
    pub inspirations: Vec<Shown>,
    pub failures: Vec<Failure>,
    pub insights: Vec<String>,
    /// Seeds this proposal's randomness (proposals are reproducible from the archive).
    pub seed: u64,
}

/// A proposed design.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub name: String,
    pub motivation: String,
    pub code: String,
    pub parents: Vec<CandidateId>,
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub response: Option<String>,
    pub tokens: Tokens,
    pub cost_usd: f64,
}

/// Why a proposer produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// Nothing to do with this parent (e.g. no edit applies); the loop picks another.
    #[error("no proposal: {0}")]
    Nothing(String),
    /// The proposer cannot work (e.g. its server is gone); the campaign stops.
    #[error("the proposer is unavailable: {0}")]
    Unavailable(String),
}

/// A source of new architecture code. The loop traces, deduplicates and evaluates what it
/// returns; the proposer only writes code.
#[async_trait]
pub trait Proposer: Send + Sync {
    fn kind(&self) -> ProposerKind;
    async fn propose(&self, context: ProposalContext) -> Result<Proposal, ProposeError>;
}
