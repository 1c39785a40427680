//! What the binary tests of campaigns share: a campaign directory on the tiny MQAR task, its
//! archive as records, and reading what a running campaign reports.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn autoarch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_autoarch"))
}

/// One width constant and nothing else to edit: the mutation space is the widths 8..256, so a
/// campaign of a few proposals is sure to propose some design twice.
pub const LINEAR_SEED: &str = "# name: tiny linear\n# task: mqar\nD = 16\n\ndef model(tokens):\n    return linear(embedding(tokens, VOCAB, D), VOCAB)\n";

pub const MLP_SEED: &str = "# name: tiny mlp\n# task: mqar\nD = 16\n\ndef mlp(h):\n    return linear(gelu(linear(h, 2 * D)), D)\n\ndef model(tokens):\n    h = embedding(tokens, VOCAB, D)\n    for _ in range(1):\n        h = h + mlp(rms_norm(h))\n    return linear(rms_norm(h), VOCAB)\n";

pub struct Setup {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub tag: String,
}

impl Setup {
    /// A campaign directory with `campaign.toml` (the tiny MQAR, `budget` and `evaluation`
    /// appended to those tables) and the seed files.
    pub fn new(name: &str, seeds: &[(&str, &str)], budget: &str, evaluation: &str) -> Setup {
        let task = "name = \"mqar\"\nseq_len = 16\nvocab = 16\nkv_pairs = 2\nvalidation_size = 16";
        Setup::on_task(name, seeds, task, budget, evaluation)
    }

    /// The same on any task (`task`: the body of the [task] table).
    pub fn on_task(
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

    pub fn command(&self) -> Command {
        let mut c = autoarch();
        c.current_dir(&self.root)
            .arg("run")
            .arg("campaign.toml")
            .env("AUTOARCH_TEST_TAG", &self.tag)
            .env_remove("AUTOARCH_ARCHIVE");
        c
    }

    pub fn run(&self) -> Output {
        self.command().output().unwrap()
    }

    /// Any other `autoarch` command, in the campaign directory on its archive.
    pub fn autoarch(&self, args: &[&str]) -> Output {
        autoarch()
            .current_dir(&self.root)
            .args(["--archive", "autoarch-archive"])
            .args(args)
            .output()
            .unwrap()
    }

    pub fn spawn(&self) -> (Child, mpsc::Receiver<String>) {
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

    pub fn archive(&self) -> Records {
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

    /// The campaign's live processes whose command line ends with `worker` (the workers that
    /// run jobs) and with `worker --supervise` (supervising workers), as counts.
    pub fn workers_by_kind(&self) -> (usize, usize) {
        let (mut plain, mut supervising) = (0, 0);
        for pid in self.workers_alive() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .collect();
            // The autoarch binary itself, not a launcher (srun) whose arguments end the same.
            let autoarch = args.first().is_some_and(|a| a.ends_with(b"/autoarch"));
            match args.as_slice() {
                [_, b"worker"] if autoarch => plain += 1,
                [_, b"worker", b"--supervise"] if autoarch => supervising += 1,
                _ => {}
            }
        }
        (plain, supervising)
    }

    /// The worker processes this campaign started that are still alive.
    pub fn workers_alive(&self) -> Vec<u32> {
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
pub struct Records {
    pub candidates: Vec<Value>,
    pub evaluations: Vec<Value>,
    pub campaign: Option<Value>,
}

impl Records {
    pub fn read(path: &Path) -> Records {
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

    pub fn proposed(&self) -> Vec<&Value> {
        self.candidates
            .iter()
            .filter(|c| c["proposer"] != "seed")
            .collect()
    }

    pub fn evaluations_of(&self, id: u64) -> Vec<&Value> {
        self.evaluations
            .iter()
            .filter(|e| e["candidate"] == id)
            .collect()
    }

    /// Each (candidate, fidelity, seed) is evaluated at most once.
    pub fn assert_no_evaluation_twice(&self) {
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
    pub fn assert_all_evaluated(&self) {
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

    pub fn state(&self) -> &Value {
        &self.campaign.as_ref().expect("a campaign record")["state"]
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn wait_for(
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
pub fn reported(lines: &[String]) -> BTreeMap<(u64, u64, u64), String> {
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
