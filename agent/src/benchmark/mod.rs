//! The discovery benchmark (`autoarch benchmark`): does a search strategy beat the human seeds,
//! random search and regularized evolution at equal compute?
//!
//! A [`Suite`] names tasks and arms; each arm runs `campaigns` campaigns per task with the same
//! evaluation-seconds and workers, candidates capped at `size_cap` × the largest seed. Then
//! the final protocol ([`protocol`]) trains each campaign's incumbent, every seed and a
//! random-sampled population the same way with fresh seeds, and [`Results`] compares them over
//! campaign seeds with bootstrap intervals ([`stats`]); [`report`] writes them out.

pub mod plots;
pub mod protocol;
pub mod report;
pub mod stats;
pub mod suite;

use std::path::{Path, PathBuf};

use autoarch_archive::{Archive, Listed, Outcome, ProposerKind, Status as CandidateStatus};
use serde::Serialize;

pub use suite::{Arm, Preset, Suite, SuiteTask};

use crate::campaign::ranking;
use protocol::{Budget, Setting, Store, Subject};

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
        let goal = t.goal.map(|g| format!(", goal {g}")).unwrap_or_default();
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
    ] {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    s
}

/// The best a score can be, where the score is an accuracy (the evaluator's reference scores).
fn ceiling(task: &autoarch_evaluator::TaskConfig) -> Option<f64> {
    autoarch_evaluator::reference_scores(task).map(|r| r.ceiling)
}

/// A design's final scores at one budget.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scores {
    pub mean: f64,
    pub sd: f64,
    /// Runs that trained, and runs that failed (no score).
    pub n: usize,
    pub failed: usize,
}

impl Scores {
    fn of(runs: &[Option<f64>]) -> Option<Scores> {
        if runs.is_empty() {
            return None;
        }
        let ok: Vec<f64> = runs.iter().flatten().copied().collect();
        Some(Scores {
            mean: stats::mean(&ok),
            sd: stats::sd(&ok),
            n: ok.len(),
            failed: runs.len() - ok.len(),
        })
    }
}

/// A design under the final protocol.
#[derive(Clone, Debug, Serialize)]
pub struct DesignResult {
    pub name: String,
    pub fingerprint: String,
    pub params: u64,
    /// The rate its scores are at: the sweep's best, or the search's.
    pub learning_rate: f64,
    /// Its scores at each rate of the sweep (seeds and incumbents).
    pub sweep: Vec<(f64, Option<Scores>)>,
    pub short: Option<Scores>,
    pub long: Option<Scores>,
}

/// One campaign of an arm.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignResult {
    pub k: u32,
    pub archive: PathBuf,
    /// The campaign's top-1 by its own ranking, with its id in the campaign's archive.
    pub incumbent: Option<(u64, DesignResult)>,
    pub search_score: Option<f64>,
    pub compute_seconds: f64,
    pub candidates: usize,
    pub failed: usize,
    pub duplicates: usize,
    /// Proposals that traced into a graph.
    pub traced: usize,
    /// Proposals scored at the short budget whose parent was too, and of those, the ones
    /// better than their parent by more than 2σ (σ: the task's noise).
    pub compared: usize,
    pub improved: usize,
    /// LLM tokens (prompt and completion) and dollars of the campaign's proposals.
    pub tokens: u64,
    pub cost_usd: f64,
    /// Best-so-far short-budget search score (seeds included) after each evaluation.
    pub curve: Vec<CurvePoint>,
    /// (parameters, short-budget search score) of every candidate that trained.
    pub points: Vec<(u64, f64)>,
}

/// A point of a campaign's best-so-far curve.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CurvePoint {
    /// Evaluation-seconds spent so far.
    pub compute_seconds: f64,
    /// Proposals made so far (seeds not counted).
    pub candidates: usize,
    /// The best short-budget score so far (NaN before any).
    pub best: f64,
}

impl CampaignResult {
    /// The best-so-far after `n` proposals, if the campaign made that many.
    pub fn best_at(&self, n: usize) -> Option<f64> {
        if self.candidates < n {
            return None;
        }
        self.curve
            .iter()
            .take_while(|p| p.candidates <= n)
            .last()
            .map(|p| p.best)
            .filter(|b| b.is_finite())
    }
}

/// An arm's final scores over its campaigns at one budget.
#[derive(Clone, Debug, Serialize)]
pub struct ArmScores {
    pub campaigns: usize,
    pub median: f64,
    pub mean: f64,
    /// Bootstrap 95% interval of the mean over campaigns.
    pub mean_interval: (f64, f64),
    /// Relative improvement over the random-sampled average, in %.
    pub ri: Option<f64>,
    pub delta_best_seed: Option<f64>,
    /// (score − best seed) / (ceiling − best seed).
    pub gap_closed: Option<f64>,
    /// Against each other arm: P(a campaign of this arm beats one of that), with its interval.
    pub versus: Vec<(String, f64, (f64, f64))>,
    /// Campaigns whose incumbent reaches the task's goal.
    pub solved: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ArmResult {
    pub name: String,
    pub strategy: String,
    pub proposer: String,
    pub campaigns: Vec<CampaignResult>,
    pub short: Option<ArmScores>,
    pub long: Option<ArmScores>,
    pub compute_seconds: f64,
    pub candidates: usize,
    pub failed_share: f64,
    pub duplicate_share: f64,
    /// The proposer's record over the arm's campaigns.
    pub traced_share: f64,
    /// Of the children scored with a scored parent, the share better by more than 2σ.
    pub improved_share: Option<f64>,
    pub improved: usize,
    /// The median over campaigns of the best-so-far after N proposals (campaigns that made
    /// N), for N in [`BEST_AT`].
    pub best_at: Vec<(usize, Option<f64>)>,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// The proposal counts the report gives the best-so-far at.
pub const BEST_AT: [usize; 3] = [25, 50, 100];

#[derive(Clone, Debug, Serialize)]
pub struct TaskResult {
    pub name: String,
    pub settings: String,
    pub goal: Option<f64>,
    pub ceiling: Option<f64>,
    pub seeds: Vec<DesignResult>,
    /// The seed with the best mean at the search's budget: the human baseline.
    pub best_seed: Option<String>,
    /// The mean over the random-sampled population of each design's mean (Acc_random).
    pub random_mean: Option<f64>,
    pub random: Vec<DesignResult>,
    pub arms: Vec<ArmResult>,
    /// The task's noise: the median over seeds of each seed's SD over training seeds at the
    /// search's budget.
    pub noise_sd: Option<f64>,
    /// Kendall's τ between the random population's short- and long-budget means (is the
    /// short budget a faithful proxy?), and the number of designs behind it.
    pub kendall_tau: Option<(f64, usize)>,
    pub calibration: Option<Calibration>,
}

/// Whether the task's setting discriminates: the best seed should land 30–70% of the way from
/// chance to the ceiling, and the seeds should differ by several noise SDs.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub chance: f64,
    /// (best seed − chance) / (ceiling − chance).
    pub position: f64,
    /// (best seed − worst seed) / noise SD.
    pub spread_sds: Option<f64>,
    pub accepted: bool,
}

/// The score of guessing (the evaluator's reference scores): MQAR's 2/vocab, one over the
/// possible target tokens for the MAD tasks, 1/classes for images.
fn chance(task: &autoarch_evaluator::TaskConfig) -> Option<f64> {
    autoarch_evaluator::reference_scores(task).map(|r| r.chance)
}

/// The median over seeds (with two runs or more) of their SD at the search's budget.
fn noise(seeds: &[DesignResult]) -> Option<f64> {
    let sds: Vec<f64> = seeds
        .iter()
        .filter_map(|d| d.short.as_ref())
        .filter(|s| s.n >= 2 && s.sd.is_finite())
        .map(|s| s.sd)
        .collect();
    (!sds.is_empty()).then(|| stats::median(&sds))
}

fn calibration(
    task: &autoarch_evaluator::TaskConfig,
    seeds: &[DesignResult],
    noise_sd: Option<f64>,
) -> Option<Calibration> {
    let (chance, ceiling) = (chance(task)?, ceiling(task)?);
    let means: Vec<f64> = seeds
        .iter()
        .filter_map(|d| d.short.as_ref())
        .map(|s| s.mean)
        .filter(|m| m.is_finite())
        .collect();
    let best = means.iter().copied().max_by(f64::total_cmp)?;
    let worst = means.iter().copied().min_by(f64::total_cmp)?;
    let position = (best - chance) / (ceiling - chance);
    let spread_sds = noise_sd
        .filter(|sd| *sd > 0.0)
        .map(|sd| (best - worst) / sd);
    Some(Calibration {
        chance,
        position,
        spread_sds,
        accepted: (0.3..=0.7).contains(&position) && spread_sds.is_some_and(|s| s >= 3.0),
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub suite: String,
    pub campaigns_per_arm: u32,
    pub max_compute_seconds: f64,
    pub final_seeds: Vec<u64>,
    pub long_factor: f64,
    pub tasks: Vec<TaskResult>,
}

/// Seeds of the final protocol.
pub fn final_seeds(suite: &Suite) -> Vec<u64> {
    let f = &suite.final_protocol;
    (0..u64::from(f.seeds)).map(|i| f.first_seed + i).collect()
}

/// How the final protocol trains a task's designs: which runs each owes and what it scores.
/// Every design is `swept` (trained at every rate of the sweep, scored at its best, and
/// trained for the long budget at that rate): seeds, incumbents and the random population
/// alike, so that no arm's relative improvement comes from a rate the others were denied.
pub struct Protocol<'a> {
    pub store: &'a Store,
    pub config: crate::config::CampaignConfig,
    pub seeds: Vec<u64>,
    pub rates: Vec<f64>,
    pub long: Option<Setting>,
}

impl<'a> Protocol<'a> {
    pub fn new(suite: &Suite, out: &Path, t: usize, store: &'a Store) -> Protocol<'a> {
        let f = &suite.final_protocol;
        Protocol {
            store,
            config: suite.campaign(&suite.tasks[t], &suite.arms[0], 0, out, None),
            seeds: final_seeds(suite),
            rates: f.learning_rates.clone(),
            long: (f.long_factor > 0.0).then_some(Setting {
                budget: Budget::Long,
                factor: f.long_factor,
                learning_rate: None,
            }),
        }
    }

    /// The rate a design is scored at: the sweep's best (once every sweep run is stored), or
    /// the search's rate (`None`) for a design that is not swept.
    fn rate(&self, s: &Subject, swept: bool) -> Result<Option<f64>, ()> {
        if !swept || self.rates.is_empty() {
            return Ok(None);
        }
        protocol::best_rate(
            self.store,
            &self.config,
            &s.fingerprint,
            &self.seeds,
            &self.rates,
        )
        .map(Some)
        .ok_or(())
    }

    /// The runs a design still owes: the short budget (at every rate of the sweep), then,
    /// once its rate is known, the long budget.
    pub fn owed(&self, s: &Subject, swept: bool) -> Vec<protocol::Owed> {
        let mut settings = Vec::new();
        if swept && !self.rates.is_empty() {
            settings.extend(self.rates.iter().map(|&r| Setting::SHORT.at_rate(Some(r))));
        } else {
            settings.push(Setting::SHORT);
        }
        if let (Some(long), Ok(rate)) = (self.long, self.rate(s, swept)) {
            settings.push(long.at_rate(rate));
        }
        protocol::owed(self.store, &self.config, s, &self.seeds, &settings)
    }

    fn scores(&self, s: &Subject, setting: Setting) -> Option<Scores> {
        Scores::of(&protocol::scores(
            self.store,
            &self.config,
            &s.fingerprint,
            &self.seeds,
            setting,
        ))
    }

    /// A design's results: at its rate, at both budgets, and the sweep.
    pub fn design(&self, s: &Subject, params: u64, swept: bool) -> DesignResult {
        let rate = self.rate(s, swept).ok().flatten();
        let sweep = if swept {
            self.rates
                .iter()
                .map(|&r| (r, self.scores(s, Setting::SHORT.at_rate(Some(r)))))
                .collect()
        } else {
            Vec::new()
        };
        let search_rate = self.config.train_config(0, 0).learning_rate;
        DesignResult {
            name: s.name.clone(),
            fingerprint: s.fingerprint.clone(),
            params,
            learning_rate: rate.unwrap_or(search_rate),
            sweep,
            short: if swept && !self.rates.is_empty() && rate.is_none() {
                None
            } else {
                self.scores(s, Setting::SHORT.at_rate(rate))
            },
            long: self.long.and_then(|l| self.scores(s, l.at_rate(rate))),
        }
    }
}

fn subject(c: &autoarch_archive::Candidate) -> Subject {
    Subject {
        name: c.name.clone(),
        code: c.code.clone(),
        fingerprint: c.fingerprint.clone(),
    }
}

/// What the final protocol trains for a task: the seeds (from the first campaign's archive),
/// each campaign's incumbent, and the random population (proposals of the random arm's
/// campaigns, interleaved by campaign, new designs only).
pub struct TaskSubjects {
    pub seeds: Vec<(Subject, u64)>,
    pub incumbents: Vec<Vec<Option<(u64, Subject, u64)>>>,
    pub random: Vec<(Subject, u64)>,
}

/// Reads a finished campaign's archive.
fn open(path: &Path) -> crate::campaign::Result<Archive> {
    Ok(Archive::open_for_review(path)?.0)
}

pub fn subjects(suite: &Suite, out: &Path, t: usize) -> crate::campaign::Result<TaskSubjects> {
    let task = &suite.tasks[t];
    let first = open(&Suite::archive_of(out, task, &suite.arms[0], 0))?;
    let seeds = first
        .list()?
        .into_iter()
        .filter(|l| {
            l.candidate.proposer == ProposerKind::Seed && !l.candidate.fingerprint.is_empty()
        })
        .map(|l| (subject(&l.candidate), l.candidate.stats.params))
        .collect();
    let mut incumbents = Vec::new();
    for arm in &suite.arms {
        let mut per = Vec::new();
        for k in 0..suite.campaigns {
            let archive = open(&Suite::archive_of(out, task, arm, k))?;
            per.push(ranking::best(&archive)?.map(|l| {
                (
                    l.candidate.id,
                    subject(&l.candidate),
                    l.candidate.stats.params,
                )
            }));
        }
        incumbents.push(per);
    }
    let mut random = Vec::new();
    if let Some(arm) = suite.random_arm() {
        let mut lists = Vec::new();
        for k in 0..suite.campaigns {
            let archive = open(&Suite::archive_of(out, task, arm, k))?;
            lists.push(
                archive
                    .list()?
                    .into_iter()
                    .filter(is_new_proposal)
                    .collect::<Vec<_>>(),
            );
        }
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        'fill: for i in 0..longest {
            for list in &lists {
                if random.len() >= suite.final_protocol.random_population {
                    break 'fill;
                }
                if let Some(l) = list.get(i) {
                    random.push((subject(&l.candidate), l.candidate.stats.params));
                }
            }
        }
    }
    Ok(TaskSubjects {
        seeds,
        incumbents,
        random,
    })
}

/// A proposal of the campaign (not a seed, not the random baseline) that traced into a new
/// design.
fn is_new_proposal(l: &Listed) -> bool {
    l.candidate.proposer != ProposerKind::Seed
        && !ranking::is_random(l)
        && !l.candidate.fingerprint.is_empty()
        && l.candidate.duplicate_of.is_none()
}

/// One evaluation or proposal of a campaign, in the order they happened.
struct Event {
    at: u64,
    wall: f64,
    /// The first event of a proposal (a candidate of the campaign's own, not a seed).
    proposal: bool,
    /// A short-budget score it brought.
    score: Option<f64>,
}

/// Sums over a campaign's archive, its best-so-far curve and its proposer's record; `sigma` is
/// the task's noise (a child counts as better than its parent by more than 2σ).
fn campaign_result(
    archive: &Archive,
    k: u32,
    path: PathBuf,
    sigma: f64,
) -> crate::campaign::Result<CampaignResult> {
    let mut r = CampaignResult {
        k,
        archive: path,
        incumbent: None,
        search_score: None,
        compute_seconds: 0.0,
        candidates: 0,
        failed: 0,
        duplicates: 0,
        traced: 0,
        compared: 0,
        improved: 0,
        tokens: 0,
        cost_usd: 0.0,
        curve: Vec::new(),
        points: Vec::new(),
    };
    let listed = archive.list()?;
    let mut short = std::collections::HashMap::new();
    let mut events = Vec::new();
    for l in &listed {
        let c = &l.candidate;
        let own = c.proposer != ProposerKind::Seed && !ranking::is_random(l);
        let mut evaluations = archive.evaluations(c.id)?;
        evaluations.sort_by_key(|e| e.created_ms);
        let scores: Vec<f64> = evaluations
            .iter()
            .filter(|e| e.fidelity == 0 && e.outcome == Outcome::Ok)
            .filter_map(|e| e.metrics.get("score").copied())
            .filter(|x| x.is_finite())
            .collect();
        if !scores.is_empty() {
            short.insert(c.id, stats::mean(&scores));
            if !ranking::is_random(l) {
                r.points.push((c.stats.params, stats::mean(&scores)));
            }
        }
        if evaluations.is_empty() {
            events.push(Event {
                at: c.created_ms,
                wall: 0.0,
                proposal: own,
                score: None,
            });
        }
        for (i, e) in evaluations.iter().enumerate() {
            r.compute_seconds += e.timings.get("wall_seconds").copied().unwrap_or(0.0);
            events.push(Event {
                at: e.created_ms,
                wall: e.timings.get("wall_seconds").copied().unwrap_or(0.0),
                proposal: own && i == 0,
                score: (e.fidelity == 0 && e.outcome == Outcome::Ok && !ranking::is_random(l))
                    .then(|| e.metrics.get("score").copied())
                    .flatten(),
            });
        }
        if !own {
            continue;
        }
        r.candidates += 1;
        r.tokens += c.tokens.prompt + c.tokens.completion;
        r.cost_usd += c.cost_usd;
        if !c.fingerprint.is_empty() {
            r.traced += 1;
        }
        if c.duplicate_of.is_some() {
            r.duplicates += 1;
        } else if c.fingerprint.is_empty() || l.summary.status == CandidateStatus::Failed {
            r.failed += 1;
        }
    }
    for l in listed
        .iter()
        .filter(|l| l.candidate.proposer != ProposerKind::Seed)
    {
        let child = short.get(&l.candidate.id);
        let parent = l.candidate.parents.first().and_then(|p| short.get(p));
        if let (Some(c), Some(p)) = (child, parent) {
            r.compared += 1;
            if c - p > 2.0 * sigma {
                r.improved += 1;
            }
        }
    }
    r.curve = curve(events);
    r.search_score = ranking::best(archive)?.and_then(|l| l.summary.score());
    Ok(r)
}

/// The best-so-far curve of a campaign's events, in the order they happened.
fn curve(mut events: Vec<Event>) -> Vec<CurvePoint> {
    events.sort_by_key(|e| e.at);
    let (mut compute, mut candidates, mut best) = (0.0, 0, f64::NEG_INFINITY);
    events
        .into_iter()
        .map(|e| {
            compute += e.wall;
            candidates += usize::from(e.proposal);
            if let Some(s) = e.score.filter(|s| s.is_finite()) {
                best = best.max(s);
            }
            CurvePoint {
                compute_seconds: compute,
                candidates,
                best: if best.is_finite() { best } else { f64::NAN },
            }
        })
        .collect()
}

/// Everything the report says, from the campaigns' archives and the final runs.
pub fn results(suite: &Suite, out: &Path, store: &Store) -> crate::campaign::Result<Results> {
    let tasks = (0..suite.tasks.len())
        .map(|t| task_result(suite, out, store, t))
        .collect::<crate::campaign::Result<Vec<_>>>()?;
    Ok(Results {
        suite: suite.name.clone(),
        campaigns_per_arm: suite.campaigns,
        max_compute_seconds: suite.budget.max_compute_seconds,
        final_seeds: final_seeds(suite),
        long_factor: suite.final_protocol.long_factor,
        tasks,
    })
}

fn task_result(
    suite: &Suite,
    out: &Path,
    store: &Store,
    t: usize,
) -> crate::campaign::Result<TaskResult> {
    let task = &suite.tasks[t];
    let protocol = Protocol::new(suite, out, t, store);
    let subjects = subjects(suite, out, t)?;
    let seed_results: Vec<DesignResult> = subjects
        .seeds
        .iter()
        .map(|(s, p)| protocol.design(s, *p, true))
        .collect();
    let best_seed = seed_results
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
    let random_mean = (!random_means.is_empty()).then(|| stats::mean(&random_means));
    let noise_sd = noise(&seed_results);
    let kendall_tau = stats::kendall_tau(
        &random
            .iter()
            .filter_map(|d| Some((d.short.as_ref()?.mean, d.long.as_ref()?.mean)))
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect::<Vec<_>>(),
    );
    let mut arms = Vec::new();
    for (a, arm) in suite.arms.iter().enumerate() {
        let mut campaigns = Vec::new();
        for k in 0..suite.campaigns {
            let path = Suite::archive_of(out, task, arm, k);
            let archive = open(&path)?;
            let mut c = campaign_result(&archive, k, path, noise_sd.unwrap_or(0.0))?;
            c.incumbent = subjects.incumbents[a][k as usize]
                .as_ref()
                .map(|(id, s, p)| (*id, protocol.design(s, *p, true)));
            campaigns.push(c);
        }
        arms.push(arm_result(arm, campaigns));
    }
    let ceiling = ceiling(&task.task);
    score_arms(&mut arms, &seed_results, random_mean, ceiling, task.goal);
    let calibration = calibration(&task.task, &seed_results, noise_sd);
    Ok(TaskResult {
        noise_sd,
        kendall_tau: kendall_tau.map(|tau| {
            let n = random
                .iter()
                .filter(|d| d.short.is_some() && d.long.is_some())
                .count();
            (tau, n)
        }),
        calibration,
        name: task.name.clone(),
        settings: task_settings(&task.task),
        goal: task.goal,
        ceiling,
        seeds: seed_results,
        best_seed: best_seed.map(|d| d.name),
        random_mean,
        random,
        arms,
    })
}

/// Each arm's scores at each budget, against the others, the best seed at that budget and
/// Acc_random.
fn score_arms(
    arms: &mut [ArmResult],
    seeds: &[DesignResult],
    random_mean: Option<f64>,
    ceiling: Option<f64>,
    goal: Option<f64>,
) {
    for budget in [Budget::Short, Budget::Long] {
        let per_arm: Vec<Vec<f64>> = arms
            .iter()
            .map(|a| incumbent_means(&a.campaigns, budget))
            .collect();
        let best = seeds
            .iter()
            .filter_map(|d| match budget {
                Budget::Short => d.short.as_ref(),
                Budget::Long => d.long.as_ref(),
            })
            .map(|s| s.mean)
            .filter(|m| m.is_finite())
            .max_by(f64::total_cmp);
        let names: Vec<String> = arms.iter().map(|a| a.name.clone()).collect();
        for (i, arm) in arms.iter_mut().enumerate() {
            // Acc_random is measured at the search's budget only.
            let random = random_mean.filter(|_| budget == Budget::Short);
            let scores = arm_scores(&per_arm, &names, i, (random, best, ceiling, goal));
            match budget {
                Budget::Short => arm.short = scores,
                Budget::Long => arm.long = scores,
            }
        }
    }
}

fn arm_result(arm: &Arm, campaigns: Vec<CampaignResult>) -> ArmResult {
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
        campaigns,
        short: None,
        long: None,
    }
}

/// Each campaign's incumbent mean at a budget (campaigns without one are left out).
fn incumbent_means(campaigns: &[CampaignResult], budget: Budget) -> Vec<f64> {
    campaigns
        .iter()
        .filter_map(|c| c.incumbent.as_ref())
        .filter_map(|(_, d)| match budget {
            Budget::Short => d.short.as_ref(),
            Budget::Long => d.long.as_ref(),
        })
        .map(|s| s.mean)
        .filter(|m| m.is_finite())
        .collect()
}

/// An arm's scores: `reference` is (Acc_random, the best seed, the ceiling, the goal).
fn arm_scores(
    per_arm: &[Vec<f64>],
    names: &[String],
    i: usize,
    reference: (Option<f64>, Option<f64>, Option<f64>, Option<f64>),
) -> Option<ArmScores> {
    let (random, best, ceiling, goal) = reference;
    let xs = &per_arm[i];
    if xs.is_empty() {
        return None;
    }
    let mean = stats::mean(xs);
    let seed = 0x5EED ^ i as u64;
    Some(ArmScores {
        campaigns: xs.len(),
        median: stats::median(xs),
        mean,
        mean_interval: stats::bootstrap(xs, stats::mean, seed),
        ri: random.and_then(|r| stats::relative_improvement(mean, r)),
        delta_best_seed: best.map(|b| mean - b),
        gap_closed: match (best, ceiling) {
            (Some(b), Some(c)) if c > b => Some((mean - b) / (c - b)),
            _ => None,
        },
        versus: per_arm
            .iter()
            .enumerate()
            .filter(|(j, ys)| *j != i && !ys.is_empty())
            .map(|(j, ys)| {
                (
                    names[j].clone(),
                    stats::prob_improvement(xs, ys),
                    stats::prob_improvement_interval(xs, ys, seed ^ ((j as u64) << 8)),
                )
            })
            .collect(),
        solved: goal.map(|g| xs.iter().filter(|x| **x >= g).count()),
    })
}
