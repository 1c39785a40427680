//! Tracing untrusted code in a child process with OS limits.
//!
//! Starlark's own limits bound steps and time, not memory, so code from an LLM or a user runs in a
//! child process: its own process group, an address-space limit (`RLIMIT_AS`), a CPU-time limit
//! (`RLIMIT_CPU`), and a kill of the whole group on the wall deadline. The parent turns every way
//! the child can die into a diagnostic and carries on.
//!
//! The child is any program that calls [`serve_child`] (the `autoarch` binary does, as a hidden
//! subcommand); it reads one JSON [`TraceRequest`] on stdin and writes one [`TraceOutcome`] on
//! stdout.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::tracer::{trace, TraceConfig, TraceOutcome};

/// What the parent sends the child.
#[derive(Serialize, Deserialize)]
pub struct TraceRequest {
    pub source: String,
    pub config: TraceConfig,
}

/// How to start the child: a program and its arguments.
#[derive(Clone, Debug)]
pub struct ChildCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The machinery failed (not the code): the child could not start or spoke nonsense.
#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    #[error("could not start the trace process {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the trace process answered something that is not a trace result: {0}")]
    Protocol(String),
}

/// Extra wall time the parent allows beyond the trace deadline before it kills the child.
const GRACE: Duration = Duration::from_millis(1500);

/// Makes a command's child the leader of its own process group (so the parent can kill the whole
/// group) with an address-space limit of `address_space` bytes, an optional CPU-time limit, and no
/// core dumps. Shared by the trace child and the evaluator's workers.
pub fn confine(command: &mut Command, address_space: u64, cpu_seconds: Option<u64>) {
    // SAFETY: the closure runs in the forked child before exec and only calls async-signal-safe
    // libc functions (setpgid, setrlimit).
    unsafe {
        command.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let set = |resource, value: u64| {
                let lim = libc::rlimit {
                    rlim_cur: value as libc::rlim_t,
                    rlim_max: value as libc::rlim_t,
                };
                if libc::setrlimit(resource, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            set(libc::RLIMIT_AS, address_space)?;
            if let Some(cpu) = cpu_seconds {
                set(libc::RLIMIT_CPU, cpu)?;
            }
            set(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
}

/// Sends `signal` to the process group that `leader` (a child started with [`confine`] or
/// `process_group(0)`) leads: the child and whatever it started. A group that is already gone
/// is fine (ESRCH). Shared by the trace child and the evaluator's workers.
pub fn signal_group(leader: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals that process group and touches no memory.
    unsafe {
        libc::kill(-(leader as libc::pid_t), signal);
    }
}

/// A command for `program` with its three standard streams piped: how the trace child and the
/// evaluator's workers are started (each then confined, or put in its own group).
pub fn piped(program: &std::path::Path, args: &[String]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` to exit, polling every `poll`, for at most `within`: its status, or `None`
/// if it still runs.
pub fn wait_within(
    child: &mut Child,
    within: Duration,
    poll: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(poll);
    }
}

/// Whether a dead child's last words say it ran out of memory (Rust's allocation failure, an
/// OOM from a library, a collection that could not grow).
pub fn out_of_memory(stderr: &str) -> bool {
    stderr.contains("memory allocation")
        || stderr.contains("out of memory")
        || stderr.contains("OutOfMemory")
        || stderr.contains("capacity overflow")
}

/// The end of what a child writes to a pipe (its stderr): a thread reads the pipe until it
/// closes and keeps the last `keep` bytes, so a chatty child can neither block on a full pipe nor
/// fill the parent's memory.
pub struct PipeTail {
    bytes: Arc<Mutex<VecDeque<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl PipeTail {
    /// Starts reading `pipe`.
    pub fn read(mut pipe: impl Read + Send + 'static, keep: usize) -> PipeTail {
        let bytes = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&bytes);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut k = kept.lock().unwrap_or_else(|e| e.into_inner());
                k.extend(&buf[..n]);
                let excess = k.len().saturating_sub(keep);
                k.drain(..excess);
            }
        });
        PipeTail {
            bytes,
            reader: Some(reader),
        }
    }

    /// The last `lines` lines kept, once the pipe has closed or `wait` has passed (the pipe
    /// closes when the child's group is gone; a grandchild that holds it is not waited on).
    pub fn last_lines(&mut self, lines: usize, wait: Duration) -> String {
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + wait;
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let kept = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: Vec<u8> = kept.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Trace `source` in a child process under the limits of `config`.
pub fn trace_isolated(
    source: &str,
    config: &TraceConfig,
    child: &ChildCommand,
) -> Result<TraceOutcome, IsolateError> {
    let limits = &config.limits;
    let memory = limits.memory_mb.saturating_mul(1024 * 1024);
    let cpu_seconds = limits.deadline_seconds.ceil().max(1.0) as u64 + 1;
    let mut command = piped(&child.program, &child.args);
    confine(&mut command, memory, Some(cpu_seconds));
    let mut proc = command.spawn().map_err(|source| IsolateError::Spawn {
        program: child.program.display().to_string(),
        source,
    })?;
    let request = serde_json::to_vec(&TraceRequest {
        source: source.to_string(),
        config: config.clone(),
    })
    .map_err(|e| IsolateError::Protocol(e.to_string()))?;
    let mut stdin = proc.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || {
        // A child that dies early closes the pipe; its exit status tells why.
        let _ = stdin.write_all(&request);
    });
    let mut stdout = proc.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let mut stderr = PipeTail::read(proc.stderr.take().expect("stderr is piped"), 64 * 1024);

    let deadline =
        Instant::now() + Duration::from_secs_f64(limits.deadline_seconds.max(0.0)) + GRACE;
    let pid = proc.id();
    let (status, killed) = wait_until(&mut proc, deadline)?;
    // Whatever the child left in its group goes too.
    signal_group(pid, libc::SIGKILL);
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = stderr.last_lines(usize::MAX, Duration::from_millis(500));
    let located =
        |message: String| TraceOutcome::invalid(vec![Diagnostic::at(source, 1, 1, 1, message)]);

    if killed {
        return Ok(located(format!(
            "tracing did not finish within the {} s deadline and was stopped; is a loop unbounded?",
            limits.deadline_seconds
        )));
    }
    if status.success() {
        return serde_json::from_slice(&out).map_err(|e| {
            IsolateError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&out)))
        });
    }
    Ok(located(failure(
        status,
        &err,
        limits.memory_mb,
        cpu_seconds,
    )))
}

/// Waits for the child until `deadline`, then kills its group: its exit status, and whether it
/// was killed for the deadline.
fn wait_until(proc: &mut Child, deadline: Instant) -> Result<(ExitStatus, bool), IsolateError> {
    let protocol = |e: std::io::Error| IsolateError::Protocol(e.to_string());
    let within = deadline.saturating_duration_since(Instant::now());
    match wait_within(proc, within, Duration::from_millis(5)).map_err(protocol)? {
        Some(status) => Ok((status, false)),
        None => {
            signal_group(proc.id(), libc::SIGKILL);
            Ok((proc.wait().map_err(protocol)?, true))
        }
    }
}

/// Why a trace child failed, from its exit status and the end of its stderr.
fn failure(status: ExitStatus, err: &str, memory_mb: u64, cpu_seconds: u64) -> String {
    let memory_message = || {
        format!(
            "tracing used more than its {memory_mb} MiB memory limit and was stopped; is a list or string growing without bound?"
        )
    };
    if out_of_memory(err) {
        return memory_message();
    }
    match status.signal() {
        Some(libc::SIGXCPU) | Some(libc::SIGKILL) => {
            format!("tracing used more than its CPU-time limit of {cpu_seconds} s and was stopped")
        }
        Some(libc::SIGABRT) | Some(libc::SIGSEGV) | Some(libc::SIGBUS) => memory_message(),
        _ => {
            let lines: Vec<&str> = err.lines().collect();
            let tail = lines[lines.len().saturating_sub(5)..].join("\n");
            if tail.is_empty() {
                format!("the trace process failed ({status})")
            } else {
                format!("the trace process failed ({status}): {tail}")
            }
        }
    }
}

/// The child side: read one request from stdin, trace it, write the outcome to stdout.
pub fn serve_child() -> std::io::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let request: TraceRequest = serde_json::from_str(&input)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let outcome = trace(&request.source, &request.config);
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &outcome)?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        piped(
            std::path::Path::new("/bin/sh"),
            &["-c".to_string(), script.to_string()],
        )
    }

    #[test]
    fn a_pipe_tail_keeps_only_the_end_of_a_long_output() {
        let mut child = shell("i=0; while [ $i -lt 2000 ]; do echo line$i >&2; i=$((i+1)); done")
            .spawn()
            .unwrap();
        let mut tail = PipeTail::read(child.stderr.take().unwrap(), 100);
        child.wait().unwrap();
        let text = tail.last_lines(usize::MAX, Duration::from_secs(5));
        assert!(text.len() <= 100, "{text}");
        assert!(text.ends_with("line1999"), "{text}");
        assert_eq!(
            tail.last_lines(2, Duration::ZERO),
            "line1998\nline1999",
            "asked again, the tail is still there"
        );
    }

    #[test]
    fn waiting_within_a_time_says_whether_the_child_ended() {
        let mut slow = shell("sleep 5").spawn().unwrap();
        let poll = Duration::from_millis(5);
        assert_eq!(
            wait_within(&mut slow, Duration::from_millis(50), poll).unwrap(),
            None
        );
        slow.kill().unwrap();
        let _ = slow.wait();
        let mut quick = shell("exit 3").spawn().unwrap();
        let status = wait_within(&mut quick, Duration::from_secs(5), poll).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(3));
    }

    #[test]
    fn out_of_memory_is_read_from_the_last_words() {
        assert!(out_of_memory(
            "memory allocation of 8589934592 bytes failed"
        ));
        assert!(out_of_memory("thread 'main' panicked: capacity overflow"));
        assert!(!out_of_memory("index out of bounds"));
    }
}
