//! The final protocol: every design it scores — each campaign's incumbent, every seed, the
//! random-sampled population — is trained the same way with fresh seeds, outside the search
//! budget. Runs are kept in `final.jsonl` under a key of (fingerprint, task settings, steps,
//! seed), so that a design two campaigns found is trained once, and the same command resumes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use autoarch_evaluator::{Job, JobLimits, Status, TaskConfig, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::campaign::jobs::score_of;
use crate::config::CampaignConfig;
use crate::machine::{Evaluate, MachineError};

/// Which budget a final run trains for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// The search's short budget.
    Short,
    /// `final.long_factor` × that.
    Long,
}

/// How a final run trains: at a budget, and for the learning-rate sweep, at a rate of its own
/// (`None`: the search's rate).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub budget: Budget,
    /// The multiple of the search's steps (1 for the short budget).
    pub factor: f64,
    pub learning_rate: Option<f64>,
}

impl Setting {
    /// The search's budget at the search's rate.
    pub const SHORT: Setting = Setting {
        budget: Budget::Short,
        factor: 1.0,
        learning_rate: None,
    };

    pub fn at_rate(self, learning_rate: Option<f64>) -> Setting {
        Setting {
            learning_rate,
            ..self
        }
    }
}

/// One stored final run (a line of `final.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalRun {
    pub key: String,
    pub fingerprint: String,
    pub budget: Budget,
    pub seed: u64,
    /// The learning rate it trained with.
    #[serde(default)]
    pub learning_rate: f64,
    pub status: Status,
    pub score: Option<f64>,
    pub wall_seconds: f64,
}

/// A design to train, and the campaign config whose settings it trains with.
#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    pub code: String,
    pub fingerprint: String,
}

/// The key of a run: the same design, task settings, steps and seed train the same.
pub fn key(fingerprint: &str, task: &TaskConfig, train: &TrainConfig) -> String {
    let settings = serde_json::to_string(&(task, train)).unwrap_or_default();
    format!(
        "{fingerprint}:{}",
        &blake3::hash(settings.as_bytes()).to_hex()[..16]
    )
}

/// The final runs stored so far; new ones are appended as they finish.
pub struct Store {
    path: PathBuf,
    runs: BTreeMap<String, FinalRun>,
}

impl Store {
    /// Reads `final.jsonl` in `dir`. A line cut short by a kill is skipped (and run again).
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        let path = dir.join("final.jsonl");
        let mut runs = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if !text.is_empty() && !text.ends_with('\n') {
                    // End the torn line, so that the next run appended starts a line of its own.
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(&path)?
                        .write_all(b"\n")?;
                }
                for line in text.lines() {
                    if let Ok(run) = serde_json::from_str::<FinalRun>(line) {
                        runs.insert(run.key.clone(), run);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Store { path, runs })
    }

    pub fn get(&self, key: &str) -> Option<&FinalRun> {
        self.runs.get(key)
    }

    fn append(&mut self, run: FinalRun) -> std::io::Result<()> {
        let mut line = serde_json::to_string(&run).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        self.runs.insert(run.key.clone(), run);
        Ok(())
    }
}

/// The training config of a final run.
pub fn train_config(config: &CampaignConfig, setting: Setting, seed: u64) -> TrainConfig {
    let mut t = config.train_config(autoarch_archive::Fidelity::SHORT, seed);
    if setting.budget == Budget::Long {
        let factor = setting.factor;
        t.steps = t.steps.map(|s| ((s as f64) * factor).round() as u64);
        t.seconds = t.seconds.map(|s| s * factor);
    }
    if let Some(lr) = setting.learning_rate {
        t.learning_rate = lr;
    }
    t
}

/// A run the protocol owes.
#[derive(Clone, Debug)]
pub struct Owed {
    pub key: String,
    pub fingerprint: String,
    pub budget: Budget,
    pub seed: u64,
    pub learning_rate: f64,
    pub job: Job,
    pub limits: JobLimits,
}

/// The final protocol is outside the search's budget: its jobs get this many times the search's
/// timeout (scaled by the budget's factor), so that a slower or busier machine does not fail a
/// design the search trained in time. (At the search's own timeout, the standard suite's 30 s,
/// its slowest designs timed out at the long budget while the machine was also compiling.)
pub const TIMEOUT_FACTOR: f64 = 4.0;

/// A final run's timeout at `setting`.
fn timeout(config: &CampaignConfig, setting: Setting) -> Duration {
    Duration::from_secs_f64(
        config.evaluation.timeout_seconds * setting.factor.max(1.0) * TIMEOUT_FACTOR,
    )
}

/// The runs of `subject` not in the store yet.
pub fn owed(
    store: &Store,
    config: &CampaignConfig,
    subject: &Subject,
    seeds: &[u64],
    settings: &[Setting],
) -> Vec<Owed> {
    let mut out = Vec::new();
    for &setting in settings {
        for &seed in seeds {
            let train = train_config(config, setting, seed);
            let key = key(&subject.fingerprint, &config.task, &train);
            if store.get(&key).is_some() || out.iter().any(|o: &Owed| o.key == key) {
                continue;
            }
            out.push(Owed {
                key: key.clone(),
                fingerprint: subject.fingerprint.clone(),
                budget: setting.budget,
                seed,
                learning_rate: train.learning_rate,
                job: Job {
                    id: format!("final/{key}"),
                    code: subject.code.clone(),
                    task: config.task.clone(),
                    train,
                    limits: config.limits(),
                },
                limits: JobLimits {
                    timeout: timeout(config, setting),
                    memory_mb: config.evaluation.memory_limit_mb,
                },
            });
        }
    }
    out
}

/// Runs what is owed on the evaluator's workers, storing each run as it finishes. A lost
/// worker's run goes again (at most 3 times); any other failure of the machine stops it. Once
/// `cancel` is set, running jobs stop and nothing more starts; what was cancelled is not
/// stored, so it runs next time.
pub async fn run(
    evaluator: Arc<dyn Evaluate>,
    store: &mut Store,
    owed: Vec<Owed>,
    cancel: Arc<AtomicBool>,
    mut on_done: impl FnMut(&FinalRun),
) -> Result<(), MachineError> {
    let mut queue: std::collections::VecDeque<(Owed, u32)> =
        owed.into_iter().map(|o| (o, 0)).collect();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < evaluator.capacity() && !cancel.load(Ordering::SeqCst) {
            let Some((o, lost)) = queue.pop_front() else {
                break;
            };
            let ev = Arc::clone(&evaluator);
            let cancel = Arc::clone(&cancel);
            running.spawn(async move {
                let r = ev.evaluate(o.job.clone(), o.limits, cancel).await;
                (o, lost, r)
            });
        }
        let Some(done) = running.join_next().await else {
            return Ok(());
        };
        let (o, lost, result) = done.map_err(|e| MachineError::Trace(e.to_string()))?;
        let r = match result {
            Err(MachineError::WorkerLost { took_job, .. }) if lost < 3 => {
                queue.push_front((o, lost + u32::from(took_job)));
                continue;
            }
            Err(e) => {
                cancel.store(true, Ordering::SeqCst);
                while running.join_next().await.is_some() {}
                return Err(e);
            }
            Ok(r) if r.status == Status::Cancelled => continue,
            Ok(r) => r,
        };
        let run = FinalRun {
            key: o.key,
            fingerprint: o.fingerprint,
            budget: o.budget,
            seed: o.seed,
            learning_rate: o.learning_rate,
            status: r.status,
            score: score_of(&r.metrics).filter(|_| r.status == Status::Ok),
            wall_seconds: r.wall_seconds,
        };
        store
            .append(run.clone())
            .map_err(|e| MachineError::Trace(format!("writing final.jsonl: {e}")))?;
        on_done(&run);
    }
}

/// The scores of a subject's stored runs in a setting, in seed order; failed runs are `None`
/// and runs not stored yet are left out.
pub fn scores(
    store: &Store,
    config: &CampaignConfig,
    fingerprint: &str,
    seeds: &[u64],
    setting: Setting,
) -> Vec<Option<f64>> {
    seeds
        .iter()
        .filter_map(|&seed| {
            let train = train_config(config, setting, seed);
            store.get(&key(fingerprint, &config.task, &train))
        })
        .map(|r| r.score)
        .collect()
}

/// The rate of the sweep a design is scored at: the one with the fewest failed runs, then the
/// best mean. `None` until every run of the sweep is stored (so the choice never changes once
/// made), or with no sweep.
pub fn best_rate(
    store: &Store,
    config: &CampaignConfig,
    fingerprint: &str,
    seeds: &[u64],
    rates: &[f64],
) -> Option<f64> {
    let mut best: Option<(f64, usize, f64)> = None;
    for &lr in rates {
        let runs = scores(
            store,
            config,
            fingerprint,
            seeds,
            Setting::SHORT.at_rate(Some(lr)),
        );
        if runs.len() < seeds.len() {
            return None;
        }
        let ok: Vec<f64> = runs.iter().flatten().copied().collect();
        let failed = runs.len() - ok.len();
        let mean = if ok.is_empty() {
            f64::NEG_INFINITY
        } else {
            super::stats::mean(&ok)
        };
        let better = match best {
            None => true,
            Some((_, f, m)) => failed < f || (failed == f && mean > m),
        };
        if better {
            best = Some((lr, failed, mean));
        }
    }
    best.map(|(lr, _, _)| lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_the_design_the_task_the_steps_and_the_seed() {
        let config = CampaignConfig::embedded();
        let t = |seed| train_config(&config, Setting::SHORT, seed);
        let k = key("abc", &config.task, &t(1000));
        assert_eq!(k, key("abc", &config.task, &t(1000)));
        assert_ne!(k, key("abd", &config.task, &t(1000)));
        assert_ne!(k, key("abc", &config.task, &t(1001)));
        let long = Setting {
            budget: Budget::Long,
            factor: 4.0,
            learning_rate: None,
        };
        let long = train_config(&config, long, 1000);
        assert_eq!(long.steps, t(1000).steps.map(|s| s * 4));
        assert_ne!(k, key("abc", &config.task, &long));
        let fast = train_config(&config, Setting::SHORT.at_rate(Some(1e-2)), 1000);
        assert_eq!(fast.learning_rate, 1e-2);
        assert_ne!(k, key("abc", &config.task, &fast));
        // The search's own rate, named, is the same run.
        let same = train_config(
            &config,
            Setting::SHORT.at_rate(Some(t(1000).learning_rate)),
            1000,
        );
        assert_eq!(k, key("abc", &config.task, &same));
        let mut other = config.task.clone();
        other.vocab = Some(128);
        assert_ne!(k, key("abc", &other, &t(1000)));
    }

    #[test]
    fn final_runs_get_four_times_the_searchs_timeout_at_each_budget() {
        let config = CampaignConfig::embedded();
        let search = config.evaluation.timeout_seconds;
        assert_eq!(timeout(&config, Setting::SHORT).as_secs_f64(), 4.0 * search);
        let long = Setting {
            budget: Budget::Long,
            factor: 3.0,
            learning_rate: None,
        };
        assert_eq!(timeout(&config, long).as_secs_f64(), 12.0 * search);
    }

    #[test]
    fn the_store_keeps_runs_across_opens_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let run = FinalRun {
            key: "f:1".into(),
            fingerprint: "f".into(),
            budget: Budget::Short,
            seed: 1000,
            learning_rate: 3e-3,
            status: Status::Ok,
            score: Some(0.5),
            wall_seconds: 2.0,
        };
        store.append(run.clone()).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("final.jsonl"))
            .unwrap();
        f.write_all(b"{\"key\":\"f:2\",\"finger").unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("f:1"), Some(&run));
        assert_eq!(store.get("f:2"), None);
        let again = FinalRun {
            key: "f:2".into(),
            ..run.clone()
        };
        store.append(again.clone()).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.get("f:2"),
            Some(&again),
            "the run after a torn line is read"
        );
    }
}
