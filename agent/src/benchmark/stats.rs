//! Statistics over campaign seeds: means and medians with bootstrap intervals (flat, and
//! hierarchical over campaigns then final seeds), the exact permutation test of two samples'
//! means, the campaigns a difference would need, and the probability that one arm's campaign
//! beats another's. Resampling is seeded, so a report reads the same every time it is made
//! from the same results.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 10_000;

/// The mean and the sample SD are the archive's (one definition for every spread shown).
pub use autoarch_archive::stats::{mean, sd};

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

/// The significance level of every test in the report.
pub const ALPHA: f64 = 0.05;

/// Splits enumerated by [`permutation_p`] before it samples instead.
pub const EXACT_LIMIT: u64 = 200_000;

/// Random splits [`permutation_p`] draws when there are too many to enumerate.
pub const PERMUTATIONS: usize = 100_000;

/// The fewest campaigns per arm with which an exact permutation test can reach p < [`ALPHA`]:
/// 3 against 3 gives at best 1/C(6, 3) = 1/20 = 0.05, 4 against 4 gives 1/C(8, 4) = 1/70.
pub const MIN_CAMPAIGNS: u32 = 4;

/// C(n, k), saturating at `u64::MAX`.
pub fn binomial(n: u64, k: u64) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        c = c * u128::from(n - i) / u128::from(i + 1);
        if c > u128::from(u64::MAX) {
            return u64::MAX;
        }
    }
    c as u64
}

/// The one-sided p-value of "A's mean is higher than B's" by a permutation test: the share of
/// the ways to split the pooled values into groups of A's and B's sizes whose difference of
/// means is at least the observed one (the observed split counts). Exact while there are at
/// most [`EXACT_LIMIT`] splits; past that, [`PERMUTATIONS`] seeded random splits, with the
/// observed one counted once more. `None` when a side is empty.
pub fn permutation_p(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    // With the sizes fixed, the difference of means grows with A's sum: compare sums.
    let observed: f64 = a.iter().sum();
    let scale = pooled.iter().map(|x| x.abs()).fold(1.0, f64::max);
    let tolerance = 1e-9 * scale * pooled.len() as f64;
    let at_least = |sum: f64| sum >= observed - tolerance;
    let splits = binomial(pooled.len() as u64, a.len() as u64);
    if splits <= EXACT_LIMIT {
        let (mut hits, mut all) = (0u64, 0u64);
        for_each_subset_sum(&pooled, a.len(), |sum| {
            all += 1;
            hits += u64::from(at_least(sum));
        });
        return Some(hits as f64 / all as f64);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x9E37_79B9 ^ splits);
    let mut shuffled = pooled.clone();
    let mut hits = 1u64;
    for _ in 0..PERMUTATIONS {
        // A partial Fisher–Yates shuffle draws A's group.
        for i in 0..a.len() {
            let j = rng.random_range(i..shuffled.len());
            shuffled.swap(i, j);
        }
        let sum: f64 = shuffled[..a.len()].iter().sum();
        hits += u64::from(at_least(sum));
    }
    Some(hits as f64 / (PERMUTATIONS + 1) as f64)
}

/// Calls `f` with the sum of every `k`-subset of `xs` (by index), in lexicographic order.
fn for_each_subset_sum(xs: &[f64], k: usize, mut f: impl FnMut(f64)) {
    let n = xs.len();
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        f(idx.iter().map(|&i| xs[i]).sum());
        // The rightmost index that can still move right.
        let Some(i) = (0..k).rev().find(|&i| idx[i] < n - k + i) else {
            return;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// The hierarchical bootstrap 95% interval of the mean of campaign means: campaigns are
/// resampled with replacement, then within each campaign drawn its final-seed scores, and the
/// statistic is the mean over the drawn campaigns of their drawn scores' means. So the
/// interval carries both the spread between campaigns and the training noise within each.
/// Campaigns without scores are left out; NaNs when none has any.
pub fn hierarchical_interval(campaigns: &[Vec<f64>], seed: u64) -> (f64, f64) {
    let campaigns: Vec<&Vec<f64>> = campaigns.iter().filter(|c| !c.is_empty()).collect();
    if campaigns.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let means: Vec<f64> = (0..campaigns.len())
                .map(|_| {
                    mean(&resample(
                        campaigns[rng.random_range(0..campaigns.len())],
                        &mut rng,
                    ))
                })
                .collect();
            mean(&means)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    (quantile(&stats, 0.025), quantile(&stats, 0.975))
}

/// The one-sided normal quantiles of a test at [`ALPHA`] = 0.05 and of 80% power.
const Z_ALPHA: f64 = 1.644_853_626_951_472_2;
const Z_POWER: f64 = 0.841_621_233_572_914_3;

/// The campaigns per arm a difference of the observed size would need to be shown: the normal
/// approximation n = ⌈2 (z₀.₉₅ + z₀.₈)² / d²⌉ of a one-sided test at α = 0.05 with 80% power,
/// where d is the difference of means over the pooled SD of the two samples, and at least
/// [`MIN_CAMPAIGNS`] (fewer can never reach p < 0.05 by an exact permutation test). `None`
/// when the means are equal or the pooled SD is undefined (a side with one value, both with
/// one); with a pooled SD of 0 and different means, d is unbounded and the answer is
/// [`MIN_CAMPAIGNS`].
pub fn campaigns_needed(a: &[f64], b: &[f64]) -> Option<u32> {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 || na + nb < 3 {
        return None;
    }
    let difference = (mean(a) - mean(b)).abs();
    if !difference.is_finite() || difference == 0.0 {
        return None;
    }
    let pooled = (((na - 1) as f64 * sd(a).powi(2) + (nb - 1) as f64 * sd(b).powi(2))
        / (na + nb - 2) as f64)
        .sqrt();
    if pooled == 0.0 {
        return Some(MIN_CAMPAIGNS);
    }
    let d = difference / pooled;
    let n = (2.0 * (Z_ALPHA + Z_POWER).powi(2) / (d * d)).ceil();
    Some(if n >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (n as u32).max(MIN_CAMPAIGNS)
    })
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

    #[test]
    fn binomials_saturate() {
        assert_eq!(binomial(6, 3), 20);
        assert_eq!(binomial(8, 4), 70);
        assert_eq!(binomial(5, 0), 1);
        assert_eq!(binomial(3, 4), 0);
        assert_eq!(binomial(200, 100), u64::MAX);
    }

    #[test]
    fn exact_permutation_p_values_match_hand_counts() {
        // 3 against 3, fully separated: only the observed split of the 20 is as extreme.
        let p = permutation_p(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(p, 1.0 / 20.0);
        assert!(p >= ALPHA, "3 vs 3 can never be shown at 0.05");
        // The other direction: every split is at least as high as the lowest.
        assert_eq!(permutation_p(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), Some(1.0));
        // 4 against 4, fully separated: 1/70.
        let p = permutation_p(&[5.0, 6.0, 7.0, 8.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(p, 1.0 / 70.0);
        assert!(p < ALPHA);
        // Ties: all equal, every split is as extreme.
        assert_eq!(permutation_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
        // A = {1, 3}, B = {2, 2}: sum 4; the six 2-subsets of {1, 3, 2, 2} sum to 4, 3, 3, 5,
        // 5, 4 — four are at least 4.
        assert_eq!(permutation_p(&[1.0, 3.0], &[2.0, 2.0]), Some(4.0 / 6.0));
        // Unequal sizes: A = {3}, B = {1, 2}: only {3} reaches 3 of the three 1-subsets.
        assert_eq!(permutation_p(&[3.0], &[1.0, 2.0]), Some(1.0 / 3.0));
        // Sums taken in another order still tie (no float drift): of the 20 splits of
        // {.1, .1, .2, .2, .3, .3}, the 8 that take one of each sum to .6 like the observed
        // one, and half of the other 12 sum to more.
        let p = permutation_p(&[0.1, 0.2, 0.3], &[0.3, 0.2, 0.1]).unwrap();
        assert_eq!(p, 14.0 / 20.0);
        assert_eq!(permutation_p(&[], &[1.0]), None);
    }

    #[test]
    fn large_samples_are_permuted_at_random_and_agree_with_the_exact_test() {
        // 12 against 12 has C(24, 12) = 2,704,156 splits: sampled. Fully separated, the
        // estimate is the observed split alone: 1/(100,000 + 1).
        let a: Vec<f64> = (12..24).map(f64::from).collect();
        let b: Vec<f64> = (0..12).map(f64::from).collect();
        assert!(binomial(24, 12) > EXACT_LIMIT);
        let p = permutation_p(&a, &b).unwrap();
        assert_eq!(p, 1.0 / (PERMUTATIONS + 1) as f64);
        // Interleaved values, A's mean 1 below B's: the sum is about 0.35 SD below the centre,
        // so p is near 0.64, and the same every time.
        let a: Vec<f64> = (0..12).map(|i| f64::from(2 * i)).collect();
        let b: Vec<f64> = (0..12).map(|i| f64::from(2 * i + 1)).collect();
        let p = permutation_p(&a, &b).unwrap();
        assert!((0.55..0.75).contains(&p), "{p}");
        assert_eq!(permutation_p(&a, &b), Some(p));
    }

    #[test]
    fn the_campaigns_needed_follow_the_normal_approximation_with_a_floor_of_four() {
        // d = 1 (means 1 apart, pooled SD 1): 2 (1.645 + 0.842)² = 12.37 → 13.
        assert_eq!(
            campaigns_needed(&[1.0, 2.0, 3.0], &[0.0, 1.0, 2.0]),
            Some(13)
        );
        // d = 0.5: 49.46 → 50.
        assert_eq!(
            campaigns_needed(&[0.5, 1.5, 2.5], &[0.0, 1.0, 2.0]),
            Some(50)
        );
        // d = 2: 3.09 → 4; d = 3: 1.37 → 2, raised to the exact test's 4.
        assert_eq!(
            campaigns_needed(&[2.0, 3.0, 4.0], &[0.0, 1.0, 2.0]),
            Some(4)
        );
        assert_eq!(
            campaigns_needed(&[3.0, 4.0, 5.0], &[0.0, 1.0, 2.0]),
            Some(4)
        );
        // The direction does not matter.
        assert_eq!(
            campaigns_needed(&[0.0, 1.0, 2.0], &[1.0, 2.0, 3.0]),
            Some(13)
        );
        // Equal means, one value a side, or no spread at all.
        assert_eq!(campaigns_needed(&[1.0, 2.0], &[2.0, 1.0]), None);
        assert_eq!(campaigns_needed(&[1.0], &[2.0]), None);
        assert_eq!(
            campaigns_needed(&[1.0, 1.0], &[2.0, 2.0]),
            Some(MIN_CAMPAIGNS)
        );
        // The floor is the fewest campaigns an exact test can show a difference with.
        let separated = |n: u32| {
            let a: Vec<f64> = (n..2 * n).map(f64::from).collect();
            let b: Vec<f64> = (0..n).map(f64::from).collect();
            permutation_p(&a, &b).unwrap()
        };
        assert!(separated(MIN_CAMPAIGNS) < ALPHA);
        assert!(separated(MIN_CAMPAIGNS - 1) >= ALPHA);
    }

    #[test]
    fn the_hierarchical_interval_carries_the_seed_spread() {
        // One campaign with final seeds [0, 1]: the campaign bootstrap alone gives a point,
        // the hierarchical one the seeds' spread (means 0, ½, 1 with chances ¼, ½, ¼).
        assert_eq!(bootstrap(&[0.5], mean, 1), (0.5, 0.5));
        assert_eq!(hierarchical_interval(&[vec![0.0, 1.0]], 1), (0.0, 1.0));
        // Two campaigns without seed spread: the campaign bootstrap's interval (0, 1).
        let flat = [vec![0.0, 0.0], vec![1.0, 1.0]];
        assert_eq!(hierarchical_interval(&flat, 2), (0.0, 1.0));
        // Campaigns with no scores are left out; none at all gives NaNs.
        assert_eq!(hierarchical_interval(&[vec![0.3], vec![]], 3), (0.3, 0.3));
        assert!(hierarchical_interval(&[vec![]], 3).0.is_nan());
        // The same campaign means, more seed spread: a wider interval.
        let width = |spread: f64| {
            let campaigns: Vec<Vec<f64>> = [0.4, 0.5, 0.6]
                .iter()
                .map(|m| vec![m - spread, *m, m + spread])
                .collect();
            let (lo, hi) = hierarchical_interval(&campaigns, 4);
            hi - lo
        };
        assert!(
            width(0.0) < width(0.1) && width(0.1) < width(0.3),
            "{} {} {}",
            width(0.0),
            width(0.1),
            width(0.3)
        );
    }
}
