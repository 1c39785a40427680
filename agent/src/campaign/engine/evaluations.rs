//! The engine's evaluations: starting queued jobs on free workers under the compute budget,
//! storing what they give, and what a lost worker, a job cut at the budget's end and a
//! short-budget result (promotions) mean for the run.

use std::time::Duration;

use autoarch_archive::{CandidateId, EventKind, Fidelity};
use autoarch_evaluator::{EvalResult, Status};
use tokio::time::Instant;

use super::{Engine, Result, Stop, View};
use crate::campaign::context::remember;
use crate::campaign::jobs::{self, evaluation_of, score_of, JobSpec};
use crate::campaign::state::compute_slack;
use crate::campaign::{ranking, RunEvent};
use crate::machine::MachineError;
use crate::propose::Failure;

/// A job is queued again at most this many times after its worker was lost mid-job.
const MAX_REQUEUES: u32 = 3;

/// What a running job may spend of the compute budget.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reservation {
    seconds: f64,
    /// Less than the job's own timeout: a timeout is the budget's end, not the candidate's.
    cut: bool,
}

/// A result worth storing after the stop: not cancelled, not a failure of the machine.
pub(super) fn worth_storing(
    result: std::result::Result<EvalResult, MachineError>,
) -> Option<EvalResult> {
    result.ok().filter(|r| r.status != Status::Cancelled)
}

impl Engine<'_> {
    /// Starts queued jobs on free workers. Under a compute budget a job is charged its timeout
    /// when it starts, and cut to what the budget has left, so the campaign's spend lands on
    /// its budget whatever the jobs' lengths (none starts once the budget is spoken for).
    pub(super) fn dispatch(&mut self) -> Result<()> {
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
    pub(super) fn compute_budget(&self) -> Option<f64> {
        self.c
            .config
            .budget
            .max_compute_seconds
            .filter(|_| self.purpose.budgeted())
    }

    /// What a job with this timeout may spend of the compute budget: its timeout, or what is
    /// left unreserved when that is less (the job is then cut at the end of the budget).
    /// `None` without a compute budget, or when too little is left to start a job.
    pub(super) fn reservation(&self, timeout: f64) -> Option<Reservation> {
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

    pub(super) fn on_evaluated(
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
    pub(super) fn cut_by_budget(&mut self, spec: JobSpec, seconds: f64) -> Result<Option<Stop>> {
        self.spent.compute += seconds;
        self.state.cut_seconds += seconds;
        let line = format!(
            "the job of #{} (fidelity {}, seed {}) was stopped after {seconds:.1} s at the end of the compute budget; nothing is stored against it",
            spec.candidate, spec.fidelity, spec.seed
        );
        tracing::info!(candidate = spec.candidate, "{line}");
        self.c
            .archive
            .log_event(EventKind::Budget, &line, Some(spec.candidate))?;
        self.emit(RunEvent::Note(line));
        self.save()?;
        Ok(None)
    }

    /// A job whose worker was lost goes back to the front of the queue, at most
    /// [`MAX_REQUEUES`] times after losses mid-job; then the run stops with the reason (the job
    /// stays owed, and nothing is stored against the candidate).
    pub(super) fn requeue(
        &mut self,
        spec: JobSpec,
        message: &str,
        took_job: bool,
    ) -> Result<Option<Stop>> {
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
        self.c
            .archive
            .log_event(EventKind::Machine, &line, Some(spec.candidate))?;
        self.emit(RunEvent::Note(line));
        self.queue.push_front(spec);
        Ok(None)
    }

    /// A short-budget result: counted, scored, and perhaps the occasion for promotions.
    pub(super) fn short_result(
        &mut self,
        id: CandidateId,
        status: Status,
        score: Option<f64>,
    ) -> Result<()> {
        self.spent.short += 1;
        if !self.purpose.learns() {
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
                EventKind::Promotion,
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
}
