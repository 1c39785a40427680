//! Isolated worker processes.
//!
//! A worker (`autoarch worker`, any program that calls [`serve`]) reads [`Job`]s as JSON lines on
//! stdin and answers each with progress lines and one result line on stdout, one job at a time.
//! The parent ([`Evaluator`]) starts it in its own process group with an address-space limit,
//! watches its resident memory and the job's wall clock, and kills the whole group when either
//! is exceeded. Every way a job can end is an [`EvalResult`] with a [`Status`]; a dead worker is
//! replaced at the next job. A worker that cannot evaluate anything (no data, no device, a job it
//! cannot read) answers [`WorkerMessage::Unavailable`] instead, which the parent returns as a
//! [`MachineError`]: never an outcome of the candidate.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use autoarch_sandbox::isolate::confine;
use serde::{Deserialize, Serialize};

use crate::error::MachineError;
use crate::job::{run_job, EvalResult, Job, Status};
use crate::train::Progress;

/// One line a worker writes.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerMessage {
    Progress(Progress),
    Result(Box<EvalResult>),
    /// The machine cannot run the job (nor any other) until someone fixes it.
    Unavailable(MachineError),
}

/// The environment variable that makes a worker fail on purpose, for fault tests:
/// `panic:ID` panics at the start of the job with id `ID`, `abort:ID` aborts the process there.
pub const FAULT_ENV: &str = "AUTOARCH_WORKER_FAULT";

/// Fails on purpose when [`FAULT_ENV`] names this job.
fn injected_fault(job: &Job) {
    let Ok(spec) = std::env::var(FAULT_ENV) else {
        return;
    };
    match spec.split_once(':') {
        Some(("panic", id)) if id == job.id => panic!("injected fault ({FAULT_ENV}={spec})"),
        Some(("abort", id)) if id == job.id => std::process::abort(),
        _ => {}
    }
}

/// A worker outlives its parent only until the next check: when the parent dies (even by
/// kill -9, which no cleanup code sees), the worker is re-parented and exits, mid-job or not.
fn watch_parent() {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(250));
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            std::process::exit(3);
        }
    });
}

/// The worker side: serve jobs from stdin until it closes.
///
/// Anything a library prints to stdout would corrupt the protocol, so the protocol gets a
/// private copy of stdout and fd 1 is pointed at stderr.
pub fn serve() -> std::io::Result<()> {
    // SAFETY: dup/dup2 on this process's own standard descriptors; the new fd is owned by the
    // File below and by nothing else.
    let mut out = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        File::from_raw_fd(fd)
    };
    watch_parent();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Job>(&line) {
            Ok(job) => {
                injected_fault(&job);
                let mut send_progress = |p: Progress| {
                    let msg = WorkerMessage::Progress(p);
                    if let Ok(mut s) = serde_json::to_string(&msg) {
                        s.push('\n');
                        let _ = out.write_all(s.as_bytes());
                        let _ = out.flush();
                    }
                };
                match run_job(&job, &mut send_progress) {
                    Ok(result) => WorkerMessage::Result(Box::new(result)),
                    Err(e) => WorkerMessage::Unavailable(e),
                }
            }
            Err(e) => WorkerMessage::Unavailable(MachineError::Job(format!("not a job: {e}"))),
        };
        let mut s = serde_json::to_string(&answer).map_err(std::io::Error::other)?;
        s.push('\n');
        out.write_all(s.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

/// How to start a worker: a program, its arguments (`autoarch worker`) and extra environment.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Per-job limits the parent enforces.
#[derive(Clone, Copy, PartialEq, Debug)]
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

struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    memory_mb: u64,
}

impl Worker {
    fn spawn(command: &WorkerCommand, memory_mb: u64) -> std::io::Result<Worker> {
        let address_space = (memory_mb + ADDRESS_SPACE_SLACK_MB).saturating_mul(1024 * 1024);
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        confine(&mut cmd, address_space, None);
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let keep = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut k = keep.lock().unwrap_or_else(|e| e.into_inner());
                k.extend(&buf[..n]);
                let excess = k.len().saturating_sub(STDERR_KEEP);
                k.drain(..excess);
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines,
            stderr,
            stderr_thread: Some(stderr_thread),
            memory_mb,
        })
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Kills the worker's whole process group and reaps it.
    fn kill(mut self) -> (Option<std::process::ExitStatus>, String) {
        // SAFETY: kill(2) on the worker's own process group (ESRCH if already gone).
        unsafe {
            libc::kill(-self.pid(), libc::SIGKILL);
        }
        let status = self.child.wait().ok();
        (status, self.stderr_tail())
    }

    fn stderr_tail(&mut self) -> String {
        if let Some(t) = self.stderr_thread.take() {
            // The pipe closes when the group is gone; don't wait on a grandchild holding it.
            let deadline = Instant::now() + Duration::from_millis(500);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let k = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: Vec<u8> = k.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: as in `kill`.
        unsafe {
            libc::kill(-self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Runs jobs in a worker process, replacing it whenever it dies or is killed.
pub struct Evaluator {
    command: WorkerCommand,
    worker: Option<Worker>,
    cancel: Option<Arc<AtomicBool>>,
}

fn looks_like_oom(stderr: &str) -> bool {
    stderr.contains("memory allocation of")
        || stderr.contains("out of memory")
        || stderr.contains("OutOfMemory")
        || stderr.contains("capacity overflow")
}

impl Evaluator {
    pub fn new(command: WorkerCommand) -> Evaluator {
        Evaluator {
            command,
            worker: None,
            cancel: None,
        }
    }

    /// A flag that, once set, stops the running job within a poll interval: its worker is
    /// killed and the result is [`Status::Cancelled`]. Jobs started while it is set are
    /// cancelled at once.
    pub fn set_cancel(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// The pid of the current worker, if one is running.
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.as_ref().map(|w| w.child.id())
    }

    /// Runs one job. Problems with the job's code or its worker (a crash, a timeout, too much
    /// memory) are outcomes in the `Ok` result; `Err` means the machine cannot evaluate
    /// anything (the worker cannot start, has no data or device, or speaks another protocol).
    pub fn evaluate(
        &mut self,
        job: &Job,
        limits: JobLimits,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<EvalResult, MachineError> {
        let start = Instant::now();
        let mut result = self.evaluate_inner(job, limits, on_progress)?;
        if result.wall_seconds == 0.0 {
            result.wall_seconds = start.elapsed().as_secs_f64();
        }
        result.id = job.id.clone();
        Ok(result)
    }

    fn evaluate_inner(
        &mut self,
        job: &Job,
        limits: JobLimits,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<EvalResult, MachineError> {
        let id = job.id.as_str();
        if self.cancelled() {
            return Ok(EvalResult::failed(
                id,
                Status::Cancelled,
                "the job was cancelled",
            ));
        }
        let mut line = serde_json::to_string(job).map_err(|e| MachineError::Job(e.to_string()))?;
        line.push('\n');
        if self
            .worker
            .as_ref()
            .is_some_and(|w| w.memory_mb != limits.memory_mb)
        {
            self.worker = None;
        }
        self.send(&line, limits.memory_mb)?;
        self.wait(id, limits, on_progress)
    }

    /// Hands the job to a worker. A worker that died between jobs shows up as a failed write:
    /// a fresh one is started once; one that cannot take a job either is the machine's fault.
    fn send(&mut self, line: &str, memory_mb: u64) -> Result<(), MachineError> {
        let program = self.command.program.display().to_string();
        for _ in 0..2 {
            if self.worker.is_none() {
                let w = Worker::spawn(&self.command, memory_mb).map_err(|e| {
                    MachineError::WorkerStart {
                        program: program.clone(),
                        message: e.to_string(),
                    }
                })?;
                self.worker = Some(w);
            }
            let w = self.worker.as_mut().expect("just started");
            if w.stdin
                .write_all(line.as_bytes())
                .and_then(|_| w.stdin.flush())
                .is_ok()
            {
                return Ok(());
            }
            self.worker = None;
        }
        Err(MachineError::WorkerStart {
            program,
            message: "the worker exited before it took a job".into(),
        })
    }

    /// Reads the worker's answer, enforcing the limits and the cancel flag.
    fn wait(
        &mut self,
        id: &str,
        limits: JobLimits,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<EvalResult, MachineError> {
        let deadline = Instant::now() + limits.timeout;
        loop {
            let w = self.worker.as_mut().expect("running");
            match w.lines.recv_timeout(POLL) {
                Ok(line) => match serde_json::from_str::<WorkerMessage>(&line) {
                    Ok(WorkerMessage::Progress(p)) => on_progress(p),
                    Ok(WorkerMessage::Result(r)) => return Ok(*r),
                    Ok(WorkerMessage::Unavailable(e)) => return Err(e),
                    Err(e) => return self.garbage(id, limits, &line, &e.to_string()),
                },
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(stopped) = self.check_limits(id, limits, deadline) {
                        return Ok(stopped);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(self.died(id, limits)),
            }
        }
    }

    /// A line that is not a message: the tail of a worker that died mid-write (a crash), or a
    /// worker that speaks another protocol (the machine's fault).
    fn garbage(
        &mut self,
        id: &str,
        limits: JobLimits,
        line: &str,
        error: &str,
    ) -> Result<EvalResult, MachineError> {
        std::thread::sleep(Duration::from_millis(100));
        let w = self.worker.as_mut().expect("running");
        let exited = matches!(w.child.try_wait(), Ok(Some(_)));
        if exited {
            return Ok(self.died(id, limits));
        }
        self.worker.take().expect("running").kill();
        let line: String = line.chars().take(200).collect();
        Err(MachineError::Protocol(format!(
            "it wrote something that is not a message ({error}): {line}"
        )))
    }

    /// Between lines: stops the job when it is cancelled, over its memory, or past its time.
    fn check_limits(
        &mut self,
        id: &str,
        limits: JobLimits,
        deadline: Instant,
    ) -> Option<EvalResult> {
        if self.cancelled() {
            self.worker.take().expect("running").kill();
            return Some(EvalResult::failed(
                id,
                Status::Cancelled,
                "the job was cancelled",
            ));
        }
        let rss = self.worker.as_ref().expect("running").rss_mb();
        if rss > limits.memory_mb as f64 {
            let (_, tail) = self.worker.take().expect("running").kill();
            let mut r = EvalResult::failed(
                id,
                Status::Oom,
                format!(
                    "the job used {rss:.0} MiB, over its {} MiB memory limit, and was stopped",
                    limits.memory_mb
                ),
            );
            r.peak_rss_mb = rss;
            r.stderr_tail = Some(tail).filter(|t| !t.is_empty());
            return Some(r);
        }
        if Instant::now() >= deadline {
            let (_, tail) = self.worker.take().expect("running").kill();
            let mut r = EvalResult::failed(
                id,
                Status::Timeout,
                format!(
                    "the job did not finish within its {:.1} s timeout and was stopped",
                    limits.timeout.as_secs_f64()
                ),
            );
            r.stderr_tail = Some(tail).filter(|t| !t.is_empty());
            return Some(r);
        }
        None
    }

    /// The worker died mid-job: a crash, or out of memory when its last words say so.
    fn died(&mut self, id: &str, limits: JobLimits) -> EvalResult {
        let (status, tail) = self.worker.take().expect("running").kill();
        let how = status.map_or("an unknown status".to_string(), |s| match s.signal() {
            Some(sig) => format!("signal {sig}"),
            None => format!("exit status {}", s.code().unwrap_or(-1)),
        });
        let (status, message) = if looks_like_oom(&tail) {
            (
                Status::Oom,
                format!(
                    "the job ran out of memory under its {} MiB limit ({how})",
                    limits.memory_mb
                ),
            )
        } else {
            (Status::Crashed, format!("the worker died ({how})"))
        };
        let mut r = EvalResult::failed(id, status, message);
        r.stderr_tail = Some(tail);
        r
    }
}
