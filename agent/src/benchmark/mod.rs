//! The discovery benchmark (`autoarch benchmark`): does a search strategy beat the human seeds,
//! random search and regularized evolution at equal compute?
//!
//! A [`Suite`] names tasks and arms; each arm runs `campaigns` campaigns per task with the same
//! evaluation-seconds and workers, candidates capped at `size_cap` × the largest seed. Then
//! the final protocol ([`protocol`]) trains each campaign's incumbent, every seed and a
//! random-sampled population the same way with fresh seeds, and [`Results`] compares them over
//! campaign seeds with hierarchical bootstrap intervals and exact permutation tests
//! ([`stats`], [`verdict`]); [`report`] writes them out, with where and how the benchmark ran
//! ([`provenance`]) and what each campaign changed about its seed ([`lineage`]); [`overall`]
//! scores the suite as a whole.
//!
//! [`run`] runs a suite: its campaigns, the final protocol, the report. The results are
//! computed in steps: `subjects` (what the final protocol trains per task, and
//! [`Protocol`], how it scores them), `campaigns` (each campaign's record from its archive),
//! `calibration` (does a task discriminate?) and `scoring` (baselines, arms, tests,
//! rediscoveries), into the types of `results`.

mod calibration;
mod campaigns;
#[cfg(test)]
mod fixture;
pub mod lineage;
pub mod overall;
pub mod plots;
pub mod protocol;
pub mod provenance;
pub mod report;
mod results;
pub mod run;
mod scoring;
pub mod stats;
mod subjects;
pub mod suite;
pub mod verdict;

use std::path::{Path, PathBuf};

use autoarch_archive::{Archive, Listed, Outcome, ProposerKind, Status as CandidateStatus};
use serde::Serialize;

pub use calibration::{Calibration, CALIBRATION_BAND, CALIBRATION_SPREAD, SATURATED};
pub use results::*;
pub use run::run;
pub use scoring::{holdout_mark, results};
pub use subjects::{subjects, Protocol, TaskSubjects};
pub use suite::{Arm, Preset, Suite, SuiteTask};

use calibration::{calibration, noise};
use campaigns::campaign_result;

use crate::campaign::ranking;
use lineage::Change;
use protocol::{Budget, Setting, Store, Subject};
use provenance::Provenance;
use verdict::{Verdicts, Versus};

/// One campaign of the plan.
#[derive(Clone, Debug)]
pub struct Planned {
    pub task: usize,
    pub arm: usize,
    pub k: u32,
}

/// Every campaign the suite runs, task by task, campaign seed by campaign seed, arm by arm
/// (so that an interrupted benchmark has compared arms on the same seeds).
pub fn plan(suite: &Suite) -> Vec<Planned> {
    let mut out = Vec::new();
    for task in 0..suite.tasks.len() {
        for k in 0..suite.campaigns {
            for arm in 0..suite.arms.len() {
                out.push(Planned { task, arm, k });
            }
        }
    }
    out
}

/// The plan in words, with its compute: what `--dry-run` prints.
pub fn describe_plan(suite: &Suite) -> String {
    let campaigns = plan(suite).len();
    let search = campaigns as f64 * suite.budget.max_compute_seconds;
    let f = &suite.final_protocol;
    let mut lines = vec![format!(
        "benchmark {:?}: {} task(s) × {} arm(s) × {} campaign(s) = {campaigns} campaigns",
        suite.name,
        suite.tasks.len(),
        suite.arms.len(),
        suite.campaigns
    )];
    for t in &suite.tasks {
        let seeds: Vec<String> = t.seeds.iter().map(|s| s.to_spec()).collect();
        let mut goal = t.goal.map(|g| format!(", goal {g}")).unwrap_or_default();
        if !t.holdout.is_empty() {
            let held: Vec<String> = t.holdout.iter().map(|s| s.to_spec()).collect();
            goal.push_str(&format!(", held out: {}", held.join(", ")));
        }
        lines.push(format!(
            "  task {}: {} (seeds: {}{goal})",
            t.name,
            task_settings(&t.task),
            seeds.join(", ")
        ));
    }
    for a in &suite.arms {
        lines.push(format!(
            "  arm {}: strategy {}, proposer {}",
            a.name,
            a.strategy.as_str(),
            proposer_name(a)
        ));
    }
    let rates = f.learning_rates.len().max(1);
    let swept = suite.campaigns as usize * suite.arms.len();
    lines.push(format!(
        "  search: {} s of evaluation per campaign, {search:.0} s in all ({:.1} h of worker time; about {:.1} h on {} worker(s))",
        suite.budget.max_compute_seconds,
        search / 3600.0,
        search / 3600.0 / suite.evaluation.workers as f64,
        suite.evaluation.workers
    ));
    lines.push(format!(
        "  final protocol: {} fresh seed(s) from {}{}; per task each seed and up to {swept} incumbents {}, and a random population of up to {} the same way (identical designs are trained once)",
        f.seeds,
        f.first_seed,
        if f.long_factor > 0.0 {
            format!(", at the search's budget and {}× it", f.long_factor)
        } else {
            ", at the search's budget".to_string()
        },
        if rates > 1 {
            format!("at {rates} learning rates {:?} (then the long budget at the best)", f.learning_rates)
        } else {
            "at the search's learning rate".to_string()
        },
        f.random_population,
    ));
    lines.push(format!(
        "  candidates capped at {}× the largest seed's parameters",
        suite.size_cap
    ));
    let e = &suite.evaluation;
    let reserved = e.timeout_seconds * e.workers as f64;
    if reserved > suite.budget.max_compute_seconds {
        lines.push(format!(
            "  note: a job reserves its timeout ({} s) from its campaign's budget when it starts, and {} worker(s) reserve {reserved:.0} s, more than the budget of {} s: workers will wait for one another (lower `evaluation.timeout_seconds` to what a job needs)",
            e.timeout_seconds, e.workers, suite.budget.max_compute_seconds
        ));
    }
    lines.join("\n") + "\n"
}

fn proposer_name(a: &Arm) -> &'static str {
    match a.proposer {
        crate::config::ProposerChoice::Mutation => "mutation",
        crate::config::ProposerChoice::Llm => "llm",
    }
}

/// A task's settings in a line: `mqar seq_len=32 vocab=64 kv_pairs=4`.
pub fn task_settings(task: &autoarch_evaluator::TaskConfig) -> String {
    let mut s = task.name.clone();
    for (k, v) in [
        ("seq_len", task.seq_len),
        ("vocab", task.vocab),
        ("kv_pairs", task.kv_pairs),
        ("validation_size", task.validation_size),
        ("copy", task.copy),
        ("motif", task.motif),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(noise) = task.noise {
        s.push_str(&format!(" noise={noise}"));
    }
    if let Some(seed) = task.map_seed {
        s.push_str(&format!(" map_seed={seed}"));
    }
    s
}

/// The best a score can be (the evaluator's reference scores): 1 for an accuracy, 0 bits per
/// character for `charlm`.
fn ceiling(task: &autoarch_evaluator::TaskConfig) -> Option<f64> {
    autoarch_evaluator::reference_scores(task).map(|r| r.ceiling)
}

/// The settings of `suite`'s search.
pub fn settings(suite: &Suite) -> Settings {
    let config = suite.campaign(&suite.tasks[0], &suite.arms[0], 0, Path::new("."), None);
    let train = config.train_config(autoarch_archive::Fidelity::SHORT, 0);
    Settings {
        workers: suite.evaluation.workers,
        steps: train.steps,
        seconds: train.seconds,
        batch_size: train.batch_size,
        learning_rate: train.learning_rate,
        warmup_fraction: train.warmup_fraction,
        learning_rates: suite.final_protocol.learning_rates.clone(),
        size_cap: suite.size_cap,
        promote_fraction: suite.evaluation.promote_fraction,
        arms: suite
            .arms
            .iter()
            .map(|a| ArmSettings {
                name: a.name.clone(),
                strategy: a.strategy.as_str().to_string(),
                proposer: proposer_name(a).to_string(),
                parameters: strategy_parameters(suite, a),
            })
            .collect(),
    }
}

/// A strategy's parameters in words.
fn strategy_parameters(suite: &Suite, arm: &Arm) -> String {
    let c = suite.campaign(&suite.tasks[0], arm, 0, Path::new("."), None);
    match arm.strategy {
        crate::config::StrategyChoice::Random => {
            "a random seed with random edits; never looks at a score".into()
        }
        crate::config::StrategyChoice::Evolution => {
            let e = &c.search.evolution;
            format!(
                "population P = {}, sample S = {}, promotion {}",
                e.population,
                e.sample,
                if e.promote { "on" } else { "off" }
            )
        }
        crate::config::StrategyChoice::Autoarch => {
            let s = &c.selection;
            format!(
                "{} islands, parents {:.0}% uniform / {:.0}% MAP-Elites / the rest tournaments of {}, {} inspirations, promote fraction {}",
                s.islands,
                100.0 * s.exploration,
                100.0 * s.elites,
                s.tournament,
                s.inspirations,
                c.evaluation.promote_fraction
            )
        }
    }
}

/// Seeds of the final protocol.
pub fn final_seeds(suite: &Suite) -> Vec<u64> {
    let f = &suite.final_protocol;
    (0..u64::from(f.seeds)).map(|i| f.first_seed + i).collect()
}
