//! Regularized (aging) evolution, Real et al. 2019 ("Regularized Evolution for Image Classifier
//! Architecture Search"): the population is the `population` most recent results; each
//! proposal samples `sample` members uniformly and mutates the best of them; when a child's
//! result arrives it joins and the oldest member leaves. Age, not fitness, decides who leaves,
//! which keeps the search from clinging to an early lucky design.
//!
//! The population is derived from the archive (the last P short-budget results in the order
//! they arrived), so a resumed campaign has the population it stopped with. The seeds are the
//! first members. A child that fails to train has no fitness and does not join. No
//! inspirations are shown (the paper's evolution has no crossover); promotion only when
//! configured.

use autoarch_archive::CandidateId;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;

use super::{halving, Population, Result, Selection, Strategy};

pub struct Evolution {
    /// P.
    pub population: usize,
    /// S.
    pub sample: usize,
    /// 0 unless promotion is configured.
    pub promote_fraction: f64,
}

impl Evolution {
    /// The members: the last P results, oldest first.
    pub fn members(&self, population: &dyn Population) -> Vec<(CandidateId, f64)> {
        let scored = population.scored();
        let skip = scored.len().saturating_sub(self.population);
        scored[skip..].to_vec()
    }
}

impl Strategy for Evolution {
    fn name(&self) -> &'static str {
        "evolution"
    }

    fn select(
        &mut self,
        population: &dyn Population,
        _n: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<Selection>> {
        let members = self.members(population);
        if members.is_empty() {
            return Ok(None);
        }
        let picked = index::sample(rng, members.len(), self.sample.min(members.len()));
        let parent = picked
            .iter()
            .map(|i| members[i])
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(id, _)| id);
        Ok(parent.map(|parent| Selection {
            parent,
            inspirations: Vec::new(),
            blind: false,
            edits: super::EditCount::Proposer,
        }))
    }

    fn promote(
        &mut self,
        population: &dyn Population,
        promoted: &[CandidateId],
    ) -> Vec<CandidateId> {
        halving(&population.scored(), self.promote_fraction, promoted)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rand::SeedableRng;

    use super::*;
    use crate::search::testing::Recorded;

    fn evolution(population: usize, sample: usize) -> Evolution {
        Evolution {
            population,
            sample,
            promote_fraction: 0.0,
        }
    }

    #[test]
    fn the_oldest_member_leaves_when_a_child_joins() {
        let mut recorded = Recorded {
            scored: (0..5).map(|id| (id, 0.5)).collect(),
            ..Recorded::default()
        };
        let s = evolution(5, 2);
        let ids = |m: Vec<(CandidateId, f64)>| m.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        assert_eq!(ids(s.members(&recorded)), vec![0, 1, 2, 3, 4]);
        recorded.scored.push((9, 0.1));
        assert_eq!(ids(s.members(&recorded)), vec![1, 2, 3, 4, 9]);
        recorded.scored.push((10, 0.2));
        assert_eq!(ids(s.members(&recorded)), vec![2, 3, 4, 9, 10]);
        // The best ever (0.9) ages out like any other member.
        let mut aged = Recorded {
            scored: vec![(0, 0.9), (1, 0.1), (2, 0.2)],
            ..Recorded::default()
        };
        aged.scored.push((3, 0.3));
        let mut s = evolution(3, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let sel = s.select(&aged, 0, &mut rng).unwrap().unwrap();
        assert_eq!(
            sel.parent, 3,
            "the whole population is the sample; 0 has left"
        );
    }

    #[test]
    fn the_parent_is_the_best_of_a_uniform_sample() {
        // Scores rise with the id: the parent is the largest id sampled.
        let recorded = Recorded {
            scored: (0..10).map(|id| (id, id as f64 / 10.0)).collect(),
            ..Recorded::default()
        };
        let mut s = evolution(10, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut parents: BTreeMap<CandidateId, usize> = BTreeMap::new();
        for n in 0..3000 {
            let sel = s.select(&recorded, n, &mut rng).unwrap().unwrap();
            assert!(sel.inspirations.is_empty() && !sel.blind);
            *parents.entry(sel.parent).or_default() += 1;
        }
        // The best of 3 drawn without replacement from 10 is member i with probability
        // C(i, 2) / C(10, 3): 0 for the two worst, 36/120 for the best.
        let never: BTreeSet<CandidateId> = [0, 1].into();
        assert!(
            never.iter().all(|id| !parents.contains_key(id)),
            "{parents:?}"
        );
        let best = parents[&9] as f64 / 3000.0;
        assert!((best - 0.3).abs() < 0.04, "{best} {parents:?}");
        let third = parents[&7] as f64 / 3000.0;
        assert!((third - 21.0 / 120.0).abs() < 0.04, "{third} {parents:?}");
        // A sample as large as the population always finds the best.
        let mut greedy = evolution(10, 10);
        for n in 0..20 {
            let sel = greedy.select(&recorded, n, &mut rng).unwrap().unwrap();
            assert_eq!(sel.parent, 9);
        }
    }

    #[test]
    fn no_promotion_unless_configured() {
        let recorded = Recorded {
            scored: (0..8).map(|id| (id, id as f64)).collect(),
            ..Recorded::default()
        };
        assert!(evolution(5, 2).promote(&recorded, &[]).is_empty());
        let mut promoting = Evolution {
            promote_fraction: 0.25,
            ..evolution(5, 2)
        };
        assert_eq!(promoting.promote(&recorded, &[]), vec![7, 6]);
    }
}
