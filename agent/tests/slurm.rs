//! `launcher = "slurm"` against a real single-node Slurm (`scripts/slurm-local.sh`, which
//! `.ci/run` starts): a campaign with 2 workers, each an `srun` job step, completes; `scancel`
//! of one worker's step mid-job has that job run again and every result stored once; when the
//! campaign ends, and after a kill -9 of it, no Slurm job of the campaign is left in `squeue`.
//! It also prints the launcher's cost per job against local workers.
//!
//! Run with the cluster up:
//!     conf=$(bash scripts/slurm-local.sh | tail -1)
//!     AUTOARCH_E2E_SLURM=$conf cargo test -p autoarch-agent --test slurm -- --nocapture
//!
//! A test target of its own that `cargo test` leaves out (`test = false` in Cargo.toml).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use autoarch_agent::config::{EvaluationConfig, Launcher};
use autoarch_agent::machine::{slurm_job_name, worker_command};
use autoarch_evaluator::{Evaluator, Job, JobLimits, Status, TaskConfig, TrainConfig};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_autoarch");

/// The cluster's slurm.conf, exported for every Slurm command this test and its campaigns run.
fn slurm_conf() -> String {
    let conf = std::env::var("AUTOARCH_E2E_SLURM")
        .expect("AUTOARCH_E2E_SLURM: the slurm.conf that scripts/slurm-local.sh printed");
    std::env::set_var("SLURM_CONF", &conf);
    conf
}

/// `(job id, state)` of the Slurm jobs named `name`.
fn squeue(name: &str) -> Vec<(String, String)> {
    let o = Command::new("squeue")
        .args(["-h", "-n", name, "-o", "%i %T"])
        .output()
        .expect("squeue runs");
    assert!(
        o.status.success(),
        "squeue: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, state)| (id.to_string(), state.to_string()))
        .collect()
}

fn running(name: &str) -> Vec<String> {
    squeue(name)
        .into_iter()
        .filter(|(_, state)| state == "RUNNING")
        .map(|(id, _)| id)
        .collect()
}

/// Waits until no job named `name` is left; how long that took.
fn until_no_job(name: &str, grace: Duration) -> Duration {
    let start = Instant::now();
    while !squeue(name).is_empty() {
        assert!(
            start.elapsed() < grace,
            "Slurm jobs left behind: {:?}",
            squeue(name)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

fn slurm_setup(name: &str, budget: &str, training: &str) -> Setup {
    Setup::new(
        name,
        &[("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)],
        budget,
        &format!(
            "launcher = \"slurm\"\nstart_timeout_seconds = 60\n{training}\npromote_fraction = 0.0\n\n[evaluation.slurm]\ncpus_per_task = 1\ntime = \"00:10:00\"\n"
        ),
    )
}

#[test]
fn a_slurm_campaign_survives_a_cancelled_step_and_leaves_no_job_behind() {
    slurm_conf();
    let start = Instant::now();
    let s = slurm_setup("slurm", "max_candidates = 4", "seconds = 3");
    let name = slurm_job_name("slurm");
    let (mut child, rx) = s.spawn();
    // Both seeds go to the two workers as soon as they start; their jobs train for 3 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs = loop {
        let jobs = running(&name);
        if jobs.len() == 2 {
            break jobs;
        }
        assert!(Instant::now() < deadline, "jobs: {:?}", squeue(&name));
        std::thread::sleep(Duration::from_millis(100));
    };
    // Mid-job: both supervisors run the worker their job trains in (this one-node cluster's
    // processes are this host's).
    while s.workers_by_kind() != (2, 2) {
        assert!(
            Instant::now() < deadline,
            "workers: {:?}",
            s.workers_by_kind()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let step = format!("{}.0", jobs[0]);
    let o = Command::new("scancel").arg(&step).output().unwrap();
    assert!(
        o.status.success(),
        "scancel: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let status = child.wait().unwrap();
    let lines: Vec<String> = rx.iter().collect();
    let all = lines.join("\n");
    assert!(status.success(), "{all}");
    assert!(all.contains("goes back in the queue (1 of 3)"), "{all}");
    let r = s.archive();
    r.assert_all_evaluated();
    r.assert_no_evaluation_twice();
    assert!(
        r.evaluations.iter().all(|e| e["outcome"] == "ok"),
        "{:?}",
        r.evaluations
    );
    let left = until_no_job(&name, Duration::from_secs(15));
    println!(
        "slurm campaign: {:.1} s wall, {} evaluations, no job left {:.1} s after the end",
        start.elapsed().as_secs_f64(),
        r.evaluations.len(),
        left.as_secs_f64()
    );

    // Kill -9 of the campaign mid-job: its workers see stdin close, exit, and srun ends the job.
    let s = slurm_setup("slurm-kill", "max_candidates = 50", "seconds = 30");
    let name = slurm_job_name("slurm-kill");
    let (mut child, _rx) = s.spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while running(&name).len() < 2 {
        assert!(Instant::now() < deadline, "jobs: {:?}", squeue(&name));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let gone = until_no_job(&name, Duration::from_secs(30));
    println!(
        "kill -9 of the campaign: no job left after {:.1} s",
        gone.as_secs_f64()
    );
    assert!(s.workers_alive().is_empty(), "{:?}", s.workers_alive());
}

fn short_job(id: usize) -> Job {
    Job {
        id: format!("overhead-{id}"),
        code: LINEAR_SEED.to_string(),
        task: TaskConfig {
            name: "mqar".into(),
            seq_len: Some(16),
            vocab: Some(16),
            kv_pairs: Some(2),
            validation_size: Some(16),
            ..TaskConfig::default()
        },
        train: TrainConfig {
            steps: Some(1),
            batch_size: 8,
            latency_repeats: 2,
            ..TrainConfig::default()
        },
        limits: Default::default(),
    }
}

/// Per-job wall time of a short job (one training step) through local workers and through
/// `srun`: the first job of a worker (its start and handshake) and the median of the next ones.
#[test]
fn the_slurm_launchers_cost_per_job() {
    slurm_conf();
    const JOBS: usize = 15;
    let limits = JobLimits {
        timeout: Duration::from_secs(60),
        memory_mb: 1024,
    };
    let mut e = EvaluationConfig {
        memory_limit_mb: 1024,
        ..EvaluationConfig::default()
    };
    let mut figures = Vec::new();
    for launcher in [Launcher::Local, Launcher::Slurm] {
        e.launcher = launcher;
        let mut ev = Evaluator::new(worker_command(&e, "overhead", BIN.as_ref()));
        let mut walls = Vec::new();
        for i in 0..JOBS {
            let t = Instant::now();
            let r = ev.evaluate(&short_job(i), limits, &mut |_| {}).unwrap();
            assert_eq!(r.status, Status::Ok, "{r:?}");
            walls.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let first = walls[0];
        let mut rest = walls[1..].to_vec();
        rest.sort_by(f64::total_cmp);
        let median = rest[rest.len() / 2];
        println!(
            "{}: first job {first:.0} ms (start + handshake + job), then median {median:.1} ms per job (min {:.1}, max {:.1}, n = {})",
            launcher.as_str(),
            rest[0],
            rest[rest.len() - 1],
            rest.len()
        );
        figures.push((first, median));
    }
    let (local, slurm) = (figures[0], figures[1]);
    println!(
        "slurm − local: {:+.0} ms on the first job, {:+.1} ms per job after it",
        slurm.0 - local.0,
        slurm.1 - local.1
    );
}
