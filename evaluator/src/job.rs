//! Jobs and results: what the parent sends a worker and what comes back. Every failure of the
//! candidate is an outcome ([`Status`]); a failure of the machine is a [`MachineError`].

use std::collections::BTreeMap;
use std::time::Instant;

use autoarch_sandbox::{trace, Diagnostic, Limits, TraceConfig, TraceOutcome};
use serde::{Deserialize, Serialize};

use crate::error::{MachineError, TrainError};
use crate::task::{Task, TaskConfig};
use crate::train::{self, Latency, Progress, TrainConfig};

/// One evaluation: architecture code, the task and how to train.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Chosen by the caller; echoed in the result.
    #[serde(default)]
    pub id: String,
    pub code: String,
    pub task: TaskConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// Tracing limits (parameters, FLOPs, ...).
    #[serde(default)]
    pub limits: Limits,
}

/// How an evaluation ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Trained and scored.
    Ok,
    /// The code does not trace (diagnostics say why), or the evaluator cannot run its graph.
    Invalid,
    /// The loss went non-finite or diverged; training stopped early.
    Diverged,
    /// The job ran past its wall-clock timeout; its worker was killed.
    Timeout,
    /// The job went over its memory limit; its worker was killed.
    Oom,
    /// The worker died (panic, abort, signal); `stderr_tail` holds its last words.
    Crashed,
    /// The caller stopped the job (e.g. the campaign was interrupted); says nothing about the
    /// candidate, so it is not an outcome to record.
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Invalid => "invalid",
            Status::Diverged => "diverged",
            Status::Timeout => "timeout",
            Status::Oom => "oom",
            Status::Crashed => "crashed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// The result of a job.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct EvalResult {
    #[serde(default)]
    pub id: String,
    pub status: Status,
    /// Why the job did not end `ok`, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// `val_loss`, and `val_accuracy` / `val_bpc` / `val_mse` as the task defines.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub params: u64,
    #[serde(default)]
    pub flops: u64,
    #[serde(default)]
    pub steps: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// Training samples per second.
    #[serde(default)]
    pub throughput: f64,
    #[serde(default)]
    pub train_seconds: f64,
    #[serde(default)]
    pub wall_seconds: f64,
    #[serde(default)]
    pub peak_rss_mb: f64,
    /// (step, training loss), downsampled.
    #[serde(default)]
    pub curve: Vec<[f64; 2]>,
    /// The backend that trained the candidate.
    #[serde(default)]
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

impl EvalResult {
    /// A result with only a status and a message (failures found before or around training).
    pub fn failed(id: &str, status: Status, message: impl Into<String>) -> EvalResult {
        EvalResult {
            id: id.to_string(),
            status,
            message: Some(message.into()),
            diagnostics: Vec::new(),
            fingerprint: None,
            metrics: BTreeMap::new(),
            params: 0,
            flops: 0,
            steps: 0,
            latency_ms: None,
            throughput: 0.0,
            train_seconds: 0.0,
            wall_seconds: 0.0,
            peak_rss_mb: 0.0,
            curve: Vec::new(),
            device: String::new(),
            stderr_tail: None,
        }
    }
}

/// Peak resident memory of this process since the last [`reset_peak_rss`], in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the kernel's peak-RSS mark so the next reading covers one job (Linux ≥ 4.0).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs a job in this process: load the task, find the device, trace, train, score. Used by the
/// worker; runs untrusted code, so call it only inside an isolated process.
///
/// `Ok` is what the candidate did, failures included. `Err` is a failure of the machine (no data,
/// no device, a malformed job) that says nothing about the candidate.
pub fn run_job(
    job: &Job,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<EvalResult, MachineError> {
    let start = Instant::now();
    reset_peak_rss();
    let id = job.id.as_str();
    let task = Task::load(&job.task, job.train.seed)?;
    let device = train::training_device()?;
    let config = TraceConfig {
        task: task.shape.clone(),
        limits: job.limits.clone(),
    };
    let traced = match trace(&job.code, &config) {
        TraceOutcome::Ok(t) => t,
        TraceOutcome::Invalid { diagnostics } => {
            let mut r = EvalResult::failed(id, Status::Invalid, "the code does not trace");
            r.diagnostics = diagnostics;
            return Ok(r);
        }
    };
    let mut result = EvalResult::failed(id, Status::Ok, "");
    result.message = None;
    result.fingerprint = Some(traced.fingerprint.0.clone());
    result.params = traced.stats.params;
    result.flops = traced.stats.flops;
    result.device = format!("{device:?}");
    match train::train(&traced, &task, &job.train, &device, on_progress) {
        Ok(t) => {
            result.status = if t.diverged.is_some() {
                Status::Diverged
            } else {
                Status::Ok
            };
            result.message = t.diverged;
            result.metrics = t.metrics;
            result.steps = t.steps;
            result.latency_ms = t.latency_ms;
            result.throughput = t.throughput;
            result.train_seconds = t.train_seconds;
            result.curve = t.curve;
        }
        Err(TrainError::Graph(e)) => {
            result.status = Status::Invalid;
            result.message = Some(e.to_string());
        }
        Err(TrainError::Config(e)) => return Err(MachineError::Job(e)),
    }
    // JSON has no NaN or inf: the message already says where the loss stopped being finite.
    result.curve.retain(|[_, loss]| loss.is_finite());
    result.metrics.retain(|_, v| v.is_finite());
    result.wall_seconds = start.elapsed().as_secs_f64();
    result.peak_rss_mb = peak_rss_mb();
    Ok(result)
}
