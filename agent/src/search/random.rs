//! Random search: every proposal starts from a seed drawn uniformly (whatever its results),
//! with another uniformly drawn seed as crossover partner, takes a geometric number of edits
//! of uniformly drawn kinds (mean 3, so that it samples the space rather than a seed's
//! neighbours, and does not run out of new designs on a one-seed task), and is shown blind —
//! no scores, failures or insights. It never reads a result and never promotes. With the mutation
//! proposer this is the sampler of `autoarch report --random-baseline`.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{EditCount, Population, Result, Selection, Strategy};

/// The mean number of edits of a random sample.
pub const MEAN_EDITS: u32 = 3;

pub struct RandomSearch;

impl Strategy for RandomSearch {
    fn name(&self) -> &'static str {
        "random"
    }

    fn blind(&self) -> bool {
        true
    }

    fn select(
        &mut self,
        population: &dyn Population,
        _n: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<Selection>> {
        let seeds = population.seeds();
        if seeds.is_empty() {
            return Ok(None);
        }
        let parent = seeds[rng.random_range(0..seeds.len())];
        let partner = seeds[rng.random_range(0..seeds.len())];
        Ok(Some(Selection {
            parent,
            inspirations: if partner == parent {
                Vec::new()
            } else {
                vec![partner]
            },
            blind: true,
            edits: EditCount::Geometric { mean: MEAN_EDITS },
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;

    use super::*;
    use crate::search::testing::Recorded;

    #[test]
    fn random_search_never_reads_a_score_and_draws_seeds_uniformly() {
        let good = Recorded {
            seeds: vec![0, 1, 2, 3],
            scored: vec![(0, 0.9), (1, 0.1), (2, 0.1), (3, 0.1), (8, 1.0)],
            ..Recorded::default()
        };
        let bad = Recorded {
            seeds: vec![0, 1, 2, 3],
            scored: vec![(0, 0.0), (1, 0.5), (2, 0.5), (3, 0.5), (8, 0.0)],
            ..Recorded::default()
        };
        let (mut a, mut b) = (RandomSearch, RandomSearch);
        let mut ra = ChaCha8Rng::seed_from_u64(3);
        let mut rb = ChaCha8Rng::seed_from_u64(3);
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for n in 0..4000 {
            let x = a.select(&good, n, &mut ra).unwrap().unwrap();
            let y = b.select(&bad, n, &mut rb).unwrap().unwrap();
            assert_eq!(x, y, "the same choices whatever the scores");
            assert!(x.blind && !x.inspirations.contains(&x.parent));
            *counts.entry(x.parent).or_default() += 1;
        }
        assert_eq!(good.reads.get() + bad.reads.get(), 0, "no result was read");
        assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert!(
            counts.values().all(|c| (900..1100).contains(c)),
            "{counts:?}"
        );
        assert!(a.promote(&good, &[]).is_empty());
        assert_eq!(good.reads.get(), 0);
    }
}
