//! Campaigns: seeds first, then a search strategy picks a parent, a proposer writes code, the
//! loop traces, deduplicates, evaluates in worker processes, scores and stores — with
//! multi-fidelity promotion, budgets, Ctrl-C and resume from the archive alone.
//!
//! Everything a run needs to resume is derived from the archive: a candidate without an
//! evaluation is owed, a promoted candidate missing a seed's run is owed, and the counters
//! (candidates, tokens, dollars, compute seconds) are sums over stored records. The campaign
//! record adds what records cannot say ([`State`]).
//!
//! A failure of the machine (no data, no device, no worker, no trace child) is never stored
//! against a candidate: the run stops with [`Stop::Machine`], naming the cause and the fix,
//! and the same command resumes once it is fixed.
//!
//! The library never prints: a run reports what happens as [`RunEvent`]s to its observer.
//!
//! ```no_run
//! # async fn example() -> Result<(), autoarch_agent::campaign::Error> {
//! use std::sync::Arc;
//! use autoarch_agent::campaign::{Campaign, Parts};
//! use autoarch_agent::config::CampaignConfig;
//! use autoarch_agent::machine::testing::{InProcessTracer, Scripted, ScriptedEvaluator};
//! use autoarch_agent::propose::mutation::MutationProposer;
//!
//! let config = CampaignConfig::embedded();
//! let (task, archive) = autoarch_agent::campaign::open(&config)?;
//! let campaign = Campaign::new(config, archive, task, Parts {
//!     proposer: Arc::new(MutationProposer::new(2)),
//!     evaluator: Arc::new(ScriptedEvaluator::new(2, |_| Scripted::ok(0.5, 1.0))),
//!     tracer: Arc::new(InProcessTracer),
//! });
//! let summary = campaign.run().await?;
//! println!("{}", summary.stop.describe());
//! # Ok(()) }
//! ```

mod admit;
mod context;
mod engine;
pub(crate) mod jobs;
pub mod ranking;
mod state;

use std::sync::Arc;

use autoarch_archive::{Archive, Campaign as CampaignRecord, CandidateId};
use autoarch_evaluator::{Status, Task, TaskError};
use autoarch_sandbox::TaskShape;
use tokio::sync::watch;

pub use admit::{admit, Admitted, Design, Stored};
pub use jobs::JobSpec;
pub use state::{over_budget, Spent, State};

use crate::config::CampaignConfig;
use crate::machine::{Evaluate, MachineError, Trace};
use crate::propose::mutation::MutationProposer;
use crate::propose::Proposer;
use crate::search::RandomSearch;
use engine::{Engine, Purpose};

/// The tag on candidates of the random-sampling baseline (`autoarch report --random-baseline`).
pub const RANDOM_TAG: &str = "random-baseline";

/// What can stop a campaign from running at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Archive(#[from] autoarch_archive::Error),
    #[error("task {task}: {source}")]
    Task { task: String, source: TaskError },
    #[error("creating {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("seeds: {0}")]
    Seed(#[from] crate::seeds::SeedError),
    #[error("seeds: the library has none for task {0}; list .star files in `seeds`")]
    NoSeeds(String),
    #[error("seed {seed} does not trace on task {task}:\n{diagnostics}")]
    SeedDoesNotTrace {
        seed: String,
        task: String,
        diagnostics: String,
    },
    #[error("archive {archive} holds campaign {holds:?}, not {wanted:?}: use another --archive for a new campaign")]
    OtherCampaign {
        archive: String,
        holds: String,
        wanted: String,
    },
    #[error("campaign {name:?} in {archive} was run on task {stored}; this config says {configured}: use another --archive")]
    OtherTask {
        name: String,
        archive: String,
        stored: String,
        configured: String,
    },
    #[error("the state of campaign {campaign:?} in {archive} cannot be read ({message}); `autoarch verify` checks the archive, `autoarch export` saves what it holds")]
    State {
        campaign: String,
        archive: String,
        message: String,
    },
    #[error("{}", .0.explained())]
    Machine(#[from] MachineError),
    #[error("the archive has no seeds to sample from: run the campaign first")]
    NothingToSample,
    #[error("a task of the loop failed: {0}")]
    Panicked(String),
    #[error("encoding the campaign record: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Why a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// Nothing left to do within the candidate budget.
    Finished,
    Budget(String),
    Interrupted,
    /// The proposer cannot go on (e.g. its server is gone).
    Proposer(String),
    /// The machine cannot evaluate or trace: the cause and the fix.
    Machine(String),
    /// No candidate evaluated successfully, so there is no parent to propose from.
    NoParent,
    /// This many proposals in a row gave no new design (duplicates, or mutations that did not
    /// trace): the search space around the parents looks used up (a budget of compute alone
    /// would never be spent).
    Exhausted(u32),
}

impl Stop {
    pub fn describe(&self) -> String {
        match self {
            Stop::Finished => "finished: every candidate within the budget is evaluated".into(),
            Stop::Budget(b) => format!("stopped: {b}"),
            Stop::Interrupted => "interrupted: running evaluations will run again on resume".into(),
            Stop::Proposer(e) => format!("stopped: {e}"),
            Stop::Machine(e) => format!("stopped: {e}"),
            Stop::NoParent => {
                "stopped: no seed evaluated successfully, so there is no parent to propose from"
                    .into()
            }
            Stop::Exhausted(n) => format!(
                "stopped: the last {n} proposals gave no new design (each was one the archive holds, or an edit that did not trace), so the search space looks used up (more edits per proposal, other seeds or an LLM would widen it)"
            ),
        }
    }

    /// Whether the run ended because something is wrong (exit 1).
    pub fn is_failure(&self) -> bool {
        matches!(self, Stop::Proposer(_) | Stop::Machine(_) | Stop::NoParent)
    }

    /// The exit status of a command whose run ended this way: 0 when it did what it was asked
    /// (finished, a budget reached, the space used up), 130 when Ctrl-C stopped it, 1 when
    /// something is wrong ([`Stop::is_failure`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Stop::Interrupted => 130,
            stop if stop.is_failure() => 1,
            _ => 0,
        }
    }
}

/// What a run did, for the summary and the tests.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub stop: Stop,
    pub elapsed_seconds: f64,
    pub run_seconds: f64,
    pub seeds: usize,
    pub proposals: u64,
    pub traced: u64,
    pub untraced: u64,
    pub duplicates: u64,
    pub evaluated: u64,
    pub failed: u64,
    pub promoted: usize,
    pub utilisation: f64,
    pub best: Option<ranking::Named>,
    pub best_seed: Option<ranking::Named>,
}

/// What a run reports as it goes (the CLI draws it; a dashboard may stream it).
#[derive(Clone, Debug, PartialEq)]
pub enum RunEvent {
    /// The seeds are in; `total` is how many candidates the run expects, if it knows.
    Started {
        seeds: usize,
        total: Option<u64>,
    },
    /// The strategy chose the parent of proposal number `proposal` (its seed).
    Selected {
        proposal: u64,
        parent: CandidateId,
        inspirations: Vec<CandidateId>,
    },
    /// Proposal number `proposal` was stored as candidate `id`.
    Stored {
        id: CandidateId,
        proposal: u64,
        name: String,
        stored: Stored,
    },
    /// An evaluation finished and was stored.
    Evaluated {
        id: CandidateId,
        name: String,
        fidelity: autoarch_archive::Fidelity,
        seed: u64,
        status: Status,
        score: Option<f64>,
        message: Option<String>,
    },
    Promoted {
        id: CandidateId,
        runs: u32,
        factor: f64,
    },
    Insight(String),
    /// Something worth a line (the proposer handed over to another).
    Note(String),
    /// Where the run stands (after every event).
    Progress {
        running: usize,
        done: u64,
        failed: u64,
        duplicates: u64,
        best: Option<(CandidateId, f64)>,
    },
}

/// Receives a run's events.
pub type Observer = Arc<dyn Fn(&RunEvent) + Send + Sync>;

/// Stops a run as Ctrl-C does; clones share the flag.
#[derive(Clone)]
pub struct Interrupt(Arc<watch::Sender<bool>>);

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt(Arc::new(watch::channel(false).0))
    }
}

impl Interrupt {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the interrupt is triggered.
    pub async fn triggered(&self) {
        let mut rx = self.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|t| *t).await;
    }
}

/// The pieces a campaign runs with.
pub struct Parts {
    pub proposer: Arc<dyn Proposer>,
    pub evaluator: Arc<dyn Evaluate>,
    pub tracer: Arc<dyn Trace>,
}

/// A campaign ready to run.
pub struct Campaign {
    pub config: CampaignConfig,
    pub archive: Archive,
    pub task: TaskShape,
    pub proposer: Arc<dyn Proposer>,
    /// Takes over when `proposer` is unavailable (`[llm] on_unreachable = "mutation"`).
    pub fallback: Option<Arc<dyn Proposer>>,
    pub evaluator: Arc<dyn Evaluate>,
    pub tracer: Arc<dyn Trace>,
    pub observer: Observer,
    pub interrupt: Interrupt,
}

/// Loads the task (to check it and learn its shape) and opens the archive, creating it.
pub fn open(config: &CampaignConfig) -> Result<(TaskShape, Archive)> {
    let task = Task::load(&config.task, 0).map_err(|source| Error::Task {
        task: config.task.name.clone(),
        source,
    })?;
    std::fs::create_dir_all(&config.archive).map_err(|source| Error::Create {
        path: config.archive.display().to_string(),
        source,
    })?;
    Ok((task.shape, Archive::open(&config.archive)?))
}

impl Campaign {
    pub fn new(
        config: CampaignConfig,
        archive: Archive,
        task: TaskShape,
        parts: Parts,
    ) -> Campaign {
        Campaign {
            config,
            archive,
            task,
            proposer: parts.proposer,
            fallback: None,
            evaluator: parts.evaluator,
            tracer: parts.tracer,
            observer: Arc::new(|_| {}),
            interrupt: Interrupt::default(),
        }
    }

    /// Opens `config`'s campaign to run with `proposer`, its workers and trace child started
    /// from `binary`.
    pub fn with_binary(
        config: CampaignConfig,
        proposer: Arc<dyn Proposer>,
        binary: &crate::machine::Binary,
    ) -> Result<Campaign> {
        let (task, archive) = open(&config)?;
        let parts = Parts {
            proposer,
            evaluator: Arc::new(binary.workers(&config.evaluation, &config.name)),
            tracer: Arc::new(binary.tracer()),
        };
        Ok(Campaign::new(config, archive, task, parts))
    }

    fn archive_name(&self) -> String {
        self.config.archive.display().to_string()
    }

    /// The stored state, or a fresh one; refuses an archive that holds another campaign or
    /// another task, and a state that does not decode.
    fn load_state(&self) -> Result<State> {
        let records = self.archive.campaigns()?;
        if let Some(other) = records.iter().find(|c| c.name != self.config.name) {
            return Err(Error::OtherCampaign {
                archive: self.archive_name(),
                holds: other.name.clone(),
                wanted: self.config.name.clone(),
            });
        }
        let Some(record) = records.into_iter().next() else {
            return Ok(State::default());
        };
        let stored = record
            .config
            .get("task")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let configured = serde_json::to_value(&self.config.task)?;
        if stored != configured {
            return Err(Error::OtherTask {
                name: self.config.name.clone(),
                archive: self.archive_name(),
                stored: stored.to_string(),
                configured: configured.to_string(),
            });
        }
        State::decode(&record, &self.archive_name())
    }

    fn save_state(&self, state: &State) -> Result<()> {
        self.archive.put_campaign(&CampaignRecord {
            name: self.config.name.clone(),
            config: serde_json::to_value(&self.config)?,
            state: serde_json::to_value(state)?,
            updated_ms: autoarch_archive::record::now_ms(),
        })?;
        Ok(())
    }

    /// Runs (or resumes) the campaign until a budget, the end of the work, an interrupt, or
    /// a failure of the machine.
    pub async fn run(&self) -> Result<RunSummary> {
        let strategy = crate::search::from_config(&self.config);
        let mut engine = Engine::new(self, Purpose::Campaign, strategy, self.proposer.clone())?;
        self.archive.log_event(
            autoarch_archive::EventKind::Campaign,
            &format!(
                "run started ({} strategy, {} proposer; {} s spent before)",
                self.config.search.strategy.as_str(),
                self.proposer.kind().as_str(),
                engine.spent_before().round()
            ),
            None,
        )?;
        tracing::info!(name = %self.config.name, task = %self.config.task.name, "campaign run started");
        let before = match engine.add_seeds().await {
            Ok(_) => None,
            Err(Error::Machine(e)) => Some(Stop::Machine(e.explained())),
            Err(e) => return Err(e),
        };
        let _ = self.archive.write_snapshot();
        engine.run(before).await
    }

    /// Evaluates candidates sampled by random search (a uniformly drawn seed with 1-3 random
    /// edits, no selection, no scores) until `n` of them have a short-budget result. They are
    /// tagged [`RANDOM_TAG`] and never ranked against the campaign's own.
    pub async fn random_baseline(&self, n: usize) -> Result<RunSummary> {
        if context::traced_seeds(&self.archive)?.is_empty() {
            return Err(Error::NothingToSample);
        }
        let proposer = Arc::new(MutationProposer {
            max_edits: 3,
            kinds: self.config.proposer.edits.clone(),
        });
        let engine = Engine::new(
            self,
            Purpose::Baseline { target: n },
            Box::new(RandomSearch),
            proposer,
        )?;
        engine.run(None).await
    }
}

#[cfg(test)]
mod tests {
    use super::Stop;

    #[test]
    fn one_exit_status_per_way_a_run_ends() {
        for (stop, code) in [
            (Stop::Finished, 0),
            (Stop::Budget("the compute budget".into()), 0),
            (Stop::Exhausted(50), 0),
            (Stop::Interrupted, 130),
            (Stop::Proposer("the server is gone".into()), 1),
            (Stop::Machine("no worker".into()), 1),
            (Stop::NoParent, 1),
        ] {
            assert_eq!(stop.exit_code(), code, "{stop:?}");
            assert_eq!(stop.is_failure(), code == 1, "{stop:?}");
        }
    }
}
