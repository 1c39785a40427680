//! The worker side: `autoarch worker` serves jobs from stdin, and `autoarch worker --supervise`
//! runs each in a local worker of its own under the job's limits.

use super::*;

/// The environment variable that makes a worker fail on purpose, for fault tests:
/// `panic:ID` panics at the start of the job with id `ID`, `abort:ID` aborts the process there.
pub const FAULT_ENV: &str = "AUTOARCH_WORKER_FAULT";

/// Fails on purpose when [`FAULT_ENV`] names this job.
pub(super) fn injected_fault(job: &Job) {
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
pub(super) fn watch_parent() {
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
