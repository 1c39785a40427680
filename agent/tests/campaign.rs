//! `autoarch run` end to end through the real binary on a tiny task: a whole campaign with
//! duplicates and promotion; the strategies from the command line and from a file; Ctrl-C and
//! kill -9 followed by a resume that keeps every stored result and duplicates nothing; a machine
//! that cannot evaluate (no device, data gone) stopping the run without poisoning the archive;
//! config errors. The loop's policy in detail is tested in process (`engine.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn autoarch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_autoarch"))
}

/// One width constant and nothing else to edit: the mutation space is the widths 8..256, so a
/// campaign of a few proposals is sure to propose some design twice.
const LINEAR_SEED: &str = "# name: tiny linear\n# task: mqar\nD = 16\n\ndef model(tokens):\n    return linear(embedding(tokens, VOCAB, D), VOCAB)\n";

const MLP_SEED: &str = "# name: tiny mlp\n# task: mqar\nD = 16\n\ndef mlp(h):\n    return linear(gelu(linear(h, 2 * D)), D)\n\ndef model(tokens):\n    h = embedding(tokens, VOCAB, D)\n    for _ in range(1):\n        h = h + mlp(rms_norm(h))\n    return linear(rms_norm(h), VOCAB)\n";

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tag: String,
}

impl Setup {
    /// A campaign directory with `campaign.toml` (the tiny MQAR, `budget` and `evaluation`
    /// appended to those tables) and the seed files.
    fn new(name: &str, seeds: &[(&str, &str)], budget: &str, evaluation: &str) -> Setup {
        let task = "name = \"mqar\"\nseq_len = 16\nvocab = 16\nkv_pairs = 2\nvalidation_size = 16";
        Setup::on_task(name, seeds, task, budget, evaluation)
    }

    /// The same on any task (`task`: the body of the [task] table).
    fn on_task(
        name: &str,
        seeds: &[(&str, &str)],
        task: &str,
        budget: &str,
        evaluation: &str,
    ) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let mut seed_list = Vec::new();
        for (file, code) in seeds {
            std::fs::write(root.join(file), code).unwrap();
            seed_list.push(format!("{file:?}"));
        }
        let workers = if evaluation.contains("workers") {
            ""
        } else {
            "workers = 2\n"
        };
        let toml = format!(
            "name = \"{name}\"\nseeds = [{}]\n\n[task]\n{task}\n\n[budget]\n{budget}\n\n[evaluation]\n{workers}batch_size = 8\nmemory_limit_mb = 1024\ntimeout_seconds = 120\n{evaluation}\n",
            seed_list.join(", ")
        );
        std::fs::write(root.join("campaign.toml"), toml).unwrap();
        Setup {
            _dir: dir,
            root,
            tag: format!("campaign-{name}-{}", std::process::id()),
        }
    }

    fn command(&self) -> Command {
        let mut c = autoarch();
        c.current_dir(&self.root)
            .arg("run")
            .arg("campaign.toml")
            .env("AUTOARCH_TEST_TAG", &self.tag)
            .env_remove("AUTOARCH_ARCHIVE");
        c
    }

    fn run(&self) -> Output {
        self.command().output().unwrap()
    }

    /// Any other `autoarch` command, in the campaign directory on its archive.
    fn autoarch(&self, args: &[&str]) -> Output {
        autoarch()
            .current_dir(&self.root)
            .args(["--archive", "autoarch-archive"])
            .args(args)
            .output()
            .unwrap()
    }

    fn spawn(&self) -> (Child, mpsc::Receiver<String>) {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    fn archive(&self) -> Records {
        let out = self.root.join("export.jsonl");
        let _ = std::fs::remove_file(&out);
        let o = autoarch()
            .current_dir(&self.root)
            .args(["--archive", "autoarch-archive", "export"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Records::read(&out)
    }

    /// The worker processes this campaign started that are still alive.
    fn workers_alive(&self) -> Vec<u32> {
        let tag = format!("AUTOARCH_TEST_TAG={}", self.tag);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("procfs").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let alive = std::fs::read_to_string(entry.path().join("stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            if let Ok(env) = std::fs::read(entry.path().join("environ")) {
                if alive && env.split(|&b| b == 0).any(|kv| kv == tag.as_bytes()) {
                    found.push(pid);
                }
            }
        }
        found
    }
}

/// The archive as its JSON-lines export.
struct Records {
    candidates: Vec<Value>,
    evaluations: Vec<Value>,
    campaign: Option<Value>,
}

impl Records {
    fn read(path: &Path) -> Records {
        let mut r = Records {
            candidates: vec![],
            evaluations: vec![],
            campaign: None,
        };
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if let Some(c) = v.get("candidate") {
                r.candidates.push(c.clone());
            } else if let Some(e) = v.get("evaluation") {
                r.evaluations.push(e.clone());
            } else if let Some(c) = v.get("campaign") {
                r.campaign = Some(c.clone());
            }
        }
        r
    }

    fn proposed(&self) -> Vec<&Value> {
        self.candidates
            .iter()
            .filter(|c| c["proposer"] != "seed")
            .collect()
    }

    fn evaluations_of(&self, id: u64) -> Vec<&Value> {
        self.evaluations
            .iter()
            .filter(|e| e["candidate"] == id)
            .collect()
    }

    /// Each (candidate, fidelity, seed) is evaluated at most once.
    fn assert_no_evaluation_twice(&self) {
        let mut seen = BTreeSet::new();
        for e in &self.evaluations {
            let key = (
                e["candidate"].as_u64().unwrap(),
                e["fidelity"].as_u64().unwrap(),
                e["seed"].as_u64().unwrap(),
            );
            assert!(seen.insert(key), "evaluated twice: {key:?}");
        }
    }

    /// Every candidate that traced and is not a duplicate has its short-budget evaluation.
    fn assert_all_evaluated(&self) {
        for c in &self.candidates {
            if c["duplicate_of"].is_null() && c["fingerprint"] != "" {
                let id = c["id"].as_u64().unwrap();
                assert!(
                    self.evaluations_of(id).iter().any(|e| e["fidelity"] == 0),
                    "candidate {id} was never evaluated"
                );
            }
        }
    }

    fn state(&self) -> &Value {
        &self.campaign.as_ref().expect("a campaign record")["state"]
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn wait_for(
    rx: &mpsc::Receiver<String>,
    mut done: impl FnMut(&str) -> bool,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let stop = done(&line);
            lines.push(line);
            if stop {
                return lines;
            }
        }
    }
    panic!("timed out; saw:\n{}", lines.join("\n"));
}

/// `#ID name [fidelity F, seed S]: ok score X` lines: what the campaign reported done.
fn reported(lines: &[String]) -> BTreeMap<(u64, u64, u64), String> {
    let mut out = BTreeMap::new();
    for l in lines {
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let Some((id, tail)) = rest.split_once(' ') else {
            continue;
        };
        let Some((_, key)) = tail.rsplit_once("[fidelity ") else {
            continue;
        };
        let Some((fs, status)) = key.split_once("]: ") else {
            continue;
        };
        let Some((f, s)) = fs.split_once(", seed ") else {
            continue;
        };
        out.insert(
            (id.parse().unwrap(), f.parse().unwrap(), s.parse().unwrap()),
            status.to_string(),
        );
    }
    out
}

#[test]
fn a_campaign_deduplicates_promotes_and_stops_at_the_candidate_budget() {
    let s = Setup::new(
        "dedupe",
        &[("linear.star", LINEAR_SEED)],
        "max_candidates = 8",
        "steps = 4\npromote_fraction = 0.5\npromote_seeds = 1\npromote_factor = 2.0",
    );
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
