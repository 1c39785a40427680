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

#[cfg(test)]
mod fixture;
pub mod lineage;
pub mod overall;
pub mod plots;
pub mod protocol;
pub mod provenance;
pub mod report;
pub mod stats;
pub mod suite;
pub mod verdict;

use std::path::{Path, PathBuf};

use autoarch_archive::{Archive, Listed, Outcome, ProposerKind, Status as CandidateStatus};
use serde::Serialize;

pub use suite::{Arm, Preset, Suite, SuiteTask};

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

/// A design's final scores at one budget.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scores {
    pub mean: f64,
    pub sd: f64,
    /// Runs that trained, and runs that failed (no score).
    pub n: usize,
    pub failed: usize,
    /// The scores of the runs that trained, in seed order.
    pub runs: Vec<f64>,
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
            runs: ok,
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
    /// Why the campaign's last run stopped (its record's state), and the wall-clock seconds
    /// it ran over every run.
    pub stopped: Option<String>,
    pub elapsed_seconds: f64,
    /// How its incumbent differs from the seed it descends from.
    pub change: Option<Change>,
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
    /// The mean of the campaigns' final means.
    pub mean: f64,
    /// The hierarchical bootstrap 95% interval of the mean: campaigns, then their final seeds.
    pub mean_interval: (f64, f64),
    /// Relative improvement over the random-sampled average, in %.
    pub ri: Option<f64>,
    pub delta_best_seed: Option<f64>,
    /// (score − best seed) / (ceiling − best seed).
    pub gap_closed: Option<f64>,
    /// Against each other arm: the campaigns' final means tested one-sided both ways.
    pub versus: Vec<Versus>,
    /// Against the best seed at this budget: the campaigns' final means against the seed's
    /// per-seed scores.
    pub versus_best_seed: Option<Versus>,
    /// Campaigns whose incumbent reaches the task's goal.
    pub solved: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ArmResult {
    pub name: String,
    pub strategy: String,
    pub proposer: String,
    /// Campaigns whose incumbent reaches the best held-out design's mean at the search's
    /// budget (`None` without held-out designs).
    pub rediscovered: Option<usize>,
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
    /// The held-out designs (rediscovery's reference lines), trained like the seeds.
    pub holdouts: Vec<DesignResult>,
    pub seeds: Vec<DesignResult>,
    /// The seed with the best mean at the search's budget: the human baseline.
    pub best_seed: Option<String>,
    /// The mean over the random-sampled population of each design's mean (Acc_random).
    pub random_mean: Option<f64>,
    pub random: Vec<DesignResult>,
    pub arms: Vec<ArmResult>,
    /// The task's noise at the search's budget: the larger of the best seed's SD over training
    /// seeds and the incumbents' median SD (the calibration's spread and the proposers' 2σ use it).
    pub noise_sd: Option<f64>,
    pub noise: Noise,
    /// Kendall's τ between the random population's short- and long-budget means (is the
    /// short budget a faithful proxy?), and the number of designs behind it.
    pub kendall_tau: Option<(f64, usize)>,
    pub calibration: Option<Calibration>,
    /// Whether the comparisons are verdicts.
    pub verdicts: Verdicts,
    /// What the final protocol spent on this task.
    pub final_cost: Cost,
}

/// The task's noise: the SD over training seeds at the search's budget of the best seed and
/// the median of the incumbents' (designs with at least two runs).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Noise {
    pub best_seed_sd: Option<f64>,
    pub incumbents_median_sd: Option<f64>,
}

impl Noise {
    /// The larger of the two.
    pub fn sd(&self) -> Option<f64> {
        match (self.best_seed_sd, self.incumbents_median_sd) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Evaluation-seconds and runs.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Cost {
    pub runs: usize,
    pub seconds: f64,
}

/// Whether the task's setting discriminates: the best seed should land 30–70% of the way from
/// chance to the ceiling, and the seeds should differ by several noise SDs.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub chance: f64,
    pub ceiling: f64,
    /// (best seed − chance) / (ceiling − chance).
    pub position: f64,
    /// (best seed − worst seed) / noise SD.
    pub spread_sds: Option<f64>,
    /// The best seed's mean at the longer budget, where there is one: it must stay below the
    /// ceiling, or the longer budget cannot tell good designs apart.
    #[serde(default)]
    pub long_best: Option<f64>,
    pub accepted: bool,
}

/// The accepted band of [`Calibration::position`], and the least [`Calibration::spread_sds`].
pub const CALIBRATION_BAND: (f64, f64) = (0.3, 0.7);
pub const CALIBRATION_SPREAD: f64 = 3.0;
/// A score this far of the way from chance to the ceiling has reached the ceiling.
pub const SATURATED: f64 = 0.98;

impl Calibration {
    /// Why the calibration fails, in words (nothing when it is accepted).
    pub fn refusal(&self) -> Vec<String> {
        let mut why = Vec::new();
        let (lo, hi) = CALIBRATION_BAND;
        if !(lo..=hi).contains(&self.position) {
            why.push(format!(
                "the best seed lands {:.0}% of the way from chance to the ceiling, outside {:.0}–{:.0}%",
                100.0 * self.position,
                100.0 * lo,
                100.0 * hi
            ));
        }
        match self.spread_sds {
            Some(s) if s < CALIBRATION_SPREAD => why.push(format!(
                "the seeds span {s:.1} noise SDs, fewer than {CALIBRATION_SPREAD}"
            )),
            None => why.push("no noise SD to measure the seeds' spread with".into()),
            Some(_) => {}
        }
        if let Some(long) = self.long_best.filter(|&l| self.saturated(l)) {
            why.push(format!(
                "the best seed reaches {long:.3} at the longer budget, the ceiling"
            ));
        }
        why
    }

    /// Whether a score is at the ceiling: within 2% of the way from chance to it.
    fn saturated(&self, score: f64) -> bool {
        (score - self.chance) / (self.ceiling - self.chance) >= SATURATED
    }
}

/// The score of guessing (the evaluator's reference scores): MQAR's 2/vocab, one over the
/// possible target tokens for the MAD tasks, 1/classes for images, minus the unigram model's
/// bits per character for `charlm`.
fn chance(task: &autoarch_evaluator::TaskConfig) -> Option<f64> {
    autoarch_evaluator::reference_scores(task).map(|r| r.chance)
}

/// The SD at the search's budget of a design with two runs or more.
fn design_sd(d: &DesignResult) -> Option<f64> {
    d.short
        .as_ref()
        .filter(|s| s.n >= 2 && s.sd.is_finite())
        .map(|s| s.sd)
}

/// The best seed's SD and the median of the incumbents'.
fn noise<'a>(
    best_seed: Option<&DesignResult>,
    incumbents: impl Iterator<Item = &'a DesignResult>,
) -> Noise {
    let sds: Vec<f64> = incumbents.filter_map(design_sd).collect();
    Noise {
        best_seed_sd: best_seed.and_then(design_sd),
        incumbents_median_sd: (!sds.is_empty()).then(|| stats::median(&sds)),
    }
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
    let long_best = seeds
        .iter()
        .filter_map(|d| d.long.as_ref())
        .map(|s| s.mean)
        .filter(|m| m.is_finite())
        .max_by(f64::total_cmp);
    let mut c = Calibration {
        chance,
        ceiling,
        position,
        spread_sds,
        long_best,
        accepted: false,
    };
    c.accepted = c.refusal().is_empty();
    Some(c)
}

#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub suite: String,
    /// Where, when and how the benchmark ran (`run.json`).
    pub provenance: Provenance,
    pub campaigns_per_arm: u32,
    pub max_compute_seconds: f64,
    pub final_seeds: Vec<u64>,
    pub long_factor: f64,
    pub settings: Settings,
    /// Evaluation-seconds of every campaign's search, and of the final protocol.
    pub search_seconds: f64,
    pub final_cost: Cost,
    pub tasks: Vec<TaskResult>,
    /// The suite's score over its tasks, per arm, with its tests.
    pub overall: overall::Overall,
}

/// The search's settings, the same for every campaign.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub workers: usize,
    /// The short training budget, in steps or seconds, and the batch.
    pub steps: Option<u64>,
    pub seconds: Option<f64>,
    pub batch_size: usize,
    /// The search's peak learning rate and its warm-up share (then a cosine decay).
    pub learning_rate: f64,
    pub warmup_fraction: f64,
    /// The final protocol's sweep (empty: the search's rate).
    pub learning_rates: Vec<f64>,
    pub size_cap: f64,
    /// The share of candidates promoted to the longer budget.
    pub promote_fraction: f64,
    pub arms: Vec<ArmSettings>,
}

/// An arm's strategy and its parameters.
#[derive(Clone, Debug, Serialize)]
pub struct ArmSettings {
    pub name: String,
    pub strategy: String,
    pub proposer: String,
    /// The strategy's parameters in words.
    pub parameters: String,
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

    /// The keys of every final run these designs may have (each budget at each rate of the
    /// sweep and at the search's), each once.
    pub fn keys<'s>(&self, subjects: impl Iterator<Item = &'s Subject>) -> Vec<String> {
        let rates = std::iter::once(None).chain(self.rates.iter().map(|&r| Some(r)));
        let mut settings = Vec::new();
        for rate in rates {
            settings.push(Setting::SHORT.at_rate(rate));
            settings.extend(self.long.map(|l| l.at_rate(rate)));
        }
        let mut keys = std::collections::BTreeSet::new();
        for s in subjects {
            for &setting in &settings {
                for &seed in &self.seeds {
                    let train = protocol::train_config(&self.config, setting, seed);
                    keys.insert(protocol::key(&s.fingerprint, &self.config.task, &train));
                }
            }
        }
        keys.into_iter().collect()
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
        let search_rate = self
            .config
            .train_config(autoarch_archive::Fidelity::SHORT, 0)
            .learning_rate;
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
    /// The held-out designs (in no campaign), traced here.
    pub holdouts: Vec<(Subject, u64)>,
    pub incumbents: Vec<Vec<Option<(u64, Subject, u64)>>>,
    pub random: Vec<(Subject, u64)>,
}

/// The task's held-out designs as subjects of the final protocol: library seeds and the
/// user's own files, traced in this process (the campaigns never saw them).
fn holdouts(task: &SuiteTask) -> crate::campaign::Result<Vec<(Subject, u64)>> {
    use crate::campaign::Error;
    if task.holdout.is_empty() {
        return Ok(Vec::new());
    }
    let shape = autoarch_evaluator::Task::load(&task.task, 0)
        .map_err(|source| Error::Task {
            task: task.name.clone(),
            source,
        })?
        .shape;
    let config = autoarch_sandbox::TraceConfig::new(shape);
    let mut out = Vec::new();
    for spec in &task.holdout {
        for d in spec.designs(&task.task.name)? {
            match autoarch_sandbox::trace(&d.code, &config) {
                autoarch_sandbox::TraceOutcome::Ok(t) => out.push((
                    Subject {
                        name: d.name,
                        code: d.code,
                        fingerprint: t.fingerprint.0.clone(),
                    },
                    t.stats.params,
                )),
                autoarch_sandbox::TraceOutcome::Invalid { diagnostics } => {
                    return Err(Error::SeedDoesNotTrace {
                        diagnostics: autoarch_sandbox::render_all(&diagnostics, &d.source),
                        seed: d.source,
                        task: task.name.clone(),
                    })
                }
            }
        }
    }
    Ok(out)
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
        .filter(|l| l.candidate.proposer == ProposerKind::Seed && l.candidate.traced())
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
    let holdouts = holdouts(task)?;
    Ok(TaskSubjects {
        seeds,
        holdouts,
        incumbents,
        random,
    })
}

/// A proposal of the campaign (not a seed, not the random baseline) that traced into a new
/// design.
fn is_new_proposal(l: &Listed) -> bool {
    l.candidate.proposer != ProposerKind::Seed
        && !ranking::is_random(l)
        && l.candidate.traced()
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
    let state = stored_state(archive, &path)?;
    let mut r = CampaignResult {
        k,
        archive: path,
        incumbent: None,
        search_score: None,
        // Jobs cut at the end of the compute budget spent time no evaluation record carries.
        compute_seconds: state.cut_seconds,
        candidates: 0,
        failed: 0,
        duplicates: 0,
        traced: 0,
        compared: 0,
        improved: 0,
        tokens: 0,
        cost_usd: 0.0,
        stopped: state.stopped,
        elapsed_seconds: state.elapsed_seconds,
        change: None,
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
            .filter(|e| e.fidelity.is_short() && e.outcome == Outcome::Ok)
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
                score: (e.fidelity.is_short()
                    && e.outcome == Outcome::Ok
                    && !ranking::is_random(l))
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
        if c.traced() {
            r.traced += 1;
        }
        if c.duplicate_of.is_some() {
            r.duplicates += 1;
        } else if !c.traced() || l.summary.status == CandidateStatus::Failed {
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

/// The campaign record's state (the default for an archive without one).
fn stored_state(archive: &Archive, path: &Path) -> crate::campaign::Result<crate::campaign::State> {
    match archive.campaigns()?.first() {
        Some(record) => crate::campaign::State::decode(record, &path.display().to_string()),
        None => Ok(crate::campaign::State::default()),
    }
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
fn cost_of<'k>(store: &Store, keys: impl IntoIterator<Item = &'k String>) -> Cost {
    let mut cost = Cost::default();
    for run in keys.into_iter().filter_map(|k| store.get(k)) {
        cost.runs += 1;
        cost.seconds += run.wall_seconds;
    }
    cost
}

/// A task's seeds, random population and their summaries.
struct Baselines {
    seeds: Vec<DesignResult>,
    best_seed: Option<DesignResult>,
    random: Vec<DesignResult>,
    random_mean: Option<f64>,
    kendall_tau: Option<(f64, usize)>,
}

fn baselines(protocol: &Protocol, subjects: &TaskSubjects) -> Baselines {
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
fn task_result(
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
fn rediscoveries(arms: &mut [ArmResult], holdouts: &[DesignResult]) {
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
fn score_arms(
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

fn at_budget(d: &DesignResult, budget: Budget) -> Option<&Scores> {
    match budget {
        Budget::Short => d.short.as_ref(),
        Budget::Long => d.long.as_ref(),
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
        rediscovered: None,
        campaigns,
        short: None,
        long: None,
    }
}

/// Each campaign's incumbent's final runs at a budget (campaigns without a trained one are
/// left out).
fn incumbent_runs(campaigns: &[CampaignResult], budget: Budget) -> Vec<Vec<f64>> {
    campaigns
        .iter()
        .filter_map(|c| c.incumbent.as_ref())
        .filter_map(|(_, d)| at_budget(d, budget))
        .filter(|s| s.mean.is_finite())
        .map(|s| s.runs.clone())
        .collect()
}

/// What an arm is measured against at a budget.
struct Reference<'a> {
    /// Acc_random.
    random: Option<f64>,
    /// The best seed's name and scores.
    best_seed: Option<(&'a str, &'a Scores)>,
    ceiling: Option<f64>,
    goal: Option<f64>,
}

/// An arm's scores from its campaigns' final runs (`per_arm[i]`, one list per campaign).
fn arm_scores(
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
