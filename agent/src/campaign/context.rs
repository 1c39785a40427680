//! What proposers and analyses are shown, read from the archive: designs with their results,
//! recent failures, insights; and what the loop starts from when it resumes.

use std::collections::VecDeque;

use autoarch_archive::archive::summarise;
use autoarch_archive::{Archive, CandidateId, Metric, Outcome, ProposerKind, Status};

use super::jobs::score_of;
use super::ranking::is_random;
use super::{Result, State};
use crate::propose::{Analysis, AnalysisContext, Failure, Shown};

/// How many recent failures a proposal is shown.
pub const RECENT_FAILURES: usize = 5;

/// A design as a proposer sees it; `blind` leaves its results out (random search).
pub fn shown(archive: &Archive, id: CandidateId, blind: bool) -> Result<Shown> {
    let candidate = archive
        .candidate(id)?
        .ok_or(autoarch_archive::Error::UnknownCandidate(id))?;
    if blind {
        return Ok(Shown {
            summary: summarise(&candidate, &[]),
            candidate,
            curve: String::new(),
        });
    }
    let evaluations = archive.evaluations(id)?;
    let curve = evaluations
        .iter()
        .find(|e| e.fidelity.is_short() && !e.curve.is_empty())
        .map_or_else(String::new, |e| crate::text::curve_line(&e.curve));
    Ok(Shown {
        summary: archive.summary(id)?,
        candidate,
        curve,
    })
}

/// The insights' texts.
pub fn insights(archive: &Archive) -> Result<Vec<String>> {
    Ok(archive.insights()?.into_iter().map(|i| i.text).collect())
}

/// Keeps the last [`RECENT_FAILURES`] failures, oldest first.
pub fn remember(failures: &mut VecDeque<Failure>, f: Failure) {
    failures.push_back(f);
    while failures.len() > RECENT_FAILURES {
        failures.pop_front();
    }
}

/// The last failed candidates, oldest first, as proposers see them.
pub fn recent_failures(archive: &Archive) -> Result<VecDeque<Failure>> {
    let mut failures = VecDeque::new();
    for listed in archive.list()?.iter().rev() {
        if failures.len() >= RECENT_FAILURES {
            break;
        }
        if listed.summary.status == Status::Failed {
            let reason = archive
                .evaluations(listed.candidate.id)?
                .last()
                .and_then(|e| e.reason.clone())
                .unwrap_or_default();
            failures.push_front(Failure {
                name: listed.candidate.name.clone(),
                code: listed.candidate.code.clone(),
                reason,
            });
        }
    }
    Ok(failures)
}

/// The seeds that traced, in id order.
pub fn traced_seeds(archive: &Archive) -> Result<Vec<CandidateId>> {
    Ok(archive
        .list()?
        .into_iter()
        .filter(|l| l.candidate.proposer == ProposerKind::Seed && l.candidate.traced())
        .map(|l| l.candidate.id)
        .collect())
}

/// The campaign's short-budget scores in the order the results were stored (the random
/// baseline left out).
pub fn short_scores(archive: &Archive) -> Result<Vec<(CandidateId, f64)>> {
    let mut scored = Vec::new();
    for listed in archive.list()?.iter().filter(|l| !is_random(l)) {
        let evaluations = archive.evaluations(listed.candidate.id)?;
        let short = evaluations
            .iter()
            .filter(|e| e.fidelity.is_short() && e.outcome == Outcome::Ok)
            .find_map(|e| score_of(&e.metrics).map(|s| (e.id, s)));
        if let Some((evaluation, score)) = short {
            scored.push((evaluation, listed.candidate.id, score));
        }
    }
    scored.sort_by_key(|(evaluation, _, _)| *evaluation);
    Ok(scored.into_iter().map(|(_, id, s)| (id, s)).collect())
}

/// What an analysis looks at: the best short-budget results and the most recent evaluated
/// candidates (failures included), each once.
pub fn analysis(archive: &Archive, task: &autoarch_sandbox::TaskShape) -> Result<AnalysisContext> {
    let mut ids: Vec<CandidateId> = archive
        .top_k(Metric::Score, 8)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for l in archive.list()?.iter().rev() {
        if ids.len() >= 16 {
            break;
        }
        if l.summary.evaluations > 0 && !ids.contains(&l.candidate.id) {
            ids.push(l.candidate.id);
        }
    }
    let results = ids
        .into_iter()
        .map(|id| shown(archive, id, false))
        .collect::<Result<Vec<_>>>()?;
    Ok(AnalysisContext {
        task: task.clone(),
        results,
        insights: insights(archive)?,
    })
}

/// Stores an analysis: the insight with its call, or — when it gave none — the call's cost in
/// the state and why in the event log. Returns the insight's text.
pub fn store_analysis(archive: &Archive, a: Analysis, state: &mut State) -> Result<Option<String>> {
    let Analysis { insight, mut call } = a;
    let result = insight.and_then(|(text, evidence)| {
        let mut known = Vec::new();
        for id in evidence {
            if matches!(archive.candidate(id), Ok(Some(_))) && !known.contains(&id) {
                known.push(id);
            }
        }
        if known.is_empty() {
            Err("the insight cites no candidate that exists".to_string())
        } else {
            Ok((text, known))
        }
    });
    match result {
        Ok((text, evidence)) => {
            archive.add_insight_from(&text, &evidence, Some(call))?;
            Ok(Some(text))
        }
        Err(why) => {
            call.outcome = why.clone();
            let tokens = call.tokens.prompt + call.tokens.completion;
            state.other_tokens += tokens;
            state.other_dollars += call.cost_usd;
            let answer: String = call.response.chars().take(300).collect();
            archive.log_event(
                autoarch_archive::EventKind::Analysis,
                &format!("gave no insight: {why} ({tokens} tokens); answer: {answer}"),
                None,
            )?;
            Ok(None)
        }
    }
}
