//! Does a task's setting discriminate? Where the best seed lands between chance and the
//! ceiling, how many noise SDs the seeds span, and whether the longer budget saturates.

use super::*;

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
pub(super) fn chance(task: &autoarch_evaluator::TaskConfig) -> Option<f64> {
    autoarch_evaluator::reference_scores(task).map(|r| r.chance)
}

/// The SD at the search's budget of a design with two runs or more.
pub(super) fn design_sd(d: &DesignResult) -> Option<f64> {
    d.short
        .as_ref()
        .filter(|s| s.n >= 2 && s.sd.is_finite())
        .map(|s| s.sd)
}

/// The best seed's SD and the median of the incumbents'.
pub(super) fn noise<'a>(
    best_seed: Option<&DesignResult>,
    incumbents: impl Iterator<Item = &'a DesignResult>,
) -> Noise {
    let sds: Vec<f64> = incumbents.filter_map(design_sd).collect();
    Noise {
        best_seed_sd: best_seed.and_then(design_sd),
        incumbents_median_sd: (!sds.is_empty()).then(|| stats::median(&sds)),
    }
}

pub(super) fn calibration(
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
