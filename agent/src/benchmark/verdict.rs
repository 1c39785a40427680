//! What the benchmark may claim: each ordered pair of arms (and each arm against the best seed)
//! is tested one-sided, "A scores higher than B", by an exact permutation test over the
//! campaigns' final means at α = 0.05; a difference the test does not show is said to be not
//! shown, with the campaigns per arm a difference of its size would need. A task whose
//! calibration fails, or a suite that turns verdicts off, gets none.

use serde::Serialize;

use super::{stats, Calibration};

/// One side against another: this arm's campaign means against the other arm's campaign
/// means, or against the best seed's per-seed scores (one design, trained on the final seeds).
#[derive(Clone, Debug, Serialize)]
pub struct Versus {
    /// The other arm's name, or the best seed's.
    pub other: String,
    /// This side's mean minus the other's.
    pub difference: f64,
    /// The one-sided permutation p-values of "this side scores higher" and of "the other does".
    pub p_higher: Option<f64>,
    pub p_lower: Option<f64>,
    /// The campaigns per arm a difference of this size would need ([`stats::campaigns_needed`]).
    pub campaigns_needed: Option<u32>,
    /// P(a value of this side is above one of the other's), ties counting half, with its
    /// bootstrap 95% interval: a description, never a verdict.
    pub prob_improvement: f64,
    pub prob_interval: (f64, f64),
}

impl Versus {
    /// Tests `ours` against `theirs`; `seed` seeds the interval of P(>).
    pub fn of(other: &str, ours: &[f64], theirs: &[f64], seed: u64) -> Versus {
        Versus {
            other: other.to_string(),
            difference: stats::mean(ours) - stats::mean(theirs),
            p_higher: stats::permutation_p(ours, theirs),
            p_lower: stats::permutation_p(theirs, ours),
            campaigns_needed: stats::campaigns_needed(ours, theirs),
            prob_improvement: stats::prob_improvement(ours, theirs),
            prob_interval: stats::prob_improvement_interval(ours, theirs, seed),
        }
    }

    /// What the tests show.
    pub fn verdict(&self) -> Verdict {
        match (self.p_higher, self.p_lower) {
            (Some(p), _) if p < stats::ALPHA => Verdict::Higher { p },
            (_, Some(p)) if p < stats::ALPHA => Verdict::Lower { p },
            _ => Verdict::NotShown {
                // The p-value in the direction observed.
                p: if self.difference >= 0.0 {
                    self.p_higher
                } else {
                    self.p_lower
                },
                campaigns_needed: self.campaigns_needed,
            },
        }
    }
}

/// The outcome of the two one-sided tests of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// "This side scores higher" at p < α.
    Higher { p: f64 },
    /// "The other side scores higher" at p < α.
    Lower { p: f64 },
    /// Neither: the p-value in the direction observed, and the campaigns per arm a difference
    /// of the observed size would need.
    NotShown {
        p: Option<f64>,
        campaigns_needed: Option<u32>,
    },
}

/// Whether a task's comparisons may be read as verdicts.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verdicts {
    /// The tests are reported as verdicts.
    Given,
    /// The suite asks for none (the quick preset: a smoke test).
    Off,
    /// The task's setting does not discriminate, so no comparison on it means anything.
    CalibrationFailed { why: String },
}

impl Verdicts {
    /// Verdicts for a task: off when the suite says so, none when its calibration fails, and
    /// given otherwise (also for a task without a calibration, which the report says).
    pub fn of(enabled: bool, calibration: Option<&Calibration>) -> Verdicts {
        if !enabled {
            return Verdicts::Off;
        }
        match calibration {
            Some(c) if !c.accepted => Verdicts::CalibrationFailed {
                why: c.refusal().join("; "),
            },
            _ => Verdicts::Given,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_campaigns_against_three_never_show_a_difference() {
        // However far apart, the exact test's smallest p at 3 vs 3 is 1/20 = α.
        let v = Versus::of("random", &[0.99, 0.98, 0.97], &[0.01, 0.02, 0.03], 1);
        assert_eq!(
            v.verdict(),
            Verdict::NotShown {
                p: Some(0.05),
                campaigns_needed: Some(stats::MIN_CAMPAIGNS)
            }
        );
        // Four against four can.
        let v = Versus::of(
            "random",
            &[0.99, 0.98, 0.97, 0.96],
            &[0.0, 0.01, 0.02, 0.03],
            1,
        );
        assert_eq!(v.verdict(), Verdict::Higher { p: 1.0 / 70.0 });
        let v = Versus::of(
            "random",
            &[0.0, 0.01, 0.02, 0.03],
            &[0.99, 0.98, 0.97, 0.96],
            1,
        );
        assert_eq!(v.verdict(), Verdict::Lower { p: 1.0 / 70.0 });
    }

    #[test]
    fn a_difference_not_shown_gives_the_p_value_of_the_observed_direction() {
        let v = Versus::of("evolution", &[0.4, 0.5, 0.6], &[0.5, 0.6, 0.7], 1);
        let Verdict::NotShown {
            p,
            campaigns_needed,
        } = v.verdict()
        else {
            panic!("{v:?}");
        };
        // B's mean is higher: the p of "B > A", the splits with a sum of B of at least 1.8.
        assert_eq!(p, v.p_lower);
        assert!(p.unwrap() < 0.5, "{p:?}");
        // d = 0.1 / 0.1 = 1: 13 campaigns per arm.
        assert_eq!(campaigns_needed, Some(13));
    }

    #[test]
    fn a_failed_calibration_or_a_suite_turns_verdicts_off() {
        let mut c = Calibration {
            chance: 0.03,
            ceiling: 1.0,
            long_best: None,
            position: 0.0,
            spread_sds: Some(0.1),
            accepted: false,
        };
        assert_eq!(Verdicts::of(false, None), Verdicts::Off);
        assert_eq!(Verdicts::of(true, None), Verdicts::Given);
        let Verdicts::CalibrationFailed { why } = Verdicts::of(true, Some(&c)) else {
            panic!()
        };
        assert!(why.contains("0% of the way"), "{why}");
        c.accepted = true;
        assert_eq!(Verdicts::of(true, Some(&c)), Verdicts::Given);
        // A setting whose best seed saturates at the longer budget cannot rank designs there.
        c.position = 0.45;
        c.spread_sds = Some(10.0);
        assert!(c.refusal().is_empty());
        c.long_best = Some(0.985);
        let why = c.refusal().join("; ");
        assert!(
            why.contains("0.985 at the longer budget, the ceiling"),
            "{why}"
        );
        c.long_best = Some(0.9);
        assert!(c.refusal().is_empty());
    }
}
