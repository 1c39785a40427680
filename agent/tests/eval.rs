//! `autoarch eval` and the isolated worker, driven through the real binary: the JSON result,
//! every way a job can fail ending as an outcome while the parent carries on, and failures of
//! the machine (no worker, no data, no device) reported as such, never as outcomes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use autoarch_evaluator::worker::{Hello, WorkerRequest, PROTOCOL};
use autoarch_evaluator::{
    DeviceError, Evaluator, Job, JobLimits, MachineError, Placement, Status, TaskConfig, TaskError,
    TrainConfig, WorkerCommand,
};
use autoarch_sandbox::Limits;
use serde_json::Value;

fn autoarch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_autoarch"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A small MQAR so that jobs finish in a second or two.
fn tiny_task() -> TaskConfig {
    TaskConfig {
        name: "mqar".into(),
        seq_len: Some(16),
        vocab: Some(16),
        kv_pairs: Some(2),
        validation_size: Some(16),
        ..TaskConfig::default()
    }
}

const TINY_MODEL: &str =
    "def model(tokens):\n    h = embedding(tokens, VOCAB, 16)\n    return linear(gelu(h), VOCAB)\n";

/// Activations overflow: exp(10⁴·x) is inf in f32 wherever x > 0.009, so the loss is NaN.
const OVERFLOWING_MODEL: &str = "def model(tokens):\n    h = embedding(tokens, VOCAB, 16) * 10000.0\n    return linear(exp(h), VOCAB)\n";

/// About 67M parameters (268 MB of weights before gradients and optimizer state).
const HUGE_MODEL: &str = "def model(tokens):\n    h = linear(embedding(tokens, VOCAB, 8192), 8192)\n    return linear(h, VOCAB)\n";

fn job(id: &str, code: &str, steps: u64) -> Job {
    Job {
        id: id.into(),
        code: code.into(),
        task: tiny_task(),
        train: TrainConfig {
            steps: Some(steps),
            batch_size: 8,
            latency_repeats: 2,
            ..TrainConfig::default()
        },
        limits: Limits::default(),
    }
}

/// Processes whose environment carries `tag` (the workers a test started).
fn processes_tagged(tag: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("procfs").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(env) = std::fs::read(entry.path().join("environ")) {
            if env.split(|&b| b == 0).any(|kv| kv == tag.as_bytes()) {
                found.push(pid);
            }
        }
    }
    found
}

fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn evaluator(tag: &str, extra: &[(&str, &str)]) -> Evaluator {
    evaluator_at(Placement::Local, tag, extra)
}

/// The autoarch worker, here (`worker`) or as a remote launcher starts it (`worker
/// --supervise`, which confines its jobs itself).
fn evaluator_at(placement: Placement, tag: &str, extra: &[(&str, &str)]) -> Evaluator {
    let mut env = vec![("AUTOARCH_TEST_TAG".to_string(), tag.to_string())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut args = vec!["worker".to_string()];
    if placement != Placement::Local {
        args.push("--supervise".to_string());
    }
    Evaluator::new(WorkerCommand {
        program: env!("CARGO_BIN_EXE_autoarch").into(),
        args,
        env,
        placement,
    })
}

#[test]
fn every_failure_is_an_outcome_and_the_parent_carries_on() {
    every_failure_is_an_outcome(Placement::Local, "local");
}

/// A supervising worker (what `srun` or `ssh` start) gives the same outcomes under the same
/// limits, enforced where it runs.
#[test]
fn a_supervising_worker_confines_its_jobs_with_the_same_outcomes() {
    let remote = Placement::Remote {
        start_timeout: Duration::from_secs(60),
    };
    every_failure_is_an_outcome(remote, "supervised");
}

fn every_failure_is_an_outcome(placement: Placement, label: &str) {
    let tag = format!("AUTOARCH_TEST_TAG=faults-{label}-{}", std::process::id());
    let tag_value = tag.trim_start_matches("AUTOARCH_TEST_TAG=").to_string();
    let mut ev = evaluator_at(
        placement,
        &tag_value,
        &[("AUTOARCH_WORKER_FAULT", "panic:boom")],
    );
    // A supervising worker stays; what it ran a job in must not.
    let supervisors = usize::from(placement != Placement::Local);
    let generous = JobLimits {
        timeout: Duration::from_secs(120),
        memory_mb: 2048,
    };
    let mut quiet = |_| {};

    // Overflowing activations: diverged, with the step it happened at.
    let r = ev
        .evaluate(
            &job("overflow", OVERFLOWING_MODEL, 20),
            generous,
            &mut quiet,
        )
        .expect("the machine can evaluate");
    assert_eq!(r.status, Status::Diverged, "{r:?}");
    assert!(r.message.as_deref().unwrap_or("").contains("step"), "{r:?}");

    // Over the memory limit: oom, and the worker is gone.
    let small = JobLimits {
        timeout: Duration::from_secs(120),
        memory_mb: 300,
    };
    let r = ev
        .evaluate(&job("huge", HUGE_MODEL, 5), small, &mut quiet)
        .expect("the machine can evaluate");
    assert_eq!(r.status, Status::Oom, "{r:?}");

    // Over the timeout: stopped within timeout + 2 s, nothing left behind.
    let short = JobLimits {
        timeout: Duration::from_secs(3),
        memory_mb: 2048,
    };
    let start = Instant::now();
    let r = ev
        .evaluate(&job("forever", TINY_MODEL, 100_000_000), short, &mut quiet)
        .expect("the machine can evaluate");
    let took = start.elapsed();
    assert_eq!(r.status, Status::Timeout, "{r:?}");
    assert!(took < Duration::from_secs(5), "timeout took {took:?}");
    let left: Vec<String> = processes_tagged(&tag)
        .into_iter()
        .map(command_line)
        .collect();
    let supervising = left
        .iter()
        .filter(|c| c.ends_with("worker --supervise"))
        .count();
    assert!(
        left.len() == supervising && supervising <= supervisors,
        "worker processes left after the timeout: {left:?}"
    );

    // A worker that panics: crashed, with the panic message in the stderr tail.
    let r = ev
        .evaluate(&job("boom", TINY_MODEL, 5), generous, &mut quiet)
        .expect("the machine can evaluate");
    assert_eq!(r.status, Status::Crashed, "{r:?}");
    let tail = r.stderr_tail.clone().unwrap_or_default();
    assert!(tail.contains("injected fault"), "stderr tail: {tail}");

    // Code that does not trace: invalid with located diagnostics.
    let r = ev
        .evaluate(
            &job(
                "broken",
                "def model(tokens):\n    return linear(tokens, 3\n",
                5,
            ),
            generous,
            &mut quiet,
        )
        .expect("the machine can evaluate");
    assert_eq!(r.status, Status::Invalid, "{r:?}");
    assert!(!r.diagnostics.is_empty(), "{r:?}");

    // And the next job runs normally on a fresh worker.
    let mut progress = 0;
    let r = ev
        .evaluate(&job("fine", TINY_MODEL, 30), generous, &mut |_| {
            progress += 1
        })
        .expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.id, "fine");
    assert!(r.metrics.contains_key("val_accuracy"), "{r:?}");
    assert_eq!(r.steps, 30);
    assert!(progress > 0, "progress is carried");
    drop(ev);
    assert!(
        processes_tagged(&tag).is_empty(),
        "workers outlive their evaluator"
    );
}

#[test]
fn eval_json_reports_metrics_costs_and_curve() {
    let out = autoarch()
        .current_dir(repo())
        .args([
            "eval",
            "seeds/mlp_only.star",
            "--steps",
            "20",
            "--seq-len",
            "16",
            "--vocab",
            "32",
        ])
        .args(["--kv-pairs", "2", "--json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["status"], "ok");
    let metrics = &v["metrics"];
    assert!(metrics["val_loss"].as_f64().expect("val_loss").is_finite());
    let acc = metrics["val_accuracy"].as_f64().expect("val_accuracy");
    assert!((0.0..=1.0).contains(&acc));
    for key in [
        "params",
        "flops",
        "throughput",
        "wall_seconds",
        "peak_rss_mb",
    ] {
        assert!(v[key].as_f64().expect(key) > 0.0, "{key}: {v}");
    }
    assert!(v["latency_ms"]["batch_1"].as_f64().expect("latency") > 0.0);
    assert!(!v["curve"].as_array().expect("curve").is_empty());
    // Progress went to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("step"));
}

#[test]
fn eval_reports_invalid_code_with_diagnostics_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.star");
    std::fs::write(
        &file,
        "def model(tokens):\n    return linear(tokens, VOCAB)\n",
    )
    .expect("write");
    let out = autoarch()
        .args(["eval"])
        .arg(&file)
        .args(["--steps", "5"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("status        invalid"), "{stdout}");
    assert!(stdout.contains("bad.star:2:"), "{stdout}");
}

#[test]
fn eval_refuses_an_unknown_task_and_a_bad_budget_as_usage_errors() {
    let out = autoarch()
        .current_dir(repo())
        .args(["eval", "seeds/mlp_only.star", "--task", "imagenet"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown task"));
    let out = autoarch()
        .current_dir(repo())
        .args(["eval", "seeds/mlp_only.star", "--steps", "0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn eval_of_a_missing_dataset_says_how_to_get_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = autoarch()
        .current_dir(dir.path())
        .arg("eval")
        .arg(repo().join("seeds/cnn.star"))
        .args(["--task", "digits", "--steps", "2"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/fetch-data.sh"), "{stderr}");
    assert!(stderr.contains("the task cannot be loaded"), "{stderr}");
}

#[test]
fn a_machine_that_cannot_evaluate_is_an_error_never_an_outcome() {
    let generous = JobLimits {
        timeout: Duration::from_secs(60),
        memory_mb: 2048,
    };
    // The worker program is not there.
    let mut ev = Evaluator::new(WorkerCommand {
        program: "/nonexistent/autoarch".into(),
        args: vec!["worker".into()],
        env: vec![],
        placement: Placement::Local,
    });
    let e = ev
        .evaluate(&job("a", TINY_MODEL, 2), generous, &mut |_| {})
        .unwrap_err();
    assert!(matches!(e, MachineError::WorkerStart { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/autoarch"), "{e}");

    // The task's data is missing where the worker runs.
    let tag = format!("machine-{}", std::process::id());
    let mut ev = evaluator(&tag, &[]);
    let mut gone = job("b", TINY_MODEL, 2);
    gone.task = TaskConfig {
        name: "charlm".into(),
        data: Some("/nonexistent/text.txt".into()),
        ..TaskConfig::default()
    };
    let e = ev.evaluate(&gone, generous, &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, MachineError::Task(TaskError::Missing(_))),
        "{e:?}"
    );
    // The worker is still serving: the next job runs.
    let r = ev
        .evaluate(&job("c", TINY_MODEL, 2), generous, &mut |_| {})
        .expect("the machine can evaluate");
    assert_eq!(r.status, Status::Ok, "{r:?}");

    // No GPU in this build.
    if !cfg!(feature = "gpu") {
        let mut ev = evaluator(&tag, &[("AUTOARCH_DEVICE", "gpu")]);
        let e = ev
            .evaluate(&job("d", TINY_MODEL, 2), generous, &mut |_| {})
            .unwrap_err();
        assert_eq!(e, MachineError::Device(DeviceError::NotBuilt));
        assert!(e.fix().contains("unset AUTOARCH_DEVICE"));
    }
}

#[test]
fn worker_answers_a_line_that_is_not_a_job_and_keeps_serving() {
    use std::io::Write;
    let mut child = autoarch()
        .arg("worker")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdin = child.stdin.take().expect("piped");
    let request = WorkerRequest::Run {
        job: Box::new(job("after", "def model(tokens):\n    return tokens\n", 1)),
        limits: JobLimits::default(),
    };
    let hello = serde_json::to_string(&WorkerRequest::Hello(Hello::here())).expect("json");
    let job = serde_json::to_string(&request).expect("json");
    writeln!(stdin, "{hello}\n{{ not json\n{job}").expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a message"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    // The handshake: who the worker is.
    assert_eq!(lines[0]["hello"]["protocol"], PROTOCOL);
    assert_eq!(lines[0]["hello"]["version"], env!("CARGO_PKG_VERSION"));
    // A line that is not a request says nothing about any candidate: the machine is at fault.
    assert!(lines[1]["unavailable"]["job"]
        .as_str()
        .unwrap_or("")
        .contains("not a request"));
    // The next job is served: code returning int ids instead of scores does not trace.
    assert_eq!(lines[2]["result"]["id"], "after");
    assert_eq!(lines[2]["result"]["status"], "invalid");
}
