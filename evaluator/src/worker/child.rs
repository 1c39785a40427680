//! One local worker process as its parent sees it: started confined in its own process group,
//! fed a job, read line by line, killed with its group.

use super::*;

pub(super) struct Worker {
    pub(super) child: Child,
    /// `None` once closed, which tells a worker to finish.
    pub(super) stdin: Option<ChildStdin>,
    pub(super) lines: Receiver<String>,
    pub(super) stderr: PipeTail,
    pub(super) memory_mb: u64,
    pub(super) placement: Placement,
    /// The worker's handshake, once it answered.
    pub(super) theirs: Option<Hello>,
    /// Stopped and reaped: nothing of it to signal any more.
    pub(super) stopped: bool,
}

impl Worker {
    pub(super) fn spawn(command: &WorkerCommand, memory_mb: u64) -> std::io::Result<Worker> {
        let mut cmd = piped(&command.program, &command.args);
        cmd.envs(command.env.iter().map(|(k, v)| (k, v)));
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
        let stderr = PipeTail::read(child.stderr.take().expect("piped"), STDERR_KEEP);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Worker {
            child,
            stdin: Some(stdin),
            lines,
            stderr,
            memory_mb,
            placement: command.placement,
            theirs: None,
            stopped: false,
        })
    }

    pub(super) fn write(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        stdin.write_all(line.as_bytes())?;
        stdin.flush()
    }

    pub(super) fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    pub(super) fn rss_mb(&self) -> f64 {
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
    pub(super) fn kill(&mut self) -> (Option<std::process::ExitStatus>, String) {
        let status = self.stop();
        (status, self.stderr_tail())
    }

    /// A local worker is killed at once. A remote one is asked to finish first (its stdin
    /// closes, then SIGTERM), so that the launcher can end what it started elsewhere — `srun`
    /// killed outright may leave its Slurm job to the cluster's timeouts — and killed only if
    /// it does not.
    pub(super) fn stop(&mut self) -> Option<std::process::ExitStatus> {
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
    pub(super) fn close(&mut self) {
        self.stdin = None;
    }

    pub(super) fn signal(&self, signal: libc::c_int) {
        signal_group(self.child.id(), signal);
    }

    pub(super) fn wait_for_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        wait_within(&mut self.child, within, Duration::from_millis(20))
            .ok()
            .flatten()
    }

    pub(super) fn stderr_tail(&mut self) -> String {
        self.stderr.last_lines(20, Duration::from_millis(500))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a job reached a worker.
pub(super) enum Sent {
    Taken,
    Cancelled,
}

pub(super) fn exit_description(status: Option<std::process::ExitStatus>) -> String {
    status.map_or("an unknown status".to_string(), |s| match s.signal() {
        Some(sig) => format!("signal {sig}"),
        None => format!("exit status {}", s.code().unwrap_or(-1)),
    })
}

/// The last line a worker wrote that was not a message, for errors.
pub(super) fn wrote(noise: &[String]) -> String {
    match noise.last() {
        Some(l) => format!("; it wrote: {}", l.chars().take(200).collect::<String>()),
        None => String::new(),
    }
}

pub(super) fn last_words(tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}
