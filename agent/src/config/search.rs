//! `[search]` and `[selection]`: the strategy, regularized evolution's population, and how the
//! `autoarch` strategy picks parents.

use serde::{Deserialize, Serialize};

use super::{bad, Checked};

/// The search strategy: who becomes a parent, what inspirations are shown, who is promoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StrategyChoice {
    /// MAP-Elites cells, islands and tournaments; asynchronous successive halving (`[selection]`).
    Autoarch,
    /// Regularized (aging) evolution, Real et al. 2019 (`[search.evolution]`).
    Evolution,
    /// Random search: a random seed with random edits; never looks at a score.
    Random,
}

impl StrategyChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyChoice::Autoarch => "autoarch",
            StrategyChoice::Evolution => "evolution",
            StrategyChoice::Random => "random",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    pub strategy: StrategyChoice,
    pub evolution: EvolutionConfig,
    /// The campaign's random seed: the same config and seed make the same choices; another
    /// seed, another campaign (the benchmark runs several per arm).
    pub seed: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            strategy: StrategyChoice::Autoarch,
            evolution: EvolutionConfig::default(),
            seed: 0,
        }
    }
}

/// Regularized evolution's settings. Real et al. 2019 tuned P = 100, S = 25 for 20,000 models;
/// the defaults keep that 4:1 ratio at a size a campaign of tens to hundreds of candidates
/// fills, so that members do age out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvolutionConfig {
    /// P: the members kept; when a child joins a full population, the oldest leaves.
    pub population: usize,
    /// S: members sampled (uniformly, without replacement) per proposal; the best is the parent.
    pub sample: usize,
    /// Re-train the best with the longer budget as `[evaluation]` `promote_*` say.
    pub promote: bool,
}

impl Default for EvolutionConfig {
    fn default() -> Self {
        EvolutionConfig {
            population: 20,
            sample: 5,
            promote: false,
        }
    }
}

/// How the `autoarch` strategy chooses parents and inspirations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionConfig {
    /// Islands: sub-populations that evolve apart (parents come from the proposal's island).
    pub islands: u32,
    /// The share of parents drawn uniformly from every successful candidate.
    pub exploration: f64,
    /// The share of parents drawn from the MAP-Elites cells (the rest: island tournaments).
    pub elites: f64,
    pub tournament: usize,
    /// Inspirations shown beside the parent (crossover partners for the mutation proposer).
    pub inspirations: usize,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        SelectionConfig {
            islands: 2,
            exploration: 0.2,
            elites: 0.3,
            tournament: 3,
            inspirations: 2,
        }
    }
}

impl SelectionConfig {
    /// The selection's shares and tournament.
    pub(super) fn check(&self) -> Checked {
        let s = self;
        if s.islands == 0 {
            return bad("selection.islands", "must be at least 1");
        }
        for (key, v) in [
            ("selection.exploration", s.exploration),
            ("selection.elites", s.elites),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(key, "must be between 0 and 1");
            }
        }
        if s.exploration + s.elites > 1.0 {
            return bad(
                "selection.elites",
                "plus `selection.exploration` must not exceed 1",
            );
        }
        if s.tournament == 0 {
            return bad("selection.tournament", "must be at least 1");
        }
        Ok(())
    }
}

impl EvolutionConfig {
    /// The population and sample of regularized evolution.
    pub(super) fn check(&self) -> Checked {
        let ev = self;
        if ev.population < 2 {
            return bad("search.evolution.population", "must be at least 2");
        }
        if !(1..=ev.population).contains(&ev.sample) {
            return bad(
                "search.evolution.sample",
                "must be between 1 and `search.evolution.population`",
            );
        }
        Ok(())
    }
}
