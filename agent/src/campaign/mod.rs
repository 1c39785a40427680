//! The campaign loop: seeds first, then select a parent, propose, trace, deduplicate, evaluate
//! in worker processes, score, store — with multi-fidelity promotion, budgets, Ctrl-C and
//! resume from the archive alone.
//!
//! Everything the loop needs to resume is derived from the archive: a candidate without an
//! evaluation is queued again, a promoted candidate missing a seed's run is queued again, and the
//! counters (candidates, tokens, dollars, compute seconds) are sums over stored records. The
//! campaign record adds what the records cannot say: wall time spent, proposals made, promotions
//! decided and worker busy time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use autoarch_archive::{
    Archive, Campaign as CampaignRecord, Candidate, CandidateId, Listed, NewCandidate,
    NewEvaluation, Outcome, ProposerKind, Status as ArchiveStatus,
};
use autoarch_evaluator::{EvalResult, Evaluator, Job, JobLimits, Status, Task, WorkerCommand};
use autoarch_sandbox::isolate::{trace_isolated, ChildCommand};
use autoarch_sandbox::{render_all, Limits, Stats, TaskShape, TraceConfig, TraceOutcome};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::config::CampaignConfig;
use crate::proposer::{
    Analysis, AnalysisContext, Checker, Failure, ProposalContext, ProposeError, Proposer, Shown,
};

/// How many recent failures a proposal is shown.
const RECENT_FAILURES: usize = 5;

/// The tag on candidates of the random-sampling baseline (`autoarch report --random-baseline`).
pub const RANDOM_TAG: &str = "random-baseline";

/// What the campaign record keeps beyond the candidate and evaluation records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Wall-clock seconds spent running, over every run of the campaign.
    pub elapsed_seconds: f64,
    /// Proposals asked for (each seeds its own randomness), including those that gave nothing.
    pub proposals: u64,
    /// Candidates promoted to the longer budget, in the order decided.
    pub promoted: Vec<CandidateId>,
    /// Worker-seconds spent on jobs, and worker-seconds available, for utilisation.
    pub busy_seconds: f64,
    pub capacity_seconds: f64,
    /// Why the last run stopped.
    pub stopped: Option<String>,
    /// Short-budget evaluations counted at the last analysis (`[llm] analyze_every`).
    pub analysed_at: u64,
    /// LLM usage that no stored record carries: analyses that gave no insight.
    pub other_tokens: u64,
    pub other_dollars: f64,
}

/// Sums over the archive that budgets and progress start from.
#[derive(Default)]
struct Spent {
    candidates: u64,
    tokens: u64,
    dollars: f64,
    compute: f64,
    /// Traced candidates with a short-budget evaluation.
    short: u64,
}

/// Traces code in a child process, for proposers that repair before handing code over.
#[derive(Debug)]
struct IsolatedChecker {
    config: TraceConfig,
    child: ChildCommand,
}

#[async_trait::async_trait]
impl Checker for IsolatedChecker {
    async fn check(&self, code: &str) -> Result<(), String> {
        let (code, config, child) = (code.to_string(), self.config.clone(), self.child.clone());
        match tokio::task::spawn_blocking(move || trace_isolated(&code, &config, &child)).await {
            Ok(Ok(TraceOutcome::Ok(_))) => Ok(()),
            Ok(Ok(TraceOutcome::Invalid { diagnostics })) => {
                Err(render_all(&diagnostics, "model.star"))
            }
            Ok(Err(e)) => Err(format!("the tracer failed: {e}")),
            Err(e) => Err(format!("the tracer failed: {e}")),
        }
    }
}

/// The short-budget training curve in words, for prompts ("" before it is trained).
fn short_curve(evaluations: &[autoarch_archive::Evaluation]) -> String {
    evaluations
        .iter()
        .find(|e| e.fidelity == 0 && !e.curve.is_empty())
        .map_or_else(String::new, |e| crate::review::curve_line(&e.curve))
}

/// Why a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// Nothing left to do within the candidate budget.
    Finished,
    Budget(String),
    Interrupted,
    /// The proposer cannot go on (e.g. its server is gone).
    Proposer(String),
}

impl Stop {
    pub fn describe(&self) -> String {
        match self {
            Stop::Finished => "finished: every candidate within the budget is evaluated".into(),
            Stop::Budget(b) => format!("stopped: {b}"),
            Stop::Interrupted => "interrupted: running evaluations will run again on resume".into(),
            Stop::Proposer(e) => format!("stopped: {e}"),
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
    pub best: Option<(CandidateId, String, f64)>,
    pub best_seed: Option<(CandidateId, String, f64)>,
}

/// A proposal and how it traced, or why there is none.
type ProposalResult = Result<(crate::proposer::Proposal, Option<TraceOutcome>), ProposeError>;

/// A finished job: the evaluator (back to the idle pool), what it ran, and the result.
type Running = (Evaluator, JobSpec, EvalResult);

/// One evaluation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct JobSpec {
    candidate: CandidateId,
    fidelity: u32,
    seed: u64,
}

/// Everything a campaign run needs.
pub struct Campaign {
    pub config: CampaignConfig,
    pub archive: Archive,
    pub task: TaskShape,
    pub proposer: Arc<dyn Proposer>,
    /// Takes over when `proposer` is unavailable (`[llm] on_unreachable = "mutation"`).
    pub fallback: Option<Arc<dyn Proposer>>,
    pub worker: WorkerCommand,
    pub trace_child: ChildCommand,
    /// Draw a progress bar (on a terminal); otherwise one line per event on stderr.
    pub progress: bool,
    /// Set to stop the run as Ctrl-C does (tests and embedders).
    pub interrupt: Arc<AtomicBool>,
}

#[derive(Default)]
struct Counters {
    traced: u64,
    untraced: u64,
    duplicates: u64,
    evaluated: u64,
    failed: u64,
    nothing_in_a_row: u32,
}

fn now_elapsed(start: Instant, before: f64) -> f64 {
    before + start.elapsed().as_secs_f64()
}

/// The first of the time, compute, token and dollar budgets that is spent, in words.
fn over_budget(
    b: &crate::config::BudgetConfig,
    elapsed: f64,
    compute: f64,
    tokens: u64,
    dollars: f64,
) -> Option<String> {
    let spent = |limit: Option<f64>, used: f64| limit.is_some_and(|m| used >= m);
    let limits = [
        (
            spent(b.max_seconds, elapsed),
            format!("the time budget ({} s)", b.max_seconds.unwrap_or(0.0)),
        ),
        (
            spent(b.max_compute_seconds, compute),
            format!(
                "the compute budget ({} s of evaluation)",
                b.max_compute_seconds.unwrap_or(0.0)
            ),
        ),
        (
            spent(b.max_tokens.map(|t| t as f64), tokens as f64),
            format!("the token budget ({})", b.max_tokens.unwrap_or(0)),
        ),
        (
            spent(b.max_dollars, dollars),
            format!("the dollar budget (${})", b.max_dollars.unwrap_or(0.0)),
        ),
    ];
    limits
        .into_iter()
        .find(|(over, _)| *over)
        .map(|(_, what)| format!("{what} is spent"))
}

/// Keeps the last [`RECENT_FAILURES`] failures, oldest first.
fn remember_failure(failures: &mut VecDeque<Failure>, f: Failure) {
    failures.push_back(f);
    while failures.len() > RECENT_FAILURES {
        failures.pop_front();
    }
}

/// The score of an evaluation (higher is better).
fn score_of(metrics: &BTreeMap<String, f64>) -> Option<f64> {
    metrics.get("score").copied().filter(|s| s.is_finite())
}

fn outcome(status: Status) -> Outcome {
    match status {
        Status::Ok => Outcome::Ok,
        Status::Invalid => Outcome::Invalid,
        Status::Diverged => Outcome::Diverged,
        Status::Timeout => Outcome::Timeout,
        Status::Oom => Outcome::Oom,
        Status::Crashed | Status::Cancelled => Outcome::Crashed,
    }
}

/// The evaluation record of a worker result.
fn evaluation_of(spec: JobSpec, r: &EvalResult) -> NewEvaluation {
    let mut timings = BTreeMap::new();
    timings.insert("wall_seconds".to_string(), r.wall_seconds);
    timings.insert("train_seconds".to_string(), r.train_seconds);
    timings.insert("steps".to_string(), r.steps as f64);
    timings.insert("throughput".to_string(), r.throughput);
    timings.insert("peak_rss_mb".to_string(), r.peak_rss_mb);
    if let Some(l) = &r.latency_ms {
        timings.insert("latency_ms_batch_1".to_string(), l.batch_1);
        timings.insert("latency_ms_training_batch".to_string(), l.training_batch);
    }
    timings.retain(|_, v| v.is_finite());
    let reason = (r.status != Status::Ok).then(|| {
        let mut reason = r.message.clone().unwrap_or_default();
        if !r.diagnostics.is_empty() {
            reason.push('\n');
            reason.push_str(&render_all(&r.diagnostics, "model.star"));
        }
        if let Some(tail) = &r.stderr_tail {
            reason.push_str("\nworker stderr:\n");
            reason.push_str(tail);
        }
        reason
    });
    NewEvaluation {
        candidate: spec.candidate,
        fidelity: spec.fidelity,
        seed: spec.seed,
        outcome: outcome(r.status),
        reason,
        metrics: r.metrics.clone(),
        curve: r.curve.iter().map(|[s, l]| (*s as u64, *l)).collect(),
        timings,
    }
}

impl Campaign {
    /// Loads the task (to check it and learn its shape) and opens the archive.
    pub fn prepare(
        config: CampaignConfig,
        proposer: Arc<dyn Proposer>,
        worker: WorkerCommand,
        trace_child: ChildCommand,
    ) -> anyhow::Result<Campaign> {
        let task = Task::load(&config.task, 0)
            .map_err(|e| anyhow::anyhow!("task {}: {e}", config.task.name))?
            .shape;
        std::fs::create_dir_all(&config.archive)
            .with_context(|| format!("creating {}", config.archive.display()))?;
        let archive = Archive::open(&config.archive)?;
        Ok(Campaign {
            config,
            archive,
            task,
            proposer,
            fallback: None,
            worker,
            trace_child,
            progress: std::io::stderr().is_terminal(),
            interrupt: Arc::new(AtomicBool::new(false)),
        })
    }

    fn trace_config(&self) -> TraceConfig {
        TraceConfig {
            task: self.task.clone(),
            limits: Limits::default(),
        }
    }

    /// The stored state, or a fresh one; refuses an archive that holds another task's campaign.
    fn load_state(&self) -> anyhow::Result<State> {
        let records = self.archive.campaigns()?;
        if let Some(other) = records.iter().find(|c| c.name != self.config.name) {
            bail!(
                "archive {} holds campaign {:?}, not {:?}: use another --archive for a new campaign",
                self.config.archive.display(),
                other.name,
                self.config.name
            );
        }
        match records.into_iter().next() {
            Some(record) => {
                let task = record
                    .config
                    .get("task")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                if task != serde_json::to_value(&self.config.task)? {
                    bail!(
                        "campaign {:?} in {} was run on task {task}; this config says {}: use another --archive",
                        self.config.name,
                        self.config.archive.display(),
                        serde_json::to_value(&self.config.task)?
                    );
                }
                Ok(serde_json::from_value(record.state).unwrap_or_default())
            }
            None => Ok(State::default()),
        }
    }

    fn save_state(&self, state: &State) -> anyhow::Result<()> {
        self.archive.put_campaign(&CampaignRecord {
            name: self.config.name.clone(),
            config: serde_json::to_value(&self.config)?,
            state: serde_json::to_value(state)?,
            updated_ms: autoarch_archive::record::now_ms(),
        })?;
        Ok(())
    }

    /// Adds the configured seeds that are not in the archive yet (by fingerprint).
    fn add_seeds(&self) -> anyhow::Result<usize> {
        let mut designs: Vec<(String, String, String)> = Vec::new(); // (name, code, source)
        for s in &self.config.seeds {
            if s == "library" {
                for (name, code) in crate::seeds::for_task(&self.config.task.name) {
                    designs.push((
                        name.to_string(),
                        code.to_string(),
                        format!("library:{name}"),
                    ));
                }
            } else if let Some(name) = s.strip_prefix("library:") {
                let code = crate::seeds::by_name(name).with_context(|| {
                    format!(
                        "seeds: no library seed {name:?}; the library has {}",
                        crate::seeds::LIBRARY
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                designs.push((name.to_string(), code.to_string(), s.clone()));
            } else {
                let code =
                    std::fs::read_to_string(s).with_context(|| format!("seeds: reading {s}"))?;
                let name = std::path::Path::new(s)
                    .file_stem()
                    .map_or(s.clone(), |n| n.to_string_lossy().into_owned());
                designs.push((name, code, s.clone()));
            }
        }
        if designs.is_empty() {
            bail!(
                "no seeds: the library has none for task {}; list .star files in `seeds`",
                self.config.task.name
            );
        }
        let config = self.trace_config();
        let mut added = 0;
        let existing = self.archive.candidate_count()?;
        for (i, (name, code, source)) in designs.into_iter().enumerate() {
            let outcome = trace_isolated(&code, &config, &self.trace_child)?;
            let traced = match outcome {
                TraceOutcome::Ok(t) => t,
                TraceOutcome::Invalid { diagnostics } => bail!(
                    "seed {source} does not trace on task {}:\n{}",
                    self.config.task.name,
                    render_all(&diagnostics, &source)
                ),
            };
            if self
                .archive
                .find_fingerprint(&traced.fingerprint.0)?
                .is_some()
            {
                continue;
            }
            let display = crate::review::seed_header(&code)
                .remove("name")
                .filter(|n| !n.is_empty())
                .unwrap_or(name);
            let id = self.archive.insert_candidate(NewCandidate {
                name: display,
                motivation: format!("Seed design from {source}."),
                code,
                task: self.config.task.name.clone(),
                fingerprint: traced.fingerprint.0.clone(),
                stats: traced.stats.clone(),
                parents: vec![],
                proposer: ProposerKind::Seed,
                model: None,
                prompt: None,
                response: None,
                tokens: Default::default(),
                cost_usd: 0.0,
                calls: vec![],
                tags: vec!["seed".into()],
                source: Some(source),
                duplicate_of: None,
                island: ((existing as usize + i) % self.config.selection.islands as usize) as u32,
            })?;
            tracing::info!(candidate = id, "seed added");
            added += 1;
        }
        Ok(added)
    }

    /// The jobs the archive says are owed: unevaluated candidates, and missing promoted runs.
    fn owed_jobs(&self, state: &State) -> anyhow::Result<VecDeque<JobSpec>> {
        let mut jobs = VecDeque::new();
        for listed in self.archive.list()? {
            let c = &listed.candidate;
            if c.duplicate_of.is_some() || c.fingerprint.is_empty() {
                continue;
            }
            if listed.summary.evaluations == 0 {
                jobs.push_back(JobSpec {
                    candidate: c.id,
                    fidelity: 0,
                    seed: 0,
                });
            }
        }
        for &id in &state.promoted {
            let done: BTreeSet<u64> = self
                .archive
                .evaluations(id)?
                .iter()
                .filter(|e| e.fidelity == 1)
                .map(|e| e.seed)
                .collect();
            for seed in 0..=self.config.evaluation.promote_seeds as u64 {
                if !done.contains(&seed) {
                    jobs.push_back(JobSpec {
                        candidate: id,
                        fidelity: 1,
                        seed,
                    });
                }
            }
        }
        Ok(jobs)
    }

    /// Short-budget scores of the campaign's candidates (the random baseline left out).
    fn short_scores(&self) -> anyhow::Result<BTreeMap<CandidateId, f64>> {
        let mut out = BTreeMap::new();
        for listed in self.archive.list()? {
            if listed.candidate.tags.iter().any(|t| t == RANDOM_TAG) {
                continue;
            }
            let evals = self.archive.evaluations(listed.candidate.id)?;
            if let Some(s) = evals
                .iter()
                .filter(|e| e.fidelity == 0 && e.outcome == Outcome::Ok)
                .find_map(|e| score_of(&e.metrics))
            {
                out.insert(listed.candidate.id, s);
            }
        }
        Ok(out)
    }

    /// The last five failed candidates, oldest first, as proposers see them.
    fn recent_failures(&self) -> anyhow::Result<VecDeque<Failure>> {
        let mut failures = VecDeque::new();
        for listed in self.archive.list()?.iter().rev() {
            if failures.len() >= RECENT_FAILURES {
                break;
            }
            if listed.summary.status == ArchiveStatus::Failed {
                let reason = self
                    .archive
                    .evaluations(listed.candidate.id)?
                    .last()
                    .and_then(|e| e.reason.clone())
                    .unwrap_or_default();
                failures.push_front(Failure {
                    name: listed.candidate.name.clone(),
                    code: listed.candidate.code.clone(),
                    reason,
                });
            }
        }
        Ok(failures)
    }

    /// Asynchronous successive halving: a candidate whose short-budget score is in the top
    /// `promote_fraction` of those finished so far is promoted.
    fn promote(
        &self,
        state: &mut State,
        queue: &mut VecDeque<JobSpec>,
        scores: &BTreeMap<CandidateId, f64>,
    ) -> Vec<CandidateId> {
        let fraction = self.config.evaluation.promote_fraction;
        if fraction <= 0.0 {
            return vec![];
        }
        let k = (scores.len() as f64 * fraction).floor() as usize;
        let mut ranked: Vec<(CandidateId, f64)> = scores.iter().map(|(i, s)| (*i, *s)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut new = Vec::new();
        for (id, _) in ranked.into_iter().take(k) {
            if state.promoted.contains(&id) {
                continue;
            }
            state.promoted.push(id);
            new.push(id);
            for seed in 0..=self.config.evaluation.promote_seeds as u64 {
                queue.push_back(JobSpec {
                    candidate: id,
                    fidelity: 1,
                    seed,
                });
            }
        }
        new
    }

    fn shown(&self, id: CandidateId) -> anyhow::Result<Shown> {
        Ok(Shown {
            candidate: self
                .archive
                .candidate(id)?
                .with_context(|| format!("candidate {id} vanished"))?,
            summary: self.archive.summary(id)?,
            curve: short_curve(&self.archive.evaluations(id)?),
        })
    }

    /// What an analysis looks at: the best short-budget results and the most recent
    /// evaluated candidates (failures included), each once.
    fn analysis_context(&self) -> anyhow::Result<AnalysisContext> {
        let mut ids: Vec<CandidateId> = self
            .archive
            .top_k("score", 8)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        for l in self.archive.list()?.iter().rev() {
            if ids.len() >= 16 {
                break;
            }
            if l.summary.evaluations > 0 && !ids.contains(&l.candidate.id) {
                ids.push(l.candidate.id);
            }
        }
        let mut results = Vec::new();
        for id in ids {
            results.push(self.shown(id)?);
        }
        Ok(AnalysisContext {
            task: self.task.clone(),
            results,
            insights: self
                .archive
                .insights()?
                .into_iter()
                .map(|i| i.text)
                .collect(),
        })
    }

    /// Stores an analysis: the insight with the call, or the call's cost and why it gave none.
    fn store_analysis(&self, a: Analysis, state: &mut State) -> anyhow::Result<Option<String>> {
        let Analysis { insight, mut call } = a;
        let result = insight.and_then(|(text, evidence)| {
            let mut known = Vec::new();
            for id in evidence {
                if matches!(self.archive.candidate(id), Ok(Some(_))) && !known.contains(&id) {
                    known.push(id);
                }
            }
            if known.is_empty() {
                Err("the insight cites no candidate that exists".to_string())
            } else {
                Ok((text, known))
            }
        });
        match result {
            Ok((text, evidence)) => {
                self.archive
                    .add_insight_from(&text, &evidence, Some(call))?;
                Ok(Some(text))
            }
            Err(why) => {
                call.outcome = why.clone();
                state.other_tokens += call.tokens.prompt + call.tokens.completion;
                state.other_dollars += call.cost_usd;
                self.archive.log_event(
                    "analysis",
                    &format!(
                        "gave no insight: {why} ({} tokens); answer: {}",
                        call.tokens.prompt + call.tokens.completion,
                        call.response.chars().take(300).collect::<String>()
                    ),
                    None,
                )?;
                Ok(None)
            }
        }
    }

    /// Parent selection: exploration (uniform over successes), MAP-Elites cells, or a
    /// tournament in the proposal's island. Never a failed candidate.
    fn select(
        &self,
        n: u64,
        rng: &mut ChaCha8Rng,
        failures: &VecDeque<Failure>,
    ) -> anyhow::Result<Option<ProposalContext>> {
        let s = &self.config.selection;
        let r: f64 = rng.random();
        let island = (n % s.islands as u64) as u32;
        let parent = if r < s.exploration {
            self.archive.sample_successful(rng)?
        } else if r < s.exploration + s.elites {
            self.archive.sample_elite(rng)?
        } else {
            self.archive.sample_island(island, s.tournament, rng)?
        };
        let parent = match parent {
            Some(p) => Some(p),
            None => self.archive.sample_successful(rng)?,
        };
        let Some(parent) = parent else {
            return Ok(None);
        };
        let mut inspirations = Vec::new();
        if s.inspirations > 0 {
            let mut ids: Vec<CandidateId> = self
                .archive
                .top_k("score", s.inspirations + 1)?
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| *id != parent)
                .take(s.inspirations.saturating_sub(1).max(1))
                .collect();
            if let Some(e) = self.archive.sample_elite(rng)? {
                if e != parent && !ids.contains(&e) {
                    ids.push(e);
                }
            }
            ids.truncate(s.inspirations);
            for id in ids {
                inspirations.push(self.shown(id)?);
            }
        }
        let config = self.trace_config();
        Ok(Some(ProposalContext {
            task: self.task.clone(),
            limits: config.limits.clone(),
            checker: Arc::new(IsolatedChecker {
                config,
                child: self.trace_child.clone(),
            }),
            parent: self.shown(parent)?,
            inspirations,
            failures: failures.iter().cloned().collect(),
            insights: self
                .archive
                .insights()?
                .into_iter()
                .map(|i| i.text)
                .collect(),
            seed: n,
        }))
    }

    fn job(&self, spec: JobSpec) -> anyhow::Result<(Job, JobLimits)> {
        let c = self
            .archive
            .candidate(spec.candidate)?
            .with_context(|| format!("candidate {} vanished", spec.candidate))?;
        Ok((
            Job {
                id: format!("{}/{}/{}", spec.candidate, spec.fidelity, spec.seed),
                code: c.code,
                task: self.config.task.clone(),
                train: self.config.train_config(spec.fidelity, spec.seed),
                limits: Limits::default(),
            },
            JobLimits {
                timeout: Duration::from_secs_f64(self.config.evaluation.timeout_seconds),
                memory_mb: self.config.evaluation.memory_limit_mb,
            },
        ))
    }

    /// Starts queued jobs on the idle evaluators; returns the jobs started.
    fn dispatch(
        &self,
        queue: &mut VecDeque<JobSpec>,
        idle: &mut Vec<Evaluator>,
        running: &mut JoinSet<Running>,
    ) -> anyhow::Result<Vec<JobSpec>> {
        let mut started = Vec::new();
        while !idle.is_empty() {
            let Some(spec) = queue.pop_front() else { break };
            let (job, limits) = self.job(spec)?;
            let mut evaluator = idle.pop().expect("checked");
            running.spawn_blocking(move || {
                let r = evaluator.evaluate(&job, limits, &mut |_| {});
                (evaluator, spec, r)
            });
            started.push(spec);
        }
        Ok(started)
    }

    /// Stores a traced (or untraced) proposal; returns the job it needs, if any.
    fn store_proposal(
        &self,
        p: crate::proposer::Proposal,
        outcome: Option<TraceOutcome>,
        kind: ProposerKind,
        tags: Vec<String>,
        counters: &mut Counters,
    ) -> anyhow::Result<(CandidateId, Option<JobSpec>, &'static str)> {
        let island = match p.parents.first() {
            Some(&parent) => self.archive.candidate(parent)?.map_or(0, |c| c.island),
            None => 0,
        };
        let failure = p.failure;
        let mut new = NewCandidate {
            name: p.name,
            motivation: p.motivation,
            code: p.code,
            task: self.config.task.name.clone(),
            fingerprint: String::new(),
            stats: Stats::default(),
            parents: p.parents,
            proposer: kind,
            model: p.model,
            prompt: p.prompt,
            response: p.response,
            tokens: p.tokens,
            cost_usd: p.cost_usd,
            calls: p.calls,
            tags,
            source: None,
            duplicate_of: None,
            island,
        };
        let invalid = match outcome {
            None => Err(failure.clone().unwrap_or_else(|| "no code".into())),
            // The proposer's account (with its repair rounds) when it has one.
            Some(TraceOutcome::Invalid { diagnostics }) => Err(failure.unwrap_or_else(|| {
                format!(
                    "the code does not trace\n{}",
                    render_all(&diagnostics, "model.star")
                )
            })),
            Some(TraceOutcome::Ok(t)) => Ok(t),
        };
        match invalid {
            Err(reason) => {
                counters.untraced += 1;
                let id = self.archive.insert_candidate(new)?;
                tracing::info!(candidate = id, "proposal does not trace: {reason}");
                self.archive.record_evaluation(NewEvaluation {
                    candidate: id,
                    fidelity: 0,
                    seed: 0,
                    outcome: Outcome::Invalid,
                    reason: Some(reason),
                    metrics: BTreeMap::new(),
                    curve: vec![],
                    timings: BTreeMap::new(),
                })?;
                Ok((id, None, "did not trace"))
            }
            Ok(t) => {
                counters.traced += 1;
                new.fingerprint = t.fingerprint.0.clone();
                new.stats = t.stats.clone();
                if let Some(first) = self.archive.find_fingerprint(&new.fingerprint)? {
                    counters.duplicates += 1;
                    new.duplicate_of = Some(first);
                    let id = self.archive.insert_candidate(new)?;
                    tracing::info!(candidate = id, duplicate_of = first, "duplicate proposal");
                    return Ok((id, None, "duplicate"));
                }
                let id = self.archive.insert_candidate(new)?;
                Ok((
                    id,
                    Some(JobSpec {
                        candidate: id,
                        fidelity: 0,
                        seed: 0,
                    }),
                    "queued",
                ))
            }
        }
    }

    /// Proposals made by this campaign (not seeds or human designs), their LLM usage (analyses
    /// included), compute seconds, and how many candidates have a short-budget evaluation.
    fn spent(&self, state: &State) -> anyhow::Result<Spent> {
        let mut s = Spent {
            tokens: state.other_tokens,
            dollars: state.other_dollars,
            ..Spent::default()
        };
        for listed in self.archive.list()? {
            let c = &listed.candidate;
            if matches!(c.proposer, ProposerKind::Llm | ProposerKind::Mutation)
                && !c.tags.iter().any(|t| t == RANDOM_TAG)
            {
                s.candidates += 1;
            }
            s.tokens += c.tokens.prompt + c.tokens.completion;
            s.dollars += c.cost_usd;
            let evaluations = self.archive.evaluations(c.id)?;
            if evaluations.iter().any(|e| e.fidelity == 0) && !c.fingerprint.is_empty() {
                s.short += 1;
            }
            for e in evaluations {
                s.compute += e.timings.get("wall_seconds").copied().unwrap_or(0.0);
            }
        }
        for i in self.archive.insights()? {
            if let Some(call) = i.call {
                s.tokens += call.tokens.prompt + call.tokens.completion;
                s.dollars += call.cost_usd;
            }
        }
        Ok(s)
    }

    /// Runs (or resumes) the campaign until a budget, the end of the work, or an interrupt.
    pub async fn run(&self) -> anyhow::Result<RunSummary> {
        let mut state = self.load_state()?;
        // Registered now, so a Ctrl-C at any point from here on is a clean stop.
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("listening for Ctrl-C")?;
        let started = Instant::now();
        let before = state.elapsed_seconds;
        self.archive.log_event(
            "campaign",
            &format!("run started ({} s spent before)", before.round()),
            None,
        )?;
        tracing::info!(name = %self.config.name, task = %self.config.task.name, "campaign run started");
        self.add_seeds()?;
        let _ = self.archive.write_snapshot();
        let seeds = self
            .archive
            .list()?
            .iter()
            .filter(|l| l.candidate.proposer == ProposerKind::Seed)
            .count();
        let mut queue = self.owed_jobs(&state)?;
        let workers = self.config.evaluation.workers;
        let budget = self.config.budget.clone();
        let Spent {
            mut candidates,
            mut tokens,
            mut dollars,
            mut compute,
            short: mut evaluated_short,
        } = self.spent(&state)?;
        let analyze_every = u64::from(self.config.llm.analyze_every);
        let mut analysing: JoinSet<Result<Option<Analysis>, ProposeError>> = JoinSet::new();
        let mut active = self.proposer.clone();
        let mut fell_back = false;
        let mut counters = Counters::default();

        let cancel = Arc::new(AtomicBool::new(false));
        let mut idle: Vec<Evaluator> = (0..workers)
            .map(|_| {
                let mut e = Evaluator::new(self.worker.clone());
                e.set_cancel(cancel.clone());
                e
            })
            .collect();
        let mut running: JoinSet<Running> = JoinSet::new();
        let mut proposing: JoinSet<(u64, ProposerKind, ProposalResult)> = JoinSet::new();
        let mut in_flight_proposals = 0u64;

        let bar = self.progress_bar(budget.max_candidates.map(|m| m + seeds as u64));
        let mut best = self.best_listed()?;
        // Kept up to date as results arrive, so that no step scans the whole archive.
        let mut short = self.short_scores()?;
        let mut failures = self.recent_failures()?;
        let mut last_save = Instant::now();
        let mut last_snapshot = Instant::now();
        let mut busy_since: BTreeMap<JobSpec, Instant> = BTreeMap::new();
        let mut busy_run = 0.0;
        let mut tick = tokio::time::interval(Duration::from_millis(500));

        let stop = loop {
            let elapsed = now_elapsed(started, before);
            // Budgets that stop everything at once.
            let over = over_budget(&budget, elapsed, compute, tokens, dollars);
            if let Some(why) = over {
                break Stop::Budget(why);
            }
            if self.interrupt.load(Ordering::SeqCst) {
                break Stop::Interrupted;
            }

            // Start evaluations on free workers.
            for spec in self.dispatch(&mut queue, &mut idle, &mut running)? {
                busy_since.insert(spec, Instant::now());
            }

            // Prepare proposals while workers train: keep one per worker ready.
            let candidates_left = budget
                .max_candidates
                .is_none_or(|m| candidates + in_flight_proposals < m);
            let has_parent = !self.archive.top_k("score", 1)?.is_empty();
            if candidates_left
                && has_parent
                && (queue.len() as u64 + in_flight_proposals) < workers as u64
            {
                let n = state.proposals;
                state.proposals += 1;
                let mut rng = ChaCha8Rng::seed_from_u64(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                if let Some(ctx) = self.select(n, &mut rng, &failures)? {
                    in_flight_proposals += 1;
                    let proposer = active.clone();
                    let config = self.trace_config();
                    let child = self.trace_child.clone();
                    proposing.spawn(async move {
                        let kind = proposer.kind();
                        let p = match proposer.propose(ctx).await {
                            Ok(p) => p,
                            Err(e) => return (n, kind, Err(e)),
                        };
                        if p.code.is_empty() {
                            return (n, kind, Ok((p, None)));
                        }
                        let code = p.code.clone();
                        let traced = tokio::task::spawn_blocking(move || {
                            trace_isolated(&code, &config, &child)
                        })
                        .await;
                        match traced {
                            Ok(Ok(outcome)) => (n, kind, Ok((p, Some(outcome)))),
                            Ok(Err(e)) => (
                                n,
                                kind,
                                Err(ProposeError::Unavailable(format!("tracing failed: {e}"))),
                            ),
                            Err(e) => (
                                n,
                                kind,
                                Err(ProposeError::Unavailable(format!("tracing failed: {e}"))),
                            ),
                        }
                    });
                    continue;
                }
            }

            // Draw a lesson from the results every `analyze_every` short evaluations.
            if analyze_every > 0
                && analysing.is_empty()
                && !fell_back
                && evaluated_short >= state.analysed_at + analyze_every
            {
                state.analysed_at = evaluated_short;
                let ctx = self.analysis_context()?;
                let proposer = active.clone();
                analysing.spawn(async move { proposer.analyze(ctx).await });
            }

            if running.is_empty()
                && proposing.is_empty()
                && queue.is_empty()
                && analysing.is_empty()
            {
                if !has_parent {
                    break Stop::Proposer(
                        "no seed evaluated successfully, so there is no parent to propose from"
                            .into(),
                    );
                }
                break Stop::Finished;
            }

            tokio::select! {
                Some(done) = running.join_next(), if !running.is_empty() => {
                    let (evaluator, spec, result) = done.context("an evaluation task panicked")?;
                    idle.push(evaluator);
                    if let Some(t) = busy_since.remove(&spec) {
                        busy_run += t.elapsed().as_secs_f64();
                    }
                    if result.status == Status::Cancelled {
                        continue;
                    }
                    let evaluation = evaluation_of(spec, &result);
                    let reason = evaluation.reason.clone();
                    self.archive.record_evaluation(evaluation)?;
                    compute += result.wall_seconds;
                    let candidate = self.archive.candidate(spec.candidate)?;
                    let name = candidate.as_ref().map(|c| c.name.clone()).unwrap_or_default();
                    if result.status == Status::Ok {
                        counters.evaluated += 1;
                    } else {
                        counters.failed += 1;
                    }
                    let score = score_of(&result.metrics);
                    tracing::info!(candidate = spec.candidate, fidelity = spec.fidelity, seed = spec.seed,
                        status = result.status.as_str(), score = ?score, wall = result.wall_seconds, "evaluated");
                    self.say(&bar, &format!(
                        "#{} {} [fidelity {}, seed {}]: {}{}",
                        spec.candidate,
                        name,
                        spec.fidelity,
                        spec.seed,
                        result.status.as_str(),
                        score.map(|s| format!(" score {s:.4}")).unwrap_or_else(|| result.message.clone().map(|m| format!(" ({})", m.lines().next().unwrap_or(""))).unwrap_or_default())
                    ));
                    if let (Some(c), Some(reason)) = (candidate, reason) {
                        remember_failure(&mut failures, Failure { name: c.name, code: c.code, reason });
                    }
                    if spec.fidelity == 0 {
                        evaluated_short += 1;
                        bar.inc(1);
                        if let (Status::Ok, Some(score)) = (result.status, score) {
                            short.insert(spec.candidate, score);
                            for id in self.promote(&mut state, &mut queue, &short) {
                                self.archive.log_event("promotion", "promoted to the longer budget", Some(id))?;
                                tracing::info!(candidate = id, "promoted");
                                self.say(&bar, &format!("#{id} promoted: {} runs at {}× the budget", self.config.evaluation.promote_seeds + 1, self.config.evaluation.promote_factor));
                            }
                        }
                    }
                    best = self.update_best(best, spec.candidate)?;
                }
                Some(done) = proposing.join_next(), if !proposing.is_empty() => {
                    in_flight_proposals -= 1;
                    let (n, kind, outcome) = done.context("a proposal task panicked")?;
                    match outcome {
                        Ok((proposal, traced)) => {
                            counters.nothing_in_a_row = 0;
                            let (id, job, what) = self.store_proposal(proposal, traced, kind, vec![], &mut counters)?;
                            candidates += 1;
                            if let Some(c) = self.archive.candidate(id)? {
                                tokens += c.tokens.prompt + c.tokens.completion;
                                dollars += c.cost_usd;
                                self.say(&bar, &format!("#{id} {}: {what}", c.name));
                                if c.fingerprint.is_empty() {
                                    let reason = self.archive.evaluations(id)?.pop().and_then(|e| e.reason).unwrap_or_default();
                                    remember_failure(&mut failures, Failure { name: c.name, code: c.code, reason });
                                }
                            }
                            match job {
                                Some(j) => queue.push_back(j),
                                None => bar.inc(1),
                            }
                        }
                        Err(e @ ProposeError::Unavailable(_)) => {
                            if fell_back && kind != ProposerKind::Mutation {
                                // A call that was in flight when the fallback began.
                                continue;
                            }
                            match (&self.fallback, fell_back) {
                                (Some(fallback), false) => {
                                    fell_back = true;
                                    active = fallback.clone();
                                    let line = format!("{e}; going on with the {} proposer", fallback.kind().as_str());
                                    self.archive.log_event("proposer", &line, None)?;
                                    tracing::warn!("{line}");
                                    self.say(&bar, &line);
                                }
                                _ => break Stop::Proposer(e.to_string()),
                            }
                        }
                        Err(e) => {
                            counters.nothing_in_a_row += 1;
                            tracing::info!(proposal = n, "no proposal: {e}");
                            if counters.nothing_in_a_row >= 50 {
                                break Stop::Proposer(format!("50 proposals in a row gave nothing (last: {e})"));
                            }
                        }
                    }
                }
                Some(done) = analysing.join_next(), if !analysing.is_empty() => {
                    match done.context("an analysis task panicked")? {
                        Ok(Some(analysis)) => {
                            let used = analysis.call.tokens.prompt + analysis.call.tokens.completion;
                            tokens += used;
                            dollars += analysis.call.cost_usd;
                            if let Some(text) = self.store_analysis(analysis, &mut state)? {
                                self.say(&bar, &format!("insight: {text}"));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            // The proposals meet the same endpoint and stop or fall back.
                            self.archive.log_event("analysis", &e.to_string(), None)?;
                        }
                    }
                }
                _ = sigint.recv() => {
                    break Stop::Interrupted;
                }
                _ = tick.tick() => {}
            }
            bar.set_message(self.status_line(&counters, running.len(), best.as_ref()));
            if last_save.elapsed() > Duration::from_secs(5) {
                state.elapsed_seconds = now_elapsed(started, before);
                self.save_state(&state)?;
                last_save = Instant::now();
            }
            // Review commands read this snapshot while the campaign holds the archive.
            if last_snapshot.elapsed() > Duration::from_secs(30) {
                let _ = self.archive.write_snapshot();
                last_snapshot = Instant::now();
            }
        };

        // Stop the workers; what was running is owed and runs again on resume.
        cancel.store(true, Ordering::SeqCst);
        while let Some(done) = running.join_next().await {
            if let Ok((_, spec, result)) = done {
                if let Some(t) = busy_since.remove(&spec) {
                    busy_run += t.elapsed().as_secs_f64();
                }
                if result.status != Status::Cancelled {
                    self.archive
                        .record_evaluation(evaluation_of(spec, &result))?;
                }
            }
        }
        proposing.abort_all();
        analysing.abort_all();
        bar.finish_and_clear();

        let run_seconds = started.elapsed().as_secs_f64();
        state.elapsed_seconds = before + run_seconds;
        state.busy_seconds += busy_run;
        state.capacity_seconds += run_seconds * workers as f64;
        state.stopped = Some(stop.describe());
        self.save_state(&state)?;
        self.archive.log_event("campaign", &stop.describe(), None)?;
        let _ = self.archive.write_snapshot();
        tracing::info!("campaign run ended: {}", stop.describe());

        Ok(RunSummary {
            stop,
            elapsed_seconds: state.elapsed_seconds,
            run_seconds,
            seeds,
            proposals: candidates,
            traced: counters.traced,
            untraced: counters.untraced,
            duplicates: counters.duplicates,
            evaluated: counters.evaluated,
            failed: counters.failed,
            promoted: state.promoted.len(),
            utilisation: if state.capacity_seconds > 0.0 {
                state.busy_seconds / state.capacity_seconds
            } else {
                0.0
            },
            best: self.best()?,
            best_seed: self.best_seed()?,
        })
    }

    /// Evaluates candidates sampled at random from the mutation proposer's space (random
    /// seeds, 1-3 random edits, no selection) until the archive holds `n` with a short-budget
    /// result. They are tagged [`RANDOM_TAG`] and never ranked against the campaign's own.
    pub async fn random_baseline(&self, n: usize) -> anyhow::Result<usize> {
        let have = random_baseline(&self.archive)?
            .iter()
            .filter(|c| {
                self.archive
                    .evaluations(c.id)
                    .is_ok_and(|e| e.iter().any(|e| e.fidelity == 0))
            })
            .count();
        if have >= n {
            return Ok(0);
        }
        let seeds: Vec<Candidate> = self
            .archive
            .list()?
            .into_iter()
            .filter(|l| l.candidate.proposer == ProposerKind::Seed)
            .map(|l| l.candidate)
            .collect();
        if seeds.is_empty() {
            bail!("the archive has no seeds to sample from: run the campaign first");
        }
        let kind = crate::mutation::TaskKind::of(&self.task);
        let config = self.trace_config();
        let mut jobs = VecDeque::new();
        let mut counters = Counters::default();
        let mut attempt = 0u64;
        while jobs.len() < n - have && attempt < 20 * n as u64 {
            let mut rng =
                ChaCha8Rng::seed_from_u64((1 << 40) + attempt + self.archive.candidate_count()?);
            attempt += 1;
            let seed = &seeds[rng.random_range(0..seeds.len())];
            let partner = &seeds[rng.random_range(0..seeds.len())];
            let Some(m) = crate::mutation::mutate(
                &seed.name,
                &seed.code,
                kind,
                Some(&partner.code),
                3,
                &mut rng,
            ) else {
                continue;
            };
            let outcome = trace_isolated(&m.code, &config, &self.trace_child)?;
            let fresh = match &outcome {
                TraceOutcome::Ok(t) => self.archive.find_fingerprint(&t.fingerprint.0)?.is_none(),
                TraceOutcome::Invalid { .. } => false,
            };
            if !fresh {
                continue;
            }
            let proposal = crate::proposer::Proposal {
                name: format!("random · {}", m.name),
                motivation: format!(
                    "Random sample (baseline) from seed #{}: {}.",
                    seed.id, m.description
                ),
                code: m.code,
                parents: vec![seed.id],
                model: None,
                prompt: None,
                response: None,
                tokens: Default::default(),
                cost_usd: 0.0,
                calls: vec![],
                failure: None,
            };
            let (_, job, _) = self.store_proposal(
                proposal,
                Some(outcome),
                ProposerKind::Mutation,
                vec![RANDOM_TAG.into()],
                &mut counters,
            )?;
            jobs.extend(job);
        }
        let total = jobs.len();
        eprintln!("random baseline: evaluating {total} sampled candidates");
        let mut idle: Vec<Evaluator> = (0..self.config.evaluation.workers)
            .map(|_| Evaluator::new(self.worker.clone()))
            .collect();
        let mut running: JoinSet<Running> = JoinSet::new();
        loop {
            self.dispatch(&mut jobs, &mut idle, &mut running)?;
            let Some(done) = running.join_next().await else {
                break;
            };
            let (evaluator, spec, result) = done.context("an evaluation task panicked")?;
            idle.push(evaluator);
            self.archive
                .record_evaluation(evaluation_of(spec, &result))?;
            eprintln!(
                "random #{}: {}{}",
                spec.candidate,
                result.status.as_str(),
                score_of(&result.metrics)
                    .map(|s| format!(" score {s:.4}"))
                    .unwrap_or_default()
            );
        }
        let _ = self.archive.write_snapshot();
        Ok(total)
    }

    fn best_listed(&self) -> anyhow::Result<Option<Listed>> {
        let listed = self.archive.list()?;
        Ok(crate::report::ranking(&listed)
            .first()
            .map(|l| (*l).clone()))
    }

    fn best(&self) -> anyhow::Result<Option<(CandidateId, String, f64)>> {
        Ok(self.best_listed()?.map(|l| {
            let score = l.summary.score().unwrap_or(f64::NAN);
            (l.candidate.id, l.candidate.name, score)
        }))
    }

    /// The best after `id` got a result: a comparison with the best so far, or a full ranking
    /// when `id` was the best (a promoted run can lower its standing).
    fn update_best(&self, best: Option<Listed>, id: CandidateId) -> anyhow::Result<Option<Listed>> {
        if best.as_ref().is_some_and(|b| b.candidate.id == id) {
            return self.best_listed();
        }
        let Some(candidate) = self.archive.candidate(id)? else {
            return Ok(best);
        };
        let changed = Listed {
            candidate,
            summary: self.archive.summary(id)?,
        };
        let eligible = !crate::report::is_random(&changed)
            && changed.summary.status == ArchiveStatus::Ok
            && changed.summary.score().is_some();
        Ok(match best {
            Some(b) if !eligible || crate::report::order(&changed, &b).is_ge() => Some(b),
            Some(_) | None if eligible => Some(changed),
            other => other,
        })
    }

    fn best_seed(&self) -> anyhow::Result<Option<(CandidateId, String, f64)>> {
        let mut best: Option<(CandidateId, String, f64)> = None;
        for l in self.archive.list()? {
            if l.candidate.proposer != ProposerKind::Seed || l.summary.status != ArchiveStatus::Ok {
                continue;
            }
            if let Some(s) = l.summary.score() {
                if best.as_ref().is_none_or(|b| s > b.2) {
                    best = Some((l.candidate.id, l.candidate.name.clone(), s));
                }
            }
        }
        Ok(best)
    }

    fn progress_bar(&self, len: Option<u64>) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:24}] {pos}/{len} candidates, ETA {eta}  {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    fn status_line(&self, c: &Counters, running: usize, best: Option<&Listed>) -> String {
        format!(
            "running {running} · done {} · failed {} · dup {} · best {}",
            c.evaluated,
            c.failed + c.untraced,
            c.duplicates,
            best.map(|b| format!(
                "{:.4} (#{})",
                b.summary.score().unwrap_or(f64::NAN),
                b.candidate.id
            ))
            .unwrap_or_else(|| "-".into())
        )
    }

    /// One line of news: above the bar on a terminal, on stderr otherwise.
    fn say(&self, bar: &ProgressBar, line: &str) {
        if self.progress {
            bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

/// The candidates of the campaign's random-sampling baseline.
pub fn random_baseline(archive: &Archive) -> anyhow::Result<Vec<Candidate>> {
    Ok(archive
        .by_tag(RANDOM_TAG)?
        .into_iter()
        .filter_map(|id| archive.candidate(id).ok().flatten())
        .collect())
}
