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

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use autoarch_sandbox::isolate::{confine, signal_group};
use serde::{Deserialize, Serialize};

use crate::error::MachineError;
use crate::job::{run_job, EvalResult, Job, Status};
use crate::train::Progress;

/// The version of the worker protocol; a worker that speaks another is refused.
pub const PROTOCOL: u32 = 2;

/// Who is at each end of a worker pipe: sent by the parent first, answered by the worker.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// The autoarch version that built this side.
    pub version: String,
    /// Evaluator features compiled in (the GPU backend), sorted.
    pub features: Vec<String>,
    pub host: String,
    pub pid: u32,
}

impl Hello {
    /// This process.
    pub fn here() -> Hello {
        let mut features = Vec::new();
        if cfg!(feature = "gpu") {
            features.push("gpu".to_string());
        }
        Hello {
            protocol: PROTOCOL,
            version: env!("CARGO_PKG_VERSION").to_string(),
            features,
            host: host_name(),
            pid: std::process::id(),
        }
    }

    /// Whether a worker with this hello can run this side's jobs: the same protocol, version
    /// and features (a worker without the GPU backend would train elsewhere than asked).
    pub fn compatible(&self, other: &Hello) -> bool {
        self.protocol == other.protocol
            && self.version == other.version
            && self.features == other.features
    }

    /// "autoarch 0.1.0 (protocol 2, features: gpu) on node-3".
    pub fn describe(&self) -> String {
        let features = if self.features.is_empty() {
            "none".to_string()
        } else {
            self.features.join(", ")
        };
        format!(
            "autoarch {} (protocol {}, features: {features}) on {}",
            self.version, self.protocol, self.host
        )
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".to_string())
}

/// One line the parent writes.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerRequest {
    Hello(Hello),
    /// Run a job. A local worker ignores the limits (its parent enforces them); a supervising
    /// worker enforces them on the local worker it runs the job in.
    Run {
        job: Box<Job>,
        limits: JobLimits,
    },
}

/// One line a worker writes.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerMessage {
    Hello(Hello),
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

/// The protocol's own copy of stdout. Anything a library prints to stdout would corrupt the
/// protocol, so fd 1 is pointed at stderr.
fn protocol_stdout() -> std::io::Result<File> {
    // SAFETY: dup/dup2 on this process's own standard descriptors; the new fd is owned by the
    // File returned and by nothing else.
    // Close-on-exec, so that a worker this one starts (a supervisor's) does not hold the pipe
    // back to the campaign open.
    unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(fd))
    }
}

fn write_message(out: &mut File, message: &WorkerMessage) -> std::io::Result<()> {
    let mut s = serde_json::to_string(message).map_err(std::io::Error::other)?;
    s.push('\n');
    out.write_all(s.as_bytes())?;
    out.flush()
}

/// A request line, or the machine's complaint about it.
fn read_request(line: &str) -> Result<WorkerRequest, MachineError> {
    serde_json::from_str::<WorkerRequest>(line)
        .map_err(|e| MachineError::Job(format!("not a request of protocol {PROTOCOL}: {e}")))
}

/// The worker side: serve jobs from stdin until it closes.
pub fn serve() -> std::io::Result<()> {
    let mut out = protocol_stdout()?;
    watch_parent();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match read_request(&line) {
            Ok(WorkerRequest::Hello(_)) => WorkerMessage::Hello(Hello::here()),
            Ok(WorkerRequest::Run { job, .. }) => {
                injected_fault(&job);
                let mut progress = out.try_clone()?;
                let mut send_progress = |p: Progress| {
                    let _ = write_message(&mut progress, &WorkerMessage::Progress(p));
                };
                match run_job(&job, &mut send_progress) {
                    Ok(result) => WorkerMessage::Result(Box::new(result)),
                    Err(e) => WorkerMessage::Unavailable(e),
                }
            }
            Err(e) => WorkerMessage::Unavailable(e),
        };
        write_message(&mut out, &answer)?;
    }
    Ok(())
}

/// The supervising worker (`autoarch worker --supervise`), for workers started elsewhere: it
/// serves the same protocol, but runs each job in a local worker of its own (`worker`, started
/// and confined by an [`Evaluator`] here) under the job's limits. When its stdin closes — the
/// campaign died, or the launcher carrying it did — the job in flight is stopped and it exits.
pub fn serve_supervised(worker: WorkerCommand) -> std::io::Result<()> {
    let mut out = protocol_stdout()?;
    watch_parent();
    let gone = Arc::new(AtomicBool::new(false));
    let (tx, requests) = mpsc::channel::<String>();
    let closed = Arc::clone(&gone);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
        closed.store(true, Ordering::SeqCst);
    });
    let mut evaluator = Evaluator::new(WorkerCommand {
        placement: Placement::Local,
        ..worker
    });
    evaluator.set_cancel(Arc::clone(&gone));
    while let Ok(line) = requests.recv() {
        if line.trim().is_empty() {
            continue;
        }
        let answer = match read_request(&line) {
            Ok(WorkerRequest::Hello(_)) => WorkerMessage::Hello(Hello::here()),
            Ok(WorkerRequest::Run { job, limits }) => {
                let mut progress = out.try_clone()?;
                let mut send_progress = |p: Progress| {
                    let _ = write_message(&mut progress, &WorkerMessage::Progress(p));
                };
                match evaluator.evaluate(&job, limits, &mut send_progress) {
                    Ok(r) if r.status == Status::Cancelled && gone.load(Ordering::SeqCst) => break,
                    Ok(r) => WorkerMessage::Result(Box::new(r)),
                    Err(e) => WorkerMessage::Unavailable(e),
                }
            }
            Err(e) => WorkerMessage::Unavailable(e),
        };
        write_message(&mut out, &answer)?;
    }
    Ok(())
}

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

struct Worker {
    child: Child,
    /// `None` once closed, which tells a worker to finish.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    memory_mb: u64,
    placement: Placement,
    /// The worker's handshake, once it answered.
    theirs: Option<Hello>,
    /// Stopped and reaped: nothing of it to signal any more.
    stopped: bool,
}

impl Worker {
    fn spawn(command: &WorkerCommand, memory_mb: u64) -> std::io::Result<Worker> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match command.placement {
            Placement::Local => {
                let address_space =
                    (memory_mb + ADDRESS_SPACE_SLACK_MB).saturating_mul(1024 * 1024);
                confine(&mut cmd, address_space, None);
            }
            // The launcher (srun, ssh) gets its own process group, so that stopping it reaches
            // its helpers, but no limits: the job's limits apply where the job runs.
            Placement::Remote { .. } => {
                cmd.process_group(0);
            }
        }
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
            stdin: Some(stdin),
            lines,
            stderr,
            stderr_thread: Some(stderr_thread),
            memory_mb,
            placement: command.placement,
            theirs: None,
            stopped: false,
        })
    }

    fn write(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        stdin.write_all(line.as_bytes())?;
        stdin.flush()
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

    /// Stops the worker's whole process group and reaps it.
    fn kill(&mut self) -> (Option<std::process::ExitStatus>, String) {
        let status = self.stop();
        (status, self.stderr_tail())
    }

    /// A local worker is killed at once. A remote one is asked to finish first (its stdin
    /// closes, then SIGTERM), so that the launcher can end what it started elsewhere — `srun`
    /// killed outright may leave its Slurm job to the cluster's timeouts — and killed only if
    /// it does not.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if self.stopped {
            return self.child.try_wait().ok().flatten();
        }
        let mut status = self.child.try_wait().ok().flatten();
        if status.is_none() && self.placement.is_remote() {
            self.close();
            status = self.wait_for_exit(REMOTE_STOP_WAIT);
            if status.is_none() {
                self.signal(libc::SIGTERM);
                status = self.wait_for_exit(REMOTE_STOP_WAIT);
            }
        }
        // Whatever the group left behind goes too, before the leader is reaped (after that its
        // pid could name another process).
        self.signal(libc::SIGKILL);
        if status.is_none() {
            status = self.child.wait().ok();
        }
        let _ = self.child.wait();
        self.stopped = true;
        status
    }

    /// Closes the worker's stdin: a worker finishes when its input ends.
    fn close(&mut self) {
        self.stdin = None;
    }

    fn signal(&self, signal: libc::c_int) {
        signal_group(self.child.id(), signal);
    }

    fn wait_for_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
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
        self.stop();
    }
}

/// Whether a job reached a worker.
enum Sent {
    Taken,
    Cancelled,
}

fn exit_description(status: Option<std::process::ExitStatus>) -> String {
    status.map_or("an unknown status".to_string(), |s| match s.signal() {
        Some(sig) => format!("signal {sig}"),
        None => format!("exit status {}", s.code().unwrap_or(-1)),
    })
}

/// The last line a worker wrote that was not a message, for errors.
fn wrote(noise: &[String]) -> String {
    match noise.last() {
        Some(l) => format!("; it wrote: {}", l.chars().take(200).collect::<String>()),
        None => String::new(),
    }
}

fn last_words(tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

/// Runs jobs in a worker process, replacing it whenever it dies or is killed.
pub struct Evaluator {
    command: WorkerCommand,
    worker: Option<Worker>,
    cancel: Option<Arc<AtomicBool>>,
    /// The host of the last worker that answered the handshake.
    last_host: Option<String>,
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
            last_host: None,
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

    /// Tells the current worker to finish (its stdin closes) without waiting for it: a pool
    /// that stops many remote workers closes them all first, so that they end together.
    pub fn close(&mut self) {
        if let Some(w) = self.worker.as_mut() {
            w.close();
        }
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
        let request = WorkerRequest::Run {
            job: Box::new(job.clone()),
            limits,
        };
        let mut line =
            serde_json::to_string(&request).map_err(|e| MachineError::Job(e.to_string()))?;
        line.push('\n');
        // A local worker's address-space limit is set at its start; a remote one takes the
        // limits with each job.
        if self
            .worker
            .as_ref()
            .is_some_and(|w| w.memory_mb != limits.memory_mb && !w.placement.is_remote())
        {
            self.worker = None;
        }
        match self.send(&line, limits.memory_mb)? {
            Sent::Taken => self.wait(id, limits, on_progress),
            Sent::Cancelled => Ok(EvalResult::failed(
                id,
                Status::Cancelled,
                "the job was cancelled",
            )),
        }
    }

    /// Hands the job to a worker. A worker that died between jobs shows up as a failed write:
    /// a fresh one is started once; one that cannot take a job either is the machine's fault.
    fn send(&mut self, line: &str, memory_mb: u64) -> Result<Sent, MachineError> {
        for _ in 0..2 {
            if self.worker.is_none() {
                let Some(w) = self.start(memory_mb)? else {
                    return Ok(Sent::Cancelled);
                };
                self.last_host = w.theirs.as_ref().map(|h| h.host.clone());
                self.worker = Some(w);
            }
            let w = self.worker.as_mut().expect("just started");
            if w.write(line).is_ok() {
                return Ok(Sent::Taken);
            }
            self.worker = None;
        }
        Err(self.start_error("the worker exited before it took a job".into()))
    }

    fn start_error(&self, message: String) -> MachineError {
        MachineError::WorkerStart {
            program: self.command.program.display().to_string(),
            message,
        }
    }

    /// Starts a worker and shakes hands with it: `None` when the job was cancelled meanwhile.
    fn start(&mut self, memory_mb: u64) -> Result<Option<Worker>, MachineError> {
        let mut w =
            Worker::spawn(&self.command, memory_mb).map_err(|e| self.start_error(e.to_string()))?;
        let ours = Hello::here();
        let mut hello = serde_json::to_string(&WorkerRequest::Hello(ours.clone()))
            .map_err(|e| MachineError::Job(e.to_string()))?;
        hello.push('\n');
        // A worker that is gone already shows up below, with its exit status and last words.
        let _ = w.write(&hello);
        let answer = match self.await_hello(&mut w)? {
            Some(answer) => answer,
            None => return Ok(None),
        };
        match answer {
            WorkerMessage::Hello(theirs) if ours.compatible(&theirs) => {
                w.theirs = Some(theirs);
                Ok(Some(w))
            }
            WorkerMessage::Hello(theirs) => {
                w.kill();
                Err(MachineError::Handshake {
                    ours: ours.describe(),
                    theirs: theirs.describe(),
                })
            }
            other => {
                w.kill();
                let line: String = serde_json::to_string(&other)
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                Err(MachineError::Handshake {
                    ours: ours.describe(),
                    theirs: format!("a program that does not speak protocol {PROTOCOL} (an older autoarch?), which answered: {line}"),
                })
            }
        }
    }

    /// The worker's first message. Lines that are not messages are skipped (a login script's
    /// greeting through `ssh`), and named if nothing else comes. `None`: cancelled.
    fn await_hello(&self, w: &mut Worker) -> Result<Option<WorkerMessage>, MachineError> {
        let within = self.command.placement.start_timeout();
        let deadline = Instant::now() + within;
        let mut noise: Vec<String> = Vec::new();
        let mut exited_at: Option<Instant> = None;
        loop {
            if self.cancelled() {
                w.kill();
                return Ok(None);
            }
            if Instant::now() >= deadline {
                w.kill();
                return Err(self.start_error(format!(
                    "it did not answer the handshake within {:.0} s{}",
                    within.as_secs_f64(),
                    wrote(&noise)
                )));
            }
            let gone = match w.lines.recv_timeout(POLL) {
                Ok(line) => match serde_json::from_str::<WorkerMessage>(&line) {
                    Ok(message) => return Ok(Some(message)),
                    Err(_) if line.trim().is_empty() => false,
                    Err(_) => {
                        noise.push(line);
                        false
                    }
                },
                Err(RecvTimeoutError::Timeout) => {
                    // The launcher exited while something it left behind holds its stdout.
                    let now = Instant::now();
                    matches!(w.child.try_wait(), Ok(Some(_)))
                        && now - *exited_at.get_or_insert(now) > Duration::from_secs(1)
                }
                Err(RecvTimeoutError::Disconnected) => true,
            };
            if gone {
                let (status, tail) = w.kill();
                return Err(self.start_error(format!(
                    "it exited ({}) before the handshake{}{}",
                    exit_description(status),
                    last_words(&tail),
                    wrote(&noise)
                )));
            }
        }
    }

    /// Reads the worker's answer, enforcing the limits and the cancel flag.
    fn wait(
        &mut self,
        id: &str,
        limits: JobLimits,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<EvalResult, MachineError> {
        let mut deadline = Instant::now() + limits.timeout;
        if self.command.placement.is_remote() {
            deadline += REMOTE_GRACE;
        }
        loop {
            let w = self.worker.as_mut().expect("running");
            match w.lines.recv_timeout(POLL) {
                Ok(line) => match serde_json::from_str::<WorkerMessage>(&line) {
                    Ok(WorkerMessage::Progress(p)) => on_progress(p),
                    Ok(WorkerMessage::Result(r)) => return Ok(*r),
                    Ok(WorkerMessage::Unavailable(e)) => return Err(self.unavailable(e)),
                    Ok(WorkerMessage::Hello(_)) => {
                        return self.garbage(id, limits, &line, "a second handshake")
                    }
                    Err(e) => return self.garbage(id, limits, &line, &e.to_string()),
                },
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(stopped) = self.check_limits(id, limits, deadline)? {
                        return Ok(stopped);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return self.died(id, limits),
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
        // A worker killed mid-write ends its output soon after; a launcher (srun, ssh) may take
        // longer to pass that on than a local worker does.
        let settle = if self.command.placement.is_remote() {
            Duration::from_secs(3)
        } else {
            Duration::from_millis(100)
        };
        let until = Instant::now() + settle;
        let w = self.worker.as_mut().expect("running");
        while Instant::now() < until {
            match w.lines.recv_timeout(POLL) {
                Err(RecvTimeoutError::Disconnected) => return self.died(id, limits),
                _ if matches!(w.child.try_wait(), Ok(Some(_))) => return self.died(id, limits),
                _ => {}
            }
        }
        self.worker.take().expect("running").kill();
        let line: String = line.chars().take(200).collect();
        Err(MachineError::Protocol(format!(
            "it wrote something that is not a message ({error}): {line}"
        )))
    }

    /// Between lines: stops the job when it is cancelled, over its memory, or past its time.
    /// A remote worker enforces the job's limits itself; past the job's time and a grace it
    /// has stopped answering, and is lost.
    fn check_limits(
        &mut self,
        id: &str,
        limits: JobLimits,
        deadline: Instant,
    ) -> Result<Option<EvalResult>, MachineError> {
        if self.cancelled() {
            self.worker.take().expect("running").kill();
            return Ok(Some(EvalResult::failed(
                id,
                Status::Cancelled,
                "the job was cancelled",
            )));
        }
        if self.command.placement.is_remote() {
            if Instant::now() < deadline {
                return Ok(None);
            }
            self.worker.take().expect("running").kill();
            return Err(MachineError::WorkerLost(format!(
                "the worker {} gave no answer within the job's {:.0} s timeout and {:.0} s more, and was stopped",
                self.worker_name(),
                limits.timeout.as_secs_f64(),
                REMOTE_GRACE.as_secs_f64()
            )));
        }
        Ok(self.check_local(id, limits, deadline))
    }

    fn check_local(
        &mut self,
        id: &str,
        limits: JobLimits,
        deadline: Instant,
    ) -> Option<EvalResult> {
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

    /// "(srun) on node-3": the launcher and, once it answered, the worker's host.
    fn worker_name(&self) -> String {
        let program = self.command.program.display();
        match self.last_host.as_deref() {
            Some(host) => format!("({program}) on {host}"),
            None => format!("({program})"),
        }
    }

    /// A worker that cannot run anything: the machine's error. A remote worker that cannot
    /// start the local worker it runs jobs in has a broken node: it is lost (and stopped), so the
    /// job goes back in the queue and a worker is started again, perhaps elsewhere.
    fn unavailable(&mut self, e: MachineError) -> MachineError {
        if !(self.command.placement.is_remote() && matches!(e, MachineError::WorkerStart { .. })) {
            return e;
        }
        let name = self.worker_name();
        self.worker = None;
        MachineError::WorkerLost(format!("the worker {name} could not start its job: {e}"))
    }

    /// The worker died mid-job: a crash, or out of memory when its last words say so. A remote
    /// worker confines its jobs, so its own death is the machine's: it is lost.
    fn died(&mut self, id: &str, limits: JobLimits) -> Result<EvalResult, MachineError> {
        let (status, tail) = self.worker.take().expect("running").kill();
        let how = exit_description(status);
        if self.command.placement.is_remote() {
            return Err(MachineError::WorkerLost(format!(
                "the worker {} exited ({how}) while it ran job {id}{}",
                self.worker_name(),
                last_words(&tail)
            )));
        }
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
        Ok(r)
    }
}
