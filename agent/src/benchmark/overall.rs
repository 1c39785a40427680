//! The suite as a whole, as MAD reports it: each arm's score over the tasks. Tasks score on
//! different scales (accuracy, negative bits per character), so a final mean is first put on
//! the task's own scale from chance (0) to the ceiling (1), the calibration's scale, and the
//! suite's score is the mean of those over its tasks.
//!
//! The tests need independent samples per arm: a "suite run" of an arm is its campaign `k` on
//! every task, scored by the mean over the tasks. Campaigns on different tasks never share
//! anything but their seed number, so the suite runs of an arm are independent, and the same
//! exact permutation test as a task's compares arms on them.

use serde::Serialize;

use super::verdict::{Verdicts, Versus};
use super::{stats, Calibration, TaskResult};

/// The suite's score per arm, over the tasks that take part.
#[derive(Clone, Debug, Serialize)]
pub struct Overall {
    /// The tasks that take part: those with a calibration (chance and ceiling) and, when the
    /// suite gives verdicts, an accepted one.
    pub tasks: Vec<String>,
    /// Tasks left out, with why.
    pub left_out: Vec<(String, String)>,
    /// Whether the comparisons are verdicts (the suite gives them and at least one task takes
    /// part).
    pub verdicts: bool,
    /// The best seed of each task, its final runs on the same scale, averaged over the tasks
    /// run by run (the first final seed of every task, then the second...).
    pub best_seeds: Option<Vec<f64>>,
    pub arms: Vec<OverallArm>,
}

/// One arm's suite runs and its tests.
#[derive(Clone, Debug, Serialize)]
pub struct OverallArm {
    pub name: String,
    /// Campaign `k`'s final mean at the search's budget on the chance-to-ceiling scale,
    /// averaged over the tasks; only the `k` with an incumbent on every task.
    pub runs: Vec<(u32, f64)>,
    /// The mean of `runs`.
    pub mean: Option<f64>,
    /// Its percentile bootstrap 95% interval over the suite runs.
    pub interval: Option<(f64, f64)>,
    pub versus: Vec<Versus>,
    pub versus_best_seed: Option<Versus>,
}

/// Puts a score on the task's chance-to-ceiling scale.
fn scaled(c: &Calibration, x: f64) -> f64 {
    (x - c.chance) / (c.ceiling - c.chance)
}

impl Overall {
    /// The suite's score from its tasks' results; `verdicts` is whether the suite gives any.
    pub fn of(tasks: &[TaskResult], verdicts: bool) -> Overall {
        let mut taking_part = Vec::new();
        let mut left_out = Vec::new();
        for t in tasks {
            match (&t.calibration, &t.verdicts) {
                (None, _) => left_out.push((
                    t.name.clone(),
                    "no chance level or ceiling to put its scores on one scale".into(),
                )),
                (Some(_), Verdicts::CalibrationFailed { .. }) => {
                    left_out.push((t.name.clone(), "its calibration failed".into()));
                }
                (Some(c), _) if c.ceiling <= c.chance => {
                    left_out.push((t.name.clone(), "its ceiling is not above chance".into()));
                }
                (Some(c), _) => taking_part.push((t, c)),
            }
        }
        let names: Vec<String> = tasks
            .first()
            .map(|t| t.arms.iter().map(|a| a.name.clone()).collect())
            .unwrap_or_default();
        let runs: Vec<Vec<(u32, f64)>> = (0..names.len())
            .map(|i| suite_runs(&taking_part, i))
            .collect();
        let best_seeds = best_seed_runs(&taking_part);
        let values = |r: &[(u32, f64)]| r.iter().map(|(_, x)| *x).collect::<Vec<f64>>();
        let arms = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let xs = values(&runs[i]);
                let seed = 0x0A11 ^ i as u64;
                OverallArm {
                    name: name.clone(),
                    mean: (!xs.is_empty()).then(|| stats::mean(&xs)),
                    interval: (xs.len() > 1).then(|| stats::bootstrap(&xs, stats::mean, seed)),
                    versus: if xs.is_empty() {
                        Vec::new()
                    } else {
                        names
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i && !runs[*j].is_empty())
                            .map(|(j, other)| {
                                Versus::of(other, &xs, &values(&runs[j]), seed ^ ((j as u64) << 8))
                            })
                            .collect()
                    },
                    versus_best_seed: best_seeds
                        .as_ref()
                        .filter(|b| !b.is_empty() && !xs.is_empty())
                        .map(|b| Versus::of("the best seeds", &xs, b, seed ^ 0xBE57)),
                    runs: runs[i].clone(),
                }
            })
            .collect();
        Overall {
            verdicts: verdicts && !taking_part.is_empty(),
            tasks: taking_part.iter().map(|(t, _)| t.name.clone()).collect(),
            left_out,
            best_seeds,
            arms,
        }
    }
}

/// Arm `i`'s suite runs: for each campaign seed with an incumbent on every task, the mean over
/// the tasks of that campaign's final mean on the task's scale.
fn suite_runs(tasks: &[(&TaskResult, &Calibration)], i: usize) -> Vec<(u32, f64)> {
    if tasks.is_empty() {
        return Vec::new();
    }
    let per_task: Vec<std::collections::BTreeMap<u32, f64>> = tasks
        .iter()
        .map(|(t, c)| {
            t.arms
                .get(i)
                .map(|a| {
                    a.campaigns
                        .iter()
                        .filter_map(|camp| {
                            let s = camp.incumbent.as_ref()?.1.short.as_ref()?;
                            s.mean.is_finite().then(|| (camp.k, scaled(c, s.mean)))
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    per_task[0]
        .keys()
        .filter_map(|k| {
            let xs: Option<Vec<f64>> = per_task.iter().map(|m| m.get(k).copied()).collect();
            xs.map(|xs| (*k, stats::mean(&xs)))
        })
        .collect()
}

/// The best seed of every task, run by run on the task's scale and averaged over the tasks:
/// as many runs as the task with the fewest.
fn best_seed_runs(tasks: &[(&TaskResult, &Calibration)]) -> Option<Vec<f64>> {
    let per_task: Option<Vec<(Vec<f64>, &Calibration)>> = tasks
        .iter()
        .map(|(t, c)| {
            let best = t.best_seed.as_ref()?;
            let d = t.seeds.iter().find(|d| &d.name == best)?;
            Some((d.short.as_ref()?.runs.clone(), *c))
        })
        .collect();
    let per_task = per_task?;
    let n = per_task.iter().map(|(r, _)| r.len()).min()?;
    Some(
        (0..n)
            .map(|j| {
                let xs: Vec<f64> = per_task.iter().map(|(r, c)| scaled(c, r[j])).collect();
                stats::mean(&xs)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmark::fixture;
    use crate::benchmark::verdict::Verdict;

    fn calibration(chance: f64, accepted: bool) -> Calibration {
        Calibration {
            chance,
            accepted,
            ..fixture::accepted()
        }
    }

    #[test]
    fn the_suite_scores_each_task_on_its_own_scale_and_tests_suite_runs() {
        let mut one = fixture::task(
            &[
                (
                    "evolution",
                    vec![vec![0.6, 0.6], vec![0.8], vec![0.7], vec![0.9]],
                ),
                ("random", vec![vec![0.1], vec![0.2], vec![0.3], vec![0.2]]),
            ],
            &[0.5, 0.7],
            calibration(0.0, true),
        );
        one.name = "one".into();
        // Chance at 0.5: 0.8 is 60% of the way to the ceiling.
        let mut two = fixture::task(
            &[
                (
                    "evolution",
                    vec![vec![0.8], vec![0.9], vec![0.85], vec![1.0]],
                ),
                ("random", vec![vec![0.55], vec![0.6], vec![0.65], vec![0.6]]),
            ],
            &[0.75, 0.85, 0.9],
            calibration(0.5, true),
        );
        two.name = "two".into();
        let mut failed = fixture::task(
            &[("evolution", vec![vec![0.0]]), ("random", vec![vec![1.0]])],
            &[0.5],
            calibration(0.0, false),
        );
        failed.name = "failed".into();
        let overall = Overall::of(&[one, two, failed], true);
        assert_eq!(overall.tasks, ["one", "two"]);
        assert_eq!(overall.left_out.len(), 1);
        assert!(overall.verdicts);
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
        };
        let evolution = &overall.arms[0];
        let xs: Vec<f64> = evolution.runs.iter().map(|(_, x)| *x).collect();
        assert!(close(&xs, &[0.6, 0.8, 0.7, 0.95]), "{xs:?}");
        let random: Vec<f64> = overall.arms[1].runs.iter().map(|(_, x)| *x).collect();
        assert!(close(&random, &[0.1, 0.2, 0.3, 0.2]), "{random:?}");
        // Every suite run of evolution is above every one of random: the exact p is 1/70.
        assert_eq!(
            evolution.versus[0].verdict(),
            Verdict::Higher { p: 1.0 / 70.0 }
        );
        // The best seeds run by run, as many runs as the task with the fewest: (0.5, 0.5), (0.7, 0.7).
        assert!(close(overall.best_seeds.as_ref().unwrap(), &[0.5, 0.7]));
        assert!((evolution.mean.unwrap() - 0.7625).abs() < 1e-12);
    }

    #[test]
    fn a_campaign_missing_on_one_task_is_no_suite_run_and_no_task_means_no_verdicts() {
        let one = fixture::task(
            &[("evolution", vec![vec![0.6], vec![0.8]])],
            &[0.5],
            calibration(0.0, true),
        );
        let mut two = fixture::task(
            &[("evolution", vec![vec![0.6], vec![0.8]])],
            &[0.5],
            calibration(0.0, true),
        );
        two.arms[0].campaigns[1].incumbent = None;
        let overall = Overall::of(&[one, two], true);
        assert_eq!(overall.arms[0].runs, [(0, 0.6)]);
        let mut none = fixture::task(
            &[("evolution", vec![vec![0.6]])],
            &[0.5],
            calibration(0.0, true),
        );
        none.calibration = None;
        let overall = Overall::of(&[none], true);
        assert!(!overall.verdicts);
        assert!(overall.arms[0].runs.is_empty());
        assert_eq!(overall.arms[0].mean, None);
    }
}
