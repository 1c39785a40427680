//! The worker protocol: the handshake and the JSON lines each side writes.

use super::*;

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

pub(super) fn host_name() -> String {
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

/// The protocol's own copy of stdout. Anything a library prints to stdout would corrupt the
/// protocol, so fd 1 is pointed at stderr.
pub(super) fn protocol_stdout() -> std::io::Result<File> {
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

pub(super) fn write_message(out: &mut File, message: &WorkerMessage) -> std::io::Result<()> {
    let mut s = serde_json::to_string(message).map_err(std::io::Error::other)?;
    s.push('\n');
    out.write_all(s.as_bytes())?;
    out.flush()
}

/// A request line, or the machine's complaint about it.
pub(super) fn read_request(line: &str) -> Result<WorkerRequest, MachineError> {
    serde_json::from_str::<WorkerRequest>(line)
        .map_err(|e| MachineError::Job(format!("not a request of protocol {PROTOCOL}: {e}")))
}
