//! The autoarch archive: every candidate, evaluation, insight and event of a campaign, with
//! lineage, rankings and the samplers that pick the next parents.
//!
//! The only crate that knows sled. Records are versioned JSON ([`record`]) in ordered trees
//! ([`backend`]); [`Archive`] keeps the derived summaries and indexes in the same atomic write as
//! the record that changes them, and makes an evaluation durable before `record_evaluation`
//! returns. One process writes an archive at a time; review commands that find it in use read the
//! snapshot the writer leaves beside it.
//!
//! ```
//! use autoarch_archive::{Archive, Fidelity, Metric, NewEvaluation, Outcome};
//! # use autoarch_archive::testing::candidate;
//! let archive = Archive::in_memory();
//! let id = archive.insert_candidate(candidate("a", &[])).unwrap();
//! archive
//!     .record_evaluation(NewEvaluation {
//!         candidate: id,
//!         fidelity: Fidelity::SHORT,
//!         seed: 0,
//!         outcome: Outcome::Ok,
//!         reason: None,
//!         metrics: [("score".to_string(), 0.9)].into(),
//!         curve: vec![],
//!         timings: Default::default(),
//!     })
//!     .unwrap();
//! assert_eq!(archive.top_k(Metric::Score, 1).unwrap(), vec![(id, 0.9)]);
//! ```

use std::path::PathBuf;

pub mod archive;
pub mod backend;
pub mod lock;
pub mod query;
pub mod record;
pub mod stats;
pub mod testing;

pub use archive::{Archive, Listed, Problem};
pub use autoarch_sandbox::{Direction, Metric};
pub use query::Cell;
pub use record::{
    AnswerKind, AnswerMode, CallPurpose, Campaign, Candidate, CandidateId, Evaluation,
    EvaluationId, Event, EventKind, Fidelity, Insight, LlmCall, NewCandidate, NewEvaluation,
    Outcome, ProposerKind, Status, Summary, Tokens,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("archive {dir} is in use{} — a campaign writes it; review commands read its snapshot, or wait for the campaign to stop", pid.map(|p| format!(" by pid {p}")).unwrap_or_default())]
    InUse { dir: PathBuf, pid: Option<u32> },
    #[error("archive store error: {0}")]
    Store(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("{what} record has format version {version}, but this autoarch reads up to {supported}: upgrade autoarch")]
    TooNew {
        what: String,
        version: u64,
        supported: u64,
    },
    #[error("no candidate {0} in the archive")]
    UnknownCandidate(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
