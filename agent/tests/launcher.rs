//! `[evaluation] launcher = "command"` through the real binary: workers started by a command
//! that carries their stdin and stdout (as `ssh` or `kubectl exec -i` would) run a campaign; a
//! worker lost mid-job has its job run again and stored once; a kill -9 of the campaign leaves
//! no worker behind; a worker from another autoarch is refused by the handshake, saying which
//! side is which; and when no worker can start, the campaign stops with the cause and stores
//! nothing against any candidate. The same against a real Slurm is `slurm.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_autoarch");

/// A shell script in its own temporary directory, and that directory.
struct Wrapper {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Wrapper {
    fn new(body: &str) -> Wrapper {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("launch.sh");
        let script = format!("#!/bin/sh\nDIR={:?}\n{body}", dir.path());
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Wrapper { dir, path }
    }

    /// `[evaluation]` lines that start workers through this script, `autoarch worker` after it.
    fn evaluation(&self, extra: &str) -> String {
        format!(
            "launcher = \"command\"\ncommand = [{:?}, {BIN:?}, \"worker\"]\nstart_timeout_seconds = 30\n{extra}",
            self.path
        )
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn two_seeds() -> [(&'static str, &'static str); 2] {
    [("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)]
}

#[test]
fn a_campaign_runs_on_workers_a_command_starts_and_a_kill_9_leaves_none_behind() {
    let w = Wrapper::new("echo \"$*\" >> \"$DIR/starts\"\nexec \"$@\"\n");
    let s = Setup::new(
        "command",
        &two_seeds(),
        "max_candidates = 3",
        &w.evaluation("steps = 4\npromote_fraction = 0.0"),
    );
    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let r = s.archive();
    r.assert_all_evaluated();
    r.assert_no_evaluation_twice();
    assert!(
        r.evaluations.iter().all(|e| e["outcome"] == "ok"),
        "{:?}",
        r.evaluations
    );
    let starts = lines_of(&w.file("starts"));
    assert!(!starts.is_empty() && starts.len() <= 2, "{starts:?}");
    for start in &starts {
        assert_eq!(start, &format!("{BIN} worker --supervise"));
    }

    // Kill -9 of the campaign mid-job: the workers see their stdin close and exit.
    let s = Setup::new(
        "command-kill",
        &two_seeds(),
        "max_candidates = 50",
        &w.evaluation("seconds = 30\npromote_fraction = 0.0"),
    );
    let (mut child, rx) = s.spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Two supervisors, each with the worker it runs its job in.
    while s.workers_by_kind() != (2, 2) {
        assert!(
            Instant::now() < deadline,
            "workers: {:?}",
            s.workers_by_kind()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    drop(rx);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.workers_alive().is_empty() {
        assert!(
            Instant::now() < deadline,
            "workers outlive the campaign: {:?}",
            s.workers_alive()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_worker_lost_mid_job_has_its_job_run_again_and_stored_once() {
    // The first worker to start is killed half a second after it starts the worker it runs
    // its first job in (jobs train for 3 s): a node that died mid-job. Every other start carries
    // the worker faithfully. (A background command of sh reads /dev/null unless given a
    // descriptor saved before: hence `exec 3<&0`.)
    let w = Wrapper::new(
        "if mkdir \"$DIR/lost\" 2>/dev/null; then\n  exec 3<&0\n  \"$@\" <&3 &\n  pid=$!\n  until pgrep -P $pid >/dev/null; do sleep 0.05; done\n  sleep 0.5\n  kill -9 $pid\n  echo 'launch.sh: connection to node-7 closed' >&2\n  exit 255\nfi\nexec \"$@\"\n",
    );
    let s = Setup::new(
        "lost",
        &two_seeds(),
        "max_candidates = 2",
        &w.evaluation("seconds = 3\npromote_fraction = 0.0"),
    );
    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("exited (exit status 255) while it ran job"),
        "{out}"
    );
    assert!(out.contains("goes back in the queue (1 of 3)"), "{out}");
    let r = s.archive();
    r.assert_all_evaluated();
    r.assert_no_evaluation_twice();
    assert!(
        r.evaluations.iter().all(|e| e["outcome"] == "ok"),
        "{:?}",
        r.evaluations
    );
    assert!(
        out.contains("connection to node-7 closed"),
        "the launcher's last words: {out}"
    );
}

#[test]
fn a_worker_that_cannot_start_is_given_up_and_the_others_finish_the_campaign() {
    // The first start carries a worker; every later start fails (a node that went away).
    let w = Wrapper::new(
        "if mkdir \"$DIR/first\" 2>/dev/null; then exec \"$@\"; fi\necho 'ssh: connect to host node-2 port 22: No route to host' >&2\nexit 255\n",
    );
    let s = Setup::new(
        "one-left",
        &two_seeds(),
        "max_candidates = 2",
        &w.evaluation("steps = 4\npromote_fraction = 0.0"),
    );
    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("No route to host"), "{out}");
    assert!(out.contains("going on with 1 worker;"), "{out}");
    let r = s.archive();
    r.assert_all_evaluated();
    r.assert_no_evaluation_twice();
}

#[test]
fn a_worker_from_another_autoarch_is_refused_saying_which_side_is_which() {
    let w = Wrapper::new(
        "read hello\necho '{\"hello\":{\"protocol\":2,\"version\":\"0.0.1\",\"features\":[],\"host\":\"node-9\",\"pid\":1}}'\ncat > /dev/null\n",
    );
    let s = Setup::new(
        "handshake",
        &two_seeds(),
        "max_candidates = 2",
        &w.evaluation("steps = 4"),
    );
    let o = s.run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let ours = format!(
        "this campaign runs autoarch {} (protocol 2",
        env!("CARGO_PKG_VERSION")
    );
    assert!(out.contains(&ours), "{out}");
    assert!(
        out.contains("the worker is autoarch 0.0.1 (protocol 2, features: none) on node-9"),
        "{out}"
    );
    assert!(out.contains("same autoarch build on every node"), "{out}");
    assert!(s.archive().evaluations.is_empty(), "nothing stored");

    // A program that speaks no handshake at all (an autoarch before it) is refused too.
    let old = Wrapper::new(
        "read hello\necho '{\"unavailable\":{\"job\":\"not a job: unknown field hello\"}}'\ncat > /dev/null\n",
    );
    let s = Setup::new(
        "handshake-old",
        &two_seeds(),
        "max_candidates = 2",
        &old.evaluation("steps = 4"),
    );
    let o = s.run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("does not speak protocol 2"),
        "{}",
        text(&o)
    );
    assert!(s.archive().evaluations.is_empty(), "nothing stored");
}

#[test]
fn when_no_worker_can_start_the_campaign_stops_with_the_cause_and_stores_nothing() {
    let s = Setup::new(
        "no-worker",
        &two_seeds(),
        "max_candidates = 2",
        "launcher = \"command\"\ncommand = [\"/nonexistent/launcher\", \"autoarch\", \"worker\"]\nsteps = 4",
    );
    let start = Instant::now();
    let o = s.run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("could not start a worker (/nonexistent/launcher)"),
        "{out}"
    );
    assert!(out.contains("run the same command again"), "{out}");
    // Each worker is tried 4 times, 1 + 2 + 4 s apart.
    assert!(
        start.elapsed() >= Duration::from_secs(7),
        "{:?}",
        start.elapsed()
    );
    let r = s.archive();
    assert_eq!(r.candidates.len(), 2, "the seeds are stored");
    assert!(
        r.evaluations.is_empty(),
        "nothing stored against a candidate"
    );
}
