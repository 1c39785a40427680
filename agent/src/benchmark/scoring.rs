//! The results from the campaigns' archives and the final runs: baselines, each arm's scores
//! and tests, rediscoveries.

use super::subjects::open;
use super::*;

/// Everything the report says, from the campaigns' archives, the final runs and `run.json`.
pub fn results(suite: &Suite, out: &Path, store: &Store) -> crate::campaign::Result<Results> {
    let mut keys = std::collections::BTreeSet::new();
    let mut tasks = Vec::new();
    for t in 0..suite.tasks.len() {
        let (task, task_keys) = task_result(suite, out, store, t)?;
        tasks.push(task);
        keys.extend(task_keys);
    }
    Ok(Results {
        suite: suite.name.clone(),
        provenance: Provenance::load(out),
        campaigns_per_arm: suite.campaigns,
        max_compute_seconds: suite.budget.max_compute_seconds,
        final_seeds: final_seeds(suite),
        long_factor: suite.final_protocol.long_factor,
        settings: settings(suite),
        search_seconds: tasks
            .iter()
            .flat_map(|t| &t.arms)
            .map(|a| a.compute_seconds)
            .sum(),
        // Runs two tasks share (the same design on the same task settings) count once.
        final_cost: cost_of(store, &keys),
        overall: overall::Overall::of(&tasks, suite.verdicts),
        tasks,
    })
}

/// The runs of `keys` the store holds, and their wall seconds.
pub(super) fn cost_of<'k>(store: &Store, keys: impl IntoIterator<Item = &'k String>) -> Cost {
    let mut cost = Cost::default();
    for run in keys.into_iter().filter_map(|k| store.get(k)) {
        cost.runs += 1;
        cost.seconds += run.wall_seconds;
    }
    cost
}

/// A task's seeds, random population and their summaries.
pub(super) struct Baselines {
    seeds: Vec<DesignResult>,
    best_seed: Option<DesignResult>,
    random: Vec<DesignResult>,
    random_mean: Option<f64>,
    kendall_tau: Option<(f64, usize)>,
}

pub(super) fn baselines(protocol: &Protocol, subjects: &TaskSubjects) -> Baselines {
    let seeds: Vec<DesignResult> = subjects
        .seeds
        .iter()
        .map(|(s, p)| protocol.design(s, *p, true))
        .collect();
    let best_seed = seeds
        .iter()
        .filter_map(|d| d.short.as_ref().map(|s| (d, s.mean)))
        .filter(|(_, m)| m.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(d, _)| d.clone());
    let random: Vec<DesignResult> = subjects
        .random
        .iter()
        .map(|(s, p)| protocol.design(s, *p, true))
        .collect();
    let random_means: Vec<f64> = random
        .iter()
        .filter_map(|d| d.short.as_ref().map(|s| s.mean))
        .filter(|m| m.is_finite())
        .collect();
    let pairs: Vec<(f64, f64)> = random
        .iter()
        .filter_map(|d| Some((d.short.as_ref()?.mean, d.long.as_ref()?.mean)))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    Baselines {
        best_seed,
        random_mean: (!random_means.is_empty()).then(|| stats::mean(&random_means)),
        kendall_tau: stats::kendall_tau(&pairs).map(|tau| (tau, pairs.len())),
        seeds,
        random,
    }
}

/// A task's results, and the keys of the final runs behind them.
pub(super) fn task_result(
    suite: &Suite,
    out: &Path,
    store: &Store,
    t: usize,
) -> crate::campaign::Result<(TaskResult, Vec<String>)> {
    let task = &suite.tasks[t];
    let protocol = Protocol::new(suite, out, t, store);
    let subjects = subjects(suite, out, t)?;
    let b = baselines(&protocol, &subjects);
    let incumbents: Vec<Vec<Option<(u64, DesignResult)>>> = subjects
        .incumbents
        .iter()
        .map(|per| {
            per.iter()
                .map(|i| {
                    i.as_ref()
                        .map(|(id, s, p)| (*id, protocol.design(s, *p, true)))
                })
                .collect()
        })
        .collect();
    let noise = noise(
        b.best_seed.as_ref(),
        incumbents.iter().flatten().flatten().map(|(_, d)| d),
    );
    let noise_sd = noise.sd();
    let mut arms = Vec::new();
    for (arm, per) in suite.arms.iter().zip(incumbents) {
        let mut campaigns = Vec::new();
        for (k, incumbent) in (0..suite.campaigns).zip(per) {
            let path = Suite::archive_of(out, task, arm, k);
            let archive = open(&path)?;
            let mut c = campaign_result(&archive, k, path, noise_sd.unwrap_or(0.0))?;
            c.change = match &incumbent {
                Some((id, _)) => Some(lineage::change(&archive, *id)?),
                None => None,
            };
            c.incumbent = incumbent;
            campaigns.push(c);
        }
        arms.push(arm_result(arm, campaigns));
    }
    let ceiling = ceiling(&task.task);
    score_arms(&mut arms, &b.seeds, b.random_mean, ceiling, task.goal);
    let holdouts: Vec<DesignResult> = subjects
        .holdouts
        .iter()
        .map(|(s, p)| protocol.design(s, *p, true))
        .collect();
    rediscoveries(&mut arms, &holdouts);
    let calibration = calibration(&task.task, &b.seeds, noise_sd);
    let keys = protocol.keys(
        subjects
            .seeds
            .iter()
            .chain(&subjects.random)
            .chain(&subjects.holdouts)
            .map(|(s, _)| s)
            .chain(
                subjects
                    .incumbents
                    .iter()
                    .flatten()
                    .flatten()
                    .map(|(_, s, _)| s),
            ),
    );
    let result = TaskResult {
        noise_sd,
        noise,
        kendall_tau: b.kendall_tau,
        verdicts: Verdicts::of(suite.verdicts, calibration.as_ref()),
        calibration,
        final_cost: cost_of(store, &keys),
        name: task.name.clone(),
        settings: task_settings(&task.task),
        goal: task.goal,
        ceiling,
        seeds: b.seeds,
        holdouts,
        best_seed: b.best_seed.map(|d| d.name),
        random_mean: b.random_mean,
        random: b.random,
        arms,
    };
    Ok((result, keys))
}

/// The best held-out design's mean at the search's budget.
pub fn holdout_mark(holdouts: &[DesignResult]) -> Option<(&DesignResult, f64)> {
    holdouts
        .iter()
        .filter_map(|d| Some((d, d.short.as_ref()?.mean)))
        .filter(|(_, m)| m.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Counts, per arm, the campaigns whose incumbent reaches the best held-out design's mean at
/// the search's budget: they rediscovered it (or found something as good).
pub(super) fn rediscoveries(arms: &mut [ArmResult], holdouts: &[DesignResult]) {
    let Some((_, mark)) = holdout_mark(holdouts) else {
        return;
    };
    for arm in arms {
        arm.rediscovered = Some(
            incumbent_runs(&arm.campaigns, Budget::Short)
                .iter()
                .filter(|runs| !runs.is_empty() && stats::mean(runs) >= mark)
                .count(),
        );
    }
}

/// Each arm's scores at each budget, against the others, the best seed at that budget and
/// Acc_random.
pub(super) fn score_arms(
    arms: &mut [ArmResult],
    seeds: &[DesignResult],
    random_mean: Option<f64>,
    ceiling: Option<f64>,
    goal: Option<f64>,
) {
    for budget in [Budget::Short, Budget::Long] {
        let per_arm: Vec<Vec<Vec<f64>>> = arms
            .iter()
            .map(|a| incumbent_runs(&a.campaigns, budget))
            .collect();
        let best = seeds
            .iter()
            .filter_map(|d| Some((d.name.as_str(), at_budget(d, budget)?)))
            .filter(|(_, s)| s.mean.is_finite())
            .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
        let names: Vec<String> = arms.iter().map(|a| a.name.clone()).collect();
        for (i, arm) in arms.iter_mut().enumerate() {
            // Acc_random is measured at the search's budget only.
            let random = random_mean.filter(|_| budget == Budget::Short);
            let reference = Reference {
                random,
                best_seed: best,
                ceiling,
                goal,
            };
            let scores = arm_scores(&per_arm, &names, i, &reference);
            match budget {
                Budget::Short => arm.short = scores,
                Budget::Long => arm.long = scores,
            }
        }
    }
}

pub(super) fn at_budget(d: &DesignResult, budget: Budget) -> Option<&Scores> {
    match budget {
        Budget::Short => d.short.as_ref(),
        Budget::Long => d.long.as_ref(),
    }
}

pub(super) fn arm_result(arm: &Arm, campaigns: Vec<CampaignResult>) -> ArmResult {
    let candidates: usize = campaigns.iter().map(|c| c.candidates).sum();
    let share = |n: usize| {
        if candidates == 0 {
            0.0
        } else {
            n as f64 / candidates as f64
        }
    };
    ArmResult {
        name: arm.name.clone(),
        strategy: arm.strategy.as_str().to_string(),
        proposer: proposer_name(arm).to_string(),
        compute_seconds: campaigns.iter().map(|c| c.compute_seconds).sum(),
        candidates,
        failed_share: share(campaigns.iter().map(|c| c.failed).sum()),
        duplicate_share: share(campaigns.iter().map(|c| c.duplicates).sum()),
        traced_share: share(campaigns.iter().map(|c| c.traced).sum()),
        improved_share: {
            let compared: usize = campaigns.iter().map(|c| c.compared).sum();
            (compared > 0).then(|| {
                campaigns.iter().map(|c| c.improved).sum::<usize>() as f64 / compared as f64
            })
        },
        improved: campaigns.iter().map(|c| c.improved).sum(),
        best_at: BEST_AT
            .iter()
            .map(|&n| {
                let xs: Vec<f64> = campaigns.iter().filter_map(|c| c.best_at(n)).collect();
                (n, (!xs.is_empty()).then(|| stats::median(&xs)))
            })
            .collect(),
        tokens: campaigns.iter().map(|c| c.tokens).sum(),
        cost_usd: campaigns.iter().map(|c| c.cost_usd).sum(),
        rediscovered: None,
        campaigns,
        short: None,
        long: None,
    }
}

/// Each campaign's incumbent's final runs at a budget (campaigns without a trained one are
/// left out).
pub(super) fn incumbent_runs(campaigns: &[CampaignResult], budget: Budget) -> Vec<Vec<f64>> {
    campaigns
        .iter()
        .filter_map(|c| c.incumbent.as_ref())
        .filter_map(|(_, d)| at_budget(d, budget))
        .filter(|s| s.mean.is_finite())
        .map(|s| s.runs.clone())
        .collect()
}

/// What an arm is measured against at a budget.
pub(super) struct Reference<'a> {
    /// Acc_random.
    random: Option<f64>,
    /// The best seed's name and scores.
    best_seed: Option<(&'a str, &'a Scores)>,
    ceiling: Option<f64>,
    goal: Option<f64>,
}

/// An arm's scores from its campaigns' final runs (`per_arm[i]`, one list per campaign).
pub(super) fn arm_scores(
    per_arm: &[Vec<Vec<f64>>],
    names: &[String],
    i: usize,
    reference: &Reference,
) -> Option<ArmScores> {
    let means = |campaigns: &[Vec<f64>]| -> Vec<f64> {
        campaigns.iter().map(|runs| stats::mean(runs)).collect()
    };
    let xs = means(&per_arm[i]);
    if xs.is_empty() {
        return None;
    }
    let mean = stats::mean(&xs);
    let seed = 0x5EED ^ i as u64;
    let best = reference.best_seed.map(|(_, s)| s.mean);
    Some(ArmScores {
        campaigns: xs.len(),
        median: stats::median(&xs),
        mean,
        mean_interval: stats::hierarchical_interval(&per_arm[i], seed),
        ri: reference
            .random
            .and_then(|r| stats::relative_improvement(mean, r)),
        delta_best_seed: best.map(|b| mean - b),
        gap_closed: match (best, reference.ceiling) {
            (Some(b), Some(c)) if c > b => Some((mean - b) / (c - b)),
            _ => None,
        },
        versus: per_arm
            .iter()
            .enumerate()
            .filter(|(j, ys)| *j != i && !ys.is_empty())
            .map(|(j, ys)| Versus::of(&names[j], &xs, &means(ys), seed ^ ((j as u64) << 8)))
            .collect(),
        versus_best_seed: reference
            .best_seed
            .filter(|(_, s)| !s.runs.is_empty())
            .map(|(name, s)| Versus::of(name, &xs, &s.runs, seed ^ 0xBE57)),
        solved: reference
            .goal
            .map(|g| xs.iter().filter(|x| **x >= g).count()),
    })
}
