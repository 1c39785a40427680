//! `autoarch run` end to end through the real binary on a tiny task: a whole campaign with
//! duplicates and promotion; the strategies from the command line and from a file; Ctrl-C and
//! kill -9 followed by a resume that keeps every stored result and duplicates nothing; a machine
//! that cannot evaluate (no device, data gone) stopping the run without poisoning the archive;
//! config errors. The loop's policy in detail is tested in process (`engine.rs`).

mod common;

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

// One campaign checked as it goes, in order: the checks share the run they inspect.
#[allow(clippy::too_many_lines)]
#[test]
fn a_campaign_deduplicates_promotes_and_stops_at_the_candidate_budget() {
    let s = Setup::new(
        "dedupe",
        &[("linear.star", LINEAR_SEED)],
        "max_candidates = 8",
        "steps = 4\npromote_fraction = 0.5\npromote_seeds = 1\npromote_factor = 2.0",
    );
    // Width edits only: a space small enough to repeat itself within the budget (the proposer
    // draws again past known designs, and the other kinds open a space too large to).
    let file = s.root.join("campaign.toml");
    let mut toml = std::fs::read_to_string(&file).unwrap();
    toml.push_str("\n[proposer]\nedits = [\"width\"]\n");
    std::fs::write(&file, toml).unwrap();
    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("finished"), "{out}");
    assert!(out.contains("worker utilisation"), "{out}");
    assert!(out.contains("autoarch show"), "{out}");
    let r = s.archive();
    assert_eq!(
        r.proposed().len(),
        8,
        "the candidate budget counts every proposal"
    );
    r.assert_no_evaluation_twice();
    r.assert_all_evaluated();

    // Duplicates are recorded, point at the first, and are never trained.
    let dups: Vec<&Value> = r
        .proposed()
        .into_iter()
        .filter(|c| !c["duplicate_of"].is_null())
        .collect();
    assert!(
        !dups.is_empty(),
        "a width-only space must repeat itself within 8 proposals"
    );
    for d in &dups {
        assert!(r.evaluations_of(d["id"].as_u64().unwrap()).is_empty());
        let first = d["duplicate_of"].as_u64().unwrap();
        let original = r.candidates.iter().find(|c| c["id"] == first).unwrap();
        assert_eq!(original["fingerprint"], d["fingerprint"]);
    }
    let distinct: BTreeSet<&str> = r
        .candidates
        .iter()
        .map(|c| c["fingerprint"].as_str().unwrap())
        .collect();
    let short = r.evaluations.iter().filter(|e| e["fidelity"] == 0).count();
    assert_eq!(
        short,
        distinct.len(),
        "one short evaluation per distinct design"
    );

    // Promotion: the best short-budget candidate is among the promoted, each promoted candidate
    // has runs at the longer budget with seeds 0 and 1, and nothing else has any.
    let promoted: BTreeSet<u64> = r.state()["promoted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        promoted.len() >= distinct.len() / 2,
        "{promoted:?} of {}",
        distinct.len()
    );
    let best = r
        .evaluations
        .iter()
        .filter(|e| e["fidelity"] == 0 && e["outcome"] == "ok")
        .max_by(|a, b| {
            a["metrics"]["score"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["metrics"]["score"].as_f64().unwrap())
        })
        .unwrap();
    assert!(promoted.contains(&best["candidate"].as_u64().unwrap()));
    for e in r.evaluations.iter().filter(|e| e["fidelity"] == 1) {
        assert!(promoted.contains(&e["candidate"].as_u64().unwrap()));
    }
    for id in &promoted {
        let seeds: BTreeSet<u64> = r
            .evaluations_of(*id)
            .iter()
            .filter(|e| e["fidelity"] == 1)
            .map(|e| e["seed"].as_u64().unwrap())
            .collect();
        assert_eq!(seeds, BTreeSet::from([0, 1]), "candidate {id}");
        assert!(r
            .evaluations_of(*id)
            .iter()
            .filter(|e| e["fidelity"] == 1)
            .all(|e| e["timings"]["steps"] == 8.0));
    }

    // Rankings use the promoted runs: `top` shows the mean over the two longer runs.
    let top = s.autoarch(&["top", "-n", "50", "--json"]);
    assert!(top.status.success(), "{}", text(&top));
    let top: Value = serde_json::from_slice(&top.stdout).unwrap();
    let rows = top.as_array().unwrap();
    let row = rows
        .iter()
        .find(|row| promoted.contains(&row["id"].as_u64().unwrap()))
        .unwrap();
    let id = row["id"].as_u64().unwrap();
    let long: Vec<f64> = r
        .evaluations_of(id)
        .iter()
        .filter(|e| e["fidelity"] == 1)
        .map(|e| e["metrics"]["score"].as_f64().unwrap())
        .collect();
    let mean = long.iter().sum::<f64>() / long.len() as f64;
    assert!(
        (row["value"].as_f64().unwrap() - mean).abs() < 1e-9,
        "{row} vs {long:?}"
    );

    // The report compares the best with the seed and says how to get a random baseline.
    let report = s.autoarch(&["report"]);
    assert!(report.status.success(), "{}", text(&report));
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(md.contains("## Best candidates"), "{md}");
    assert!(md.contains("best seed: #0 tiny linear"), "{md}");
    assert!(md.contains("--random-baseline"), "{md}");
    assert!(md.contains("```python"), "{md}");

    // The log is in the archive.
    let log = std::fs::read_to_string(s.root.join("autoarch-archive/campaign.log")).unwrap();
    assert!(log.contains("campaign run ended"), "{log}");
    assert!(s.workers_alive().is_empty());
}

#[test]
fn the_random_baseline_is_evaluated_and_compared() {
    let s = Setup::new(
        "random",
        &[("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)],
        "max_candidates = 2",
        "steps = 4\npromote_fraction = 0.0",
    );
    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let report = s.autoarch(&["report", "--random-baseline", "3"]);
    assert!(report.status.success(), "{}", text(&report));
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(
        md.contains("random sampling (same proposer's space, no selection): mean"),
        "{md}"
    );
    assert!(md.contains("over 3 candidates"), "{md}");
    assert!(
        md.contains("relative improvement over random sampling"),
        "{md}"
    );
    let r = s.archive();
    let random: Vec<&Value> = r
        .candidates
        .iter()
        .filter(|c| {
            c["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "random-baseline")
        })
        .collect();
    let evaluated = random
        .iter()
        .filter(|c| !r.evaluations_of(c["id"].as_u64().unwrap()).is_empty())
        .count();
    assert_eq!(evaluated, 3);
    // A second report does not sample again.
    let again = s.autoarch(&["report", "--random-baseline", "3"]);
    assert!(again.status.success());
    assert_eq!(s.archive().candidates.len(), r.candidates.len());
}

/// Starts a campaign of longer jobs, waits until it has reported `done` evaluations, then
/// sends `signal`.
fn interrupt_mid_run(s: &Setup, done: usize, signal: i32) -> (Output, Vec<String>) {
    let (mut child, rx) = s.spawn();
    let mut seen = 0;
    let lines = wait_for(
        &rx,
        |l| {
            if l.contains("[fidelity ") {
                seen += 1;
            }
            seen >= done
        },
        Duration::from_secs(240),
    );
    // SAFETY: signalling a child we started and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the campaign did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest: Vec<String> = rx.try_iter().collect();
    let mut all = lines;
    all.append(&mut rest);
    let mut stdout = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    (
        Output {
            status,
            stdout: stdout.into_bytes(),
            stderr: all.join("\n").into_bytes(),
        },
        all,
    )
}

fn wait_for_workers_to_exit(s: &Setup) {
    let start = Instant::now();
    while !s.workers_alive().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "workers outlived the campaign: {:?}",
            s.workers_alive()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_the_same_command_resumes() {
    let s = Setup::new(
        "sigint",
        &[("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)],
        "max_candidates = 5",
        "steps = 150\npromote_fraction = 0.0",
    );
    let (o, lines) = interrupt_mid_run(&s, 2, libc::SIGINT);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("interrupted"), "{}", text(&o));
    assert!(out.contains("resume: run the same command again"), "{out}");
    wait_for_workers_to_exit(&s);
    let before = s.archive();
    let done = reported(&lines);
    assert!(done.len() >= 2);
    for (id, f, seed) in done.keys() {
        assert!(
            before
                .evaluations
                .iter()
                .any(|e| e["candidate"] == *id && e["fidelity"] == *f && e["seed"] == *seed),
            "reported evaluation {id}/{f}/{seed} is not stored"
        );
    }

    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("finished"),
        "{}",
        text(&o)
    );
    let after = s.archive();
    assert_eq!(after.proposed().len(), 5);
    after.assert_no_evaluation_twice();
    after.assert_all_evaluated();
    for e in &before.evaluations {
        assert!(
            after.evaluations.contains(e),
            "a stored evaluation changed or vanished: {e}"
        );
    }
}

#[test]
fn kill_9_mid_run_loses_nothing_and_the_resume_duplicates_nothing() {
    let s = Setup::new(
        "kill9",
        &[("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)],
        "max_candidates = 6",
        "steps = 120\npromote_fraction = 0.34\npromote_seeds = 1",
    );
    let (o, lines) = interrupt_mid_run(&s, 3, libc::SIGKILL);
    assert_eq!(o.status.code(), None, "killed by a signal");
    // The workers notice their parent is gone and exit, mid-job or not.
    wait_for_workers_to_exit(&s);
    let before = s.archive();
    let done = reported(&lines);
    assert!(done.len() >= 3, "{lines:?}");
    for ((id, f, seed), status) in &done {
        let e = before
            .evaluations
            .iter()
            .find(|e| e["candidate"] == *id && e["fidelity"] == *f && e["seed"] == *seed)
            .unwrap_or_else(|| panic!("reported evaluation {id}/{f}/{seed} was lost"));
        if let Some(score) = status.strip_prefix("ok score ") {
            let stored = e["metrics"]["score"].as_f64().unwrap();
            assert_eq!(format!("{stored:.4}"), score);
        }
    }
    let spent_before = before.campaign.as_ref().map_or(0.0, |c| {
        c["state"]["elapsed_seconds"].as_f64().unwrap_or(0.0)
    });
    let proposed_before = before.proposed().len();
    let owed = before.candidates.iter().any(|c| {
        c["duplicate_of"].is_null()
            && c["fingerprint"] != ""
            && !before.evaluations.iter().any(|e| e["candidate"] == c["id"])
    });
    assert!(
        proposed_before < 6 || owed,
        "the kill came after the campaign's work was done"
    );

    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let after = s.archive();
    // Nothing duplicated: the candidate budget continued from where it was, no job ran twice.
    assert_eq!(
        after.proposed().len(),
        6,
        "{proposed_before} before the kill"
    );
    after.assert_no_evaluation_twice();
    after.assert_all_evaluated();
    for e in &before.evaluations {
        assert!(
            after.evaluations.contains(e),
            "a stored evaluation changed or vanished: {e}"
        );
    }
    for c in &before.candidates {
        assert!(
            after.candidates.contains(c),
            "a stored candidate changed or vanished: {c}"
        );
    }
    // Promoted candidates got all their runs, including any cut off by the kill.
    for id in after.state()["promoted"].as_array().unwrap() {
        let long = after
            .evaluations_of(id.as_u64().unwrap())
            .iter()
            .filter(|e| e["fidelity"] == 1)
            .count();
        assert_eq!(long, 2, "candidate {id}");
    }
    // The wall-clock budget goes on from the time stored before the kill.
    assert!(after.state()["elapsed_seconds"].as_f64().unwrap() > spent_before);
}

#[test]
fn broken_configs_are_refused_with_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "name = \"x\"\n[task]\nname = \"mqar\"\n[evaluation]\nworkers = 0\n",
            "`evaluation.workers` must be between 1 and 64",
        ),
        (
            "name = \"x\"\n[task]\nname = \"mqar\"\n[budget]\nmax_candidate = 3\n",
            "unknown field `max_candidate`",
        ),
        (
            "name = \"x\"\n[task]\nname = \"mqar\"\n[budget]\nmax_seconds = \"soon\"\n",
            "line 5",
        ),
        ("name = \"x\"\n", "missing field `task`"),
        (
            "name = \"x\"\n[task]\nname = \"imagenet\"\n",
            "`task.name` must be one of",
        ),
    ];
    for (i, (toml, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let o = autoarch()
            .current_dir(dir.path())
            .arg("run")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expected), "{toml:?}: {err}");
        assert!(err.contains(&format!("c{i}.toml")), "{err}");
        assert!(
            !dir.path().join("autoarch-archive").exists(),
            "nothing is created for a broken config"
        );
    }
    for seeds in ["[\"nope.star\"]", "[\"library:nope\"]"] {
        let path = dir.path().join("seeds.toml");
        std::fs::write(
            &path,
            format!("name = \"x\"\nseeds = {seeds}\n[task]\nname = \"mqar\"\n"),
        )
        .unwrap();
        let o = autoarch()
            .current_dir(dir.path())
            .arg("run")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("does not exist"),
            "{}",
            text(&o)
        );
        assert!(!dir.path().join("autoarch-archive").exists());
    }
    let o = autoarch()
        .current_dir(dir.path())
        .args(["run", "missing.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.toml"));
    let o = autoarch()
        .current_dir(dir.path())
        .args(["run", "--workers", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("evaluation.workers"));
    let o = autoarch()
        .current_dir(dir.path())
        .args(["run", "--task", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // `init` writes the commented default, and refuses to overwrite it.
    let o = autoarch()
        .current_dir(dir.path())
        .args(["init", "mine.toml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let written = std::fs::read_to_string(dir.path().join("mine.toml")).unwrap();
    assert!(
        written.contains("[budget]") && written.contains("# "),
        "{written}"
    );
    let o = autoarch()
        .current_dir(dir.path())
        .args(["init", "mine.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_second_campaign_on_the_same_archive_is_refused() {
    let s = Setup::new(
        "first",
        &[("linear.star", LINEAR_SEED)],
        "max_candidates = 1",
        "steps = 2\npromote_fraction = 0.0",
    );
    assert!(s.run().status.success());
    let other = s.root.join("other.toml");
    let text_ = std::fs::read_to_string(s.root.join("campaign.toml"))
        .unwrap()
        .replace("name = \"first\"", "name = \"second\"");
    std::fs::write(&other, text_).unwrap();
    let o = autoarch()
        .current_dir(&s.root)
        .arg("run")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds campaign \"first\""),
        "{}",
        text(&o)
    );
}

#[test]
fn a_random_baseline_without_an_archive_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = autoarch()
        .current_dir(dir.path())
        .args(["--archive", "nowhere", "report", "--random-baseline", "2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no archive at nowhere"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("nowhere").exists());
}

#[test]
fn the_strategies_run_from_the_command_line_and_from_a_file() {
    let s = Setup::new(
        "evolution",
        &[("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)],
        "max_candidates = 3",
        "steps = 4\npromote_fraction = 0.5",
    );
    let o = s
        .command()
        .args(["--search", "evolution"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("evolution search"),
        "{}",
        text(&o)
    );
    let r = s.archive();
    assert_eq!(r.proposed().len(), 3);
    assert_eq!(
        r.campaign.as_ref().unwrap()["config"]["search"]["strategy"],
        "evolution"
    );
    assert!(
        r.state()["promoted"].as_array().unwrap().is_empty(),
        "no promotion unless configured"
    );
    r.assert_all_evaluated();

    let s = Setup::new(
        "random",
        &[("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)],
        "max_candidates = 3",
        "steps = 4\n\n[search]\nstrategy = \"random\"",
    );
    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let r = s.archive();
    let seeds: Vec<&Value> = r
        .candidates
        .iter()
        .filter(|c| c["proposer"] == "seed")
        .map(|c| &c["id"])
        .collect();
    for c in r.proposed() {
        assert!(seeds.contains(&&c["parents"][0]), "{c}");
    }
    assert_eq!(r.proposed().len(), 3);
    let report = s.autoarch(&["report"]);
    assert!(String::from_utf8_lossy(&report.stdout).contains("search: random"));
}

/// Every evaluation stored succeeded: a failure of the machine left no trace on a candidate.
fn assert_no_failed_evaluation(r: &Records) {
    for e in &r.evaluations {
        assert_eq!(e["outcome"], "ok", "a failed evaluation was stored: {e}");
    }
}

#[test]
fn a_device_that_is_not_there_stops_the_campaign_and_the_same_command_resumes() {
    if cfg!(feature = "gpu") {
        return; // This build has the device; the fault cannot happen.
    }
    let s = Setup::new(
        "device",
        &[("mlp.star", MLP_SEED), ("linear.star", LINEAR_SEED)],
        "max_candidates = 2",
        "steps = 4\npromote_fraction = 0.0",
    );
    let o = s.command().env("AUTOARCH_DEVICE", "gpu").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let all = text(&o);
    assert!(
        all.contains("AUTOARCH_DEVICE=gpu needs a build with `--features gpu`"),
        "{all}"
    );
    assert!(all.contains("unset AUTOARCH_DEVICE"), "{all}");
    let r = s.archive();
    assert!(
        r.evaluations.is_empty(),
        "nothing stored against a candidate"
    );
    wait_for_workers_to_exit(&s);

    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("finished"),
        "{}",
        text(&o)
    );
    let r = s.archive();
    for c in r.candidates.iter().filter(|c| c["proposer"] == "seed") {
        let evals = r.evaluations_of(c["id"].as_u64().unwrap());
        assert!(evals.iter().any(|e| e["outcome"] == "ok"), "{c}");
    }
    r.assert_all_evaluated();
    r.assert_no_evaluation_twice();

    // The random baseline meets the same machine: it stops, and no report pretends otherwise.
    let o = autoarch()
        .current_dir(&s.root)
        .env("AUTOARCH_DEVICE", "gpu")
        .args([
            "--archive",
            "autoarch-archive",
            "report",
            "--random-baseline",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("random baseline is incomplete"),
        "{}",
        text(&o)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("## Best candidates"));
    let after = s.archive();
    assert_eq!(
        after.evaluations.len(),
        r.evaluations.len(),
        "nothing stored"
    );
}

#[test]
fn data_that_goes_missing_stops_the_campaign_and_the_same_command_resumes() {
    let seeds = [
        ("mlp.star", MLP_SEED),
        ("linear.star", LINEAR_SEED),
        ("wide.star", &*LINEAR_SEED.replace("D = 16", "D = 24")),
        ("narrow.star", &*LINEAR_SEED.replace("D = 16", "D = 8")),
    ];
    let s = Setup::on_task(
        "data",
        &seeds,
        "name = \"charlm\"\ndata = \"text.txt\"\nseq_len = 16\nvalidation_size = 8",
        "max_candidates = 2",
        "steps = 200\npromote_fraction = 0.0\nworkers = 1",
    );
    let text_file = s.root.join("text.txt");
    let corpus = "To be, or not to be, that is the question. ".repeat(40);
    // Missing from the start: refused before anything is created.
    let o = s.run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("text.txt"),
        "{}",
        text(&o)
    );
    assert!(!s.root.join("autoarch-archive/db").exists());

    // Gone in the middle of the run: the run stops and names it; what was done is kept.
    std::fs::write(&text_file, &corpus).unwrap();
    let (mut child, rx) = s.spawn();
    wait_for(&rx, |l| l.contains("[fidelity "), Duration::from_secs(120));
    std::fs::remove_file(&text_file).unwrap();
    let status = child.wait().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let all = rest.join("\n");
    assert!(all.contains("text.txt: no such file or directory"), "{all}");
    assert!(all.contains("run the same command again"), "{all}");
    wait_for_workers_to_exit(&s);
    let r = s.archive();
    assert_no_failed_evaluation(&r);
    let owed = r
        .candidates
        .iter()
        .filter(|c| r.evaluations_of(c["id"].as_u64().unwrap()).is_empty());
    assert!(owed.count() >= 1, "some seed is still owed");

    // Put back: the same command trains every seed and finishes.
    std::fs::write(&text_file, &corpus).unwrap();
    let o = s.run();
    assert!(o.status.success(), "{}", text(&o));
    let after = s.archive();
    assert_no_failed_evaluation(&after);
    after.assert_all_evaluated();
    after.assert_no_evaluation_twice();
    for e in &r.evaluations {
        assert!(
            after.evaluations.contains(e),
            "a stored evaluation changed: {e}"
        );
    }
    assert_eq!(
        after
            .candidates
            .iter()
            .filter(|c| c["proposer"] == "seed")
            .count(),
        4
    );
}
