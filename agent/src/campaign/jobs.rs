//! Evaluation jobs: what is owed (derived from the archive), how a job is built, and the
//! evaluation record of a result.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use autoarch_archive::{Archive, CandidateId, NewEvaluation, Outcome};
use autoarch_evaluator::{EvalResult, Job, JobLimits, Status};
use autoarch_sandbox::render_all;

use super::{Error, Result};
use crate::config::CampaignConfig;
use autoarch_archive::Fidelity;

/// One evaluation to run: a candidate at a fidelity (short or promoted) with a seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobSpec {
    pub candidate: CandidateId,
    pub fidelity: Fidelity,
    pub seed: u64,
}

impl JobSpec {
    pub fn short(candidate: CandidateId) -> JobSpec {
        JobSpec {
            candidate,
            fidelity: Fidelity::SHORT,
            seed: 0,
        }
    }

    /// The runs of a promoted candidate: seeds 0..=`extra_seeds` at the promoted fidelity.
    pub fn promoted(candidate: CandidateId, extra_seeds: u32) -> Vec<JobSpec> {
        (0..=u64::from(extra_seeds))
            .map(|seed| JobSpec {
                candidate,
                fidelity: Fidelity::PROMOTED,
                seed,
            })
            .collect()
    }
}

/// The jobs the archive says are owed: traced, distinct candidates without an evaluation, and
/// the missing runs of promoted candidates. So a stopped or killed run loses at most the work
/// in flight, and nothing is evaluated twice.
pub fn owed(
    archive: &Archive,
    promoted: &[CandidateId],
    extra_seeds: u32,
) -> Result<VecDeque<JobSpec>> {
    let mut jobs = VecDeque::new();
    for listed in archive.list()? {
        let c = &listed.candidate;
        let evaluable = c.duplicate_of.is_none() && c.traced();
        if evaluable && listed.summary.evaluations == 0 {
            jobs.push_back(JobSpec::short(c.id));
        }
    }
    for &id in promoted {
        let done: BTreeSet<u64> = archive
            .evaluations(id)?
            .iter()
            .filter(|e| e.fidelity == Fidelity::PROMOTED)
            .map(|e| e.seed)
            .collect();
        jobs.extend(
            JobSpec::promoted(id, extra_seeds)
                .into_iter()
                .filter(|j| !done.contains(&j.seed)),
        );
    }
    Ok(jobs)
}

/// The job and limits of a spec.
pub fn job(archive: &Archive, config: &CampaignConfig, spec: JobSpec) -> Result<(Job, JobLimits)> {
    let c = archive.candidate(spec.candidate)?.ok_or(Error::Archive(
        autoarch_archive::Error::UnknownCandidate(spec.candidate),
    ))?;
    Ok((
        Job {
            id: format!("{}/{}/{}", spec.candidate, spec.fidelity, spec.seed),
            code: c.code,
            task: config.task.clone(),
            train: config.train_config(spec.fidelity, spec.seed),
            limits: config.limits(),
        },
        JobLimits {
            timeout: Duration::from_secs_f64(config.job_timeout(spec.fidelity)),
            memory_mb: config.evaluation.memory_limit_mb,
        },
    ))
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

/// Why a result is not `ok`: its message, diagnostics and the worker's last words.
fn reason(r: &EvalResult) -> Option<String> {
    (r.status != Status::Ok).then(|| {
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
    })
}

/// The evaluation record of a worker result.
pub fn evaluation_of(spec: JobSpec, r: &EvalResult) -> NewEvaluation {
    let mut timings = BTreeMap::from([
        ("wall_seconds".to_string(), r.wall_seconds),
        ("train_seconds".to_string(), r.train_seconds),
        ("steps".to_string(), r.steps as f64),
        ("throughput".to_string(), r.throughput),
        ("peak_rss_mb".to_string(), r.peak_rss_mb),
    ]);
    if let Some(l) = &r.latency_ms {
        timings.insert("latency_ms_batch_1".to_string(), l.batch_1);
        timings.insert("latency_ms_training_batch".to_string(), l.training_batch);
    }
    timings.retain(|_, v| v.is_finite());
    NewEvaluation {
        candidate: spec.candidate,
        fidelity: spec.fidelity,
        seed: spec.seed,
        outcome: outcome(r.status),
        reason: reason(r),
        metrics: r.metrics.clone(),
        curve: r.curve.iter().map(|[s, l]| (*s as u64, *l)).collect(),
        timings,
    }
}

/// The score of a result (higher is better), when it has a finite one.
pub fn score_of(metrics: &BTreeMap<String, f64>) -> Option<f64> {
    metrics.get("score").copied().filter(|s| s.is_finite())
}
