//! What differs between a campaign's run and the random baseline's, said in one place: the
//! engine's handlers ask [`Purpose`] a question (is this run under the budgets? does it keep
//! the clock? does it want another proposal?) instead of checking which run they are in.

use crate::campaign::state::State;
use crate::campaign::{Stop, RANDOM_TAG};
use crate::config::CampaignConfig;
use crate::propose::Proposal;

/// Where baseline proposals are numbered from (their own seeds, apart from the campaign's).
const BASELINE_NUMBERS: u64 = 1 << 40;

/// Proposals the baseline may make per candidate it wants, before it gives up on a small space.
const BASELINE_TRIES: u64 = 20;

/// What a run is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::campaign) enum Purpose {
    /// The campaign itself: seeds, budgets, promotion, analysis, the saved state.
    Campaign,
    /// The random-sampling baseline of the report: random search with the mutation proposer,
    /// tagged, outside the budgets, until `target` candidates have a short-budget result.
    Baseline { target: usize },
}

/// How far a run has got, for the questions that depend on it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Progress {
    /// Proposals made this run.
    pub tries: u64,
    /// Proposals being written, and jobs queued or running.
    pub in_flight: u64,
    pub pending_jobs: u64,
    /// Candidates the campaign has stored (its `max_candidates` counts them).
    pub candidates: u64,
    /// Baseline candidates with a short-budget result.
    pub baseline_done: usize,
    /// The run has given up proposing (too many proposals in a row gave nothing).
    pub exhausted: bool,
}

impl Purpose {
    /// The campaign's budgets (time, compute, candidates, tokens) bound the run; the baseline
    /// runs outside them.
    pub(super) fn budgeted(self) -> bool {
        self == Purpose::Campaign
    }

    /// The run adds its wall time and its workers' use to the campaign's saved state.
    pub(super) fn keeps_the_clock(self) -> bool {
        self == Purpose::Campaign
    }

    /// The run learns from its results: the proposer's memory, the scores the strategy ranks,
    /// promotions and analyses. The baseline is blind.
    pub(super) fn learns(self) -> bool {
        self == Purpose::Campaign
    }

    /// Too many proposals in a row that gave nothing end the proposing. The baseline has its
    /// own limit on tries instead.
    pub(super) fn can_be_exhausted(self) -> bool {
        self == Purpose::Campaign
    }

    /// The run's candidates are tagged random (the baseline's), and it keeps only designs the
    /// archive does not hold yet: a sample that does not trace or repeats one is just another
    /// draw.
    pub(super) fn samples(self) -> bool {
        matches!(self, Purpose::Baseline { .. })
    }

    /// Whether a candidate belongs to this run: the baseline's are tagged random.
    pub(super) fn owns(self, random: bool) -> bool {
        random == self.samples()
    }

    /// The proposals the progress bar counts to, if it knows.
    pub(super) fn total(self, config: &CampaignConfig, seeds: usize) -> Option<u64> {
        match self {
            Purpose::Campaign => config.budget.max_candidates.map(|m| m + seeds as u64),
            Purpose::Baseline { target } => Some(target as u64),
        }
    }

    /// The number of the run's next proposal, from the saved state.
    pub(super) fn next_number(self, state: &State) -> u64 {
        match self {
            Purpose::Campaign => state.proposals,
            Purpose::Baseline { .. } => BASELINE_NUMBERS + state.baseline_proposals,
        }
    }

    /// Records in the state that proposals up to `made` (a number) were made.
    pub(super) fn record_made(self, state: &mut State, made: u64) {
        match self {
            Purpose::Campaign => state.proposals = made,
            Purpose::Baseline { .. } => state.baseline_proposals = made - BASELINE_NUMBERS,
        }
    }

    /// Whether the run wants more proposals than it has made and has in flight.
    pub(super) fn wants_more(self, config: &CampaignConfig, p: Progress) -> bool {
        match self {
            Purpose::Campaign if p.exhausted => false,
            Purpose::Campaign => config
                .budget
                .max_candidates
                .is_none_or(|m| p.candidates + p.in_flight < m),
            Purpose::Baseline { target } => {
                let pending = p.pending_jobs + p.in_flight;
                p.baseline_done as u64 + pending < target as u64
                    && p.tries < BASELINE_TRIES * target as u64
            }
        }
    }

    /// Why the run ends once nothing is left to do, when it falls short: the baseline found
    /// fewer designs than it wanted.
    pub(super) fn short_of_target(self, p: Progress) -> Option<Stop> {
        match self {
            Purpose::Baseline { target } if p.baseline_done < target => {
                Some(Stop::Proposer(format!(
                    "random sampling found {} of {target} new designs in {} tries",
                    p.baseline_done, p.tries
                )))
            }
            _ => None,
        }
    }

    /// Marks a proposal as this run's before it is stored: the baseline's are tagged random,
    /// and named and motivated as samples.
    pub(super) fn mark(self, p: &mut Proposal) -> Vec<String> {
        match self {
            Purpose::Campaign => Vec::new(),
            Purpose::Baseline { .. } => {
                p.name = format!("random · {}", p.name);
                p.motivation = format!("Random sample (baseline): {}", p.motivation);
                vec![RANDOM_TAG.to_string()]
            }
        }
    }

    /// The run, in words, for the log.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Purpose::Campaign => "campaign run",
            Purpose::Baseline { .. } => "random baseline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress {
            tries: 0,
            in_flight: 0,
            pending_jobs: 0,
            candidates: 0,
            baseline_done: 0,
            exhausted: false,
        }
    }

    #[test]
    fn the_baseline_numbers_its_proposals_apart_and_stops_at_its_target_or_its_tries() {
        let baseline = Purpose::Baseline { target: 3 };
        let mut state = State {
            baseline_proposals: 5,
            proposals: 7,
            ..State::default()
        };
        assert_eq!(Purpose::Campaign.next_number(&state), 7);
        let n = baseline.next_number(&state);
        assert_eq!(n, BASELINE_NUMBERS + 5);
        baseline.record_made(&mut state, n + 1);
        assert_eq!((state.baseline_proposals, state.proposals), (6, 7));

        let config = CampaignConfig::embedded();
        let wants = |p: Progress| baseline.wants_more(&config, p);
        assert!(wants(progress()));
        assert!(!wants(Progress {
            baseline_done: 2,
            pending_jobs: 1,
            ..progress()
        }));
        assert!(!wants(Progress {
            tries: 60,
            ..progress()
        }));
        let short = baseline.short_of_target(Progress {
            baseline_done: 1,
            tries: 60,
            ..progress()
        });
        assert!(
            matches!(&short, Some(Stop::Proposer(m)) if m == "random sampling found 1 of 3 new designs in 60 tries"),
            "{short:?}"
        );
        assert!(Purpose::Campaign.short_of_target(progress()).is_none());
    }

    #[test]
    fn the_campaign_wants_proposals_up_to_its_candidate_budget_unless_exhausted() {
        let mut config = CampaignConfig::embedded();
        config.budget.max_candidates = Some(4);
        let wants = |p: Progress| Purpose::Campaign.wants_more(&config, p);
        assert!(wants(Progress {
            candidates: 2,
            in_flight: 1,
            ..progress()
        }));
        assert!(!wants(Progress {
            candidates: 3,
            in_flight: 1,
            ..progress()
        }));
        assert!(!wants(Progress {
            exhausted: true,
            ..progress()
        }));
        assert_eq!(Purpose::Campaign.total(&config, 2), Some(6));
    }

    #[test]
    fn each_run_owns_its_candidates_and_the_baseline_marks_its_proposals() {
        assert!(Purpose::Campaign.owns(false) && !Purpose::Campaign.owns(true));
        let baseline = Purpose::Baseline { target: 1 };
        assert!(baseline.owns(true) && !baseline.owns(false));
        assert!(!baseline.budgeted() && !baseline.learns() && !baseline.keeps_the_clock());
    }
}
