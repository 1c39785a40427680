//! What the benchmark's results hold: every design's final scores, each campaign and arm,
//! each task, the suite's settings and where it ran (`results.json` is [`Results`] as JSON).

use super::*;

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
    pub(super) fn of(runs: &[Option<f64>]) -> Option<Scores> {
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
