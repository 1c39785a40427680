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

/// Each top-level module of a crate's `src/` and the top-level modules its code names
/// (`crate::NAME`; comments and doc links left out).
fn module_uses(krate: &str) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut uses: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main" | "bin" | "cli") {
            continue; // the crate root and the binary may name anything
        }
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut named = |prefix: &str, text: &str| {
            for (i, _) in text.match_indices(prefix) {
                let rest = &text[i + prefix.len()..];
                let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    group
                        .split(',')
                        .map(|n| n.trim().split("::").next().unwrap_or("").trim())
                        .collect()
                } else {
                    vec![rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")]
                };
                for n in names.into_iter().filter(|n| !n.is_empty() && *n != module) {
                    if n.chars().next().is_some_and(|c| c.is_lowercase()) {
                        uses.entry(module.clone())
                            .or_default()
                            .insert(n.to_string());
                    }
                }
            }
        };
        named("crate::", &text);
        uses.entry(module).or_default();
    }
    uses
}

/// A cycle among the modules, if there is one.
fn cycle(uses: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        uses: &BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in uses.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, uses, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for m in uses.keys() {
        if let Some(c) = visit(m, uses, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_crate_has_a_cycle_among_its_modules() {
    for krate in ["sandbox", "evaluator", "archive", "agent"] {
        let uses = module_uses(krate);
        assert!(uses.len() >= 4, "{krate}: {uses:?}");
        if let Some(c) = cycle(&uses) {
            panic!("{krate} has a module cycle: {}", c.join(" -> "));
        }
    }
    // The checker finds a cycle when there is one.
    let mut looped = module_uses("agent");
    looped
        .entry("config".into())
        .or_default()
        .insert("campaign".into());
    assert!(cycle(&looped).is_some());
}
