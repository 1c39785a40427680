//! Every archive command, driven through the real binary on a temp archive.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use autoarch_archive::testing::{candidate, evaluation, failure};
use autoarch_archive::{Archive, Outcome};

fn autoarch(archive: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoarch"))
        .arg("--archive")
        .arg(archive)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

fn seed(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../seeds")
        .join(name)
        .display()
        .to_string()
}

/// 0 root (0.5) → 1 child (0.7) → 2 grandchild (0.6, lower loss); 3 failed child of 1.
fn hand_built(dir: &Path) {
    let a = Archive::open(dir).unwrap();
    let root = a.insert_candidate(candidate("root", &[])).unwrap();
    let mut c = candidate("child", &[root]);
    c.code = c
        .code
        .replace("return linear", "h = relu(flatten(x))\n    return linear");
    let child = a.insert_candidate(c).unwrap();
    let grand = a
        .insert_candidate(candidate("grandchild", &[child]))
        .unwrap();
    let broken = a.insert_candidate(candidate("broken", &[child])).unwrap();
    a.record_evaluation(evaluation(root, 0.5, 0.9)).unwrap();
    a.record_evaluation(evaluation(child, 0.7, 0.8)).unwrap();
    a.record_evaluation(evaluation(grand, 0.6, 0.4)).unwrap();
    a.record_evaluation(failure(broken, Outcome::Oom, "over its 512 MiB limit"))
        .unwrap();
}

#[test]
fn seed_add_checks_deduplicates_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    let out = autoarch(
        &archive,
        &[
            "seed",
            "add",
            &seed("cnn.star"),
            &seed("resnet.star"),
            "--tag",
            "mine",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added candidate 0: Plain CNN"),
        "{}",
        stdout(&out)
    );

    let out = autoarch(&archive, &["seed", "add", &seed("cnn.star")]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("duplicate:") && stdout(&out).contains("candidate 0 (Plain CNN)")
    );

    let bad = dir.path().join("bad.star");
    std::fs::write(
        &bad,
        "# task: digits\ndef model(x):\n    return linear(x, 10)\n",
    )
    .unwrap();
    let out = autoarch(&archive, &["seed", "add", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refused:"), "{}", stderr(&out));

    let rows = json(&autoarch(&archive, &["ls", "--json"]));
    let rows = rows.as_array().unwrap();
    assert_eq!(
        rows.len(),
        2,
        "the duplicate and the refused file were not stored"
    );
    assert_eq!(rows[0]["proposer"], "human");
    assert_eq!(rows[0]["tags"], serde_json::json!(["mine"]));
    assert_eq!(rows[1]["params"], 37802);
}

#[test]
fn ls_sorts_filters_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    hand_built(&archive);

    let rows = json(&autoarch(&archive, &["ls", "--json"]));
    let first = &rows[0];
    for key in [
        "id",
        "name",
        "proposer",
        "status",
        "fingerprint",
        "parents",
        "params",
        "flops",
        "metrics",
        "score",
        "tags",
    ] {
        assert!(first.get(key).is_some(), "ls --json lacks {key}");
    }
    let ids = |o: &Output| -> Vec<u64> {
        json(o)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(&autoarch(&archive, &["ls", "--sort", "score", "--json"])),
        vec![1, 2, 0, 3]
    );
    assert_eq!(
        ids(&autoarch(
            &archive,
            &["ls", "--sort", "val_loss", "--limit", "2", "--json"]
        )),
        vec![2, 1]
    );
    assert_eq!(
        ids(&autoarch(&archive, &["ls", "--status", "failed", "--json"])),
        vec![3]
    );

    assert_eq!(
        ids(&autoarch(
            &archive,
            &["ls", "--proposer", "mutation", "--limit", "1", "--json"]
        )),
        vec![0]
    );
    assert_eq!(
        ids(&autoarch(&archive, &["ls", "--proposer", "llm", "--json"])),
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(&autoarch(
            &archive,
            &["ls", "--fingerprint", "fp-grand", "--json"]
        )),
        vec![2]
    );
    assert!(autoarch(&archive, &["tag", "1", "keep"]).status.success());
    assert_eq!(
        ids(&autoarch(&archive, &["ls", "--tag", "keep", "--json"])),
        vec![1]
    );
    assert_eq!(
        autoarch(&archive, &["ls", "--proposer", "robot"])
            .status
            .code(),
        Some(2)
    );

    let table = stdout(&autoarch(&archive, &["ls", "--sort", "val_loss"]));
    assert!(
        table.lines().next().unwrap().contains("val_loss"),
        "{table}"
    );
    assert!(table.contains("grandchild"));

    let out = autoarch(&archive, &["ls", "--status", "great"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn show_lineage_diff_top_pareto_tag_verify() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    hand_built(&archive);

    let text = stdout(&autoarch(&archive, &["show", "1"]));
    for part in [
        "candidate 1: child",
        "status       ok",
        "parents      0",
        "children     2, 3",
        "score",
        "0.7000",
        "def model(x):",
        "3 points",
    ] {
        assert!(text.contains(part), "show lacks {part:?}:\n{text}");
    }
    let v = json(&autoarch(&archive, &["show", "3", "--json"]));
    assert_eq!(v["summary"]["status"], "failed");
    assert_eq!(v["evaluations"][0]["outcome"], "oom");
    assert_eq!(v["evaluations"][0]["reason"], "over its 512 MiB limit");

    let text = stdout(&autoarch(&archive, &["lineage", "2"]));
    assert!(text.contains("ancestors\n  1 child [ok]"), "{text}");
    assert!(text.contains("    0 root [ok]"), "{text}");

    let text = stdout(&autoarch(&archive, &["diff", "0", "1"]));
    assert!(text.contains("+    h = relu(flatten(x))"), "{text}");
    assert!(text.starts_with("--- 0 root\n+++ 1 child"), "{text}");

    let v = json(&autoarch(&archive, &["top", "-n", "2", "--json"]));
    assert_eq!(v[0]["id"], 1);
    assert_eq!(v[1]["id"], 2);
    let text = stdout(&autoarch(
        &archive,
        &["top", "--metric", "val_loss", "-n", "1"],
    ));
    assert!(
        text.contains("lower is better") && text.contains("grandchild"),
        "{text}"
    );

    let v = json(&autoarch(
        &archive,
        &["pareto", "--objectives", "score,val_loss", "--json"],
    ));
    let mut front: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    front.sort();
    assert_eq!(front, vec![1, 2], "root is dominated by both");
    let out = autoarch(&archive, &["pareto", "--objectives", "score"]);
    assert_eq!(out.status.code(), Some(2));
    // A metric is a word the tool knows, with its direction; a misspelt one is refused, not
    // ranked the wrong way round.
    for args in [
        &["top", "--metric", "val_acc"][..],
        &["ls", "--sort", "accuracy"],
        &["pareto", "--objectives", "score,size"],
    ] {
        let out = autoarch(&archive, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("score, val_loss, val_accuracy"), "{err}");
    }

    assert!(autoarch(&archive, &["tag", "2", "best-loss"])
        .status
        .success());
    let v = json(&autoarch(&archive, &["show", "2", "--json"]));
    assert_eq!(v["candidate"]["tags"], serde_json::json!(["best-loss"]));

    let out = autoarch(&archive, &["verify"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("ok: 4 candidates"));

    let out = autoarch(&archive, &["show", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no candidate 99"));
}

#[test]
fn export_and_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    hand_built(&archive);
    let file = dir.path().join("all.jsonl");
    let out = autoarch(&archive, &["export", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("exported 8 records"),
        "{}",
        stdout(&out)
    );

    let copy = dir.path().join("copy");
    assert!(autoarch(&copy, &["import", file.to_str().unwrap()])
        .status
        .success());
    let again = dir.path().join("again.jsonl");
    assert!(autoarch(&copy, &["export", again.to_str().unwrap()])
        .status
        .success());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        std::fs::read_to_string(&again).unwrap()
    );

    let out = autoarch(&copy, &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("needs an empty archive"),
        "{}",
        stderr(&out)
    );

    // A file broken halfway stores nothing: the archive stays empty and can take a good file.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        format!("{}\n{}\n{{\"candidate\": 7}}\n", lines[0], lines[1]),
    )
    .unwrap();
    let fresh = dir.path().join("fresh");
    let out = autoarch(&fresh, &["import", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing was imported"),
        "{}",
        stderr(&out)
    );
    assert!(autoarch(&fresh, &["import", file.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn a_held_archive_refuses_writers_and_serves_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    hand_built(&archive);
    let writer = Archive::open(&archive).unwrap();
    let pid = std::process::id();

    let out = autoarch(&archive, &["tag", "0", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("in use by pid {pid}")),
        "{}",
        stderr(&out)
    );

    let out = autoarch(&archive, &["ls"]);
    assert_eq!(out.status.code(), Some(1), "no snapshot yet");
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));

    writer.write_snapshot().unwrap();
    let out = autoarch(&archive, &["ls", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!(
        "archive in use by pid {pid}; showing its snapshot"
    )));
    assert_eq!(json(&out).as_array().unwrap().len(), 4);
}

#[test]
fn review_without_an_archive_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = autoarch(&dir.path().join("none"), &["ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("autoarch seed add"),
        "{}",
        stderr(&out)
    );
}
