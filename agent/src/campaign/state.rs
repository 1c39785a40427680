//! What the campaign record keeps beyond the candidate and evaluation records, and the
//! budgets, which are sums over stored records.

use autoarch_archive::{Archive, Campaign as CampaignRecord, ProposerKind};
use serde::{Deserialize, Serialize};

use super::{Error, Result, RANDOM_TAG};
use crate::config::BudgetConfig;

/// What the campaign record keeps beyond the candidate and evaluation records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Wall-clock seconds spent running, over every run of the campaign.
    pub elapsed_seconds: f64,
    /// Proposals asked for (each seeds its own randomness), including those that gave nothing.
    pub proposals: u64,
    /// Candidates promoted to the longer budget, in the order decided.
    pub promoted: Vec<autoarch_archive::CandidateId>,
    /// Worker-seconds spent on jobs, and worker-seconds available, for utilisation.
    pub busy_seconds: f64,
    pub capacity_seconds: f64,
    /// Why the last run stopped.
    pub stopped: Option<String>,
    /// Short-budget evaluations counted at the last analysis (`[llm] analyze_every`).
    pub analysed_at: u64,
    /// LLM usage that no stored record carries: analyses that gave no insight, and calls of a
    /// proposal cut short by a failure of the machine.
    pub other_tokens: u64,
    pub other_dollars: f64,
    /// Proposals the random baseline has made (its own numbers, so a rerun draws new ones).
    pub baseline_proposals: u64,
    /// Evaluation-seconds of jobs stopped at the end of the compute budget: spent, but carried
    /// by no evaluation record.
    pub cut_seconds: f64,
}

impl State {
    /// The state of a stored campaign record. A record that does not decode is an error that
    /// names it, never a silent reset (which would restart the time budget).
    pub fn decode(record: &CampaignRecord, archive: &str) -> Result<State> {
        serde_json::from_value(record.state.clone()).map_err(|e| Error::State {
            campaign: record.name.clone(),
            archive: archive.to_string(),
            message: e.to_string(),
        })
    }

    /// The share of worker time spent on jobs.
    pub fn utilisation(&self) -> f64 {
        if self.capacity_seconds > 0.0 {
            self.busy_seconds / self.capacity_seconds
        } else {
            0.0
        }
    }
}

/// Sums over the archive that budgets and progress start from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spent {
    /// Proposals made by the campaign (not seeds, human designs or the random baseline).
    pub candidates: u64,
    pub tokens: u64,
    pub dollars: f64,
    /// Worker wall-clock seconds over every evaluation.
    pub compute: f64,
    /// Traced candidates with a short-budget evaluation.
    pub short: u64,
}

impl Spent {
    /// Sums the stored records (and the LLM usage only the state records).
    pub fn of(archive: &Archive, state: &State) -> Result<Spent> {
        let mut s = Spent {
            tokens: state.other_tokens,
            dollars: state.other_dollars,
            compute: state.cut_seconds,
            ..Spent::default()
        };
        for listed in archive.list()? {
            let c = &listed.candidate;
            if matches!(c.proposer, ProposerKind::Llm | ProposerKind::Mutation)
                && !c.tags.iter().any(|t| t == RANDOM_TAG)
            {
                s.candidates += 1;
            }
            s.tokens += c.tokens.prompt + c.tokens.completion;
            s.dollars += c.cost_usd;
            let evaluations = archive.evaluations(c.id)?;
            if evaluations.iter().any(|e| e.fidelity.is_short()) && c.traced() {
                s.short += 1;
            }
            s.compute += evaluations
                .iter()
                .map(|e| e.timings.get("wall_seconds").copied().unwrap_or(0.0))
                .sum::<f64>();
        }
        for call in archive.insights()?.into_iter().filter_map(|i| i.call) {
            s.tokens += call.tokens.prompt + call.tokens.completion;
            s.dollars += call.cost_usd;
        }
        Ok(s)
    }
}

/// How close to its compute budget a campaign's spend must come to count as spent (no job
/// starts with less left): 0.5% of the budget, at least 10 ms.
pub fn compute_slack(budget: f64) -> f64 {
    (budget * 0.005).max(0.01)
}

/// The first of the time, compute, token and dollar budgets that is spent, in words.
pub fn over_budget(b: &BudgetConfig, elapsed: f64, spent: &Spent) -> Option<String> {
    let over = |limit: Option<f64>, used: f64| limit.is_some_and(|m| used >= m);
    let compute_over = b
        .max_compute_seconds
        .is_some_and(|m| spent.compute + compute_slack(m) >= m);
    let limits = [
        (
            over(b.max_seconds, elapsed),
            format!("the time budget ({} s)", b.max_seconds.unwrap_or(0.0)),
        ),
        (
            compute_over,
            format!(
                "the compute budget ({} s of evaluation)",
                b.max_compute_seconds.unwrap_or(0.0)
            ),
        ),
        (
            over(b.max_tokens.map(|t| t as f64), spent.tokens as f64),
            format!("the token budget ({})", b.max_tokens.unwrap_or(0)),
        ),
        (
            over(b.max_dollars, spent.dollars),
            format!("the dollar budget (${})", b.max_dollars.unwrap_or(0.0)),
        ),
    ];
    limits
        .into_iter()
        .find(|(over, _)| *over)
        .map(|(_, what)| format!("{what} is spent"))
}
