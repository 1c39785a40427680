//! The parent side: [`Evaluator`] runs jobs in a worker process, watches its memory and the
//! clock, and replaces it whenever it dies or is killed.

use super::*;

/// Runs jobs in a worker process, replacing it whenever it dies or is killed.
pub struct Evaluator {
    command: WorkerCommand,
    worker: Option<Worker>,
    cancel: Option<Arc<AtomicBool>>,
    /// The host of the last worker that answered the handshake.
    last_host: Option<String>,
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

    pub(super) fn cancelled(&self) -> bool {
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

    pub(super) fn evaluate_inner(
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
    pub(super) fn send(&mut self, line: &str, memory_mb: u64) -> Result<Sent, MachineError> {
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

    pub(super) fn start_error(&self, message: String) -> MachineError {
        MachineError::WorkerStart {
            program: self.command.program.display().to_string(),
            message,
        }
    }

    /// Starts a worker and shakes hands with it: `None` when the job was cancelled meanwhile.
    pub(super) fn start(&mut self, memory_mb: u64) -> Result<Option<Worker>, MachineError> {
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
    pub(super) fn await_hello(
        &self,
        w: &mut Worker,
    ) -> Result<Option<WorkerMessage>, MachineError> {
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
    pub(super) fn wait(
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
    pub(super) fn garbage(
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
    pub(super) fn check_limits(
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
            let message = format!(
                "the worker {} gave no answer within the job's {:.0} s timeout and {:.0} s more, and was stopped",
                self.worker_name(),
                limits.timeout.as_secs_f64(),
                REMOTE_GRACE.as_secs_f64()
            );
            return Err(MachineError::WorkerLost {
                message,
                took_job: true,
            });
        }
        Ok(self.check_local(id, limits, deadline))
    }

    pub(super) fn check_local(
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
    pub(super) fn worker_name(&self) -> String {
        let program = self.command.program.display();
        match self.last_host.as_deref() {
            Some(host) => format!("({program}) on {host}"),
            None => format!("({program})"),
        }
    }

    /// A worker that cannot run anything: the machine's error. A remote worker that cannot
    /// start the local worker it runs jobs in has a broken node: it is lost (and stopped), so the
    /// job goes back in the queue and a worker is started again, perhaps elsewhere.
    pub(super) fn unavailable(&mut self, e: MachineError) -> MachineError {
        if !(self.command.placement.is_remote() && matches!(e, MachineError::WorkerStart { .. })) {
            return e;
        }
        let name = self.worker_name();
        self.worker = None;
        MachineError::WorkerLost {
            message: format!("the worker {name} could not start its job: {e}"),
            took_job: true,
        }
    }

    /// The worker died mid-job: a crash, or out of memory when its last words say so. A remote
    /// worker confines its jobs, so its own death is the machine's: it is lost.
    pub(super) fn died(&mut self, id: &str, limits: JobLimits) -> Result<EvalResult, MachineError> {
        let (status, tail) = self.worker.take().expect("running").kill();
        let how = exit_description(status);
        if self.command.placement.is_remote() {
            return Err(MachineError::WorkerLost {
                message: format!(
                    "the worker {} exited ({how}) while it ran job {id}{}",
                    self.worker_name(),
                    last_words(&tail)
                ),
                took_job: true,
            });
        }
        let (status, message) = if out_of_memory(&tail) {
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
