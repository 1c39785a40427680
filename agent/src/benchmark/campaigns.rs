//! A campaign's record from its archive: spend, proposals, why it stopped, its best-so-far
//! curve.

use super::*;

/// A proposal of the campaign (not a seed, not the random baseline) that traced into a new
/// design.
pub(super) fn is_new_proposal(l: &Listed) -> bool {
    l.candidate.proposer != ProposerKind::Seed
        && !ranking::is_random(l)
        && l.candidate.traced()
        && l.candidate.duplicate_of.is_none()
}

/// One evaluation or proposal of a campaign, in the order they happened.
pub(super) struct Event {
    at: u64,
    wall: f64,
    /// The first event of a proposal (a candidate of the campaign's own, not a seed).
    proposal: bool,
    /// A short-budget score it brought.
    score: Option<f64>,
}

/// Sums over a campaign's archive, its best-so-far curve and its proposer's record; `sigma` is
/// the task's noise (a child counts as better than its parent by more than 2σ).
pub(super) fn campaign_result(
    archive: &Archive,
    k: u32,
    path: PathBuf,
    sigma: f64,
) -> crate::campaign::Result<CampaignResult> {
    let state = stored_state(archive, &path)?;
    let mut r = CampaignResult {
        k,
        archive: path,
        incumbent: None,
        search_score: None,
        // Jobs cut at the end of the compute budget spent time no evaluation record carries.
        compute_seconds: state.cut_seconds,
        candidates: 0,
        failed: 0,
        duplicates: 0,
        traced: 0,
        compared: 0,
        improved: 0,
        tokens: 0,
        cost_usd: 0.0,
        stopped: state.stopped,
        elapsed_seconds: state.elapsed_seconds,
        change: None,
        curve: Vec::new(),
        points: Vec::new(),
    };
    let listed = archive.list()?;
    let mut short = std::collections::HashMap::new();
    let mut events = Vec::new();
    for l in &listed {
        let c = &l.candidate;
        let own = c.proposer != ProposerKind::Seed && !ranking::is_random(l);
        let mut evaluations = archive.evaluations(c.id)?;
        evaluations.sort_by_key(|e| e.created_ms);
        let scores: Vec<f64> = evaluations
            .iter()
            .filter(|e| e.fidelity.is_short() && e.outcome == Outcome::Ok)
            .filter_map(|e| e.metrics.get("score").copied())
            .filter(|x| x.is_finite())
            .collect();
        if !scores.is_empty() {
            short.insert(c.id, stats::mean(&scores));
            if !ranking::is_random(l) {
                r.points.push((c.stats.params, stats::mean(&scores)));
            }
        }
        if evaluations.is_empty() {
            events.push(Event {
                at: c.created_ms,
                wall: 0.0,
                proposal: own,
                score: None,
            });
        }
        for (i, e) in evaluations.iter().enumerate() {
            r.compute_seconds += e.timings.get("wall_seconds").copied().unwrap_or(0.0);
            events.push(Event {
                at: e.created_ms,
                wall: e.timings.get("wall_seconds").copied().unwrap_or(0.0),
                proposal: own && i == 0,
                score: (e.fidelity.is_short()
                    && e.outcome == Outcome::Ok
                    && !ranking::is_random(l))
                .then(|| e.metrics.get("score").copied())
                .flatten(),
            });
        }
        if own {
            tally(&mut r, l);
        }
    }
    (r.compared, r.improved) = improvements(&listed, &short, sigma);
    r.curve = curve(events);
    r.search_score = ranking::best(archive)?.and_then(|l| l.summary.score());
    Ok(r)
}

/// Counts one of the campaign's own proposals: traced, duplicate or failed, and its LLM cost.
fn tally(r: &mut CampaignResult, l: &Listed) {
    let c = &l.candidate;
    r.candidates += 1;
    r.tokens += c.tokens.prompt + c.tokens.completion;
    r.cost_usd += c.cost_usd;
    if c.traced() {
        r.traced += 1;
    }
    if c.duplicate_of.is_some() {
        r.duplicates += 1;
    } else if !c.traced() || l.summary.status == CandidateStatus::Failed {
        r.failed += 1;
    }
}

/// Of the proposals scored at the short budget whose first parent was too: how many, and how
/// many beat that parent by more than 2σ.
fn improvements(
    listed: &[Listed],
    short: &std::collections::HashMap<u64, f64>,
    sigma: f64,
) -> (usize, usize) {
    let (mut compared, mut improved) = (0, 0);
    for l in listed
        .iter()
        .filter(|l| l.candidate.proposer != ProposerKind::Seed)
    {
        let child = short.get(&l.candidate.id);
        let parent = l.candidate.parents.first().and_then(|p| short.get(p));
        if let (Some(c), Some(p)) = (child, parent) {
            compared += 1;
            if c - p > 2.0 * sigma {
                improved += 1;
            }
        }
    }
    (compared, improved)
}

/// The campaign record's state (the default for an archive without one).
pub(super) fn stored_state(
    archive: &Archive,
    path: &Path,
) -> crate::campaign::Result<crate::campaign::State> {
    match archive.campaigns()?.first() {
        Some(record) => crate::campaign::State::decode(record, &path.display().to_string()),
        None => Ok(crate::campaign::State::default()),
    }
}

/// The best-so-far curve of a campaign's events, in the order they happened.
pub(super) fn curve(mut events: Vec<Event>) -> Vec<CurvePoint> {
    events.sort_by_key(|e| e.at);
    let (mut compute, mut candidates, mut best) = (0.0, 0, f64::NEG_INFINITY);
    events
        .into_iter()
        .map(|e| {
            compute += e.wall;
            candidates += usize::from(e.proposal);
            if let Some(s) = e.score.filter(|s| s.is_finite()) {
                best = best.max(s);
            }
            CurvePoint {
                compute_seconds: compute,
                candidates,
                best: if best.is_finite() { best } else { f64::NAN },
            }
        })
        .collect()
}
