//! Search strategies: who becomes a parent, what inspirations are shown beside it, and who is
//! promoted to the longer budget. A strategy sees the campaign only through [`Population`], so
//! what it reads can be checked (random search reads no score), and it keeps no state of its
//! own: everything it decides from is derived from the archive, so a resumed campaign goes on
//! as if it had never stopped.
//!
//! - [`Autoarch`]: MAP-Elites cells, islands, tournaments; successive-halving promotion.
//! - [`Evolution`]: regularized (aging) evolution, Real et al. 2019.
//! - [`RandomSearch`]: a uniformly drawn seed, a geometric number of random edits (mean 3),
//!   no scores.
//!
//! Strategies and proposers are orthogonal: every proposer gets a [`Selection`] turned into a
//! proposal context.

mod autoarch;
mod evolution;
mod random;

use autoarch_archive::CandidateId;
use rand_chacha::ChaCha8Rng;

pub use autoarch::Autoarch;
pub use evolution::Evolution;
pub use random::RandomSearch;

use crate::config::{CampaignConfig, StrategyChoice};
pub use crate::propose::EditCount;

/// What a strategy may know of the campaign. Every method but [`Population::seeds`] reveals
/// results (scores or outcomes).
pub trait Population {
    /// The seeds that traced, in id order, whatever their results.
    fn seeds(&self) -> Vec<CandidateId>;
    /// Candidates with a short-budget score, in the order the results arrived (oldest first).
    fn scored(&self) -> Vec<(CandidateId, f64)>;
    /// A successful candidate drawn uniformly.
    fn sample_successful(&self, rng: &mut ChaCha8Rng) -> Result<Option<CandidateId>>;
    /// The elite of a random MAP-Elites cell.
    fn sample_elite(&self, rng: &mut ChaCha8Rng) -> Result<Option<CandidateId>>;
    /// The best of `size` random members of an island.
    fn sample_island(
        &self,
        island: u32,
        size: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<CandidateId>>;
    /// The `k` best successful candidates.
    fn top(&self, k: usize) -> Result<Vec<CandidateId>>;
}

pub type Result<T> = autoarch_archive::Result<T>;

/// A strategy's choice for one proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub parent: CandidateId,
    /// Designs shown beside the parent (crossover partners for the mutation proposer).
    pub inspirations: Vec<CandidateId>,
    /// Show designs without their results, failures or insights (random search).
    pub blind: bool,
    /// How many edits the mutation proposer makes of the parent.
    pub edits: EditCount,
}

/// A search strategy.
pub trait Strategy: Send {
    fn name(&self) -> &'static str;

    /// Whether the strategy keeps results from proposers (its selections are blind): then the
    /// loop does not spend LLM calls on analyses no proposal would see.
    fn blind(&self) -> bool {
        false
    }

    /// The parent and inspirations of proposal `n`; `None` while there is no parent yet.
    fn select(
        &mut self,
        population: &dyn Population,
        n: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<Selection>>;

    /// Called after each successful short-budget result: the candidates to promote to the
    /// longer budget now (`promoted` lists those promoted before).
    fn promote(
        &mut self,
        _population: &dyn Population,
        _promoted: &[CandidateId],
    ) -> Vec<CandidateId> {
        Vec::new()
    }
}

/// The strategy a campaign's config names.
pub fn from_config(config: &CampaignConfig) -> Box<dyn Strategy> {
    match config.search.strategy {
        StrategyChoice::Autoarch => Box::new(Autoarch {
            selection: config.selection.clone(),
            promote_fraction: config.evaluation.promote_fraction,
        }),
        StrategyChoice::Evolution => Box::new(Evolution {
            population: config.search.evolution.population,
            sample: config.search.evolution.sample,
            promote_fraction: if config.search.evolution.promote {
                config.evaluation.promote_fraction
            } else {
                0.0
            },
        }),
        StrategyChoice::Random => Box::new(RandomSearch),
    }
}

/// Asynchronous successive halving: every candidate whose short-budget score is in the top
/// `fraction` of those finished so far and that was not promoted before.
pub fn halving(
    scored: &[(CandidateId, f64)],
    fraction: f64,
    promoted: &[CandidateId],
) -> Vec<CandidateId> {
    if fraction <= 0.0 {
        return Vec::new();
    }
    let k = (scored.len() as f64 * fraction).floor() as usize;
    let mut ranked = scored.to_vec();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(k)
        .map(|(id, _)| id)
        .filter(|id| !promoted.contains(id))
        .collect()
}

/// A population over plain data: for tests of strategies, and to count what they read.
pub mod testing {
    use std::cell::Cell;

    use autoarch_archive::CandidateId;
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;

    use super::{Population, Result};

    /// Seeds and scored candidates in memory; counts every call that reveals a result.
    #[derive(Default)]
    pub struct Recorded {
        pub seeds: Vec<CandidateId>,
        /// (candidate, short-budget score), oldest result first.
        pub scored: Vec<(CandidateId, f64)>,
        /// Calls that revealed a score or an outcome.
        pub reads: Cell<usize>,
    }

    impl Recorded {
        fn read(&self) {
            self.reads.set(self.reads.get() + 1);
        }

        fn best_of(&self, ids: &[CandidateId]) -> Option<CandidateId> {
            ids.iter()
                .filter_map(|id| self.scored.iter().find(|(c, _)| c == id))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(id, _)| *id)
        }
    }

    impl Population for Recorded {
        fn seeds(&self) -> Vec<CandidateId> {
            self.seeds.clone()
        }

        fn scored(&self) -> Vec<(CandidateId, f64)> {
            self.read();
            self.scored.clone()
        }

        fn sample_successful(&self, rng: &mut ChaCha8Rng) -> Result<Option<CandidateId>> {
            self.read();
            if self.scored.is_empty() {
                return Ok(None);
            }
            Ok(Some(self.scored[rng.random_range(0..self.scored.len())].0))
        }

        fn sample_elite(&self, rng: &mut ChaCha8Rng) -> Result<Option<CandidateId>> {
            self.sample_successful(rng)
        }

        fn sample_island(
            &self,
            _island: u32,
            size: usize,
            rng: &mut ChaCha8Rng,
        ) -> Result<Option<CandidateId>> {
            self.read();
            if self.scored.is_empty() {
                return Ok(None);
            }
            let picks: Vec<CandidateId> = (0..size)
                .map(|_| self.scored[rng.random_range(0..self.scored.len())].0)
                .collect();
            Ok(self.best_of(&picks))
        }

        fn top(&self, k: usize) -> Result<Vec<CandidateId>> {
            self.read();
            let mut ranked = self.scored.clone();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            Ok(ranked.into_iter().take(k).map(|(id, _)| id).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_promotes_the_top_share_once() {
        let scored = [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.7)];
        assert_eq!(halving(&scored, 0.5, &[]), vec![2, 4]);
        assert_eq!(halving(&scored, 0.5, &[2]), vec![4]);
        assert_eq!(halving(&scored, 0.2, &[]), Vec::<CandidateId>::new());
        assert_eq!(halving(&scored, 0.0, &[]), Vec::<CandidateId>::new());
    }
}
