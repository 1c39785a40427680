//! The `autoarch` strategy: parents from three sources — uniform over successes (exploration),
//! MAP-Elites cells (diversity), or a tournament in the proposal's island (exploitation) —
//! inspirations from the top and from a random cell, and asynchronous successive halving.

use autoarch_archive::CandidateId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{halving, Population, Result, Selection, Strategy};
use crate::config::SelectionConfig;

pub struct Autoarch {
    pub selection: SelectionConfig,
    pub promote_fraction: f64,
}

impl Autoarch {
    fn parent(
        &self,
        population: &dyn Population,
        n: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<CandidateId>> {
        let s = &self.selection;
        let r: f64 = rng.random();
        let island = (n % u64::from(s.islands)) as u32;
        let parent = if r < s.exploration {
            population.sample_successful(rng)?
        } else if r < s.exploration + s.elites {
            population.sample_elite(rng)?
        } else {
            population.sample_island(island, s.tournament, rng)?
        };
        match parent {
            Some(p) => Ok(Some(p)),
            None => population.sample_successful(rng),
        }
    }

    /// The best other than the parent, and a random cell's elite.
    fn inspirations(
        &self,
        population: &dyn Population,
        parent: CandidateId,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<CandidateId>> {
        let wanted = self.selection.inspirations;
        if wanted == 0 {
            return Ok(Vec::new());
        }
        let mut ids: Vec<CandidateId> = population
            .top(wanted + 1)?
            .into_iter()
            .filter(|id| *id != parent)
            .take(wanted.saturating_sub(1).max(1))
            .collect();
        if let Some(e) = population.sample_elite(rng)? {
            if e != parent && !ids.contains(&e) {
                ids.push(e);
            }
        }
        ids.truncate(wanted);
        Ok(ids)
    }
}

impl Strategy for Autoarch {
    fn name(&self) -> &'static str {
        "autoarch"
    }

    fn select(
        &mut self,
        population: &dyn Population,
        n: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<Selection>> {
        let Some(parent) = self.parent(population, n, rng)? else {
            return Ok(None);
        };
        Ok(Some(Selection {
            parent,
            inspirations: self.inspirations(population, parent, rng)?,
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
    use rand::SeedableRng;

    use super::*;
    use crate::search::testing::Recorded;

    #[test]
    fn parents_are_successful_and_inspirations_exclude_the_parent() {
        let population = Recorded {
            seeds: vec![0, 1],
            scored: vec![(0, 0.2), (1, 0.4), (5, 0.9), (7, 0.6)],
            ..Recorded::default()
        };
        let mut s = Autoarch {
            selection: SelectionConfig::default(),
            promote_fraction: 0.25,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in 0..200 {
            let sel = s.select(&population, n, &mut rng).unwrap().unwrap();
            assert!([0, 1, 5, 7].contains(&sel.parent));
            assert!(!sel.inspirations.contains(&sel.parent));
            assert!(sel.inspirations.len() <= 2 && !sel.blind);
        }
        assert_eq!(s.promote(&population, &[]), vec![5]);
        assert!(s
            .select(&Recorded::default(), 0, &mut rng)
            .unwrap()
            .is_none());
    }
}
