//! The campaign's IO boundary: evaluating jobs and tracing code. Each is a trait with the real
//! implementation — worker processes ([`ProcessPool`]) and the isolated trace child
//! ([`IsolatedTracer`]) — and an in-process one in [`testing`], so that the loop's policy is
//! tested in process, in milliseconds.
//!
//! A [`MachineError`] says the machine cannot evaluate or trace anything (no data, no device, no
//! worker, no trace child). It is never a candidate's outcome: the campaign stops and names the
//! cause and the fix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use autoarch_evaluator::{EvalResult, Evaluator, Job, JobLimits, WorkerCommand};
use autoarch_sandbox::isolate::{trace_isolated, ChildCommand};
use autoarch_sandbox::{TraceConfig, TraceOutcome};

/// The machine cannot evaluate or trace anything until someone fixes it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MachineError {
    #[error(transparent)]
    Evaluate(#[from] autoarch_evaluator::MachineError),
    /// The trace child could not start, or answered something that is not a trace.
    #[error("the tracer failed: {0}")]
    Trace(String),
}

impl MachineError {
    /// What to do about it, in a sentence.
    pub fn fix(&self) -> &'static str {
        match self {
            MachineError::Evaluate(e) => e.fix(),
            MachineError::Trace(_) => {
                "check that the autoarch binary can start its trace process here, then run the same command again"
            }
        }
    }

    /// The cause and the fix, for messages.
    pub fn explained(&self) -> String {
        format!("{self}; {}", self.fix())
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

/// Worker processes (`autoarch worker`), each running one job at a time with its limits.
pub struct ProcessPool {
    command: WorkerCommand,
    capacity: usize,
    idle: Mutex<Vec<Evaluator>>,
}

impl ProcessPool {
    pub fn new(command: WorkerCommand, capacity: usize) -> ProcessPool {
        ProcessPool {
            command,
            capacity: capacity.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Evaluate for ProcessPool {
    fn capacity(&self) -> usize {
        self.capacity
    }

    async fn evaluate(
        &self,
        job: Job,
        limits: JobLimits,
        cancel: CancelFlag,
    ) -> Result<EvalResult, MachineError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut evaluator = idle.unwrap_or_else(|| Evaluator::new(self.command.clone()));
        evaluator.set_cancel(cancel);
        let (evaluator, result) = tokio::task::spawn_blocking(move || {
            let r = evaluator.evaluate(&job, limits, &mut |_| {});
            (evaluator, r)
        })
        .await
        .map_err(|e| {
            MachineError::Evaluate(autoarch_evaluator::MachineError::Protocol(format!(
                "the thread waiting on a worker failed: {e}"
            )))
        })?;
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(evaluator);
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

        /// The machine cannot evaluate.
        pub fn machine(e: autoarch_evaluator::MachineError) -> Scripted {
            Scripted {
                result: Err(MachineError::Evaluate(e)),
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
            _limits: JobLimits,
            cancel: CancelFlag,
        ) -> Result<EvalResult, MachineError> {
            self.jobs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(job.clone());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            let scripted = (self.script)(&job);
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
