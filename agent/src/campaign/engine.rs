//! The loop, as an event loop in the style of rust-analyzer's main loop: [`Engine::schedule`]
//! starts what can start (evaluations on free workers, proposals, an analysis) and says when
//! the run is over; [`Engine::next_event`] owns the one `select!` and waits for the next thing
//! to happen; [`Engine::handle_event`] stores it and updates the run's state.
//!
//! Evaluations run through [`Evaluate`], traces through [`Trace`]: the process pool and the
//! trace child in a real run, in-memory stand-ins in tests.
//!
//! [`Evaluate`]: crate::machine::Evaluate
//! [`Trace`]: crate::machine::Trace

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use autoarch_archive::{Archive, CandidateId, Listed, Metric, ProposerKind};
use autoarch_evaluator::{EvalResult, Status};
use autoarch_sandbox::TraceConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval};

use super::admit::{admit, store_proposal, Admitted, Design, Stored};
use super::context::{self, remember};
use super::jobs::{self, evaluation_of, score_of, JobSpec};
use super::state::{compute_slack, over_budget, Spent, State};
use super::{ranking, Campaign, Error, Result, RunEvent, RunSummary, Stop, RANDOM_TAG};
use crate::machine::{CancelFlag, MachineError};
use crate::propose::{
    Analysis, Checker, Draft, Failure, Known, Proposal, ProposalContext, ProposeError, Proposer,
};
use crate::search::{Population, Selection, Strategy};
use autoarch_archive::Fidelity;

/// What a run is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The campaign itself: seeds, budgets, promotion, analysis, the saved state.
    Campaign,
    /// The random-sampling baseline of the report: random search with the mutation proposer,
    /// tagged, outside the budgets, until `target` candidates have a short-budget result.
    Baseline { target: usize },
}

/// Proposals in a row that may give nothing (no proposal, or only a duplicate) before the run
/// stops.
const NOTHING_IN_A_ROW: u32 = 50;

/// A job is queued again at most this many times after its worker was lost mid-job.
pub const MAX_REQUEUES: u32 = 3;

/// Where baseline proposals are numbered from (their own seeds, apart from the campaign's).
const BASELINE_NUMBERS: u64 = 1 << 40;

/// Proposals the baseline may make per candidate it wants, before it gives up on a small space.
const BASELINE_TRIES: u64 = 20;

/// Something that happened.
enum Event {
    Evaluated(JobSpec, std::result::Result<EvalResult, MachineError>),
    Proposed(
        u64,
        ProposerKind,
        std::result::Result<Proposal, ProposeError>,
    ),
    Analysed(std::result::Result<Option<Analysis>, ProposeError>),
    Interrupted,
    Tick,
    Panicked(String),
}

#[derive(Default)]
struct Counters {
    traced: u64,
    untraced: u64,
    duplicates: u64,
    evaluated: u64,
    failed: u64,
    nothing_in_a_row: u32,
    /// Proposals in a row that gave nothing new: no proposal, or a duplicate.
    stale_in_a_row: u32,
}

/// What a running job may spend of the compute budget.
#[derive(Clone, Copy, Debug)]
struct Reservation {
    seconds: f64,
    /// Less than the job's own timeout: a timeout is the budget's end, not the candidate's.
    cut: bool,
}

/// The strategy's view of the campaign: the archive's samplers and the loop's own records,
/// without the random baseline's candidates.
struct View<'a> {
    archive: &'a Archive,
    seeds: &'a [CandidateId],
    scored: &'a [(CandidateId, f64)],
    random: &'a BTreeSet<CandidateId>,
}

/// Draws again (a few times) when a sampler lands on a baseline candidate.
const RESAMPLES: usize = 8;

impl View<'_> {
    fn own(
        &self,
        mut draw: impl FnMut() -> crate::search::Result<Option<CandidateId>>,
    ) -> crate::search::Result<Option<CandidateId>> {
        for _ in 0..RESAMPLES {
            match draw()? {
                Some(id) if self.random.contains(&id) => continue,
                other => return Ok(other),
            }
        }
        Ok(None)
    }
}

impl Population for View<'_> {
    fn seeds(&self) -> Vec<CandidateId> {
        self.seeds.to_vec()
    }

    fn scored(&self) -> Vec<(CandidateId, f64)> {
        self.scored.to_vec()
    }

    fn sample_successful(
        &self,
        rng: &mut ChaCha8Rng,
    ) -> crate::search::Result<Option<CandidateId>> {
        self.archive.sample_successful(rng)
    }

    fn sample_elite(&self, rng: &mut ChaCha8Rng) -> crate::search::Result<Option<CandidateId>> {
        self.archive.sample_elite(rng)
    }

    fn sample_island(
        &self,
        island: u32,
        size: usize,
        rng: &mut ChaCha8Rng,
    ) -> crate::search::Result<Option<CandidateId>> {
        self.own(|| self.archive.sample_island(island, size, rng))
    }

    fn top(&self, k: usize) -> crate::search::Result<Vec<CandidateId>> {
        Ok(self
            .archive
            .top_k(Metric::Score, k + self.random.len())?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| !self.random.contains(id))
            .take(k)
            .collect())
    }
}

type Proposing = JoinSet<(
    u64,
    ProposerKind,
    std::result::Result<Proposal, ProposeError>,
)>;

/// A run in progress.
pub(super) struct Engine<'c> {
    c: &'c Campaign,
    purpose: Purpose,
    strategy: Box<dyn Strategy>,
    proposer: Arc<dyn Proposer>,
    fell_back: bool,
    state: State,
    spent: Spent,
    /// Seeds that traced, the short-budget scores in the order they arrived, and the random
    /// baseline's candidates (never parents of the campaign's proposals).
    seeds: Vec<CandidateId>,
    scored: Vec<(CandidateId, f64)>,
    random: BTreeSet<CandidateId>,
    /// The fingerprints in the archive, for proposers to avoid duplicates.
    known: Known,
    /// The space around the parents looks used up: no more proposals this run.
    exhausted: bool,
    failures: VecDeque<Failure>,
    queue: VecDeque<JobSpec>,
    running: JoinSet<(JobSpec, std::result::Result<EvalResult, MachineError>)>,
    running_since: BTreeMap<JobSpec, Instant>,
    /// The evaluation-seconds each running job may still spend of the compute budget: charged
    /// at dispatch, refunded to the real cost when the job ends.
    reserved: BTreeMap<JobSpec, Reservation>,
    /// How often each job lost its worker mid-job.
    requeued: BTreeMap<JobSpec, u32>,
    proposing: Proposing,
    analysing: JoinSet<std::result::Result<Option<Analysis>, ProposeError>>,
    counters: Counters,
    best: Option<Listed>,
    /// Baseline candidates with a short-budget result.
    baseline_done: usize,
    /// The next proposal's number, and the first of this run.
    made: u64,
    first: u64,
    cancel: CancelFlag,
    interrupt: tokio::sync::watch::Receiver<bool>,
    started: Instant,
    busy_run: f64,
    last_save: Instant,
    last_snapshot: Instant,
    tick: Interval,
}

impl<'c> Engine<'c> {
    /// Loads what the archive says and prepares a run.
    pub(super) fn new(
        c: &'c Campaign,
        purpose: Purpose,
        strategy: Box<dyn Strategy>,
        proposer: Arc<dyn Proposer>,
    ) -> Result<Engine<'c>> {
        let state = c.load_state()?;
        let spent = Spent::of(&c.archive, &state)?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Engine {
            c,
            purpose,
            strategy,
            proposer,
            fell_back: false,
            state,
            spent,
            seeds: Vec::new(),
            scored: Vec::new(),
            random: BTreeSet::new(),
            known: Known::default(),
            exhausted: false,
            failures: VecDeque::new(),
            queue: VecDeque::new(),
            running: JoinSet::new(),
            running_since: BTreeMap::new(),
            reserved: BTreeMap::new(),
            requeued: BTreeMap::new(),
            proposing: JoinSet::new(),
            analysing: JoinSet::new(),
            counters: Counters::default(),
            best: None,
            baseline_done: 0,
            made: 0,
            first: 0,
            cancel: Arc::new(AtomicBool::new(false)),
            interrupt: c.interrupt.subscribe(),
            started: Instant::now(),
            busy_run: 0.0,
            last_save: Instant::now(),
            last_snapshot: Instant::now(),
            tick,
        })
    }

    fn trace_config(&self) -> TraceConfig {
        TraceConfig {
            task: self.c.task.clone(),
            limits: self.c.config.limits(),
        }
    }

    fn emit(&self, event: RunEvent) {
        (self.c.observer)(&event);
    }

    fn is_campaign(&self) -> bool {
        self.purpose == Purpose::Campaign
    }

    /// Adds the configured seeds that are not in the archive yet (by fingerprint).
    pub(super) async fn add_seeds(&mut self) -> Result<usize> {
        let c = self.c;
        let mut designs = Vec::new();
        for spec in &c.config.seeds {
            designs.extend(spec.designs(&c.config.task.name)?);
        }
        if designs.is_empty() {
            return Err(Error::NoSeeds(c.config.task.name.clone()));
        }
        let config = self.trace_config();
        let existing = c.archive.candidate_count()?;
        let islands = u64::from(c.config.selection.islands);
        let mut added = 0;
        for (i, d) in designs.into_iter().enumerate() {
            let design = Design {
                name: d.name,
                motivation: format!("Seed design from {}.", d.source),
                code: d.code,
                proposer: ProposerKind::Seed,
                source: d.source.clone(),
                tags: vec!["seed".into()],
                task: c.config.task.name.clone(),
                island: ((existing + i as u64) % islands) as u32,
            };
            match admit(&c.archive, c.tracer.as_ref(), &config, design).await? {
                Admitted::Added(id) => {
                    tracing::info!(candidate = id, "seed added");
                    added += 1;
                }
                Admitted::Duplicate(_) => {}
                Admitted::Refused(diagnostics) => {
                    return Err(Error::SeedDoesNotTrace {
                        seed: d.source.clone(),
                        task: c.config.task.name.clone(),
                        diagnostics: autoarch_sandbox::render_all(&diagnostics, &d.source),
                    })
                }
            }
        }
        Ok(added)
    }

    /// Reads where the campaign stands: the work owed, the seeds, the scores, the failures.
    fn resume(&mut self) -> Result<()> {
        let archive = &self.c.archive;
        let baseline = !self.is_campaign();
        let listed = archive.list()?;
        let random: BTreeSet<CandidateId> = listed
            .iter()
            .filter(|l| ranking::is_random(l))
            .map(|l| l.candidate.id)
            .collect();
        let extra_seeds = self.c.config.evaluation.promote_seeds;
        self.queue = jobs::owed(archive, &self.state.promoted, extra_seeds)?
            .into_iter()
            .filter(|j| random.contains(&j.candidate) == baseline)
            .collect();
        self.seeds = context::traced_seeds(archive)?;
        self.scored = context::short_scores(archive)?;
        self.failures = context::recent_failures(archive)?;
        self.best = ranking::best(archive)?;
        for l in listed.iter().filter(|l| random.contains(&l.candidate.id)) {
            let evaluated = archive
                .evaluations(l.candidate.id)?
                .iter()
                .any(|e| e.fidelity.is_short());
            if evaluated && l.candidate.traced() {
                self.baseline_done += 1;
            }
        }
        if !baseline {
            let own: Vec<&autoarch_archive::Candidate> = listed
                .iter()
                .filter(|l| !random.contains(&l.candidate.id) && !l.candidate.calls.is_empty())
                .map(|l| &l.candidate)
                .collect();
            let notes = self.proposer.restore(&own);
            self.log_notes(&notes, None)?;
        }
        for l in &listed {
            self.known.insert(&l.candidate.fingerprint);
        }
        self.random = random;
        self.made = if baseline {
            BASELINE_NUMBERS + self.state.baseline_proposals
        } else {
            self.state.proposals
        };
        self.first = self.made;
        Ok(())
    }

    /// Runs until a budget, the end of the work, an interrupt or a failure of the machine.
    pub(super) async fn run(mut self, before: Option<Stop>) -> Result<RunSummary> {
        let stop = match before {
            Some(stop) => stop,
            None => {
                self.resume()?;
                let bar = match self.purpose {
                    Purpose::Campaign => self
                        .c
                        .config
                        .budget
                        .max_candidates
                        .map(|m| m + self.seeds.len() as u64),
                    Purpose::Baseline { target } => Some(target as u64),
                };
                self.emit(RunEvent::Started {
                    seeds: self.seeds.len(),
                    total: bar,
                });
                match self.event_loop().await {
                    Ok(stop) => stop,
                    Err(e) => return Err(self.abandon(e).await),
                }
            }
        };
        self.finish(stop).await
    }

    /// The loop failed (the archive, a task of the loop): stop the workers and keep what can be
    /// kept before the error goes up.
    async fn abandon(mut self, e: Error) -> Error {
        self.cancel.store(true, Ordering::SeqCst);
        self.proposing.abort_all();
        self.analysing.abort_all();
        while let Some(done) = self.running.join_next().await {
            if let Ok((spec, result)) = done {
                if let Some(r) = worth_storing(result) {
                    let _ = self.c.archive.record_evaluation(evaluation_of(spec, &r));
                }
            }
        }
        if self.is_campaign() {
            self.state.elapsed_seconds = self.elapsed();
        }
        let _ = self.c.save_state(&self.state);
        e
    }

    async fn event_loop(&mut self) -> Result<Stop> {
        loop {
            if let Some(stop) = self.schedule()? {
                return Ok(stop);
            }
            let event = self.next_event().await;
            if let Some(stop) = self.handle_event(event)? {
                return Ok(stop);
            }
            self.housekeeping()?;
        }
    }

    /// Wall-clock seconds the campaign had run before this run.
    pub(super) fn spent_before(&self) -> f64 {
        self.state.elapsed_seconds
    }

    fn elapsed(&self) -> f64 {
        self.state.elapsed_seconds + self.started.elapsed().as_secs_f64()
    }

    /// Starts what can start; `Some` when the run is over.
    fn schedule(&mut self) -> Result<Option<Stop>> {
        if self.is_campaign() {
            if let Some(why) = over_budget(&self.c.config.budget, self.elapsed(), &self.spent) {
                return Ok(Some(Stop::Budget(why)));
            }
        }
        if *self.interrupt.borrow() {
            return Ok(Some(Stop::Interrupted));
        }
        self.dispatch()?;
        let has_parent = self.start_proposals()?;
        self.start_analysis()?;
        let idle = self.running.is_empty()
            && self.proposing.is_empty()
            && self.queue.is_empty()
            && self.analysing.is_empty();
        if !idle {
            return Ok(None);
        }
        Ok(Some(match self.purpose {
            Purpose::Baseline { target } if self.baseline_done < target => Stop::Proposer(format!(
                "random sampling found {} of {target} new designs in {} tries",
                self.baseline_done,
                self.made - self.first
            )),
            _ if self.exhausted => Stop::Exhausted(NOTHING_IN_A_ROW),
            _ if self.wants_more() && !has_parent => Stop::NoParent,
            _ => Stop::Finished,
        }))
    }

    /// Starts queued jobs on free workers. Under a compute budget a job is charged its timeout
    /// when it starts, and cut to what the budget has left, so the campaign's spend lands on
    /// its budget whatever the jobs' lengths (none starts once the budget is spoken for).
    fn dispatch(&mut self) -> Result<()> {
        while self.running.len() < self.c.evaluator.capacity() {
            let Some(&spec) = self.queue.front() else {
                break;
            };
            let reservation = self.reservation(self.c.config.job_timeout(spec.fidelity));
            if reservation.is_none() && self.compute_budget().is_some() {
                break;
            }
            self.queue.pop_front();
            let (job, mut limits) = jobs::job(&self.c.archive, &self.c.config, spec)?;
            if let Some(reservation) = reservation {
                limits.timeout = Duration::from_secs_f64(reservation.seconds);
                self.reserved.insert(spec, reservation);
            }
            let evaluator = self.c.evaluator.clone();
            let cancel = self.cancel.clone();
            self.running.spawn(async move {
                let result = evaluator.evaluate(job, limits, cancel).await;
                (spec, result)
            });
            self.running_since.insert(spec, Instant::now());
        }
        Ok(())
    }

    /// The compute budget, where a campaign has one (the random baseline is outside it).
    fn compute_budget(&self) -> Option<f64> {
        self.c
            .config
            .budget
            .max_compute_seconds
            .filter(|_| self.is_campaign())
    }

    /// What a job with this timeout may spend of the compute budget: its timeout, or what is
    /// left unreserved when that is less (the job is then cut at the end of the budget).
    /// `None` without a compute budget, or when too little is left to start a job.
    fn reservation(&self, timeout: f64) -> Option<Reservation> {
        let budget = self.compute_budget()?;
        let reserved: f64 = self.reserved.values().map(|r| r.seconds).sum();
        let left = budget - self.spent.compute - reserved;
        if left < compute_slack(budget) {
            return None;
        }
        Some(Reservation {
            seconds: left.min(timeout),
            cut: left < timeout,
        })
    }

    /// Whether the run wants more proposals than it has made and has in flight.
    fn wants_more(&self) -> bool {
        let in_flight = self.proposing.len() as u64;
        match self.purpose {
            Purpose::Campaign if self.exhausted => false,
            Purpose::Campaign => self
                .c
                .config
                .budget
                .max_candidates
                .is_none_or(|m| self.spent.candidates + in_flight < m),
            Purpose::Baseline { target } => {
                let pending = self.queue.len() + self.running.len() + self.proposing.len();
                let tries = self.made - self.first;
                self.baseline_done + pending < target && tries < BASELINE_TRIES * target as u64
            }
        }
    }

    /// Keeps one proposal per worker ready while workers train; `false` when the strategy
    /// has no parent to offer yet.
    fn start_proposals(&mut self) -> Result<bool> {
        let capacity = self.c.evaluator.capacity();
        while self.wants_more() && self.queue.len() + self.proposing.len() < capacity {
            let n = self.made;
            let mut rng = ChaCha8Rng::seed_from_u64(
                n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.c.config.search.seed,
            );
            let view = View {
                archive: &self.c.archive,
                seeds: &self.seeds,
                scored: &self.scored,
                random: &self.random,
            };
            let Some(selection) = self.strategy.select(&view, n, &mut rng)? else {
                return Ok(false);
            };
            self.made += 1;
            match self.purpose {
                Purpose::Campaign => self.state.proposals = self.made,
                Purpose::Baseline { .. } => {
                    self.state.baseline_proposals = self.made - BASELINE_NUMBERS
                }
            }
            self.emit(RunEvent::Selected {
                proposal: n,
                parent: selection.parent,
                inspirations: selection.inspirations.clone(),
            });
            let ctx = self.context(selection, n)?;
            self.spawn_proposal(n, ctx);
        }
        Ok(true)
    }

    fn context(&self, selection: Selection, n: u64) -> Result<ProposalContext> {
        let archive = &self.c.archive;
        let blind = selection.blind;
        let inspirations = selection
            .inspirations
            .iter()
            .map(|id| context::shown(archive, *id, blind))
            .collect::<Result<Vec<_>>>()?;
        Ok(ProposalContext {
            task: self.c.task.clone(),
            limits: self.c.config.limits(),
            parent: context::shown(archive, selection.parent, blind)?,
            inspirations,
            failures: if blind {
                Vec::new()
            } else {
                self.failures.iter().cloned().collect()
            },
            insights: if blind {
                Vec::new()
            } else {
                context::insights(archive)?
            },
            // The proposer's randomness follows the campaign seed too (seed 0: the number).
            seed: n ^ self
                .c
                .config
                .search
                .seed
                .wrapping_mul(0xD1B5_4A32_D192_ED03),
            checker: Checker::new(self.c.tracer.clone(), self.trace_config()),
            known: self.known.clone(),
            edits: selection.edits,
        })
    }

    /// Asks the proposer, then traces what it did not trace itself.
    fn spawn_proposal(&mut self, n: u64, ctx: ProposalContext) {
        let proposer = self.proposer.clone();
        let tracer = self.c.tracer.clone();
        let config = self.trace_config();
        self.proposing.spawn(async move {
            let kind = proposer.kind();
            let result = async {
                let mut p = proposer.propose(ctx).await?;
                if let Draft::Code(code) = &p.draft {
                    let outcome = tracer.trace(code, &config).await?;
                    p.draft = Draft::Traced {
                        code: code.clone(),
                        outcome,
                    };
                }
                Ok(p)
            }
            .await;
            (n, kind, result)
        });
    }

    /// Draws a lesson from the results every `analyze_every` short evaluations.
    fn start_analysis(&mut self) -> Result<()> {
        let every = u64::from(self.c.config.llm.analyze_every);
        let due = self.is_campaign()
            && !self.strategy.blind()
            && every > 0
            && self.analysing.is_empty()
            && !self.fell_back
            && self.spent.short >= self.state.analysed_at + every;
        if due {
            self.state.analysed_at = self.spent.short;
            let ctx = context::analysis(&self.c.archive, &self.c.task)?;
            let proposer = self.proposer.clone();
            self.analysing
                .spawn(async move { proposer.analyze(ctx).await });
        }
        Ok(())
    }

    /// Waits for the next thing to happen. The branches are polled in a fixed order (an
    /// interrupt first, then finished evaluations, which free workers), so that a run on a
    /// paused clock is reproducible.
    async fn next_event(&mut self) -> Event {
        let panicked = |e: tokio::task::JoinError| Event::Panicked(e.to_string());
        tokio::select! {
            biased;
            Ok(()) = self.interrupt.changed() => Event::Interrupted,
            Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                done.map_or_else(panicked, |(spec, r)| Event::Evaluated(spec, r))
            }
            Some(done) = self.proposing.join_next(), if !self.proposing.is_empty() => {
                done.map_or_else(panicked, |(n, kind, r)| Event::Proposed(n, kind, r))
            }
            Some(done) = self.analysing.join_next(), if !self.analysing.is_empty() => {
                done.map_or_else(panicked, Event::Analysed)
            }
            _ = self.tick.tick() => Event::Tick,
        }
    }

    fn handle_event(&mut self, event: Event) -> Result<Option<Stop>> {
        match event {
            Event::Evaluated(spec, result) => self.on_evaluated(spec, result),
            Event::Proposed(n, kind, result) => self.on_proposed(n, kind, result),
            Event::Analysed(result) => self.on_analysed(result),
            Event::Interrupted => Ok(Some(Stop::Interrupted)),
            Event::Tick => Ok(None),
            Event::Panicked(e) => Err(Error::Panicked(e)),
        }
    }

    fn on_evaluated(
        &mut self,
        spec: JobSpec,
        result: std::result::Result<EvalResult, MachineError>,
    ) -> Result<Option<Stop>> {
        if let Some(t) = self.running_since.remove(&spec) {
            self.busy_run += t.elapsed().as_secs_f64();
        }
        let reservation = self.reserved.remove(&spec);
        let r = match result {
            Err(MachineError::WorkerLost { message, took_job }) => {
                return self.requeue(spec, &message, took_job)
            }
            // Nothing is stored: the job is owed again, and runs when the machine is fixed.
            Err(e) => {
                tracing::error!(candidate = spec.candidate, "machine failure: {e}");
                return Ok(Some(Stop::Machine(e.explained())));
            }
            Ok(r) if r.status == Status::Cancelled => return Ok(None),
            Ok(r) if r.status == Status::Timeout && reservation.is_some_and(|r| r.cut) => {
                return self.cut_by_budget(spec, r.wall_seconds);
            }
            Ok(r) => r,
        };
        let evaluation = evaluation_of(spec, &r);
        let reason = evaluation.reason.clone();
        self.c.archive.record_evaluation(evaluation)?;
        self.spent.compute += r.wall_seconds;
        if r.status == Status::Ok {
            self.counters.evaluated += 1;
        } else {
            self.counters.failed += 1;
        }
        let score = score_of(&r.metrics);
        tracing::info!(candidate = spec.candidate, fidelity = spec.fidelity.0, seed = spec.seed,
            status = r.status.as_str(), score = ?score, wall = r.wall_seconds, "evaluated");
        let candidate = self.c.archive.candidate(spec.candidate)?;
        let name = candidate
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        self.emit(RunEvent::Evaluated {
            id: spec.candidate,
            name,
            fidelity: spec.fidelity,
            seed: spec.seed,
            status: r.status,
            score,
            message: r.message.clone(),
        });
        if let (Some(c), Some(reason)) = (candidate, reason) {
            let failure = Failure {
                name: c.name,
                code: c.code,
                reason,
            };
            remember(&mut self.failures, failure);
        }
        if spec.fidelity.is_short() {
            self.short_result(spec.candidate, r.status, score)?;
        }
        self.best = ranking::update_best(&self.c.archive, self.best.take(), spec.candidate)?;
        Ok(None)
    }

    /// A job stopped at the end of the compute budget: its time is spent (the campaign state
    /// keeps it, as no evaluation record carries it), and nothing is stored against the
    /// candidate, which stays owed.
    fn cut_by_budget(&mut self, spec: JobSpec, seconds: f64) -> Result<Option<Stop>> {
        self.spent.compute += seconds;
        self.state.cut_seconds += seconds;
        let line = format!(
            "the job of #{} (fidelity {}, seed {}) was stopped after {seconds:.1} s at the end of the compute budget; nothing is stored against it",
            spec.candidate, spec.fidelity, spec.seed
        );
        tracing::info!(candidate = spec.candidate, "{line}");
        self.c.archive.log_event(
            autoarch_archive::EventKind::Budget,
            &line,
            Some(spec.candidate),
        )?;
        self.emit(RunEvent::Note(line));
        self.save()?;
        Ok(None)
    }

    /// A job whose worker was lost goes back to the front of the queue, at most
    /// [`MAX_REQUEUES`] times after losses mid-job; then the run stops with the reason (the job
    /// stays owed, and nothing is stored against the candidate).
    fn requeue(&mut self, spec: JobSpec, message: &str, took_job: bool) -> Result<Option<Stop>> {
        let lost = self.requeued.entry(spec).or_insert(0);
        if took_job {
            *lost += 1;
        }
        let lost = *lost;
        tracing::warn!(candidate = spec.candidate, lost, "worker lost: {message}");
        if lost > MAX_REQUEUES {
            let reason = format!(
                "the job of candidate #{} (fidelity {}, seed {}) lost its worker {lost} times, the last: {message}; {}",
                spec.candidate,
                spec.fidelity,
                spec.seed,
                MachineError::WorkerLost {
                    message: String::new(),
                    took_job
                }
                .fix()
            );
            return Ok(Some(Stop::Machine(reason)));
        }
        let line = if took_job {
            format!(
                "{message}; the job of #{} goes back in the queue ({lost} of {MAX_REQUEUES})",
                spec.candidate
            )
        } else {
            format!(
                "{message}; the job of #{} goes back in the queue",
                spec.candidate
            )
        };
        self.c.archive.log_event(
            autoarch_archive::EventKind::Machine,
            &line,
            Some(spec.candidate),
        )?;
        self.emit(RunEvent::Note(line));
        self.queue.push_front(spec);
        Ok(None)
    }

    /// A short-budget result: counted, scored, and perhaps the occasion for promotions.
    fn short_result(&mut self, id: CandidateId, status: Status, score: Option<f64>) -> Result<()> {
        self.spent.short += 1;
        if !self.is_campaign() {
            self.baseline_done += 1;
            return Ok(());
        }
        let (Status::Ok, Some(score)) = (status, score) else {
            return Ok(());
        };
        self.scored.push((id, score));
        let view = View {
            archive: &self.c.archive,
            seeds: &self.seeds,
            scored: &self.scored,
            random: &self.random,
        };
        let promoted = self.strategy.promote(&view, &self.state.promoted);
        let e = &self.c.config.evaluation;
        for &id in &promoted {
            self.state.promoted.push(id);
            // Runs stored before a kill -9 that the saved state did not know of yet stay done.
            let done = self.c.archive.evaluations(id)?;
            self.queue.extend(
                JobSpec::promoted(id, e.promote_seeds)
                    .into_iter()
                    .filter(|j| {
                        !done
                            .iter()
                            .any(|d| d.fidelity == Fidelity::PROMOTED && d.seed == j.seed)
                    }),
            );
            self.c.archive.log_event(
                autoarch_archive::EventKind::Promotion,
                "promoted to the longer budget",
                Some(id),
            )?;
            tracing::info!(candidate = id, "promoted");
            self.emit(RunEvent::Promoted {
                id,
                runs: e.promote_seeds + 1,
                factor: e.promote_factor,
            });
        }
        if !promoted.is_empty() {
            self.save()?;
        }
        Ok(())
    }

    fn on_proposed(
        &mut self,
        n: u64,
        kind: ProposerKind,
        result: std::result::Result<Proposal, ProposeError>,
    ) -> Result<Option<Stop>> {
        match result {
            Ok(p) => {
                self.counters.nothing_in_a_row = 0;
                if self.store(n, p, kind)? {
                    self.counters.stale_in_a_row = 0;
                } else {
                    self.stale();
                }
                Ok(None)
            }
            Err(ProposeError::Machine { error, calls }) => {
                self.account_lost_calls(&calls)?;
                Ok(Some(Stop::Machine(error.explained())))
            }
            Err(e @ ProposeError::Unavailable(_)) => Ok(self.unavailable(kind, &e)?),
            Err(e) => {
                self.counters.nothing_in_a_row += 1;
                self.stale();
                tracing::info!(proposal = n, "no proposal: {e}");
                Ok(
                    (self.counters.nothing_in_a_row >= NOTHING_IN_A_ROW).then(|| {
                        Stop::Proposer(format!(
                            "{NOTHING_IN_A_ROW} proposals in a row gave nothing (last: {e})"
                        ))
                    }),
                )
            }
        }
    }

    /// A proposal that gave nothing new (a duplicate, or no proposal at all). After
    /// [`NOTHING_IN_A_ROW`] of them in a row the run stops proposing; what is queued and running
    /// still finishes (promotions included), and then the run ends as exhausted.
    fn stale(&mut self) {
        self.counters.stale_in_a_row += 1;
        if self.counters.stale_in_a_row >= NOTHING_IN_A_ROW && self.is_campaign() {
            self.exhausted = true;
        }
    }

    /// LLM calls of a proposal that the machine cut short: no candidate carries them, so the
    /// campaign record does (they count against the token and dollar budgets).
    fn account_lost_calls(&mut self, calls: &[autoarch_archive::LlmCall]) -> Result<()> {
        if calls.is_empty() {
            return Ok(());
        }
        let tokens: u64 = calls
            .iter()
            .map(|c| c.tokens.prompt + c.tokens.completion)
            .sum();
        let dollars: f64 = calls.iter().map(|c| c.cost_usd).sum();
        self.state.other_tokens += tokens;
        self.state.other_dollars += dollars;
        self.spent.tokens += tokens;
        self.spent.dollars += dollars;
        self.c.archive.log_event(
            autoarch_archive::EventKind::Proposer,
            &format!(
                "{} LLM calls ({tokens} tokens) of a proposal cut short by the machine",
                calls.len()
            ),
            None,
        )?;
        Ok(())
    }

    /// Stores a proposal and queues its evaluation when it is new; whether it gave anything: a
    /// new design, or an LLM's code that did not trace (a lesson for the repair prompts). A
    /// duplicate gives nothing, nor does a mutation that did not trace (no one learns from it:
    /// a random sampler in a small space makes such edits, and duplicates, forever).
    fn store(&mut self, n: u64, mut p: Proposal, kind: ProposerKind) -> Result<bool> {
        let notes = std::mem::take(&mut p.notes);
        let tags = match self.purpose {
            Purpose::Campaign => Vec::new(),
            Purpose::Baseline { .. } => {
                // The baseline keeps new designs only: a sample that does not trace or repeats
                // one is just another draw.
                if !self.is_new(&p)? {
                    // The baseline gives up on a small space on its own terms.
                    self.log_notes(&notes, None)?;
                    return Ok(true);
                }
                p.name = format!("random · {}", p.name);
                p.motivation = format!("Random sample (baseline): {}", p.motivation);
                vec![RANDOM_TAG.to_string()]
            }
        };
        let (tokens, dollars) = (p.tokens(), p.cost_usd());
        let (id, stored) =
            store_proposal(&self.c.archive, p, kind, tags, &self.c.config.task.name)?;
        if self.is_campaign() {
            self.spent.candidates += 1;
        }
        self.spent.tokens += tokens.prompt + tokens.completion;
        self.spent.dollars += dollars;
        let c = self
            .c
            .archive
            .candidate(id)?
            .ok_or(autoarch_archive::Error::UnknownCandidate(id))?;
        self.log_notes(&notes, Some(id))?;
        self.known.insert(&c.fingerprint);
        self.emit(RunEvent::Stored {
            id,
            proposal: n,
            name: c.name.clone(),
            stored,
        });
        match stored {
            Stored::Queued => {
                self.counters.traced += 1;
                self.queue.push_back(JobSpec::short(id));
                if !self.is_campaign() {
                    self.random.insert(id);
                }
            }
            Stored::Duplicate => {
                self.counters.traced += 1;
                self.counters.duplicates += 1;
            }
            Stored::Untraced => {
                self.counters.untraced += 1;
                let evaluations = self.c.archive.evaluations(id)?;
                let reason = evaluations.last().and_then(|e| e.reason.clone());
                let failure = Failure {
                    name: c.name,
                    code: c.code,
                    reason: reason.unwrap_or_default(),
                };
                remember(&mut self.failures, failure);
            }
        }
        Ok(match stored {
            Stored::Queued => true,
            Stored::Untraced => kind != ProposerKind::Mutation,
            Stored::Duplicate => false,
        })
    }

    /// A proposer's notes (e.g. a model switching how it answers): the archive's event log,
    /// the campaign log and the observer each get them.
    fn log_notes(&mut self, notes: &[String], id: Option<CandidateId>) -> Result<()> {
        for line in notes {
            self.c
                .archive
                .log_event(autoarch_archive::EventKind::Proposer, line, id)?;
            tracing::info!("{line}");
            self.emit(RunEvent::Note(line.clone()));
        }
        Ok(())
    }

    /// Whether a proposal traced into a design the archive does not hold yet.
    fn is_new(&self, p: &Proposal) -> Result<bool> {
        Ok(match &p.draft {
            Draft::Traced {
                outcome: autoarch_sandbox::TraceOutcome::Ok(t),
                ..
            } => self.c.archive.find_fingerprint(&t.fingerprint.0)?.is_none(),
            _ => false,
        })
    }

    /// The proposer is gone: hand over to the fallback once, else stop.
    fn unavailable(&mut self, kind: ProposerKind, e: &ProposeError) -> Result<Option<Stop>> {
        if self.fell_back && kind != ProposerKind::Mutation {
            // A call that was in flight when the fallback began.
            return Ok(None);
        }
        match (&self.c.fallback, self.fell_back) {
            (Some(fallback), false) => {
                self.fell_back = true;
                self.proposer = fallback.clone();
                let line = format!(
                    "{e}; going on with the {} proposer",
                    fallback.kind().as_str()
                );
                self.c
                    .archive
                    .log_event(autoarch_archive::EventKind::Proposer, &line, None)?;
                tracing::warn!("{line}");
                self.emit(RunEvent::Note(line));
                Ok(None)
            }
            _ => Ok(Some(Stop::Proposer(e.to_string()))),
        }
    }

    fn on_analysed(
        &mut self,
        result: std::result::Result<Option<Analysis>, ProposeError>,
    ) -> Result<Option<Stop>> {
        match result {
            Ok(Some(analysis)) => {
                let call = &analysis.call;
                self.spent.tokens += call.tokens.prompt + call.tokens.completion;
                self.spent.dollars += call.cost_usd;
                if let Some(text) =
                    context::store_analysis(&self.c.archive, analysis, &mut self.state)?
                {
                    self.emit(RunEvent::Insight(text));
                }
            }
            Ok(None) => {}
            Err(ProposeError::Machine { error, calls }) => {
                self.account_lost_calls(&calls)?;
                return Ok(Some(Stop::Machine(error.explained())));
            }
            // The proposals meet the same endpoint and stop or fall back.
            Err(e) => {
                self.c.archive.log_event(
                    autoarch_archive::EventKind::Analysis,
                    &e.to_string(),
                    None,
                )?;
            }
        }
        Ok(None)
    }

    /// Saves the state with the time spent so far (a campaign's; the baseline's counter).
    fn save(&mut self) -> Result<()> {
        let mut state = self.state.clone();
        if self.is_campaign() {
            state.elapsed_seconds = self.elapsed();
        }
        self.c.save_state(&state)?;
        self.last_save = Instant::now();
        Ok(())
    }

    /// Reports progress; saves the state every 5 s and the review snapshot every 30 s.
    fn housekeeping(&mut self) -> Result<()> {
        self.emit(RunEvent::Progress {
            running: self.running.len(),
            done: self.counters.evaluated,
            failed: self.counters.failed + self.counters.untraced,
            duplicates: self.counters.duplicates,
            best: self
                .best
                .as_ref()
                .map(|b| (b.candidate.id, b.summary.score().unwrap_or(f64::NAN))),
        });
        if self.last_save.elapsed() > Duration::from_secs(5) {
            self.save()?;
        }
        // Review commands read this snapshot while the campaign holds the archive.
        if self.last_snapshot.elapsed() > Duration::from_secs(30) {
            let _ = self.c.archive.write_snapshot();
            self.last_snapshot = Instant::now();
        }
        Ok(())
    }

    /// Stops the workers (what was running is owed and runs again on resume), saves the
    /// state, and sums the run up.
    async fn finish(mut self, stop: Stop) -> Result<RunSummary> {
        self.cancel.store(true, Ordering::SeqCst);
        while let Some(done) = self.running.join_next().await {
            let Ok((spec, result)) = done else { continue };
            if let Some(t) = self.running_since.remove(&spec) {
                self.busy_run += t.elapsed().as_secs_f64();
            }
            if let Some(r) = worth_storing(result) {
                self.c.archive.record_evaluation(evaluation_of(spec, &r))?;
            }
        }
        self.proposing.abort_all();
        self.analysing.abort_all();
        let run_seconds = self.started.elapsed().as_secs_f64();
        if self.is_campaign() {
            self.state.elapsed_seconds += run_seconds;
            self.state.busy_seconds += self.busy_run;
            self.state.capacity_seconds += run_seconds * self.c.evaluator.capacity() as f64;
            self.state.stopped = Some(stop.describe());
            self.c.save_state(&self.state)?;
        }
        self.c.archive.log_event(
            autoarch_archive::EventKind::Campaign,
            &stop.describe(),
            None,
        )?;
        let _ = self.c.archive.write_snapshot();
        let what = if self.is_campaign() {
            "campaign run"
        } else {
            "random baseline"
        };
        tracing::info!("{what} ended: {}", stop.describe());
        let (best, best_seed) = ranking::best_and_best_seed(&self.c.archive)?;
        Ok(RunSummary {
            stop,
            elapsed_seconds: self.state.elapsed_seconds,
            run_seconds,
            seeds: self.seeds.len(),
            proposals: self.spent.candidates,
            traced: self.counters.traced,
            untraced: self.counters.untraced,
            duplicates: self.counters.duplicates,
            evaluated: self.counters.evaluated,
            failed: self.counters.failed,
            promoted: self.state.promoted.len(),
            utilisation: self.state.utilisation(),
            best,
            best_seed,
        })
    }
}

/// A result worth storing after the stop: not cancelled, not a failure of the machine.
fn worth_storing(result: std::result::Result<EvalResult, MachineError>) -> Option<EvalResult> {
    result.ok().filter(|r| r.status != Status::Cancelled)
}
