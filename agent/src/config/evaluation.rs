//! `[budget]` and `[evaluation]`: when a campaign stops, and how and where its candidates train
//! (steps, timeouts, promotion, the launcher and Slurm).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{bad, positive, Checked};

/// Limits on the whole campaign; the first one reached stops it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Proposals stored (traced or not, duplicates included); seeds do not count.
    pub max_candidates: Option<u64>,
    /// Wall-clock seconds the campaign runs, summed over resumes.
    pub max_seconds: Option<f64>,
    /// LLM tokens (prompt + completion).
    pub max_tokens: Option<u64>,
    pub max_dollars: Option<f64>,
    /// Seconds of evaluation (worker wall time), summed over jobs.
    pub max_compute_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Worker processes training at once.
    pub workers: usize,
    /// The short (fidelity 0) training budget in steps...
    pub steps: Option<u64>,
    /// ...or in seconds.
    pub seconds: Option<f64>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub memory_limit_mb: u64,
    pub timeout_seconds: f64,
    /// The share of candidates (by short-budget score) re-trained with the longer budget.
    pub promote_fraction: f64,
    /// Extra seeds a promoted candidate is trained with (besides the first).
    pub promote_seeds: u32,
    /// The longer budget as a multiple of the short one.
    pub promote_factor: f64,
    /// The largest candidate in parameters: a proposal over it does not trace (a diagnostic
    /// says so), so that no design wins by growing. No cap by default beyond the tracer's own.
    pub max_params: Option<u64>,
    /// Where the workers run.
    pub launcher: Launcher,
    /// With `launcher = "command"`: the argv prefix that runs `autoarch worker` somewhere and
    /// carries its stdin and stdout (`["ssh", "gpu-node-3", "autoarch", "worker"]`); the
    /// campaign appends `--supervise`.
    pub command: Vec<String>,
    /// How long a remote worker may take to start and answer the handshake (a scheduler may
    /// queue it first); past it, the start failed.
    pub start_timeout_seconds: f64,
    /// With `launcher = "slurm"`: how `srun` asks for each worker.
    pub slurm: SlurmConfig,
}

/// Where the workers run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launcher {
    /// Worker processes on this machine.
    #[default]
    Local,
    /// Each worker a Slurm job step, started with `srun`.
    Slurm,
    /// Each worker started by `[evaluation] command`.
    Command,
}

impl Launcher {
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Local => "local",
            Launcher::Slurm => "slurm",
            Launcher::Command => "command",
        }
    }

    /// The most workers a campaign may ask for: a machine's worth locally, a cluster's elsewhere.
    pub fn max_workers(self) -> usize {
        match self {
            Launcher::Local => 64,
            Launcher::Slurm | Launcher::Command => 256,
        }
    }
}

/// What `srun` asks Slurm for, per worker (each worker is one job with one task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// The `srun` program.
    pub srun: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// The time limit of each worker's job (`--time`, e.g. "04:00:00").
    pub time: Option<String>,
    /// Memory per worker (`--mem`); by default the job's memory limit + 2.5 GiB, so that the
    /// node's own cap on a job (its limit + 2 GiB of address space) is reached first.
    pub mem_mb: Option<u64>,
    pub cpus_per_task: Option<u32>,
    /// Generic resources, e.g. "gpu:1".
    pub gres: Option<String>,
    /// The autoarch binary's path on the nodes; by default this binary's own path (a shared
    /// file system).
    pub binary: Option<PathBuf>,
    /// More `srun` arguments, as given (`["--qos=normal", "--constraint=a100"]`).
    pub extra_args: Vec<String>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            srun: "srun".to_string(),
            partition: None,
            account: None,
            time: None,
            mem_mb: None,
            cpus_per_task: None,
            gres: None,
            binary: None,
            extra_args: Vec::new(),
        }
    }
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            workers: 2,
            steps: None,
            seconds: None,
            batch_size: None,
            learning_rate: None,
            memory_limit_mb: 4096,
            timeout_seconds: 600.0,
            promote_fraction: 0.25,
            promote_seeds: 1,
            promote_factor: 3.0,
            max_params: None,
            launcher: Launcher::Local,
            command: Vec::new(),
            start_timeout_seconds: 300.0,
            slurm: SlurmConfig::default(),
        }
    }
}

impl BudgetConfig {
    /// The budgets.
    pub(super) fn check(&self) -> Checked {
        let b = self;
        if b.max_candidates == Some(0) {
            return bad("budget.max_candidates", "must be at least 1");
        }
        if b.max_tokens == Some(0) {
            return bad("budget.max_tokens", "must be at least 1");
        }
        for (key, v) in [
            ("budget.max_seconds", b.max_seconds),
            ("budget.max_dollars", b.max_dollars),
            ("budget.max_compute_seconds", b.max_compute_seconds),
        ] {
            if !positive(v) {
                return bad(key, "must be a positive number");
            }
        }
        Ok(())
    }
}

impl EvaluationConfig {
    /// The evaluation settings and the launcher.
    pub(super) fn check(&self) -> Checked {
        let e = self;
        let most = e.launcher.max_workers();
        if !(1..=most).contains(&e.workers) {
            return bad(
                "evaluation.workers",
                &format!(
                    "must be between 1 and {most} with launcher = \"{}\"",
                    e.launcher.as_str()
                ),
            );
        }
        if e.steps.is_some() && e.seconds.is_some() {
            return bad(
                "evaluation.steps",
                "and `evaluation.seconds` are both set: give one training budget",
            );
        }
        if e.steps == Some(0) {
            return bad("evaluation.steps", "must be at least 1");
        }
        for (key, v) in [
            ("evaluation.seconds", e.seconds),
            ("evaluation.learning_rate", e.learning_rate),
            ("evaluation.timeout_seconds", Some(e.timeout_seconds)),
        ] {
            if !positive(v) {
                return bad(key, "must be a positive number");
            }
        }
        if e.batch_size == Some(0) {
            return bad("evaluation.batch_size", "must be at least 1");
        }
        if e.memory_limit_mb < 64 {
            return bad("evaluation.memory_limit_mb", "must be at least 64");
        }
        if !(e.promote_fraction.is_finite() && (0.0..=1.0).contains(&e.promote_fraction)) {
            return bad("evaluation.promote_fraction", "must be between 0 and 1");
        }
        if !(e.promote_factor.is_finite() && e.promote_factor >= 1.0) {
            return bad("evaluation.promote_factor", "must be at least 1");
        }
        if e.promote_seeds > 16 {
            return bad("evaluation.promote_seeds", "must be at most 16");
        }
        if e.max_params == Some(0) {
            return bad("evaluation.max_params", "must be at least 1");
        }
        self.check_launcher()
    }

    /// The launcher and what it needs.
    fn check_launcher(&self) -> Checked {
        let e = self;
        if !(positive(Some(e.start_timeout_seconds)) && e.start_timeout_seconds <= 604_800.0) {
            return bad(
                "evaluation.start_timeout_seconds",
                "must be a positive number of seconds, at most a week",
            );
        }
        match e.launcher {
            Launcher::Command if e.command.first().is_none_or(|p| p.trim().is_empty()) => bad(
                "evaluation.command",
                "must name the program that starts a worker, e.g. [\"ssh\", \"node-1\", \"autoarch\", \"worker\"]",
            ),
            Launcher::Local | Launcher::Slurm if !e.command.is_empty() => bad(
                "evaluation.command",
                "is only used with launcher = \"command\"",
            ),
            _ if e.slurm != SlurmConfig::default() && e.launcher != Launcher::Slurm => bad(
                "evaluation.slurm",
                "is only used with launcher = \"slurm\"",
            ),
            _ if e.slurm.srun.trim().is_empty() => {
                bad("evaluation.slurm.srun", "must name the srun program")
            }
            _ if e.slurm.mem_mb.is_some_and(|m| m < 64) => {
                bad("evaluation.slurm.mem_mb", "must be at least 64")
            }
            _ if e.slurm.cpus_per_task == Some(0) => {
                bad("evaluation.slurm.cpus_per_task", "must be at least 1")
            }
            _ => Ok(()),
        }
    }
}
