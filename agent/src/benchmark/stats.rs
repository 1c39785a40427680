//! Statistics over campaign seeds: means and medians with bootstrap intervals, and the
//! probability that one arm's campaign beats another's. Resampling is seeded, so a report
//! reads the same every time it is made from the same results.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 10_000;

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample standard deviation (n − 1); 0 for fewer than two values.
pub fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `q` quantile (0..=1) of sorted values, by linear interpolation.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn resample(xs: &[f64], rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..xs.len())
        .map(|_| xs[rng.random_range(0..xs.len())])
        .collect()
}

/// The percentile bootstrap 95% interval of `stat` over `xs`.
pub fn bootstrap(xs: &[f64], stat: fn(&[f64]) -> f64, seed: u64) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| stat(&resample(xs, &mut rng)))
        .collect();
    stats.sort_by(f64::total_cmp);
    (quantile(&stats, 0.025), quantile(&stats, 0.975))
}

/// P(a campaign of A scores higher than one of B), ties counting half: the share of pairs.
pub fn prob_improvement(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for x in a {
        for y in b {
            wins += if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (a.len() * b.len()) as f64
}

/// The bootstrap 95% interval of [`prob_improvement`], resampling both sides.
pub fn prob_improvement_interval(a: &[f64], b: &[f64], seed: u64) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| prob_improvement(&resample(a, &mut rng), &resample(b, &mut rng)))
        .collect();
    stats.sort_by(f64::total_cmp);
    (quantile(&stats, 0.025), quantile(&stats, 0.975))
}

/// Yang et al.'s relative improvement over the random-sampled average, in %:
/// 100 · (acc − acc_random) / acc_random. `None` when acc_random is not positive.
pub fn relative_improvement(acc: f64, acc_random: f64) -> Option<f64> {
    (acc_random > 0.0).then(|| 100.0 * (acc - acc_random) / acc_random)
}

/// Kendall's τ-b between paired values (ties in either counted as in τ-b); `None` with fewer
/// than two pairs or when one side is constant.
pub fn kendall_tau(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = pairs[i].0 - pairs[j].0;
            let dy = pairs[i].1 - pairs[j].1;
            if dx == 0.0 {
                ties_x += 1;
            }
            if dy == 0.0 {
                ties_y += 1;
            }
            if dx != 0.0 && dy != 0.0 {
                if (dx > 0.0) == (dy > 0.0) {
                    concordant += 1;
                } else {
                    discordant += 1;
                }
            }
        }
    }
    let n0 = (n * (n - 1) / 2) as i64;
    let denominator = (((n0 - ties_x) * (n0 - ties_y)) as f64).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) as f64 / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_medians() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        assert!((sd(&[1.0, 2.0, 6.0]) - 7f64.sqrt()).abs() < 1e-12);
        assert_eq!(sd(&[4.0]), 0.0);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(mean(&[]).is_nan());
    }

    #[test]
    fn probability_of_improvement_counts_pairs_and_half_ties() {
        assert_eq!(prob_improvement(&[2.0, 3.0], &[1.0, 1.0]), 1.0);
        assert_eq!(prob_improvement(&[1.0], &[1.0]), 0.5);
        // 3 > 1, 3 > 2, 1 = 1 (half), 1 < 2: 2.5 of 4.
        assert_eq!(prob_improvement(&[3.0, 1.0], &[1.0, 2.0]), 0.625);
    }

    #[test]
    fn relative_improvement_and_a_two_point_bootstrap_by_hand() {
        // (0.345 − 0.232) / 0.232 = 48.706…%
        let ri = relative_improvement(0.345, 0.232).unwrap();
        assert!((ri - 48.706_896_551_724_14).abs() < 1e-9, "{ri}");
        assert_eq!(relative_improvement(0.5, 0.0), None);
        // Resampling [0, 1] gives a mean of 0, ½ or 1 with chances ¼, ½, ¼: the 2.5% and
        // 97.5% points are 0 and 1.
        assert_eq!(bootstrap(&[0.0, 1.0], mean, 11), (0.0, 1.0));
        // And [0, 0, 1]'s median is 1 only when two or three draws are 1 (7/27 = 26%): the
        // interval still reaches 1, and starts at 0.
        assert_eq!(bootstrap(&[0.0, 0.0, 1.0], median, 5), (0.0, 1.0));
    }

    #[test]
    fn kendall_tau_matches_hand_computed_values() {
        // Same order: 1; reversed: −1.
        let same = [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)];
        assert_eq!(kendall_tau(&same), Some(1.0));
        let reversed = [(1.0, 30.0), (2.0, 20.0), (3.0, 10.0)];
        assert_eq!(kendall_tau(&reversed), Some(-1.0));
        // x 1 2 3 4, y 1 3 2 4: pairs (2,3) discordant, the other 5 concordant: (5 − 1)/6.
        let one_swap = [(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 4.0)];
        assert!((kendall_tau(&one_swap).unwrap() - 4.0 / 6.0).abs() < 1e-12);
        // τ-b with a tie in y: x 1 2 3, y 1 1 2: C = 2, D = 0, n0 = 3, ties_y = 1:
        // 2 / sqrt(3 × 2).
        let tied = [(1.0, 1.0), (2.0, 1.0), (3.0, 2.0)];
        assert!((kendall_tau(&tied).unwrap() - 2.0 / 6f64.sqrt()).abs() < 1e-12);
        assert_eq!(kendall_tau(&[(1.0, 2.0)]), None);
        assert_eq!(kendall_tau(&[(1.0, 2.0), (2.0, 2.0)]), None);
    }

    #[test]
    fn bootstrap_intervals_cover_the_estimate_and_repeat() {
        let xs = [0.41, 0.44, 0.52, 0.38, 0.47];
        let (lo, hi) = bootstrap(&xs, mean, 7);
        assert!(lo < mean(&xs) && mean(&xs) < hi, "{lo} {hi}");
        assert!(lo >= 0.38 && hi <= 0.52);
        assert_eq!(bootstrap(&xs, mean, 7), (lo, hi));
        // One value: no spread.
        assert_eq!(bootstrap(&[0.3], median, 1), (0.3, 0.3));
        let (lo, hi) = prob_improvement_interval(&[0.9, 0.8], &[0.1, 0.2], 3);
        assert_eq!((lo, hi), (1.0, 1.0));
    }
}
