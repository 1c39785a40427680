//! Results made by hand for the report's tests: arms whose campaigns' incumbents have the
//! given final runs, scored the way [`super::results`] scores real ones.

use std::path::PathBuf;

use super::lineage::Change;
use super::provenance::{Provenance, Session};
use super::scoring::{arm_result, score_arms};
use super::verdict::Verdicts;
use super::{
    settings, Arm, Calibration, CampaignResult, Cost, DesignResult, Noise, Results, Scores, Suite,
    TaskResult,
};
use crate::config::{ProposerChoice, StrategyChoice};

/// A design trained on the final seeds with these scores.
pub fn design(name: &str, runs: &[f64]) -> DesignResult {
    DesignResult {
        name: name.into(),
        fingerprint: format!("f-{name}"),
        params: 1000,
        learning_rate: 3e-3,
        sweep: Vec::new(),
        short: Scores::of(&runs.iter().copied().map(Some).collect::<Vec<_>>()),
        long: None,
    }
}

fn campaign(arm: &str, k: u32, runs: &[f64]) -> CampaignResult {
    let (name, change) = if k == 0 {
        ("Transformer".to_string(), Change::Unchanged)
    } else {
        (
            "Transformer · heads".to_string(),
            Change::Retuned(vec!["heads".into()]),
        )
    };
    CampaignResult {
        k,
        archive: PathBuf::from(format!("out/campaigns/t/{arm}/{k}")),
        incumbent: Some((u64::from(k) + 5, design(&name, runs))),
        search_score: Some(0.5),
        compute_seconds: 61.0,
        candidates: 12,
        failed: 1,
        duplicates: 1,
        traced: 11,
        compared: 8,
        improved: 2,
        tokens: 0,
        cost_usd: 0.0,
        stopped: Some("stopped: compute budget of 60 s spent".into()),
        elapsed_seconds: 40.0,
        change: Some(change),
        curve: Vec::new(),
        points: Vec::new(),
    }
}

/// A task whose arms' campaigns have these final runs (one list per campaign), with a best
/// seed whose runs are `seed`.
pub fn task(arms: &[(&str, Vec<Vec<f64>>)], seed: &[f64], calibration: Calibration) -> TaskResult {
    let seeds = vec![
        design("Transformer", seed),
        design("MLP", &[0.03, 0.04, 0.03]),
    ];
    let mut arms: Vec<_> = arms
        .iter()
        .map(|(name, campaigns)| {
            let arm = Arm {
                name: name.to_string(),
                strategy: StrategyChoice::Evolution,
                proposer: ProposerChoice::Mutation,
            };
            let campaigns = (0..)
                .zip(campaigns)
                .map(|(k, runs)| campaign(name, k, runs))
                .collect();
            arm_result(&arm, campaigns)
        })
        .collect();
    score_arms(&mut arms, &seeds, Some(0.2), Some(1.0), None);
    TaskResult {
        name: "t".into(),
        settings: "mqar seq_len=32".into(),
        goal: None,
        ceiling: Some(1.0),
        best_seed: Some("Transformer".into()),
        random_mean: Some(0.2),
        random: Vec::new(),
        holdouts: Vec::new(),
        arms,
        noise_sd: Some(0.02),
        noise: Noise {
            best_seed_sd: Some(0.02),
            incumbents_median_sd: Some(0.01),
        },
        kendall_tau: None,
        verdicts: Verdicts::of(true, Some(&calibration)),
        calibration: Some(calibration),
        final_cost: Cost {
            runs: 30,
            seconds: 90.0,
        },
        seeds,
    }
}

/// An accepted calibration.
pub fn accepted() -> Calibration {
    Calibration {
        chance: 0.03,
        ceiling: 1.0,
        long_best: None,
        position: 0.45,
        spread_sds: Some(20.0),
        accepted: true,
    }
}

/// Results of one task, with one recorded session.
pub fn results(task: TaskResult) -> Results {
    results_of(vec![task])
}

/// Results of these tasks, with one recorded session.
pub fn results_of(tasks: Vec<TaskResult>) -> Results {
    let suite = Suite::embedded();
    Results {
        suite: "fixture".into(),
        provenance: Provenance {
            sessions: vec![Session {
                commit: "abc1234".into(),
                host: "bench-host".into(),
                cores: 2,
                started: "2025-01-01T00:00:00Z".into(),
                command: "autoarch benchmark --out out".into(),
                wall_seconds: 3725.0,
            }],
        },
        campaigns_per_arm: tasks[0].arms[0].campaigns.len() as u32,
        max_compute_seconds: 60.0,
        final_seeds: vec![1000, 1001, 1002],
        long_factor: 0.0,
        settings: settings(&suite),
        search_seconds: tasks
            .iter()
            .flat_map(|t| &t.arms)
            .map(|a| a.compute_seconds)
            .sum(),
        final_cost: tasks.iter().fold(Cost::default(), |c, t| Cost {
            runs: c.runs + t.final_cost.runs,
            seconds: c.seconds + t.final_cost.seconds,
        }),
        overall: super::overall::Overall::of(&tasks, true),
        tasks,
    }
}
