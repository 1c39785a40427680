//! The `autoarch` binary, driven as a user would, on files in a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn autoarch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoarch"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn seed(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../seeds")
        .join(name)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, code: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, code).unwrap();
    path.display().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn check_reports_a_seed() {
    let out = autoarch(&["check", &seed("transformer.star")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("traces for task mqar"), "{text}");
    assert!(text.contains("params       136,896"), "{text}");

    let out = autoarch(&["check", &seed("cnn.star"), "--json"]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["params"], 23946);
    assert_eq!(v["output_shape"], serde_json::json!(["B", 10]));
    assert_eq!(v["diagnostics"], serde_json::json!([]));
    for key in ["flops", "nodes", "depth", "fingerprint"] {
        assert!(!v[key].is_null(), "{key}");
    }
}

#[test]
fn check_fails_with_located_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.star",
        "# task: digits\ndef model(x):\n    h = linear(flatten(x), 32)\n    return linear(h, 10) + linear(h, 5)\n",
    );
    let out = autoarch(&["check", &file]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: add: shapes [B, 10] and [B, 5] do not broadcast"),
        "{err}"
    );
    assert!(err.contains(&format!("--> {file}:4:12")), "{err}");

    let out = autoarch(&["check", &file, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert!(v["params"].is_null());
    assert_eq!(v["diagnostics"][0]["line"], 4);
    assert_eq!(v["diagnostics"][0]["col"], 12);
}

#[test]
fn the_task_flag_overrides_the_header() {
    let out = autoarch(&["check", &seed("cnn.star"), "--task", "fashion", "--json"]);
    assert!(out.status.success());
    assert_eq!(json(&out)["task"], "fashion");
    let out = autoarch(&["check", &seed("cnn.star"), "--task", "mqar"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an image model does not fit mqar"
    );
}

#[test]
fn runaway_loop_is_stopped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "loop.star",
        "def model(x):\n    n = 0\n    for i in range(2000000000):\n        n = n + i\n    return x\n",
    );
    let start = Instant::now();
    let out = autoarch(&["check", &file, "--json"]);
    let elapsed = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "autoarch exits 1, it is not killed"
    );
    let v = json(&out);
    let message = v["diagnostics"][0]["message"].as_str().unwrap();
    assert!(message.contains("steps"), "{message}");
    // The child's own deadline is 2 s; the parent kills it 1.5 s later at the latest.
    assert!(elapsed < Duration::from_millis(3500), "took {elapsed:?}");
}

#[test]
fn memory_bomb_is_stopped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bomb.star",
        "def model(x):\n    s = [0]\n    for i in range(40):\n        s = s + s\n    return x\n",
    );
    let start = Instant::now();
    let out = autoarch(&["check", &file, "--memory-limit", "256", "--json"]);
    let elapsed = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "autoarch exits 1, it is not killed"
    );
    let v = json(&out);
    let message = v["diagnostics"][0]["message"].as_str().unwrap();
    expect_test::expect![[r#"tracing used more than its 256 MiB memory limit and was stopped; is a list or string growing without bound?"#]]
        .assert_eq(message);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
fn a_deadline_stops_slow_code() {
    let dir = tempfile::tempdir().unwrap();
    // Few ticks, each slow (printing a 5,000-element list): the 0.3 s deadline fires long before
    // the tick budget could.
    let file = write(
        dir.path(),
        "slow.star",
        "def model(x):\n    s = 0\n    for i in range(100000):\n        s += len(str(list(range(5000))))\n    return x\n",
    );
    let out = autoarch(&["check", &file, "--deadline", "0.3", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let message = json(&out)["diagnostics"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("deadline"), "{message}");
}

#[test]
fn export_prints_starlark_that_traces_to_the_same_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let original = json(&autoarch(&["check", &seed("resnet.star"), "--json"]));
    let out = autoarch(&["export", &seed("resnet.star"), "--format", "starlark"]);
    assert!(out.status.success());
    let flat = write(
        dir.path(),
        "flat.star",
        &String::from_utf8_lossy(&out.stdout),
    );
    let again = json(&autoarch(&["check", &flat, "--task", "digits", "--json"]));
    assert_eq!(again["fingerprint"], original["fingerprint"]);

    let out = autoarch(&["export", &seed("resnet.star"), "--format", "pytorch"]);
    assert!(out.status.success());
    let py = String::from_utf8_lossy(&out.stdout);
    assert!(py.contains("nn.BatchNorm2d(32"), "{py}");

    let out = autoarch(&["export", &seed("resnet.star"), "--format", "json"]);
    let v = json(&out);
    assert_eq!(v["fingerprint"], original["fingerprint"]);
    assert!(v["graph"]["nodes"].as_array().unwrap().len() > 10);
}

#[test]
fn ops_and_tasks_list_what_the_language_offers() {
    let out = autoarch(&["ops"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, autoarch_sandbox::reference_markdown());
    assert!(text.contains("`scaled_dot_product_attention(q, k, v, causal=False)`"));

    let out = autoarch(&["tasks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for task in autoarch_sandbox::TaskKind::ALL {
        assert!(text.contains(task.name()), "{text}");
    }
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let out = autoarch(&["check", "/nonexistent/model.star"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/model.star"));

    let out = autoarch(&["check", &seed("cnn.star"), "--task", "imagenet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("see `autoarch tasks`"));

    let out = autoarch(&["export", &seed("cnn.star"), "--format", "onnx"]);
    assert_eq!(out.status.code(), Some(2));

    let out = autoarch(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}
