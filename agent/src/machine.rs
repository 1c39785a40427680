//! The campaign's IO boundary: evaluating jobs and tracing code. Each is a trait with the real
//! implementation — worker processes ([`ProcessPool`]) and the isolated trace child
//! ([`IsolatedTracer`]) — and an in-process one in [`testing`], so that the loop's policy is
//! tested in process, in milliseconds.
//!
//! A [`MachineError`] says the machine cannot evaluate or trace anything (no data, no device, no
//! worker, no trace child). It is never a candidate's outcome: the campaign stops and names the
//! cause and the fix.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use autoarch_evaluator::{EvalResult, Evaluator, Job, JobLimits, Placement, WorkerCommand};
use autoarch_sandbox::isolate::{trace_isolated, ChildCommand};
use autoarch_sandbox::{TraceConfig, TraceOutcome};

use crate::config::{EvaluationConfig, Launcher};

/// The machine cannot evaluate or trace anything until someone fixes it, or a worker was lost:
/// the evaluator's error, which the trace child's failures join.
pub use autoarch_evaluator::MachineError;

/// The autoarch binary that workers and the trace child are started from.
#[derive(Clone, Debug)]
pub struct Binary {
    /// Workers run `EXE worker` (through the campaign's launcher).
    pub exe: PathBuf,
    /// The trace child: this binary's hidden trace command.
    pub trace_child: ChildCommand,
}

impl Binary {
    /// Worker processes for `config`'s `[evaluation]` (its launcher and workers), named after
    /// `campaign`.
    pub fn workers(&self, config: &EvaluationConfig, campaign: &str) -> ProcessPool {
        ProcessPool::new(worker_command(config, campaign, &self.exe), config.workers)
    }

    /// One worker of this binary on this machine (`EXE worker`), as `autoarch eval` and a
    /// supervising remote worker run their jobs.
    pub fn local_worker(&self) -> WorkerCommand {
        WorkerCommand::local(self.exe.clone())
    }

    /// The tracer that runs code in the trace child.
    pub fn tracer(&self) -> IsolatedTracer {
        IsolatedTracer {
            child: self.trace_child.clone(),
        }
    }
}

/// A flag that stops a run's jobs: set it and running jobs end as cancelled.
pub type CancelFlag = Arc<AtomicBool>;

/// Runs evaluation jobs.
#[async_trait]
pub trait Evaluate: Send + Sync {
    /// How many jobs may run at once.
    fn capacity(&self) -> usize;

    /// Runs one job. `Ok` holds what the candidate did, failures included; `Err` means the
    /// machine cannot evaluate anything. Once `cancel` is set the job ends as
    /// [`Status::Cancelled`](autoarch_evaluator::Status::Cancelled).
    async fn evaluate(
        &self,
        job: Job,
        limits: JobLimits,
        cancel: CancelFlag,
    ) -> Result<EvalResult, MachineError>;
}

/// Traces code under a configuration's limits.
#[async_trait]
pub trait Trace: Send + Sync {
    /// `Ok` holds the graph or the diagnostics; `Err` means the tracer itself failed.
    async fn trace(&self, code: &str, config: &TraceConfig) -> Result<TraceOutcome, MachineError>;
}

/// How each worker is started, for a campaign's `[evaluation]`: this binary's `worker` here;
/// `srun … BINARY worker --supervise` on Slurm; the configured command and `--supervise`.
pub fn worker_command(e: &EvaluationConfig, campaign: &str, exe: &Path) -> WorkerCommand {
    let remote = Placement::Remote {
        start_timeout: Duration::from_secs_f64(e.start_timeout_seconds),
    };
    let supervise = ["worker".to_string(), "--supervise".to_string()];
    match e.launcher {
        Launcher::Local => WorkerCommand::local(exe.to_path_buf()),
        Launcher::Command => WorkerCommand {
            program: e.command[0].clone().into(),
            args: e.command[1..]
                .iter()
                .cloned()
                .chain(["--supervise".to_string()])
                .collect(),
            env: Vec::new(),
            placement: remote,
        },
        Launcher::Slurm => {
            let s = &e.slurm;
            let mut args = vec![
                format!("--job-name={}", slurm_job_name(campaign)),
                "--nodes=1".to_string(),
                "--ntasks=1".to_string(),
                "--kill-on-bad-exit=1".to_string(),
                format!(
                    "--mem={}",
                    s.mem_mb
                        .unwrap_or(e.memory_limit_mb + SLURM_MEMORY_SLACK_MB)
                ),
            ];
            let optional = [
                ("--cpus-per-task", s.cpus_per_task.map(|c| c.to_string())),
                ("--time", s.time.clone()),
                ("--partition", s.partition.clone()),
                ("--account", s.account.clone()),
                ("--gres", s.gres.clone()),
            ];
            args.extend(
                optional
                    .into_iter()
                    .filter_map(|(flag, v)| v.map(|v| format!("{flag}={v}"))),
            );
            args.extend(s.extra_args.iter().cloned());
            let binary = s.binary.as_deref().unwrap_or(exe);
            args.push(binary.display().to_string());
            args.extend(supervise);
            WorkerCommand {
                program: s.srun.clone().into(),
                args,
                env: Vec::new(),
                placement: remote,
            }
        }
    }
}

/// What a worker's Slurm job gets beyond the job's memory limit by default. A job's address
/// space is capped at its limit + 2 GiB on the node (an allocation past it fails, the `oom`
/// outcome), and the supervising worker needs a little: so the job's cgroup, when the site
/// enforces one, never kills the step first (which would lose the worker, not score the job).
pub const SLURM_MEMORY_SLACK_MB: u64 = 2560;

/// The Slurm job name of a campaign's workers (`squeue -n` finds them): `autoarch-` and the
/// campaign's name, with anything but letters, digits, `-`, `_` and `.` as `-`.
pub fn slurm_job_name(campaign: &str) -> String {
    let name: String = campaign
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("autoarch-{name}")
}

/// Starts a remote worker again after a failed start: this many more times, waiting
/// `backoff(n)` before the n-th.
const START_RETRIES: u32 = 3;

/// The wait before a worker is started again after `failures` failures in a row: 1, 2, 4 …
/// seconds, at most 30.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

/// One worker of the pool and how often it failed in a row.
struct Slot {
    evaluator: Evaluator,
    failures: u32,
}

/// Worker processes (`autoarch worker`), each running one job at a time with its limits.
///
/// Local workers are the pool's own children, and their failures are the job's outcomes or the
/// machine's. A remote worker that is lost mid-job is started again
/// after a backoff, and the job is handed back ([`MachineError::WorkerLost`]) for the loop to queue
/// again; a remote worker that cannot be started after [`START_RETRIES`] more tries is given up,
/// and the pool goes on with the others. When none is left, the pool fails with the cause.
pub struct ProcessPool {
    command: WorkerCommand,
    capacity: usize,
    idle: Mutex<Vec<Slot>>,
    /// Slots given up (remote workers that could not be started).
    dead: AtomicUsize,
}

impl ProcessPool {
    pub fn new(command: WorkerCommand, capacity: usize) -> ProcessPool {
        ProcessPool {
            command,
            capacity: capacity.max(1),
            idle: Mutex::new(Vec::new()),
            dead: AtomicUsize::new(0),
        }
    }

    fn remote(&self) -> bool {
        matches!(self.command.placement, Placement::Remote { .. })
    }

    fn put_back(&self, slot: Slot) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
    }

    /// What a remote slot's outcome means for the pool and the job.
    fn settle(
        &self,
        mut slot: Slot,
        result: Result<EvalResult, MachineError>,
    ) -> Result<EvalResult, MachineError> {
        use MachineError as E;
        match result {
            Err(e @ E::WorkerLost { .. }) => {
                slot.failures += 1;
                self.put_back(slot);
                Err(e)
            }
            Err(e @ E::WorkerStart { .. }) => {
                let dead = self.dead.fetch_add(1, Ordering::SeqCst) + 1;
                let left = self.capacity.saturating_sub(dead);
                if left == 0 {
                    return Err(e);
                }
                Err(MachineError::WorkerLost {
                    message: format!(
                        "{e} ({} tries); going on with {left} worker{}",
                        START_RETRIES + 1,
                        if left == 1 { "" } else { "s" }
                    ),
                    took_job: false,
                })
            }
            other => {
                slot.failures = if other.is_ok() { 0 } else { slot.failures };
                self.put_back(slot);
                Ok(other?)
            }
        }
    }
}

/// Sleeps, ending early once `cancel` is set; whether it slept the whole time.
fn pause(duration: Duration, cancel: &CancelFlag) -> bool {
    let until = std::time::Instant::now() + duration;
    while std::time::Instant::now() < until {
        if is_set(cancel) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Runs a job on a remote slot: after a backoff when it failed last time, and with a few
/// more starts when the worker cannot be started.
fn run_remote(
    slot: &mut Slot,
    job: &Job,
    limits: JobLimits,
    cancel: &CancelFlag,
) -> Result<EvalResult, MachineError> {
    if slot.failures > 0 {
        pause(backoff(slot.failures), cancel);
    }
    let mut tries = 0;
    loop {
        match slot.evaluator.evaluate(job, limits, &mut |_| {}) {
            Err(MachineError::WorkerStart { .. })
                if tries < START_RETRIES && pause(backoff(tries + 1), cancel) =>
            {
                tries += 1;
                tracing::warn!(
                    job = job.id,
                    tries,
                    "a worker could not be started; trying again"
                );
            }
            r => return r,
        }
    }
}

impl Drop for ProcessPool {
    /// Remote workers are told to finish all at once (their stdin closes), then each is waited
    /// for: the pool stops in the time of the slowest, not the sum of them.
    fn drop(&mut self) {
        let mut idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        for slot in &mut idle {
            slot.evaluator.close();
        }
        drop(idle);
    }
}

#[async_trait]
impl Evaluate for ProcessPool {
    fn capacity(&self) -> usize {
        self.capacity
            .saturating_sub(self.dead.load(Ordering::SeqCst))
            .max(1)
    }

    async fn evaluate(
        &self,
        job: Job,
        limits: JobLimits,
        cancel: CancelFlag,
    ) -> Result<EvalResult, MachineError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut slot = idle.unwrap_or_else(|| Slot {
            evaluator: Evaluator::new(self.command.clone()),
            failures: 0,
        });
        slot.evaluator.set_cancel(cancel.clone());
        let remote = self.remote();
        let (slot, result) = tokio::task::spawn_blocking(move || {
            let r = if remote {
                run_remote(&mut slot, &job, limits, &cancel)
            } else {
                slot.evaluator.evaluate(&job, limits, &mut |_| {})
            };
            (slot, r)
        })
        .await
        .map_err(|e| {
            MachineError::Protocol(format!("the thread waiting on a worker failed: {e}"))
        })?;
        if remote {
            return self.settle(slot, result);
        }
        self.put_back(slot);
        Ok(result?)
    }
}

/// Traces in a child process with OS limits (`autoarch __trace-child`): the only way
/// untrusted code is traced.
pub struct IsolatedTracer {
    pub child: ChildCommand,
}

#[async_trait]
impl Trace for IsolatedTracer {
    async fn trace(&self, code: &str, config: &TraceConfig) -> Result<TraceOutcome, MachineError> {
        let (code, config, child) = (code.to_string(), config.clone(), self.child.clone());
        tokio::task::spawn_blocking(move || trace_isolated(&code, &config, &child))
            .await
            .map_err(|e| MachineError::Trace(e.to_string()))?
            .map_err(|e| MachineError::Trace(e.to_string()))
    }
}

/// Whether a flag is set.
pub fn is_set(flag: &CancelFlag) -> bool {
    flag.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SlurmConfig;

    #[test]
    fn each_launcher_starts_the_worker_it_should() {
        let exe = Path::new("/opt/autoarch/bin/autoarch");
        let mut e = EvaluationConfig::default();
        let local = worker_command(&e, "c", exe);
        assert_eq!(local.program, exe);
        assert_eq!(local.args, ["worker"]);
        assert_eq!(local.placement, Placement::Local);

        e.launcher = Launcher::Command;
        e.command = ["ssh", "gpu-3", "autoarch", "worker"]
            .map(String::from)
            .to_vec();
        e.start_timeout_seconds = 90.0;
        let ssh = worker_command(&e, "c", exe);
        assert_eq!(ssh.program, Path::new("ssh"));
        assert_eq!(ssh.args, ["gpu-3", "autoarch", "worker", "--supervise"]);
        assert_eq!(
            ssh.placement,
            Placement::Remote {
                start_timeout: Duration::from_secs(90)
            }
        );

        e.launcher = Launcher::Slurm;
        e.command.clear();
        e.memory_limit_mb = 2048;
        let srun = worker_command(&e, "my campaign/1", exe);
        assert_eq!(srun.program, Path::new("srun"));
        assert_eq!(
            srun.args,
            [
                "--job-name=autoarch-my-campaign-1",
                "--nodes=1",
                "--ntasks=1",
                "--kill-on-bad-exit=1",
                "--mem=4608",
                "/opt/autoarch/bin/autoarch",
                "worker",
                "--supervise"
            ]
        );
        e.slurm = SlurmConfig {
            srun: "/usr/local/bin/srun".into(),
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            time: Some("04:00:00".into()),
            mem_mb: Some(16000),
            cpus_per_task: Some(8),
            gres: Some("gpu:1".into()),
            binary: Some("/shared/autoarch".into()),
            extra_args: vec!["--qos=high".into()],
        };
        let srun = worker_command(&e, "c", exe);
        assert_eq!(srun.program, Path::new("/usr/local/bin/srun"));
        assert_eq!(
            srun.args,
            [
                "--job-name=autoarch-c",
                "--nodes=1",
                "--ntasks=1",
                "--kill-on-bad-exit=1",
                "--mem=16000",
                "--cpus-per-task=8",
                "--time=04:00:00",
                "--partition=gpu",
                "--account=lab",
                "--gres=gpu:1",
                "--qos=high",
                "/shared/autoarch",
                "worker",
                "--supervise"
            ]
        );
    }

    #[test]
    fn restarts_back_off_to_half_a_minute() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}

/// In-process stand-ins for the machine: for tests (and embedders that trust their code).
pub mod testing {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use autoarch_evaluator::{EvalResult, Job, JobLimits, Status};
    use autoarch_sandbox::{trace, TraceConfig, TraceOutcome};

    use super::{is_set, CancelFlag, Evaluate, MachineError, Trace};

    /// Traces in this process. Only for trusted code: no memory or CPU limit applies.
    pub struct InProcessTracer;

    #[async_trait]
    impl Trace for InProcessTracer {
        async fn trace(
            &self,
            code: &str,
            config: &TraceConfig,
        ) -> Result<TraceOutcome, MachineError> {
            Ok(trace(code, config))
        }
    }

    /// What a scripted job returns, after how many (tokio) seconds.
    pub struct Scripted {
        pub result: Result<EvalResult, MachineError>,
        pub seconds: f64,
    }

    impl Scripted {
        /// A successful evaluation with this score (and `val_loss = 1 − score`).
        pub fn ok(score: f64, seconds: f64) -> Scripted {
            let mut r = EvalResult::failed("", Status::Ok, "");
            r.message = None;
            r.metrics = BTreeMap::from([
                ("score".to_string(), score),
                ("val_accuracy".to_string(), score),
                ("val_loss".to_string(), 1.0 - score),
            ]);
            r.steps = 1;
            r.curve = vec![[1.0, 2.0], [2.0, 1.0 - score]];
            r.wall_seconds = seconds;
            Scripted {
                result: Ok(r),
                seconds,
            }
        }

        /// A failed evaluation with this status and message.
        pub fn failed(status: Status, message: &str, seconds: f64) -> Scripted {
            let mut r = EvalResult::failed("", status, message);
            r.wall_seconds = seconds;
            Scripted {
                result: Ok(r),
                seconds,
            }
        }

        /// The worker was lost (mid-job when `took_job`): the pool hands the job back.
        pub fn lost(message: &str, took_job: bool, seconds: f64) -> Scripted {
            Scripted {
                result: Err(MachineError::WorkerLost {
                    message: message.to_string(),
                    took_job,
                }),
                seconds,
            }
        }

        /// The machine cannot evaluate.
        pub fn machine(e: MachineError) -> Scripted {
            Scripted {
                result: Err(e),
                seconds: 0.0,
            }
        }
    }

    type Script = Box<dyn Fn(&Job) -> Scripted + Send + Sync>;

    /// Answers jobs from a script after the scripted time, in tokio time (a paused clock makes
    /// the run take no real time). Records every job it was given.
    pub struct ScriptedEvaluator {
        capacity: usize,
        script: Script,
        jobs: Mutex<Vec<Job>>,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    impl ScriptedEvaluator {
        pub fn new(
            capacity: usize,
            script: impl Fn(&Job) -> Scripted + Send + Sync + 'static,
        ) -> ScriptedEvaluator {
            ScriptedEvaluator {
                capacity,
                script: Box::new(script),
                jobs: Mutex::new(Vec::new()),
                running: AtomicUsize::new(0),
                most_running: AtomicUsize::new(0),
            }
        }

        /// Every job started, in order.
        pub fn jobs(&self) -> Vec<Job> {
            self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        /// The most jobs that ran at once.
        pub fn most_running(&self) -> usize {
            self.most_running.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Evaluate for ScriptedEvaluator {
        fn capacity(&self) -> usize {
            self.capacity
        }

        async fn evaluate(
            &self,
            job: Job,
            limits: JobLimits,
            cancel: CancelFlag,
        ) -> Result<EvalResult, MachineError> {
            self.jobs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(job.clone());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            let mut scripted = (self.script)(&job);
            // Past its timeout a job is stopped, as a worker stops it.
            let timeout = limits.timeout.as_secs_f64();
            if scripted.seconds > timeout {
                scripted = Scripted::failed(
                    Status::Timeout,
                    &format!("the job did not finish within its {timeout:.1} s timeout"),
                    timeout,
                );
            }
            let mut left = scripted.seconds;
            let mut cancelled = false;
            while left > 0.0 {
                if is_set(&cancel) {
                    cancelled = true;
                    break;
                }
                let slice = left.min(0.05);
                tokio::time::sleep(Duration::from_secs_f64(slice)).await;
                left -= slice;
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            if cancelled || is_set(&cancel) {
                return Ok(EvalResult::failed(
                    &job.id,
                    Status::Cancelled,
                    "the job was cancelled",
                ));
            }
            scripted.result.map(|mut r| {
                r.id = job.id.clone();
                r
            })
        }
    }
}
