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

mod evaluations;
mod policy;
mod proposer;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use autoarch_archive::{CandidateId, EventKind, Listed, ProposerKind};
use autoarch_evaluator::EvalResult;
use autoarch_sandbox::TraceConfig;
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval};

use super::admit::{admit, Admitted, Design};
use super::context;
use super::jobs::{self, evaluation_of, JobSpec};
use super::state::{over_budget, Spent, State};
use super::{ranking, Campaign, Error, Result, RunEvent, RunSummary, Stop};
use crate::machine::{CancelFlag, MachineError};
use crate::propose::{Analysis, Failure, Known, Proposal, ProposeError, Proposer};
use crate::search::Strategy;
use evaluations::{worth_storing, Reservation};
use policy::Progress;
pub(super) use policy::Purpose;
use proposer::{View, NOTHING_IN_A_ROW};

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
        let purpose = self.purpose;
        let listed = archive.list()?;
        let random: BTreeSet<CandidateId> = listed
            .iter()
            .filter(|l| ranking::is_random(l))
            .map(|l| l.candidate.id)
            .collect();
        let extra_seeds = self.c.config.evaluation.promote_seeds;
        self.queue = jobs::owed(archive, &self.state.promoted, extra_seeds)?
            .into_iter()
            .filter(|j| purpose.owns(random.contains(&j.candidate)))
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
        if purpose.learns() {
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
        self.made = purpose.next_number(&self.state);
        self.first = self.made;
        Ok(())
    }

    /// Runs until a budget, the end of the work, an interrupt or a failure of the machine.
    pub(super) async fn run(mut self, before: Option<Stop>) -> Result<RunSummary> {
        let stop = match before {
            Some(stop) => stop,
            None => {
                self.resume()?;
                let bar = self.purpose.total(&self.c.config, self.seeds.len());
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
        if self.purpose.keeps_the_clock() {
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
        if self.purpose.budgeted() {
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
        let progress = self.progress();
        Ok(Some(match self.purpose.short_of_target(progress) {
            Some(stop) => stop,
            None if self.exhausted => Stop::Exhausted(NOTHING_IN_A_ROW),
            None if self.wants_more() && !has_parent => Stop::NoParent,
            None => Stop::Finished,
        }))
    }

    /// How far the run has got, for the questions its purpose answers.
    fn progress(&self) -> Progress {
        Progress {
            tries: self.made - self.first,
            in_flight: self.proposing.len() as u64,
            pending_jobs: (self.queue.len() + self.running.len()) as u64,
            candidates: self.spent.candidates,
            baseline_done: self.baseline_done,
            exhausted: self.exhausted,
        }
    }

    /// Whether the run wants more proposals than it has made and has in flight.
    fn wants_more(&self) -> bool {
        self.purpose.wants_more(&self.c.config, self.progress())
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

    /// Saves the state with the time spent so far (a campaign's; the baseline's counter).
    fn save(&mut self) -> Result<()> {
        let mut state = self.state.clone();
        if self.purpose.keeps_the_clock() {
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
        if self.purpose.keeps_the_clock() {
            self.state.elapsed_seconds += run_seconds;
            self.state.busy_seconds += self.busy_run;
            self.state.capacity_seconds += run_seconds * self.c.evaluator.capacity() as f64;
            self.state.stopped = Some(stop.describe());
            self.c.save_state(&self.state)?;
        }
        self.c
            .archive
            .log_event(EventKind::Campaign, &stop.describe(), None)?;
        let _ = self.c.archive.write_snapshot();
        let what = self.purpose.describe();
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
