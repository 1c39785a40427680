//! The dependency rules of ARCHITECTURE.md, checked against `cargo metadata`.

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate and the names of its direct dependencies.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn crates_depend_only_in_the_documented_direction() {
    let deps = dependencies();
    let uses = |krate: &str, dep: &str| deps[krate].iter().any(|d| d == dep);
    let workspace = [
        "autoarch-sandbox",
        "autoarch-evaluator",
        "autoarch-archive",
        "autoarch-agent",
    ];
    for w in workspace {
        assert!(deps.contains_key(w), "{w} is a workspace member");
    }
    // The language depends on no other workspace crate, and on no runtime, store or framework.
    for dep in workspace.iter().chain(&[
        "burn",
        "sled",
        "tokio",
        "reqwest",
        "async-openai",
        "minijinja",
    ]) {
        assert!(
            !uses("autoarch-sandbox", dep),
            "autoarch-sandbox must not use {dep}"
        );
    }
    for krate in ["autoarch-evaluator", "autoarch-archive"] {
        assert!(
            !uses(krate, "autoarch-agent"),
            "{krate} must not use the agent"
        );
    }
    // Each heavy dependency lives in one crate.
    let only_in = [("burn", "autoarch-evaluator"), ("sled", "autoarch-archive")];
    for (dep, home) in only_in {
        for krate in workspace.iter().filter(|k| **k != home) {
            assert!(
                !uses(krate, dep),
                "{dep} belongs in {home} only, but {krate} uses it"
            );
        }
    }
    for dep in ["tokio", "reqwest", "async-openai"] {
        for krate in workspace.iter().filter(|k| **k != "autoarch-agent") {
            assert!(
                !uses(krate, dep),
                "{dep} belongs in the agent only, but {krate} uses it"
            );
        }
    }
}
