//! Isolated worker processes.
//!
//! A worker (`autoarch worker`, any program that calls [`serve`]) reads [`WorkerRequest`]s as
//! JSON lines on stdin and answers each with progress lines and one result line on stdout, one
//! job at a time. The first exchange is a handshake ([`Hello`]: protocol, version, evaluator
//! features, host), so a worker built from another autoarch is refused before it takes a job.
//!
//! A local worker is started by the parent ([`Evaluator`]) in its own process group with an
//! address-space limit; the parent watches its resident memory and the job's wall clock, and
//! kills the whole group when either is exceeded. Every way a job can end is an [`EvalResult`]
//! with a [`Status`]; a dead worker is replaced at the next job. A worker that cannot evaluate
//! anything (no data, no device, a job it cannot read) answers [`WorkerMessage::Unavailable`]
//! instead, which the parent returns as a [`MachineError`]: never an outcome of the candidate.
//!
//! A remote worker ([`Placement::Remote`]: started through `srun`, `ssh` or any command that
//! carries stdin and stdout) cannot be watched from here, so it confines its own jobs: it is
//! `autoarch worker --supervise` ([`serve_supervised`]), which runs each job in a local worker of
//! its own under the job's limits, exactly as above, so `timeout`, `oom`, `crashed` and
//! `diverged` mean the same everywhere. The death of a remote worker itself (the launcher exits,
//! the node dies, the job is preempted) is then the machine's event, [`MachineError::WorkerLost`],
//! never the candidate's outcome.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoarch_sandbox::isolate::{
    confine, out_of_memory, piped, signal_group, wait_within, PipeTail,
};
use serde::{Deserialize, Serialize};

mod child;
mod evaluator;
mod protocol;
mod serve;

pub use evaluator::Evaluator;
pub use protocol::{Hello, WorkerMessage, WorkerRequest, PROTOCOL};
pub use serve::{serve, serve_supervised, FAULT_ENV};

use child::{exit_description, last_words, wrote, Sent, Worker};
use protocol::{protocol_stdout, read_request, write_message};

use crate::error::MachineError;
use crate::job::{run_job, EvalResult, Job, Status};
use crate::train::Progress;

/// How to start a worker: a program, its arguments (`autoarch worker`), extra environment and
/// where it runs.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub placement: Placement,
}

impl WorkerCommand {
    /// `BINARY worker` on this machine: the worker of `eval`, of a supervising worker's jobs,
    /// and of campaigns with the local launcher.
    pub fn local(binary: PathBuf) -> WorkerCommand {
        WorkerCommand {
            program: binary,
            args: vec!["worker".to_string()],
            env: Vec::new(),
            placement: Placement::Local,
        }
    }
}

/// Where a worker runs, which decides who confines its jobs.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Placement {
    /// On this machine: the parent limits its address space, watches its memory and clock,
    /// and a death mid-job is the job's outcome (`crashed`, `oom`).
    Local,
    /// Elsewhere, through a launcher that carries stdin and stdout (`srun`, `ssh`); the program
    /// is `autoarch worker --supervise`, which confines its jobs itself. A death of the program
    /// is a lost worker (the machine's event). `start_timeout` bounds the wait for its
    /// handshake (a scheduler may queue it first).
    Remote { start_timeout: Duration },
}

impl Placement {
    fn is_remote(self) -> bool {
        matches!(self, Placement::Remote { .. })
    }

    fn start_timeout(self) -> Duration {
        match self {
            Placement::Local => LOCAL_START_TIMEOUT,
            Placement::Remote { start_timeout } => start_timeout,
        }
    }
}

/// How long a local worker may take to answer the handshake.
const LOCAL_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a remote worker may be silent past its job's timeout (its supervisor enforces the
/// timeout; this is the backstop for a worker that stopped answering) before it counts as lost.
const REMOTE_GRACE: Duration = Duration::from_secs(60);

/// How long a remote worker gets to exit after its stdin closes, and after SIGTERM, before it
/// is killed: time for `srun` to end its Slurm job rather than leave it behind.
const REMOTE_STOP_WAIT: Duration = Duration::from_secs(3);

/// Per-job limits: the parent enforces them on a local worker, a supervising worker on its own.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct JobLimits {
    /// Wall-clock limit for the whole job (tracing, loading, training, scoring).
    pub timeout: Duration,
    /// Resident memory limit of the worker process.
    pub memory_mb: u64,
}

impl Default for JobLimits {
    fn default() -> JobLimits {
        JobLimits {
            timeout: Duration::from_secs(600),
            memory_mb: 4096,
        }
    }
}

/// Address space allowed beyond the RSS limit: thread stacks, allocator arenas and mapped
/// libraries are reserved but not resident. The RSS watch is the real limit; this is the
/// backstop for allocations faster than the watch.
const ADDRESS_SPACE_SLACK_MB: u64 = 2048;

/// How often the parent checks the clock and the worker's memory.
const POLL: Duration = Duration::from_millis(50);

/// Bytes of the worker's stderr kept for crash reports.
const STDERR_KEEP: usize = 8 * 1024;
