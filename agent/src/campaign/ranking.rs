//! The campaign's ranking of its candidates, shared by the loop (best so far), the summary
//! and the report.

use std::cmp::Ordering;

use autoarch_archive::{Archive, CandidateId, Listed, ProposerKind, Status};

use super::{Result, RANDOM_TAG};

/// Whether a candidate belongs to the random-sampling baseline (never ranked with the rest).
pub fn is_random(l: &Listed) -> bool {
    l.candidate.tags.iter().any(|t| t == RANDOM_TAG)
}

/// The ranking order of two successful candidates (`Less`: `a` ranks first): promoted results
/// (longer, several seeds) before short-budget ones, then by score; ties (a saturated task,
/// where every good design reaches the ceiling at the longer budget) go to the higher
/// short-budget score (the design that learns faster), then to the lower validation loss, then
/// to fewer parameters.
pub fn order(a: &Listed, b: &Listed) -> Ordering {
    let key =
        |l: &Listed, m: &str, missing: f64| l.summary.metrics.get(m).copied().unwrap_or(missing);
    let short = |l: &Listed| l.summary.short_score.unwrap_or(f64::NEG_INFINITY);
    b.summary
        .fidelity
        .cmp(&a.summary.fidelity)
        .then(key(b, "score", f64::NEG_INFINITY).total_cmp(&key(a, "score", f64::NEG_INFINITY)))
        .then(short(b).total_cmp(&short(a)))
        .then(key(a, "val_loss", f64::INFINITY).total_cmp(&key(b, "val_loss", f64::INFINITY)))
        .then(a.candidate.stats.params.cmp(&b.candidate.stats.params))
        .then(a.candidate.id.cmp(&b.candidate.id))
}

/// Whether a candidate takes part in the ranking: the campaign's own, successful, scored.
pub fn is_ranked(l: &Listed) -> bool {
    !is_random(l) && l.summary.status == Status::Ok && l.summary.score().is_some()
}

/// The campaign's successful candidates, best first (the random baseline left out).
pub fn ranking(listed: &[Listed]) -> Vec<&Listed> {
    let mut ok: Vec<&Listed> = listed.iter().filter(|l| is_ranked(l)).collect();
    ok.sort_by(|a, b| order(a, b));
    ok
}

/// The best candidate, if any.
pub fn best(archive: &Archive) -> Result<Option<Listed>> {
    let listed = archive.list()?;
    Ok(ranking(&listed).first().map(|l| (*l).clone()))
}

/// A candidate's id, name and score, for summaries.
pub type Named = (CandidateId, String, f64);

fn named(l: &Listed) -> Named {
    (
        l.candidate.id,
        l.candidate.name.clone(),
        l.summary.score().unwrap_or(f64::NAN),
    )
}

/// The best candidate and the best seed, for summaries.
pub fn best_and_best_seed(archive: &Archive) -> Result<(Option<Named>, Option<Named>)> {
    let listed = archive.list()?;
    let best = ranking(&listed).first().map(|l| named(l));
    let seed = listed
        .iter()
        .filter(|l| l.candidate.proposer == ProposerKind::Seed && l.summary.status == Status::Ok)
        .filter(|l| l.summary.score().is_some())
        .max_by(|a, b| {
            let s = |l: &Listed| l.summary.score().unwrap_or(f64::NEG_INFINITY);
            s(a).total_cmp(&s(b))
                .then(b.candidate.id.cmp(&a.candidate.id))
        })
        .map(named);
    Ok((best, seed))
}

/// The best after `changed` got a result: the best so far compared with it, or the whole
/// ranking again when it was the best (a promoted run can lower its standing).
pub fn update_best(
    archive: &Archive,
    best: Option<Listed>,
    id: CandidateId,
) -> Result<Option<Listed>> {
    if best.as_ref().is_some_and(|b| b.candidate.id == id) {
        return self::best(archive);
    }
    let Some(candidate) = archive.candidate(id)? else {
        return Ok(best);
    };
    let changed = Listed {
        candidate,
        summary: archive.summary(id)?,
    };
    if !is_ranked(&changed) {
        return Ok(best);
    }
    Ok(match best {
        Some(b) if order(&changed, &b).is_ge() => Some(b),
        _ => Some(changed),
    })
}
