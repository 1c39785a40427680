//! What can go wrong around an evaluation, sorted by whose fault it is.
//!
//! A candidate's own failures (code that does not trace, a graph the evaluator cannot run, a
//! loss that diverges, a job that runs out of time or memory) are outcomes: an [`EvalResult`]
//! with a [`Status`](crate::Status). Everything here that is not a [`GraphError`] is a failure of
//! the machine or the campaign's setup — data that is missing, a device that is not there, a
//! worker that cannot start or speaks another protocol. Those say nothing about the candidate,
//! so they are never stored against it: [`MachineError`] stops the campaign with the cause and
//! the fix, and the same command resumes once it is fixed.
//!
//! [`EvalResult`]: crate::EvalResult

use serde::{Deserialize, Serialize};

/// The evaluator cannot build or run a traced graph (the candidate's `invalid` outcome).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GraphError(pub String);

/// A task cannot be loaded. Never about a candidate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskError {
    /// The task's data is not where it was looked for.
    #[error("{0}")]
    Missing(String),
    /// The data is there but cannot be read, or is not what the task expects.
    #[error("{0}")]
    Data(String),
    /// The task's options are invalid or do not apply, or no such task exists.
    #[error("{0}")]
    Options(String),
}

/// The training device cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceError {
    /// `AUTOARCH_DEVICE` names no device this tool knows.
    #[error("AUTOARCH_DEVICE={0}: use cpu or gpu")]
    Unknown(String),
    /// A GPU was asked for, but this build has no GPU backend.
    #[error("AUTOARCH_DEVICE=gpu needs a build with `--features gpu`")]
    NotBuilt,
    /// The GPU backend is built in but the machine offers no working device.
    #[error("AUTOARCH_DEVICE=gpu, but no GPU answered: {0}")]
    Unavailable(String),
}

/// Why training could not start.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// The training settings are invalid (the job's fault, not the candidate's).
    #[error("training config: {0}")]
    Config(String),
    /// The graph cannot be compiled (the candidate's fault).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// The machine cannot evaluate anything until someone fixes it. Travels over the worker
/// protocol, so it holds text rather than OS error values.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineError {
    #[error("the task cannot be loaded: {0}")]
    Task(TaskError),
    #[error("the training device is not available: {0}")]
    Device(DeviceError),
    /// The job itself is malformed (its settings, or a line that is not a job).
    #[error("the worker refused the job: {0}")]
    Job(String),
    #[error("could not start a worker ({program}): {message}")]
    WorkerStart { program: String, message: String },
    /// The worker wrote something that is not a message (another version of autoarch?).
    #[error("the worker broke the protocol: {0}")]
    Protocol(String),
    /// The worker is not the same autoarch as the campaign.
    #[error("the worker was refused: this campaign runs {ours}, the worker is {theirs}")]
    Handshake { ours: String, theirs: String },
    /// A remote worker was lost — while it ran the job (`took_job`: its launcher exited, the
    /// node died, the job was preempted), or before it could take it — and the pool goes on
    /// with the workers it has: the job did not end and goes back in the queue. Never the
    /// candidate's outcome, and not a reason to stop by itself.
    #[error("a worker was lost: {message}")]
    WorkerLost { message: String, took_job: bool },
    /// The trace child could not start, or answered something that is not a trace.
    #[error("the tracer failed: {0}")]
    Trace(String),
}

impl MachineError {
    /// What to do about it, in a sentence.
    pub fn fix(&self) -> &'static str {
        match self {
            MachineError::Task(TaskError::Missing(_)) => {
                "put the data back (or pass --data PATH), then run the same command again"
            }
            MachineError::Task(_) => "fix the task's data or options, then run the same command again",
            MachineError::Device(DeviceError::NotBuilt) => {
                "unset AUTOARCH_DEVICE (or set it to cpu), or rebuild with `--features gpu`, then run the same command again"
            }
            MachineError::Device(DeviceError::Unavailable(_)) => {
                "check the GPU driver (or unset AUTOARCH_DEVICE to train on the CPU), then run the same command again"
            }
            MachineError::Device(DeviceError::Unknown(_)) => {
                "set AUTOARCH_DEVICE to cpu or gpu, then run the same command again"
            }
            MachineError::Job(_) | MachineError::Protocol(_) => {
                "make sure every worker runs this same autoarch binary, then run the same command again"
            }
            MachineError::WorkerStart { .. } => {
                "check that the worker program exists and can run on this machine, then run the same command again"
            }
            MachineError::Handshake { .. } => {
                "put this same autoarch build on every node that runs workers, then run the same command again"
            }
            MachineError::WorkerLost { .. } => {
                "check the nodes and the launcher (srun, ssh), then run the same command again"
            }
            MachineError::Trace(_) => {
                "check that the autoarch binary can start its trace process here, then run the same command again"
            }
        }
    }
}

impl MachineError {
    /// The cause and the fix, for messages.
    pub fn explained(&self) -> String {
        format!("{self}; {}", self.fix())
    }
}

impl From<TaskError> for MachineError {
    fn from(e: TaskError) -> MachineError {
        MachineError::Task(e)
    }
}

impl From<DeviceError> for MachineError {
    fn from(e: DeviceError) -> MachineError {
        MachineError::Device(e)
    }
}
