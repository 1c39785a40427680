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

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
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

/// Trace `source` in a child process under the limits of `config`.
pub fn trace_isolated(
    source: &str,
    config: &TraceConfig,
    child: &ChildCommand,
) -> Result<TraceOutcome, IsolateError> {
    let limits = &config.limits;
    let memory = limits.memory_mb.saturating_mul(1024 * 1024);
    let cpu_seconds = limits.deadline_seconds.ceil().max(1.0) as u64 + 1;
    let mut command = Command::new(&child.program);
    command
        .args(&child.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    let stderr = proc.stderr.take().expect("stderr is piped");
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.take(64 * 1024).read_to_end(&mut buf);
        buf
    });

    let deadline =
        Instant::now() + Duration::from_secs_f64(limits.deadline_seconds.max(0.0)) + GRACE;
    let pid = proc.id();
    let (status, killed) = wait_until(&mut proc, deadline)?;
    // Whatever the child left in its group goes too.
    signal_group(pid, libc::SIGKILL);
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err);
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
    loop {
        match proc.try_wait().map_err(protocol)? {
            Some(status) => return Ok((status, false)),
            None if Instant::now() >= deadline => {
                signal_group(proc.id(), libc::SIGKILL);
                return Ok((proc.wait().map_err(protocol)?, true));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
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
    if err.contains("memory allocation")
        || err.contains("out of memory")
        || err.contains("capacity overflow")
    {
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
